//! Output forwarding: pure line splitting and record encoders (lines, journald, syslog).
pub mod journald;
pub mod lines;
pub mod syslog;
