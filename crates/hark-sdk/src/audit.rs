//! The audit log (`/v1/admin/audit`, docs/protocol.md "The audit log"):
//! pages of it for a server admin, and a check of its whole hash chain
//! done here, on the client, from what the API returns.

use crate::api::{decode, Api};
use crate::Result;
use hark_proto::{verify_end, verify_run, AuditBreak, AuditChain, AuditEntry, AuditPage};
use hark_proto::{ChatId, UserId};
use reqwest::Method;

/// Which rows to read; every filter set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub user: Option<UserId>,
    pub action: Option<String>,
    pub chat: Option<ChatId>,
    /// Rows written at or after this time (ms).
    pub since: Option<i64>,
    /// Rows written before this time (ms).
    pub until: Option<i64>,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFrom {
    /// Newest first, from the newest row or below this id.
    Before(Option<i64>),
    /// Oldest first, from above this id (0: the start).
    After(i64),
}

/// What a full check of the chain found intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditChecked {
    /// Rows read and checked.
    pub rows: u64,
    /// The chain's head as the server gave it: keep `last_hash` elsewhere
    /// to compare against later.
    pub chain: AuditChain,
}

impl Api {
    /// `GET /v1/admin/audit`: one page of at most `limit` (1–1000) rows.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        from: AuditFrom,
        limit: u32,
    ) -> Result<AuditPage> {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        match from {
            AuditFrom::Before(Some(id)) => query.push(("before", id.to_string())),
            AuditFrom::Before(None) => {}
            AuditFrom::After(id) => query.push(("after", id.to_string())),
        }
        if let Some(u) = filter.user {
            query.push(("user", u.0.to_string()));
        }
        if let Some(a) = &filter.action {
            query.push(("action", a.clone()));
        }
        if let Some(c) = filter.chat {
            query.push(("chat", c.0.to_string()));
        }
        if let Some(t) = filter.since {
            query.push(("since", t.to_string()));
        }
        if let Some(t) = filter.until {
            query.push(("until", t.to_string()));
        }
        let req = self.request(Method::GET, "/v1/admin/audit")?.query(&query);
        decode(req.send().await?).await
    }

    /// `GET /v1/admin/audit/chain`.
    pub async fn audit_chain(&self) -> Result<AuditChain> {
        self.call(Method::GET, "/v1/admin/audit/chain", None::<&()>, true)
            .await
    }

    /// Reads the whole log oldest first and checks every row's hash, the
    /// ids' order and the end against the chain's head. `rows` sees each
    /// page as it is checked (to export it, say). The outer error is the
    /// API's; the inner one, where the chain broke.
    pub async fn verify_audit(
        &self,
        mut rows: impl FnMut(&[AuditEntry]),
    ) -> Result<std::result::Result<AuditChecked, AuditBreak>> {
        let chain = self.audit_chain().await?;
        let mut previous = chain.pruned_hash.clone();
        let mut next_id = chain.pruned_through + 1;
        let mut after = chain.pruned_through;
        let mut count = 0u64;
        // Rows appended while this reads are past the head read first.
        let until_head = |page: &mut Vec<AuditEntry>| page.retain(|e| e.id <= chain.last_id);
        loop {
            let mut page = self
                .audit_page(&AuditFilter::default(), AuditFrom::After(after), 1000)
                .await?;
            until_head(&mut page.entries);
            match verify_run(&previous, next_id, &page.entries) {
                Ok((last, next)) => (previous, next_id) = (last, next),
                Err(broken) => return Ok(Err(broken)),
            }
            rows(&page.entries);
            count += page.entries.len() as u64;
            match page.next {
                Some(next) if next < chain.last_id => after = next,
                _ => break,
            }
        }
        Ok(verify_end(&chain, &previous, next_id).map(|()| AuditChecked { rows: count, chain }))
    }
}
