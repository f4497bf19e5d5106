//! Which init is above sigshim, and what that means for the kill deadline.
//!
//! Upstart sends its stop signal to the job's process group, waits `kill timeout` (5 s by
//! default, init(5)) and then SIGKILLs the group. sigshim's child is in a group of its own, so
//! that SIGKILL reaches only sigshim; the app then dies by the parent-death signal, without a
//! clean stop and with its last lines unread. sigshim must therefore finish its own stop
//! inside Upstart's timeout: it defaults to a 4 s deadline under Upstart and warns when the
//! configured one does not fit. systemd (INVOCATION_ID, NOTIFY_SOCKET) is told through
//! EXTEND_TIMEOUT_USEC instead (see `notify`); as PID 1 of a container nothing above waits.

use crate::schedule::Schedule;
use std::time::Duration;

/// Upstart's default `kill timeout`.
pub const UPSTART_KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// The deadline sigshim uses under Upstart when none is given: a second below the timeout
/// leaves time to drain the app's output and exit.
pub const UPSTART_DEFAULT_DEADLINE: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    Upstart,
    Systemd,
    /// sigshim is PID 1 (a container's init).
    Pid1,
    Other,
}

/// Reads the environment variables each init sets for its jobs.
pub fn detect() -> Init {
    if std::env::var_os("UPSTART_JOB").is_some() || std::env::var_os("UPSTART_INSTANCE").is_some() {
        Init::Upstart
    } else if std::env::var_os("INVOCATION_ID").is_some()
        || std::env::var_os("NOTIFY_SOCKET").is_some()
    {
        Init::Systemd
    } else if std::process::id() == 1 {
        Init::Pid1
    } else {
        Init::Other
    }
}

/// The time from the first stop signal to SIGKILL, if the schedule ends in one.
pub fn deadline(schedule: &Schedule) -> Option<Duration> {
    let last = schedule.steps().last()?;
    (last.signal == crate::signals::Signal::KILL)
        .then(|| schedule.steps().iter().filter_map(|s| s.wait).sum())
}

/// The one-line warning for a deadline that cannot fit the init's own, if any.
pub fn deadline_warning(init: Init, schedule: &Schedule) -> Option<String> {
    if init != Init::Upstart {
        return None;
    }
    match deadline(schedule) {
        Some(d) if d >= UPSTART_KILL_TIMEOUT => Some(format!(
            "kill deadline {d:?} exceeds Upstart's kill timeout ({:?} by default); raise 'kill timeout' in the job above it",
            UPSTART_KILL_TIMEOUT
        )),
        Some(_) => None,
        None => Some(format!(
            "no kill deadline ends in SIGKILL, but Upstart SIGKILLs sigshim after its kill timeout ({:?} by default): the app would then die without a clean stop; set --kill-after below it",
            UPSTART_KILL_TIMEOUT
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::Signal;

    #[test]
    fn warning_only_when_the_deadline_does_not_fit() {
        let fits = Schedule::kill_after(Signal::TERM, Duration::from_secs(3));
        let long = Schedule::kill_after(Signal::TERM, Duration::from_secs(10));
        assert_eq!(deadline_warning(Init::Upstart, &fits), None);
        assert!(
            deadline_warning(Init::Upstart, &long)
                .unwrap()
                .contains("exceeds Upstart's kill timeout")
        );
        assert_eq!(deadline_warning(Init::Systemd, &long), None);
        let staged = Schedule::parse("INT/3s/TERM/3s/KILL").unwrap();
        assert_eq!(deadline(&staged), Some(Duration::from_secs(6)));
        assert!(deadline_warning(Init::Upstart, &staged).is_some());
    }
}
