//! Terminal client subcommands: account (password, two-factor
//! authentication, deleting it, exporting its data), profile (about line
//! and photo), contacts and blocked users, devices, chats, history,
//! sending, bots and webhooks, and an interactive `chat` with live
//! messages and ticks.

mod account;
mod actions;
mod admin;
mod approval;
mod bots;
mod chat;
mod contacts;
mod e2e;
mod export;
mod media;
mod notify;
mod profile;
mod session;
mod sso;
mod verify;
mod view;

use anyhow::{bail, Context};
use hark_proto::{
    ChatId, ChatKind, CreateGroupRequest, DeviceId, Event, LoginRequest, Register, SendRequest,
    User, UserId,
};
use hark_sdk::{Api, Page};
use session::Session;
use std::io::{BufRead, IsTerminal, Write};
use view::Watermarks;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Which server to talk to.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ServerOpt {
    /// Server URL (default http://127.0.0.1:8080, or the logged-in session's).
    #[arg(long, env = "HARK_SERVER")]
    server: Option<String>,
    /// A CA certificate file (PEM) to trust for an https:// server besides
    /// the system's roots (kept in the session by `hark login`).
    #[arg(long, env = "HARK_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
}

/// Where the password comes from when not given: HARK_PASSWORD, else a
/// line read from standard input.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct PasswordOpt {
    /// The password (prefer HARK_PASSWORD or standard input: flags show in `ps`).
    #[arg(long, env = "HARK_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ClientCommand {
    /// Create an account.
    Register {
        username: String,
        /// The name others see (defaults to the username).
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        password: PasswordOpt,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Log in as a new device and save the session. With two-factor
    /// authentication on, a code is asked for too (or read from the next
    /// line of standard input). With --sso, sign in in a browser through
    /// the server's single sign-on instead. When the account requires new
    /// logins to be approved, waits until one of its other devices approves
    /// this one (`hark approve <id>` there); Ctrl-C withdraws it.
    Login {
        /// Your username (not with --sso).
        #[arg(required_unless_present = "sso", conflicts_with = "sso")]
        username: Option<String>,
        /// A name for this device, shown in `hark devices`.
        #[arg(long, default_value = "hark cli")]
        device: String,
        /// The two-factor code from your authenticator app, or a recovery
        /// code (for scripts; otherwise asked for when needed).
        #[arg(long, conflicts_with = "sso")]
        code: Option<String>,
        /// Sign in through the server's single sign-on (its OpenID
        /// provider) in a browser, which comes back to this command on a
        /// loopback port: print the address to open, try to open it, and
        /// wait up to 10 minutes.
        #[arg(long)]
        sso: bool,
        /// With --sso: only print the address to open (say, in a browser
        /// on this machine you start yourself).
        #[arg(long, requires = "sso")]
        no_browser: bool,
        /// How long to wait for another device to approve this login (90s,
        /// 10m, 1h); then it is withdrawn. `0`: do not wait (the session is
        /// kept and works once approved).
        #[arg(long, default_value = "10m", value_parser = approval::parse_wait)]
        wait: std::time::Duration,
        #[command(flatten)]
        password: PasswordOpt,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Log this device out (revoking its token) and forget the session.
    Logout {
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Show who is logged in, on which device and server.
    Whoami {
        #[command(flatten)]
        server: ServerOpt,
    },
    /// List this account's logged-in devices, or (with --user) a user's
    /// devices with their key fingerprints and whether you verified them.
    Devices {
        /// Whose devices' keys to show (someone you share a chat with, or you).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Verify a user's device by comparing emoji on both screens (or its
    /// fingerprint); without a username, answer another device's request.
    Verify(verify::VerifyArgs),
    /// Log a device out (by id, see `hark devices`); also refuses a login
    /// waiting for approval.
    Revoke {
        device_id: i64,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Approve a new login of your account that waits for approval (by
    /// id, see `hark devices`).
    Approve {
        device_id: i64,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Show, or turn on or off, whether a new login of your account waits
    /// until one of your devices approves it.
    DeviceApproval {
        /// on or off; without it, the setting is shown.
        #[arg(value_parser = ["on", "off"])]
        setting: Option<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Find users whose username starts with a prefix.
    Users {
        prefix: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// List chats, newest activity first.
    Chats {
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Open (or create) the one-to-one chat with a user. A new one is
    /// end-to-end encrypted: only your devices and theirs can read it
    /// (files too); forwards are not available in encrypted chats yet.
    Direct {
        username: String,
        /// Create it end-to-end encrypted (the default).
        #[arg(long, conflicts_with = "plain")]
        encrypted: bool,
        /// Create it not encrypted: the server can read it (search, previews
        /// in notifications, forwards).
        #[arg(long)]
        plain: bool,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Create and manage groups.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Leave a group.
    Leave {
        /// Chat id, group title or username.
        chat: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Print a chat's latest messages.
    History {
        /// Chat id, group title or username.
        chat: String,
        /// How many messages (the server allows up to 200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Send one message, or a file with an optional caption.
    Send {
        /// Chat id, group title or username.
        chat: String,
        /// The message (the caption, with --file); several words are joined with spaces.
        #[arg(required_unless_present = "file", num_args = 0..)]
        text: Vec<String>,
        /// Reply to this message (its seq).
        #[arg(long)]
        reply_to: Option<i64>,
        /// Upload this file and send it (its text, if any, is the caption).
        /// Over 8 MiB it goes in pieces; the same command run again after a
        /// cut goes on where the upload stopped.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// What the file is: image, video, audio or file (by default, from its extension).
        #[arg(long, requires = "file")]
        kind: Option<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Save the file a message carries.
    Download {
        /// Chat id, group title or username.
        chat: String,
        /// The message's seq.
        seq: i64,
        /// Where to save it (by default its own name, in this directory).
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        /// Save the image's thumbnail instead (by default as
        /// `<name>.thumbnail.jpg` or `.png`).
        #[arg(long)]
        thumbnail: bool,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Show or set what notifications show: full, sender or none.
    Notifications {
        /// full (who and what), sender (only who) or none.
        #[arg(long)]
        previews: Option<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Manage webhooks: this device's (notifications POSTed to your
    /// server), a bot's or a chat's (their events POSTed to your server).
    Webhook {
        #[command(subcommand)]
        command: notify::WebhookCommand,
    },
    /// Make and manage bots: accounts a program runs with tokens you make,
    /// each limited to some actions (and chats).
    Bot {
        #[command(subcommand)]
        command: bots::BotCommand,
    },
    /// Administer the server (as a server admin; `grant` on the server machine).
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    #[command(flatten)]
    Account(account::AccountCommand),
    #[command(flatten)]
    People(contacts::PeopleCommand),
    #[command(flatten)]
    Message(actions::MessageCommand),
    #[command(flatten)]
    Profile(profile::ProfileCommand),
    /// Export everything the server keeps about you (your profile, chats
    /// and messages…) as a zip file: asks for it, waits while the server
    /// prepares it, and downloads it.
    Export(export::ExportArgs),
    /// Show or set a chat's disappearing messages: off, 24h, 7d or 90d
    /// (messages sent from then on disappear that long after they are sent).
    Disappearing {
        /// Chat id, group title or username.
        chat: String,
        /// off, 24h, 7d or 90d; without it, the chat's timer is shown.
        timer: Option<String>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Open a chat: recent history, then live messages; each line typed is sent.
    Chat {
        /// Chat id, group title or username.
        chat: String,
        /// How many earlier messages to show first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        server: ServerOpt,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum GroupCommand {
    /// Create a group with these members (you are its admin).
    Create {
        title: String,
        usernames: Vec<String>,
        /// Make it end-to-end encrypted (see `hark direct --encrypted`).
        #[arg(long)]
        encrypted: bool,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Add a member.
    Add {
        chat: String,
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Remove a member.
    Remove {
        chat: String,
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Rename the group.
    Rename {
        chat: String,
        title: String,
        #[command(flatten)]
        server: ServerOpt,
    },
}

pub(crate) async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    command(cmd).await.map_err(explained)
}

/// What `blocked` means, in a line.
pub(super) const BLOCKED: &str =
    "one of you blocked the other (`hark blocked` lists whom you blocked)";

/// A refusal of the saved token, with what to do about it; a refusal
/// because of a block, said plainly.
fn explained(e: anyhow::Error) -> anyhow::Error {
    let code = e
        .chain()
        .find_map(|cause| cause.downcast_ref::<hark_sdk::Error>())
        .and_then(hark_sdk::Error::code);
    match code {
        Some(hark_proto::ErrorCode::TokenExpired) => e.context(
            "this device was logged out for going unused: run `hark login <username>` again",
        ),
        Some(hark_proto::ErrorCode::Unauthorized | hark_proto::ErrorCode::Revoked) => {
            e.context("this device is not logged in any more: run `hark login <username>` again")
        }
        Some(hark_proto::ErrorCode::Blocked) => anyhow::anyhow!("refused: {BLOCKED}"),
        Some(hark_proto::ErrorCode::SsoRequired) => anyhow::anyhow!(
            "this server signs people in through single sign-on: run `hark login --sso`"
        ),
        Some(hark_proto::ErrorCode::DeviceNotApproved) => {
            let device = Session::load().ok().map(|s| s.device.id);
            anyhow::anyhow!(approval::not_approved_line(device))
        }
        Some(hark_proto::ErrorCode::TwoFactorSetupRequired) => {
            anyhow::anyhow!(approval::SETUP_REQUIRED)
        }
        _ => e,
    }
}

async fn command(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Register {
            username,
            display_name,
            password,
            server,
        } => register(username, display_name, password, server).await,
        ClientCommand::Login {
            sso: true,
            device,
            no_browser,
            wait,
            server,
            ..
        } => sso::login(device, no_browser, wait, server).await,
        ClientCommand::Login {
            username,
            device,
            code,
            wait,
            password,
            server,
            ..
        } => {
            let username = username.context("a username is needed (or --sso)")?;
            login(username, device, code, wait, password, server).await
        }
        ClientCommand::Logout { server } => logout(server).await,
        ClientCommand::Whoami { server } => whoami(server).await,
        ClientCommand::Devices {
            user: Some(user),
            server,
        } => verify::list(&user, &server).await,
        ClientCommand::Devices { user: None, server } => devices(server).await,
        ClientCommand::Verify(args) => verify::run(args).await,
        ClientCommand::Revoke { device_id, server } => {
            let (api, _) = connect(&server)?;
            api.revoke_device(DeviceId(device_id)).await?;
            println!("device {device_id} logged out");
            Ok(())
        }
        ClientCommand::Approve { device_id, server } => approval::approve(device_id, &server).await,
        ClientCommand::DeviceApproval { setting, server } => {
            approval::setting(setting.as_deref(), &server).await
        }
        ClientCommand::Users { prefix, server } => users(prefix, server).await,
        ClientCommand::Chats { server } => chats(server).await,
        ClientCommand::Disappearing {
            chat,
            timer,
            server,
        } => disappearing(&chat, timer.as_deref(), &server).await,
        ClientCommand::Direct {
            username,
            encrypted: _,
            plain,
            server,
        } => {
            let (api, mut session) = connect(&server)?;
            let user = find_user(&api, &username).await?;
            let chat = api
                .create_direct_chat(&hark_proto::CreateDirectRequest {
                    user_id: user.id,
                    encrypted: !plain,
                })
                .await?;
            if chat.encrypted {
                // Publish this device's keys now, so the other side can write.
                e2e::open(&api, &mut session).await?;
            }
            println!(
                "chat {}: {}{}",
                chat.id,
                view::chat_title(&chat, session.user.id),
                if chat.encrypted { " 🔒" } else { "" }
            );
            Ok(())
        }
        ClientCommand::Group { command } => group(command).await,
        ClientCommand::Leave { chat, server } => {
            let (api, session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            api.remove_member(chat_id, session.user.id).await?;
            println!("left chat {chat_id}");
            Ok(())
        }
        ClientCommand::History {
            chat,
            limit,
            server,
        } => history(chat, limit, server).await,
        ClientCommand::Account(command) => account::run(command).await,
        ClientCommand::People(command) => contacts::run(command).await,
        ClientCommand::Message(command) => actions::run(command).await,
        ClientCommand::Profile(command) => profile::run(command).await,
        ClientCommand::Export(args) => export::run(args).await,
        ClientCommand::Notifications { previews, server } => {
            notify::notifications(previews, server).await
        }
        ClientCommand::Webhook { command } => notify::webhook(command).await,
        ClientCommand::Bot { command } => bots::run(command).await,
        ClientCommand::Admin { command } => admin::run(command).await,
        ClientCommand::Send {
            chat,
            text,
            reply_to,
            file,
            kind,
            server,
        } => {
            let (api, mut session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            let summary = api.chat(chat_id).await?;
            let text = text.join(" ");
            let (text, encrypted, media_id) = if summary.chat.encrypted {
                let crypto = e2e::open(&api, &mut session).await?;
                let (sealed, media_id) = match &file {
                    // Encrypted here; the server gets bytes it cannot read.
                    Some(path) => {
                        let (sealed, id) = e2e::send_file(
                            &api,
                            &crypto,
                            &summary.chat,
                            path,
                            kind.as_deref(),
                            &text,
                        )
                        .await?;
                        (sealed, Some(id))
                    }
                    None => (e2e::encrypt(&crypto, &summary.chat, &text).await?, None),
                };
                (String::new(), Some(sealed), media_id)
            } else {
                let media_id = match &file {
                    Some(path) => Some(media::upload(&api, path, kind.as_deref()).await?.id),
                    None => None,
                };
                (text, None, media_id)
            };
            let body = SendRequest {
                client_id: hark_sdk::new_client_id(),
                text,
                reply_to: reply_to.map(hark_proto::Seq),
                media_id,
                encrypted,
            };
            let ack = api.send(chat_id, &body).await?;
            println!("[seq {}] {}", ack.seq, view::Tick::Sent.render());
            Ok(())
        }
        ClientCommand::Download {
            chat,
            seq,
            output,
            thumbnail,
            server,
        } => {
            let (api, mut session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            let seq = hark_proto::Seq(seq);
            media::download(&api, &mut session, (chat_id, seq), output, thumbnail).await
        }
        ClientCommand::Chat {
            chat,
            limit,
            server,
        } => {
            let (api, session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            chat::run(api, session, chat_id, limit).await
        }
    }
}

/// An authenticated API client from the saved session (`--server` overrides its URL).
pub(super) fn connect(server: &ServerOpt) -> anyhow::Result<(Api, Session)> {
    let mut session = Session::load()?;
    if let Some(url) = &server.server {
        session.server = url.clone();
    }
    if let Some(ca) = &server.ca_file {
        session.ca_file = Some(ca.clone());
    }
    let mut api = Api::new(&session.server)?.with_token(session.token.clone());
    if let Some(tls) = session.tls()? {
        api = api.with_tls(&tls)?;
    }
    Ok((api, session))
}

fn anonymous(server: &ServerOpt) -> anyhow::Result<Api> {
    let api = Api::new(server.server.as_deref().unwrap_or(DEFAULT_SERVER))?;
    Ok(match &server.ca_file {
        Some(ca) => api.with_tls(&hark_sdk::Tls::with_ca_file(ca)?)?,
        None => api,
    })
}

/// The password from the flag or HARK_PASSWORD, else one line of standard input.
pub(super) fn read_password(opt: PasswordOpt) -> anyhow::Result<String> {
    if let Some(password) = opt.password {
        return Ok(password);
    }
    // No echo suppression without a terminal library; say so honestly.
    read_line("Password (shown as you type; HARK_PASSWORD avoids this): ")?
        .context("no password given (use --password, HARK_PASSWORD or standard input)")
}

/// The next line of standard input (`None` when it is empty or ended),
/// after `prompt` on standard error when a person is at the terminal.
/// Lines are read one after the other, so a script can pipe in several
/// answers (a password, then a code).
pub(super) fn read_line(prompt: &str) -> anyhow::Result<Option<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\n', '\r']);
    Ok((!line.is_empty()).then(|| line.to_owned()))
}

async fn register(
    username: String,
    display_name: Option<String>,
    password: PasswordOpt,
    server: ServerOpt,
) -> anyhow::Result<()> {
    let api = anonymous(&server)?;
    let password = read_password(password)?;
    let user = api
        .register(&Register {
            username,
            password,
            display_name,
        })
        .await?;
    println!(
        "registered {} (user {}); now run `hark login {}`",
        view::user_name(&user),
        user.id,
        user.username
    );
    Ok(())
}

async fn login(
    username: String,
    device: String,
    code: Option<String>,
    wait: std::time::Duration,
    password: PasswordOpt,
    server: ServerOpt,
) -> anyhow::Result<()> {
    let api = anonymous(&server)?;
    let password = read_password(password)?;
    let mut request = LoginRequest {
        username,
        password,
        device_name: device,
        two_factor_code: code,
    };
    let login = match api.login(&request).await {
        // The password was right; the account wants a code too.
        Err(e)
            if e.code() == Some(hark_proto::ErrorCode::TwoFactorRequired)
                && request.two_factor_code.is_none() =>
        {
            request.two_factor_code = Some(account::read_code(None)?.trim().to_owned());
            api.login(&request).await?
        }
        answer => answer?,
    };
    save_login(&api, login, wait, &server).await
}

/// Saves a login's device as the session, says who is logged in, waits
/// (up to `wait`) for another device to approve it when the login is
/// pending, and publishes the device's encryption keys, unless the server
/// requires two-factor authentication the account does not have yet.
pub(super) async fn save_login(
    api: &Api,
    login: hark_proto::LoginResponse,
    wait: std::time::Duration,
    server: &ServerOpt,
) -> anyhow::Result<()> {
    let mut session = Session {
        server: api.base_url().to_owned(),
        token: login.token,
        user: login.user,
        device: login.device,
        cursor: hark_proto::Pos(0),
        ca_file: server.ca_file.clone(),
        crypto_key: None,
    };
    session.save()?;
    println!(
        "logged in as {} on device {} ({})",
        view::user_name(&session.user),
        session.device.id,
        session.device.name
    );
    let (api, _) = connect(server)?;
    let me = if session.device.pending {
        if wait.is_zero() {
            println!("{}", approval::waiting_line(session.device.id));
            println!("Not waiting (--wait 0): this session works once the login is approved.");
            return Ok(());
        }
        let me = approval::wait(&api, session.device.id, wait).await?;
        session.device = me.device.clone();
        session.save()?;
        println!("approved: this device is logged in");
        me
    } else {
        api.me().await?
    };
    if me.two_factor_setup_required {
        // The token works for enrolling and nothing else: no socket, no keys.
        println!("{}", capitalised(approval::SETUP_REQUIRED));
        return Ok(());
    }
    // Publish this device's keys now: encrypted chats (the default for
    // one-to-one chats) are readable on it from this moment on.
    let (api, mut session) = connect(server)?;
    if let Err(e) = e2e::open(&api, &mut session).await {
        eprintln!("warning: this device's encryption keys are not published yet ({e:#}); they will be on first use");
    }
    Ok(())
}

async fn logout(server: ServerOpt) -> anyhow::Result<()> {
    let (api, session) = connect(&server)?;
    match api.logout().await {
        Ok(()) => {}
        // Already revoked elsewhere, or logged out for going unused:
        // forgetting the session is all that is left.
        Err(e)
            if matches!(
                e.code(),
                Some(hark_proto::ErrorCode::Unauthorized | hark_proto::ErrorCode::TokenExpired)
            ) => {}
        Err(e) => return Err(e.into()),
    }
    Session::remove()?;
    println!("logged out {}", session.user.username);
    Ok(())
}

async fn whoami(server: ServerOpt) -> anyhow::Result<()> {
    let (api, _) = connect(&server)?;
    let me = api.me().await?;
    println!(
        "{} (user {}), device {} \"{}\" on {}",
        view::user_name(&me.user),
        me.user.id,
        me.device.id,
        me.device.name,
        api.base_url()
    );
    if me.device.pending {
        println!("{}", approval::waiting_line(me.device.id));
    }
    if me.two_factor_setup_required {
        println!("{}", capitalised(approval::SETUP_REQUIRED));
    }
    Ok(())
}

/// `line` with its first letter in capitals, as a sentence on its own.
fn capitalised(line: &str) -> String {
    let mut chars = line.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn devices(server: ServerOpt) -> anyhow::Result<()> {
    let (api, _) = connect(&server)?;
    let devices = api.devices().await?;
    println!(
        "{:<6} {:<24} {:<22} {:<22} ",
        "ID", "NAME", "LOGGED IN", "LAST USED"
    );
    for d in devices {
        let current = match (d.current, d.pending) {
            (true, true) => "  (this device, waiting for approval)".to_owned(),
            (true, false) => "  (this device)".to_owned(),
            (false, true) => format!("  (waiting for approval: `hark approve {}`)", d.id),
            (false, false) => String::new(),
        };
        println!(
            "{:<6} {:<24} {:<22} {:<22}{current}",
            d.id,
            view::snippet(&d.name, 24),
            view::date_time(d.created_at),
            view::date_time(d.last_used_at)
        );
    }
    Ok(())
}

async fn users(prefix: String, server: ServerOpt) -> anyhow::Result<()> {
    let (api, _) = connect(&server)?;
    let users = api.search_users(&prefix).await?;
    if users.is_empty() {
        println!("no users starting with {prefix:?}");
    }
    for u in users {
        println!(
            "{:<6} {:<20} {}{}",
            u.id,
            u.username,
            u.display_name,
            view::bot_mark(u.bot)
        );
    }
    Ok(())
}

async fn chats(server: ServerOpt) -> anyhow::Result<()> {
    let (api, mut session) = connect(&server)?;
    let me = session.user.id;
    let chats = api.chats().await?;
    if chats.is_empty() {
        println!("no chats yet: try `hark direct <username>`");
        return Ok(());
    }
    // Encrypted chats' last messages are decrypted here.
    let crypto = match chats.iter().any(|s| s.chat.encrypted) {
        true => Some(e2e::open(&api, &mut session).await?),
        false => None,
    };
    println!("{:<6} {:<28} {:>6}  LAST MESSAGE", "ID", "CHAT", "UNREAD");
    for summary in chats {
        let title = view::chat_title(&summary.chat, me);
        let last = match &summary.last_message {
            Some(m) => {
                let m = &e2e::readable(crypto.as_ref(), m).await;
                let sender = if m.sender_id == me {
                    "you".to_owned()
                } else if summary
                    .chat
                    .members
                    .iter()
                    .any(|u| u.user.id == m.sender_id)
                {
                    member_name(&summary.chat.members, m.sender_id)
                } else {
                    // Someone who left (or deleted their account): by name.
                    match api.user(m.sender_id).await {
                        Ok(user) => view::sender_name(&user),
                        Err(_) => format!("user {}", m.sender_id),
                    }
                };
                let text = if m.expired {
                    "(message disappeared)"
                } else if m.deleted {
                    "(message deleted)"
                } else {
                    &m.text
                };
                view::snippet(&format!("{sender}: {text}"), 50)
            }
            None => String::new(),
        };
        println!(
            "{:<6} {:<28} {:>6}  {last}",
            summary.chat.id,
            view::snippet(&title, 28),
            summary.unread
        );
    }
    Ok(())
}

async fn history(chat: String, limit: u32, server: ServerOpt) -> anyhow::Result<()> {
    let (api, mut session) = connect(&server)?;
    let me = session.user.id;
    let chat_id = resolve_chat(&api, &session, &chat).await?;
    let summary = api.chat(chat_id).await?;
    let mut page = api.history(chat_id, Page::Newest, Some(limit)).await?;
    if summary.chat.encrypted {
        let crypto = e2e::open(&api, &mut session).await?;
        for m in &mut page.messages {
            *m = e2e::readable(Some(&crypto), m).await;
        }
    }
    println!(
        "— {} (chat {chat_id}) —",
        view::chat_title(&summary.chat, me)
    );
    if page.messages.is_empty() {
        println!("no messages yet");
    }
    let marks = Watermarks::new(&summary.chat.members, me);
    let names = page_names(&api, &summary.chat.members, me, &page).await;
    let name = |id: UserId| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("user {id}"))
    };
    // Each event line goes below the message it followed (`after`).
    let mut lines = page.lines.iter().peekable();
    for m in &page.messages {
        while let Some(line) = lines.next_if(|l| l.after < m.seq) {
            if let Some(text) = view::event_line(&line.event, name) {
                println!("{text}");
            }
        }
        let (sender, tick) = if m.sender_id == me {
            ("you".to_owned(), Some(marks.tick(m.seq)))
        } else {
            (name(m.sender_id), None)
        };
        println!("{}", view::message_line(m, &sender, tick));
    }
    for line in lines {
        if let Some(text) = view::event_line(&line.event, name) {
            println!("{text}");
        }
    }
    Ok(())
}

/// The names a page of history uses: "you" (in event lines), members by
/// name, and people no longer in the chat looked up (a failed lookup leaves
/// them as "user N").
async fn page_names(
    api: &Api,
    members: &[hark_proto::Member],
    me: UserId,
    page: &hark_proto::History,
) -> std::collections::HashMap<UserId, String> {
    let mut names: std::collections::HashMap<UserId, String> = members
        .iter()
        .map(|m| (m.user.id, view::sender_name(&m.user)))
        .collect();
    let senders = page.messages.iter().map(|m| m.sender_id);
    let in_lines = page.lines.iter().flat_map(|line| match line.event {
        Event::MemberAdded { user_id, by, .. }
        | Event::MemberRemoved { user_id, by, .. }
        | Event::AdminChanged { user_id, by, .. } => vec![user_id, by],
        Event::ChatCreated { by, .. } | Event::ChatRenamed { by, .. } => vec![by],
        _ => Vec::new(),
    });
    let people: Vec<UserId> = senders.chain(in_lines).collect();
    for id in people {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
            if let Ok(user) = api.user(id).await {
                slot.insert(view::sender_name(&user));
            }
        }
    }
    names.insert(me, "you".to_owned());
    names
}

async fn group(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Create {
            title,
            usernames,
            encrypted,
            server,
        } => {
            let (api, mut session) = connect(&server)?;
            if encrypted {
                e2e::open(&api, &mut session).await?;
            }
            let mut members = Vec::new();
            for username in &usernames {
                members.push(find_user(&api, username).await?.id);
            }
            let chat = api
                .create_group(&CreateGroupRequest {
                    title,
                    members,
                    encrypted,
                })
                .await?;
            println!(
                "created group {} \"{}\" with {} members",
                chat.id,
                chat.title.unwrap_or_default(),
                chat.members.len()
            );
        }
        GroupCommand::Add {
            chat,
            username,
            server,
        } => {
            let (api, session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            let user = find_user(&api, &username).await?;
            api.add_member(chat_id, user.id).await?;
            println!("added {} to chat {chat_id}", view::user_name(&user));
        }
        GroupCommand::Remove {
            chat,
            username,
            server,
        } => {
            let (api, session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            let user = find_user(&api, &username).await?;
            api.remove_member(chat_id, user.id).await?;
            println!("removed {} from chat {chat_id}", view::user_name(&user));
        }
        GroupCommand::Rename {
            chat,
            title,
            server,
        } => {
            let (api, session) = connect(&server)?;
            let chat_id = resolve_chat(&api, &session, &chat).await?;
            let chat = api.rename_chat(chat_id, &title).await?;
            println!(
                "chat {} is now \"{}\"",
                chat.id,
                chat.title.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// The user with exactly this username (a leading `@` is allowed).
async fn find_user(api: &Api, username: &str) -> anyhow::Result<User> {
    let username = username.trim_start_matches('@');
    api.user_by_username(username)
        .await?
        .with_context(|| format!("no user named {username:?}"))
}

/// The chat meant by `arg`: a chat id, a group title, or a username (whose
/// direct chat is created if it does not exist yet).
pub(super) async fn resolve_chat(
    api: &Api,
    session: &Session,
    arg: &str,
) -> anyhow::Result<ChatId> {
    if let Ok(id) = arg.parse::<i64>() {
        return Ok(ChatId(id));
    }
    let me = session.user.id;
    let name = arg.trim_start_matches('@');
    let chats = api.chats().await?;
    let found: Vec<ChatId> = chats
        .iter()
        .filter(|s| match s.chat.kind {
            ChatKind::Group => s.chat.title.as_deref() == Some(arg),
            ChatKind::Direct => s
                .chat
                .members
                .iter()
                .any(|m| m.user.id != me && m.user.username == name),
        })
        .map(|s| s.chat.id)
        .collect();
    match found.as_slice() {
        [one] => return Ok(*one),
        [] => {}
        many => {
            let ids: Vec<String> = many.iter().map(ToString::to_string).collect();
            bail!(
                "{arg:?} names several chats ({}); use an id",
                ids.join(", ")
            );
        }
    }
    // A new one-to-one chat is encrypted, as with `hark direct`.
    match api.user_by_username(name).await? {
        Some(user) => Ok(api
            .create_direct_chat(&hark_proto::CreateDirectRequest {
                user_id: user.id,
                encrypted: true,
            })
            .await?
            .id),
        None => bail!("no chat or user named {arg:?} (see `hark chats`)"),
    }
}

/// A member's name as shown in lists, or their id if they left.
fn member_name(members: &[hark_proto::Member], user: UserId) -> String {
    members
        .iter()
        .find(|m| m.user.id == user)
        .map(|m| view::sender_name(&m.user))
        .unwrap_or_else(|| format!("user {user}"))
}

/// `hark disappearing CHAT [off|24h|7d|90d]`.
async fn disappearing(chat: &str, timer: Option<&str>, server: &ServerOpt) -> anyhow::Result<()> {
    let (api, session) = connect(server)?;
    let chat_id = resolve_chat(&api, &session, chat).await?;
    let chat = match timer {
        None => api.chat(chat_id).await?.chat,
        Some(timer) => {
            let seconds = view::timer_seconds(timer)
                .ok_or_else(|| anyhow::anyhow!("{timer:?}: say off, 24h, 7d or 90d"))?;
            api.set_disappearing(chat_id, seconds).await?
        }
    };
    match chat.disappearing_secs {
        0 => println!("chat {}: disappearing messages are off", chat.id),
        secs => println!(
            "chat {}: new messages disappear after {}",
            chat.id,
            view::timer_name(secs)
        ),
    }
    Ok(())
}
