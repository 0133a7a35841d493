//! The HTTP API under `/v1`, health endpoints, and the router that joins
//! them with the WebSocket gateway.

mod accounts;
mod admin;
mod audit;
mod bots;
mod chat_actions;
mod chats;
mod contacts;
mod deletion;
mod e2e;
mod extract;
pub(crate) use extract::{client_ip, host};
mod media;
pub(crate) mod openapi;
mod profile;
mod push;
pub(crate) mod request_id;
mod sign_in;
mod sso;
mod webhooks;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use hark_proto::ErrorCode;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `/v1` API: every route comes from its handler's `#[utoipa::path]`
/// (through `routes!`), so the OpenAPI document at `/v1/openapi.json`
/// lists exactly the routes that exist, with their methods.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me, accounts::update_me))
        .routes(routes!(accounts::privacy, accounts::set_privacy))
        .routes(routes!(sso::info))
        .routes(routes!(sso::start))
        .routes(routes!(sso::callback))
        .routes(routes!(sso::redeem))
        .routes(routes!(sign_in::change_password))
        .routes(routes!(deletion::delete_account))
        .routes(routes!(sign_in::status, sign_in::start))
        .routes(routes!(sign_in::confirm))
        .routes(routes!(sign_in::disable))
        .routes(routes!(profile::my_profile, profile::update_profile))
        .routes(routes!(profile::set_photo, profile::remove_photo))
        .routes(routes!(profile::profile))
        .routes(routes!(profile::photo))
        .routes(routes!(profile::request_export, profile::latest_export))
        .routes(routes!(profile::export_archive))
        .routes(routes!(contacts::contacts))
        .routes(routes!(contacts::add_contact, contacts::remove_contact))
        .routes(routes!(contacts::blocks))
        .routes(routes!(contacts::block, contacts::unblock))
        .routes(routes!(push::settings, push::set_settings))
        .routes(routes!(push::vapid))
        .routes(routes!(push::subscriptions, push::subscribe))
        .routes(routes!(push::unsubscribe))
        .routes(routes!(accounts::devices))
        .routes(routes!(accounts::revoke_device))
        .routes(routes!(accounts::approve_device))
        .routes(routes!(
            accounts::device_approval,
            accounts::set_device_approval
        ))
        .routes(routes!(accounts::search_users))
        .routes(routes!(accounts::user))
        .routes(routes!(chats::chats))
        .routes(routes!(chats::create_direct))
        .routes(routes!(chats::create_group))
        .routes(routes!(chats::chat, chats::rename))
        .routes(routes!(chats::set_disappearing))
        .routes(routes!(chats::add_member))
        .routes(routes!(chats::set_admin, chats::remove_member))
        .routes(routes!(chats::history, chats::send))
        .routes(routes!(chats::message_info))
        .routes(routes!(chats::set_settings))
        .routes(routes!(chats::search))
        .routes(routes!(chat_actions::typing))
        .routes(routes!(chat_actions::mark))
        .routes(routes!(chat_actions::react))
        .routes(routes!(bots::create, bots::list))
        .routes(routes!(bots::one, bots::delete))
        .routes(routes!(bots::create_token, bots::tokens))
        .routes(routes!(bots::revoke_token))
        .routes(routes!(webhooks::create_for_bot, webhooks::of_bot))
        .routes(routes!(webhooks::create_for_chat, webhooks::of_chat))
        .routes(routes!(webhooks::one, webhooks::delete))
        .routes(routes!(webhooks::enable))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(media::upload))
        .routes(routes!(media::start_upload))
        .routes(routes!(
            media::upload_status,
            media::append,
            media::cancel_upload
        ))
        .routes(routes!(media::complete_upload))
        .routes(routes!(media::download))
        .routes(routes!(media::thumbnail))
        .routes(routes!(media::url))
        .routes(routes!(e2e::upload))
        .routes(routes!(e2e::query))
        .routes(routes!(e2e::claim))
        // Key shares for a large group go in one request: a larger body.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(e2e::to_device))
                .layer(DefaultBodyLimit::max(e2e::MAX_TO_DEVICE_BODY)),
        )
        .routes(routes!(e2e::inbox))
        .routes(routes!(admin::users))
        .routes(routes!(admin::user))
        .routes(routes!(admin::disable))
        .routes(routes!(admin::enable))
        .routes(routes!(admin::set_role))
        .routes(routes!(admin::reset_password))
        .routes(routes!(admin::devices))
        .routes(routes!(admin::revoke_device))
        .routes(routes!(admin::chat))
        .routes(routes!(admin::stats))
        .routes(routes!(audit::page))
        .routes(routes!(audit::chain))
        .routes(routes!(crate::ws::upgrade))
}

pub(crate) fn router(state: AppState) -> Router {
    let body_limit = state.config.limits.max_body_bytes;
    let body_timeout = std::time::Duration::from_secs(state.config.limits.body_timeout_secs);
    let (v1, document) = OpenApiRouter::new().nest("/v1", api()).split_for_parts();
    let document = openapi::Served::new(document);
    // Outside the OpenAPI document on purpose: the document itself and its
    // page, the catch-all that answers unknown /v1 routes, health and
    // metrics for machines, and the web client (tested: nothing else).
    v1.route("/v1/openapi.json", get(openapi::json))
        // The socket over HTTP/2 (RFC 8441) is an extended CONNECT to the
        // same path; the document's `GET /v1/ws` describes both.
        .route(
            "/v1/ws",
            axum::routing::on(axum::routing::MethodFilter::CONNECT, crate::ws::upgrade),
        )
        .route("/v1/docs", get(openapi::page))
        .layer(axum::Extension(document))
        .route("/v1/{*rest}", axum::routing::any(no_route))
        .route("/healthz", get(crate::health::healthz))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/readyz", get(crate::health::readyz))
        // The SignalR hub (docs/signalr.md): its own protocol, outside /v1.
        .merge(crate::signalr::routes())
        // A route asked with another method: the JSON error, with `Allow`.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(crate::web::serve)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(state)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not answer that method (see Allow)",
    )
}

async fn no_route() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}
