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

#[utoipa::path(
    post,
    path = "/media",
    tag = "media",
    summary = "Upload a file in one request",
    params(("kind" = String, Query, description = "image, video, audio or file"), ("name" = Option<String>, Query, description = "the file's name")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the bytes"),
    responses(
        (status = 200, description = "the stored file", body = hark_proto::MediaRef),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    get,
    path = "/media/{media_id}",
    tag = "media",
    summary = "Download a file (Range honoured)",
    params(("media_id" = String, Path, description = "the file")),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "the range asked for", content_type = "application/octet-stream", body = Vec<u8>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn download(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    media::download(&state, &me, MediaId(id), &headers).await
}

#[utoipa::path(
    get,
    path = "/media/{media_id}/thumbnail",
    tag = "media",
    summary = "An image's thumbnail",
    params(("media_id" = String, Path, description = "the file")),
    responses(
        (status = 200, description = "a JPEG", content_type = "application/octet-stream", body = Vec<u8>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    post,
    path = "/media/uploads",
    tag = "media",
    summary = "Start a resumable upload",
    request_body = hark_proto::NewUpload,
    responses(
        (status = 201, description = "the upload", body = hark_proto::UploadStatus),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn start_upload(
    State(state): State<AppState>,
    Authed(me): Authed,
    JsonBody(new): JsonBody<NewUpload>,
) -> ApiResult<(StatusCode, Json<UploadStatus>)> {
    let status = resumable::start(&state, &me, new).await?;
    Ok((StatusCode::CREATED, Json(status)))
}

#[utoipa::path(
    get,
    path = "/media/uploads/{upload_id}",
    tag = "media",
    summary = "Where a resumable upload stands",
    params(("upload_id" = String, Path, description = "the upload")),
    responses(
        (status = 200, description = "the upload", body = hark_proto::UploadStatus),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn upload_status(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<UploadStatus>> {
    Ok(Json(resumable::status(&state, &me, &id).await?))
}

#[utoipa::path(
    patch,
    path = "/media/uploads/{upload_id}",
    tag = "media",
    summary = "Send the next piece of an upload",
    params(("upload_id" = String, Path, description = "the upload")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the bytes"),
    responses(
        (status = 200, description = "the upload", body = hark_proto::UploadStatus),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    post,
    path = "/media/uploads/{upload_id}/complete",
    tag = "media",
    summary = "Finish an upload",
    params(("upload_id" = String, Path, description = "the upload")),
    responses(
        (status = 200, description = "the stored file", body = hark_proto::MediaRef),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn complete_upload(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<MediaRef>> {
    Ok(Json(resumable::complete(&state, &me, &id).await?))
}

#[utoipa::path(
    delete,
    path = "/media/uploads/{upload_id}",
    tag = "media",
    summary = "Cancel an upload",
    params(("upload_id" = String, Path, description = "the upload")),
    responses(
        (status = 204, description = "removed"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn cancel_upload(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<StatusCode> {
    resumable::cancel(&state, &me, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/media/{media_id}/url",
    tag = "media",
    summary = "A presigned URL of the file in the bucket",
    params(("media_id" = String, Path, description = "the file")),
    responses(
        (status = 200, description = "valid for a while", body = hark_proto::MediaUrl),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn url(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<MediaUrl>> {
    Ok(Json(media::url(&state, &me, MediaId(id)).await?))
}
