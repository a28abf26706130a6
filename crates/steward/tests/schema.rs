//! `steward schema` checked by a validator steward did not write: Python's `jsonschema`
//! (Debian: python3-jsonschema), with TOML read by Python's `tomllib`. Every config of the
//! repo must validate (examples/, the `toml` blocks of docs/ and README.md, the generated
//! test configs, what `init` and `add` write), and a copy with a typo must not.
//!
//! Skipped with a message when python3 or jsonschema is missing, unless
//! `STEWARD_TEST_REQUIRE` names `jsonschema` (CI does).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Validates each file given after the schema against it: a TOML file as a whole, a
/// Markdown file block by block (its ```toml blocks). Prints `ok NAME` or `invalid NAME:
/// PATH: MESSAGE` for each, and exits 0 when it could check them all.
const VALIDATE: &str = r#"
import json, re, sys, tomllib
import jsonschema
schema = json.load(open(sys.argv[1], encoding="utf-8"))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    text = open(path, encoding="utf-8").read()
    if path.endswith(".md"):
        blocks = re.findall(r"^```toml\n(.*?)^```", text, re.S | re.M)
        named = [(f"{path} block {i + 1}", b) for i, b in enumerate(blocks)]
    else:
        named = [(path, text)]
    for name, block in named:
        errors = list(validator.iter_errors(tomllib.loads(block)))
        if not errors:
            print(f"ok {name}")
        for e in errors:
            where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
            print(f"invalid {name}: {where}: {e.message}")
"#;

/// Whether python3 with jsonschema is here; a test that needs it returns early (or fails,
/// when `STEWARD_TEST_REQUIRE` names `jsonschema`).
fn have_jsonschema() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import jsonschema, tomllib"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    let required =
        std::env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t == "jsonschema"));
    assert!(
        !required,
        "python3 with jsonschema is required (STEWARD_TEST_REQUIRE): apt-get install python3-jsonschema"
    );
    eprintln!("SKIPPED: python3 with jsonschema is not installed (apt-get install python3-jsonschema)");
    false
}

/// `steward schema --out` into `dir`; returns the file.
fn schema_file(dir: &Path) -> PathBuf {
    let path = dir.join("steward.schema.json");
    let out =
        Command::new(STEWARD).arg("schema").arg("--out").arg(&path).output().expect("run steward schema");
    assert!(out.status.success(), "{}", testkit::describe(&out));
    path
}

/// The validator's line for each file (or block), by name.
fn validate(schema: &Path, files: &[PathBuf]) -> Vec<String> {
    let out =
        Command::new("python3").args(["-c", VALIDATE]).arg(schema).args(files).output().expect("run python3");
    assert!(out.status.success(), "the validator failed: {}", testkit::describe(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every config of the repo: examples, the docs' blocks, the generated wrap configs.
fn repo_configs() -> Vec<PathBuf> {
    let root = repo();
    let mut files = Vec::new();
    let mut add_dir = |dir: PathBuf, ext: &str| {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let mut found: Vec<PathBuf> = entries
            .map(|e| e.expect("a folder entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        found.sort();
        files.extend(found);
    };
    add_dir(root.join("examples"), "toml");
    add_dir(root.join("crates/steward-core/tests/golden"), "toml");
    add_dir(root.join("docs"), "md");
    files.push(root.join("README.md"));
    // library.md's block is a Cargo.toml, not a config.
    files.retain(|f| !f.ends_with("docs/library.md"));
    files
}

#[test]
fn every_config_of_the_repo_validates() {
    if !have_jsonschema() {
        return;
    }
    let dir = testkit::tempfile::tempdir().expect("temp dir");
    let schema = schema_file(dir.path());
    let files = repo_configs();
    let lines = validate(&schema, &files);
    let invalid: Vec<&String> = lines.iter().filter(|l| !l.starts_with("ok ")).collect();
    assert!(invalid.is_empty(), "configs of the repo the schema refuses:\n{invalid:#?}");
    // Nothing was skipped: at least the examples, both wrap configs and the reference's blocks.
    let oks = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert!(oks("examples/demo.toml") == 1, "{lines:#?}");
    assert!(oks("wrap-full.toml") == 1 && oks("wrap-minimal.toml") == 1, "{lines:#?}");
    assert!(oks("docs/config.md block") >= 15, "{lines:#?}");
    assert!(oks("docs/deploy.md block") >= 1 && oks("docs/instances.md block") >= 1, "{lines:#?}");
}

/// What `init` and `add` write validates too.
#[test]
fn files_from_init_and_add_validate() {
    if !have_jsonschema() {
        return;
    }
    let dir = testkit::tempfile::tempdir().expect("temp dir");
    let schema = schema_file(dir.path());
    let run = |config: &Path, args: &[&str]| {
        let out = Command::new(STEWARD).arg("-c").arg(config).args(args).output().expect("run steward");
        assert!(out.status.success(), "{args:?}: {}", testkit::describe(&out));
    };
    let with = dir.path().join("with.toml");
    run(&with, &["init", "--", "python3", "-m", "http.server", "0"]);
    run(&with, &["add", "worker", "--", "python3", "worker.py"]);
    let without = dir.path().join("without.toml");
    run(&without, &["init"]);
    let lines = validate(&schema, &[with, without]);
    assert_eq!(lines.iter().filter(|l| l.starts_with("ok ")).count(), 2, "{lines:#?}");
}

/// A typo in a key, at each level, and a value of the wrong kind, fail: the schema is not
/// one that accepts anything.
#[test]
fn a_typo_fails_validation() {
    if !have_jsonschema() {
        return;
    }
    let dir = testkit::tempfile::tempdir().expect("temp dir");
    let schema = schema_file(dir.path());
    let demo = std::fs::read_to_string(repo().join("examples/demo.toml")).expect("read the demo");
    // Each mistake, with what the validator must say about it.
    let mistakes = [
        ("restart_delay =", "restart_dealy =", "'restart_dealy' was unexpected"),
        ("keep = 3", "kep = 3", "'kep' was unexpected"),
        ("[supervisor]", "[supervisr]", "'supervisr' was unexpected"),
        ("state_dir =", "statedir =", "'statedir' was unexpected"),
        ("restart = \"on-failure\"", "restart = \"sometimes\"", "restart"),
        ("max_restarts = 4", "max_restarts = \"4\"", "max_restarts"),
        ("max_restarts = 4", "max_restarts = -1", "max_restarts"),
        ("depends_on = [\"db\"]", "depends_on = \"db\"", "depends_on"),
        ("[programs.db]\ncommand", "[programs.db]\ncomand", "'command' is a required property"),
    ];
    let mut files = Vec::new();
    for (i, (from, to, _)) in mistakes.iter().enumerate() {
        assert!(demo.contains(from), "examples/demo.toml has no {from:?}");
        let path = dir.path().join(format!("typo{i}.toml"));
        std::fs::write(&path, demo.replacen(from, to, 1)).expect("write");
        files.push(path);
    }
    // The demo itself passes, so each failure is the mistake's.
    let demo_path = dir.path().join("demo.toml");
    std::fs::write(&demo_path, &demo).expect("write");
    files.push(demo_path);
    let lines = validate(&schema, &files);
    for (i, (_, to, says)) in mistakes.iter().enumerate() {
        let name = format!("typo{i}.toml");
        let about: Vec<&String> = lines.iter().filter(|l| l.contains(&name)).collect();
        assert!(
            !about.is_empty() && about.iter().all(|l| l.starts_with("invalid ")),
            "{to:?} passed: {about:#?}"
        );
        assert!(about.iter().any(|l| l.contains(says)), "{to:?}: expected {says:?} in {about:#?}");
    }
    assert!(lines.iter().any(|l| l.starts_with("ok ") && l.contains("demo.toml")), "{lines:#?}");
}

/// Signal names go in any case and with `SIG`, as the parser takes them; and a value from
/// the environment (`${VAR}`) is allowed where a choice goes.
#[test]
fn signal_names_and_templates_validate() {
    if !have_jsonschema() {
        return;
    }
    let dir = testkit::tempfile::tempdir().expect("temp dir");
    let schema = schema_file(dir.path());
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let good = write(
        "good.toml",
        "[programs.a]\ncommand = \"a\"\nstop_signal = \"sigint\"\nrestart = \"${STEWARD_TEST_UNSET_RESTART:-always}\"\n\
         [programs.b]\ncommand = [\"b\"]\nstop_signal = \"ctrl-break\"\n",
    );
    let bad = write("bad.toml", "[programs.a]\ncommand = \"a\"\nstop_signal = \"SIGFOO\"\n");
    // steward's own parser agrees on both.
    assert!(steward_core::config::load(&good).is_ok());
    assert!(steward_core::config::load(&bad).is_err());
    let lines = validate(&schema, &[good, bad]);
    assert!(
        lines.iter().any(|l| l == &format!("ok {}", dir.path().join("good.toml").display())),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("invalid ") && l.contains("bad.toml")), "{lines:#?}");
}
