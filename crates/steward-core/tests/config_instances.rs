//! `instances`, `%{instance}`, `[sockets]` and `[update]`: what each instance's spec becomes,
//! and the mistakes reported at their place.

use crate::support::{parse, single_error, FakeEnv};
use std::time::Duration;
use steward_core::config::{scaled, ListenAddr, OnFailure, Strategy};

const WEB: &str = r#"
[programs.web]
command = ["./web", "--port=%{instance+8000}", "--name=w%{instance}"]
instances = 3
instance_env = "NODE_APP_INSTANCE"
env = { SLOT = "%{instance}", LITERAL = "%%{instance}" }

[programs.web.health]
http = "http://127.0.0.1:%{instance+9000}/healthz"

[programs.proxy]
command = ["./proxy"]
depends_on = ["web"]
"#;

#[test]
fn each_instance_gets_its_own_values() {
    let config = parse(WEB);
    let names: Vec<&str> = config.programs.keys().map(String::as_str).collect();
    assert_eq!(names, ["proxy", "web:0", "web:1", "web:2"]);
    let w2 = &config.programs["web:2"];
    assert_eq!(w2.instance, Some(2));
    assert_eq!(w2.group(), "web");
    assert_eq!(w2.file_stem(), "web.2");
    assert_eq!(w2.command, ["./web", "--port=8002", "--name=w2"]);
    assert_eq!(w2.env["SLOT"], "2");
    assert_eq!(w2.env["LITERAL"], "%{instance}");
    assert_eq!(w2.env["STEWARD_INSTANCE"], "2");
    assert_eq!(w2.env["NODE_APP_INSTANCE"], "2");
    let probe = format!("{:?}", w2.health.as_ref().unwrap().probe);
    assert!(probe.contains("port: 9002"), "{probe}");
    // Dependencies name the program: the supervisor expands them to its instances.
    assert_eq!(config.programs["proxy"].depends_on, ["web"]);
    assert_eq!(config.programs["proxy"].instance, None);
    let group = &config.groups["web"];
    assert_eq!(group.instances, Some(3));
    assert!(group.sockets.is_empty());
    assert!(group.rolls());
    assert!(!config.groups.contains_key("proxy"));
}

#[test]
fn scaling_parses_the_same_text_again() {
    let config = parse(WEB);
    let six = scaled(&config, "web", 6, &FakeEnv::new()).unwrap();
    assert_eq!(six.groups["web"].instances, Some(6));
    assert_eq!(six.programs["web:5"].command[1], "--port=8005");
    // The instances both have are the same, so a reload-style diff leaves them alone.
    for i in 0..3 {
        let name = format!("web:{i}");
        assert_eq!(six.programs[&name], config.programs[&name]);
    }
    let one = scaled(&config, "web", 1, &FakeEnv::new()).unwrap();
    assert_eq!(one.programs.keys().filter(|n| n.starts_with("web")).count(), 1);
}

#[test]
fn sockets_and_update() {
    let config = parse(
        r#"
[programs.api]
command = "./api"
[programs.api.sockets.http]
listen = "tcp://[::1]:8080"
backlog = 64
[programs.api.sockets.admin]
listen = "127.0.0.1:0"
[programs.api.sockets.local]
listen = "unix://run/api.sock"
[programs.api.update]
strategy = "rolling"
max_surge = 2
min_ready = "2s"
ready_timeout = "30s"
on_failure = "rollback"
"#,
    );
    let api = &config.groups["api"];
    assert_eq!(api.instances, None, "sockets alone: one process, named like the program");
    assert!(config.programs.contains_key("api"));
    let names: Vec<&str> = api.sockets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["admin", "http", "local"]);
    assert_eq!(api.sockets[1].listen, ListenAddr::Tcp("[::1]:8080".parse().unwrap()));
    assert_eq!(api.sockets[1].backlog, 64);
    assert_eq!(api.sockets[0].backlog, 1024);
    assert_eq!(api.sockets[2].listen, ListenAddr::Unix(crate::support::dir().join("run/api.sock")));
    assert_eq!(api.update.strategy, Strategy::Rolling);
    assert_eq!((api.update.max_surge, api.update.max_unavailable), (2, 0));
    assert_eq!(api.update.min_ready, Duration::from_secs(2));
    assert_eq!(api.update.ready_timeout, Duration::from_secs(30));
    assert_eq!(api.update.on_failure, OnFailure::Rollback);
}

/// steward passes sockets on Linux (as systemd does) and on Windows (the systemfd protocol);
/// a Unix socket cannot go to a Windows program, and other systems refuse sockets for now.
#[test]
fn sockets_are_passed_on_linux_and_windows() {
    use steward_core::config::{parse_str, OnPlatform, Platform};
    let config = |listen: &str| {
        format!("[programs.a]\ncommand = \"x\"\n[programs.a.sockets.http]\nlisten = \"{listen}\"\n")
    };
    let messages = |src: &str, platform| {
        let env = OnPlatform { env: FakeEnv::new(), platform };
        match parse_str(src, &crate::support::origin(), &env) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| (d.line, d.message.clone())).collect(),
        }
    };
    let (tcp, unix) = (config("tcp://127.0.0.1:0"), config("unix://run/a.sock"));
    assert_eq!(messages(&tcp, Platform::Linux), Vec::new());
    assert_eq!(messages(&unix, Platform::Linux), Vec::new());
    assert_eq!(messages(&tcp, Platform::Windows), Vec::new());
    assert_eq!(
        messages(&unix, Platform::Windows),
        [(4, "Unix sockets cannot be passed on Windows".to_owned())]
    );
    for platform in [Platform::MacOs, Platform::OtherUnix] {
        let errs = messages(&tcp, platform);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        let expected = format!("on Linux and Windows only, for now, not on {}", platform.name());
        assert!(errs[0].0 == 3 && errs[0].1.contains(&expected), "{errs:#?}");
    }
}

#[test]
fn mistakes_are_located() {
    let env = FakeEnv::new();
    single_error(
        "[programs.a]\ncommand = [\"x\", \"--n=%{instance}\"]\n",
        &env,
        2,
        22,
        "is the instance number of a program with `instances`",
    );
    single_error("[programs.a]\ncommand = \"x %{pid}\"\ninstances = 2\n", &env, 2, 14, "unknown `%{pid}`");
    single_error("[programs.a]\ncommand = \"x\"\ninstances = 0\n", &env, 3, 13, "must be 1 to 1024");
    let d = single_error(
        "[programs.a]\ncommand = \"x\"\ninstances = 3\n[programs.a.health]\ntcp = \"127.0.0.1:%{instance+65534}\"\n",
        &env,
        5,
        7,
        "(in instance 2, `%{instance}` = 2)",
    );
    assert!(d.message.contains("65536"), "{}", d.message);
    single_error(
        "[programs.a]\ncommand = \"x\"\ninstances = 2\n[programs.a.update]\nmax_surge = 0\n",
        &env,
        4,
        1,
        "`max_surge` and `max_unavailable` are both 0",
    );
    single_error(
        "[programs.a]\ncommand = \"x\"\n[programs.a.sockets.http]\nlisten = \"localhost:80\"\n",
        &env,
        4,
        10,
        "not `tcp://IP:PORT` or `unix://PATH`",
    );
    single_error(
        "[programs.a]\ncommand = \"x\"\n[programs.a.sockets.http]\nbacklog = 5\n",
        &env,
        3,
        21,
        "has no `listen`",
    );
    single_error(
        "[programs.a]\ncommand = \"x\"\ninstance_env = \"N\"\n",
        &env,
        1,
        11,
        "has `instance_env` but no `instances`",
    );
    single_error(
        "[programs.web]\ncommand = \"x\"\ninstances = 2\n[programs.\"web.1\"]\ncommand = \"y\"\n",
        &env,
        4,
        11,
        "would share its log files with instance web:1",
    );
}
