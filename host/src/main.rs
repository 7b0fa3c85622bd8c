//! The `ferry` binary: parses the command line and hands over to [`ferry::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let arguments = ferry::cli::Arguments::parse();
    ferry::cli::main(arguments)
}
