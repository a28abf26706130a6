//! The Windows swap: rename the running `steward.exe` aside, then move the new one in,
//! retrying on sharing violations; on failure, rename the old one back (see the module above).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{copy_synced, sibling, SwapError};

/// Tries for moving the new binary in: antivirus and indexers open a new executable for a
/// moment, which fails the rename with a sharing violation ("Access is denied").
const TRIES: u32 = 5;
/// The first wait between tries, doubled after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

pub(super) fn replace(new: &Path, exe: &Path, old_version: &str) -> Result<(), SwapError> {
    let name = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The new binary first goes beside the old one (same volume, so the move in is a rename).
    let staged = sibling(exe, &format!(".steward.new-{}", std::process::id()));
    copy_synced(new, &staged)?;
    let aside = free_aside(exe, &format!("{name}.old-{old_version}"));
    if let Err(source) = std::fs::rename(exe, &aside) {
        let _ = std::fs::remove_file(&staged);
        return Err(SwapError::Io { what: "rename aside", path: exe.to_path_buf(), source });
    }
    match with_retries(|| std::fs::rename(&staged, exe)) {
        Ok(()) => Ok(()),
        Err(source) => {
            let _ = std::fs::remove_file(&staged);
            match with_retries(|| std::fs::rename(&aside, exe)) {
                Ok(()) => {
                    Err(SwapError::Io { what: "move the new binary in at", path: exe.to_path_buf(), source })
                }
                Err(back) => Err(SwapError::Stranded { exe: exe.to_path_buf(), aside, back, source }),
            }
        }
    }
}

/// `exe`'s sibling `name`, or `name-N` when a leftover of that name is still in use.
fn free_aside(exe: &Path, name: &str) -> PathBuf {
    let first = sibling(exe, name);
    if !first.exists() || std::fs::remove_file(&first).is_ok() {
        return first;
    }
    (1..).map(|n| sibling(exe, &format!("{name}-{n}"))).find(|p| !p.exists()).expect("a free name")
}

fn with_retries(mut op: impl FnMut() -> std::io::Result<()>) -> std::io::Result<()> {
    let mut wait = FIRST_BACKOFF;
    let mut tries = 1;
    loop {
        match op() {
            Ok(()) => return Ok(()),
            Err(e) if tries < TRIES => {
                tracing::debug!(event = "self-update", "retrying after {e} ({tries} of {TRIES})");
                std::thread::sleep(wait);
                wait *= 2;
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
