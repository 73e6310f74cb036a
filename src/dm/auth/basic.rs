//! `syncml:auth-basic` (brief 2.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// `Cred/Data` for basic auth: B64("name:secret").
pub fn basic_credential(name: &str, secret: &str) -> String {
    STANDARD.encode(format!("{name}:{secret}"))
}

/// The secret in a basic `Cred/Data`, when it names `expected_name`.
///
/// Names may themselves contain `:` (a DevId such as `IMEI:4901…` is a common AAuthName),
/// so splitting at the first `:` would misread them: match the known name as a prefix.
pub fn basic_secret_for(data: &str, expected_name: &str) -> Option<String> {
    let raw = STANDARD.decode(data.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let secret = text.strip_prefix(expected_name)?.strip_prefix(':')?;
    Some(secret.to_owned())
}

/// Splits a basic `Cred/Data` into (name, secret) at the first `:` (ambiguous when the name
/// has a `:`; prefer [`basic_secret_for`] when the name is known).
pub fn parse_basic_credential(data: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(data.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (n, s) = text.split_once(':')?;
    Some((n.to_owned(), s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_colons_are_matched_as_a_whole() {
        let data = basic_credential("IMEI:490154203237518", "s3cr:et");
        assert_eq!(
            basic_secret_for(&data, "IMEI:490154203237518").as_deref(),
            Some("s3cr:et")
        );
        // A shorter name ending where a ':' stands reads another secret, which then fails
        // the digest check made with that name; it never yields the real one.
        assert_ne!(basic_secret_for(&data, "IMEI").as_deref(), Some("s3cr:et"));
        assert_eq!(basic_secret_for(&data, "IMEI:4901542032375"), None);
        assert_eq!(basic_secret_for("not base64!", "x"), None);
    }
}
