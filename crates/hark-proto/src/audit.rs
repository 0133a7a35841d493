//! The audit log (`/v1/admin/audit`): security-relevant events, each row
//! chained to the one before by a SHA-256 hash, so a changed, removed or
//! inserted row shows. docs/protocol.md "Audit log" is the contract; the
//! server and `hark admin audit verify` both hash with [`chain_hash`].

use crate::{ChatId, DeviceId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The hash before the first row ever written: 64 zeros.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every action the server writes (docs/protocol.md "The audit log").
pub const AUDIT_ACTIONS: &[&str] = &[
    "register",
    "login",
    "login_failed",
    "logout",
    "device_revoked",
    "device_approved",
    "device_expired",
    "password_changed",
    "two_factor_enabled",
    "two_factor_disabled",
    "recovery_code_used",
    "user_blocked",
    "user_unblocked",
    "account_deleted",
    "data_exported",
    "group_created",
    "member_added",
    "member_removed",
    "member_left",
    "member_made_admin",
    "member_admin_removed",
    "message_deleted_for_everyone",
    "admin_disable_user",
    "admin_enable_user",
    "admin_grant_admin",
    "admin_revoke_admin",
    "admin_reset_password",
    "admin_revoke_device",
    "bot_created",
    "bot_deleted",
    "bot_token_created",
    "bot_token_revoked",
    "webhook_created",
    "webhook_deleted",
];

/// One event of the audit log. Never carries message content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// 1, 2, 3, …: gapless from the first row kept.
    pub id: i64,
    /// When, in ms since the epoch.
    pub at: i64,
    /// What happened (`login`, `login_failed`, `device_revoked`, …; the
    /// list is in docs/protocol.md).
    pub action: String,
    /// Who did it (none for a failed login of an unknown user).
    pub actor: Option<UserId>,
    /// With which device.
    pub actor_device: Option<DeviceId>,
    /// The user it was done to.
    pub target_user: Option<UserId>,
    /// The device it was done to.
    pub target_device: Option<DeviceId>,
    /// The chat it was done in.
    pub chat: Option<ChatId>,
    /// The client's address: the TCP peer, or the client a trusted proxy
    /// names in `X-Forwarded-For`.
    pub address: Option<String>,
    /// More about it: string values only (a role, a username tried, a seq).
    pub detail: BTreeMap<String, String>,
    /// SHA-256 (hex) of the previous row's hash and this row: [`chain_hash`].
    pub hash: String,
}

impl AuditEntry {
    /// This row's hash, given the previous row's.
    pub fn expected_hash(&self, previous: &str) -> String {
        chain_hash(previous, self)
    }
}

/// The hash of `entry` chained to `previous` (hex): SHA-256 over the UTF-8
/// lines `hark-audit-v1`, `previous`, then `id`, `at`, `action`, `actor`,
/// `actor_device`, `target_user`, `target_device`, `chat`, `address`
/// (absent ones as empty lines) and `detail` as compact JSON with its keys
/// in order, joined by `\n`. The entry's own `hash` is not part of it.
pub fn chain_hash(previous: &str, entry: &AuditEntry) -> String {
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }
    let detail = serde_json::to_string(&entry.detail).unwrap_or_default();
    let text = [
        "hark-audit-v1".to_owned(),
        previous.to_owned(),
        entry.id.to_string(),
        entry.at.to_string(),
        entry.action.clone(),
        opt(entry.actor.map(|u| u.0)),
        opt(entry.actor_device.map(|d| d.0)),
        opt(entry.target_user.map(|u| u.0)),
        opt(entry.target_device.map(|d| d.0)),
        opt(entry.chat.map(|c| c.0)),
        entry.address.clone().unwrap_or_default(),
        detail,
    ]
    .join("\n");
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /v1/admin/audit`: one page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The cursor of the next page (`before` when newest first, `after`
    /// when oldest first); `None` on the last.
    pub next: Option<i64>,
}

/// `GET /v1/admin/audit/chain`: where the chain starts and ends, to check
/// a full read of the log against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditChain {
    /// Rows up to this id were removed by retention (0: none).
    pub pruned_through: i64,
    /// The hash of row `pruned_through` ([`AUDIT_GENESIS`] when 0): the
    /// `previous` of the first row kept.
    pub pruned_hash: String,
    /// The newest row's id (0: none yet).
    pub last_id: i64,
    /// The newest row's hash.
    pub last_hash: String,
}

/// What is wrong with a run of rows read in id order, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditBreak {
    /// Row `id` came where `expected` was due: one was removed or inserted.
    Gap { expected: i64, id: i64 },
    /// Row `id`'s hash is not its content's: it, or one before it, changed.
    Hash { id: i64 },
    /// The rows end at `last`, but the chain's end says `expected`.
    End { expected: i64, last: i64 },
    /// The last row's hash is not the one the chain's end names.
    EndHash,
}

impl std::fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditBreak::Gap { expected, id } => {
                write!(f, "row {expected} is missing (row {id} came in its place)")
            }
            AuditBreak::Hash { id } => write!(f, "row {id} does not match its hash"),
            AuditBreak::End { expected, last } => {
                write!(
                    f,
                    "the log ends at row {last}, but its head says {expected}"
                )
            }
            AuditBreak::EndHash => write!(f, "the newest row's hash is not the head's"),
        }
    }
}

/// Checks rows in id order, continuing a chain: `previous` is the hash the
/// first row builds on and `next_id` its id. Returns the last hash and the
/// id after the last row, to feed to the next call (so a client checks a
/// long log page by page).
pub fn verify_run(
    previous: &str,
    next_id: i64,
    rows: &[AuditEntry],
) -> Result<(String, i64), AuditBreak> {
    let mut previous = previous.to_owned();
    let mut next_id = next_id;
    for row in rows {
        if row.id != next_id {
            return Err(AuditBreak::Gap {
                expected: next_id,
                id: row.id,
            });
        }
        if row.hash != chain_hash(&previous, row) {
            return Err(AuditBreak::Hash { id: row.id });
        }
        previous.clone_from(&row.hash);
        next_id += 1;
    }
    Ok((previous, next_id))
}

/// Checks where a whole read ended against the chain's head.
pub fn verify_end(chain: &AuditChain, last_hash: &str, next_id: i64) -> Result<(), AuditBreak> {
    if next_id - 1 != chain.last_id {
        return Err(AuditBreak::End {
            expected: chain.last_id,
            last: next_id - 1,
        });
    }
    if last_hash != chain.last_hash {
        return Err(AuditBreak::EndHash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, previous: &str) -> AuditEntry {
        let mut e = AuditEntry {
            id,
            at: 1_700_000_000_000 + id,
            action: "login".into(),
            actor: Some(UserId(7)),
            actor_device: Some(DeviceId(9)),
            target_user: None,
            target_device: None,
            chat: None,
            address: Some("192.0.2.1".into()),
            detail: BTreeMap::from([("device_name".into(), "phone".into())]),
            hash: String::new(),
        };
        e.hash = chain_hash(previous, &e);
        e
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut rows = Vec::new();
        let mut previous = AUDIT_GENESIS.to_owned();
        for id in 1..=n {
            let e = entry(id, &previous);
            previous.clone_from(&e.hash);
            rows.push(e);
        }
        rows
    }

    #[test]
    fn the_hash_is_fixed_by_the_documented_text() {
        // docs/protocol.md gives this row and its hash as the worked example.
        let e = entry(1, AUDIT_GENESIS);
        let text = format!(
            "hark-audit-v1\n{AUDIT_GENESIS}\n1\n1700000000001\nlogin\n7\n9\n\n\n\n192.0.2.1\n{{\"device_name\":\"phone\"}}"
        );
        let want: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(e.hash, want);
        assert_eq!(
            e.hash,
            "85c587b5a12ec0b3d38c6dd70d0f33a50309068923a749414cd9192ed67b42fc"
        );
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        let (last, next) = verify_run(AUDIT_GENESIS, 1, &rows).unwrap();
        let head = AuditChain {
            pruned_through: 0,
            pruned_hash: AUDIT_GENESIS.into(),
            last_id: 5,
            last_hash: last.clone(),
        };
        verify_end(&head, &last, next).unwrap();
        // Page by page gives the same.
        let (mid, at) = verify_run(AUDIT_GENESIS, 1, &rows[..2]).unwrap();
        assert_eq!(verify_run(&mid, at, &rows[2..]).unwrap(), (last, next));
    }

    #[test]
    fn changes_removals_and_truncation_show() {
        let rows = chain(5);
        let mut changed = rows.clone();
        changed[2]
            .detail
            .insert("device_name".into(), "laptop".into());
        assert_eq!(
            verify_run(AUDIT_GENESIS, 1, &changed),
            Err(AuditBreak::Hash { id: 3 })
        );
        let mut removed = rows.clone();
        removed.remove(1);
        assert_eq!(
            verify_run(AUDIT_GENESIS, 1, &removed),
            Err(AuditBreak::Gap { expected: 2, id: 3 })
        );
        let head = AuditChain {
            pruned_through: 0,
            pruned_hash: AUDIT_GENESIS.into(),
            last_id: 5,
            last_hash: rows[4].hash.clone(),
        };
        let (last, next) = verify_run(AUDIT_GENESIS, 1, &rows[..4]).unwrap();
        assert_eq!(
            verify_end(&head, &last, next),
            Err(AuditBreak::End {
                expected: 5,
                last: 4
            })
        );
    }
}
