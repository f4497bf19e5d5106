//! Set-up and the executor: one thread, one poll(2), the state machine's actions carried out.
//!
//! Set-up decides what depends on the environment (which init is above, whether the log
//! sockets exist), builds the signal plan, looks up users and hosts (while a stop signal can
//! still simply end sigshim: nothing runs yet), then blocks every signal it handles and reads
//! them from a signalfd, so a signal is data like any other and no code runs in a handler.
//!
//! The loop waits on that descriptor, the app's pipes, the readiness descriptors and (when it
//! has a backlog) sigshim's own stdout/stderr, with the state's earliest deadline as the
//! timeout; with nothing due it sleeps in poll(2) indefinitely, making no system calls while
//! the service is idle. Each fact becomes a `machine::Event`; `machine::step` decides; this
//! module performs the returned actions (signals, reaping, /proc, notifications, output) and
//! never decides anything itself.

use crate::child;
use crate::cli::{Config, Log, LogMode};
use crate::exit::{self, ChildEnd, Exit};
use crate::init::{self, Init};
use crate::machine::{self, Action, Event, Note, Rules, State};
use crate::notify::{Announcer, Detector, Mode};
use crate::output::{Output, Pipes, Settings, Target, Token};
use crate::signals::{Plan, Signal, Target as SignalTarget};
use crate::sys;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
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
            sys::os_error(&std::io::Error::last_os_error())
        ),
    }
}

/// `--log` resolved. `None` means inherit (no capture). With `capture` (readiness watches the
/// output), inherit becomes a verbatim copy instead. The second value is `auto`'s reason, for
/// `-v`.
///
/// `auto` captures only where nobody else reads the output (inherit.rs): stdout and stderr
/// each systemd's journal stream for this service or /dev/null; then the journal if its socket
/// exists, else syslog if its socket exists. A terminal, a pipe or a file stays the app's.
fn log_settings(log: &Log, capture: bool) -> (Option<Settings>, Option<String>) {
    let mut why = None;
    let target = match log.mode {
        LogMode::Inherit if capture => Target::Passthrough,
        LogMode::Inherit => return (None, None),
        LogMode::Journald => Target::Journald(log.journal_socket.clone()),
        LogMode::Syslog => Target::Syslog(log.syslog_socket.clone(), log.syslog_format),
        LogMode::Auto => {
            let stream = std::env::var_os("JOURNAL_STREAM");
            let (take, reason) = crate::inherit::auto_capture(
                crate::inherit::Sink::of(1, stream.as_deref()),
                crate::inherit::Sink::of(2, stream.as_deref()),
            );
            let target = if !take {
                None
            } else if sys::is_socket(&log.journal_socket) {
                Some(Target::Journald(log.journal_socket.clone()))
            } else if sys::is_socket(&log.syslog_socket) {
                Some(Target::Syslog(log.syslog_socket.clone(), log.syslog_format))
            } else {
                None
            };
            why = Some(match &target {
                Some(Target::Journald(p) | Target::Syslog(p, _)) => format!(
                    "--log auto: {reason}: sending the app's lines to {}",
                    p.display()
                ),
                _ if take => format!(
                    "--log auto: {reason}, but neither {} nor {} is a socket: not capturing",
                    log.journal_socket.display(),
                    log.syslog_socket.display()
                ),
                _ => format!("--log auto: {reason}: not capturing"),
            });
            match target {
                Some(t) => t,
                None if capture => Target::Passthrough,
                None => return (None, why),
            }
        }
    };
    let max_line = log.max_line.unwrap_or(match target {
        Target::Journald(_) => 256 * 1024,
        Target::Syslog(..) => 8000,
        Target::Passthrough => 1024 * 1024,
    });
    (
        Some(Settings {
            target,
            tag: log.tag.clone(),
            facility: log.facility,
            stdout_priority: log.stdout_priority,
            stderr_priority: log.stderr_priority,
            level_prefix: log.level_prefix,
            max_line,
        }),
        why,
    )
}

pub fn run(cfg: &Config) -> Result<Exit, Fatal> {
    // Every signal sigshim will handle starts from its default action. An ignore inherited
    // from the parent would survive: SIGCHLD set to SIG_IGN (it survives exec) makes the
    // kernel reap the app behind sigshim's back, and sigshim would wait for ever. Nothing is
    // blocked yet: until the app runs, a stop request simply ends sigshim, even while a user
    // or host look-up below hangs.
    // SIGPIPE alone stays ignored until it is blocked: a warning written to a broken stderr
    // during set-up must not kill sigshim.
    for sig in Signal::caught() {
        let how = if sig == Signal::PIPE {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: SIG_DFL and SIG_IGN are valid dispositions.
        unsafe { sys::set_disposition(sig.0, how) };
    }
    let above = init::detect();
    let default_deadline = (above == Init::Upstart).then_some(init::UPSTART_DEFAULT_DEADLINE);
    let plan = Plan::new(&cfg.signals, default_deadline).map_err(|message| Fatal {
        code: exit::USAGE,
        message,
    })?;
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
    let ready_regex = match &cfg.ready {
        Mode::Log(re) => Some(regex_lite::Regex::new(re).map_err(|e| Fatal {
            code: exit::USAGE,
            message: format!("--ready: {e}"),
        })?),
        _ => None,
    };
    let (settings, auto_why) = log_settings(&cfg.log, ready_regex.is_some());
    if let Some(send) = settings.as_ref().and_then(crate::output::diag_sender) {
        crate::diag::route_to(send);
    }
    if let Some(why) = auto_why {
        info!("{why}");
    }
    if let Some(w) = init::deadline_warning(above, plan.schedule()) {
        warn!(stderr = true, "{w}");
    }
    if let Some(w) = crate::inherit::watchdog_warning(
        std::env::var_os("WATCHDOG_USEC").as_deref(),
        std::env::var_os("WATCHDOG_PID").as_deref(),
        std::env::var_os("NOTIFY_SOCKET").is_some(),
        cfg.ready == Mode::Notify,
        crate::inherit::me(),
    ) {
        warn!("{w}");
    }
    let setup_failed = |what: &str, e: std::io::Error| Fatal {
        code: exit::INTERNAL,
        message: format!("{what}: {}", sys::os_error(&e)),
    };
    let (detector, mut handover) =
        Detector::new(cfg.ready.clone()).map_err(|e| setup_failed("cannot set up readiness", e))?;
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
    let sfd = SignalFd::open()?;
    let announcer = Announcer::new(cfg.delivery.clone(), &cfg.ready);
    let pipes = match settings {
        Some(_) => {
            Some(Pipes::new().map_err(|e| setup_failed("cannot create the output pipes", e))?)
        }
        None => None,
    };
    let extra_fds: Vec<_> = handover.fd.into_iter().collect();
    let mut prepared = child::prepare(&child::Spec {
        command: &cfg.command,
        ignore: plan.guard(),
        pdeathsig: plan.pdeathsig(),
        stdout: pipes.as_ref().map(|p| p.write[0].as_raw_fd()),
        stderr: pipes.as_ref().map(|p| p.write[1].as_raw_fd()),
        env_set: &handover.env_set,
        env_remove: &handover.env_remove,
        extra_fds: &extra_fds,
        user: user.as_ref(),
        no_new_privs: cfg.no_new_privs,
    })
    .map_err(|e| Fatal {
        code: e.code,
        message: e.message,
    })?;
    // Taken before the app runs: once it has, a test (or the app) may already find the
    // descriptor table full, and the reserve would never be had (a race in
    // tests/contract.rs, the_kill_finds_descendants_with_a_full_descriptor_table).
    let reserve = reserve_fds();
    let pid = prepared.spawn().map_err(|e| Fatal {
        code: e.code,
        message: e.message,
    })?;
    info!("started {} as pid {pid}", cfg.command[0].to_string_lossy());
    // Our copies of the descriptors the child got are closed now (the pipes' write ends drop
    // with `Pipes`), so EOF comes when the app and whatever inherited them are done.
    drop(handover.fd_owned.take());
    let output = match (settings, pipes) {
        (Some(s), Some(p)) => {
            let mut o = Output::new(&s, p, pid, ready_regex);
            // The records name the app as their writer where the kernel allows it.
            // SAFETY: getuid/getgid have no preconditions.
            let (uid, gid) = user.as_ref().map_or_else(
                || unsafe { (libc::getuid(), libc::getgid()) },
                |c| (c.uid, c.gid),
            );
            o.send_as(Some(libc::ucred { pid, uid, gid }));
            Some(o)
        }
        _ => None,
    };
    let rules = Rules {
        ready_on_spawn: detector.on_spawn(),
        probes: detector.probes(),
        plan,
        policy: cfg.policy.clone(),
        drain_timeout: cfg.log.drain_timeout,
        ready_timeout: cfg.ready_timeout,
        upstart_expect_stop: cfg.delivery.upstart_expect_stop,
        // An app that speaks sd_notify reports its own reloads (relayed as they come).
        report_reloads: announcer.upstream() && cfg.ready != Mode::Notify,
    };
    let mut ex = Executor {
        cfg,
        rules,
        pid,
        main_reaped: false,
        // SAFETY: getpid has no preconditions.
        me: unsafe { libc::getpid() },
        output,
        detector,
        announcer,
        awaiting_output: false,
        events: VecDeque::with_capacity(8),
        exit: None,
        reserve,
    };
    // SAFETY: getuid has no preconditions.
    let app_uid = user
        .as_ref()
        .map_or_else(|| unsafe { libc::getuid() }, |c| c.uid);
    ex.detector.started(pid, app_uid);
    ex.events.push_back(Event::Spawned);
    let result = ex.run(&sfd, State::Starting);
    ex.announcer.cleanup();
    result
}

/// Which descriptor a pollfd entry after the signalfd belongs to.
#[derive(Clone, Copy, Debug)]
enum Source {
    Output(Token),
    ReadyFd,
    Relay,
    Console,
}

struct Executor<'a> {
    cfg: &'a Config,
    rules: Rules,
    /// The main child's PID, which is also its process group ID.
    pid: i32,
    /// Once the main child is reaped its PID, and so its group ID, may be recycled: no more
    /// signals to either, only to descendants pinned one by one (see `signal_one`).
    main_reaped: bool,
    me: i32,
    output: Option<Output>,
    detector: Detector,
    announcer: Announcer,
    /// The machine asked to hear when the output is all delivered.
    awaiting_output: bool,
    /// Facts waiting for the machine, in order.
    events: VecDeque<Event>,
    exit: Option<Exit>,
    /// Two descriptors kept in reserve for the kill: with a full descriptor table (a leak in
    /// the app's notify messages, a low RLIMIT_NOFILE) the /proc scan would find nothing and
    /// every descendant that left the app's group would survive. They are closed for the scan
    /// (one for /proc or a stat file, one for a pidfd) and taken again after it.
    reserve: Vec<OwnedFd>,
}

/// Two descriptors on /dev/null, or as many as can be had.
fn reserve_fds() -> Vec<OwnedFd> {
    (0..2)
        .filter_map(|_| std::fs::File::open("/dev/null").ok().map(OwnedFd::from))
        .collect()
}

impl Executor<'_> {
    fn run(&mut self, sfd: &SignalFd, mut state: State) -> Result<Exit, Fatal> {
        let mut siginfo = SigBuf::new();
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8);
        let mut sources: Vec<Source> = Vec::with_capacity(8);
        loop {
            while let Some(e) = self.events.pop_front() {
                state = self.feed(state, e);
                if let Some(exit) = self.exit {
                    return Ok(exit);
                }
            }
            let now = Instant::now();
            let due = machine::deadline(&state);
            if let Some((at, timer)) = due
                && at <= now
            {
                self.events.push_back(Event::Timer(timer));
                continue;
            }
            fds.clear();
            sources.clear();
            fds.push(libc::pollfd {
                fd: sfd.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            if let Some(o) = &self.output {
                let mut tokens = Vec::new();
                o.poll_fds(&mut fds, &mut tokens);
                sources.extend(tokens.into_iter().map(Source::Output));
            }
            let (ready_fd, relay) = self.detector.poll_fds(&mut fds);
            sources.extend(ready_fd.map(|_| Source::ReadyFd));
            sources.extend(relay.map(|_| Source::Relay));
            let n = sys::console_pollfds(&mut fds);
            sources.extend(std::iter::repeat_n(Source::Console, n));
            sys::poll(
                &mut fds,
                due.map(|(at, _)| at.saturating_duration_since(now)),
            )
            .map_err(|_| internal("poll failed"))?;
            // Output and readiness before signals: a line the app wrote before it ended is
            // read before its end is handled.
            for (pfd, &source) in fds[1..].iter().zip(&sources) {
                if pfd.revents == 0 {
                    continue;
                }
                match source {
                    Source::Output(token) => {
                        let o = self.output.as_mut().expect("polled output exists");
                        o.ready(token);
                        if o.take_ready_match() {
                            self.events.push_back(Event::Ready);
                        }
                    }
                    Source::ReadyFd => {
                        if self.detector.on_fd() {
                            self.events.push_back(Event::Ready);
                        }
                    }
                    Source::Relay => {
                        if self.detector.on_relay(&self.announcer) {
                            self.events.push_back(Event::Ready);
                        }
                    }
                    Source::Console => sys::console_flush(),
                }
            }
            self.check_output();
            if fds[0].revents != 0 {
                for &sig in sfd.read(&mut siginfo)? {
                    if sig == Signal::CHLD {
                        self.reap();
                    } else {
                        self.events.push_back(Event::Signal(sig));
                    }
                }
            }
        }
    }

    fn feed(&mut self, state: State, e: Event) -> State {
        let now = Instant::now();
        let (next, actions) = machine::step(state, e, now, &self.rules);
        for a in actions {
            self.execute(a);
        }
        next
    }

    fn execute(&mut self, a: Action) {
        match a {
            Action::Deliver(sig) => self.deliver(sig),
            Action::SuspendSelf => {
                // dumb-init's job control: the app got TSTP; stop ourselves too, so that the
                // shell's `fg` (a SIGCONT to us, forwarded) resumes both.
                // SAFETY: kill on our own PID.
                unsafe { libc::kill(self.me, libc::SIGSTOP) };
            }
            Action::KillTree => self.kill_tree(),
            Action::SignalLeftovers(sig) => self.signal_descendants(sig),
            Action::Probe => self.events.push_back(if self.detector.probe() {
                Event::Ready
            } else {
                Event::ProbeFailed
            }),
            Action::DeclareReady => self.announcer.declare(self.pid),
            Action::TellReloading => self.announcer.reloading(),
            Action::TellReadyAgain => self.announcer.ready_again(),
            Action::TellStopping { step, sent } => self.tell_stopping(step, sent),
            Action::AwaitOutput => {
                self.awaiting_output = true;
                self.check_output();
            }
            Action::UnblockUpstart => self.announcer.stop_for_upstart(),
            Action::Note(n) => self.note(n),
            Action::Exit(exit) => {
                if let Some(o) = self.output.as_mut() {
                    // What is still queued gets a moment; a stuck destination gets no more.
                    o.finish(Instant::now() + Duration::from_millis(500));
                }
                self.exit = Some(exit);
            }
        }
    }

    /// Tells the machine, once it asked, that every capture pipe is at EOF and every record
    /// is delivered.
    fn check_output(&mut self) {
        if self.awaiting_output && self.output.as_ref().is_none_or(|o| o.done()) {
            self.awaiting_output = false;
            self.events.push_back(Event::OutputClosed);
        }
    }

    /// Sends to the app's process group, or to the app alone with --single-child. Nothing
    /// once the app is reaped: its PID, and so its group ID, may belong to someone else.
    fn deliver(&self, sig: Signal) {
        if self.main_reaped {
            return;
        }
        let target = match self.rules.plan.target() {
            SignalTarget::Group => -self.pid,
            SignalTarget::Child => self.pid,
        };
        // Never 0 or -1 (nmap#3498 killed its own caller with kill(0, ...)): the child's PID is
        // always > 1 because sigshim, its parent, exists.
        debug_assert!(self.pid > 1);
        // SAFETY: kill with the PID of our own unreaped child or its group.
        unsafe { libc::kill(target, sig.0) };
    }

    /// SIGKILL to the app's process group (while the app is unreaped, its group ID cannot be
    /// recycled) and to every other descendant, found through /proc.
    fn kill_tree(&mut self) {
        if !self.main_reaped {
            // SAFETY: kill on our unreaped child's process group.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
        let skip_group = !self.main_reaped;
        self.with_reserve(|ex| {
            for p in descendants(ex.me) {
                if !skip_group || p.pgid != ex.pid {
                    ex.signal_one(p, Signal::KILL);
                }
            }
        });
    }

    /// `sig` to every descendant, one by one (the app has ended).
    fn signal_descendants(&mut self, sig: Signal) {
        self.with_reserve(|ex| {
            for p in descendants(ex.me) {
                ex.signal_one(p, sig);
            }
        });
    }

    /// Runs `f` with the reserve descriptors free.
    fn with_reserve(&mut self, f: impl FnOnce(&Self)) {
        self.reserve.clear();
        f(self);
        self.reserve = reserve_fds();
    }

    /// Signals a process found in /proc a moment ago, never a stranger that took its PID. A
    /// child of sigshim's cannot be recycled until sigshim reaps it (and only this thread
    /// reaps); any deeper descendant can be reaped by its own parent at any moment. For those
    /// a pidfd pins the process, and the start time read after opening it proves it is the
    /// one that was found (pidfd_open(2), Linux 5.3). Older kernels get the start-time check
    /// alone, which narrows the race to the moment between it and kill(2).
    fn signal_one(&self, p: Proc, sig: Signal) {
        debug!("sending {sig} to descendant {}", p.pid);
        if p.ppid == self.me {
            // SAFETY: kill on an unreaped child of ours.
            unsafe { libc::kill(p.pid, sig.0) };
            return;
        }
        // SAFETY: pidfd_open with a PID and no flags.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, p.pid, 0) };
        if fd >= 0 {
            // SAFETY: a descriptor the kernel just gave us.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
            if start_time(p.pid) == Some(p.start) {
                // SAFETY: pidfd_send_signal on our pidfd, no siginfo, no flags.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        fd.as_raw_fd(),
                        sig.0,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                };
            }
        } else if sys::errno() == libc::ENOSYS && start_time(p.pid) == Some(p.start) {
            // SAFETY: kill on a descendant whose identity was checked a moment ago.
            unsafe { libc::kill(p.pid, sig.0) };
        }
    }

    /// Reaps every child that has ended (SIGCHLDs coalesce: catatonit#4) and tells the machine.
    fn reap(&mut self) {
        let mut main = None;
        let remain = loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r > 0 {
                if r == self.pid {
                    main = ChildEnd::from_wait_status(status);
                    self.main_reaped = true;
                    // Its PID may be another process's from now on.
                    if let Some(o) = self.output.as_mut() {
                        o.send_as(None);
                    }
                } else {
                    debug!("reaped orphaned descendant {r}");
                }
                continue;
            }
            if r < 0 && sys::errno() == libc::EINTR {
                continue;
            }
            // 0: children remain, none has ended; ECHILD: no children at all.
            break r == 0;
        };
        match main {
            Some(end) => {
                // A line the app wrote just before it ended (its ready line, say) is read
                // before its end is handled.
                if let Some(o) = self.output.as_mut() {
                    o.take_buffered();
                    if o.take_ready_match() {
                        self.events.push_back(Event::Ready);
                    }
                }
                self.events.push_back(Event::MainEnded {
                    end,
                    others: remain,
                });
            }
            None if self.main_reaped => self.events.push_back(Event::Reaped { remain }),
            // Orphans reaped while the app runs: nothing for the machine.
            None => {}
        }
    }

    /// STOPPING=1 and a STATUS line for systemd, with EXTEND_TIMEOUT_USEC covering what is
    /// left of the schedule plus the drain, so the unit's own stop timeout does not cut sigshim
    /// off in the middle of its job.
    fn tell_stopping(&self, step: usize, sent: Option<Signal>) {
        if !self.announcer.upstream() {
            return;
        }
        let sched = self.rules.plan.schedule();
        let rest: Duration = sched.steps()[step.min(sched.steps().len())..]
            .iter()
            .filter_map(|s| s.wait)
            .sum();
        let shown = sent.map_or_else(|| "nothing".to_string(), |s| s.to_string());
        let status = match (
            sched.step(step + 1).map(|s| s.signal),
            sched.step(step).and_then(|s| s.wait),
        ) {
            (Some(n), Some(w)) => format!("sent {shown} to pid {}, {n} in {w:?}", self.pid),
            _ => format!("sent {shown} to pid {}, waiting for it to exit", self.pid),
        };
        let covers = rest + self.cfg.log.drain_timeout + Duration::from_secs(1);
        self.announcer.stopping(&status, Some(covers));
    }

    fn note(&self, n: Note) {
        let pid = self.pid;
        let plan = &self.rules.plan;
        match n {
            Note::Forwarded { received, sent } if received == sent => {
                info!("{received} received: forwarded")
            }
            Note::Forwarded { received, sent } => info!("{received} received: sent {sent}"),
            Note::Reload { received, sent } => {
                info!("{received} received: sent {sent}, reported to systemd as a reload")
            }
            Note::Dropped(s) => debug!("{s} received: not forwarded"),
            Note::Suspended => info!("SIGTSTP received: sent it to pid {pid}, stopping sigshim"),
            Note::StopRequested {
                received,
                sent: Some(s),
            } => info!("{received} received: stopping pid {pid} with {s}"),
            Note::StopRequested {
                received,
                sent: None,
            } => info!("{received} received: stopping pid {pid} (signal rewritten to nothing)"),
            Note::StopAgain(s) => info!("{s} received again while stopping: delivering again"),
            Note::ScheduleStartsWithKill => {
                warn!("stop schedule starts with SIGKILL: killing pid {pid} and its descendants")
            }
            Note::Step { step, signal } => {
                warn!("stop step {step}: pid {pid} still running, sending {signal}")
            }
            Note::KillDeadline => warn!(
                "kill deadline passed: pid {pid} still running, sending SIGKILL to its process group and descendants"
            ),
            Note::NotReady => error!(
                "{} not ready within {:?}: stopping it",
                self.cfg.command[0].to_string_lossy(),
                self.rules.ready_timeout.unwrap_or_default()
            ),
            Note::Ended(ChildEnd::Exited(c)) => info!("pid {pid} exited with status {c}"),
            Note::Ended(ChildEnd::Killed(s)) => info!("pid {pid} was killed by {s}"),
            Note::Leftovers => info!(
                "pid {pid} left processes behind: sending {}, SIGKILL in {:?}",
                plan.leftover()
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                plan.leftover_grace()
            ),
            Note::LeftoversKilled => warn!(
                "processes left behind by pid {pid} still ran {:?} after {}: sending SIGKILL",
                plan.leftover_grace(),
                plan.leftover()
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
            ),
            Note::Hurry(s) => info!("{s} received after pid {pid} ended: finishing now"),
            Note::OutputStillOpen => warn!(
                "output still open {:?} after pid {pid} exited (a process outside sigshim's reach holds it): stopping reading",
                self.cfg.log.drain_timeout
            ),
            Note::Impossible { state, event } => {
                error!("internal error: event {event:?} in state {state}; please report this")
            }
        }
    }
}

/// A process found in /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgid: i32,
    /// Start time in clock ticks since boot (proc(5) field 22): with the PID, it names one
    /// process for good.
    start: u64,
}

/// All descendants of `root`, from /proc/*/stat. Empty if /proc is not mounted (then the
/// process-group kill is all sigshim can do). One descriptor at a time: the directory is read
/// whole and closed before the first stat file is opened.
fn descendants(root: i32) -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let pids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    let procs: Vec<Proc> = pids.into_iter().filter_map(read_stat).collect();
    let mut found: Vec<Proc> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in &procs {
            if p.ppid == parent && !found.iter().any(|f| f.pid == p.pid) {
                found.push(*p);
                frontier.push(p.pid);
            }
        }
    }
    found
}

fn read_stat(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

fn start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|p| p.start)
}

/// A /proc/PID/stat line. The command name is in parentheses and may itself contain spaces
/// and parentheses, so fields are counted after the last ')' (proc(5)).
fn parse_stat(pid: i32, stat: &str) -> Option<Proc> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    // Fields 6..21 (session .. itrealvalue), then starttime.
    let start = fields.nth(16)?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        pgid,
        start,
    })
}

/// The signal descriptor: every caught signal blocked and read as data.
struct SignalFd {
    fd: OwnedFd,
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
        let set = Signal::caught().fold(sys::SigSet::default(), |set, s| set.with(s.0));
        if !sys::sigmask(libc::SIG_BLOCK, set) {
            return Err(internal("cannot block signals"));
        }
        let fd = sys::signalfd(set).map_err(|_| internal("cannot create a signalfd"))?;
        Ok(SignalFd {
            fd,
            // SAFETY: getpid has no preconditions.
            me: unsafe { libc::getpid() } as u32,
        })
    }

    /// Reads one batch of pending signals. Signals sigshim sent to itself (a SIGPIPE from a
    /// write to a closed pipe, its own SIGSTOP) are dropped: they are not requests from
    /// outside.
    fn read<'b>(&self, b: &'b mut SigBuf) -> Result<&'b [Signal], Fatal> {
        b.out.clear();
        let me = self.me;
        loop {
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reading whole siginfo records into a buffer of that type.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    b.buf.as_mut_ptr().cast(),
                    size * b.buf.len(),
                )
            };
            if n < 0 {
                match sys::errno() {
                    libc::EINTR => continue,
                    libc::EAGAIN => return Ok(&b.out),
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
                // No diagnostic for these: with a broken stderr, the message about a SIGPIPE
                // would raise the next one.
                if !(from_self && sig != Signal::CHLD) {
                    b.out.push(sig);
                }
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
        let line =
            "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(
            parse_stat(4242, line),
            Some(Proc {
                pid: 4242,
                ppid: 17,
                pgid: 4242,
                start: 987654
            })
        );
        assert_eq!(parse_stat(1, "garbage"), None);
    }

    #[test]
    fn stat_of_ourselves() {
        // SAFETY: getpid/getppid have no preconditions.
        let (me, parent) = unsafe { (libc::getpid(), libc::getppid()) };
        let p = read_stat(me).expect("/proc/self/stat");
        assert_eq!(p.ppid, parent);
        assert!(p.start > 0);
    }
}
