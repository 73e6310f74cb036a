//! `updraft package …`: the offline CLI (keygen, build, verify, apply, inspect); does the file I/O.
//!
//! Exit codes: 0 success, 1 usage or I/O error, 2 the package was rejected. Errors are one
//! line on stderr. Outputs are written to a temporary file in the target folder, synced,
//! then renamed into place, so a failed or interrupted run never leaves a partial file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::package::{
    self, BuildPolicy, KeyRing, PackageError, PayloadEncoding, Policy, Progress, PublicKey,
    Release, SecretKey, Step, verify,
};

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Generate a signing key: the private key to FILE, the public key to FILE.pub.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Build and sign a package: a delta when --old is given, else a full image.
    Build(BuildArgs),
    /// Check a package completely; exit 0 only if every check passes.
    Verify(VerifyArgs),
    /// Verify, then apply a package and write the new image.
    Apply(ApplyArgs),
    /// Print a package's manifest (not verified).
    Inspect {
        pkg: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Private key file (from `keygen`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[arg(long, default_value = "unspecified")]
    manufacturer: String,
    #[arg(long)]
    model: String,
    #[arg(long, value_name = "V")]
    target_version: String,
    /// The new (target) image.
    #[arg(long, value_name = "NEW")]
    new: PathBuf,
    /// The old (source) image; makes a delta.
    #[arg(long, value_name = "OLD", requires = "source_version")]
    old: Option<PathBuf>,
    #[arg(long, value_name = "S", requires = "old")]
    source_version: Option<String>,
    #[arg(long, value_name = "N", default_value_t = 0)]
    security_version: u64,
    /// Expiry time, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    expires: Option<String>,
    /// Payload encoding (default: bsdiff-split+xz for deltas, full+xz otherwise).
    #[arg(long)]
    encoding: Option<String>,
    /// Also build the full-image fallback here; then the delta is written to --out only
    /// if it is smaller than --max-delta-ratio of it (else --out gets the full package).
    #[arg(long, value_name = "PKG")]
    full_out: Option<PathBuf>,
    #[arg(long, default_value_t = 0.5)]
    max_delta_ratio: f64,
    #[arg(long, value_name = "PKG")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Trusted public key file(s) (FILE.pub); repeat for several.
    #[arg(long = "pubkey", value_name = "FILE.pub", required = true)]
    pubkeys: Vec<PathBuf>,
    /// The source image (needed for deltas).
    #[arg(long, value_name = "OLD")]
    old: Option<PathBuf>,
    /// Refuse packages for another model.
    #[arg(long)]
    model: Option<String>,
    /// Refuse packages for another manufacturer.
    #[arg(long)]
    manufacturer: Option<String>,
    /// Refuse packages with a lower security version (anti-rollback).
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_security_version: u64,
    /// Check expiry against this time (RFC 3339) instead of the clock.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    check: CheckArgs,
    pkg: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    check: CheckArgs,
    pkg: PathBuf,
    /// Where to write the new image.
    #[arg(long, value_name = "NEW")]
    out: PathBuf,
}

/// A failure: exit code 1 (usage, I/O) or 2 (package rejected).
enum Failure {
    Usage(String),
    Rejected(PackageError),
}

impl From<PackageError> for Failure {
    fn from(e: PackageError) -> Self {
        match e {
            PackageError::Io(e) => Failure::Usage(format!("i/o error: {e}")),
            other => Failure::Rejected(other),
        }
    }
}

/// Runs one subcommand and reports failures as one line on stderr.
pub fn run(cmd: PackageCommand) -> ExitCode {
    let result = match cmd {
        PackageCommand::Keygen { out } => keygen(&out),
        PackageCommand::Build(args) => build(&args),
        PackageCommand::Verify(args) => verify_cmd(&args),
        PackageCommand::Apply(args) => apply_cmd(&args),
        PackageCommand::Inspect { pkg, json } => inspect(&pkg, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Rejected(e)) => {
            eprintln!("rejected: {e}");
            ExitCode::from(2)
        }
    }
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

fn read_text(path: &Path) -> Result<String, Failure> {
    fs::read_to_string(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

fn open(path: &Path) -> Result<BufReader<File>, Failure> {
    File::open(path)
        .map(|f| BufReader::with_capacity(256 * 1024, f))
        .map_err(|e| usage(format!("cannot open {}: {e}", path.display())))
}

fn parse_time(text: &str) -> Result<i64, Failure> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| usage(format!("bad RFC 3339 time {text:?}: {e}")))
}

fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix.to_string())
}

/// Writes a file through `fill` into a temporary sibling, syncs it, then renames it into
/// place; the temporary file is removed on failure.
fn write_atomically<T>(
    path: &Path,
    private: bool,
    fill: impl FnOnce(&mut BufWriter<&File>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| usage(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let file = options
        .open(&tmp)
        .map_err(|e| usage(format!("cannot create {}: {e}", tmp.display())))?;
    let result = (|| {
        let mut w = BufWriter::with_capacity(256 * 1024, &file);
        let value = fill(&mut w)?;
        w.flush().map_err(usage)?;
        drop(w);
        file.sync_all().map_err(usage)?;
        fs::rename(&tmp, path)
            .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A progress bar on a terminal, nothing otherwise.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new() -> Self {
        Self(None)
    }
}

impl Progress for Bar {
    fn start(&mut self, step: Step, total: u64) {
        if !io::stderr().is_terminal() {
            return;
        }
        let label = match step {
            Step::SuffixSort => "indexing old image",
            Step::Match => "matching",
            Step::Compress => "compressing",
            Step::Verify => "verifying",
            Step::Apply => "applying",
        };
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:>18} [{bar:30}] {bytes}/{total_bytes} {elapsed}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label);
        self.0 = Some(bar);
    }

    fn update(&mut self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

fn keygen(out: &Path) -> Result<(), Failure> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| usage(format!("no randomness: {e}")))?;
    let key = SecretKey::from_seed(seed);
    seed.fill(0);
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    for p in [out, &public_path] {
        if p.exists() {
            return Err(usage(format!(
                "{} exists; not overwriting a key",
                p.display()
            )));
        }
    }
    write_atomically(out, true, |w| {
        w.write_all(key.to_file_text().as_bytes()).map_err(usage)
    })?;
    let public = key.public();
    write_atomically(&public_path, false, |w| {
        w.write_all(public.to_file_text().as_bytes()).map_err(usage)
    })?;
    println!(
        "key id {} written to {} and {}",
        public.id(),
        out.display(),
        public_path.display()
    );
    Ok(())
}

fn build(args: &BuildArgs) -> Result<(), Failure> {
    let key = SecretKey::from_file_text(&read_text(&args.key)?).map_err(usage)?;
    let new = read(&args.new)?;
    let old = args.old.as_deref().map(read).transpose()?;
    let expires_at = args.expires.as_deref().map(parse_time).transpose()?;
    let release = Release {
        manufacturer: &args.manufacturer,
        model: &args.model,
        target_version: &args.target_version,
        source_version: args.source_version.as_deref(),
        security_version: args.security_version,
        created_at: chrono::Utc::now().timestamp(),
        expires_at,
    };
    let encoding = args
        .encoding
        .as_deref()
        .map(|name| {
            PayloadEncoding::from_name(name)
                .ok_or_else(|| usage(format!("unknown encoding {name}")))
        })
        .transpose()?;
    let mut bar = Bar::new();
    let build_err = |e: package::BuildError| usage(format!("build failed: {e}"));
    let mut policy = BuildPolicy {
        max_delta_ratio: args.max_delta_ratio,
        ..BuildPolicy::default()
    };
    let pkg = match (&old, &args.full_out) {
        (Some(old), Some(full_out)) => {
            if let Some(e) = encoding {
                if e.is_delta() {
                    policy.delta_encoding = e
                } else {
                    policy.full_encoding = e
                }
            }
            let built = package::build_release(&release, Some(old), &new, &policy, &key, &mut bar)
                .map_err(build_err)?;
            write_atomically(full_out, false, |w| {
                w.write_all(&built.full.bytes).map_err(usage)
            })?;
            match built.delta {
                Some(delta) => delta,
                None => {
                    eprintln!(
                        "note: delta ({} bytes) is not below {} of the full package ({} bytes); wrote the full package",
                        built.dropped_delta_size.unwrap_or(0),
                        args.max_delta_ratio,
                        built.full.bytes.len()
                    );
                    built.full
                }
            }
        }
        (Some(old), None) => {
            let e = encoding.unwrap_or(policy.delta_encoding);
            package::build_delta(&release, old, &new, e, &key, &mut bar).map_err(build_err)?
        }
        (None, _) => {
            let e = encoding.unwrap_or(policy.full_encoding);
            package::build_full(&release, &new, e, &key, &mut bar).map_err(build_err)?
        }
    };
    drop(bar);
    write_atomically(&args.out, false, |w| w.write_all(&pkg.bytes).map_err(usage))?;
    eprintln!(
        "wrote {} ({} bytes, {}, payload {} bytes)",
        args.out.display(),
        pkg.bytes.len(),
        pkg.manifest.payload.encoding.name(),
        pkg.manifest.payload.size
    );
    Ok(())
}

struct Checked {
    keys: KeyRing,
    old: Option<Vec<u8>>,
    now: i64,
}

fn load_check(args: &CheckArgs) -> Result<Checked, Failure> {
    let mut keys = KeyRing::default();
    for path in &args.pubkeys {
        let key = PublicKey::from_file_text(&read_text(path)?)
            .map_err(|e| usage(format!("{}: {e}", path.display())))?;
        keys.add(key);
    }
    let old = args.old.as_deref().map(read).transpose()?;
    let now = match &args.now {
        Some(t) => parse_time(t)?,
        None => chrono::Utc::now().timestamp(),
    };
    Ok(Checked { keys, old, now })
}

fn policy<'a>(args: &'a CheckArgs, checked: &'a Checked) -> Policy<'a> {
    Policy {
        keys: &checked.keys,
        now: checked.now,
        manufacturer: args.manufacturer.as_deref(),
        model: args.model.as_deref(),
        min_security_version: args.min_security_version,
    }
}

fn verify_cmd(args: &VerifyArgs) -> Result<(), Failure> {
    let checked = load_check(&args.check)?;
    let policy = policy(&args.check, &checked);
    let mut bar = Bar::new();
    let manifest = verify::verify(
        &mut open(&args.pkg)?,
        &policy,
        checked.old.as_deref(),
        &mut bar,
    )?;
    drop(bar);
    println!(
        "ok: {} {} {} (key {}, security version {})",
        manifest.model,
        manifest.target.version,
        manifest.payload.encoding.name(),
        manifest.key_id,
        manifest.security_version
    );
    Ok(())
}

fn apply_cmd(args: &ApplyArgs) -> Result<(), Failure> {
    let checked = load_check(&args.check)?;
    let policy = policy(&args.check, &checked);
    let old = checked.old.as_deref();
    let mut bar = Bar::new();
    // Pass 1: everything but decoding, so nothing is written for a package that fails.
    let mut input = open(&args.pkg)?;
    let manifest = verify::read_manifest(&mut input, &policy)?;
    verify::check_source(&manifest, old)?;
    verify::check_payload(&mut input, &manifest, &mut bar)?;
    // Pass 2: stream the payload into a temporary file; it is renamed into place only
    // after the target sha256 matched.
    let mut input = open(&args.pkg)?;
    let manifest = verify::read_manifest(&mut input, &policy)?;
    write_atomically(&args.out, false, |w| {
        verify::apply_payload(&mut input, &manifest, old, w, &mut bar)?;
        Ok(())
    })?;
    drop(bar);
    eprintln!(
        "wrote {} ({} bytes, sha256 {})",
        args.out.display(),
        manifest.target.size,
        manifest.target.sha256
    );
    Ok(())
}

fn inspect(path: &Path, json: bool) -> Result<(), Failure> {
    let (header, manifest, _) = verify::read_unverified(&mut open(path)?)?;
    if json {
        let text = serde_json::to_string_pretty(&manifest).map_err(usage)?;
        println!("{text}");
        return Ok(());
    }
    let image =
        |i: &package::ImageRef| format!("{} ({} bytes, sha256 {})", i.version, i.size, i.sha256);
    println!(
        "package format  {} (manifest {} bytes, key id {})",
        header.version, header.manifest_len, manifest.key_id
    );
    println!("manufacturer    {}", manifest.manufacturer);
    println!("model           {}", manifest.model);
    println!("target          {}", image(&manifest.target));
    match &manifest.source {
        Some(s) => println!("source          {}", image(s)),
        None => println!("source          none (full image)"),
    }
    println!(
        "payload         {} ({} bytes, sha256 {})",
        manifest.payload.encoding.name(),
        manifest.payload.size,
        manifest.payload.sha256
    );
    println!("created         {}", format_time(manifest.created_at));
    match manifest.expires_at {
        Some(t) => println!("expires         {}", format_time(t)),
        None => println!("expires         never"),
    }
    println!("security version {}", manifest.security_version);
    println!("signature       not checked (use verify)");
    Ok(())
}
