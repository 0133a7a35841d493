//! `support-desk`: runs the help desk's bot.
//!
//! ```sh
//! HARK_URL=https://chat.example.com HARK_BOT_TOKEN=… HARK_AGENTS_CHAT=12 support-desk
//! ```
//!
//! `HARK_BOT_TOKEN` is a token of the bot (`hark bot token desk --actions
//! read,send,mark,typing`), `HARK_AGENTS_CHAT` the group of agents it hands
//! conversations to (add the bot to it). `HARK_DESK_STATE` (optional) is a
//! file where it keeps how far it read, so a restart goes on from there.

use hark_proto::{ChatId, Pos};
use hark_sdk::Api;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt::init();
    let var = |name: &str| std::env::var(name).map_err(|_| anyhow::anyhow!("set {name}"));
    let api = Api::new(&var("HARK_URL")?)?.with_token(var("HARK_BOT_TOKEN")?);
    let agents = ChatId(var("HARK_AGENTS_CHAT")?.parse()?);
    let state = std::env::var("HARK_DESK_STATE").ok();
    let cursor = state
        .as_deref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| text.trim().parse().ok())
        .map(Pos);
    let mut desk = support_desk::Desk::new(api, agents);
    let result = desk.run(cursor).await;
    if let (Some(path), Ok(last)) = (&state, &result) {
        std::fs::write(path, last.0.to_string())?;
    }
    result.map(|_| ())
}
