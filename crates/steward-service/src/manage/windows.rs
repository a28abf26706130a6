//! Windows: installing, starting, stopping, pausing and removing a service of the Service
//! Control Manager (SCM), through its API (the `windows-service` crate).
//!
//! How the SCM behaves, and what this relies on:
//! - A service is a registry entry (`HKLM\SYSTEM\CurrentControlSet\Services\NAME`) written by
//!   `CreateServiceW`: a command line, a start type, an account (see [`render_windows`] for
//!   every value, and for the quoting). The SCM starts that process as the account, with
//!   `C:\Windows\System32` as its working directory. Install checks afterwards that what the
//!   SCM stored (`QueryServiceConfigW`) is exactly the rendered command line.
//! - Description, delayed auto-start, failure actions and the preshutdown timeout are
//!   separate calls (`ChangeServiceConfig2W`). An SCM that refuses one of them (Wine returns
//!   `ERROR_INVALID_LEVEL`, 124, for delayed auto-start and failure actions) gets a warning; the
//!   service works without them.
//! - The environment is the service key's `Environment` value (REG_MULTI_SZ), which the SCM
//!   gives the process. The working directory has no place in the SCM: it is stored as
//!   `Parameters\WorkingDirectory` and applied by the crate's run side
//!   ([`apply_registry_settings`]) before `main`, with the environment (which Wine's SCM does
//!   not apply).
//! - `StartServiceW` and `ControlService` return at once. Waiting for the outcome is polling
//!   `QueryServiceStatusEx`, as Microsoft's own service-control sample does: the service
//!   promises progress with its checkpoint within its wait hint, and the wait gives up only
//!   when the checkpoint stops moving for longer than the hint, or at the caller's deadline.
//! - `DeleteServiceW` only marks the service; it disappears once every handle on it is closed
//!   (the Services console holds one while open), so uninstall waits for that too.
//! - Everything here needs an elevated (Administrator) prompt, except `status`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceDependency, ServiceErrorControl,
    ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceStartType,
    ServiceState, ServiceType,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_INVALID_LEVEL, ERROR_SERVICE_ALREADY_RUNNING,
    ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_MARKED_FOR_DELETE, ERROR_SERVICE_NOT_ACTIVE, WAIT_OBJECT_0,
};
use windows_sys::Win32::System::Registry::{
    RegDeleteKeyValueW, RegGetValueW, RegSetKeyValueW, HKEY_LOCAL_MACHINE, REG_MULTI_SZ, REG_SZ,
    RRF_RT_REG_MULTI_SZ, RRF_RT_REG_SZ,
};
use windows_sys::Win32::System::Services::{ControlService, SERVICE_CONTROL_PARAMCHANGE, SERVICE_STATUS};
use windows_sys::Win32::System::Threading::{OpenProcess, WaitForSingleObject, PROCESS_SYNCHRONIZE};

use super::event_source;
use super::render::windows::{self as render_windows, ScmSettings, WORKING_DIRECTORY_VALUE};
use super::{Error, Manager, ServiceSpec, StartType, State, Status};

/// `Parameters\EventSource`: the Event Log source install registered, for uninstall.
const EVENT_SOURCE_VALUE: &str = "EventSource";

// The pure renderer spells out SDK values so that it compiles everywhere; check them here.
const _: () = {
    use windows_sys::Win32::System::Services as s;
    assert!(render_windows::SERVICE_AUTO_START == s::SERVICE_AUTO_START);
    assert!(render_windows::SERVICE_DEMAND_START == s::SERVICE_DEMAND_START);
    assert!(render_windows::SERVICE_DISABLED == s::SERVICE_DISABLED);
    assert!(render_windows::SC_ACTION_RESTART == s::SC_ACTION_RESTART);
};

/// How long a deleted service may take to disappear, and a stopped one's process to exit.
const GONE_DEADLINE: Duration = Duration::from_secs(30);

pub(super) fn install(m: &Manager, spec: &ServiceSpec, _text: &str) -> Result<(), Error> {
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
    store_registry_values(m.name(), &s)?;
    // Without its source the Event Viewer shows an entry's text only after a note; the
    // service works either way, so a failure is a warning.
    if let Err(e) = event_source::windows::register_source(&s.event_source, m.name()) {
        tracing::warn!(event = "service", "the Event Log source {} is not registered: {e}", s.event_source);
    }
    // What the SCM stored must be what `render` shows.
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

pub(super) fn is_installed(m: &Manager) -> Result<bool, Error> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    match manager.open_service(m.name(), ServiceAccess::QUERY_STATUS) {
        Ok(_) => Ok(true),
        Err(e) if code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => Ok(false),
        Err(e) => Err(scm_error(format!("open the service {}", m.name()), e)),
    }
}

pub(super) fn uninstall(m: &Manager) -> Result<(), Error> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
    let service = open(&manager, m, access)?;
    // Which Event Log source it registered, read before the key goes.
    let source = read_string(m.name(), true, EVENT_SOURCE_VALUE).unwrap_or_else(|| m.name().to_owned());
    stop_and_wait(&service, m.name(), Duration::MAX)?;
    service.delete().map_err(|e| scm_error(format!("delete the service {}", m.name()), e))?;
    drop(service);
    // Gone once every handle on it is closed.
    let deadline = Instant::now() + GONE_DEADLINE;
    loop {
        match manager.open_service(m.name(), ServiceAccess::QUERY_STATUS) {
            Err(e) if code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
                match event_source::windows::unregister_source(&source, m.name()) {
                    Ok(true) => tracing::info!(event = "service", "removed the Event Log source {source}"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(event = "service", "the Event Log source {source} stays: {e}"),
                }
                return Ok(());
            }
            _ if Instant::now() > deadline => {
                return Err(Error::Timeout {
                    op: "uninstall",
                    name: m.name().to_owned(),
                    state: "marked for deletion".into(),
                    waited: GONE_DEADLINE,
                    hint:
                        "close the Services console (services.msc) and every other program that has it open"
                            .into(),
                })
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

pub(super) fn start(m: &Manager, wait: Option<Duration>) -> Result<Status, Error> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let access = ServiceAccess::START | ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG;
    let service = open(&manager, m, access)?;
    match service.start::<&OsStr>(&[]) {
        Ok(()) => {}
        Err(e) if code(&e) == Some(ERROR_SERVICE_ALREADY_RUNNING) => return status_of(m, &service),
        Err(e) => return Err(scm_error(format!("start the service {}", m.name()), e)),
    }
    let Some(wait) = wait else { return status_of(m, &service) };
    let status = wait_while(&service, ServiceState::StartPending, wait)?;
    match status.current_state {
        ServiceState::Running => status_of(m, &service),
        ServiceState::Stopped => Err(Error::Stopped {
            op: "start",
            name: m.name().to_owned(),
            detail: exit_text(status.exit_code),
            exit: match status.exit_code {
                ServiceExitCode::ServiceSpecific(c) => Some(i64::from(c)),
                ServiceExitCode::Win32(_) => None,
            },
            hint: "see the Event Log (Application) and the service's own log".into(),
        }),
        other => Err(Error::Timeout {
            op: "start",
            name: m.name().to_owned(),
            state: state_name(other).into(),
            waited: wait,
            hint: "see the Event Log (Application)".into(),
        }),
    }
}

pub(super) fn stop(m: &Manager, wait: Option<Duration>) -> Result<Status, Error> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let access = ServiceAccess::STOP | ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG;
    let service = open(&manager, m, access)?;
    match wait {
        Some(wait) => stop_and_wait(&service, m.name(), wait)?,
        None => match service.stop() {
            Ok(_) => {}
            Err(e) if code(&e) == Some(ERROR_SERVICE_NOT_ACTIVE) => {}
            Err(e) => return Err(scm_error(format!("stop the service {}", m.name()), e)),
        },
    }
    status_of(m, &service)
}

pub(super) fn pause(m: &Manager, pause: bool) -> Result<Status, Error> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let access = ServiceAccess::PAUSE_CONTINUE | ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG;
    let service = open(&manager, m, access)?;
    let (verb, result, pending, done) = if pause {
        ("pause", service.pause(), ServiceState::PausePending, ServiceState::Paused)
    } else {
        ("continue", service.resume(), ServiceState::ContinuePending, ServiceState::Running)
    };
    result.map_err(|e| scm_error(format!("{verb} the service {}", m.name()), e))?;
    let status = wait_while(&service, pending, Duration::from_secs(60))?;
    if status.current_state != done {
        return Err(Error::Timeout {
            op: verb,
            name: m.name().to_owned(),
            state: state_name(status.current_state).into(),
            waited: Duration::from_secs(60),
            hint: "the service did not finish the request; see its log".into(),
        });
    }
    status_of(m, &service)
}

pub(super) fn reload(m: &Manager) -> Result<(), Error> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = open(&manager, m, ServiceAccess::PAUSE_CONTINUE)?;
    // windows-service has no ParamChange call; the handle is the service's own.
    // SAFETY: SERVICE_STATUS is plain integers, for which all zeroes is a valid value.
    let mut status: SERVICE_STATUS = unsafe { std::mem::zeroed() };
    // SAFETY: a valid service handle opened with SERVICE_PAUSE_CONTINUE (which ParamChange
    // needs), and a status struct to fill.
    let ok = unsafe { ControlService(service.raw_handle(), SERVICE_CONTROL_PARAMCHANGE, &mut status) };
    if ok == 0 {
        return Err(Error::Os {
            what: format!("send ParamChange (reload) to the service {}", m.name()),
            hint: "the service must be running and accept ParamChange".into(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

pub(super) fn status(m: &Manager) -> Result<Status, Error> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = open(&manager, m, ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG)?;
    status_of(m, &service)
}

fn status_of(m: &Manager, service: &Service) -> Result<Status, Error> {
    let status =
        service.query_status().map_err(|e| scm_error(format!("query the service {}", m.name()), e))?;
    let config = service.query_config().ok();
    let mut detail = state_name(status.current_state).to_owned();
    // 1077: "not started since last boot", which is no failure.
    let quiet = [ServiceExitCode::NO_ERROR, ServiceExitCode::Win32(1077)];
    let stopped = status.current_state == ServiceState::Stopped;
    if stopped && !quiet.contains(&status.exit_code) {
        detail.push_str(&format!(" ({})", exit_text(status.exit_code)));
    }
    let last_exit = match status.exit_code {
        _ if !stopped || status.exit_code == ServiceExitCode::Win32(1077) => None,
        ServiceExitCode::Win32(c) | ServiceExitCode::ServiceSpecific(c) => Some(i64::from(c)),
    };
    Ok(Status {
        state: state_of(status.current_state),
        detail,
        file: Some(m.file()?),
        enabled: config.as_ref().map(|c| start_name(c.start_type).to_owned()),
        pid: status.process_id.filter(|pid| *pid != 0),
        last_exit,
        status_text: None,
        command: config.map(|c| c.executable_path.to_string_lossy().into_owned()),
    })
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
    if let Some(description) = &s.description {
        optional("the description", service.set_description(description));
    }
    // A fresh service is not delayed; only say so again when replacing one that may have been.
    if s.start.delayed() || (existed && s.start.raw() == render_windows::SERVICE_AUTO_START) {
        optional("delayed auto-start", service.set_delayed_auto_start(s.start.delayed()));
    }
    let (reset, actions, non_crash) = match &s.failure_actions {
        Some(fa) => (
            fa.reset_period,
            fa.restart_delays
                .iter()
                .map(|delay| ServiceAction { action_type: ServiceActionType::Restart, delay: *delay })
                .collect(),
            fa.on_non_crash_failures,
        ),
        None => (Duration::ZERO, Vec::new(), false),
    };
    if s.failure_actions.is_some() || existed {
        let actions = ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(reset),
            reboot_msg: None,
            command: None,
            actions: Some(actions),
        };
        optional("the failure actions (restart on failure)", service.update_failure_actions(actions));
        optional(
            "failure actions on non-crash failures",
            service.set_failure_actions_on_non_crash_failures(non_crash),
        );
    }
    if let Some(timeout) = s.preshutdown_timeout {
        optional("the preshutdown timeout", service.set_preshutdown_timeout(timeout));
    }
}

/// `SERVICES\NAME` and `SERVICES\NAME\Parameters` as registry subkeys of HKLM.
fn service_subkey(name: &str, parameters: bool) -> Vec<u16> {
    let tail = if parameters { r"\Parameters" } else { "" };
    wide(&format!(r"SYSTEM\CurrentControlSet\Services\{name}{tail}"))
}

pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// Writes (or, when the spec has none, removes) the `Environment` value of the service key
/// and `Parameters\WorkingDirectory`.
fn store_registry_values(name: &str, s: &ScmSettings) -> Result<(), Error> {
    let env: Option<Vec<u16>> = (!s.environment.is_empty()).then(|| {
        // REG_MULTI_SZ: each string ends in NUL, and one more NUL ends the list.
        let mut data: Vec<u16> = Vec::new();
        for var in &s.environment {
            data.extend(var.encode_utf16());
            data.push(0);
        }
        data.push(0);
        data
    });
    set_or_delete(&service_subkey(name, false), "Environment", REG_MULTI_SZ, env)?;
    let dir = s.working_dir.as_deref().map(wide);
    set_or_delete(&service_subkey(name, true), WORKING_DIRECTORY_VALUE, REG_SZ, dir)?;
    set_or_delete(&service_subkey(name, true), EVENT_SOURCE_VALUE, REG_SZ, Some(wide(&s.event_source)))
}

fn set_or_delete(subkey: &[u16], value: &str, kind: u32, data: Option<Vec<u16>>) -> Result<(), Error> {
    let value_name = wide(value);
    let what = format!(r"write HKLM\{}\{value}", String::from_utf16_lossy(&subkey[..subkey.len() - 1]));
    let rc = match &data {
        // SAFETY: NUL-terminated names and a data buffer of the given size in bytes;
        // RegSetKeyValueW creates the subkey when missing.
        Some(data) => unsafe {
            RegSetKeyValueW(
                HKEY_LOCAL_MACHINE,
                subkey.as_ptr(),
                value_name.as_ptr(),
                kind,
                data.as_ptr().cast(),
                (data.len() * 2) as u32,
            )
        },
        // SAFETY: NUL-terminated names.
        None => match unsafe { RegDeleteKeyValueW(HKEY_LOCAL_MACHINE, subkey.as_ptr(), value_name.as_ptr()) }
        {
            ERROR_FILE_NOT_FOUND => 0,
            rc => rc,
        },
    };
    if rc != 0 {
        return Err(Error::Os {
            what,
            hint: "run it from an elevated prompt (Run as administrator)".into(),
            source: io::Error::from_raw_os_error(rc as i32),
        });
    }
    Ok(())
}

/// The run side's one step before `main` when the SCM started the program: what the install
/// stored for the service `name` is applied. `Parameters\WorkingDirectory` becomes the
/// working directory (the SCM starts every service in `System32`). The `Environment` value
/// is set too: Windows' SCM gives it to the process already (setting it again changes
/// nothing), Wine's does not.
pub(crate) fn apply_registry_settings(name: &str) {
    if let Some(dir) = read_string(name, true, WORKING_DIRECTORY_VALUE).map(PathBuf::from) {
        if let Err(e) = std::env::set_current_dir(&dir) {
            tracing::warn!(service = %name, "cannot change to the working directory {}: {e}", dir.display());
        }
    }
    if let Some(list) = read_value(name, false, "Environment", RRF_RT_REG_MULTI_SZ) {
        for var in event_source::parse_multi_sz(&list) {
            if let Some((key, value)) = var.split_once('=').filter(|(k, _)| !k.is_empty()) {
                // Before `main`, and Windows' environment block is guarded by a lock of its own.
                std::env::set_var(key, value);
            }
        }
    }
}

/// A `REG_SZ` value of the service key (or its `Parameters`); `None` when it is not there.
fn read_string(name: &str, parameters: bool, value: &str) -> Option<String> {
    let data = read_value(name, parameters, value, RRF_RT_REG_SZ)?;
    event_source::parse_multi_sz(&data).into_iter().next()
}

/// A value of the service key (or its `Parameters`), as UTF-16 with its NULs; `None` when it
/// is not there (a warning when it cannot be read).
fn read_value(name: &str, parameters: bool, value: &str, kind: u32) -> Option<Vec<u16>> {
    let subkey = service_subkey(name, parameters);
    let value_name = wide(value);
    let get = |buf: *mut std::ffi::c_void, bytes: &mut u32| {
        // SAFETY: NUL-terminated names; `buf` is null (a size query) or holds `bytes` bytes,
        // and RegGetValueW writes at most that many.
        unsafe {
            RegGetValueW(
                HKEY_LOCAL_MACHINE,
                subkey.as_ptr(),
                value_name.as_ptr(),
                kind,
                std::ptr::null_mut(),
                buf,
                bytes,
            )
        }
    };
    let mut bytes = 0u32;
    let mut rc = get(std::ptr::null_mut(), &mut bytes);
    if rc == 0 {
        let mut data = vec![0u16; (bytes as usize).div_ceil(2)];
        rc = get(data.as_mut_ptr().cast(), &mut bytes);
        if rc == 0 {
            data.truncate(bytes as usize / 2);
            return Some(data);
        }
    }
    if rc != ERROR_FILE_NOT_FOUND {
        tracing::warn!(service = %name, "cannot read {value} from the registry: {}", io::Error::from_raw_os_error(rc as i32));
    }
    None
}

/// Stop the service if it runs, wait until the SCM says STOPPED (at most `wait`), then until
/// its process has exited (so its files are free).
fn stop_and_wait(service: &Service, name: &str, wait: Duration) -> Result<(), Error> {
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
    // While stopping, the service keeps its checkpoint moving for up to its stop budget.
    let status = wait_while(service, ServiceState::StopPending, wait)?;
    if status.current_state != ServiceState::Stopped {
        return Err(Error::Timeout {
            op: "stop",
            name: name.to_owned(),
            state: state_name(status.current_state).into(),
            waited: wait.min(Duration::from_secs(u64::from(u32::MAX))),
            hint: "see the Event Log (Application) and the service's own log".into(),
        });
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
) -> Result<windows_service::service::ServiceStatus, Error> {
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

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, Error> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| scm_error("connect to the Service Control Manager".into(), e))
}

fn open(manager: &ServiceManager, m: &Manager, access: ServiceAccess) -> Result<Service, Error> {
    manager.open_service(m.name(), access).map_err(|e| {
        if code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) {
            Error::NotInstalled { name: m.name().to_owned(), path: m.file().unwrap_or_default() }
        } else {
            scm_error(format!("open the service {}", m.name()), e)
        }
    })
}

/// The password of a user account, from its file: the first line, without its line break.
fn read_password(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read the password file", path, e))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// The Win32 error code of a failed call, if it was one.
fn code(e: &windows_service::Error) -> Option<u32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error().map(|c| c as u32),
        _ => None,
    }
}

fn scm_error(what: String, e: windows_service::Error) -> Error {
    let hint = match code(&e) {
        Some(ERROR_ACCESS_DENIED) => "run it from an elevated prompt (Run as administrator)".to_owned(),
        Some(ERROR_SERVICE_MARKED_FOR_DELETE) => {
            "the service is marked for deletion: close the Services console (services.msc) and try again"
                .to_owned()
        }
        Some(1057) => "check the account: the SCM does not know it".to_owned(),
        Some(1058) => "the service is disabled: install it again with another start type".to_owned(),
        Some(1069) => "check the account and its password file: the logon failed".to_owned(),
        _ => "see the error below".to_owned(),
    };
    let source = match e {
        windows_service::Error::Winapi(io) => io,
        other => io::Error::other(other.to_string()),
    };
    Error::Os { what, hint, source }
}

fn state_of(state: ServiceState) -> State {
    match state {
        ServiceState::Stopped => State::Stopped,
        ServiceState::StartPending => State::StartPending,
        ServiceState::StopPending => State::StopPending,
        ServiceState::Running => State::Running,
        ServiceState::ContinuePending => State::ContinuePending,
        ServiceState::PausePending => State::PausePending,
        ServiceState::Paused => State::Paused,
    }
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
        ServiceExitCode::ServiceSpecific(c) => format!("service exit code {c}"),
    }
}

#[cfg(test)]
mod tests {
    //! Run on Windows, and under Wine through `scripts/ci-windows.sh test`.
    use super::*;
    use crate::manage::render::windows::{command_line, quote_arg};
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
        assert_eq!(exit_text(ServiceExitCode::ServiceSpecific(2)), "service exit code 2");
        assert!(exit_text(ServiceExitCode::Win32(5)).starts_with("Win32 error 5: "));
    }
}
