//! Accounts and chats made over HTTP (plain reqwest and the `hark-proto`
//! bodies, so the bench does not move with the SDK) before a scenario's
//! clock starts. Each account costs two Argon2id hashes (register, login) by
//! design, so scenarios create few and open many sockets per token.

use anyhow::Context;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use hark_proto::{
    Chat, ChatId, CreateDirectRequest, CreateGroupRequest, DeviceId, LoginRequest, LoginResponse,
    Register, UserId,
};
use serde::{de::DeserializeOwned, Serialize};

/// A tiny HTTP client for the few setup calls.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(base: &str) -> anyhow::Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder().build()?,
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        })
    }

    fn with_token(mut self, token: String) -> Api {
        self.token = Some(token);
        self
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            anyhow::bail!("POST {path}: {status} {text}");
        }
        Ok(resp.json().await?)
    }

    async fn register(&self, body: &Register) -> anyhow::Result<serde_json::Value> {
        self.post("/v1/register", body).await
    }

    async fn login(&self, body: &LoginRequest) -> anyhow::Result<LoginResponse> {
        self.post("/v1/login", body).await
    }

    async fn create_direct(&self, user_id: UserId, encrypted: bool) -> anyhow::Result<Chat> {
        let body = CreateDirectRequest { user_id, encrypted };
        self.post("/v1/chats/direct", &body).await
    }

    async fn create_group(&self, body: &CreateGroupRequest) -> anyhow::Result<Chat> {
        self.post("/v1/chats/groups", body).await
    }
}

/// A registered user with one logged-in device.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: UserId,
    pub device_id: DeviceId,
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
                        two_factor_code: None,
                    })
                    .await
                    .with_context(|| format!("logging in {username}"))?;
                Ok::<_, anyhow::Error>(Account {
                    user_id: login.user.id,
                    device_id: login.device.id,
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
    Ok(api
        .create_direct(b.user_id, false)
        .await
        .context("creating a direct chat")?
        .id)
}

/// The end-to-end encrypted one-to-one chat between `a` and `b`, created by `a`.
pub async fn encrypted_direct_chat(base: &str, a: &Account, b: &Account) -> anyhow::Result<ChatId> {
    let api = Api::new(base)?.with_token(a.token.clone());
    Ok(api
        .create_direct(b.user_id, true)
        .await
        .context("creating an encrypted direct chat")?
        .id)
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
    group_of(base, creator, members, false).await
}

/// A group created by `creator` with `members`, end-to-end encrypted or not.
pub async fn group_of(
    base: &str,
    creator: &Account,
    members: &[Account],
    encrypted: bool,
) -> anyhow::Result<ChatId> {
    let api = Api::new(base)?.with_token(creator.token.clone());
    let chat = api
        .create_group(&CreateGroupRequest {
            title: "bench".into(),
            members: members.iter().map(|m| m.user_id).collect(),
            encrypted,
        })
        .await
        .context("creating a group")?;
    Ok(chat.id)
}
