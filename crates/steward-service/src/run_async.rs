//! The async form, for tokio programs (the `tokio` feature): [`run_async`] runs the program's
//! main as a future on a runtime the crate builds, inside [`run`]'s main, so the SCM
//! dispatcher, the console and systemd are handled by [`run`] alone, and an `Err` or a panic
//! ends the service exactly as there. [`AsyncControls`] and [`Stopping::wait_async`] sleep on
//! the driver's `Notify`: a waiting task holds no runtime thread, and only a delivery to the
//! inbox wakes it.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Builder;

use crate::context::{Context, ControlRequest, Stopping};
use crate::driver::Driver;
use crate::lifecycle::Input;
use crate::run::{run, BoxError, RunOptions};

/// How long blocking work still running when main's future has returned (`spawn_blocking`,
/// tokio's file and stdin I/O) may take before the service ends without it: a read that never
/// returns must not hold the stop.
const BLOCKING_GRACE: Duration = Duration::from_secs(5);

/// [`run`] for an async main: the future `main` returns runs on a multi-thread tokio runtime
/// (all drivers enabled, as `#[tokio::main]` builds it), on the thread [`run`] gives main.
///
/// ```no_run
/// use steward_service::{Control, RunOptions};
///
/// fn main() -> std::process::ExitCode {
///     steward_service::run_async(RunOptions::new("myapp"), |ctx| async move {
///         let mut controls = ctx.controls_async();
///         ctx.ready();
///         while let Some(request) = controls.next().await {
///             if let Control::Stop(_) = request.control() {
///                 break;
///             }
///             request.ack();
///         }
///         Ok(()) // stopping is reported until this returns
///     })
/// }
/// ```
///
/// The future need not be `Send`: it is not spawned but driven on that thread (tasks it
/// spawns run on the runtime's workers). When it ends, tasks still running are cancelled;
/// blocking work gets a few seconds to finish. A panic in a task it spawned is that task's
/// (its `JoinHandle` returns it), as always with tokio; a panic in the future itself ends the
/// service with [`EXIT_PANIC`](crate::EXIT_PANIC).
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub fn run_async<F, Fut>(options: RunOptions, main: F) -> ExitCode
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let mut runtime = Builder::new_multi_thread();
    runtime.enable_all();
    run_async_with(options, runtime, main)
}

/// [`run_async`] on a runtime built from `runtime`, as given: for example
/// `Builder::new_current_thread().enable_all()` for a single-threaded service, or a multi-thread
/// one with fewer workers. A runtime that cannot be built ends the service with
/// [`EXIT_ERROR`](crate::EXIT_ERROR).
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub fn run_async_with<F, Fut>(options: RunOptions, runtime: Builder, main: F) -> ExitCode
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>>,
{
    run(options, move |ctx| block_on(runtime, ctx, main))
}

/// `main(ctx)` to its end on a runtime built from `runtime`, on this thread.
fn block_on<F, Fut>(mut runtime: Builder, ctx: Context, main: F) -> Result<(), BoxError>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let runtime =
        runtime.build().map_err(|e| std::io::Error::other(format!("cannot start the tokio runtime: {e}")))?;
    // Caught only to shut the runtime down within the grace first (unwinding would drop it,
    // which waits for blocking work without end); `serve` then sees the panic as with `run`.
    let result = panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(main(ctx))));
    runtime.shutdown_timeout(BLOCKING_GRACE);
    result.unwrap_or_else(|panic| panic::resume_unwind(panic))
}

impl Context {
    /// [`controls`](Self::controls) for async code: the same requests, in the same order, with
    /// the same rules, taken with `controls.next().await`.
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn controls_async(&self) -> AsyncControls {
        self.driver.input(Input::Subscribed);
        AsyncControls { driver: self.driver.clone() }
    }
}

/// The controls of the service, for async code: [`next`](Self::next) waits for the next one
/// without blocking a thread. Made by [`Context::controls_async`].
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct AsyncControls {
    driver: Arc<Driver>,
}

impl AsyncControls {
    /// The next control, when it comes; `None` once the Stop was taken.
    ///
    /// Cancel safe: a request is taken from the queue only in the poll that returns it, so
    /// in a `tokio::select!` whose other branch wins, nothing is lost.
    pub async fn next(&mut self) -> Option<ControlRequest> {
        let request = wait_for(&self.driver, Driver::try_next_request).await?;
        Some(ControlRequest::new(&self.driver, request))
    }
}

impl std::fmt::Debug for AsyncControls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncControls").finish_non_exhaustive()
    }
}

impl Stopping {
    /// Wait, without blocking a thread, until the stop is asked; at once if it was.
    ///
    /// The future holds its own reference, so it can outlive the token: hand it to
    /// `axum::serve(..).with_graceful_shutdown(..)`, or to `tokio::spawn`.
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn wait_async(&self) -> impl Future<Output = ()> + Send + 'static {
        let driver = self.driver.clone();
        async move { wait_for(&driver, |d| d.is_stopping().then_some(())).await }
    }
}

/// Until `check` finds something; woken by each delivery to the inbox, never by a timer.
async fn wait_for<T>(driver: &Driver, check: impl Fn(&Driver) -> Option<T>) -> T {
    loop {
        let mut notified = pin!(driver.arrived_async().notified());
        // Registered before the check: a delivery between the check and the await still
        // wakes this task (`notify_waiters` wakes only those registered).
        notified.as_mut().enable();
        if let Some(found) = check(driver) {
            return found;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context as TaskContext, Poll, Wake, Waker};

    use super::*;
    use crate::lifecycle::{Control, Exit, Report, Settings, StopReason};
    use crate::run::{serve, Failure, EXIT_PANIC};
    use crate::{driver::Sink, Mode};

    struct Quiet;

    impl Sink for Quiet {
        fn report(&self, _report: &Report) {}
    }

    /// A running driver whose ticker thread ends with the test.
    struct Running(Arc<Driver>);

    impl Running {
        fn new() -> Running {
            let driver = Driver::start(Settings::default(), Box::new(Quiet));
            driver.input(Input::Ready);
            Running(driver)
        }

        fn context(&self) -> Context {
            Context {
                driver: self.0.clone(),
                mode: Mode::Console,
                name: "test".into(),
                manual_watchdog: false,
            }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.0.input(Input::Returned(Ok(())));
        }
    }

    /// Counts its wakes, to see that a future sleeps until an event, and is woken by it.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll<F: Future>(future: std::pin::Pin<&mut F>, wakes: &Arc<Wakes>) -> Poll<F::Output> {
        future.poll(&mut TaskContext::from_waker(&Waker::from(wakes.clone())))
    }

    #[test]
    fn next_sleeps_until_a_control_comes_and_is_woken_by_it() {
        let running = Running::new();
        let mut controls = running.context().controls_async();
        let wakes = Arc::new(Wakes::default());
        let mut next = pin!(controls.next());
        assert!(poll(next.as_mut(), &wakes).is_pending());
        assert!(poll(next.as_mut(), &wakes).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "nothing came: no wake-up (no polling)");
        let driver = running.0.clone();
        std::thread::spawn(move || driver.input(Input::Control(Control::Reload))).join().unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the control wakes the task once");
        match poll(next.as_mut(), &wakes) {
            Poll::Ready(Some(request)) => assert_eq!(request.control(), Control::Reload),
            other => panic!("expected the reload, got {other:?}"),
        }
    }

    #[test]
    fn a_next_dropped_while_waiting_loses_nothing() {
        let running = Running::new();
        let mut controls = running.context().controls_async();
        let wakes = Arc::new(Wakes::default());
        {
            let next = pin!(controls.next());
            assert!(poll(next, &wakes).is_pending());
        }
        running.0.input(Input::Control(Control::Reload));
        let next = pin!(controls.next());
        assert!(matches!(poll(next, &wakes), Poll::Ready(Some(r)) if r.control() == Control::Reload));
    }

    #[test]
    fn wait_async_sleeps_until_the_stop_and_is_ready_at_once_after() {
        let running = Running::new();
        let stopping = running.context().stopping();
        let wakes = Arc::new(Wakes::default());
        let mut wait = pin!(stopping.wait_async());
        assert!(poll(wait.as_mut(), &wakes).is_pending());
        running.0.input(Input::Control(Control::Reload));
        assert!(poll(wait.as_mut(), &wakes).is_pending(), "a reload is not a stop");
        running.0.input(Input::Control(Control::Stop(StopReason::Requested)));
        assert!(wakes.0.load(Ordering::SeqCst) >= 1);
        assert!(poll(wait.as_mut(), &wakes).is_ready());
        assert!(poll(pin!(stopping.wait_async()), &wakes).is_ready(), "a later wait does not wait");
    }

    /// `run_async`'s main, as `run` would call it under a console.
    fn serve_async<Fut>(runtime: Builder, main: impl FnOnce(Context) -> Fut + Send + 'static) -> Exit
    where
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let options = RunOptions::new("test");
        serve(
            &options,
            Mode::Console,
            Box::new(Quiet),
            None,
            |_| {},
            Box::new(move |ctx| block_on(runtime, ctx, main)),
        )
    }

    fn multi_thread() -> Builder {
        let mut runtime = Builder::new_multi_thread();
        runtime.worker_threads(1).enable_all();
        runtime
    }

    fn current_thread() -> Builder {
        let mut runtime = Builder::new_current_thread();
        runtime.enable_all();
        runtime
    }

    #[test]
    fn on_one_thread_controls_arrive_from_a_task_while_main_waits() {
        let exit = serve_async(current_thread(), |ctx| async move {
            let mut controls = ctx.controls_async();
            ctx.ready();
            let driver = ctx.driver.clone();
            // On the same (only) thread: it runs only if the waits below do not block it.
            tokio::spawn(async move {
                driver.input(Input::Control(Control::Reload));
                tokio::task::yield_now().await;
                driver.input(Input::Control(Control::Stop(StopReason::Requested)));
            });
            let stopping = ctx.stopping();
            let mut seen = Vec::new();
            let all = async {
                while let Some(request) = controls.next().await {
                    seen.push(request.control());
                }
                stopping.wait_async().await;
            };
            tokio::time::timeout(Duration::from_secs(20), all).await?;
            assert_eq!(seen, [Control::Reload, Control::Stop(StopReason::Requested)]);
            Ok(())
        });
        assert_eq!(exit, Exit::Success);
    }

    #[test]
    fn the_end_of_the_future_decides_the_exit_as_with_run() {
        let runtimes =
            [("current thread", current_thread as fn() -> Builder), ("multi-thread", multi_thread)];
        for (flavor, runtime) in runtimes {
            let ok = serve_async(runtime(), |_| async { Ok(()) });
            assert_eq!(ok, Exit::Success, "{flavor}");
            let failure = serve_async(runtime(), |_| async { Err(Failure::new(7, "seven").into()) });
            assert_eq!(failure, Exit::Failure(7), "{flavor}");
            let error = serve_async(runtime(), |_| async { Err("plain".into()) });
            assert_eq!(error, Exit::Failure(crate::EXIT_ERROR), "{flavor}");
            let panicked = serve_async(runtime(), |_| async {
                tokio::task::yield_now().await;
                panic!("on purpose, in a test")
            });
            assert_eq!(panicked, Exit::Failure(EXIT_PANIC), "{flavor}");
            let failed = serve_async(runtime(), |ctx| async move {
                ctx.fail(4);
                ctx.stopping().wait_async().await;
                Ok(())
            });
            assert_eq!(failed, Exit::Failure(4), "{flavor}");
        }
    }
}
