//! `[programs.NAME.release]` and `%{release}`: the spec, the keys' mistakes at their place,
//! and what a resolved spec becomes.

use crate::support::{dir, errors, hint, parse, parse_with, single_error, FakeEnv};
use std::path::PathBuf;
use std::time::Duration;
use steward_core::config::{Probe, ReleaseSource};
use steward_core::release::Version;
use steward_core::reload;

/// The public key of minisign's own README.
const KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";

fn api(extra_program: &str, release: &str) -> String {
    format!(
        "[programs.api]\ncommand = \"%{{release}}/bin/api --port 8080\"\n{extra_program}\n\
         [programs.api.release]\npublic_keys = [\"{KEY}\"]\n{release}\n"
    )
}

#[test]
fn the_table_with_its_defaults() {
    let config = parse(&api("", ""));
    let spec = &config.releases["api"];
    assert_eq!(spec.source, None, "without a source, only --file deploys");
    assert_eq!(spec.public_keys, [KEY]);
    assert_eq!(spec.keep, 3);
    assert_eq!(spec.healthy_for, Duration::from_secs(10));
    assert_eq!(spec.check_every, None);
    let program = &config.programs["api"];
    assert_eq!(program.command, ["%{release}/bin/api", "--port", "8080"]);
    assert_eq!(program.release, None);
    assert!(program.needs_release());
    assert_eq!(program.cwd, dir());
}

#[test]
fn every_key() {
    let src = api("", "source = \"releases/api\"\nkeep = 5\nhealthy_for = \"30s\"\ncheck_every = \"10m\"")
        .replace(&format!("[\"{KEY}\"]"), &format!("[\"{KEY}\", \" {KEY} \"]"));
    let config = parse(&src);
    let spec = &config.releases["api"];
    assert_eq!(spec.source, Some(ReleaseSource::Path(dir().join("releases/api"))));
    assert_eq!(spec.public_keys, [KEY, KEY], "trimmed");
    assert_eq!(spec.keep, 5);
    assert_eq!(spec.healthy_for, Duration::from_secs(30));
    assert_eq!(spec.check_every, Some(Duration::from_secs(600)));
}

#[test]
fn sources() {
    let source =
        |s: &str| parse(&api("", &format!("source = \"{s}\""))).releases["api"].source.clone().unwrap();
    let url = "https://releases.example.com/api/manifest.json";
    assert_eq!(source(url), ReleaseSource::Url(url.into()));
    assert_eq!(source("http://10.0.0.1:8000/api/"), ReleaseSource::Url("http://10.0.0.1:8000/api/".into()));
    assert_eq!(source("manifest.json"), ReleaseSource::Path(dir().join("manifest.json")));
    // Joined like the parser joins them: absolute on Unix, on the config's drive on Windows.
    let joined = |p: &str| ReleaseSource::Path(dir().join(p));
    assert_eq!(source("file:///srv/releases/api"), joined("/srv/releases/api"));
    assert_eq!(source("file://localhost/srv/r"), joined("/srv/r"));
    assert_eq!(source("file:///C:/releases"), ReleaseSource::Path(dir().join("C:/releases")));
    assert_eq!(format!("{}", source(url)), url);
}

#[test]
fn mistakes_in_the_table_are_located() {
    let env = FakeEnv::new();
    let at_line_6 = |release: &str, col, fragment| single_error(&api("", release), &env, 6, col, fragment);
    let keys = |list: &str| api("", "").replace(&format!("[\"{KEY}\"]"), list);
    let d = single_error(&keys("[\"RWQ\"]"), &env, 5, 16, "`public_keys[0]` is not a minisign public key");
    assert_eq!(
        hint(&d),
        "use the base64 line of the .pub file (it starts with RW), not its comment line or the secret key"
    );
    // The second element, at its place.
    let src = keys(&format!("[\"{KEY}\", \"untrusted comment: x\"]"));
    single_error(&src, &env, 5, 76, "`public_keys[1]` is not a minisign public key");
    single_error(&keys("[]"), &env, 5, 15, "`public_keys` is empty");
    single_error(&keys("\"RW\""), &env, 5, 15, "must be an array");
    at_line_6("keep = 1", 8, "`keep` is 1; steward keeps at least 2 versions");
    at_line_6("keep = -1", 8, "`keep` must be between");
    at_line_6("healthy_for = 10", 15, "must be a duration string");
    at_line_6("check_every = \"30s\"", 15, "`check_every` is 30s; the shortest is 1m");
    at_line_6("source = \"s3://bucket/api\"", 10, "`source` is a `s3://` URL");
    at_line_6("source = \"https:///x\"", 10, "not a valid URL");
    at_line_6("source = \"file://srv/x\"", 10, "not a `file://` URL of an absolute path");
    at_line_6("source = \"\"", 10, "`source` is empty");
    at_line_6("source = \"%{release}/x\"", 10, "`source` cannot use `%{release}`");
    let d = at_line_6("keeps = 3", 1, "unknown key `keeps` in [programs.api.release]");
    assert_eq!(hint(&d), "did you mean `keep`?");
}

#[test]
fn public_keys_are_required() {
    let src = "[programs.api]\ncommand = \"%{release}/api\"\n[programs.api.release]\nsource = \"r\"\n";
    let d = single_error(src, &FakeEnv::new(), 3, 1, "[programs.api.release] has no `public_keys`");
    assert!(hint(&d).contains("base64 line of each minisign .pub file"), "{}", hint(&d));
}

#[test]
fn the_command_must_run_the_release() {
    let src = api("", "").replace("%{release}/bin/api --port 8080", "/usr/bin/api");
    let d = single_error(&src, &FakeEnv::new(), 2, 11, "its `command` does not use `%{release}`");
    assert_eq!(
        hint(&d),
        "a program with [release] runs its installed release: write the path inside it, e.g. `command = \"%{release}/bin/api\"`"
    );
    // In an argument is enough (an interpreter running a script of the release).
    let script =
        api("", "").replace("\"%{release}/bin/api --port 8080\"", "[\"python3\", \"%{release}/app.py\"]");
    assert!(parse(&script).programs["api"].needs_release());
}

#[test]
fn release_without_the_table_is_an_error_at_its_place() {
    let src = "[programs.a]\ncommand = \"x\"\n\n[programs.b]\ncommand = [\"run\", \"%{release}/b\"]\n";
    let d = single_error(src, &FakeEnv::new(), 5, 20, "`%{release}` needs a [programs.NAME.release] table");
    assert!(hint(&d).contains("add a [programs.NAME.release] table"), "{}", hint(&d));
    // Outside any program too.
    single_error(
        "[supervisor]\nstate_dir = \"%{release}\"\n",
        &FakeEnv::new(),
        2,
        14,
        "`%{release}` needs a [programs.NAME.release] table",
    );
    // A literal is fine without [release]...
    let literal = parse("[programs.a]\ncommand = [\"echo\", \"%%{release}\"]\n");
    assert_eq!(literal.programs["a"].command[1], "%{release}");
    assert!(!literal.releases.contains_key("a"), "a program without [release] needs none, whatever its text");
    let literal_cwd = parse("[programs.a]\ncommand = \"x\"\ncwd = \"%%{release}\"\n");
    assert_eq!(literal_cwd.programs["a"].cwd, dir().join("%{release}"));
    // ...and an error with it.
    let src = api("env = { X = \"%%{release}\" }", "");
    single_error(
        &src,
        &FakeEnv::new(),
        3,
        14,
        "a literal `%{release}` cannot be written in a program with [release]",
    );
}

#[test]
fn a_variable_cannot_bring_release_in() {
    let env = FakeEnv::new().var("SNEAKY", "%{release}/x");
    let src = api("env = { X = \"${SNEAKY}\" }", "");
    single_error(&src, &env, 3, 13, "brings the text `%{release}` into a program with [release]");
    // Without [release], it is just text.
    let plain = parse_with("[programs.a]\ncommand = \"x\"\nenv = { X = \"${SNEAKY}\" }\n", &env).unwrap();
    assert_eq!(plain.programs["a"].env["X"], "%{release}/x");
}

#[test]
fn cwd_in_the_release_stays_as_written() {
    let config = parse(&api("cwd = \"%{release}/app\"", ""));
    assert_eq!(config.programs["api"].cwd, PathBuf::from("%{release}/app"));
    let other = parse(&api("cwd = \"data\"", ""));
    assert_eq!(other.programs["api"].cwd, dir().join("data"));
    single_error(
        &api("cwd = \"data/%{release}\"", ""),
        &FakeEnv::new(),
        3,
        7,
        "`cwd` has `%{release}` after its start",
    );
    single_error(
        &api("env_file = \"%{release}/.env\"", ""),
        &FakeEnv::new(),
        3,
        12,
        "`env_file` cannot use `%{release}`: steward reads it when it loads the config",
    );
}

#[test]
fn with_release_fills_in_the_folder() {
    let src =
        api("cwd = \"%{release}/app\"\nenv = { CONF = \"%{release}/etc/api.toml\", PLAIN = \"x\" }", "")
            + "[programs.api.health]\nexec = [\"%{release}/bin/check\", \"--quick\"]\n";
    let config = parse(&src);
    let spec = &config.programs["api"];
    let folder = dir().join(".steward").join("releases").join("api").join("1.4.0");
    let text = folder.to_str().unwrap();
    let version = Version::parse("1.4.0").unwrap();
    let resolved = spec.with_release(&folder, &version);
    assert_eq!(resolved.command, [format!("{text}/bin/api"), "--port".into(), "8080".into()]);
    assert_eq!(resolved.cwd, PathBuf::from(format!("{text}/app")));
    assert!(resolved.cwd.is_absolute());
    assert_eq!(resolved.env["CONF"], format!("{text}/etc/api.toml"));
    assert_eq!(resolved.env["PLAIN"], "x");
    assert_eq!(resolved.env["STEWARD_RELEASE_VERSION"], "1.4.0");
    assert_eq!(resolved.env["STEWARD_RELEASE_DIR"], text);
    assert_eq!(resolved.release, Some(version.clone()));
    assert!(!resolved.needs_release());
    match &resolved.health.as_ref().unwrap().probe {
        Probe::Exec { command } => assert_eq!(command[0], format!("{text}/bin/check")),
        other => panic!("{other:?}"),
    }
    assert!(format!("{resolved:?}").contains("release: Some(Version"), "the Debug shows it");
    // The spec itself is untouched: pure.
    assert!(spec.needs_release());
    assert_eq!(spec.release, None);
    // A cwd outside the release stays.
    let plain = parse(&api("", "")).programs["api"].with_release(&folder, &version);
    assert_eq!(plain.cwd, dir());
}

#[test]
fn with_release_fills_http_and_tcp_checks() {
    let folder = PathBuf::from("/r/1.0.0");
    let version = Version::parse("1.0.0").unwrap();
    let http =
        parse(&(api("", "") + "[programs.api.health]\nhttp = \"http://127.0.0.1:8080/v/%{release}\"\n"));
    match http.programs["api"].with_release(&folder, &version).health.unwrap().probe {
        Probe::Http { url, .. } => assert_eq!(url.path, "/v//r/1.0.0"),
        other => panic!("{other:?}"),
    }
    let tcp = parse(&(api("", "") + "[programs.api.health]\ntcp = \"%{release}:80\"\n"));
    match tcp.programs["api"].with_release(&folder, &version).health.unwrap().probe {
        Probe::Tcp { host, port } => assert_eq!((host.as_str(), port), ("/r/1.0.0", 80)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn instances_share_one_release() {
    let src = api("instances = 2\nenv = { PORT = \"%{instance+8000}\" }", "keep = 4");
    let config = parse(&src);
    assert_eq!(config.releases.len(), 1);
    assert_eq!(config.releases["api"].keep, 4);
    assert!(config.programs["api:0"].needs_release());
    assert!(config.programs["api:1"].needs_release());
    assert_eq!(config.programs["api:1"].env["PORT"], "8001");
    let differs = api("instances = 2", "healthy_for = \"%{instance+1}s\"");
    let d = single_error(&differs, &FakeEnv::new(), 4, 1, "[programs.api.release] differs between instances");
    assert!(hint(&d).contains("remove `%{instance}`"), "{}", hint(&d));
}

#[test]
fn changing_the_release_table_restarts_nothing() {
    let old = parse(&api("", "keep = 3"));
    let new = parse(&api("", "keep = 5\nsource = \"https://r.example/api\""));
    assert_ne!(old.releases, new.releases);
    let diff = reload::diff(&old, &new);
    assert!(diff.changed.is_empty() && diff.needs_restart.is_empty(), "{diff:?}");
}

#[test]
fn the_table_must_be_a_table() {
    let diags = errors("[programs.api]\ncommand = \"%{release}/api\"\nrelease = \"1.0\"\n");
    assert_eq!(diags.len(), 1, "{diags}");
    assert!(diags.0[0].message.contains("`release` must be a table"), "{diags}");
}

#[test]
fn self_update_is_checked_with_the_rest() {
    let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    let c =
        parse(&format!("[self_update]\nsource = \"https://r.example/m.json\"\npublic_keys = [\"{key}\"]\n"));
    let s = c.self_update.unwrap();
    assert_eq!(s.public_keys, [key]);
    assert_eq!(s.confirm_within, std::time::Duration::from_secs(120));
    let text = errors("[self_update]\npublic_keys = [\"nope\"]\n").to_string();
    assert!(text.contains("not a minisign public key"), "{text}");
}
