//! The Unix swap: a copy beside the binary, renamed over it (see the module above).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::{copy_synced, sibling, SwapError};

pub(super) fn replace(new: &Path, exe: &Path, _old_version: &str) -> Result<(), SwapError> {
    let staged = sibling(exe, &format!(".steward.new-{}", std::process::id()));
    let result = (|| {
        copy_synced(new, &staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))
            .map_err(SwapError::io("make executable", &staged))?;
        std::fs::rename(&staged, exe).map_err(SwapError::io("rename the new binary over", exe))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    if let Some(dir) = exe.parent() {
        crate::update::pending::sync_dir(dir);
    }
    result
}
