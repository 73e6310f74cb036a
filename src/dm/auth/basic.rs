//! `syncml:auth-basic` (brief 2.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// `Cred/Data` for basic auth: B64("name:secret").
pub fn basic_credential(name: &str, secret: &str) -> String {
    STANDARD.encode(format!("{name}:{secret}"))
}

/// Splits a basic `Cred/Data` into (name, secret) at the first `:`.
pub fn parse_basic_credential(data: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(data.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (n, s) = text.split_once(':')?;
    Some((n.to_owned(), s.to_owned()))
}
