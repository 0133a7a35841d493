//! `POST /v1/media`, `GET /v1/media/{id}`, `GET /v1/media/{id}/thumbnail`
//! and the resumable uploads under `/v1/media/uploads` (see `crate::media`).

use super::extract::{Body as JsonBody, Params, Query};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::media::resumable;
use crate::media::{self, Upload};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Json;
use hark_proto::{MediaId, MediaKind, MediaRef, MediaUrl, NewUpload, UploadStatus};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UploadQuery {
    /// `image`, `video`, `audio` or `file`.
    kind: String,
    /// The file's name, shown to those who receive it.
    #[serde(default)]
    name: Option<String>,
}

pub(super) async fn upload(
    State(state): State<AppState>,
    Authed(me): Authed,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<MediaRef>> {
    let kind = MediaKind::parse(&query.kind)
        .ok_or_else(|| ApiError::invalid("kind: one of image, video, audio, file"))?;
    let declared = number(&headers, header::CONTENT_LENGTH.as_str())?;
    let upload = Upload {
        kind,
        name: query.name,
        declared,
    };
    Ok(Json(media::upload(&state, &me, upload, body).await?))
}

pub(super) async fn download(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    media::download(&state, &me, MediaId(id), &headers).await
}

pub(super) async fn thumbnail(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    media::thumbnail(&state, &me, MediaId(id), &headers).await
}

/// Header `name` as a number, if given.
fn number(headers: &HeaderMap, name: &str) -> ApiResult<Option<u64>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("{name}: not a number"))),
    }
}

pub(super) async fn start_upload(
    State(state): State<AppState>,
    Authed(me): Authed,
    JsonBody(new): JsonBody<NewUpload>,
) -> ApiResult<(StatusCode, Json<UploadStatus>)> {
    let status = resumable::start(&state, &me, new).await?;
    Ok((StatusCode::CREATED, Json(status)))
}

pub(super) async fn upload_status(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<UploadStatus>> {
    Ok(Json(resumable::status(&state, &me, &id).await?))
}

pub(super) async fn append(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<UploadStatus>> {
    let offset = number(&headers, "upload-offset")?
        .ok_or_else(|| ApiError::invalid("Upload-Offset is required"))?;
    let declared = number(&headers, header::CONTENT_LENGTH.as_str())?
        .ok_or_else(|| ApiError::invalid("Content-Length is required"))?;
    Ok(Json(
        resumable::append(&state, &me, &id, offset, declared, body).await?,
    ))
}

pub(super) async fn complete_upload(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<MediaRef>> {
    Ok(Json(resumable::complete(&state, &me, &id).await?))
}

pub(super) async fn cancel_upload(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<StatusCode> {
    resumable::cancel(&state, &me, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn url(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<MediaUrl>> {
    Ok(Json(media::url(&state, &me, MediaId(id)).await?))
}
