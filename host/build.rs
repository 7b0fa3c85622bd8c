//! Builds the guest workspace in `plugins/` to WebAssembly components and hands them to the host.
//!
//! - runs `cargo build --manifest-path <repo>/plugins/Cargo.toml --release --target wasm32-wasip2
//!   --target-dir <repo>/target/plugins` with the `cargo` that runs this script, then the same
//!   for the example plugins' workspace, `<repo>/examples/plugins` (so that they keep building
//!   and the integration tests can run them);
//! - copies the builtins (`default_policy.wasm`, `identity_policy.wasm`) into `OUT_DIR`, where
//!   `plugins::builtin` embeds them with `include_bytes!`;
//! - sets `FERRY_PLUGIN_DIR` (at compile time) to the folder holding every built `.wasm`, test
//!   fixtures included, for the unit and integration tests.

#![allow(
    clippy::print_stdout,
    reason = "cargo reads build script directives from stdout"
)]

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The guest target; `rustup target add wasm32-wasip2` installs it.
const GUEST_TARGET: &str = "wasm32-wasip2";

/// The components the host embeds.
const BUILTINS: [&str; 2] = ["default_policy.wasm", "identity_policy.wasm"];

/// Variables that cargo sets for this build script, or that leak from the outer build, and that
/// would change or break the nested build: flags for the host target, the host's target folder,
/// `clippy-driver` as a wrapper under `cargo clippy`.
const LEAKING_VARS: [&str; 10] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MANIFEST_PATH",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            for line in message.lines() {
                println!("cargo::error={line}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
    let repo = manifest_dir
        .parent()
        .ok_or_else(|| format!("{} has no parent folder", manifest_dir.display()))?
        .to_path_buf();
    let plugins = repo.join("plugins");
    let examples = repo.join("examples").join("plugins");
    let wit = repo.join("wit");
    let target_dir = repo.join("target").join("plugins");
    let out_dir = PathBuf::from(var("OUT_DIR")?);

    rerun_if_changed(&plugins, &wit)?;
    rerun_if_changed(&examples, &wit)?;
    check_guest_target()?;

    for workspace in [&plugins, &examples] {
        build_guests(workspace, &target_dir)?;
    }

    let wasm_dir = target_dir.join(GUEST_TARGET).join("release");
    for builtin in BUILTINS {
        let from = wasm_dir.join(builtin);
        fs::copy(&from, out_dir.join(builtin))
            .map_err(|error| format!("cannot copy {} into OUT_DIR: {error}", from.display()))?;
    }
    println!("cargo::rustc-env=FERRY_PLUGIN_DIR={}", wasm_dir.display());
    Ok(())
}

/// Builds the guest workspace in `workspace` into `target_dir`.
fn build_guests(workspace: &Path, target_dir: &Path) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["--release", "--target", GUEST_TARGET])
        .arg("--target-dir")
        .arg(target_dir);
    for name in LEAKING_VARS {
        command.env_remove(name);
    }
    let output = command
        .output()
        .map_err(|error| format!("cannot run cargo to build the guest plugins: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the guest plugins in {} failed ({}):\n{}",
            workspace.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|error| format!("cargo did not set {name}: {error}"))
}

/// Watches `wit/` and everything in `plugins/` except build output (`plugins/target`).
fn rerun_if_changed(plugins: &Path, wit: &Path) -> Result<(), String> {
    println!("cargo::rerun-if-changed={}", wit.display());
    let entries = fs::read_dir(plugins)
        .map_err(|error| format!("cannot list {}: {error}", plugins.display()))?;
    for entry in entries {
        let entry = entry.map_err(|error| format!("cannot list {}: {error}", plugins.display()))?;
        if entry.file_name() != "target" {
            println!("cargo::rerun-if-changed={}", entry.path().display());
        }
    }
    println!("cargo::rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    Ok(())
}

/// Fails with the fix when the toolchain has no standard library for the guest target.
fn check_guest_target() -> Result<(), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|error| format!("cannot run {}: {error}", rustc.to_string_lossy()))?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let target_lib = Path::new(&sysroot)
        .join("lib")
        .join("rustlib")
        .join(GUEST_TARGET);
    if output.status.success() && !target_lib.is_dir() {
        return Err(format!(
            "the Rust target {GUEST_TARGET} is not installed (no {}); the builtin plugins are \
             WebAssembly components built for it. Install it with: rustup target add {GUEST_TARGET}",
            target_lib.display()
        ));
    }
    Ok(())
}
