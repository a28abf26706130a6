//! Reading a log back: the rotated files of a live file, oldest first, then the live file.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use steward_core::rotation::{self, RotatedKind};

/// Every file of the log whose live file is `live`, oldest first: its rotated files
/// (compressed or not; one per rotation, the plain one while both exist), then `live`
/// itself if it exists.
pub fn files_oldest_first(live: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = rotated(live)?.into_iter().map(|(_, path)| path).collect();
    if live.exists() {
        files.push(live.to_path_buf());
    }
    Ok(files)
}

/// The rotated files of the log whose live file is `live`, oldest first, with their stamps:
/// one per rotation (the plain file while both it and the `.gz` exist), without a
/// compression still being written.
pub fn rotated(live: &Path) -> io::Result<Vec<(rotation::Stamp, PathBuf)>> {
    let base = live.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let dir = match live.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut rotated: Vec<(rotation::Stamp, bool, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let Some(found) = rotation::parse_rotated(base, &name) else { continue };
        let compressed = match found.kind {
            RotatedKind::Plain => false,
            RotatedKind::Gzip => true,
            RotatedKind::GzipTemp => continue,
        };
        rotated.push((found.stamp, compressed, entry.path()));
    }
    // By stamp, plain before compressed; then one file per stamp.
    rotated.sort();
    rotated.dedup_by_key(|(stamp, _, _)| *stamp);
    Ok(rotated.into_iter().map(|(stamp, _, path)| (stamp, path)).collect())
}

/// The whole content of the log whose live file is `live`, oldest first, with compressed
/// rotated files decompressed.
pub fn read_all(live: &Path) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    for path in files_oldest_first(live)? {
        let file = File::open(&path)?;
        if path != live && path.extension().is_some_and(|ext| ext == "gz") {
            MultiGzDecoder::new(file).read_to_end(&mut all)?;
        } else {
            let mut file = file;
            file.read_to_end(&mut all)?;
        }
    }
    Ok(all)
}
