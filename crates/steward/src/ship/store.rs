//! A sink's folder, `<state_dir>/ship/NAME/`: a cursor file per stream (`web.out.json`,
//! with its previous copy `web.out.json.bak`), and `deadletter.log`, the lines the receiver
//! refused for good, one JSON object each.
//!
//! A cursor is saved atomically after each batch the receiver acknowledged: written to a
//! temporary file, flushed to disk, renamed over the old one. The copy it replaces is kept
//! first as the backup, so a cursor file damaged on disk costs at most one batch sent
//! again (`steward_core::ship::cursor::recover`), never a silent start over.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use steward_core::ship::cursor::{recover, Cursor, Loaded};

pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The folder of sink `name` under `state_dir`, created if needed (owner-only).
    pub fn open(state_dir: &Path, name: &str) -> io::Result<Store> {
        let dir = state_dir.join(steward_core::config::defaults::SHIP_SUBDIR).join(name);
        crate::private::create_dir_all(&dir)?;
        Ok(Store { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cursor_path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.json"))
    }

    fn backup_path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.json.bak"))
    }

    /// The sink's epoch: drawn once and saved before anything is sent, so that a stream
    /// without a cursor yet (nothing acknowledged before a crash) gets the same line ids the
    /// next time.
    pub fn epoch(&self, fresh: impl FnOnce() -> u64) -> io::Result<u64> {
        let path = self.dir.join("epoch");
        match fs::read_to_string(&path) {
            Ok(text) => {
                if let Ok(epoch) = text.trim().parse() {
                    return Ok(epoch);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let epoch = fresh();
        write_replacing(&path, format!("{epoch}\n").as_bytes(), true)?;
        Ok(epoch)
    }

    /// The saved cursor of stream `stem` (`web.out`), its backup when it is damaged.
    pub fn load(&self, stem: &str) -> Loaded {
        let read = |path: PathBuf| match fs::read(&path) {
            Ok(bytes) => Some(bytes),
            // Unreadable counts as damaged: an empty read fails to parse.
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(_) => Some(Vec::new()),
        };
        let primary = read(self.cursor_path(stem));
        let backup = read(self.backup_path(stem));
        recover(primary.as_deref(), backup.as_deref())
    }

    /// Saves `cursor` for `stem`, keeping `previous` (the cursor it replaces) as the backup.
    pub fn save(&self, stem: &str, cursor: Cursor, previous: Option<Cursor>) -> io::Result<()> {
        if let Some(previous) = previous {
            // The backup needs no flush to disk of its own: it is only read when the cursor
            // file is damaged, and the rename below is ordered after it on the same disk.
            write_replacing(&self.backup_path(stem), &previous.to_json(), false)?;
        }
        write_replacing(&self.cursor_path(stem), &cursor.to_json(), true)
    }

    /// Appends refused lines, one JSON object each, to `deadletter.log`.
    pub fn dead_letter(&self, records: &[serde_json::Value]) -> io::Result<()> {
        let mut text = Vec::new();
        for record in records {
            serde_json::to_writer(&mut text, record).map_err(io::Error::other)?;
            text.push(b'\n');
        }
        let mut file =
            fs::OpenOptions::new().create(true).append(true).open(self.dir.join("deadletter.log"))?;
        file.write_all(&text)
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk when `sync`, and
/// renames it over `path`.
fn write_replacing(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_data()?;
        }
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_core::rotation::Stamp;

    #[test]
    fn a_cursor_survives_damage_through_its_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "loki").unwrap();
        assert_eq!(store.load("web.out"), Loaded::Fresh);
        let first = Cursor { epoch: 1, after: None, offset: 10 };
        let second = Cursor { epoch: 1, after: Some(Stamp { millis: 5 }), offset: 0 };
        store.save("web.out", first, None).unwrap();
        store.save("web.out", second, Some(first)).unwrap();
        assert_eq!(store.load("web.out"), Loaded::Found(second));
        fs::write(store.cursor_path("web.out"), b"{\"epoch\":1,\"aft").unwrap();
        match store.load("web.out") {
            Loaded::FromBackup { cursor, problem } => {
                assert_eq!(cursor, first);
                assert!(problem.contains("damaged"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
        store.dead_letter(&[serde_json::json!({"line": "x"})]).unwrap();
        store.dead_letter(&[serde_json::json!({"line": "y"})]).unwrap();
        let letters = fs::read_to_string(dir.path().join("ship/loki/deadletter.log")).unwrap();
        assert_eq!(letters, "{\"line\":\"x\"}\n{\"line\":\"y\"}\n");
    }
}
