//! minisign signatures: is this manifest (or `--file` archive) signed by a trusted key?
//!
//! Trusted keys are the base64 lines of minisign `.pub` files (`RW…`). A signature names the
//! key that made it (its key id), so the key is found by id first: an unknown key and an
//! altered file are different errors, each saying what to do. Key ids are shown as minisign
//! shows them (16 upper-case hex digits), so they can be matched with a `.pub` file's comment.
//! Both prehashed signatures (minisign's default) and legacy ones are accepted.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use minisign_verify::{PublicKey, Signature};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{what} is not a minisign signature ({reason}); sign with `minisign -S`")]
    NotSignature { what: String, reason: String },
    #[error("public_keys[{index}] is not a minisign public key: give the base64 line of a .pub file (it starts with RW)")]
    BadKey { index: usize },
    #[error("no public_keys are configured to check the signature of {what} against")]
    NoKeys { what: String },
    #[error("{what} is signed by the key {key_id}, which is not trusted: add its public key to public_keys")]
    UnknownKey { what: String, key_id: String },
    #[error("{what} does not match its signature by the key {key_id}: the file was altered (or signed as another file)")]
    BadSignature { what: String, key_id: String },
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
}

/// A signature that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed free text (`minisign -t`): for a `--file` archive, `name=… version=…`.
    pub trusted_comment: String,
    /// The id of the key that signed, as minisign shows it.
    pub key_id: String,
}

/// Checks that `data` is signed by one of `keys` with `minisig` (the `.minisig` file's bytes).
pub fn verify(data: &[u8], minisig: &[u8], keys: &[String]) -> Result<Verified, VerifyError> {
    verify_named("the manifest", data, minisig, keys)
}

/// The same, naming what is checked in errors (`"the manifest of api"`).
pub fn verify_named(
    what: &str,
    data: &[u8],
    minisig: &[u8],
    keys: &[String],
) -> Result<Verified, VerifyError> {
    let (signature, key, key_id) = find_key(what, minisig, keys)?;
    key.verify(data, &signature, true)
        .map_err(|_| VerifyError::BadSignature { what: what.to_owned(), key_id: key_id.clone() })?;
    Ok(Verified { trusted_comment: signature.trusted_comment().to_owned(), key_id })
}

/// Checks a file (a `--file` archive) without holding it in memory when the signature is
/// prehashed. Blocking: call it from `spawn_blocking`.
pub fn verify_file(path: &Path, minisig: &[u8], keys: &[String]) -> Result<Verified, VerifyError> {
    let what = path.display().to_string();
    let (signature, key, key_id) = find_key(&what, minisig, keys)?;
    let read_err = |source| VerifyError::Read { path: path.to_path_buf(), source };
    let bad = || VerifyError::BadSignature { what: what.clone(), key_id: key_id.clone() };
    match key.verify_stream(&signature) {
        Ok(mut stream) => {
            let mut file = std::fs::File::open(path).map_err(read_err)?;
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = file.read(&mut buf).map_err(read_err)?;
                if n == 0 {
                    break;
                }
                stream.update(&buf[..n]);
            }
            stream.finalize().map_err(|_| bad())?;
        }
        // A legacy signature covers the bytes themselves: read them whole.
        Err(minisign_verify::Error::UnsupportedLegacyMode) => {
            let data = std::fs::read(path).map_err(read_err)?;
            key.verify(&data, &signature, true).map_err(|_| bad())?;
        }
        Err(_) => return Err(bad()),
    }
    Ok(Verified { trusted_comment: signature.trusted_comment().to_owned(), key_id })
}

/// The id of a public key (the base64 line of a `.pub` file), as minisign shows it: for
/// config validation and messages.
pub fn key_id_of(public_key: &str) -> Option<String> {
    let bin = base64_decode(public_key.trim())?;
    (bin.len() == 42 && bin[0] == b'E').then(|| key_id_hex(&bin[2..10]))
}

/// The signature, the trusted key whose id it names, and that id.
fn find_key(
    what: &str,
    minisig: &[u8],
    keys: &[String],
) -> Result<(Signature, PublicKey, String), VerifyError> {
    let not_sig = |reason: &str| VerifyError::NotSignature {
        what: format!("the signature of {what}"),
        reason: reason.into(),
    };
    let text = std::str::from_utf8(minisig).map_err(|_| not_sig("it is not text"))?;
    let signature = Signature::decode(text).map_err(|e| not_sig(&e.to_string()))?;
    // minisign-verify keeps the key id to itself: it is bytes 2..10 of the second line.
    let sig_line = text.lines().nth(1).and_then(base64_decode).ok_or_else(|| not_sig("bad base64"))?;
    let key_id = key_id_hex(sig_line.get(2..10).ok_or_else(|| not_sig("too short"))?);
    if keys.is_empty() {
        return Err(VerifyError::NoKeys { what: what.to_owned() });
    }
    for (index, b64) in keys.iter().enumerate() {
        let Some(id) = key_id_of(b64) else { return Err(VerifyError::BadKey { index }) };
        if id == key_id {
            let key = PublicKey::from_base64(b64.trim()).map_err(|_| VerifyError::BadKey { index })?;
            return Ok((signature, key, key_id));
        }
    }
    Err(VerifyError::UnknownKey { what: what.to_owned(), key_id })
}

/// minisign prints a key id as a little-endian u64 in upper-case hex.
fn key_id_hex(id: &[u8]) -> String {
    id.iter().rev().map(|b| format!("{b:02X}")).collect()
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_key_ids() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert!(base64_decode("a*b").is_none());
        // The key of minisign-verify's README: its id is 0x E7620F1842B4E81F.
        let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
        assert_eq!(key_id_of(key).as_deref(), Some("E7620F1842B4E81F"));
        assert_eq!(key_id_of("not a key"), None);
    }

    #[test]
    fn errors_name_what_to_do() {
        let keys = vec!["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3".to_owned()];
        let e = verify(b"x", b"hello", &keys).unwrap_err().to_string();
        assert!(e.contains("not a minisign signature"), "{e}");
        let sig = "untrusted comment: signature from minisign secret key
RWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=
trusted comment: timestamp:1555779966\tfile:test
QtKMXWyYcwdpZAlPF7tE2ENJkRd1ujvKjlj1m9RtHTBnZPa5WKU5uWRs5GoP5M/VqE81QFuMKI5k/SfNQUaOAA==";
        let ok = verify(b"test", sig.as_bytes(), &keys).unwrap();
        assert_eq!(ok.trusted_comment, "timestamp:1555779966\tfile:test");
        assert_eq!(ok.key_id, "E7620F1842B4E81F");
        let e = verify(b"tesT", sig.as_bytes(), &keys).unwrap_err().to_string();
        assert!(e.contains("altered") && e.contains("E7620F1842B4E81F"), "{e}");
        let e = verify(b"test", sig.as_bytes(), &["junk".to_owned()]).unwrap_err().to_string();
        assert!(e.contains("public_keys[0]"), "{e}");
        let e = verify(b"test", sig.as_bytes(), &[]).unwrap_err().to_string();
        assert!(e.contains("no public_keys"), "{e}");
    }
}
