//! Server configuration: defaults, overridden by a TOML file, overridden by
//! flags and `HARK_*` environment variables.

use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `hark serve` flags; each also reads a `HARK_*` environment variable.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below.
    #[arg(long, env = "HARK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "HARK_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Directory for the SQLite database and the node id [default: ./hark-data].
    #[arg(long, env = "HARK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The database: a `postgres://…` URL for a cluster; without it, the
    /// embedded SQLite database in the data directory. TLS as libpq's
    /// `?sslmode=disable|prefer|require|verify-ca|verify-full` (default
    /// prefer) with `&sslrootcert=<CA file>` (see docs/deploy.md).
    #[arg(long, env = "HARK_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// The bus between nodes: a `nats://…` URL for a cluster; without it,
    /// the in-process bus of a single node.
    #[arg(long, env = "HARK_BUS", hide_env_values = true)]
    pub bus: Option<String>,
    /// This node's id, unique in the cluster [default: generated once and
    /// kept in the data directory's `node-id` file].
    #[arg(long, env = "HARK_NODE_ID")]
    pub node_id: Option<String>,
    /// Most members a group may have [default: 1024].
    #[arg(long, env = "HARK_MAX_GROUP_MEMBERS")]
    pub max_group_members: Option<usize>,
    /// Browser origins allowed to open WebSockets, comma-separated (the
    /// server's own origin is always allowed).
    #[arg(long, env = "HARK_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
}

/// The settings the server runs with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://…`, or `None` for the embedded SQLite store. A secret:
    /// the URL may hold a password, so it never reaches a log or `Debug`.
    pub database: Option<SecretString>,
    /// `nats://…`, or `None` for the in-process bus. A secret like `database`.
    pub bus: Option<SecretString>,
    /// Subjects on the bus start with this, so clusters (and tests) can
    /// share one NATS.
    pub bus_prefix: String,
    /// This node's id; see [`Config::node_id`].
    pub node_id: Option<String>,
    pub max_group_members: usize,
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    /// How nodes tell each other they are alive (the `[cluster]` table).
    pub cluster: Cluster,
    /// The job queue's workers (the `[jobs]` table).
    pub jobs: Jobs,
    /// Uploaded files: where they are kept and how large they may be (the
    /// `[media]` table).
    pub media: Media,
    /// Push notifications to devices without a connection (the `[push]` table).
    pub push: Push,
    /// Prometheus metrics (the `[metrics]` table).
    pub metrics: Metrics,
}

/// Uploaded files.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Media {
    /// The directory the files are kept in; `media` inside the data
    /// directory when not set.
    pub dir: Option<PathBuf>,
    /// Largest image, bytes.
    pub image_max_bytes: u64,
    /// Largest video, audio or other file, bytes.
    pub max_bytes: u64,
    /// Most pixels (width × height) an image may have.
    pub max_pixels: u64,
    /// Milliseconds after its upload that a file no message carries is
    /// removed (a file is sent within half of it or not at all).
    pub unreferenced_grace_ms: u64,
    /// Milliseconds between two sweeps for such files.
    pub sweep_ms: u64,
    /// Bytes of files one user may keep (uploads not yet swept count).
    pub quota_bytes_per_user: u64,
    /// Uploads one device may start per minute (bursts up to that many).
    pub uploads_per_minute: u32,
    /// Bytes per second all uploads of a node may write together (0: no
    /// limit), so they leave the disk to the database's commits.
    pub upload_bytes_per_second: u64,
    /// Bytes decoding one image (for its thumbnail) may allocate; a
    /// decompression bomb is refused with `413 too_large`.
    pub image_decode_max_bytes: u64,
    /// Milliseconds a resumable upload may take, from its start until it is
    /// completed; after that it and its pieces are removed.
    pub upload_expiry_ms: u64,
    /// Keep the files in an S3-compatible bucket instead of `dir` (the
    /// `[media.s3]` table): what a cluster's nodes share.
    pub s3: Option<S3>,
}

/// An S3-compatible bucket for uploaded files. Credentials not given here
/// come from the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
/// `AWS_SESSION_TOKEN` environment variables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    pub bucket: String,
    /// The service's URL (`http://` only for a service on a trusted
    /// network); AWS itself when not set.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "S3::default_region")]
    pub region: String,
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// A secret: never logged or shown by `Debug`.
    #[serde(default)]
    pub secret_access_key: Option<SecretString>,
    /// Keys start with this (several deployments, or tests, in one bucket).
    #[serde(default)]
    pub prefix: String,
    /// Addresses the bucket as `<endpoint>/<bucket>` rather than
    /// `<bucket>.<endpoint>` (most self-hosted services want this).
    #[serde(default = "S3::default_path_style")]
    pub path_style: bool,
    /// Clients put resumable uploads straight into the bucket and fetch
    /// files from it, with presigned URLs; the server only checks and
    /// records them (the bucket must allow the web client's origin: CORS).
    #[serde(default)]
    pub direct: bool,
    /// Seconds a presigned URL works.
    #[serde(default = "S3::default_presign_secs")]
    pub presign_secs: u64,
}

impl S3 {
    fn default_presign_secs() -> u64 {
        15 * 60
    }

    fn default_region() -> String {
        "us-east-1".into()
    }

    fn default_path_style() -> bool {
        true
    }
}

impl Default for Media {
    fn default() -> Self {
        Media {
            dir: None,
            image_max_bytes: 16 * 1024 * 1024,
            max_bytes: 100 * 1024 * 1024,
            max_pixels: 50_000_000,
            unreferenced_grace_ms: 24 * 60 * 60 * 1000,
            sweep_ms: 10 * 60 * 1000,
            quota_bytes_per_user: 10 * 1024 * 1024 * 1024,
            uploads_per_minute: 60,
            upload_bytes_per_second: 64 * 1024 * 1024,
            image_decode_max_bytes: 256 * 1024 * 1024,
            upload_expiry_ms: 24 * 60 * 60 * 1000,
            s3: None,
        }
    }
}

/// Node heartbeats: a node silent for `node_timeout_ms` is taken for dead,
/// its users no longer count as online, and the others announce them offline.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// Milliseconds between a node's heartbeats (each also sweeps gone nodes).
    pub heartbeat_ms: u64,
    /// Milliseconds of silence after which a node is gone. Keep it well above
    /// `heartbeat_ms` and the clock skew between nodes.
    pub node_timeout_ms: u64,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            heartbeat_ms: 5_000,
            node_timeout_ms: 20_000,
        }
    }
}

/// `GET /metrics` (Prometheus text format).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// The bearer token a scraper sends; without one, `/metrics` is off
    /// (404). A secret: never logged.
    pub token: Option<SecretString>,
}

/// Push notifications: Web Push and webhooks (docs/push.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Push {
    /// Who runs this server, for push services (VAPID's `sub`): a
    /// `mailto:` or `https:` URL.
    pub contact: String,
    /// Hosts (`name` or `name:port`) a subscription or webhook may use
    /// although they are not public: over plain `http`, and resolving to
    /// loopback or private addresses. Empty by default; a relay on the
    /// operator's own network, and the tests' local push endpoint, go here.
    pub allow_hosts: Vec<String>,
    /// Subscriptions one device may have.
    pub max_per_device: u32,
    /// Milliseconds a push service or webhook may take to answer.
    pub timeout_ms: u64,
    /// How long a push service keeps trying to reach an offline browser
    /// (the `TTL` header), seconds.
    pub ttl_secs: u64,
}

impl Default for Push {
    fn default() -> Self {
        Push {
            contact: "mailto:admin@localhost".into(),
            allow_hosts: Vec::new(),
            max_per_device: 5,
            timeout_ms: 10_000,
            ttl_secs: 24 * 60 * 60,
        }
    }
}

/// The workers that run jobs on this node.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Jobs {
    /// Milliseconds between looks for due jobs when no job is known to be
    /// waiting (a job this node writes wakes its workers at once).
    pub poll_ms: u64,
    /// Milliseconds a claimed job is this node's: a job still running then
    /// is given up (it fails and is retried), and a job whose node died
    /// then runs elsewhere.
    pub lease_ms: u64,
    /// Jobs this node runs at once.
    pub concurrency: usize,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            poll_ms: 1_000,
            lease_ms: 30_000,
            concurrency: 8,
        }
    }
}

/// Limits on what clients may send and hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest WebSocket message, bytes.
    pub max_frame_bytes: usize,
    /// Longest message text, bytes.
    pub max_text_bytes: usize,
    /// Largest HTTP request body, bytes.
    pub max_body_bytes: usize,
    /// Frames per second per connection, sustained; bursts may reach twice that.
    pub frames_per_second: u32,
    /// Events queued for a connection before it counts as a slow consumer.
    pub outbound_queue: usize,
    /// Open WebSockets per user.
    pub connections_per_user: usize,
    /// Open WebSockets per client IP address.
    pub connections_per_address: usize,
    /// Seconds a new WebSocket has to authenticate.
    pub auth_timeout_secs: u64,
    /// Seconds without any frame from the client before the server closes.
    pub idle_timeout_secs: u64,
    /// Seconds between pings to sockets that authenticated in a frame (the
    /// browser client): a dropped network shows within about
    /// `heartbeat_timeout_secs` instead of the idle timeout.
    pub heartbeat_ping_secs: u64,
    /// Seconds without any frame (a pong counts) after which such a socket
    /// is taken for dead and closed.
    pub heartbeat_timeout_secs: u64,
    /// Most events in one sync answer.
    pub max_sync_page: u32,
    /// Login attempts per username per minute.
    pub logins_per_minute: u32,
    /// Milliseconds a user stays "online" after their last connection closes,
    /// so a flapping connection does not announce every drop.
    pub presence_grace_ms: u64,
    /// Milliseconds a typing indicator shows unless refreshed.
    pub typing_ttl_ms: u64,
    /// Typing frames per second per connection (bursts of twice that).
    pub typing_per_second: u32,
    /// Seconds after sending during which the sender may edit a message.
    pub edit_window_secs: u64,
    /// Seconds after sending during which the sender may delete a message
    /// for everyone (group admins may at any time).
    pub delete_window_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("hark-data"),
            database: None,
            bus: None,
            bus_prefix: "hark".into(),
            node_id: None,
            max_group_members: 1024,
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            cluster: Cluster::default(),
            jobs: Jobs::default(),
            media: Media::default(),
            push: Push::default(),
            metrics: Metrics::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_text_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            frames_per_second: 200,
            outbound_queue: 1024,
            connections_per_user: 32,
            connections_per_address: 10_000,
            auth_timeout_secs: 10,
            idle_timeout_secs: 90,
            heartbeat_ping_secs: 3,
            heartbeat_timeout_secs: 7,
            max_sync_page: 500,
            logins_per_minute: 10,
            presence_grace_ms: 3_000,
            typing_ttl_ms: 6_000,
            typing_per_second: 3,
            edit_window_secs: 15 * 60,
            delete_window_secs: 2 * 24 * 60 * 60,
        }
    }
}

impl Limits {
    /// The edit and delete windows as the store takes them.
    pub fn windows(&self) -> hark_store::Windows {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        hark_store::Windows {
            edit_ms: ms(self.edit_window_secs),
            delete_ms: ms(self.delete_window_secs),
        }
    }
}

impl Config {
    /// Builds the configuration from the file named by `args` (if any) and the args.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut config = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        if let Some(addr) = args.addr {
            config.addr = addr;
        }
        if let Some(dir) = &args.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &args.database {
            config.database = Some(SecretString::from(url.as_str()));
        }
        if let Some(url) = &args.bus {
            config.bus = Some(SecretString::from(url.as_str()));
        }
        if let Some(id) = &args.node_id {
            config.node_id = Some(id.clone());
        }
        if let Some(max) = args.max_group_members {
            config.max_group_members = max;
        }
        if let Some(origins) = &args.allowed_origins {
            config.allowed_origins = origins.clone();
        }
        Ok(config)
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Where uploaded files are kept.
    pub fn media_dir(&self) -> PathBuf {
        self.media
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("media"))
    }

    /// Where the SQLite database lives.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("hark.db")
    }

    /// This node's id: the configured one, else the one kept in the data
    /// directory's `node-id` file, else a new random one written there, so
    /// a node keeps its id across restarts.
    pub fn node_id(&self) -> anyhow::Result<String> {
        use anyhow::Context;
        if let Some(id) = &self.node_id {
            return valid_node_id(id);
        }
        let path = self.data_dir.join("node-id");
        match std::fs::read_to_string(&path) {
            Ok(kept) => valid_node_id(kept.trim())
                .with_context(|| format!("the node id in {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = format!("node-{:08x}", rand::random::<u32>());
                std::fs::write(&path, format!("{id}\n"))
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(id)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// A node id names subjects and log lines: 1–64 letters, digits, `-` or `_`.
fn valid_node_id(id: &str) -> anyhow::Result<String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    anyhow::ensure!(ok, "node id {id:?}: use 1-64 letters, digits, '-' or '_'");
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_node_keeps_the_id_it_was_given_or_made() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().into(),
            ..Config::default()
        };
        let first = config.node_id().unwrap();
        assert!(first.starts_with("node-"));
        assert_eq!(config.node_id().unwrap(), first, "kept across restarts");
        let named = Config {
            node_id: Some("a-1".into()),
            ..config.clone()
        };
        assert_eq!(named.node_id().unwrap(), "a-1");
        let bad = Config {
            node_id: Some("a b".into()),
            ..config
        };
        assert!(bad.node_id().is_err());
    }

    #[test]
    fn database_and_bus_urls_come_from_file_and_flags_and_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hark.toml");
        std::fs::write(
            &file,
            "database = \"postgres://hark:hunter2@db/hark\"\nbus_prefix = \"blue\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            bus: Some("nats://10.0.0.5:4222".into()),
            ..ServeArgs::default()
        };
        let config = Config::load(&args).unwrap();
        let db = config.database.as_ref().unwrap().expose_secret().to_owned();
        assert_eq!(db, "postgres://hark:hunter2@db/hark");
        assert_eq!(
            config.bus.as_ref().unwrap().expose_secret(),
            "nats://10.0.0.5:4222"
        );
        assert_eq!(config.bus_prefix, "blue");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
