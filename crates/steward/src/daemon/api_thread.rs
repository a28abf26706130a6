//! The API's own thread: every listener (the local socket, the remote API, the dashboard,
//! `[metrics] listen`) is served by a runtime of its own on a second thread.
//!
//! The supervisor's runtime has one thread, and in a crash storm of thousands of programs its
//! queue holds thousands of woken tasks. A request served there waited a round of that queue
//! at each step (accept, read, ask the supervisor, write): `status` took ×14 its idle time
//! with 5,000 programs restarting. Here only the question to the supervisor crosses over, and
//! a task woken from another thread is taken from the runtime's inject queue within a few
//! dozen polls, not a whole round.
//!
//! Idle, the thread waits in `epoll_wait` with no timer: no wakeups.

use std::future::Future;
use std::io;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct ApiThread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl ApiThread {
    pub fn start() -> io::Result<ApiThread> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name("steward-api".into()).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
            // A `spawn_blocking` still reading a file must not hold the thread; the process
            // is ending anyway.
            runtime.shutdown_background();
        })?;
        Ok(ApiThread { handle, stop: Some(stop) })
    }

    /// Run `task` on the API's thread.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }

    /// Run `setup` on the API's thread and wait for it: a listener must be made there, since
    /// a socket is registered with the runtime that makes it.
    pub async fn run<F>(&self, setup: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(setup).await {
            Ok(output) => output,
            // Only a panic: the runtime is not shut down while `self` lives.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

impl Drop for ApiThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn tasks_run_on_the_api_thread_and_it_ends_when_dropped() {
        let api = ApiThread::start().unwrap();
        let name = api.run(async { std::thread::current().name().map(str::to_owned) }).await;
        assert_eq!(name.as_deref(), Some("steward-api"));
        // A listener made there is served there while this runtime's thread is blocked.
        let listener = api.run(async { tokio::net::TcpListener::bind("127.0.0.1:0").await }).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, seen) = std::sync::mpsc::channel();
        let _served = api.spawn(async move { accepted.send(listener.accept().await.is_ok()) });
        let _client = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(seen.recv_timeout(std::time::Duration::from_secs(10)), Ok(true));
        let (tx, rx) = oneshot::channel::<()>();
        let pending = api.spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        drop(api);
        // The runtime shut down: the pending task was dropped, and with it its sender.
        assert!(rx.await.is_err());
        assert!(pending.await.unwrap_err().is_cancelled());
    }
}
