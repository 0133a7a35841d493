//! `POST /v1/media`, `GET /v1/media/{id}` and `GET /v1/media/{id}/thumbnail`
//! (see `crate::media`).

use super::extract::{Params, Query};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::media::{self, Upload};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Json;
use hark_proto::{MediaId, MediaKind, MediaRef};
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
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("Content-Length: not a number"))?,
        ),
    };
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
