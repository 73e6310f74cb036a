//! The `updraft` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    updraft::cli::Cli::parse().run()
}
