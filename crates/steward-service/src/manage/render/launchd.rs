//! The launchd property list of a service: a LaunchDaemon (system) or a LaunchAgent (user).
//!
//! - `RunAtLoad`: launchd starts the job when the plist is loaded (at boot for a daemon, at
//!   login for an agent, and on `launchctl bootstrap`); false for [`StartType::Manual`], and
//!   `Disabled` for [`StartType::Disabled`].
//! - `KeepAlive`: `{SuccessfulExit = false}` restarts after a failure only, `true` always.
//!   `ThrottleInterval` is the restart delay; launchd has one, so delays that differ are an
//!   error.
//! - `ExitTimeOut`: seconds between launchd's SIGTERM and its SIGKILL (the stop timeout).
//! - launchd has no journal: the log file is `StandardOutPath` and `StandardErrorPath`.
//! - launchd has no readiness protocol (started is ready), no watchdog, no start timeout, no
//!   dependencies and no description: those are errors, except the description, which goes
//!   into the opening XML comment with the notes. XML forbids `--` inside a comment and a
//!   `-` at its end, and strict parsers (Python's `plistlib`, for one) refuse such a file, so
//!   comment text goes through `comment`.

use std::fmt::Write as _;

use super::super::{Account, Error, KillMode, Platform, RestartOn, Scope, ServiceSpec, StartType};
use super::{check_text, command, env, path_text, secs_up};

const P: Platform = Platform::Launchd;

/// The plist text.
pub fn plist(spec: &ServiceSpec) -> Result<String, Error> {
    unsupported(spec)?;
    let (exe, args) = command(spec)?;
    let mut comment_lines: Vec<&str> = Vec::new();
    if let Some(description) = &spec.description {
        check_text("description", description)?;
        check_xml_chars("description", description)?;
        comment_lines.push(description);
    }
    for note in &spec.notes {
        check_text("note", note)?;
        check_xml_chars("note", note)?;
        comment_lines.push(note);
    }
    check_xml_chars("executable", &exe)?;
    for arg in &args {
        check_xml_chars("argument", arg)?;
    }

    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
    );
    if !comment_lines.is_empty() {
        comment(&mut out, &comment_lines);
    }
    out.push_str("<plist version=\"1.0\">\n<dict>\n");
    key_string(&mut out, 1, "Label", &spec.name);
    key(&mut out, 1, "ProgramArguments");
    out.push_str("\t<array>\n");
    for arg in std::iter::once(&exe).chain(&args) {
        string(&mut out, 2, arg);
    }
    out.push_str("\t</array>\n");
    if let Some(dir) = &spec.working_dir {
        let dir = path_text("working_dir", dir)?;
        check_xml_chars("working_dir", &dir)?;
        key_string(&mut out, 1, "WorkingDirectory", &dir);
    }
    match (&spec.account, spec.scope) {
        (Account::Default, _) => {}
        (_, Scope::User) => {
            return Err(Error::unsupported(
                "account",
                P,
                "a LaunchAgent runs as its user; accounts are for system services",
            ))
        }
        (Account::User(name), Scope::System) => {
            check_text("account", name)?;
            check_xml_chars("account", name)?;
            key_string(&mut out, 1, "UserName", name);
        }
        (Account::LocalService | Account::NetworkService, Scope::System) => {
            return Err(Error::unsupported(
                "account",
                P,
                "LocalService and NetworkService are Windows accounts; name a user (UserName) instead",
            ))
        }
    }
    let env = env(spec)?;
    if !env.is_empty() {
        key(&mut out, 1, "EnvironmentVariables");
        out.push_str("\t<dict>\n");
        for (name, value) in env {
            check_xml_chars(&format!("environment variable {name}"), value)?;
            key_string(&mut out, 2, name, value);
        }
        out.push_str("\t</dict>\n");
    }
    if spec.start == StartType::Disabled {
        key(&mut out, 1, "Disabled");
        out.push_str("\t<true/>\n");
    }
    key(&mut out, 1, "RunAtLoad");
    out.push_str(if spec.start == StartType::Auto { "\t<true/>\n" } else { "\t<false/>\n" });
    match spec.restart.on {
        RestartOn::Never => {}
        RestartOn::OnFailure => {
            key(&mut out, 1, "KeepAlive");
            out.push_str("\t<dict>\n");
            key(&mut out, 2, "SuccessfulExit");
            out.push_str("\t\t<false/>\n\t</dict>\n");
        }
        RestartOn::Always => {
            key(&mut out, 1, "KeepAlive");
            out.push_str("\t<true/>\n");
        }
    }
    if spec.restart.on != RestartOn::Never {
        if let Some(&first) = spec.restart.delays.first() {
            if spec.restart.delays.iter().any(|d| *d != first) {
                return Err(Error::unsupported(
                    "restart delays",
                    P,
                    "launchd has one delay between restarts (ThrottleInterval); give one",
                ));
            }
            key(&mut out, 1, "ThrottleInterval");
            let _ = writeln!(out, "\t<integer>{}</integer>", secs_up(first));
        }
    }
    if let Some(timeout) = spec.stop_timeout {
        key(&mut out, 1, "ExitTimeOut");
        // Whole seconds, rounded up; 0 would mean "never kill".
        let _ = writeln!(out, "\t<integer>{}</integer>", secs_up(timeout).max(1));
    }
    if let Some(file) = &spec.log_file {
        let file = path_text("log_file", file)?;
        check_xml_chars("log_file", &file)?;
        key_string(&mut out, 1, "StandardOutPath", &file);
        key_string(&mut out, 1, "StandardErrorPath", &file);
    }
    out.push_str("</dict>\n</plist>\n");
    Ok(out)
}

/// The options launchd has no key for.
fn unsupported(spec: &ServiceSpec) -> Result<(), Error> {
    let no = |option, why: &str| Err(Error::unsupported(option, P, why));
    if spec.display_name.is_some() {
        return no("display_name", "a job has only its label");
    }
    if spec.password_file.is_some() {
        return no("password_file", "launchd runs a UserName without a password");
    }
    if spec.event_source.is_some() {
        return no("event_source", "the unified log needs no source");
    }
    if spec.start == StartType::Delayed {
        return no("start Delayed", "launchd has no delayed start; use Auto");
    }
    if !spec.dependencies.is_empty() {
        return no("dependencies", "launchd starts jobs on demand and has no order between them");
    }
    if spec.start_timeout.is_some() {
        return no("start_timeout", "launchd has no readiness protocol, so nothing to time out");
    }
    if spec.watchdog.is_some() {
        return no("watchdog", "launchd has no watchdog");
    }
    if spec.delegate_cgroups {
        return no("delegate_cgroups", "control groups are Linux's");
    }
    if spec.kill_mode == KillMode::Mixed {
        return no("kill_mode Mixed", "launchd signals the job's process; it has no kill mode");
    }
    if spec.restart.on != RestartOn::Never && spec.restart.reset_after.is_some() {
        let distinct = spec.restart.delays.windows(2).any(|w| w[0] != w[1]);
        if distinct {
            return no("restart reset_after", "launchd has one restart delay and no count to reset");
        }
    }
    Ok(())
}

fn key(out: &mut String, depth: usize, name: &str) {
    let _ = writeln!(out, "{}<key>{}</key>", "\t".repeat(depth), xml(name));
}

fn string(out: &mut String, depth: usize, value: &str) {
    let _ = writeln!(out, "{}<string>{}</string>", "\t".repeat(depth), xml(value));
}

fn key_string(out: &mut String, depth: usize, name: &str, value: &str) {
    key(out, depth, name);
    string(out, depth, value);
}

/// An XML comment of `lines`, the later ones indented under the first. A `-` that would
/// follow another `-` gets a space before it (`a--b` becomes `a- -b`), and the comment ends
/// with ` -->`, so its text never ends in `-` either. Nothing else needs escaping (a comment
/// has no entities), and line breaks were refused before.
fn comment(out: &mut String, lines: &[&str]) {
    out.push_str("<!-- ");
    let mut last = ' ';
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\n     ");
            last = ' ';
        }
        for c in line.chars() {
            if c == '-' && last == '-' {
                out.push(' ');
            }
            out.push(c);
            last = c;
        }
    }
    out.push_str(" -->\n");
}

/// Refuses the characters that XML 1.0 cannot carry even as a reference and that
/// [`check_text`] lets through (it refuses the control characters): U+FFFE and U+FFFF.
fn check_xml_chars(what: &str, value: &str) -> Result<(), Error> {
    if !value.contains(['\u{FFFE}', '\u{FFFF}']) {
        return Ok(());
    }
    Err(Error::invalid(what, value, "it holds a character XML cannot carry (U+FFFE or U+FFFF)"))
}

/// XML character data: the five predefined entities. Control characters were refused
/// before (XML 1.0 cannot carry most of them at all).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes() {
        assert_eq!(xml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml("/Users/ann/My App"), "/Users/ann/My App");
    }

    fn comment_of(lines: &[&str]) -> String {
        let mut out = String::new();
        comment(&mut out, lines);
        out
    }

    #[test]
    fn comments_never_hold_a_double_hyphen_or_end_in_a_hyphen() {
        let cases: [(&[&str], &str); 6] = [
            (&["plain"], "<!-- plain -->\n"),
            (&["render --init launchd"], "<!-- render - -init launchd -->\n"),
            (&["a---b"], "<!-- a- - -b -->\n"),
            (&["ends with -"], "<!-- ends with - -->\n"),
            (&["-->"], "<!-- - -> -->\n"),
            (&["x-", "-y"], "<!-- x-\n     -y -->\n"),
        ];
        for (lines, expected) in cases {
            let out = comment_of(lines);
            assert_eq!(out, expected, "for {lines:?}");
            let inner = &out["<!--".len()..out.len() - "-->\n".len()];
            assert!(!inner.contains("--") && !inner.ends_with('-'), "{out:?}");
        }
    }
}
