//! Whose keys these are, in the terminal: `hark devices --user NAME` lists a
//! user's devices with their fingerprints and whether this device verified
//! them; `hark verify NAME` verifies one by comparing seven emoji on both
//! screens (or by a fingerprint read out by another channel), and
//! `hark verify` alone answers a verification another device asks for.

use super::e2e;
use super::{connect, find_user, ServerOpt};
use anyhow::{bail, Context};
use hark_proto::DeviceId;
use hark_sdk::{Crypto, Verification, VerificationState};
use std::io::{BufRead, Write};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Whose device to verify; without it, wait for another device to ask.
    username: Option<String>,
    /// Which of their devices (see `hark devices --user`); needed when they
    /// have more than one.
    #[arg(long)]
    device: Option<i64>,
    /// Verify by this fingerprint, read out by another channel, instead of
    /// comparing emoji (spaces ignored; refused unless it is the device's).
    #[arg(long, requires = "username")]
    fingerprint: Option<String>,
    /// How long to wait for the other side, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    #[command(flatten)]
    server: ServerOpt,
}

/// The fingerprint as people read it out: groups of four.
pub(crate) fn grouped(fingerprint: &str) -> String {
    fingerprint
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `hark devices --user NAME`.
pub(crate) async fn list(username: &str, server: &ServerOpt) -> anyhow::Result<()> {
    let (api, mut session) = connect(server)?;
    let user = find_user(&api, username).await?;
    let crypto = e2e::open(&api, &mut session).await?;
    let devices = crypto.devices(user.id).await?;
    if devices.is_empty() {
        println!(
            "{} has no devices with encryption keys (or shares no chat with you)",
            user.username
        );
        return Ok(());
    }
    println!("{:<6} {:<56} STATUS", "ID", "FINGERPRINT");
    for d in devices {
        let status = match (d.own, d.verified) {
            (true, _) => "this device",
            (false, true) => "✓ verified",
            (false, false) => "not verified",
        };
        println!("{:<6} {:<56} {status}", d.device.0, grouped(&d.fingerprint));
    }
    Ok(())
}

pub(crate) async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let (api, mut session) = connect(&args.server)?;
    let crypto = e2e::open(&api, &mut session).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let Some(username) = &args.username else {
        println!("Waiting for another device to ask for a verification…");
        let v = loop {
            crypto.sync().await?;
            if let Some(v) = crypto.incoming_verifications().await.into_iter().next() {
                break v;
            }
            wait(deadline, "no verification was asked for").await?;
        };
        let who = match v.other_user() {
            Some(id) => api
                .user(id)
                .await
                .map(|u| u.username)
                .unwrap_or_else(|_| format!("user {}", id.0)),
            None => "someone".to_owned(),
        };
        let device = v
            .other_device()
            .map(|d| d.0.to_string())
            .unwrap_or_default();
        println!("{who} (device {device}) asks to verify this device; accepting.");
        crypto.accept_verification(&v).await?;
        return compare(&crypto, &v, deadline, &format!("{who}'s device {device}")).await;
    };
    let user = find_user(&api, username).await?;
    let devices = crypto.devices(user.id).await?;
    let others: Vec<_> = devices.iter().filter(|d| !d.own).collect();
    let device = match (args.device, others.as_slice()) {
        (Some(id), _) => others
            .iter()
            .find(|d| d.device.0 == id)
            .with_context(|| format!("{username} has no device {id} with encryption keys"))?
            .device,
        (None, [one]) => one.device,
        (None, []) => bail!("{username} has no other device with encryption keys (or shares no chat with you)"),
        (None, _) => bail!(
            "{username} has {} devices: say which with --device (see `hark devices --user {username}`)",
            others.len()
        ),
    };
    let name = format!("{}'s device {}", user.username, device.0);
    if let Some(fingerprint) = &args.fingerprint {
        crypto
            .verify_by_fingerprint(user.id, device, fingerprint)
            .await?;
        println!("✓ {name} is verified");
        return Ok(());
    }
    let v = crypto
        .request_verification(user.id, DeviceId(device.0))
        .await?;
    println!("Asked {name} to verify; accept it there (`hark verify`, or the web client).");
    compare(&crypto, &v, deadline, &name).await
}

/// Waits for the emoji, asks whether they match, and sees it through.
async fn compare(
    crypto: &Crypto,
    v: &Verification,
    deadline: tokio::time::Instant,
    name: &str,
) -> anyhow::Result<()> {
    loop {
        crypto.sync().await?;
        match crypto.advance(v).await? {
            VerificationState::Compare { emoji, decimals } => {
                println!("Compare with the other screen:");
                let line: Vec<String> = emoji.iter().map(|(s, n)| format!("{s} {n}")).collect();
                println!("  {}", line.join("   "));
                println!(
                    "  or the numbers {} {} {}",
                    decimals.0, decimals.1, decimals.2
                );
                print!("Do they match? [y/N] ");
                std::io::stdout().flush()?;
                let answer = tokio::task::spawn_blocking(|| {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line).map(|_| line)
                })
                .await??;
                if matches!(answer.trim(), "y" | "Y" | "yes") {
                    crypto.confirm_verification(v).await?;
                    println!("Confirmed; waiting for the other side…");
                    break;
                }
                crypto.cancel_verification(v, true).await?;
                bail!("the emoji do not match: verification cancelled, {name} is not verified");
            }
            VerificationState::Cancelled(why) => bail!("verification cancelled: {why}"),
            VerificationState::Done => break,
            _ => wait(deadline, "the other side did not answer").await?,
        }
    }
    loop {
        crypto.sync().await?;
        match crypto.advance(v).await? {
            VerificationState::Done => {
                println!("✓ {name} is verified");
                return Ok(());
            }
            VerificationState::Cancelled(why) => bail!("verification cancelled: {why}"),
            _ => wait(deadline, "the other side did not confirm").await?,
        }
    }
}

async fn wait(deadline: tokio::time::Instant, what: &str) -> anyhow::Result<()> {
    if tokio::time::Instant::now() >= deadline {
        bail!("{what} in time (see --timeout)");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}
