//! Spawns the real application (the same startup path as `main`) on port 0 with a fresh database.

use std::net::SocketAddr;

use updraft::config::Config;
use updraft::http::StopHandle;
use updraft::startup::Application;

use super::database::{TestDatabase, fresh_database};

pub const ADMIN_TOKEN: &str = "updraft_test-admin-token";

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub admin_token: String,
    _db: TestDatabase,
    pub data_dir: tempfile::TempDir,
    stop: StopHandle,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// The test database's URL, for a second server process on it.
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    /// A second connection to the app's database, for arranging state the API does not offer.
    pub async fn store(&self) -> updraft::store::Store {
        updraft::store::Store::connect_url(&self._db.url)
            .await
            .unwrap()
    }

    /// Graceful stop, as on SIGTERM; returns the server's own result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.stop().await;
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A second server process on the same database and blob folder as `first` (with its
/// own data folder), as a second replica behind a load balancer would be.
pub async fn spawn_replica(first: &TestApp, adjust: impl FnOnce(&mut Config)) -> Replica {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: first.data_dir.path().join("replica"),
        database_url: Some(first._db.url.clone().into()),
        admin_token: Some(ADMIN_TOKEN.to_owned().into()),
        ..Config::default()
    };
    config.blob.local_dir = Some(first.data_dir.path().join("blobs"));
    config.http.workers = 2;
    config.http.shutdown_timeout_secs = 5;
    config.builds.enabled = false;
    adjust(&mut config);
    let app = Application::build(config)
        .await
        .expect("the replica builds");
    let addr = app.local_addr();
    let task = tokio::spawn(app.run_until_stopped());
    Replica { addr, task }
}

/// A replica started by [`spawn_replica`]; it stops when dropped.
pub struct Replica {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns with a fresh database and data folder; `adjust` may change any setting.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let db = fresh_database().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.path().to_owned(),
        database_url: Some(db.url.clone().into()),
        admin_token: Some(ADMIN_TOKEN.to_owned().into()),
        ..Config::default()
    };
    config.http.workers = 2;
    config.http.shutdown_timeout_secs = 5;
    // Tests count the commands of a session: the inventory read is theirs to turn on.
    config.dm.read_inventory = false;
    adjust(&mut config);
    let app = Application::build(config).await.expect("the app builds");
    let addr = app.local_addr();
    let stop = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        addr,
        client: crate::helpers::http_client(),
        admin_token: ADMIN_TOKEN.to_owned(),
        _db: db,
        data_dir,
        stop,
        task: Some(task),
    }
}
