//! How sigshim ends: the child's wait status turned into sigshim's own exit, and the exit codes
//! sigshim uses for itself.
//!
//! The init above must see what it would have seen from the app: exit N stays N, and death by
//! signal S is reproduced by dying of S (systemd counts "killed by SIGTERM" as a clean stop but
//! exit 143 as a failure; Upstart's `normal exit TERM` matches only a signal). Decoding is pure;
//! only [`raise`] touches the process, and `main` is the one caller of `process::exit`.

use crate::signals::Signal;

/// Command not found (POSIX shells use the same code).
pub const NOT_FOUND: i32 = 127;
/// Found but could not be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// sigshim itself failed (not the child).
pub const INTERNAL: i32 = 125;
/// The command line was wrong.
pub const USAGE: i32 = 2;

/// How the child ended, decoded strictly with WIFEXITED/WIFSIGNALED (catatonit#5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Killed(Signal),
}

impl ChildEnd {
    /// Decodes a raw waitpid(2) status; `None` for stop/continue reports.
    pub fn from_wait_status(status: i32) -> Option<ChildEnd> {
        if libc::WIFEXITED(status) {
            Some(ChildEnd::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ChildEnd::Killed(Signal(libc::WTERMSIG(status))))
        } else {
            None
        }
    }
}

/// What sigshim's own process does at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// Die of this signal (falls back to 128+n where the kernel will not let us, e.g. as PID 1).
    Signal(Signal),
}

/// The policy from the command line.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `--exit-code-on-signal`: report death by signal n as the shell does, 128+n.
    pub code_on_signal: bool,
    /// `--success-exit N`: these codes become 0 (tini's `-e`).
    pub success: Vec<i32>,
}

impl Policy {
    pub fn exit_for(&self, end: ChildEnd) -> Exit {
        let code = match end {
            ChildEnd::Exited(c) => c,
            ChildEnd::Killed(s) if self.code_on_signal => 128 + s.0,
            ChildEnd::Killed(s) => return Exit::Signal(s),
        };
        if self.success.contains(&code) {
            Exit::Code(0)
        } else {
            Exit::Code(code)
        }
    }
}

/// Dies of `sig` the way the child did: default disposition, unblocked, sent to ourselves.
/// Returns only if the kernel refused to kill us (PID 1 of a namespace ignores its own
/// default-action signals, pid_namespaces(7)); the caller then exits 128+n.
pub fn raise(sig: Signal) {
    if sig.dumps_core() {
        // The child already left its core (or chose not to); a second one from sigshim would
        // only bury it. A core limit of 0 is not enough: where core_pattern is a pipe
        // (systemd-coredump, apport) the kernel ignores RLIMIT_CORE and dumps anyway. A
        // process that is not dumpable is never dumped, pipe or file (fs/coredump.c,
        // do_coredump: `if (!__get_dumpable(cprm.mm_flags)) goto fail`).
        // SAFETY: prctl and setrlimit with integer arguments and a valid pointer.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
        }
    }
    // The raw calls: the C library refuses its own real-time signals (glibc 32 and 33), and an
    // app may die of one. A signal sigshim set to SIG_DFL at set-up (every one it forwards but
    // SIGPIPE) is still there: no rt_sigaction on the way out of a stop. The faults Rust's
    // runtime handles (SEGV, BUS) are not, and get it.
    // SAFETY: SIG_DFL is a valid disposition; the process is single-threaded and about to
    // die, so changing its signal state has no other observer.
    unsafe {
        if !crate::sys::at_default(sig.0) {
            crate::sys::set_disposition(sig.0, libc::SIG_DFL);
        }
        libc::kill(crate::sys::pid(), sig.0);
    }
    crate::sys::sigmask(libc::SIG_UNBLOCK, crate::sys::SigSet::default().with(sig.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let p = Policy::default();
        assert_eq!(p.exit_for(ChildEnd::Exited(3)), Exit::Code(3));
        assert_eq!(
            p.exit_for(ChildEnd::Killed(Signal::TERM)),
            Exit::Signal(Signal::TERM)
        );
        let p = Policy {
            code_on_signal: true,
            success: vec![143],
        };
        assert_eq!(p.exit_for(ChildEnd::Killed(Signal::TERM)), Exit::Code(0));
        assert_eq!(p.exit_for(ChildEnd::Killed(Signal::INT)), Exit::Code(130));
        assert_eq!(p.exit_for(ChildEnd::Exited(143)), Exit::Code(0));
    }

    #[test]
    fn decodes_wait_status() {
        assert_eq!(
            ChildEnd::from_wait_status(7 << 8),
            Some(ChildEnd::Exited(7))
        );
        assert_eq!(
            ChildEnd::from_wait_status(15),
            Some(ChildEnd::Killed(Signal::TERM))
        );
        assert_eq!(ChildEnd::from_wait_status(0x7f | (19 << 8)), None);
    }
}
