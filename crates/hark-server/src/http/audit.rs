//! The audit log for admins (`/v1/admin/audit`): pages of rows with
//! filters, and the chain's head to check a full read against
//! (`hark admin audit verify`). The rows are written by `crate::audit`.

use super::admin::Admin;
use super::extract::Query;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use hark_proto::{AuditChain, AuditPage, ChatId, UserId, AUDIT_ACTIONS};
use hark_store::audit::AuditQuery;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditParams {
    before: Option<i64>,
    after: Option<i64>,
    user: Option<i64>,
    action: Option<String>,
    chat: Option<i64>,
    since: Option<i64>,
    until: Option<i64>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    summary = "The audit log, a page at a time",
    params(
        ("before" = Option<i64>, Query, description = "rows with a smaller id, newest first (the default order)"),
        ("after" = Option<i64>, Query, description = "rows with a larger id, oldest first (0: from the start); not with before"),
        ("user" = Option<i64>, Query, description = "rows this user did or had done to them"),
        ("action" = Option<String>, Query, description = "rows of this action"),
        ("chat" = Option<i64>, Query, description = "rows about this chat"),
        ("since" = Option<i64>, Query, description = "rows written at or after this time (ms)"),
        ("until" = Option<i64>, Query, description = "rows written before this time (ms)"),
        ("limit" = Option<u32>, Query, description = "1 to 1000 (100)"),
    ),
    responses(
        (status = 200, description = "a page", body = hark_proto::AuditPage),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn page(
    State(state): State<AppState>,
    _: Admin,
    Query(p): Query<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    if !(1..=1000).contains(&p.limit) {
        return Err(ApiError::invalid("limit: 1 to 1000"));
    }
    if p.before.is_some() && p.after.is_some() {
        return Err(ApiError::invalid("before and after: one or the other"));
    }
    for (name, value) in [
        ("before", p.before),
        ("after", p.after),
        ("user", p.user),
        ("chat", p.chat),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::invalid(format!("{name}: 0 or more")));
        }
    }
    if let Some(action) = &p.action {
        if !AUDIT_ACTIONS.contains(&action.as_str()) {
            return Err(ApiError::invalid(format!(
                "action: one of {}",
                AUDIT_ACTIONS.join(", ")
            )));
        }
    }
    if let (Some(since), Some(until)) = (p.since, p.until) {
        if since > until {
            return Err(ApiError::invalid("since: not after until"));
        }
    }
    // One more than asked says whether there is a next page.
    let mut entries = state
        .store
        .audit_page(AuditQuery {
            before: p.before,
            after: p.after,
            user: p.user.map(UserId),
            action: p.action,
            chat: p.chat.map(ChatId),
            since: p.since,
            until: p.until,
            limit: p.limit + 1,
        })
        .await?;
    let next = if entries.len() > p.limit as usize {
        entries.truncate(p.limit as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage { entries, next }))
}

#[utoipa::path(
    get,
    path = "/admin/audit/chain",
    tag = "admin",
    summary = "Where the audit log's hash chain starts and ends",
    responses(
        (status = 200, description = "the chain's head", body = hark_proto::AuditChain),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn chain(State(state): State<AppState>, _: Admin) -> ApiResult<Json<AuditChain>> {
    Ok(Json(state.store.audit_chain().await?))
}
