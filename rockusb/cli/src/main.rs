//! The `rockusb` command line: argument parsing, board selection and output. It knows
//! nothing of bytes on the wire; every command is a call into the `rockusb` library's
//! operations and client.

#![forbid(unsafe_code)]

mod adapt;
mod args;
mod commands;
mod console;
mod disks;
mod flash;
mod fleet;
mod journal;
mod loader_cmd;
mod man_completions;
mod output;
mod platform;
mod select;
mod values;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    if let Err(error) = commands::run(cli) {
        eprintln!("error: {error}");
        for cause in error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
