//! What install registers with the Windows Service Control Manager (SCM).
//!
//! A Windows service has no file: its definition lives in the registry under
//! `HKLM\SYSTEM\CurrentControlSet\Services\NAME` and is written through the SCM's API
//! (`CreateServiceW`, `ChangeServiceConfig2W`). This module decides every value install sends,
//! as plain data ([`ScmSettings`]), and renders them as text. The Windows backend hands the
//! same values to the SCM, so what is tested here is what gets installed.
//!
//! - **Command line.** The SCM stores one string and the process splits it again with the
//!   rules of the Microsoft C runtime (`CommandLineToArgvW`), so every argument is quoted by
//!   [`quote_arg`]: an argument with a space, tab, newline or quote is put in quotes, a quote
//!   inside becomes `\"`, and the backslashes right before a quote (or before the closing
//!   quote) are doubled. Other backslashes stay single, so `C:\Program Files\x` needs nothing
//!   but the outer quotes. An unquoted path with spaces is the classic service bug: the SCM
//!   would try `C:\Program.exe`.
//! - **Start type.** auto, delayed (auto plus the delayed-auto-start flag), manual, disabled.
//! - **Account.** LocalSystem (the default), LocalService, NetworkService, or a user account,
//!   whose password install reads from the password file (never part of the settings, so it
//!   cannot reach a log or this text).
//! - **Failure actions.** One restart per failure after each delay, the last repeating; the
//!   count resets after the reset window (default one day). "Also on non-crash failures" makes
//!   a service that reported `STOPPED` with a non-zero exit code count as failed (the crate's
//!   run side does so when `main` fails). The SCM never restarts a clean stop, so
//!   [`RestartOn::Always`] is an error.
//! - **Preshutdown timeout.** At system shutdown the SCM tells the service first and waits
//!   this long: the stop timeout.
//! - **Environment and working directory.** The environment is the service key's own
//!   `Environment` value (REG_MULTI_SZ), which the SCM applies when it starts the process. The
//!   SCM has no working directory (it starts services in `System32`): install stores it as
//!   `Parameters\WorkingDirectory` under the service key, and [`crate::run`] changes to it
//!   before `main` when the SCM started the program.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::super::{
    Account, Dependency, Error, KillMode, Platform, RestartOn, Scope, ServiceSpec, StartType,
};
use super::{check_text, command, env, human, path_text};

const P: Platform = Platform::Windows;

/// Where the SCM keeps its services.
pub const SERVICES_KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services";

/// The value under `SERVICES_KEY\NAME\Parameters` that holds the working directory.
pub const WORKING_DIRECTORY_VALUE: &str = "WorkingDirectory";

/// After this long without a failure the SCM counts failures from zero again, unless the
/// restart policy says otherwise.
pub const DEFAULT_FAILURE_RESET: Duration = Duration::from_secs(24 * 60 * 60);

// Values of the Windows SDK (winsvc.h), repeated so that this file compiles on every OS; the
// Windows backend checks them against windows-sys at compile time.
/// `SERVICE_AUTO_START`.
pub const SERVICE_AUTO_START: u32 = 2;
/// `SERVICE_DEMAND_START`.
pub const SERVICE_DEMAND_START: u32 = 3;
/// `SERVICE_DISABLED`.
pub const SERVICE_DISABLED: u32 = 4;
/// `SC_ACTION_RESTART`, the type of each failure action.
pub const SC_ACTION_RESTART: i32 = 1;

impl StartType {
    /// The `dwStartType` of `CreateServiceW`.
    pub fn raw(self) -> u32 {
        match self {
            Self::Auto | Self::Delayed => SERVICE_AUTO_START,
            Self::Manual => SERVICE_DEMAND_START,
            Self::Disabled => SERVICE_DISABLED,
        }
    }

    /// The `fDelayedAutostart` of `SERVICE_DELAYED_AUTO_START_INFO`.
    pub fn delayed(self) -> bool {
        self == Self::Delayed
    }
}

impl Account {
    /// The `lpServiceStartName` of `CreateServiceW`: `None` for LocalSystem.
    pub fn start_name(&self) -> Option<String> {
        match self {
            Account::Default => None,
            Account::LocalService => Some(r"NT AUTHORITY\LocalService".into()),
            Account::NetworkService => Some(r"NT AUTHORITY\NetworkService".into()),
            Account::User(name) if name.contains('\\') || name.contains('@') => Some(name.clone()),
            // A bare name is a local account, which the SCM wants as `.\name`.
            Account::User(name) => Some(format!(r".\{name}")),
        }
    }

    /// Only a user account has a password.
    pub fn needs_password(&self) -> bool {
        matches!(self, Account::User(_))
    }

    fn describe(&self) -> String {
        self.start_name().unwrap_or_else(|| "LocalSystem".into())
    }
}

/// What the SCM does when the service fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureActions {
    /// After this long without a failure, the count starts again.
    pub reset_period: Duration,
    /// One restart per failure, after these delays; the last repeats.
    pub restart_delays: Vec<Duration>,
    /// A service that reports `STOPPED` with a non-zero exit code has failed too
    /// (`SERVICE_FAILURE_ACTIONS_FLAG`).
    pub on_non_crash_failures: bool,
}

impl FailureActions {
    /// The `dwResetPeriod` of `SERVICE_FAILURE_ACTIONSW`, in seconds.
    pub fn reset_period_secs(&self) -> u32 {
        u32::try_from(self.reset_period.as_secs()).unwrap_or(u32::MAX)
    }

    /// The `lpsaActions` array: (`SC_ACTION.Type`, `SC_ACTION.Delay` in milliseconds).
    pub fn sc_actions(&self) -> Vec<(i32, u32)> {
        self.restart_delays.iter().map(|d| (SC_ACTION_RESTART, millis(*d))).collect()
    }
}

/// Everything install sends to the SCM for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScmSettings {
    /// The service name.
    pub name: String,
    /// What the Services console shows.
    pub display_name: String,
    /// The description, if any.
    pub description: Option<String>,
    /// The executable.
    pub exe: String,
    /// The arguments after it.
    pub arguments: Vec<String>,
    /// The executable and the arguments, quoted, as the SCM stores them (`lpBinaryPathName`).
    pub command_line: String,
    /// When it starts.
    pub start: StartType,
    /// The account.
    pub account: Account,
    /// Where install reads the account's password from.
    pub password_file: Option<PathBuf>,
    /// Services (and `+groups`) that must run first.
    pub depends_on: Vec<String>,
    /// Restarts on failure; `None`: none.
    pub failure_actions: Option<FailureActions>,
    /// How long the SCM waits at system shutdown (the stop timeout).
    pub preshutdown_timeout: Option<Duration>,
    /// `KEY=VALUE` strings of the service key's `Environment` value.
    pub environment: Vec<String>,
    /// `Parameters\WorkingDirectory`.
    pub working_dir: Option<String>,
    /// The Event Log source install registers (and stores as `Parameters\EventSource`).
    pub event_source: String,
}

impl ScmSettings {
    /// The `dwPreshutdownTimeout` of `SERVICE_PRESHUTDOWN_INFO`, in milliseconds.
    pub fn preshutdown_timeout_ms(&self) -> Option<u32> {
        self.preshutdown_timeout.map(millis)
    }
}

/// The settings for `spec`. Fails on what the SCM cannot take: a per-user service, a restart
/// after a clean stop, a watchdog, a log file, control characters, a password file for an
/// account that has no password, a user account without one.
pub fn settings(spec: &ServiceSpec) -> Result<ScmSettings, Error> {
    let no = |option, why: &str| Err(Error::unsupported(option, P, why));
    if spec.scope == Scope::User {
        return no("scope User", "Windows services belong to the machine; choose an account instead");
    }
    if spec.watchdog.is_some() {
        return no("watchdog", "the SCM has no watchdog");
    }
    if spec.start_timeout.is_some() {
        return no(
            "start_timeout",
            "the SCM has no start timeout of its own: the program's start budget (RunOptions::start_budget) \
             bounds its start, and Manager::start takes its own wait",
        );
    }
    if spec.log_file.is_some() {
        return no(
            "log_file",
            "a service has no stdout or stderr; log to a file or the Event Log from the program",
        );
    }
    if spec.delegate_cgroups {
        return no("delegate_cgroups", "control groups are Linux's; Windows has Job Objects");
    }
    if spec.kill_mode == KillMode::Mixed {
        return no("kill_mode Mixed", "the SCM only asks the service to stop");
    }
    let (exe, arguments) = command(spec)?;
    if let Some(description) = &spec.description {
        check_text("description", description)?;
    }
    let display_name = spec.display_name.clone().unwrap_or_else(|| spec.name.clone());
    check_text("display_name", &display_name)?;
    if display_name.is_empty() || display_name.chars().count() > 256 {
        return Err(Error::invalid(
            "display_name",
            display_name,
            "it is empty or longer than 256 characters",
        ));
    }
    let mut depends_on = Vec::new();
    for dep in &spec.dependencies {
        match dep {
            Dependency::NetworkOnline => {
                return no(
                    "dependency NetworkOnline",
                    "the SCM has no such state; depend on a service such as Tcpip or Dnscache",
                )
            }
            Dependency::Service(name) => {
                check_text("dependency", name)?;
                if name.trim_start_matches('+').is_empty() || name.contains(['/', '\\']) {
                    return Err(Error::invalid("dependency", name.as_str(), "an empty name or a slash"));
                }
                depends_on.push(name.clone());
            }
        }
    }
    if let Some(file) = &spec.password_file {
        path_text("password_file", file)?;
        if !spec.account.needs_password() {
            return no(
                "password_file",
                "a built-in account (LocalSystem, LocalService, NetworkService) has no password",
            );
        }
    } else if spec.account.needs_password() {
        return no("account", "a user account needs a password file (the SCM needs the account's password)");
    }
    if let Account::User(name) = &spec.account {
        check_text("account", name)?;
    }
    let failure_actions = match spec.restart.on {
        RestartOn::Never => None,
        RestartOn::Always => {
            return no(
                "restart Always",
                "the SCM never restarts a service that stopped cleanly; use OnFailure",
            )
        }
        RestartOn::OnFailure if spec.restart.delays.is_empty() => {
            return Err(Error::invalid("restart delays", "[]", "the SCM needs a delay for each restart"))
        }
        RestartOn::OnFailure => Some(FailureActions {
            reset_period: spec.restart.reset_after.unwrap_or(DEFAULT_FAILURE_RESET),
            restart_delays: spec.restart.delays.clone(),
            on_non_crash_failures: true,
        }),
    };
    let environment = env(spec)?.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let working_dir = spec.working_dir.as_deref().map(|d| path_text("working_dir", d)).transpose()?;
    let event_source = spec.event_source.clone().unwrap_or_else(|| spec.name.clone());
    check_text("event_source", &event_source)?;
    if event_source.is_empty() || event_source.contains('\\') {
        return Err(Error::invalid(
            "event_source",
            &event_source,
            "a source is one registry key name: not empty, no backslash",
        ));
    }
    let command_line = command_line(&exe, &arguments);
    Ok(ScmSettings {
        name: spec.name.clone(),
        display_name,
        description: spec.description.clone(),
        exe,
        arguments,
        command_line,
        start: spec.start,
        account: spec.account.clone(),
        password_file: spec.password_file.clone(),
        depends_on,
        failure_actions,
        preshutdown_timeout: spec.stop_timeout,
        environment,
        working_dir,
        event_source,
    })
}

/// The settings as text.
pub fn render(spec: &ServiceSpec) -> Result<String, Error> {
    let s = settings(spec)?;
    let mut out = String::new();
    for note in &spec.notes {
        check_text("note", note)?;
        let _ = writeln!(out, "# {note}");
    }
    let _ = writeln!(out, "# Windows keeps these in the registry, under {SERVICES_KEY}\\{}.", s.name);
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(out, "{key:<20} {value}");
    };
    line("name:", &s.name);
    line("display name:", &s.display_name);
    if let Some(description) = &s.description {
        line("description:", description);
    }
    line("command line:", &s.command_line);
    let start = match s.start {
        StartType::Auto => "auto (at boot)",
        StartType::Delayed => "delayed (at boot, after the automatic services)",
        StartType::Manual => "manual",
        StartType::Disabled => "disabled",
    };
    line("start:", start);
    line("account:", &s.account.describe());
    if let Some(file) = &s.password_file {
        line("password:", &format!("read from {} when installing", file.display()));
    }
    let deps = if s.depends_on.is_empty() { "(none)".to_owned() } else { s.depends_on.join(", ") };
    line("depends on:", &deps);
    match &s.failure_actions {
        None => line("on failure:", "nothing"),
        Some(fa) => {
            let restarts: Vec<String> =
                fa.restart_delays.iter().map(|d| format!("restart after {}", human(*d))).collect();
            let mut failure = format!(
                "{}, the last repeating; count reset after {}",
                restarts.join(", "),
                human(fa.reset_period)
            );
            if fa.on_non_crash_failures {
                failure.push_str("; also when the service stops with an error");
            }
            line("on failure:", &failure);
        }
    }
    if let Some(t) = s.preshutdown_timeout {
        line("preshutdown timeout:", &human(t));
    }
    if let Some(dir) = &s.working_dir {
        line("working directory:", dir);
    }
    for var in &s.environment {
        line("environment:", var);
    }
    line("event log source:", &format!("{} (Application log)", s.event_source));
    Ok(out)
}

/// One argument quoted for a Windows command line, so that `CommandLineToArgvW` and the C
/// runtime read it back unchanged (see the module doc). Left as it is when nothing in it
/// needs quoting.
pub fn quote_arg(arg: &str) -> Cow<'_, str> {
    let needs_quotes = arg.is_empty() || arg.contains([' ', '\t', '\n', '\x0b', '"']);
    if !needs_quotes {
        return Cow::Borrowed(arg);
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    // Backslashes seen but not written yet: how many depends on what follows them.
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                // Each backslash doubled, then one more to escape the quote.
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    // Before the closing quote, backslashes are doubled so that it stays a closing quote.
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    Cow::Owned(out)
}

/// `exe` and `args`, each quoted, separated by spaces.
pub fn command_line(exe: &str, args: &[String]) -> String {
    let mut words = vec![quote_arg(exe)];
    words.extend(args.iter().map(|a| quote_arg(a)));
    words.join(" ")
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C runtime's reading of a command line (the rules `CommandLineToArgvW` follows for
    /// every argument after the first): the reference the quoting is tested against.
    fn split(line: &str) -> Vec<String> {
        let mut args = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            if chars.peek().is_none() {
                return args;
            }
            let mut arg = String::new();
            let mut quoted = false;
            while let Some(&c) = chars.peek() {
                if !quoted && (c == ' ' || c == '\t') {
                    break;
                }
                chars.next();
                match c {
                    '\\' => {
                        let mut n = 1;
                        while chars.next_if_eq(&'\\').is_some() {
                            n += 1;
                        }
                        if chars.peek() == Some(&'"') {
                            arg.extend(std::iter::repeat_n('\\', n / 2));
                            if n % 2 == 1 {
                                chars.next();
                                arg.push('"');
                            }
                        } else {
                            arg.extend(std::iter::repeat_n('\\', n));
                        }
                    }
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        chars.next();
                        arg.push('"');
                    }
                    '"' => quoted = !quoted,
                    _ => arg.push(c),
                }
            }
            args.push(arg);
        }
    }

    const TRICKY: &[&str] = &[
        "plain",
        "",
        "two words",
        r"C:\Program Files\steward\steward.exe",
        r"C:\dir with space\",
        r"C:\dir\",
        r"trailing\\",
        r#"say "hi""#,
        r#"\"already escaped\""#,
        r#"back\\"quote"#,
        "tab\there",
        r#"""#,
        r"\\server\share\x y",
        "KEY=a value with = and ; and %PATH%",
        "ünïcödé ✓",
    ];

    #[test]
    fn quoting_round_trips_through_the_c_runtime_rules() {
        for arg in TRICKY {
            let quoted = quote_arg(arg);
            assert_eq!(split(&quoted), vec![arg.to_string()], "{arg:?} quoted as {quoted}");
        }
        let all: Vec<String> = TRICKY.iter().map(|s| s.to_string()).collect();
        let line = command_line("steward.exe", &all);
        assert_eq!(split(&line)[1..], all[..], "{line}");
    }

    #[test]
    fn quoting_by_example() {
        assert_eq!(quote_arg("plain"), "plain");
        assert_eq!(quote_arg(r"C:\dir\x.toml"), r"C:\dir\x.toml", "backslashes alone stay single");
        assert_eq!(quote_arg(""), r#""""#);
        assert_eq!(quote_arg(r"C:\Program Files\s.exe"), r#""C:\Program Files\s.exe""#);
        assert_eq!(quote_arg(r"C:\my dir\"), r#""C:\my dir\\""#, "doubled before the closing quote");
        assert_eq!(quote_arg(r#"a"b"#), r#""a\"b""#);
        assert_eq!(quote_arg(r#"a\"b"#), r#""a\\\"b""#, "backslash before a quote: 2n+1");
        assert_eq!(quote_arg(r"a\b c"), r#""a\b c""#);
    }

    #[test]
    fn the_split_reference_reads_known_lines() {
        // Examples from Microsoft's "Parsing C++ command-line arguments".
        assert_eq!(split(r#""abc" d e"#), ["abc", "d", "e"]);
        assert_eq!(split(r#"a\\b d"e f"g h"#), [r"a\\b", "de fg", "h"]);
        assert_eq!(split(r#"a\\\"b c d"#), [r#"a\"b"#, "c", "d"]);
        assert_eq!(split(r#"a\\\\"b c" d e"#), [r"a\\b c", "d", "e"]);
        assert_eq!(split(r#"a"b"" c d"#), [r#"ab" c d"#]);
    }

    #[test]
    fn start_types_and_their_values() {
        for name in StartType::NAMES {
            assert_eq!(StartType::from_name(name).unwrap().name(), *name);
        }
        let raw: Vec<(u32, bool)> =
            [StartType::Auto, StartType::Delayed, StartType::Manual, StartType::Disabled]
                .iter()
                .map(|s| (s.raw(), s.delayed()))
                .collect();
        assert_eq!(raw, [(2, false), (2, true), (3, false), (4, false)]);
        assert_eq!(StartType::from_name("boot"), None);
    }

    #[test]
    fn accounts() {
        let start_name = |a: &str| Account::parse(a).unwrap().start_name();
        assert_eq!(Account::Default.start_name(), None);
        assert_eq!(start_name("LocalSystem"), None);
        assert_eq!(start_name("localservice"), Some(r"NT AUTHORITY\LocalService".into()));
        assert_eq!(start_name(r"NT AUTHORITY\NetworkService"), Some(r"NT AUTHORITY\NetworkService".into()));
        assert_eq!(start_name("svc-api"), Some(r".\svc-api".into()));
        assert_eq!(start_name(r"CORP\svc-api"), Some(r"CORP\svc-api".into()));
        assert_eq!(start_name("svc@corp.example"), Some("svc@corp.example".into()));
        assert!(Account::parse("svc").unwrap().needs_password());
        assert!(!Account::parse("NetworkService").unwrap().needs_password());
    }

    #[test]
    fn failure_actions_as_sent() {
        let fa = FailureActions {
            reset_period: DEFAULT_FAILURE_RESET,
            restart_delays: vec![Duration::from_secs(5), Duration::from_secs(10), Duration::from_secs(30)],
            on_non_crash_failures: true,
        };
        assert_eq!(fa.reset_period_secs(), 86_400);
        assert_eq!(fa.sc_actions(), [(1, 5_000), (1, 10_000), (1, 30_000)]);
    }
}
