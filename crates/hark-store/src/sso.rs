//! Single sign-on's storage, once for both backends: which account each
//! provider identity (issuer and `sub`) signs in to, and the one-time
//! tickets a finished sign-in hands to its client. The queries are written
//! in the SQL both databases read, with `$n` parameters in the order they
//! first appear.

/// `$1` the issuer, `$2` the subject: `user_id`.
pub(crate) const IDENTITY: &str =
    "SELECT user_id FROM sso_identities WHERE issuer = $1 AND subject = $2";

/// `$1` the issuer, `$2` the subject, `$3` the user, `$4` when (ms).
pub(crate) const LINK: &str =
    "INSERT INTO sso_identities (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4)";

/// `$1` the ticket's hash, `$2` the user, `$3` when it expires (ms).
pub(crate) const ADD_TICKET: &str =
    "INSERT INTO sso_tickets (ticket_hash, user_id, expires_at) VALUES ($1, $2, $3)";

/// `$1` the ticket's hash: taken (once): `user_id, expires_at`.
pub(crate) const TAKE_TICKET: &str =
    "DELETE FROM sso_tickets WHERE ticket_hash = $1 RETURNING user_id, expires_at";

/// `$1` now (ms): tickets past their time, never taken, forgotten.
pub(crate) const PRUNE_TICKETS: &str = "DELETE FROM sso_tickets WHERE expires_at < $1";

/// Whether a ticket taken at `now` with this expiry still counts.
pub(crate) fn ticket_valid(expires_at: i64, now: i64) -> bool {
    now <= expires_at
}
