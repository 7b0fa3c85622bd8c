//! The plugins under test: the real `.wasm` files the build script compiled, and the version
//! name Ferry gives a plugin.

use std::path::{Path, PathBuf};

/// A plugin version as Ferry names it: the first 12 hex digits of the SHA-256.
pub fn short_digest(bytes: &[u8]) -> String {
    ferry::plugins::short_digest(bytes)
}

/// Directory of the plugins the build script compiled (real `.wasm` files).
pub fn plugin(name: &str) -> PathBuf {
    Path::new(env!("FERRY_PLUGIN_DIR")).join(format!("{name}.wasm"))
}
