//! Signal names and numbers, and the signal plan.
//!
//! This module is pure. It parses what the operator wrote (`INT`, `SIGINT`, `2`, `rtmin+3`)
//! into signal numbers, and it builds the one [`Plan`] that decides everything sigshim does
//! with signals: what each received signal becomes for the app (the routes: rewrites, stop
//! requests, TSTP), the stop schedule, the parent-death signal, what processes the app leaves
//! behind get, and the direct-delivery guard. Nothing later re-derives a piece of it: the
//! supervisor asks the plan, the child is set up from it.
//!
//! The plan's invariant, checked where it is built: the guard (signals set to ignored in the
//! child) never holds a signal that sigshim itself delivers to the app by any path. An app
//! told to stop by TERM must not have TERM ignored.

use crate::schedule::Schedule;
use std::fmt;
use std::time::Duration;

/// A signal number, 1..=64. Kept as a plain integer so that real-time signals (which have no
/// libc constant of their own) are first-class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(pub i32);

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// `RTMIN` as userland means it: 34. glibc keeps 32 and 33 for its threads and says
/// SIGRTMIN is 34; musl keeps 32 to 34 and says 35. A glibc app, `kill -s RTMIN+3` (procps and
/// util-linux) and bash all mean 37 by RTMIN+3, so sigshim does too, whatever C library it was
/// linked with (the static build uses musl).
pub const RTMIN: i32 = 34;
/// The kernel's highest signal (_NSIG) on every architecture sigshim builds for.
pub const RTMAX: i32 = 64;

pub fn rtmin() -> i32 {
    RTMIN
}

pub fn rtmax() -> i32 {
    RTMAX
}

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    pub const CONT: Signal = Signal(libc::SIGCONT);
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    pub const TTOU: Signal = Signal(libc::SIGTTOU);

    /// Signals the kernel raises in the faulting thread itself. Blocking them is undefined when
    /// they are real faults, and forwarding one that someone sent on purpose would make the
    /// child believe it crashed. tini and catatonit leave the same set alone. ABRT is not here:
    /// `docker kill -s ABRT` is a legitimate request (tini#104), and sigshim's own abort()
    /// unblocks it before raising, so catching it is safe; a self-sent one is filtered by
    /// sender PID in `supervise`.
    pub fn is_synchronous_fault(self) -> bool {
        matches!(
            self.0,
            libc::SIGSEGV
                | libc::SIGBUS
                | libc::SIGFPE
                | libc::SIGILL
                | libc::SIGTRAP
                | libc::SIGSYS
        )
    }

    /// KILL and STOP cannot be caught, blocked or ignored (signal(7)).
    pub fn is_uncatchable(self) -> bool {
        self == Signal::KILL || self == Signal::STOP
    }

    /// Whether the default action of this signal writes a core file (signal(7) "Core").
    pub fn dumps_core(self) -> bool {
        matches!(
            self.0,
            libc::SIGQUIT
                | libc::SIGILL
                | libc::SIGTRAP
                | libc::SIGABRT
                | libc::SIGBUS
                | libc::SIGFPE
                | libc::SIGSEGV
                | libc::SIGSYS
                | libc::SIGXCPU
                | libc::SIGXFSZ
        )
    }

    /// Every signal sigshim takes in through its signal descriptor: all of 1..=64 that can be
    /// caught, except the synchronous faults. 32 and 33 included: left unblocked, their default
    /// action would terminate sigshim.
    pub fn caught() -> impl Iterator<Item = Signal> {
        (1..=RTMAX)
            .map(Signal)
            .filter(|s| !s.is_uncatchable() && !s.is_synchronous_fault())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return write!(f, "SIG{name}");
        }
        match self.0 {
            RTMIN => write!(f, "SIGRTMIN"),
            RTMAX => write!(f, "SIGRTMAX"),
            n if n > RTMIN && n < RTMAX => write!(f, "SIGRTMIN+{}", n - RTMIN),
            // 32 and 33: no name in any C library (glibc keeps them for its threads).
            n => write!(f, "SIG{n}"),
        }
    }
}

/// Parses `INT`, `SIGINT`, `sigint`, `2`, `RTMIN`, `SIGRTMIN+3`, `RTMAX-1`, `33`, `SIG33`.
pub fn parse_signal(spec: &str) -> Result<Signal, String> {
    // Blanks are forgiven ("TERM, INT"); a newline or other control character is not: a
    // value that spans lines is a mistake, not a signal.
    let s = spec.trim_matches([' ', '\t']);
    if s.is_empty() {
        return Err("empty signal name".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = s
            .parse()
            .map_err(|_| format!("signal number '{spec}' is out of range"))?;
        return check_range(n, spec);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(nm, _)| *nm == name) {
        return Ok(Signal(*n));
    }
    // SIG32, as sigshim shows the two signals that have no name.
    if !name.is_empty() && name.len() < upper.len() && name.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = name
            .parse()
            .map_err(|_| format!("signal number '{spec}' is out of range"))?;
        return check_range(n, spec);
    }
    let rt = |rest: &str, base: i32, sign: i32| -> Result<Signal, String> {
        if rest.is_empty() {
            return check_range(base, spec);
        }
        let off = rest
            .strip_prefix(if sign > 0 { '+' } else { '-' })
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("unknown signal '{spec}'"))?;
        // RTMIN+N and RTMAX-N name real-time signals only: an offset that leaves the range
        // (RTMAX-33 would be SIGRTMIN-3) is an error, as in util-linux kill.
        let n = off
            .parse::<i32>()
            .ok()
            .and_then(|off| base.checked_add(sign * off))
            .filter(|n| (RTMIN..=RTMAX).contains(n))
            .ok_or_else(|| {
                format!(
                    "signal '{spec}' is out of range (RTMIN+0..RTMIN+{} or RTMAX-0..RTMAX-{})",
                    RTMAX - RTMIN,
                    RTMAX - RTMIN
                )
            })?;
        check_range(n, spec)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(rest, RTMIN, 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(rest, RTMAX, -1);
    }
    Err(format!(
        "unknown signal '{spec}' (use a name such as TERM or SIGINT, a number, or RTMIN+N)"
    ))
}

fn check_range(n: i32, spec: &str) -> Result<Signal, String> {
    if !(1..=RTMAX).contains(&n) {
        return Err(format!("signal '{spec}' is out of range (1..={RTMAX})"));
    }
    Ok(Signal(n))
}

/// What a `--rewrite` rule delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this signal (the same one, or its rewrite).
    Send(Signal),
    /// Deliver nothing (`--rewrite FROM:ignore`).
    Drop,
}

/// A `--rewrite FROM:TO` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub from: Signal,
    pub to: Action,
}

/// Parses `HUP:USR2`, `SIGHUP:ignore`, `1:12`.
pub fn parse_rewrite(spec: &str) -> Result<Rewrite, String> {
    let (from, to) = spec
        .split_once(':')
        .ok_or_else(|| format!("rewrite '{spec}' must look like FROM:TO, e.g. HUP:USR2"))?;
    let from = parse_signal(from)?;
    if from.is_uncatchable() {
        return Err(format!(
            "cannot rewrite {from}: it cannot be caught (signal(7))"
        ));
    }
    if from == Signal::CHLD {
        return Err("cannot rewrite SIGCHLD: sigshim needs it to reap its children".into());
    }
    if from.is_synchronous_fault() {
        return Err(format!(
            "cannot rewrite {from}: it is a synchronous fault signal, which sigshim never intercepts"
        ));
    }
    let to = if to.trim_matches([' ', '\t']).eq_ignore_ascii_case("ignore") {
        Action::Drop
    } else {
        Action::Send(parse_signal(to)?)
    };
    Ok(Rewrite { from, to })
}

/// What reaches the app when sigshim receives a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deliver {
    /// This signal (the same one, or its translation or rewrite).
    Send(Signal),
    /// Nothing.
    Drop,
    /// Job control from a terminal (Ctrl-Z), as dumb-init does it: the app gets TSTP, then
    /// sigshim stops itself; the SIGCONT that resumes sigshim is forwarded like any signal.
    Suspend,
    /// `--restart-on`: consumed, never forwarded; the app is restarted.
    Restart,
}

/// How one received signal is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub deliver: Deliver,
    /// The init asking for a stop: it starts the stop schedule.
    pub stop: bool,
}

/// Where the app's signals go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The app's whole process group (the default: a shell script's children get it too).
    Group,
    /// The app alone (`--single-child`).
    Child,
}

/// Everything the command line says about signals, validated one value at a time but not yet
/// combined (that is [`Plan::new`]'s job).
#[derive(Clone, Debug)]
pub struct Options {
    /// Signals that mean "stop" (`--stop-on`, TERM and INT by default).
    pub stop_on: Vec<Signal>,
    /// Signals that mean "reload" (`--reload-on`, HUP by default): delivered through their
    /// route like any other, and reported to systemd as a reload where sigshim does that
    /// (`machine`). A signal that is also a stop request is a stop request.
    pub reload_on: Vec<Signal>,
    /// `--stop-signal`: what a stop request becomes; `None` is plain forwarding.
    pub stop_signal: Option<Signal>,
    /// `--stop-schedule`.
    pub stop_schedule: Option<Schedule>,
    /// `--kill-after`.
    pub kill_after: Option<Duration>,
    pub rewrites: Vec<Rewrite>,
    pub pdeathsig: Signal,
    /// `--leftover-grace`.
    pub leftover_grace: Option<Duration>,
    /// False with `--no-guard`.
    pub guard: bool,
    pub target: Target,
    /// `--restart-on`.
    pub restart_on: Option<Signal>,
}

/// The one validated signal policy.
#[derive(Clone, Debug)]
pub struct Plan {
    /// One route per signal number (index 0 unused).
    routes: Vec<Route>,
    schedule: Schedule,
    pdeathsig: Signal,
    /// What processes the app leaves behind get, in order, before SIGKILL.
    leftover: Vec<Signal>,
    leftover_grace: Duration,
    /// Set to ignored in the child before exec.
    guard: Vec<Signal>,
    target: Target,
    /// Whether the schedule's timing came from the command line (else from the init above).
    deadline_given: bool,
    /// Received signals that are reload requests (never a stop request too).
    reload: Vec<Signal>,
}

impl Plan {
    /// Builds and checks the plan. `default_deadline` is the init's say when the command line
    /// gives no deadline (Upstart's kill timeout leaves room for 4 s).
    pub fn new(o: &Options, default_deadline: Option<Duration>) -> Result<Plan, String> {
        for s in &o.stop_on {
            if s.is_uncatchable() || s.is_synchronous_fault() || *s == Signal::CHLD {
                return Err(format!("--stop-on: {s} cannot be used as a stop request"));
            }
        }
        for s in &o.reload_on {
            if s.is_uncatchable() || s.is_synchronous_fault() || *s == Signal::CHLD {
                return Err(format!(
                    "--reload-on: {s} cannot be used as a reload request"
                ));
            }
        }
        // Without --stop-signal the schedule's first step is TERM for bookkeeping (what
        // processes left behind get); a stop request itself is delivered as it arrived.
        let first = o.stop_signal.unwrap_or(Signal::TERM);
        let (schedule, deadline_given) = match (&o.stop_schedule, o.kill_after) {
            (Some(s), _) => (s.clone(), true),
            (None, Some(k)) => (Schedule::kill_after(first, k), true),
            (None, None) => match default_deadline {
                Some(d) => (Schedule::kill_after(first, d), false),
                None => (Schedule::forever(first), false),
            },
        };
        // A stop request becomes the schedule's first signal when the operator named one (by
        // --stop-signal or the schedule), else it reaches the app as itself.
        let translate_to = match &o.stop_schedule {
            Some(s) => Some(s.first_signal()),
            None => o.stop_signal,
        };

        let mut routes: Vec<Route> = (0..=RTMAX)
            .map(|n| Route {
                deliver: Deliver::Send(Signal(n)),
                stop: false,
            })
            .collect();
        // A terminal's job control means nothing to a service: TTIN and TTOU reach sigshim
        // only when it touches a terminal from the background. Never pass them on.
        for s in [Signal::TTIN, Signal::TTOU] {
            routes[s.0 as usize].deliver = Deliver::Drop;
        }
        routes[Signal::TSTP.0 as usize].deliver = Deliver::Suspend;
        for &s in &o.stop_on {
            routes[s.0 as usize] = Route {
                deliver: Deliver::Send(translate_to.unwrap_or(s)),
                stop: true,
            };
        }
        // Rewrites come last and win, TSTP and stop requests included (a rewritten stop
        // request still starts the schedule).
        for r in &o.rewrites {
            routes[r.from.0 as usize].deliver = match r.to {
                Action::Send(s) => Deliver::Send(s),
                Action::Drop => Deliver::Drop,
            };
        }
        if let Some(s) = o.restart_on {
            if s.is_uncatchable() || s.is_synchronous_fault() || s == Signal::CHLD {
                return Err(format!("--restart-on: {s} cannot be caught by sigshim"));
            }
            if o.stop_on.contains(&s) {
                return Err(format!(
                    "--restart-on: {s} is also a stop request (--stop-on); pick another signal, e.g. USR1"
                ));
            }
            if o.rewrites.iter().any(|r| r.from == s) {
                return Err(format!("--restart-on: {s} is also rewritten (--rewrite)"));
            }
            routes[s.0 as usize].deliver = Deliver::Restart;
        }

        let mut plan = Plan {
            routes,
            schedule,
            pdeathsig: o.pdeathsig,
            leftover: Vec::new(),
            leftover_grace: Duration::ZERO,
            guard: Vec::new(),
            target: o.target,
            deadline_given,
            reload: o
                .reload_on
                .iter()
                .copied()
                .filter(|s| !o.stop_on.contains(s) && Some(*s) != o.restart_on)
                .collect(),
        };
        // Every signal sigshim sends the app on some path, except to leftovers (which follow
        // from the guard below).
        let delivered = plan.delivered();
        if o.guard {
            // Stop requests translated away (TERM under --stop-signal INT): under systemd's
            // KillMode=control-group the init sends its KillSignal to every process of the
            // unit, the app included; ignored in the child (an ignored disposition survives
            // execve(2)), the raw signal cannot kill an app that only traps the other one.
            plan.guard = (1..=RTMAX)
                .map(Signal)
                .filter(|&s| {
                    let r = plan.route(s);
                    r.stop && r.deliver != Deliver::Send(s) && !delivered.contains(&s)
                })
                .collect();
        }
        // Leftovers get the app's own stop signal and TERM, the signal every program
        // understands, never through the rewrite table (dumb-init's trap) and never a guarded
        // signal: they inherited the ignore, so it would do nothing but delay the SIGKILL.
        for s in [plan.schedule.first_signal(), Signal::TERM] {
            if s != Signal::KILL && !plan.guard.contains(&s) && !plan.leftover.contains(&s) {
                plan.leftover.push(s);
            }
        }
        plan.leftover_grace = o.leftover_grace.unwrap_or_else(|| {
            plan.schedule
                .steps()
                .iter()
                .find_map(|s| s.wait)
                .unwrap_or(Duration::from_secs(2))
        });
        plan.check()?;
        Ok(plan)
    }

    /// The invariant: nothing in the guard is delivered to the app by any path.
    fn check(&self) -> Result<(), String> {
        let mut delivered = self.delivered();
        delivered.extend(&self.leftover);
        match self.guard.iter().find(|s| delivered.contains(s)) {
            Some(s) => Err(format!(
                "internal error: {s} would be ignored in the app and also delivered to it; please report this"
            )),
            None => Ok(()),
        }
    }

    /// Every signal sigshim itself sends to the app: route targets (rewrites, translations,
    /// plain forwarding), every schedule step, the parent-death signal, and job control: TSTP
    /// (Ctrl-Z passed on) and the SIGCONT that follows each stop signal and resumes a
    /// suspended app. Job control is counted whatever the routes say: an app that ignores TSTP
    /// or CONT cannot be suspended or woken by anyone.
    pub fn delivered(&self) -> Vec<Signal> {
        let mut out: Vec<Signal> = Vec::new();
        let mut add = |s: Signal| {
            if !out.contains(&s) {
                out.push(s);
            }
        };
        for (n, r) in self.routes.iter().enumerate().skip(1) {
            match r.deliver {
                // A signal forwarded as itself is delivered only if it is caught at all.
                Deliver::Send(s) if s.0 as usize != n || Signal(n as i32).is_caught() => add(s),
                Deliver::Suspend => add(Signal::TSTP),
                _ => {}
            }
        }
        for step in self.schedule.steps() {
            add(step.signal);
        }
        add(self.pdeathsig);
        add(Signal::TSTP);
        add(Signal::CONT);
        out
    }

    pub fn route(&self, sig: Signal) -> Route {
        self.routes.get(sig.0 as usize).copied().unwrap_or(Route {
            deliver: Deliver::Drop,
            stop: false,
        })
    }

    /// Whether a received signal asks for a reload (`--reload-on`).
    pub fn reload_request(&self, sig: Signal) -> bool {
        self.reload.contains(&sig)
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn pdeathsig(&self) -> Signal {
        self.pdeathsig
    }

    pub fn leftover(&self) -> &[Signal] {
        &self.leftover
    }

    pub fn leftover_grace(&self) -> Duration {
        self.leftover_grace
    }

    pub fn guard(&self) -> &[Signal] {
        &self.guard
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn deadline_given(&self) -> bool {
        self.deadline_given
    }

    /// The signal that restarts the app, if any.
    pub fn restart_on(&self) -> Option<Signal> {
        self.routes
            .iter()
            .position(|r| r.deliver == Deliver::Restart)
            .map(|n| Signal(n as i32))
    }
}

impl Signal {
    /// Whether sigshim reads this signal at all (see [`Signal::caught`]).
    pub fn is_caught(self) -> bool {
        (1..=RTMAX).contains(&self.0) && !self.is_uncatchable() && !self.is_synchronous_fault()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_rt() {
        assert_eq!(parse_signal("INT"), Ok(Signal::INT));
        assert_eq!(parse_signal("sigint"), Ok(Signal::INT));
        assert_eq!(parse_signal("SIGTERM"), Ok(Signal::TERM));
        assert_eq!(parse_signal("15"), Ok(Signal::TERM));
        assert_eq!(parse_signal("RTMIN"), Ok(Signal(34)));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(Signal(37)));
        assert_eq!(parse_signal("rtmax-1"), Ok(Signal(63)));
        assert_eq!(parse_signal("32"), Ok(Signal(32)));
        assert_eq!(parse_signal("33"), Ok(Signal(33)));
        assert_eq!(parse_signal("64"), Ok(Signal(64)));
        for bad in [
            "",
            "0",
            "65",
            "-1",
            "FOO",
            "SIG",
            "RTMIN+",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+99",
            "1x",
            "RTMAX-31",
            "RTMAX-49",
            "RTMIN+2147483647",
            "RTMAX-2147483647",
            "\nIO",
            "INT\n",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Signal::caught() {
            assert_eq!(parse_signal(&s.to_string()), Ok(s), "{s}");
        }
        assert_eq!(Signal(33).to_string(), "SIG33");
        assert_eq!(Signal(37).to_string(), "SIGRTMIN+3");
    }

    #[test]
    fn rewrite_rules() {
        let r = parse_rewrite("HUP:USR2").unwrap();
        assert_eq!(r.from, Signal::HUP);
        assert_eq!(r.to, Action::Send(Signal(libc::SIGUSR2)));
        assert_eq!(parse_rewrite("hup:IGNORE").unwrap().to, Action::Drop);
        assert_eq!(
            parse_rewrite("HUP:34").unwrap().to,
            Action::Send(Signal(34))
        );
        for bad in [
            "KILL:INT", "STOP:INT", "CHLD:INT", "SEGV:INT", "HUP", "HUP:FOO",
        ] {
            assert!(parse_rewrite(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn options() -> Options {
        Options {
            stop_on: vec![Signal::TERM, Signal::INT],
            reload_on: vec![Signal::HUP],
            stop_signal: None,
            stop_schedule: None,
            kill_after: None,
            rewrites: Vec::new(),
            pdeathsig: Signal::KILL,
            leftover_grace: None,
            guard: true,
            target: Target::Group,
            restart_on: None,
        }
    }

    fn plan(f: impl FnOnce(&mut Options)) -> Plan {
        let mut o = options();
        f(&mut o);
        Plan::new(&o, None).expect("valid plan")
    }

    #[test]
    fn stop_translation_and_guard() {
        let p = plan(|o| o.stop_signal = Some(Signal::INT));
        assert_eq!(
            p.route(Signal::TERM),
            Route {
                deliver: Deliver::Send(Signal::INT),
                stop: true
            }
        );
        assert_eq!(p.guard(), [Signal::TERM]);
        // The default: plain forwarding, both stop requests delivered as themselves, no guard.
        let p = plan(|_| {});
        assert_eq!(p.route(Signal::INT).deliver, Deliver::Send(Signal::INT));
        assert!(p.route(Signal::INT).stop);
        assert!(p.guard().is_empty());
        // An explicit TERM translates INT into TERM, and guards INT.
        let p = plan(|o| o.stop_signal = Some(Signal::TERM));
        assert_eq!(p.guard(), [Signal::INT]);
        // QUIT as stop signal: both TERM and INT are guarded.
        let p = plan(|o| o.stop_signal = Some(Signal::QUIT));
        assert_eq!(p.guard(), [Signal::INT, Signal::TERM]);
        // A rewrite that delivers TERM for USR1 keeps TERM out of the guard.
        let p = plan(|o| {
            o.stop_signal = Some(Signal::INT);
            o.rewrites = vec![parse_rewrite("USR1:TERM").unwrap()];
        });
        assert!(p.guard().is_empty());
        let p = plan(|o| {
            o.stop_signal = Some(Signal::INT);
            o.guard = false;
        });
        assert!(p.guard().is_empty());
        let p = plan(|o| {
            o.stop_signal = Some(Signal::INT);
            o.stop_on = vec![Signal::TERM];
        });
        assert_eq!(p.guard(), [Signal::TERM]);
    }

    /// Bug: `INT/20s/TERM/5s/KILL` guarded TERM, so the TERM step did nothing.
    #[test]
    fn a_schedule_step_is_never_guarded() {
        let p = plan(|o| o.stop_schedule = Some(Schedule::parse("INT/20s/TERM/5s/KILL").unwrap()));
        assert_eq!(p.route(Signal::TERM).deliver, Deliver::Send(Signal::INT));
        assert!(p.guard().is_empty(), "{:?}", p.guard());
        assert_eq!(p.leftover(), [Signal::INT, Signal::TERM]);
    }

    /// Bug: `--pdeathsig TERM --stop-signal INT` guarded TERM, so the app outlived sigshim.
    #[test]
    fn the_parent_death_signal_is_never_guarded() {
        let p = plan(|o| {
            o.stop_signal = Some(Signal::INT);
            o.pdeathsig = Signal::TERM;
        });
        assert!(p.guard().is_empty());
    }

    /// Bug: leftovers got TERM, which the guard had left ignored in them.
    #[test]
    fn leftovers_never_get_a_guarded_signal() {
        let p = plan(|o| o.stop_signal = Some(Signal::INT));
        assert_eq!(p.guard(), [Signal::TERM]);
        assert_eq!(p.leftover(), [Signal::INT]);
        let p = plan(|o| o.stop_signal = Some(Signal::INT));
        assert!(p.check().is_ok());
        let p = plan(|_| {});
        assert_eq!(p.leftover(), [Signal::TERM]);
    }

    #[test]
    fn job_control() {
        let p = plan(|_| {});
        assert_eq!(p.route(Signal::TTIN).deliver, Deliver::Drop);
        assert_eq!(p.route(Signal::TSTP).deliver, Deliver::Suspend);
        assert_eq!(p.route(Signal::HUP).deliver, Deliver::Send(Signal::HUP));
        // Bug: `--rewrite TSTP:ignore` was accepted, yet the app got TSTP.
        let p = plan(|o| o.rewrites = vec![parse_rewrite("TSTP:ignore").unwrap()]);
        assert_eq!(p.route(Signal::TSTP).deliver, Deliver::Drop);
        // Job control is never guarded, even as a stop request translated away.
        let p = plan(|o| {
            o.stop_on = vec![Signal::TSTP];
            o.stop_signal = Some(Signal::INT);
        });
        assert!(p.guard().is_empty());
    }

    #[test]
    fn deadlines() {
        let p = plan(|o| o.kill_after = Some(Duration::from_secs(3)));
        assert_eq!(p.leftover_grace(), Duration::from_secs(3));
        assert!(p.deadline_given());
        let mut o = options();
        o.stop_signal = Some(Signal::INT);
        let p = Plan::new(&o, Some(Duration::from_secs(4))).unwrap();
        assert_eq!(
            p.schedule(),
            &Schedule::kill_after(Signal::INT, Duration::from_secs(4))
        );
        assert!(!p.deadline_given());
        assert_eq!(plan(|_| {}).leftover_grace(), Duration::from_secs(2));
    }

    #[test]
    fn reload_requests() {
        let p = plan(|_| {});
        assert!(p.reload_request(Signal::HUP));
        assert!(!p.reload_request(Signal::TERM));
        // A stop request is never also a reload.
        let p = plan(|o| o.reload_on = vec![Signal::HUP, Signal::TERM]);
        assert!(!p.reload_request(Signal::TERM));
        assert!(p.route(Signal::TERM).stop);
        let p = plan(|o| o.reload_on = Vec::new());
        assert!(!p.reload_request(Signal::HUP));
        let mut o = options();
        o.reload_on = vec![Signal::KILL];
        assert!(Plan::new(&o, None).is_err());
    }

    #[test]
    fn refused_stop_requests() {
        for s in [Signal::KILL, Signal::CHLD, Signal(libc::SIGSEGV)] {
            let mut o = options();
            o.stop_on = vec![s];
            assert!(Plan::new(&o, None).is_err(), "{s}");
        }
    }
}
