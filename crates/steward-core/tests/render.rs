//! Rendered service files against golden files in `tests/golden/`, the systemd units
//! checked by systemd's own `systemd-analyze verify` where it is installed, and every launchd
//! plist read back by real parsers (strict XML, then a property list) on every OS.
//!
//! After a deliberate change to a renderer, rewrite the golden files with
//! `UPDATE_GOLDEN=1 cargo test -p steward-core --test integration render` and review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::FakeEnv;
use steward_core::config::{parse_str, Readiness, RestartPolicy, RotateEvery, StopSignal};
use steward_core::render::windows::{self as win, StartType, WindowsOptions};
use steward_core::render::wrap::{config_toml, WrapSpec};
use steward_core::render::{self, launchd, systemd, Init, RenderError, Scope, ServiceOptions, ServiceSpec};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `name`, or rewrites it when UPDATE_GOLDEN=1.
#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}\n(run with UPDATE_GOLDEN=1 to create it)", path.display())
    });
    // Git may check text files out with CRLF on Windows.
    let expected = expected.replace("\r\n", "\n");
    assert!(
        expected == actual,
        "{} differs from the rendered text (UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The smallest service: a system unit with every optional part left out.
fn minimal() -> ServiceSpec {
    ServiceSpec {
        name: "steward".into(),
        description: "steward: /etc/steward/steward.toml".into(),
        exe: "/usr/bin/steward".into(),
        config: "/etc/steward/steward.toml".into(),
        scope: Scope::System,
        account: None,
        working_dir: "/etc/steward".into(),
        env: BTreeMap::new(),
        watchdog: None,
        stop_timeout: Duration::from_secs(15),
        log_file: "/etc/steward/.steward/logs/steward.log".into(),
        windows: WindowsOptions::default(),
    }
}

/// Everything set, with characters each format must escape: spaces, `%`, `$`, quotes, `&`, `<`.
fn full() -> ServiceSpec {
    ServiceSpec {
        name: "com.example.api".into(),
        description: "API & workers at 100% <prod>".into(),
        exe: "/opt/steward/bin/steward".into(),
        config: "/srv/my app/steward.toml".into(),
        scope: Scope::System,
        account: Some("svc-api".into()),
        working_dir: "/srv/my app".into(),
        env: env(&[("STEWARD_LOG", "debug"), ("GREETING", "say \"hi\" to $USER at 50%")]),
        watchdog: Some(Duration::from_secs(30)),
        stop_timeout: Duration::from_millis(45_500),
        log_file: "/var/log/steward/steward.log".into(),
        windows: WindowsOptions::default(),
    }
}

/// A per-user service.
fn user() -> ServiceSpec {
    ServiceSpec {
        name: "dev-stack".into(),
        description: "steward: /home/ann/dev/steward.toml".into(),
        exe: "/home/ann/.cargo/bin/steward".into(),
        config: "/home/ann/dev/steward.toml".into(),
        scope: Scope::User,
        account: None,
        working_dir: "/home/ann/dev".into(),
        env: env(&[("RUST_BACKTRACE", "1")]),
        watchdog: Some(Duration::from_millis(1500)),
        stop_timeout: Duration::from_secs(35),
        log_file: "/home/ann/dev/.steward/logs/steward.log".into(),
        windows: WindowsOptions::default(),
    }
}

fn specs() -> [(&'static str, ServiceSpec); 3] {
    [("minimal", minimal()), ("full", full()), ("user", user())]
}

#[test]
fn systemd_units_match_the_golden_files() {
    for (name, spec) in specs() {
        golden(&format!("systemd-{name}.service"), &systemd::unit(&spec).unwrap());
    }
}

#[test]
fn launchd_plists_match_the_golden_files() {
    for (name, spec) in specs() {
        let text = launchd::plist(&spec).unwrap();
        golden(&format!("launchd-{name}.plist"), &text);
        assert_plist_carries(&spec, &parse_plist(&format!("launchd-{name}.plist"), &text));
    }
}

/// Reads a rendered plist back, or fails the test with the parser's complaint.
#[track_caller]
fn parse_plist(name: &str, text: &str) -> plist::Dictionary {
    read_plist(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"))
}

/// Reads a plist strictly: first as XML with every well-formedness check quick-xml
/// has (a comment must not hold `--`: the plist crate lets that through, strict parsers such
/// as Python's `plistlib` do not), then as a property list whose top level is a dictionary.
fn read_plist(text: &str) -> Result<plist::Dictionary, String> {
    let mut xml = quick_xml::Reader::from_str(text);
    xml.config_mut().enable_all_checks(true);
    loop {
        match xml.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("not well-formed XML at byte {}: {e}", xml.error_position())),
        }
    }
    let value =
        plist::Value::from_reader_xml(text.as_bytes()).map_err(|e| format!("not a property list: {e}"))?;
    value.into_dictionary().ok_or_else(|| "the top level is not a <dict>".to_owned())
}

/// What launchd reads from the plist is exactly what the spec says, character for character.
#[track_caller]
fn assert_plist_carries(spec: &ServiceSpec, plist: &plist::Dictionary) {
    let string = |key: &str| plist.get(key).and_then(plist::Value::as_string).map(str::to_owned);
    let path = |p: &Path| Some(p.to_str().unwrap().to_owned());
    assert_eq!(string("Label"), Some(spec.name.clone()));
    let args: Option<Vec<&str>> = plist
        .get("ProgramArguments")
        .and_then(plist::Value::as_array)
        .map(|a| a.iter().filter_map(plist::Value::as_string).collect());
    assert_eq!(args, Some(vec![spec.exe.to_str().unwrap(), "run", "-c", spec.config.to_str().unwrap()]));
    assert_eq!(string("WorkingDirectory"), path(&spec.working_dir));
    assert_eq!(string("UserName"), spec.account.clone());
    let env: BTreeMap<String, String> = plist
        .get("EnvironmentVariables")
        .and_then(plist::Value::as_dictionary)
        .map(|d| {
            d.iter().map(|(k, v)| (k.clone(), v.as_string().unwrap_or("<not a string>").to_owned())).collect()
        })
        .unwrap_or_default();
    assert_eq!(env, spec.env);
    assert_eq!(string("StandardOutPath"), path(&spec.log_file));
    assert_eq!(string("StandardErrorPath"), path(&spec.log_file));
    let secs = plist.get("ExitTimeOut").and_then(plist::Value::as_unsigned_integer);
    assert_eq!(secs, Some(spec.stop_timeout.as_secs_f64().ceil().max(1.0) as u64));
    assert_eq!(plist.get("RunAtLoad").and_then(plist::Value::as_boolean), Some(true));
}

/// Text that XML or a plist could mistake for markup, everywhere a user can put text: `--`
/// and a trailing `-` for the comment, the five XML specials, a CDATA end, an entity that
/// must stay literal, and characters beyond ASCII.
#[test]
fn launchd_plists_carry_any_text_through_a_real_parser() {
    let hostile = ServiceSpec {
        name: "a--b-".into(),
        description: "--init launchd --> <!-- x --> & ends with -".into(),
        exe: "/opt/st--ew/bin/steward".into(),
        config: "/srv/--/<app> & \"co\" 'x'/steward.toml-".into(),
        account: Some("svc--api".into()),
        working_dir: "/srv/]]>/café 🚀".into(),
        env: env(&[("DASHES", "--- a -- b -"), ("MARKUP", "<a href=\"x\">&amp;</a> ]]>"), ("EMPTY", "")]),
        log_file: "/var/log/--/steward.log".into(),
        ..full()
    };
    let text = launchd::plist(&hostile).unwrap();
    assert_plist_carries(&hostile, &parse_plist("the plist of hostile text", &text));
    // The description lands in the comment, with its `--` broken up but nothing else lost.
    assert!(text.contains("<!-- - -init launchd - -> <!- - x - -> & ends with -\n"), "{text}");
}

/// The parser check above fails for what this renderer used to write (the command line
/// `steward service render --init launchd` in the comment), so it would catch it again.
#[test]
fn the_plist_check_rejects_a_double_hyphen_in_a_comment() {
    let text = launchd::plist(&minimal()).unwrap().replacen(
        "Generated by",
        "`steward service render --init launchd` prints this. Generated by",
        1,
    );
    let err = read_plist(&text).expect_err("a comment holding `--` was accepted");
    assert!(err.contains("not well-formed XML"), "{err}");
}

/// A Windows service with nothing optional set.
fn windows_minimal() -> ServiceSpec {
    ServiceSpec {
        name: "steward".into(),
        description: r"steward: C:\ProgramData\steward\steward.toml".into(),
        exe: r"C:\Program Files\steward\steward.exe".into(),
        config: r"C:\ProgramData\steward\steward.toml".into(),
        working_dir: r"C:\ProgramData\steward".into(),
        log_file: r"C:\ProgramData\steward\.steward\logs\steward.log".into(),
        ..minimal()
    }
}

/// Everything set, with what Windows quoting must get right: spaces, quotes, a backslash
/// before a quote, `%`.
fn windows_full() -> ServiceSpec {
    ServiceSpec {
        name: "api".into(),
        description: "API & workers at 100% <prod>".into(),
        exe: r"C:\Program Files\steward\steward.exe".into(),
        config: r"D:\srv\my app\steward.toml".into(),
        working_dir: r"D:\srv\my app".into(),
        account: Some(r"CORP\svc-api".into()),
        env: env(&[("STEWARD_LOG", "debug"), ("GREETING", r#"say "hi" to C:\dir\ at 50%"#)]),
        stop_timeout: Duration::from_millis(45_500),
        log_file: r"D:\srv\my app\.steward\logs\steward.log".into(),
        windows: WindowsOptions {
            display_name: Some("API (steward)".into()),
            start: StartType::Delayed,
            depends_on: vec!["Tcpip".into(), "+NetworkProvider".into()],
            password_file: Some(r"C:\secrets\svc-api.txt".into()),
        },
        ..minimal()
    }
}

#[test]
fn windows_settings_match_the_golden_files() {
    for (name, spec) in [("minimal", windows_minimal()), ("full", windows_full())] {
        golden(&format!("windows-{name}.txt"), &win::render(&spec).unwrap());
    }
}

#[test]
fn windows_settings_are_what_install_sends() {
    let s = win::settings(&windows_full()).unwrap();
    assert_eq!(
        s.command_line,
        r#""C:\Program Files\steward\steward.exe" service host --name api -c "D:\srv\my app\steward.toml" --env "GREETING=say \"hi\" to C:\dir\ at 50%" --env STEWARD_LOG=debug"#
    );
    assert_eq!(
        s.arguments,
        [
            "service",
            "host",
            "--name",
            "api",
            "-c",
            r"D:\srv\my app\steward.toml",
            "--env",
            r#"GREETING=say "hi" to C:\dir\ at 50%"#,
            "--env",
            "STEWARD_LOG=debug"
        ]
    );
    assert_eq!((s.start.raw(), s.start.delayed()), (2, true));
    assert_eq!(s.account.start_name().as_deref(), Some(r"CORP\svc-api"));
    assert_eq!(s.preshutdown_timeout_ms(), 45_500);
    assert_eq!(s.failure_actions.sc_actions(), [(1, 5_000), (1, 10_000), (1, 30_000)]);
    assert_eq!(s.display_name, "API (steward)");
    let m = win::settings(&windows_minimal()).unwrap();
    assert_eq!(
        m.command_line,
        r#""C:\Program Files\steward\steward.exe" service host --name steward -c C:\ProgramData\steward\steward.toml"#
    );
    assert_eq!((m.start.raw(), m.start.delayed(), m.account.start_name()), (2, false, None));
    assert_eq!(m.display_name, "steward");
}

#[test]
fn windows_refuses_what_the_scm_cannot_take() {
    let user = ServiceSpec { scope: Scope::User, ..windows_minimal() };
    assert!(matches!(win::render(&user), Err(RenderError::Unsupported { init: Init::Windows, .. })));
    let no_password = ServiceSpec { account: Some("svc".into()), ..windows_minimal() };
    let err = win::render(&no_password).unwrap_err().to_string();
    assert!(err.contains("--password-file"), "{err}");
    let builtin_with_password = ServiceSpec {
        account: Some("LocalService".into()),
        windows: WindowsOptions { password_file: Some("p.txt".into()), ..WindowsOptions::default() },
        ..windows_minimal()
    };
    assert!(win::render(&builtin_with_password).is_err());
    let bad_dep = ServiceSpec {
        windows: WindowsOptions { depends_on: vec!["a/b".into()], ..WindowsOptions::default() },
        ..windows_minimal()
    };
    assert!(matches!(win::render(&bad_dep), Err(RenderError::BadValue { .. })));
    let newline = ServiceSpec { description: "two\nlines".into(), ..windows_minimal() };
    assert!(matches!(win::render(&newline), Err(RenderError::BadValue { .. })));
}

#[test]
fn render_dispatches_by_init() {
    assert_eq!(render::render(Init::Systemd, &minimal()), systemd::unit(&minimal()));
    assert_eq!(render::render(Init::Launchd, &minimal()), launchd::plist(&minimal()));
    assert_eq!(render::render(Init::Windows, &windows_minimal()), win::render(&windows_minimal()));
    for name in Init::NAMES {
        assert_eq!(Init::from_name(name).unwrap().name(), *name);
    }
}

#[test]
fn values_no_file_can_carry_are_refused() {
    let newline = ServiceSpec { description: "two\nlines".into(), ..minimal() };
    assert!(matches!(systemd::unit(&newline), Err(RenderError::BadValue { .. })));
    let newline_env = ServiceSpec { env: env(&[("A", "x\ny")]), ..minimal() };
    assert!(matches!(launchd::plist(&newline_env), Err(RenderError::BadValue { .. })));
    let bad_env = ServiceSpec { env: env(&[("A-B", "x")]), ..minimal() };
    assert_eq!(systemd::unit(&bad_env), Err(RenderError::BadEnvName("A-B".into())));
    let user_with_account = ServiceSpec { account: Some("bob".into()), ..user() };
    assert_eq!(systemd::unit(&user_with_account), Err(RenderError::AccountForUserService));
    assert_eq!(launchd::plist(&user_with_account), Err(RenderError::AccountForUserService));
    for bad in ["\u{FFFE}", "x\u{FFFF}"] {
        let description = ServiceSpec { description: bad.into(), ..minimal() };
        assert!(matches!(launchd::plist(&description), Err(RenderError::BadValue { .. })), "{bad:?}");
        let env_value = ServiceSpec { env: env(&[("A", bad)]), ..minimal() };
        assert!(matches!(launchd::plist(&env_value), Err(RenderError::BadValue { .. })), "{bad:?}");
    }
    let bad_name = ServiceSpec { name: "my app".into(), ..minimal() };
    assert!(matches!(systemd::unit(&bad_name), Err(RenderError::BadName { .. })));
}

#[test]
fn a_spec_from_a_config_takes_watchdog_stop_budget_and_folders_from_it() {
    let src = r#"
[supervisor]
watchdog = "20s"

[programs.db]
command = "db"
stop_timeout = "1m"

[programs.web]
command = "web"
depends_on = ["db"]
"#;
    let origin = crate::support::origin();
    let config = parse_str(src, &origin, &FakeEnv::new()).unwrap_or_else(|d| panic!("{d}"));
    let opts = ServiceOptions { name: "app".into(), exe: "/usr/bin/steward".into(), ..Default::default() };
    let spec = ServiceSpec::from_config(&config, opts);
    assert_eq!(spec.config, origin);
    assert_eq!(spec.working_dir, crate::support::dir());
    assert_eq!(spec.watchdog, Some(Duration::from_secs(20)));
    // web (10s default) stops before db (1m), plus the margin.
    assert_eq!(spec.stop_timeout, Duration::from_secs(70) + render::STOP_MARGIN);
    assert_eq!(spec.log_file, config.supervisor.log_dir.join("steward.log"));
    assert_eq!(spec.description, format!("steward: {}", origin.display()));
    assert!(!format!("{spec:?}").contains("debug"), "env values stay out of Debug");
}

fn wrap_minimal() -> WrapSpec {
    WrapSpec {
        name: "api".into(),
        command: vec!["/usr/local/bin/api-server".into(), "--port".into(), "8080".into()],
        cwd: "/srv/api".into(),
        state_dir: "/var/lib/steward/wrap/api".into(),
        ..WrapSpec::default()
    }
}

fn wrap_full() -> WrapSpec {
    WrapSpec {
        name: "worker.v2".into(),
        command: vec![
            "/opt/worker/bin/run".into(),
            "--greeting=say \"hi\"".into(),
            "${NOT_INTERPOLATED}".into(),
            "$HOME".into(),
            "back\\slash".into(),
        ],
        cwd: "/srv/my worker".into(),
        state_dir: "/home/ann/.local/share/steward/wrap/worker.v2".into(),
        env: env(&[("QUEUE", "jobs"), ("DSN", "postgres://u:p@db/${x}")]),
        restart: Some(RestartPolicy::Always),
        restart_delay: Some(Duration::from_millis(500)),
        restart_max_delay: Some(Duration::from_secs(90)),
        max_restarts: Some(20),
        stop_signal: Some(StopSignal::Int),
        stop_timeout: Some(Duration::from_secs(30)),
        ready: Some(Readiness::Notify),
        log_max_size: Some(10_000_000),
        log_keep: Some(3),
        log_rotate_every: Some(RotateEvery::Daily),
        log_compress: true,
    }
}

#[test]
fn wrap_configs_match_the_golden_files() {
    golden("wrap-minimal.toml", &config_toml(&wrap_minimal()));
    golden("wrap-full.toml", &config_toml(&wrap_full()));
}

#[test]
fn a_wrap_config_parses_back_to_what_was_asked() {
    for spec in [wrap_minimal(), wrap_full()] {
        let text = config_toml(&spec);
        let origin = spec.state_dir.join("steward.toml");
        // Interpolation sees no variables at all: nothing in the file may need one.
        let config = parse_str(&text, &origin, &FakeEnv::new()).unwrap_or_else(|d| panic!("{d}\n{text}"));
        assert_eq!(config.supervisor.state_dir, spec.state_dir);
        assert_eq!(config.programs.len(), 1);
        let p = &config.programs[&spec.name];
        assert_eq!(p.command, spec.command);
        assert_eq!(p.cwd, spec.cwd);
        assert_eq!(p.env, spec.env);
        assert_eq!(p.restart, spec.restart.unwrap_or_default());
        assert_eq!(p.stop_signal, spec.stop_signal.unwrap_or_default());
        if let Some(d) = spec.stop_timeout {
            assert_eq!(p.stop_timeout, d);
        }
        if let Some(d) = spec.restart_delay {
            assert_eq!(p.restart_delay, d);
        }
        if let Some(d) = spec.restart_max_delay {
            assert_eq!(p.restart_max_delay, d);
        }
        if let Some(n) = spec.max_restarts {
            assert_eq!(p.max_restarts, n);
        }
        assert_eq!(p.ready, spec.ready.unwrap_or_default());
        if let Some(n) = spec.log_max_size {
            assert_eq!(p.log.max_size, n);
        }
        if let Some(n) = spec.log_keep {
            assert_eq!(p.log.keep, n);
        }
        assert_eq!(p.log.rotate_every, spec.log_rotate_every);
        assert_eq!(p.log.compress, spec.log_compress);
    }
}

// ---------------------------------------------------------------------------------------
// systemd-analyze verify: systemd's own reading of the units.
// ---------------------------------------------------------------------------------------

/// `systemd-analyze`, if installed (Debian: package `systemd`; it works without systemd
/// running as PID 1).
fn systemd_analyze() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("systemd-analyze")).find(|p| p.is_file())
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let Some(analyze) = systemd_analyze() else {
        println!(
            "SKIPPED systemd_analyze_verify_accepts_the_units: `systemd-analyze` is not on PATH \
             (Debian/Ubuntu: apt-get install systemd); the units were only compared with the golden files"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // verify checks that ExecStart names an executable and that WorkingDirectory exists: point
    // them at this test binary and a real folder; everything else is as in the golden files.
    let exe = std::env::current_exe().unwrap();
    let work = tmp.path().join("my app");
    std::fs::create_dir_all(&work).unwrap();
    // A --user verify needs a runtime dir of its own for its private manager.
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for (label, spec) in specs() {
        let spec = ServiceSpec {
            exe: exe.clone(),
            config: work.join("steward.toml"),
            working_dir: work.clone(),
            // verify warns about a few well-known accounts ("nobody"); any other name is fine
            // and need not exist.
            ..spec
        };
        let unit_path = tmp.path().join(format!("{}.service", spec.name));
        let text = systemd::unit(&spec).unwrap();
        std::fs::write(&unit_path, &text).unwrap();
        let mut cmd = std::process::Command::new(&analyze);
        if spec.scope == Scope::User {
            cmd.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
        }
        let out = cmd.arg("verify").arg(&unit_path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Any complaint is a failure, even one verify only warns about (an unknown key, a
        // value it ignores): a unit systemd half-understands is a broken unit.
        assert!(
            out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
            "systemd-analyze verify on the {label} unit: {}\n{stdout}{stderr}\n--- unit ---\n{text}",
            out.status
        );
    }
}
