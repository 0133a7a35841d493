//! The PostgreSQL backup recipe of docs/operations.md, run: `pg_dump -Fc`
//! of a cluster's database, `pg_restore` into a fresh one, and a node on
//! the restored database serves the same chats, history and streams, and
//! goes on from there (identities and sequences restored too).

use crate::support::{postgres_url, spawn_in};
use hark_proto::{ClientFrame, Pos, ServerFrame};
use serde_json::{json, Value};
use std::process::Command;

/// Runs a PostgreSQL client tool; fails loudly when it is missing or fails.
fn run(tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed ({e}): install Debian's postgresql-client"));
    assert!(
        out.status.success(),
        "{tool} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a user sees: chats, every chat's whole history, their stream.
async fn view(app: &crate::support::TestApp, session: &crate::support::Session) -> Value {
    let (_, chats) = app.get("/chats", &session.token).await;
    let mut histories = Vec::new();
    for chat in chats.as_array().unwrap() {
        let id = chat["chat"]["id"].as_i64().unwrap();
        let (status, history) = app
            .get(&format!("/chats/{id}/messages?limit=200"), &session.token)
            .await;
        assert_eq!(status, 200, "{history}");
        histories.push(history);
    }
    let mut ws = app.ws(session).await;
    let id = ws.id();
    let reply = ws
        .request(ClientFrame::Sync {
            id,
            after: Pos(0),
            limit: Some(500),
        })
        .await;
    let ServerFrame::Synced { events, head, .. } = reply else {
        panic!("expected a sync page, got {reply:?}");
    };
    json!({"chats": chats, "histories": histories, "stream": events, "head": head})
}

#[tokio::test]
async fn a_pg_dump_restores_into_a_fresh_database_that_serves_the_same_history() {
    let name = format!("hark_test_{:016x}", rand::random::<u64>());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test-database"), &name).unwrap();
    let app = spawn_in(dir.path().to_owned(), |_| {}).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let direct = app.direct(&alice, &bob).await;
    let group = app.group(&alice, "Dumped", &[&bob, &carol]).await;
    let mut ws = app.ws(&alice).await;
    for n in 0..20 {
        let chat = if n % 2 == 0 { direct } else { group };
        ws.send_ok(chat, &format!("d{n}"), &format!("before the dump {n}"))
            .await;
    }
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.mark(group, Some(10), Some(8)).await;
    let before_alice = view(&app, &alice).await;
    let before_bob = view(&app, &bob).await;
    drop((ws, bob_ws));
    app.stop().await;

    let dump = dir.path().join("hark.dump");
    let restored = format!("{name}_r");
    let base = postgres_url();
    // The database exists: this only names its URL.
    let source = hark_store::postgres::create_database(&base, &name)
        .await
        .unwrap();
    run("pg_dump", &["-Fc", "-f", dump.to_str().unwrap(), &source]);
    let target = hark_store::postgres::create_database(&base, &restored)
        .await
        .unwrap();
    run(
        "pg_restore",
        &[
            "--no-owner",
            "--exit-on-error",
            "-d",
            &target,
            dump.to_str().unwrap(),
        ],
    );

    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(dir2.path().join("test-database"), &restored).unwrap();
    let app = spawn_in(dir2.path().to_owned(), |_| {}).await;
    assert_eq!(view(&app, &alice).await, before_alice, "alice's view");
    assert_eq!(view(&app, &bob).await, before_bob, "bob's view");
    // It goes on from where it was: the next seq, a new user's new id.
    let mut ws = app.ws(&alice).await;
    assert_eq!(ws.send_ok(group, "after", "after the restore").await, 11);
    let dave = app.user("dave").await;
    assert!(dave.user_id.0 > carol.user_id.0);
    app.stop().await;
}
