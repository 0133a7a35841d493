//! Approving new devices (docs/protocol.md "Approving new devices"):
//! `hark approve`, `hark device-approval`, and a `hark login` that waits
//! for one of the account's other devices to let it in.

use super::session::Session;
use super::{connect, ServerOpt};
use anyhow::bail;
use hark_proto::{DeviceId, ErrorCode, Me};
use hark_sdk::Api;
use std::io::Write;
use std::time::Duration;

/// How often a waiting login asks `GET /v1/me` whether it was approved.
const POLL: Duration = Duration::from_secs(2);

/// The line a login waiting for approval prints, naming its device.
pub(super) fn waiting_line(device: DeviceId) -> String {
    format!(
        "This login waits for approval: open Hark on one of your other devices \
         (web client, or `hark approve {device}` there)…"
    )
}

/// What a command run with a waiting session says.
pub(super) fn not_approved_line(device: Option<DeviceId>) -> String {
    let approve = match device {
        Some(id) => format!("`hark approve {id}`"),
        None => "`hark approve <id>`".to_owned(),
    };
    format!(
        "this device's login waits for approval: approve it on one of your other devices \
         (the web client, or {approve} there), then try again"
    )
}

/// What a login on a server that requires two-factor authentication says
/// (and any command run before it is on).
pub(super) const SETUP_REQUIRED: &str = "this server requires two-factor authentication: \
     run `hark two-factor enable` to turn it on; nothing else works until then";

/// `--wait`: `0` (do not wait), whole seconds, or a number with `s`, `m`
/// or `h`.
pub(super) fn parse_wait(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: say a duration such as 90s, 10m or 1h"))?;
    let seconds = match unit.trim() {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        _ => None,
    };
    seconds
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: say a duration such as 90s, 10m or 1h"))
}

/// Says this login (of `device`) waits, and waits until it is approved (asking `GET
/// /v1/me` every 2 s): its `Me` then. Logged out meanwhile (refused from
/// another device): the session is forgotten and it fails. Ctrl-C, or no
/// approval within `wait`: the waiting device is logged out (the other
/// devices' prompts go away) and forgotten.
pub(super) async fn wait(api: &Api, device: DeviceId, wait: Duration) -> anyhow::Result<Me> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // Polled once so its handler is in place before the line is printed:
    // a Ctrl-C from then on withdraws the login instead of killing it.
    std::future::poll_fn(|cx| {
        let _ = std::future::Future::poll(ctrl_c.as_mut(), cx);
        std::task::Poll::Ready(())
    })
    .await;
    say(&waiting_line(device));
    let approved = async {
        let mut warned = false;
        loop {
            tokio::time::sleep(POLL).await;
            match api.me().await {
                Ok(me) if !me.device.pending => return Ok(me),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.code(),
                        Some(
                            ErrorCode::Unauthorized | ErrorCode::Revoked | ErrorCode::TokenExpired
                        )
                    ) =>
                {
                    return Err(e);
                }
                // The server or the network may come back: go on asking.
                Err(e) if !warned => {
                    warned = true;
                    eprintln!("warning: cannot ask the server whether it was approved ({e}); still trying");
                }
                Err(_) => {}
            }
        }
    };
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(wait, approved) => outcome,
        _ = &mut ctrl_c => {
            withdraw(api).await;
            bail!("cancelled: this login was withdrawn (its device logged out)");
        }
    };
    match outcome {
        Ok(Ok(me)) => Ok(me),
        Ok(Err(_)) => {
            // Refused on another device: only the local copy is left.
            Session::remove()?;
            bail!("this login was not approved (it was logged out from another device)")
        }
        Err(_) => {
            withdraw(api).await;
            bail!(
                "this login was not approved within {}: it was withdrawn; run `hark login` again",
                minutes(wait)
            )
        }
    }
}

/// Logs the waiting device out and forgets its session.
async fn withdraw(api: &Api) {
    if let Err(e) = api.logout().await {
        eprintln!("warning: could not log the waiting device out ({e})");
    }
    if let Err(e) = Session::remove() {
        eprintln!("warning: could not forget the session ({e:#})");
    }
}

fn minutes(wait: Duration) -> String {
    match wait.as_secs() {
        s if s % 60 == 0 && s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Prints `line` and flushes, so a script reading the output sees it while
/// the command waits.
pub(super) fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// `hark approve <device_id>`.
pub(super) async fn approve(device_id: i64, server: &ServerOpt) -> anyhow::Result<()> {
    let (api, _) = connect(server)?;
    match api.approve_device(DeviceId(device_id)).await {
        Ok(()) => {
            println!("device {device_id} approved: it is logged in to your account now");
            Ok(())
        }
        Err(e) if e.code() == Some(ErrorCode::NotFound) => bail!(
            "device {device_id} is not a login of yours waiting for approval (see `hark devices`)"
        ),
        Err(e) => Err(e.into()),
    }
}

/// `hark device-approval [on|off]`.
pub(super) async fn setting(set: Option<&str>, server: &ServerOpt) -> anyhow::Result<()> {
    let (api, _) = connect(server)?;
    let required = match set {
        None => api.device_approval().await?,
        Some("on") => api.set_device_approval(true).await?,
        Some("off") => api.set_device_approval(false).await?,
        Some(other) => bail!("{other:?}: say on or off"),
    };
    if required {
        println!(
            "device approval is on: a new login of your account waits until one of your \
             devices approves it (`hark approve <id>`, see `hark devices`)"
        );
    } else {
        println!(
            "device approval is off: a new login of your account works at once \
             (`hark device-approval on` turns approval on)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_read_in_seconds_minutes_or_hours() {
        assert_eq!(parse_wait("0"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_wait("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_wait("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_wait("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "m", "10x", "-1", "1.5m"] {
            assert!(parse_wait(bad).is_err(), "{bad:?}");
        }
        assert_eq!(minutes(Duration::from_secs(600)), "10 min");
        assert_eq!(minutes(Duration::from_secs(45)), "45 s");
    }
}
