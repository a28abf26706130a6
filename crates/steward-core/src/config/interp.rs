//! `${VAR}` and `${VAR:-default}` interpolation, applied to every string value of the config.
//!
//! - `${VAR}` is replaced by the variable's value; an unset variable is an error.
//! - `${VAR:-default}` uses `default` when `VAR` is unset or empty. The default may itself
//!   contain references: `${PORT:-${DEFAULT_PORT:-8080}}`.
//!   Defaults nest at most [`MAX_NESTING`] deep.
//! - `$$` is a literal `$` (so `$${X}` gives the text `${X}`).
//! - A `$` not followed by `{` or `$` is kept as is, so that shell snippets such as
//!   `sh -c 'echo $HOME'` reach the shell untouched.
//!
//! Variables come from a lookup function (the supervisor's environment in practice), so this
//! module never reads the process environment itself.

/// One bad reference in a string. Offsets are byte offsets into the string that was expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterpError {
    /// Where the offending `${` starts.
    pub offset: usize,
    /// Length in bytes of the offending reference: up to and including its `}`, or to the end
    /// of the string when it is unterminated.
    pub len: usize,
    pub message: String,
    pub hint: String,
}

/// How deep defaults may nest (`${A:-${B:-x}}` is 2). Expansion recurses into a default,
/// so without a bound a long enough string of `${A:-${A:-…` overflows the stack.
pub const MAX_NESTING: usize = 16;

/// Expands every `${...}` in `input`, reporting every bad reference, not only the first.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<InterpError>> {
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    expand_into(input, 0, 1, lookup, &mut out, &mut errors);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Expands `input`, which starts at byte `base` of the outermost string (for error offsets).
/// A reference in it is `depth` deep (1 in the outermost string).
fn expand_into(
    input: &str,
    base: usize,
    depth: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    errors: &mut Vec<InterpError>,
) {
    let bytes = input.as_bytes();
    // Byte scanning is safe on UTF-8 here: `$`, `{` and `}` never occur inside a multi-byte char.
    let mut i = 0;
    let mut literal_from = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push_str(&input[literal_from..i]);
                out.push('$');
                i += 2;
                literal_from = i;
            }
            Some(b'{') => {
                out.push_str(&input[literal_from..i]);
                let Some(close) = find_close(input, i + 2) else {
                    errors.push(InterpError {
                        offset: base + i,
                        len: input.len() - i,
                        message: "unterminated `${`".to_owned(),
                        hint: "close it with `}`, or write `$${` for a literal `${`".to_owned(),
                    });
                    return;
                };
                let reference =
                    Reference { inner: &input[i + 2..close], offset: base + i, len: close + 1 - i };
                if depth > MAX_NESTING {
                    errors.push(
                        reference.error(
                            format!("defaults nest more than {MAX_NESTING} deep"),
                            "use fewer nested defaults, or set the variables in the supervisor's environment"
                                .to_owned(),
                        ),
                    );
                } else {
                    reference.resolve(depth, lookup, out, errors);
                }
                i = close + 1;
                literal_from = i;
            }
            // A bare `$NAME` or a lone `$`: kept for the shell.
            _ => i += 1,
        }
    }
    out.push_str(&input[literal_from..]);
}

/// The index of the `}` that closes a `${` whose body starts at `from`, skipping nested
/// `${...}` (in defaults) and `$$`.
fn find_close(input: &str, from: usize) -> Option<usize> {
    let bytes = input.as_bytes();
    let mut depth = 0usize;
    let mut j = from;
    while j < bytes.len() {
        match (bytes[j], bytes.get(j + 1)) {
            (b'$', Some(b'$')) => j += 2,
            (b'$', Some(b'{')) => {
                depth += 1;
                j += 2;
            }
            (b'}', _) if depth == 0 => return Some(j),
            (b'}', _) => {
                depth -= 1;
                j += 1;
            }
            _ => j += 1,
        }
    }
    None
}

/// The text between `${` and its `}`, and where the whole `${...}` sits.
struct Reference<'s> {
    inner: &'s str,
    offset: usize,
    len: usize,
}

impl Reference<'_> {
    /// Expands the reference, which is `depth` deep, into `out`.
    fn resolve(
        &self,
        depth: usize,
        lookup: &dyn Fn(&str) -> Option<String>,
        out: &mut String,
        errors: &mut Vec<InterpError>,
    ) {
        let name_len = self.inner.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        let (name, rest) = self.inner.split_at(name_len);
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            let what = if name.is_empty() {
                "it has no variable name".to_owned()
            } else {
                format!("`{name}` starts with a digit")
            };
            errors.push(self.error(
                format!("`${{{}}}` is not a valid variable reference: {what}", self.inner),
                "variable names are letters, digits and `_`, not starting with a digit; write `$$` for a literal `$`"
                    .to_owned(),
            ));
            return;
        }
        if rest.is_empty() {
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => errors.push(self.error(
                    format!("environment variable `{name}` is not set"),
                    format!("set `{name}` in the supervisor's environment, or write `${{{name}:-default}}`"),
                )),
            }
        } else if let Some(default) = rest.strip_prefix(":-") {
            match lookup(name).filter(|v| !v.is_empty()) {
                Some(value) => out.push_str(&value),
                None => {
                    // `offset` is where `${` starts; the default follows `${NAME:-`.
                    let default_at = self.offset + 2 + name.len() + 2;
                    expand_into(default, default_at, depth + 1, lookup, out, errors);
                }
            }
        } else {
            errors.push(self.error(
                format!("`${{{}}}` is not a supported reference", self.inner),
                format!("write `${{{name}}}` or `${{{name}:-default}}`; write `$${{` for a literal `${{`"),
            ));
        }
    }

    fn error(&self, message: String, hint: String) -> InterpError {
        InterpError { offset: self.offset, len: self.len, message, hint }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(input: &str) -> Result<String, Vec<InterpError>> {
        let vars: HashMap<&str, &str> =
            [("HOME", "/home/me"), ("PORT", "8080"), ("EMPTY", ""), ("NAME", "wörld")].into();
        expand(input, &|name| vars.get(name).map(|v| v.to_string()))
    }

    fn first_error(input: &str) -> InterpError {
        run(input).unwrap_err().remove(0)
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(run("hello").unwrap(), "hello");
        assert_eq!(run("").unwrap(), "");
        assert_eq!(run("{braces} } {").unwrap(), "{braces} } {");
    }

    #[test]
    fn braced_variables_expand() {
        assert_eq!(run("${HOME}/bin").unwrap(), "/home/me/bin");
        assert_eq!(run("a${PORT}b${PORT}").unwrap(), "a8080b8080");
        assert_eq!(run("hello ${NAME}!").unwrap(), "hello wörld!");
        assert_eq!(run("[${EMPTY}]").unwrap(), "[]");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(run("${NOPE:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${PORT:-1}").unwrap(), "8080");
        assert_eq!(run("${NOPE:-}").unwrap(), "");
        assert_eq!(run("${NOPE:-a b:c-d}").unwrap(), "a b:c-d");
    }

    #[test]
    fn defaults_may_nest() {
        assert_eq!(run("${NOPE:-${PORT}}").unwrap(), "8080");
        assert_eq!(run("${NOPE:-${ALSO_NOPE:-x}}").unwrap(), "x");
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| format!("{}x{}", "${NOPE:-".repeat(depth), "}".repeat(depth));
        // Deep enough to overflow the stack when every level recursed (`steward check`
        // did, on a config file with 20 000 levels). One error, at the level too deep.
        let errors = run(&nested(200_000)).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].offset, MAX_NESTING * "${NOPE:-".len());
        assert!(errors[0].message.contains("nest more than 16 deep"), "{}", errors[0].message);
        assert_eq!(run(&nested(MAX_NESTING)).unwrap(), "x");
        assert_eq!(first_error(&nested(MAX_NESTING + 1)).offset, MAX_NESTING * "${NOPE:-".len());
        // A set variable ends the nesting before the bound matters.
        assert_eq!(run(&format!("${{PORT:-{}}}", nested(100))).unwrap(), "8080");
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        assert_eq!(run("cost: $$5").unwrap(), "cost: $5");
        assert_eq!(run("$${HOME}").unwrap(), "${HOME}");
        assert_eq!(run("$$$$").unwrap(), "$$");
    }

    #[test]
    fn bare_dollar_names_are_left_for_the_shell() {
        assert_eq!(run("echo $HOME").unwrap(), "echo $HOME");
        assert_eq!(run("price $").unwrap(), "price $");
        assert_eq!(run("$1 $@ $(date)").unwrap(), "$1 $@ $(date)");
    }

    #[test]
    fn unset_variable_without_default_is_an_error() {
        let e = first_error("url=${DB_URL}/x");
        assert_eq!((e.offset, e.len), (4, 9));
        assert!(e.message.contains("`DB_URL` is not set"), "{}", e.message);
        assert!(e.hint.contains("${DB_URL:-default}"), "{}", e.hint);
    }

    #[test]
    fn unterminated_reference_is_an_error() {
        let e = first_error("ab${HOME");
        assert_eq!((e.offset, e.len), (2, 6));
        assert!(e.message.contains("unterminated `${`"));
        let e = first_error("${NOPE:-${X}");
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("unterminated"));
    }

    #[test]
    fn bad_references_are_errors() {
        assert!(first_error("${}").message.contains("no variable name"));
        assert!(first_error("${1A}").message.contains("starts with a digit"));
        assert!(first_error("${A-b}").message.contains("not a supported reference"));
        assert!(first_error("${A:=b}").message.contains("not a supported reference"));
    }

    #[test]
    fn errors_inside_a_used_default_point_into_it() {
        let e = first_error("x${NOPE:-${ALSO}}");
        assert_eq!((e.offset, e.len), (9, 7));
        assert!(e.message.contains("`ALSO` is not set"));
    }

    #[test]
    fn every_error_in_a_string_is_reported() {
        let errors = run("${A} ok ${PORT} ${B}").unwrap_err();
        let at: Vec<usize> = errors.iter().map(|e| e.offset).collect();
        assert_eq!(at, vec![0, 16]);
    }
}
