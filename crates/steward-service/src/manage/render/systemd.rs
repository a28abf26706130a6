//! The systemd unit of a service.
//!
//! - `Type=notify` with `NotifyAccess=main` for [`Readiness::Notify`]: `systemctl start`
//!   returns once the program sends `READY=1` (the crate's `Context::ready`); `Type=simple`
//!   otherwise.
//! - The restart policy becomes `Restart=on-failure` or `always`, `RestartSec=` the first
//!   delay; growing delays become `RestartSteps=` and `RestartMaxDelaySec=` (systemd 254)
//!   when they are the geometric steps systemd takes between the two, and an error otherwise
//!   (a systemd older than 254 ignores those two keys with a warning in its journal).
//!   systemd has no window after which its step count starts again, so a reset window with
//!   delays that differ is an error too.
//! - `TimeoutStartSec=`, `TimeoutStopSec=`, `WatchdogSec=`, `Delegate=yes`, `KillMode=mixed`,
//!   `StandardOutput=append:` as the spec says; `WantedBy=multi-user.target` (user:
//!   `default.target`) when it starts automatically.
//!
//! Quoting follows systemd.service(5) and systemd.unit(5): `%` starts a specifier everywhere
//! and is written `%%`; in `ExecStart=`, `$` starts a variable and is written `$$`, and
//! arguments with spaces, quotes or backslashes are double-quoted with C-style escapes.

use std::fmt::Write as _;
use std::time::Duration;

use super::super::{
    Account, Dependency, Error, KillMode, Platform, Readiness, RestartOn, RestartPolicy, Scope, ServiceSpec,
    StartType,
};
use super::{check_text, command, env, path_text};

const P: Platform = Platform::Systemd;

/// The unit file text.
pub fn unit(spec: &ServiceSpec) -> Result<String, Error> {
    if spec.display_name.is_some() {
        return Err(Error::unsupported("display_name", P, "units have only a Description"));
    }
    if spec.password_file.is_some() {
        return Err(Error::unsupported("password_file", P, "systemd runs a User= without a password"));
    }
    if spec.event_source.is_some() {
        return Err(Error::unsupported("event_source", P, "the journal needs no source"));
    }
    let (exe, args) = command(spec)?;
    let exec: Vec<String> =
        std::iter::once(exe.as_str()).chain(args.iter().map(String::as_str)).map(exec_arg).collect();

    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored below for that reason.
    for note in &spec.notes {
        check_text("note", note)?;
        let _ = writeln!(out, "# {note}");
    }
    out.push_str("[Unit]\n");
    if let Some(description) = &spec.description {
        check_text("description", description)?;
        let _ = writeln!(out, "Description={}", specifiers(description));
    }
    let deps = dependencies(spec)?;
    if !deps.is_empty() {
        let _ = writeln!(out, "Wants={}\nAfter={}", deps.join(" "), deps.join(" "));
    }

    out.push_str("\n[Service]\n");
    match spec.readiness {
        Readiness::Notify => out.push_str("Type=notify\nNotifyAccess=main\n"),
        Readiness::Immediate => out.push_str("Type=simple\n"),
    }
    let _ = writeln!(out, "ExecStart={}", exec.join(" "));
    if spec.reload_on_sighup {
        // `systemctl reload`: the run side takes SIGHUP as Reload (RELOADING=1, then READY=1).
        out.push_str("ExecReload=/bin/kill -HUP $MAINPID\n");
    }
    if let Some(dir) = &spec.working_dir {
        let _ = writeln!(out, "WorkingDirectory={}", specifiers(&path_text("working_dir", dir)?));
    }
    match (&spec.account, spec.scope) {
        (Account::Default, _) => {}
        (_, Scope::User) => {
            return Err(Error::unsupported(
                "account",
                P,
                "a user service runs as its user; accounts are for system services",
            ))
        }
        (Account::User(name), Scope::System) => {
            check_account(name)?;
            let _ = writeln!(out, "User={name}");
        }
        (Account::LocalService | Account::NetworkService, Scope::System) => {
            return Err(Error::unsupported(
                "account",
                P,
                "LocalService and NetworkService are Windows accounts; name a user (User=) instead",
            ))
        }
    }
    for (key, value) in env(spec)? {
        let _ = writeln!(out, "Environment={}", quoted(&specifiers(&format!("{key}={value}"))));
    }
    if let Some(file) = &spec.log_file {
        let file = specifiers(&path_text("log_file", file)?);
        let _ = writeln!(out, "StandardOutput=append:{file}\nStandardError=append:{file}");
    }
    out.push_str(&restart(&spec.restart)?);
    if spec.kill_mode == KillMode::Mixed {
        out.push_str("KillMode=mixed\n");
    }
    if spec.delegate_cgroups {
        out.push_str("Delegate=yes\n");
    }
    if let Some(t) = spec.start_timeout {
        let _ = writeln!(out, "TimeoutStartSec={}", duration(t));
    }
    if let Some(t) = spec.stop_timeout {
        let _ = writeln!(out, "TimeoutStopSec={}", duration(t));
    }
    if let Some(watchdog) = spec.watchdog {
        let _ = writeln!(out, "WatchdogSec={}", duration(watchdog));
    }

    match spec.start {
        StartType::Auto => {
            let target = match spec.scope {
                Scope::System => "multi-user.target",
                Scope::User => "default.target",
            };
            let _ = writeln!(out, "\n[Install]\nWantedBy={target}");
        }
        StartType::Manual => {}
        StartType::Delayed => {
            return Err(Error::unsupported("start Delayed", P, "systemd has no delayed start; use Auto"))
        }
        StartType::Disabled => {
            return Err(Error::unsupported("start Disabled", P, "use Manual, or `systemctl mask` the unit"))
        }
    }
    Ok(out)
}

/// The units of `Wants=` and `After=`.
fn dependencies(spec: &ServiceSpec) -> Result<Vec<String>, Error> {
    spec.dependencies
        .iter()
        .map(|d| match d {
            Dependency::NetworkOnline if spec.scope == Scope::User => Err(Error::unsupported(
                "dependency NetworkOnline",
                P,
                "a user manager has no network-online.target",
            )),
            Dependency::NetworkOnline => Ok("network-online.target".to_owned()),
            Dependency::Service(name) => {
                check_text("dependency", name)?;
                if name.is_empty() || name.contains(char::is_whitespace) || name.contains('/') {
                    return Err(Error::invalid("dependency", name.as_str(), "not a unit name"));
                }
                Ok(if name.contains('.') { name.clone() } else { format!("{name}.service") })
            }
        })
        .collect()
}

/// `Restart=` and the lines of its delays.
fn restart(policy: &RestartPolicy) -> Result<String, Error> {
    let on = match policy.on {
        RestartOn::Never => return Ok(String::new()),
        RestartOn::OnFailure => "on-failure",
        RestartOn::Always => "always",
    };
    let mut out = format!("Restart={on}\n");
    let delays = &policy.delays;
    let Some((&first, &last)) = delays.first().zip(delays.last()) else { return Ok(out) };
    let _ = writeln!(out, "RestartSec={}", duration(first));
    if delays.iter().all(|d| *d == first) {
        return Ok(out);
    }
    if policy.reset_after.is_some() {
        return Err(Error::unsupported(
            "restart reset_after",
            P,
            "systemd never counts its restart steps from zero again while the unit keeps failing; \
             use one delay",
        ));
    }
    let steps = delays.len() - 1;
    if !geometric(delays) {
        return Err(Error::unsupported(
            "restart delays",
            P,
            format!(
                "systemd grows the delay from RestartSec={} to RestartMaxDelaySec={} in {steps} equal \
                 factors, and {delays:?} are not such steps; use one delay, or delays that grow by one factor",
                duration(first),
                duration(last)
            ),
        ));
    }
    let _ = writeln!(out, "RestartSteps={steps}\nRestartMaxDelaySec={}", duration(last));
    Ok(out)
}

/// Whether `delays` grow from the first to the last by one factor, as systemd's steps do
/// (each within 1 % or 1 ms of `first * (last/first)^(k/steps)`).
fn geometric(delays: &[Duration]) -> bool {
    let (first, last) = (delays[0].as_secs_f64(), delays[delays.len() - 1].as_secs_f64());
    if first <= 0.0 || last <= first {
        return false;
    }
    let Ok(steps) = i32::try_from(delays.len() - 1) else { return false };
    let factor = nth_root(last / first, steps);
    delays.iter().enumerate().all(|(k, d)| {
        let expected = first * factor.powi(k as i32);
        (d.as_secs_f64() - expected).abs() <= (expected * 0.01).max(0.001)
    })
}

/// The `n`th root of `q` (`q` > 1, `n` ≥ 1), by bisection on integer powers. `f64::powf` was
/// steward's only call into libm, which made every steward process, CLI calls included, load
/// that library at start; `powi` needs none.
fn nth_root(q: f64, n: i32) -> f64 {
    let (mut low, mut high) = (1.0_f64, q);
    // Each step halves the interval: 64 leave it below an f64's precision of the root.
    for _ in 0..64 {
        let mid = low + (high - low) / 2.0;
        if mid.powi(n) < q {
            low = mid;
        } else {
            high = mid;
        }
    }
    low + (high - low) / 2.0
}

/// A user or group name as systemd accepts it in `User=` (a name or a numeric id).
fn check_account(account: &str) -> Result<(), Error> {
    check_text("account", account)?;
    let ok = !account.is_empty()
        && !account.starts_with('-')
        && account.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '$'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("account", account, "use letters, digits, `_`, `-`, `.`, `@` and `$`"))
    }
}

/// `%` starts a specifier (`%n`, `%h`) in almost every setting.
fn specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// A double-quoted value with C-style escapes for `\` and `"`.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '\\' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One word of `ExecStart=`: `%` and `$` doubled, quoted when it has anything a bare word
/// cannot carry.
fn exec_arg(s: &str) -> String {
    let s = specifiers(s).replace('$', "$$");
    let bare =
        !s.is_empty() && s != ";" && !s.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'));
    if bare {
        s
    } else {
        quoted(&s)
    }
}

/// A time span as systemd reads it: whole seconds as `30s`, anything finer in milliseconds,
/// rounded up so that a timeout is never shortened.
pub fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_nanos().div_ceil(1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemctl_reload_sends_sighup_unless_the_program_takes_no_reload() {
        let spec = ServiceSpec::new("app", "/usr/bin/app");
        assert!(unit(&spec).unwrap().contains("\nExecReload=/bin/kill -HUP $MAINPID\n"));
        assert!(!unit(&spec.reload_on_sighup(false)).unwrap().contains("ExecReload"));
    }

    #[test]
    fn exec_words() {
        assert_eq!(exec_arg("/usr/bin/steward"), "/usr/bin/steward");
        assert_eq!(exec_arg("/srv/my app/steward.toml"), "\"/srv/my app/steward.toml\"");
        assert_eq!(exec_arg("/srv/100%/$HOME"), "/srv/100%%/$$HOME");
        assert_eq!(exec_arg("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(exec_arg(""), "\"\"");
        assert_eq!(exec_arg(";"), "\";\"");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_secs(15)), "15s");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration(Duration::from_nanos(1)), "1ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }

    #[test]
    fn accounts() {
        for ok in ["www-data", "svc.api", "1000", "dom@ain"] {
            assert!(check_account(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a b", "a:b", "a\nb"] {
            assert!(check_account(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn restart_delays_map_to_steps_or_fail() {
        let s = Duration::from_secs;
        let text = |p: RestartPolicy| restart(&p);
        assert_eq!(text(RestartPolicy::never()).unwrap(), "");
        assert_eq!(text(RestartPolicy::on_failure([])).unwrap(), "Restart=on-failure\n");
        assert_eq!(text(RestartPolicy::always([s(2), s(2)])).unwrap(), "Restart=always\nRestartSec=2s\n");
        assert_eq!(
            text(RestartPolicy::on_failure([s(1), s(2), s(4), s(8)])).unwrap(),
            "Restart=on-failure\nRestartSec=1s\nRestartSteps=3\nRestartMaxDelaySec=8s\n"
        );
        let err = text(RestartPolicy::on_failure([s(5), s(10), s(30)])).unwrap_err().to_string();
        assert!(err.starts_with("systemd cannot honour restart delays"), "{err}");
        let err = text(RestartPolicy::on_failure([s(1), s(2)]).reset_after(s(60))).unwrap_err().to_string();
        assert!(err.starts_with("systemd cannot honour restart reset_after"), "{err}");
        // One delay: a reset window changes nothing.
        assert!(text(RestartPolicy::on_failure([s(1)]).reset_after(s(60))).is_ok());
        // A factor that is no integer: 1 s to 1 h in 4 steps (×7.746 each), rounded to ms.
        let ms = Duration::from_millis;
        let steps = [ms(1000), ms(7746), ms(60000), ms(464758), ms(3_600_000)];
        assert!(text(RestartPolicy::on_failure(steps))
            .unwrap()
            .ends_with("RestartSteps=4\nRestartMaxDelaySec=3600s\n"));
        let off = [ms(1000), ms(7746), ms(61000), ms(464758), ms(3_600_000)];
        assert!(text(RestartPolicy::on_failure(off)).is_err());
    }

    #[test]
    fn nth_root_is_exact_to_the_last_bits() {
        for (q, n, root) in
            [(8.0, 3, 2.0), (2.0, 1, 2.0), (3600.0, 4, 3600f64.sqrt().sqrt()), (1e9, 2, 31622.776601683792)]
        {
            let got = nth_root(q, n);
            assert!((got - root).abs() <= root * 1e-14, "{q}^(1/{n}) = {got}, not {root}");
        }
    }
}
