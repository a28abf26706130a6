//! `webhook = URL`: POST the [`Payload`] as JSON, retried with exponential backoff.
//!
//! A delivery is tried up to [`ATTEMPTS`] times, [`FIRST_RETRY`] after the first failure and
//! twice as long after each next one (0.5 s, 1 s, 2 s, 4 s), each try bounded by
//! [`TRY_TIMEOUT`]. A connection error, a timeout, a 5xx or a 429 is retried; another status
//! outside 2xx is a rejection, logged and not retried (sending the same body again would get
//! the same answer).

use std::time::Duration;

use steward_core::config::HttpUrl;

use super::Payload;
use crate::health::http;

const ATTEMPTS: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const TRY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn deliver(url: &HttpUrl, payload: &Payload) {
    let body = serde_json::to_vec(payload).expect("payloads serialize");
    let mut wait = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        let outcome = match tokio::time::timeout(TRY_TIMEOUT, http::post_json(url, body.clone())).await {
            Ok(Ok(status)) if status.is_success() => return,
            Ok(Ok(status)) if status.is_server_error() || status.as_u16() == 429 => {
                format!("HTTP {}", status.as_u16())
            }
            Ok(Ok(status)) => {
                tracing::warn!(alert = %payload.alert, event = "webhook-rejected",
                    "webhook {url} rejected alert {} ({}) with HTTP {}; not retrying",
                    payload.alert, payload.status, status.as_u16());
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {TRY_TIMEOUT:?}"),
        };
        if attempt == ATTEMPTS {
            tracing::warn!(alert = %payload.alert, event = "webhook-failed",
                "webhook {url} for alert {} ({}) failed {ATTEMPTS} times, giving up; last: {outcome}",
                payload.alert, payload.status);
            return;
        }
        tracing::debug!(alert = %payload.alert, event = "webhook-retry",
            "webhook {url} failed ({outcome}); retrying in {wait:?}");
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}
