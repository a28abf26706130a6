//! The Event Log source a Windows service writes as, decided without calling Windows (the
//! registry work is in `event_source/windows.rs`), so it is unit-tested everywhere.
//!
//! - A source is a registry key, `HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application
//!   \SOURCE`. Its `EventMessageFile` names a DLL whose message table turns an event id into
//!   text. None is shipped: it points at .NET's `EventLogMessages.dll`, whose message for every
//!   id is its first insertion string, so the Event Viewer shows each entry's text as it is
//!   (the method .NET's own `EventLog.CreateEventSource` uses). Were that file missing, the
//!   viewer would still show the text, after a note that the description was not found.
//! - Several services may share one source (steward's do). The key keeps the names of the
//!   services that use it ([`USERS_VALUE`], a `REG_MULTI_SZ`), and uninstall deletes the key
//!   only when it removes the last one.

#[cfg(windows)]
pub(crate) mod windows;

/// Where the sources of the Application log live, under HKLM.
pub(crate) const SOURCES_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application";
/// The message file whose text for every id is the entry's own.
pub(crate) const MESSAGE_FILE: &str =
    r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";
/// The services that share the source.
pub(crate) const USERS_VALUE: &str = "SharedBy";
/// Error, warning and information entries.
pub(crate) const TYPES_SUPPORTED: u32 = 7;

/// The services sharing the source after `name` joins. Service names are not case sensitive on
/// Windows.
pub(crate) fn users_with(mut users: Vec<String>, name: &str) -> Vec<String> {
    users.retain(|u| !u.eq_ignore_ascii_case(name));
    users.push(name.to_owned());
    users.sort();
    users
}

/// The services sharing the source after `name` leaves.
pub(crate) fn users_without(mut users: Vec<String>, name: &str) -> Vec<String> {
    users.retain(|u| !u.eq_ignore_ascii_case(name));
    users
}

/// A `REG_MULTI_SZ` value: each string NUL-terminated, then one more NUL.
pub(crate) fn multi_sz(items: &[String]) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    for item in items {
        out.extend(item.encode_utf16());
        out.push(0);
    }
    out.push(0);
    out
}

/// The strings of a `REG_MULTI_SZ` value (empty ones dropped).
pub(crate) fn parse_multi_sz(data: &[u16]) -> Vec<String> {
    data.split(|c| *c == 0).filter(|s| !s.is_empty()).map(String::from_utf16_lossy).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_shared_and_counted() {
        let users = users_with(vec![], "steward");
        let users = users_with(users, "api");
        let users = users_with(users, "API");
        assert_eq!(users, ["API", "steward"]);
        assert_eq!(users_without(users.clone(), "api"), ["steward"]);
        assert!(users_without(vec!["steward".into()], "steward").is_empty());
        let raw = multi_sz(&users);
        assert_eq!(raw.iter().filter(|c| **c == 0).count(), 3);
        assert_eq!(parse_multi_sz(&raw), users);
        assert_eq!(parse_multi_sz(&[]), Vec::<String>::new());
        assert_eq!(parse_multi_sz(&"a".encode_utf16().collect::<Vec<_>>()), ["a"]);
    }
}
