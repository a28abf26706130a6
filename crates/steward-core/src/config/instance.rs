//! `%{instance}`: the instance number of a program with `instances`, written into its string
//! values (`command`, `env`, `cwd`, health checks...), so each instance can differ, say by
//! its port.
//!
//! - `%{instance}` is the instance number, 0 to `instances - 1`.
//! - `%{instance+N}` adds `N` to it: `--port=%{instance+8000}` gives 8000, 8001...
//! - `%%{` is a literal `%{`; a `%` not followed by `{` is kept as is (shell `%` stays).
//!
//! A sigil of its own, not `${...}`: `${VAR}` comes from steward's environment once, when the
//! config is read, while `%{instance}` differs for each process. It is expanded first, so an
//! environment variable's value is never read as a template.

use std::borrow::Cow;

use super::interp::InterpError;

/// Expands every `%{...}` in `input` for `instance` (`None`: the program has no
/// `instances`, so any `%{instance}` is an error).
pub fn expand(input: &str, instance: Option<u32>) -> Result<Cow<'_, str>, Vec<InterpError>> {
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
        match value(inner, instance) {
            Ok(v) => out.push_str(&v.to_string()),
            Err(Problem::Unknown) => errors.push(error(
                format!("unknown `%{{{inner}}}`"),
                "steward knows `%{instance}` and `%{instance+N}`; write `%%{` for a literal `%{`",
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
        expand(input, instance).unwrap().into_owned()
    }

    fn messages(input: &str, instance: Option<u32>) -> Vec<(usize, usize, String)> {
        expand(input, instance).unwrap_err().into_iter().map(|e| (e.offset, e.len, e.message)).collect()
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
