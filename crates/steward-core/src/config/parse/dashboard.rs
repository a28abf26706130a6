//! `[dashboard]`: the web dashboard's own listener (loopback only: it is plain HTTP) and how
//! long a session lasts, and the checks that span it and `[api]` (the dashboard signs in
//! with `[[api.tokens]]`, so it needs one; it needs somewhere to listen).

use std::net::SocketAddr;
use std::time::Duration;

use super::api::ApiDraft;
use super::{schema, walk, Ctx, Field, Key, Kind, Span};
use crate::config::model::{defaults, DashboardSettings};

/// `[dashboard]` as far as it has been checked.
pub(super) struct DashboardDraft {
    /// The `[dashboard]` table, for mistakes about the table as a whole.
    span: Span,
    listen: Option<SocketAddr>,
    listen_span: Option<Span>,
    session_timeout: Option<Duration>,
}

pub(super) const DASHBOARD_KEYS: &[Key<DashboardDraft>] = &[
    Key {
        name: "listen",
        doc: "The loopback address and port to serve the web dashboard on, over plain HTTP (default: only under /ui/ on [api] listen).",
        kind: Kind::Str,
        example: "listen = \"127.0.0.1:8080\"",
        set: |c, f, d| {
            d.listen_span = Some(f.span());
            d.listen = c.socket_addr(f);
        },
    },
    Key {
        name: "session_timeout",
        doc: "A dashboard session unused this long must sign in again (default 12h).",
        kind: Kind::Duration,
        example: "session_timeout = \"12h\"",
        set: |c, f, d| {
            d.session_timeout = c.duration(f).filter(|t| {
                let ok = !t.is_zero();
                if !ok {
                    c.error(
                        f.span(),
                        "`session_timeout` must be longer than 0",
                        "give how long an unused session lasts, for example \"12h\"; remove the key for the default (12h)",
                    );
                }
                ok
            });
        },
    },
];

/// The schema of `[dashboard]`.
pub(super) fn schema() -> serde_json::Value {
    schema::table(DASHBOARD_KEYS, &[])
}

impl Ctx<'_> {
    /// `[dashboard]`: its keys, then the checks within it.
    pub(super) fn dashboard(&mut self, f: &Field<'_, '_>) -> Option<DashboardDraft> {
        let table = self.table(f)?;
        let mut d = DashboardDraft { span: f.span(), listen: None, listen_span: None, session_timeout: None };
        walk(self, table, &f.table_path(), DASHBOARD_KEYS, &mut d);
        if let (Some(addr), Some(span)) = (d.listen, &d.listen_span) {
            if !addr.ip().is_loopback() {
                self.error(
                    span.clone(),
                    format!("the dashboard on {addr} would be plain HTTP off this machine"),
                    "listen on a loopback address such as \"127.0.0.1:8080\"; to reach the dashboard from \
                     other machines, use the remote API's TLS listener ([api] listen, tls_cert, tls_key), \
                     which serves it at https://HOST:PORT/ui/",
                );
            }
        }
        Some(d)
    }

    /// What `[dashboard]` needs from `[api]`: tokens to sign in with, and a listener if it
    /// has none of its own.
    pub(super) fn check_dashboard(&mut self, dashboard: Option<&DashboardDraft>, api: Option<&ApiDraft>) {
        self.check_api_listen(api, dashboard.is_some());
        let Some(d) = dashboard else { return };
        // `[api]` with no tokens is reported by `[api]` itself.
        if api.is_none() {
            self.error(
                d.span.clone(),
                "the dashboard has no tokens to sign in with",
                "add a [[api.tokens]] table with `name`, `role` and `token_sha256` (or `token_file`); \
                 the dashboard signs in with the same tokens as the remote API",
            );
        }
        if d.listen_span.is_none() && api.is_none_or(|a| !a.has_listen()) {
            self.error(
                d.span.clone(),
                "the dashboard has nowhere to listen",
                "add `listen = \"127.0.0.1:8080\"` to [dashboard], or set [api] listen to serve it under /ui/",
            );
        }
    }
}

impl DashboardDraft {
    /// Only called once the whole document checked out.
    pub(super) fn into_settings(self) -> DashboardSettings {
        DashboardSettings {
            listen: self.listen,
            session_timeout: self.session_timeout.unwrap_or(defaults::SESSION_TIMEOUT),
        }
    }
}
