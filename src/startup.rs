//! The one startup path, shared by `main` and the tests: connect, migrate, bootstrap, bind, serve.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::access::{self, Role};
use crate::blob::BlobStore;
use crate::builds::{self, BuildWorker};
use crate::config::Config;
use crate::dm_edge::DmEdge;
use crate::dm_edge::notify::{self, Notifier};
use crate::downloads::Downloads;
use crate::http::{AppState, HttpService, Metrics, StopHandle};
use crate::keys::{self, KeyFolder};
use crate::store::{Store, StoreError};
use crate::updates::Updates;

/// Name of the token made from `UPDRAFT_ADMIN_TOKEN` or generated on first start.
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";

/// A built, bound, not yet running service.
pub struct Application {
    server: HttpService,
    local_addr: SocketAddr,
    generated_admin_token: Option<SecretString>,
    store: Store,
    stop_workers: tokio::sync::watch::Sender<bool>,
    workers_task: tokio::task::JoinHandle<()>,
    updates_task: tokio::task::JoinHandle<()>,
    campaigns_task: tokio::task::JoinHandle<()>,
    builds_task: Option<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Prepares everything and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data folder {}",
                config.data_dir.display()
            )
        })?;
        let store = Store::connect(&config)
            .await
            .context("cannot connect to the database")?;
        store.migrate().await.context("database migration failed")?;
        let blobs = BlobStore::from_config(&config)
            .await
            .context("cannot open the blob store")?;
        let generated_admin_token = bootstrap_admin_token(&store, &config).await?;
        let key_folder = KeyFolder::from_config(&config).context("invalid signing key")?;
        keys::register_configured(&store, &key_folder, chrono::Utc::now())
            .await
            .context("cannot register the configured signing key")?;

        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let mut config = config;
        if config.dm.public_url.is_none() {
            // Devices must be told the address actually bound (port 0 picks one).
            config.dm.public_url = Some(format!("http://{local_addr}"));
        }
        let workers = match config.http.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shutdown_timeout = config.http.shutdown_timeout_secs;
        tracing::info!(
            listen = %local_addr,
            database = store.backend_name(),
            blob_store = blobs.backend_name(),
            data_dir = %config.data_dir.display(),
            "updraft is starting"
        );
        install_tls_provider();
        let downloads = Downloads::new(&config, store.clone(), blobs.clone())
            .context("cannot set up device downloads")?;
        let notifier = Notifier::new(store.clone(), &config);
        let updates = Updates::new(store.clone(), notifier.clone(), downloads.clone(), &config);
        let dm = DmEdge::new(store.clone(), blobs.clone(), &config).with_updates(updates.clone());
        let (stop_workers, stop_rx) = tokio::sync::watch::channel(false);
        let builds_task = config.builds.enabled.then(|| {
            let worker = BuildWorker::new(
                store.clone(),
                blobs.clone(),
                key_folder.clone(),
                config.builds.clone(),
            );
            tokio::spawn(builds::run(worker, stop_rx.clone()))
        });
        let updates_task = tokio::spawn(crate::updates::worker::run(
            updates.clone(),
            stop_rx.clone(),
        ));
        let campaigns = crate::campaigns::Campaigns::new(store.clone(), updates.clone(), &config);
        let campaigns_task = tokio::spawn(crate::campaigns::scheduler::run(
            campaigns.clone(),
            stop_rx.clone(),
        ));
        let workers_task = tokio::spawn(notify::run_worker(notifier.clone(), dm.clone(), stop_rx));
        let state = AppState {
            downloads,
            config,
            store: store.clone(),
            blobs,
            metrics: Metrics::new(),
            dm,
            notifier,
            keys: key_folder,
            updates,
            campaigns,
        };
        let server = HttpService::bind(state, listener, workers, shutdown_timeout)?;
        Ok(Application {
            server,
            local_addr,
            generated_admin_token,
            store,
            stop_workers,
            workers_task,
            updates_task,
            campaigns_task,
            builds_task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The admin token generated on this start, if the database had none: shown once.
    pub fn take_generated_admin_token(&mut self) -> Option<SecretString> {
        self.generated_admin_token.take()
    }

    /// A handle that stops the server gracefully (stop accepting, finish in-flight requests).
    pub fn handle(&self) -> StopHandle {
        self.server.stop_handle()
    }

    /// Serves until the handle stops the server.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.run().await?;
        // HTTP is drained; now the background workers finish their current pass.
        let _ = self.stop_workers.send(true);
        let _ = self.workers_task.await;
        let _ = self.updates_task.await;
        let _ = self.campaigns_task.await;
        if let Some(builds) = self.builds_task {
            let _ = builds.await;
        }
        self.store.close().await?;
        tracing::info!("updraft stopped");
        Ok(())
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let handle = self.handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            handle.stop().await;
        });
        self.run_until_stopped().await
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// `UPDRAFT_ADMIN_TOKEN` becomes the bootstrap admin token; with none configured and
/// no token at all in the database, one is generated and returned to be shown once.
async fn bootstrap_admin_token(
    store: &Store,
    config: &Config,
) -> anyhow::Result<Option<SecretString>> {
    let now = chrono::Utc::now();
    if let Some(token) = &config.admin_token {
        let digest = access::token_digest(token.expose_secret());
        store
            .tokens()
            .upsert_named(BOOTSTRAP_TOKEN_NAME, Role::Admin, &digest, now)
            .await
            .context("cannot store the bootstrap admin token")?;
        return Ok(None);
    }
    if store.tokens().count().await? > 0 {
        return Ok(None);
    }
    let token = access::generate_token();
    match store
        .tokens()
        .insert(BOOTSTRAP_TOKEN_NAME, Role::Admin, &token.sha256_hex, now)
        .await
    {
        Ok(_) => Ok(Some(token.plaintext)),
        // Another replica starting at the same moment won the race and printed its own.
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Installs the process-wide TLS crypto provider (ring) used by every outgoing HTTPS
/// client (webhooks, the simulator, S3). Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Gives a test or a caller a bounded wait for the port to accept connections.
pub async fn wait_until_listening(addr: SocketAddr, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
