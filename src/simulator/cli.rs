//! `updraft simulate`: arguments, device fleet construction, bounded concurrent sessions, an
//! optional Package 0 listener, and the summary (table or JSON).
//!
//! Device ids are `<prefix><n>` for n = 1..=devices. Secrets are shared by default; with
//! `--per-device-secrets` each device uses [`derive_secret`]`(secret, dev_id)` (and the same for
//! the server secret), which provisioning can compute the same way.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, mpsc};

use crate::dm::Encoding;
use crate::dm::auth::{AuthType, md5_b64};

use super::SimError;
use super::device::{DeviceProfile, SimDevice};
use super::push::{PushEvent, PushTarget, serve_http_push, serve_udp_push};
use super::quirks::ServerAuthQuirk;
use super::session::{ClientSession, Initiation, SessionOptions, SessionReport};
use super::transport::{HttpTransport, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingArg {
    Xml,
    Wbxml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthArg {
    Basic,
    Md5,
    Hmac,
}

impl From<AuthArg> for AuthType {
    fn from(a: AuthArg) -> Self {
        match a {
            AuthArg::Basic => Self::Basic,
            AuthArg::Md5 => Self::Md5,
            AuthArg::Hmac => Self::Hmac,
        }
    }
}

/// Arguments of `updraft simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// URL of the server's DM endpoint (plain http://).
    #[arg(long)]
    pub server: String,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Device ids are this prefix followed by 1, 2, ….
    #[arg(long, default_value = "IMEI:3569380356")]
    pub dev_id_prefix: String,
    #[arg(long, value_enum, default_value_t = EncodingArg::Xml)]
    pub encoding: EncodingArg,
    /// How devices authenticate to the server.
    #[arg(long, value_enum, default_value_t = AuthArg::Md5)]
    pub auth: AuthArg,
    /// Client secret (CLCRED); the client name is the device id.
    #[arg(long, env = "UPDRAFT_SIM_SECRET", default_value = "")]
    pub secret: String,
    /// Derive per-device secrets from --secret / --server-secret (see `derive_secret`).
    #[arg(long)]
    pub per_device_secrets: bool,
    /// DMAcc ServerID (SRVCRED name, Package 0 server identifier).
    #[arg(long, default_value = "updraft")]
    pub server_id: String,
    /// SRVCRED secret; when set the devices verify the server's credentials.
    #[arg(long, env = "UPDRAFT_SIM_SERVER_SECRET")]
    pub server_secret: Option<String>,
    /// How the server must authenticate (default md5 when --server-secret is given).
    #[arg(long, value_enum)]
    pub server_auth: Option<AuthArg>,
    /// How devices keep their nonces: `refuse-first` behaves like libdmclient's test client
    /// (empty server nonce at first, both nonces forgotten between sessions, so the server's
    /// first credentials of a session are refused with 401 + Chal on every command).
    #[arg(long, value_enum, default_value_t = ServerAuthQuirk::None)]
    pub server_auth_quirk: ServerAuthQuirk,
    #[arg(long, default_value_t = 16_384)]
    pub max_msg_size: u64,
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_obj_size: u64,
    /// Advertise ./DevDetail/LrgObj = false.
    #[arg(long)]
    pub no_large_objects: bool,
    #[arg(long, default_value = "SIM-1")]
    pub model: String,
    #[arg(long, default_value = "1.0.0")]
    pub fw_version: String,
    /// FUMO result code the devices report (200 = success).
    #[arg(long, default_value_t = 200)]
    pub fumo_result: u16,
    /// Listen for Package 0: udp://host:port or http://host:port.
    #[arg(long)]
    pub push_listen: Option<String>,
    /// With --push-listen: seconds to keep listening after the client sessions.
    #[arg(long, default_value_t = 30)]
    pub listen_secs: u64,
    /// Client-initiated sessions per device (run one after the other).
    #[arg(long, default_value_t = 1)]
    pub sessions: u32,
    /// Devices in session at the same time.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// HTTP timeout per request, seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Run the devices of this fleet file (TOML, see docs/fleet.example.toml) instead of
    /// `--devices` identical ones: devices that really update, for `--duration-secs`.
    #[arg(long)]
    pub fleet: Option<std::path::PathBuf>,
    /// With --fleet: provision every device through the admin API first.
    #[arg(long, requires = "fleet")]
    pub provision: bool,
    /// The admin API base URL (keys, provisioning), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub api_url: Option<String>,
    /// Admin API bearer token.
    #[arg(long, env = "UPDRAFT_SIM_TOKEN")]
    pub token: Option<String>,
    /// A trusted public key file (repeatable); without it --fleet fetches /api/v1/keys.
    #[arg(long)]
    pub key_file: Vec<std::path::PathBuf>,
    /// With --fleet: how long the devices run.
    #[arg(long, default_value_t = 60)]
    pub duration_secs: u64,
}

/// A per-device secret: `B64(MD5(base ":" dev_id))`.
pub fn derive_secret(base: &str, dev_id: &str) -> String {
    md5_b64(format!("{base}:{dev_id}").as_bytes())
}

/// Totals for one device over all its sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceSummary {
    pub dev_id: String,
    pub sessions: u32,
    pub failed_sessions: u32,
    pub push_sessions: u32,
    pub messages: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub auth_retries: u64,
    /// Server messages whose credentials the devices refused.
    pub server_auth_refusals: u64,
    pub max_message_seen: u64,
    /// sha256 of every Large Object received, in order.
    pub large_objects: Vec<String>,
    /// Server violations seen (brief rules), prefixed with the session id.
    pub errors: Vec<String>,
    /// Why sessions stopped early.
    pub failures: Vec<String>,
}

impl DeviceSummary {
    pub(crate) fn add(&mut self, r: &SessionReport) {
        self.sessions += 1;
        self.messages += u64::from(r.messages);
        self.bytes_sent += r.bytes_sent;
        self.bytes_received += r.bytes_received;
        self.auth_retries += u64::from(r.auth_retries);
        self.server_auth_refusals += u64::from(r.server_auth_refusals);
        self.max_message_seen = self.max_message_seen.max(r.max_message_seen);
        self.large_objects
            .extend(r.large_object_sha256.iter().cloned());
        let sid = &r.session_id;
        self.errors
            .extend(r.errors.iter().map(|e| format!("[{sid}] {e}")));
        if let Some(f) = &r.failure {
            self.failed_sessions += 1;
            self.failures.push(format!("[{sid}] {f}"));
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub devices: Vec<DeviceSummary>,
    pub sessions: u32,
    pub failed_sessions: u32,
    /// Server violations across all devices.
    pub errors: usize,
    /// Notifications refused by a device (bad digest, version, …).
    pub refused_notifications: Vec<String>,
}

impl Summary {
    /// No failed session and no server violation.
    pub fn ok(&self) -> bool {
        self.failed_sessions == 0 && self.errors == 0 && self.refused_notifications.is_empty()
    }

    fn total(&mut self) {
        self.sessions = self.devices.iter().map(|d| d.sessions).sum();
        self.failed_sessions = self.devices.iter().map(|d| d.failed_sessions).sum();
        self.errors = self.devices.iter().map(|d| d.errors.len()).sum();
    }

    /// A fixed-width table, then every violation and failure on its own line.
    pub fn render_table(&self) -> String {
        let mut s = format!(
            "{:<28} {:>8} {:>6} {:>5} {:>8} {:>12} {:>12} {:>6} {:>8} {:>6}\n",
            "device",
            "sessions",
            "failed",
            "push",
            "messages",
            "sent",
            "received",
            "retry",
            "max_msg",
            "errors"
        );
        for d in &self.devices {
            s.push_str(&format!(
                "{:<28} {:>8} {:>6} {:>5} {:>8} {:>12} {:>12} {:>6} {:>8} {:>6}\n",
                d.dev_id,
                d.sessions,
                d.failed_sessions,
                d.push_sessions,
                d.messages,
                d.bytes_sent,
                d.bytes_received,
                d.auth_retries,
                d.max_message_seen,
                d.errors.len()
            ));
        }
        s.push_str(&format!(
            "total: {} sessions, {} failed, {} server violations\n",
            self.sessions, self.failed_sessions, self.errors
        ));
        for d in &self.devices {
            for f in &d.failures {
                s.push_str(&format!("FAILED {}: {f}\n", d.dev_id));
            }
            for e in &d.errors {
                s.push_str(&format!("VIOLATION {}: {e}\n", d.dev_id));
            }
        }
        for r in &self.refused_notifications {
            s.push_str(&format!("REFUSED {r}\n"));
        }
        s
    }
}

/// The device profiles `args` describe.
pub fn profiles(args: &SimulateArgs) -> Vec<DeviceProfile> {
    (1..=args.devices)
        .map(|n| {
            let dev_id = format!("{}{n}", args.dev_id_prefix);
            let secret = |s: &str| {
                if args.per_device_secrets {
                    derive_secret(s, &dev_id)
                } else {
                    s.to_owned()
                }
            };
            let mut p = DeviceProfile::new(dev_id.clone(), secret(&args.secret));
            p.encoding = match args.encoding {
                EncodingArg::Xml => Encoding::Xml,
                EncodingArg::Wbxml => Encoding::Wbxml,
            };
            p.auth = args.auth.into();
            p.server_id = args.server_id.clone();
            p.server_secret = args
                .server_secret
                .as_deref()
                .map(secret)
                .unwrap_or_default();
            p.server_auth = match (args.server_auth, &args.server_secret) {
                (Some(a), _) => Some(a.into()),
                (None, Some(_)) => Some(AuthType::Md5),
                (None, None) => None,
            };
            p.max_msg_size = args.max_msg_size;
            p.max_obj_size = args.max_obj_size;
            p.large_objects = !args.no_large_objects;
            p.model = args.model.clone();
            p.fw_version = args.fw_version.clone();
            p.fumo_result = args.fumo_result;
            p.server_auth_quirk = args.server_auth_quirk;
            p
        })
        .collect()
}

fn validate(args: &SimulateArgs) -> Result<(), SimError> {
    let bad = |reason: &str| {
        Err(SimError::Config {
            reason: reason.to_owned(),
        })
    };
    if !args.server.starts_with("http://") {
        return bad("--server must be an http:// URL (the simulator is built without TLS)");
    }
    if args.devices == 0 || args.concurrency == 0 {
        return bad("--devices and --concurrency must be at least 1");
    }
    if args.max_msg_size < 1024 {
        return bad("--max-msg-size below 1024 cannot hold a DM message");
    }
    Ok(())
}

/// Runs the simulation against a real server over HTTP, prints the summary (table or JSON)
/// and returns it.
pub async fn run(args: SimulateArgs) -> Result<Summary, SimError> {
    validate(&args)?;
    if args.fleet.is_some() {
        return run_fleet_cli(&args).await;
    }
    let transport = Arc::new(HttpTransport::new(Duration::from_secs(args.timeout_secs))?);
    let summary = run_with(&args, transport).await?;
    if args.json {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| SimError::Config {
            reason: e.to_string(),
        })?;
        println!("{text}");
    } else {
        print!("{}", summary.render_table());
    }
    Ok(summary)
}

/// `--fleet`: runs and prints the fleet summary; returns an empty device summary that is
/// `ok()` only when the fleet's is.
async fn run_fleet_cli(args: &SimulateArgs) -> Result<Summary, SimError> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let transport = Arc::new(HttpTransport::new(timeout)?);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| SimError::Config {
            reason: format!("HTTP client: {e}"),
        })?;
    let run = super::fleet_run::FleetRun {
        fleet: args.fleet.clone().unwrap_or_default(),
        server: args.server.clone(),
        provision: args.provision,
        api_url: args.api_url.clone(),
        token: args.token.clone(),
        key_files: args.key_file.clone(),
        duration: Duration::from_secs(args.duration_secs),
        push_listen: args.push_listen.clone(),
    };
    let fleet = super::fleet_run::run_fleet(&run, transport, client).await?;
    if args.json {
        let text = serde_json::to_string_pretty(&fleet).map_err(|e| SimError::Config {
            reason: e.to_string(),
        })?;
        println!("{text}");
    } else {
        print!("{}", fleet.render_table());
    }
    let mut summary = Summary::default();
    if !fleet.ok() {
        summary.errors = fleet
            .groups
            .iter()
            .map(|g| g.errors.len())
            .sum::<usize>()
            .max(1);
    }
    Ok(summary)
}

/// [`run`] over any transport, without printing.
pub async fn run_with<T: Transport + 'static>(
    args: &SimulateArgs,
    transport: Arc<T>,
) -> Result<Summary, SimError> {
    let devices: Vec<Arc<Mutex<SimDevice>>> = profiles(args)
        .into_iter()
        .map(|p| Arc::new(Mutex::new(SimDevice::new(p))))
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<PushEvent>();
    let listener = match &args.push_listen {
        Some(spec) => Some(start_listener(spec, &devices, &transport, &args.server, tx).await?),
        None => None,
    };
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, dev) in devices.iter().enumerate() {
        let (dev, sem, transport) = (dev.clone(), sem.clone(), transport.clone());
        let (url, sessions) = (args.server.clone(), args.sessions);
        tasks.spawn(async move {
            let mut reports = Vec::new();
            let Ok(_permit) = sem.acquire_owned().await else {
                return (i, reports);
            };
            for _ in 0..sessions {
                let mut d = dev.lock().await;
                let mut s = ClientSession::new(
                    &mut d,
                    url.clone(),
                    Initiation::Client,
                    SessionOptions::default(),
                );
                let _ = s.run(&*transport).await;
                reports.push(s.into_report());
            }
            (i, reports)
        });
    }
    let mut summary = Summary {
        devices: Vec::with_capacity(devices.len()),
        ..Summary::default()
    };
    for d in &devices {
        summary.devices.push(DeviceSummary {
            dev_id: d.lock().await.profile.dev_id.clone(),
            ..DeviceSummary::default()
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, reports) = joined.map_err(|e| SimError::Io {
            reason: format!("device task: {e}"),
        })?;
        for r in &reports {
            summary.devices[i].add(r);
        }
    }
    if let Some(handle) = listener {
        let deadline = tokio::time::sleep(Duration::from_secs(args.listen_secs));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                ev = rx.recv() => match ev {
                    Some(ev) => record_push(&mut summary, ev),
                    None => break,
                },
            }
        }
        handle.abort();
    }
    summary.total();
    Ok(summary)
}

fn record_push(summary: &mut Summary, ev: PushEvent) {
    match (ev.notification, ev.report) {
        (Ok(_), Some(r)) => {
            if let Some(d) = summary.devices.iter_mut().find(|d| d.dev_id == ev.dev_id) {
                d.add(&r);
                d.push_sessions += 1;
            }
        }
        (Err(e), _) => summary
            .refused_notifications
            .push(format!("{}: {e}", ev.dev_id)),
        (Ok(_), None) => {}
    }
}

pub(crate) async fn start_listener<T: Transport + 'static>(
    spec: &str,
    devices: &[Arc<Mutex<SimDevice>>],
    transport: &Arc<T>,
    server_url: &str,
    events: mpsc::UnboundedSender<PushEvent>,
) -> Result<tokio::task::JoinHandle<Result<(), SimError>>, SimError> {
    let target = Arc::new(PushTarget {
        devices: devices.to_vec(),
        transport: transport.clone(),
        server_url: server_url.to_owned(),
        options: SessionOptions::default(),
        events,
    });
    if let Some(addr) = spec.strip_prefix("udp://") {
        let socket = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|e| SimError::io(&e))?;
        Ok(tokio::spawn(serve_udp_push(socket, target)))
    } else if let Some(addr) = spec.strip_prefix("http://") {
        let listener = tokio::net::TcpListener::bind(addr.trim_end_matches('/'))
            .await
            .map_err(|e| SimError::io(&e))?;
        Ok(tokio::spawn(serve_http_push(listener, target)))
    } else {
        Err(SimError::Config {
            reason: format!("--push-listen {spec:?}: use udp://addr or http://addr"),
        })
    }
}
