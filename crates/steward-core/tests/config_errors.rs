//! Every kind of mistake in a config file is reported at its exact line:col, with a message
//! that says what is wrong and a hint.

mod support;

use std::path::Path;
use steward_core::config::load;
use support::{errors, errors_with, hint, origin, single_error, FakeEnv};

fn none() -> FakeEnv {
    FakeEnv::new()
}

#[test]
fn unknown_key_suggests_the_closest() {
    let src = "[programs.web]\ncommand = \"x\"\nrestrat = \"always\"\n";
    let d = single_error(src, &none(), 3, 1, "unknown key `restrat` in [programs.web]");
    assert_eq!(hint(&d), "did you mean `restart`?");
    assert_eq!(d.width, 7);
}

#[test]
fn unknown_key_far_from_any_lists_the_known_keys() {
    let src = "[programs.web.log]\nbanana = 1\n";
    let diags = errors(src);
    // The missing `command` is reported too, at the program's name.
    let d = diags.iter().find(|d| d.message.contains("banana")).unwrap();
    assert_eq!((d.line, d.col), (2, 1));
    assert!(d.message.contains("unknown key `banana` in [programs.web.log]"));
    assert!(hint(d).contains("`max_size`, `rotate_every`, `keep`, `compress`"), "{}", hint(d));
}

#[test]
fn unknown_top_level_table() {
    let src = "[server]\nlisten = \"127.0.0.1:0\"\n";
    let d = single_error(src, &none(), 1, 2, "unknown table `[server]`");
    assert!(hint(&d).contains("[programs.NAME]"));
    let d = single_error("[program.web]\ncommand = \"x\"\n", &none(), 1, 2, "unknown table `[program]`");
    assert_eq!(hint(&d), "did you mean `programs`?");
}

#[test]
fn wrong_type() {
    let src = "[programs.web]\ncommand = \"x\"\nautostart = \"yes\"\n";
    let d = single_error(src, &none(), 3, 13, "`autostart` must be a boolean, found a string");
    assert_eq!(hint(&d), "for example: `autostart = false`");
    let src = "[programs.web]\ncommand = 42\n";
    single_error(src, &none(), 2, 11, "`command` must be an array of strings or a string, found an integer");
    let src = "[programs.web]\ncommand = [\"run\", 1]\n";
    single_error(src, &none(), 2, 19, "`command[1]` must be a string, found an integer");
    let src = "[supervisor]\nstate_dir = false\n";
    single_error(src, &none(), 2, 13, "`state_dir` must be a string, found a boolean");
    let src = "programs = 3\n";
    single_error(src, &none(), 1, 12, "`programs` must be a table, found an integer");
}

#[test]
fn bad_duration() {
    let src = "[programs.web]\ncommand = \"x\"\nstop_timeout = \"10 parsecs\"\n";
    let d = single_error(src, &none(), 3, 16, "`stop_timeout` is not a valid duration");
    assert!(hint(&d).contains("\"150ms\""));
}

#[test]
fn duration_without_unit() {
    let src = "[programs.web]\ncommand = \"x\"\nrestart_delay = 5\n";
    let d = single_error(src, &none(), 3, 17, "`restart_delay` must be a duration string");
    assert_eq!(hint(&d), "add a unit and quotes: `restart_delay = \"5s\"`");
}

#[test]
fn bad_size() {
    let src = "[programs.web]\ncommand = \"x\"\n\n[programs.web.log]\nmax_size = \"lots\"\n";
    single_error(src, &none(), 5, 12, "`max_size` is not a valid size");
    let src = "[programs.web]\ncommand = \"x\"\nlog = { max_size = -1 }\n";
    single_error(src, &none(), 3, 20, "`max_size` must be between 0 and");
}

#[test]
fn bad_restart_value() {
    let src = "[programs.web]\ncommand = \"x\"\nrestart = \"sometimes\"\n";
    let d =
        single_error(src, &none(), 3, 11, "`restart` must be one of \"always\", \"on-failure\", \"never\"");
    assert!(d.message.contains("found \"sometimes\""));
    let src = "[programs.web]\ncommand = \"x\"\nrestart = \"on_failure\"\n";
    let d = single_error(src, &none(), 3, 11, "must be one of");
    assert_eq!(hint(&d), "did you mean \"on-failure\"?");
}

#[test]
fn bad_stop_signal() {
    let src = "[programs.web]\ncommand = \"x\"\nstop_signal = \"TERMINATE\"\n";
    let d = single_error(src, &none(), 3, 15, "`stop_signal` must be one of \"TERM\", \"INT\"");
    assert!(d.message.contains("\"ctrl-break\""));
}

#[test]
fn bad_rotate_every() {
    let src = "[programs.web]\ncommand = \"x\"\n[programs.web.log]\nrotate_every = \"weekly\"\n";
    single_error(src, &none(), 4, 16, "`rotate_every` must be one of \"hourly\", \"daily\"");
}

#[test]
fn bad_ready_value() {
    let src = "[programs.web]\ncommand = \"x\"\nready = \"notfy\"\n";
    let d = single_error(src, &none(), 3, 9, "`ready` must be one of \"up\", \"notify\"");
    assert_eq!(hint(&d), "did you mean \"notify\"?");
}

#[test]
fn zero_watchdog() {
    let src = "[supervisor]\nwatchdog = \"0s\"\n";
    let d = single_error(src, &none(), 2, 12, "`watchdog` must be longer than 0");
    assert_eq!(hint(&d), "remove the key to turn the watchdog off");
}

#[test]
fn empty_command() {
    let src = "[programs.web]\ncommand = []\n";
    let d = single_error(src, &none(), 2, 11, "`command` is empty");
    assert!(hint(&d).contains("command = ["));
    single_error("[programs.web]\ncommand = \"  \"\n", &none(), 2, 11, "`command` is empty");
    single_error(
        "[programs.web]\ncommand = [\"\", \"x\"]\n",
        &none(),
        2,
        12,
        "`command[0]`, the program to run, is empty",
    );
}

#[test]
fn missing_command() {
    let src = "[programs.web]\nautostart = false\n";
    let d = single_error(src, &none(), 1, 11, "program `web` has no `command`");
    assert!(hint(&d).contains("command = ["));
}

#[test]
fn unbalanced_quotes_in_a_string_command() {
    let src = "[programs.web]\ncommand = \"sh -c 'echo hi\"\n";
    let d = single_error(src, &none(), 2, 11, "`command` has an unbalanced quote");
    assert!(hint(&d).contains("array"));
}

#[test]
fn unknown_dependency() {
    let src = "[programs.db]\ncommand = \"db\"\n\n[programs.web]\ncommand = \"web\"\ndepends_on = [\"cache\", \"dbb\"]\n";
    let diags = errors(src);
    assert_eq!(diags.len(), 2, "{diags}");
    let (cache, dbb) = (&diags.0[0], &diags.0[1]);
    assert_eq!((cache.line, cache.col), (6, 15));
    assert!(cache.message.contains("`depends_on` names an unknown program `cache`"));
    assert_eq!((dbb.line, dbb.col), (6, 24));
    assert_eq!(hint(dbb), "did you mean \"db\"?");
}

#[test]
fn self_dependency() {
    let src = "[programs.web]\ncommand = \"web\"\ndepends_on = [\"web\"]\n";
    single_error(src, &none(), 3, 15, "program `web` depends on itself");
}

#[test]
fn dependency_cycle_names_its_members() {
    let src = "[programs.a]\ncommand = \"a\"\ndepends_on = [\"b\"]\n\n\
               [programs.b]\ncommand = \"b\"\ndepends_on = [\"a\"]\n";
    let d = single_error(src, &none(), 3, 15, "dependency cycle: a -> b -> a");
    assert!(hint(&d).contains("remove one"));

    let src = "[programs.x]\ncommand = \"x\"\ndepends_on = [\"y\"]\n\
               [programs.y]\ncommand = \"y\"\ndepends_on = [\"z\"]\n\
               [programs.z]\ncommand = \"z\"\ndepends_on = [\"x\"]\n\
               [programs.w]\ncommand = \"w\"\ndepends_on = [\"x\"]\n";
    single_error(src, &none(), 3, 15, "dependency cycle: x -> y -> z -> x");
}

#[test]
fn two_separate_cycles_are_both_reported() {
    let src = "[programs.a]\ncommand = \"a\"\ndepends_on = [\"b\"]\n\
               [programs.b]\ncommand = \"b\"\ndepends_on = [\"a\"]\n\
               [programs.c]\ncommand = \"c\"\ndepends_on = [\"c2\"]\n\
               [programs.c2]\ncommand = \"c2\"\ndepends_on = [\"c\"]\n";
    let diags = errors(src);
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages, ["dependency cycle: a -> b -> a", "dependency cycle: c -> c2 -> c"]);
}

#[test]
fn unterminated_interpolation_points_inside_the_string() {
    let src = "[programs.web]\ncommand = \"x\"\ncwd = \"/srv/${APP\"\n";
    let d = single_error(src, &none(), 3, 13, "unterminated `${`");
    assert_eq!(d.width, "${APP".len());
}

#[test]
fn unset_variable_without_default() {
    let src = "[programs.web]\ncommand = [\"run\", \"--db=${DB_URL}\"]\n";
    let d = single_error(src, &none(), 2, 25, "environment variable `DB_URL` is not set (in `command[1]`)");
    assert!(hint(&d).contains("${DB_URL:-default}"), "{}", hint(&d));
    assert_eq!(d.width, "${DB_URL}".len());
}

#[test]
fn unset_variable_in_an_env_table_and_behind_an_escape() {
    // An escape before the reference: the position falls back to the start of the value.
    let src = "[programs.web]\ncommand = \"x\"\nenv = { A = \"\\t${NOPE}\" }\n";
    single_error(src, &none(), 3, 13, "`NOPE` is not set (in `env.A`)");
}

#[test]
fn missing_env_file() {
    let src = "[programs.web]\ncommand = \"x\"\nenv_file = \"secrets.env\"\n";
    let d = single_error(src, &none(), 3, 12, "cannot read env_file");
    assert!(d.message.contains("secrets.env"));
    assert!(hint(&d).contains("config file's folder"));
}

#[test]
fn malformed_env_file() {
    let env = FakeEnv::new().file(support::dir().join(".env"), "GOOD=1\nthis is not dotenv\n");
    let src = "[programs.web]\ncommand = \"x\"\nenv_file = \".env\"\n";
    single_error(src, &env, 3, 12, "cannot parse the line `this is not dotenv`");
}

#[test]
fn env_values_must_be_strings() {
    let src = "[programs.web]\ncommand = \"x\"\nenv = { PORT = 8080 }\n";
    let d = single_error(src, &none(), 3, 16, "`env.PORT` must be a string, found an integer");
    assert_eq!(hint(&d), "quote it: `PORT = \"8080\"`");
}

#[test]
fn invalid_program_name() {
    let src = "[programs.\"my app\"]\ncommand = \"x\"\n";
    let d = single_error(src, &none(), 1, 11, "invalid program name `my app`");
    assert!(hint(&d).contains("file name"));
    single_error("[programs.\".hidden\"]\ncommand = \"x\"\n", &none(), 1, 11, "starts with `.`");
    single_error("[programs.nul]\ncommand = \"x\"\n", &none(), 1, 11, "reserved device name");
}

#[test]
fn program_must_be_a_table() {
    let src = "[programs]\nweb = \"python app.py\"\n";
    single_error(src, &none(), 2, 7, "`web` must be a table, found a string");
}

#[test]
fn restart_max_delay_shorter_than_restart_delay() {
    let src = "[programs.web]\ncommand = \"x\"\nrestart_delay = \"10s\"\nrestart_max_delay = \"5s\"\n";
    let d =
        single_error(src, &none(), 4, 21, "`restart_max_delay` (5s) is shorter than `restart_delay` (10s)");
    assert!(hint(&d).contains("at least"));
    // Only `restart_delay` given, above the default maximum.
    let src = "[programs.web]\ncommand = \"x\"\nrestart_delay = \"1m\"\n";
    let d = single_error(src, &none(), 3, 17, "longer than the default `restart_max_delay` (30s)");
    assert_eq!(hint(&d), "also set `restart_max_delay` to at least \"1m\"");
}

#[test]
fn exit_codes_out_of_range() {
    let src = "[programs.web]\ncommand = \"x\"\nsuccess_exit_codes = [0, 5000000000]\n";
    single_error(src, &none(), 3, 26, "`success_exit_codes[1]` must be between -2147483648 and 2147483647");
}

#[test]
fn negative_count() {
    let src = "[programs.web]\ncommand = \"x\"\nmax_restarts = -1\n";
    single_error(src, &none(), 3, 16, "`max_restarts` must be between 0 and 4294967295, found -1");
}

#[test]
fn toml_syntax_error() {
    let src = "[programs.web]\ncommand = \"x\nrestart = \"always\"\n";
    let d = single_error(src, &none(), 2, 13, "invalid TOML");
    assert!(hint(&d).contains("syntax"));
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let src = "[programs.web]\ncommand = \"x\"\ncommand = \"y\"\n";
    let d = single_error(src, &none(), 3, 1, "duplicate key");
    assert!(hint(&d).contains("only once"));
}

#[test]
fn every_mistake_is_reported_at_once() {
    let src = r#"[supervisor]
stat_dir = "state"

[programs.web]
command = "python app.py"
autostart = "yes"
restart = "sometimes"
depends_on = ["dbb"]

[programs.db]
command = []
stop_timeout = "forever"

[programs.worker]
command = ["work", "${QUEUE}"]
"#;
    let diags = errors(src);
    let got: Vec<(usize, usize)> = diags.iter().map(|d| (d.line, d.col)).collect();
    assert_eq!(got, [(2, 1), (6, 13), (7, 11), (8, 15), (11, 11), (12, 16), (15, 21)], "{diags}");
    let shown = diags.to_string();
    assert!(shown.ends_with(&format!("7 errors in {}", origin().display())), "{shown}");
    assert!(shown.contains("hint: did you mean `state_dir`?"), "{shown}");
    assert!(shown.contains("hint: did you mean \"db\"?"), "{shown}");
    // Each block starts with the grep-friendly `file:line:col: error: message` line.
    let headers = shown.lines().filter(|l| l.starts_with(&format!("{}:", origin().display()))).count();
    assert_eq!(headers, 7);
}

#[test]
fn display_shows_a_snippet_with_a_caret() {
    let src = "[programs.web]\ncommand = \"x\"\nrestrat = \"always\"\n";
    let shown = errors(src).to_string();
    let file = origin().display().to_string();
    let expected = format!(
        "{file}:3:1: error: unknown key `restrat` in [programs.web]\n    3 | restrat = \"always\"\n      | ^^^^^^^\n  \
         hint: did you mean `restart`?\n1 error in {file}"
    );
    assert_eq!(shown, expected);
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
