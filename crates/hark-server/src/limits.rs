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
//! Messages are limited per device (`sends_per_second` after a burst of
//! `send_burst`), across its sockets and HTTP, counted as `kind="sends"`;
//! over the WebSocket the refusal is an error frame with the same code.
//!
//! Registrations are limited the same way per client address
//! (`registrations_per_hour_per_address`; the address as
//! `http::client_ip` tells it, so behind a balancer list it in
//! `trusted_proxies`), counted as `kind="registrations"`; so are login
//! attempts, whatever their username (`logins_per_minute_per_address`,
//! `kind="login_addresses"`), beside the per-username limit of `auth`.

use crate::config::Limits;
use crate::error::{ApiError, ApiResult};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hark_proto::{DeviceId, ErrorCode, UserId};
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
    logins: (DefaultKeyedRateLimiter<IpAddr>, u32),
    sends: (DefaultKeyedRateLimiter<i64>, u32),
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
            logins: (
                RateLimiter::keyed(Quota::per_minute(n(l.logins_per_minute_per_address))),
                l.logins_per_minute_per_address,
            ),
            sends: (
                RateLimiter::keyed(
                    Quota::per_second(n(l.sends_per_second)).allow_burst(n(l.send_burst)),
                ),
                l.sends_per_second,
            ),
        }
    }

    /// Takes one message from `device`'s allowance, or refuses.
    pub fn check_send(&self, device: DeviceId) -> ApiResult<()> {
        take(
            &self.sends,
            &device.0,
            ("sends", "messages a second from one device"),
        )
    }

    /// Forgets the buckets that are full again (their keys unseen for a
    /// whole refill): without it, every user, device and address ever seen
    /// would keep a bucket for the life of the process.
    pub fn forget_idle(&self) {
        for limiter in [
            &self.searches.0,
            &self.groups.0,
            &self.additions.0,
            &self.sends.0,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        for limiter in [&self.registrations.0, &self.logins.0] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many buckets are held (users, devices and addresses seen lately).
    pub fn held(&self) -> usize {
        [
            &self.searches.0,
            &self.groups.0,
            &self.additions.0,
            &self.sends.0,
        ]
        .iter()
        .map(|l| l.len())
        .sum::<usize>()
            + self.registrations.0.len()
            + self.logins.0.len()
    }

    /// Takes one `action` from `user`'s allowance, or refuses.
    pub fn check(&self, action: Action, user: UserId) -> ApiResult<()> {
        let bucket = match action {
            Action::Search => &self.searches,
            Action::CreateGroup => &self.groups,
            Action::AddMember => &self.additions,
        };
        take(bucket, &user.0, action.describe())
    }

    /// Takes one registration from `address`'s allowance (an unknown
    /// address counts as 0.0.0.0), or refuses.
    pub fn check_address(&self, address: Option<IpAddr>) -> ApiResult<()> {
        take(
            &self.registrations,
            &address.unwrap_or(UNKNOWN_ADDRESS),
            ("registrations", "new accounts an hour from one address"),
        )
    }

    /// Takes one login attempt from `address`'s allowance (an unknown
    /// address counts as 0.0.0.0), or refuses.
    pub fn check_login_address(&self, address: Option<IpAddr>) -> ApiResult<()> {
        take(
            &self.logins,
            &address.unwrap_or(UNKNOWN_ADDRESS),
            (
                "login_addresses",
                "login attempts a minute from one address",
            ),
        )
    }
}

/// The address a request without a known peer is counted under.
const UNKNOWN_ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// Takes one from `key`'s bucket, or refuses as `what` (see [`refusal`]).
fn take<K: Clone + Eq + std::hash::Hash>(
    (limiter, allowed): &(DefaultKeyedRateLimiter<K>, u32),
    key: &K,
    what: (&'static str, &'static str),
) -> ApiResult<()> {
    limiter
        .check_key(key)
        .map_err(|not_until| refusal(what, *allowed, not_until))
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

/// Forgets idle buckets every minute (see [`UserLimits::forget_idle`]).
pub(crate) async fn tidy_forever(state: crate::state::AppState) {
    while state
        .shutdown
        .pause(std::time::Duration::from_secs(60))
        .await
    {
        state.user_limits.forget_idle();
    }
}

/// The edit and delete windows as the store takes them.
pub(crate) fn windows(limits: &crate::config::Limits) -> hark_store::Windows {
    let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    hark_store::Windows {
        edit_ms: ms(limits.edit_window_secs),
        delete_ms: ms(limits.delete_window_secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_sends_a_burst_then_is_refused_and_buckets_are_forgotten() {
        let limits = Limits {
            sends_per_second: 1,
            send_burst: 3,
            ..Limits::default()
        };
        let user = UserLimits::new(&limits);
        for _ in 0..3 {
            user.check_send(DeviceId(7)).unwrap();
        }
        let refused = user.check_send(DeviceId(7)).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.retry_after_secs, Some(1));
        // Another device has its own bucket.
        user.check_send(DeviceId(8)).unwrap();
        assert_eq!(user.held(), 2);
        // A bucket still refilling is kept.
        user.forget_idle();
        assert_eq!(user.held(), 2);
    }
}
