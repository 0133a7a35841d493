//! When a failed job runs again, and when it is given up.

use crate::jobs::JobFate;

/// Runs a job gets before it is dead: with the backoff below, the last
/// retry comes some 17 minutes after the first failure.
pub const MAX_ATTEMPTS: u32 = 10;

/// The first retry's delay; each later one doubles it.
const FIRST_BACKOFF_MS: i64 = 1_000;

/// No retry waits longer than this.
const MAX_BACKOFF_MS: i64 = 5 * 60 * 1_000;

/// A failure's own "not before" (an HTTP `Retry-After`) is honoured up to
/// this long.
const MAX_NOT_BEFORE_MS: i64 = 60 * 60 * 1_000;

/// What becomes of a job whose run number `attempts` (1 for the first)
/// failed at `now`: retried after an exponential backoff (or at
/// `not_before`, when the failure said so and that is later, up to an
/// hour away), or dead once it has had [`MAX_ATTEMPTS`] runs.
pub fn after_failure(attempts: u32, now: i64, not_before: Option<i64>) -> JobFate {
    if attempts >= MAX_ATTEMPTS {
        return JobFate::Dead;
    }
    let doublings = attempts.saturating_sub(1).min(20);
    let delay = (FIRST_BACKOFF_MS << doublings).min(MAX_BACKOFF_MS);
    let asked = not_before.map_or(now, |at| at.min(now + MAX_NOT_BEFORE_MS));
    JobFate::Retry {
        at: (now + delay).max(asked),
    }
}

/// Whether a node last heard from at `seen_at` is gone at `now`: its
/// connections no longer count as online, and its presence rows are swept.
pub fn node_is_gone(seen_at: i64, now: i64, node_timeout_ms: i64) -> bool {
    seen_at < now - node_timeout_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_then_give_up() {
        assert_eq!(after_failure(1, 0, None), JobFate::Retry { at: 1_000 });
        assert_eq!(after_failure(2, 0, None), JobFate::Retry { at: 2_000 });
        assert_eq!(after_failure(4, 10, None), JobFate::Retry { at: 8_010 });
        assert_eq!(
            after_failure(MAX_ATTEMPTS - 1, 0, None),
            JobFate::Retry { at: 256_000 }
        );
        assert_eq!(after_failure(MAX_ATTEMPTS, 0, None), JobFate::Dead);
        assert_eq!(after_failure(u32::MAX, 0, None), JobFate::Dead);
    }

    #[test]
    fn a_retry_after_is_honoured_when_later_and_within_an_hour() {
        assert_eq!(
            after_failure(1, 0, Some(30_000)),
            JobFate::Retry { at: 30_000 }
        );
        assert_eq!(after_failure(1, 0, Some(500)), JobFate::Retry { at: 1_000 });
        assert_eq!(
            after_failure(1, 0, Some(i64::MAX)),
            JobFate::Retry {
                at: MAX_NOT_BEFORE_MS
            }
        );
    }

    #[test]
    fn a_node_is_gone_only_past_its_timeout() {
        assert!(!node_is_gone(1_000, 16_000, 15_000));
        assert!(node_is_gone(999, 16_000, 15_000));
    }
}
