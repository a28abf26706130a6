//! `[programs.NAME.health]`, the memory keys, `[metrics]` and `[[alerts]]`: what they parse
//! to, and every mistake at its line:col.

use std::time::Duration;

use crate::support::{errors, hint, parse, single_error, FakeEnv};
use steward_core::alerts::Condition;
use steward_core::config::{HealthSpec, HttpUrl, MetricsSettings, OnUnhealthy, Probe};
use steward_core::fsm::State;

fn none() -> FakeEnv {
    FakeEnv::new()
}

#[test]
fn health_checks_of_each_kind_with_defaults() {
    let config = parse(
        r#"
[programs.web]
command = "web"
[programs.web.health]
http = "http://127.0.0.1:8080/healthz?deep=1"
expect_status = [200, 204]
interval = "2s"
timeout = "1s"
retries = 5
start_period = "30s"
on_unhealthy = "restart"

[programs.db]
command = "db"
health = { tcp = "[::1]:5432" }

[programs.cache]
command = "cache"
health = { exec = "redis-cli ping" }
"#,
    );
    assert_eq!(
        config.programs["web"].health.as_deref(),
        Some(&HealthSpec {
            probe: Probe::Http {
                url: HttpUrl { host: "127.0.0.1".into(), port: 8080, path: "/healthz?deep=1".into() },
                expect_status: vec![200, 204],
            },
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            retries: 5,
            start_period: Duration::from_secs(30),
            on_unhealthy: OnUnhealthy::Restart,
        })
    );
    let db = config.programs["db"].health.clone().unwrap();
    assert_eq!(db.probe, Probe::Tcp { host: "::1".into(), port: 5432 });
    assert_eq!(
        (db.interval, db.timeout, db.retries, db.start_period, db.on_unhealthy),
        (Duration::from_secs(10), Duration::from_secs(5), 3, Duration::ZERO, OnUnhealthy::None)
    );
    let cache = config.programs["cache"].health.clone().unwrap();
    assert_eq!(cache.probe, Probe::Exec { command: vec!["redis-cli".into(), "ping".into()] });
}

#[test]
fn urls() {
    let ok = [
        ("http://localhost", "localhost", 80, "/"),
        ("http://10.0.0.1:81/a/b", "10.0.0.1", 81, "/a/b"),
        ("HTTP://[::1]:9000?x=1", "::1", 9000, "/?x=1"),
    ];
    for (text, host, port, path) in ok {
        let url = HttpUrl::parse(text).unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path.as_str()), (host, port, path), "{text}");
    }
    assert_eq!(HttpUrl::parse("http://[::1]:9000/x").unwrap().to_string(), "http://[::1]:9000/x");
    for (bad, why) in [
        ("https://example.com", "https is not supported"),
        ("ftp://x", "must start with `http://`"),
        ("http://:80/", "host is missing"),
        ("http://x:0/", "not a port number"),
        ("http://x:99999/", "not a port number"),
        ("http://u:p@x/", "passwords"),
        ("http://x/a b", "spaces"),
    ] {
        let e = HttpUrl::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn health_mistakes() {
    let src = "[programs.web]\ncommand = \"x\"\n[programs.web.health]\ninterval = \"1s\"\n";
    let d = single_error(src, &none(), 3, 1, "[programs.web.health] has no probe");
    assert!(hint(&d).contains("tcp = "));

    let src = "[programs.web]\ncommand = \"x\"\nhealth = { tcp = \"a:1\", exec = \"true\" }\n";
    single_error(src, &none(), 3, 32, "has both `tcp` and `exec`");

    let src = "[programs.web]\ncommand = \"x\"\nhealth = { tcp = \"a:1\", expect_status = [200] }\n";
    single_error(src, &none(), 3, 41, "`expect_status` only applies to an `http` probe");

    let src = "[programs.web]\ncommand = \"x\"\nhealth = { http = \"https://x/\" }\n";
    let d = single_error(src, &none(), 3, 19, "https is not supported");
    assert!(hint(&d).contains("curl"), "{}", hint(&d));

    let src = "[programs.web]\ncommand = \"x\"\nhealth = { tcp = \"localhost\" }\n";
    single_error(src, &none(), 3, 18, "the port is missing");

    let src =
        "[programs.web]\ncommand = \"x\"\nhealth = { http = \"http://x/\", expect_status = [200, 99] }\n";
    single_error(src, &none(), 3, 54, "`expect_status[1]` must be between 100 and 599, found 99");

    let src = "[programs.web]\ncommand = \"x\"\nhealth = { tcp = \"a:1\", retries = 0 }\n";
    single_error(src, &none(), 3, 35, "`retries` must be between 1 and 1000");

    let src = "[programs.web]\ncommand = \"x\"\nhealth = { tcp = \"a:1\", interval = \"0s\" }\n";
    single_error(src, &none(), 3, 36, "`interval` must be longer than 0");

    let src = "[programs.web]\ncommand = \"x\"\nhealth = { tcp = \"a:1\", on_unhealthy = \"restrat\" }\n";
    let d = single_error(src, &none(), 3, 40, "`on_unhealthy` must be one of \"none\", \"restart\"");
    assert_eq!(hint(&d), "did you mean \"restart\"?");

    let src = "[programs.web]\ncommand = \"x\"\nhealth = { tcp = \"a:1\", intervall = \"1s\" }\n";
    let d = single_error(src, &none(), 3, 25, "unknown key `intervall` in [programs.web.health]");
    assert_eq!(hint(&d), "did you mean `interval`?");
}

#[test]
#[cfg(any(target_os = "linux", windows))]
fn memory_limits() {
    let config = parse(
        "[programs.web]\ncommand = \"x\"\nmax_memory = \"512MB\"\nmemory_grace = \"1m\"\nhard_memory_limit = true\n\
         [programs.db]\ncommand = \"x\"\n",
    );
    let web = &config.programs["web"];
    assert_eq!(
        (web.max_memory, web.memory_grace, web.hard_memory_limit),
        (Some(512_000_000), Duration::from_secs(60), true)
    );
    let db = &config.programs["db"];
    assert_eq!(
        (db.max_memory, db.memory_grace, db.hard_memory_limit),
        (None, Duration::from_secs(30), false)
    );

    let src = "[programs.web]\ncommand = \"x\"\nmax_memory = \"0\"\n";
    single_error(src, &none(), 3, 14, "`max_memory` must be more than 0");
    let src = "[programs.web]\ncommand = \"x\"\nhard_memory_limit = true\n";
    let d = single_error(src, &none(), 3, 21, "`hard_memory_limit` needs `max_memory`");
    assert!(hint(&d).contains("max_memory = "));
    let src = "[programs.web]\ncommand = \"x\"\nmax_memory = \"lots\"\n";
    single_error(src, &none(), 3, 14, "`max_memory` is not a valid size");
}

#[test]
fn metrics_listener_stays_on_loopback_unless_allowed() {
    let config = parse("[metrics]\nlisten = \"127.0.0.1:9100\"\n");
    assert_eq!(config.metrics, MetricsSettings { listen: Some("127.0.0.1:9100".parse().unwrap()) });
    assert_eq!(parse("").metrics, MetricsSettings::default());
    let config = parse("[metrics]\nlisten = \"0.0.0.0:9100\"\nallow_remote = true\n");
    assert_eq!(config.metrics.listen, Some("0.0.0.0:9100".parse().unwrap()));

    let d = single_error("[metrics]\nlisten = \"0.0.0.0:9100\"\n", &none(), 2, 10, "readable by anyone");
    assert!(hint(&d).contains("allow_remote = true"));
    single_error(
        "[metrics]\nlisten = \"localhost:9100\"\n",
        &none(),
        2,
        10,
        "must be an IP address and a port",
    );
}

#[test]
fn alerts_parse() {
    let config = parse(
        r#"
[programs.web]
command = "web"
health = { tcp = "127.0.0.1:80" }
[programs.db]
command = "db"

[[alerts]]
name = "flapping"
when = "restarts > 3 within 10m"
webhook = "http://127.0.0.1:9000/hook"
repeat_every = "1h"

[[alerts]]
name = "sick"
when = "unhealthy for 5m"
command = ["notify-send", "steward"]
programs = ["web", "web"]

[[alerts]]
name = "dead"
when = 'state == "fatal"'
"#,
    );
    let a = &config.alerts;
    assert_eq!(a.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["flapping", "sick", "dead"]);
    assert_eq!(a[0].when, Condition::Restarts { more_than: 3, within: Duration::from_secs(600) });
    assert_eq!(a[0].webhook.as_ref().map(|u| u.to_string()).as_deref(), Some("http://127.0.0.1:9000/hook"));
    assert_eq!(a[0].repeat_every, Some(Duration::from_secs(3600)));
    assert!(a[0].programs.is_empty());
    assert_eq!(a[1].command, Some(vec!["notify-send".to_string(), "steward".to_string()]));
    assert_eq!(a[1].programs, ["web"]);
    assert_eq!(a[2].when, Condition::State(State::Fatal));
    assert_eq!((a[2].webhook.as_ref(), a[2].command.as_ref()), (None, None));
}

#[test]
fn alert_mistakes() {
    let base = "[programs.web]\ncommand = \"x\"\n[[alerts]]\nname = \"a\"\n";
    // Inside the string: the column of the part that is wrong.
    let d =
        single_error(&format!("{base}when = \"restarts > 3 in 10m\"\n"), &none(), 5, 22, "expected `within`");
    assert!(hint(&d).contains("within 10m"));
    single_error(
        &format!("{base}when = \"state == \\\"dead\\\"\"\n"),
        &none(),
        5,
        8,
        "`dead` is not a state",
    );
    single_error(&format!("{base}when = \"memory > lots\"\n"), &none(), 5, 18, "not a size");
    let d = single_error(&format!("{base}when = \"cpu > 90\"\n"), &none(), 5, 9, "unknown condition `cpu`");
    assert!(hint(&d).contains("restarts > 3 within 10m"));
    single_error(
        &format!("{base}when = \"state == fatal\"\nrepeat_every = \"0s\"\n"),
        &none(),
        6,
        16,
        "longer than 0",
    );
    single_error(
        &format!("{base}when = \"state == fatal\"\nwebhook = \"https://x\"\n"),
        &none(),
        6,
        11,
        "https",
    );
    let d = single_error(
        &format!("{base}when = \"state == fatal\"\nprograms = [\"wbe\"]\n"),
        &none(),
        6,
        13,
        "unknown program `wbe`",
    );
    assert_eq!(hint(&d), "did you mean \"web\"?");
    // `unhealthy for` on programs without a health check could never fire.
    let d = single_error(&format!("{base}when = \"unhealthy for 1m\"\n"), &none(), 5, 8, "can never hold");
    assert!(hint(&d).contains("[programs.NAME.health]"));

    // Missing keys and duplicate names.
    let src = "[[alerts]]\nwebhook = \"http://x/\"\n";
    let diags = errors(src);
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages, ["an [[alerts]] entry has no `name`", "an [[alerts]] entry has no `when`"]);
    assert!(diags.iter().all(|d| (d.line, d.col) == (1, 1)), "{diags}");
    let src = "[[alerts]]\nname = \"a\"\nwhen = \"state == fatal\"\n[[alerts]]\nname = \"a\"\nwhen = \"state == exited\"\n";
    single_error(src, &none(), 5, 8, "two [[alerts]] are named `a`");
    single_error(
        "[[alerts]]\nname = \"a b\"\nwhen = \"state == fatal\"\n",
        &none(),
        2,
        8,
        "invalid alert name",
    );
}
