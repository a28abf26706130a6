//! The `Manager` against a real `systemctl`, without changing the machine: install, update
//! and uninstall into an offline image (`systemctl --root`, which needs no running systemd),
//! and the verbs an image refuses.

use steward_service::manage::{Error, Manager, Platform, Scope, ServiceSpec};

#[cfg(unix)]
mod image;

#[test]
fn other_platforms_render_but_do_not_install_here() {
    let foreign = if cfg!(windows) { Platform::Systemd } else { Platform::Windows };
    let manager = Manager::new(foreign, "myapp", Scope::System).unwrap();
    let spec = ServiceSpec::new("myapp", "/usr/bin/myapp");
    assert!(manager.render(&spec).is_ok());
    let err = manager.install(&spec).unwrap_err();
    assert!(matches!(err, Error::Unavailable(p) if p == foreign), "{err}");
}
