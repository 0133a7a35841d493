//! `hark password` and `hark two-factor`: the logged-in user's password and
//! two-factor authentication (codes from an authenticator app, RFC 6238).

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
            let (api, _) = connect(&server)?;
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
