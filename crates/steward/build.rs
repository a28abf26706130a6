//! Two things done before steward is compiled:
//!
//! - steward.toml(5) from docs/config.md (build/config_page.rs), into `OUT_DIR`, for
//!   `steward man`: the markdown parser's code and its entity tables would otherwise load
//!   with every steward (their relocations alone are about 0.2 MB of resident memory).
//! - Link steward's hot functions next to each other, and the constant tables that idle
//!   never reads out of the way (startup.order, made by scripts/startup-order.sh, which says
//!   why): about 2.5 MB less resident memory per supervisor. Release builds for x86_64 Linux
//!   only, where rustc links with its own LLD (GNU ld has no --symbol-ordering-file).
//!   STEWARD_NO_STARTUP_ORDER=1 turns it off, e.g. for a build that switches to another
//!   linker.

#[path = "build/config_page.rs"]
mod config_page;

fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let config_md = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    println!("cargo:rerun-if-changed={}", config_md.display());
    println!("cargo:rerun-if-changed=build/config_page.rs");
    let markdown = std::fs::read_to_string(&config_md)
        .unwrap_or_else(|e| panic!("cannot read {} for steward.toml(5): {e}", config_md.display()));
    let page = std::path::Path::new(&var("OUT_DIR")).join("steward.toml.5");
    std::fs::write(&page, config_page::render(&markdown))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", page.display()));

    println!("cargo:rerun-if-changed=startup.order");
    println!("cargo:rerun-if-env-changed=STEWARD_NO_STARTUP_ORDER");
    let wanted = var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("PROFILE") == "release"
        && var("STEWARD_NO_STARTUP_ORDER").is_empty();
    if !wanted {
        return;
    }
    let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("startup.order");
    // Entries that no longer name a symbol (see the script) are skipped without a word.
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
