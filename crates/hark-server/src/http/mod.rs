//! The HTTP API under `/v1`, health endpoints, and the router that joins
//! them with the WebSocket gateway.

mod accounts;
mod chats;
mod extract;
mod media;
mod push;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use axum::Router;
use hark_proto::ErrorCode;

pub(crate) fn router(state: AppState) -> Router {
    let body_limit = state.config.limits.max_body_bytes;
    let v1 = Router::new()
        .route("/register", post(accounts::register))
        .route("/login", post(accounts::login))
        .route("/logout", post(accounts::logout))
        .route("/me", get(accounts::me).patch(accounts::update_me))
        .route(
            "/me/privacy",
            get(accounts::privacy).put(accounts::set_privacy),
        )
        .route(
            "/me/notifications",
            get(push::settings).put(push::set_settings),
        )
        .route("/push/vapid", get(push::vapid))
        .route(
            "/push/subscriptions",
            get(push::subscriptions).post(push::subscribe),
        )
        .route(
            "/push/subscriptions/{subscription_id}",
            axum::routing::delete(push::unsubscribe),
        )
        .route("/devices", get(accounts::devices))
        .route(
            "/devices/{device_id}",
            axum::routing::delete(accounts::revoke_device),
        )
        .route("/users", get(accounts::search_users))
        .route("/users/{user_id}", get(accounts::user))
        .route("/chats", get(chats::chats))
        .route("/chats/direct", post(chats::create_direct))
        .route("/chats/groups", post(chats::create_group))
        .route("/chats/{chat_id}", get(chats::chat).patch(chats::rename))
        .route("/chats/{chat_id}/members", post(chats::add_member))
        .route(
            "/chats/{chat_id}/members/{user_id}",
            patch(chats::set_admin).delete(chats::remove_member),
        )
        .route(
            "/chats/{chat_id}/messages",
            get(chats::history).post(chats::send),
        )
        .route(
            "/chats/{chat_id}/messages/{seq}/info",
            get(chats::message_info),
        )
        .route("/chats/{chat_id}/settings", patch(chats::set_settings))
        .route("/search", get(chats::search))
        .route("/media", post(media::upload))
        .route("/media/uploads", post(media::start_upload))
        .route(
            "/media/uploads/{upload_id}",
            get(media::upload_status)
                .patch(media::append)
                .delete(media::cancel_upload),
        )
        .route(
            "/media/uploads/{upload_id}/complete",
            post(media::complete_upload),
        )
        .route("/media/{media_id}", get(media::download))
        .route("/media/{media_id}/thumbnail", get(media::thumbnail))
        .route("/media/{media_id}/url", get(media::url))
        .route("/ws", get(crate::ws::upgrade));
    Router::new()
        .nest("/v1", v1)
        .route("/v1/{*rest}", axum::routing::any(no_route))
        .route("/healthz", get(crate::health::healthz))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/readyz", get(crate::health::readyz))
        .fallback(crate::web::serve)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}
