//! Accounts and chats made over HTTP with the SDK's `Api` before a scenario's
//! clock starts. Each account costs two Argon2id hashes (register, login) by
//! design, so scenarios create few and open many sockets per token.

use anyhow::Context;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use hark_proto::{ChatId, CreateGroupRequest, LoginRequest, Register, UserId};
use hark_sdk::Api;

/// A registered user with one logged-in device.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: UserId,
    pub token: String,
}

const PASSWORD: &str = "bench-password-1";

/// A prefix for usernames that is new on every run, so runs can share a server.
pub fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("b{:x}", (nanos as u64) ^ u64::from(std::process::id()))
}

/// Registers and logs in `n` users named `{tag}{role}{i}`, a few at a time
/// (the hashes are CPU-bound on the server).
pub async fn accounts(base: &str, tag: &str, role: &str, n: usize) -> anyhow::Result<Vec<Account>> {
    let api = Api::new(base)?;
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let username = format!("{tag}{role}{i}");
            async move {
                api.register(&Register {
                    username: username.clone(),
                    password: PASSWORD.into(),
                    display_name: None,
                })
                .await
                .with_context(|| format!("registering {username}"))?;
                let login = api
                    .login(&LoginRequest {
                        username: username.clone(),
                        password: PASSWORD.into(),
                        device_name: "bench".into(),
                    })
                    .await
                    .with_context(|| format!("logging in {username}"))?;
                Ok::<_, anyhow::Error>(Account {
                    user_id: login.user.id,
                    token: login.token,
                })
            }
        })
        .buffered(6)
        .try_collect()
        .await
}

/// The one-to-one chat between `a` and `b`, created by `a`.
pub async fn direct_chat(base: &str, a: &Account, b: &Account) -> anyhow::Result<ChatId> {
    let api = Api::new(base)?.with_token(a.token.clone());
    Ok(api.create_direct(b.user_id).await.context("creating a direct chat")?.id)
}

/// One-to-one chats for many pairs, a few requests at a time.
pub async fn direct_chats(base: &str, pairs: &[(Account, Account)]) -> anyhow::Result<Vec<ChatId>> {
    stream::iter(pairs)
        .map(|(a, b)| direct_chat(base, a, b))
        .buffered(16)
        .try_collect()
        .await
}

/// A group created by `creator` with `members`.
pub async fn group(base: &str, creator: &Account, members: &[Account]) -> anyhow::Result<ChatId> {
    let api = Api::new(base)?.with_token(creator.token.clone());
    let chat = api
        .create_group(&CreateGroupRequest {
            title: "bench".into(),
            members: members.iter().map(|m| m.user_id).collect(),
        })
        .await
        .context("creating a group")?;
    Ok(chat.id)
}
