//! The supervision loop: one thread, one poll(2), a state enum driven by events.
//!
//! sigshim blocks every signal it handles and reads them from a signalfd, so a signal is data
//! like any other and no code runs inside a signal handler. The loop waits on that descriptor
//! (and, with log capture, on the child's pipes) with the earliest pending deadline as its
//! timeout; with nothing pending it sleeps in poll(2) indefinitely, making no system calls while
//! the service is idle (tini's one-second tick is the habit avoided here).
//!
//! The phases follow s6-supervise's table: `Running` until a stop request, `Stopping` through
//! the schedule's steps, `Finishing` once the main child has ended and whatever it left behind
//! is being wound down. What is delivered for which signal is decided in `signals`; what a
//! deadline means in `schedule`; how the end is reported in `exit`.

use crate::child;
use crate::cli::Config;
use crate::exit::{self, ChildEnd, Exit};
use crate::init::{self, Init};
use crate::notify::{self, Check, Readiness};
use crate::output::{Output, Pipes, Token};
use crate::schedule::Schedule;
use crate::signals::{Action, Signal};
use std::os::fd::AsRawFd;
use std::time::Instant;
use tracing::{debug, error, info, warn};

/// A failure of sigshim itself (or of the spawn), with the exit code it maps to.
#[derive(Debug)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn internal(what: &str) -> Fatal {
    Fatal {
        code: exit::INTERNAL,
        message: format!(
            "{what}: {}",
            crate::diag::os_error(&std::io::Error::last_os_error())
        ),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The app runs; nobody asked it to stop.
    Running,
    /// The stop schedule is at `step`; the next step is due at `next` (`None`: wait).
    Stopping { step: usize, next: Option<Instant> },
    /// The main child has ended. Processes it left behind got the stop signal and SIGTERM and
    /// get SIGKILL at `kill_at`; sigshim exits once none remain and the output is drained.
    Finishing {
        end: ChildEnd,
        kill_at: Option<Instant>,
    },
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Signal(Signal),
    ChildEnded(ChildEnd),
    Deadline,
    /// The app became ready (per --ready).
    Ready,
    /// --ready-timeout passed first.
    ReadyTimeout,
}

struct Supervisor<'a> {
    cfg: &'a Config,
    /// The stop schedule in force (the command line's, or the init's default).
    schedule: Schedule,
    /// The main child's PID, which is also its process group ID.
    pid: i32,
    phase: Phase,
    /// Whether sigshim still has children (the main one, or descendants re-parented to it).
    children_remain: bool,
    /// SIGKILL has been sent to the whole tree; anything that shows up later gets it too.
    killing: bool,
    /// Until when output is still read after the main child ended (a grandchild may hold the
    /// pipes open forever).
    drain_until: Option<Instant>,
    output: Option<Output>,
    readiness: Readiness,
    /// Set when sigshim ends the app itself for a reason the app's outcome would hide.
    exit_override: Option<Exit>,
    /// The stop schedule was started (a stop request or --ready-timeout).
    stop_began: bool,
}

/// Which descriptor a pollfd entry after the signalfd belongs to.
#[derive(Clone, Copy, Debug)]
enum Source {
    Output(Token),
    ReadyFd,
    Relay,
}

pub fn run(cfg: &Config) -> Result<Exit, Fatal> {
    let result = supervise(cfg);
    if cfg.delivery.upstart_expect_stop {
        // Under `expect stop`, a main process that ends while the job is still `spawned` (the
        // app died or exited before it was ready, an exec failure, --ready-timeout) leaves a
        // respawning job `start/running` with no process, for ever: Upstart 1.13 moves
        // spawned -> running on that exit instead of respawning (job_process_terminated,
        // init/job_process.c; observed under the real one, tests/upstart.rs). Raising the
        // SIGSTOP first moves the job to `running` (Upstart answers with SIGCONT); the exit
        // that follows is then judged as any other: respawn, or stop on a `normal exit`.
        if notify::upstart_stop_once() {
            info!("exiting before the app was ready: raised SIGSTOP for Upstart's expect stop");
        }
    }
    result
}

fn supervise(cfg: &Config) -> Result<Exit, Fatal> {
    let sfd = SignalFd::open()?;
    if cfg.subreaper {
        // Orphaned descendants are re-parented to the nearest subreaper instead of PID 1, so
        // sigshim reaps them (no zombies) and can find them at the deadline (prctl(2)).
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            warn!(
                "cannot become a child subreaper ({}): orphaned descendants will go to PID 1",
                std::io::Error::last_os_error()
            );
        }
    }
    let above = init::detect();
    let schedule = if above == Init::Upstart && !cfg.deadline_given {
        Schedule::kill_after(cfg.schedule.first_signal(), init::UPSTART_DEFAULT_DEADLINE)
    } else {
        cfg.schedule.clone()
    };
    let ready_regex = match &cfg.ready {
        notify::Mode::Log(re) => Some(regex_lite::Regex::new(re).map_err(|e| Fatal {
            code: exit::USAGE,
            message: format!("--ready: {e}"),
        })?),
        _ => None,
    };
    let settings = cfg.log.settings(ready_regex.is_some());
    if let Some(s) = &settings {
        crate::diag::route_to(s);
    }
    if let Some(w) = init::deadline_warning(above, &schedule) {
        warn!(stderr = true, "{w}");
    }
    let setup_failed = |what: &str, e: std::io::Error| Fatal {
        code: exit::INTERNAL,
        message: format!("{what}: {}", crate::diag::os_error(&e)),
    };
    let pipes = match settings {
        Some(_) => {
            Some(Pipes::new().map_err(|e| setup_failed("cannot create the output pipes", e))?)
        }
        None => None,
    };
    let (readiness, mut handover) =
        Readiness::new(cfg.ready.clone(), cfg.delivery.clone(), cfg.ready_timeout)
            .map_err(|e| setup_failed("cannot set up readiness", e))?;
    let user = cfg
        .user
        .as_deref()
        .map(child::Credentials::resolve)
        .transpose()
        .map_err(|message| Fatal {
            code: exit::INTERNAL,
            message,
        })?;
    if let Some(c) = &user {
        // HOME, USER and LOGNAME describe the target user unless the caller set them: an app
        // that finds root's HOME writes its dotfiles where it may not.
        for (k, v) in [
            ("HOME", c.home.clone()),
            ("USER", Some(c.name.clone().into())),
            ("LOGNAME", Some(c.name.clone().into())),
        ] {
            if let Some(v) = v
                && std::env::var_os(k).is_none()
            {
                handover.env_set.push((k.into(), v));
            }
        }
    }
    let pid = child::spawn(&child::Spec {
        command: &cfg.command,
        ignore: &cfg.guard,
        pdeathsig: cfg.pdeathsig,
        stdout: pipes.as_ref().map(|p| p.write[0].as_raw_fd()),
        stderr: pipes.as_ref().map(|p| p.write[1].as_raw_fd()),
        env_set: &handover.env_set,
        env_remove: &handover.env_remove,
        extra_fd: handover.fd,
        user: user.as_ref(),
        no_new_privs: cfg.no_new_privs,
    })
    .map_err(|e| Fatal {
        code: e.code,
        message: e.message,
    })?;
    info!("started {} as pid {pid}", cfg.command[0].to_string_lossy());
    // Our copies of the descriptors the child got are closed now (the pipes' write ends drop
    // with `Pipes`), so EOF comes when the app and whatever inherited them are done.
    handover.fd_owned = None;
    let output = match (settings, pipes) {
        (Some(s), Some(p)) => Some(Output::new(&s, p, pid, ready_regex)),
        _ => None,
    };
    let mut sup = Supervisor {
        cfg,
        schedule,
        pid,
        phase: Phase::Running,
        children_remain: true,
        killing: false,
        drain_until: None,
        output,
        readiness,
        exit_override: None,
        stop_began: false,
    };
    sup.readiness.started(pid, Instant::now());
    let result = sup.run(&sfd);
    sup.readiness.cleanup();
    result
}

impl Supervisor<'_> {
    fn run(&mut self, sfd: &SignalFd) -> Result<Exit, Fatal> {
        let mut siginfo = SigBuf::new();
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(6);
        let mut sources: Vec<Source> = Vec::with_capacity(6);
        loop {
            let now = Instant::now();
            if let Some(exit) = self.try_finish(now) {
                return Ok(exit);
            }
            if self.next_deadline().is_some_and(|d| d <= now) {
                self.handle(Event::Deadline, now)?;
                continue;
            }
            if self.phase == Phase::Running && self.readiness.deadline().is_some_and(|d| d <= now) {
                match self.readiness.check(now) {
                    Check::Ready => self.handle(Event::Ready, now)?,
                    Check::TimedOut => self.handle(Event::ReadyTimeout, now)?,
                    Check::Waiting => {}
                }
                continue;
            }
            fds.clear();
            sources.clear();
            fds.push(libc::pollfd {
                fd: sfd.fd,
                events: libc::POLLIN,
                revents: 0,
            });
            if let Some(o) = &self.output {
                let mut tokens = Vec::new();
                o.poll_fds(&mut fds, &mut tokens);
                sources.extend(tokens.into_iter().map(Source::Output));
            }
            let (ready_fd, relay) = self.readiness.poll_fds(&mut fds);
            sources.extend(ready_fd.map(|_| Source::ReadyFd));
            sources.extend(relay.map(|_| Source::Relay));
            let mut due = self.next_deadline();
            if self.phase == Phase::Running
                && let Some(r) = self.readiness.deadline()
            {
                due = Some(due.map_or(r, |d| d.min(r)));
            }
            poll(&mut fds, due.map(|d| d.saturating_duration_since(now)))?;
            if fds[0].revents != 0 {
                for &sig in sfd.read(&mut siginfo)? {
                    self.handle(Event::Signal(sig), Instant::now())?;
                }
            }
            for (pfd, &source) in fds[1..].iter().zip(&sources) {
                if pfd.revents == 0 {
                    continue;
                }
                let check = match source {
                    Source::Output(token) => {
                        let o = self.output.as_mut().expect("polled output exists");
                        o.ready(token);
                        if o.take_ready_match() {
                            Check::Ready
                        } else {
                            Check::Waiting
                        }
                    }
                    Source::ReadyFd => self.readiness.on_fd(),
                    Source::Relay => self.readiness.on_relay(),
                };
                if check == Check::Ready {
                    self.handle(Event::Ready, Instant::now())?;
                }
            }
        }
    }

    /// Once the main child has ended and nothing of its tree remains: drain the output (up to
    /// the drain deadline) and give the exit.
    fn try_finish(&mut self, now: Instant) -> Option<Exit> {
        let Phase::Finishing { end, .. } = self.phase else {
            return None;
        };
        if self.children_remain {
            return None;
        }
        if let Some(o) = self.output.as_mut() {
            if o.open() && self.drain_until.is_some_and(|d| now < d) {
                return None;
            }
            if o.open() && o.pending() == 0 {
                warn!(
                    "output still open {:?} after pid {} exited (a process outside sigshim's reach holds it): stopping reading",
                    self.cfg.log.drain_timeout, self.pid
                );
            }
            // The queue gets what is left of the drain, and at least a moment: a destination
            // that is merely slow should not lose records to stderr.
            let flush_by = self
                .drain_until
                .unwrap_or(now)
                .max(now + std::time::Duration::from_millis(500));
            o.finish(flush_by);
        }
        Some(
            self.exit_override
                .unwrap_or_else(|| self.cfg.policy.exit_for(end)),
        )
    }
}

/// Blocks until a descriptor is ready or `timeout` passes.
fn poll(fds: &mut [libc::pollfd], timeout: Option<std::time::Duration>) -> Result<(), Fatal> {
    let ms = match timeout {
        None => -1,
        // Round up: waking a millisecond early would only spin back into poll.
        Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
    };
    // SAFETY: poll on a valid slice of pollfds.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        return Err(internal("poll failed"));
    }
    Ok(())
}

impl Supervisor<'_> {
    /// The phase's own deadline (the schedule's next step, the leftovers' SIGKILL, the drain).
    fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => None,
            Phase::Stopping { next, .. } => next,
            Phase::Finishing { kill_at, .. } if self.children_remain => kill_at,
            // Nothing left to kill: the only deadline is the end of the drain.
            Phase::Finishing { .. } => self.drain_until,
        }
    }

    fn handle(&mut self, ev: Event, now: Instant) -> Result<(), Fatal> {
        match (self.phase, ev) {
            (_, Event::Signal(Signal::CHLD)) => {
                if let Some(end) = self.reap() {
                    self.handle(Event::ChildEnded(end), now)?;
                } else if self.killing && self.children_remain {
                    // Something re-parented to us after the tree was killed.
                    self.kill_tree(Signal::KILL);
                }
            }
            (_, Event::Signal(Signal::TSTP)) => {
                // dumb-init's answer to Ctrl-Z: stop the app, then stop ourselves so the shell
                // sees the job stopped; the SIGCONT that resumes us is forwarded like any other.
                self.deliver(Signal::TSTP);
                // SAFETY: kill on our own PID.
                unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
            }
            (phase, Event::Signal(sig)) => {
                let route = self.cfg.table.route(sig);
                match (phase, route.stop_request) {
                    (Phase::Running, true) => self.begin_stop(sig, route.action, now),
                    (Phase::Stopping { .. }, true) => {
                        // An operator pressing Ctrl-C twice: deliver again, keep the deadline.
                        info!("{sig} received again while stopping: delivering again");
                        self.forward(sig, route.action);
                    }
                    _ => self.forward(sig, route.action),
                }
            }
            (Phase::Running, Event::Ready) => self.readiness.declare(self.pid),
            // A ready line the app wrote before it ended, read after sigshim reaped it (the
            // SIGCHLD and the line arrive in one wake-up and the signal is handled first):
            // the app did say it, so it counts unless a stop had begun.
            (Phase::Finishing { .. }, Event::Ready) if !self.stop_began => {
                self.readiness.declare(self.pid)
            }
            // Readiness after a stop began is news to no one.
            (_, Event::Ready) => {}
            (Phase::Running, Event::ReadyTimeout) => {
                error!(
                    "{} not ready within {:?}: stopping it",
                    self.cfg.command[0].to_string_lossy(),
                    self.cfg.ready_timeout.unwrap_or_default()
                );
                self.exit_override = Some(Exit::Code(exit::INTERNAL));
                let first = self.schedule.first_signal();
                self.start_schedule(Action::Send(first), now);
            }
            (Phase::Running | Phase::Stopping { .. }, Event::ChildEnded(end)) => {
                self.main_ended(end, now);
            }
            (Phase::Stopping { step, .. }, Event::Deadline) => self.run_step(step + 1, now),
            (Phase::Finishing { end, .. }, Event::Deadline) => {
                warn!(
                    "processes left behind by pid {} ignored SIGTERM for {:?}: sending SIGKILL",
                    self.pid, self.cfg.leftover_grace
                );
                self.kill_tree(Signal::KILL);
                self.killing = true;
                self.phase = Phase::Finishing { end, kill_at: None };
            }
            (phase, ev) => {
                return Err(Fatal {
                    code: exit::INTERNAL,
                    message: format!(
                        "internal error: event {ev:?} in phase {phase:?}; please report this"
                    ),
                });
            }
        }
        Ok(())
    }

    fn begin_stop(&mut self, sig: Signal, action: Action, now: Instant) {
        match action {
            Action::Send(s) => info!("{sig} received: stopping pid {} with {s}", self.pid),
            Action::Drop => info!(
                "{sig} received: stopping pid {} (signal rewritten to nothing)",
                self.pid
            ),
        }
        self.start_schedule(action, now);
    }

    /// Step 0 of the stop schedule: `action` (the stop request's route), or SIGKILL to the
    /// whole tree when the schedule starts with it.
    fn start_schedule(&mut self, action: Action, now: Instant) {
        self.stop_began = true;
        if self.schedule.first_signal() == Signal::KILL {
            warn!(
                "stop schedule starts with SIGKILL: killing pid {} and its descendants",
                self.pid
            );
            self.kill_tree(Signal::KILL);
            self.killing = true;
        } else if let Action::Send(s) = action {
            self.deliver(s);
        }
        self.phase = Phase::Stopping {
            step: 0,
            next: self.schedule.deadline(0, now),
        };
        self.tell_stopping(0, action);
    }

    /// STOPPING=1 and a STATUS line for systemd, with EXTEND_TIMEOUT_USEC covering what is
    /// left of the schedule plus the drain, so the unit's own stop timeout does not cut sigshim
    /// off in the middle of its job.
    fn tell_stopping(&self, step: usize, action: Action) {
        let sent = match action {
            Action::Send(s) if step == 0 => s,
            _ => self.schedule.step(step).map_or(Signal::KILL, |s| s.signal),
        };
        let rest: std::time::Duration = self.schedule.steps()[step..]
            .iter()
            .filter_map(|s| s.wait)
            .sum();
        let next = self.schedule.step(step + 1).map(|s| s.signal);
        let status = match (next, self.schedule.step(step).and_then(|s| s.wait)) {
            (Some(n), Some(w)) => format!("sent {sent} to pid {}, {n} in {w:?}", self.pid),
            _ => format!("sent {sent} to pid {}, waiting for it to exit", self.pid),
        };
        let covers = rest + self.cfg.log.drain_timeout + std::time::Duration::from_secs(1);
        self.readiness.stopping(&status, Some(covers));
    }

    fn run_step(&mut self, step: usize, now: Instant) {
        let Some(s) = self.schedule.step(step) else {
            self.phase = Phase::Stopping { step, next: None };
            return;
        };
        if s.signal == Signal::KILL {
            warn!(
                "kill deadline passed: pid {} still running, sending SIGKILL to its process group and descendants",
                self.pid
            );
            self.kill_tree(Signal::KILL);
            self.killing = true;
        } else {
            warn!(
                "stop step {step}: pid {} still running, sending {}",
                self.pid, s.signal
            );
            self.deliver(s.signal);
        }
        self.phase = Phase::Stopping {
            step,
            next: self.schedule.deadline(step, now),
        };
        self.tell_stopping(step, Action::Send(s.signal));
    }

    fn forward(&self, received: Signal, action: Action) {
        match action {
            Action::Send(sig) => {
                self.deliver(sig);
                if sig == received {
                    info!("{received} received: forwarded");
                } else {
                    info!("{received} received: sent {sig}");
                }
            }
            Action::Drop => debug!("{received} received: not forwarded"),
        }
    }

    /// Sends to the child's process group, or to the child alone with --single-child.
    fn deliver(&self, sig: Signal) {
        let main_alive = !matches!(self.phase, Phase::Finishing { .. });
        let target = if self.cfg.single_child {
            if !main_alive {
                return;
            }
            self.pid
        } else {
            -self.pid
        };
        // Never 0 or -1 (nmap#3498 killed its own caller with kill(0, ...)): the child's PID is
        // always > 1 because sigshim, its parent, exists.
        debug_assert!(self.pid > 1);
        // SAFETY: kill with a PID of our own child or its group.
        unsafe { libc::kill(target, sig.0) };
    }

    /// Sends `sig` to the child's process group and to every other descendant (those that
    /// left the group with setsid/setpgid), found through /proc.
    fn kill_tree(&self, sig: Signal) {
        // SAFETY: kill on our child's process group (never 0 or -1, see `deliver`).
        unsafe { libc::kill(-self.pid, sig.0) };
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        for (pid, pgid) in descendants(me) {
            if pgid != self.pid {
                debug!("sending {sig} to descendant {pid} outside the process group");
                // SAFETY: kill on a descendant of ours, found a moment ago.
                unsafe { libc::kill(pid, sig.0) };
            }
        }
    }

    /// Reaps every child that has ended (SIGCHLDs coalesce: catatonit#4) and returns the main
    /// child's end if it was among them.
    fn reap(&mut self) -> Option<ChildEnd> {
        let mut main = None;
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r > 0 {
                if r == self.pid {
                    main = ChildEnd::from_wait_status(status);
                } else {
                    debug!("reaped orphaned descendant {r}");
                }
                continue;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // 0: children remain, none has ended; ECHILD: no children at all.
            self.children_remain = r == 0;
            return main;
        }
    }

    fn main_ended(&mut self, end: ChildEnd, now: Instant) {
        self.drain_until = now.checked_add(self.cfg.log.drain_timeout);
        match end {
            ChildEnd::Exited(c) => info!("pid {} exited with status {c}", self.pid),
            ChildEnd::Killed(s) => info!("pid {} was killed by {s}", self.pid),
        }
        let mut kill_at = None;
        if self.children_remain && !self.killing {
            // A service's helpers must not outlive it (the init believes the service is gone).
            // They get the app's own stop signal and SIGTERM, the signal every program
            // understands (the guard may have left TERM ignored in them; a shell's background
            // jobs ignore INT), never through the rewrite table (dumb-init's trap); then
            // SIGKILL after the grace.
            let stop = self.schedule.first_signal();
            info!(
                "pid {} left processes behind: sending {stop} and SIGTERM, SIGKILL in {:?}",
                self.pid, self.cfg.leftover_grace
            );
            self.phase = Phase::Finishing { end, kill_at: None };
            if stop != Signal::TERM && stop != Signal::KILL {
                self.kill_tree(stop);
            }
            self.kill_tree(Signal::TERM);
            kill_at = now.checked_add(self.cfg.leftover_grace);
        }
        self.phase = Phase::Finishing { end, kill_at };
    }
}

/// All descendants of `root` as (pid, process group), from /proc/*/stat. Empty if /proc is
/// not mounted (then the process-group kill is all sigshim can do).
fn descendants(root: i32) -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut procs: Vec<(i32, i32, i32)> = Vec::new(); // (pid, ppid, pgid)
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((ppid, pgid)) = parse_stat(&stat) {
            procs.push((pid, ppid, pgid));
        }
    }
    let mut found: Vec<(i32, i32)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, pgid) in &procs {
            if ppid == parent && !found.iter().any(|&(p, _)| p == pid) {
                found.push((pid, pgid));
                frontier.push(pid);
            }
        }
    }
    found
}

/// (ppid, pgrp) from a /proc/PID/stat line. The command name is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted after the last ')' (proc(5)).
fn parse_stat(stat: &str) -> Option<(i32, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((ppid, pgid))
}

/// The signal descriptor: every caught signal blocked and read as data.
struct SignalFd {
    fd: i32,
    /// Our own PID, taken once (getpid is a real system call on musl, and this is the path
    /// every forwarded signal takes).
    me: u32,
}

struct SigBuf {
    buf: [libc::signalfd_siginfo; 16],
    out: Vec<Signal>,
}

impl SigBuf {
    fn new() -> SigBuf {
        SigBuf {
            // SAFETY: signalfd_siginfo is plain old data; all-zero is a valid value.
            buf: unsafe { std::mem::zeroed() },
            out: Vec::with_capacity(16),
        }
    }
}

impl SignalFd {
    fn open() -> Result<SignalFd, Fatal> {
        // SAFETY: sigset manipulation on a local, initialised set; sigprocmask and signalfd on
        // valid pointers. The process is single-threaded, so the mask is the process's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in Signal::caught() {
                libc::sigaddset(&mut set, s.0);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(internal("cannot block signals"));
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(internal("cannot create a signalfd"));
            }
            Ok(SignalFd {
                fd,
                me: libc::getpid() as u32,
            })
        }
    }

    /// Reads every pending signal. Signals sigshim sent to itself (a SIGPIPE from a write to a
    /// closed pipe, its own abort) are dropped: they are not requests from outside.
    fn read<'b>(&self, b: &'b mut SigBuf) -> Result<&'b [Signal], Fatal> {
        b.out.clear();
        let me = self.me;
        loop {
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reading whole siginfo records into a buffer of that type.
            let n = unsafe { libc::read(self.fd, b.buf.as_mut_ptr().cast(), size * b.buf.len()) };
            if n < 0 {
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return Ok(&b.out),
                    _ => return Err(internal("cannot read the signalfd")),
                }
            }
            let count = n as usize / size;
            // One batch per wake-up, never "until empty": under a storm of queued real-time
            // signals that loop would starve every deadline (poll reports the descriptor
            // again at once, after the loop has looked at its clocks).
            for info in &b.buf[..count] {
                let from_self = info.ssi_pid == me
                    && (info.ssi_code == libc::SI_USER || info.ssi_code == libc::SI_TKILL);
                let sig = Signal(info.ssi_signo as i32);
                if from_self && sig != Signal::CHLD {
                    debug!("ignoring {sig} sigshim sent itself");
                    continue;
                }
                b.out.push(sig);
            }
            return Ok(&b.out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_names() {
        let line = "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 0 0";
        assert_eq!(parse_stat(line), Some((17, 4242)));
        assert_eq!(parse_stat("garbage"), None);
    }
}
