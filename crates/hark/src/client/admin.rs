//! `hark admin`: server administration. `grant` works on the server
//! machine, straight on its store; the rest go through the admin API as the
//! logged-in user, who must be a server admin (docs/protocol.md
//! "Administration").

use super::{connect, read_password, view, PasswordOpt, ServerOpt};
use crate::local::StoreOpt;
use anyhow::Context;
use hark_proto::{AdminUser, ChatId, DeviceId, Role, UserId};
use hark_sdk::{Api, AuditFilter, AuditFrom};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum AdminCommand {
    /// On the server machine: make a user a server admin (or, with
    /// --revoke, an ordinary user again). Works whether the server runs or not.
    Grant {
        username: String,
        #[arg(long)]
        revoke: bool,
        #[command(flatten)]
        store: StoreOpt,
    },
    /// List users (those whose username starts with PREFIX).
    Users {
        #[arg(default_value = "")]
        prefix: String,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Show a user and their devices.
    Show {
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Disable an account: its tokens are refused and its sockets close.
    Disable {
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Enable a disabled account again.
    Enable {
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Make a user a server admin (`admin`) or take it away (`user`).
    Role {
        username: String,
        /// admin or user.
        role: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Set a user's password (from HARK_PASSWORD or standard input);
    /// logs all their devices out unless --keep-devices.
    ResetPassword {
        username: String,
        #[arg(long)]
        keep_devices: bool,
        #[command(flatten)]
        password: PasswordOpt,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Log one of a user's devices out (ids from `hark admin show`).
    Revoke {
        username: String,
        device_id: i64,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Who is in a chat (not what was said).
    Chat {
        chat_id: i64,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// The server's counts: users, devices, messages per day, storage, jobs.
    Stats {
        #[command(flatten)]
        server: ServerOpt,
    },
    /// The audit log, newest first (`hark admin audit verify` checks its
    /// hash chain; docs/operations.md "Audit log").
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        command: Option<AuditCommand>,
        #[command(flatten)]
        query: AuditArgs,
        #[command(flatten)]
        server: ServerOpt,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum AuditCommand {
    /// Read the whole log and check every row's hash chain; exits 1 if
    /// broken. Prints the chain's head hash: keep it to compare later.
    Verify {
        /// Also write every row checked, oldest first, as JSON lines.
        #[arg(long)]
        export: Option<std::path::PathBuf>,
        #[command(flatten)]
        server: ServerOpt,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct AuditArgs {
    /// Only rows this user did or had done to them.
    #[arg(long)]
    user: Option<String>,
    /// Only rows of this action (login, login_failed, admin_disable_user, …).
    #[arg(long)]
    action: Option<String>,
    /// Only rows about this chat.
    #[arg(long)]
    chat: Option<i64>,
    /// Only rows of the last N days.
    #[arg(long)]
    days: Option<u32>,
    /// At most this many rows.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Rows as JSON lines (every field, hashes included) instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Grant {
            username,
            revoke,
            store,
        } => {
            let args = store.serve_args();
            let role = if revoke { Role::User } else { Role::Admin };
            let user = hark_server::grant_role(&args, &username, role).await?;
            println!("{} is now {}", user.username, describe(user.role));
        }
        AdminCommand::Users {
            prefix,
            limit,
            server,
        } => users(&connect(&server)?.0, &prefix, limit).await?,
        AdminCommand::Show { username, server } => {
            let (api, _) = connect(&server)?;
            let user = find(&api, &username).await?;
            print_users(std::slice::from_ref(&user));
            let devices = api.admin_devices(user.id).await?;
            if devices.is_empty() {
                println!("no devices logged in");
            } else {
                println!("\n{:<6} {:<24} LOGGED IN", "DEVICE", "NAME");
            }
            for d in devices {
                println!(
                    "{:<6} {:<24} {}",
                    d.id,
                    view::snippet(&d.name, 24),
                    view::date_time(d.created_at)
                );
            }
        }
        AdminCommand::Disable { username, server } => {
            let (api, _) = connect(&server)?;
            let user = find(&api, &username).await?;
            let user = api.set_user_enabled(user.id, false).await?;
            println!("{} is disabled: their devices are logged out of every node until `hark admin enable {}`", user.username, user.username);
        }
        AdminCommand::Enable { username, server } => {
            let (api, _) = connect(&server)?;
            let user = find(&api, &username).await?;
            let user = api.set_user_enabled(user.id, true).await?;
            println!("{} is enabled", user.username);
        }
        AdminCommand::Role {
            username,
            role,
            server,
        } => {
            let role = match role.as_str() {
                "admin" => Role::Admin,
                "user" => Role::User,
                other => anyhow::bail!("the role is admin or user, not {other:?}"),
            };
            let (api, _) = connect(&server)?;
            let user = find(&api, &username).await?;
            let user = api.set_role(user.id, role).await?;
            println!("{} is now {}", user.username, describe(user.role));
        }
        AdminCommand::ResetPassword {
            username,
            keep_devices,
            password,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let user = find(&api, &username).await?;
            let password = read_password(password)?;
            api.reset_password(user.id, &password, !keep_devices)
                .await?;
            if keep_devices {
                println!(
                    "{}'s password is set; their devices stay logged in",
                    user.username
                );
            } else {
                println!(
                    "{}'s password is set and every device of theirs is logged out",
                    user.username
                );
            }
        }
        AdminCommand::Revoke {
            username,
            device_id,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let user = find(&api, &username).await?;
            api.admin_revoke_device(user.id, DeviceId(device_id))
                .await?;
            println!("device {device_id} of {} is logged out", user.username);
        }
        AdminCommand::Chat { chat_id, server } => {
            let (api, _) = connect(&server)?;
            let chat = api.admin_chat(ChatId(chat_id)).await?;
            let kind = match chat.kind {
                hark_proto::ChatKind::Direct => "one-to-one",
                hark_proto::ChatKind::Group => "group",
            };
            let title = chat.title.as_deref().unwrap_or("");
            println!(
                "chat {} ({kind}) {title}: {} messages, created {}",
                chat.id,
                chat.messages,
                view::date_time(chat.created_at)
            );
            println!("{:<6} {:<20} {:<24} JOINED", "ID", "USERNAME", "NAME");
            for m in chat.members {
                let admin = if m.admin { "  (group admin)" } else { "" };
                println!(
                    "{:<6} {:<20} {:<24} {}{admin}",
                    m.user.id,
                    m.user.username,
                    view::snippet(
                        &format!("{}{}", m.user.display_name, view::bot_mark(m.user.bot)),
                        24
                    ),
                    view::date_time(m.joined_at)
                );
            }
        }
        AdminCommand::Audit {
            command: Some(AuditCommand::Verify { export, server }),
            ..
        } => verify_audit(&connect(&server)?.0, export).await?,
        AdminCommand::Audit {
            command: None,
            query,
            server,
        } => audit(&connect(&server)?.0, query).await?,
        AdminCommand::Stats { server } => {
            let (api, _) = connect(&server)?;
            let s = api.server_stats().await?;
            println!(
                "users {} ({} disabled, {} admins), devices {}, online now {}",
                s.users, s.disabled_users, s.admins, s.devices, s.users_online
            );
            println!("chats {}, messages {}", s.chats, s.messages);
            for day in &s.messages_per_day {
                println!("  {}  {:>8} messages", day.day, day.messages);
            }
            println!(
                "storage: database {}, media {} in {} files",
                bytes(s.storage.database_bytes),
                bytes(s.storage.media_bytes),
                s.storage.media_files
            );
            println!("jobs: {} pending, {} dead", s.jobs.pending, s.jobs.dead);
        }
    }
    Ok(())
}

async fn audit(api: &Api, args: AuditArgs) -> anyhow::Result<()> {
    let user = match &args.user {
        Some(name) => Some(find(api, name).await?.id),
        None => None,
    };
    let since = args
        .days
        .map(|d| super::actions::now_ms() - i64::from(d) * 86_400_000);
    let filter = AuditFilter {
        user,
        action: args.action,
        chat: args.chat.map(ChatId),
        since,
        until: None,
    };
    let mut rows = Vec::new();
    let mut from = AuditFrom::Before(None);
    while rows.len() < args.limit as usize {
        let want = (args.limit as usize - rows.len()).min(1000) as u32;
        let page = api.audit_page(&filter, from, want).await?;
        rows.extend(page.entries);
        match page.next {
            Some(next) => from = AuditFrom::Before(Some(next)),
            None => break,
        }
    }
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("no audit rows match");
        return Ok(());
    }
    let mut names = Names::default();
    println!(
        "{:<6} {:<20} {:<28} {:<16} {:<22} {:<15} DETAIL",
        "ID", "TIME", "ACTION", "BY", "TO", "ADDRESS"
    );
    for row in &rows {
        let by = match row.actor {
            Some(u) => names.of(api, u).await,
            None => "-".into(),
        };
        let mut to = Vec::new();
        if let Some(u) = row.target_user {
            to.push(names.of(api, u).await);
        }
        if let Some(d) = row.target_device {
            to.push(format!("device {d}"));
        }
        if let Some(c) = row.chat {
            to.push(format!("chat {c}"));
        }
        let detail: Vec<String> = row.detail.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:<6} {:<20} {:<28} {:<16} {:<22} {:<15} {}",
            row.id,
            view::date_time(row.at),
            row.action,
            view::snippet(&by, 16),
            view::snippet(&to.join(", "), 22),
            row.address.as_deref().unwrap_or("-"),
            detail.join(" ")
        );
    }
    Ok(())
}

/// Usernames for ids, each asked once.
#[derive(Default)]
struct Names(std::collections::HashMap<UserId, String>);

impl Names {
    async fn of(&mut self, api: &Api, user: UserId) -> String {
        if let Some(name) = self.0.get(&user) {
            return name.clone();
        }
        let name = match api.admin_user(user).await {
            Ok(u) => u.username,
            Err(_) => format!("#{user}"),
        };
        self.0.insert(user, name.clone());
        name
    }
}

async fn verify_audit(api: &Api, export: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = match &export {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut write_error = None;
    let checked = api
        .verify_audit(|rows| {
            if let Some(out) = out.as_mut() {
                for row in rows {
                    let line = serde_json::to_string(row).unwrap_or_default();
                    if let Err(e) = writeln!(out, "{line}") {
                        write_error.get_or_insert(e);
                    }
                }
            }
        })
        .await?;
    if let Some(mut out) = out {
        out.flush()?;
    }
    if let Some(e) = write_error {
        return Err(e).context("writing the export");
    }
    match checked {
        Ok(ok) => {
            let first = ok.chain.pruned_through + 1;
            println!(
                "audit log intact: {} rows (ids {first} to {}); head hash {}",
                ok.rows, ok.chain.last_id, ok.chain.last_hash
            );
            if ok.chain.pruned_through > 0 {
                println!(
                    "rows 1 to {} were removed by retention; the chain continues from {}",
                    ok.chain.pruned_through, ok.chain.pruned_hash
                );
            }
            Ok(())
        }
        Err(broken) => anyhow::bail!("the audit log is broken: {broken}"),
    }
}

fn describe(role: Role) -> &'static str {
    match role {
        Role::Admin => "a server admin",
        Role::User => "an ordinary user (not a server admin)",
    }
}

/// The user with exactly this username.
async fn find(api: &Api, username: &str) -> anyhow::Result<AdminUser> {
    api.admin_user_by_username(username)
        .await?
        .with_context(|| format!("no user {username:?}"))
}

async fn users(api: &Api, prefix: &str, limit: u32) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut after = UserId(0);
    while all.len() < limit as usize {
        let want = (limit as usize - all.len()).min(200) as u32;
        let page = api.admin_users(prefix, after, want).await?;
        all.extend(page.users);
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    if all.is_empty() {
        println!("no users starting with {prefix:?}");
        return Ok(());
    }
    print_users(&all);
    Ok(())
}

fn print_users(users: &[AdminUser]) {
    println!(
        "{:<6} {:<20} {:<24} {:<6} {:<9} DEVICES",
        "ID", "USERNAME", "NAME", "ROLE", "STATE"
    );
    for u in users {
        println!(
            "{:<6} {:<20} {:<24} {:<6} {:<9} {}",
            u.id,
            u.username,
            view::snippet(&format!("{}{}", u.display_name, view::bot_mark(u.bot)), 24),
            u.role.as_str(),
            if u.disabled { "disabled" } else { "active" },
            u.devices
        );
    }
}

/// A size for people: 1.5 MiB.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
