//! Profiles (about line, photo, who sees them) and data exports
//! (`hark_store::profile`, `crate::media::photo`, `crate::export`).

use super::extract::{Body, Params, Query};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::media::photo;
use crate::state::AppState;
use axum::body::Body as ResponseBody;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hark_proto::{
    DataExport, ErrorCode, ExportStatus, MyProfile, PhotoSize, Profile, ProfileUpdate,
    SetPhotoRequest, UserId, Visibility,
};
use hark_store::profile::{ExportJob, EXPORT_JOB};
use serde::Deserialize;

/// The longest about line, in characters.
const ABOUT_MAX: usize = 140;

#[utoipa::path(
    get,
    path = "/me/profile",
    tag = "profile",
    summary = "Your about line, photo and who sees them",
    responses(
        (status = 200, description = "your profile", body = hark_proto::MyProfile),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn my_profile(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<MyProfile>> {
    Ok(Json(state.store.my_profile(me.user.id).await?))
}

#[utoipa::path(
    patch,
    path = "/me/profile",
    tag = "profile",
    summary = "Change your about line or who sees your profile",
    request_body = hark_proto::ProfileUpdate,
    responses(
        (status = 200, description = "your profile", body = hark_proto::MyProfile),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn update_profile(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(mut body): Body<ProfileUpdate>,
) -> ApiResult<Json<MyProfile>> {
    if body == ProfileUpdate::default() {
        return Err(ApiError::invalid(
            "name at least one of about, about_visibility, photo_visibility",
        ));
    }
    if let Some(about) = &body.about {
        let about = about.trim();
        if about.chars().count() > ABOUT_MAX || about.chars().any(char::is_control) {
            return Err(ApiError::invalid(format!(
                "about: at most {ABOUT_MAX} characters, one line"
            )));
        }
        body.about = Some(about.to_owned());
    }
    Ok(Json(state.store.update_profile(me.user.id, body).await?))
}

#[utoipa::path(
    put,
    path = "/me/photo",
    tag = "profile",
    summary = "Make an image you uploaded your photo",
    request_body = hark_proto::SetPhotoRequest,
    responses(
        (status = 200, description = "your profile, with the new photo's version", body = hark_proto::MyProfile),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_photo(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<SetPhotoRequest>,
) -> ApiResult<Json<MyProfile>> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such upload of yours");
    if !body.media_id.is_valid() {
        return Err(not_found());
    }
    let record = state
        .store
        .media(&body.media_id)
        .await?
        .filter(|r| r.uploader == me.user.id)
        .ok_or_else(not_found)?;
    let version = photo::make(
        &state.media,
        &record.reference.id,
        record.reference.kind,
        state.config.media.image_decode_max_bytes,
    )
    .await?;
    replace_photo(&state, me.user.id, Some(version)).await?;
    Ok(Json(state.store.my_profile(me.user.id).await?))
}

#[utoipa::path(
    delete,
    path = "/me/photo",
    tag = "profile",
    summary = "Remove your photo",
    responses(
        (status = 200, description = "your profile, without a photo", body = hark_proto::MyProfile),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn remove_photo(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<MyProfile>> {
    replace_photo(&state, me.user.id, None).await?;
    Ok(Json(state.store.my_profile(me.user.id).await?))
}

/// Names the new version (or none) in the user's row, then removes the
/// images of the one it replaced. (If that removal fails, the old images
/// stay unnamed; nobody is served them.)
pub(super) async fn replace_photo(
    state: &AppState,
    user: UserId,
    version: Option<String>,
) -> ApiResult<()> {
    let old = match state.store.set_photo(user, version.clone()).await {
        Ok(old) => old,
        Err(e) => {
            if let Some(new) = &version {
                let _ = photo::remove(&state.media, new).await;
            }
            return Err(e.into());
        }
    };
    if let Some(old) = old.filter(|o| Some(o) != version.as_ref()) {
        if let Err(e) = photo::remove(&state.media, &old).await {
            tracing::warn!(error = %e, "removing a replaced profile photo");
        }
    }
    Ok(())
}

/// What `viewer` may see of `owner`'s profile: the owner sees it all;
/// nobody sees what either of them blocks; otherwise each field's
/// visibility: everyone signed in, the people the owner shares a
/// one-to-one chat with, or nobody. The block and the shared chat are read
/// once each, and only when a field shown to someone needs them.
async fn visible_profile(state: &AppState, viewer: UserId, owner: UserId) -> ApiResult<Profile> {
    let profile = match state.store.my_profile(owner).await {
        Ok(p) => p,
        Err(hark_store::StoreError::NotFound) => {
            return Err(ApiError::new(ErrorCode::NotFound, "no such user"))
        }
        Err(e) => return Err(e.into()),
    };
    let about = Some(profile.about).filter(|a| !a.is_empty());
    let mut asked = Vec::new();
    if about.is_some() {
        asked.push(profile.about_visibility);
    }
    if profile.photo.is_some() {
        asked.push(profile.photo_visibility);
    }
    let mut blocked = false;
    let mut contact = false;
    if viewer != owner && asked.iter().any(|v| *v != Visibility::Nobody) {
        blocked = !state
            .store
            .blocked_among(owner, &[viewer])
            .await?
            .is_empty();
        if !blocked && asked.contains(&Visibility::Contacts) {
            contact = state
                .store
                .contacts_among(owner, &[viewer])
                .await?
                .contains(&viewer);
        }
    }
    let allows = |visibility: Visibility| {
        viewer == owner
            || (!blocked
                && match visibility {
                    Visibility::Everyone => true,
                    Visibility::Contacts => contact,
                    Visibility::Nobody => false,
                })
    };
    Ok(Profile {
        user_id: owner,
        about: about.filter(|_| allows(profile.about_visibility)),
        photo: profile.photo.filter(|_| allows(profile.photo_visibility)),
    })
}

#[utoipa::path(
    get,
    path = "/users/{user_id}/profile",
    tag = "profile",
    summary = "What you may see of someone's profile",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 200, description = "their profile; a field is null when unset or hidden from you", body = hark_proto::Profile),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn profile(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(user_id): Params<i64>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(
        visible_profile(&state, me.user.id, UserId(user_id)).await?,
    ))
}

#[derive(Deserialize)]
pub(super) struct PhotoQuery {
    #[serde(default)]
    size: PhotoSize,
}

#[utoipa::path(
    get,
    path = "/users/{user_id}/photo",
    tag = "profile",
    summary = "Someone's photo, if you may see it",
    params(
        ("user_id" = i64, Path, description = "the user"),
        ("size" = Option<hark_proto::PhotoSize>, Query, description = "`small` (128 px) or `large` (640 px, the default)"),
    ),
    responses(
        (status = 200, description = "the photo, a square JPEG", content_type = "image/jpeg"),
        (status = 304, description = "unchanged since the `ETag` sent in `If-None-Match`"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn photo(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(user_id): Params<i64>,
    Query(query): Query<PhotoQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let profile = visible_profile(&state, me.user.id, UserId(user_id)).await?;
    let version = profile
        .photo
        .filter(|v| photo::is_version(v))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no photo you may see"))?;
    let etag = format!("\"{version}-{}\"", query.size.name());
    let mut out = crate::media::common_headers(&etag, "image/jpeg");
    // Asked again each time (the owner may hide it), answered 304 when
    // the client holds this version.
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if crate::media::unchanged(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let bytes = photo::read(&state.media, &version, query.size).await?;
    Ok((out, bytes).into_response())
}

#[utoipa::path(
    post,
    path = "/me/export",
    tag = "profile",
    summary = "Ask for an archive of your data",
    responses(
        (status = 202, description = "the export, pending (the one already pending, if any)", body = hark_proto::DataExport),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn request_export(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<(StatusCode, Json<DataExport>)> {
    let job = ExportJob {
        export: crate::media::new_id().0,
        user: me.user.id,
    };
    let (export, made) = state
        .store
        .start_export(
            me.user.id,
            job.export.clone(),
            job.job(EXPORT_JOB, crate::now_ms()),
        )
        .await?;
    if made {
        state.jobs.wake();
        crate::audit::Event::by(&me, "data_exported")
            .user(me.user.id)
            .detail("export", &export.id)
            .record(&state)
            .await;
    }
    Ok((StatusCode::ACCEPTED, Json(export)))
}

#[utoipa::path(
    get,
    path = "/me/export",
    tag = "profile",
    summary = "Your latest export",
    responses(
        (status = 200, description = "the latest export", body = hark_proto::DataExport),
        (status = 204, description = "none: you never asked for one, or all expired"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn latest_export(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Response> {
    // No export is an ordinary state, not a missing resource: a 404 would
    // show in every browser console as a failed load.
    Ok(match state.store.latest_export(me.user.id).await? {
        Some(export) => Json(export).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

#[utoipa::path(
    get,
    path = "/me/export/{export_id}/archive",
    tag = "profile",
    summary = "Download a ready export",
    params(("export_id" = String, Path, description = "the export")),
    responses(
        (status = 200, description = "the zip archive", content_type = "application/zip"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn export_archive(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(export_id): Params<String>,
) -> ApiResult<Response> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such export ready");
    if !photo::is_version(&export_id) {
        return Err(not_found());
    }
    let export = state
        .store
        .export(me.user.id, export_id.clone())
        .await?
        .filter(|e| e.status == ExportStatus::Ready)
        .ok_or_else(not_found)?;
    let got = state
        .media
        .store
        .get(&crate::export::path(&export.id))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => not_found(),
            other => ApiError::internal(other),
        })?;
    let size = got.meta.size;
    let day = hark_proto::utc_date(export.requested_at.div_euclid(86_400_000));
    let name = format!("hark-export-{}-{day}.zip", me.user.username);
    let mut out = HeaderMap::new();
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, "application/zip".into());
    set(header::CONTENT_LENGTH, size.to_string());
    set(
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    );
    set(header::CACHE_CONTROL, "private, no-store".into());
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    Ok((out, ResponseBody::from_stream(got.into_stream())).into_response())
}
