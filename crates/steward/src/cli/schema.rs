//! `steward schema`: the JSON Schema of the config file, for editors.
//!
//! The schema is rendered from the parser's own key tables
//! ([`steward_core::config::json_schema`]), so it knows every key `steward check` knows and
//! no other. Draft-07, which taplo and the Even Better TOML extension read: a
//! `#:schema ./steward.schema.json` line at the top of steward.toml points them at it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
#[command(after_help = SCHEMA_HELP)]
pub struct SchemaArgs {
    /// Write the schema to this file instead of stdout (replaced whole, in one rename).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

const SCHEMA_HELP: &str = "\
Editors (taplo, VS Code's Even Better TOML) complete and check steward.toml with it:
  steward schema --out steward.schema.json
then put this line at the top of steward.toml:
  #:schema ./steward.schema.json
See docs/config.md, \"Editors\".";

pub fn schema(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    let mut text = serde_json::to_string_pretty(&steward_core::config::json_schema())
        .context("cannot render the schema")?;
    text.push('\n');
    match &args.out {
        None => out!("{text}")?,
        Some(path) => {
            super::init::write_replacing(path, &text)?;
            errln!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
