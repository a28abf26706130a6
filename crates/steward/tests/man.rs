//! `steward man --out DIR`: a page for steward and each of its verbs, and steward.toml(5),
//! each rendered by the real `man` with its warnings on; steward.toml(5) holds every section
//! of docs/config.md and every key of its tables.
//!
//! Needs man-db's `man` (and groff): skipped when it is missing, unless
//! `STEWARD_TEST_REQUIRE=man` (as in CI), which makes a missing `man` a failure.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Whether `man` is here (or the test may not skip).
fn have_man() -> bool {
    let found = Command::new("man").arg("--version").output().is_ok_and(|o| o.status.success());
    let required = std::env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t == "man"));
    assert!(
        found || !required,
        "man is required (STEWARD_TEST_REQUIRE) but not installed: apt-get install man-db groff-base"
    );
    if !found {
        eprintln!("SKIPPED: man is not installed (apt-get install man-db groff-base)");
    }
    found
}

/// `man -l FILE` as plain text, 80 columns; panics if man fails or warns.
#[track_caller]
fn render(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("MANROFFSEQ", "")
        .env("MAN_KEEP_FORMATTING", "")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run man");
    assert!(
        out.status.success() && out.stderr.is_empty() && !out.stdout.is_empty(),
        "man -l {}: {}",
        page.display(),
        testkit::describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The verbs `steward --help` lists (not `help`).
fn verbs() -> Vec<String> {
    let out = Command::new(STEWARD).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let commands = help.split("Commands:").nth(1).expect("a Commands section").split("\n\n").next().unwrap();
    let verbs: Vec<String> = commands
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next().map(str::to_owned))
        .filter(|v| v != "help")
        .collect();
    assert!(verbs.len() > 10, "{help}");
    verbs
}

/// Words joined by single spaces: what a heading is, however the page wrapped it.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn every_page_renders_without_warnings() {
    if !have_man() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet, two levels down.
    let out_dir = dir.path().join("share/man");
    // The date of a package build, for pages that do not change from build to build.
    let out = Command::new(STEWARD)
        .args(["man", "--out"])
        .arg(&out_dir)
        .env("SOURCE_DATE_EPOCH", "1764806400")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", testkit::describe(&out));

    let mut files: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    for expected in ["steward.1", "steward.toml.5", "steward-service-install.1", "steward-wrap-install.1"] {
        assert!(files.iter().any(|f| f == expected), "no {expected} in {files:?}");
    }
    for verb in verbs() {
        let page = format!("steward-{verb}.1");
        assert!(files.contains(&page), "`steward {verb}` has no page {page} in {files:?}");
    }
    // steward prints what it wrote, one path a line.
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), files.len());

    for file in &files {
        let text = render(&out_dir.join(file));
        // The header names the page as its file does: `steward-run(1)`, `steward.toml(5)`.
        let (name, section) = file.rsplit_once('.').unwrap();
        let title = format!("{name}({section})");
        assert!(text.lines().next().is_some_and(|l| l.starts_with(&title)), "{file} is not {title}:\n{text}");
        assert!(text.contains("steward manual"), "{file}:\n{text}");
        assert!(text.contains("2025-12-04"), "{file} is not dated SOURCE_DATE_EPOCH:\n{text}");
    }

    // A verb's page says what `--help` says.
    let run = squeeze(&render(&out_dir.join("steward-run.1")));
    assert!(run.contains("Run the supervisor in the foreground"), "{run}");
    assert!(run.contains("--demo"), "{run}");
    let top = squeeze(&render(&out_dir.join("steward.1")));
    assert!(top.contains("steward.toml(5)") && top.contains("completions"), "{top}");

    // Running it again replaces the pages.
    let out = Command::new(STEWARD).args(["man", "--out"]).arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", testkit::describe(&out));
}

#[test]
fn the_config_page_has_every_section_and_key_of_the_config_reference() {
    if !have_man() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(STEWARD).args(["man", "--out"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", testkit::describe(&out));
    let file = dir.path().join("steward.toml.5");
    let page = squeeze(&render(&file));
    // The headings of the page's source: `.SH "[supervisor]"`, `.SS cwd`.
    let source = std::fs::read_to_string(&file).unwrap();
    let headings: Vec<(&str, &str)> = source
        .lines()
        .filter_map(|l| {
            let (request, title) = l.split_once(' ')?;
            matches!(request, ".SH" | ".SS").then(|| (request, title.trim_matches('"')))
        })
        .collect();

    let reference =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md"))
            .expect("docs/config.md");
    let mut in_code = false;
    let (mut sections, mut keys) = (0, 0);
    for line in reference.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        // Every section (.SH) and subsection (.SS), by its title (code spans are plain text on
        // the page), in the source and on the rendered page.
        let heading = match line.split_once(' ') {
            Some(("##", title)) => Some((".SH", title)),
            Some(("###", title)) => Some((".SS", title)),
            _ => None,
        };
        if let Some((request, title)) = heading {
            let title = title.replace('`', "");
            assert!(
                headings.contains(&(request, title.as_str())),
                "steward.toml(5) has no {request} {title:?}; it has {headings:?}"
            );
            assert!(page.contains(&squeeze(&title)), "steward.toml(5) shows no {title:?}:\n{page}");
            sections += 1;
        }
        // Every key of a key table (`| `state_dir` | path | ... |`), with its type.
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let [_, key, kind, _, _, _] = cells[..] {
            if key.starts_with('`') && key != "key" {
                let kind = kind.replace('`', "").replace('\u{2265}', ">=");
                let entry = squeeze(&format!("{} type: {kind}", key.replace('`', "")));
                assert!(page.contains(&entry), "steward.toml(5) has no entry {entry:?}:\n{page}");
                keys += 1;
            }
        }
    }
    // The reference has these at least; fewer means this test stopped reading it right.
    assert!(sections >= 20 && keys >= 50, "{sections} sections, {keys} keys");
}
