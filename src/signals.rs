//! Signal names and numbers, and the translation table.
//!
//! This module is pure: it parses what the operator wrote (`INT`, `SIGINT`, `2`, `rtmin+3`) into
//! signal numbers and decides, for each signal sigshim receives, what reaches the child and
//! whether it starts the stop sequence. Sending and receiving signals is `supervise`'s job; the
//! set of signals sigshim listens to is decided here so that the two cannot disagree.

use std::fmt;

/// A signal number, 1..=SIGRTMAX. Kept as a plain integer so that real-time signals (which have
/// no libc constant of their own) are first-class.
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

/// The lowest real-time signal the C library leaves to applications (glibc keeps 32 and 33 for
/// its threads, musl 32 to 34), so `RTMIN+3` means the same to sigshim as to the app.
pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

impl Signal {
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
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

    /// Every signal sigshim takes in through its signal descriptor: all catchable ones except
    /// the synchronous faults and the RT signals the C library keeps for its threads.
    pub fn caught() -> impl Iterator<Item = Signal> {
        (1..=rtmax())
            .filter(|&n| n <= 31 || n >= rtmin())
            .map(Signal)
            .filter(|s| !s.is_uncatchable() && !s.is_synchronous_fault())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return write!(f, "SIG{name}");
        }
        let (min, max) = (rtmin(), rtmax());
        if self.0 == min {
            write!(f, "SIGRTMIN")
        } else if self.0 == max {
            write!(f, "SIGRTMAX")
        } else if self.0 > min && self.0 < max {
            write!(f, "SIGRTMIN+{}", self.0 - min)
        } else {
            write!(f, "signal {}", self.0)
        }
    }
}

/// Parses `INT`, `SIGINT`, `sigint`, `2`, `RTMIN`, `SIGRTMIN+3`, `RTMAX-1`.
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
    let rt = |rest: &str, base: i32, sign: i32| -> Result<Signal, String> {
        if rest.is_empty() {
            return check_range(base, spec);
        }
        let off = rest
            .strip_prefix(if sign > 0 { '+' } else { '-' })
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("unknown signal '{spec}'"))?;
        // RTMIN+N and RTMAX-N name real-time signals only: an offset that leaves the range
        // (RTMAX-33 would be SIGSYS) is an error, as in util-linux kill.
        let n = off
            .parse::<i32>()
            .ok()
            .and_then(|off| base.checked_add(sign * off))
            .filter(|n| (rtmin()..=rtmax()).contains(n))
            .ok_or_else(|| {
                format!(
                    "signal '{spec}' is out of range (RTMIN+0..RTMIN+{} or RTMAX-0..RTMAX-{})",
                    rtmax() - rtmin(),
                    rtmax() - rtmin()
                )
            })?;
        check_range(n, spec)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(rest, rtmin(), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(rest, rtmax(), -1);
    }
    Err(format!(
        "unknown signal '{spec}' (use a name such as TERM or SIGINT, a number, or RTMIN+N)"
    ))
}

fn check_range(n: i32, spec: &str) -> Result<Signal, String> {
    let max = rtmax();
    if n < 1 || n > max {
        return Err(format!("signal '{spec}' is out of range (1..={max})"));
    }
    if n > 31 && n < rtmin() {
        return Err(format!(
            "signal {n} is reserved by the C library for its threads; use RTMIN or above"
        ));
    }
    Ok(Signal(n))
}

/// What reaches the child when sigshim receives a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this signal (the same one, or its rewrite).
    Send(Signal),
    /// Deliver nothing (`--rewrite FROM:ignore`, or a signal that makes no sense for a service).
    Drop,
}

/// How a received signal is handled, decided once per signal number at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub action: Action,
    /// This signal is the init asking the service to stop: it starts the stop schedule.
    pub stop_request: bool,
}

/// The translation table: one route per signal number, built from the command line.
#[derive(Clone, Debug)]
pub struct Table {
    routes: Vec<Route>,
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

impl Table {
    /// `stop_on`: the signals an init uses to ask for a stop (TERM and INT by default), each
    /// of which becomes `stop_signal` for the child, or reaches it as itself when no stop signal
    /// was asked for (plain forwarding: an image whose STOPSIGNAL is INT keeps getting INT).
    /// `rewrites` override what is delivered (a rewritten stop request still starts the stop
    /// sequence).
    pub fn new(stop_on: &[Signal], stop_signal: Option<Signal>, rewrites: &[Rewrite]) -> Table {
        let max = rtmax() as usize;
        let mut routes: Vec<Route> = (0..=max)
            .map(|n| Route {
                action: Action::Send(Signal(n as i32)),
                stop_request: false,
            })
            .collect();
        // A terminal's job control means nothing to a service. TTIN/TTOU only reach sigshim
        // when it touches a terminal from the background; never pass them on. TSTP is handled
        // by `supervise` (dumb-init's approach: stop the child, then stop ourselves).
        for s in [Signal::TTIN, Signal::TTOU] {
            routes[s.0 as usize].action = Action::Drop;
        }
        for &s in stop_on {
            routes[s.0 as usize] = Route {
                action: Action::Send(stop_signal.unwrap_or(s)),
                stop_request: true,
            };
        }
        for r in rewrites {
            routes[r.from.0 as usize].action = r.to;
        }
        Table { routes }
    }

    pub fn route(&self, sig: Signal) -> Route {
        self.routes.get(sig.0 as usize).copied().unwrap_or(Route {
            action: Action::Drop,
            stop_request: false,
        })
    }

    /// The direct-delivery guard: stop requests that are translated *away* (TERM when the app
    /// wants INT). Under systemd's `KillMode=control-group` the init sends its KillSignal to
    /// every process of the unit, the app included; with these ignored in the child (an ignored
    /// disposition survives execve(2)) the raw signal cannot kill an app that only traps the
    /// other one. Never a signal that sigshim itself delivers: many programs keep an inherited
    /// ignore and would then never see the stop.
    pub fn guard(&self) -> Vec<Signal> {
        let delivered_for_another = |sig: Signal| {
            self.routes
                .iter()
                .enumerate()
                .any(|(m, r)| m as i32 != sig.0 && r.action == Action::Send(sig))
        };
        self.routes
            .iter()
            .enumerate()
            .map(|(n, r)| (Signal(n as i32), r))
            .filter(|(sig, r)| r.stop_request && r.action != Action::Send(*sig))
            .filter(|(sig, _)| !delivered_for_another(*sig))
            .map(|(sig, _)| sig)
            .collect()
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
        assert_eq!(parse_signal("RTMIN"), Ok(Signal(rtmin())));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(Signal(rtmin() + 3)));
        assert_eq!(parse_signal("rtmax-1"), Ok(Signal(rtmax() - 1)));
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
            "RTMAX-33",
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
    }

    #[test]
    fn rewrite_rules() {
        let r = parse_rewrite("HUP:USR2").unwrap();
        assert_eq!(r.from, Signal(libc::SIGHUP));
        assert_eq!(r.to, Action::Send(Signal(libc::SIGUSR2)));
        assert_eq!(parse_rewrite("hup:IGNORE").unwrap().to, Action::Drop);
        for bad in [
            "KILL:INT", "STOP:INT", "CHLD:INT", "SEGV:INT", "HUP", "HUP:FOO",
        ] {
            assert!(parse_rewrite(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn stop_translation_and_guard() {
        let t = Table::new(&[Signal::TERM, Signal::INT], Some(Signal::INT), &[]);
        assert_eq!(
            t.route(Signal::TERM),
            Route {
                action: Action::Send(Signal::INT),
                stop_request: true
            }
        );
        assert_eq!(t.guard(), vec![Signal::TERM]);
        // The default: plain forwarding, both stop requests delivered as themselves, no guard.
        let t = Table::new(&[Signal::TERM, Signal::INT], None, &[]);
        assert_eq!(t.route(Signal::INT).action, Action::Send(Signal::INT));
        assert!(t.route(Signal::INT).stop_request);
        assert!(t.guard().is_empty());
        // An explicit TERM translates INT into TERM, and guards INT.
        let t = Table::new(&[Signal::TERM, Signal::INT], Some(Signal::TERM), &[]);
        assert_eq!(t.guard(), vec![Signal::INT]);
        // QUIT as stop signal: both TERM and INT are guarded.
        let t = Table::new(
            &[Signal::TERM, Signal::INT],
            Some(Signal(libc::SIGQUIT)),
            &[],
        );
        assert_eq!(t.guard(), vec![Signal::INT, Signal::TERM]);
        // A rewrite that delivers TERM for USR1 keeps TERM out of the guard.
        let r = parse_rewrite("USR1:TERM").unwrap();
        let t = Table::new(&[Signal::TERM, Signal::INT], Some(Signal::INT), &[r]);
        assert!(t.guard().is_empty());
    }

    #[test]
    fn job_control_dropped() {
        let t = Table::new(&[Signal::TERM], None, &[]);
        assert_eq!(t.route(Signal::TTIN).action, Action::Drop);
        assert_eq!(
            t.route(Signal(libc::SIGHUP)).action,
            Action::Send(Signal(libc::SIGHUP))
        );
    }
}
