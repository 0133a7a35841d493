//! The SQLite schema and its migrations, applied in order by `user_version`.

use rusqlite::Connection;

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE devices (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX devices_by_user ON devices(user_id);
CREATE TABLE chats (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    title         TEXT,
    -- "smaller:larger" user ids of a one-to-one chat, so a pair has one chat.
    direct_key    TEXT UNIQUE,
    created_at    INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    last_activity INTEGER NOT NULL
);
-- Member-level receipt watermarks are the maximum over the member's devices.
CREATE TABLE members (
    chat_id         INTEGER NOT NULL REFERENCES chats(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    admin           INTEGER NOT NULL DEFAULT 0,
    -- The chat's last_seq when the member joined: history before it is not theirs.
    joined_seq      INTEGER NOT NULL,
    joined_at       INTEGER NOT NULL,
    delivered_up_to INTEGER NOT NULL DEFAULT 0,
    read_up_to      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id, chat_id);
CREATE TABLE device_receipts (
    chat_id         INTEGER NOT NULL,
    device_id       INTEGER NOT NULL,
    delivered_up_to INTEGER NOT NULL DEFAULT 0,
    read_up_to      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, device_id)
) WITHOUT ROWID;
CREATE TABLE messages (
    chat_id       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    sender_id     INTEGER NOT NULL,
    sender_device INTEGER NOT NULL,
    client_id     TEXT NOT NULL,
    text          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;
-- Idempotency forever: one message per (sending device, client id).
CREATE UNIQUE INDEX messages_by_client_id ON messages(sender_device, client_id);
-- Each user's event stream. Message events point at the message row so a
-- group message's text is stored once; other events carry their JSON.
CREATE TABLE stream_events (
    user_id INTEGER NOT NULL,
    pos     INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    msg_seq INTEGER,
    payload TEXT,
    PRIMARY KEY (user_id, pos)
) WITHOUT ROWID;
"#,
    r#"
-- Presence: privacy settings and the last time a user went offline.
ALTER TABLE users ADD COLUMN last_seen_privacy TEXT NOT NULL DEFAULT 'everyone';
ALTER TABLE users ADD COLUMN online_privacy TEXT NOT NULL DEFAULT 'everyone';
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;
"#,
    r#"
-- Replies, forwards, edits, deletes, reactions, delete-for-me, receipt
-- times, per-user chat settings, and full-text search.
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
CREATE TABLE reactions (
    chat_id    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    emoji      TEXT NOT NULL,
    reacted_at INTEGER NOT NULL,
    PRIMARY KEY (chat_id, seq, user_id)
) WITHOUT ROWID;
CREATE TABLE hidden_messages (
    user_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, chat_id, seq)
) WITHOUT ROWID;
-- One row per rise of a member's watermark: when messages up to `up_to`
-- were delivered to / read by them.
CREATE TABLE receipt_log (
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('delivered', 'read')),
    up_to   INTEGER NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX receipt_log_by_member ON receipt_log(chat_id, user_id, kind, up_to);
ALTER TABLE members ADD COLUMN muted_until INTEGER;
ALTER TABLE members ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN pinned_at INTEGER;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    text, chat_id UNINDEXED, seq UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_fts (rowid, text, chat_id, seq)
    SELECT (chat_id << 32) | seq, text, chat_id, seq FROM messages;
"#,
    r#"
-- Search index rows in commit order, so newest-first search walks the index
-- backwards and stops early; each message remembers its row.
ALTER TABLE messages ADD COLUMN fts_rowid INTEGER;
CREATE TEMP TABLE fts_order AS
    SELECT chat_id, seq, text,
           ROW_NUMBER() OVER (ORDER BY sent_at, chat_id, seq) AS rid
    FROM messages WHERE deleted_at IS NULL;
CREATE INDEX temp.fts_order_by_message ON fts_order(chat_id, seq);
DELETE FROM messages_fts;
INSERT INTO messages_fts (rowid, text, chat_id, seq) SELECT rid, text, chat_id, seq FROM fts_order;
UPDATE messages SET fts_rowid =
    (SELECT rid FROM fts_order o WHERE o.chat_id = messages.chat_id AND o.seq = messages.seq);
DROP TABLE fts_order;
"#,
    r#"
-- Receipt times: one row per watermark a member's receipts rose to, holding
-- when it was first delivered and first read. A send's implied read (both
-- watermarks rise to the same seq) is one row instead of two log rows and
-- their index entries (docs/benchmarks.md, fourth pass).
CREATE TABLE receipt_times (
    chat_id      INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    up_to        INTEGER NOT NULL,
    delivered_at INTEGER,
    read_at      INTEGER,
    PRIMARY KEY (chat_id, user_id, up_to)
) WITHOUT ROWID;
INSERT INTO receipt_times (chat_id, user_id, up_to, delivered_at, read_at)
    SELECT chat_id, user_id, up_to,
           MIN(CASE WHEN kind = 'delivered' THEN at END),
           MIN(CASE WHEN kind = 'read' THEN at END)
    FROM receipt_log GROUP BY chat_id, user_id, up_to;
DROP TABLE receipt_log;
"#,
    r#"
-- Erasure (delete for everyone, the text an edit replaces). FTS5 deletes
-- only add a tombstone and keep the words in their old segment until a
-- merge; secure-delete removes them from the segment at once. The rebuild
-- drops the segments that still hold words deleted before this version.
INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
-- Stored edits point at their message and keep no text of their own: sync
-- serves the text the message has now (see WriteCtx::push_edit).
UPDATE stream_events
   SET msg_seq = json_extract(payload, '$.seq'),
       payload = json_set(payload, '$.text', '')
 WHERE payload IS NOT NULL AND json_extract(payload, '$.kind') = 'message_edited';
"#,
    r#"
-- Which node holds connections of which user (one node here, but the same
-- rules as a cluster), each node's heartbeat, and the job queue.
CREATE TABLE presence (
    user_id INTEGER NOT NULL REFERENCES users(id),
    node_id TEXT NOT NULL,
    session INTEGER NOT NULL,
    since   INTEGER NOT NULL,
    PRIMARY KEY (user_id, node_id)
) WITHOUT ROWID;
CREATE INDEX presence_by_node ON presence(node_id);
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    -- Not run before; a claim moves it to the lease's end.
    run_at     INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    state      TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'dead')),
    claimed_by TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs(run_at, id) WHERE state = 'ready';
"#,
    r#"
-- Group event lines in history (crate::lines): a reader's membership and
-- title events of one chat, found without scanning their whole stream. Only
-- those rare rows are indexed; a message row (msg_seq set) fails the
-- condition at its first term, so sends pay next to nothing for it.
CREATE INDEX stream_lines ON stream_events(user_id, chat_id, pos)
 WHERE msg_seq IS NULL
   AND json_extract(payload, '$.kind') IN
       ('chat_created', 'chat_renamed', 'member_added', 'member_removed', 'admin_changed');
"#,
    r#"
-- Per-device receipt watermarks were written on every send and mark and
-- never read: a member's watermarks are the highest any of their devices
-- reported, kept in members.
DROP TABLE device_receipts;
"#,
    r#"
-- Media (crate::media): uploaded files, and the one a message carries: its
-- id (who may download it) and its reference as the message shows it (JSON).
CREATE TABLE media (
    id          TEXT PRIMARY KEY,
    uploader    INTEGER NOT NULL REFERENCES users(id),
    kind        TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    name        TEXT,
    width       INTEGER,
    height      INTEGER,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX media_by_uploader ON media(uploader, created_at);
ALTER TABLE messages ADD COLUMN media_id TEXT;
ALTER TABLE messages ADD COLUMN media TEXT;
CREATE INDEX messages_by_media ON messages(media_id) WHERE media_id IS NOT NULL;
"#,
    r#"
-- An image's thumbnail (crate::media::thumbnail), JSON: mime, width,
-- height, size. Its bytes are the media store's `thumbs/<id>`.
ALTER TABLE media ADD COLUMN thumbnail TEXT;
"#,
    r#"
-- How long an audio or video file plays (crate::media::duration), ms.
ALTER TABLE media ADD COLUMN duration_ms INTEGER;
"#,
    r#"
-- Resumable uploads (crate::media::resumable): a file sent in pieces, each
-- stored as `incoming/<id>/<part>` when it arrives; `parts` names them in
-- order (comma-separated), `received` is the bytes they hold. A direct
-- upload's one object is `incoming/<id>/file`, put by the client, with the
-- `sha256` it declared (hex) when it did. Removed with their pieces once
-- `expires_at` passes.
CREATE TABLE media_uploads (
    id          TEXT PRIMARY KEY,
    uploader    INTEGER NOT NULL REFERENCES users(id),
    kind        TEXT NOT NULL,
    name        TEXT,
    size        INTEGER NOT NULL,
    received    INTEGER NOT NULL,
    parts       TEXT NOT NULL,
    media_id    TEXT,
    direct      INTEGER NOT NULL,
    sha256      TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX media_uploads_by_uploader ON media_uploads(uploader);
CREATE INDEX media_uploads_by_expiry ON media_uploads(expires_at);
"#,
    r#"
-- Push notifications (crate::push): each device's subscriptions (a
-- browser's push service with its keys, or a webhook with its secret), at
-- most one per endpoint; the users' preview setting; the server's own keys
-- (the VAPID key pair, which every node signs with); and jobs that collapse:
-- `dedupe` is a push job's key (user, chat, kind), `touched` says a commit
-- wanted it again since it was claimed.
CREATE TABLE push_subscriptions (
    id         TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    device_id  INTEGER NOT NULL REFERENCES devices(id),
    kind       TEXT NOT NULL CHECK (kind IN ('web_push', 'webhook')),
    endpoint   TEXT NOT NULL,
    p256dh     TEXT,
    auth       TEXT,
    secret     TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (device_id, endpoint)
) WITHOUT ROWID;
CREATE INDEX push_subscriptions_by_user ON push_subscriptions(user_id);
ALTER TABLE users ADD COLUMN notify_previews TEXT NOT NULL DEFAULT 'full';
CREATE TABLE server_keys (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE jobs ADD COLUMN dedupe TEXT;
ALTER TABLE jobs ADD COLUMN touched INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX jobs_dedupe ON jobs(dedupe);
"#,
    r#"
-- Server administration (crate::admin): who runs the server ('admin' or
-- 'user'; the first user registered is an admin) and disabled accounts,
-- whose tokens are refused until an admin enables them again.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'));
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
UPDATE users SET role = 'admin' WHERE id = (SELECT MIN(id) FROM users);
"#,
    r#"
-- End-to-end encryption (crate::e2e): each device's published identity
-- (`identity`: its Ed25519 and Curve25519 keys, which never change; `keys`:
-- the signed device keys, JSON), its one-time keys (each handed out once)
-- and fallback keys (one per algorithm, `used` once handed out), its inbox
-- of to-device messages (ids never reused: an acknowledgement removes up
-- to an id), and the transaction ids of its sends, so a retried send is
-- stored once. A logged-out device's rows are removed with it.
CREATE TABLE e2e_devices (
    device_id  INTEGER PRIMARY KEY REFERENCES devices(id),
    user_id    INTEGER NOT NULL REFERENCES users(id),
    identity   TEXT NOT NULL,
    keys       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX e2e_devices_by_user ON e2e_devices(user_id);
CREATE TABLE e2e_one_time_keys (
    device_id INTEGER NOT NULL REFERENCES devices(id),
    key_id    TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key       TEXT NOT NULL,
    PRIMARY KEY (device_id, key_id)
);
CREATE INDEX e2e_one_time_keys_by_algorithm ON e2e_one_time_keys(device_id, algorithm, key_id);
CREATE TABLE e2e_fallback_keys (
    device_id INTEGER NOT NULL REFERENCES devices(id),
    algorithm TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    used      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, algorithm)
);
CREATE TABLE e2e_inbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id     INTEGER NOT NULL REFERENCES devices(id),
    sender_id     INTEGER NOT NULL,
    sender_device INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    content       TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX e2e_inbox_by_device ON e2e_inbox(device_id, id);
CREATE TABLE e2e_txns (
    device_id  INTEGER NOT NULL,
    txn_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, txn_id)
);
"#,
    r#"
-- End-to-end encrypted chats (docs/protocol.md, "Encrypted chats"):
-- decided when the chat is made; their messages keep only the ciphertext
-- content (`encrypted`, JSON), with an empty text.
ALTER TABLE chats ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN encrypted TEXT;
"#,
    r#"
-- The audit log (crate::audit, docs/operations.md "Audit log"): security
-- events, append-only. Each row's hash chains it to the row before
-- (hark_proto::chain_hash); `audit_chain` is the one row that says where
-- the chain starts (what retention removed, and the hash it ended on) and
-- ends (no row: nothing written yet). Appends are serialised (the single
-- writer; on PostgreSQL an advisory lock), so ids stay gapless.
CREATE TABLE audit (
    id            INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    action        TEXT NOT NULL,
    actor_id      INTEGER,
    actor_device  INTEGER,
    target_user   INTEGER,
    target_device INTEGER,
    chat_id       INTEGER,
    address       TEXT,
    detail        TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_by_at ON audit(at);
CREATE INDEX audit_by_actor ON audit(actor_id, id);
CREATE INDEX audit_by_target ON audit(target_user, id);
CREATE TABLE audit_chain (
    one            INTEGER PRIMARY KEY CHECK (one = 1),
    pruned_through INTEGER NOT NULL,
    pruned_hash    TEXT NOT NULL,
    last_id        INTEGER NOT NULL,
    last_hash      TEXT NOT NULL
);
"#,
    r#"
-- Disappearing messages and retention (docs/protocol.md "Disappearing
-- messages"): a chat's timer (0: off), each message's expiry (set when it
-- is sent while the timer is on), and how far the server's retention has
-- swept the chat (every message at or below `retention_seq` is gone).
-- The partial index holds only messages still waiting to disappear.
ALTER TABLE chats ADD COLUMN disappearing_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN retention_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN expires_at INTEGER;
CREATE INDEX messages_by_expiry ON messages(expires_at)
    WHERE expires_at IS NOT NULL AND deleted_at IS NULL;
-- History shows a timer's change among the messages, as it does a rename:
-- the partial index of line events names the new kind too (see
-- hark_store::lines::LINE_KINDS).
DROP INDEX stream_lines;
CREATE INDEX stream_lines ON stream_events(user_id, chat_id, pos)
 WHERE msg_seq IS NULL
   AND json_extract(payload, '$.kind') IN
       ('chat_created', 'chat_renamed', 'member_added', 'member_removed', 'admin_changed',
        'disappearing_changed');
"#,
    r#"
-- Devices' last use and idle logout (docs/protocol.md "Devices"): when the
-- device last used its token, recorded at most once an hour; a device idle
-- past `devices.idle_days` is revoked with the reason 'idle', and its token
-- then answers `token_expired`. Devices from before this version count as
-- used now, so that an upgrade logs nobody out.
ALTER TABLE devices ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN revoked_reason TEXT;
UPDATE devices SET last_used_at = MAX(created_at, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
CREATE INDEX devices_by_last_use ON devices(last_used_at) WHERE revoked_at IS NULL;
"#,
    r#"
-- Your account (docs/protocol.md "Your account"): each user's contacts
-- (their own address book; the other is not told), who blocked whom, and
-- two-factor authentication (TOTP): the confirmed secret, one waiting for
-- its first code, the last 30-second step a code was used for (each
-- works once), and the hashes of unused recovery codes. A one-to-one
-- chat between two users of whom one blocks the other is marked
-- `blocked`, so a send reads it with the chat's other facts.
CREATE TABLE contacts (
    owner_id   INTEGER NOT NULL REFERENCES users(id),
    contact_id INTEGER NOT NULL REFERENCES users(id),
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (owner_id, contact_id)
);
CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL REFERENCES users(id),
    blocked_id INTEGER NOT NULL REFERENCES users(id),
    blocked_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_by_blocked ON blocks(blocked_id, blocker_id);
ALTER TABLE chats ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
-- When the account was deleted by its owner (docs/protocol.md "Deleting
-- your account"): its row stays, emptied, for the chats that name it.
ALTER TABLE users ADD COLUMN deleted_at INTEGER;
CREATE TABLE recovery_codes (
    user_id   INTEGER NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
-- Single sign-on (docs/protocol.md "Single sign-on"): which account each
-- identity of an OpenID provider (its issuer and the user's `sub` there)
-- signs in to, and the one-time tickets a finished sign-in hands to the
-- client (hashed, a minute or two each).
CREATE TABLE sso_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE TABLE sso_tickets (
    ticket_hash TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    expires_at  INTEGER NOT NULL
);
"#,
    r#"
-- Profiles and data exports (docs/protocol.md "Profile" and "Exporting
-- your data"): each user's about line, their photo's version (its images
-- are `photos/<version>/small` and `/large` in the media store) and who
-- sees each; and each export of a user's data, whose archive is
-- `exports/<id>.zip` in the media store once ready.
ALTER TABLE users ADD COLUMN about TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN about_privacy TEXT NOT NULL DEFAULT 'everyone';
ALTER TABLE users ADD COLUMN photo TEXT;
ALTER TABLE users ADD COLUMN photo_privacy TEXT NOT NULL DEFAULT 'everyone';
CREATE TABLE exports (
    id           TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    status       TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    finished_at  INTEGER,
    size         INTEGER,
    expires_at   INTEGER
);
CREATE INDEX exports_by_user ON exports(user_id, requested_at);
-- Approving new devices (docs/protocol.md "Approving new devices"):
-- whether a user's new logins wait for approval from one of their
-- devices, and which devices wait. Whether a user has a second factor
-- is read with every token check (two-factor on, or a provider identity).
ALTER TABLE users ADD COLUMN device_approval INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sso_identities_by_user ON sso_identities(user_id);
"#,
    r#"
-- Bots (docs/protocol.md "Bots"): a bot is a user made by a person (its
-- owner); it signs in only with tokens its owner makes, each a device whose
-- `scopes` lists the actions it may take (comma-separated; null for a
-- person's device, which may do everything) and `scope_chats` the chats it
-- may touch (null: every chat the bot is in).
ALTER TABLE users ADD COLUMN bot_owner INTEGER REFERENCES users(id);
CREATE INDEX users_by_bot_owner ON users(bot_owner) WHERE bot_owner IS NOT NULL;
ALTER TABLE devices ADD COLUMN scopes TEXT;
ALTER TABLE devices ADD COLUMN scope_chats TEXT;
-- Webhooks (docs/protocol.md "Webhooks"): each follows one user's event
-- stream (a bot's; or, for a chat's webhook, the person's who made it,
-- then only that chat) from `cursor`, the last position handled; the
-- newest calls of each are kept in its log.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    chat_id    INTEGER REFERENCES chats(id),
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT NOT NULL,
    created_by INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    cursor     INTEGER NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0,
    disabled   TEXT
);
CREATE INDEX webhooks_by_user ON webhooks(user_id);
CREATE INDEX webhooks_by_chat ON webhooks(chat_id) WHERE chat_id IS NOT NULL;
CREATE TABLE webhook_deliveries (
    webhook_id   TEXT NOT NULL REFERENCES webhooks(id),
    n            INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    attempted_at INTEGER NOT NULL,
    status       INTEGER,
    delivered    INTEGER NOT NULL,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, n)
);
-- The export outbox (docs/integrations.md "Exporting events"): with an
-- exporter configured, each commit writes its chat events here once, in
-- its own transaction; exporters claim rows with a lease and delete them
-- once the broker confirmed. `id` is random: what consumers de-duplicate by.
CREATE TABLE event_exports (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL,
    chat_id      INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    event        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    leased_until INTEGER NOT NULL DEFAULT 0,
    leased_by    TEXT
);
"#,
    r#"
-- Search entries waiting for the index: written in the commit that makes
-- the message, moved into messages_fts in batches (search::flush), so a
-- small commit does not also write FTS5's pages (7 of a one-message
-- commit's 14.6, docs/benchmarks.md). A search moves them first.
CREATE TABLE search_pending (
    fts_rowid INTEGER PRIMARY KEY,
    chat_id   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    text      TEXT NOT NULL
);
"#,
    r#"
-- Stream rows the writer appended lately: written in the commit that makes
-- the event, moved into stream_events in steps of whole users
-- (stream::Backlog), so a commit writes a few pages of this small table
-- instead of a leaf page of stream_events per recipient (a 1,024-member
-- group's message: 1,024 pages, docs/benchmarks.md). For every user, each
-- position here is above every position of theirs in stream_events.
CREATE TABLE stream_recent (
    user_id INTEGER NOT NULL,
    pos     INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    msg_seq INTEGER,
    payload TEXT,
    PRIMARY KEY (user_id, pos)
) WITHOUT ROWID;
"#,
    r#"
-- Whether a message may have reactions: set by its first reaction, never
-- cleared (a message whose reactions are gone reads an empty list). A
-- reader reads a message's reactions only when it is set, instead of
-- probing `reactions` for every message it reads (docs/benchmarks.md,
-- "Catch-up reads without per-row probes").
ALTER TABLE messages ADD COLUMN reacted INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET reacted = 1 WHERE (chat_id, seq) IN (SELECT chat_id, seq FROM reactions);
"#,
];

/// Opens the pragmas every connection needs.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL lets readers run beside the one writer; synchronous=FULL fsyncs the
    // WAL on every commit, which is what "acked means durable" requires.
    // (The store's writer turns it to NORMAL and fsyncs the WAL on a thread
    // of its own before answering: `syncer`.)
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten, not left in free pages: "delete for
    // everyone" must remove it from the store.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Savepoint journals and sort spills stay in memory: a file sub-journal
    // cost a write syscall per page per job (docs/benchmarks.md, fourth pass).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// The schema version this build brings a database to.
pub(crate) fn latest() -> usize {
    MIGRATIONS.len()
}

/// Brings the database to the newest schema version.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn receipt_log_rows_become_receipt_times() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute_batch(
            "INSERT INTO receipt_log (chat_id, user_id, kind, up_to, at) VALUES
                (1, 2, 'delivered', 5, 100), (1, 2, 'read', 5, 130),
                (1, 2, 'delivered', 9, 200), (1, 3, 'read', 4, 300),
                (1, 3, 'delivered', 4, 290)",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(i64, i64, Option<i64>, Option<i64>)> = conn
            .prepare(
                "SELECT user_id, up_to, delivered_at, read_at FROM receipt_times ORDER BY user_id, up_to",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (2, 5, Some(100), Some(130)),
                (2, 9, Some(200), None),
                (3, 4, Some(290), Some(300)),
            ]
        );
        let old: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'receipt_log'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 0);
    }

    #[test]
    fn stored_edits_lose_their_text_and_point_at_their_message() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(
            r#"INSERT INTO stream_events (user_id, pos, chat_id, msg_seq, payload) VALUES
                (1, 1, 7, 3, NULL),
                (1, 2, 7, NULL, '{"kind":"message_edited","chat_id":7,"seq":3,"text":"old words","edited_at":5}'),
                (1, 3, 7, NULL, '{"kind":"chat_renamed","chat_id":7,"title":"t","by":1}')"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(Option<i64>, Option<String>)> = conn
            .prepare(
                "SELECT msg_seq, json_extract(payload, '$.text') FROM stream_events ORDER BY pos",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (Some(3), None),
                (Some(3), Some(String::new())),
                (None, None)
            ]
        );
    }

    #[test]
    fn devices_from_before_last_use_count_as_used_at_the_upgrade() {
        let mut conn = Connection::open_in_memory().unwrap();
        // The schema just before the migration that added `last_used_at`.
        let before = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("ADD COLUMN last_used_at"))
            .unwrap();
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, display_name, password_hash, created_at)
                 VALUES (1, 'ann', 'Ann', 'x', 5);
             INSERT INTO devices (user_id, name, token_hash, created_at) VALUES (1, 'old', x'01', 5);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (used, reason): (i64, Option<String>) = conn
            .query_row(
                "SELECT last_used_at, revoked_reason FROM devices",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(used > crate::clock_ms() - 60_000, "{used}");
        assert_eq!(reason, None);
    }

    #[test]
    fn messages_with_reactions_before_the_flag_are_flagged_at_the_upgrade() {
        let mut conn = Connection::open_in_memory().unwrap();
        let before = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("ADD COLUMN reacted"))
            .unwrap();
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before).unwrap();
        conn.execute_batch(
            "INSERT INTO messages (chat_id, seq, sender_id, sender_device, client_id, text, sent_at)
                 VALUES (1, 1, 1, 1, 'a', 'x', 5), (1, 2, 1, 1, 'b', 'x', 5),
                        (2, 1, 1, 1, 'c', 'x', 5), (2, 2, 1, 1, 'd', 'x', 5);
             INSERT INTO reactions (chat_id, seq, user_id, emoji, reacted_at)
                 VALUES (1, 2, 1, 'x', 6), (1, 2, 2, 'y', 7), (2, 1, 2, 'z', 8);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let flagged: Vec<(i64, i64)> = conn
            .prepare("SELECT chat_id, seq FROM messages WHERE reacted ORDER BY chat_id, seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(flagged, [(1, 2), (2, 1)]);
    }
}
