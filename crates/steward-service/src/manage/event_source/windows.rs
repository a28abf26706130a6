//! Registering the Event Log source a service writes as (see `event_source.rs` for how it
//! works and what is stored), at install, and removing it with the last service that uses it.
//!
//! Under Wine 8 the registry part works (it is a real registry), and `RegisterEventSourceW` /
//! `ReportEventW` are stubs that succeed and store nothing: the entries are unit-tested in
//! `log/mod.rs`.

use std::io;

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS, WIN32_ERROR};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegDeleteTreeW, RegQueryValueExW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE,
    KEY_ALL_ACCESS, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_OPTION_NON_VOLATILE,
};

use super::{self as event_source, MESSAGE_FILE, SOURCES_KEY, TYPES_SUPPORTED, USERS_VALUE};
use crate::manage::windows::wide;

fn source_key(source: &str) -> String {
    format!(r"{SOURCES_KEY}\{source}")
}

/// Register the source (again) and count `service` among its users.
pub(crate) fn register_source(source: &str, service: &str) -> io::Result<()> {
    let key = Key::create(&source_key(source))?;
    key.set_expand_sz("EventMessageFile", MESSAGE_FILE)?;
    key.set_dword("TypesSupported", TYPES_SUPPORTED)?;
    let users = event_source::users_with(key.multi_sz(USERS_VALUE)?, service);
    key.set_multi_sz(USERS_VALUE, &users)
}

/// Stop counting `service` among the source's users; delete the source when none is left.
/// Returns whether the source was deleted.
pub(crate) fn unregister_source(source: &str, service: &str) -> io::Result<bool> {
    let users = {
        let key = match Key::open_existing(&source_key(source))? {
            Some(key) => key,
            None => return Ok(false),
        };
        let users = event_source::users_without(key.multi_sz(USERS_VALUE)?, service);
        if !users.is_empty() {
            key.set_multi_sz(USERS_VALUE, &users)?;
        }
        users
    };
    if !users.is_empty() {
        return Ok(false);
    }
    let path = wide(&source_key(source));
    // SAFETY: a predefined root key and a NUL-terminated path.
    check(unsafe { RegDeleteTreeW(HKEY_LOCAL_MACHINE, path.as_ptr()) }, "delete the Event Log source")?;
    Ok(true)
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
        self.set(name, REG_MULTI_SZ, &bytes(&event_source::multi_sz(values)))
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
        Ok(event_source::parse_multi_sz(&data))
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
    Err(io::Error::new(e.kind(), format!("cannot {what}: {e}")))
}

fn bytes(words: &[u16]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
