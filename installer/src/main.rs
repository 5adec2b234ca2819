//! `nanopi-m6`: the Talos overlay installer for the FriendlyElec NanoPi M6.

#![forbid(unsafe_code)]

use std::io::Write;

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let result = nanopi_m6_installer::cli::run(
        &args,
        &mut std::io::stdin().lock(),
        &mut stdout,
        &mut stderr,
    );
    if let Err(err) = result {
        let _ = stdout.flush();
        eprintln!("{}", nanopi_m6_installer::error_chain(&err));
        std::process::exit(1);
    }
}
