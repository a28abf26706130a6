//! Writing entries to the Windows Event Log as the source named after the service.
//!
//! `RegisterEventSourceW` + `ReportEventW` write an entry, even for a source that is not
//! registered (the viewer then lacks only the message file, and says so before the text).
//! Under Wine the calls are stubs that succeed and store nothing, so the entries themselves
//! are unit-tested in [`super`].

use std::io;

use windows_sys::Win32::Foundation::{FALSE, HANDLE};
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
    EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
};

use super::{Entry, EntrySink, Severity};

/// A handle for writing entries to the Event Log as one source (for a program that decides
/// its own entries; [`super::init`] uses it for tracing events).
pub struct EventLog(HANDLE);

// SAFETY: an event log handle may be used from any thread; ReportEventW is thread-safe.
unsafe impl Send for EventLog {}
// SAFETY: as above: ReportEventW may be called on one handle from several threads at once.
unsafe impl Sync for EventLog {}

impl EventLog {
    /// Write as `source` (registered or not: an unregistered source's entries lack only
    /// their message file).
    pub fn open(source: &str) -> io::Result<EventLog> {
        let name = wide(source);
        // SAFETY: local computer (null), NUL-terminated source name.
        let handle = unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(EventLog(handle))
    }
}

impl EventLog {
    /// Write one entry.
    pub fn write(&self, entry: &Entry) -> io::Result<()> {
        let kind = match entry.severity {
            Severity::Error => EVENTLOG_ERROR_TYPE,
            Severity::Warning => EVENTLOG_WARNING_TYPE,
            Severity::Information => EVENTLOG_INFORMATION_TYPE,
        };
        let text = wide(&entry.text);
        let strings = [text.as_ptr()];
        // SAFETY: one NUL-terminated insertion string, no SID, no binary data.
        let ok = unsafe {
            ReportEventW(
                self.0,
                kind,
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

impl EntrySink for EventLog {
    fn write(&self, entry: &Entry) {
        // A failed write has nowhere better to be reported than the log it failed to reach.
        let _ = EventLog::write(self, entry);
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegisterEventSourceW and is closed once.
        unsafe { DeregisterEventSource(self.0) };
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}
