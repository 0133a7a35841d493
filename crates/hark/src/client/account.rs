//! `hark password`, `hark two-factor` and `hark delete-account`: the
//! logged-in user's password, two-factor authentication (codes from an
//! authenticator app, RFC 6238) and deleting the account.

use super::session::Session;
use super::{connect, read_line, read_password, PasswordOpt, ServerOpt};
use anyhow::{bail, Context};
use hark_proto::ErrorCode;
use std::io::IsTerminal;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum AccountCommand {
    /// Change your password: the current one from HARK_PASSWORD or the
    /// first line of standard input, the new one from HARK_NEW_PASSWORD or
    /// the next line (asked twice at a terminal).
    Password {
        /// Also log out every other device of this account (this one stays).
        #[arg(long)]
        log_out_others: bool,
        /// The new password (prefer HARK_NEW_PASSWORD or standard input: flags show in `ps`).
        #[arg(long, env = "HARK_NEW_PASSWORD", hide_env_values = true)]
        new_password: Option<String>,
        #[command(flatten)]
        password: PasswordOpt,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Two-factor authentication: a login also needs a code from an
    /// authenticator app (or a recovery code).
    TwoFactor {
        #[command(subcommand)]
        command: TwoFactorCommand,
    },
    /// Delete your account, for good: every message you sent is erased for
    /// everyone, you leave your groups, every device is logged out.
    ///
    /// This cannot be undone; others see you as "Deleted account". Asks you
    /// to type your username to confirm (or --yes), then for your password
    /// (HARK_PASSWORD, or the next line of standard input) and, with
    /// two-factor authentication on, a code (or --code). This device's
    /// session is forgotten afterwards.
    DeleteAccount {
        /// Do not ask to type the username (for scripts).
        #[arg(long)]
        yes: bool,
        /// The two-factor code, or a recovery code (else asked for when
        /// the account needs one, or the next line of standard input).
        #[arg(long)]
        code: Option<String>,
        #[command(flatten)]
        password: PasswordOpt,
        #[command(flatten)]
        server: ServerOpt,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum TwoFactorCommand {
    /// Whether it is on, and how many recovery codes are left.
    Status {
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Turn it on: asks for your password, shows the secret to type into
    /// an authenticator app, then asks for a code the app shows and prints
    /// your recovery codes.
    Enable {
        #[command(flatten)]
        password: PasswordOpt,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Turn it off, with your password and a code (or a recovery code).
    Disable {
        /// The code (else asked for, or the next line of standard input).
        #[arg(long)]
        code: Option<String>,
        #[command(flatten)]
        password: PasswordOpt,
        #[command(flatten)]
        server: ServerOpt,
    },
}

/// How many codes `two-factor enable` takes before giving up (the
/// enrolment stays, so a new run starts it again with a new secret).
const CONFIRM_TRIES: usize = 3;

pub(crate) async fn run(command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Password {
            log_out_others,
            new_password,
            password,
            server,
        } => change_password(log_out_others, new_password, password, server).await,
        AccountCommand::TwoFactor { command } => two_factor(command).await,
        AccountCommand::DeleteAccount {
            yes,
            code,
            password,
            server,
        } => delete_account(yes, code, password, server).await,
    }
}

async fn change_password(
    log_out_others: bool,
    new_password: Option<String>,
    current: PasswordOpt,
    server: ServerOpt,
) -> anyhow::Result<()> {
    let (api, _) = connect(&server)?;
    let current = match current.password {
        Some(password) => password,
        None => read_line("Current password (shown as you type; HARK_PASSWORD avoids this): ")?
            .context("no current password given (use HARK_PASSWORD or standard input)")?,
    };
    let new = match new_password {
        Some(password) => password,
        None => read_new_password()?,
    };
    let changed = match api.change_password(&current, &new, log_out_others).await {
        Err(e) if e.code() == Some(ErrorCode::InvalidCredentials) => {
            bail!("the current password is wrong; nothing changed")
        }
        answer => answer?,
    };
    match changed.devices_logged_out {
        0 if log_out_others => println!("password changed; no other device was logged in"),
        0 => println!("password changed; your other devices stay logged in"),
        1 => println!("password changed; 1 other device logged out"),
        n => println!("password changed; {n} other devices logged out"),
    }
    Ok(())
}

/// `hark delete-account`: says what it does, has the username typed (unless
/// `yes`), then deletes the account with the password and, when the server
/// asks for one, a two-factor code; then forgets this device's session and
/// its encryption store, as `hark logout` does.
async fn delete_account(
    yes: bool,
    code: Option<String>,
    password: PasswordOpt,
    server: ServerOpt,
) -> anyhow::Result<()> {
    let (api, session) = connect(&server)?;
    let username = session.user.username.clone();
    eprintln!(
        "Deleting the account {} on {}:",
        super::view::user_name(&session.user),
        api.base_url()
    );
    eprintln!("  - every message you sent is erased, for everyone, in every chat;");
    eprintln!("  - you leave your groups, and your contacts and blocks are gone;");
    eprintln!("  - every device you are logged in on is logged out;");
    eprintln!("  - others see you as \"Deleted account\" from then on.");
    eprintln!("This cannot be undone.");
    if !yes {
        let typed = read_line(&format!("Type your username ({username}) to confirm: "))?;
        let typed = typed
            .as_deref()
            .map(str::trim)
            .map(|t| t.trim_start_matches('@'));
        if typed != Some(username.as_str()) {
            bail!("the username was not typed (or --yes given): nothing was deleted");
        }
    }
    let password = read_password(password)?;
    let mut code = code.map(|c| c.trim().to_owned());
    loop {
        match api.delete_account(&password, code.as_deref()).await {
            Ok(()) => break,
            Err(e) if e.code() == Some(ErrorCode::InvalidCredentials) => {
                bail!("the password is wrong: nothing was deleted")
            }
            // The password was right; the account wants a code too.
            Err(e) if e.code() == Some(ErrorCode::InvalidTwoFactorCode) && code.is_none() => {
                code = Some(read_code(None)?.trim().to_owned());
            }
            Err(e) if e.code() == Some(ErrorCode::InvalidTwoFactorCode) => {
                bail!("the two-factor code is wrong (or used already): nothing was deleted")
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Every device is logged out already: only the local copy is left.
    let forgotten = Session::remove();
    println!("Your account was deleted.");
    forgotten.context("but this device's saved session could not be removed")
}

/// The new password from standard input, typed twice at a terminal.
fn read_new_password() -> anyhow::Result<String> {
    let missing = "no new password given (use HARK_NEW_PASSWORD or standard input)";
    let new = read_line("New password (shown as you type; HARK_NEW_PASSWORD avoids this): ")?
        .context(missing)?;
    if std::io::stdin().is_terminal() {
        let again = read_line("New password again: ")?.context(missing)?;
        if again != new {
            bail!("the two new passwords differ; nothing changed");
        }
    }
    Ok(new)
}

/// A two-factor code: `given`, else the next line of standard input.
pub(super) fn read_code(given: Option<String>) -> anyhow::Result<String> {
    match given {
        Some(code) => Ok(code),
        None => read_line("Code from your authenticator app (or a recovery code): ")?.context(
            "this account needs a two-factor code: give it with --code or on standard input",
        ),
    }
}

async fn two_factor(command: TwoFactorCommand) -> anyhow::Result<()> {
    match command {
        TwoFactorCommand::Status { server } => {
            let (api, _) = connect(&server)?;
            let status = api.two_factor_status().await?;
            if status.enabled {
                println!(
                    "two-factor authentication is on ({} recovery codes left)",
                    status.recovery_codes_left
                );
            } else {
                println!("two-factor authentication is off (`hark two-factor enable` turns it on)");
            }
        }
        TwoFactorCommand::Enable { password, server } => {
            let (api, mut session) = connect(&server)?;
            let password = read_password(password)?;
            let enrolment = api.start_two_factor(&password).await?;
            println!("Add this account to your authenticator app (type the secret; spaces do not matter):");
            println!();
            println!("    {}", grouped(&enrolment.secret));
            println!();
            println!(
                "or, for an app that takes one, this URL: {}",
                enrolment.otpauth_url
            );
            let mut tries = 0;
            let codes = loop {
                tries += 1;
                let code = read_line("Code the app shows now (6 digits): ")?
                    .context("no code given: two-factor authentication stays off")?;
                match api.confirm_two_factor(code.trim()).await {
                    Err(e)
                        if e.code() == Some(ErrorCode::InvalidTwoFactorCode)
                            && tries < CONFIRM_TRIES =>
                    {
                        eprintln!("that code is not the one expected: check the app's clock, then try the next code");
                    }
                    Err(e) if e.code() == Some(ErrorCode::InvalidTwoFactorCode) => {
                        bail!("{CONFIRM_TRIES} wrong codes: two-factor authentication stays off")
                    }
                    answer => break answer?,
                };
            };
            println!();
            println!("two-factor authentication is on: logging in now needs a code from the app.");
            println!("Recovery codes, each good once in place of a code if you lose the app.");
            println!("Save them somewhere safe now; they are not shown again:");
            println!();
            for code in &codes.recovery_codes {
                println!("    {code}");
            }
            if session.crypto_key.is_none() {
                // A login on a server that requires two-factor
                // authentication published no keys: it could not yet.
                if let Err(e) = super::e2e::open(&api, &mut session).await {
                    eprintln!("warning: this device's encryption keys are not published yet ({e:#}); they will be on first use");
                }
            }
        }
        TwoFactorCommand::Disable {
            code,
            password,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let password = read_password(password)?;
            let code = read_code(code)?;
            api.disable_two_factor(&password, code.trim()).await?;
            println!("two-factor authentication is off: logging in needs only the password");
        }
    }
    Ok(())
}

/// A base32 secret in groups of four, easier to type.
fn grouped(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_shown_in_groups_of_four() {
        assert_eq!(grouped("JBSWY3DPEHPK3PXPAB"), "JBSW Y3DP EHPK 3PXP AB");
        assert_eq!(grouped(""), "");
    }
}
