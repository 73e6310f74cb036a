//! The canonical binary encoding of a manifest (package format version 2).
//!
//! ```text
//! manifest := format_version:u8 (=2) | key_id:8 | manufacturer:text | model:text
//!             | target:image | has_source:u8 (0|1) [source:image]
//!             | encoding:u8 | payload_sha256:32 | payload_size:varint
//!             | created_at:zvarint | has_expiry:u8 (0|1) [expires_at:zvarint]
//!             | security_version:varint
//! image    := version:text | sha256:32 | size:varint
//! text     := len:u8 (1..=128) | UTF-8 bytes
//! varint   := unsigned LEB128; zvarint := zigzag, then varint
//! ```
//! The same facts as the JSON form of version 1, in about a third of the bytes. Canonical:
//! a decoder re-encodes what it read and refuses bytes that differ (a longer varint than
//! needed, a flag other than 0 or 1, trailing bytes), so every manifest has one byte form.

use crate::package::compress::PayloadEncoding;
use crate::package::manifest::{ImageRef, Manifest, ManifestError, PayloadRef, Sha256};
use crate::package::signing::KeyId;

/// The encoding's number in a binary manifest.
fn encoding_code(e: PayloadEncoding) -> u8 {
    match e {
        PayloadEncoding::FullZstd => 1,
        PayloadEncoding::FullXz => 2,
        PayloadEncoding::BsdiffZstd => 3,
        PayloadEncoding::BsdiffSplitXz => 4,
        PayloadEncoding::BsdiffSplitZstd => 5,
    }
}

fn encoding_from_code(code: u8) -> Option<PayloadEncoding> {
    [
        PayloadEncoding::FullZstd,
        PayloadEncoding::FullXz,
        PayloadEncoding::BsdiffZstd,
        PayloadEncoding::BsdiffSplitXz,
        PayloadEncoding::BsdiffSplitZstd,
    ]
    .into_iter()
    .find(|&e| encoding_code(e) == code)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn text(out: &mut Vec<u8>, s: &str) {
    // `validate` bounds texts to 128 bytes before anything is encoded.
    out.push(s.len().min(255) as u8);
    out.extend_from_slice(s.as_bytes());
}

fn image(out: &mut Vec<u8>, i: &ImageRef) {
    text(out, &i.version);
    out.extend_from_slice(&i.sha256.0);
    varint(out, i.size);
}

/// The binary bytes of a (validated) manifest.
pub fn encode(m: &Manifest) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(m.format_version as u8);
    let mut key = [0u8; 8];
    // `validate` guarantees 16 hex characters.
    let _ = hex::decode_to_slice(&m.key_id, &mut key);
    out.extend_from_slice(&key);
    text(&mut out, &m.manufacturer);
    text(&mut out, &m.model);
    image(&mut out, &m.target);
    match &m.source {
        Some(s) => {
            out.push(1);
            image(&mut out, s);
        }
        None => out.push(0),
    }
    out.push(encoding_code(m.payload.encoding));
    out.extend_from_slice(&m.payload.sha256.0);
    varint(&mut out, m.payload.size);
    varint(&mut out, zigzag(m.created_at));
    match m.expires_at {
        Some(t) => {
            out.push(1);
            varint(&mut out, zigzag(t));
        }
        None => out.push(0),
    }
    varint(&mut out, m.security_version);
    out
}

/// The key id a binary manifest names (bytes 1..9), read before it is trusted.
pub fn key_id(bytes: &[u8]) -> Option<KeyId> {
    bytes
        .get(1..9)
        .map(|k| KeyId(k.try_into().expect("8 bytes")))
}

struct Reader<'a>(&'a [u8]);

fn syntax(what: &str) -> ManifestError {
    ManifestError::Syntax(format!("binary manifest: {what}"))
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], ManifestError> {
        if self.0.len() < n {
            return Err(syntax(&format!("ends inside {what}")));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self, what: &str) -> Result<u8, ManifestError> {
        Ok(self.take(1, what)?[0])
    }

    fn flag(&mut self, what: &str) -> Result<bool, ManifestError> {
        match self.byte(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ManifestError::NotCanonical),
        }
    }

    fn varint(&mut self, what: &str) -> Result<u64, ManifestError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte(what)?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(syntax(&format!("{what} too long")))
    }

    fn zvarint(&mut self, what: &str) -> Result<i64, ManifestError> {
        let v = self.varint(what)?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn sha(&mut self, what: &str) -> Result<Sha256, ManifestError> {
        Ok(Sha256(self.take(32, what)?.try_into().expect("32 bytes")))
    }

    fn text(&mut self, what: &str) -> Result<String, ManifestError> {
        let len = self.byte(what)? as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| syntax(&format!("{what} is not UTF-8")))
    }

    fn image(&mut self, what: &str) -> Result<ImageRef, ManifestError> {
        Ok(ImageRef {
            version: self.text(what)?,
            sha256: self.sha(what)?,
            size: self.varint(what)?,
        })
    }
}

/// Parses binary manifest bytes (no field rules, no canonical check: see
/// `Manifest::from_signed_bytes`).
pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let mut r = Reader(bytes);
    let format_version = u32::from(r.byte("format_version")?);
    let key_id = hex::encode(r.take(8, "key_id")?);
    let manufacturer = r.text("manufacturer")?;
    let model = r.text("model")?;
    let target = r.image("target")?;
    let source = if r.flag("source")? {
        Some(r.image("source")?)
    } else {
        None
    };
    let code = r.byte("payload.encoding")?;
    let encoding =
        encoding_from_code(code).ok_or_else(|| syntax(&format!("unknown encoding {code}")))?;
    let payload = PayloadRef {
        encoding,
        sha256: r.sha("payload.sha256")?,
        size: r.varint("payload.size")?,
    };
    let created_at = r.zvarint("created_at")?;
    let expires_at = if r.flag("expires_at")? {
        Some(r.zvarint("expires_at")?)
    } else {
        None
    };
    let security_version = r.varint("security_version")?;
    if !r.0.is_empty() {
        return Err(syntax("trailing bytes"));
    }
    Ok(Manifest {
        format_version,
        key_id,
        manufacturer,
        model,
        target,
        source,
        payload,
        created_at,
        expires_at,
        security_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::manifest::tests::sample;

    fn sample_v2() -> Manifest {
        Manifest {
            format_version: 2,
            ..sample()
        }
    }

    #[test]
    fn binary_bytes_are_stable_and_round_trip() {
        let m = sample_v2();
        let bytes = encode(&m);
        let expected = [
            "02",
            "0123456789abcdef",
            "0441636d65",
            "025831",
            "05312e312e30",
            &"11".repeat(32),
            "8020",
            "01",
            "05312e302e30",
            &"22".repeat(32),
            "a01f",
            "04",
            &"ab".repeat(32),
            "c102",
            "80e4ad950d",
            "00",
            "07",
        ]
        .concat();
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(bytes.len(), 140);
        assert_eq!(Manifest::from_signed_bytes(2, &bytes).unwrap(), m);
        assert_eq!(
            key_id(&bytes),
            Some(KeyId([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]))
        );
        let mut m = sample_v2();
        m.source = None;
        m.payload.encoding = PayloadEncoding::FullXz;
        m.expires_at = Some(m.created_at + 1);
        let bytes = encode(&m);
        assert_eq!(Manifest::from_signed_bytes(2, &bytes).unwrap(), m);
    }

    #[test]
    fn non_canonical_binary_forms_are_rejected() {
        let bytes = encode(&sample_v2());
        // The security version 7 as a two-byte varint.
        let mut long = bytes.clone();
        *long.last_mut().unwrap() = 0x87;
        long.push(0x00);
        assert_eq!(
            Manifest::from_signed_bytes(2, &long),
            Err(ManifestError::NotCanonical)
        );
        let trailing = [&bytes[..], &[0]].concat();
        assert!(matches!(
            Manifest::from_signed_bytes(2, &trailing),
            Err(ManifestError::Syntax(_))
        ));
        // The expiry flag (second to last byte) as 2.
        let mut flag = bytes.clone();
        let at = flag.len() - 2;
        flag[at] = 2;
        assert_eq!(
            Manifest::from_signed_bytes(2, &flag),
            Err(ManifestError::NotCanonical)
        );
        for cut in [0, 5, 40, bytes.len() - 1] {
            assert!(matches!(
                Manifest::from_signed_bytes(2, &bytes[..cut]),
                Err(ManifestError::Syntax(_))
            ));
        }
        // A version 1 manifest in a version 2 package (and the reverse) is refused.
        let mut v1 = bytes.clone();
        v1[0] = 1;
        assert!(matches!(
            Manifest::from_signed_bytes(2, &v1),
            Err(ManifestError::Field {
                field: "format_version",
                ..
            })
        ));
        assert!(Manifest::from_signed_bytes(1, &bytes).is_err());
    }
}
