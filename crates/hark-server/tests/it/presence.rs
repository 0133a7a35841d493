//! Presence, last seen and typing over real sockets: who sees what, when.

use crate::support::{spawn_with, TestApp};
use hark_proto::{Activity, ErrorCode, PresenceState, ServerFrame, TypingState};
use serde_json::json;
use std::time::Duration;

async fn app() -> TestApp {
    spawn_with(|c| {
        c.limits.presence_grace_ms = 300;
        c.limits.typing_ttl_ms = 400;
    })
    .await
}

fn presence(frame: ServerFrame) -> PresenceState {
    match frame {
        ServerFrame::Presence(p) => p,
        other => panic!("expected presence, got {other:?}"),
    }
}

fn typing(frame: ServerFrame) -> TypingState {
    match frame {
        ServerFrame::Typing(t) => t,
        other => panic!("expected typing, got {other:?}"),
    }
}

#[tokio::test]
async fn online_until_the_last_of_three_devices_leaves_then_last_seen() {
    let app = app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let bob2 = app.login("bob", "laptop").await;
    let bob3 = app.login("bob", "tablet").await;
    let mut a = app.ws(&alice).await;
    let initial = a.watch(&[bob.user_id], &[]).await.unwrap();
    assert_eq!(
        initial,
        vec![PresenceState {
            user_id: bob.user_id,
            online: Some(false),
            last_seen: None
        }]
    );

    let d1 = app.ws(&bob).await;
    let p = presence(a.next_ephemeral().await);
    assert_eq!((p.user_id, p.online), (bob.user_id, Some(true)));
    let d2 = app.ws(&bob2).await;
    let d3 = app.ws(&bob3).await;
    drop(d1);
    drop(d2);
    // Two devices gone, one left: still online, nothing announced.
    a.no_ephemeral_within(Duration::from_millis(700)).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    drop(d3);
    let p = presence(a.next_ephemeral().await);
    assert_eq!(p.online, Some(false));
    let seen = p.last_seen.expect("last seen is shown");
    assert!(
        seen >= before - 50,
        "last seen is when the last device left"
    );
    // Last seen is stored: a new watcher gets it.
    let carol = app.user("carol").await;
    let mut c = app.ws(&carol).await;
    let now = c.watch(&[bob.user_id], &[]).await.unwrap();
    assert_eq!(now[0].last_seen, Some(seen));
    assert_eq!(now[0].online, Some(false));
    // Back online: the live frame keeps the real last seen (`null` would
    // mean "hidden by privacy"), as a watch a moment later answers.
    let _d4 = app.ws(&bob).await;
    let live = presence(c.next_ephemeral().await);
    assert_eq!((live.online, live.last_seen), (Some(true), Some(seen)));
    let watched = c.watch(&[bob.user_id], &[]).await.unwrap();
    assert_eq!(watched[0], live);
}

#[tokio::test]
async fn a_flapping_connection_announces_nothing_within_the_grace_period() {
    let app = app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut a = app.ws(&alice).await;
    a.watch(&[bob.user_id], &[]).await.unwrap();
    let b = app.ws(&bob).await;
    assert_eq!(presence(a.next_ephemeral().await).online, Some(true));
    for _ in 0..3 {
        drop(app.ws(&bob).await);
    }
    drop(b);
    let b = app.ws(&bob).await;
    a.no_ephemeral_within(Duration::from_millis(700)).await;
    drop(b);
    assert_eq!(presence(a.next_ephemeral().await).online, Some(false));
}

#[tokio::test]
async fn typing_starts_stops_expires_and_ends_with_a_message() {
    let app = app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let chat = app.group(&alice, "g", &[&bob, &carol]).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    let mut c = app.ws(&carol).await;
    b.watch(&[], &[chat]).await.unwrap();
    a.watch(&[], &[chat]).await.unwrap();
    // Carol does not have the chat open: she gets no typing at all.

    assert!(matches!(
        a.typing(chat, Activity::Typing).await,
        ServerFrame::Ok { .. }
    ));
    let t = typing(b.next_ephemeral().await);
    assert_eq!(
        (t.user_id, t.activity, t.expires_in_ms),
        (alice.user_id, Activity::Typing, 400)
    );
    a.typing(chat, Activity::Stopped).await;
    assert_eq!(typing(b.next_ephemeral().await).activity, Activity::Stopped);

    // Not refreshed: it expires by itself.
    a.typing(chat, Activity::Recording).await;
    assert_eq!(
        typing(b.next_ephemeral().await).activity,
        Activity::Recording
    );
    let t = typing(b.next_ephemeral().await);
    assert_eq!((t.activity, t.expires_in_ms), (Activity::Stopped, 0));

    // Sending ends it at once.
    a.typing(chat, Activity::Typing).await;
    assert_eq!(typing(b.next_ephemeral().await).activity, Activity::Typing);
    a.send_ok(chat, "t-1", "done typing").await;
    assert_eq!(typing(b.next_ephemeral().await).activity, Activity::Stopped);

    // Going away ends it too.
    a.typing(chat, Activity::Typing).await;
    assert_eq!(typing(b.next_ephemeral().await).activity, Activity::Typing);
    drop(a);
    assert_eq!(typing(b.next_ephemeral().await).activity, Activity::Stopped);
    c.no_ephemeral_within(Duration::from_millis(200)).await;
    // The typist's own devices never hear it.
    let mut b2 = app.ws(&bob).await;
    b2.watch(&[], &[chat]).await.unwrap();
    b2.typing(chat, Activity::Typing).await;
    b.no_ephemeral_within(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn typing_stops_when_the_typing_connection_closes_while_another_stays() {
    // A long expiry, so a `stopped` that comes only from expiry would be late.
    let app = spawn_with(|c| {
        c.limits.presence_grace_ms = 300;
        c.limits.typing_ttl_ms = 30_000;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let bob_laptop = app.login("bob", "laptop").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    a.watch(&[], &[chat]).await.unwrap();
    let mut phone = app.ws(&bob).await;
    let mut laptop = app.ws(&bob_laptop).await;
    laptop.watch(&[], &[chat]).await.unwrap();
    phone.typing(chat, Activity::Typing).await;
    assert_eq!(typing(a.next_ephemeral().await).activity, Activity::Typing);
    // The phone goes away; bob's laptop stays online.
    let started = std::time::Instant::now();
    drop(phone);
    let t = typing(a.next_ephemeral().await);
    assert_eq!(
        (t.user_id, t.activity, t.expires_in_ms),
        (bob.user_id, Activity::Stopped, 0)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped at the disconnect, not at the 30 s expiry"
    );
    // Typing from the connection that stays is its own, and stays.
    laptop.typing(chat, Activity::Typing).await;
    assert_eq!(typing(a.next_ephemeral().await).activity, Activity::Typing);
    let other_tab = app.ws(&bob_laptop).await;
    drop(other_tab);
    a.no_ephemeral_within(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn typing_floods_are_refused_not_fanned_out() {
    let app = app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let mut refused = 0;
    for _ in 0..20 {
        if let ServerFrame::Error {
            code: ErrorCode::RateLimited,
            ..
        } = a.typing(chat, Activity::Typing).await
        {
            refused += 1;
        }
    }
    assert!(refused >= 10, "only {refused} refused");
}

#[tokio::test]
async fn non_members_watch_nothing_and_cannot_type() {
    let app = app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let eve = app.user("eve").await;
    let chat = app.direct(&alice, &bob).await;
    let mut e = app.ws(&eve).await;
    assert_eq!(e.watch(&[], &[chat]).await, Err(ErrorCode::Forbidden));
    assert!(matches!(
        e.typing(chat, Activity::Typing).await,
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
    // A member who leaves stops getting the chat's typing.
    let group = app.group(&alice, "g", &[&bob]).await;
    let mut b = app.ws(&bob).await;
    b.watch(&[], &[group]).await.unwrap();
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/chats/{}/members/{}", group.0, bob.user_id.0),
            &bob.token,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let mut a = app.ws(&alice).await;
    a.typing(group, Activity::Typing).await;
    b.no_ephemeral_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn privacy_settings_matrix_is_enforced_by_the_server() {
    let app = app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await; // alice's contact
    let carol = app.user("carol").await; // shares only a group with alice
    app.direct(&alice, &bob).await;
    app.group(&alice, "g", &[&carol]).await;
    let _alice_online = app.ws(&alice).await;
    let put = |token: String, last_seen: &str, online: &str| {
        let body = json!({"last_seen": last_seen, "online": online});
        let app = &app;
        async move {
            app.call(reqwest::Method::PUT, "/me/privacy", &token, Some(body))
                .await
        }
    };

    // Everyone (the default): both see alice.
    let mut b = app.ws(&bob).await;
    let mut c = app.ws(&carol).await;
    assert_eq!(
        b.watch(&[alice.user_id], &[]).await.unwrap()[0].online,
        Some(true)
    );
    assert_eq!(
        c.watch(&[alice.user_id], &[]).await.unwrap()[0].online,
        Some(true)
    );

    // Contacts: bob still sees, carol no longer; both are told to watch again.
    let (s, body) = put(alice.token.clone(), "contacts", "contacts").await;
    assert_eq!(s, 200, "{body}");
    assert!(matches!(
        b.next_ephemeral().await,
        ServerFrame::PresenceReset
    ));
    assert!(matches!(
        c.next_ephemeral().await,
        ServerFrame::PresenceReset
    ));
    assert_eq!(
        b.watch(&[alice.user_id], &[]).await.unwrap()[0].online,
        Some(true)
    );
    let hidden = c.watch(&[alice.user_id], &[]).await.unwrap()[0];
    assert_eq!((hidden.online, hidden.last_seen), (None, None));

    // Nobody: not even contacts.
    put(alice.token.clone(), "nobody", "nobody").await;
    b.next_ephemeral().await;
    let hidden = b.watch(&[alice.user_id], &[]).await.unwrap()[0];
    assert_eq!((hidden.online, hidden.last_seen), (None, None));
    // Carol's presence changes never reach alice's hidden watchers... and a
    // hidden user's changes reach no one: alice goes offline unseen.
    drop(_alice_online);
    c.no_ephemeral_within(Duration::from_millis(700)).await;
    b.no_ephemeral_within(Duration::from_millis(10)).await;

    // Both ways: bob hides his last seen, so he cannot see alice's even when
    // she shows hers to everyone again; online stays visible.
    put(alice.token.clone(), "everyone", "everyone").await;
    put(bob.token.clone(), "nobody", "everyone").await;
    let mut b = app.ws(&bob).await;
    let p = b.watch(&[alice.user_id], &[]).await.unwrap()[0];
    assert_eq!(p.online, Some(false));
    assert_eq!(p.last_seen, None, "who hides their last seen sees no one's");
    let p = c.watch(&[alice.user_id], &[]).await.unwrap()[0];
    assert!(p.last_seen.is_some(), "carol shares hers and sees alice's");
    let (s, settings) = app.get("/me/privacy", &bob.token).await;
    assert_eq!(
        (s, settings),
        (200, json!({"last_seen": "nobody", "online": "everyone"}))
    );
    let (s, body) = put(bob.token.clone(), "sometimes", "everyone").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
}

#[tokio::test]
async fn a_browser_socket_that_goes_silent_is_cut_off_and_shows_last_seen_soon() {
    let app = spawn_with(|c| {
        c.limits.presence_grace_ms = 300;
        c.limits.heartbeat_ping_secs = 1;
        c.limits.heartbeat_timeout_secs = 2;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut a = app.ws(&alice).await;
    a.watch(&[bob.user_id], &[]).await.unwrap();
    // Bob's browser authenticates in a frame, then its network drops: it
    // reads nothing more, so it answers no ping.
    let mut browser = app.ws_raw().await;
    browser
        .send_text(json!({"type": "auth", "id": 1, "token": bob.token}).to_string())
        .await;
    assert!(matches!(browser.next_frame().await, ServerFrame::Hello(_)));
    assert_eq!(presence(a.next_ephemeral().await).online, Some(true));
    let dropped = std::time::Instant::now();
    let p = presence(a.next_ephemeral().await);
    assert_eq!(p.online, Some(false));
    assert!(p.last_seen.is_some());
    let took = dropped.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "silent for the 2 s heartbeat timeout plus the grace, not the 90 s idle timeout: {took:?}"
    );
}
