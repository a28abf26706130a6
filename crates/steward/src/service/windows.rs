//! Windows: installing, starting, stopping and removing steward as a service of the Service
//! Control Manager (SCM), through its API (the `windows-service` crate).
//!
//! How the SCM behaves, and what this relies on:
//! - A service is a registry entry (`HKLM\SYSTEM\CurrentControlSet\Services\NAME`) written by
//!   `CreateServiceW`: a command line, a start type, an account. The command line here is
//!   `"STEWARD.EXE" service host --name NAME -c CONFIG` (see `steward_core::render::windows`
//!   for every value, and for the quoting); the SCM starts that process as the account, with
//!   `C:\Windows\System32` as its working directory, and `service host` reports to the SCM
//!   (`host/windows.rs`). Install checks afterwards that what the SCM stored
//!   (`QueryServiceConfigW`) is exactly the rendered command line.
//! - Description, delayed auto-start, failure actions and the preshutdown timeout are
//!   separate calls (`ChangeServiceConfig2W`). An SCM that refuses one of them (Wine returns
//!   `ERROR_INVALID_LEVEL`, 124, for delayed auto-start and failure actions) gets a warning; the
//!   service works without them.
//! - `StartServiceW` and `ControlService(STOP)` return at once. Waiting for the outcome is
//!   polling `QueryServiceStatusEx`, as Microsoft's own service-control sample does: the
//!   service promises progress with its checkpoint within its wait hint, and the wait gives up
//!   only when the checkpoint stops moving for longer than the hint.
//! - `DeleteServiceW` only marks the service; it disappears once every handle on it is closed
//!   (the Services console holds one while open), so uninstall waits for that too.
//! - Everything here needs an elevated (Administrator) prompt, except `status`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use steward_core::render::windows::{self as render_windows, ScmSettings, StartType};
use steward_core::render::{Init, ServiceSpec};
use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceDependency, ServiceErrorControl,
    ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceStartType,
    ServiceState, ServiceType,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_INVALID_LEVEL, ERROR_SERVICE_ALREADY_RUNNING, ERROR_SERVICE_DOES_NOT_EXIST,
    ERROR_SERVICE_MARKED_FOR_DELETE, ERROR_SERVICE_NOT_ACTIVE, WAIT_OBJECT_0,
};
use windows_sys::Win32::System::Threading::{OpenProcess, WaitForSingleObject, PROCESS_SYNCHRONIZE};

use super::eventlog::windows as eventlog_windows;
use super::{Manager, ServiceError, ServiceStatus, Target};

// The pure renderer spells out SDK values so that it compiles everywhere; check them here.
const _: () = {
    use windows_sys::Win32::System::Services as s;
    assert!(render_windows::SERVICE_AUTO_START == s::SERVICE_AUTO_START);
    assert!(render_windows::SERVICE_DEMAND_START == s::SERVICE_DEMAND_START);
    assert!(render_windows::SERVICE_DISABLED == s::SERVICE_DISABLED);
    assert!(render_windows::SC_ACTION_RESTART == s::SC_ACTION_RESTART);
};

/// The longest a start may take: steward reports RUNNING after at most
/// `host::windows::START_BUDGET`; this leaves room for the process to come up.
const START_DEADLINE: Duration = Duration::from_secs(150);

/// How long a deleted service may take to disappear, and a stopped one's process to exit.
const GONE_DEADLINE: Duration = Duration::from_secs(30);

pub struct Scm;

const SERVICES_KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services";

impl Manager for Scm {
    fn init(&self) -> Init {
        Init::Windows
    }

    /// Windows services have no file: their registry key stands in for it in messages.
    fn file(&self, target: &Target) -> Result<PathBuf, ServiceError> {
        Ok(PathBuf::from(format!(r"{SERVICES_KEY}\{}", target.name)))
    }

    fn install(&self, target: &Target, spec: &ServiceSpec, _text: &str) -> Result<(), ServiceError> {
        no_root(target, "install")?;
        let s = render_windows::settings(spec)?;
        let password = s.password_file.as_deref().map(read_password).transpose()?;
        let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
        let info = service_info(&s, password);
        let access = ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_CONFIG | ServiceAccess::QUERY_STATUS;
        let (service, existed) = match manager.open_service(&s.name, access) {
            Ok(service) => {
                service
                    .change_config(&info)
                    .map_err(|e| scm_error(format!("change the service {}", s.name), e))?;
                (service, true)
            }
            Err(e) if code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
                let service = manager
                    .create_service(&info, access)
                    .map_err(|e| scm_error(format!("create the service {}", s.name), e))?;
                (service, false)
            }
            Err(e) => return Err(scm_error(format!("open the service {}", s.name), e)),
        };
        configure(&service, &s, existed);
        if let Err(e) = eventlog_windows::register_source(&s.name) {
            tracing::warn!(
                event = "service",
                "the Event Log source is not registered: {e}; steward still writes its entries"
            );
        }
        // What the SCM stored must be what `service render` shows.
        match service.query_config() {
            Ok(config) if config.executable_path.as_os_str() != OsStr::new(&s.command_line) => {
                tracing::warn!(
                    event = "service",
                    "the SCM stored the command line {:?}, not the expected {:?}",
                    config.executable_path,
                    s.command_line
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(event = "service", "cannot read back the service's configuration: {e}"),
        }
        Ok(())
    }

    fn uninstall(&self, target: &Target) -> Result<(), ServiceError> {
        no_root(target, "uninstall")?;
        let manager = manager(ServiceManagerAccess::CONNECT)?;
        let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
        let service = open(&manager, self, target, access)?;
        stop_and_wait(&service, &target.name)?;
        service.delete().map_err(|e| scm_error(format!("delete the service {}", target.name), e))?;
        drop(service);
        // Gone once every handle on it is closed.
        let deadline = Instant::now() + GONE_DEADLINE;
        loop {
            match manager.open_service(&target.name, ServiceAccess::QUERY_STATUS) {
                Err(e) if code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => break,
                _ if Instant::now() > deadline => {
                    return Err(ServiceError::Unsupported(format!(
                        "the service {} is marked for deletion but still exists: close the Services console \
                         (services.msc) and any program that has it open; it then disappears",
                        target.name
                    )))
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        match eventlog_windows::unregister_source(&target.name) {
            Ok(true) => tracing::debug!(event = "service", "removed the Event Log source"),
            Ok(false) => {}
            Err(e) => tracing::warn!(event = "service", "{e}"),
        }
        Ok(())
    }

    fn start(&self, target: &Target) -> Result<(), ServiceError> {
        no_root(target, "start")?;
        let manager = manager(ServiceManagerAccess::CONNECT)?;
        let service = open(&manager, self, target, ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
        match service.start::<&OsStr>(&[]) {
            Ok(()) => {}
            Err(e) if code(&e) == Some(ERROR_SERVICE_ALREADY_RUNNING) => return Ok(()),
            Err(e) => return Err(scm_error(format!("start the service {}", target.name), e)),
        }
        let status = wait_while(&service, ServiceState::StartPending, START_DEADLINE)?;
        match status.current_state {
            ServiceState::Running => Ok(()),
            ServiceState::Stopped => Err(ServiceError::Unsupported(format!(
                "the service {} stopped while starting ({}); see the Event Log (Application, source steward) \
                 and steward.log in the config's log_dir",
                target.name,
                exit_text(status.exit_code)
            ))),
            other => Err(ServiceError::Unsupported(format!(
                "the service {} is {} after {}s; see the Event Log (Application, source steward)",
                target.name,
                state_name(other),
                START_DEADLINE.as_secs()
            ))),
        }
    }

    fn stop(&self, target: &Target) -> Result<(), ServiceError> {
        no_root(target, "stop")?;
        let manager = manager(ServiceManagerAccess::CONNECT)?;
        let service = open(&manager, self, target, ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
        stop_and_wait(&service, &target.name)
    }

    fn status(&self, target: &Target) -> Result<ServiceStatus, ServiceError> {
        no_root(target, "status")?;
        let manager = manager(ServiceManagerAccess::CONNECT)?;
        let service =
            open(&manager, self, target, ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG)?;
        let status =
            service.query_status().map_err(|e| scm_error(format!("query the service {}", target.name), e))?;
        let config = service.query_config().ok();
        let mut state = state_name(status.current_state).to_owned();
        // 1077: "not started since last boot", which is no failure.
        let quiet = [ServiceExitCode::NO_ERROR, ServiceExitCode::Win32(1077)];
        if status.current_state == ServiceState::Stopped && !quiet.contains(&status.exit_code) {
            state.push_str(&format!(" ({})", exit_text(status.exit_code)));
        }
        Ok(ServiceStatus {
            file: Some(self.file(target)?),
            enabled: config.as_ref().map(|c| start_name(c.start_type).to_owned()),
            running: status.current_state == ServiceState::Running,
            state,
            pid: status.process_id.filter(|pid| *pid != 0),
            status_text: None,
            command: config.map(|c| c.executable_path.to_string_lossy().into_owned()),
        })
    }
}

/// The settings as `windows-service` takes them. It quotes the executable and the arguments
/// with the same rules as `render::windows::quote_arg`; install compares the result.
fn service_info(s: &ScmSettings, password: Option<String>) -> ServiceInfo {
    ServiceInfo {
        name: OsString::from(&s.name),
        display_name: OsString::from(&s.display_name),
        service_type: ServiceType::OWN_PROCESS,
        start_type: match s.start {
            StartType::Auto | StartType::Delayed => ServiceStartType::AutoStart,
            StartType::Manual => ServiceStartType::OnDemand,
            StartType::Disabled => ServiceStartType::Disabled,
        },
        error_control: ServiceErrorControl::Normal,
        executable_path: PathBuf::from(&s.exe),
        launch_arguments: s.arguments.iter().map(OsString::from).collect(),
        dependencies: s.depends_on.iter().map(ServiceDependency::from_system_identifier).collect(),
        account_name: s.account.start_name().map(OsString::from),
        account_password: password.map(OsString::from),
    }
}

/// The optional settings: each one that the SCM refuses is a warning, not a failure.
fn configure(service: &Service, s: &ScmSettings, existed: bool) {
    let optional = |what: &str, result: windows_service::Result<()>| {
        if let Err(e) = result {
            let why = match code(&e) {
                Some(ERROR_INVALID_LEVEL) => {
                    "this SCM does not support that setting (as under Wine)".to_owned()
                }
                _ => e.to_string(),
            };
            tracing::warn!(event = "service", "could not set {what}: {why}; the service works without it");
        }
    };
    optional("the description", service.set_description(&s.description));
    // A fresh service is not delayed; only say so again when replacing one that may have been.
    if s.start.delayed() || (existed && s.start.raw() == render_windows::SERVICE_AUTO_START) {
        optional("delayed auto-start", service.set_delayed_auto_start(s.start.delayed()));
    }
    let fa = &s.failure_actions;
    let actions = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(fa.reset_period),
        reboot_msg: None,
        command: None,
        actions: Some(
            fa.restart_delays
                .iter()
                .map(|delay| ServiceAction { action_type: ServiceActionType::Restart, delay: *delay })
                .collect(),
        ),
    };
    optional("the failure actions (restart on failure)", service.update_failure_actions(actions));
    optional(
        "failure actions on non-crash failures",
        service.set_failure_actions_on_non_crash_failures(fa.on_non_crash_failures),
    );
    optional("the preshutdown timeout", service.set_preshutdown_timeout(s.preshutdown_timeout));
}

/// Stop the service if it runs, wait until the SCM says STOPPED, then until its process has
/// exited (so its programs' Job Objects are closed and its files free).
fn stop_and_wait(service: &Service, name: &str) -> Result<(), ServiceError> {
    let before = service.query_status().map_err(|e| scm_error(format!("query the service {name}"), e))?;
    if before.current_state == ServiceState::Stopped {
        return Ok(());
    }
    let process = before.process_id.filter(|pid| *pid != 0).and_then(open_process);
    match service.stop() {
        Ok(_) => {}
        Err(e) if code(&e) == Some(ERROR_SERVICE_NOT_ACTIVE) => {}
        Err(e) => return Err(scm_error(format!("stop the service {name}"), e)),
    }
    // While stopping, steward keeps its checkpoint moving for up to its stop budget.
    let status = wait_while(service, ServiceState::StopPending, Duration::MAX)?;
    if status.current_state != ServiceState::Stopped {
        return Err(ServiceError::Unsupported(format!(
            "the service {name} is {} instead of stopped",
            state_name(status.current_state)
        )));
    }
    if let Some(process) = process {
        // SAFETY: an open process handle with SYNCHRONIZE access.
        let waited =
            unsafe { WaitForSingleObject(process.as_raw_handle(), GONE_DEADLINE.as_millis() as u32) };
        if waited != WAIT_OBJECT_0 {
            tracing::warn!(
                event = "service",
                "the service {name} reported STOPPED, but its process has not exited yet"
            );
        }
    }
    Ok(())
}

/// Poll the status while it is `pending`, the way Microsoft's sample does: at a tenth of the
/// wait hint (between 100 ms and 1 s), failing when the checkpoint has not moved for longer
/// than the hint (plus a grace), or after `deadline`.
fn wait_while(
    service: &Service,
    pending: ServiceState,
    deadline: Duration,
) -> Result<windows_service::service::ServiceStatus, ServiceError> {
    // Beyond the hint, for a loaded machine.
    const GRACE: Duration = Duration::from_secs(10);
    let query = || service.query_status().map_err(|e| scm_error("query the service's status".into(), e));
    let start = Instant::now();
    let mut status = query()?;
    let (mut checkpoint, mut moved) = (status.checkpoint, Instant::now());
    while status.current_state == pending {
        let pause = (status.wait_hint / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
        std::thread::sleep(pause);
        status = query()?;
        if status.checkpoint != checkpoint {
            (checkpoint, moved) = (status.checkpoint, Instant::now());
        } else if moved.elapsed() > status.wait_hint + GRACE || start.elapsed() > deadline {
            break;
        }
    }
    Ok(status)
}

fn open_process(pid: u32) -> Option<OwnedHandle> {
    // SAFETY: plain call; the handle is owned right away.
    let raw = unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) };
    // SAFETY: a fresh handle nothing else owns.
    (!raw.is_null()).then(|| unsafe { OwnedHandle::from_raw_handle(raw) })
}

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, ServiceError> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| scm_error("connect to the Service Control Manager".into(), e))
}

fn open(
    manager: &ServiceManager,
    scm: &Scm,
    target: &Target,
    access: ServiceAccess,
) -> Result<Service, ServiceError> {
    manager.open_service(&target.name, access).map_err(|e| {
        if code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) {
            ServiceError::NotInstalled {
                name: target.name.clone(),
                path: scm.file(target).unwrap_or_default(),
            }
        } else {
            scm_error(format!("open the service {}", target.name), e)
        }
    })
}

fn no_root(target: &Target, verb: &str) -> Result<(), ServiceError> {
    if target.root.is_some() {
        return Err(ServiceError::Unsupported(format!(
            "`service {verb} --root` is for systemd images; Windows services are registered with the running system"
        )));
    }
    Ok(())
}

/// The password of a user account, from its file: the first line, without its line break.
fn read_password(path: &Path) -> Result<String, ServiceError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ServiceError::io("read the password file", path, e))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// The Win32 error code of a failed call, if it was one.
fn code(e: &windows_service::Error) -> Option<u32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error().map(|c| c as u32),
        _ => None,
    }
}

fn scm_error(what: String, e: windows_service::Error) -> ServiceError {
    let hint = match code(&e) {
        Some(ERROR_ACCESS_DENIED) => "run it from an elevated prompt (Run as administrator)".to_owned(),
        Some(ERROR_SERVICE_MARKED_FOR_DELETE) => {
            "the service is marked for deletion: close the Services console (services.msc) and try again"
                .to_owned()
        }
        Some(1057) => "check --account: the SCM does not know that account".to_owned(),
        Some(1058) => {
            "the service is disabled: install it again with --start auto or --start manual".to_owned()
        }
        Some(1069) => "check --account and the password in --password-file: the logon failed".to_owned(),
        _ => "see the error below".to_owned(),
    };
    let source = match e {
        windows_service::Error::Winapi(io) => io,
        other => io::Error::other(other.to_string()),
    };
    ServiceError::Os { what, hint, source }
}

fn state_name(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Stopped => "stopped",
        ServiceState::StartPending => "starting (start pending)",
        ServiceState::StopPending => "stopping (stop pending)",
        ServiceState::Running => "running",
        ServiceState::ContinuePending => "continuing (continue pending)",
        ServiceState::PausePending => "pausing (pause pending)",
        ServiceState::Paused => "paused",
    }
}

fn start_name(start: ServiceStartType) -> &'static str {
    match start {
        ServiceStartType::AutoStart => "auto",
        ServiceStartType::OnDemand => "manual",
        ServiceStartType::Disabled => "disabled",
        ServiceStartType::BootStart | ServiceStartType::SystemStart => "boot",
    }
}

fn exit_text(code: ServiceExitCode) -> String {
    match code {
        ServiceExitCode::Win32(0) => "exit code 0".into(),
        ServiceExitCode::Win32(c) => format!("Win32 error {c}: {}", io::Error::from_raw_os_error(c as i32)),
        ServiceExitCode::ServiceSpecific(c) => format!("steward exit code {c}"),
    }
}

#[cfg(test)]
mod tests {
    //! Run on Windows, and under Wine through `scripts/ci-windows.sh test`.
    use super::*;
    use steward_core::render::windows::{command_line, quote_arg};
    use windows_sys::Win32::Foundation::{LocalFree, HLOCAL};
    use windows_sys::Win32::UI::Shell::CommandLineToArgvW;

    /// Windows' own reading of a command line.
    fn command_line_to_argv(line: &str) -> Vec<String> {
        let wide: Vec<u16> = line.encode_utf16().chain(Some(0)).collect();
        let mut count = 0;
        // SAFETY: a NUL-terminated string; the result is one LocalAlloc'd block, freed below.
        unsafe {
            let argv = CommandLineToArgvW(wide.as_ptr(), &mut count);
            assert!(!argv.is_null(), "CommandLineToArgvW failed");
            let args = (0..count as usize)
                .map(|i| {
                    let p = *argv.add(i);
                    let len = (0..).take_while(|&j| *p.add(j) != 0).count();
                    String::from_utf16_lossy(std::slice::from_raw_parts(p, len))
                })
                .collect();
            LocalFree(argv as HLOCAL);
            args
        }
    }

    #[test]
    fn windows_reads_the_quoted_arguments_back_unchanged() {
        let args: Vec<String> = [
            "service",
            "",
            "two words",
            r"C:\dir with space\",
            r"C:\plain\path.toml",
            r#"say "hi""#,
            r#"back\\"quote"#,
            r"trailing\\",
            "KEY=a b=c",
            "tab\there",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let line = command_line(r"C:\Program Files\steward\steward.exe", &args);
        let argv = command_line_to_argv(&line);
        assert_eq!(argv[0], r"C:\Program Files\steward\steward.exe", "{line}");
        assert_eq!(argv[1..], args[..], "{line}");
        assert_eq!(quote_arg(r"C:\x"), r"C:\x");
    }

    #[test]
    fn exit_codes_read_well() {
        assert_eq!(exit_text(ServiceExitCode::ServiceSpecific(2)), "steward exit code 2");
        assert!(exit_text(ServiceExitCode::Win32(5)).starts_with("Win32 error 5: "));
    }
}
