//! `systemctl --root`: an offline image, changed without a running systemd.

use std::path::{Path, PathBuf};

use steward_service::manage::{Error, Manager, Platform, Scope, ServiceSpec, StartType};

/// `systemctl`, when installed (Debian: package `systemd`).
fn systemctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("systemctl")).find(|p| p.is_file())
}

#[test]
fn install_update_and_uninstall_in_an_offline_image() {
    if systemctl().is_none() {
        println!("SKIPPED install_update_and_uninstall_in_an_offline_image: `systemctl` is not installed");
        return;
    }
    let image = tempfile::tempdir().unwrap();
    let manager =
        Manager::new(Platform::Systemd, "myapp", Scope::System).unwrap().with_root(image.path()).unwrap();
    let spec = ServiceSpec::new("myapp", "/usr/bin/myapp").args(["run"]).description("My app");
    assert!(
        matches!(manager.update(&spec), Err(Error::NotInstalled { .. })),
        "update needs an installed service"
    );

    manager.install(&spec).unwrap();
    let unit = image.path().join("etc/systemd/system/myapp.service");
    assert_eq!(manager.file().unwrap(), unit);
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), manager.render(&spec).unwrap());
    let link = image.path().join("etc/systemd/system/multi-user.target.wants/myapp.service");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc/systemd/system/myapp.service"));
    assert!(manager.is_installed().unwrap());

    // An update rewrites the file; a manual start is not enabled (no WantedBy).
    let manual = spec.clone().description("My app, started by hand").start(StartType::Manual);
    manager.update(&manual).unwrap();
    assert!(std::fs::read_to_string(&unit).unwrap().contains("Description=My app, started by hand\n"));
    assert!(std::fs::symlink_metadata(&link).is_err(), "a manual start is no longer enabled");
    manager.update(&spec).unwrap();
    assert!(std::fs::read_link(&link).is_ok(), "enabled again");

    // An image is for files only.
    for result in [manager.start(None).err(), manager.stop(None).err(), manager.status().err()] {
        assert!(matches!(result, Some(Error::Unsupported { .. })), "{result:?}");
    }
    let other = ServiceSpec::new("other", "/usr/bin/other");
    assert!(matches!(manager.install(&other), Err(Error::Invalid { .. })), "a spec for another service");

    manager.uninstall().unwrap();
    assert!(!unit.exists() && std::fs::symlink_metadata(&link).is_err());
    assert!(matches!(manager.uninstall(), Err(Error::NotInstalled { .. })));
}
