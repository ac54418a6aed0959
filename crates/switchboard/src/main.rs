//! The `switchboard` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    switchboard::cli::Cli::parse().run()
}
