//! Finding (and if need be building) the test kit's programs: `steward-testchild` and
//! `steward-testserver`.
//!
//! Cargo passes `CARGO_BIN_EXE_<name>` only to the tests of the package that owns the binary,
//! and builds a dev-dependency's library but not its binaries. So steward's tests find the
//! programs on their own, in this order:
//!
//! 1. `STEWARD_TESTCHILD` (`STEWARD_TESTSERVER`), if set: the path of the binary to use (e.g.
//!    for a test executable copied elsewhere).
//! 2. Next to the running test executable: tests live in `<target-dir>/[<triple>/]<profile>/deps/`
//!    and binaries one level up, in `<profile>/`.
//! 3. If it is not there, or older than a source it is built from (a test run of another
//!    package does not rebuild it), it is built once with
//!    `cargo build -p testkit --bin steward-testchild` (or `steward-testserver`), with the same
//!    target directory, target triple and profile as the running test. Its sources are the
//!    manifest, the library (`src/` but `src/bin/`) and its own files in `src/bin/`: cargo does
//!    not relink it when another program's files change, so those must not make it look stale
//!    (a Windows test under Wine cannot run cargo, and would fail on such a binary).
//!
//! A `OnceLock` makes the threads of one test executable share one lookup. Test executables
//! running in parallel may each start the build: cargo's own lock on the build directory
//! serialises them, and all but the first find nothing to do. Cargo puts the finished binary in
//! place with a hard link, so a process that sees it sees all of it.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

/// A program of the kit: its binary's name, the variable that can point at it instead, and
/// the stem of its sources in `src/bin/` (`<stem>.rs` and the folder `<stem>/`).
#[derive(Clone, Copy)]
struct Bin {
    name: &'static str,
    env: &'static str,
    stem: &'static str,
}

const TESTCHILD: Bin = Bin { name: "steward-testchild", env: "STEWARD_TESTCHILD", stem: "testchild" };
const TESTSERVER: Bin = Bin { name: "steward-testserver", env: "STEWARD_TESTSERVER", stem: "testserver" };
/// This crate's directory, as compiled: its sources and the manifest to build from.
const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The path of the `steward-testchild` binary, built if need be (see the module doc).
///
/// # Panics
/// If it cannot be found or built; the message says why and what to do.
pub fn testchild() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    located(&PATH, TESTCHILD)
}

/// The path of the `steward-testserver` binary (the HTTP server of the rolling-restart tests),
/// built if need be (see the module doc).
///
/// # Panics
/// If it cannot be found or built; the message says why and what to do.
pub fn testserver() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    located(&PATH, TESTSERVER)
}

fn located(cell: &OnceLock<PathBuf>, bin: Bin) -> PathBuf {
    // A panic leaves the lock empty, so each later caller fails with the same message.
    cell.get_or_init(|| locate(bin).unwrap_or_else(|e| panic!("{}: {e}", bin.name))).clone()
}

fn locate(Bin { name, env: var, stem }: Bin) -> Result<PathBuf, String> {
    if let Some(path) = env::var_os(var) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{var}={} is not a file", path.display()))
        };
    }
    let exe = env::current_exe().map_err(|e| format!("cannot find the test executable: {e}"))?;
    let layout = Layout::of_test_exe(&exe).ok_or_else(|| {
        format!("{} is not in a cargo target directory; build {name} and set {var}", exe.display())
    })?;
    let bin = layout.profile_dir.join(format!("{name}{}", env::consts::EXE_SUFFIX));
    if !is_stale(&bin, Path::new(CRATE_DIR), stem) {
        return Ok(bin);
    }
    build(&layout, name)?;
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("cargo built it, but {} does not exist", bin.display()))
    }
}

/// Where a test executable sits in cargo's output tree.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    /// `<target-dir>/[<triple>/]<profile>`: where binaries go.
    profile_dir: PathBuf,
    /// The target directory, if recognised.
    target_dir: Option<PathBuf>,
    /// The `--target` triple the tests were built for, if any.
    triple: Option<String>,
    /// The profile directory's name: `debug` (profiles dev and test), `release`, or a custom
    /// profile's name.
    profile: String,
}

impl Layout {
    fn of_test_exe(exe: &Path) -> Option<Layout> {
        let dir = exe.parent()?;
        let profile_dir = match dir.file_name()?.to_str()? {
            "deps" | "examples" => dir.parent()?,
            _ => dir,
        };
        let profile = profile_dir.file_name()?.to_str()?.to_owned();
        let above = profile_dir.parent()?;
        // Cargo marks a target directory with CACHEDIR.TAG, and with `--target` also its
        // `<triple>/` directory. Without the tags, a name with dashes is taken for a triple
        // (x86_64-pc-windows-gnu).
        let tagged = |dir: &Path| dir.join("CACHEDIR.TAG").is_file();
        let name = above.file_name()?.to_str()?;
        let root = above.parent();
        let cross = match root {
            Some(root) if tagged(root) && tagged(above) => true,
            _ if tagged(above) => false,
            Some(_) => name.matches('-').count() >= 2,
            None => false,
        };
        let (target_dir, triple) = if cross { (root, Some(name.to_owned())) } else { (Some(above), None) };
        Some(Layout {
            profile_dir: profile_dir.to_owned(),
            target_dir: target_dir.map(Path::to_owned),
            triple,
            profile,
        })
    }
}

/// True if `bin` is missing or older than one of its sources in the crate at `crate_dir`
/// (see the module doc); `stem` names its files in `src/bin/`.
fn is_stale(bin: &Path, crate_dir: &Path, stem: &str) -> bool {
    let Ok(built) = fs::metadata(bin).and_then(|m| m.modified()) else {
        return true;
    };
    let src = crate_dir.join("src");
    let bin_dir = src.join("bin");
    // Sources we cannot read (an installed test executable without them) do not count.
    let newest = [
        newest_mtime(&crate_dir.join("Cargo.toml"), None),
        newest_mtime(&src, Some(&bin_dir)),
        newest_mtime(&bin_dir.join(format!("{stem}.rs")), None),
        newest_mtime(&bin_dir.join(stem), None),
    ]
    .into_iter()
    .map(|time| time.unwrap_or(SystemTime::UNIX_EPOCH))
    .max()
    .unwrap_or(SystemTime::UNIX_EPOCH);
    newest > built
}

/// The newest modification time of the file `path`, or of the files below the folder `path`
/// except those below `skip`.
fn newest_mtime(path: &Path, skip: Option<&Path>) -> io::Result<SystemTime> {
    let meta = fs::metadata(path)?;
    if !meta.is_dir() {
        return meta.modified();
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in fs::read_dir(path)? {
        let entry = entry?.path();
        if Some(entry.as_path()) != skip {
            newest = newest.max(newest_mtime(&entry, skip)?);
        }
    }
    Ok(newest)
}

/// The `cargo build` arguments that put the binary where `layout` says.
fn build_args(layout: &Layout, bin: &str) -> Vec<OsString> {
    let manifest = Path::new(CRATE_DIR).join("Cargo.toml");
    let mut args: Vec<OsString> = ["build", "--manifest-path"].map(OsString::from).into();
    args.push(manifest.into());
    args.extend(["-p", "testkit", "--bin", bin].map(OsString::from));
    if let Some(dir) = &layout.target_dir {
        args.extend([OsString::from("--target-dir"), dir.into()]);
    }
    if let Some(triple) = &layout.triple {
        args.extend(["--target", triple].map(OsString::from));
    }
    match layout.profile.as_str() {
        "debug" => {}
        "release" => args.push("--release".into()),
        other => args.extend(["--profile", other].map(OsString::from)),
    }
    args
}

fn build(layout: &Layout, bin: &str) -> Result<(), String> {
    // The cargo running these tests if any (it sets CARGO), else the one that compiled us.
    let cargo = env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| "cargo".into());
    let args = build_args(layout, bin);
    // A Windows test run under Wine by a Linux cargo cannot run that cargo: Wine starts a
    // Unix program detached, without its exit status.
    if cfg!(windows) && cargo.to_string_lossy().starts_with('/') {
        return Err(format!(
            "{} is missing or stale, and a Linux cargo cannot be run from Wine: build it \
             first with `cargo build -p testkit --bin {bin}{}`, or test with `-p testkit` too",
            layout.profile_dir.join(format!("{bin}{}", env::consts::EXE_SUFFIX)).display(),
            layout.triple.as_ref().map(|t| format!(" --target {t}")).unwrap_or_default(),
        ));
    }
    let mut cmd = Command::new(&cargo);
    // From the crate's directory, so the workspace's .cargo/config.toml applies as it did
    // to the tests.
    cmd.args(&args).current_dir(CRATE_DIR).stdin(Stdio::null());
    if layout.triple.is_none() {
        cmd.env_remove("CARGO_BUILD_TARGET");
    }
    let shown = format!(
        "{} {}",
        Path::new(&cargo).display(),
        args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    );
    let out = cmd.output().map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_in(root: &Path, rel: &str) -> Option<Layout> {
        let exe = root.join(rel);
        fs::create_dir_all(exe.parent().unwrap()).unwrap();
        Layout::of_test_exe(&exe)
    }

    #[test]
    fn host_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("CACHEDIR.TAG"), "").unwrap();
        let layout = layout_in(tmp.path(), "target/debug/deps/steward-0123abcd").unwrap();
        assert_eq!(
            layout,
            Layout {
                profile_dir: target.join("debug"),
                target_dir: Some(target.clone()),
                triple: None,
                profile: "debug".into(),
            }
        );
        assert_eq!(build_args(&layout, "b")[5..], ["--bin", "b", "--target-dir", target.to_str().unwrap()]);

        let release = layout_in(tmp.path(), "target/release/deps/x").unwrap();
        assert_eq!(release.profile, "release");
        assert_eq!(build_args(&release, "b").last().unwrap(), "--release");
        let custom = layout_in(tmp.path(), "target/ci/deps/x").unwrap();
        assert_eq!(build_args(&custom, "b")[build_args(&custom, "b").len() - 2..], ["--profile", "ci"]);
    }

    #[test]
    fn cross_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target-windows");
        let triple_dir = target.join("x86_64-pc-windows-gnu");
        fs::create_dir_all(&triple_dir).unwrap();
        fs::write(target.join("CACHEDIR.TAG"), "").unwrap();
        fs::write(triple_dir.join("CACHEDIR.TAG"), "").unwrap();
        let layout = layout_in(tmp.path(), "target-windows/x86_64-pc-windows-gnu/debug/deps/t.exe").unwrap();
        assert_eq!(layout.profile_dir, target.join("x86_64-pc-windows-gnu/debug"));
        assert_eq!(layout.target_dir.as_deref(), Some(target.as_path()));
        assert_eq!(layout.triple.as_deref(), Some("x86_64-pc-windows-gnu"));
        let args = build_args(&layout, "b");
        assert!(args.windows(2).any(|w| w == ["--target", "x86_64-pc-windows-gnu"]), "{args:?}");

        // Without tags, the triple is recognised by its name.
        let untagged = layout_in(tmp.path(), "other/aarch64-apple-darwin/release/deps/t").unwrap();
        assert_eq!(untagged.triple.as_deref(), Some("aarch64-apple-darwin"));
        assert_eq!(untagged.target_dir, Some(tmp.path().join("other")));
        let plain = layout_in(tmp.path(), "plain/debug/deps/t").unwrap();
        assert_eq!((plain.triple, plain.target_dir), (None, Some(tmp.path().join("plain"))));
    }

    #[test]
    fn staleness() {
        let tmp = tempfile::tempdir().unwrap();
        let krate = tmp.path().join("crate");
        fs::create_dir_all(krate.join("src/bin/child/os")).unwrap();
        fs::create_dir_all(krate.join("src/bin/other")).unwrap();
        let files = [
            "Cargo.toml",
            "src/lib.rs",
            "src/bin/child.rs",
            "src/bin/child/os/unix.rs",
            "src/bin/other.rs",
            "src/bin/other/args.rs",
        ]
        .map(|f| krate.join(f));
        for file in &files {
            fs::write(file, "").unwrap();
        }
        let bin = tmp.path().join("bin");
        assert!(is_stale(&bin, &krate, "child"), "missing");
        fs::write(&bin, "").unwrap();
        let set_time = |path: &Path, time| {
            fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap()
        };
        let past = SystemTime::now() - std::time::Duration::from_secs(60);
        let future = SystemTime::now() + std::time::Duration::from_secs(60);
        for file in &files {
            set_time(file, past);
        }
        assert!(!is_stale(&bin, &krate, "child"), "sources older");
        for (i, file) in files.iter().enumerate() {
            set_time(file, future);
            let own = !file.to_string_lossy().contains("other");
            assert_eq!(is_stale(&bin, &krate, "child"), own, "{} newer", file.display());
            set_time(file, past);
            assert!(!is_stale(&bin, &krate, "child"), "{i}");
        }
    }
}
