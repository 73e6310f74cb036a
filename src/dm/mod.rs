//! OMA DM 1.2 protocol core (sans-IO): typed SyncML messages, XML/WBXML codecs, authentication,
//! Package 0, Large Objects and the server session engine.
//!
//! Nothing in here touches sockets, clocks, databases or OS randomness: callers pass bytes, the
//! time, a nonce source and the device record in, and apply the returned [`session::Effect`]s.

pub mod auth;
pub mod codec;
pub mod error;
pub mod large_object;
pub mod limits;
pub mod message;
pub mod package0;
pub mod session;
pub mod tree;
pub mod wap_push;
pub mod wbxml;
pub mod xml;

pub use codec::{Encoding, decode, encode};
pub use error::DecodeError;
pub use limits::Limits;
#[cfg(test)]
mod tests;
