//! What an uploaded file is, read from its bytes and nothing else: its
//! type and an image's size from its first bytes ([`sniff`]), how long
//! audio or video plays from its first and last bytes ([`duration_ms`]),
//! and the name it was uploaded with made safe to keep and show
//! ([`clean_name`]).
//!
//! Every function here takes bytes or text a client sent and does no I/O,
//! so the fuzz targets (`fuzz/`) run them without the server;
//! `hark-server`'s `media` module calls them and maps [`SniffError`] to its
//! API errors.

mod duration;
mod name;
mod sniff;

pub use duration::duration_ms;
pub use name::clean_name;
pub use sniff::{sniff, SniffError, Sniffed, HEAD_BYTES};
