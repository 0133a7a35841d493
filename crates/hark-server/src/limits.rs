//! Per-user rate limits on the HTTP actions that cost the server most or
//! can be used to bother others: message searches, group creations and
//! member additions (`[limits]` `searches_per_minute`, `groups_per_hour`,
//! `member_additions_per_minute`). One token bucket per user and action
//! (`governor`), on each node: a user may use a whole allowance at once,
//! then one more as each comes back. A refusal is `429 rate_limited` with
//! `Retry-After` (whole seconds until the next one comes back) and counts
//! in `hark_rate_limited_total{kind}`; nothing is done. Each attempt past
//! the handler's own input checks counts, whether the store then accepts
//! it or not (a forbidden addition too).
//!
//! Registrations are limited the same way per client address
//! (`registrations_per_hour_per_address`; the address as
//! `http::client_ip` tells it, so behind a balancer list it in
//! `trusted_proxies`), counted as `kind="registrations"`.

use crate::config::Limits;
use crate::error::{ApiError, ApiResult};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hark_proto::{ErrorCode, UserId};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// What a user is limited in.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Search,
    CreateGroup,
    AddMember,
}

impl Action {
    /// The metric's `kind` label and the refusal's words.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Action::Search => ("searches", "message searches a minute"),
            Action::CreateGroup => ("groups", "new groups an hour"),
            Action::AddMember => ("member_additions", "member additions a minute"),
        }
    }
}

/// The buckets, per user.
pub struct UserLimits {
    searches: (DefaultKeyedRateLimiter<i64>, u32),
    groups: (DefaultKeyedRateLimiter<i64>, u32),
    additions: (DefaultKeyedRateLimiter<i64>, u32),
    registrations: (DefaultKeyedRateLimiter<IpAddr>, u32),
}

fn n(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
}

impl UserLimits {
    pub fn new(l: &Limits) -> Self {
        UserLimits {
            searches: (
                RateLimiter::keyed(Quota::per_minute(n(l.searches_per_minute))),
                l.searches_per_minute,
            ),
            groups: (
                RateLimiter::keyed(Quota::per_hour(n(l.groups_per_hour))),
                l.groups_per_hour,
            ),
            additions: (
                RateLimiter::keyed(Quota::per_minute(n(l.member_additions_per_minute))),
                l.member_additions_per_minute,
            ),
            registrations: (
                RateLimiter::keyed(Quota::per_hour(n(l.registrations_per_hour_per_address))),
                l.registrations_per_hour_per_address,
            ),
        }
    }

    /// Takes one `action` from `user`'s allowance, or refuses.
    pub fn check(&self, action: Action, user: UserId) -> ApiResult<()> {
        let (limiter, allowed) = match action {
            Action::Search => &self.searches,
            Action::CreateGroup => &self.groups,
            Action::AddMember => &self.additions,
        };
        match limiter.check_key(&user.0) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(refusal(action.describe(), *allowed, not_until)),
        }
    }

    /// Takes one registration from `address`'s allowance, or refuses.
    pub fn check_address(&self, address: IpAddr) -> ApiResult<()> {
        let (limiter, allowed) = &self.registrations;
        match limiter.check_key(&address) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(refusal(
                ("registrations", "new accounts an hour from one address"),
                *allowed,
                not_until,
            )),
        }
    }
}

/// `429 rate_limited` with `Retry-After`, counted as `kind`.
fn refusal(
    (kind, what): (&'static str, &'static str),
    allowed: u32,
    not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    metrics::counter!("hark_rate_limited_total", "kind" => kind).increment(1);
    let mut refused = ApiError::new(
        ErrorCode::RateLimited,
        format!("at most {allowed} {what}; wait a little"),
    );
    refused.retry_after_secs = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
    refused
}
