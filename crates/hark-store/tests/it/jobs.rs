//! The job queue and cluster presence, on every backend: jobs claimed once
//! per lease, retried with backoff, dead after too many failures; presence
//! rows whose last removal anywhere writes exactly one `went_offline` job,
//! and gone nodes swept by the living.

use crate::conformance::{msg, users};
use crate::{another_node, on_every_backend, postgres, Backend};
use hark_proto::{DeviceId, PushKind, UserId};
use hark_store::jobs::{JobCounts, JobFate, NewJob, WentOffline, WENT_OFFLINE};
use hark_store::push::{PushTarget, PUSH};
use hark_store::rules::jobs::MAX_ATTEMPTS;
use hark_store::Store;
use std::collections::HashSet;
use std::sync::Arc;

const T: i64 = 1_700_000_000_000;
const TIMEOUT: i64 = 15_000;

fn job(kind: &str, run_at: i64) -> NewJob {
    NewJob {
        kind: kind.into(),
        payload: format!("{{\"n\":\"{kind}\"}}"),
        run_at,
    }
}

async fn went_offline_jobs(store: &Arc<dyn Store>, now: i64) -> Vec<WentOffline> {
    let jobs = store
        .claim_jobs("checker", now, 60_000, 1000)
        .await
        .unwrap();
    jobs.iter()
        .map(|j| {
            assert_eq!(j.kind, WENT_OFFLINE);
            serde_json::from_str(&j.payload).unwrap()
        })
        .collect()
}

on_every_backend!(
    push_jobs_go_to_the_members_with_a_subscription,
    due_jobs_are_claimed_once_per_lease_and_retried_until_dead,
    a_users_last_row_anywhere_writes_one_went_offline_job,
    gone_nodes_are_swept_with_their_last_heartbeat_as_last_seen,
);

/// A Web Push subscription of `who`'s device.
fn subscription(who: (UserId, DeviceId), n: u32) -> PushTarget {
    PushTarget {
        id: format!("sub-{}-{n}", who.1 .0),
        user_id: who.0,
        device_id: who.1,
        kind: PushKind::WebPush,
        endpoint: format!("https://push.example/{}/{n}", who.1 .0),
        p256dh: Some("key".into()),
        auth: Some("auth".into()),
        secret: None,
        created_at: T,
    }
}

/// The users the push jobs waiting in `store` are for (run and completed,
/// so each call sees only the jobs written since the last).
async fn pushed_to(store: &Arc<dyn Store>) -> Vec<i64> {
    let far = 4_000_000_000_000; // past every collapse delay
    let mut users = Vec::new();
    for job in store
        .claim_jobs("checker", far, 60_000, 1000)
        .await
        .unwrap()
    {
        assert_eq!(job.kind, PUSH);
        let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap();
        users.push(payload["user_id"].as_i64().unwrap());
        store.complete_job(job.id, far).await.unwrap();
    }
    users.sort_unstable();
    users
}

/// A message writes a push job for each member but its sender who has a
/// push subscription, and for no one else: those who had one before, one
/// given theirs while the store runs, none for a member without. On SQLite
/// the writer knows who has a subscription (and looks nobody else up): it
/// learns a new one as it is added and all of them again when the store
/// opens.
async fn push_jobs_go_to_the_members_with_a_subscription(b: Backend) {
    let mut store = b.store.clone();
    let people = users(&store, &["ann", "ben", "cat", "dan"]).await;
    let [ann, ben, cat, dan] = [people[0], people[1], people[2], people[3]];
    let chat = store
        .create_group(ann.0, "g", &[ben.0, cat.0, dan.0], 1_000, false)
        .await
        .unwrap();
    store
        .add_push_target(&subscription(ben, 1), 10)
        .await
        .unwrap();
    assert_eq!(
        pushed_to(&store).await,
        [0i64; 0],
        "no one had one when added"
    );
    let mut n = 0;
    let mut say = |store: Arc<dyn Store>, who: (UserId, DeviceId)| {
        n += 1;
        let m = msg(chat, who, &format!("m{n}"));
        async move { store.send(m).await.unwrap() }
    };
    say(store.clone(), ann).await;
    assert_eq!(pushed_to(&store).await, [ben.0 .0]);
    store
        .add_push_target(&subscription(cat, 1), 10)
        .await
        .unwrap();
    say(store.clone(), ann).await;
    assert_eq!(pushed_to(&store).await, [ben.0 .0, cat.0 .0]);
    say(store.clone(), ben).await;
    assert_eq!(pushed_to(&store).await, [cat.0 .0], "not to the sender");
    if let Some(path) = b.sqlite_path() {
        hark_store::Lifecycle::close(&*store);
        store = Arc::new(hark_store::sqlite::SqliteStore::open(&path, b.recorder.clone()).unwrap());
    }
    store
        .add_push_target(&subscription(dan, 1), 10)
        .await
        .unwrap();
    say(store.clone(), ann).await;
    assert_eq!(
        pushed_to(&store).await,
        [ben.0 .0, cat.0 .0, dan.0 .0],
        "those subscribed before the store opened, and since"
    );
}

async fn due_jobs_are_claimed_once_per_lease_and_retried_until_dead(b: Backend) {
    let s = &b.store;
    let first = s.enqueue_job(job("first", T)).await.unwrap();
    let second = s.enqueue_job(job("second", T + 10)).await.unwrap();
    let later = s.enqueue_job(job("later", T + 60_000)).await.unwrap();
    assert_eq!(
        s.job_counts().await.unwrap(),
        JobCounts {
            pending: 3,
            dead: 0
        }
    );

    // Only due jobs, oldest first, each to one claimant while leased.
    let claimed = s.claim_jobs("n1", T + 20, 1_000, 10).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![first, second]);
    assert_eq!(claimed[0].kind, "first");
    assert_eq!(claimed[0].payload, "{\"n\":\"first\"}");
    assert_eq!(claimed[0].attempts, 1);
    assert!(s
        .claim_jobs("n2", T + 500, 1_000, 10)
        .await
        .unwrap()
        .is_empty());

    // A node starting again takes back what its previous run had claimed:
    // due at once, for anyone; other nodes' claims stay theirs.
    let mine = s.enqueue_job(job("mine", T + 30)).await.unwrap();
    let claimed = s.claim_jobs("n3", T + 40, 60_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![mine]);
    assert_eq!(s.release_claims("n3", T + 50).await.unwrap(), 1);
    assert_eq!(s.release_claims("n3", T + 50).await.unwrap(), 0);
    let back = s.claim_jobs("n4", T + 50, 1_000, 10).await.unwrap();
    let ids: Vec<_> = back.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![mine], "n1's claims are still n1's");
    assert_eq!(back[0].attempts, 2, "the cut run counts as an attempt");
    s.complete_job(mine, 0).await.unwrap();

    // Completed: gone for good.
    s.complete_job(first, 0).await.unwrap();
    s.complete_job(first, 0).await.unwrap();
    // The claimant of `second` died: once its lease ran out, another takes it.
    let again = s.claim_jobs("n2", T + 1_021, 1_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (second, 2));

    // Failures back off, then the job is dead and never handed out again.
    let mut now = T + 1_100;
    let mut attempts = again[0].attempts;
    while let JobFate::Retry { at } = s
        .fail_job(second, attempts, "boom", now, None)
        .await
        .unwrap()
    {
        assert!(at > now);
        let early = s.claim_jobs("n1", at - 1, 1_000, 10).await.unwrap();
        assert!(early.iter().all(|j| j.id != second), "not before {at}");
        let retried: Vec<_> = s
            .claim_jobs("n1", at, 1_000, 10)
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.id == second)
            .collect();
        assert_eq!(retried.len(), 1, "retried at {at}");
        attempts = retried[0].attempts;
        now = at + 1;
    }
    assert_eq!(attempts, MAX_ATTEMPTS);
    assert!(s
        .claim_jobs("n1", now + 10_000_000, 1_000, 10)
        .await
        .unwrap()
        .iter()
        .all(|j| j.id == later));
    assert_eq!(
        s.job_counts().await.unwrap(),
        JobCounts {
            pending: 1,
            dead: 1
        }
    );
}

async fn a_users_last_row_anywhere_writes_one_went_offline_job(b: Backend) {
    let s = &b.store;
    let people = users(s, &["amy", "bo"]).await;
    let (amy, bo) = (people[0].0, people[1].0);
    s.heartbeat("n1", T, TIMEOUT, true).await.unwrap();
    s.heartbeat("n2", T, TIMEOUT, true).await.unwrap();
    assert!(s
        .online_among(&[amy, bo], T, TIMEOUT)
        .await
        .unwrap()
        .is_empty());

    // Amy on two nodes: leaving one keeps her online and writes nothing.
    assert!(!s.node_connected("n1", amy, 1, T).await.unwrap());
    assert!(
        s.node_connected("n2", amy, 7, T).await.unwrap(),
        "already online on n1"
    );
    assert_eq!(
        s.online_among(&[amy, bo], T, TIMEOUT).await.unwrap(),
        HashSet::from([amy])
    );
    assert!(!s.node_disconnected("n1", amy, 1, T + 5).await.unwrap());
    assert_eq!(s.job_counts().await.unwrap().pending, 0);
    assert_eq!(
        s.online_among(&[amy], T + 5, TIMEOUT).await.unwrap(),
        HashSet::from([amy])
    );

    // A late removal of an earlier stay leaves the newer one alone.
    assert!(!s.node_disconnected("n2", amy, 6, T + 6).await.unwrap());
    assert!(!s
        .online_among(&[amy], T + 6, TIMEOUT)
        .await
        .unwrap()
        .is_empty());

    // Her last row goes: one job, with her last seen.
    assert!(s.node_disconnected("n2", amy, 7, T + 9).await.unwrap());
    assert!(s
        .online_among(&[amy], T + 9, TIMEOUT)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        went_offline_jobs(s, T + 9).await,
        vec![WentOffline {
            user_id: amy,
            at: T + 9
        }]
    );

    // A node stopping removes its rows at once, with their jobs.
    s.node_connected("n1", bo, 2, T + 10).await.unwrap();
    assert_eq!(s.node_stopped("n1", T + 20).await.unwrap(), 1);
    assert!(s
        .online_among(&[bo], T + 20, TIMEOUT)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        went_offline_jobs(s, T + 20).await,
        vec![WentOffline {
            user_id: bo,
            at: T + 20
        }]
    );
}

async fn gone_nodes_are_swept_with_their_last_heartbeat_as_last_seen(b: Backend) {
    let s = &b.store;
    let people = users(s, &["cy", "di", "ed"]).await;
    let (cy, di, ed) = (people[0].0, people[1].0, people[2].0);
    s.heartbeat("live", T, TIMEOUT, true).await.unwrap();
    s.heartbeat("dies", T + 1_000, TIMEOUT, true).await.unwrap();
    s.node_connected("dies", cy, 1, T).await.unwrap();
    s.node_connected("dies", di, 1, T).await.unwrap();
    s.node_connected("live", di, 1, T).await.unwrap();

    // Past the timeout, the silent node's users no longer count as online,
    // even before anyone swept it.
    let later = T + 1_000 + TIMEOUT + 1;
    s.heartbeat("live", later - 2, TIMEOUT, false)
        .await
        .unwrap();
    assert_eq!(
        s.online_among(&[cy, di], later, TIMEOUT).await.unwrap(),
        HashSet::from([di])
    );
    // The next heartbeat of a living node sweeps it: a job for cy (online
    // nowhere else), none for di (still on the living node).
    assert_eq!(s.heartbeat("live", later, TIMEOUT, false).await.unwrap(), 1);
    assert_eq!(
        s.heartbeat("live", later + 1, TIMEOUT, false)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        went_offline_jobs(s, later).await,
        vec![WentOffline {
            user_id: cy,
            at: T + 1_000
        }]
    );

    // A node restarting under its old id clears what its last life left.
    s.node_connected("live", ed, 3, later).await.unwrap();
    assert_eq!(
        s.heartbeat("live", later + 5, TIMEOUT, true).await.unwrap(),
        2
    );
    let mut swept: Vec<_> = went_offline_jobs(s, later + 5)
        .await
        .into_iter()
        .map(|w| w.user_id)
        .collect();
    swept.sort();
    assert_eq!(swept, vec![di, ed]);
}

/// Two nodes removing a user's last two rows at the same moment, many
/// times over: each time exactly one of them writes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_last_removals_on_two_nodes_write_exactly_one_job() {
    let a = postgres().await;
    let (b, _) = another_node(&a).await;
    let s = a.store.clone();
    let user = users(&s, &["flo"]).await[0].0;
    s.heartbeat("n1", T, TIMEOUT, true).await.unwrap();
    s.heartbeat("n2", T, TIMEOUT, true).await.unwrap();
    for round in 0..30u64 {
        s.node_connected("n1", user, round, T).await.unwrap();
        b.node_connected("n2", user, round, T).await.unwrap();
        let (x, y) = tokio::join!(
            s.node_disconnected("n1", user, round, T + 1),
            b.node_disconnected("n2", user, round, T + 1)
        );
        let written = u8::from(x.unwrap()) + u8::from(y.unwrap());
        assert_eq!(written, 1, "round {round}");
    }
    assert_eq!(s.job_counts().await.unwrap().pending, 30);
}

/// Workers of two nodes claiming at once never take the same job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_claiming_at_once_take_each_job_once() {
    let a = postgres().await;
    let (b, _) = another_node(&a).await;
    let s = a.store.clone();
    for n in 0..200 {
        s.enqueue_job(job(&format!("k{n}"), T)).await.unwrap();
    }
    let claim = |store: Arc<dyn Store>, node: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let got = store.claim_jobs(node, T, 60_000, 7).await.unwrap();
            if got.is_empty() {
                return mine;
            }
            mine.extend(got.into_iter().map(|j| j.id));
        }
    };
    let (x, y) = tokio::join!(
        tokio::spawn(claim(s.clone(), "n1")),
        tokio::spawn(claim(b.clone(), "n2"))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let all: HashSet<_> = x.iter().chain(&y).copied().collect();
    assert_eq!(x.len() + y.len(), 200, "each job claimed once");
    assert_eq!(all.len(), 200);
}
