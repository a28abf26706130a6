//! The release rules: manifests, what a deploy accepts, trusted comments, the history's
//! transitions and which installed versions go.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use steward_core::release::{
    accept, comment_fields, file_release, host_target, to_remove, CommentError, DowngradeOf, Expect, History,
    Manifest, ManifestError, Refusal, Switching, Version,
};

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn vs(list: &[&str]) -> BTreeSet<Version> {
    list.iter().map(|s| v(s)).collect()
}

fn at(rfc3339: &str) -> SystemTime {
    humantime::parse_rfc3339(rfc3339).unwrap()
}

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn manifest_json(artifacts: &str) -> String {
    format!(
        r#"{{
  "schema": 1,
  "name": "api",
  "version": "1.4.0",
  "published": "2026-12-01T10:00:00Z",
  "expires": "2027-03-01T00:00:00Z",
  "future_field": {{"ignored": true}},
  "artifacts": {artifacts}
}}"#
    )
}

fn good() -> Manifest {
    let artifacts = format!(
        r#"[{{"target": "linux-x86_64", "url": "api-1.4.0-linux-x86_64.tar.gz", "sha256": "{SHA}", "size": 12345}},
            {{"target": "windows-x86_64", "url": "https://cdn.example/api.zip", "sha256": "{SHA}", "size": 99}}]"#
    );
    Manifest::parse(manifest_json(&artifacts).as_bytes()).unwrap()
}

/// The `field` and message of the error `json` gets.
fn field_error(json: &str) -> (String, String) {
    match Manifest::parse(json.as_bytes()) {
        Err(e @ ManifestError::Field { .. }) => {
            let ManifestError::Field { field, .. } = &e else { unreachable!() };
            (field.clone(), e.to_string())
        }
        other => panic!("expected a field error for {json}, got {other:?}"),
    }
}

mod manifests {
    use super::*;

    #[test]
    fn a_good_manifest() {
        let m = good();
        assert_eq!(m.schema, 1);
        assert_eq!(m.name, "api");
        assert_eq!(m.version, v("1.4.0"));
        assert_eq!(m.published, Some(at("2026-12-01T10:00:00Z")));
        assert_eq!(m.expires, at("2027-03-01T00:00:00Z"));
        assert_eq!(m.artifacts.len(), 2);
        assert_eq!(m.artifacts[0].target, "linux-x86_64");
        assert_eq!(m.artifacts[0].size, 12345);
        assert_eq!(m.artifacts[0].sha256_hex(), SHA);
        assert_eq!(m.artifacts[1].url, "https://cdn.example/api.zip");
    }

    #[test]
    fn published_is_optional_and_offsets_are_read() {
        let json = format!(
            r#"{{"schema": 1, "name": "api", "version": "2.0.0-rc.1", "expires": "2027-03-01T01:00:00+01:00",
                "artifacts": [{{"target": "any", "url": "a.zip", "sha256": "{}", "size": 1}}]}}"#,
            SHA.to_uppercase()
        );
        let m = Manifest::parse(json.as_bytes()).unwrap();
        assert_eq!(m.published, None);
        assert_eq!(m.expires, at("2027-03-01T00:00:00Z"));
        assert_eq!(m.version, v("2.0.0-rc.1"));
        assert_eq!(m.artifacts[0].sha256_hex(), SHA);
    }

    #[test]
    fn a_newer_schema_says_update_steward() {
        let e = Manifest::parse(br#"{"schema": 2, "whatever": "changed"}"#).unwrap_err();
        assert_eq!(e, ManifestError::SchemaTooNew(2));
        assert_eq!(e.to_string(), "manifest schema 2 is newer than this steward reads; update steward");
    }

    #[test]
    fn each_mistake_names_its_field() {
        let art = |fields: &str| manifest_json(&format!("[{{{fields}}}]"));
        let ok_art = format!(r#""target": "any", "url": "a.tgz", "sha256": "{SHA}", "size": 10"#);
        let cases: Vec<(String, &str, &str)> = vec![
            (r#"{"name": "api"}"#.into(), "schema", "is missing"),
            (r#"{"schema": "1"}"#.into(), "schema", "whole number"),
            (r#"{"schema": 0}"#.into(), "schema", "first schema is 1"),
            (manifest_json("[]").replace(r#""name": "api","#, ""), "name", "is missing"),
            (
                manifest_json("[]").replace(r#""name": "api""#, r#""name": 5"#),
                "name",
                "must be a string, found a number",
            ),
            (manifest_json("[]").replace("1.4.0", "1.4"), "version", "\"1.4\" is not a semantic version"),
            (
                manifest_json("[]").replace("2027-03-01T00:00:00Z", "next spring"),
                "expires",
                "not an RFC 3339 time",
            ),
            (
                manifest_json("[]").replace("2027-03-01T00:00:00Z", "2027-03-01T00:00:00"),
                "expires",
                "no time zone",
            ),
            (
                manifest_json("[]").replace(r#""expires": "2027-03-01T00:00:00Z","#, ""),
                "expires",
                "is missing",
            ),
            (manifest_json("[]").replace("2026-12-01T10:00:00Z", ""), "published", "is empty"),
            (manifest_json("[]"), "artifacts", "is empty"),
            (manifest_json("{}"), "artifacts", "must be an array, found an object"),
            (manifest_json("[1]"), "artifacts[0]", "must be an object"),
            (art(&ok_art.replace(SHA, "abc")), "artifacts[0].sha256", "exactly 64 hex digits"),
            (art(&ok_art.replace(SHA, &"x".repeat(64))), "artifacts[0].sha256", "exactly 64 hex digits"),
            (art(&ok_art.replace("10", "0")), "artifacts[0].size", "is 0"),
            (art(&ok_art.replace("10", "-3")), "artifacts[0].size", "whole number of bytes, found -3"),
            (art(&ok_art.replace(r#", "size": 10"#, "")), "artifacts[0].size", "is missing"),
            (art(&ok_art.replace(r#""url": "a.tgz", "#, "")), "artifacts[0].url", "is missing"),
            (
                art(&ok_art.replace(r#""target": "any""#, r#""target": " ""#)),
                "artifacts[0].target",
                "is empty",
            ),
        ];
        for (json, field, fragment) in cases {
            let (found, message) = field_error(&json);
            assert_eq!(found, field, "{json}");
            assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            assert!(message.contains(&format!("`{field}`")), "{message}");
        }
        // The second artifact is named by its index.
        let two = manifest_json(&format!(r#"[{{{ok_art}}}, {{{}}}]"#, ok_art.replace("10", "0")));
        assert_eq!(field_error(&two).0, "artifacts[1].size");
    }

    #[test]
    fn not_json_at_all() {
        for bad in [&b""[..], b"{", b"[1, 2]", b"\xff\xfe", b"null"] {
            let e = Manifest::parse(bad).unwrap_err();
            assert!(matches!(e, ManifestError::NotJson(_)), "{bad:?}: {e:?}");
        }
        assert!(Manifest::parse(b"[1]").unwrap_err().to_string().contains("not an object"));
    }

    #[test]
    fn a_long_value_is_clipped_in_messages() {
        let json = manifest_json("[]").replace("1.4.0", &"9".repeat(5000));
        let (_, message) = field_error(&json);
        assert!(message.len() < 400, "{message}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Manifest::parse(&bytes);
        }

        /// Manifests that are nearly right: the fields are there, with arbitrary text in them.
        #[test]
        fn arbitrary_field_text_never_panics(
            version in ".{0,20}",
            expires in ".{0,30}",
            sha in ".{0,70}",
            size in any::<i64>(),
        ) {
            let json = serde_json::json!({
                "schema": 1, "name": "api", "version": version, "expires": expires,
                "artifacts": [{"target": "any", "url": "a.zip", "sha256": sha, "size": size}],
            });
            let _ = Manifest::parse(json.to_string().as_bytes());
        }
    }
}

mod accepting {
    use super::*;

    fn expect<'a>(now: SystemTime) -> Expect<'a> {
        Expect {
            name: "api",
            target: "linux-x86_64",
            now,
            installed: None,
            floor: None,
            allow_downgrade: false,
        }
    }

    fn before_expiry() -> SystemTime {
        at("2027-01-01T00:00:00Z")
    }

    #[test]
    fn a_first_install_picks_the_target() {
        let m = good();
        let a = accept(&m, &expect(before_expiry())).unwrap();
        assert_eq!(a.target, "linux-x86_64");
        let win = Expect { target: "windows-x86_64", ..expect(before_expiry()) };
        assert_eq!(accept(&m, &win).unwrap().url, "https://cdn.example/api.zip");
    }

    #[test]
    fn host_target_is_os_dash_arch() {
        let t = host_target();
        assert_eq!(t, format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH));
        assert!(!t.contains(' '));
    }

    #[test]
    fn an_exact_target_wins_over_any() {
        let json = manifest_json(&format!(
            r#"[{{"target": "any", "url": "any.tgz", "sha256": "{SHA}", "size": 1}},
                {{"target": "linux-x86_64", "url": "linux.tgz", "sha256": "{SHA}", "size": 1}}]"#
        ));
        let m = Manifest::parse(json.as_bytes()).unwrap();
        assert_eq!(accept(&m, &expect(before_expiry())).unwrap().url, "linux.tgz");
        let mac = Expect { target: "macos-aarch64", ..expect(before_expiry()) };
        assert_eq!(accept(&m, &mac).unwrap().url, "any.tgz");
    }

    #[test]
    fn refusals_in_order() {
        let m = good();
        let (old, same, newer) = (v("1.3.0"), v("1.4.0"), v("1.5.0"));
        let now = before_expiry();
        let late = at("2027-03-02T06:00:00Z");
        let cases: Vec<(&str, Expect<'_>, Refusal)> = vec![
            (
                "another program's manifest, even expired",
                Expect { name: "web", now: late, ..expect(now) },
                Refusal::WrongName { expected: "web".into(), found: "api".into() },
            ),
            (
                "expired, even though already installed",
                Expect { now: late, installed: Some(&same), ..expect(now) },
                Refusal::Expired { expires: m.expires, now: late },
            ),
            (
                "already installed",
                Expect { installed: Some(&same), allow_downgrade: true, ..expect(now) },
                Refusal::AlreadyInstalled { version: same.clone() },
            ),
            (
                "older than installed",
                Expect { installed: Some(&newer), ..expect(now) },
                Refusal::Downgrade {
                    version: same.clone(),
                    newer: newer.clone(),
                    of: DowngradeOf::Installed,
                },
            ),
            (
                "older than the floor (after a rollback)",
                Expect { installed: Some(&old), floor: Some(&newer), ..expect(now) },
                Refusal::Downgrade { version: same.clone(), newer: newer.clone(), of: DowngradeOf::Floor },
            ),
            (
                "no archive for the target",
                Expect { target: "macos-aarch64", installed: Some(&old), ..expect(now) },
                Refusal::NoArtifact {
                    target: "macos-aarch64".into(),
                    offered: vec!["linux-x86_64".into(), "windows-x86_64".into()],
                },
            ),
        ];
        for (what, e, refusal) in cases {
            assert_eq!(accept(&m, &e), Err(refusal), "{what}");
        }
    }

    #[test]
    fn what_passes() {
        let m = good();
        let (old, same, newer) = (v("1.3.0"), v("1.4.0"), v("1.5.0"));
        let now = before_expiry();
        let cases: Vec<(&str, Expect<'_>)> = vec![
            ("an upgrade", Expect { installed: Some(&old), floor: Some(&old), ..expect(now) }),
            ("back up to the floor", Expect { installed: Some(&old), floor: Some(&same), ..expect(now) }),
            ("at the expiry instant", Expect { now: m.expires, ..expect(now) }),
            (
                "a downgrade, allowed",
                Expect { installed: Some(&newer), floor: Some(&newer), allow_downgrade: true, ..expect(now) },
            ),
        ];
        for (what, e) in cases {
            assert!(accept(&m, &e).is_ok(), "{what}: {:?}", accept(&m, &e));
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let m = good();
        let late = m.expires + Duration::from_secs(26 * 3600);
        let expired = accept(&m, &Expect { now: late, ..expect(late) }).unwrap_err().to_string();
        assert_eq!(
            expired,
            "the manifest expired at 2027-03-01T00:00:00Z (1day 2h ago): the publisher must re-sign it with a later `expires`"
        );
        let newer = v("2.0.0");
        let down = accept(&m, &Expect { installed: Some(&newer), ..expect(before_expiry()) }).unwrap_err();
        assert_eq!(
            down.to_string(),
            "version 1.4.0 is older than the installed 2.0.0: pass --allow-downgrade to install it anyway"
        );
        let floor = accept(&m, &Expect { floor: Some(&newer), ..expect(before_expiry()) }).unwrap_err();
        assert!(floor.to_string().contains("older than 2.0.0, which already ran here"), "{floor}");
        assert!(floor.to_string().contains("--allow-downgrade"), "{floor}");
        let none = accept(&m, &Expect { target: "macos-aarch64", ..expect(before_expiry()) }).unwrap_err();
        assert!(none.to_string().contains("it offers: linux-x86_64, windows-x86_64"), "{none}");
        let name = accept(&m, &Expect { name: "web", ..expect(before_expiry()) }).unwrap_err();
        assert!(name.to_string().contains("[programs.web.release]"), "{name}");
        let same = v("1.4.0");
        let installed =
            accept(&m, &Expect { installed: Some(&same), ..expect(before_expiry()) }).unwrap_err();
        assert_eq!(installed.to_string(), "version 1.4.0 is already installed: nothing to do");
    }
}

mod comments {
    use super::*;

    #[test]
    fn fields() {
        let f = comment_fields("timestamp:1700000000\tname=api  version=1.4.0 note=a=b =x");
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f["name"], "api");
        assert_eq!(f["version"], "1.4.0");
        assert_eq!(f["note"], "a=b");
        assert!(comment_fields("").is_empty());
    }

    #[test]
    fn file_release_needs_name_and_version() {
        assert_eq!(file_release("name=api version=1.4.0"), Ok(("api".to_owned(), v("1.4.0"))));
        assert_eq!(file_release("version=1.4.0"), Err(CommentError::Missing("name")));
        assert_eq!(file_release("name=api version="), Err(CommentError::Missing("version")));
        let missing = file_release("signed by ci").unwrap_err().to_string();
        assert!(missing.contains("no `name=`"), "{missing}");
        assert!(missing.contains("minisign -S -m ARCHIVE -t \"name=PROGRAM version=X.Y.Z\""), "{missing}");
        let bad = file_release("name=api version=latest").unwrap_err();
        assert!(matches!(&bad, CommentError::BadVersion { text, .. } if text == "latest"), "{bad:?}");
        assert!(bad.to_string().contains("`version=latest`, not a semantic version"), "{bad}");
    }
}

mod history {
    use super::*;

    fn h(current: Option<&str>, previous: Option<&str>, floor: Option<&str>) -> History {
        History {
            current: current.map(v),
            previous: previous.map(v),
            floor: floor.map(v),
            ..History::default()
        }
    }

    #[derive(Clone, Copy)]
    enum Step {
        Begin(&'static str),
        Succeeded,
        Failed,
    }
    use Step::*;

    #[test]
    fn transitions() {
        // (what, before, steps, after)
        let cases: Vec<(&str, History, Vec<Step>, History)> = vec![
            (
                "first install",
                History::default(),
                vec![Begin("1.0.0"), Succeeded],
                h(Some("1.0.0"), None, Some("1.0.0")),
            ),
            (
                "an upgrade",
                h(Some("1.0.0"), None, Some("1.0.0")),
                vec![Begin("1.1.0"), Succeeded],
                h(Some("1.1.0"), Some("1.0.0"), Some("1.1.0")),
            ),
            (
                "a forced downgrade keeps the floor",
                h(Some("2.0.0"), Some("1.9.0"), Some("2.0.0")),
                vec![Begin("1.0.0"), Succeeded],
                h(Some("1.0.0"), Some("2.0.0"), Some("2.0.0")),
            ),
            (
                "reinstalling the current version keeps previous",
                h(Some("2.0.0"), Some("1.0.0"), Some("2.0.0")),
                vec![Begin("2.0.0"), Succeeded],
                h(Some("2.0.0"), Some("1.0.0"), Some("2.0.0")),
            ),
            (
                "a failure quarantines and changes nothing else",
                h(Some("1.0.0"), Some("0.9.0"), Some("1.0.0")),
                vec![Begin("1.1.0"), Failed],
                History { quarantined: vs(&["1.1.0"]), ..h(Some("1.0.0"), Some("0.9.0"), Some("1.0.0")) },
            ),
            (
                "a failed first install",
                History::default(),
                vec![Begin("1.0.0"), Failed],
                History { quarantined: vs(&["1.0.0"]), ..History::default() },
            ),
            (
                "a quarantined version that succeeds later is cleared",
                History { quarantined: vs(&["1.1.0", "1.2.0"]), ..h(Some("1.0.0"), None, Some("1.0.0")) },
                vec![Begin("1.1.0"), Succeeded],
                History { quarantined: vs(&["1.2.0"]), ..h(Some("1.1.0"), Some("1.0.0"), Some("1.1.0")) },
            ),
            (
                "without a switch, succeeded and failed do nothing",
                h(Some("1.0.0"), None, Some("1.0.0")),
                vec![Succeeded, Failed],
                h(Some("1.0.0"), None, Some("1.0.0")),
            ),
            (
                "a second begin replaces the first",
                h(Some("1.0.0"), None, Some("1.0.0")),
                vec![Begin("3.0.0"), Begin("2.0.0"), Succeeded],
                h(Some("2.0.0"), Some("1.0.0"), Some("2.0.0")),
            ),
        ];
        for (what, mut history, steps, after) in cases {
            for step in steps {
                match step {
                    Begin(to) => history.begin(v(to)),
                    Succeeded => history.succeeded(),
                    Failed => history.failed(),
                }
            }
            assert_eq!(history, after, "{what}");
        }
    }

    #[test]
    fn current_changes_only_on_success() {
        let mut history = h(Some("1.0.0"), None, Some("1.0.0"));
        history.begin(v("2.0.0"));
        assert_eq!(history.current, Some(v("1.0.0")), "mid-switch, the old version is current");
        assert_eq!(history.switching, Some(Switching { from: Some(v("1.0.0")), to: v("2.0.0") }));
        // Killed here; at the next start:
        let interrupted = history.interrupted();
        assert_eq!(interrupted, Some(Switching { from: Some(v("1.0.0")), to: v("2.0.0") }));
        assert_eq!(history, h(Some("1.0.0"), None, Some("1.0.0")));
        assert_eq!(history.interrupted(), None);
    }

    #[test]
    fn rollback_swaps_current_and_previous() {
        let mut history = h(Some("2.0.0"), Some("1.0.0"), Some("2.0.0"));
        let target = history.rollback_target().cloned().unwrap();
        assert_eq!(target, v("1.0.0"));
        history.begin(target);
        history.succeeded();
        assert_eq!(history, h(Some("1.0.0"), Some("2.0.0"), Some("2.0.0")));
        // And back again.
        let target = history.rollback_target().cloned().unwrap();
        history.begin(target);
        history.succeeded();
        assert_eq!(history, h(Some("2.0.0"), Some("1.0.0"), Some("2.0.0")));
        assert_eq!(History::default().rollback_target(), None);
    }

    #[test]
    fn json_has_versions_as_strings() {
        let mut history = h(Some("1.1.0"), Some("1.0.0"), Some("1.1.0"));
        history.quarantined = vs(&["1.2.0"]);
        history.begin(v("1.3.0-rc.1"));
        let json = serde_json::to_value(&history).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "current": "1.1.0", "previous": "1.0.0", "floor": "1.1.0",
                "quarantined": ["1.2.0"],
                "switching": {"from": "1.1.0", "to": "1.3.0-rc.1"},
            })
        );
        let back: History = serde_json::from_value(json).unwrap();
        assert_eq!(back, history);
        // Missing fields are defaults; unknown ones are ignored.
        let sparse: History = serde_json::from_str(r#"{"current": "1.0.0", "later": 1}"#).unwrap();
        assert_eq!(sparse, h(Some("1.0.0"), None, None));
        assert!(serde_json::from_str::<History>(r#"{"current": "one"}"#).is_err());
    }
}

mod removal {
    use super::*;

    fn names(list: Vec<Version>) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn table() {
        let base = History {
            current: Some(v("5.0.0")),
            previous: Some(v("4.0.0")),
            floor: Some(v("5.0.0")),
            ..History::default()
        };
        let installed = vs(&["1.0.0", "2.0.0", "3.0.0", "4.0.0", "5.0.0"]);
        let none = BTreeSet::new();
        // (what, installed, history, keep, running, removed)
        type Case = (&'static str, BTreeSet<Version>, History, usize, BTreeSet<Version>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "keep 3: current, previous and the newest other",
                installed.clone(),
                base.clone(),
                3,
                none.clone(),
                vec!["1.0.0", "2.0.0"],
            ),
            (
                "keep 2: only the protected",
                installed.clone(),
                base.clone(),
                2,
                none.clone(),
                vec!["1.0.0", "2.0.0", "3.0.0"],
            ),
            ("keep 10: nothing goes", installed.clone(), base.clone(), 10, none.clone(), vec![]),
            (
                "keep 0 still keeps the protected",
                installed.clone(),
                base.clone(),
                0,
                none.clone(),
                vec!["1.0.0", "2.0.0", "3.0.0"],
            ),
            (
                "a running version stays",
                installed.clone(),
                base.clone(),
                2,
                vs(&["1.0.0"]),
                vec!["2.0.0", "3.0.0"],
            ),
            (
                "quarantined go first, whatever keep",
                installed.clone(),
                History { quarantined: vs(&["3.0.0", "4.0.0"]), ..base.clone() },
                10,
                none.clone(),
                vec!["3.0.0"],
            ),
            (
                "quarantined first, then the oldest",
                installed.clone(),
                History { quarantined: vs(&["3.0.0"]), ..base.clone() },
                3,
                none.clone(),
                vec!["3.0.0", "1.0.0"],
            ),
            (
                "both ends of a switch stay",
                installed.clone(),
                History {
                    switching: Some(Switching { from: Some(v("5.0.0")), to: v("2.0.0") }),
                    ..base.clone()
                },
                2,
                none.clone(),
                vec!["1.0.0", "3.0.0"],
            ),
            (
                "versions in the history but not installed do not count",
                vs(&["1.0.0", "2.0.0", "5.0.0"]),
                base.clone(),
                3,
                none.clone(),
                vec![],
            ),
            ("nothing installed", BTreeSet::new(), base.clone(), 3, none.clone(), vec![]),
            (
                "semver order, not text order",
                vs(&["1.9.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "2.0.0"]),
                History { current: Some(v("2.0.0")), ..History::default() },
                3,
                none.clone(),
                vec!["1.2.0", "1.9.0"],
            ),
        ];
        for (what, installed, history, keep, running, removed) in cases {
            assert_eq!(names(to_remove(&installed, &history, keep, &running)), removed, "{what}");
        }
    }

    fn version() -> impl Strategy<Value = Version> {
        (0u64..4, 0u64..4).prop_map(|(major, minor)| Version::new(major, minor, 0))
    }

    fn maybe() -> impl Strategy<Value = Option<Version>> {
        prop::option::of(version())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn never_removes_what_is_protected(
            installed in prop::collection::btree_set(version(), 0..12),
            current in maybe(),
            previous in maybe(),
            switching in prop::option::of((maybe(), version())),
            quarantined in prop::collection::btree_set(version(), 0..5),
            running in prop::collection::btree_set(version(), 0..3),
            keep in 0usize..8,
        ) {
            let history = History {
                current,
                previous,
                floor: None,
                quarantined,
                switching: switching.map(|(from, to)| Switching { from, to }),
            };
            let removed = to_remove(&installed, &history, keep, &running);
            let mut protected = history.protected();
            protected.extend(running.iter().cloned());
            let removed_set: BTreeSet<Version> = removed.iter().cloned().collect();
            prop_assert_eq!(removed_set.len(), removed.len(), "each version once");
            for r in &removed {
                prop_assert!(installed.contains(r), "{} is not installed", r);
                prop_assert!(!protected.contains(r), "{} is protected", r);
            }
            let kept = installed.len() - removed.len();
            let protected_installed = installed.intersection(&protected).count();
            prop_assert!(kept <= keep.max(protected_installed), "kept {} of keep {}", kept, keep);
            // Nothing that could stay goes: short of `keep`, only quarantined versions go.
            if kept < keep {
                for r in &removed {
                    prop_assert!(history.quarantined.contains(r));
                }
            }
        }
    }
}
