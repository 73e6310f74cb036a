//! A real `updraft serve` process for tests that kill, restart or measure the server.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// A real `updraft serve` process on the given database and data folder.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
}

impl Server {
    pub fn start(database_url: &str, data_dir: &std::path::Path) -> Server {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("UPDRAFT_DATABASE_URL", database_url)
            .env("UPDRAFT_DATA_DIR", data_dir)
            .env("UPDRAFT_ADMIN_TOKEN", crate::helpers::app::ADMIN_TOKEN)
            .env("UPDRAFT_LOG_FORMAT", "json")
            .env("UPDRAFT_BUILDS_LEASE_SECS", "2")
            .env("UPDRAFT_BUILDS_POLL_INTERVAL_MS", "50")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains("\"message\":\"listening\"") {
                    let value: Value = serde_json::from_str(&line).unwrap();
                    let _ = tx.send(value["listen"].as_str().unwrap().to_owned());
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address");
        Server {
            child,
            base: format!("http://{addr}"),
        }
    }

    /// The server's peak resident memory (VmHWM) since the last [`Server::reset_peak_memory`],
    /// and its resident memory now (VmRSS), in bytes, read from the kernel.
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .expect("the kernel reports the field")
                * 1024
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// Resets the kernel's peak-RSS mark of the process (`clear_refs` value 5), so that
    /// [`Server::memory`] reports the peak of what follows.
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        crate::helpers::http_client()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(crate::helpers::app::ADMIN_TOKEN)
    }

    pub async fn json(&self, path: &str) -> Value {
        self.request(Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
