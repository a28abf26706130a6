# Adapter: steward (this repo). One `steward run` per instance, its config in
# $SV_DIR/steward.toml, state (lock, control socket) in $SV_DIR/state, logs in $SV_DIR/logs.
# $STEWARD_BIN is the release binary (bench/run.sh builds it and exports the path).
# See the harness's README ("Adding a supervisor") for the function contract.
SV_NAME="steward"
SV_ROTATE=1
STEWARD_BIN=${STEWARD_BIN:-steward}
sv_version() { "$STEWARD_BIN" --version; }
# TOML basic string: backslash and double quote escaped
_toml_str() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
sv_add() {             # NAME ARGV...
    local name=$1; shift
    local a argv=""
    for a in "$@"; do argv+="${argv:+, }$(_toml_str "$a")"; done
    mkdir -p "$SV_DIR/programs"
    {
        echo "[programs.$name]"
        echo "command = [$argv]"
        if [ "${PB_RESTART:-default}" = fast ]; then
            # fastest: restart at once, no backoff, no give-up
            echo 'restart = "always"'
            echo 'restart_delay = "0ms"'
            echo 'restart_max_delay = "0ms"'
            echo 'max_restarts = 1000000000'
        fi
        echo "[programs.$name.log]"
        if [ "${PB_ROTATE:-0}" -gt 0 ]; then
            echo "max_size = $PB_ROTATE"
            echo "keep = 100"
        else
            echo "max_size = 0"                  # default: 50MB x 10 kept
        fi
    } > "$SV_DIR/programs/$name.toml"
}
sv_start() {
    {
        echo "[supervisor]"
        echo "state_dir = $(_toml_str "$SV_DIR/state")"
        echo "log_dir = $(_toml_str "$SV_DIR/logs")"
        cat "$SV_DIR"/programs/*.toml
    } > "$SV_DIR/steward.toml"
    setsid "$STEWARD_BIN" run -c "$SV_DIR/steward.toml" </dev/null >"$SV_DIR/out" 2>&1 &
    echo $! > "$SV_DIR/root.pid"
}
_ctl() { "$STEWARD_BIN" -c "$SV_DIR/steward.toml" "$@"; }
sv_stop() { _ctl stop "$1"; }
sv_startprog() { _ctl start "$1"; }
sv_status() { _ctl status; }
sv_shutdown() { _ctl shutdown; }
# live file NAME.out.log; rotated NAME.out.log.<UTC stamp> (same width: sorted by name =
# oldest first); the live file is the newest, so it goes last
sv_logs() { ls "$SV_DIR/logs/$1.out.log".* 2>/dev/null | sort; echo "$SV_DIR/logs/$1.out.log"; }
sv_logglob() { echo "$SV_DIR/logs/$1.out.log*"; }
