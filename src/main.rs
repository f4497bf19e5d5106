//! sigshim: an exec wrapper between an init system and a service. See README.md.

use sigshim::{cli, diag, exit, supervise};
use std::io::Write;
use std::process;

fn main() {
    let cfg = match cli::parse(std::env::args_os()) {
        cli::Parsed::Run(cfg) => cfg,
        cli::Parsed::Print { text, code: 0 } => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            process::exit(0);
        }
        cli::Parsed::Print { text, code } => {
            let _ = std::io::stderr().write_all(text.as_bytes());
            process::exit(code);
        }
    };
    diag::init(cfg.verbosity);
    match supervise::run(&cfg) {
        Ok(exit::Exit::Code(code)) => process::exit(code),
        Ok(exit::Exit::Signal(sig)) => {
            exit::raise(sig);
            process::exit(128 + sig.0);
        }
        Err(fatal) => {
            eprintln!("sigshim: fatal: {}", diag::one_line(&fatal.message));
            process::exit(fatal.code);
        }
    }
}
