//! Link steward's hot functions next to each other (startup.order, made by
//! scripts/startup-order.sh, which says why): about 2.5 MB less resident memory per
//! supervisor. Release builds for x86_64 Linux only, where rustc links with its own LLD
//! (GNU ld has no --symbol-ordering-file). STEWARD_NO_STARTUP_ORDER=1 turns it off, e.g.
//! for a build that switches to another linker.

fn main() {
    println!("cargo:rerun-if-changed=startup.order");
    println!("cargo:rerun-if-env-changed=STEWARD_NO_STARTUP_ORDER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
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
