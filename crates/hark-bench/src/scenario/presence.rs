//! `presence`: N connected users in shared groups, each watching the
//! contacts and chats a client with a chat list would show. Then typing in
//! some chats, then churn: some users go offline for longer than the grace
//! period and come back, others flap (reconnect within it). Counts the
//! `presence` and `typing` frames the watchers receive, the server CPU the
//! churn costs, and compares both with what broadcasting every connection
//! change (and every typing frame) to every member of every shared group
//! would send, computed from the same membership graph.

use crate::report::{Figure, Report};
use crate::rng::Rng;
use crate::servers::Servers;
use crate::{client, setup, Common};
use anyhow::Context;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Connected users (one socket each).
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Members per group.
    #[arg(long, default_value_t = 50)]
    pub group_size: usize,
    /// Groups each user is in.
    #[arg(long, default_value_t = 4)]
    pub groups_per_user: usize,
    /// Contacts (co-members) whose presence each user watches.
    #[arg(long, default_value_t = 20)]
    pub watch_users: usize,
    /// Chats whose typing each user watches (of its groups).
    #[arg(long, default_value_t = 2)]
    pub watch_chats: usize,
    /// Fraction of users that go offline for longer than the grace period.
    #[arg(long, default_value_t = 0.2)]
    pub churn: f64,
    /// Fraction of users that flap: reconnect within the grace period.
    #[arg(long, default_value_t = 0.1)]
    pub flap: f64,
    /// Seconds churning users stay offline (more than the server's grace).
    #[arg(long, default_value_t = 5.0)]
    pub offline_secs: f64,
    /// Milliseconds flapping users stay offline (less than the grace).
    #[arg(long, default_value_t = 500)]
    pub flap_ms: u64,
    /// The server's `presence_grace_ms` (default 3,000).
    #[arg(long, default_value_t = 3000)]
    pub grace_ms: u64,
    /// Fraction of users that type in one of their groups.
    #[arg(long, default_value_t = 0.1)]
    pub typists: f64,
    /// `typing` frames each typist sends (one a second), before `stopped`.
    #[arg(long, default_value_t = 3)]
    pub typing_refreshes: usize,
    /// Seed of the membership graph.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

const SETUP: usize = 0;
const IDLE: usize = 1;
const TYPING: usize = 2;
const CHURN: usize = 3;

/// Who a presence frame is about.
const OTHER: usize = 0;
const CHURNER: usize = 1;
const FLAPPER: usize = 2;

#[derive(Default)]
struct Counters {
    phase: AtomicUsize,
    presence: [[AtomicU64; 3]; 4],
    typing: [AtomicU64; 4],
    watching: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn presence_in(&self, phase: usize, about: usize) -> u64 {
        self.presence[phase][about].load(Relaxed)
    }
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default, borrow)]
    code: Option<std::borrow::Cow<'a, str>>,
}

enum Cmd {
    Typing(i64, &'static str),
    Close,
}

struct Session {
    cmd: mpsc::Sender<Cmd>,
    task: JoinHandle<()>,
}

/// What one user's socket watches.
#[derive(Clone)]
struct Watch {
    users: Vec<i64>,
    chats: Vec<i64>,
}

/// Opens a socket, sends `watch`, waits for `watching`, then counts what
/// arrives until told to close.
async fn open(
    url: String,
    token: String,
    watch: Watch,
    roles: Arc<HashMap<i64, usize>>,
    counters: Arc<Counters>,
) -> anyhow::Result<Session> {
    let (ws, _) = client::connect_hello(&url, Some(&token), None).await?;
    let (mut sink, mut stream) = ws.split();
    let join = |v: &[i64]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    sink.send(Message::Text(
        format!(
            r#"{{"type":"watch","id":1,"users":[{}],"chats":[{}]}}"#,
            join(&watch.users),
            join(&watch.chats)
        )
        .into(),
    ))
    .await?;
    let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<()>>();
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Cmd>(16);
    let task = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut next_id = 2u64;
        loop {
            tokio::select! {
                frame = stream.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(Err(e.into()));
                            }
                            break;
                        }
                        None => break,
                    };
                    let Ok(f) = serde_json::from_str::<Frame<'_>>(&text) else { continue };
                    let phase = counters.phase.load(Relaxed);
                    match &*f.ty {
                        "presence" => {
                            let about = f.user_id.and_then(|u| roles.get(&u).copied()).unwrap_or(OTHER);
                            counters.presence[phase][about].fetch_add(1, Relaxed);
                        }
                        "typing" => {
                            counters.typing[phase].fetch_add(1, Relaxed);
                        }
                        "watching" => {
                            counters.watching.fetch_add(1, Relaxed);
                            if let Some(r) = ready.take() {
                                let _ = r.send(Ok(()));
                            }
                        }
                        "error" => {
                            counters.errors.fetch_add(1, Relaxed);
                            let mut first = counters.first_error.lock().unwrap_or_else(|e| e.into_inner());
                            first.get_or_insert_with(|| format!("{} ({text})", f.code.as_deref().unwrap_or("")));
                            if let Some(r) = ready.take() {
                                let _ = r.send(Err(anyhow::anyhow!("watch failed: {text}")));
                            }
                        }
                        _ => {}
                    }
                }
                cmd = cmd_rx.recv() => match cmd {
                    Some(Cmd::Typing(chat, activity)) => {
                        let id = next_id;
                        next_id += 1;
                        let frame = format!(r#"{{"type":"typing","id":{id},"chat_id":{chat},"activity":"{activity}"}}"#);
                        if sink.send(Message::Text(frame.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Cmd::Close) | None => {
                        let _ = sink.send(Message::Close(None)).await;
                        let _ = sink.close().await;
                        break;
                    }
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), ready_rx)
        .await
        .context("no `watching` within 60 s")?
        .context("the session ended before `watching`")??;
    Ok(Session { cmd: cmd_tx, task })
}

async fn close(s: Session) {
    let _ = s.cmd.send(Cmd::Close).await;
    let _ = s.task.await;
}

/// The membership graph, built from the seed.
struct Graph {
    /// Member user indexes of each group.
    groups: Vec<Vec<usize>>,
    /// Group indexes of each user.
    groups_of: Vec<Vec<usize>>,
    /// Distinct users sharing a group with each user.
    co_members: Vec<BTreeSet<usize>>,
    /// Users each user watches, and groups whose typing it watches.
    watch_users: Vec<Vec<usize>>,
    watch_groups: Vec<Vec<usize>>,
}

fn graph(p: &Params) -> Graph {
    let n = p.users;
    let mut rng = Rng::new(p.seed);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for _ in 0..p.groups_per_user {
        let mut perm: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut perm);
        for chunk in perm.chunks(p.group_size.max(2)) {
            if chunk.len() >= 2 {
                groups.push(chunk.to_vec());
            } else if let Some(last) = groups.last_mut() {
                last.extend_from_slice(chunk);
            }
        }
    }
    let mut groups_of = vec![Vec::new(); n];
    let mut co_members = vec![BTreeSet::new(); n];
    for (g, members) in groups.iter().enumerate() {
        for &u in members {
            groups_of[u].push(g);
            co_members[u].extend(members.iter().copied().filter(|&v| v != u));
        }
    }
    let mut watch_users = Vec::with_capacity(n);
    let mut watch_groups = Vec::with_capacity(n);
    for u in 0..n {
        let mut contacts: Vec<usize> = co_members[u].iter().copied().collect();
        rng.shuffle(&mut contacts);
        contacts.truncate(p.watch_users);
        watch_users.push(contacts);
        let mut chats = groups_of[u].clone();
        rng.shuffle(&mut chats);
        chats.truncate(p.watch_chats);
        watch_groups.push(chats);
    }
    Graph {
        groups,
        groups_of,
        co_members,
        watch_users,
        watch_groups,
    }
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(p.users >= 4, "at least four users");
    anyhow::ensure!(
        p.flap_ms < p.grace_ms && p.offline_secs * 1000.0 > p.grace_ms as f64,
        "flaps must be shorter and churn offline time longer than the grace period"
    );
    let mut report = Report::new("presence", &p.common, &p);
    let g = graph(&p);
    let servers = Servers::start(&p.common, 1).await?;
    let base = servers.urls[0].clone();
    let tag = setup::run_tag();
    let setup_started = Instant::now();
    if !p.common.quiet {
        eprintln!(
            "creating {} users (two Argon2id hashes each) and {} groups…",
            p.users,
            g.groups.len()
        );
    }
    let accounts = setup::accounts(&base, &tag, "p", p.users).await?;
    let chats: Vec<i64> = stream::iter(&g.groups)
        .map(|members| {
            let creator = &accounts[members[0]];
            let rest: Vec<_> = members[1..].iter().map(|&u| accounts[u].clone()).collect();
            let base = base.clone();
            async move { setup::group(&base, creator, &rest).await }
        })
        .buffered(8)
        .map_ok(|c| c.0)
        .try_collect()
        .await?;

    // Roles: the first `churn` fraction of a shuffled order churns, the next
    // `flap` fraction flaps, the next `typists` fraction types.
    let mut order: Vec<usize> = (0..p.users).collect();
    Rng::new(p.seed ^ 0x5eed).shuffle(&mut order);
    let n_churn = ((p.users as f64 * p.churn).round() as usize).min(p.users);
    let n_flap = ((p.users as f64 * p.flap).round() as usize).min(p.users - n_churn);
    let n_typist = ((p.users as f64 * p.typists).round() as usize).min(p.users - n_churn - n_flap);
    let churners = order[..n_churn].to_vec();
    let flappers = order[n_churn..n_churn + n_flap].to_vec();
    let typists = order[n_churn + n_flap..n_churn + n_flap + n_typist].to_vec();
    let mut role_of = vec![OTHER; p.users];
    churners.iter().for_each(|&u| role_of[u] = CHURNER);
    flappers.iter().for_each(|&u| role_of[u] = FLAPPER);
    let roles: Arc<HashMap<i64, usize>> = Arc::new(
        (0..p.users)
            .map(|u| (accounts[u].user_id.0, role_of[u]))
            .collect(),
    );
    let watches: Vec<Watch> = (0..p.users)
        .map(|u| Watch {
            users: g.watch_users[u]
                .iter()
                .map(|&v| accounts[v].user_id.0)
                .collect(),
            chats: g.watch_groups[u].iter().map(|&x| chats[x]).collect(),
        })
        .collect();
    report.note(format!(
        "Setup (accounts, groups; not measured): {:.1} s.",
        setup_started.elapsed().as_secs_f64()
    ));

    let counters = Arc::new(Counters::default());
    let url = client::ws_url(&base);
    let opener = |u: usize| {
        open(
            url.clone(),
            accounts[u].token.clone(),
            watches[u].clone(),
            roles.clone(),
            counters.clone(),
        )
    };
    let connect_started = Instant::now();
    let mut sessions: Vec<Option<Session>> = stream::iter(0..p.users)
        .map(&opener)
        .buffered(64)
        .map_ok(Some)
        .try_collect()
        .await?;
    let connect_secs = connect_started.elapsed().as_secs_f64();
    // Let the online announcements of the connect storm pass.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let cpu = || super::cpu_of(&servers.pids);
    let progress = |what: &str| {
        if !p.common.quiet {
            eprintln!("{what}…");
        }
    };

    // Idle: what the server costs doing nothing, for the same-run comparison.
    progress("idle window");
    counters.phase.store(IDLE, Relaxed);
    let idle_secs = 3.0;
    let c0 = cpu();
    tokio::time::sleep(Duration::from_secs_f64(idle_secs)).await;
    let idle_cpu = cpu().zip(c0).map(|(b, a)| (b - a) / idle_secs);

    // Typing: each typist types in its first group.
    progress("typing");
    counters.phase.store(TYPING, Relaxed);
    let c0 = cpu();
    let typing_started = Instant::now();
    let mut typing_sent = 0u64;
    let mut typing_ideal = 0u64;
    let mut typing_naive = 0u64;
    for round in 0..=p.typing_refreshes {
        let activity = if round == p.typing_refreshes {
            "stopped"
        } else {
            "typing"
        };
        for &u in &typists {
            let grp = g.groups_of[u][0];
            if let Some(s) = &sessions[u] {
                s.cmd.send(Cmd::Typing(chats[grp], activity)).await.ok();
                typing_sent += 1;
                typing_naive += (g.groups[grp].len() - 1) as u64;
                typing_ideal += g.groups[grp]
                    .iter()
                    .filter(|&&v| v != u && g.watch_groups[v].contains(&grp))
                    .count() as u64;
            }
        }
        if round < p.typing_refreshes {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let typing_secs = typing_started.elapsed().as_secs_f64();
    let typing_cpu = cpu().zip(c0).map(|(b, a)| b - a);

    // Churn.
    progress("churn");
    counters.phase.store(CHURN, Relaxed);
    let c0 = cpu();
    let churn_started = Instant::now();
    let t0 = tokio::time::Instant::now();
    stream::iter(churners.iter().filter_map(|&u| sessions[u].take()))
        .for_each_concurrent(64, close)
        .await;
    let flap_at = Duration::from_secs_f64((p.offline_secs / 5.0).min(1.0));
    tokio::time::sleep_until(t0 + flap_at).await;
    stream::iter(flappers.iter().filter_map(|&u| sessions[u].take()))
        .for_each_concurrent(64, close)
        .await;
    tokio::time::sleep(Duration::from_millis(p.flap_ms)).await;
    let reopened: Vec<(usize, Session)> = stream::iter(flappers.iter().copied())
        .map(|u| {
            let f = opener(u);
            async move { f.await.map(|s| (u, s)) }
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    for (u, s) in reopened {
        sessions[u] = Some(s);
    }
    tokio::time::sleep_until(t0 + Duration::from_secs_f64(p.offline_secs)).await;
    let reopened: Vec<(usize, Session)> = stream::iter(churners.iter().copied())
        .map(|u| {
            let f = opener(u);
            async move { f.await.map(|s| (u, s)) }
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    for (u, s) in reopened {
        sessions[u] = Some(s);
    }
    // The last online announcements; flaps' grace periods ended long ago.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let churn_secs = churn_started.elapsed().as_secs_f64();
    let churn_cpu = cpu().zip(c0).map(|(b, a)| b - a);
    counters.phase.store(SETUP, Relaxed);
    stream::iter(sessions.iter_mut().filter_map(Option::take))
        .for_each_concurrent(64, close)
        .await;
    servers.stop().await;

    // What an ideal targeted server sends, and what naive broadcast sends.
    let mut watchers = vec![Vec::new(); p.users];
    for (u, ws) in g.watch_users.iter().enumerate() {
        for &v in ws {
            watchers[v].push(u);
        }
    }
    let churning: BTreeSet<usize> = churners.iter().copied().collect();
    let upper: u64 = churners.iter().map(|&u| 2 * watchers[u].len() as u64).sum();
    let lower: u64 = churners
        .iter()
        .map(|&u| 2 * watchers[u].iter().filter(|w| !churning.contains(w)).count() as u64)
        .sum();
    let changers = churners.iter().chain(&flappers);
    let naive: u64 = changers
        .clone()
        .map(|&u| 2 * g.co_members[u].len() as u64)
        .sum();
    let naive_per_group: u64 = changers
        .clone()
        .map(|&u| {
            2 * g.groups_of[u]
                .iter()
                .map(|&x| (g.groups[x].len() - 1) as u64)
                .sum::<u64>()
        })
        .sum();
    let naive_flaps: u64 = flappers
        .iter()
        .map(|&u| 2 * g.co_members[u].len() as u64)
        .sum();
    let real = 2 * churners.len() as u64;
    let changes = 2 * (churners.len() + flappers.len()) as u64;
    let about_churners = counters.presence_in(CHURN, CHURNER);
    let about_flappers = counters.presence_in(CHURN, FLAPPER);
    let about_others = counters.presence_in(CHURN, OTHER);
    let presence_total = about_churners + about_flappers + about_others;
    let typing_received = counters.typing[TYPING].load(Relaxed);

    report.figure(
        Figure::new(
            "presence frames per real online/offline transition",
            "frames",
            presence_total as f64 / real.max(1) as f64,
        )
        .vs(
            "naive broadcast to co-members",
            Some(naive as f64 / real.max(1) as f64),
        ),
    );
    report.figure(
        Figure::new(
            "presence frames during churn",
            "frames",
            presence_total as f64,
        )
        .vs("naive broadcast to co-members", Some(naive as f64)),
    );
    report.figure(
        Figure::new(
            "presence frames about flapping users",
            "frames",
            about_flappers as f64,
        )
        .vs("naive broadcast", Some(naive_flaps as f64)),
    );
    report.figure(
        Figure::new("typing frames delivered", "frames", typing_received as f64)
            .vs("naive broadcast to members", Some(typing_naive as f64)),
    );
    if let Some(c) = churn_cpu {
        report.figure(Figure::new("server CPU during churn", "s", c).vs(
            "idle server, same duration",
            idle_cpu.map(|i| i * churn_secs),
        ));
        report.figure(Figure::new(
            "server CPU per connection change (churn, minus idle)",
            "ms",
            (c - idle_cpu.unwrap_or(0.0) * churn_secs) * 1000.0 / changes.max(1) as f64,
        ));
    }
    if let Some(c) = typing_cpu {
        report.figure(Figure::new("server CPU during typing", "s", c).vs(
            "idle server, same duration",
            idle_cpu.map(|i| i * typing_secs),
        ));
    }
    report.figure(Figure::new(
        "connect + watch rate (setup)",
        "conn/s",
        p.users as f64 / connect_secs.max(1e-9),
    ));
    report.count("users", p.users as u64);
    report.count("groups", g.groups.len() as u64);
    report.count("churning users", churners.len() as u64);
    report.count("flapping users", flappers.len() as u64);
    report.count("real transitions", real);
    report.count("connection changes", changes);
    report.count("presence frames about churners", about_churners);
    report.count("presence frames about flappers", about_flappers);
    report.count("presence frames about others", about_others);
    report.count("targeted lower bound", lower);
    report.count("targeted upper bound", upper);
    report.count("naive broadcast, deduplicated", naive);
    report.count("naive broadcast, per group", naive_per_group);
    report.count("typing frames sent", typing_sent);
    report.count("typing frames received", typing_received);
    report.count("typing ideal (chat watchers)", typing_ideal);
    report.count("typing naive (all members)", typing_naive);
    report.count("watching replies", counters.watching.load(Relaxed));
    report.count("errors", counters.errors.load(Relaxed));
    let first_error = counters
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    report.check(
        "no error frames",
        counters.errors.load(Relaxed) == 0,
        first_error.unwrap_or_else(|| "none".into()),
    );
    report.check(
        "presence about churners within the targeted bounds",
        (lower..=upper).contains(&about_churners),
        format!("{lower} ≤ {about_churners} ≤ {upper}"),
    );
    report.check(
        "flaps within the grace period announce nothing",
        about_flappers == 0,
        format!("{about_flappers} frames"),
    );
    report.check(
        "nobody else is announced",
        about_others == 0,
        format!("{about_others} frames"),
    );
    report.check(
        "typing reaches at most the chat's watchers",
        typing_received <= typing_ideal,
        format!("{typing_received} received, {typing_ideal} watcher-frames"),
    );
    report.note(format!(
        "Graph: {} users, {} groups of {}, {} groups per user; each user watches {} co-members and {} of its groups. \
         Churn: {} users offline {:.1} s (> grace {} ms) then back; {} users flap for {} ms. \
         Targeted bounds: each churner's two transitions to its watchers that did not churn (lower) or to all its watchers (upper). \
         Naive: every connection change (flaps included, no grace) to every distinct co-member; per group: once per shared group. \
         Churn window {churn_secs:.1} s, typing window {typing_secs:.1} s.",
        p.users, g.groups.len(), p.group_size, p.groups_per_user, p.watch_users, p.watch_chats,
        churners.len(), p.offline_secs, p.grace_ms, flappers.len(), p.flap_ms
    ));
    Ok(report)
}
