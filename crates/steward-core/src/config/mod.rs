//! The declarative TOML config: the resolved model ([`model`]), the parser that reports
//! every mistake at once with file:line:col ([`parse`]), `${VAR:-default}` interpolation
//! ([`interp`]) and the diagnostics type ([`diag`]).

pub mod diag;
pub mod instance;
pub mod interp;
pub mod model;
pub mod parse;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use model::*;
pub use parse::schema::json_schema;
pub use parse::{load, load_with, parse_str, scaled, Env, OnPlatform, Platform};
