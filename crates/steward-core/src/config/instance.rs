//! `%{instance}`: the instance number of a program with `instances`, written into its string
//! values (`command`, `env`, `cwd`, health checks...), so each instance can differ, say by
//! its port.
//!
//! - `%{instance}` is the instance number, 0 to `instances - 1`.
//! - `%{instance+N}` adds `N` to it: `--port=%{instance+8000}` gives 8000, 8001...
//! - `%%{` is a literal `%{`; a `%` not followed by `{` is kept as is (shell `%` stays).
//!
//! `%{release}` is the folder of the release a program with `[programs.NAME.release]` runs. It
//! is not known when the config is read: in such a program it is kept as the text
//! `%{release}`, which the runtime replaces when it starts the process
//! ([`crate::config::ProgramSpec::with_release`]); elsewhere it is an error. So that a kept
//! `%{release}` means only that, a literal `%%{release}` is an error in such a program.
//!
//! A sigil of its own, not `${...}`: `${VAR}` comes from steward's environment once, when the
//! config is read, while `%{instance}` differs for each process. It is expanded first, so an
//! environment variable's value is never read as a template.

use std::borrow::Cow;

use super::interp::InterpError;
use crate::release::RELEASE_MARK;

/// What `%{release}` may be in the text being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// In a program with `[release]`: kept as `%{release}`, for the runtime.
    Kept,
    /// Anywhere else: an error.
    Absent,
}

/// Expands every `%{...}` in `input` for `instance` (`None`: the program has no
/// `instances`, so any `%{instance}` is an error); `%{release}` is kept or refused as
/// `release` says.
pub fn expand(
    input: &str,
    instance: Option<u32>,
    release: Release,
) -> Result<Cow<'_, str>, Vec<InterpError>> {
    if !input.contains("%{") {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    let mut rest = input;
    let mut offset = 0;
    while let Some(at) = rest.find("%{") {
        // `%%{` is the escape for a literal `%{`.
        if at > 0 && rest.as_bytes()[at - 1] == b'%' {
            let escaped = rest[at + 2..].split_once('}').map(|(inner, _)| inner.trim());
            if release == Release::Kept && escaped == Some("release") {
                let len = rest[at..].find('}').map_or(rest.len() - at, |c| c + 1);
                errors.push(InterpError {
                    offset: offset + at - 1,
                    len: len + 1,
                    message: "a literal `%{release}` cannot be written in a program with [release]"
                        .to_owned(),
                    hint:
                        "steward replaces every `%{release}` with the release's folder: write `%{release}` \
                           for that, or spell the literal text differently"
                            .to_owned(),
                });
            }
            out.push_str(&rest[..at - 1]);
            out.push_str("%{");
            let next = at + 2;
            offset += next;
            rest = &rest[next..];
            continue;
        }
        out.push_str(&rest[..at]);
        let Some(close) = rest[at..].find('}').map(|c| at + c) else {
            errors.push(InterpError {
                offset: offset + at,
                len: rest.len() - at,
                message: "unterminated `%{`".to_owned(),
                hint: "close it with `}`, or write `%%{` for a literal `%{`".to_owned(),
            });
            return Err(errors);
        };
        let inner = rest[at + 2..close].trim();
        let error = |message: String, hint: &str| InterpError {
            offset: offset + at,
            len: close + 1 - at,
            message,
            hint: hint.to_owned(),
        };
        if inner == "release" {
            match release {
                Release::Kept => out.push_str(RELEASE_MARK),
                Release::Absent => errors.push(error(
                    "`%{release}` needs a [programs.NAME.release] table".to_owned(),
                    "`%{release}` is the folder of the program's installed release: add a \
                     [programs.NAME.release] table to the program, or write `%%{` for a literal `%{`",
                )),
            }
            let next = close + 1;
            offset += next;
            rest = &rest[next..];
            continue;
        }
        match value(inner, instance) {
            Ok(v) => out.push_str(&v.to_string()),
            Err(Problem::Unknown) => errors.push(error(
                format!("unknown `%{{{inner}}}`"),
                "steward knows `%{instance}`, `%{instance+N}` and `%{release}`; write `%%{` for a literal `%{`",
            )),
            Err(Problem::NoInstances) => errors.push(error(
                format!("`%{{{inner}}}` is the instance number of a program with `instances`"),
                "add `instances = N` to the program, or write `%%{` for a literal `%{`",
            )),
            Err(Problem::TooBig) => errors.push(error(
                format!("`%{{{inner}}}` is too large for instance {}", instance.unwrap_or(0)),
                "use a smaller number after `+`",
            )),
        }
        let next = close + 1;
        offset += next;
        rest = &rest[next..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(Cow::Owned(out))
    } else {
        Err(errors)
    }
}

enum Problem {
    Unknown,
    NoInstances,
    TooBig,
}

fn value(inner: &str, instance: Option<u32>) -> Result<u64, Problem> {
    let (name, add) = match inner.split_once('+') {
        Some((name, n)) => (name.trim(), n.trim().parse::<u32>().map_err(|_| Problem::Unknown)?),
        None => (inner, 0),
    };
    if name != "instance" {
        return Err(Problem::Unknown);
    }
    let index = instance.ok_or(Problem::NoInstances)?;
    u32::try_from(u64::from(index) + u64::from(add)).map(u64::from).map_err(|_| Problem::TooBig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, instance: Option<u32>) -> String {
        expand(input, instance, Release::Absent).unwrap().into_owned()
    }

    fn messages(input: &str, instance: Option<u32>) -> Vec<(usize, usize, String)> {
        release_messages(input, instance, Release::Absent)
    }

    fn release_messages(input: &str, instance: Option<u32>, release: Release) -> Vec<(usize, usize, String)> {
        expand(input, instance, release)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.offset, e.len, e.message))
            .collect()
    }

    #[test]
    fn release_is_kept_or_refused() {
        let kept = |input| expand(input, Some(1), Release::Kept).unwrap().into_owned();
        assert_eq!(kept("%{release}/bin/api --n=%{instance}"), "%{release}/bin/api --n=1");
        assert_eq!(kept("%{ release }/x"), "%{release}/x");
        assert_eq!(kept("%%{instance} %%{releases}"), "%{instance} %{releases}");
        assert_eq!(
            messages("run %{release}/bin", None),
            vec![(4, 10, "`%{release}` needs a [programs.NAME.release] table".into())]
        );
        assert_eq!(ok("%%{release}", None), "%{release}", "a literal, in a program without [release]");
        let literal = "a literal `%{release}` cannot be written in a program with [release]";
        assert_eq!(release_messages("x %%{release}/y", None, Release::Kept), vec![(2, 11, literal.into())]);
        assert_eq!(release_messages("%%%{release}", None, Release::Kept), vec![(1, 11, literal.into())]);
        assert_eq!(expand("%%{release", None, Release::Kept).unwrap(), "%{release", "not `%{{release}}`");
    }

    #[test]
    fn expands_instance_and_offsets() {
        assert_eq!(ok("--worker=%{instance}", Some(3)), "--worker=3");
        assert_eq!(ok("--port=%{instance+8000}", Some(2)), "--port=8002");
        assert_eq!(ok("%{ instance + 10 }-%{instance}", Some(1)), "11-1");
        assert_eq!(ok("no templates, 100% sure", None), "no templates, 100% sure");
        assert_eq!(ok("date +%s %", Some(0)), "date +%s %");
    }

    #[test]
    fn escape_gives_a_literal() {
        assert_eq!(ok("%%{instance}", None), "%{instance}");
        assert_eq!(ok("a%%{b}c %{instance}", Some(5)), "a%{b}c 5");
    }

    #[test]
    fn errors_are_located() {
        assert_eq!(
            messages("x %{instance}", None),
            vec![(2, 11, "`%{instance}` is the instance number of a program with `instances`".into())]
        );
        assert_eq!(messages("%{pid} %{instance+x}", Some(0)).len(), 2);
        assert_eq!(messages("ab %{instance", Some(0)), vec![(3, 10, "unterminated `%{`".into())]);
        assert_eq!(
            messages("%{instance+4294967295}", Some(1)),
            vec![(0, 22, "`%{instance+4294967295}` is too large for instance 1".into())]
        );
    }
}
