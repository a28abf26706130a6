//! Every kind of mistake in a config file is reported at its exact line:col, with a message
//! that says what is wrong and a hint: a golden corpus of what `steward check` prints (it prints
//! the diagnostics as they display). A case may also be a valid file with warnings: then the
//! expected output is its warnings.
//!
//! `tests/golden/check/NAME.toml` is a config, `NAME.txt` exactly what its diagnostics show,
//! with the config's path written `steward.toml` and its folder `<dir>`. An optional
//! `NAME.env` is the `.env` file in the config's folder. Any change of wording, position,
//! snippet or hint fails its case; after a deliberate change, rewrite the expected output
//! with `UPDATE_GOLDEN=1 cargo test -p steward-core --test integration config_errors` and review the
//! diff.

use std::fs;
use std::path::{Path, PathBuf};

use steward_core::config::load;

use crate::support::{self, errors, errors_with, hint, parse_with, FakeEnv};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/check")
}

/// What `steward check` shows for case `name`, with the fake folder's paths written portably.
fn shown(name: &str) -> String {
    let config = corpus().join(format!("{name}.toml"));
    let src = fs::read_to_string(&config).unwrap_or_else(|e| panic!("cannot read {}: {e}", config.display()));
    // Git may check text files out with CRLF on Windows.
    let src = src.replace("\r\n", "\n");
    let mut env = FakeEnv::new();
    if let Ok(dotenv) = fs::read_to_string(corpus().join(format!("{name}.env"))) {
        env = env.file(support::dir().join(".env"), &dotenv.replace("\r\n", "\n"));
    }
    let diags = match parse_with(&src, &env) {
        Ok(config) if config.warnings.is_empty() => panic!("{name}.toml is valid and has no warnings"),
        Ok(config) => config.warnings,
        Err(diags) => diags,
    };
    let text = diags.to_string();
    let dir = support::dir().display().to_string();
    let sep = std::path::MAIN_SEPARATOR;
    text.replace(&support::origin().display().to_string(), "steward.toml")
        .replace(&format!("{dir}{sep}"), "<dir>/")
        .replace(&dir, "<dir>")
}

/// Compares case `name` with its expected output, or writes it with `UPDATE_GOLDEN=1`.
#[track_caller]
fn check(name: &str) {
    let got = shown(name);
    let expected_path = corpus().join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        fs::write(&expected_path, &got)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", expected_path.display()));
        return;
    }
    let expected = fs::read_to_string(&expected_path).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}); write it with UPDATE_GOLDEN=1 and review it", expected_path.display())
    });
    let expected = expected.replace("\r\n", "\n");
    assert!(
        got == expected,
        "`steward check` output of {name}.toml changed (UPDATE_GOLDEN=1 rewrites it):\n--- expected\n{expected}\n--- got\n{got}"
    );
}

/// One test per case, and a test that the list is the corpus, so that no file is forgotten.
macro_rules! corpus {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        #[test]
        fn every_case_of_the_corpus_is_tested() {
            let mut listed: Vec<&str> = vec![$(stringify!($name)),*];
            listed.sort_unstable();
            let mut found: Vec<String> = fs::read_dir(corpus())
                .unwrap()
                .filter_map(|e| {
                    let path = e.ok()?.path();
                    let ext = path.extension()?.to_str()?;
                    ["toml", "txt", "env"].contains(&ext).then(|| path.file_stem()?.to_str().map(str::to_owned))?
                })
                .collect();
            found.sort_unstable();
            found.dedup();
            assert_eq!(found, listed, "each NAME.toml/.txt/.env needs its NAME in corpus! (and the other way round)");
        }
    };
}

corpus! {
    bad_duration,
    bad_ready_value,
    bad_restart_value,
    bad_restart_value_close_to_one,
    bad_rotate_every,
    bad_size,
    bad_stop_signal,
    blank_string_command,
    dependency_cycle_names_its_members,
    dependency_cycle_of_three_with_a_dependent,
    duplicate_key_is_a_syntax_error,
    duration_without_unit,
    durations_longer_than_a_year,
    empty_command,
    empty_program_in_command,
    env_file_line_without_a_name_is_never_shown,
    env_file_value_is_never_shown,
    env_values_must_be_strings,
    every_mistake_is_reported_at_once,
    exit_codes_out_of_range,
    hot_restart_loop_is_a_warning_beside_an_error,
    hot_restart_loop_warns_but_the_file_is_valid,
    invalid_program_name,
    malformed_env_file,
    max_size_of_a_bare_small_number,
    missing_command,
    missing_env_file,
    negative_count,
    negative_size,
    nul_in_argument_and_env_value,
    program_must_be_a_table,
    program_name_reserved_on_windows,
    program_name_starting_with_a_dot,
    program_name_too_long,
    restart_delay_above_the_default_maximum,
    restart_max_delay_shorter_than_restart_delay,
    self_dependency,
    toml_syntax_error,
    two_separate_cycles_are_both_reported,
    unbalanced_quotes_in_a_string_command,
    unknown_dependency,
    unknown_key_far_from_any_lists_the_known_keys,
    unknown_key_suggests_the_closest,
    unknown_top_level_table,
    unknown_top_level_table_close_to_programs,
    unset_variable_in_an_env_table_and_behind_an_escape,
    unset_variable_without_default,
    unterminated_interpolation_points_inside_the_string,
    wrong_type_boolean,
    wrong_type_command,
    wrong_type_command_item,
    wrong_type_programs,
    wrong_type_state_dir,
    zero_watchdog,
}

/// An env file holds secrets: a line that does not parse is named by its number and key,
/// and no part of its text shows in the diagnostic.
#[test]
fn env_file_errors_never_show_the_text_of_the_line() {
    let src = "[programs.web]\ncommand = \"x\"\nenv_file = \".env\"\n";
    let cases = [
        ("A=1\nDB_PASSWORD=hunter2 s3cret\n", "line 2: the value of `DB_PASSWORD`"),
        ("A=1\n\n  export API_KEY = \"hunter2-s3cret\n", "line 3: the value of `API_KEY`"),
        ("TOKEN='hunter2\\q'\nB=2 s3cret\n", "line 2: the value of `B`"),
        ("M=\"multi\nline\"\nhunter2s3cret\n", "line 3 is not `NAME=value`"),
        ("hunter2 s3cret\n", "line 1 is not `NAME=value`"),
        ("K=\\hunter2s3cret\n", "line 1: the value of `K`"),
    ];
    for (dotenv, expected) in cases {
        let env = FakeEnv::new().file(support::dir().join(".env"), dotenv);
        let shown = errors_with(src, &env).to_string();
        assert!(shown.contains(expected), "{dotenv:?}: expected {expected:?} in\n{shown}");
        for secret in ["hunter2", "s3cret"] {
            assert!(!shown.contains(secret), "{dotenv:?}: {secret:?} shown in\n{shown}");
        }
    }
}

#[test]
fn diagnostics_are_std_errors() {
    fn takes_error(_: &dyn std::error::Error) {}
    let diags = errors("x = 1\n");
    takes_error(&diags);
    takes_error(&diags.0[0]);
}

#[test]
fn unreadable_file_is_reported_at_1_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let diags = load(&path).unwrap_err();
    assert_eq!(diags.len(), 1);
    let d = &diags.0[0];
    assert_eq!((d.line, d.col), (1, 1));
    assert_eq!(d.file, path);
    assert!(d.message.contains("cannot read the config file"), "{}", d.message);
    assert!(hint(d).contains("create it"), "{}", hint(d));
}

#[test]
fn load_makes_the_path_absolute() {
    let diags = load(Path::new("surely-not-here/steward.toml")).unwrap_err();
    assert!(diags.0[0].file.is_absolute(), "{}", diags.0[0].file.display());
}

#[test]
fn interpolation_errors_use_the_fake_env_only() {
    // The variable exists in the fake env, so no error, whatever the machine has.
    let env = FakeEnv::new().var("DB_URL", "postgres://x");
    let src = "[programs.web]\ncommand = [\"run\", \"--db=${DB_URL}\"]\n";
    assert!(support::parse_with(src, &env).is_ok());
    assert_eq!(errors_with(src, &FakeEnv::new()).len(), 1);
}

/// The sockets under `state_dir` must fit the socket address of the platform the config is
/// for (107 bytes of path on Linux, 103 on macOS), else steward could not bind them at run.
#[test]
fn socket_paths_must_fit_the_platform() {
    use steward_core::config::{OnPlatform, Platform};
    let origin = Path::new("/srv/steward.toml");
    let on = |platform| OnPlatform { env: FakeEnv::new(), platform };
    let config = |state_dir: &str, name: &str| {
        format!("[supervisor]\nstate_dir = \"{state_dir}\"\n\n[programs.{name}]\ncommand = \"x\"\nready = \"notify\"\n")
    };
    let messages = |src: &str, platform| match steward_core::config::parse_str(src, origin, &on(platform)) {
        Ok(_) => Vec::new(),
        Err(d) => d.iter().map(|d| (d.line, d.message.clone())).collect(),
    };

    // "/" + 94 = 95 bytes, + "/steward.sock" = 108: one byte too many on Linux.
    let long = format!("/{}", "s".repeat(94));
    let errs = messages(&config(&long, "w"), Platform::Linux);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].0, 2, "at the state_dir line: {errs:#?}");
    assert!(errs[0].1.contains("API socket path") && errs[0].1.contains("108 bytes"), "{errs:#?}");
    // One byte shorter fits Linux, not macOS; Windows has no Unix sockets to bind.
    let fits = format!("/{}", "s".repeat(93));
    let fits_linux = format!("[supervisor]\nstate_dir = \"{fits}\"\n");
    assert_eq!(messages(&fits_linux, Platform::Linux), Vec::new());
    assert_eq!(messages(&fits_linux, Platform::MacOs).len(), 1);
    assert_eq!(
        messages(&config(&long, "w").replace("ready = \"notify\"\n", ""), Platform::Windows),
        Vec::new()
    );

    // The notify socket: "/srv/st" + "/notify/" + name + ".sock", at the program's name.
    let name = "n".repeat(90);
    let errs = messages(&config("/srv/st", &name), Platform::Linux);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].0, 4, "at the program's name: {errs:#?}");
    assert!(errs[0].1.contains("notify socket path"), "{errs:#?}");
    assert_eq!(messages(&config("/srv/st", &"n".repeat(80)), Platform::Linux), Vec::new());
}
