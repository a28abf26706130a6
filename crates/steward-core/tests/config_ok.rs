//! Valid config files resolve to the model: defaults, interpolation, env precedence, paths.

use crate::support::{dir, origin, parse, parse_with, FakeEnv};
use std::collections::BTreeMap;
use std::time::Duration;
use steward_core::config::{
    defaults, load, LogFormat, LogSpec, ProgramSpec, Readiness, RestartPolicy, RotateEvery, StopSignal,
    SupervisorSettings,
};

fn env_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// What a path written with a leading `/` resolves to: itself on Unix; on Windows, the same
/// folders on the config file's drive.
fn rooted(path: &str) -> std::path::PathBuf {
    dir().join(std::path::Path::new(path))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn defaults_are_filled_in() {
    let config = parse("[programs.web]\ncommand = [\"./web\"]\n");
    assert_eq!(config.source, origin());
    assert_eq!(
        config.supervisor,
        SupervisorSettings {
            state_dir: dir().join(".steward"),
            log_dir: dir().join(".steward").join("logs"),
            watchdog: None,
            watch_config: false,
        }
    );
    let expected = ProgramSpec {
        name: "web".into(),
        instance: None,
        command: strings(&["./web"]),
        cwd: dir(),
        env: BTreeMap::new(),
        autostart: true,
        restart: RestartPolicy::OnFailure,
        success_exit_codes: vec![0],
        restart_delay: Duration::from_millis(100),
        restart_max_delay: Duration::from_secs(30),
        stable_after: Duration::from_secs(10),
        max_restarts: 10,
        restart_window: Duration::from_secs(60),
        stop_signal: StopSignal::Term,
        stop_timeout: Duration::from_secs(10),
        depends_on: vec![],
        ready: Readiness::Up,
        log: LogSpec {
            max_size: 50_000_000,
            rotate_every: None,
            keep: 10,
            compress: false,
            format: LogFormat::Plain,
            multiline: None,
        },
        health: None,
        max_memory: None,
        memory_grace: Duration::from_secs(30),
        hard_memory_limit: false,
        release: None,
    };
    assert_eq!(config.programs.len(), 1);
    assert_eq!(*config.programs["web"], expected);
    // The defaults module agrees with the literal values above.
    assert_eq!(expected.restart_delay, defaults::RESTART_DELAY);
    assert_eq!(expected.restart_window, defaults::RESTART_WINDOW);
}

#[test]
fn an_empty_file_is_a_config_without_programs() {
    let config = parse("");
    assert!(config.programs.is_empty());
    assert_eq!(config.supervisor.log_dir, dir().join(".steward").join("logs"));
}

#[test]
fn full_example_with_every_key() {
    let src = r#"
[supervisor]
state_dir = "/var/lib/steward"
log_dir = "/var/log/steward"
watchdog = "30s"

[programs.db]
command = ["postgres", "-D", "data"]

[programs.web]
command = ["python3", "app.py", "--port", "8080"]
cwd = "web"
env = { RUST_LOG = "info", PORT = "8080" }
env_file = "web.env"
autostart = false
restart = "always"
success_exit_codes = [0, 2]
restart_delay = "500ms"
restart_max_delay = "1m"
stable_after = "30s"
max_restarts = 5
restart_window = "5m"
stop_signal = "SIGINT"
stop_timeout = "1h30m"
depends_on = ["db"]
ready = "notify"

[programs.web.log]
max_size = "1GiB"
rotate_every = "daily"
keep = 3
compress = true
"#;
    let env = FakeEnv::new().file(dir().join("web.env"), "SECRET=s3cr3t\n");
    let config = parse_with(src, &env).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.supervisor.state_dir, rooted("/var/lib/steward"));
    assert_eq!(config.supervisor.log_dir, rooted("/var/log/steward"));
    assert_eq!(config.supervisor.watchdog, Some(Duration::from_secs(30)));
    let web = &config.programs["web"];
    let expected = ProgramSpec {
        name: "web".into(),
        instance: None,
        command: strings(&["python3", "app.py", "--port", "8080"]),
        cwd: dir().join("web"),
        env: env_map(&[("PORT", "8080"), ("RUST_LOG", "info"), ("SECRET", "s3cr3t")]),
        autostart: false,
        restart: RestartPolicy::Always,
        success_exit_codes: vec![0, 2],
        restart_delay: Duration::from_millis(500),
        restart_max_delay: Duration::from_secs(60),
        stable_after: Duration::from_secs(30),
        max_restarts: 5,
        restart_window: Duration::from_secs(300),
        stop_signal: StopSignal::Int,
        stop_timeout: Duration::from_secs(5400),
        depends_on: strings(&["db"]),
        ready: Readiness::Notify,
        log: LogSpec {
            max_size: 1 << 30,
            rotate_every: Some(RotateEvery::Daily),
            keep: 3,
            compress: true,
            format: LogFormat::Plain,
            multiline: None,
        },
        health: None,
        max_memory: None,
        memory_grace: Duration::from_secs(30),
        hard_memory_limit: false,
        release: None,
    };
    assert_eq!(**web, expected);
    assert_eq!(config.programs["db"].command, strings(&["postgres", "-D", "data"]));
}

#[test]
fn windows_stop_signals_and_sizes_in_bytes() {
    let src = "[programs.w]\ncommand = \"w\"\nstop_signal = \"ctrl-break\"\nlog = { max_size = 4096 }\n";
    let w = &parse(src).programs["w"];
    assert_eq!(w.stop_signal, StopSignal::CtrlBreak);
    assert_eq!(w.log.max_size, 4096);
    let src = "[programs.w]\ncommand = \"w\"\nlog = { max_size = \"50MB\" }\n";
    assert_eq!(parse(src).programs["w"].log.max_size, 50_000_000);
}

#[test]
fn interpolation_with_defaults_everywhere() {
    let src = r#"
[supervisor]
state_dir = "${STATE:-/var/lib/steward}"

[programs.api]
command = ["${PYTHON:-python3}", "-m", "api", "--port=${PORT}"]
cwd = "${APP_HOME}/api"
env = { DATABASE_URL = "${DATABASE_URL:-postgres://localhost/dev}", EMPTY = "${EMPTY:-fallback}" }
restart = "${RESTART_POLICY:-always}"
stop_timeout = "${STOP_TIMEOUT:-${DEFAULT_TIMEOUT:-20s}}"
depends_on = ["${DB_PROGRAM:-db}"]

[programs.db]
command = "postgres"
"#;
    let env = FakeEnv::new().var("PORT", "9000").var("APP_HOME", "/opt/app").var("EMPTY", "");
    let config = parse_with(src, &env).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.supervisor.state_dir, rooted("/var/lib/steward"));
    let api = &config.programs["api"];
    assert_eq!(api.command, strings(&["python3", "-m", "api", "--port=9000"]));
    assert_eq!(api.cwd, rooted("/opt/app/api"));
    assert_eq!(api.env, env_map(&[("DATABASE_URL", "postgres://localhost/dev"), ("EMPTY", "fallback")]));
    assert_eq!(api.restart, RestartPolicy::Always);
    assert_eq!(api.stop_timeout, Duration::from_secs(20));
    assert_eq!(api.depends_on, strings(&["db"]));
}

#[test]
fn literal_dollars_and_shell_variables_survive() {
    let src = r#"
[programs.sh]
command = "sh -c 'echo $HOME costs $$5 and $${NOT_EXPANDED}'"
env = { PRICE = "$$10", RAW = "$PATH:/extra" }
"#;
    let sh = &parse(src).programs["sh"];
    assert_eq!(sh.command, strings(&["sh", "-c", "echo $HOME costs $5 and ${NOT_EXPANDED}"]));
    assert_eq!(sh.env, env_map(&[("PRICE", "$10"), ("RAW", "$PATH:/extra")]));
}

#[test]
fn env_beats_env_file() {
    let src = "[programs.web]\ncommand = \"web\"\nenv_file = \"web.env\"\nenv = { MODE = \"from-env\" }\n";
    let env_file = "# comment\nMODE=from-file\nONLY_IN_FILE=\"quoted value\"\nexport EXPORTED=yes\n";
    let env = FakeEnv::new().file(dir().join("web.env"), env_file);
    let config = parse_with(src, &env).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        config.programs["web"].env,
        env_map(&[("EXPORTED", "yes"), ("MODE", "from-env"), ("ONLY_IN_FILE", "quoted value")])
    );
}

#[test]
fn relative_paths_are_resolved_from_the_config_folder() {
    let src = r#"
[supervisor]
state_dir = "run/state"
log_dir = "../logs"

[programs.web]
command = "./bin/web"
cwd = "services/web"
env_file = "conf/web.env"
"#;
    let env = FakeEnv::new().file(dir().join("conf").join("web.env"), "A=1\n");
    let config = parse_with(src, &env).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.supervisor.state_dir, dir().join("run/state"));
    assert_eq!(config.supervisor.log_dir, dir().join("../logs"));
    let web = &config.programs["web"];
    assert_eq!(web.cwd, dir().join("services/web"));
    assert!(web.cwd.is_absolute());
    assert_eq!(web.env, env_map(&[("A", "1")]));
    // command[0] is left alone: the runtime looks it up.
    assert_eq!(web.command, strings(&["./bin/web"]));
}

#[test]
fn log_dir_defaults_inside_a_custom_state_dir() {
    let config = parse("[supervisor]\nstate_dir = \"st\"\n");
    assert_eq!(config.supervisor.log_dir, dir().join("st").join("logs"));
}

#[test]
fn absolute_paths_are_kept() {
    let abs = if cfg!(windows) { r"D:\data\web" } else { "/data/web" };
    let src = format!("[programs.web]\ncommand = \"web\"\ncwd = '{abs}'\n");
    assert_eq!(parse(&src).programs["web"].cwd, std::path::PathBuf::from(abs));
}

#[test]
fn string_command_is_split_like_a_shell() {
    let src = r#"
[programs.a]
command = "python3 -m http.server 'my dir' \"a b\" c\\ d"
"#;
    assert_eq!(
        parse(src).programs["a"].command,
        strings(&["python3", "-m", "http.server", "my dir", "a b", "c d"])
    );
}

#[test]
fn dependencies_are_deduplicated_in_order() {
    let src = "[programs.a]\ncommand = \"a\"\n[programs.b]\ncommand = \"b\"\n\
               [programs.c]\ncommand = \"c\"\ndepends_on = [\"b\", \"a\", \"b\"]\n";
    assert_eq!(parse(src).programs["c"].depends_on, strings(&["b", "a"]));
}

#[test]
fn other_toml_spellings_are_equivalent() {
    let dotted = "programs.web.command = \"web\"\nprograms.web.log.keep = 2\n";
    let tables = "[programs.web]\ncommand = \"web\"\n[programs.web.log]\nkeep = 2\n";
    assert_eq!(parse(dotted), parse(tables));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let src = "[programs.web]\ncommand = \"web\"\nenv = { TOKEN = \"hunter2\" }\n";
    let shown = format!("{:?}", parse(src));
    assert!(shown.contains("TOKEN"));
    assert!(!shown.contains("hunter2"));
}

#[test]
fn load_reads_a_real_file_and_resolves_from_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steward.toml");
    std::fs::write(dir.path().join("app.env"), "FROM_FILE=1\n").unwrap();
    std::fs::write(
        &path,
        "\u{feff}[programs.web]\ncommand = \"web\"\ncwd = \"app\"\nenv_file = \"app.env\"\n",
    )
    .unwrap();
    let config = load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.source, path);
    let web = &config.programs["web"];
    assert_eq!(web.cwd, dir.path().join("app"));
    assert_eq!(web.env, env_map(&[("FROM_FILE", "1")]));
    assert_eq!(config.supervisor.state_dir, dir.path().join(".steward"));
}

/// Every ```toml block of the config reference (and of the deploy guide) must be a valid
/// config on its own.
#[test]
fn examples_in_the_docs_parse() {
    examples_in("config.md", 3);
    examples_in("deploy.md", 1);
}

fn examples_in(doc: &str, at_least: usize) {
    let doc_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(doc);
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= at_least, "expected examples in {}", doc_path.display());
    // The examples use these variables and env files.
    let env = FakeEnv::new()
        .var("DATABASE_URL", "postgres://db/prod")
        .var("PORT", "8080")
        .file(dir().join(".env"), "A=1\n")
        .file(dir().join("web.env"), "A=1\n")
        .file(dir().join("worker.env"), "A=1\n")
        .file(dir().join("tls/cert.pem"), "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
        .file(dir().join("tls/key.pem"), "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
        .file(dir().join("tokens/ci.token"), "0123456789abcdef0123456789abcdef\n");
    for block in blocks {
        if let Err(d) = parse_with(&block, &env) {
            panic!("example in {} does not parse:\n{block}\n{d}", doc_path.display());
        }
    }
}
