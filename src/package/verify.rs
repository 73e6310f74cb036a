//! The verifier and applier: checks a package in a fixed order and streams its payload.
//!
//! Order of checks (each failure has its own `PackageError` variant):
//! 1. header: magic, format version, flags, manifest length bounds (`BadHeader`)
//! 2. manifest and signature are complete (`Truncated`)
//! 3. format 1: manifest bytes match the header's sha256 (`TamperedManifest`; format 2
//!    has no such digest: a changed manifest fails the signature)
//! 4. the key id (header in format 1, manifest bytes 1..9 in format 2) is trusted (`UnknownKey`)
//! 5. the signature verifies over the exact manifest bytes (`BadSignature`)
//! 6. the manifest parses canonically and the key ids agree (`InvalidManifest`, `KeyIdMismatch`)
//! 7. not expired at `now` (`Expired`)
//! 8. manufacturer and model, when the caller gives them (`WrongModel`)
//! 9. security version not below the caller's minimum (`Rollback`)
//! 10. for a delta: the source image's size and sha256 (`SourceRequired`, `WrongSource`)
//! 11. while streaming: payload size and sha256, nothing after it (`Truncated`,
//!     `TrailingData`, `TamperedPayload`), then decoding (`CorruptPayload`)
//! 12. after applying: target size and sha256 (`TargetMismatch`)
//!
//! Nothing before step 5 is trusted; nothing is decoded before step 10. Applying writes
//! the new image while the payload streams, so the output is only trustworthy once
//! `apply` returns `Ok`: write it to a temporary place and move it into use afterwards.

use std::io::{self, Read, Write};

use sha2::Digest;

use crate::package::compress::{self, PayloadEncoding};
use crate::package::delta::{ApplyError, raw, split};
use crate::package::error::PackageError;
use crate::package::format::{Header, MAX_HEADER_LEN, PREFIX_LEN, header_len};
use crate::package::manifest::{Manifest, ManifestError, Sha256};
use crate::package::manifest_bin;
use crate::package::progress::{Progress, Step};
use crate::package::signing::{KeyId, KeyRing, SIGNATURE_LEN};

/// What the verifying device (or tool) expects. `now` is unix seconds, supplied by the caller.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    pub keys: &'a KeyRing,
    pub now: i64,
    pub manufacturer: Option<&'a str>,
    pub model: Option<&'a str>,
    /// Highest security version installed so far; lower packages are refused.
    pub min_security_version: u64,
}

impl<'a> Policy<'a> {
    /// A policy with only keys and time: any model, no rollback floor.
    pub fn new(keys: &'a KeyRing, now: i64) -> Self {
        Self {
            keys,
            now,
            manufacturer: None,
            model: None,
            min_security_version: 0,
        }
    }
}

fn read_part(
    input: &mut impl Read,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), PackageError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => PackageError::Truncated(what),
        _ => PackageError::Io(e),
    })
}

/// Header, manifest bytes and signature, read but not trusted.
struct Envelope {
    header: Header,
    key_id: KeyId,
    manifest: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

/// Checks 1-3: reads the header, manifest and signature; checks the version 1 manifest
/// digest and finds the key id (the header's in version 1, the manifest's in version 2).
fn read_envelope(input: &mut impl Read) -> Result<Envelope, PackageError> {
    let mut head = [0u8; MAX_HEADER_LEN];
    read_part(input, &mut head[..PREFIX_LEN], "header")?;
    Header::parse(&head[..PREFIX_LEN])?;
    let len = header_len(u16::from_be_bytes([head[8], head[9]]));
    read_part(input, &mut head[PREFIX_LEN..len], "header")?;
    let header = Header::parse(&head[..len])?.expect("a whole header");
    let mut manifest = vec![0u8; header.manifest_len as usize];
    read_part(input, &mut manifest, "manifest")?;
    let mut signature = [0u8; SIGNATURE_LEN];
    read_part(input, &mut signature, "signature")?;
    let key_id = match header.v1 {
        Some((key_id, digest)) => {
            if Sha256::of(&manifest) != digest {
                return Err(PackageError::TamperedManifest);
            }
            key_id
        }
        None => manifest_bin::key_id(&manifest).ok_or(PackageError::InvalidManifest(
            ManifestError::Syntax("binary manifest: ends inside key_id".into()),
        ))?,
    };
    Ok(Envelope {
        header,
        key_id,
        manifest,
        signature,
    })
}

/// Reads header, manifest and signature without trusting them (for `inspect`).
/// Checks 1-3 and parses the manifest; no signature check.
pub fn read_unverified(
    input: &mut impl Read,
) -> Result<(Header, Manifest, [u8; SIGNATURE_LEN]), PackageError> {
    let envelope = read_envelope(input)?;
    let parsed = Manifest::from_signed_bytes(envelope.header.version, &envelope.manifest)?;
    Ok((envelope.header, parsed, envelope.signature))
}

/// Checks 1-9: reads the header, manifest and signature and returns the trusted manifest.
/// The input is left at the start of the payload.
pub fn read_manifest(input: &mut impl Read, policy: &Policy) -> Result<Manifest, PackageError> {
    let Envelope {
        header,
        key_id,
        manifest: manifest_bytes,
        signature,
    } = read_envelope(input)?;
    let key = policy
        .keys
        .get(key_id)
        .ok_or(PackageError::UnknownKey(key_id))?;
    if !key.verify(&manifest_bytes, &signature) {
        return Err(PackageError::BadSignature);
    }
    let manifest = Manifest::from_signed_bytes(header.version, &manifest_bytes)?;
    if manifest.key_id != key_id.to_string() {
        return Err(PackageError::KeyIdMismatch {
            header: key_id,
            manifest: manifest.key_id,
        });
    }
    if let Some(expires_at) = manifest.expires_at
        && expires_at <= policy.now
    {
        return Err(PackageError::Expired {
            expires_at,
            now: policy.now,
        });
    }
    let wrong = |expected: &str, found: &str| PackageError::WrongModel {
        expected: expected.to_owned(),
        found: found.to_owned(),
    };
    if let Some(m) = policy.manufacturer
        && m != manifest.manufacturer
    {
        return Err(wrong(m, &manifest.manufacturer));
    }
    if let Some(m) = policy.model
        && m != manifest.model
    {
        return Err(wrong(m, &manifest.model));
    }
    if manifest.security_version < policy.min_security_version {
        return Err(PackageError::Rollback {
            found: manifest.security_version,
            minimum: policy.min_security_version,
        });
    }
    Ok(manifest)
}

/// Check 10: the source image of a delta. Full packages ignore `old`.
pub fn check_source(manifest: &Manifest, old: Option<&[u8]>) -> Result<(), PackageError> {
    let Some(source) = &manifest.source else {
        return Ok(());
    };
    let old = old.ok_or_else(|| PackageError::SourceRequired {
        version: source.version.clone(),
    })?;
    let found = Sha256::of(old);
    if found != source.sha256 || old.len() as u64 != source.size {
        return Err(PackageError::WrongSource {
            expected: source.sha256,
            expected_size: source.size,
            found,
            found_size: old.len() as u64,
        });
    }
    Ok(())
}

/// Reads exactly the payload, hashing it; remembers truncation and read errors so that
/// the caller can report the real cause when decoding fails.
struct PayloadReader<'a, R: Read> {
    inner: &'a mut R,
    left: u64,
    hasher: sha2::Sha256,
    truncated: bool,
    failed: Option<io::Error>,
    done: u64,
    progress: &'a mut dyn Progress,
}

impl<R: Read> Read for PayloadReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = e.kind();
                    self.failed = Some(e);
                    return Err(kind.into());
                }
            }
        };
        if n == 0 {
            self.truncated = true;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        let before = self.done >> 20;
        self.done += n as u64;
        if self.done >> 20 != before || self.left == 0 {
            self.progress.update(self.done);
        }
        Ok(n)
    }
}

impl<R: Read> PayloadReader<'_, R> {
    /// Reads the rest of the payload and checks that nothing follows; returns its digest.
    fn finish(mut self) -> Result<Sha256, PackageError> {
        if let Some(e) = self.failed.take() {
            return Err(PackageError::Io(e));
        }
        io::copy(&mut self, &mut io::sink()).map_err(|e| match self.failed.take() {
            Some(inner) => PackageError::Io(inner),
            None => PackageError::Io(e),
        })?;
        if self.truncated || self.left > 0 {
            return Err(PackageError::Truncated("payload"));
        }
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => return Err(PackageError::TrailingData),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PackageError::Io(e)),
            }
        }
        Ok(Sha256(self.hasher.finalize().into()))
    }
}

/// Hashes and counts what is written through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: sha2::Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Check 11 without decoding: payload size, sha256 and end of file.
pub fn check_payload(
    input: &mut impl Read,
    manifest: &Manifest,
    progress: &mut dyn Progress,
) -> Result<(), PackageError> {
    progress.start(Step::Verify, manifest.payload.size);
    let reader = payload_reader(input, manifest, progress);
    if reader.finish()? != manifest.payload.sha256 {
        return Err(PackageError::TamperedPayload);
    }
    Ok(())
}

fn payload_reader<'a, R: Read>(
    input: &'a mut R,
    manifest: &Manifest,
    progress: &'a mut dyn Progress,
) -> PayloadReader<'a, R> {
    PayloadReader {
        inner: input,
        left: manifest.payload.size,
        hasher: sha2::Sha256::new(),
        truncated: false,
        failed: None,
        done: 0,
        progress,
    }
}

/// Copies a decoded full image, telling input errors from output errors.
fn copy_image(input: &mut dyn Read, out: &mut impl Write) -> Result<u64, ApplyError> {
    let mut buf = vec![0u8; crate::package::delta::apply::WINDOW];
    let mut total = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ApplyError::Input(e)),
        };
        out.write_all(&buf[..n]).map_err(ApplyError::Output)?;
        total += n as u64;
    }
}

fn decode(
    encoding: PayloadEncoding,
    reader: &mut impl Read,
    old: &[u8],
    out: &mut impl Write,
) -> Result<u64, ApplyError> {
    match encoding {
        PayloadEncoding::FullZstd | PayloadEncoding::FullXz => {
            let mut dec = compress::whole_decoder(encoding, reader).map_err(ApplyError::Input)?;
            copy_image(&mut dec, out)
        }
        PayloadEncoding::BsdiffZstd => {
            let mut dec = compress::whole_decoder(encoding, reader).map_err(ApplyError::Input)?;
            raw::apply(old, &mut dec, out)
        }
        PayloadEncoding::BsdiffSplitXz => split::apply(old, false, reader, out),
        PayloadEncoding::BsdiffSplitZstd => split::apply(old, true, reader, out),
    }
}

/// Checks 11-12 while decoding the payload into `out`. `input` must be at the payload
/// (after `read_manifest`) and `check_source` must have passed.
pub fn apply_payload<W: Write>(
    input: &mut impl Read,
    manifest: &Manifest,
    old: Option<&[u8]>,
    out: W,
    progress: &mut dyn Progress,
) -> Result<W, PackageError> {
    progress.start(Step::Apply, manifest.payload.size);
    let mut reader = payload_reader(input, manifest, progress);
    let mut sink = HashingWriter {
        inner: out,
        hasher: sha2::Sha256::new(),
        len: 0,
    };
    let decoded = decode(
        manifest.payload.encoding,
        &mut reader,
        old.unwrap_or_default(),
        &mut sink,
    )
    .and_then(|n| sink.flush().map(|()| n).map_err(ApplyError::Output));
    if let Err(ApplyError::Output(e)) = decoded {
        return Err(PackageError::Io(e));
    }
    // The payload's own digest decides between tampering and a decoder complaint.
    if reader.finish()? != manifest.payload.sha256 {
        return Err(PackageError::TamperedPayload);
    }
    if let Err(e) = decoded {
        return Err(PackageError::CorruptPayload(e.to_string()));
    }
    let digest = Sha256(sink.hasher.finalize().into());
    if sink.len != manifest.target.size || digest != manifest.target.sha256 {
        return Err(PackageError::TargetMismatch);
    }
    Ok(sink.inner)
}

/// Verifies a whole package: every check, including decoding and the target digest,
/// without keeping the output. Returns the trusted manifest.
pub fn verify(
    input: &mut impl Read,
    policy: &Policy,
    old: Option<&[u8]>,
    progress: &mut dyn Progress,
) -> Result<Manifest, PackageError> {
    apply(input, policy, old, io::sink(), progress).map(|(m, _)| m)
}

/// Verifies and applies a package, writing the new image to `out`. Only an `Ok` result
/// makes the written bytes trustworthy.
pub fn apply<W: Write>(
    input: &mut impl Read,
    policy: &Policy,
    old: Option<&[u8]>,
    out: W,
    progress: &mut dyn Progress,
) -> Result<(Manifest, W), PackageError> {
    let manifest = read_manifest(input, policy)?;
    check_source(&manifest, old)?;
    let out = apply_payload(input, &manifest, old, out, progress)?;
    Ok((manifest, out))
}
