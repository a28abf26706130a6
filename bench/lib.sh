# Sourced by the bench/*.sh wrappers, from the repository's root.
#
#   release_build ARGS..   `cargo build --release ARGS..` (its output on stderr), then sets
#                          target_dir to cargo's target directory (CARGO_TARGET_DIR, or the
#                          workspace's target/); the binaries are in $target_dir/release.
release_build() {
    cargo build --release "$@" >&2
    target_dir=$(cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
}
