//! Hark's Rust client: [`Api`] for the HTTP routes and [`Connection`] for the
//! WebSocket, which reconnects, catches up without gaps or duplicates, and
//! resends unacknowledged messages with their original client ids.
//!
//! ```no_run
//! # async fn demo() -> hark_sdk::Result<()> {
//! use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection};
//! use hark_proto::{LoginRequest, Pos};
//!
//! let api = Api::new("http://127.0.0.1:8080")?;
//! let login = api
//!     .login(&LoginRequest {
//!         username: "alice".into(),
//!         password: "secret".into(),
//!         device_name: "laptop".into(),
//!         two_factor_code: None,
//!     })
//!     .await?;
//! let options = ConnectOptions { cursor: Pos(0), auto_delivered: true, tls: None };
//! let (conn, mut events) = Connection::connect(api.base_url(), &login.token, options).await?;
//! while let Some(event) = events.recv().await {
//!     if let ClientEvent::Event { pos, event } = event {
//!         println!("{pos}: {event:?}");
//!     }
//! }
//! # drop(conn);
//! # Ok(())
//! # }
//! ```

mod account;
mod actor;
mod admin;
mod api;
mod attachment;
mod audit;
mod backoff;
mod bots;
mod connection;
mod crypto;
mod error;
mod export;
mod keys;
mod media;
mod outbox;
mod profile;
mod push;
mod resumable;
mod sso;
mod sync;
mod thumbnail;
mod tls;
mod url;
mod verification;

pub use api::{Api, Page, SEND_RETRIES};
pub use attachment::{open_file, seal_file, sealed_file_id, SealedFile};
pub use audit::{AuditChecked, AuditFilter, AuditFrom};
pub use bots::{parse_actions, parse_webhook_kinds};
pub use connection::{ClientEvent, ConnectOptions, Connection, PendingSend};
pub use crypto::{replacement, Crypto, CryptoStore, Decrypted, Synced, Undecryptable};
pub use error::{Error, Result};
pub use hark_proto as proto;
pub use outbox::new_client_id;
pub use profile::Photo;
pub use resumable::UploadOptions;
pub use thumbnail::{sealed_thumbnail, SealedThumbnail};
pub use tls::Tls;
pub use verification::{DeviceKeys, Verification, VerificationState};
