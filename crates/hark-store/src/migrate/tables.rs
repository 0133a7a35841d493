//! What `hark migrate` copies: the tables, in foreign-key order, each with
//! its primary key and what differs between its SQLite and PostgreSQL forms.
//!
//! Columns are not listed: they are read from both schemas when a run
//! starts and matched by name, so a column added to both schemas is copied
//! without a change here. A column only one side has is an error unless a
//! table entry says what becomes of it, so nothing is dropped silently.

/// One table to copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table {
    /// The PostgreSQL table (and the SQLite one, unless `source` is set).
    pub(crate) name: &'static str,
    /// Its primary key: rows are copied in this order, and a run resumes
    /// after the last key it committed.
    pub(crate) key: &'static [&'static str],
    /// A SQLite query giving the rows, for a table SQLite does not keep.
    pub(crate) source: Option<&'static str>,
    /// PostgreSQL columns read from a SQLite expression rather than the
    /// column of the same name.
    pub(crate) from: &'static [(&'static str, &'static str)],
    /// PostgreSQL columns computed from the copied ones (SQL over the
    /// PostgreSQL column names); not compared, they are derived.
    pub(crate) derived: &'static [(&'static str, &'static str)],
    /// SQLite columns deliberately not copied as such (used by `from`).
    pub(crate) left_behind: &'static [&'static str],
    /// Sequences that are not a column's identity, advanced past the
    /// highest value of a column after the copy.
    pub(crate) sequences: &'static [(&'static str, &'static str)],
}

/// A table copied as it is, column for column.
const fn table(name: &'static str, key: &'static [&'static str]) -> Table {
    Table {
        name,
        key,
        source: None,
        from: &[],
        derived: &[],
        left_behind: &[],
        sequences: &[],
    }
}

/// Each user's stream head. PostgreSQL keeps it in a row (whose lock hands
/// out positions); SQLite reads it as the stream's highest position.
const STREAM_HEADS: &str = "SELECT u.id AS user_id,
        COALESCE((SELECT MAX(e.pos) FROM stream_events e WHERE e.user_id = u.id), 0) AS head
    FROM users u";

/// Every table copied, parents before the tables that refer to them.
/// Adding a table is one line here (and one in `NOT_COPIED` for a table
/// that must not be copied).
pub(crate) const TABLES: &[Table] = &[
    table("users", &["id"]),
    Table {
        source: Some(STREAM_HEADS),
        ..table("streams", &["user_id"])
    },
    table("devices", &["id"]),
    // Each user's contacts, blocks and two-factor recovery codes (the
    // TOTP secret and its last used step are columns of `users`).
    table("contacts", &["owner_id", "contact_id"]),
    table("blocks", &["blocker_id", "blocked_id"]),
    table("recovery_codes", &["user_id", "code_hash"]),
    // Which provider identity signs in to which account.
    table("sso_identities", &["issuer", "subject"]),
    // Data exports (their archives stay in the media store).
    table("exports", &["id"]),
    table("chats", &["id"]),
    table("members", &["chat_id", "user_id"]),
    // Webhooks, with their cursors and delivery logs.
    table("webhooks", &["id"]),
    table("webhook_deliveries", &["webhook_id", "n"]),
    // Uploaded files' rows (their bytes stay in the media store).
    table("media", &["id"]),
    // SQLite's FTS5 index becomes a tsvector written with the row (empty
    // once deleted); the index row order, which is search's "newest
    // first", becomes `search_order`. SQLite's `reacted` flag (whether a
    // message may have reactions) stays behind: PostgreSQL asks `reactions`.
    Table {
        from: &[("search_order", "COALESCE(fts_rowid, 0)")],
        derived: &[(
            "search",
            "CASE WHEN deleted_at IS NULL THEN hark_search_vector(text) END",
        )],
        left_behind: &["fts_rowid", "reacted"],
        sequences: &[("messages_search_order", "search_order")],
        ..table("messages", &["chat_id", "seq"])
    },
    table("stream_events", &["user_id", "pos"]),
    table("reactions", &["chat_id", "seq", "user_id"]),
    table("hidden_messages", &["user_id", "chat_id", "seq"]),
    table("receipt_times", &["chat_id", "user_id", "up_to"]),
    // Jobs not yet run (or dead, kept for an operator) carry over, and
    // events not yet exported.
    table("jobs", &["id"]),
    table("event_exports", &["seq"]),
    // Devices' push subscriptions, and the server's keys: the VAPID key
    // pair the subscriptions were made for must come along, or every
    // browser subscription would stop working.
    table("push_subscriptions", &["id"]),
    table("server_keys", &["name"]),
    // End-to-end encryption: devices' published keys, the one-time and
    // fallback keys not handed out yet, to-device messages not yet
    // acknowledged, and recent transaction ids (a retried send after the
    // move must still be stored once).
    table("e2e_devices", &["device_id"]),
    table("e2e_one_time_keys", &["device_id", "key_id"]),
    table("e2e_fallback_keys", &["device_id", "algorithm"]),
    table("e2e_inbox", &["id"]),
    table("e2e_txns", &["device_id", "txn_id"]),
    // The audit log keeps its ids and hashes, so its chain verifies as before.
    table("audit", &["id"]),
    table("audit_chain", &["one"]),
];

/// SQLite tables that are not copied, and why. Any other table missing
/// from [`TABLES`] stops a run, so a new table is never left behind unseen.
pub(crate) const NOT_COPIED: &[(&str, &str)] = &[
    ("messages_fts", "search is rebuilt as messages.search"),
    ("messages_fts_data", "FTS5 index storage"),
    ("messages_fts_idx", "FTS5 index storage"),
    ("messages_fts_content", "FTS5 index storage"),
    ("messages_fts_docsize", "FTS5 index storage"),
    ("messages_fts_config", "FTS5 index storage"),
    (
        "search_pending",
        "search entries waiting for the FTS5 index; PostgreSQL indexes messages.search itself",
    ),
    (
        "stream_recent",
        "stream rows waiting to move into stream_events, which a clean shutdown moves \
         (the migration refuses a database where some still wait)",
    ),
    ("presence", "ephemeral: rebuilt by the nodes that run"),
    (
        "sso_tickets",
        "one-time sign-in tickets of a minute or two: a client signs in again",
    ),
    ("nodes", "ephemeral: each node registers itself"),
    (
        "media_uploads",
        "uploads in progress: their pieces are not copied, clients start them again",
    ),
];

/// PostgreSQL tables that may hold rows in a target `hark migrate` starts
/// on: its own bookkeeping, and the ephemeral tables nodes fill.
pub(crate) const TARGET_BOOKKEEPING: &[&str] =
    &["schema_migrations", "migrate_progress", "presence", "nodes"];
