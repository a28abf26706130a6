//! `${VAR}` / `${VAR:-default}` interpolation, on one string.
//!
//! What must hold: errors point inside the string, at a `${`; text without a `$` comes
//! back unchanged; escaping every `$` as `$$` gives back the text itself.

use steward_core::config::interp::expand;

fn lookup(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/me".into()),
        "PORT" => Some("8080".into()),
        "EMPTY" => Some(String::new()),
        // A value that looks like a reference: it must not be expanded again.
        "TRICKY" => Some("${HOME}$$".into()),
        _ => None,
    }
}

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match expand(text, &lookup) {
        Ok(out) => {
            if !text.contains('$') {
                assert_eq!(out, text, "text without `$` changed");
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                let end = e.offset.checked_add(e.len).expect("error span overflows");
                assert!(end <= text.len(), "error {e:?} ends past the string ({} bytes)", text.len());
                assert!(text.is_char_boundary(e.offset) && text.is_char_boundary(end), "{e:?}");
                assert!(text[e.offset..].starts_with("${"), "error {e:?} is not at a `${{`");
                assert!(!e.message.is_empty() && !e.hint.is_empty());
            }
        }
    }
    let escaped = text.replace('$', "$$");
    assert_eq!(expand(&escaped, &lookup).as_deref(), Ok(text), "`$$` is not a literal `$`");
}
