//! The people and devices of a fault-injection test: accounts registered
//! over HTTP, and devices whose SDK [`Connection`] records every event it
//! hands the application (through disconnects, reconnects and catch-up).

use super::ledger::Stored;
use hark_sdk::proto::{ChatId, Event, LoginRequest, Register, User, UserId};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

const PASSWORD: &str = "correct horse battery";

/// A registered user with a logged-in device.
pub struct Account {
    pub name: String,
    pub user: User,
    pub api: Api,
}

impl Account {
    pub async fn register(url: &str, name: &str) -> Account {
        let api = Api::new(url).unwrap();
        api.register(&Register {
            username: name.into(),
            password: PASSWORD.into(),
            display_name: None,
        })
        .await
        .unwrap_or_else(|e| panic!("registering {name}: {e}"));
        let token = login(url, name).await;
        let user = Api::new(url)
            .unwrap()
            .with_token(&token)
            .me()
            .await
            .unwrap()
            .user;
        Account {
            name: name.into(),
            user,
            api: api.with_token(token),
        }
    }

    pub fn id(&self) -> UserId {
        self.user.id
    }

    pub fn token(&self) -> String {
        self.api.token().unwrap().to_owned()
    }
}

/// Logs `name` in again: the token of a new device of theirs.
pub async fn login(url: &str, name: &str) -> String {
    Api::new(url)
        .unwrap()
        .login(&LoginRequest {
            username: name.into(),
            password: PASSWORD.into(),
            device_name: format!("{name}'s device"),
            two_factor_code: None,
        })
        .await
        .unwrap_or_else(|e| panic!("logging {name} in: {e}"))
        .token
}

/// What one device's connection handed the application, in order.
#[derive(Default, Debug)]
pub struct Seen {
    pub messages: Vec<Stored>,
    pub last_pos: i64,
    /// Events whose position was not the one after the previous event's.
    pub out_of_order_pos: usize,
    pub connects: usize,
    pub disconnects: usize,
    pub closed: bool,
}

/// A device with an open SDK [`Connection`] (automatic delivered marks
/// on), and a task recording everything it hands the application.
pub struct Device {
    pub name: String,
    pub token: String,
    pub url: String,
    pub chats: Vec<ChatId>,
    pub conn: Connection,
    pub seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Device {
    pub async fn open(url: &str, token: &str, name: &str, chats: &[ChatId]) -> Device {
        let options = ConnectOptions {
            auto_delivered: true,
            ..ConnectOptions::default()
        };
        let (conn, mut events) = Connection::connect(url, token, options)
            .await
            .unwrap_or_else(|e| panic!("connecting {name}: {e}"));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let mut seen = record.lock().unwrap();
                match event {
                    ClientEvent::Connected { .. } => seen.connects += 1,
                    ClientEvent::Disconnected { .. } => seen.disconnects += 1,
                    ClientEvent::Event { pos, event } => {
                        if pos.0 != seen.last_pos + 1 {
                            seen.out_of_order_pos += 1;
                        }
                        seen.last_pos = pos.0;
                        if let Event::Message(m) = event {
                            seen.messages.push((m.chat_id, m.seq.0, m.client_id.0));
                        }
                    }
                    ClientEvent::Closed { .. } => {
                        seen.closed = true;
                        break;
                    }
                    _ => {}
                }
            }
        });
        Device {
            name: name.to_owned(),
            token: token.to_owned(),
            url: url.to_owned(),
            chats: chats.to_vec(),
            conn,
            seen,
            task,
        }
    }

    pub fn connects(&self) -> usize {
        self.seen.lock().unwrap().connects
    }

    pub fn disconnects(&self) -> usize {
        self.seen.lock().unwrap().disconnects
    }

    pub fn has(&self, client_id: &str) -> bool {
        self.seen
            .lock()
            .unwrap()
            .messages
            .iter()
            .any(|(_, _, c)| c == client_id)
    }

    /// Acked messages of this device's chats it has not been handed yet.
    pub fn missing(&self, acked: &HashMap<String, (ChatId, i64)>) -> usize {
        let seen = self.seen.lock().unwrap();
        let have: HashSet<&str> = seen.messages.iter().map(|(_, _, c)| c.as_str()).collect();
        acked
            .iter()
            .filter(|(c, (chat, _))| self.chats.contains(chat) && !have.contains(c.as_str()))
            .count()
    }

    pub async fn close(self) {
        self.conn.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}
