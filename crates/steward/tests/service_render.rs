//! steward's own service, as the `steward-service` library renders it: the unit, plist and
//! SCM settings `steward service install` writes, against golden files in `tests/golden/`
//! (the library tests its renderers with its own; these pin what steward asks of it). The
//! units are checked by `systemd-analyze verify` where it is installed, and the plists read
//! back by a plist parser.
//!
//! After a deliberate change, rewrite the golden files with
//! `UPDATE_GOLDEN=1 cargo test -p steward --test integration service_render` and review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use steward::service::spec::{ServiceOptions, StewardService, WindowsOptions};
use steward_core::config::parse::{parse_str, EmptyEnv};
use steward_core::render::STOP_MARGIN;
use steward_service::manage::render::render as render_text;
use steward_service::manage::{Error, Platform, Scope, StartType};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `name`, or rewrites it when UPDATE_GOLDEN=1.
#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
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

fn render(steward: &StewardService, platform: Platform) -> Result<String, Error> {
    render_text(platform, &steward.spec(platform)?)
}

/// The smallest service: a system unit with every optional part left out.
fn minimal() -> StewardService {
    StewardService {
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
fn full() -> StewardService {
    StewardService {
        name: "com.example.api".into(),
        description: "API & workers at 100% <prod>".into(),
        exe: "/opt/steward/bin/steward".into(),
        config: "/srv/my app/steward.toml".into(),
        account: Some("svc-api".into()),
        working_dir: "/srv/my app".into(),
        env: env(&[("STEWARD_LOG", "debug"), ("GREETING", "say \"hi\" to $USER at 50%")]),
        watchdog: Some(Duration::from_secs(30)),
        stop_timeout: Duration::from_millis(45_500),
        log_file: "/var/log/steward/steward.log".into(),
        ..minimal()
    }
}

/// A per-user service.
fn user() -> StewardService {
    StewardService {
        name: "dev-stack".into(),
        description: "steward: /home/ann/dev/steward.toml".into(),
        exe: "/home/ann/.cargo/bin/steward".into(),
        config: "/home/ann/dev/steward.toml".into(),
        scope: Scope::User,
        working_dir: "/home/ann/dev".into(),
        env: env(&[("RUST_BACKTRACE", "1")]),
        watchdog: Some(Duration::from_millis(1500)),
        stop_timeout: Duration::from_secs(35),
        log_file: "/home/ann/dev/.steward/logs/steward.log".into(),
        ..minimal()
    }
}

fn services() -> [(&'static str, StewardService); 3] {
    [("minimal", minimal()), ("full", full()), ("user", user())]
}

#[test]
fn systemd_units_match_the_golden_files() {
    for (name, steward) in services() {
        golden(&format!("systemd-{name}.service"), &render(&steward, Platform::Systemd).unwrap());
    }
}

#[test]
fn launchd_plists_match_the_golden_files_and_parse_back() {
    for (name, steward) in services() {
        let text = render(&steward, Platform::Launchd).unwrap();
        golden(&format!("launchd-{name}.plist"), &text);
        let plist = plist::Value::from_reader_xml(text.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"))
            .into_dictionary()
            .unwrap();
        let args: Vec<&str> = plist["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(plist::Value::as_string)
            .collect();
        assert_eq!(args, [steward.exe.to_str().unwrap(), "run", "-c", steward.config.to_str().unwrap()]);
        assert_eq!(plist["StandardErrorPath"].as_string(), steward.log_file.to_str());
        // launchd has no watchdog: steward's is left out rather than refused.
        assert!(!text.contains("atchdog"), "{text}");
    }
}

/// A Windows service with nothing optional set.
fn windows_minimal() -> StewardService {
    StewardService {
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
fn windows_full() -> StewardService {
    StewardService {
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
    for (name, steward) in [("minimal", windows_minimal()), ("full", windows_full())] {
        golden(&format!("windows-{name}.txt"), &render(&steward, Platform::Windows).unwrap());
    }
}

#[test]
fn windows_settings_are_what_install_sends() {
    use steward_service::manage::render::windows::settings;
    let s = settings(&windows_full().spec(Platform::Windows).unwrap()).unwrap();
    assert_eq!(
        s.command_line,
        r#""C:\Program Files\steward\steward.exe" service host --name api -c "D:\srv\my app\steward.toml" --env "GREETING=say \"hi\" to C:\dir\ at 50%" --env STEWARD_LOG=debug"#
    );
    assert_eq!((s.start.raw(), s.start.delayed()), (2, true));
    assert_eq!(s.account.start_name().as_deref(), Some(r"CORP\svc-api"));
    assert_eq!(s.preshutdown_timeout_ms(), Some(45_500));
    let fa = s.failure_actions.as_ref().unwrap();
    assert_eq!(fa.sc_actions(), [(1, 5_000), (1, 10_000), (1, 30_000)]);
    assert_eq!((fa.reset_period_secs(), fa.on_non_crash_failures), (86_400, true));
    // steward's variables travel on its command line (`service host` applies them), and its
    // working directory is the host's business: neither goes to the registry.
    assert!(s.environment.is_empty() && s.working_dir.is_none());
    let m = settings(&windows_minimal().spec(Platform::Windows).unwrap()).unwrap();
    assert_eq!(
        m.command_line,
        r#""C:\Program Files\steward\steward.exe" service host --name steward -c C:\ProgramData\steward\steward.toml"#
    );
    assert_eq!((m.start.raw(), m.start.delayed(), m.account.start_name()), (2, false, None));
}

#[test]
fn what_a_manager_cannot_honour_is_refused() {
    let per_user = StewardService { scope: Scope::User, ..windows_minimal() };
    let err = render(&per_user, Platform::Windows).unwrap_err().to_string();
    assert!(err.contains("Windows services belong to the machine"), "{err}");
    let no_password = StewardService { account: Some("svc".into()), ..windows_minimal() };
    let err = render(&no_password, Platform::Windows).unwrap_err().to_string();
    assert!(err.contains("password file"), "{err}");
    let user_with_account = StewardService { account: Some("bob".into()), ..user() };
    for platform in [Platform::Systemd, Platform::Launchd] {
        let err = render(&user_with_account, platform).unwrap_err().to_string();
        assert!(err.contains("cannot honour account"), "{err}");
    }
    let bad_env = StewardService { env: env(&[("A-B", "x")]), ..minimal() };
    for platform in [Platform::Systemd, Platform::Launchd, Platform::Windows] {
        assert!(matches!(render(&bad_env, platform), Err(Error::Invalid { .. })), "{platform}");
    }
}

#[test]
fn a_service_from_a_config_takes_watchdog_stop_budget_and_folders_from_it() {
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
    let origin = Path::new("/srv/app/steward.toml");
    let config = parse_str(src, origin, &EmptyEnv).unwrap_or_else(|d| panic!("{d}"));
    let opts = ServiceOptions { name: "app".into(), exe: "/usr/bin/steward".into(), ..Default::default() };
    let steward = StewardService::from_config(&config, opts);
    assert_eq!(steward.config, origin);
    assert_eq!(steward.working_dir, Path::new("/srv/app"));
    assert_eq!(steward.watchdog, Some(Duration::from_secs(20)));
    // web (10s default) stops before db (1m), plus the margin.
    assert_eq!(steward.stop_timeout, Duration::from_secs(70) + STOP_MARGIN);
    assert_eq!(steward.log_file, config.supervisor.log_dir.join("steward.log"));
    assert_eq!(steward.description, "steward: /srv/app/steward.toml");
    let with_env = StewardService { env: env(&[("TOKEN", "hunter2")]), ..steward };
    assert!(!format!("{with_env:?}").contains("hunter2"), "env values stay out of Debug");
}

/// `systemd-analyze`, if installed (Debian: package `systemd`).
fn systemd_analyze() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("systemd-analyze")).find(|p| p.is_file())
}

#[cfg(unix)]
#[test]
fn systemd_analyze_verify_accepts_stewards_units() {
    let Some(analyze) = systemd_analyze() else {
        println!(
            "SKIPPED systemd_analyze_verify_accepts_stewards_units: `systemd-analyze` is not on PATH \
             (Debian/Ubuntu: apt-get install systemd); the units were only compared with the golden files"
        );
        return;
    };
    let tmp = testkit::tempfile::tempdir().unwrap();
    // verify checks that ExecStart names an executable and that WorkingDirectory exists.
    let exe = std::env::current_exe().unwrap();
    let work = tmp.path().join("my app");
    std::fs::create_dir_all(&work).unwrap();
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for (label, steward) in services() {
        let steward = StewardService {
            exe: exe.clone(),
            config: work.join("steward.toml"),
            working_dir: work.clone(),
            ..steward
        };
        let unit_path = tmp.path().join(format!("{}.service", steward.name));
        let text = render(&steward, Platform::Systemd).unwrap();
        std::fs::write(&unit_path, &text).unwrap();
        let mut cmd = std::process::Command::new(&analyze);
        if steward.scope == Scope::User {
            cmd.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
        }
        let out = cmd.arg("verify").arg(&unit_path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
            "systemd-analyze verify on the {label} unit: {}\n{stdout}{stderr}\n--- unit ---\n{text}",
            out.status
        );
    }
}
