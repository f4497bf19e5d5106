//! sigshim: an exec wrapper between an init system and a service. See README.md.

use sigshim::{cli, diag, exit, supervise, sys};
use std::process;
use std::time::{Duration, Instant};

/// Exits after giving sigshim's own stdout/stderr a moment to take what is queued (a stalled
/// reader gets no more than that: the init is waiting for the exit).
fn leave(code: i32) -> ! {
    sys::console_finish(Instant::now() + Duration::from_secs(1));
    process::exit(code)
}

fn main() {
    let cfg = match cli::parse(std::env::args_os()) {
        cli::Parsed::Run(cfg) => cfg,
        cli::Parsed::Print { text, code } => {
            sys::console_write(if code == 0 { 1 } else { 2 }, &[text.as_bytes()]);
            leave(code);
        }
    };
    diag::init(cfg.verbosity);
    match supervise::run(&cfg) {
        Ok(exit::Exit::Code(code)) => leave(code),
        Ok(exit::Exit::Signal(sig)) => {
            sys::console_finish(Instant::now() + Duration::from_secs(1));
            exit::raise(sig);
            process::exit(128 + sig.0);
        }
        Err(fatal) => {
            let line = format!("sigshim: fatal: {}", diag::one_line(&fatal.message));
            sys::console_line(2, line.as_bytes());
            leave(fatal.code);
        }
    }
}
