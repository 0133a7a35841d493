//! Server configuration: defaults, overridden by a TOML file, overridden by
//! flags and `HARK_*` environment variables.

use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};
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
    /// Subjects on the bus start with this, so clusters can share one NATS
    /// [default: hark].
    #[arg(long, env = "HARK_BUS_PREFIX")]
    pub bus_prefix: Option<String>,
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The database: a `postgres://…` URL for a cluster (TLS options: docs/deploy.md); not set,
    /// the embedded SQLite store in `data_dir`. A secret: the URL may hold
    /// a password, so it never reaches a log.
    #[serde(serialize_with = "redacted")]
    pub database: Option<SecretString>,
    /// The bus between nodes: a `nats://…` URL for a cluster; not set, the
    /// in-process bus of one node. A secret like `database`.
    #[serde(serialize_with = "redacted")]
    pub bus: Option<SecretString>,
    /// Subjects on the bus start with this, so clusters (and tests) can
    /// share one NATS.
    pub bus_prefix: String,
    /// This node's id, unique in the cluster: 1-64 letters, digits, `-` or
    /// `_`; not set, one is made once and kept in the data directory's
    /// `node-id` file.
    pub node_id: Option<String>,
    pub max_group_members: usize,
    pub allowed_origins: Vec<String>,
    /// Networks of the proxies or load balancers in front of Hark
    /// (`["10.0.0.0/8", "127.0.0.1/32"]`). A request from one of them is
    /// taken to come from the address it names in `X-Forwarded-For` (the
    /// nearest one that is not itself a trusted proxy): that address is
    /// what the audit log records and what `connections_per_address`
    /// counts. Empty: the TCP peer, whatever the header says.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub limits: Limits,
    /// The embedded SQLite store (the `[sqlite]` table).
    pub sqlite: Sqlite,
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
    /// HTTPS and WSS served by Hark itself (the `[tls]` table).
    pub tls: Tls,
    /// The audit log of security events (the `[audit]` table).
    pub audit: Audit,
    /// Disappearing messages and the server's message retention (the
    /// `[retention]` table).
    pub retention: Retention,
    /// Logging out devices nobody uses (the `[devices]` table).
    pub devices: Devices,
    /// Signing in through the organisation's OpenID provider (the `[sso]`
    /// table).
    pub sso: Sso,
    /// What every account must do to sign in (the `[accounts]` table).
    pub accounts: Accounts,
    /// Bot accounts (the `[bots]` table).
    pub bots: Bots,
    /// Outgoing webhooks of bots and chats (the `[webhooks]` table).
    pub webhooks: Webhooks,
    /// Exporting chat events to the organisation's queue (the `[export]`
    /// table).
    pub export: Export,
}

/// What every account must do to sign in (docs/protocol.md "Your account").
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    /// Every account must use two-factor authentication: one that has not
    /// turned it on may, once logged in, only enrol
    /// (`two_factor_setup_required` for everything else). Accounts that
    /// sign in through single sign-on count as having a second factor
    /// (their provider's).
    pub require_two_factor: bool,
}

/// Bot accounts (docs/protocol.md "Bots").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bots {
    /// Any user may make bots; `false`: only admins.
    pub users_may_create: bool,
    /// Most bots one user may own (admins too).
    pub max_per_owner: u32,
}

impl Default for Bots {
    fn default() -> Self {
        Bots {
            users_may_create: true,
            max_per_owner: 20,
        }
    }
}

/// Outgoing webhooks (docs/protocol.md "Webhooks"). Their URLs pass the
/// same checks as push webhooks (`push.allow_hosts` names the hosts
/// allowed although not public), and a call may take `push.timeout_ms`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhooks {
    /// Calls failed in a row (each retried with a growing delay) after
    /// which a webhook is turned off.
    pub disable_after: u32,
    /// Milliseconds between looks for webhooks behind their events (a
    /// commit on this node wakes them at once; this catches the rest).
    pub sweep_ms: u64,
    /// Most webhooks one bot or chat may have.
    pub max_per_target: u32,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            disable_after: 10,
            sweep_ms: 5_000,
            max_per_target: 10,
        }
    }
}

/// The kinds of events an export carries (docs/integrations.md).
pub const EXPORT_KINDS: [&str; 7] = [
    "message_created",
    "message_edited",
    "message_deleted",
    "member_joined",
    "member_left",
    "reaction",
    "chat_created",
];

/// Exporting chat events to the organisation's own queue
/// (docs/integrations.md "Exporting events"). Off unless `rabbitmq_url`
/// is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Export {
    /// The RabbitMQ to publish to: `amqp://user:password@host:5672/%2f`
    /// (or `amqps://`). A secret: never logged. Not set: nothing is
    /// exported, and commits write no export rows.
    #[serde(serialize_with = "redacted")]
    pub rabbitmq_url: Option<SecretString>,
    /// The durable topic exchange events are published to (made if
    /// missing); routing keys are `<kind>.<chat id>`.
    pub exchange: String,
    /// Only these kinds (`message_created`, `message_edited`,
    /// `message_deleted`, `member_joined`, `member_left`, `reaction`,
    /// `chat_created`); empty: all.
    pub kinds: Vec<String>,
    /// Only these chats (ids); empty: all.
    pub chats: Vec<i64>,
    /// Events published per batch (each batch waits for the broker's
    /// confirms before the next).
    pub batch: u32,
    /// Milliseconds between looks for events when no commit on this node
    /// said there are some.
    pub poll_ms: u64,
}

impl Default for Export {
    fn default() -> Self {
        Export {
            rabbitmq_url: None,
            exchange: "hark.events".into(),
            kinds: Vec::new(),
            chats: Vec::new(),
            batch: 200,
            poll_ms: 1_000,
        }
    }
}

impl Export {
    /// Whether events are exported at all.
    pub fn enabled(&self) -> bool {
        self.rabbitmq_url.is_some()
    }

    /// Whether an event of `kind` in `chat` is exported.
    pub fn exports(&self, chat: i64, kind: &str) -> bool {
        (self.chats.is_empty() || self.chats.contains(&chat))
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
    }
}

/// Single sign-on through an OpenID Connect provider (docs/protocol.md
/// "Single sign-on").
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sso {
    /// The provider's issuer URL (its discovery document is
    /// `<issuer>/.well-known/openid-configuration`): `https`, or `http` on
    /// a loopback address. Not set: single sign-on is off.
    pub issuer: Option<String>,
    /// This server's client id at the provider.
    pub client_id: String,
    /// Its client secret. A secret: never logged.
    #[serde(serialize_with = "redacted")]
    pub client_secret: Option<SecretString>,
    /// This server's address as browsers reach it (`https://chat.example.com`):
    /// the redirect URI to register at the provider is
    /// `<public_url>/v1/sso/callback`.
    pub public_url: Option<String>,
    /// What the sign-in button says (`Sign in with Example Corp`); empty:
    /// "Sign in with single sign-on".
    pub label: String,
    /// Single sign-on is the only way in: registering and logging in with
    /// a password are refused (`sso_required`).
    pub only: bool,
}

/// Devices left unused (docs/protocol.md "Devices").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Devices {
    /// Days a device may go without using its token (no request, no open
    /// WebSocket) before it is logged out: its token is then refused as
    /// `token_expired`, its push subscriptions and end-to-end keys are
    /// removed, and the audit log records `device_expired`. 0 keeps devices
    /// logged in for ever.
    pub idle_days: u32,
    /// Milliseconds between looks for idle devices; each look also records
    /// the use of the devices with a WebSocket open on this node.
    pub sweep_ms: u64,
}

impl Default for Devices {
    fn default() -> Self {
        Devices {
            idle_days: 90,
            sweep_ms: 3_600_000,
        }
    }
}

/// The embedded SQLite store (without `database`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sqlite {
    /// The nice value (-20 to 19, lower runs sooner) the store's writer and
    /// sync threads ask for: every write passes through them, so on a busy
    /// machine they get a larger share of the CPU than the threads that
    /// feed them (docs/benchmarks.md, "The commit path's threads first").
    /// Below 0 needs `CAP_SYS_NICE` or a `LimitNICE=` that allows it
    /// (deploy/hark.service sets one); without, they stay at the process's
    /// priority and the log says so once. 0 leaves them alone.
    pub commit_nice: i32,
}

impl Default for Sqlite {
    fn default() -> Self {
        Sqlite { commit_nice: -10 }
    }
}

/// The audit log (docs/operations.md "Audit log").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audit {
    /// Days a row is kept; older ones are removed (the chain stays
    /// verifiable: it keeps the hash the oldest kept row builds on). 0 keeps
    /// every row for ever.
    pub retention_days: u32,
    /// Milliseconds between looks for rows past their retention.
    pub sweep_ms: u64,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            retention_days: 0,
            sweep_ms: 3_600_000,
        }
    }
}

/// Disappearing messages and retention (docs/operations.md "Retention").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Days a message is kept on the server, in every chat; older ones are
    /// removed as chats' disappearing-messages timers remove theirs (text,
    /// file, reactions, search entry) and devices are told. 0 keeps
    /// messages for ever (a chat's own timer still applies).
    pub messages_days: u32,
    /// Milliseconds between looks for messages whose time is up: how late a
    /// disappearing message may go at most, beyond its expiry.
    pub sweep_ms: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            messages_days: 0,
            sweep_ms: 5_000,
        }
    }
}

/// HTTPS and WSS without a proxy in front: the certificate and key files
/// (PEM), read again when they change. HTTP/2 and HTTP/1.1 are offered
/// (ALPN); a browser whose page came over HTTP/2 opens the WebSocket over it
/// too (an extended `CONNECT`, RFC 8441), which Hark answers. Without them
/// Hark serves plain HTTP (behind a TLS-terminating balancer, as in
/// docs/deploy.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain, PEM (the server's certificate first).
    pub cert: Option<PathBuf>,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Seconds between looks at the files; a change is loaded without a
    /// restart (new connections get the new certificate).
    pub reload_secs: u64,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            cert: None,
            key: None,
            reload_secs: 10,
        }
    }
}

/// Uploaded files.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    /// The bucket's name (required when the table is given).
    pub bucket: String,
    /// The service's URL (`http://` only for a service on a trusted
    /// network); AWS itself when not set.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    #[serde(default = "S3::default_region")]
    pub region: String,
    /// The access key id, unless it comes from `AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The secret access key, unless it comes from
    /// `AWS_SECRET_ACCESS_KEY`. A secret: never logged or shown by `Debug`.
    #[serde(default, serialize_with = "redacted")]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// `GET /metrics` (Prometheus text format): with a token on the main
/// address, and/or on an address of its own.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// The bearer token a scraper sends; without one, `/metrics` is off
    /// (404). A secret: never logged.
    #[serde(serialize_with = "redacted")]
    pub token: Option<SecretString>,
    /// A separate address (a private interface, or loopback for a local
    /// agent) that serves only `/metrics`, without a token unless `token`
    /// is set too. The main address then serves them only with the token.
    pub addr: Option<SocketAddr>,
}

/// Push notifications: Web Push and webhooks (docs/push.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// Seconds an HTTP/1.1 connection has to deliver a request's whole
    /// headers, from its opening or its previous answer, before it is
    /// closed: a client trickling its headers (slowloris) cannot hold
    /// connections open, nor can an idle kept-alive one.
    pub header_timeout_secs: u64,
    /// Seconds a request's body may go without a byte arriving before the
    /// request fails (`400 invalid_field`; a resumable upload keeps what
    /// arrived): a client trickling or stalling a body cannot hold a
    /// request open. A slow but moving upload is never cut.
    pub body_timeout_secs: u64,
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
    /// New accounts per client address per hour (a burst of this many,
    /// then one more every hour / this). Behind a balancer, list it in
    /// `trusted_proxies`, or every registration shares its address.
    pub registrations_per_hour_per_address: u32,
    /// Login attempts per client address per minute, whatever the username
    /// (a burst of this many, then one more every minute / this): one host
    /// trying many accounts. Behind a balancer, list it in
    /// `trusted_proxies`, or every login shares its address.
    pub logins_per_minute_per_address: u32,
    /// Messages (sends and forwards, over the WebSocket and HTTP) per
    /// device per second, sustained, on each node; a device may first send
    /// `send_burst` at once. Past it a send is refused with `rate_limited`
    /// (the clients send it again a moment later, with its client id).
    pub sends_per_second: u32,
    /// Messages a device may send at once before `sends_per_second` applies
    /// (an outbox flushed after a long time offline goes out in one go).
    pub send_burst: u32,
    /// Message searches per user per minute (each reads the search index).
    pub searches_per_minute: u32,
    /// Groups a user may create per hour.
    pub groups_per_hour: u32,
    /// Members a user may add to groups per minute (one per request; the
    /// members a group is created with count as its creation).
    pub member_additions_per_minute: u32,
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
    /// Writes that may wait for the database at once (for SQLite's writer;
    /// for each of PostgreSQL's committer lines). When it falls behind and
    /// this many wait, a new write waits `write_queue_wait_ms` for room,
    /// then is refused with `503 unavailable` and `Retry-After`.
    pub write_queue: usize,
    /// Milliseconds a write waits for room in a full write queue.
    pub write_queue_wait_ms: u64,
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
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            sqlite: Sqlite::default(),
            cluster: Cluster::default(),
            jobs: Jobs::default(),
            media: Media::default(),
            push: Push::default(),
            metrics: Metrics::default(),
            tls: Tls::default(),
            audit: Audit::default(),
            retention: Retention::default(),
            devices: Devices::default(),
            sso: Sso::default(),
            accounts: Accounts::default(),
            bots: Bots::default(),
            webhooks: Webhooks::default(),
            export: Export::default(),
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
            header_timeout_secs: 30,
            body_timeout_secs: 30,
            auth_timeout_secs: 10,
            idle_timeout_secs: 90,
            heartbeat_ping_secs: 3,
            heartbeat_timeout_secs: 7,
            max_sync_page: 500,
            logins_per_minute: 10,
            registrations_per_hour_per_address: 30,
            logins_per_minute_per_address: 60,
            sends_per_second: 50,
            send_burst: 500,
            searches_per_minute: 60,
            groups_per_hour: 100,
            member_additions_per_minute: 120,
            presence_grace_ms: 3_000,
            typing_ttl_ms: 6_000,
            typing_per_second: 3,
            edit_window_secs: 15 * 60,
            delete_window_secs: 2 * 24 * 60 * 60,
            write_queue: 8192,
            write_queue_wait_ms: 2000,
        }
    }
}

impl Config {
    /// Builds the configuration: the defaults, the TOML file named by
    /// `args` (if any), `HARK_<TABLE>__<KEY>` variables, then the flags
    /// (and the `HARK_*` variables of the flags); then checks it.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        Self::load_from(args, std::env::vars())
    }

    /// [`Config::load`] with these environment variables.
    pub fn load_from(
        args: &ServeArgs,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let tree = match &args.config {
            Some(path) => Self::file_table(path)?,
            None => toml::Table::new(),
        };
        Self::from_table(tree, args, env)
    }

    /// A configuration file's text as [`Config::load_from`] reads it, with
    /// no flags: its table checked, the variables `env` over it, the whole
    /// validated.
    pub fn from_text(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        Self::from_table(Self::text_table(text)?, &ServeArgs::default(), env)
    }

    fn from_table(
        mut tree: toml::Table,
        args: &ServeArgs,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let mut overrides = Vec::new();
        for (name, value) in env {
            let Some(path) = name.strip_prefix("HARK_") else {
                continue;
            };
            // Top-level settings are the flags' own variables (HARK_ADDR…).
            if !path.contains("__") {
                continue;
            }
            let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
            set_key(&mut tree, &keys, env_value(&value)).with_context(|| name.clone())?;
            overrides.push(name);
        }
        let mut config: Config = toml::Value::Table(tree).try_into().with_context(|| {
            if overrides.is_empty() {
                "the configuration file".to_owned()
            } else {
                format!(
                    "the configuration file and the variables {}",
                    overrides.join(", ")
                )
            }
        })?;
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
        if let Some(prefix) = &args.bus_prefix {
            config.bus_prefix = prefix.clone();
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
        config.validate()?;
        Ok(config)
    }

    /// The file as a table, checked against the settings on its own so an
    /// unknown or mistyped key is reported with its line.
    fn file_table(path: &Path) -> anyhow::Result<toml::Table> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::text_table(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    fn text_table(text: &str) -> anyhow::Result<toml::Table> {
        toml::from_str::<Config>(text)?;
        Ok(toml::from_str(text)?)
    }

    /// The configuration as TOML, secrets shown as `"<redacted>"`.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Refuses settings that cannot work, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::ensure;
        use secrecy::ExposeSecret;
        if let Some(url) = &self.database {
            let url = url.expose_secret();
            ensure!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "database: a postgres:// URL (or none, for the embedded store)"
            );
        }
        if let Some(url) = &self.bus {
            let url = url.expose_secret();
            ensure!(
                url.starts_with("nats://") || url.starts_with("tls://"),
                "bus: a nats:// URL (or none, for one node)"
            );
        }
        if let Some(id) = &self.node_id {
            valid_node_id(id)?;
        }
        if let Some(url) = &self.export.rabbitmq_url {
            let url = url.expose_secret();
            ensure!(
                url.starts_with("amqp://") || url.starts_with("amqps://"),
                "export.rabbitmq_url: an amqp:// or amqps:// URL"
            );
        }
        for kind in &self.export.kinds {
            ensure!(
                EXPORT_KINDS.contains(&kind.as_str()),
                "export.kinds: {kind:?} is not one of {}",
                EXPORT_KINDS.join(", ")
            );
        }
        ensure!(
            !self.export.exchange.is_empty() && self.export.exchange.len() <= 255,
            "export.exchange: 1 to 255 bytes"
        );
        ensure!(
            !self.bus_prefix.is_empty()
                && self.bus_prefix.len() <= 64
                && self
                    .bus_prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && !self.bus_prefix.starts_with('.')
                && !self.bus_prefix.ends_with('.'),
            "bus_prefix: 1-64 letters, digits, '-', '_' or inner '.'"
        );
        ensure!(self.max_group_members >= 2, "max_group_members: at least 2");
        ensure!(
            (-20..=19).contains(&self.sqlite.commit_nice),
            "sqlite.commit_nice: a nice value from -20 to 19"
        );
        for origin in &self.allowed_origins {
            ensure!(
                origin.starts_with("https://") || origin.starts_with("http://"),
                "allowed_origins: {origin:?} is not an origin like https://chat.example.com"
            );
        }
        let l = &self.limits;
        for (key, value) in [
            ("max_frame_bytes", l.max_frame_bytes as u64),
            ("max_text_bytes", l.max_text_bytes as u64),
            ("max_body_bytes", l.max_body_bytes as u64),
            ("frames_per_second", u64::from(l.frames_per_second)),
            ("outbound_queue", l.outbound_queue as u64),
            ("connections_per_user", l.connections_per_user as u64),
            ("connections_per_address", l.connections_per_address as u64),
            ("header_timeout_secs", l.header_timeout_secs),
            ("body_timeout_secs", l.body_timeout_secs),
            ("auth_timeout_secs", l.auth_timeout_secs),
            ("idle_timeout_secs", l.idle_timeout_secs),
            ("heartbeat_ping_secs", l.heartbeat_ping_secs),
            ("max_sync_page", u64::from(l.max_sync_page)),
            ("logins_per_minute", u64::from(l.logins_per_minute)),
            (
                "registrations_per_hour_per_address",
                u64::from(l.registrations_per_hour_per_address),
            ),
            (
                "logins_per_minute_per_address",
                u64::from(l.logins_per_minute_per_address),
            ),
            ("sends_per_second", u64::from(l.sends_per_second)),
            ("send_burst", u64::from(l.send_burst)),
            ("searches_per_minute", u64::from(l.searches_per_minute)),
            ("groups_per_hour", u64::from(l.groups_per_hour)),
            (
                "member_additions_per_minute",
                u64::from(l.member_additions_per_minute),
            ),
            ("typing_per_second", u64::from(l.typing_per_second)),
            ("write_queue", l.write_queue as u64),
        ] {
            ensure!(value > 0, "limits.{key}: must be more than 0");
        }
        ensure!(
            l.heartbeat_timeout_secs > l.heartbeat_ping_secs,
            "limits.heartbeat_timeout_secs: must be more than heartbeat_ping_secs"
        );
        ensure!(
            l.max_text_bytes <= l.max_frame_bytes,
            "limits.max_text_bytes: at most max_frame_bytes, or no text that long could be sent"
        );
        ensure!(
            self.cluster.heartbeat_ms > 0
                && self.cluster.node_timeout_ms >= 2 * self.cluster.heartbeat_ms,
            "cluster.node_timeout_ms: at least twice heartbeat_ms (which must be more than 0)"
        );
        ensure!(
            self.jobs.poll_ms > 0 && self.jobs.lease_ms > 0 && self.jobs.concurrency > 0,
            "jobs: poll_ms, lease_ms and concurrency must be more than 0"
        );
        ensure!(
            self.media.max_bytes > 0 && self.media.image_max_bytes > 0,
            "media: max_bytes and image_max_bytes must be more than 0"
        );
        if let Some(s3) = &self.media.s3 {
            ensure!(!s3.bucket.is_empty(), "media.s3.bucket: empty");
        }
        ensure!(
            self.push.contact.starts_with("mailto:") || self.push.contact.starts_with("https://"),
            "push.contact: a mailto: or https: URL"
        );
        ensure!(
            self.push.max_per_device > 0,
            "push.max_per_device: must be more than 0"
        );
        ensure!(
            self.tls.cert.is_some() == self.tls.key.is_some(),
            "tls: give both cert and key, or neither"
        );
        ensure!(
            self.tls.reload_secs > 0,
            "tls.reload_secs: must be more than 0"
        );
        if let Some(issuer) = &self.sso.issuer {
            ensure!(
                issuer.starts_with("https://") || loopback_http(issuer),
                "sso.issuer: an https:// URL (http:// only on a loopback address)"
            );
            ensure!(
                !self.sso.client_id.is_empty(),
                "sso.client_id: needed with sso.issuer"
            );
            let public = self.sso.public_url.as_deref().unwrap_or("");
            ensure!(
                public.starts_with("https://") || loopback_http(public),
                "sso.public_url: this server's https:// address, needed with sso.issuer"
            );
        }
        ensure!(
            !self.sso.only || self.sso.issuer.is_some(),
            "sso.only: needs sso.issuer (else nobody could sign in)"
        );
        if let Some(token) = &self.metrics.token {
            ensure!(
                token.expose_secret().len() >= 16,
                "metrics.token: at least 16 characters"
            );
        }
        if let Some(addr) = self.metrics.addr {
            ensure!(
                addr != self.addr || addr.port() == 0,
                "metrics.addr: must differ from addr"
            );
        }
        Ok(())
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

/// Shows a secret setting as `"<redacted>"` (or leaves it out when unset).
/// An `http://` URL whose host is a loopback address (for development and
/// tests: nothing leaves the machine).
fn loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

fn redacted<S: Serializer>(secret: &Option<SecretString>, to: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => to.serialize_some("<redacted>"),
        None => to.serialize_none(),
    }
}

/// A `HARK_<TABLE>__<KEY>` variable's value: a TOML number, boolean or
/// array when it reads as one, else the text itself (quote a number meant
/// as text: `'"123"'`).
fn env_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut table) => match table.remove("v") {
            Some(
                v @ (toml::Value::String(_)
                | toml::Value::Integer(_)
                | toml::Value::Float(_)
                | toml::Value::Boolean(_)
                | toml::Value::Array(_)),
            ) => v,
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

/// Puts `value` at `keys` (tables made on the way).
fn set_key(table: &mut toml::Table, keys: &[String], value: toml::Value) -> anyhow::Result<()> {
    let (last, tables) = keys.split_last().ok_or_else(|| anyhow::anyhow!("no key"))?;
    let mut at = table;
    for key in tables {
        anyhow::ensure!(!key.is_empty(), "an empty key");
        let next = at
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = next
            .as_table_mut()
            .ok_or_else(|| anyhow::anyhow!("{key} is not a table"))?;
    }
    anyhow::ensure!(!last.is_empty(), "an empty key");
    at.insert(last.clone(), value);
    Ok(())
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
    fn the_fuzz_seeds_are_accepted_and_print_back_to_themselves() {
        // fuzz/fuzz_targets/config_file.rs checks this of any text; its
        // seeds must reach the check.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/config_file");
        let mut seeds = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let (file, variables) = text.split_once("\n---\n").unwrap_or((&text, ""));
            let env: Vec<(String, String)> = variables
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let config = Config::from_text(file, env)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            let printed = config.to_toml().unwrap();
            let again: Config = toml::from_str(&printed).unwrap();
            assert_eq!(again.to_toml().unwrap(), printed);
            seeds += 1;
        }
        assert!(seeds >= 4, "{seeds} seeds");
    }

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

    fn file_with(text: &str) -> (tempfile::TempDir, ServeArgs) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hark.toml");
        std::fs::write(&file, text).unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        (dir, args)
    }

    fn var(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), value.to_owned())]
    }

    #[test]
    fn unknown_keys_are_errors_in_the_file_and_the_variables() {
        let (_dir, args) = file_with("[limits]\nmax_frame_byte = 3\n");
        let e = format!("{:#}", Config::load_from(&args, []).unwrap_err());
        assert!(
            e.contains("unknown field `max_frame_byte`") && e.contains("line 2"),
            "{e}"
        );
        let (_dir, args) = file_with("colour = \"blue\"\n");
        assert!(Config::load_from(&args, []).is_err());
        let e = Config::load_from(&ServeArgs::default(), var("HARK_LIMITS__NOPE", "1"));
        let e = format!("{:#}", e.unwrap_err());
        assert!(
            e.contains("HARK_LIMITS__NOPE") && e.contains("unknown field `nope`"),
            "{e}"
        );
        let e = Config::load_from(
            &ServeArgs::default(),
            var("HARK_LIMITS__OUTBOUND_QUEUE", "many"),
        );
        assert!(format!("{:#}", e.unwrap_err()).contains("HARK_LIMITS__OUTBOUND_QUEUE"));
        // Variables that are not settings are left alone.
        let fine = [
            ("HARK_LOG".to_owned(), "debug".to_owned()),
            ("HARK_SERVER".to_owned(), "http://x".to_owned()),
        ];
        assert!(Config::load_from(&ServeArgs::default(), fine).is_ok());
    }

    #[test]
    fn flags_beat_variables_which_beat_the_file() {
        let (_dir, mut args) = file_with("[jobs]\nconcurrency = 2\n[limits]\nmax_sync_page = 9\n");
        let env = var("HARK_JOBS__CONCURRENCY", "5");
        let config = Config::load_from(&args, env.clone()).unwrap();
        assert_eq!(config.jobs.concurrency, 5);
        assert_eq!(config.limits.max_sync_page, 9);
        args.bus_prefix = Some("green".into());
        let config = Config::load_from(&args, env).unwrap();
        assert_eq!(config.bus_prefix, "green");
        let config =
            Config::load_from(&ServeArgs::default(), var("HARK_MEDIA__S3__BUCKET", "b")).unwrap();
        assert_eq!(config.media.s3.unwrap().bucket, "b");
    }

    #[test]
    fn settings_that_cannot_work_are_refused_by_name() {
        for (name, value, key) in [
            (
                "HARK_LIMITS__FRAMES_PER_SECOND",
                "0",
                "limits.frames_per_second",
            ),
            (
                "HARK_LIMITS__HEARTBEAT_TIMEOUT_SECS",
                "2",
                "heartbeat_timeout_secs",
            ),
            (
                "HARK_CLUSTER__NODE_TIMEOUT_MS",
                "6000",
                "cluster.node_timeout_ms",
            ),
            ("HARK_PUSH__CONTACT", "ops@example.com", "push.contact"),
            ("HARK_METRICS__TOKEN", "short", "metrics.token"),
            ("HARK_SQLITE__COMMIT_NICE", "-21", "sqlite.commit_nice"),
            ("HARK_SQLITE__COMMIT_NICE", "20", "sqlite.commit_nice"),
        ] {
            let e = Config::load_from(&ServeArgs::default(), var(name, value)).unwrap_err();
            assert!(format!("{e:#}").contains(key), "{name}: {e:#}");
        }
        let args = ServeArgs {
            database: Some("mysql://db".into()),
            ..ServeArgs::default()
        };
        assert!(format!("{:#}", Config::load_from(&args, []).unwrap_err()).contains("database"));
        let args = ServeArgs {
            node_id: Some("a b".into()),
            ..ServeArgs::default()
        };
        assert!(Config::load_from(&args, []).is_err());
    }

    #[test]
    fn the_effective_configuration_shows_no_secret() {
        let (_dir, args) = file_with(
            "database = \"postgres://hark:hunter2@db/hark\"\n[metrics]\ntoken = \"a-token-nobody-sees\"\n\
             [media.s3]\nbucket = \"b\"\nsecret_access_key = \"s3-secret-key\"\n",
        );
        let shown = Config::load_from(&args, []).unwrap().to_toml().unwrap();
        for secret in ["hunter2", "a-token-nobody-sees", "s3-secret-key"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(shown.matches("\"<redacted>\"").count(), 3, "{shown}");
        // What it prints is itself a valid configuration file, but for the secrets.
        assert!(toml::from_str::<toml::Table>(&shown).is_ok());
    }
}
