//! Newtypes for identifiers, so a chat id cannot be passed where a user id goes.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An account.
    UserId
);
id_type!(
    /// One logged-in device (a session) of a user.
    DeviceId
);
id_type!(
    /// A one-to-one chat or a group.
    ChatId
);
id_type!(
    /// A message's place in its chat: 1, 2, 3, … without gaps, assigned at commit.
    Seq
);
id_type!(
    /// A position in a user's event stream: 1, 2, 3, … without gaps per user.
    /// A device's sync cursor is the last `Pos` it has applied.
    Pos
);

/// The id a client gives a send so a resend is recognised. Unique per sending
/// device forever; 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(pattern = "^[!-~]{1,64}$"))]
#[serde(transparent)]
pub struct ClientMsgId(pub String);

impl ClientMsgId {
    /// The longest client message id the server accepts, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Whether the id is non-empty, short enough and printable ASCII.
    pub fn is_valid(&self) -> bool {
        !self.0.is_empty()
            && self.0.len() <= Self::MAX_LEN
            && self.0.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl fmt::Display for ClientMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
