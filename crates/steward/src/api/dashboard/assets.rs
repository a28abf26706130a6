//! The page's files, embedded in the binary: no build step, no files to install, nothing
//! fetched from elsewhere (the CSP forbids it). Each is served with an ETag (a hash of its
//! bytes) and `Cache-Control: no-cache`, so a browser asks again each time and gets 304
//! while steward's version is the same.

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/app.css"),
    },
    Asset { name: "icon.svg", content_type: "image/svg+xml", bytes: include_bytes!("assets/icon.svg") },
];

/// The ETag of each asset, in [`ASSETS`] order, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// The asset `name` (or 404), or 304 when the browser's copy is the same.
pub fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return super::error(StatusCode::NOT_FOUND, "no such file of the dashboard");
    };
    let (asset, etag) = (&ASSETS[i], &etags()[i]);
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value = HeaderValue::from_str(etag).expect("a hex ETag is a valid header");
    let cache = HeaderValue::from_static("no-cache");
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(ETAG, etag_value), (CACHE_CONTROL, cache)]).into_response();
    }
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (ETAG, etag_value),
            (CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}

/// All the embedded files' bytes together.
pub fn total_size() -> usize {
    ASSETS.iter().map(|a| a.bytes.len()).sum()
}
