//! The audit log on every backend: rows chained by hash with gapless ids,
//! pages and filters, retention that keeps the rest verifiable, and
//! appends from two nodes at once that still make one chain.

use crate::{another_node, on_every_backend, Backend};
use hark_proto::{
    verify_end, verify_run, AuditBreak, AuditEntry, ChatId, DeviceId, UserId, AUDIT_GENESIS,
};
use hark_store::audit::{AuditQuery, NewAudit};
use hark_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

fn event(action: &'static str, actor: i64, target: Option<i64>) -> NewAudit {
    NewAudit {
        action,
        actor: Some(UserId(actor)),
        actor_device: Some(DeviceId(actor * 10)),
        target_user: target.map(UserId),
        address: Some("192.0.2.7".into()),
        detail: BTreeMap::from([("why".to_owned(), format!("{action} by {actor}"))]),
        ..NewAudit::default()
    }
}

fn query(limit: u32) -> AuditQuery {
    AuditQuery {
        limit,
        ..AuditQuery::default()
    }
}

/// Every row, oldest first, read in pages of 3.
async fn all_rows(store: &Arc<dyn Store>) -> Vec<AuditEntry> {
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .audit_page(AuditQuery {
                after: Some(after),
                ..query(3)
            })
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return rows;
        };
        after = last.id;
        rows.extend(page);
    }
}

/// Checks the whole log against its chain head.
async fn verify(store: &Arc<dyn Store>) -> Result<usize, AuditBreak> {
    let head = store.audit_chain().await.unwrap();
    let rows = all_rows(store).await;
    let (last, next) = verify_run(&head.pruned_hash, head.pruned_through + 1, &rows)?;
    verify_end(&head, &last, next)?;
    Ok(rows.len())
}

async fn rows_chain_and_pages_filter(b: Backend) {
    let s = &b.store;
    assert_eq!(verify(s).await, Ok(0), "an empty log verifies");
    let first = s.append_audit(event("login", 1, None)).await.unwrap();
    assert_eq!(first.id, 1);
    assert_eq!(first.hash, first.expected_hash(AUDIT_GENESIS));
    s.append_audit(event("user_disabled", 1, Some(2)))
        .await
        .unwrap();
    s.append_audit(NewAudit {
        chat: Some(ChatId(5)),
        ..event("member_added", 3, Some(2))
    })
    .await
    .unwrap();
    s.append_audit(NewAudit {
        actor: None,
        actor_device: None,
        address: None,
        detail: BTreeMap::new(),
        ..event("login_failed", 0, None)
    })
    .await
    .unwrap();
    s.append_audit(event("login", 3, None)).await.unwrap();
    assert_eq!(verify(s).await, Ok(5));

    let newest = s.audit_page(query(2)).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.id).collect::<Vec<_>>(), [5, 4]);
    assert_eq!(newest[1].actor, None);
    assert_eq!(newest[1].address, None);
    let older = s
        .audit_page(AuditQuery {
            before: Some(4),
            ..query(10)
        })
        .await
        .unwrap();
    assert_eq!(older.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(older[0].chat, Some(ChatId(5)));
    assert_eq!(older[0].detail["why"], "member_added by 3");

    let ids = |rows: Vec<AuditEntry>| rows.iter().map(|e| e.id).collect::<Vec<_>>();
    // A user's rows: what they did and what was done to them.
    let of_2 = s
        .audit_page(AuditQuery {
            user: Some(UserId(2)),
            ..query(10)
        })
        .await
        .unwrap();
    assert_eq!(ids(of_2), [3, 2]);
    let logins = s
        .audit_page(AuditQuery {
            action: Some("login".into()),
            ..query(10)
        })
        .await
        .unwrap();
    assert_eq!(ids(logins), [5, 1]);
    let in_chat = s
        .audit_page(AuditQuery {
            chat: Some(ChatId(5)),
            ..query(10)
        })
        .await
        .unwrap();
    assert_eq!(ids(in_chat), [3]);
    let none_yet = s
        .audit_page(AuditQuery {
            until: Some(first.at),
            ..query(10)
        })
        .await
        .unwrap();
    assert!(none_yet.is_empty());
    let from_first = s
        .audit_page(AuditQuery {
            since: Some(first.at),
            ..query(10)
        })
        .await
        .unwrap();
    assert_eq!(from_first.len(), 5);
}

async fn retention_keeps_the_rest_verifiable(b: Backend) {
    let s = &b.store;
    for n in 0..3 {
        s.append_audit(event("login", n + 1, None)).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = hark_proto_now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for n in 0..2 {
        s.append_audit(event("logout", n + 1, None)).await.unwrap();
    }
    assert_eq!(s.prune_audit(cut).await.unwrap(), 3);
    assert_eq!(
        s.prune_audit(cut).await.unwrap(),
        0,
        "nothing more to remove"
    );
    let head = s.audit_chain().await.unwrap();
    assert_eq!(head.pruned_through, 3);
    assert_ne!(head.pruned_hash, AUDIT_GENESIS);
    assert_eq!(verify(s).await, Ok(2));
    let next = s.append_audit(event("login", 9, None)).await.unwrap();
    assert_eq!(next.id, 6, "ids go on after a prune");
    assert_eq!(verify(s).await, Ok(3));
    // Everything written before now: the chain still knows where it stood.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(s.prune_audit(hark_proto_now() + 1).await.unwrap(), 3);
    assert_eq!(verify(s).await, Ok(0));
    assert_eq!(s.append_audit(event("login", 9, None)).await.unwrap().id, 7);
    assert_eq!(verify(s).await, Ok(1));
}

fn hark_proto_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn appends_at_once_make_one_chain(b: Backend) {
    // On PostgreSQL two nodes append at once; on SQLite, many tasks.
    let second = match b.url {
        Some(_) => another_node(&b).await.0,
        None => b.store.clone(),
    };
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store = if n % 2 == 0 {
            b.store.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .append_audit(event("login", n + 1, None))
                .await
                .unwrap()
                .id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=60).collect::<Vec<_>>());
    assert_eq!(verify(&b.store).await, Ok(60));
}

/// A row changed in the database behind the server's back shows.
async fn a_changed_row_shows(b: Backend) {
    let s = &b.store;
    for n in 0..4 {
        s.append_audit(event("login", n + 1, None)).await.unwrap();
    }
    let sql = "UPDATE audit SET address = '203.0.113.9' WHERE id = 2";
    match &b.url {
        Some(url) => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client.execute(sql, &[]).await.unwrap();
        }
        None => {
            let path = b.sqlite_path().unwrap();
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute(sql, []).unwrap();
        }
    }
    assert_eq!(verify(s).await, Err(AuditBreak::Hash { id: 2 }));
}

on_every_backend!(
    rows_chain_and_pages_filter,
    retention_keeps_the_rest_verifiable,
    appends_at_once_make_one_chain,
    a_changed_row_shows,
);
