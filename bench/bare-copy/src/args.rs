//! `--name value` flags, nothing more.

use std::collections::HashMap;
use std::str::FromStr;

/// The flags of one invocation.
pub struct Flags(HashMap<String, String>);

impl Flags {
    /// Reads `--name value` pairs.
    pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut flags = HashMap::new();
        while let Some(name) = argv.next() {
            let Some(name) = name.strip_prefix("--") else {
                return Err(format!("expected --flag, got '{name}'"));
            };
            let value = argv
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            flags.insert(name.to_owned(), value);
        }
        Ok(Flags(flags))
    }

    /// A required string flag.
    pub fn text(&self, name: &str) -> Result<&str, String> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("missing --{name}"))
    }

    /// A required flag parsed as `T`.
    pub fn value<T: FromStr>(&self, name: &str) -> Result<T, String> {
        let text = self.text(name)?;
        text.parse()
            .map_err(|_| format!("--{name}: cannot parse '{text}'"))
    }

    /// An optional flag parsed as `T`, or `default`.
    pub fn value_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.0.contains_key(name) {
            true => self.value(name),
            false => Ok(default),
        }
    }
}
