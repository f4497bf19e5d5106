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
//! the service is idle (in read(2) on the signalfd itself when that is the only descriptor:
//! one system call per signal, not two). Each fact becomes a `machine::Event`; `machine::step` decides; this
//! module performs the returned actions (signals, reaping, /proc, notifications, output) and
//! never decides anything itself.

use crate::child;
use crate::cli::{Config, Log, LogMode};
use crate::exit::{self, ChildEnd, Exit};
use crate::init::{self, Init};
use crate::machine::{self, Action, Event, Gen, Note, Rules, State};
use crate::notify::{Announcer, Detector, Mode};
use crate::output::{Output, Pipes, Settings, Target, Token};
use crate::signals::{Plan, Signal, Target as SignalTarget};
use crate::sys;
use std::collections::BTreeMap;
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
            // Where the lines go is said once the journal's protocol is chosen, below.
            why = Some(match &target {
                Some(_) => reason,
                None if take => format!(
                    "--log auto: {reason}, but neither {} nor {} is a socket: not capturing",
                    log.journal_socket.display(),
                    log.syslog_socket.display()
                ),
                None => format!("--log auto: {reason}: not capturing"),
            });
            match target {
                Some(t) => t,
                None if capture => Target::Passthrough,
                None => return (None, why),
            }
        }
    };
    let journal_stream = match &target {
        Target::Journald(p) => journal_stream(log, p),
        _ => None,
    };
    if log.mode == LogMode::Auto
        && let (Some(reason), Target::Journald(p) | Target::Syslog(p, _)) = (&why, &target)
    {
        let to = journal_stream.as_deref().unwrap_or(p);
        why = Some(format!(
            "--log auto: {reason}: sending the app's lines to {}",
            to.display()
        ));
    }
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
            journal_stream,
        }),
        why,
    )
}

/// journald's stdout stream socket when the stream protocol is to be used: the `stdout` socket
/// beside the native one (journald makes both in one directory), chosen unless
/// `--journal-protocol native`, a `--max-line` (only the native protocol's records are cut
/// where sigshim says), or no such socket (an older or a stand-in journald) says otherwise.
/// A tag the stream's header cannot carry as it is (a line of at most 255 bytes that journald
/// trims of white space) goes by the native protocol whatever was asked.
fn journal_stream(log: &Log, native: &std::path::Path) -> Option<std::path::PathBuf> {
    let path = native.with_file_name("stdout");
    let t = &log.tag;
    if t.len() > 250
        || t.contains(&b'\n')
        || t.first().is_some_and(u8::is_ascii_whitespace)
        || t.last().is_some_and(u8::is_ascii_whitespace)
    {
        return None;
    }
    match log.journal_stream {
        Some(true) => Some(path),
        Some(false) => None,
        None => (log.max_line.is_none() && sys::is_socket(&path)).then_some(path),
    }
}

/// How long an ended app's last lines may hold its reaping up (`Executor::reap`), at most: no
/// longer than `--drain-timeout` either, the time the app's end may take for its output.
const LAST_WORDS: Duration = Duration::from_secs(2);

pub fn run(cfg: &Config) -> Result<Exit, Fatal> {
    let result = supervise(cfg);
    if cfg.delivery.upstart_expect_stop && crate::notify::upstart_stop_once() {
        // Under `expect stop`, a main process that ends while the job is still `spawned`
        // leaves a respawning job `start/running` with no process, for ever: Upstart 1.13
        // moves spawned -> running on that exit instead of respawning (job_process_terminated,
        // init/job_process.c; observed under the real one, tests/upstart.rs). The machine
        // raises the SIGSTOP before any exit it decides (Action::UnblockUpstart); this covers
        // a set-up that failed before it ran.
        info!("exiting before the app was ready: raised SIGSTOP for Upstart's expect stop");
    }
    result
}

fn supervise(cfg: &Config) -> Result<Exit, Fatal> {
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
    if cfg.stdout_pty && settings.is_some() {
        // isatty(1) will be true: what keeps an app from colouring or paging its output,
        // unless the caller said otherwise. (Set even if the pty then cannot be had: harmless
        // for a pipe.)
        for (k, v) in [("TERM", "dumb"), ("NO_COLOR", "1"), ("PAGER", "cat")] {
            if std::env::var_os(k).is_none() {
                handover.env_set.push((k.into(), v.into()));
            }
        }
    } else if cfg.stdout_pty {
        info!(
            "--stdout-pty: nothing is captured (no log socket found), the app writes to sigshim's stdout"
        );
    }
    // The sockets to hold: bound now, before any signal is blocked (a host name is resolved).
    let listen: Vec<crate::listen::Held> = cfg
        .listen
        .iter()
        .map(crate::listen::bind)
        .collect::<Result<_, _>>()
        .map_err(|message| Fatal {
            code: exit::INTERNAL,
            message,
        })?;
    let inherited = crate::inherit::listen_fds_here();
    let sfd = SignalFd::open()?;
    // Taken before the app runs, so that nothing it does can have used them up.
    let reserve = reserve_fds();
    let (terminal, tty) = terminal(cfg.keep_terminal);
    // No controlling terminal (the service case): the app leads a session of its own, as an
    // init would have started it. With one, it stays in sigshim's session, where job control
    // and the terminal's signals work (see `terminal`).
    let new_session = tty.is_none() && !sys::has_controlling_terminal();
    let announcer = Announcer::new(cfg.delivery.clone(), &cfg.ready);
    // The first generation's pipes come before the destination's socket: with descriptors
    // scarce, the start fails with one message rather than after a warning.
    let first_pipes = match settings {
        Some(_) => Some(new_pipes(cfg.stdout_pty)?),
        None => None,
    };
    let hooks = Hooks::new(cfg, settings.as_ref());
    let output = settings.as_ref().map(|s| Output::new(s, ready_regex));
    let rules = Rules {
        ready_on_spawn: detector.on_spawn(),
        probes: detector.probes(),
        alive_after: detector.alive_after(),
        plan,
        policy: cfg.policy.clone(),
        drain_timeout: cfg.log.drain_timeout,
        ready_timeout: cfg.ready_timeout,
        upstart_expect_stop: cfg.delivery.upstart_expect_stop,
        terminal,
        // An app that speaks sd_notify reports its own reloads (relayed as they come).
        report_reloads: announcer.upstream() && cfg.ready != Mode::Notify,
        restart: cfg.restart_mode,
        start_hooks: hooks.any_start(),
        // The hook's own sigshim kills it at the timeout; a second more lets that end show.
        exit_hook: cfg
            .hooks
            .exit
            .as_ref()
            .map(|_| cfg.hooks.timeout + Duration::from_secs(1)),
    };
    let mut ex = Executor {
        cfg,
        rules,
        gens: Vec::new(),
        cur: machine::FIRST,
        me: sys::pid(),
        capture: settings.is_some(),
        first_pipes,
        output,
        detector,
        announcer,
        handover,
        user,
        awaiting_output: false,
        events: VecDeque::with_capacity(8),
        waiting: VecDeque::with_capacity(8),
        actions: Vec::with_capacity(8),
        exit: None,
        reserve,
        tty,
        new_session,
        hooks,
        listen,
        inherited,
        owners: BTreeMap::new(),
    };
    ex.events.push_back(Event::Start);
    let result = ex.run(&sfd, State::Starting);
    ex.announcer.cleanup();
    // sigshim ends now (`main`): the signalfd and the reserve descriptors close with the
    // process. Closing them here would be three system calls between the app's end and
    // sigshim's, which is when the init is waiting.
    std::mem::forget(std::mem::take(&mut ex.reserve));
    std::mem::forget(sfd);
    result
}

/// Which descriptor a pollfd entry after the signalfd belongs to.
#[derive(Clone, Copy, Debug)]
enum Source {
    Output(Token),
    ReadyFd(usize),
    Relay,
    Console,
}

/// A generation's main child.
#[derive(Clone, Copy, Debug)]
struct GenProc {
    g: Gen,
    pid: i32,
    /// Reaped: its PID, and so its group ID, may be recycled from now on.
    reaped: bool,
    /// `GenGone` was sent for it.
    gone: bool,
}

struct Executor<'a> {
    cfg: &'a Config,
    rules: Rules,
    /// Every generation spawned, in order.
    gens: Vec<GenProc>,
    /// The generation the state machine calls current (whose group gets `Deliver`).
    cur: Gen,
    me: i32,
    /// The app's output is captured (pipes, or a pty for stdout).
    capture: bool,
    /// The first generation's, made at set-up.
    first_pipes: Option<Pipes>,
    output: Option<Output>,
    detector: Detector,
    announcer: Announcer,
    /// What every generation's environment gets (readiness socket, HOME, TERM...).
    handover: crate::notify::ChildSetup,
    user: Option<child::Credentials>,
    /// The machine asked to hear when the output is all delivered.
    awaiting_output: bool,
    /// Facts waiting for the machine, in order.
    events: VecDeque<Event>,
    /// `feed`'s buffers, kept: the facts that waited while an event's actions ran, and the
    /// actions.
    waiting: VecDeque<Event>,
    actions: Vec<Action>,
    exit: Option<Exit>,
    /// Two descriptors kept in reserve for the kill: with a full descriptor table (a leak in
    /// the app's notify messages, a low RLIMIT_NOFILE) the /proc scan would find nothing and
    /// every descendant that left the app's group would survive. They are closed for the scan
    /// (one for /proc or a stat file, one for a pidfd) and taken again after it.
    reserve: Vec<OwnedFd>,
    /// The controlling terminal when its foreground was handed to the app.
    tty: Option<i32>,
    /// The app gets a session of its own (no controlling terminal here).
    new_session: bool,
    hooks: Hooks,
    /// The sockets sigshim holds for every generation (`--listen`), and those systemd
    /// passed (fds 3..), which stay where they are.
    listen: Vec<crate::listen::Held>,
    inherited: Option<std::ops::Range<i32>>,
    /// Which generation each descendant belongs to, by (PID, start time), learnt scan by
    /// scan: by process group, else by parent. Used to wind an old generation down without
    /// touching the new one's processes.
    owners: BTreeMap<(i32, u64), Gen>,
}

/// sigshim's own hooks (`--on-start`, `--on-restart`, `--on-exit`). Each runs under a sigshim
/// of its own (this binary again): `sh -c CMD` with the hook timeout as its kill deadline, its
/// output sent where the app's goes under the identifier TAG-hook, as the `--user` identity
/// unless `--hooks-as-caller`. So a hook is bounded, logged and dropped in privileges by the
/// same code as the app, and it dies with sigshim (the parent-death signal).
struct Hooks {
    exe: std::path::PathBuf,
    /// The options every hook's sigshim gets.
    base: Vec<std::ffi::OsString>,
    cfg: crate::cli::Hooks,
    /// Hooks running, each the leader of its own process group.
    live: Vec<i32>,
    /// The exit hook, which sigshim waits for.
    exit_pid: Option<i32>,
}

impl Hooks {
    fn new(cfg: &Config, settings: Option<&Settings>) -> Hooks {
        let c = &cfg.hooks;
        if c.start.is_none() && c.restart.is_none() && c.exit.is_none() {
            // No hook: nothing to look up or build at start-up.
            return Hooks {
                exe: std::path::PathBuf::new(),
                base: Vec::new(),
                cfg: c.clone(),
                live: Vec::new(),
                exit_pid: None,
            };
        }
        let mut base: Vec<std::ffi::OsString> = Vec::new();
        match settings.map(|s| &s.target) {
            Some(Target::Journald(p)) => {
                base.extend(["--log".into(), "journald".into(), "--journal-socket".into()]);
                base.push(p.clone().into_os_string());
            }
            Some(Target::Syslog(p, format)) => {
                base.extend(["--log".into(), "syslog".into(), "--syslog-socket".into()]);
                base.push(p.clone().into_os_string());
                base.push("--syslog-format".into());
                base.push(match format {
                    crate::output::syslog::Format::Rfc3164 => "rfc3164".into(),
                    crate::output::syslog::Format::Rfc5424 => "rfc5424".into(),
                });
            }
            _ => base.extend(["--log".into(), "inherit".into()]),
        }
        let mut tag = cfg.log.tag.clone();
        tag.extend_from_slice(b"-hook");
        base.push("--tag".into());
        base.push(std::os::unix::ffi::OsStringExt::from_vec(tag));
        if let Some(f) = crate::output::syslog::facility_name(cfg.log.facility) {
            base.extend(["--facility".into(), f.into()]);
        }
        base.push("--kill-after".into());
        base.push(format!("{}ms", cfg.hooks.timeout.as_millis().max(1)).into());
        if let Some(u) = cfg.user.as_deref()
            && !cfg.hooks.as_caller
        {
            base.extend(["--user".into(), u.into()]);
        }
        if cfg.no_new_privs {
            base.push("--no-new-privs".into());
        }
        base.extend([
            "--keep-terminal".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
        ]);
        Hooks {
            exe: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
            base,
            cfg: cfg.hooks.clone(),
            live: Vec::new(),
            exit_pid: None,
        }
    }

    fn any_start(&self) -> bool {
        self.cfg.start.is_some() || self.cfg.restart.is_some()
    }
}

/// The environment a hook hears what happened by: systemd's ExecStopPost= vocabulary where it
/// applies (SERVICE_RESULT, EXIT_CODE, EXIT_STATUS), sigshim's own names for the rest.
fn hook_env(
    hook: machine::Hook,
    pid: i32,
    g: Gen,
    program: &std::ffi::OsStr,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    use machine::{Ending, Hook};
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.into(), v.into()));
    let event = match hook {
        Hook::Start(_) => "start",
        Hook::Restart(_) => "restart",
        Hook::Exit(..) => "exit",
    };
    set("SIGSHIM_EVENT", event.into());
    set("SIGSHIM_GENERATION", g.to_string());
    if pid > 0 {
        set("SIGSHIM_APP_PID", pid.to_string());
    }
    set("SIGSHIM_PROGRAM", program.to_string_lossy().into_owned());
    if let Hook::Exit(ending, exit) = hook {
        let (reason, end) = match ending {
            Ending::Exited(e) => ("exited", Some(e)),
            Ending::Stopped(e) => ("stopped", Some(e)),
            Ending::NotReady(e) => ("not-ready", Some(e)),
            Ending::NotStarted(_) => ("not-started", None),
        };
        set("SIGSHIM_REASON", reason.into());
        let (result, code, status) = match (ending, end) {
            (Ending::NotStarted(c), _) => ("exit-code", "exited", c.to_string()),
            (Ending::NotReady(_), _) => ("timeout", "exited", exit::INTERNAL.to_string()),
            (_, Some(ChildEnd::Exited(0))) => ("success", "exited", "0".into()),
            (_, Some(ChildEnd::Exited(c))) => ("exit-code", "exited", c.to_string()),
            (_, Some(ChildEnd::Killed(s))) => {
                let name = s.to_string();
                let name = name.strip_prefix("SIG").unwrap_or(&name).to_string();
                ("signal", "killed", name)
            }
            (_, None) => ("exit-code", "exited", String::new()),
        };
        set("SERVICE_RESULT", result.into());
        set("EXIT_CODE", code.into());
        set("EXIT_STATUS", status);
        set(
            "SIGSHIM_EXIT",
            match exit {
                Exit::Code(c) => c.to_string(),
                Exit::Signal(s) => s.to_string(),
            },
        );
    }
    env
}

/// A generation's output channels. A pty that cannot be had is said once per run.
fn new_pipes(stdout_pty: bool) -> Result<Pipes, Fatal> {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let (pipes, no_pty) = Pipes::new(stdout_pty).map_err(|e| Fatal {
        code: exit::INTERNAL,
        message: format!("cannot create the output pipes: {}", sys::os_error(&e)),
    })?;
    if let Some(e) = no_pty
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        warn!(
            "cannot open a pseudo-terminal for the app's stdout ({}): it gets a pipe, and may hold its lines back",
            sys::os_error(&e)
        );
    }
    Ok(pipes)
}

/// Two descriptors on /dev/null, or as many as can be had.
fn reserve_fds() -> Vec<OwnedFd> {
    (0..2)
        .filter_map(|_| std::fs::File::open("/dev/null").ok().map(OwnedFd::from))
        .collect()
}

/// Whether to hand the terminal to the app: only when sigshim's own group holds the foreground
/// of its controlling terminal (typed at a shell, `docker run -it`), never when it was started
/// in the background (`sigshim ... &`: the shell keeps the terminal). The terminal is the
/// first of stdin, stdout, stderr that is sigshim's controlling terminal.
///
/// As PID 1 of a PID namespace entered by `unshare --pid --fork`, sigshim's group and the
/// foreground group both lie outside the namespace and read as 0: then it counts as the
/// foreground (a container's init on a terminal; `docker run -it` makes it a session leader
/// whose group is visible anyway).
fn terminal(keep: bool) -> (machine::Terminal, Option<i32>) {
    if keep {
        return (machine::Terminal::Kept, None);
    }
    // SAFETY: getpgrp, getsid, getpid and tcgetpgrp have no memory-safety preconditions.
    unsafe {
        let ours = libc::getpgrp();
        let Some(fd) = (0..3).find(|&fd| libc::tcgetpgrp(fd) >= 0) else {
            return (machine::Terminal::Kept, None);
        };
        let fg = libc::tcgetpgrp(fd);
        if fg != ours || (fg == 0 && libc::getpid() != 1) {
            debug!("started in the background of a terminal: the terminal stays with its shell");
            return (machine::Terminal::Kept, None);
        }
        let me = libc::getpid();
        let job_control = libc::getsid(0) != me && me != 1;
        (machine::Terminal::Handed { job_control }, Some(fd))
    }
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
            let (ready_fds, relay) = self.detector.poll_fds(&mut fds);
            sources.extend(ready_fds.into_iter().map(Source::ReadyFd));
            if relay {
                sources.push(Source::Relay);
            }
            let n = sys::console_pollfds(&mut fds);
            sources.extend(std::iter::repeat_n(Source::Console, n));
            if fds.len() == 1 && due.is_none() {
                // Signals are all there is to wait for (no captured output, no readiness
                // channel, no console backlog) and nothing is due: wait in read(2) on the
                // signalfd itself, so that a signal costs one system call before it is
                // forwarded instead of poll(2) and then read(2), as catatonit does. The wait
                // set is the one poll(2) would get; an idle sigshim still makes no calls.
                self.signalled(sfd, &mut siginfo)?;
                continue;
            }
            sys::poll(
                &mut fds,
                due.map(|(at, _)| at.saturating_duration_since(now)),
            )
            .map_err(|_| internal("poll failed"))?;
            // Output and readiness before signals: a line the app wrote before it ended is
            // read before its end is handled. Readiness pipes that spoke are handled last,
            // highest first, so that removing one keeps the others' indices.
            let mut spoke = Vec::new();
            for (pfd, &source) in fds[1..].iter().zip(&sources) {
                if pfd.revents == 0 {
                    continue;
                }
                match source {
                    Source::Output(token) => {
                        let o = self.output.as_mut().expect("polled output exists");
                        o.ready(token);
                        if let Some(g) = o.take_ready_match() {
                            self.events.push_back(Event::Ready(g));
                        }
                    }
                    Source::ReadyFd(i) => spoke.push(i),
                    Source::Relay => {
                        if let Some(g) = self.detector.on_relay(&self.announcer) {
                            self.events.push_back(Event::Ready(g));
                        }
                    }
                    Source::Console => sys::console_flush(),
                }
            }
            for &i in spoke.iter().rev() {
                if let Some(g) = self.detector.on_fd(i) {
                    self.events.push_back(Event::Ready(g));
                }
            }
            self.check_output();
            if fds[0].revents != 0 {
                self.signalled(sfd, &mut siginfo)?;
            }
        }
    }

    /// One batch from the signalfd: SIGCHLD reaps, the rest go to the machine.
    fn signalled(&mut self, sfd: &SignalFd, siginfo: &mut SigBuf) -> Result<(), Fatal> {
        for &sig in sfd.read(siginfo)? {
            if sig == Signal::CHLD {
                self.reap();
            } else {
                self.events.push_back(Event::Signal(sig));
            }
        }
        Ok(())
    }

    /// One transition. Facts the actions produce (a spawn's result, a probe's) are handled
    /// before anything that was already waiting.
    ///
    /// The action list and the event queue keep their buffers from one event to the next: no
    /// allocation stands between a signal read and its kill(2), nor a free after it.
    fn feed(&mut self, state: State, e: Event) -> State {
        let now = Instant::now();
        let mut actions = std::mem::take(&mut self.actions);
        let next = machine::step_into(state, e, now, &self.rules, &mut actions);
        std::mem::swap(&mut self.events, &mut self.waiting);
        for a in actions.drain(..) {
            self.execute(a);
        }
        self.actions = actions;
        let mut waiting = std::mem::take(&mut self.waiting);
        self.events.extend(waiting.drain(..));
        self.waiting = waiting;
        next
    }

    fn execute(&mut self, a: Action) {
        match a {
            Action::Spawn(g) => self.spawn(g),
            Action::Deliver(sig) => self.deliver_to(self.cur, sig),
            Action::DeliverTo(g, sig) => self.deliver_to(g, sig),
            Action::SuspendSelf => {
                // dumb-init's job control: the app got TSTP; stop ourselves too, so that the
                // shell's `fg` (a SIGCONT to us, forwarded) resumes both.
                // SAFETY: kill on our own PID.
                unsafe { libc::kill(self.me, libc::SIGSTOP) };
            }
            Action::KillTree => self.kill(None),
            Action::KillGen(g) => self.kill(Some(g)),
            Action::GiveTerminal => {
                if let Some(tty) = self.tty
                    && let Some(p) = self.main(self.cur)
                {
                    // SAFETY: tcsetpgrp on our terminal, to our unreaped child's group (TTOU
                    // is blocked, so a background sigshim may).
                    unsafe { libc::tcsetpgrp(tty, p.pid) };
                }
            }
            Action::TakeTerminal => {
                if let Some(tty) = self.tty {
                    // SAFETY: tcsetpgrp on our terminal, to our own group.
                    unsafe { libc::tcsetpgrp(tty, libc::getpgrp()) };
                }
            }
            Action::SignalLeftovers(sig) => self.signal_descendants(None, sig),
            Action::SignalGen(g, sig) => self.signal_descendants(Some(g), sig),
            Action::Probe => self.events.push_back(if self.detector.probe() {
                Event::Ready(self.awaited())
            } else {
                Event::ProbeFailed
            }),
            Action::DeclareReady(g) => {
                self.cur = self.cur.max(g);
                let pid = self.pid_of(g);
                self.announcer.declare(pid);
            }
            Action::TellStopping { step, sent } => self.tell_stopping(step, sent),
            Action::TellReloading(None) => self.announcer.reloading(None, None),
            Action::TellReloading(Some(g)) => {
                // A restart may take the whole stop schedule, the drain and the new
                // generation's readiness: systemd's reload timeout must not end it first.
                let sched = self.rules.plan.schedule();
                let stop: Duration = sched.steps().iter().filter_map(|s| s.wait).sum();
                let covers = stop
                    + self.cfg.log.drain_timeout
                    + self.rules.ready_timeout.unwrap_or_default()
                    + Duration::from_secs(1);
                self.announcer.reloading(
                    Some(&format!("restarting: starting generation {g}")),
                    Some(covers),
                )
            }
            Action::TellReadyAgain => self.announcer.ready_again(),
            Action::TellRestartFailed(g) => self.announcer.restart_failed(&format!(
                "running: pid {} (generation {g} failed to start; the running one serves)",
                self.pid_of(self.cur)
            )),
            Action::CloseOutput(g) => {
                if let Some(o) = self.output.as_mut() {
                    o.close(g);
                }
            }
            Action::AwaitOutput => {
                self.awaiting_output = true;
                self.check_output();
            }
            Action::UnblockUpstart => self.announcer.stop_for_upstart(),
            Action::RunHook(hook) => self.run_hook(hook),
            Action::KillHook => {
                if let Some(pid) = self.hooks.exit_pid {
                    // SAFETY: kill on the process group of our unreaped hook.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
            }
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

    /// The generation whose readiness is awaited: the newest one.
    fn awaited(&self) -> Gen {
        self.gens.last().map_or(self.cur, |p| p.g)
    }

    fn main(&self, g: Gen) -> Option<GenProc> {
        self.gens.iter().copied().find(|p| p.g == g && !p.reaped)
    }

    fn pid_of(&self, g: Gen) -> i32 {
        self.gens.iter().find(|p| p.g == g).map_or(0, |p| p.pid)
    }

    /// Starts generation `g`: fresh pipes (or a pty) for its output, its readiness
    /// descriptor, the environment, fork and exec. Answers `Spawned` or `SpawnFailed`.
    fn spawn(&mut self, g: Gen) {
        match self.try_spawn(g) {
            Ok(pid) => {
                if g == machine::FIRST {
                    info!(
                        "started {} as pid {pid}",
                        self.cfg.command[0].to_string_lossy()
                    );
                } else {
                    info!(
                        "started generation {g} of {} as pid {pid}",
                        self.cfg.command[0].to_string_lossy()
                    );
                }
                self.events.push_back(Event::Spawned(g));
            }
            Err(e) => {
                let line = format!("sigshim: fatal: {}", crate::diag::one_line(&e.message));
                sys::console_line(2, line.as_bytes());
                self.events
                    .push_back(Event::SpawnFailed { g, code: e.code });
            }
        }
    }

    fn try_spawn(&mut self, g: Gen) -> Result<i32, Fatal> {
        let setup_failed = |what: &str, e: std::io::Error| Fatal {
            code: exit::INTERNAL,
            message: format!("{what}: {}", sys::os_error(&e)),
        };
        let pipes = match self.first_pipes.take() {
            Some(p) => Some(p),
            None if self.capture => Some(new_pipes(self.cfg.stdout_pty)?),
            None => None,
        };
        let ready_fd = self
            .detector
            .arm(g)
            .map_err(|e| setup_failed("cannot set up readiness", e))?;
        let (mut extra_fds, listen_env) =
            crate::listen::child_setup(&self.listen, self.inherited.clone(), g, self.me);
        extra_fds.extend(ready_fd.iter().map(|(fd, n)| (fd.as_raw_fd(), *n)));
        let mut env_set = self.handover.env_set.clone();
        env_set.extend(listen_env);
        if self.rules.restart.is_some() {
            env_set.push(("SIGSHIM_GENERATION".into(), g.to_string().into()));
        }
        let mut prepared = child::prepare(&child::Spec {
            command: &self.cfg.command,
            ignore: self.rules.plan.guard(),
            pdeathsig: self.rules.plan.pdeathsig(),
            stdout: pipes.as_ref().map(|p| p.write[0].as_raw_fd()),
            stderr: pipes.as_ref().map(|p| p.write[1].as_raw_fd()),
            env_set: &env_set,
            env_remove: &self.handover.env_remove,
            extra_fds: &extra_fds,
            user: self.user.as_ref(),
            no_new_privs: self.cfg.no_new_privs,
            terminal: self.tty,
            new_session: self.new_session,
        })
        .map_err(|e| Fatal {
            code: e.code,
            message: e.message,
        })?;
        let pid = prepared.spawn().map_err(|e| Fatal {
            code: e.code,
            message: e.message,
        })?;
        // Our copies of the descriptors the child got close here (the pipes' write ends with
        // `Pipes`, the readiness pipe's with `ready_fd`), so EOF comes when the app and
        // whatever inherited them are done.
        drop(ready_fd);
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = self.user.as_ref().map_or_else(
            || unsafe { (libc::getuid(), libc::getgid()) },
            |c| (c.uid, c.gid),
        );
        if let (Some(o), Some(p)) = (self.output.as_mut(), pipes) {
            o.add(g, pid, p);
            // The records name the app as their writer where the kernel allows it.
            o.send_as(g, Some(libc::ucred { pid, uid, gid }));
        }
        self.detector.started(g, pid, uid);
        self.gens.push(GenProc {
            g,
            pid,
            reaped: false,
            gone: false,
        });
        if g == machine::FIRST || self.rules.restart != Some(machine::RestartMode::Overlap) {
            self.cur = g;
        }
        Ok(pid)
    }

    /// Starts a hook (a sigshim of its own in front of `sh -c CMD`) if one is configured.
    fn run_hook(&mut self, hook: machine::Hook) {
        let cmd = match hook {
            machine::Hook::Start(_) => self.hooks.cfg.start.clone(),
            machine::Hook::Restart(_) => self.hooks.cfg.restart.clone(),
            machine::Hook::Exit(..) => self.hooks.cfg.exit.clone(),
        };
        let Some(cmd) = cmd else {
            if matches!(hook, machine::Hook::Exit(..)) {
                self.events.push_back(Event::HookDone);
            }
            return;
        };
        let g = match hook {
            machine::Hook::Start(g) | machine::Hook::Restart(g) => g,
            machine::Hook::Exit(..) => self.cur,
        };
        let mut command = vec![self.hooks.exe.clone().into_os_string()];
        command.extend(self.hooks.base.iter().cloned());
        command.push(cmd);
        let env_set = hook_env(hook, self.pid_of(g), g, &self.cfg.command[0]);
        // What is the app's and not the hook's: its readiness channel and the init's
        // variables, which would make the hook's sigshim talk to the init.
        let env_remove: Vec<std::ffi::OsString> = [
            "NOTIFY_SOCKET",
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            "LISTEN_PIDFDID",
            "WATCHDOG_PID",
            "WATCHDOG_USEC",
            "UPSTART_JOB",
            "UPSTART_INSTANCE",
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        let spawned = child::prepare(&child::Spec {
            command: &command,
            ignore: &[],
            pdeathsig: Signal::KILL,
            stdout: None,
            stderr: None,
            env_set: &env_set,
            env_remove: &env_remove,
            extra_fds: &[],
            user: None,
            no_new_privs: false,
            terminal: None,
            new_session: false,
        })
        .and_then(|mut p| p.spawn());
        match spawned {
            Ok(pid) => {
                debug!("hook {cmd:?} runs as pid {pid}", cmd = self.hooks.exe);
                self.hooks.live.push(pid);
                if matches!(hook, machine::Hook::Exit(..)) {
                    self.hooks.exit_pid = Some(pid);
                }
            }
            Err(e) => {
                warn!("cannot run the hook: {}", e.message);
                if matches!(hook, machine::Hook::Exit(..)) {
                    self.events.push_back(Event::HookDone);
                }
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

    /// Sends to generation `g`'s process group, or its app alone with --single-child. Nothing
    /// once that app is reaped: its PID, and so its group ID, may belong to someone else.
    fn deliver_to(&self, g: Gen, sig: Signal) {
        let Some(p) = self.main(g) else {
            return;
        };
        let target = match self.rules.plan.target() {
            SignalTarget::Group => -p.pid,
            SignalTarget::Child => p.pid,
        };
        // Never 0 or -1 (nmap#3498 killed its own caller with kill(0, ...)): the child's PID is
        // always > 1 because sigshim, its parent, exists.
        debug_assert!(p.pid > 1);
        // SAFETY: kill with the PID of our own unreaped child or its group.
        unsafe { libc::kill(target, sig.0) };
    }

    /// SIGKILL to every descendant (`None`) or to generation `g`'s: first the unreaped apps'
    /// process groups (their group IDs cannot be recycled while they are unreaped), then each
    /// descendant found through /proc that left them.
    fn kill(&mut self, g: Option<Gen>) {
        let groups: Vec<i32> = self
            .gens
            .iter()
            .filter(|p| !p.reaped && g.is_none_or(|g| p.g == g))
            .map(|p| p.pid)
            .collect();
        for &pgid in &groups {
            debug!("SIGKILL to process group {pgid} (generation {g:?})");
            // SAFETY: kill on an unreaped child's process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        self.with_reserve(|ex| {
            for p in ex.tree(g) {
                if !groups.contains(&p.pgid) {
                    debug!("SIGKILL to pid {} (generation {g:?})", p.pid);
                    ex.signal_one(p, Signal::KILL);
                }
            }
        });
        self.check_gone();
    }

    /// `sig` to every descendant (`None`) or to generation `g`'s, one by one.
    fn signal_descendants(&mut self, g: Option<Gen>, sig: Signal) {
        self.with_reserve(|ex| {
            for p in ex.tree(g) {
                ex.signal_one(p, sig);
            }
        });
    }

    /// The descendants of sigshim, all of them or generation `g`'s: a process belongs to the
    /// generation whose app leads its process group, else to its parent's generation, else
    /// to the one it was seen in before. sigshim's own hooks belong to none.
    fn tree(&mut self, g: Option<Gen>) -> Vec<Proc> {
        let all = descendants(self.me);
        let mut owners: BTreeMap<(i32, u64), Gen> = BTreeMap::new();
        for p in &all {
            // The newest generation with that PID: an earlier one's number may have come back
            // (PIDs wrap), and a group ID stays in use while its group has members, so a
            // group whose ID an earlier generation had is the later one's.
            let owner = self
                .gens
                .iter()
                .rev()
                .find(|x| x.pid == p.pgid)
                .map(|x| x.g)
                .or_else(|| {
                    all.iter()
                        .find(|q| q.pid == p.ppid)
                        .and_then(|q| owners.get(&(q.pid, q.start)).copied())
                })
                .or_else(|| self.owners.get(&(p.pid, p.start)).copied());
            if let Some(o) = owner {
                owners.insert((p.pid, p.start), o);
            }
        }
        // A hook's sigshim and everything under it are not the app's.
        let mut hooks: Vec<i32> = self.hooks.live.clone();
        let mut grew = true;
        while grew {
            grew = false;
            for p in &all {
                if hooks.contains(&p.ppid) && !hooks.contains(&p.pid) {
                    hooks.push(p.pid);
                    grew = true;
                }
            }
        }
        let picked = all
            .into_iter()
            .filter(|p| !hooks.contains(&p.pid))
            .filter(|p| match g {
                None => true,
                Some(g) => owners.get(&(p.pid, p.start)) == Some(&g),
            })
            .collect();
        self.owners = owners;
        picked
    }

    /// Runs `f` with the reserve descriptors free.
    fn with_reserve(&mut self, f: impl FnOnce(&mut Self)) {
        self.reserve.clear();
        f(self);
        self.reserve = reserve_fds();
    }

    /// Tells the machine about old generations whose trees are empty now.
    fn check_gone(&mut self) {
        let latest = self.gens.last().map(|p| p.g);
        let retiring: Vec<Gen> = self
            .gens
            .iter()
            .filter(|p| p.reaped && !p.gone && Some(p.g) != latest && p.g != self.cur)
            .map(|p| p.g)
            .collect();
        for g in retiring {
            if self.tree(Some(g)).is_empty() {
                if let Some(p) = self.gens.iter_mut().find(|p| p.g == g) {
                    p.gone = true;
                }
                self.events.push_back(Event::GenGone(g));
            }
        }
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
        // journald takes a record's `_PID` from the credentials it comes with, and a PID can
        // be named only while its process exists: an app that has ended stays a zombie until
        // what it wrote has gone out (bounded: a stuck journald gets what it takes in time,
        // the rest goes as sigshim's).
        if let Some(o) = self.output.as_mut() {
            for p in self.gens.iter().filter(|p| !p.reaped) {
                if !o.speaks_for(p.g) {
                    continue;
                }
                // SAFETY: waitid into a zeroed siginfo; WNOWAIT leaves the child as it is.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                let r = unsafe {
                    libc::waitid(
                        libc::P_PID,
                        p.pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                    )
                };
                // SAFETY: si_pid is set by a successful waitid (0 when nothing has ended).
                if r == 0 && unsafe { info.si_pid() } == p.pid {
                    let bound = LAST_WORDS.min(self.cfg.log.drain_timeout);
                    o.speak_last(Instant::now() + bound);
                }
            }
        }
        let mut ended: Vec<(Gen, ChildEnd)> = Vec::new();
        let remain = loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::WUNTRACED) };
            if r > 0 {
                let main = self.gens.iter().position(|p| p.pid == r && !p.reaped);
                if libc::WIFSTOPPED(status) {
                    if main.is_some_and(|i| self.gens[i].g == self.cur) {
                        let sig = Signal(libc::WSTOPSIG(status));
                        self.events.push_back(Event::AppStopped(sig));
                    }
                    continue;
                }
                match (main, ChildEnd::from_wait_status(status)) {
                    (Some(i), Some(end)) => {
                        self.gens[i].reaped = true;
                        ended.push((self.gens[i].g, end));
                        // Its PID may be another process's from now on.
                        if let Some(o) = self.output.as_mut() {
                            o.send_as(self.gens[i].g, None);
                        }
                    }
                    _ if self.hooks.live.contains(&r) => {
                        self.hooks.live.retain(|&h| h != r);
                        if self.hooks.exit_pid == Some(r) {
                            self.events.push_back(Event::HookDone);
                        }
                        debug!("hook pid {r} ended");
                    }
                    _ => debug!("reaped orphaned descendant {r}"),
                }
                continue;
            }
            if r < 0 && sys::errno() == libc::EINTR {
                continue;
            }
            // 0: children remain, none has ended; ECHILD: no children at all.
            break r == 0;
        };
        // A hook still running is not the app's: it does not hold the app's end up.
        let remain = remain && (self.hooks.live.is_empty() || !self.tree(None).is_empty());
        if !ended.is_empty() {
            // A line an app wrote just before it ended (its ready line, say) is read before
            // its end is handled.
            if let Some(o) = self.output.as_mut() {
                o.take_buffered();
                if let Some(g) = o.take_ready_match() {
                    self.events.push_back(Event::Ready(g));
                }
            }
        }
        let alive = |ex: &Self, g: Gen| ex.gens.iter().any(|p| p.g != g && !p.reaped);
        for (g, end) in ended {
            // With another generation still running, only this one's processes count.
            let others = if alive(self, g) {
                !self.tree(Some(g)).is_empty()
            } else {
                remain
            };
            self.events.push_back(Event::MainEnded { g, end, others });
        }
        if self.gens.iter().any(|p| p.reaped) {
            self.events.push_back(Event::Reaped { remain });
            self.check_gone();
        }
    }

    /// STOPPING=1 and a STATUS line for systemd, with EXTEND_TIMEOUT_USEC covering what is
    /// left of the schedule plus the drain, so the unit's own stop timeout does not cut sigshim
    /// off in the middle of its job.
    fn tell_stopping(&self, step: usize, sent: Option<Signal>) {
        let pid = self.pid_of(self.cur);
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
            (Some(n), Some(w)) => format!("sent {shown} to pid {pid}, {n} in {w:?}"),
            _ => format!("sent {shown} to pid {pid}, waiting for it to exit"),
        };
        let covers = rest + self.cfg.log.drain_timeout + Duration::from_secs(1);
        self.announcer.stopping(&status, Some(covers));
    }

    fn note(&self, n: Note) {
        let pid = self.pid_of(self.cur);
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
            Note::AppStopped(sig) if sig == Signal::STOP => {
                debug!("pid {pid} was stopped by {sig}")
            }
            Note::AppStopped(sig) => match self.rules.terminal {
                machine::Terminal::Handed { job_control: true } => {
                    info!("pid {pid} was stopped by {sig} on the terminal: stopping sigshim too")
                }
                machine::Terminal::Handed { job_control: false } => warn!(
                    "pid {pid} was stopped by {sig} on the terminal, and nothing above sigshim resumes it: send it SIGCONT"
                ),
                machine::Terminal::Kept => warn!(
                    "pid {pid} was stopped by {sig}: it used a terminal whose foreground it does not hold (sigshim runs in the background, or --keep-terminal)"
                ),
            },
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
            Note::Ended(g, end) => {
                let pid = self.pid_of(g);
                match end {
                    ChildEnd::Exited(c) => info!("pid {pid} exited with status {c}"),
                    ChildEnd::Killed(s) => info!("pid {pid} was killed by {s}"),
                }
            }
            Note::Restarting(g) => info!("restarting: generation {g} follows pid {pid}"),
            Note::Coalesced(s) => {
                info!("{s} received: a restart or stop is under way; nothing more to do")
            }
            Note::Deferred(s) => info!(
                "{s} received: restarting once the restart under way is over and the app is ready"
            ),
            Note::PendingDropped => warn!(
                "the restart failed; the restart requested meanwhile is not attempted: send the signal again"
            ),
            Note::RestartFailed(g) => warn!(
                "generation {g} (pid {}) failed before it was ready; pid {pid} keeps serving",
                self.pid_of(g)
            ),
            Note::Replaced { old, new } => info!(
                "generation {new} (pid {}) is ready: stopping generation {old} (pid {})",
                self.pid_of(new),
                self.pid_of(old)
            ),
            Note::HookTimedOut => warn!("the exit hook overran its time: killed"),
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
    /// Our own PID (`sys::pid`, taken once: this is the path every forwarded signal takes).
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
            me: sys::pid() as u32,
        })
    }

    /// Reads one batch of pending signals, waiting for one if none is pending (the descriptor
    /// blocks: `sys::signalfd`). Signals sigshim sent to itself (a SIGPIPE from a
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
