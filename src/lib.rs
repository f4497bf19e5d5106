//! sigshim as a library: the modules behind the `sigshim` binary, public so that property tests
//! and fuzz targets reach the pure parsers and encoders. The binary (`main.rs`) is the only
//! intended user; nothing here is a stable API.
//!
//! In the order things happen: `cli` (command line) → `supervise` (set-up, the loop) → `child`
//! (fork/exec) → `signals`, `schedule` (what to deliver, when) → `output` (logs) → `exit`.

pub mod child;
pub mod cli;
pub mod diag;
pub mod exit;
pub mod init;
pub mod notify;
pub mod output;
pub mod schedule;
pub mod signals;
pub mod supervise;
