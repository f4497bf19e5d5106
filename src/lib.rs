//! sigshim as a library: the modules behind the `sigshim` binary, public so that property tests
//! and fuzz targets reach the pure parsers and encoders. The binary (`main.rs`) is the only
//! intended user; nothing here is a stable API.
//!
//! In the order things happen: `cli` (command line, plain validated data) → `supervise`
//! (set-up: the environment's say, the signal plan from `signals` and `schedule`; then the
//! executor loop) → `child` (prepare, fork/exec) → `machine` (the pure state machine the loop
//! drives) → `output` (logs), `notify` (readiness) → `exit`. `sys` is the leaf every other
//! module may use (descriptors, sockets, errno, the signal mask, the console); `diag` is
//! sigshim's own messages; `inherit` is what the init hands the main process (LISTEN_PID,
//! WATCHDOG_PID, the socket-activation descriptors, what stdout and stderr are).

pub mod child;
pub mod cli;
pub mod diag;
pub mod exit;
pub mod inherit;
pub mod init;
pub mod listen;
pub mod machine;
pub mod notify;
pub mod output;
pub mod schedule;
pub mod signals;
pub mod supervise;
pub mod sys;
