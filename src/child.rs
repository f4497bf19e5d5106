//! Starting the child: fork, the async-signal-safe set-up in the child, and execve.
//!
//! Everything the child needs (argv, envp, the PATH candidates, the dispositions to set) is
//! built *before* fork, because between fork and exec only async-signal-safe calls are allowed
//! (signal-safety(7)): no allocation, no locks, no logging. If anything fails in the child, it
//! writes which step failed and errno into a close-on-exec pipe and exits; the parent reads
//! that pipe, which reaches EOF the moment execve succeeds. This is how sigshim tells "not
//! found" (127) from "not executable" (126) from its own failure (125) without guessing.
//!
//! Killing and reaping are `supervise`'s job; this module only creates the process.

use crate::exit;
#[cfg(debug_assertions)]
use crate::signals::RTMAX;
use crate::signals::Signal;
use crate::sys::set_disposition;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

/// What the child is set up with.
pub struct Spec<'a> {
    pub command: &'a [OsString],
    /// Dispositions set to SIG_IGN in the child (the direct-delivery guard).
    pub ignore: &'a [Signal],
    /// Sent to the child by the kernel when sigshim dies (prctl PR_SET_PDEATHSIG).
    pub pdeathsig: Signal,
    /// Descriptors to install as the child's stdout and stderr; `None` keeps sigshim's own.
    pub stdout: Option<RawFd>,
    pub stderr: Option<RawFd>,
    /// Environment changes for the child (everything else is inherited).
    pub env_set: &'a [(OsString, OsString)],
    pub env_remove: &'a [OsString],
    /// Descriptors to hand over: (ours, the number it gets in the child).
    pub extra_fds: &'a [(RawFd, i32)],
    /// Drop to these credentials before exec.
    pub user: Option<&'a Credentials>,
    /// prctl(PR_SET_NO_NEW_PRIVS): setuid binaries and file capabilities stop working.
    pub no_new_privs: bool,
    /// The controlling terminal, whose foreground the app's group gets before exec.
    pub terminal: Option<RawFd>,
    /// The app leads a session of its own (setsid) instead of a process group in sigshim's:
    /// where sigshim has no controlling terminal, as every init starts a service.
    pub new_session: bool,
}

/// The identity `--user USER[:GROUP]` resolves to, looked up before fork (NSS lookups allocate
/// and may open files: never between fork and exec).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// Exactly the supplementary groups the app gets: the user's (initgroups) or just GROUP.
    pub groups: Vec<libc::gid_t>,
    pub name: String,
    pub home: Option<OsString>,
}

impl Credentials {
    /// Resolves `USER[:GROUP]`, names or numeric IDs.
    pub fn resolve(spec: &str) -> Result<Credentials, String> {
        use nix::unistd::{Gid, Group, Uid, User};
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user.is_empty() || group.is_some_and(str::is_empty) {
            return Err(format!("--user '{spec}': expected USER or USER:GROUP"));
        }
        let lookup_err = |what: &str, e: nix::Error| format!("cannot look up {what}: {e}");
        let entry = match user.parse::<u32>() {
            Ok(n) => User::from_uid(Uid::from_raw(n)).map_err(|e| lookup_err(user, e))?,
            Err(_) => User::from_name(user).map_err(|e| lookup_err(user, e))?,
        };
        let (uid, name, primary, home) = match (&entry, user.parse::<u32>()) {
            (Some(u), _) => (
                u.uid.as_raw(),
                u.name.clone(),
                Some(u.gid.as_raw()),
                Some(u.dir.clone().into_os_string()),
            ),
            (None, Ok(n)) => (n, n.to_string(), None, None),
            (None, Err(_)) => return Err(format!("unknown user '{user}'")),
        };
        let group_gid = match group {
            None => None,
            Some(g) => Some(match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => Group::from_name(g)
                    .map_err(|e| lookup_err(g, e))?
                    .ok_or_else(|| format!("unknown group '{g}'"))?
                    .gid
                    .as_raw(),
            }),
        };
        let gid = group_gid.or(primary).ok_or_else(|| {
            format!("user {uid} has no passwd entry: give a group, e.g. --user {uid}:{uid}")
        })?;
        let groups = match (group_gid, &entry) {
            (Some(g), _) => vec![g],
            (None, Some(u)) => {
                let cname = CString::new(u.name.as_bytes())
                    .map_err(|_| format!("user name {:?} contains a NUL byte", u.name))?;
                nix::unistd::getgrouplist(&cname, Gid::from_raw(gid))
                    .map_err(|e| lookup_err(&format!("the groups of {}", u.name), e))?
                    .into_iter()
                    .map(Gid::as_raw)
                    .collect()
            }
            (None, None) => vec![gid],
        };
        Ok(Credentials {
            uid,
            gid,
            groups,
            name,
            home,
        })
    }
}

/// A spawn that did not produce a running program.
#[derive(Debug)]
pub struct SpawnError {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// Steps reported through the error pipe.
const STEP_SETPGID: i32 = 1;
const STEP_PDEATHSIG: i32 = 2;
const STEP_DUP: i32 = 3;
const STEP_EXEC: i32 = 4;
const STEP_PRIVS: i32 = 5;

/// Everything the child needs, built before fork: between fork and exec nothing may allocate.
pub struct Prepared {
    program: OsString,
    _argv: Vec<CString>,
    /// `NAME=value\0` entries; written to only in the child, through `pid_slots`.
    _envp: Vec<Vec<u8>>,
    /// Where the child writes its own PID (inherit::PID_SLOT bytes each).
    pid_slots: Vec<*mut u8>,
    candidates: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    ignore: Vec<i32>,
    pdeathsig: i32,
    /// (our descriptor, the number it gets in the child).
    fds: Vec<(RawFd, i32)>,
    user: Option<Credentials>,
    /// Where the child reads back its groups to verify the drop: one more slot than it should
    /// have, so that one group too many is seen rather than an EINVAL.
    groups_buf: Vec<libc::gid_t>,
    no_new_privs: bool,
    terminal: Option<RawFd>,
    new_session: bool,
}

/// The signals that can be ignored in sigshim when it forks, so the only ones the child resets
/// (one `rt_sigaction` each, instead of one for each of the 62 signals that can be set).
///
/// `supervise` sets every signal sigshim catches (`Signal::caught`) to SIG_DFL before anything
/// is spawned, SIGPIPE alone to SIG_IGN, and nothing sets SIG_IGN later; what it does not
/// touch are the synchronous faults, which keep what the parent gave sigshim (std installs its
/// stack-overflow handler on SEGV and BUS only where they were SIG_DFL). Debug builds, and so
/// the whole test suite, check this at every spawn ([`check_dispositions`]).
const MAY_BE_IGNORED: [i32; 7] = [
    libc::SIGPIPE,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Panics if a signal outside [`MAY_BE_IGNORED`] is ignored in sigshim: the child would keep
/// that ignore through exec.
#[cfg(debug_assertions)]
fn check_dispositions() {
    for sig in (1..=RTMAX).filter(|s| !MAY_BE_IGNORED.contains(s)) {
        // The kernel's struct sigaction: handler, flags, restorer, mask.
        let mut old = [0u64; 4];
        // SAFETY: rt_sigaction only reads the disposition into a buffer of the kernel's size.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<u64>(),
                old.as_mut_ptr(),
                8usize,
            )
        };
        assert!(
            r != 0 || old[0] != libc::SIG_IGN as u64,
            "signal {sig} is ignored in sigshim at spawn and would stay ignored in the child"
        );
    }
}

/// Builds argv, envp, the PATH candidates and the descriptor plan (all the allocation), and
/// checks what can be checked before fork.
pub fn prepare(spec: &Spec) -> Result<Prepared, SpawnError> {
    #[cfg(debug_assertions)]
    check_dispositions();
    let program = &spec.command[0];
    let cstr = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| SpawnError {
            code: exit::USAGE,
            message: format!("argument {s:?} contains a NUL byte"),
        })
    };
    let argv: Vec<CString> = spec
        .command
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<_, _>>()?;
    // LISTEN_PID and WATCHDOG_PID naming sigshim get a slot the child fills with its own PID
    // (inherit.rs).
    let env = crate::inherit::child_env(
        std::env::vars_os(),
        crate::inherit::me(),
        spec.env_remove,
        spec.env_set,
    );
    let mut envp = env.entries;
    let candidates: Vec<CString> = candidates(program)
        .iter()
        .map(|c| cstr(c))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr().cast()).collect();
    envp_ptrs.push(std::ptr::null());
    // Heap buffers do not move when `Prepared` does: the pointers stay valid.
    let pid_slots: Vec<*mut u8> = env
        .pid_slots
        .iter()
        .map(|&i| {
            let e = &mut envp[i];
            // SAFETY: every slot entry ends with PID_SLOT bytes (inherit::child_env).
            unsafe { e.as_mut_ptr().add(e.len() - crate::inherit::PID_SLOT) }
        })
        .collect();
    let mut fds: Vec<(RawFd, i32)> = Vec::new();
    fds.extend(spec.stdout.map(|fd| (fd, 1)));
    fds.extend(spec.stderr.map(|fd| (fd, 2)));
    fds.extend_from_slice(spec.extra_fds);
    let groups_buf = match spec.user {
        Some(c) => {
            // SAFETY: sysconf has no preconditions.
            let max = unsafe { libc::sysconf(libc::_SC_NGROUPS_MAX) };
            if max > 0 && c.groups.len() as i64 > max {
                return Err(SpawnError {
                    code: exit::INTERNAL,
                    message: format!(
                        "cannot drop privileges to {}: the user is in {} groups, more than this kernel allows (NGROUPS_MAX {max}); name one group with --user {}:GROUP",
                        c.name,
                        c.groups.len(),
                        c.name
                    ),
                });
            }
            vec![0; c.groups.len() + 1]
        }
        None => Vec::new(),
    };
    Ok(Prepared {
        program: program.clone(),
        _argv: argv,
        _envp: envp,
        candidates,
        argv_ptrs,
        envp_ptrs,
        pid_slots,
        ignore: spec.ignore.iter().map(|s| s.0).collect(),
        pdeathsig: spec.pdeathsig.0,
        fds,
        user: spec.user.cloned(),
        groups_buf,
        no_new_privs: spec.no_new_privs,
        terminal: spec.terminal,
        new_session: spec.new_session,
    })
}

/// A descriptor of ours at `min` or above, close-on-exec (closed when dropped).
fn above(fd: RawFd, min: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: fcntl F_DUPFD_CLOEXEC on a descriptor of ours.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just created.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(n) })
}

impl Prepared {
    /// Forks and execs the child in its own process group. Returns its PID, which is also its
    /// process group ID.
    pub fn spawn(&mut self) -> Result<i32, SpawnError> {
        use std::os::fd::AsRawFd;
        let internal = |what: &str| SpawnError {
            code: exit::INTERNAL,
            message: format!(
                "{what}: {}",
                crate::sys::os_error(&std::io::Error::last_os_error())
            ),
        };
        // Every descriptor the child copies from sits above every number it copies to, and so
        // does the exec-status pipe: the child's dup2 calls can then run in any order without
        // one overwriting another's source (`--ready fd:5` used to land on the status pipe and
        // turn an exec failure into "closed its readiness descriptor").
        let min = self
            .fds
            .iter()
            .map(|&(_, t)| t + 1)
            .max()
            .unwrap_or(3)
            .max(3);
        // (A copy is made only for a source below `min`: descriptors are scarce for some.)
        let mut moved: Vec<std::os::fd::OwnedFd> = Vec::new();
        let mut fds: Vec<(RawFd, i32)> = Vec::with_capacity(self.fds.len());
        for &(fd, target) in &self.fds {
            if fd >= min {
                fds.push((fd, target));
                continue;
            }
            let copy =
                above(fd, min).map_err(|_| internal("cannot set up the child's descriptors"))?;
            fds.push((copy.as_raw_fd(), target));
            moved.push(copy);
        }
        let (rd, wr) = crate::sys::pipe()
            .and_then(|(r, w)| {
                let w = if w.as_raw_fd() < min {
                    above(w.as_raw_fd(), min)?
                } else {
                    w
                };
                Ok((r, w))
            })
            .map_err(|_| internal("cannot create the exec status pipe"))?;
        // The read end is read with a blocking read below.
        // SAFETY: fcntl on our own descriptor.
        unsafe { libc::fcntl(rd.as_raw_fd(), libc::F_SETFL, 0) };
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };

        // SAFETY: sigshim is single-threaded (no thread is ever started), so the child is a
        // faithful copy; it only makes async-signal-safe calls until execve or _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(internal("cannot fork"));
        }
        if pid == 0 {
            // SAFETY: in the child, all pointers were built before fork and stay valid; every
            // call below is async-signal-safe (signal-safety(7)).
            unsafe {
                child_after_fork(ChildArgs {
                    parent,
                    wr: wr.as_raw_fd(),
                    pdeathsig: self.pdeathsig,
                    ignore: &self.ignore,
                    fds: &fds,
                    user: self.user.as_ref(),
                    groups_buf: &mut self.groups_buf,
                    no_new_privs: self.no_new_privs,
                    terminal: self.terminal,
                    new_session: self.new_session,
                    candidates: &self.candidates,
                    argv: self.argv_ptrs.as_ptr(),
                    envp: self.envp_ptrs.as_ptr(),
                    pid_slots: &self.pid_slots,
                })
            }
        }

        // Parent. setpgid here too, so that no signal sent to the group before the child got
        // to its own setpgid can miss it (the classic job-control race; EACCES once it has
        // exec'd).
        // (Not for a child that makes a session of its own: setsid(2) refuses a group leader.
        // Nothing signals the child's group before it has exec'd: its report is read first.)
        // SAFETY: plain syscalls on our own child and the terminal we were handed.
        unsafe {
            if !self.new_session {
                libc::setpgid(pid, pid);
            }
            // The same for the terminal (the child does it too, before exec): whichever runs
            // first, the app reads the terminal as its foreground.
            if let Some(tty) = self.terminal {
                libc::tcsetpgrp(tty, pid);
            }
        }
        drop(wr);
        drop(moved);
        let mut report = [0u8; 8];
        let mut got = 0;
        while got < report.len() {
            // SAFETY: reading into the unfilled tail of a local buffer.
            let n = unsafe {
                libc::read(
                    rd.as_raw_fd(),
                    report[got..].as_mut_ptr().cast(),
                    report.len() - got,
                )
            };
            if n < 0 && crate::sys::errno() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            got += n as usize;
        }
        drop(rd);
        if got == 0 {
            return Ok(pid);
        }
        // The child failed before exec and has exited: reap it so nothing is left behind.
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let step = i32::from_ne_bytes(report[..4].try_into().unwrap_or_default());
        let errno = i32::from_ne_bytes(report[4..].try_into().unwrap_or_default());
        Err(self.failure(step, errno))
    }

    fn failure(&self, step: i32, errno: i32) -> SpawnError {
        let err = std::io::Error::from_raw_os_error(errno);
        let why = crate::sys::os_error(&err);
        let name = self.program.to_string_lossy();
        let internal = |message: String| SpawnError {
            code: exit::INTERNAL,
            message,
        };
        match step {
            STEP_EXEC => SpawnError {
                code: if errno == libc::ENOENT || errno == libc::ENOTDIR {
                    exit::NOT_FOUND
                } else {
                    exit::NOT_EXECUTABLE
                },
                message: if errno == libc::ENOENT && !self.program.as_bytes().contains(&b'/') {
                    format!("cannot exec {name}: not found in PATH")
                } else {
                    format!("cannot exec {name}: {why}")
                },
            },
            STEP_SETPGID => internal(format!(
                "cannot put the child in its own process group: {why}"
            )),
            STEP_PRIVS => internal(format!(
                "cannot drop privileges{}: {why}",
                self.user
                    .as_ref()
                    .map(|c| format!(" to {}", c.name))
                    .unwrap_or_default()
            )),
            STEP_PDEATHSIG => {
                internal(format!("cannot set the child's parent-death signal: {why}"))
            }
            _ => internal(format!("cannot set up the child's descriptors: {why}")),
        }
    }
}

/// Where execvp(3) would look: the name itself if it has a slash, else each PATH entry
/// (an empty entry means the current directory; glibc's default PATH when unset).
fn candidates(program: &OsStr) -> Vec<OsString> {
    let bytes = program.as_bytes();
    if bytes.contains(&b'/') {
        return vec![program.to_owned()];
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            let mut p = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            p.push(b'/');
            p.extend_from_slice(bytes);
            OsString::from_vec_bytes(p)
        })
        .collect()
}

trait VecBytes {
    fn from_vec_bytes(v: Vec<u8>) -> Self;
}

impl VecBytes for OsString {
    fn from_vec_bytes(v: Vec<u8>) -> Self {
        std::os::unix::ffi::OsStringExt::from_vec(v)
    }
}

struct ChildArgs<'a> {
    parent: libc::pid_t,
    wr: RawFd,
    pdeathsig: i32,
    ignore: &'a [i32],
    fds: &'a [(RawFd, i32)],
    user: Option<&'a Credentials>,
    groups_buf: &'a mut [libc::gid_t],
    no_new_privs: bool,
    terminal: Option<RawFd>,
    new_session: bool,
    candidates: &'a [CString],
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    pid_slots: &'a [*mut u8],
}

/// Runs in the forked child. Never returns.
///
/// # Safety
/// Must be called only in a freshly forked child of a single-threaded parent, with pointers
/// that were valid in the parent at fork time.
unsafe fn child_after_fork(a: ChildArgs) -> ! {
    // SAFETY (whole body): only async-signal-safe syscalls on values prepared before fork.
    unsafe {
        let fail = |step: i32| -> ! {
            let errno = *libc::__errno_location();
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&step.to_ne_bytes());
            msg[4..].copy_from_slice(&errno.to_ne_bytes());
            libc::write(a.wr, msg.as_ptr().cast(), msg.len());
            libc::_exit(exit::INTERNAL)
        };

        // Own process group: the init's group-wide signal (Upstart, a terminal's Ctrl-C) must
        // reach sigshim only, so that it arrives at the app translated.
        // Without a terminal, a session of its own (which is also its own group), as an init
        // starts a service and as the app would be without sigshim in front of it.
        if a.new_session {
            if libc::setsid() < 0 {
                fail(STEP_SETPGID);
            }
        } else if libc::setpgid(0, 0) != 0 {
            fail(STEP_SETPGID);
        }
        // On a terminal whose foreground sigshim held, the app's group takes it before exec,
        // or the app is stopped by SIGTTIN the moment it reads (tini does the same). The
        // child is in the background here, which tcsetpgrp(3) answers with SIGTTOU unless it
        // is blocked: it still is (sigshim's mask, reset below). A failure is not fatal.
        if let Some(tty) = a.terminal {
            libc::tcsetpgrp(tty, libc::getpid());
        }

        // LISTEN_PID/WATCHDOG_PID named sigshim: now they name the app (inherit.rs). The
        // slots are this process's copy of the parent's heap.
        let me = libc::getpid();
        for &slot in a.pid_slots {
            crate::inherit::write_pid(
                std::slice::from_raw_parts_mut(slot, crate::inherit::PID_SLOT),
                me,
            );
        }

        // Default dispositions (handlers are reset by execve; only a SIG_IGN survives it: a
        // shell's `cmd &` ignores INT and QUIT, Rust ignores PIPE), then the guard's deliberate
        // ignores, then an empty mask (sigshim blocks the signals it reads through signalfd,
        // and the mask survives execve too). Only the signals that can still be ignored here
        // are reset, see MAY_BE_IGNORED. Raw system calls: the C library refuses its own
        // real-time signals.
        for &sig in &MAY_BE_IGNORED {
            set_disposition(sig, libc::SIG_DFL);
        }
        for &sig in a.ignore {
            set_disposition(sig, libc::SIG_IGN);
        }
        crate::sys::sigmask(libc::SIG_SETMASK, crate::sys::SigSet::default());

        // Every source sits above every target (see `spawn`), so the order does not matter;
        // dup2 clears close-on-exec on the copy.
        for &(fd, target) in a.fds {
            if libc::dup2(fd, target) < 0 {
                fail(STEP_DUP);
            }
        }

        // Privileges last before exec, so everything above still ran as the caller. The order
        // is the only safe one: supplementary groups and the gid need privilege that setuid
        // gives up. Each step is checked, then the result is verified as a whole: a partial
        // drop must never let the app run as root (CVE-class bugs in wrappers that ignored a
        // failed setgid).
        if let Some(c) = a.user {
            if libc::setgroups(c.groups.len(), c.groups.as_ptr()) != 0
                || libc::setgid(c.gid) != 0
                || libc::setuid(c.uid) != 0
            {
                fail(STEP_PRIVS);
            }
            let now = a.groups_buf;
            let n = libc::getgroups(now.len() as libc::c_int, now.as_mut_ptr());
            let groups_ok = n >= 0
                && n as usize == c.groups.len()
                && c.groups.iter().all(|g| now[..n as usize].contains(g));
            if libc::getuid() != c.uid
                || libc::geteuid() != c.uid
                || libc::getgid() != c.gid
                || libc::getegid() != c.gid
                || !groups_ok
            {
                *libc::__errno_location() = libc::EPERM;
                fail(STEP_PRIVS);
            }
        }
        // If sigshim is SIGKILLed, the app must not run on unsupervised. Set after the
        // privilege drop, because any change of the effective uid or gid clears the
        // parent-death signal (prctl(2)). The parent may already have died before this point;
        // then the kernel will never send it, so check getppid() and deliver it ourselves.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            a.pdeathsig as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(STEP_PDEATHSIG);
        }
        if libc::getppid() != a.parent {
            libc::kill(libc::getpid(), a.pdeathsig);
            libc::_exit(exit::INTERNAL);
        }

        if a.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail(STEP_PRIVS);
        }

        // execvp(3)'s search: ENOENT/ENOTDIR mean "try the next directory"; EACCES is
        // remembered (a later entry may still work) and reported if nothing does.
        let mut saw_eacces = false;
        for cand in a.candidates {
            libc::execve(cand.as_ptr(), a.argv, a.envp);
            match *libc::__errno_location() {
                libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP => {}
                libc::EACCES => saw_eacces = true,
                _ => fail(STEP_EXEC),
            }
        }
        if saw_eacces {
            *libc::__errno_location() = libc::EACCES;
        }
        fail(STEP_EXEC)
    }
}
