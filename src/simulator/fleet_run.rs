//! `updraft simulate --fleet FILE`: runs a fleet of devices that really update for a
//! duration: optional provisioning through the admin API, periodic client-initiated
//! sessions, the Package 0 listener, FUMO jobs carried out between sessions (their reports
//! go out in the next session at once), and a summary per group.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::{Mutex, Notify, mpsc};
use tokio::time::Instant;

use super::SimError;
use super::cli::{DeviceSummary, start_listener};
use super::device::SimDevice;
use super::fleet::{FleetDevice, FleetFile, build};
use super::fumo::{FumoEnv, JobOutcome, run_pending};
use super::push::PushEvent;
use super::session::{ClientSession, Initiation, SessionOptions};
use super::transport::Transport;
use crate::package::{KeyRing, PublicKey};

/// What a fleet run needs besides the fleet file.
#[derive(Debug, Clone)]
pub struct FleetRun {
    pub fleet: PathBuf,
    pub server: String,
    /// Provision every device through the admin API first.
    pub provision: bool,
    pub api_url: Option<String>,
    pub token: Option<String>,
    /// Trusted public key files; without them the keys come from the keys API.
    pub key_files: Vec<PathBuf>,
    pub duration: Duration,
    pub push_listen: Option<String>,
}

/// One job as the device saw it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobSeen {
    pub dev_id: String,
    pub correlator: Option<String>,
    pub result_code: u16,
    pub reason: Option<String>,
    pub version_after: String,
    pub bytes_downloaded: u64,
}

/// Totals of one group.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GroupSummary {
    pub name: String,
    pub devices: usize,
    /// FwV at the end → how many devices run it.
    pub final_versions: BTreeMap<String, usize>,
    /// FUMO result code the devices reported → how many jobs.
    pub verdicts: BTreeMap<u16, usize>,
    pub jobs: Vec<JobSeen>,
    pub bytes_downloaded: u64,
    pub sessions: u32,
    pub failed_sessions: u32,
    pub push_sessions: u32,
    /// Server violations and session failures, prefixed with the device id.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FleetSummary {
    pub groups: Vec<GroupSummary>,
    /// Distinct firmware images the run held in memory (devices on one image share a copy).
    pub distinct_images: usize,
    pub refused_notifications: Vec<String>,
}

impl FleetSummary {
    pub fn ok(&self) -> bool {
        self.groups.iter().all(|g| g.errors.is_empty()) && self.refused_notifications.is_empty()
    }

    pub fn render_table(&self) -> String {
        let mut s = format!(
            "{:<16} {:>7} {:>8} {:>6} {:>12} {:>6}  {:<24} {}\n",
            "group",
            "devices",
            "sessions",
            "failed",
            "downloaded",
            "errors",
            "versions",
            "verdicts"
        );
        for g in &self.groups {
            let versions: Vec<String> = g
                .final_versions
                .iter()
                .map(|(v, n)| format!("{v}:{n}"))
                .collect();
            let verdicts: Vec<String> =
                g.verdicts.iter().map(|(c, n)| format!("{c}:{n}")).collect();
            s.push_str(&format!(
                "{:<16} {:>7} {:>8} {:>6} {:>12} {:>6}  {:<24} {}\n",
                g.name,
                g.devices,
                g.sessions,
                g.failed_sessions,
                g.bytes_downloaded,
                g.errors.len(),
                versions.join(" "),
                verdicts.join(" ")
            ));
        }
        for g in &self.groups {
            for e in &g.errors {
                s.push_str(&format!("{}: {e}\n", g.name));
            }
        }
        s
    }
}

fn config_err(reason: impl Into<String>) -> SimError {
    SimError::Config {
        reason: reason.into(),
    }
}

async fn trusted_keys(run: &FleetRun, client: &reqwest::Client) -> Result<KeyRing, SimError> {
    if !run.key_files.is_empty() {
        let mut ring = KeyRing::default();
        for f in &run.key_files {
            let text = std::fs::read_to_string(f)
                .map_err(|e| config_err(format!("key file {}: {e}", f.display())))?;
            let key = PublicKey::from_file_text(&text)
                .map_err(|e| config_err(format!("key file {}: {e}", f.display())))?;
            ring.add(key);
        }
        return Ok(ring);
    }
    match (&run.api_url, &run.token) {
        (Some(url), Some(token)) => super::firmware::fetch_keys(client, url, token)
            .await
            .map_err(config_err),
        _ => Err(config_err(
            "--fleet needs the server's public keys: --key-file, or --api-url with --token",
        )),
    }
}

fn push_url(listen: Option<&str>, dev_id: &str) -> Option<String> {
    let listen = listen?;
    if listen.starts_with("udp://") {
        Some(listen.to_owned())
    } else {
        Some(format!("{}/push/{dev_id}", listen.trim_end_matches('/')))
    }
}

/// `POST /api/v1/devices` for every device, with its group's labels and declared inventory;
/// one already there (409) is left as it is.
async fn provision(
    run: &FleetRun,
    client: &reqwest::Client,
    fleet: &FleetFile,
    devices: &[FleetDevice],
) -> Result<(), SimError> {
    let (Some(api), Some(token)) = (&run.api_url, &run.token) else {
        return Err(config_err("--provision needs --api-url and --token"));
    };
    let url = format!("{}/api/v1/devices", api.trim_end_matches('/'));
    let name = |a: crate::dm::auth::AuthType| match a {
        crate::dm::auth::AuthType::Basic => "basic",
        crate::dm::auth::AuthType::Md5 => "md5",
        crate::dm::auth::AuthType::Hmac => "hmac",
    };
    for fd in devices {
        let p = &fd.device.profile;
        let group = &fleet.groups[fd.group];
        let body = json!({
            "dev_id": p.dev_id,
            "client": {"type": name(p.auth), "name": p.client_name, "secret": p.client_secret},
            "server": {
                "type": name(p.server_auth.unwrap_or(crate::dm::auth::AuthType::Md5)),
                "name": p.server_id,
                "secret": p.server_secret,
            },
            "push_url": push_url(run.push_listen.as_deref(), &p.dev_id),
            "tags": group.tags,
            "groups": group.groups,
            "timezone": group.timezone,
            "inventory": {
                "manufacturer": group.manufacturer,
                "model": group.model,
                "fw_version": group.firmware_version,
            },
        });
        let resp = client
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| SimError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        match resp.status().as_u16() {
            201 | 409 => {}
            // The server's refusal says which field of the group is wrong.
            400 => {
                let text = resp.text().await.unwrap_or_default();
                return Err(config_err(format!(
                    "group {:?}: provisioning {} refused: {text}",
                    group.name, p.dev_id
                )));
            }
            status => return Err(SimError::HttpStatus { url, status }),
        }
    }
    Ok(())
}

struct DeviceTask {
    dev: Arc<Mutex<SimDevice>>,
    wake: Arc<Notify>,
    poll: Duration,
    offline: Option<Duration>,
    env: FumoEnv,
}

#[derive(Default)]
struct DeviceResult {
    summary: DeviceSummary,
    jobs: Vec<JobOutcome>,
}

async fn session<T: Transport>(
    dev: &Mutex<SimDevice>,
    transport: &T,
    url: &str,
    out: &mut DeviceResult,
) {
    let mut d = dev.lock().await;
    let mut s = ClientSession::new(
        &mut d,
        url.to_owned(),
        Initiation::Client,
        SessionOptions::default(),
    );
    let _ = s.run(transport).await;
    out.summary.add(&s.into_report());
}

/// One device's life: sessions every poll interval (or when a push session left a job),
/// its jobs carried out, each report delivered in a session right after.
async fn device_loop<T: Transport>(
    task: DeviceTask,
    transport: Arc<T>,
    url: String,
    deadline: Instant,
) -> DeviceResult {
    let mut out = DeviceResult::default();
    let mut pushed = false;
    let mut offline_until: Option<Instant> = None;
    let mut first = true;
    while Instant::now() < deadline {
        if let Some(until) = offline_until
            && Instant::now() < until
        {
            task.dev.lock().await.offline = true;
            tokio::time::sleep_until(until.min(deadline)).await;
            task.dev.lock().await.offline = false;
            offline_until = None;
            continue;
        }
        if !pushed {
            session(&task.dev, &*transport, &url, &mut out).await;
        }
        while let Some(outcome) = run_pending(&task.dev, &task.env).await {
            out.jobs.push(outcome);
            session(&task.dev, &*transport, &url, &mut out).await;
        }
        if first {
            first = false;
            offline_until = task.offline.map(|d| Instant::now() + d);
            if offline_until.is_some() {
                continue;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(task.poll) => pushed = false,
            () = task.wake.notified() => pushed = true,
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    out
}

/// Runs the fleet and returns its summary (printing is the caller's).
pub async fn run_fleet<T: Transport + 'static>(
    run: &FleetRun,
    transport: Arc<T>,
    client: reqwest::Client,
) -> Result<FleetSummary, SimError> {
    let fleet = FleetFile::load(&run.fleet)?;
    let base = run.fleet.parent().unwrap_or(Path::new("."));
    let cache = Arc::new(super::firmware::ImageCache::new());
    let devices = build(&fleet, base, &cache)?;
    let keys = trusted_keys(run, &client).await?;
    if run.provision {
        provision(run, &client, &fleet, &devices).await?;
    }
    let deadline = Instant::now() + run.duration;
    let mut shared = Vec::with_capacity(devices.len());
    let mut tasks = Vec::with_capacity(devices.len());
    for fd in devices {
        let dev = Arc::new(Mutex::new(fd.device));
        shared.push(dev.clone());
        tasks.push((
            fd.group,
            DeviceTask {
                dev,
                wake: Arc::new(Notify::new()),
                poll: fd.poll_interval,
                offline: fd.offline,
                env: FumoEnv {
                    client: client.clone(),
                    keys: keys.clone(),
                    cache: cache.clone(),
                    download: fd.download,
                    reboot_delay: fd.reboot_delay,
                },
            },
        ));
    }
    let mut wakers = HashMap::new();
    for (i, (_, t)) in tasks.iter().enumerate() {
        wakers.insert(
            t.dev.lock().await.profile.dev_id.clone(),
            (i, t.wake.clone()),
        );
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PushEvent>();
    let listener = match &run.push_listen {
        Some(spec) => Some(start_listener(spec, &shared, &transport, &run.server, tx).await?),
        None => None,
    };
    let groups: Vec<usize> = tasks.iter().map(|(g, _)| *g).collect();
    let mut set = tokio::task::JoinSet::new();
    for (i, (_, task)) in tasks.into_iter().enumerate() {
        let (transport, url) = (transport.clone(), run.server.clone());
        set.spawn(async move { (i, device_loop(task, transport, url, deadline).await) });
    }
    let mut results: Vec<DeviceResult> =
        (0..groups.len()).map(|_| DeviceResult::default()).collect();
    let mut refused = Vec::new();
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                Some(Ok((i, r))) => {
                    let pushes = std::mem::take(&mut results[i].summary);
                    results[i] = r;
                    merge_pushes(&mut results[i].summary, &pushes);
                }
                Some(Err(e)) => return Err(SimError::Io { reason: format!("device task: {e}") }),
                None => break,
            },
            Some(ev) = rx.recv() => {
                match (&ev.notification, wakers.get(&ev.dev_id)) {
                    (Ok(_), Some((i, wake))) => {
                        if let Some(r) = &ev.report {
                            results[*i].summary.add(r);
                            results[*i].summary.push_sessions += 1;
                        }
                        wake.notify_one();
                    }
                    (Err(e), _) => refused.push(format!("{}: {e}", ev.dev_id)),
                    _ => {}
                }
            }
        }
    }
    if let Some(handle) = listener {
        handle.abort();
    }
    let mut summary = FleetSummary {
        groups: fleet
            .groups
            .iter()
            .map(|g| GroupSummary {
                name: g.name.clone(),
                devices: g.count,
                ..GroupSummary::default()
            })
            .collect(),
        distinct_images: 0,
        refused_notifications: refused,
    };
    for (i, r) in results.into_iter().enumerate() {
        let g = &mut summary.groups[groups[i]];
        let d = shared[i].lock().await;
        let dev_id = d.profile.dev_id.clone();
        let version = d.tree.text("./DevDetail/FwV").unwrap_or_default();
        *g.final_versions.entry(version).or_default() += 1;
        g.sessions += r.summary.sessions;
        g.failed_sessions += r.summary.failed_sessions;
        g.push_sessions += r.summary.push_sessions;
        g.errors.extend(
            r.summary
                .errors
                .iter()
                .chain(&r.summary.failures)
                .map(|e| format!("{dev_id} {e}")),
        );
        for j in r.jobs {
            *g.verdicts.entry(j.result_code).or_default() += 1;
            g.bytes_downloaded += j.wire_bytes;
            g.jobs.push(JobSeen {
                dev_id: dev_id.clone(),
                correlator: j.correlator,
                result_code: j.result_code,
                reason: j.reason,
                version_after: j.version,
                bytes_downloaded: j.wire_bytes,
            });
        }
    }
    summary.distinct_images = cache.len();
    Ok(summary)
}

/// Push sessions recorded while the device task ran are added to its own totals.
fn merge_pushes(into: &mut DeviceSummary, pushes: &DeviceSummary) {
    into.sessions += pushes.sessions;
    into.failed_sessions += pushes.failed_sessions;
    into.push_sessions += pushes.push_sessions;
    into.messages += pushes.messages;
    into.errors.extend(pushes.errors.iter().cloned());
    into.failures.extend(pushes.failures.iter().cloned());
}
