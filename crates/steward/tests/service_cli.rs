//! `steward service` and `steward wrap` through the real binary.
//!
//! What runs here: `service render` for every init system; `service install`/`uninstall` and
//! `wrap install`/`uninstall` into an offline image with `--root`, which drives the real
//! `systemctl --root` (it needs no running systemd); and the error path of an install
//! against a machine without systemd.
//!
//! What does not run here, and why: install, start, stop and status against a live systemd
//! (`systemctl daemon-reload`, `enable`, `start`) need systemd as PID 1 and change the
//! machine, and launchctl needs macOS. Those are not faked: the tests that would need them
//! do not exist, and docs/services.md says what to check by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use steward::service::spec::{ServiceOptions, StewardService, WindowsOptions};
use steward_core::config;
use steward_core::render;
use steward_service::manage::render::render as render_text;
use steward_service::manage::{Platform, Scope, StartType};

fn steward(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .current_dir(dir)
        .env_remove("STEWARD_CONFIG")
        .output()
        .expect("run steward")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}\n{}{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

const CONFIG: &str = r#"
[supervisor]
watchdog = "30s"

[programs.db]
command = ["postgres"]
stop_timeout = "20s"

[programs.web]
command = ["./web"]
depends_on = ["db"]
"#;

fn config_dir() -> testkit::tempfile::TempDir {
    let dir = testkit::tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("steward.toml"), CONFIG).unwrap();
    dir
}

#[test]
fn render_prints_what_the_library_renders_for_the_absolute_config() {
    let dir = config_dir();
    // A relative -c: the unit must name the file absolutely (services start elsewhere).
    let args = [
        "service",
        "render",
        "--init",
        "systemd",
        "-c",
        "steward.toml",
        "--name",
        "app",
        "--exe",
        "/usr/bin/steward",
        "--account",
        "svc",
        "--env",
        "STEWARD_LOG=debug",
    ];
    let unit = ok(&steward(dir.path(), &args));
    let config_path = dir.path().join("steward.toml");
    let config = config::load(&config_path).unwrap();
    let service = StewardService::from_config(
        &config,
        ServiceOptions {
            name: "app".into(),
            exe: "/usr/bin/steward".into(),
            account: Some("svc".into()),
            env: [("STEWARD_LOG".to_owned(), "debug".to_owned())].into(),
            ..ServiceOptions::default()
        },
    );
    assert_eq!(unit, render_text(Platform::Systemd, &service.spec(Platform::Systemd).unwrap()).unwrap());
    assert!(
        unit.contains(&format!("ExecStart=/usr/bin/steward run -c {}\n", config_path.display())),
        "{unit}"
    );
    assert!(unit.contains("WatchdogSec=30s\n"), "{unit}");
    // web (10s) then db (20s) stop one after the other, plus the margin.
    assert!(unit.contains("TimeoutStopSec=35s\n"), "{unit}");
    assert!(unit.contains("User=svc\n") && unit.contains("Environment=\"STEWARD_LOG=debug\"\n"), "{unit}");

    let args = [
        "service",
        "render",
        "--init",
        "launchd",
        "-c",
        "steward.toml",
        "--user",
        "--exe",
        "/usr/local/bin/steward",
    ];
    let plist = ok(&steward(dir.path(), &args));
    let service = StewardService::from_config(
        &config,
        ServiceOptions {
            name: render::DEFAULT_NAME.into(),
            exe: "/usr/local/bin/steward".into(),
            scope: Scope::User,
            ..ServiceOptions::default()
        },
    );
    assert_eq!(plist, render_text(Platform::Launchd, &service.spec(Platform::Launchd).unwrap()).unwrap());
    assert!(plist.contains("<key>ExitTimeOut</key>\n\t<integer>35</integer>"), "{plist}");
}

#[test]
fn render_for_windows_prints_the_scm_settings() {
    let dir = config_dir();
    let args = [
        "service",
        "render",
        "--init",
        "windows",
        "-c",
        "steward.toml",
        "--name",
        "app",
        "--exe",
        "/opt/steward/steward.exe",
        "--display-name",
        "The App",
        "--start",
        "delayed",
        "--depends-on",
        "Tcpip",
        "Dnscache",
    ];
    let settings = ok(&steward(dir.path(), &args));
    let config = config::load(&dir.path().join("steward.toml")).unwrap();
    let service = StewardService::from_config(
        &config,
        ServiceOptions {
            name: "app".into(),
            exe: "/opt/steward/steward.exe".into(),
            windows: WindowsOptions {
                display_name: Some("The App".into()),
                start: StartType::Delayed,
                depends_on: vec!["Tcpip".into(), "Dnscache".into()],
                password_file: None,
            },
            ..ServiceOptions::default()
        },
    );
    assert_eq!(settings, render_text(Platform::Windows, &service.spec(Platform::Windows).unwrap()).unwrap());
    assert!(settings.contains("service host --name app -c "), "{settings}");
    assert!(settings.contains("preshutdown timeout: 35s\n"), "{settings}");

    // The Windows options mean nothing to systemd or launchd, and a user service nothing to
    // the SCM.
    let out = steward(
        dir.path(),
        &["service", "render", "--init", "systemd", "-c", "steward.toml", "--start", "manual"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("for Windows services only"), "{}", text(&out.stderr));
    let out =
        steward(dir.path(), &["service", "render", "--init", "windows", "-c", "steward.toml", "--user"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Windows services belong to the machine"), "{}", text(&out.stderr));
}

#[test]
fn render_refuses_an_invalid_config_and_a_bad_name() {
    let dir = testkit::tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("steward.toml"), "[programs.web]\ncomand = \"x\"\n").unwrap();
    let out = steward(dir.path(), &["service", "render", "--init", "systemd", "-c", "steward.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).is_empty());
    assert!(text(&out.stderr).contains("did you mean `command`?"), "{}", text(&out.stderr));

    let dir = config_dir();
    let out = steward(dir.path(), &["service", "render", "-c", "steward.toml", "--name", "my app"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("invalid service name `my app`"), "{}", text(&out.stderr));
}

/// `systemctl`, when installed (Debian: package `systemd`).
fn systemctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("systemctl")).find(|p| p.is_file())
}

macro_rules! require_systemctl {
    ($test:literal) => {
        if systemctl().is_none() {
            println!(
                "SKIPPED {}: `systemctl` is not installed (Debian/Ubuntu: apt-get install systemd); \
                 installing into an offline image with `systemctl --root` was not exercised",
                $test
            );
            return;
        }
    };
}

#[test]
fn install_and_uninstall_into_an_offline_image() {
    require_systemctl!("install_and_uninstall_into_an_offline_image");
    let image = testkit::tempfile::tempdir().unwrap();
    let root = image.path();
    std::fs::create_dir_all(root.join("etc/steward")).unwrap();
    std::fs::write(root.join("etc/steward/steward.toml"), CONFIG).unwrap();
    let root_arg = root.to_str().unwrap();
    let unit_args = ["-c", "/etc/steward/steward.toml", "--name", "app", "--exe", "/usr/bin/steward"];

    let mut install = vec!["service", "install", "--root", root_arg];
    install.extend(unit_args);
    let out = ok(&steward(root, &install));
    assert!(out.contains("enabled in the image"), "{out}");

    // The file is exactly what render prints for the same options.
    let mut render_args = vec!["service", "render", "--init", "systemd", "--root", root_arg];
    render_args.extend(unit_args);
    let rendered = ok(&steward(root, &render_args));
    let unit_file = root.join("etc/systemd/system/app.service");
    assert_eq!(std::fs::read_to_string(&unit_file).unwrap(), rendered);
    assert!(rendered.contains("ExecStart=/usr/bin/steward run -c /etc/steward/steward.toml\n"), "{rendered}");
    // Enabled: systemctl linked it into the target named by WantedBy.
    let link = root.join("etc/systemd/system/multi-user.target.wants/app.service");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc/systemd/system/app.service"));

    ok(&steward(root, &["service", "uninstall", "--root", root_arg, "--name", "app"]));
    assert!(!unit_file.exists() && std::fs::symlink_metadata(&link).is_err());
    // Once more: it is gone, and the message says where it looked.
    let out = steward(root, &["service", "uninstall", "--root", root_arg, "--name", "app"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("service `app` is not installed"), "{}", text(&out.stderr));
}

#[test]
fn wrap_install_generates_a_config_and_a_unit_in_an_offline_image() {
    require_systemctl!("wrap_install_generates_a_config_and_a_unit_in_an_offline_image");
    let image = testkit::tempfile::tempdir().unwrap();
    let root = image.path();
    let root_arg = root.to_str().unwrap();
    let args = [
        "wrap",
        "install",
        "api",
        "--root",
        root_arg,
        "--exe",
        "/usr/bin/steward",
        "--cwd",
        "/srv/api",
        "--restart",
        "always",
        "--stop-signal",
        "INT",
        "--stop-timeout",
        "30s",
        "--env",
        "PORT=8080",
        "--log-max-size",
        "10MB",
        "--",
        "/usr/local/bin/api-server",
        "--greeting",
        "${not a variable}",
    ];
    ok(&steward(root, &args));

    let config_file = root.join("var/lib/steward/wrap/api/steward.toml");
    let text = std::fs::read_to_string(&config_file).unwrap();
    let config =
        config::parse_str(&text, Path::new("/var/lib/steward/wrap/api/steward.toml"), &config::parse::OsEnv)
            .unwrap_or_else(|d| panic!("{d}\n{text}"));
    let api = &config.programs["api"];
    assert_eq!(api.command, ["/usr/local/bin/api-server", "--greeting", "${not a variable}"]);
    assert_eq!(api.cwd, Path::new("/srv/api"));
    assert_eq!(api.env["PORT"], "8080");
    assert_eq!(api.restart, config::RestartPolicy::Always);
    assert_eq!(api.stop_signal, config::StopSignal::Int);
    assert_eq!(api.stop_timeout, std::time::Duration::from_secs(30));
    assert_eq!(api.log.max_size, 10_000_000);
    assert_eq!(config.supervisor.state_dir, Path::new("/var/lib/steward/wrap/api"));

    let unit = std::fs::read_to_string(root.join("etc/systemd/system/api.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/steward run -c /var/lib/steward/wrap/api/steward.toml\n"),
        "{unit}"
    );
    // The stop budget comes from the wrapped program's stop_timeout.
    assert!(unit.contains("TimeoutStopSec=35s\n"), "{unit}");
    assert!(root.join("etc/systemd/system/multi-user.target.wants/api.service").symlink_metadata().is_ok());

    let out = ok(&steward(root, &["wrap", "uninstall", "api", "--root", root_arg]));
    assert!(out.contains("removed"), "{out}");
    assert!(!root.join("var/lib/steward/wrap/api").exists());
    assert!(!root.join("etc/systemd/system/api.service").exists());
}

#[test]
fn wrap_install_refuses_a_program_it_cannot_find() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let out = steward(dir.path(), &["wrap", "install", "--user", "x", "--", "no-such-program-anywhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`no-such-program-anywhere` was not found on PATH"),
        "{}",
        text(&out.stderr)
    );
    let out = steward(dir.path(), &["wrap", "install", "x"]);
    assert_eq!(out.status.code(), Some(2), "PROGRAM is required");
}

/// Whether systemd runs this machine (PID 1).
fn systemd_is_pid1() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
}

#[test]
fn a_failed_install_shows_systemctl_verbatim_and_leaves_no_unit() {
    require_systemctl!("a_failed_install_shows_systemctl_verbatim_and_leaves_no_unit");
    if systemd_is_pid1() {
        println!(
            "SKIPPED a_failed_install_shows_systemctl_verbatim_and_leaves_no_unit: systemd runs this machine, \
             so a --user install might succeed; this test checks the error path only"
        );
        return;
    }
    let dir = config_dir();
    let home = dir.path().join("home");
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["service", "install", "--user", "-c", "steward.toml", "--name", "dev"])
        .current_dir(dir.path())
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("error: `systemctl --user daemon-reload` failed"), "{err}");
    assert!(err.contains("Failed to connect to bus"), "systemctl's own words, verbatim: {err}");
    assert!(err.contains("\nhint: "), "{err}");
    assert!(!home.join(".config/systemd/user/dev.service").exists(), "a failed install left its unit behind");
}
