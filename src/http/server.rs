//! The actix HTTP server bound to a listener, and a handle to stop it gracefully.

use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{HttpServer, web};

use super::{AppState, app};

/// A bound server, not yet awaited.
pub struct HttpService {
    server: Server,
}

/// Stops the server: no new connections, in-flight requests finish (up to the shutdown timeout).
#[derive(Clone)]
pub struct StopHandle(ServerHandle);

impl StopHandle {
    pub async fn stop(&self) {
        self.0.stop(true).await;
    }
}

impl HttpService {
    pub fn bind(
        state: AppState,
        listener: TcpListener,
        workers: usize,
        shutdown_timeout_secs: u64,
    ) -> std::io::Result<HttpService> {
        let state = web::Data::new(state);
        let server = HttpServer::new(move || app(state.clone()))
            .workers(workers)
            .shutdown_timeout(shutdown_timeout_secs)
            // Signals are the caller's to handle, so that SIGINT is graceful too.
            .disable_signals()
            .listen(listener)?
            .run();
        Ok(HttpService { server })
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.server.handle())
    }

    /// Serves until stopped.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}
