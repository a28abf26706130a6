//! Unpacking a release archive (`.tar.gz`/`.tgz` or `.zip`) into `<dest_parent>/<version>/`,
//! all or nothing.
//!
//! Everything is written into `.staging-<version>-<pid>-<n>/` first, then fsynced and renamed
//! into place, so a `<version>/` folder is always whole; any error removes the staging folder.
//! Every entry is checked before anything is written for it: no absolute path, no `..`, no
//! drive or `:`, no link whose target is absolute or climbs out, no device or fifo. Writes
//! never pass through a link (an entry whose folder is a link is refused, and files are
//! created new), so even a tricky chain of links cannot make the unpack write outside. A total
//! size and an entry count cap stop archive bombs: sizes are counted as bytes are written, not
//! believed from headers. The executable bit is kept (tar modes, zip Unix modes).
//!
//! Blocking: call [`unpack`] from `spawn_blocking` (or use [`unpack_async`]).

use std::fs::File;
use std::io::{self, BufReader, Read, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::sys;

/// The archive formats a release comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TarGz,
    Zip,
}

impl Kind {
    /// By extension: `.tar.gz`/`.tgz` or `.zip` (a URL's query is ignored).
    pub fn from_name(name: &str) -> Result<Kind, UnpackError> {
        let path = name.split(['?', '#']).next().unwrap_or("").to_ascii_lowercase();
        if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
            Ok(Kind::TarGz)
        } else if path.ends_with(".zip") {
            Ok(Kind::Zip)
        } else {
            let shown = name.split(['?', '#']).next().unwrap_or("").to_owned();
            Err(UnpackError::UnknownKind { name: shown })
        }
    }
}

/// Caps against archive bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes written, all files together.
    pub max_bytes: u64,
    /// Entries (files, folders, links).
    pub max_entries: u64,
}

impl Limits {
    /// 100 times the archive (a release of binaries compresses 3 to 5 times; 100 leaves room
    /// for text), but at least 256 MiB and at most 8 GiB; 100 000 entries.
    pub fn for_archive(archive_len: u64) -> Limits {
        const MIB: u64 = 1024 * 1024;
        Limits {
            max_bytes: archive_len.saturating_mul(100).clamp(256 * MIB, 8192 * MIB),
            max_entries: 100_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{name:?} is not an archive steward unpacks: its name must end in .tar.gz, .tgz or .zip")]
    UnknownKind { name: String },
    #[error("{version:?} is not a version to name a release folder by (it must be semver, like 1.4.0)")]
    BadVersion { version: String },
    #[error("{archive}: the entry {entry:?} {reason}; refusing the whole archive", archive = archive.display())]
    Refused { archive: PathBuf, entry: String, reason: String },
    #[error("{archive} unpacks to more than {max} bytes (a zip bomb?); refusing it", archive = archive.display())]
    TooBig { archive: PathBuf, max: u64 },
    #[error("{archive} has more than {max} entries; refusing it", archive = archive.display())]
    TooManyEntries { archive: PathBuf, max: u64 },
    #[error("{archive} is damaged or not a {kind:?} archive", archive = archive.display())]
    Damaged { archive: PathBuf, kind: Kind, source: io::Error },
    #[error("the disk holding {} is full while unpacking {}; free some space and deploy again", folder.display(), archive.display())]
    DiskFull { folder: PathBuf, archive: PathBuf, source: io::Error },
    #[error("cannot {what} {}", path.display())]
    Io { what: &'static str, path: PathBuf, source: io::Error },
}

/// Unpacks `archive` into `dest_parent/<version>/` and returns that folder. An existing
/// `<version>/` is whole (only ever made by a rename) and is reused as it is.
pub fn unpack(archive: &Path, kind: Kind, dest_parent: &Path, version: &str) -> Result<PathBuf, UnpackError> {
    let len = std::fs::metadata(archive).map_err(|source| io_err("read", archive, source))?.len();
    unpack_with(archive, kind, dest_parent, version, Limits::for_archive(len))
}

/// [`unpack`] on the blocking pool.
pub async fn unpack_async(
    archive: PathBuf,
    kind: Kind,
    dest_parent: PathBuf,
    version: String,
) -> Result<PathBuf, UnpackError> {
    tokio::task::spawn_blocking(move || unpack(&archive, kind, &dest_parent, &version))
        .await
        .unwrap_or_else(|e| Err(io_err("unpack into", Path::new("(a stopped task)"), io::Error::other(e))))
}

/// [`unpack`] with explicit caps.
pub fn unpack_with(
    archive: &Path,
    kind: Kind,
    dest_parent: &Path,
    version: &str,
    limits: Limits,
) -> Result<PathBuf, UnpackError> {
    if semver::Version::parse(version).is_err() {
        return Err(UnpackError::BadVersion { version: version.to_owned() });
    }
    let dest = dest_parent.join(version);
    if dest.is_dir() {
        tracing::info!(release = %dest.display(), "already unpacked; reused");
        return Ok(dest);
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let staging = dest_parent.join(format!(".staging-{version}-{}-{n}", std::process::id()));
    std::fs::create_dir(&staging).map_err(|source| io_err("create", &staging, source))?;
    let result = fill(archive, kind, &staging, limits).and_then(|()| place(&staging, &dest, dest_parent));
    if result.is_err() || dest.is_dir() && staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result.map(|()| dest)
}

/// Renames the whole staging folder into place, durably.
fn place(staging: &Path, dest: &Path, dest_parent: &Path) -> Result<(), UnpackError> {
    match std::fs::rename(staging, dest) {
        Ok(()) => {}
        // Unpacked meanwhile by someone else: theirs is whole too.
        Err(_) if dest.is_dir() => return Ok(()),
        Err(source) => return Err(io_err("rename into place", dest, source)),
    }
    sys::sync_dir(dest_parent).map_err(|source| io_err("sync", dest_parent, source))
}

fn fill(archive: &Path, kind: Kind, staging: &Path, limits: Limits) -> Result<(), UnpackError> {
    let file = File::open(archive).map_err(|source| io_err("open", archive, source))?;
    let mut out = Writer {
        archive,
        kind,
        root: staging,
        limits,
        bytes: 0,
        entries: 0,
        dirs: vec![staging.to_path_buf()],
    };
    match kind {
        Kind::TarGz => fill_tar(&mut out, BufReader::new(file))?,
        Kind::Zip => fill_zip(&mut out, file)?,
    }
    // Deepest first, so that each folder's own entry is synced after its children's.
    out.dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    out.dirs.dedup();
    for dir in &out.dirs {
        sys::sync_dir(dir).map_err(|source| io_err("sync", dir, source))?;
    }
    Ok(())
}

fn fill_tar(out: &mut Writer<'_>, reader: impl Read) -> Result<(), UnpackError> {
    let damaged =
        |source| UnpackError::Damaged { archive: out.archive.to_path_buf(), kind: Kind::TarGz, source };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let entries = tar.entries().map_err(damaged)?;
    for entry in entries {
        let damaged =
            |source| UnpackError::Damaged { archive: out.archive.to_path_buf(), kind: Kind::TarGz, source };
        let mut entry = entry.map_err(damaged)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let rel = out.admit(&name)?;
        let Some(rel) = rel else { continue };
        let link = entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        match kind {
            tar::EntryType::Directory => out.dir(&name, &rel)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = entry.header().mode().unwrap_or(0o644);
                out.file(&name, &rel, &mut entry, mode)?
            }
            tar::EntryType::Symlink => out.symlink(&name, &rel, link.as_deref().unwrap_or(""))?,
            tar::EntryType::Link => out.hard_link(&name, &rel, link.as_deref().unwrap_or(""))?,
            other => return Err(out.refuse(&name, &format!("is a {other:?}, not a file, folder or link"))),
        }
    }
    Ok(())
}

fn fill_zip(out: &mut Writer<'_>, file: File) -> Result<(), UnpackError> {
    let damaged = |e: zip::result::ZipError| UnpackError::Damaged {
        archive: out.archive.to_path_buf(),
        kind: Kind::Zip,
        source: io::Error::other(e),
    };
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(damaged)?;
    if zip.len() as u64 > out.limits.max_entries {
        return Err(UnpackError::TooManyEntries {
            archive: out.archive.to_path_buf(),
            max: out.limits.max_entries,
        });
    }
    for i in 0..zip.len() {
        let damaged = |e: zip::result::ZipError| UnpackError::Damaged {
            archive: out.archive.to_path_buf(),
            kind: Kind::Zip,
            source: io::Error::other(e),
        };
        let mut entry = zip.by_index(i).map_err(damaged)?;
        let name = entry.name().map_err(damaged)?.into_owned();
        let Some(rel) = out.admit(&name)? else { continue };
        if entry.encrypted() {
            return Err(out.refuse(&name, "is encrypted"));
        }
        // The headers may lie, and bytes are counted as written too; this only fails early.
        if out.bytes.saturating_add(entry.size()) > out.limits.max_bytes {
            return Err(UnpackError::TooBig {
                archive: out.archive.to_path_buf(),
                max: out.limits.max_bytes,
            });
        }
        if entry.is_dir() {
            out.dir(&name, &rel)?;
        } else if entry.is_symlink() {
            let mut target = String::new();
            entry
                .by_ref()
                .take(4096)
                .read_to_string(&mut target)
                .map_err(|e| out.refuse(&name, &format!("has an unreadable link target ({e})")))?;
            out.symlink(&name, &rel, &target)?;
        } else {
            let mode = entry.unix_mode().unwrap_or(0o644);
            out.file(&name, &rel, &mut entry, mode)?;
        }
    }
    Ok(())
}

/// Writes checked entries under the staging folder, counting against the caps.
struct Writer<'a> {
    archive: &'a Path,
    kind: Kind,
    root: &'a Path,
    limits: Limits,
    bytes: u64,
    entries: u64,
    /// Folders made (and the root), to fsync at the end.
    dirs: Vec<PathBuf>,
}

impl Writer<'_> {
    /// Counts an entry and checks its path; `None` for the root itself (`./`).
    fn admit(&mut self, name: &str) -> Result<Option<PathBuf>, UnpackError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                archive: self.archive.to_path_buf(),
                max: self.limits.max_entries,
            });
        }
        let rel = safe_relative(name).map_err(|reason| self.refuse(name, reason))?;
        Ok((!rel.as_os_str().is_empty()).then_some(rel))
    }

    fn refuse(&self, entry: &str, reason: &str) -> UnpackError {
        UnpackError::Refused {
            archive: self.archive.to_path_buf(),
            entry: entry.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn io(&self, what: &'static str, path: &Path, source: io::Error) -> UnpackError {
        if super::fetch::is_disk_full(&source) {
            return UnpackError::DiskFull {
                folder: self.root.to_path_buf(),
                archive: self.archive.to_path_buf(),
                source,
            };
        }
        io_err(what, path, source)
    }

    /// The folders above `rel`, made as needed; refused when one is a link or a file.
    fn parents(&mut self, name: &str, rel: &Path) -> Result<PathBuf, UnpackError> {
        let mut at = self.root.to_path_buf();
        let parent = rel.parent().unwrap_or(Path::new(""));
        for part in parent.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.refuse(name, "lies under a link in the archive"))
                }
                Ok(_) => return Err(self.refuse(name, "lies under a file of the archive")),
                Err(_) => {
                    std::fs::create_dir(&at).map_err(|e| self.io("create", &at, e))?;
                    self.dirs.push(at.clone());
                }
            }
        }
        Ok(self.root.join(rel))
    }

    /// Clears the way for a new entry at `path`: an earlier entry of the same name (tar allows
    /// repeats; the last wins) is removed, without following it if it is a link.
    fn clear(&self, name: &str, path: &Path) -> Result<(), UnpackError> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Err(self.refuse(name, "replaces a folder of the archive")),
            Ok(_) => std::fs::remove_file(path).map_err(|e| self.io("replace", path, e)),
            Err(_) => Ok(()),
        }
    }

    fn dir(&mut self, name: &str, rel: &Path) -> Result<(), UnpackError> {
        let path = self.parents(name, rel)?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(self.refuse(name, "is a folder where the archive has a file or link")),
            Err(_) => {
                std::fs::create_dir(&path).map_err(|e| self.io("create", &path, e))?;
                self.dirs.push(path);
                Ok(())
            }
        }
    }

    fn file(&mut self, name: &str, rel: &Path, data: &mut dyn Read, mode: u32) -> Result<(), UnpackError> {
        let path = self.parents(name, rel)?;
        self.clear(name, &path)?;
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| self.io("create", &path, e))?;
        // One byte over the budget is enough to know it is over.
        let budget = self.limits.max_bytes - self.bytes;
        let mut limited = data.take(budget + 1);
        let mut buf = vec![0; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::Damaged {
                        archive: self.archive.to_path_buf(),
                        kind: self.kind,
                        source,
                    })
                }
            };
            written += n as u64;
            if written > budget {
                return Err(UnpackError::TooBig {
                    archive: self.archive.to_path_buf(),
                    max: self.limits.max_bytes,
                });
            }
            file.write_all(&buf[..n]).map_err(|e| self.io("write", &path, e))?;
        }
        self.bytes += written;
        sys::set_mode(&file, mode).map_err(|e| self.io("set the mode of", &path, e))?;
        file.sync_all().map_err(|e| self.io("sync", &path, e))
    }

    /// A link whose target stays inside the release (checked on the path's text).
    fn symlink(&mut self, name: &str, rel: &Path, target: &str) -> Result<(), UnpackError> {
        if target.is_empty()
            || target.starts_with(['/', '\\'])
            || target.contains(':')
            || target.contains('\0')
        {
            return Err(self.refuse(name, &format!("is a link to {target:?}, outside the release")));
        }
        // Its target is relative to the link's own folder: count the depth along the way.
        let mut depth = rel.components().count() as i64 - 1;
        for part in target.split(['/', '\\']) {
            match part {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return Err(
                    self.refuse(name, &format!("is a link to {target:?}, which climbs out of the release"))
                );
            }
        }
        let path = self.parents(name, rel)?;
        self.clear(name, &path)?;
        sys::symlink(Path::new(target), &path).map_err(|e| match e.kind() {
            io::ErrorKind::Unsupported => self.refuse(name, &e.to_string()),
            _ => self.io("create the link", &path, e),
        })
    }

    /// A hard link to an earlier entry: only to a file of this release.
    fn hard_link(&mut self, name: &str, rel: &Path, target: &str) -> Result<(), UnpackError> {
        let to = safe_relative(target).ok().filter(|t| !t.as_os_str().is_empty()).ok_or_else(|| {
            self.refuse(name, &format!("is a hard link to {target:?}, outside the release"))
        })?;
        let to = self.parents(name, &to)?;
        match std::fs::symlink_metadata(&to) {
            Ok(m) if m.is_file() => {}
            _ => {
                return Err(self.refuse(
                    name,
                    &format!("is a hard link to {target:?}, not an earlier file of the archive"),
                ))
            }
        }
        let path = self.parents(name, rel)?;
        self.clear(name, &path)?;
        std::fs::hard_link(&to, &path).map_err(|e| self.io("create the link", &path, e))
    }
}

/// An entry's name as a relative path that stays inside: no root, no drive, no `..`.
fn safe_relative(name: &str) -> Result<PathBuf, &'static str> {
    if name.contains('\0') {
        return Err("has a NUL in its name");
    }
    if name.starts_with(['/', '\\']) {
        return Err("has an absolute path");
    }
    let mut rel = PathBuf::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err("climbs out with .."),
            p if p.contains(':') => return Err("has a drive or a ':' in its path"),
            p => rel.push(p),
        }
    }
    // What the OS makes of it must be the same plain parts (no prefix on Windows).
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("is not a plain relative path");
    }
    Ok(rel)
}

fn io_err(what: &'static str, path: &Path, source: io::Error) -> UnpackError {
    UnpackError::Io { what, path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(Kind::from_name("a-1.0.tar.gz").unwrap(), Kind::TarGz);
        assert_eq!(Kind::from_name("https://h/A.TGZ?x=1").unwrap(), Kind::TarGz);
        assert_eq!(Kind::from_name("a.zip").unwrap(), Kind::Zip);
        let e = Kind::from_name("https://h/a.tar.xz?token=s").unwrap_err().to_string();
        assert!(e.contains("a.tar.xz") && !e.contains("token"), "{e}");
    }

    #[test]
    fn entry_paths() {
        assert_eq!(safe_relative("./bin/api").unwrap(), PathBuf::from("bin").join("api"));
        assert_eq!(safe_relative("./").unwrap(), PathBuf::new());
        for bad in ["../x", "a/../../x", "a/..", "/etc/passwd", "\\x", "C:/x", "c:x", "a\\..\\b", "a\0b"] {
            assert!(safe_relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_scale_with_the_archive() {
        assert_eq!(Limits::for_archive(1).max_bytes, 256 << 20);
        assert_eq!(Limits::for_archive(10 << 20).max_bytes, 1000 << 20);
        assert_eq!(Limits::for_archive(u64::MAX).max_bytes, 8 << 30);
    }
}
