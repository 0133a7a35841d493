//! `hark login --sso`: signing in through the server's single sign-on
//! (docs/protocol.md "Single sign-on"). The browser does the signing in;
//! this command waits for it on a loopback port (RFC 8252), where the
//! server sends the browser back with `?sso_ticket=…` or
//! `?sso_error=<reason>`, and redeems the ticket for this device.
//!
//! The listener is a few lines of tokio, not a web server: it reads each
//! connection's request head, answers the one `GET /` that carries the
//! answer with a small page, and anything else (`/favicon.ico`, a
//! browser's idle preconnection) with `404` or nothing.

use super::{anonymous, ServerOpt};
use anyhow::{anyhow, bail, Context};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the sign-in may take in the browser.
const WAIT: Duration = Duration::from_secs(10 * 60);
/// How long one connection may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a request head read (the request line is what matters).
const MAX_HEAD: usize = 16 * 1024;

/// What the browser brought back.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ticket(String),
    Error(String),
}

/// `hark login --sso`.
pub(super) async fn login(
    device: String,
    no_browser: bool,
    wait: Duration,
    server: ServerOpt,
) -> anyhow::Result<()> {
    let api = anonymous(&server)?;
    let info = api
        .sso_info()
        .await
        .with_context(|| format!("asking {} whether it offers single sign-on", api.base_url()))?;
    if !info.enabled {
        bail!(
            "{} does not offer single sign-on: log in with `hark login <username>`",
            api.base_url()
        );
    }
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("listening on a loopback port for the browser's answer")?;
    let port = listener.local_addr()?.port();
    let url = api.sso_start_url(&format!("http://127.0.0.1:{port}/"));
    println!("Open this address to sign in: {url}");
    if !no_browser {
        open_browser(&url);
    }
    eprintln!("Waiting for the sign-in to finish in the browser (up to 10 minutes)…");
    let (mut browser, answer) = tokio::time::timeout(WAIT, wait_for_answer(listener))
        .await
        .map_err(|_| {
            anyhow!("no sign-in came back within 10 minutes: run `hark login --sso` again")
        })??;
    let ticket = match answer {
        Answer::Ticket(ticket) => ticket,
        Answer::Error(reason) => {
            let why = explain(&reason);
            respond(
                &mut browser,
                "Hark: not signed in",
                &format!("Not signed in: {why}."),
            )
            .await;
            bail!("single sign-on failed: {why}");
        }
    };
    let login = match api.sso_redeem(&ticket, &device).await {
        Ok(login) => login,
        Err(e) => {
            respond(
                &mut browser,
                "Hark: not signed in",
                "Not signed in: Hark refused the sign-in. The terminal says why.",
            )
            .await;
            return Err(match e.code() {
                Some(hark_proto::ErrorCode::InvalidCredentials) => anyhow::Error::new(e).context(
                    "the server refused the sign-in's ticket (used, or older than 2 minutes): \
                     run `hark login --sso` again",
                ),
                _ => e.into(),
            });
        }
    };
    respond(
        &mut browser,
        "Hark: signed in",
        "Signed in to Hark; you can close this tab.",
    )
    .await;
    super::save_login(&api, login, wait, &server).await
}

/// One line per reason the server may give (docs/protocol.md).
fn explain(reason: &str) -> String {
    match reason {
        "provider_error" => "the sign-in provider refused the sign-in, or it was cancelled".into(),
        "invalid_state" => "the browser came back from another sign-in than this one: \
                            open the address again, in one browser"
            .into(),
        "invalid_id_token" => "the server could not confirm the sign-in with the provider \
                               (the code exchange or the ID token did not pass): \
                               tell the server's administrator"
            .into(),
        "unavailable" => "the server could not reach the sign-in provider: try again later".into(),
        other => format!("the server answered {other:?}"),
    }
}

/// Tries to show `url` in the desktop's browser; says nothing when it
/// cannot (the address is printed). Without a display (a session over
/// ssh), `xdg-open` would start a text browser in this terminal, so it is
/// not tried.
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return;
    };
    let child = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        // Reaped when it ends; the sign-in does not wait for it.
        std::thread::spawn(move || child.wait());
    }
}

/// Accepts connections until one brings the answer; each is read on a
/// task of its own, so a connection that sends nothing holds up no other.
async fn wait_for_answer(listener: TcpListener) -> anyhow::Result<(TcpStream, Answer)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("waiting for the browser")?;
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Some(found) = read_answer(stream).await {
                        let _ = tx.send(found).await;
                    }
                });
            }
            Some(found) = rx.recv() => return Ok(found),
        }
    }
}

/// The answer this connection brings, if it is `GET /?sso_ticket=…` or
/// `GET /?sso_error=…`; anything else is answered `404` here.
async fn read_answer(mut stream: TcpStream) -> Option<(TcpStream, Answer)> {
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream))
        .await
        .ok()??;
    let mut request_line = head.lines().next()?.split(' ');
    let (method, target) = (request_line.next()?, request_line.next()?);
    match answer_in(target) {
        Some(answer) if method == "GET" => Some((stream, answer)),
        _ => {
            let _ = write_page(&mut stream, "404 Not Found", "Not found", "Not found.").await;
            None
        }
    }
}

/// The request head (up to the blank line, or [`MAX_HEAD`] bytes);
/// `None` when the connection closes before sending anything.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    (!head.is_empty()).then(|| String::from_utf8_lossy(&head).into_owned())
}

/// The answer in a request target: path `/` with `sso_ticket` or
/// `sso_error` in its query.
fn answer_in(target: &str) -> Option<Answer> {
    let (path, query) = target.split_once('?')?;
    if path != "/" {
        return None;
    }
    let mut error = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        match name {
            "sso_ticket" if !value.is_empty() => return Some(Answer::Ticket(value)),
            "sso_error" => error = Some(Answer::Error(value)),
            _ => {}
        }
    }
    error
}

/// Answers the browser with a small page and closes the connection; a
/// browser that went away changes nothing here.
async fn respond(stream: &mut TcpStream, title: &str, text: &str) {
    let _ = write_page(stream, "200 OK", title, text).await;
}

async fn write_page(
    stream: &mut TcpStream,
    status: &str,
    title: &str,
    text: &str,
) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family: sans-serif; margin: 3em\"><p>{}</p></body></html>\n",
        html(title),
        html(text)
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// `text` safe inside HTML.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_read_from_the_request_target() {
        assert_eq!(
            answer_in("/?sso_ticket=abc%2Bd"),
            Some(Answer::Ticket("abc+d".into()))
        );
        assert_eq!(
            answer_in("/?x=1&sso_error=provider_error"),
            Some(Answer::Error("provider_error".into()))
        );
        assert_eq!(answer_in("/favicon.ico"), None);
        assert_eq!(answer_in("/other?sso_ticket=abc"), None);
        assert_eq!(answer_in("/?sso_ticket="), None);
        assert_eq!(answer_in("/"), None);
    }
}
