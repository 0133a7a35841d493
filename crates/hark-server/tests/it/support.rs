//! Spawns the real server in-process on 127.0.0.1:0 with a fresh database,
//! and speaks to it over real HTTP and WebSocket connections.
//!
//! The backend comes from `HARK_TEST_BACKEND`: unset or `sqlite`, the
//! embedded default (SQLite, in-process bus); `postgres`, the cluster
//! shape: PostgreSQL (`HARK_TEST_POSTGRES`, a database of the data
//! directory's own) and NATS (`HARK_TEST_NATS`, a subject prefix of its
//! own). The same tests run on both; a missing service fails them loudly.

use futures_util::{SinkExt, StreamExt};
use hark_proto::{ChatId, ClientFrame, ErrorCode, LoginResponse, Pos, ServerFrame, UserId};
use hark_server::config::Config;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct TestApp {
    pub base: String,
    pub ws_url: String,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
    /// Where the server keeps uploaded files: the media directory, or the
    /// S3 bucket (under this app's prefix) when `HARK_TEST_MEDIA=s3`.
    pub media: std::sync::Arc<dyn object_store::ObjectStore>,
    /// Whether `media` is a bucket.
    pub media_s3: bool,
    /// The media directory (when `media` is not a bucket).
    pub media_dir: PathBuf,
    /// The PostgreSQL database's URL, or `None` on the embedded default
    /// (the SQLite file `data_dir/hark.db`).
    pub database: Option<String>,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_in(dir.path().to_owned(), adjust).await;
    app._dir = Some(dir);
    app
}

/// Starts a server on an existing data directory (for restart tests).
pub async fn spawn_in(data_dir: PathBuf, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_at(data_dir, "127.0.0.1:0", adjust).await
}

/// Starts a server on `addr` (a restarted server on the same port, so
/// clients reconnect to the same URL).
pub async fn spawn_at(data_dir: PathBuf, addr: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    if cluster_backend() || data_dir.join("test-database").exists() {
        let (database, prefix) = cluster_services(&data_dir).await;
        config.database = Some(database.into());
        config.bus = Some(nats_url().into());
        config.bus_prefix = prefix;
    }
    if media_s3() {
        // The nodes of one cluster share a bus prefix, and so a bucket prefix.
        let prefix = if config.database.is_some() {
            config.bus_prefix.clone()
        } else {
            data_dir.file_name().unwrap().to_string_lossy().into_owned()
        };
        config.media.s3 = Some(s3_config(&prefix));
    }
    adjust(&mut config);
    let media = hark_server::media::MediaFiles::open(&config)
        .unwrap()
        .objects();
    if let Some(s3) = &config.media.s3 {
        use futures_util::StreamExt;
        if let Some(Err(e)) = media.list(None).next().await {
            panic!(
                "the S3 server at {} does not answer ({e}); \
                 start it with scripts/s3.sh up",
                s3.endpoint.as_deref().unwrap_or("?")
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config_s3 = config.media.s3.is_some();
    let (http, ws) = if config.tls.cert.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let media_dir = config.media_dir();
    let database = config
        .database
        .as_ref()
        .map(|d| d.expose_secret().to_owned());
    let server = hark_server::build(config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        hark_server::serve(server, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        base: format!("{http}://{addr}"),
        ws_url: format!("{ws}://{addr}/v1/ws"),
        http: reqwest::Client::new(),
        data_dir,
        media_s3: config_s3,
        media_dir,
        media,
        database,
        _dir: None,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Nodes of one cluster (PostgreSQL + NATS, whatever `HARK_TEST_BACKEND`
/// says): each has a data directory of its own and shares the first's
/// database and bus prefix.
pub async fn spawn_cluster(nodes: usize) -> Vec<TestApp> {
    spawn_cluster_with(nodes, |_| {}).await
}

/// [`spawn_cluster`] with each node's configuration adjusted.
pub async fn spawn_cluster_with(nodes: usize, adjust: impl Fn(&mut Config)) -> Vec<TestApp> {
    init_logs();
    let name = format!("hark_test_{:016x}", rand::random::<u64>());
    let mut apps = Vec::new();
    for n in 0..nodes {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test-database"), &name).unwrap();
        let mut app = spawn_in(dir.path().to_owned(), |c| {
            c.node_id = Some(format!("n{n}"));
            adjust(c);
        })
        .await;
        app._dir = Some(dir);
        apps.push(app);
    }
    apps
}

/// Whether tests run on PostgreSQL + NATS (`HARK_TEST_BACKEND=postgres`).
pub fn cluster_backend() -> bool {
    match std::env::var("HARK_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("HARK_TEST_BACKEND={other}: use sqlite or postgres"),
    }
}

/// Whether uploaded files go to S3 (`HARK_TEST_MEDIA=s3`; scripts/test.sh
/// sets it for the cluster pass) or to the media directory (`dir`, the
/// default).
pub fn media_s3() -> bool {
    match std::env::var("HARK_TEST_MEDIA").as_deref() {
        Err(_) | Ok("") | Ok("dir") => false,
        Ok("s3") => true,
        Ok(other) => panic!("HARK_TEST_MEDIA={other}: use dir or s3"),
    }
}

/// The bucket scripts/s3.sh runs, with clients putting and fetching files
/// straight from it (`direct`), keys under a prefix of their own.
pub fn direct_bucket() -> hark_server::config::S3 {
    let prefix = format!("direct-{:032x}", rand::random::<u128>());
    hark_server::config::S3 {
        direct: true,
        ..s3_config(&prefix)
    }
}

/// The bucket scripts/s3.sh runs (`eval "$(scripts/s3.sh env)"`), keys
/// under `prefix`.
fn s3_config(prefix: &str) -> hark_server::config::S3 {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "this test needs an S3 server ({name} is not set): run \
                 scripts/s3.sh up and export the settings scripts/s3.sh env prints"
            )
        })
    };
    let toml = format!(
        "bucket = {:?}\nendpoint = {:?}\naccess_key_id = {:?}\nsecret_access_key = {:?}\nprefix = {:?}\n",
        var("HARK_TEST_S3_BUCKET"),
        var("HARK_TEST_S3_ENDPOINT"),
        var("HARK_TEST_S3_ACCESS_KEY"),
        var("HARK_TEST_S3_SECRET_KEY"),
        prefix,
    );
    toml::from_str(&toml).unwrap()
}

impl TestApp {
    /// Runs one SQL statement on the server's database, whichever backend
    /// (it must read the same in both): how a test stands in for time
    /// passing, e.g. a message sent long ago. How many rows it changed.
    pub async fn sql(&self, statement: &str) -> u64 {
        match &self.database {
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("the test database");
                tokio::spawn(connection);
                client.execute(statement, &[]).await.unwrap()
            }
            None => {
                let conn = rusqlite::Connection::open(self.data_dir.join("hark.db")).unwrap();
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                conn.execute(statement, []).unwrap() as u64
            }
        }
    }
}

pub fn postgres_url() -> String {
    std::env::var("HARK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn nats_url() -> String {
    std::env::var("HARK_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The database URL and bus prefix of a data directory, made on its first
/// start and kept in it, so a restarted server finds the same data.
async fn cluster_services(data_dir: &std::path::Path) -> (String, String) {
    let nats = nats_url();
    let host = nats.trim_start_matches("nats://").to_owned();
    if TcpStream::connect(&host).await.is_err() {
        panic!(
            "NATS is not reachable at {nats}; HARK_TEST_BACKEND=postgres needs it: start it with \
             `start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
             -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log`"
        );
    }
    let kept = data_dir.join("test-database");
    let name = match std::fs::read_to_string(&kept) {
        Ok(name) => name.trim().to_owned(),
        Err(_) => {
            let name = format!("hark_test_{:016x}", rand::random::<u64>());
            std::fs::write(&kept, &name).unwrap();
            name
        }
    };
    let url = match hark_store::postgres::create_database(&postgres_url(), &name).await {
        Ok(url) => url,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {} ({e}); HARK_TEST_BACKEND=postgres needs it: \
             start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start`",
            postgres_url()
        ),
    };
    (url, format!("test.{name}"))
}

/// With `TEST_LOG`, the servers' logs go to stderr. Otherwise every run of
/// this suite logs at `debug` (Hark's crates) as JSON lines into
/// `target/tmp/test-logs/it-<pid>.jsonl`, and the secrets and message
/// texts the tests used are listed beside it (`secrets-<pid>.txt`, via
/// [`secret`]): `scripts/check-logs.sh`, run by the test command after the
/// suite, fails when any of them appears in any log.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        hark_server::init_tracing();
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let file =
            std::fs::File::create(log_dir().join(format!("it-{}.jsonl", std::process::id())))
                .unwrap();
        let filter = tracing_subscriber::EnvFilter::new(
            "info,hark_server=debug,hark_store=debug,hark_bus=debug",
        );
        let _ = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Notes a secret or a message text a test used: it must never appear in
/// a log (see [`init_logs`]). Short strings are left out: they match log
/// text by chance.
pub fn secret(text: &str) {
    use std::io::Write;
    if text.len() < 12 || text.contains('\n') {
        return;
    }
    static FILE: std::sync::OnceLock<std::sync::Mutex<std::fs::File>> = std::sync::OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = log_dir().join(format!("secrets-{}.txt", std::process::id()));
        std::sync::Mutex::new(std::fs::File::create(path).unwrap())
    });
    if let Ok(mut file) = file.lock() {
        let _ = writeln!(file, "{text}");
    }
}

/// A registered, logged-in device.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub user_id: UserId,
    pub device_id: hark_proto::DeviceId,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1{}", self.base, path)
    }

    /// Stops the server gracefully and waits until the store is closed.
    pub async fn stop(mut self) -> PathBuf {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        // Keep the temporary directory alive for a restart in the same test.
        if let Some(dir) = self._dir.take() {
            let kept = dir.keep();
            return kept;
        }
        self.data_dir.clone()
    }

    pub async fn register(&self, username: &str) {
        let res = self
            .http
            .post(self.url("/register"))
            .json(&json!({"username": username, "password": "correct horse"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            201,
            "register {username}: {}",
            res.text().await.unwrap()
        );
    }

    pub async fn login(&self, username: &str, device: &str) -> Session {
        let res = self
            .http
            .post(self.url("/login"))
            .json(
                &json!({"username": username, "password": "correct horse", "device_name": device}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: LoginResponse = res.json().await.unwrap();
        secret("correct horse");
        secret(&body.token);
        Session {
            token: body.token,
            user_id: body.user.id,
            device_id: body.device.id,
        }
    }

    pub async fn user(&self, username: &str) -> Session {
        self.register(username).await;
        self.login(username, "phone").await
    }

    /// An authenticated JSON request; returns status and body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn direct(&self, a: &Session, b: &Session) -> ChatId {
        let (status, chat) = self
            .post("/chats/direct", &a.token, json!({"user_id": b.user_id}))
            .await;
        assert_eq!(status, 200, "{chat}");
        ChatId(chat["id"].as_i64().unwrap())
    }

    pub async fn group(&self, creator: &Session, title: &str, others: &[&Session]) -> ChatId {
        let members: Vec<i64> = others.iter().map(|s| s.user_id.0).collect();
        let (status, chat) = self
            .post(
                "/chats/groups",
                &creator.token,
                json!({"title": title, "members": members}),
            )
            .await;
        assert_eq!(status, 201, "{chat}");
        ChatId(chat["id"].as_i64().unwrap())
    }

    /// Opens a WebSocket authenticated by header and reads its hello.
    pub async fn ws(&self, session: &Session) -> Ws {
        let mut req = self.ws_url.as_str().into_client_request().unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", session.token).parse().unwrap(),
        );
        let (stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut ws = Ws {
            stream,
            next_id: 1,
            events: Vec::new(),
            ephemeral: Vec::new(),
            head: Pos(0),
        };
        match ws.next_frame().await {
            ServerFrame::Hello(hello) => ws.head = hello.head,
            other => panic!("expected hello, got {other:?}"),
        }
        ws
    }

    /// Upgrades with `token` in the `Authorization` header, expecting the
    /// server to refuse before the socket opens: its status and JSON body.
    pub async fn ws_refused(&self, token: &str) -> (u16, Value) {
        let mut req = self.ws_url.as_str().into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                let body = serde_json::from_slice(body).unwrap_or(Value::Null);
                (response.status().as_u16(), body)
            }
            other => panic!("the upgrade should be refused: {other:?}"),
        }
    }

    /// Opens an unauthenticated WebSocket.
    pub async fn ws_raw(&self) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(&self.ws_url)
            .await
            .unwrap();
        Ws::wrap(stream)
    }
}

/// A raw protocol client. Events that arrive while waiting for a reply are
/// kept in `events`, so nothing is lost between calls. `S` is the socket's
/// transport: a TCP stream (maybe TLS), or an HTTP/2 stream (RFC 8441).
pub struct Ws<S = MaybeTlsStream<TcpStream>> {
    pub stream: WebSocketStream<S>,
    next_id: u64,
    pub events: Vec<hark_proto::EventFrame>,
    /// Presence, typing and reset frames received while waiting for something else.
    pub ephemeral: Vec<ServerFrame>,
    pub head: Pos,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Ws<S> {
    /// A client around a socket opened some other way.
    pub fn wrap(stream: WebSocketStream<S>) -> Ws<S> {
        Ws {
            stream,
            next_id: 1,
            events: Vec::new(),
            ephemeral: Vec::new(),
            head: Pos(0),
        }
    }

    /// The next frame of any kind (fails after `WAIT`).
    pub async fn next_frame(&mut self) -> ServerFrame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("socket ended")
                .expect("socket error");
            match msg {
                Message::Text(text) => {
                    return serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("undecodable frame {text}: {e}"))
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.stream
            .send(Message::Text(text.into().into()))
            .await
            .unwrap();
    }

    /// Sends a text frame whose payload is whatever bytes are given, valid
    /// UTF-8 or not (tungstenite's `Message::Text` only takes valid text).
    pub async fn send_text_bytes(&mut self, bytes: &[u8]) {
        use tokio_tungstenite::tungstenite::protocol::frame::{
            coding::Data, coding::OpCode, Frame,
        };
        let frame = Frame::message(bytes.to_vec(), OpCode::Data(Data::Text), true);
        self.stream.send(Message::Frame(frame)).await.unwrap();
    }

    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends a frame and returns the reply with its id; events on the way are kept.
    pub async fn request(&mut self, frame: ClientFrame) -> ServerFrame {
        let id = frame.id();
        self.send_text(serde_json::to_string(&frame).unwrap()).await;
        self.reply_to(id).await
    }

    pub async fn reply_to(&mut self, id: u64) -> ServerFrame {
        loop {
            match self.next_frame().await {
                ServerFrame::Event(e) => self.events.push(e),
                frame @ (ServerFrame::Presence(_)
                | ServerFrame::Typing(_)
                | ServerFrame::PresenceReset) => self.ephemeral.push(frame),
                frame if reply_id(&frame) == Some(id) => return frame,
                other => panic!("expected reply {id}, got {other:?}"),
            }
        }
    }

    pub async fn send_msg(&mut self, chat: ChatId, client_id: &str, text: &str) -> ServerFrame {
        secret(text);
        let id = self.id();
        self.request(ClientFrame::Send {
            id,
            chat_id: chat,
            client_id: hark_proto::ClientMsgId(client_id.into()),
            text: text.into(),
            reply_to: None,
            media_id: None,
            encrypted: None,
        })
        .await
    }

    /// Sends and expects an ack; returns the seq.
    pub async fn send_ok(&mut self, chat: ChatId, client_id: &str, text: &str) -> i64 {
        match self.send_msg(chat, client_id, text).await {
            ServerFrame::Ack { seq, .. } => seq.0,
            other => panic!("expected ack, got {other:?}"),
        }
    }

    pub async fn mark(
        &mut self,
        chat: ChatId,
        delivered: Option<i64>,
        read: Option<i64>,
    ) -> ServerFrame {
        let id = self.id();
        self.request(ClientFrame::Mark {
            id,
            chat_id: chat,
            delivered_up_to: delivered.map(hark_proto::Seq),
            read_up_to: read.map(hark_proto::Seq),
        })
        .await
    }

    /// Waits for the next event, first from those already received.
    pub async fn next_event(&mut self) -> hark_proto::EventFrame {
        if !self.events.is_empty() {
            return self.events.remove(0);
        }
        match self.next_frame().await {
            ServerFrame::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// The next presence, typing or reset frame (events are kept aside).
    pub async fn next_ephemeral(&mut self) -> ServerFrame {
        if !self.ephemeral.is_empty() {
            return self.ephemeral.remove(0);
        }
        loop {
            match self.next_frame().await {
                ServerFrame::Event(e) => self.events.push(e),
                frame @ (ServerFrame::Presence(_)
                | ServerFrame::Typing(_)
                | ServerFrame::PresenceReset
                | ServerFrame::ToDevice) => return frame,
                other => panic!("expected presence or typing, got {other:?}"),
            }
        }
    }

    /// Asserts no presence or typing frame arrives within `wait`.
    pub async fn no_ephemeral_within(&mut self, wait: Duration) {
        assert!(self.ephemeral.is_empty(), "unexpected {:?}", self.ephemeral);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(text)))) => {
                    match serde_json::from_str::<ServerFrame>(&text).unwrap() {
                        ServerFrame::Event(e) => self.events.push(e),
                        other => panic!("expected nothing, got {other:?}"),
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("socket ended: {other:?}"),
            }
        }
    }

    /// Watches users and chats; returns the presence answer.
    pub async fn watch(
        &mut self,
        users: &[UserId],
        chats: &[ChatId],
    ) -> Result<Vec<hark_proto::PresenceState>, ErrorCode> {
        let id = self.id();
        match self
            .request(ClientFrame::Watch {
                id,
                users: users.to_vec(),
                chats: chats.to_vec(),
            })
            .await
        {
            ServerFrame::Watching { presence, .. } => Ok(presence),
            ServerFrame::Error { code, .. } => Err(code),
            other => panic!("{other:?}"),
        }
    }

    pub async fn typing(&mut self, chat: ChatId, activity: hark_proto::Activity) -> ServerFrame {
        let id = self.id();
        self.request(ClientFrame::Typing {
            id,
            chat_id: chat,
            activity,
        })
        .await
    }

    /// Expects an error frame (for request `id` when given) with `code`.
    pub async fn expect_error(&mut self, code: ErrorCode) -> Option<u64> {
        loop {
            match self.next_frame().await {
                ServerFrame::Event(e) => self.events.push(e),
                ServerFrame::Error {
                    id,
                    code: got,
                    message,
                } => {
                    assert_eq!(got, code, "error message: {message}");
                    return id;
                }
                other => panic!("expected error {code:?}, got {other:?}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("no close")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }
}

pub fn reply_id(frame: &ServerFrame) -> Option<u64> {
    match frame {
        ServerFrame::Hello(h) => h.id,
        ServerFrame::Ack { id, .. }
        | ServerFrame::Ok { id }
        | ServerFrame::Synced { id, .. }
        | ServerFrame::Pong { id }
        | ServerFrame::Watching { id, .. } => Some(*id),
        ServerFrame::Error { id, .. } => *id,
        ServerFrame::Event(_)
        | ServerFrame::Presence(_)
        | ServerFrame::Typing(_)
        | ServerFrame::PresenceReset
        | ServerFrame::ToDevice => None,
    }
}
