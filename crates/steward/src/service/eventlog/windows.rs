//! The Windows Event Log: the source `steward` in the Application log, registered by
//! `service install` and removed by the last `service uninstall`, and the handle the service
//! host writes its entries with (the entries themselves are decided in [`super`]).
//!
//! How Windows does it:
//! - A source is a registry key, `HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application
//!   \steward`. Its `EventMessageFile` names a DLL whose message table turns an event id into
//!   text. steward ships no DLL: it points at .NET's `EventLogMessages.dll`, whose message for
//!   every id is its first insertion string, so the Event Viewer shows steward's text as it is
//!   (the method .NET's own `EventLog.CreateEventSource` uses). Were that file missing, the
//!   viewer would still show the text, after a note that the description was not found.
//! - Side-by-side services share the one source. The key keeps the names of the services that
//!   use it (`StewardServices`, a `REG_MULTI_SZ`), and uninstall deletes the key only when it
//!   removes the last one.
//! - `RegisterEventSourceW` + `ReportEventW` write an entry; writing works even for a source
//!   that is not registered (the viewer then lacks the message file only).
//!
//! Under Wine 8 the registry part works (it is a real registry), and `RegisterEventSourceW` /
//! `ReportEventW` are stubs that succeed and store nothing: the CI checks that the calls
//! succeed; the text is unit-tested in `eventlog.rs`.

use std::io;

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS, FALSE, HANDLE, WIN32_ERROR};
use windows_sys::Win32::System::EventLog::{DeregisterEventSource, RegisterEventSourceW, ReportEventW};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegDeleteTreeW, RegQueryValueExW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE,
    KEY_ALL_ACCESS, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_OPTION_NON_VOLATILE,
};

use super::{self as eventlog, Entry};
use steward_core::render::windows::EVENT_SOURCE;

// The pure module spells out SDK values so that it compiles everywhere; check them here.
const _: () = {
    use windows_sys::Win32::System::EventLog as e;
    assert!(eventlog::EVENTLOG_ERROR_TYPE == e::EVENTLOG_ERROR_TYPE);
    assert!(eventlog::EVENTLOG_WARNING_TYPE == e::EVENTLOG_WARNING_TYPE);
    assert!(eventlog::EVENTLOG_INFORMATION_TYPE == e::EVENTLOG_INFORMATION_TYPE);
};

const SOURCES_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application";
const MESSAGE_FILE: &str = r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";
const USERS_VALUE: &str = "StewardServices";
/// Error, warning and information entries.
const TYPES_SUPPORTED: u32 = 7;

fn source_key() -> String {
    format!(r"{SOURCES_KEY}\{EVENT_SOURCE}")
}

/// The registry path of the source, for messages.
pub fn source_key_display() -> String {
    format!(r"HKLM\{}", source_key())
}

/// Register the source (again) and count `service` among its users.
pub fn register_source(service: &str) -> io::Result<()> {
    let key = Key::create(&source_key())?;
    key.set_expand_sz("EventMessageFile", MESSAGE_FILE)?;
    key.set_dword("TypesSupported", TYPES_SUPPORTED)?;
    let users = eventlog::source_users_with(key.multi_sz(USERS_VALUE)?, service);
    key.set_multi_sz(USERS_VALUE, &users)
}

/// Stop counting `service` among the source's users; delete the source when none is left.
/// Returns whether the source was deleted.
pub fn unregister_source(service: &str) -> io::Result<bool> {
    let users = {
        let key = match Key::open_existing(&source_key())? {
            Some(key) => key,
            None => return Ok(false),
        };
        let users = eventlog::source_users_without(key.multi_sz(USERS_VALUE)?, service);
        if !users.is_empty() {
            key.set_multi_sz(USERS_VALUE, &users)?;
        }
        users
    };
    if !users.is_empty() {
        return Ok(false);
    }
    let path = wide(&source_key());
    // SAFETY: a predefined root key and a NUL-terminated path.
    check(unsafe { RegDeleteTreeW(HKEY_LOCAL_MACHINE, path.as_ptr()) }, "delete the Event Log source")?;
    Ok(true)
}

/// A handle for writing entries as the source `steward`.
pub struct EventLog(HANDLE);

// SAFETY: an event log handle may be used from any thread; ReportEventW is thread-safe.
unsafe impl Send for EventLog {}
// SAFETY: as above: ReportEventW may be called on one handle from several threads at once.
unsafe impl Sync for EventLog {}

impl EventLog {
    pub fn open() -> io::Result<EventLog> {
        let name = wide(EVENT_SOURCE);
        // SAFETY: local computer (null), NUL-terminated source name.
        let handle = unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(EventLog(handle))
    }

    pub fn report(&self, entry: &Entry) -> io::Result<()> {
        let text = wide(&entry.message);
        let strings = [text.as_ptr()];
        // SAFETY: one NUL-terminated insertion string, no SID, no binary data.
        let ok = unsafe {
            ReportEventW(
                self.0,
                entry.severity.event_type(),
                0,
                entry.id,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            )
        };
        if ok == FALSE {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegisterEventSourceW and is closed once.
        unsafe { DeregisterEventSource(self.0) };
    }
}

/// An open registry key under HKLM; closed on drop.
struct Key(HKEY);

impl Key {
    fn create(path: &str) -> io::Result<Key> {
        let path = wide(path);
        let mut key: HKEY = std::ptr::null_mut();
        // SAFETY: NUL-terminated path, out pointer to a key we then own.
        let status = unsafe {
            RegCreateKeyExW(
                HKEY_LOCAL_MACHINE,
                path.as_ptr(),
                0,
                std::ptr::null(),
                REG_OPTION_NON_VOLATILE,
                KEY_ALL_ACCESS,
                std::ptr::null(),
                &mut key,
                std::ptr::null_mut(),
            )
        };
        check(status, "create the Event Log source key (run as Administrator)")?;
        Ok(Key(key))
    }

    fn open_existing(path: &str) -> io::Result<Option<Key>> {
        use windows_sys::Win32::System::Registry::RegOpenKeyExW;
        let path = wide(path);
        let mut key: HKEY = std::ptr::null_mut();
        // SAFETY: as in `create`.
        let status = unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, path.as_ptr(), 0, KEY_ALL_ACCESS, &mut key) };
        if status == ERROR_FILE_NOT_FOUND {
            return Ok(None);
        }
        check(status, "open the Event Log source key (run as Administrator)")?;
        Ok(Some(Key(key)))
    }

    fn set(&self, name: &str, kind: u32, data: &[u8]) -> io::Result<()> {
        let name = wide(name);
        // SAFETY: `data` is valid for its length.
        let status =
            unsafe { RegSetValueExW(self.0, name.as_ptr(), 0, kind, data.as_ptr(), data.len() as u32) };
        check(status, "write the Event Log source key")
    }

    fn set_expand_sz(&self, name: &str, value: &str) -> io::Result<()> {
        self.set(name, REG_EXPAND_SZ, &bytes(&wide(value)))
    }

    fn set_dword(&self, name: &str, value: u32) -> io::Result<()> {
        self.set(name, REG_DWORD, &value.to_le_bytes())
    }

    fn set_multi_sz(&self, name: &str, values: &[String]) -> io::Result<()> {
        self.set(name, REG_MULTI_SZ, &bytes(&eventlog::multi_sz(values)))
    }

    /// A `REG_MULTI_SZ` value; empty when it is not there.
    fn multi_sz(&self, name: &str) -> io::Result<Vec<String>> {
        let name = wide(name);
        let mut size = 0u32;
        // SAFETY: a size query (no buffer).
        let status = unsafe {
            RegQueryValueExW(
                self.0,
                name.as_ptr(),
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut size,
            )
        };
        if status == ERROR_FILE_NOT_FOUND {
            return Ok(Vec::new());
        }
        check(status, "read the Event Log source key")?;
        let mut data = vec![0u16; (size as usize).div_ceil(2)];
        let mut size = (data.len() * 2) as u32;
        // SAFETY: `data` holds `size` bytes.
        let status = unsafe {
            RegQueryValueExW(
                self.0,
                name.as_ptr(),
                std::ptr::null(),
                std::ptr::null_mut(),
                data.as_mut_ptr().cast(),
                &mut size,
            )
        };
        check(status, "read the Event Log source key")?;
        data.truncate(size as usize / 2);
        Ok(eventlog::parse_multi_sz(&data))
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: an open key, closed once.
        unsafe { RegCloseKey(self.0) };
    }
}

fn check(status: WIN32_ERROR, what: &str) -> io::Result<()> {
    if status == ERROR_SUCCESS {
        return Ok(());
    }
    let e = io::Error::from_raw_os_error(status as i32);
    Err(io::Error::new(e.kind(), format!("cannot {what} {}: {e}", source_key_display())))
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

fn bytes(words: &[u16]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
