//! What `steward service install` registers with the Windows Service Control Manager (SCM).
//!
//! A Windows service has no file: its definition lives in the registry under
//! `HKLM\SYSTEM\CurrentControlSet\Services\NAME` and is written through the SCM's API
//! (`CreateServiceW`, `ChangeServiceConfig2W`). This module decides every value install sends,
//! as plain data ([`ScmSettings`]), and renders them as text for `steward service render
//! --init windows`. The `steward` crate (`service/windows.rs`) hands the same values to the SCM,
//! so what is tested here is what gets installed.
//!
//! - **Command line.** The SCM starts `"STEWARD.EXE" service host --name NAME -c CONFIG`. It
//!   stores one string and the process splits it again with the rules of the Microsoft C
//!   runtime (`CommandLineToArgvW`), so every argument is quoted by [`quote_arg`]: an argument
//!   with a space, tab, newline or quote is put in quotes, a quote inside becomes `\"`, and the
//!   backslashes right before a quote (or before the closing quote) are doubled. Other
//!   backslashes stay single, so `C:\Program Files\x` needs nothing but the outer quotes. An
//!   unquoted path with spaces is the classic service bug: the SCM would try `C:\Program.exe`.
//! - **Start type.** `auto` (at boot), `delayed` (at boot, after the other auto-start services:
//!   `SERVICE_AUTO_START` plus the delayed-auto-start flag), `manual`, `disabled`.
//! - **Account.** `LocalSystem` (the default), `LocalService`, `NetworkService`, or a user
//!   account, whose password install reads from `--password-file` (the password is never part
//!   of the settings, so it cannot reach a log or this text).
//! - **Failure actions.** When steward's process dies, or exits with an error, the SCM
//!   restarts it after 5 s, then 10 s, then 30 s for every later failure; the count resets
//!   after a day without failure. "Also on non-crash failures" makes a service that reported
//!   `STOPPED` with a non-zero exit code count as failed (steward does so when it cannot run).
//! - **Preshutdown timeout.** At system shutdown the SCM tells steward first (preshutdown) and
//!   waits this long: the config's stop budget ([`super::stop_budget`]), the same figure as
//!   systemd's `TimeoutStopSec`. The same figure is steward's wait hint while it stops.
//! - **Event Log.** Install registers the source [`EVENT_SOURCE`] in the Application log.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::{check_env_name, check_name, check_text, path_text, Init, RenderError, Scope, ServiceSpec};
use crate::units;

/// The hidden verb the SCM runs: `steward service host --name NAME -c CONFIG [--env K=V]..`.
pub const HOST_VERB: [&str; 2] = ["service", "host"];

/// The Event Log source every steward service writes to (Application log).
pub const EVENT_SOURCE: &str = "steward";

/// The restart delays of the failure actions: the first failure, the second, and every later
/// one.
pub const RESTART_DELAYS: [Duration; 3] =
    [Duration::from_secs(5), Duration::from_secs(10), Duration::from_secs(30)];

/// After this long without a failure, the SCM counts failures from zero again.
pub const FAILURE_RESET: Duration = Duration::from_secs(24 * 60 * 60);

// Values of the Windows SDK (winsvc.h), repeated so that this file compiles on every OS; the
// `steward` crate checks them against windows-sys at compile time.
/// `SERVICE_AUTO_START`.
pub const SERVICE_AUTO_START: u32 = 2;
/// `SERVICE_DEMAND_START`.
pub const SERVICE_DEMAND_START: u32 = 3;
/// `SERVICE_DISABLED`.
pub const SERVICE_DISABLED: u32 = 4;
/// `SC_ACTION_RESTART`, the type of each failure action.
pub const SC_ACTION_RESTART: i32 = 1;

/// The options only a Windows service has (the shared ones, such as the account, are in
/// [`ServiceSpec`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowsOptions {
    /// What the Services console shows. Default: the service name.
    pub display_name: Option<String>,
    pub start: StartType,
    /// Services that must run before this one (`--depends-on`); a name starting with `+` is a
    /// load-order group.
    pub depends_on: Vec<String>,
    /// The file install reads a user account's password from. Only its path is kept here.
    pub password_file: Option<PathBuf>,
}

/// When the SCM starts the service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartType {
    /// At boot.
    #[default]
    Auto,
    /// At boot, shortly after the other automatic services.
    Delayed,
    /// Only when asked (`steward service start`, `sc start`).
    Manual,
    /// Not at all, until it is enabled again.
    Disabled,
}

impl StartType {
    pub const NAMES: &'static [&'static str] = &["auto", "delayed", "manual", "disabled"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "delayed" => Some(Self::Delayed),
            "manual" => Some(Self::Manual),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Delayed => "delayed",
            Self::Manual => "manual",
            Self::Disabled => "disabled",
        }
    }

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

/// The account the service runs as (`--account`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Account {
    /// The machine's most powerful account; the SCM's default.
    #[default]
    LocalSystem,
    /// Few rights; anonymous on the network.
    LocalService,
    /// Few rights; the computer's identity on the network.
    NetworkService,
    /// A user account: `DOMAIN\user`, `user@domain`, or a local user (written `.\user`).
    User(String),
}

impl Account {
    /// The account of `--account`, or LocalSystem without one. The three built-in names are
    /// matched without regard to case, as Windows does.
    pub fn parse(account: Option<&str>) -> Result<Account, RenderError> {
        let Some(name) = account else { return Ok(Account::LocalSystem) };
        check_text("the account", name)?;
        let builtin = name.strip_prefix(r"NT AUTHORITY\").unwrap_or(name).to_ascii_lowercase();
        Ok(match builtin.as_str() {
            "localsystem" | "system" => Account::LocalSystem,
            "localservice" | "local service" => Account::LocalService,
            "networkservice" | "network service" => Account::NetworkService,
            "" => {
                return Err(RenderError::BadValue {
                    what: "the account".into(),
                    value: name.into(),
                    found: "nothing",
                })
            }
            _ => Account::User(name.to_owned()),
        })
    }

    /// The `lpServiceStartName` of `CreateServiceW`: `None` for LocalSystem.
    pub fn start_name(&self) -> Option<String> {
        match self {
            Account::LocalSystem => None,
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
        match (self, self.start_name()) {
            (Account::LocalSystem, _) => "LocalSystem".into(),
            (_, Some(name)) => name,
            (_, None) => unreachable!("only LocalSystem has no start name"),
        }
    }
}

/// What the SCM does when steward fails.
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

impl Default for FailureActions {
    fn default() -> Self {
        FailureActions {
            reset_period: FAILURE_RESET,
            restart_delays: RESTART_DELAYS.to_vec(),
            on_non_crash_failures: true,
        }
    }
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
pub struct ScmSettings {
    pub name: String,
    pub display_name: String,
    pub description: String,
    /// The steward executable.
    pub exe: String,
    /// The arguments after it: the [`HOST_VERB`] and its options.
    pub arguments: Vec<String>,
    /// The executable and the arguments, quoted, as the SCM stores them (`lpBinaryPathName`).
    pub command_line: String,
    pub start: StartType,
    pub account: Account,
    pub password_file: Option<PathBuf>,
    pub depends_on: Vec<String>,
    pub failure_actions: FailureActions,
    /// How long the SCM waits for steward at system shutdown; also steward's stop wait hint.
    pub preshutdown_timeout: Duration,
}

impl ScmSettings {
    /// The `dwPreshutdownTimeout` of `SERVICE_PRESHUTDOWN_INFO`, in milliseconds.
    pub fn preshutdown_timeout_ms(&self) -> u32 {
        millis(self.preshutdown_timeout)
    }
}

/// The settings for `spec`. Fails on a value the SCM cannot take: a per-user service (Windows
/// services belong to the machine), control characters, a password file for an account that
/// has no password, a user account without one.
pub fn settings(spec: &ServiceSpec) -> Result<ScmSettings, RenderError> {
    check_name(&spec.name)?;
    if spec.scope == Scope::User {
        return Err(RenderError::Unsupported {
            init: Init::Windows,
            what: "--user: Windows services belong to the machine; pick the account with --account",
        });
    }
    let opts = &spec.windows;
    let exe = path_text("the steward executable path", &spec.exe)?;
    let config = path_text("the config path", &spec.config)?;
    check_text("the description", &spec.description)?;
    let display_name = opts.display_name.clone().unwrap_or_else(|| spec.name.clone());
    check_text("the display name", &display_name)?;
    if display_name.is_empty() || display_name.chars().count() > 256 {
        return Err(RenderError::BadValue {
            what: "the display name".into(),
            value: display_name,
            found: "nothing or more than 256 characters",
        });
    }
    for dep in &opts.depends_on {
        check_text("a --depends-on service", dep)?;
        if dep.trim_start_matches('+').is_empty() || dep.contains(['/', '\\']) {
            return Err(RenderError::BadValue {
                what: "a --depends-on service".into(),
                value: dep.clone(),
                found: "an empty name or a slash",
            });
        }
    }
    let account = Account::parse(spec.account.as_deref())?;
    if let Some(file) = &opts.password_file {
        path_text("the password file path", file)?;
        if !account.needs_password() {
            return Err(RenderError::Unsupported {
                init: Init::Windows,
                what: "--password-file with a built-in account (LocalSystem, LocalService, NetworkService have none)",
            });
        }
    } else if account.needs_password() {
        return Err(RenderError::Unsupported {
            init: Init::Windows,
            what: "a user --account without --password-file (the SCM needs the account's password)",
        });
    }

    let mut arguments: Vec<String> = HOST_VERB.iter().map(|s| (*s).to_owned()).collect();
    arguments.extend(["--name".to_owned(), spec.name.clone(), "-c".to_owned(), config]);
    for (key, value) in &spec.env {
        check_env_name(key)?;
        check_text(&format!("the value of {key}"), value)?;
        arguments.extend(["--env".to_owned(), format!("{key}={value}")]);
    }
    let command_line = command_line(&exe, &arguments);
    Ok(ScmSettings {
        name: spec.name.clone(),
        display_name,
        description: spec.description.clone(),
        exe,
        arguments,
        command_line,
        start: opts.start,
        account,
        password_file: opts.password_file.clone(),
        depends_on: opts.depends_on.clone(),
        failure_actions: FailureActions::default(),
        preshutdown_timeout: spec.stop_timeout,
    })
}

/// The settings as text: `steward service render --init windows`.
pub fn render(spec: &ServiceSpec) -> Result<String, RenderError> {
    let s = settings(spec)?;
    let mut out = String::new();
    out.push_str("# What `steward service install` registers with the Windows Service Control Manager;\n");
    out.push_str("# `steward service render --init windows` prints the same. Windows keeps it in the\n");
    let _ = writeln!(out, "# registry, under HKLM\\SYSTEM\\CurrentControlSet\\Services\\{}.", s.name);
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(out, "{key:<20} {value}");
    };
    line("name:", &s.name);
    line("display name:", &s.display_name);
    line("description:", &s.description);
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
    let fa = &s.failure_actions;
    let restarts: Vec<String> =
        fa.restart_delays.iter().map(|d| format!("restart after {}", units::format_duration(*d))).collect();
    let mut failure = format!(
        "{}, the last repeating; count reset after {}",
        restarts.join(", "),
        units::format_duration(fa.reset_period)
    );
    if fa.on_non_crash_failures {
        failure.push_str("; also when steward stops with an error");
    }
    line("on failure:", &failure);
    line("preshutdown timeout:", &units::format_duration(s.preshutdown_timeout));
    line("event log source:", &format!("{EVENT_SOURCE} (Application log)"));
    Ok(out)
}

/// The wrap folder on Windows: `PROGRAMDATA\steward\wrap\NAME` (default `C:\ProgramData`).
pub fn wrap_dir(program_data: Option<&std::path::Path>, name: &str) -> PathBuf {
    let base = program_data
        .map(|p| p.to_string_lossy().trim_end_matches(['\\', '/']).to_owned())
        .unwrap_or_else(|| r"C:\ProgramData".to_owned());
    PathBuf::from(format!(r"{base}\steward\wrap\{name}"))
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
        let start_name = |a: Option<&str>| Account::parse(a).unwrap().start_name();
        assert_eq!(start_name(None), None);
        assert_eq!(start_name(Some("LocalSystem")), None);
        assert_eq!(start_name(Some("localservice")), Some(r"NT AUTHORITY\LocalService".into()));
        assert_eq!(
            start_name(Some(r"NT AUTHORITY\NetworkService")),
            Some(r"NT AUTHORITY\NetworkService".into())
        );
        assert_eq!(start_name(Some("svc-api")), Some(r".\svc-api".into()));
        assert_eq!(start_name(Some(r"CORP\svc-api")), Some(r"CORP\svc-api".into()));
        assert_eq!(start_name(Some("svc@corp.example")), Some("svc@corp.example".into()));
        assert!(Account::parse(Some("svc")).unwrap().needs_password());
        assert!(!Account::parse(Some("NetworkService")).unwrap().needs_password());
        assert!(Account::parse(Some("")).is_err());
    }

    #[test]
    fn failure_actions_as_sent() {
        let fa = FailureActions::default();
        assert_eq!(fa.reset_period_secs(), 86_400);
        assert_eq!(fa.sc_actions(), [(1, 5_000), (1, 10_000), (1, 30_000)]);
        assert!(fa.on_non_crash_failures);
    }

    #[test]
    fn wrap_dirs() {
        assert_eq!(wrap_dir(None, "api"), PathBuf::from(r"C:\ProgramData\steward\wrap\api"));
        assert_eq!(
            wrap_dir(Some(std::path::Path::new(r"D:\Data\")), "api"),
            PathBuf::from(r"D:\Data\steward\wrap\api")
        );
    }
}
