//! The builtin plugins, embedded at compile time: `host/build.rs` builds them from `plugins/`
//! and copies them into `OUT_DIR`. This is the one table of builtins; the `builtin:` prefix and
//! the parsing of `uses` are `source.rs`.

/// `builtin:default-policy`: MirrorMaker 2's `DefaultReplicationPolicy`.
const DEFAULT_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default_policy.wasm"));

/// `builtin:identity-policy`: MirrorMaker 2's `IdentityReplicationPolicy`.
const IDENTITY_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/identity_policy.wasm"));

/// Every builtin, by the name that follows `builtin:`.
const BUILTINS: [(&str, &[u8]); 2] = [
    ("default-policy", DEFAULT_POLICY),
    ("identity-policy", IDENTITY_POLICY),
];

/// The component bytes of builtin `name` (without the `builtin:` prefix).
pub(crate) fn lookup(name: &str) -> Option<&'static [u8]> {
    BUILTINS
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, bytes)| *bytes)
}

/// The builtins' names (without the prefix), in table order.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(name, _)| *name)
}
