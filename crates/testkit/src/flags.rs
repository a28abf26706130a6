//! The command lines of testkit's binaries: flags with their value as the next argument or
//! after `=` (`--delay 300ms`, `--delay=300ms`), all UTF-8.

use std::ffi::OsString;

/// One argument, split at the `=` of `--flag=value`.
pub struct Arg {
    /// The flag (`--delay`), or a bare argument.
    pub flag: String,
    inline: Option<String>,
}

/// The next argument of `args`, if any.
pub fn next_arg(args: &mut impl Iterator<Item = OsString>) -> Option<Result<Arg, String>> {
    let arg = args.next()?;
    Some(arg.into_string().map_err(|a| format!("argument {a:?} is not UTF-8")).map(|arg| {
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                Arg { flag: flag.to_owned(), inline: Some(value.to_owned()) }
            }
            _ => Arg { flag: arg, inline: None },
        }
    }))
}

impl Arg {
    /// The flag's value: after its `=`, else the next argument of `args`.
    pub fn value(&mut self, args: &mut impl Iterator<Item = OsString>) -> Result<String, String> {
        match self.inline.take() {
            Some(v) => Ok(v),
            None => args
                .next()
                .ok_or_else(|| format!("{} needs a value", self.flag))?
                .into_string()
                .map_err(|v| format!("{}: {v:?} is not UTF-8", self.flag)),
        }
    }

    /// Fails for a flag given a value (`--help=x`) that it did not take.
    pub fn finish(self) -> Result<(), String> {
        match self.inline {
            Some(_) => Err(format!("{} takes no value", self.flag)),
            None => Ok(()),
        }
    }
}
