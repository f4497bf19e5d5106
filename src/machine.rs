//! The supervisor's whole behaviour as one pure transition function.
//!
//! `step(state, event, now, rules) -> (state, actions)` is s6-supervise's `actions[state][event]`
//! in Rust: every flag and every deadline sigshim keeps lives in [`State`], every fact from the
//! world arrives as an [`Event`], and every effect leaves as an [`Action`] for the executor in
//! `supervise` to perform (signals, reaping, /proc, output, notifications). Nothing here reads a
//! clock, a descriptor or the environment, so each transition is unit-tested without a process.
//!
//! The life of one app:
//!
//! ```text
//! Starting --Spawned--> Running --stop request / ready timeout--> Stopping{step, due}
//!    Running/Stopping --MainEnded--> Reaping{kill_at}   (leftovers got their signals)
//!                                  | Killing{rescan_at} (the tree was already SIGKILLed)
//!                                  | Draining{until}    (nothing left but output)
//!    Reaping --kill_at--> Killing --no child left--> Draining --EOF or until--> Exited
//! ```
//!
//! Each state carries its own deadline; [`deadline`] names the earliest and which kind it is,
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
    /// `--upstart-expect-stop`: Upstart waits for one SIGSTOP before it does anything else.
    pub upstart_expect_stop: bool,
    /// systemd listens and the app does not speak sd_notify itself: sigshim reports the
    /// reloads it delivers (`--reload-on`), as `Type=notify-reload` needs.
    pub report_reloads: bool,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The app is about to be spawned.
    Starting,
    /// The app runs; nobody asked it to stop. Until it is ready, `probe_at` is the next
    /// readiness probe and `timeout_at` the readiness deadline.
    Running {
        probe_at: Option<Instant>,
        timeout_at: Option<Instant>,
        ready: Ready,
    },
    /// The stop schedule is at `step`; the next step is due at `due` (`None`: wait for the app).
    Stopping {
        step: usize,
        due: Option<Instant>,
        cause: Cause,
        ready: Ready,
    },
    /// The app has ended and sigshim's exit is decided. What it left behind got the plan's
    /// leftover signals and gets SIGKILL at `kill_at`.
    Reaping {
        exit: Exit,
        kill_at: Instant,
        drain_until: Instant,
        ready: Ready,
    },
    /// SIGKILL went to the whole tree; at `rescan_at` the tree is scanned and killed again
    /// (a process forked during the scan got nothing), then every `every` doubled.
    Killing {
        exit: Exit,
        rescan_at: Instant,
        every: Duration,
        drain_until: Instant,
        ready: Ready,
    },
    /// Nothing of the app's tree remains; its output is read until EOF or `until`.
    Draining {
        exit: Exit,
        until: Instant,
        ready: Ready,
    },
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The app was exec'd.
    Spawned,
    /// A signal from outside (never SIGCHLD: reaping is the executor's, reported below).
    Signal(Signal),
    /// The main child was reaped; `others` says whether sigshim still has children.
    MainEnded { end: ChildEnd, others: bool },
    /// Other children were reaped; `remain` says whether any child is left.
    Reaped { remain: bool },
    /// The app is ready by `--ready`.
    Ready,
    /// A readiness probe ran and found the app not ready yet.
    ProbeFailed,
    /// Every capture pipe is at EOF (sent once, after `Action::AwaitOutput`).
    OutputClosed,
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
    Ended(ChildEnd),
    Leftovers,
    LeftoversKilled,
    /// A stop request after the app ended: finish now.
    Hurry(Signal),
    OutputStillOpen,
    Impossible {
        state: &'static str,
        event: Event,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send to the app (its process group, or the app alone with --single-child).
    Deliver(Signal),
    /// SIGSTOP sigshim itself (after TSTP went to the app).
    SuspendSelf,
    /// SIGKILL to the app's group and to every descendant, wherever it went.
    KillTree,
    /// Send to every remaining descendant (the app has ended), not through the routes.
    SignalLeftovers(Signal),
    /// Run the readiness probe now; answer with `Event::Ready` or `Event::ProbeFailed`.
    Probe,
    /// Tell the init the app is ready.
    DeclareReady,
    /// Tell systemd the service is reloading (RELOADING=1 with MONOTONIC_USEC=now), before
    /// the reload signal goes to the app.
    TellReloading,
    /// Tell systemd READY=1 again: a reload is done (sigshim delivered the signal, or the app
    /// said READY=1 once more after its own RELOADING=1).
    TellReadyAgain,
    /// Tell systemd the stop began (STOPPING=1, STATUS, EXTEND_TIMEOUT_USEC): `sent` at `step`.
    TellStopping {
        step: usize,
        sent: Option<Signal>,
    },
    /// Answer with `Event::OutputClosed` once every capture pipe is at EOF.
    AwaitOutput,
    /// Upstart still waits for the SIGSTOP of `expect stop`: raise it before exiting, or
    /// Upstart never sees the exit and never respawns (observed with Upstart 1.13).
    UnblockUpstart,
    Note(Note),
    /// Flush the output and exit with this.
    Exit(Exit),
}

/// The earliest deadline of `s`, and which kind it is.
pub fn deadline(s: &State) -> Option<(Instant, Timer)> {
    match *s {
        State::Running {
            probe_at,
            timeout_at,
            ..
        } => match (probe_at, timeout_at) {
            (Some(p), Some(t)) if t <= p => Some((t, Timer::ReadyTimeout)),
            (Some(p), _) => Some((p, Timer::Probe)),
            (None, Some(t)) => Some((t, Timer::ReadyTimeout)),
            (None, None) => None,
        },
        State::Stopping { due, .. } => due.map(|d| (d, Timer::Step)),
        State::Reaping { kill_at, .. } => Some((kill_at, Timer::LeftoverKill)),
        State::Killing { rescan_at, .. } => Some((rescan_at, Timer::Rescan)),
        State::Draining { until, .. } => Some((until, Timer::Drain)),
        State::Starting | State::Exited(_) => None,
    }
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Starting => "Starting",
            State::Running { .. } => "Running",
            State::Stopping { .. } => "Stopping",
            State::Reaping { .. } => "Reaping",
            State::Killing { .. } => "Killing",
            State::Draining { .. } => "Draining",
            State::Exited(_) => "Exited",
        }
    }
}

/// The transition function: the whole table.
pub fn step(s: State, e: Event, now: Instant, r: &Rules) -> (State, Vec<Action>) {
    use Action as A;
    use State::*;
    let mut a = Vec::with_capacity(4);
    let later = |d: Duration| now.checked_add(d).unwrap_or(now);
    let next = match (s, e) {
        (Starting, Event::Spawned) if r.ready_on_spawn => {
            a.push(A::DeclareReady);
            Running {
                probe_at: None,
                timeout_at: None,
                ready: Ready::Done,
            }
        }
        (Starting, Event::Spawned) => Running {
            probe_at: r.probes.then_some(now),
            timeout_at: r.ready_timeout.map(later),
            ready: Ready::Pending,
        },

        // --- signals while the app runs ------------------------------------------------
        (Running { ready, .. }, Event::Signal(sig)) if r.plan.route(sig).stop => {
            let sent = sent_by(r.plan.route(sig).deliver);
            let next = begin_stop(Cause::Request, sent, ready, now, r, &mut a);
            a.push(A::Note(Note::StopRequested {
                received: sig,
                sent,
            }));
            next
        }
        (Stopping { .. }, Event::Signal(sig)) if r.plan.route(sig).stop => {
            // An operator pressing Ctrl-C twice: deliver again, keep the deadline.
            if let Some(sent) = sent_by(r.plan.route(sig).deliver) {
                stop_signal(sent, &mut a);
            }
            a.push(A::Note(Note::StopAgain(sig)));
            s
        }
        // A reload request once the app is ready, where sigshim reports reloads: RELOADING=1,
        // the signal, READY=1 (the app cannot tell sigshim when it is done; this is what
        // `ExecReload=kill -HUP $MAINPID` promises too). Before readiness systemd would take
        // the READY=1 as the end of the start; while stopping, a reload means nothing.
        (
            Running {
                ready: Ready::Done, ..
            },
            Event::Signal(sig),
        ) if r.report_reloads && r.plan.reload_request(sig) => {
            if let Deliver::Send(to) = r.plan.route(sig).deliver {
                a.push(A::TellReloading);
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
        (Running { .. } | Stopping { .. }, Event::Signal(sig)) => {
            match r.plan.route(sig).deliver {
                Deliver::Send(to) => {
                    a.push(A::Deliver(to));
                    a.push(A::Note(Note::Forwarded {
                        received: sig,
                        sent: to,
                    }));
                }
                Deliver::Drop => a.push(A::Note(Note::Dropped(sig))),
                Deliver::Suspend => {
                    a.push(A::Deliver(Signal::TSTP));
                    a.push(A::SuspendSelf);
                    a.push(A::Note(Note::Suspended));
                }
            }
            s
        }

        // --- readiness -----------------------------------------------------------------
        (
            Running {
                ready: Ready::Pending,
                ..
            },
            Event::Ready,
        ) => {
            a.push(A::DeclareReady);
            Running {
                probe_at: None,
                timeout_at: None,
                ready: Ready::Done,
            }
        }
        // The app announced readiness and ended before sigshim had read the announcement:
        // it was ready all the same (Upstart must see it, or it never moves on).
        (Reaping { ready, .. } | Killing { ready, .. } | Draining { ready, .. }, Event::Ready)
            if ready == Ready::Pending =>
        {
            a.push(A::DeclareReady);
            with_ready(s, Ready::Done)
        }
        // The app says READY=1 again (only the notify relay can say it twice): the end of a
        // reload it reported itself (RELOADING=1 went up as it came). systemd must hear it,
        // or a Type=notify-reload unit stays `reloading` until its timeout.
        (
            Running {
                ready: Ready::Done, ..
            },
            Event::Ready,
        ) => {
            a.push(A::TellReadyAgain);
            s
        }
        // Readiness after a stop began is news to no one.
        (_, Event::Ready) if s != Starting && !matches!(s, Exited(_)) => s,
        (
            Running {
                ready: Ready::Pending,
                timeout_at,
                ..
            },
            Event::Timer(Timer::Probe),
        ) => {
            a.push(A::Probe);
            Running {
                probe_at: None,
                timeout_at,
                ready: Ready::Pending,
            }
        }
        (
            Running {
                ready: Ready::Pending,
                timeout_at,
                ..
            },
            Event::ProbeFailed,
        ) => Running {
            probe_at: Some(later(PROBE_EVERY)),
            timeout_at,
            ready: Ready::Pending,
        },
        (_, Event::ProbeFailed) if s != Starting && !matches!(s, Exited(_)) => s,
        (
            Running {
                ready: Ready::Pending,
                ..
            },
            Event::Timer(Timer::ReadyTimeout),
        ) => {
            a.push(A::Note(Note::NotReady));
            let first = r.plan.schedule().first_signal();
            begin_stop(
                Cause::ReadyTimeout,
                Some(first),
                Ready::Pending,
                now,
                r,
                &mut a,
            )
        }

        // --- the stop schedule ---------------------------------------------------------
        (
            Stopping {
                step, cause, ready, ..
            },
            Event::Timer(Timer::Step),
        ) => {
            let next = step + 1;
            match r.plan.schedule().step(next) {
                None => Stopping {
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
                        stop_signal(st.signal, &mut a);
                        a.push(A::Note(Note::Step {
                            step: next,
                            signal: st.signal,
                        }));
                    }
                    a.push(A::TellStopping {
                        step: next,
                        sent: Some(st.signal),
                    });
                    Stopping {
                        step: next,
                        due: r.plan.schedule().deadline(next, now),
                        cause,
                        ready,
                    }
                }
            }
        }

        // --- the app ends --------------------------------------------------------------
        (Running { ready, .. }, Event::MainEnded { end, others }) => {
            main_ended(end, others, None, false, ready, now, r, &mut a)
        }
        (
            Stopping {
                step, cause, ready, ..
            },
            Event::MainEnded { end, others },
        ) => {
            let killed = r
                .plan
                .schedule()
                .step(step)
                .is_some_and(|st| st.signal == Signal::KILL);
            main_ended(end, others, Some(cause), killed, ready, now, r, &mut a)
        }
        (Running { .. } | Stopping { .. } | Draining { .. }, Event::Reaped { .. }) => s,
        (
            Reaping {
                exit,
                drain_until,
                ready,
                ..
            }
            | Killing {
                exit,
                drain_until,
                ready,
                ..
            },
            Event::Reaped { remain: false },
        ) => draining(exit, drain_until, ready, &mut a),
        (Reaping { .. }, Event::Reaped { remain: true }) => s,
        (Killing { .. }, Event::Reaped { remain: true }) => {
            // Something died; its children were re-parented to sigshim a moment ago.
            a.push(A::KillTree);
            s
        }

        // --- leftovers -----------------------------------------------------------------
        (
            Reaping {
                exit,
                drain_until,
                ready,
                ..
            },
            Event::Timer(Timer::LeftoverKill),
        ) => {
            a.push(A::KillTree);
            a.push(A::Note(Note::LeftoversKilled));
            killing(exit, drain_until, ready, now)
        }
        (
            Killing {
                exit,
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
                exit,
                rescan_at: later(every),
                every,
                drain_until,
                ready,
            }
        }
        // The app is gone: a stop request means "hurry".
        (
            Reaping {
                exit,
                drain_until,
                ready,
                ..
            },
            Event::Signal(sig),
        ) if r.plan.route(sig).stop => {
            a.push(A::KillTree);
            a.push(A::Note(Note::Hurry(sig)));
            killing(exit, drain_until, ready, now)
        }
        (Draining { exit, ready, .. }, Event::Signal(sig)) if r.plan.route(sig).stop => {
            a.push(A::Note(Note::Hurry(sig)));
            finish(exit, ready, r, &mut a)
        }
        (Reaping { .. } | Killing { .. } | Draining { .. }, Event::Signal(sig)) => {
            a.push(A::Note(Note::Dropped(sig)));
            s
        }

        // --- output --------------------------------------------------------------------
        (Draining { exit, ready, .. }, Event::OutputClosed) => finish(exit, ready, r, &mut a),
        (Draining { exit, ready, .. }, Event::Timer(Timer::Drain)) => {
            a.push(A::Note(Note::OutputStillOpen));
            finish(exit, ready, r, &mut a)
        }

        // Every other pair cannot happen: the executor fires only the timer `deadline` names,
        // spawns once, reaps the main child once, and stops at Exited.
        (s, e) => {
            a.clear();
            a.push(A::Note(Note::Impossible {
                state: s.name(),
                event: e,
            }));
            a.push(A::Exit(Exit::Code(exit::INTERNAL)));
            Exited(Exit::Code(exit::INTERNAL))
        }
    };
    (next, a)
}

/// What a stop request's route sends (a TSTP-suspend route sends TSTP).
fn sent_by(d: Deliver) -> Option<Signal> {
    match d {
        Deliver::Send(s) => Some(s),
        Deliver::Suspend => Some(Signal::TSTP),
        Deliver::Drop => None,
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
    a.push(Action::TellStopping { step: 0, sent });
    Stopping {
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

#[allow(clippy::too_many_arguments)]
fn main_ended(
    end: ChildEnd,
    others: bool,
    cause: Option<Cause>,
    killed: bool,
    ready: Ready,
    now: Instant,
    r: &Rules,
    a: &mut Vec<Action>,
) -> State {
    a.push(Action::Note(Note::Ended(end)));
    let exit = match cause {
        Some(Cause::ReadyTimeout) => Exit::Code(exit::INTERNAL),
        _ => r.policy.exit_for(end),
    };
    let drain_until = now.checked_add(r.drain_timeout).unwrap_or(now);
    if !others {
        return draining(exit, drain_until, ready, a);
    }
    if killed {
        // The tree got SIGKILL at the deadline; kill again what appeared since.
        a.push(Action::KillTree);
        return killing(exit, drain_until, ready, now);
    }
    // A service's helpers must not outlive it: the init believes the service is gone.
    for &s in r.plan.leftover() {
        a.push(Action::SignalLeftovers(s));
    }
    a.push(Action::Note(Note::Leftovers));
    State::Reaping {
        exit,
        kill_at: now.checked_add(r.plan.leftover_grace()).unwrap_or(now),
        drain_until,
        ready,
    }
}

fn killing(exit: Exit, drain_until: Instant, ready: Ready, now: Instant) -> State {
    Killing {
        exit,
        rescan_at: now + RESCAN_FIRST,
        every: RESCAN_FIRST,
        drain_until,
        ready,
    }
}

fn draining(exit: Exit, until: Instant, ready: Ready, a: &mut Vec<Action>) -> State {
    a.push(Action::AwaitOutput);
    Draining { exit, until, ready }
}

fn finish(exit: Exit, ready: Ready, r: &Rules, a: &mut Vec<Action>) -> State {
    if r.upstart_expect_stop && ready != Ready::Done {
        a.push(Action::UnblockUpstart);
    }
    a.push(Action::Exit(exit));
    State::Exited(exit)
}

fn with_ready(s: State, ready: Ready) -> State {
    match s {
        State::Reaping {
            exit,
            kill_at,
            drain_until,
            ..
        } => State::Reaping {
            exit,
            kill_at,
            drain_until,
            ready,
        },
        Killing {
            exit,
            rescan_at,
            every,
            drain_until,
            ..
        } => Killing {
            exit,
            rescan_at,
            every,
            drain_until,
            ready,
        },
        Draining { exit, until, .. } => Draining { exit, until, ready },
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
            probes: false,
            upstart_expect_stop: false,
            report_reloads: false,
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
        let mut s = State::Starting;
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
        State::Running {
            probe_at: None,
            timeout_at: None,
            ready: Ready::Done,
        }
    }

    #[test]
    fn spawned_with_ready_on_spawn_declares_at_once() {
        let r = rules();
        let t0 = Instant::now();
        let (s, a) = step(State::Starting, Event::Spawned, t0, &r);
        assert_eq!(s, running());
        assert_eq!(a, [Action::DeclareReady]);
    }

    #[test]
    fn spawned_with_probes_and_a_timeout_arms_both() {
        let r = rules_with(|_, r| {
            r.ready_on_spawn = false;
            r.probes = true;
            r.ready_timeout = Some(MS(500));
        });
        let t0 = Instant::now();
        let (s, a) = step(State::Starting, Event::Spawned, t0, &r);
        assert_eq!(
            s,
            State::Running {
                probe_at: Some(t0),
                timeout_at: Some(t0 + MS(500)),
                ready: Ready::Pending
            }
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
        let (s, a) = step(s, Event::Ready, t0 + MS(150), &r);
        assert_eq!(a, [Action::DeclareReady]);
        assert_eq!(deadline(&s), None);
        // A second readiness (only the notify relay says READY=1 twice: the end of a reload
        // the app reported) goes up as READY=1 again, and changes nothing else.
        let (s2, a) = step(s, Event::Ready, t0 + MS(160), &r);
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
                Action::TellReloading,
                Action::Deliver(USR2),
                Action::TellReadyAgain
            ]
        );
        // Not ready yet: systemd would read that READY=1 as the end of the start.
        let pending = State::Running {
            probe_at: None,
            timeout_at: None,
            ready: Ready::Pending,
        };
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
                (0, Event::Spawned),
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
        let mut s = killing(Exit::Code(0), t0, Ready::Done, t0);
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
        let draining = draining(Exit::Code(0), t0 + MS(2000), Ready::Done, &mut Vec::new());
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
                (0, Event::Spawned),
                (
                    1,
                    Event::MainEnded {
                        end: ChildEnd::Exited(1),
                        others: false,
                    },
                ),
            ],
        );
        let (s, a) = step(s, Event::Ready, t0 + MS(2), &r);
        assert_eq!(a, [Action::DeclareReady]);
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
                (0, Event::Spawned),
                (
                    1,
                    Event::MainEnded {
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
            &[(0, Event::Spawned), (10, Event::Timer(Timer::ReadyTimeout))],
        );
        let (s, a) = step(s, Event::Ready, t0 + MS(11), &r2);
        assert!(a.is_empty(), "readiness after the stop began: {a:?}");
        let (s, _) = step(
            s,
            Event::MainEnded {
                end: ChildEnd::Exited(0),
                others: false,
            },
            t0 + MS(12),
            &r2,
        );
        let (_, a) = step(s, Event::OutputClosed, t0 + MS(13), &r2);
        assert_eq!(a, [Action::UnblockUpstart, Action::Exit(Exit::Code(125))]);
    }

    /// The transitions the scenarios above do not walk, one line each.
    #[test]
    fn the_rest_of_the_table() {
        let r = rules();
        let t0 = Instant::now();
        let stopping = step(running(), Event::Signal(Signal::TERM), t0, &r).0;
        let reaping = State::Reaping {
            exit: Exit::Code(0),
            kill_at: t0 + MS(200),
            drain_until: t0 + MS(2000),
            ready: Ready::Pending,
        };
        let killing = killing(Exit::Code(0), t0 + MS(2000), Ready::Pending, t0);
        // Other signals while stopping follow their routes; the deadline stays.
        let (s, a) = step(stopping, Event::Signal(Signal::HUP), t0 + MS(1), &r);
        assert_eq!((s, a[0]), (stopping, Action::Deliver(USR2)));
        // Late readiness while leftovers are wound down: told, once.
        for st in [reaping, killing] {
            let (s, a) = step(st, Event::Ready, t0, &r);
            assert_eq!(a, [Action::DeclareReady], "{st:?}");
            assert_eq!(deadline(&s), deadline(&st));
            assert_eq!(step(s, Event::Ready, t0, &r).1, vec![]);
        }
        // Orphans reaped while the app runs, stops or is drained: nothing to do.
        let draining = draining(Exit::Code(0), t0 + MS(2000), Ready::Done, &mut Vec::new());
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
                exit: Exit::Signal(Signal::INT),
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
            (running(), Event::Spawned),
            (running(), Event::Timer(Timer::Drain)),
            (
                draining(Exit::Code(0), t0, Ready::Done, &mut Vec::new()),
                Event::MainEnded {
                    end: ChildEnd::Exited(0),
                    others: false,
                },
            ),
            (State::Exited(Exit::Code(0)), Event::Ready),
        ] {
            let (n, a) = step(s, e, t0, &r);
            assert_eq!(n, State::Exited(Exit::Code(125)), "{s:?} + {e:?}");
            assert!(matches!(a[0], Action::Note(Note::Impossible { .. })));
            assert_eq!(a[1], Action::Exit(Exit::Code(125)));
        }
    }
}
