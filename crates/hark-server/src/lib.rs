//! The Hark server: configuration, services, HTTP API and WebSocket gateway.
//!
//! [`build`] makes the application state from a [`Config`]; [`serve`] runs it
//! on an already-bound listener until a shutdown future resolves, so tests
//! pass a port-0 listener.

mod audit;
pub mod auth;
mod bus_repair;
mod devices;
pub mod event_export;
/// The configuration, in its own crate (`hark-config`) so the fuzz targets can parse it.
pub use hark_config as config;
pub mod error;
mod export;
#[cfg(test)]
mod fixtures;
mod health;
mod http;
pub mod jobs;
pub mod limits;
mod listen;
pub mod media;
pub mod memory;
pub mod messaging;
pub mod metrics;
pub mod presence;
pub mod push;
mod retention;
pub mod scope;
mod shutdown;
mod signalr;
pub mod sso;
pub mod state;
pub mod tls;
pub mod two_factor;
mod validate;
mod web;
pub mod webhooks;
mod ws;

use anyhow::Context;
use config::{Config, ServeArgs};
use hark_bus::{Bus, Hub, InProcessBus, NatsBus, NatsOptions};
use hark_store::postgres::PostgresStore;
use hark_store::sqlite::{SqliteOptions, SqliteStore};
use hark_store::Store;
use state::{App, AppState};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A built server: its state (the store inside it is closed on shutdown).
pub struct Server {
    pub state: AppState,
    /// The certificate when Hark terminates TLS itself (`[tls]`).
    pub tls: Option<Arc<tls::Certificate>>,
    /// `[metrics] addr`, bound as the server is built (so it answers as
    /// soon as the server does).
    metrics_listener: Option<TcpListener>,
}

/// Opens the store and wires hub, bus and store together.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    config.validate()?;
    let tls = tls::Certificate::from_config(&config.tls)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let node_id = config.node_id()?;
    // With metrics off nothing is recorded: the facade's calls stay no-ops.
    if config.metrics.token.is_some() || config.metrics.addr.is_some() {
        metrics::install();
    }
    let hub = Hub::new();
    let bus = open_bus(&config, &node_id, &hub).await?;
    let commits = Arc::new(messaging::CommitsToBus {
        bus,
        followed: Arc::new(webhooks::Followed::default()),
        outbox: Arc::new(event_export::Outbox::new(&config.export)),
    });
    let store = open_store(&config, commits.clone()).await?;
    let push = push::Push::start(&config.push, store.as_ref())
        .await
        .context("loading the VAPID key")?;
    let state = Arc::new(
        App::new(config, node_id, store, hub, &commits, push).context("starting threads")?,
    );
    // Users this node held when it last stopped or died are offline now.
    jobs::heartbeat(&state, true).await;
    let metrics_listener = match state.config.metrics.addr {
        Some(addr) => Some(bind(addr).with_context(|| format!("binding metrics.addr {addr}"))?),
        None => None,
    };
    Ok(Server {
        state,
        tls,
        metrics_listener,
    })
}

/// The bound on writes waiting for the database (`limits.write_queue`).
fn write_queue(config: &Config) -> hark_store::WriteQueue {
    hark_store::WriteQueue {
        capacity: config.limits.write_queue,
        wait: std::time::Duration::from_millis(config.limits.write_queue_wait_ms),
    }
}

/// The store the configuration names: PostgreSQL, or the embedded SQLite
/// database in the data directory.
async fn open_store(
    config: &Config,
    listener: Arc<dyn hark_store::CommitListener>,
) -> anyhow::Result<Arc<dyn Store>> {
    use secrecy::ExposeSecret;
    let Some(url) = &config.database else {
        let path = config.database_path();
        let options = SqliteOptions {
            queue: write_queue(config),
            commit_nice: config.sqlite.commit_nice,
        };
        let store = SqliteStore::open_with(&path, listener, options)
            .with_context(|| format!("opening database {}", path.display()))?;
        return Ok(Arc::new(store));
    };
    let url = url.expose_secret();
    let store = PostgresStore::connect_with(url, listener, write_queue(config))
        .await
        .context("connecting to PostgreSQL")?;
    tracing::info!("store: PostgreSQL");
    Ok(Arc::new(store))
}

/// The bus the configuration names: NATS between nodes, or in-process.
async fn open_bus(config: &Config, node_id: &str, hub: &Arc<Hub>) -> anyhow::Result<Arc<dyn Bus>> {
    use secrecy::ExposeSecret;
    let Some(url) = &config.bus else {
        return Ok(Arc::new(InProcessBus::new(hub.clone())));
    };
    let url = url.expose_secret();
    let options = NatsOptions::new(url, config.bus_prefix.as_str()).node_id(node_id);
    let bus = NatsBus::connect_with(options, hub.clone())
        .await
        .context("connecting to the NATS bus")?;
    tracing::info!(node_id, prefix = %config.bus_prefix, "bus: NATS");
    Ok(Arc::new(bus))
}

/// Serves until `shutdown` resolves, then closes every WebSocket with a
/// reason, finishes in-flight requests and lets the store commit what it holds.
pub async fn serve(
    server: Server,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let Server {
        state,
        tls,
        metrics_listener,
    } = server;
    let mut background = jobs::spawn(&state);
    background.extend(bus_repair::spawn(&state));
    background.push(tokio::spawn(media::sweep_forever(state.clone())));
    background.push(tokio::spawn(audit::sweep_forever(state.clone())));
    background.push(tokio::spawn(retention::sweep_forever(state.clone())));
    background.push(tokio::spawn(devices::sweep_forever(state.clone())));
    background.push(tokio::spawn(webhooks::wake_forever(state.clone())));
    background.push(tokio::spawn(event_export::run_forever(state.clone())));
    background.push(tokio::spawn(limits::tidy_forever(state.clone())));
    background.push(tokio::spawn(memory::trim_forever(state.clone())));
    let app = http::router(state.clone());
    let signal_state = state.clone();
    let stopping = async move {
        shutdown.await;
        signal_state.shutdown.trigger();
        signal_state.hub.close_all();
    };
    if let Some(admin) = metrics_listener {
        tracing::info!(addr = %admin.local_addr()?, "metrics on their own address");
        let admin_state = state.clone();
        let router = metrics::admin_router(state.clone());
        background.push(tokio::spawn(async move {
            let stop = async move { admin_state.shutdown.wait().await };
            if let Err(e) = axum::serve(admin, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "the metrics address stopped");
            }
        }));
    }
    let header_timeout = Duration::from_secs(state.config.limits.header_timeout_secs);
    match tls {
        Some(certificate) => {
            let every = Duration::from_secs(state.config.tls.reload_secs);
            let watch_state = state.clone();
            background.push(tokio::spawn(certificate.clone().watch(every, async move {
                watch_state.shutdown.wait().await;
            })));
            let listener = tls::TlsListener::new(listener, &certificate)?;
            listen::serve(listener, app, header_timeout, stopping).await;
        }
        None => {
            // Acks and events are small writes that must leave at once; with
            // Nagle on, one waits ~40 ms for the peer's delayed ACK (measured
            // in docs/benchmarks.md: 25x lower p99 with it off).
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY");
                }
            });
            listen::serve(listener, app, header_timeout, stopping).await;
        }
    }
    // This node's users go offline now (announced by the other nodes'
    // workers, or by this node's at its next start), not once it is found gone.
    if let Err(e) = state.store.node_stopped(&state.node_id, now_ms()).await {
        tracing::warn!(error = %e, "removing this node's presence");
    }
    for task in background {
        let _ = task.await;
    }
    // The last events (the closes' presence news) go out before the bus does.
    state.bus.close().await;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.close())
        .await
        .context("closing the store")?;
    Ok(())
}

/// `hark admin grant`: makes a user a server admin (or, with
/// `Role::User`, takes it back) straight in the store the configuration
/// names, on the server machine, whether the server runs or not.
pub async fn grant_role(
    args: &ServeArgs,
    username: &str,
    role: hark_proto::Role,
) -> anyhow::Result<hark_proto::AdminUser> {
    let config = Config::load(args)?;
    let store = open_store(&config, Arc::new(NoDeliveries)).await?;
    let result = async {
        let creds = store
            .credentials(username)
            .await?
            .with_context(|| format!("no user {username:?}"))?;
        store.set_role(creds.user.id, role).await?;
        let action = if role.is_admin() {
            "admin_grant_admin"
        } else {
            "admin_revoke_admin"
        };
        tracing::info!(
            target: "hark::audit",
            action,
            user = %creds.user.id,
            "admin action on the server machine"
        );
        // No actor: whoever runs it on the server machine.
        store
            .append_audit(hark_store::audit::NewAudit {
                action,
                target_user: Some(creds.user.id),
                detail: [("via".to_owned(), "hark admin grant".to_owned())].into(),
                ..Default::default()
            })
            .await?;
        store
            .admin_user(creds.user.id)
            .await?
            .context("the user is gone")
    }
    .await;
    tokio::task::spawn_blocking(move || store.close()).await?;
    result
}

/// Commits made outside a serving node (`hark admin grant`) have no
/// sockets to reach; a role change writes no events anyway.
struct NoDeliveries;

impl hark_store::CommitListener for NoDeliveries {
    fn committed(&self, _: Vec<hark_store::Delivery>) {}
}

/// `hark serve`: load config, bind, print where it listens, serve until Ctrl-C / SIGTERM.
pub async fn run_from_args(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let config = Config::load(&args)?;
    let listener = bind(config.addr).with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let data_dir = config.data_dir.clone();
    let server = build(config).await?;
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "hark listening on {scheme}://{addr} (data in {})",
        data_dir.display()
    );
    tracing::info!(%addr, node_id = %server.state.node_id, "listening");
    serve(server, listener, shutdown_signal()).await
}

/// How many connections may wait to be accepted (the kernel caps it at
/// `net.core.somaxconn`, 4096 on these machines). With tokio's default of
/// 1,024, the benchmark runs that open 10,000–19,000 sockets at once (a
/// restart's reconnect storm) left the kernel counting 24,202 listen-queue
/// overflows; a dropped SYN is retried by the client only after 1 s.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listening socket, with address reuse (a restart does not wait
/// for old connections' TIME_WAIT) and a deep accept queue.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Logs to stderr, filtered by `HARK_LOG` (default `info`): one JSON
/// object per line with `HARK_LOG_FORMAT=json` (for a log collector), else
/// text, coloured only at a terminal. Every line inside a request, socket
/// or job carries its span (`request{id=…}`, `job{id=… kind=…}`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HARK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("HARK_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Milliseconds since the Unix epoch.
/// The moment `days` days before now, in ms since the epoch: a retention's
/// cutoff.
pub(crate) fn days_ago(days: u32) -> i64 {
    now_ms().saturating_sub(i64::from(days) * hark_store::admin::DAY_MS)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
