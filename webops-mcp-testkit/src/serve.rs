//! A mock's HTTP server task: served on its own until told to stop, then stopped gracefully
//! (requests under way finish, within a bound) or, when dropped, at once.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a graceful stop waits for requests under way.
const GRACE: Duration = Duration::from_secs(5);

/// A running server task and the address it listens on.
pub(crate) struct Served {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Served {
    /// Spawns `serve`, which gets the signal to stop gracefully; `what` names it in logs.
    pub(crate) fn spawn<F, Fut>(addr: SocketAddr, what: &'static str, serve: F) -> Served
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let run = serve(stopped);
        let task = tokio::spawn(async move {
            if let Err(e) = run.await {
                tracing::warn!(error = %e, "{what} stopped");
            }
        });
        tracing::debug!(%addr, "{what} listening");
        Served {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops gracefully: no new connections, requests under way finish (at most [`GRACE`]).
    pub(crate) async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
