//! steward's integration and end-to-end tests: one test binary (one link, which is what costs
//! on a two-core CI machine), a module per area. Every module runs on every OS, on Windows under
//! Wine in CI (`scripts/ci-windows.sh test`), unless gated here with the reason.
#![allow(dead_code)] // each module uses a different part of the shared helpers

mod common;
mod http_server;

mod alerts;
mod cli_check;
mod control;
// The web dashboard over real HTTP: sessions, CSRF, roles, the event stream.
mod dashboard;
// A native release (a zip with an executable) deployed and rolled back.
mod deploy_native;
mod health;
// `steward init` and `steward add`: files that check out, and a program that runs.
mod init;
mod instances;
mod logs_child;
mod logs_file;
mod logs_open;
// Release I/O: fetch (a misbehaving server), signatures, unpack (hostile archives).
mod releases;
mod remote_api;
mod secrets;
// steward's unit, plist and SCM settings as the library renders them (pure: every OS).
mod service_render;
// Log shipping to the fake Loki, Elasticsearch and OTLP receivers and to a real rsyslog.
mod ship;
mod supervise;

// std's anonymous pipes handed to tokio's Unix pipe type.
#[cfg(unix)]
mod logs_pump;
// File modes, another user (uid 65534), descriptors inherited through exec.
#[cfg(unix)]
mod permissions;
// sd_notify: Unix datagram sockets in systemd's place.
#[cfg(unix)]
mod notify;
// Rolling restarts gated on sd_notify readiness.
#[cfg(unix)]
mod rolling;
// Signed releases deployed, gated and rolled back (each version a shell script).
#[cfg(unix)]
mod deploy;
// `systemctl --root` into an offline image.
#[cfg(unix)]
mod service_cli;
// Shell completion run by a real bash (and a Unix socket that never answers).
#[cfg(unix)]
mod completions;
// Man pages rendered by man-db's `man`.
#[cfg(unix)]
mod man;
// `steward top` in a real terminal: tmux, driven by keys and read from the screen.
#[cfg(unix)]
mod top;
// SIGTERM, SIGHUP and SIGKILL to steward, and what follows.
#[cfg(unix)]
mod signals;
// `steward self-update`: a harness as the service manager, shell-script releases, kill -9
// between steps (the Windows swap and SCM restart are checked by scripts/wine-service-test.sh).
#[cfg(unix)]
mod self_update;

// RLIMIT_NOFILE set for steward, read back from /proc.
#[cfg(target_os = "linux")]
mod api_limits;
// Sockets passed as systemd's socket activation does (Windows: sockets_windows).
#[cfg(target_os = "linux")]
mod sockets;
// Zero failed requests under load through restarts, scaling and reloads (sd_notify readiness;
// the Windows roll under load is in sockets_windows).
#[cfg(target_os = "linux")]
mod zero_downtime;
// A real server no one here wrote, rolled under load (skipped when gunicorn is missing).
#[cfg(target_os = "linux")]
mod gunicorn;
// cgroups, /proc, setpriv and kill -9 of steward.
#[cfg(target_os = "linux")]
mod contain;
// Memory of process trees, read from /proc.
#[cfg(target_os = "linux")]
mod memory_limit;
// /metrics after memory samples (from /proc), and on the API's Unix socket.
#[cfg(target_os = "linux")]
mod metrics;
// GET /v1/usage, once and streamed, of real programs (from /proc, over the Unix socket).
#[cfg(target_os = "linux")]
mod usage;
// docs/monitoring/: promtool on the rules; the kit's metrics against a live scrape (from /proc).
#[cfg(target_os = "linux")]
mod monitoring;
// The peak memory of steward serving tails, from /proc.
#[cfg(target_os = "linux")]
mod logs_tail;
// steward as PID 1 of a PID namespace (unshare, as root): orphans, signals, exit codes, --mirror.
#[cfg(target_os = "linux")]
mod pid1;
// Resource sampling of process trees, from /proc.
#[cfg(target_os = "linux")]
mod resources;
// The dashboard in a real headless Chromium, through chromedriver (Debian's packages; skipped
// when they are missing).
#[cfg(target_os = "linux")]
mod dashboard_browser;
// `steward schema` against every config of the repo, with Python's jsonschema (a tool of
// the host: not under Wine).
#[cfg(unix)]
mod schema;

// A Windows console and Ctrl+C.
#[cfg(windows)]
mod windows_console;
// Sockets passed by the systemfd protocol (WSADuplicateSocketW), served through a roll.
#[cfg(windows)]
mod sockets_windows;
