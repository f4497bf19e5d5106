//! The supervisor's whole behaviour as one pure transition function.
//!
//! `step(state, event, now, rules) -> (state, actions)` is s6-supervise's `actions[state][event]`
//! in Rust: every flag and every deadline sigshim keeps lives in [`State`], every fact from the
//! world arrives as an [`Event`], and every effect leaves as an [`Action`] for the executor in
//! `supervise` to perform (spawning, signals, reaping, /proc, output, notifications, hooks).
//! Nothing here reads a clock, a descriptor or the environment, so each transition is
//! unit-tested without a process.
//!
//! The life of one app:
//!
//! ```text
//! Starting --Spawned--> Running --stop request / ready timeout--> Stopping{step, due}
//!    Running/Stopping --MainEnded--> Reaping{kill_at}   (leftovers got their signals)
//!                                  | Killing{rescan_at} (the tree was already SIGKILLed)
//!                                  | Draining{until}    (nothing left but output)
//!    Reaping --kill_at--> Killing --no child left--> Draining --EOF or until--> [Hooking] --> Exited
//! ```
//!
//! Generations (`--restart-on`): each spawn of the app is a generation, numbered from 1.
//! Stop-then-start walks the same states with `then: Respawn` instead of an exit, and spawns
//! the next generation when the last one's tree is gone. Overlap keeps the current generation
//! in `Running` while the next one starts (`Run::next`), and once that one is ready winds the
//! old one down beside it (`Run::old`); at most two generations live at once.
//!
//! Each state carries its own deadlines; [`deadline`] names the earliest and which kind it is,
//! and the executor feeds it back as `Event::Timer(kind)` when it passes.

use crate::exit::{self, ChildEnd, Exit, Policy};
use crate::signals::{Deliver, Plan, Signal};
use State::{Draining, Killing, Stopping};
use std::time::{Duration, Instant};

/// How often tcp and file readiness probes are retried until the app is ready.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);
/// After SIGKILL to the whole tree, how soon to look again for a descendant forked during the
/// /proc scan (it was not in the list, so it got nothing); doubled up to [`RESCAN_MAX`].
pub const RESCAN_FIRST: Duration = Duration::from_millis(20);
pub const RESCAN_MAX: Duration = Duration::from_secs(1);

/// A generation of the app: 1 for the first spawn, one more for each restart.
pub type Gen = u32;

/// What `step` needs to know besides the state: the plan and the rest of the command line.
#[derive(Clone, Debug)]
pub struct Rules {
    pub plan: Plan,
    pub policy: Policy,
    pub drain_timeout: Duration,
    pub ready_timeout: Option<Duration>,
    /// `--ready spawn`: ready as soon as the app runs.
    pub ready_on_spawn: bool,
    /// `--ready tcp:`/`file:`: readiness is polled, not announced by an event.
    pub probes: bool,
    /// `--ready alive:DURATION`: ready if still running this long after the spawn.
    pub alive_after: Option<Duration>,
    /// `--upstart-expect-stop`: Upstart waits for one SIGSTOP before it does anything else.
    pub upstart_expect_stop: bool,
    pub terminal: Terminal,
    /// `--restart-mode`, when `--restart-on` is given.
    pub restart: Option<RestartMode>,
    /// systemd listens and the app does not speak sd_notify itself: sigshim reports the
    /// reloads it delivers (`--reload-on`), as `Type=notify-reload` needs.
    pub report_reloads: bool,
    /// A start or restart hook is configured.
    pub start_hooks: bool,
    /// The exit hook runs before sigshim exits, for at most this long.
    pub exit_hook: Option<Duration>,
}

/// How `--restart-on` restarts the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartMode {
    /// The current generation is stopped by the full schedule and wound down, then the next
    /// one starts.
    StopStart,
    /// The next generation starts beside the current one; once it is ready the current one
    /// is stopped.
    Overlap,
}

/// Whether the app holds the terminal's foreground.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminal {
    /// Not on a terminal, started in the background, or `--keep-terminal`.
    Kept,
    /// The app's group was given the foreground. `job_control`: a shell above can suspend
    /// and resume sigshim (it is neither a session leader nor PID 1, where nothing would).
    Handed { job_control: bool },
}

/// Whether the app's readiness has been told to the init.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// Not yet; a late readiness (the app announced it and ended at once) still counts.
    Pending,
    /// Told.
    Done,
    /// A stop began first: readiness is news to no one any more.
    Forgone,
}

/// Why the stop schedule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The init (or an operator) asked.
    Request,
    /// `--ready-timeout` passed: sigshim stops the app and exits 125.
    ReadyTimeout,
    /// `--restart-on`, stop-then-start: the next generation follows.
    Restart,
}

/// What follows once a generation's tree is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// sigshim exits with this.
    Exit(Exit),
    /// The next generation starts (stop-then-start).
    Respawn,
}

/// Why the app's life ended, for the exit hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It ended by itself.
    Exited(ChildEnd),
    /// A stop request came first; this is how it ended.
    Stopped(ChildEnd),
    /// It did not become ready in time and was stopped.
    NotReady(ChildEnd),
    /// It could not be started (exit code 127, 126 or 125).
    NotStarted(i32),
}

/// What `Running` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The current generation.
    pub g: Gen,
    /// Until the awaited generation (`next` if any, else `g`) is ready: its next readiness
    /// probe and its readiness deadline.
    pub probe_at: Option<Instant>,
    pub timeout_at: Option<Instant>,
    pub ready: Ready,
    /// sigshim has stopped itself along with the app (Ctrl-Z, or TSTP from outside); the
    /// SIGCONT that resumes it resumes the app, with the terminal when it had it.
    pub suspended: bool,
    /// Overlap: the next generation, started and not yet ready.
    pub next: Option<Gen>,
    /// The highest generation spawned so far (a failed one included: numbers are not
    /// reused).
    pub last: Gen,
    /// Overlap: a restart was asked for while one was under way; it begins when that one is
    /// over.
    pub pending: bool,
    /// Overlap: the previous generation, being wound down beside the current one.
    pub old: Option<Old>,
    /// A previous generation's output, still read until this deadline.
    pub old_output: Option<(Gen, Instant)>,
}

/// A generation being wound down while another one serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Old {
    pub g: Gen,
    pub down: Down,
}

/// How an old generation's tree is wound down: its stop schedule, then what it left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    Stopping { step: usize, due: Option<Instant> },
    Reaping { kill_at: Instant },
    Killing { rescan_at: Instant, every: Duration },
}

impl Run {
    fn ready(g: Gen) -> Run {
        Run {
            g,
            probe_at: None,
            timeout_at: None,
            ready: Ready::Done,
            suspended: false,
            next: None,
            last: g,
            pending: false,
            old: None,
            old_output: None,
        }
    }

    /// Whether a restart is under way (a next generation not yet ready, or an old one not
    /// yet gone): another request is coalesced into it.
    fn restarting(&self) -> bool {
        self.next.is_some() || self.old.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The app is about to be spawned.
    Starting,
    /// The app runs; nobody asked it to stop.
    Running(Run),
    /// The stop schedule of generation `g` is at `step`; the next step is due at `due`
    /// (`None`: wait for the app).
    Stopping {
        g: Gen,
        step: usize,
        due: Option<Instant>,
        cause: Cause,
        ready: Ready,
    },
    /// The app has ended. What it left behind got the plan's leftover signals and gets
    /// SIGKILL at `kill_at`; then comes `then`.
    Reaping {
        g: Gen,
        then: Then,
        ending: Ending,
        kill_at: Instant,
        drain_until: Instant,
        ready: Ready,
    },
    /// SIGKILL went to the whole tree; at `rescan_at` the tree is scanned and killed again
    /// (a process forked during the scan got nothing), then every `every` doubled.
    Killing {
        g: Gen,
        then: Then,
        ending: Ending,
        rescan_at: Instant,
        every: Duration,
        drain_until: Instant,
        ready: Ready,
    },
    /// Nothing of the app's tree remains; its output is read until EOF or `until`.
    Draining {
        exit: Exit,
        ending: Ending,
        until: Instant,
        ready: Ready,
    },
    /// The exit hook runs; sigshim exits when it ends or at `until`.
    Hooking { exit: Exit, until: Instant },
    /// Done.
    Exited(Exit),
}

/// The kinds of deadline a state can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    Probe,
    ReadyTimeout,
    Step,
    LeftoverKill,
    Rescan,
    Drain,
    /// The old generation's next step, SIGKILL to its leftovers, or its rescan.
    Old,
    /// The end of an old generation's output drain.
    OldOutput,
    Hook,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Begin: spawn the first generation.
    Start,
    /// Generation `g` was exec'd.
    Spawned(Gen),
    /// Generation `g` could not be started; sigshim's code for it (127, 126, 125).
    SpawnFailed { g: Gen, code: i32 },
    /// A signal from outside (never SIGCHLD: reaping is the executor's, reported below).
    Signal(Signal),
    /// A generation's main child was reaped; `others` says whether processes of that
    /// generation remain (for the current generation: whether sigshim has any child left).
    MainEnded { g: Gen, end: ChildEnd, others: bool },
    /// Other children were reaped; `remain` says whether any child is left.
    Reaped { remain: bool },
    /// Nothing of an old generation's tree remains.
    GenGone(Gen),
    /// Generation `g` is ready by `--ready`.
    Ready(Gen),
    /// A readiness probe ran and found the app not ready yet.
    ProbeFailed,
    /// The current generation's app was stopped by this signal (job control, SIGSTOP).
    AppStopped(Signal),
    /// Every capture pipe is at EOF and every record delivered (after `AwaitOutput`).
    OutputClosed,
    /// The exit hook ended.
    HookDone,
    /// A deadline of the current state passed.
    Timer(Timer),
}

/// A diagnostic: what sigshim did and why, formatted by the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    Forwarded {
        received: Signal,
        sent: Signal,
    },
    /// A reload request delivered and reported to systemd.
    Reload {
        received: Signal,
        sent: Signal,
    },
    Dropped(Signal),
    Suspended,
    AppStopped(Signal),
    StopRequested {
        received: Signal,
        sent: Option<Signal>,
    },
    StopAgain(Signal),
    ScheduleStartsWithKill,
    Step {
        step: usize,
        signal: Signal,
    },
    KillDeadline,
    NotReady,
    Ended(Gen, ChildEnd),
    Leftovers,
    LeftoversKilled,
    /// A stop request after the app ended: finish now.
    Hurry(Signal),
    OutputStillOpen,
    Restarting(Gen),
    /// A restart request while a stop-then-start restart or a stop is under way: the next
    /// generation starts from the program as it is now anyway, or none starts.
    Coalesced(Signal),
    /// A restart request kept for later: an overlap restart is under way, or the app is not
    /// ready (or is suspended); any number of requests make one restart.
    Deferred(Signal),
    /// A restart failed while a request for another was kept: that request is dropped.
    PendingDropped,
    /// The next generation failed before it was ready; the current one keeps serving.
    RestartFailed(Gen),
    /// The next generation is ready; the old one is being stopped.
    Replaced {
        old: Gen,
        new: Gen,
    },
    HookTimedOut,
    Impossible {
        state: &'static str,
        event: Event,
    },
}

/// Which of sigshim's own hooks runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Start(Gen),
    Restart(Gen),
    /// How the app's life ended, and what sigshim exits with.
    Exit(Ending, Exit),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start generation `g`; answer with `Spawned` or `SpawnFailed`.
    Spawn(Gen),
    /// Send to the current generation (its process group, or the app alone with
    /// --single-child).
    Deliver(Signal),
    /// Send to an old generation's app.
    DeliverTo(Gen, Signal),
    /// SIGSTOP sigshim itself (after TSTP went to the app, or the app stopped on the
    /// terminal).
    SuspendSelf,
    /// Give the terminal's foreground to the current generation's group.
    GiveTerminal,
    /// Take the terminal's foreground back to sigshim's group.
    TakeTerminal,
    /// SIGKILL to the app's group and to every descendant, wherever it went.
    KillTree,
    /// SIGKILL to one generation's tree only.
    KillGen(Gen),
    /// Send to every remaining descendant (the app has ended), not through the routes.
    SignalLeftovers(Signal),
    /// The same for one old generation's leftovers only.
    SignalGen(Gen, Signal),
    /// Run the readiness probe now; answer with `Event::Ready` or `Event::ProbeFailed`.
    Probe,
    /// Tell the init generation `g` is ready.
    DeclareReady(Gen),
    /// Tell systemd the stop began (STOPPING=1, STATUS, EXTEND_TIMEOUT_USEC): `sent` at `step`.
    TellStopping {
        step: usize,
        sent: Option<Signal>,
    },
    /// Tell systemd the service is reloading (RELOADING=1 with MONOTONIC_USEC=now): before a
    /// reload signal goes to the app (`None`), or as a restart to generation `g` begins.
    TellReloading(Option<Gen>),
    /// Tell systemd READY=1 again: a reload is done (sigshim delivered the signal, or the app
    /// said READY=1 once more after its own RELOADING=1).
    TellReadyAgain,
    /// Tell systemd a restart failed (READY=1 again, STATUS).
    TellRestartFailed(Gen),
    /// Stop reading a generation's output (what its pipes hold is read first).
    CloseOutput(Gen),
    /// Answer with `Event::OutputClosed` once every capture pipe is at EOF.
    AwaitOutput,
    /// Upstart still waits for the SIGSTOP of `expect stop`: raise it before exiting, or
    /// Upstart never sees the exit and never respawns (observed with Upstart 1.13).
    UnblockUpstart,
    /// Run a hook (the exit hook answers with `HookDone`).
    RunHook(Hook),
    /// The exit hook overran: SIGKILL it.
    KillHook,
    Note(Note),
    /// Flush the output and exit with this.
    Exit(Exit),
}

/// The earliest deadline of `s`, and which kind it is.
pub fn deadline(s: &State) -> Option<(Instant, Timer)> {
    let earliest = |c: &[(Option<Instant>, Timer)]| {
        c.iter()
            .filter_map(|&(t, k)| t.map(|t| (t, k)))
            .min_by_key(|&(t, _)| t)
    };
    match *s {
        State::Running(run) => earliest(&[
            (run.timeout_at, Timer::ReadyTimeout),
            (run.probe_at, Timer::Probe),
            (run.old.and_then(|o| o.down.due()), Timer::Old),
            (run.old_output.map(|(_, t)| t), Timer::OldOutput),
        ]),
        State::Stopping { due, .. } => due.map(|d| (d, Timer::Step)),
        State::Reaping { kill_at, .. } => Some((kill_at, Timer::LeftoverKill)),
        State::Killing { rescan_at, .. } => Some((rescan_at, Timer::Rescan)),
        State::Draining { until, .. } => Some((until, Timer::Drain)),
        State::Hooking { until, .. } => Some((until, Timer::Hook)),
        State::Starting | State::Exited(_) => None,
    }
}

impl Down {
    fn due(&self) -> Option<Instant> {
        match *self {
            Down::Stopping { due, .. } => due,
            Down::Reaping { kill_at } => Some(kill_at),
            Down::Killing { rescan_at, .. } => Some(rescan_at),
        }
    }
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Starting => "Starting",
            State::Running(_) => "Running",
            State::Stopping { .. } => "Stopping",
            State::Reaping { .. } => "Reaping",
            State::Killing { .. } => "Killing",
            State::Draining { .. } => "Draining",
            State::Hooking { .. } => "Hooking",
            State::Exited(_) => "Exited",
        }
    }

    /// The generation this state is about (the current one).
    fn g(&self) -> Option<Gen> {
        match *self {
            State::Running(run) => Some(run.g),
            State::Stopping { g, .. } | State::Reaping { g, .. } | State::Killing { g, .. } => {
                Some(g)
            }
            _ => None,
        }
    }
}

/// The generation the first spawn gets.
pub const FIRST: Gen = 1;

/// The transition function: the whole table.
pub fn step(s: State, e: Event, now: Instant, r: &Rules) -> (State, Vec<Action>) {
    let mut a = Vec::with_capacity(4);
    let next = step_into(s, e, now, r, &mut a);
    (next, a)
}

/// [`step`], appending the actions to `a`: the executor keeps one vector for every event
/// instead of allocating one before each signal it forwards.
pub fn step_into(s: State, e: Event, now: Instant, r: &Rules, a: &mut Vec<Action>) -> State {
    use Action as A;
    use State::*;
    let later = |d: Duration| now.checked_add(d).unwrap_or(now);
    let restart_on = |sig: Signal| r.plan.route(sig).deliver == Deliver::Restart;
    match (s, e) {
        // --- starting a generation ---------------------------------------------------------
        (Starting, Event::Start) => {
            a.push(A::Spawn(FIRST));
            s
        }
        (Starting, Event::Spawned(g)) => {
            if r.start_hooks {
                a.push(A::RunHook(if g == FIRST {
                    Hook::Start(g)
                } else {
                    Hook::Restart(g)
                }));
            }
            // After a stop-then-start restart, the previous generation's output is still
            // read while this one runs.
            let old_output = (g > FIRST).then(|| (g - 1, later(r.drain_timeout)));
            if r.ready_on_spawn {
                a.push(A::DeclareReady(g));
                Running(Run {
                    old_output,
                    ..Run::ready(g)
                })
            } else {
                Running(Run {
                    g,
                    probe_at: first_probe(r, now),
                    timeout_at: r.ready_timeout.map(later),
                    ready: Ready::Pending,
                    suspended: false,
                    next: None,
                    last: g,
                    pending: false,
                    old: None,
                    old_output,
                })
            }
        }
        // Between a stop-then-start restart's end and the next spawn: nothing to do.
        (
            Starting,
            Event::Reaped { .. }
            | Event::GenGone(_)
            | Event::Ready(_)
            | Event::ProbeFailed
            | Event::HookDone
            | Event::MainEnded { .. },
        ) => s,
        (Starting, Event::SpawnFailed { code, .. }) => finish(
            Exit::Code(code),
            Ending::NotStarted(code),
            Ready::Pending,
            now,
            r,
            a,
        ),

        // --- signals while the app runs ------------------------------------------------
        (Running(run), Event::Signal(sig)) if r.plan.route(sig).stop => {
            if run.suspended && r.terminal != Terminal::Kept {
                a.push(A::GiveTerminal);
            }
            let sent = sent_by(r.plan.route(sig).deliver);
            let at = a.len();
            let next = begin_stop(run.g, Cause::Request, sent, run.ready, now, r, a);
            if let Some(n) = run.next {
                // Not serving yet: it goes at once, right after the serving one's stop signal
                // (killing it scans /proc, which the stop signal does not wait for).
                let signalled = a[at..]
                    .iter()
                    .take_while(|x| matches!(x, A::Deliver(_) | A::KillTree))
                    .count();
                a.insert(at + signalled, A::KillGen(n));
            }
            a.push(A::Note(Note::StopRequested {
                received: sig,
                sent,
            }));
            next
        }
        (
            Stopping {
                g,
                step,
                due,
                cause,
                ready,
            },
            Event::Signal(sig),
        ) if r.plan.route(sig).stop => {
            // An operator pressing Ctrl-C twice: deliver again, keep the deadline. During a
            // restart, a stop request stops everything.
            if let Some(sent) = sent_by(r.plan.route(sig).deliver) {
                stop_signal(sent, a);
            }
            let cause = if cause == Cause::Restart {
                a.push(A::TellStopping {
                    step,
                    sent: sent_by(r.plan.route(sig).deliver),
                });
                Cause::Request
            } else {
                cause
            };
            a.push(A::Note(Note::StopAgain(sig)));
            Stopping {
                g,
                step,
                due,
                cause,
                ready,
            }
        }
        // --- restarts ------------------------------------------------------------------------
        (Running(run), Event::Signal(sig)) if restart_on(sig) => {
            if run.restarting() || run.ready != Ready::Done || run.suspended {
                // One more restart once this one is over, the app is ready or it is resumed
                // (a deploy that came in the meantime is not lost); any number of requests
                // make one.
                a.push(A::Note(Note::Deferred(sig)));
                Running(Run {
                    pending: true,
                    ..run
                })
            } else {
                restart(run, now, r, a)
            }
        }
        (
            Stopping { .. } | Reaping { .. } | Killing { .. } | Draining { .. } | Hooking { .. },
            Event::Signal(sig),
        ) if restart_on(sig) => {
            a.push(A::Note(Note::Coalesced(sig)));
            s
        }
        // The next generation of an overlap restart started: it is the awaited one now.
        (Running(run), Event::Spawned(g)) if run.next == Some(g) => {
            if r.start_hooks {
                a.push(A::RunHook(Hook::Restart(g)));
            }
            if r.ready_on_spawn {
                return step_into(Running(run), Event::Ready(g), now, r, a);
            }
            Running(Run {
                probe_at: first_probe(r, now),
                timeout_at: r.ready_timeout.map(later),
                ..run
            })
        }
        (Running(run), Event::SpawnFailed { g, .. }) if run.next == Some(g) => {
            restart_failed(run, g, a)
        }
        // A reload request once the app is ready, where sigshim reports reloads: RELOADING=1,
        // the signal, READY=1 (the app cannot tell sigshim when it is done; this is what
        // `ExecReload=kill -HUP $MAINPID` promises too). Before readiness systemd would take
        // the READY=1 as the end of the start; while stopping or restarting, a reload means
        // nothing.
        (Running(run), Event::Signal(sig))
            if r.report_reloads
                && r.plan.reload_request(sig)
                && run.ready == Ready::Done
                && !run.restarting() =>
        {
            if let Deliver::Send(to) = r.plan.route(sig).deliver {
                a.push(A::TellReloading(None));
                a.push(A::Deliver(to));
                a.push(A::TellReadyAgain);
                a.push(A::Note(Note::Reload {
                    received: sig,
                    sent: to,
                }));
            } else {
                a.push(A::Note(Note::Dropped(sig)));
            }
            s
        }
        // Resumed after a suspension: the app gets the terminal back, then the SIGCONT.
        (Running(run), Event::Signal(Signal::CONT)) if run.suspended => {
            if r.terminal != Terminal::Kept {
                a.push(A::GiveTerminal);
            }
            route(Signal::CONT, r, a);
            deferred(
                Run {
                    suspended: false,
                    ..run
                },
                now,
                r,
                a,
            )
        }
        (Running(run), Event::Signal(sig)) if r.plan.route(sig).deliver == Deliver::Suspend => {
            route(sig, r, a);
            Running(Run {
                suspended: true,
                ..run
            })
        }
        (Running(_) | Stopping { .. }, Event::Signal(sig)) => {
            route(sig, r, a);
            s
        }

        // --- the app stopped (job control) -----------------------------------------------
        // Ctrl-Z on the terminal went to the app's group straight from the kernel: sigshim
        // follows it into the stop, with the terminal, so that the shell above sees its job
        // stopped and `fg` resumes both (a SIGCONT to sigshim, handled above).
        (Running(run), Event::AppStopped(sig))
            if !run.suspended
                && is_job_control(sig)
                && r.terminal == (Terminal::Handed { job_control: true }) =>
        {
            a.push(A::TakeTerminal);
            a.push(A::SuspendSelf);
            a.push(A::Note(Note::AppStopped(sig)));
            Running(Run {
                suspended: true,
                ..run
            })
        }
        (Running(run), Event::AppStopped(sig)) if !run.suspended => {
            a.push(A::Note(Note::AppStopped(sig)));
            s
        }
        (Running(_) | Stopping { .. }, Event::AppStopped(_)) => s,

        // --- readiness -----------------------------------------------------------------
        (Running(run), Event::Ready(g)) if run.next == Some(g) => {
            // Overlap: the new generation serves; the old one is stopped by its schedule.
            a.push(A::DeclareReady(g));
            a.push(A::Note(Note::Replaced { old: run.g, new: g }));
            let down = old_stop(run.g, now, r, a);
            Running(Run {
                g,
                next: None,
                probe_at: None,
                timeout_at: None,
                ready: Ready::Done,
                old: Some(Old { g: run.g, down }),
                ..run
            })
        }
        // The app says READY=1 again (only the notify relay can say it twice): the end of a
        // reload it reported itself (RELOADING=1 went up as it came). systemd must hear it,
        // or a Type=notify-reload unit stays `reloading` until its timeout.
        (Running(run), Event::Ready(g))
            if run.g == g && run.ready == Ready::Done && run.next.is_none() =>
        {
            a.push(A::TellReadyAgain);
            s
        }
        (Running(run), Event::Ready(g)) if run.g == g && run.ready == Ready::Pending => {
            a.push(A::DeclareReady(g));
            deferred(
                Run {
                    probe_at: None,
                    timeout_at: None,
                    ready: Ready::Done,
                    ..run
                },
                now,
                r,
                a,
            )
        }
        // The app announced readiness and ended before sigshim had read the announcement:
        // it was ready all the same (Upstart must see it, or it never moves on).
        (
            Reaping {
                g,
                then: Then::Exit(_),
                ready: Ready::Pending,
                ..
            }
            | Killing {
                g,
                then: Then::Exit(_),
                ready: Ready::Pending,
                ..
            },
            Event::Ready(of),
        ) if of == g => {
            a.push(A::DeclareReady(g));
            with_ready(s, Ready::Done)
        }
        (
            Draining {
                ready: Ready::Pending,
                ..
            },
            Event::Ready(g),
        ) => {
            a.push(A::DeclareReady(g));
            with_ready(s, Ready::Done)
        }
        // Readiness after a stop began, told already, or of a generation that is gone, is
        // news to no one.
        (_, Event::Ready(_)) if s != Starting && !matches!(s, Exited(_)) => s,
        (Running(run), Event::Timer(Timer::Probe)) if run.probe_at.is_some() => {
            if r.alive_after.is_some() {
                // Still running at the end of the grace period: that is all `alive:` asks.
                let g = run.next.unwrap_or(run.g);
                let run = Run {
                    probe_at: None,
                    ..run
                };
                return step_into(Running(run), Event::Ready(g), now, r, a);
            }
            a.push(A::Probe);
            Running(Run {
                probe_at: None,
                ..run
            })
        }
        (Running(run), Event::ProbeFailed) if run.ready == Ready::Pending || run.next.is_some() => {
            Running(Run {
                probe_at: Some(later(PROBE_EVERY)),
                ..run
            })
        }
        (_, Event::ProbeFailed) if s != Starting && !matches!(s, Exited(_)) => s,
        (Running(run), Event::Timer(Timer::ReadyTimeout)) if run.next.is_some() => {
            let n = run.next.unwrap_or(run.g);
            a.push(A::KillGen(n));
            restart_failed(run, n, a)
        }
        (
            Running(
                run @ Run {
                    ready: Ready::Pending,
                    ..
                },
            ),
            Event::Timer(Timer::ReadyTimeout),
        ) => {
            let first = r.plan.schedule().first_signal();
            let next = begin_stop(
                run.g,
                Cause::ReadyTimeout,
                Some(first),
                Ready::Pending,
                now,
                r,
                a,
            );
            // The message after the stop signal: it is written to stderr or the log.
            a.push(A::Note(Note::NotReady));
            next
        }

        // --- the old generation of an overlap restart ----------------------------------
        (Running(run @ Run { old: Some(old), .. }), Event::Timer(Timer::Old)) => {
            let down = match old.down {
                Down::Stopping { step, .. } => match r.plan.schedule().step(step + 1) {
                    None => Down::Stopping { step, due: None },
                    Some(st) if st.signal == Signal::KILL => {
                        a.push(A::KillGen(old.g));
                        Down::Stopping {
                            step: step + 1,
                            due: None,
                        }
                    }
                    Some(st) => {
                        a.push(A::DeliverTo(old.g, st.signal));
                        a.push(A::DeliverTo(old.g, Signal::CONT));
                        Down::Stopping {
                            step: step + 1,
                            due: r.plan.schedule().deadline(step + 1, now),
                        }
                    }
                },
                Down::Reaping { .. } => {
                    a.push(A::KillGen(old.g));
                    Down::Killing {
                        rescan_at: later(RESCAN_FIRST),
                        every: RESCAN_FIRST,
                    }
                }
                Down::Killing { every, .. } => {
                    a.push(A::KillGen(old.g));
                    let every = (every * 2).min(RESCAN_MAX);
                    Down::Killing {
                        rescan_at: later(every),
                        every,
                    }
                }
            };
            Running(Run {
                old: Some(Old { down, ..old }),
                ..run
            })
        }
        (Running(run @ Run { old: Some(old), .. }), Event::MainEnded { g, end, others })
            if g == old.g =>
        {
            a.push(A::Note(Note::Ended(g, end)));
            let killed = matches!(old.down, Down::Stopping { step, .. }
                if r.plan.schedule().step(step).is_some_and(|st| st.signal == Signal::KILL));
            if !others {
                return old_gone(run, old.g, now, r, a);
            }
            let down = if killed {
                a.push(A::KillGen(old.g));
                Down::Killing {
                    rescan_at: later(RESCAN_FIRST),
                    every: RESCAN_FIRST,
                }
            } else {
                for &sig in r.plan.leftover() {
                    a.push(A::SignalGen(old.g, sig));
                }
                Down::Reaping {
                    kill_at: later(r.plan.leftover_grace()),
                }
            };
            Running(Run {
                old: Some(Old { down, ..old }),
                ..run
            })
        }
        (Running(run @ Run { old: Some(old), .. }), Event::GenGone(g))
            if g == old.g && !matches!(old.down, Down::Stopping { .. }) =>
        {
            old_gone(run, g, now, r, a)
        }
        (Running(run), Event::Timer(Timer::OldOutput)) => {
            if let Some((g, _)) = run.old_output {
                a.push(A::CloseOutput(g));
            }
            Running(Run {
                old_output: None,
                ..run
            })
        }
        // The next generation ended before it was ready: it failed; the current one serves.
        (Running(run), Event::MainEnded { g, end, .. }) if run.next == Some(g) => {
            a.push(A::Note(Note::Ended(g, end)));
            a.push(A::KillGen(g));
            restart_failed(run, g, a)
        }

        // --- the stop schedule ---------------------------------------------------------
        (
            Stopping {
                g,
                step,
                cause,
                ready,
                ..
            },
            Event::Timer(Timer::Step),
        ) => {
            let next = step + 1;
            match r.plan.schedule().step(next) {
                None => Stopping {
                    g,
                    step,
                    due: None,
                    cause,
                    ready,
                },
                Some(st) => {
                    if st.signal == Signal::KILL {
                        a.push(A::KillTree);
                        a.push(A::Note(Note::KillDeadline));
                    } else {
                        stop_signal(st.signal, a);
                        a.push(A::Note(Note::Step {
                            step: next,
                            signal: st.signal,
                        }));
                    }
                    if cause != Cause::Restart {
                        a.push(A::TellStopping {
                            step: next,
                            sent: Some(st.signal),
                        });
                    }
                    Stopping {
                        g,
                        step: next,
                        due: r.plan.schedule().deadline(next, now),
                        cause,
                        ready,
                    }
                }
            }
        }

        // --- the app ends --------------------------------------------------------------
        (Running(run), Event::MainEnded { g, end, others }) if g == run.g => {
            if let Some(n) = run.next {
                a.push(A::KillGen(n));
            }
            main_ended(g, end, others, None, false, run.ready, now, r, a)
        }
        (
            Stopping {
                g,
                step,
                cause,
                ready,
                ..
            },
            Event::MainEnded { g: of, end, others },
        ) if of == g => {
            let killed = r
                .plan
                .schedule()
                .step(step)
                .is_some_and(|st| st.signal == Signal::KILL);
            main_ended(g, end, others, Some(cause), killed, ready, now, r, a)
        }
        // A generation that is no longer followed (an old one dropped by a stop, a failed
        // next one) ended.
        (
            Running(_)
            | Stopping { .. }
            | Reaping { .. }
            | Killing { .. }
            | Draining { .. }
            | Hooking { .. },
            Event::MainEnded { g, end, .. },
        ) if Some(g) != s.g() => {
            a.push(A::Note(Note::Ended(g, end)));
            s
        }
        (
            Running(_) | Stopping { .. } | Draining { .. } | Hooking { .. },
            Event::Reaped { .. } | Event::GenGone(_),
        ) => s,
        (
            Reaping {
                g,
                then,
                ending,
                drain_until,
                ready,
                ..
            }
            | Killing {
                g,
                then,
                ending,
                drain_until,
                ready,
                ..
            },
            Event::Reaped { remain: false },
        ) => match then {
            Then::Exit(exit) => draining(exit, ending, drain_until, ready, a),
            Then::Respawn => {
                a.push(A::Spawn(g + 1));
                Starting
            }
        },
        (Reaping { .. } | Killing { .. }, Event::GenGone(_)) => s,
        (Reaping { .. }, Event::Reaped { remain: true }) => s,
        (Killing { .. }, Event::Reaped { remain: true }) => {
            // Something died; its children were re-parented to sigshim a moment ago.
            a.push(A::KillTree);
            s
        }

        // --- leftovers -----------------------------------------------------------------
        (
            Reaping {
                g,
                then,
                ending,
                drain_until,
                ready,
                ..
            },
            Event::Timer(Timer::LeftoverKill),
        ) => {
            a.push(A::KillTree);
            a.push(A::Note(Note::LeftoversKilled));
            killing(g, then, ending, drain_until, ready, now)
        }
        (
            Killing {
                g,
                then,
                ending,
                every,
                drain_until,
                ready,
                ..
            },
            Event::Timer(Timer::Rescan),
        ) => {
            a.push(A::KillTree);
            let every = (every * 2).min(RESCAN_MAX);
            Killing {
                g,
                then,
                ending,
                rescan_at: later(every),
                every,
                drain_until,
                ready,
            }
        }
        // The app is gone: a stop request means "hurry" (and ends a restart).
        (
            Reaping {
                g,
                then,
                ending,
                drain_until,
                ready,
                ..
            },
            Event::Signal(sig),
        ) if r.plan.route(sig).stop => {
            a.push(A::KillTree);
            a.push(A::Note(Note::Hurry(sig)));
            killing(
                g,
                final_then(then, ending, r),
                ending,
                drain_until,
                ready,
                now,
            )
        }
        (
            Killing {
                g,
                then: Then::Respawn,
                ending,
                rescan_at,
                every,
                drain_until,
                ready,
            },
            Event::Signal(sig),
        ) if r.plan.route(sig).stop => {
            a.push(A::Note(Note::Hurry(sig)));
            Killing {
                g,
                then: final_then(Then::Respawn, ending, r),
                ending,
                rescan_at,
                every,
                drain_until,
                ready,
            }
        }
        (
            Draining {
                exit,
                ending,
                ready,
                ..
            },
            Event::Signal(sig),
        ) if r.plan.route(sig).stop => {
            a.push(A::Note(Note::Hurry(sig)));
            finish(exit, ending, ready, now, r, a)
        }
        (Hooking { exit, .. }, Event::Signal(sig)) if r.plan.route(sig).stop => {
            a.push(A::Note(Note::Hurry(sig)));
            a.push(A::KillHook);
            a.push(A::Exit(exit));
            Exited(exit)
        }
        (
            Reaping { .. } | Killing { .. } | Draining { .. } | Hooking { .. },
            Event::Signal(sig),
        ) => {
            a.push(A::Note(Note::Dropped(sig)));
            s
        }

        // --- output and the exit hook ---------------------------------------------------
        (
            Draining {
                exit,
                ending,
                ready,
                ..
            },
            Event::OutputClosed,
        ) => finish(exit, ending, ready, now, r, a),
        (
            Draining {
                exit,
                ending,
                ready,
                ..
            },
            Event::Timer(Timer::Drain),
        ) => {
            a.push(A::Note(Note::OutputStillOpen));
            finish(exit, ending, ready, now, r, a)
        }
        (Hooking { exit, .. }, Event::HookDone) => {
            a.push(A::Exit(exit));
            Exited(exit)
        }
        (Hooking { exit, .. }, Event::Timer(Timer::Hook)) => {
            a.push(A::Note(Note::HookTimedOut));
            a.push(A::KillHook);
            a.push(A::Exit(exit));
            Exited(exit)
        }
        // A start or restart hook ended: nothing waits for it.
        (_, Event::HookDone) if !matches!(s, Exited(_)) => s,

        // Every other pair cannot happen: the executor fires only the timer `deadline` names,
        // spawns once per generation, reaps each main child once, and stops at Exited.
        (s, e) => {
            a.clear();
            a.push(A::Note(Note::Impossible {
                state: s.name(),
                event: e,
            }));
            a.push(A::Exit(Exit::Code(exit::INTERNAL)));
            Exited(Exit::Code(exit::INTERNAL))
        }
    }
}

/// A signal that is not a stop request, by its route.
fn route(sig: Signal, r: &Rules, a: &mut Vec<Action>) {
    match r.plan.route(sig).deliver {
        Deliver::Send(to) => {
            a.push(Action::Deliver(to));
            a.push(Action::Note(Note::Forwarded {
                received: sig,
                sent: to,
            }));
        }
        Deliver::Drop | Deliver::Restart => a.push(Action::Note(Note::Dropped(sig))),
        Deliver::Suspend => {
            a.push(Action::Deliver(Signal::TSTP));
            a.push(Action::SuspendSelf);
            a.push(Action::Note(Note::Suspended));
        }
    }
}

/// The stops a terminal causes: Ctrl-Z, and reading or writing it from the background.
fn is_job_control(sig: Signal) -> bool {
    sig == Signal::TSTP || sig == Signal::TTIN || sig == Signal::TTOU
}

/// What a stop request's route sends (a TSTP-suspend route sends TSTP).
fn sent_by(d: Deliver) -> Option<Signal> {
    match d {
        Deliver::Send(s) => Some(s),
        Deliver::Suspend => Some(Signal::TSTP),
        Deliver::Drop | Deliver::Restart => None,
    }
}

/// A stop signal, then SIGCONT, as systemd does: an app stopped by SIGSTOP, a debugger or a
/// frozen cgroup would otherwise never run its handler and only meet the SIGKILL.
fn stop_signal(sig: Signal, a: &mut Vec<Action>) {
    a.push(Action::Deliver(sig));
    if sig != Signal::CONT {
        a.push(Action::Deliver(Signal::CONT));
    }
}

/// Step 0 of the schedule: `sent` (the stop request's route), or SIGKILL to the whole tree
/// when the schedule starts with it.
fn begin_stop(
    g: Gen,
    cause: Cause,
    sent: Option<Signal>,
    ready: Ready,
    now: Instant,
    r: &Rules,
    a: &mut Vec<Action>,
) -> State {
    let sched = r.plan.schedule();
    let sent = if sched.first_signal() == Signal::KILL {
        a.push(Action::KillTree);
        a.push(Action::Note(Note::ScheduleStartsWithKill));
        Some(Signal::KILL)
    } else {
        if let Some(s) = sent {
            stop_signal(s, a);
        }
        sent
    };
    if cause != Cause::Restart {
        a.push(Action::TellStopping { step: 0, sent });
    }
    Stopping {
        g,
        step: 0,
        due: sched.deadline(0, now),
        cause,
        ready: if ready == Ready::Done {
            Ready::Done
        } else {
            Ready::Forgone
        },
    }
}

/// When a new generation's readiness is first looked at: at once for a polled mode, at the
/// end of the grace period for `alive:`, never for a mode that announces itself.
fn first_probe(r: &Rules, now: Instant) -> Option<Instant> {
    match r.alive_after {
        Some(d) => Some(now.checked_add(d).unwrap_or(now)),
        None => r.probes.then_some(now),
    }
}

/// Step 0 of an old generation's schedule (overlap restart).
fn old_stop(g: Gen, now: Instant, r: &Rules, a: &mut Vec<Action>) -> Down {
    let sched = r.plan.schedule();
    let first = sched.first_signal();
    if first == Signal::KILL {
        a.push(Action::KillGen(g));
    } else {
        a.push(Action::DeliverTo(g, first));
        a.push(Action::DeliverTo(g, Signal::CONT));
    }
    Down::Stopping {
        step: 0,
        due: sched.deadline(0, now),
    }
}

/// Nothing of the old generation is left: its output is read a little longer.
fn old_gone(run: Run, g: Gen, now: Instant, r: &Rules, a: &mut Vec<Action>) -> State {
    if let Some((g, _)) = run.old_output {
        a.push(Action::CloseOutput(g));
    }
    let run = Run {
        old: None,
        old_output: Some((g, now.checked_add(r.drain_timeout).unwrap_or(now))),
        ..run
    };
    deferred(run, now, r, a)
}

/// A restart request kept while the app could not restart (`Note::Deferred`) is carried out
/// once it can: one generation, ready, not suspended.
fn deferred(run: Run, now: Instant, r: &Rules, a: &mut Vec<Action>) -> State {
    if run.pending && !run.restarting() && run.ready == Ready::Done && !run.suspended {
        return restart(
            Run {
                pending: false,
                ..run
            },
            now,
            r,
            a,
        );
    }
    State::Running(run)
}

/// A restart begins (`--restart-on`): the next generation beside this one (overlap), or this
/// one stopped first (stop-then-start).
fn restart(run: Run, now: Instant, r: &Rules, a: &mut Vec<Action>) -> State {
    let new = run.last + 1;
    a.push(Action::Note(Note::Restarting(new)));
    a.push(Action::TellReloading(Some(new)));
    match r.restart {
        Some(RestartMode::Overlap) => {
            a.push(Action::Spawn(new));
            State::Running(Run {
                next: Some(new),
                last: new,
                probe_at: None,
                timeout_at: None,
                ..run
            })
        }
        _ => begin_stop(
            run.g,
            Cause::Restart,
            Some(r.plan.schedule().first_signal()),
            run.ready,
            now,
            r,
            a,
        ),
    }
}

/// The next generation of an overlap restart failed before it was ready: the current one
/// keeps serving, and systemd hears the reload is over.
fn restart_failed(run: Run, g: Gen, a: &mut Vec<Action>) -> State {
    a.push(Action::Note(Note::RestartFailed(g)));
    a.push(Action::TellRestartFailed(g));
    // A request kept during the failed attempt is not retried behind the operator's back:
    // the failed generation may still be dying, and a retry loop is the init's to decide.
    if run.pending {
        a.push(Action::Note(Note::PendingDropped));
    }
    State::Running(Run {
        next: None,
        probe_at: None,
        timeout_at: None,
        pending: false,
        ..run
    })
}

/// A stop request during a stop-then-start restart: the restart becomes the final stop.
fn final_then(then: Then, ending: Ending, r: &Rules) -> Then {
    match (then, ending) {
        (Then::Respawn, Ending::Stopped(end) | Ending::Exited(end) | Ending::NotReady(end)) => {
            Then::Exit(r.policy.exit_for(end))
        }
        (Then::Respawn, Ending::NotStarted(code)) => Then::Exit(Exit::Code(code)),
        (t, _) => t,
    }
}

#[allow(clippy::too_many_arguments)]
fn main_ended(
    g: Gen,
    end: ChildEnd,
    others: bool,
    cause: Option<Cause>,
    killed: bool,
    ready: Ready,
    now: Instant,
    r: &Rules,
    a: &mut Vec<Action>,
) -> State {
    a.push(Action::Note(Note::Ended(g, end)));
    if r.terminal != Terminal::Kept {
        // sigshim goes on after the app (leftovers, the drain, the next generation): a
        // Ctrl-C typed now is a request to sigshim.
        a.push(Action::TakeTerminal);
    }
    let (then, ending) = match cause {
        Some(Cause::ReadyTimeout) => (
            Then::Exit(Exit::Code(exit::INTERNAL)),
            Ending::NotReady(end),
        ),
        Some(Cause::Restart) => (Then::Respawn, Ending::Stopped(end)),
        Some(Cause::Request) => (Then::Exit(r.policy.exit_for(end)), Ending::Stopped(end)),
        None => (Then::Exit(r.policy.exit_for(end)), Ending::Exited(end)),
    };
    let drain_until = now.checked_add(r.drain_timeout).unwrap_or(now);
    if !others {
        return match then {
            Then::Exit(exit) => draining(exit, ending, drain_until, ready, a),
            Then::Respawn => {
                a.push(Action::Spawn(g + 1));
                State::Starting
            }
        };
    }
    if killed {
        // The tree got SIGKILL at the deadline; kill again what appeared since.
        a.push(Action::KillTree);
        return killing(g, then, ending, drain_until, ready, now);
    }
    // A service's helpers must not outlive it: the init believes the service is gone.
    for &s in r.plan.leftover() {
        a.push(Action::SignalLeftovers(s));
    }
    a.push(Action::Note(Note::Leftovers));
    State::Reaping {
        g,
        then,
        ending,
        kill_at: now.checked_add(r.plan.leftover_grace()).unwrap_or(now),
        drain_until,
        ready,
    }
}

fn killing(
    g: Gen,
    then: Then,
    ending: Ending,
    drain_until: Instant,
    ready: Ready,
    now: Instant,
) -> State {
    Killing {
        g,
        then,
        ending,
        rescan_at: now + RESCAN_FIRST,
        every: RESCAN_FIRST,
        drain_until,
        ready,
    }
}

fn draining(
    exit: Exit,
    ending: Ending,
    until: Instant,
    ready: Ready,
    a: &mut Vec<Action>,
) -> State {
    a.push(Action::AwaitOutput);
    Draining {
        exit,
        ending,
        until,
        ready,
    }
}

fn finish(
    exit: Exit,
    ending: Ending,
    ready: Ready,
    now: Instant,
    r: &Rules,
    a: &mut Vec<Action>,
) -> State {
    if r.upstart_expect_stop && ready != Ready::Done {
        a.push(Action::UnblockUpstart);
    }
    if let Some(bound) = r.exit_hook {
        a.push(Action::RunHook(Hook::Exit(ending, exit)));
        return State::Hooking {
            exit,
            until: now.checked_add(bound).unwrap_or(now),
        };
    }
    a.push(Action::Exit(exit));
    State::Exited(exit)
}

fn with_ready(s: State, ready: Ready) -> State {
    match s {
        State::Reaping {
            g,
            then,
            ending,
            kill_at,
            drain_until,
            ..
        } => State::Reaping {
            g,
            then,
            ending,
            kill_at,
            drain_until,
            ready,
        },
        Killing {
            g,
            then,
            ending,
            rescan_at,
            every,
            drain_until,
            ..
        } => Killing {
            g,
            then,
            ending,
            rescan_at,
            every,
            drain_until,
            ready,
        },
        Draining {
            exit,
            ending,
            until,
            ..
        } => Draining {
            exit,
            ending,
            until,
            ready,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Schedule;
    use crate::signals::{Options, Target, parse_rewrite};

    const USR1: Signal = Signal(libc::SIGUSR1);
    const USR2: Signal = Signal(libc::SIGUSR2);
    const MS: fn(u64) -> Duration = Duration::from_millis;
    const ENDED: Ending = Ending::Exited(ChildEnd::Exited(0));

    fn opts() -> Options {
        Options {
            stop_on: vec![Signal::TERM, Signal::INT],
            reload_on: vec![Signal::HUP],
            stop_signal: Some(Signal::INT),
            stop_schedule: None,
            kill_after: Some(MS(300)),
            rewrites: vec![parse_rewrite("HUP:USR2").unwrap()],
            pdeathsig: Signal::KILL,
            leftover_grace: Some(MS(200)),
            guard: true,
            target: Target::Group,
            restart_on: None,
        }
    }

    fn rules_with(f: impl FnOnce(&mut Options, &mut Rules)) -> Rules {
        let mut o = opts();
        let mut r = Rules {
            plan: Plan::new(&opts(), None).unwrap(),
            policy: Policy::default(),
            drain_timeout: MS(2000),
            ready_timeout: None,
            ready_on_spawn: true,
            alive_after: None,
            probes: false,
            upstart_expect_stop: false,
            terminal: Terminal::Kept,
            report_reloads: false,
            restart: None,
            start_hooks: false,
            exit_hook: None,
        };
        f(&mut o, &mut r);
        r.plan = Plan::new(&o, None).unwrap();
        r
    }

    fn rules() -> Rules {
        rules_with(|_, _| {})
    }

    /// Runs events from Starting, returning the last state and all actions.
    fn run(r: &Rules, t0: Instant, events: &[(u64, Event)]) -> (State, Vec<Action>) {
        run_from(State::Starting, r, t0, events)
    }

    fn run_from(s: State, r: &Rules, t0: Instant, events: &[(u64, Event)]) -> (State, Vec<Action>) {
        let mut s = s;
        let mut all = Vec::new();
        for &(ms, e) in events {
            let (n, a) = step(s, e, t0 + MS(ms), r);
            s = n;
            all.extend(a);
        }
        (s, all)
    }

    fn notes_removed(a: &[Action]) -> Vec<Action> {
        a.iter()
            .copied()
            .filter(|a| !matches!(a, Action::Note(_)))
            .collect()
    }

    fn running() -> State {
        State::Running(Run::ready(FIRST))
    }

    #[test]
    fn spawned_with_ready_on_spawn_declares_at_once() {
        let r = rules();
        let t0 = Instant::now();
        let (s, a) = step(State::Starting, Event::Spawned(FIRST), t0, &r);
        assert_eq!(s, running());
        assert_eq!(a, [Action::DeclareReady(FIRST)]);
    }

    #[test]
    fn spawned_with_probes_and_a_timeout_arms_both() {
        let r = rules_with(|_, r| {
            r.ready_on_spawn = false;
            r.probes = true;
            r.ready_timeout = Some(MS(500));
        });
        let t0 = Instant::now();
        let (s, a) = step(State::Starting, Event::Spawned(FIRST), t0, &r);
        assert_eq!(
            s,
            State::Running(Run {
                g: FIRST,
                probe_at: Some(t0),
                timeout_at: Some(t0 + MS(500)),
                ready: Ready::Pending,
                suspended: false,
                next: None,
                last: FIRST,
                pending: false,
                old: None,
                old_output: None,
            })
        );
        assert!(a.is_empty());
        assert_eq!(deadline(&s), Some((t0, Timer::Probe)));
        // The probe runs, fails, and is due again 100 ms later.
        let (s, a) = step(s, Event::Timer(Timer::Probe), t0, &r);
        assert_eq!(a, [Action::Probe]);
        assert_eq!(deadline(&s), Some((t0 + MS(500), Timer::ReadyTimeout)));
        let (s, a) = step(s, Event::ProbeFailed, t0, &r);
        assert!(a.is_empty());
        assert_eq!(deadline(&s), Some((t0 + PROBE_EVERY, Timer::Probe)));
        // Then it succeeds: ready, and no timer is left (an idle sigshim makes no calls).
        let (s, a) = step(s, Event::Ready(FIRST), t0 + MS(150), &r);
        assert_eq!(a, [Action::DeclareReady(FIRST)]);
        assert_eq!(deadline(&s), None);
        // A second readiness (only the notify relay says READY=1 twice: the end of a reload
        // the app reported) goes up as READY=1 again, and changes nothing else.
        let (s2, a) = step(s, Event::Ready(FIRST), t0 + MS(160), &r);
        assert_eq!((s2, a), (s, vec![Action::TellReadyAgain]));
    }

    #[test]
    fn reload_requests_are_reported_where_sigshim_reports_them() {
        let r = rules_with(|_, r| r.report_reloads = true);
        let t0 = Instant::now();
        // Ready: RELOADING=1, the route's signal (HUP:USR2), READY=1, in that order.
        let (s, a) = step(running(), Event::Signal(Signal::HUP), t0, &r);
        assert_eq!(s, running());
        assert_eq!(
            notes_removed(&a),
            [
                Action::TellReloading(None),
                Action::Deliver(USR2),
                Action::TellReadyAgain
            ]
        );
        // Not ready yet: systemd would read that READY=1 as the end of the start.
        let pending = State::Running(Run {
            ready: Ready::Pending,
            ..Run::ready(FIRST)
        });
        let (_, a) = step(pending, Event::Signal(Signal::HUP), t0, &r);
        assert_eq!(notes_removed(&a), [Action::Deliver(USR2)]);
        // Stopping: forwarded, not reported.
        let stopping = step(running(), Event::Signal(Signal::TERM), t0, &r).0;
        let (_, a) = step(stopping, Event::Signal(Signal::HUP), t0, &r);
        assert_eq!(notes_removed(&a), [Action::Deliver(USR2)]);
        // Rewritten to nothing: nothing is delivered, so no reload is reported either.
        let r2 = rules_with(|o, r| {
            r.report_reloads = true;
            o.rewrites = vec![parse_rewrite("HUP:ignore").unwrap()];
        });
        let (_, a) = step(running(), Event::Signal(Signal::HUP), t0, &r2);
        assert_eq!(a, [Action::Note(Note::Dropped(Signal::HUP))]);
        // Where sigshim does not report reloads (no systemd, or the app speaks notify): the
        // signal is forwarded like any other.
        let (_, a) = step(running(), Event::Signal(Signal::HUP), t0, &rules());
        assert_eq!(notes_removed(&a), [Action::Deliver(USR2)]);
    }

    #[test]
    fn ready_timeout_stops_the_app_and_exits_125() {
        let r = rules_with(|_, r| {
            r.ready_on_spawn = false;
            r.ready_timeout = Some(MS(100));
        });
        let t0 = Instant::now();
        let (s, a) = run(
            &r,
            t0,
            &[
                (0, Event::Spawned(FIRST)),
                (100, Event::Timer(Timer::ReadyTimeout)),
            ],
        );
        assert_eq!(
            notes_removed(&a),
            [
                Action::Deliver(Signal::INT),
                Action::Deliver(Signal::CONT),
                Action::TellStopping {
                    step: 0,
                    sent: Some(Signal::INT)
                }
            ]
        );
        assert!(a.contains(&Action::Note(Note::NotReady)));
        assert!(matches!(
            s,
            State::Stopping {
                cause: Cause::ReadyTimeout,
                ready: Ready::Forgone,
                ..
            }
        ));
        let (s, _) = step(
            s,
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(0),
                others: false,
            },
            t0 + MS(150),
            &r,
        );
        let (s, a) = step(s, Event::OutputClosed, t0 + MS(160), &r);
        assert_eq!(s, State::Exited(Exit::Code(125)));
        assert_eq!(a, [Action::Exit(Exit::Code(125))]);
    }

    #[test]
    fn a_stop_request_translates_continues_and_starts_the_deadline() {
        let r = rules();
        let t0 = Instant::now();
        let (s, a) = step(running(), Event::Signal(Signal::TERM), t0, &r);
        assert_eq!(
            a,
            [
                Action::Deliver(Signal::INT),
                Action::Deliver(Signal::CONT),
                Action::TellStopping {
                    step: 0,
                    sent: Some(Signal::INT)
                },
                Action::Note(Note::StopRequested {
                    received: Signal::TERM,
                    sent: Some(Signal::INT)
                }),
            ]
        );
        assert_eq!(deadline(&s), Some((t0 + MS(300), Timer::Step)));
        // Ctrl-C twice: delivered again, the deadline stays.
        let (s2, a) = step(s, Event::Signal(Signal::INT), t0 + MS(100), &r);
        assert_eq!(
            notes_removed(&a),
            [Action::Deliver(Signal::INT), Action::Deliver(Signal::CONT)]
        );
        assert_eq!(deadline(&s2), Some((t0 + MS(300), Timer::Step)));
        // The deadline: SIGKILL to the whole tree, nothing more due.
        let (s3, a) = step(s2, Event::Timer(Timer::Step), t0 + MS(300), &r);
        assert_eq!(
            notes_removed(&a),
            [
                Action::KillTree,
                Action::TellStopping {
                    step: 1,
                    sent: Some(Signal::KILL)
                }
            ]
        );
        assert_eq!(deadline(&s3), None);
        // The app dies of it with a descendant left: killed again, then rescanned.
        let (s4, a) = step(
            s3,
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Killed(Signal::KILL),
                others: true,
            },
            t0 + MS(301),
            &r,
        );
        assert_eq!(notes_removed(&a), [Action::KillTree]);
        assert_eq!(
            deadline(&s4),
            Some((t0 + MS(301) + RESCAN_FIRST, Timer::Rescan))
        );
        let (s5, a) = step(s4, Event::Timer(Timer::Rescan), t0 + MS(330), &r);
        assert_eq!(a, [Action::KillTree]);
        assert_eq!(
            deadline(&s5),
            Some((t0 + MS(330) + RESCAN_FIRST * 2, Timer::Rescan))
        );
        let (s6, a) = step(s5, Event::Reaped { remain: false }, t0 + MS(340), &r);
        assert_eq!(a, [Action::AwaitOutput]);
        let (s7, a) = step(s6, Event::OutputClosed, t0 + MS(350), &r);
        assert_eq!(s7, State::Exited(Exit::Signal(Signal::KILL)));
        assert_eq!(a, [Action::Exit(Exit::Signal(Signal::KILL))]);
    }

    #[test]
    fn rescans_back_off_to_a_second() {
        let r = rules();
        let t0 = Instant::now();
        let mut s = killing(FIRST, Then::Exit(Exit::Code(0)), ENDED, t0, Ready::Done, t0);
        for _ in 0..20 {
            let (at, kind) = deadline(&s).unwrap();
            assert_eq!(kind, Timer::Rescan);
            s = step(s, Event::Timer(kind), at, &r).0;
        }
        let State::Killing { every, .. } = s else {
            panic!("{s:?}")
        };
        assert_eq!(every, RESCAN_MAX);
    }

    #[test]
    fn a_multi_step_schedule_walks_its_steps() {
        let r = rules_with(|o, _| {
            o.stop_signal = None;
            o.kill_after = None;
            o.stop_schedule = Some(Schedule::parse("INT/20s/TERM/5s/KILL").unwrap());
        });
        let t0 = Instant::now();
        let (s, _) = step(running(), Event::Signal(Signal::TERM), t0, &r);
        let (s, a) = step(s, Event::Timer(Timer::Step), t0 + MS(20_000), &r);
        assert_eq!(
            notes_removed(&a),
            [
                Action::Deliver(Signal::TERM),
                Action::Deliver(Signal::CONT),
                Action::TellStopping {
                    step: 1,
                    sent: Some(Signal::TERM)
                }
            ]
        );
        assert_eq!(deadline(&s), Some((t0 + MS(25_000), Timer::Step)));
    }

    #[test]
    fn a_schedule_without_deadline_waits() {
        let r = rules_with(|o, _| o.kill_after = None);
        let (s, _) = step(running(), Event::Signal(Signal::TERM), Instant::now(), &r);
        assert_eq!(deadline(&s), None);
    }

    #[test]
    fn a_schedule_starting_with_kill_kills_the_tree() {
        let r = rules_with(|o, _| {
            o.stop_schedule = Some(Schedule::parse("KILL").unwrap());
            o.stop_signal = None;
            o.kill_after = None;
        });
        let (s, a) = step(running(), Event::Signal(Signal::TERM), Instant::now(), &r);
        assert_eq!(a[0], Action::KillTree);
        assert!(a.contains(&Action::Note(Note::ScheduleStartsWithKill)));
        assert!(matches!(
            s,
            State::Stopping {
                step: 0,
                due: None,
                ..
            }
        ));
    }

    #[test]
    fn other_signals_follow_their_routes() {
        let r = rules_with(|o, _| o.rewrites.push(parse_rewrite("USR1:ignore").unwrap()));
        let (s, a) = step(running(), Event::Signal(Signal::HUP), Instant::now(), &r);
        assert_eq!(s, running());
        assert_eq!(a[0], Action::Deliver(USR2));
        let (_, a) = step(running(), Event::Signal(USR1), Instant::now(), &r);
        assert_eq!(a, [Action::Note(Note::Dropped(USR1))]);
        let (_, a) = step(running(), Event::Signal(Signal(33)), Instant::now(), &r);
        assert_eq!(a[0], Action::Deliver(Signal(33)));
        let (_, a) = step(running(), Event::Signal(Signal::TSTP), Instant::now(), &r);
        assert_eq!(
            notes_removed(&a),
            [Action::Deliver(Signal::TSTP), Action::SuspendSelf]
        );
        let (_, a) = step(running(), Event::Signal(Signal::TTIN), Instant::now(), &r);
        assert_eq!(a, [Action::Note(Note::Dropped(Signal::TTIN))]);
    }

    #[test]
    fn tstp_rewritten_away_does_not_suspend() {
        let r = rules_with(|o, _| o.rewrites.push(parse_rewrite("TSTP:ignore").unwrap()));
        let (_, a) = step(running(), Event::Signal(Signal::TSTP), Instant::now(), &r);
        assert_eq!(a, [Action::Note(Note::Dropped(Signal::TSTP))]);
    }

    #[test]
    fn the_app_exits_alone_and_its_output_is_drained() {
        let r = rules();
        let t0 = Instant::now();
        let (s, a) = step(
            running(),
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(3),
                others: false,
            },
            t0,
            &r,
        );
        assert_eq!(notes_removed(&a), [Action::AwaitOutput]);
        assert_eq!(deadline(&s), Some((t0 + MS(2000), Timer::Drain)));
        // The output stays open (a process out of reach holds it): exit at the drain deadline.
        let (s, a) = step(s, Event::Timer(Timer::Drain), t0 + MS(2000), &r);
        assert_eq!(s, State::Exited(Exit::Code(3)));
        assert_eq!(
            a,
            [
                Action::Note(Note::OutputStillOpen),
                Action::Exit(Exit::Code(3))
            ]
        );
    }

    #[test]
    fn leftovers_get_the_plan_then_sigkill() {
        let r = rules();
        let t0 = Instant::now();
        let (s, a) = step(
            running(),
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(0),
                others: true,
            },
            t0,
            &r,
        );
        // --stop-signal INT guards TERM, so leftovers get INT alone.
        assert_eq!(notes_removed(&a), [Action::SignalLeftovers(Signal::INT)]);
        assert_eq!(deadline(&s), Some((t0 + MS(200), Timer::LeftoverKill)));
        // An orphan reaped while others remain: nothing to do.
        let (s2, a) = step(s, Event::Reaped { remain: true }, t0 + MS(10), &r);
        assert_eq!((s2, a), (s, vec![]));
        let (s3, a) = step(s, Event::Timer(Timer::LeftoverKill), t0 + MS(200), &r);
        assert_eq!(notes_removed(&a), [Action::KillTree]);
        // A re-parented survivor: killed again at once.
        let (s4, a) = step(s3, Event::Reaped { remain: true }, t0 + MS(201), &r);
        assert_eq!(a, [Action::KillTree]);
        assert_eq!(s4, s3);
        // The drain deadline (2 s from the app's end) is kept through the kill.
        let (s5, _) = step(s4, Event::Reaped { remain: false }, t0 + MS(210), &r);
        assert_eq!(deadline(&s5), Some((t0 + MS(2000), Timer::Drain)));
    }

    #[test]
    fn leftovers_that_go_quietly_end_the_reaping() {
        let r = rules();
        let t0 = Instant::now();
        let (s, _) = step(
            running(),
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(0),
                others: true,
            },
            t0,
            &r,
        );
        let (s, a) = step(s, Event::Reaped { remain: false }, t0 + MS(5), &r);
        assert_eq!(a, [Action::AwaitOutput]);
        assert!(matches!(s, State::Draining { .. }));
    }

    #[test]
    fn a_stop_request_after_the_app_ended_hurries() {
        let r = rules();
        let t0 = Instant::now();
        let reaping = step(
            running(),
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(0),
                others: true,
            },
            t0,
            &r,
        )
        .0;
        let (s, a) = step(reaping, Event::Signal(Signal::TERM), t0 + MS(1), &r);
        assert_eq!(notes_removed(&a), [Action::KillTree]);
        assert!(matches!(s, State::Killing { .. }));
        // In Killing, another stop request adds nothing; other signals are dropped.
        let (s2, a) = step(s, Event::Signal(Signal::HUP), t0 + MS(2), &r);
        assert_eq!((s2, a), (s, vec![Action::Note(Note::Dropped(Signal::HUP))]));
        let draining = draining(
            Exit::Code(0),
            ENDED,
            t0 + MS(2000),
            Ready::Done,
            &mut Vec::new(),
        );
        let (s, a) = step(draining, Event::Signal(Signal::INT), t0 + MS(3), &r);
        assert_eq!(s, State::Exited(Exit::Code(0)));
        assert_eq!(notes_removed(&a), [Action::Exit(Exit::Code(0))]);
    }

    #[test]
    fn exit_policy_applies_when_the_app_ends() {
        let r = rules_with(|_, r| r.policy.success = vec![143]);
        let (s, _) = step(
            running(),
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(143),
                others: false,
            },
            Instant::now(),
            &r,
        );
        assert!(matches!(
            s,
            State::Draining {
                exit: Exit::Code(0),
                ..
            }
        ));
    }

    /// Readiness announced just before the app ended, read after its end was handled (the
    /// race the real Upstart showed: 19 of 24 runs lost readiness).
    #[test]
    fn late_readiness_still_counts() {
        let r = rules_with(|_, r| {
            r.ready_on_spawn = false;
            r.upstart_expect_stop = true;
        });
        let t0 = Instant::now();
        let (s, _) = run(
            &r,
            t0,
            &[
                (0, Event::Spawned(FIRST)),
                (
                    1,
                    Event::MainEnded {
                        g: FIRST,
                        end: ChildEnd::Exited(1),
                        others: false,
                    },
                ),
            ],
        );
        let (s, a) = step(s, Event::Ready(FIRST), t0 + MS(2), &r);
        assert_eq!(a, [Action::DeclareReady(FIRST)]);
        let (_, a) = step(s, Event::OutputClosed, t0 + MS(3), &r);
        // Told once: no second SIGSTOP for Upstart.
        assert_eq!(a, [Action::Exit(Exit::Code(1))]);
    }

    /// Upstart's `expect stop` waits for a SIGSTOP before anything else: an app that ends
    /// before it is ready must still give Upstart its SIGSTOP, or the job hangs with no
    /// process and is never respawned.
    #[test]
    fn upstart_gets_its_sigstop_before_an_early_exit() {
        let r = rules_with(|_, r| {
            r.ready_on_spawn = false;
            r.upstart_expect_stop = true;
        });
        let t0 = Instant::now();
        let (_, a) = run(
            &r,
            t0,
            &[
                (0, Event::Spawned(FIRST)),
                (
                    1,
                    Event::MainEnded {
                        g: FIRST,
                        end: ChildEnd::Exited(1),
                        others: false,
                    },
                ),
                (2, Event::OutputClosed),
            ],
        );
        assert_eq!(
            notes_removed(&a),
            [
                Action::AwaitOutput,
                Action::UnblockUpstart,
                Action::Exit(Exit::Code(1))
            ]
        );
        // A stop before readiness (the ready timeout) forgoes readiness but not the SIGSTOP.
        let r2 = rules_with(|_, r| {
            r.ready_on_spawn = false;
            r.upstart_expect_stop = true;
            r.ready_timeout = Some(MS(10));
        });
        let (s, _) = run(
            &r2,
            t0,
            &[
                (0, Event::Spawned(FIRST)),
                (10, Event::Timer(Timer::ReadyTimeout)),
            ],
        );
        let (s, a) = step(s, Event::Ready(FIRST), t0 + MS(11), &r2);
        assert!(a.is_empty(), "readiness after the stop began: {a:?}");
        let (s, _) = step(
            s,
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(0),
                others: false,
            },
            t0 + MS(12),
            &r2,
        );
        let (_, a) = step(s, Event::OutputClosed, t0 + MS(13), &r2);
        assert_eq!(a, [Action::UnblockUpstart, Action::Exit(Exit::Code(125))]);
    }

    /// Ctrl-Z on a terminal the app holds, under a shell: sigshim follows the app into the
    /// stop with the terminal, and `fg` (SIGCONT to sigshim) resumes both.
    #[test]
    fn job_control_on_a_terminal() {
        let r = rules_with(|_, r| r.terminal = Terminal::Handed { job_control: true });
        let t0 = Instant::now();
        let (s, a) = step(running(), Event::AppStopped(Signal::TSTP), t0, &r);
        assert_eq!(
            notes_removed(&a),
            [Action::TakeTerminal, Action::SuspendSelf]
        );
        // A second stop report while suspended changes nothing.
        assert_eq!(
            step(s, Event::AppStopped(Signal::TSTP), t0, &r),
            (s, vec![])
        );
        let (s, a) = step(s, Event::Signal(Signal::CONT), t0, &r);
        assert_eq!(
            notes_removed(&a),
            [Action::GiveTerminal, Action::Deliver(Signal::CONT)]
        );
        assert_eq!(s, running());
        // A SIGSTOP from a debugger is not job control: only noted.
        let (s, a) = step(running(), Event::AppStopped(Signal::STOP), t0, &r);
        assert_eq!((s, notes_removed(&a)), (running(), vec![]));
        // A stop request while suspended: the app gets the terminal back, then the stop.
        let suspended = step(running(), Event::AppStopped(Signal::TSTP), t0, &r).0;
        let (_, a) = step(suspended, Event::Signal(Signal::TERM), t0, &r);
        assert_eq!(
            &notes_removed(&a)[..3],
            [
                Action::GiveTerminal,
                Action::Deliver(Signal::INT),
                Action::Deliver(Signal::CONT)
            ]
        );
        // The app ends: sigshim takes the terminal back for what it still does.
        let (_, a) = step(
            running(),
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(0),
                others: false,
            },
            t0,
            &r,
        );
        assert_eq!(
            notes_removed(&a),
            [Action::TakeTerminal, Action::AwaitOutput]
        );
    }

    /// Where nothing above can resume sigshim (PID 1 of a container, a session leader), or the
    /// terminal was never handed over, a stopped app is reported, and sigshim stays up.
    #[test]
    fn a_stopped_app_without_job_control_is_reported() {
        for terminal in [Terminal::Handed { job_control: false }, Terminal::Kept] {
            let r = rules_with(|_, r| r.terminal = terminal);
            let (s, a) = step(
                running(),
                Event::AppStopped(Signal::TTIN),
                Instant::now(),
                &r,
            );
            assert_eq!(s, running());
            assert_eq!(a, [Action::Note(Note::AppStopped(Signal::TTIN))]);
        }
        // TSTP sent to sigshim itself: both stop; the SIGCONT resumes the app without any
        // terminal business.
        let r = rules();
        let (s, a) = step(running(), Event::Signal(Signal::TSTP), Instant::now(), &r);
        assert_eq!(
            notes_removed(&a),
            [Action::Deliver(Signal::TSTP), Action::SuspendSelf]
        );
        let (s2, a) = step(s, Event::AppStopped(Signal::TSTP), Instant::now(), &r);
        assert_eq!((s2, a), (s, vec![]));
        let (s, a) = step(s, Event::Signal(Signal::CONT), Instant::now(), &r);
        assert_eq!(notes_removed(&a), [Action::Deliver(Signal::CONT)]);
        assert_eq!(s, running());
    }

    fn restarting(mode: RestartMode, f: impl FnOnce(&mut Rules)) -> Rules {
        rules_with(|o, r| {
            o.restart_on = Some(Signal(libc::SIGPWR));
            r.restart = Some(mode);
            f(r);
        })
    }

    const PWR: Signal = Signal(libc::SIGPWR);

    /// Stop-then-start: the full schedule, the leftovers, then generation 2 with readiness
    /// re-armed; systemd hears RELOADING=1 at the start and READY=1 when 2 is ready.
    #[test]
    fn restart_stop_then_start() {
        let r = restarting(RestartMode::StopStart, |r| r.ready_on_spawn = false);
        let t0 = Instant::now();
        let (s, _) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (0, Event::Spawned(FIRST)),
                (1, Event::Ready(FIRST)),
            ],
        );
        let (s, a) = step(s, Event::Signal(PWR), t0 + MS(10), &r);
        assert_eq!(
            notes_removed(&a),
            [
                Action::TellReloading(Some(2)),
                Action::Deliver(Signal::INT),
                Action::Deliver(Signal::CONT)
            ]
        );
        assert!(matches!(
            s,
            State::Stopping {
                g: 1,
                cause: Cause::Restart,
                ..
            }
        ));
        // A second request coalesces; the schedule's deadline stands.
        let (s2, a) = step(s, Event::Signal(PWR), t0 + MS(11), &r);
        assert_eq!((s2, a), (s, vec![Action::Note(Note::Coalesced(PWR))]));
        // Generation 1 ends leaving a helper: the leftovers' signals, then the respawn.
        let (s, a) = step(
            s,
            Event::MainEnded {
                g: 1,
                end: ChildEnd::Exited(0),
                others: true,
            },
            t0 + MS(20),
            &r,
        );
        assert_eq!(notes_removed(&a), [Action::SignalLeftovers(Signal::INT)]);
        let (s, a) = step(s, Event::Reaped { remain: false }, t0 + MS(30), &r);
        assert_eq!(a, [Action::Spawn(2)]);
        assert_eq!(s, State::Starting);
        let (s, a) = step(s, Event::Spawned(2), t0 + MS(31), &r);
        assert!(a.is_empty(), "{a:?}");
        // Generation 1's output is still read for the drain time.
        assert_eq!(
            deadline(&s),
            Some((t0 + MS(31) + MS(2000), Timer::OldOutput))
        );
        let (s, a) = step(s, Event::Ready(2), t0 + MS(40), &r);
        assert_eq!(a, [Action::DeclareReady(2)]);
        let (s, a) = step(s, Event::Timer(Timer::OldOutput), t0 + MS(2031), &r);
        assert_eq!(a, [Action::CloseOutput(1)]);
        assert_eq!(s, State::Running(Run::ready(2)));
        // Generation 2 stops for good as usual.
        let (s, _) = step(s, Event::Signal(Signal::TERM), t0 + MS(3000), &r);
        assert!(matches!(
            s,
            State::Stopping {
                g: 2,
                cause: Cause::Request,
                ..
            }
        ));
    }

    /// A stop request during a stop-then-start restart stops everything; a next generation
    /// that cannot be started ends sigshim with that outcome (the init restarts it).
    #[test]
    fn restart_stop_then_start_interrupted_or_failed() {
        let r = restarting(RestartMode::StopStart, |_| {});
        let t0 = Instant::now();
        let (s, _) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (0, Event::Spawned(FIRST)),
                (1, Event::Signal(PWR)),
            ],
        );
        let (s, a) = step(s, Event::Signal(Signal::TERM), t0 + MS(5), &r);
        assert!(a.contains(&Action::TellStopping {
            step: 0,
            sent: Some(Signal::INT)
        }));
        let (s, _) = step(
            s,
            Event::MainEnded {
                g: 1,
                end: ChildEnd::Exited(0),
                others: false,
            },
            t0 + MS(6),
            &r,
        );
        assert!(
            matches!(
                s,
                State::Draining {
                    exit: Exit::Code(0),
                    ..
                }
            ),
            "{s:?}"
        );
        // The respawn fails.
        let (s, _) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (0, Event::Spawned(FIRST)),
                (1, Event::Signal(PWR)),
            ],
        );
        let (s, a) = step(
            s,
            Event::MainEnded {
                g: 1,
                end: ChildEnd::Exited(0),
                others: false,
            },
            t0 + MS(6),
            &r,
        );
        assert_eq!(notes_removed(&a), [Action::Spawn(2)]);
        let (s, a) = step(s, Event::SpawnFailed { g: 2, code: 127 }, t0 + MS(7), &r);
        assert_eq!(
            (s, a),
            (
                State::Exited(Exit::Code(127)),
                vec![Action::Exit(Exit::Code(127))]
            )
        );
        // Leftovers of a restart hurried by a stop request: the restart becomes the exit.
        let reaping = State::Reaping {
            g: 1,
            then: Then::Respawn,
            ending: Ending::Stopped(ChildEnd::Killed(Signal::INT)),
            kill_at: t0 + MS(100),
            drain_until: t0 + MS(100),
            ready: Ready::Done,
        };
        let (s, a) = step(reaping, Event::Signal(Signal::TERM), t0, &r);
        assert_eq!(notes_removed(&a), [Action::KillTree]);
        assert!(matches!(
            s,
            State::Killing {
                then: Then::Exit(Exit::Signal(Signal::INT)),
                ..
            }
        ));
    }

    /// Overlap: generation 2 starts beside 1; once 2 is ready, 1 gets its stop signal and its
    /// own schedule and leftovers, while 2 serves.
    #[test]
    fn restart_overlap() {
        let r = restarting(RestartMode::Overlap, |r| r.ready_on_spawn = false);
        let t0 = Instant::now();
        let (s, _) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (0, Event::Spawned(FIRST)),
                (1, Event::Ready(FIRST)),
            ],
        );
        let (s, a) = step(s, Event::Signal(PWR), t0 + MS(10), &r);
        assert_eq!(
            notes_removed(&a),
            [Action::TellReloading(Some(2)), Action::Spawn(2)]
        );
        let (s, a) = step(s, Event::Spawned(2), t0 + MS(11), &r);
        assert!(a.is_empty());
        // Meanwhile generation 1 serves: signals still go to it.
        let (s, a) = step(s, Event::Signal(Signal::HUP), t0 + MS(12), &r);
        assert_eq!(a[0], Action::Deliver(USR2));
        // Another restart request is kept for later; a ready line from 1 is nobody's news.
        assert_eq!(
            step(s, Event::Signal(PWR), t0, &r).1,
            vec![Action::Note(Note::Deferred(PWR))]
        );
        assert_eq!(step(s, Event::Ready(1), t0, &r), (s, vec![]));
        let (s, a) = step(s, Event::Ready(2), t0 + MS(20), &r);
        assert_eq!(
            notes_removed(&a),
            [
                Action::DeclareReady(2),
                Action::DeliverTo(1, Signal::INT),
                Action::DeliverTo(1, Signal::CONT)
            ]
        );
        let State::Running(run2) = s else {
            panic!("{s:?}")
        };
        assert_eq!(run2.g, 2);
        assert_eq!(deadline(&s), Some((t0 + MS(20) + MS(300), Timer::Old)));
        // Generation 1 keeps its helper past its end: its own leftovers get the plan.
        let (s, a) = step(
            s,
            Event::MainEnded {
                g: 1,
                end: ChildEnd::Exited(0),
                others: true,
            },
            t0 + MS(30),
            &r,
        );
        assert_eq!(notes_removed(&a), [Action::SignalGen(1, Signal::INT)]);
        assert_eq!(deadline(&s), Some((t0 + MS(30) + MS(200), Timer::Old)));
        let (s, a) = step(s, Event::Timer(Timer::Old), t0 + MS(230), &r);
        assert_eq!(a, [Action::KillGen(1)]);
        let (s, a) = step(s, Event::GenGone(1), t0 + MS(240), &r);
        assert!(a.is_empty());
        assert_eq!(
            deadline(&s),
            Some((t0 + MS(240) + MS(2000), Timer::OldOutput))
        );
        // A stop request now is for generation 2.
        let (s, a) = step(s, Event::Signal(Signal::TERM), t0 + MS(300), &r);
        assert_eq!(a[0], Action::Deliver(Signal::INT));
        assert!(matches!(s, State::Stopping { g: 2, .. }));
    }

    /// Overlap: a request while the old generation is still wound down is kept, and the next
    /// restart begins once it is gone (a deploy in between is not lost).
    #[test]
    fn restart_overlap_pending_request() {
        let r = restarting(RestartMode::Overlap, |r| r.ready_on_spawn = false);
        let t0 = Instant::now();
        let (s, _) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (0, Event::Spawned(FIRST)),
                (1, Event::Ready(FIRST)),
                (2, Event::Signal(PWR)),
                (3, Event::Spawned(2)),
                (4, Event::Ready(2)),
                (5, Event::Signal(PWR)),
                (5, Event::Signal(PWR)),
            ],
        );
        assert!(matches!(
            s,
            State::Running(Run {
                pending: true,
                old: Some(_),
                ..
            })
        ));
        let (s, a) = step(
            s,
            Event::MainEnded {
                g: 1,
                end: ChildEnd::Exited(0),
                others: false,
            },
            t0 + MS(10),
            &r,
        );
        assert_eq!(
            notes_removed(&a),
            [Action::TellReloading(Some(3)), Action::Spawn(3)]
        );
        assert!(matches!(
            s,
            State::Running(Run {
                g: 2,
                next: Some(3),
                pending: false,
                ..
            })
        ));
    }

    /// A restart request before the app is ready, or while it is suspended, is kept and carried
    /// out once it is ready (resumed): a deploy that lands during a start is not lost.
    #[test]
    fn restart_request_waits_for_readiness_and_resumption() {
        for mode in [RestartMode::StopStart, RestartMode::Overlap] {
            let r = restarting(mode, |r| r.ready_on_spawn = false);
            let t0 = Instant::now();
            let (s, _) = run(&r, t0, &[(0, Event::Start), (0, Event::Spawned(FIRST))]);
            let (s, a) = step(s, Event::Signal(PWR), t0 + MS(1), &r);
            assert_eq!(a, vec![Action::Note(Note::Deferred(PWR))], "{mode:?}");
            let (s, a) = step(s, Event::Signal(PWR), t0 + MS(2), &r);
            assert_eq!(a, vec![Action::Note(Note::Deferred(PWR))], "{mode:?}");
            let (s, a) = step(s, Event::Ready(FIRST), t0 + MS(3), &r);
            let a = notes_removed(&a);
            assert_eq!(a[0], Action::DeclareReady(FIRST), "{mode:?}");
            assert_eq!(a[1], Action::TellReloading(Some(2)), "{mode:?}");
            assert!(
                matches!(
                    s,
                    State::Running(Run {
                        next: Some(2),
                        pending: false,
                        ..
                    })
                ) || matches!(
                    s,
                    State::Stopping {
                        g: 1,
                        cause: Cause::Restart,
                        ..
                    }
                ),
                "{mode:?}: {s:?}"
            );
        }
        // Suspended (Ctrl-Z on a terminal): the restart follows the resumption.
        let r = restarting(RestartMode::Overlap, |r| {
            r.terminal = Terminal::Handed { job_control: true }
        });
        let t0 = Instant::now();
        let (s, _) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (0, Event::Spawned(FIRST)),
                (1, Event::AppStopped(Signal::TSTP)),
                (2, Event::Signal(PWR)),
            ],
        );
        assert!(
            matches!(
                s,
                State::Running(Run {
                    suspended: true,
                    pending: true,
                    ..
                })
            ),
            "{s:?}"
        );
        let (s, a) = step(s, Event::Signal(Signal::CONT), t0 + MS(3), &r);
        assert!(notes_removed(&a).contains(&Action::Spawn(2)), "{a:?}");
        assert!(
            matches!(s, State::Running(Run { next: Some(2), .. })),
            "{s:?}"
        );
    }

    /// `--ready alive:D`: a generation is ready when its grace period ends with it still
    /// running; no probe runs (the timer is the whole test), and an overlap restart's old
    /// generation is stopped only then.
    #[test]
    fn alive_after_a_grace_period() {
        let r = restarting(RestartMode::Overlap, |r| {
            r.ready_on_spawn = false;
            r.alive_after = Some(MS(300));
        });
        let t0 = Instant::now();
        let (s, _) = run(&r, t0, &[(0, Event::Start), (0, Event::Spawned(FIRST))]);
        assert_eq!(deadline(&s), Some((t0 + MS(300), Timer::Probe)));
        let (s, a) = step(s, Event::Timer(Timer::Probe), t0 + MS(300), &r);
        assert_eq!(a, vec![Action::DeclareReady(FIRST)]);
        let (s, _) = step(s, Event::Signal(PWR), t0 + MS(400), &r);
        let (s, a) = step(s, Event::Spawned(2), t0 + MS(401), &r);
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(deadline(&s), Some((t0 + MS(701), Timer::Probe)));
        let (s, a) = step(s, Event::Timer(Timer::Probe), t0 + MS(701), &r);
        let a = notes_removed(&a);
        assert_eq!(a[0], Action::DeclareReady(2));
        assert_eq!(a[1], Action::DeliverTo(1, Signal::INT));
        assert!(matches!(s, State::Running(Run { g: 2, .. })), "{s:?}");
    }

    /// A restart that fails drops a request kept meanwhile (with a warning) rather than retry
    /// behind the operator's back while the failed generation may still be dying.
    #[test]
    fn failed_restart_drops_the_kept_request() {
        let r = restarting(RestartMode::Overlap, |r| r.ready_on_spawn = false);
        let t0 = Instant::now();
        let (s, _) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (0, Event::Spawned(FIRST)),
                (1, Event::Ready(FIRST)),
                (2, Event::Signal(PWR)),
                (3, Event::Spawned(2)),
                (4, Event::Signal(PWR)),
            ],
        );
        let (s, a) = step(
            s,
            Event::MainEnded {
                g: 2,
                end: ChildEnd::Exited(1),
                others: false,
            },
            t0 + MS(5),
            &r,
        );
        assert!(a.contains(&Action::Note(Note::PendingDropped)), "{a:?}");
        assert!(!a.iter().any(|a| matches!(a, Action::Spawn(_))), "{a:?}");
        assert!(
            matches!(
                s,
                State::Running(Run {
                    g: 1,
                    next: None,
                    pending: false,
                    ..
                })
            ),
            "{s:?}"
        );
    }

    /// Overlap: a next generation that dies or never becomes ready is killed; the current
    /// one keeps serving and systemd hears READY=1 again.
    #[test]
    fn restart_overlap_failures() {
        let r = restarting(RestartMode::Overlap, |r| {
            r.ready_on_spawn = false;
            r.ready_timeout = Some(MS(500));
        });
        let t0 = Instant::now();
        let (serving, _) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (0, Event::Spawned(FIRST)),
                (1, Event::Ready(FIRST)),
            ],
        );
        let (s, _) = run_from(
            serving,
            &r,
            t0,
            &[(10, Event::Signal(PWR)), (11, Event::Spawned(2))],
        );
        let (s, a) = step(
            s,
            Event::MainEnded {
                g: 2,
                end: ChildEnd::Exited(1),
                others: false,
            },
            t0 + MS(20),
            &r,
        );
        assert_eq!(
            notes_removed(&a),
            [Action::KillGen(2), Action::TellRestartFailed(2)]
        );
        // The same as before, but for the number it will not reuse.
        let after = |s: State| match (s, serving) {
            (State::Running(x), State::Running(y)) => {
                x == Run { last: x.last, ..y } && x.last > y.last
            }
            _ => false,
        };
        assert!(after(s), "{s:?}");
        // Not ready in time.
        let (s, _) = run_from(
            serving,
            &r,
            t0,
            &[(10, Event::Signal(PWR)), (11, Event::Spawned(2))],
        );
        assert_eq!(deadline(&s), Some((t0 + MS(511), Timer::ReadyTimeout)));
        let (s, a) = step(s, Event::Timer(Timer::ReadyTimeout), t0 + MS(511), &r);
        assert_eq!(
            notes_removed(&a),
            [Action::KillGen(2), Action::TellRestartFailed(2)]
        );
        // The same as before, but for the number it will not reuse.
        let after = |s: State| match (s, serving) {
            (State::Running(x), State::Running(y)) => {
                x == Run { last: x.last, ..y } && x.last > y.last
            }
            _ => false,
        };
        assert!(after(s), "{s:?}");
        // Its end, later, is only noted.
        let (s2, a) = step(
            s,
            Event::MainEnded {
                g: 2,
                end: ChildEnd::Killed(Signal::KILL),
                others: false,
            },
            t0 + MS(512),
            &r,
        );
        assert_eq!((s2, notes_removed(&a)), (s, vec![]));
        // Not even started.
        let (s, _) = run_from(serving, &r, t0, &[(10, Event::Signal(PWR))]);
        let (s, a) = step(s, Event::SpawnFailed { g: 2, code: 127 }, t0 + MS(11), &r);
        assert_eq!(notes_removed(&a), [Action::TellRestartFailed(2)]);
        assert!(after(s), "{s:?}");
        // A stop request while the next one starts: it goes at once, the current one stops.
        // The serving generation's stop signal comes first (killing the next one scans /proc).
        let (s, _) = run_from(
            serving,
            &r,
            t0,
            &[(10, Event::Signal(PWR)), (11, Event::Spawned(2))],
        );
        let (s, a) = step(s, Event::Signal(Signal::TERM), t0 + MS(12), &r);
        assert_eq!(
            notes_removed(&a)[..3],
            [
                Action::Deliver(Signal::INT),
                Action::Deliver(Signal::CONT),
                Action::KillGen(2)
            ]
        );
        assert!(matches!(s, State::Stopping { g: 1, .. }));
    }

    /// The exit hook runs before sigshim exits, bounded, and never changes the outcome.
    #[test]
    fn the_exit_hook() {
        let r = rules_with(|_, r| r.exit_hook = Some(MS(1000)));
        let t0 = Instant::now();
        let (s, a) = step(
            running(),
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Exited(3),
                others: false,
            },
            t0,
            &r,
        );
        assert_eq!(notes_removed(&a), [Action::AwaitOutput]);
        let (s, a) = step(s, Event::OutputClosed, t0, &r);
        assert_eq!(
            a,
            [Action::RunHook(Hook::Exit(
                Ending::Exited(ChildEnd::Exited(3)),
                Exit::Code(3)
            ))]
        );
        assert_eq!(deadline(&s), Some((t0 + MS(1000), Timer::Hook)));
        assert_eq!(
            step(s, Event::HookDone, t0, &r).1,
            vec![Action::Exit(Exit::Code(3))]
        );
        let (e, a) = step(s, Event::Timer(Timer::Hook), t0 + MS(1000), &r);
        assert_eq!(e, State::Exited(Exit::Code(3)));
        assert_eq!(
            notes_removed(&a),
            [Action::KillHook, Action::Exit(Exit::Code(3))]
        );
        // Not started at all: the hook hears why.
        let (_, a) = run(
            &r,
            t0,
            &[
                (0, Event::Start),
                (
                    0,
                    Event::SpawnFailed {
                        g: FIRST,
                        code: 127,
                    },
                ),
            ],
        );
        assert!(a.contains(&Action::RunHook(Hook::Exit(
            Ending::NotStarted(127),
            Exit::Code(127)
        ))));
    }

    /// The transitions the scenarios above do not walk, one line each.
    #[test]
    fn the_rest_of_the_table() {
        let r = rules();
        let t0 = Instant::now();
        let stopping = step(running(), Event::Signal(Signal::TERM), t0, &r).0;
        let reaping = State::Reaping {
            g: FIRST,
            then: Then::Exit(Exit::Code(0)),
            ending: ENDED,
            kill_at: t0 + MS(200),
            drain_until: t0 + MS(2000),
            ready: Ready::Pending,
        };
        let killing = killing(
            FIRST,
            Then::Exit(Exit::Code(0)),
            ENDED,
            t0 + MS(2000),
            Ready::Pending,
            t0,
        );
        // Other signals while stopping follow their routes; the deadline stays.
        let (s, a) = step(stopping, Event::Signal(Signal::HUP), t0 + MS(1), &r);
        assert_eq!((s, a[0]), (stopping, Action::Deliver(USR2)));
        // Late readiness while leftovers are wound down: told, once.
        for st in [reaping, killing] {
            let (s, a) = step(st, Event::Ready(FIRST), t0, &r);
            assert_eq!(a, [Action::DeclareReady(FIRST)], "{st:?}");
            assert_eq!(deadline(&s), deadline(&st));
            assert_eq!(step(s, Event::Ready(FIRST), t0, &r).1, vec![]);
        }
        // Orphans reaped while the app runs, stops or is drained: nothing to do.
        let draining = draining(
            Exit::Code(0),
            ENDED,
            t0 + MS(2000),
            Ready::Done,
            &mut Vec::new(),
        );
        for st in [running(), stopping, draining] {
            assert_eq!(
                step(st, Event::Reaped { remain: false }, t0, &r),
                (st, vec![])
            );
        }
        // A probe result after a stop began changes nothing.
        assert_eq!(
            step(stopping, Event::ProbeFailed, t0, &r),
            (stopping, vec![])
        );
        // The app ends during the schedule, before its SIGKILL step: leftovers get the plan.
        let (s, a) = step(
            stopping,
            Event::MainEnded {
                g: FIRST,
                end: ChildEnd::Killed(Signal::INT),
                others: true,
            },
            t0 + MS(5),
            &r,
        );
        assert_eq!(notes_removed(&a), [Action::SignalLeftovers(Signal::INT)]);
        assert!(matches!(
            s,
            State::Reaping {
                then: Then::Exit(Exit::Signal(Signal::INT)),
                ready: Ready::Done,
                ..
            }
        ));
        // Output closing before the machine asked for it is not an event it sees.
        assert_eq!(
            step(reaping, Event::OutputClosed, t0, &r).0,
            State::Exited(Exit::Code(125))
        );
    }

    #[test]
    fn impossible_pairs_are_internal_errors() {
        let r = rules();
        let t0 = Instant::now();
        for (s, e) in [
            (State::Starting, Event::Signal(Signal::TERM)),
            (running(), Event::Spawned(FIRST)),
            (running(), Event::Timer(Timer::Drain)),
            (
                killing(FIRST, Then::Exit(Exit::Code(0)), ENDED, t0, Ready::Done, t0),
                Event::MainEnded {
                    g: FIRST,
                    end: ChildEnd::Exited(0),
                    others: false,
                },
            ),
            (State::Exited(Exit::Code(0)), Event::Ready(FIRST)),
        ] {
            let (n, a) = step(s, e, t0, &r);
            assert_eq!(n, State::Exited(Exit::Code(125)), "{s:?} + {e:?}");
            assert!(matches!(a[0], Action::Note(Note::Impossible { .. })));
            assert_eq!(a[1], Action::Exit(Exit::Code(125)));
        }
    }
}
