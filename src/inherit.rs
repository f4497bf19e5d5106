//! What the init hands the main process, and how it reaches the app intact.
//!
//! systemd addresses some of what it hands the service to the main PID, which is sigshim:
//! `LISTEN_PID` (socket activation, sd_listen_fds(3)) and `WATCHDOG_PID` (sd_watchdog_enabled(3))
//! name sigshim, and an app that checks them as libsystemd does ("is this for me?") would ignore
//! its sockets or never ping. So in the child each of them is rewritten to the app's own PID
//! when it names sigshim (another value is someone else's and left alone). The child cannot
//! format its PID after fork without allocating, so the entry is prepared before fork with a
//! fixed-width slot of [`PID_SLOT`] bytes, and the child writes its digits and a NUL there with
//! [`write_pid`] (a few stores: async-signal-safe). `LISTEN_PIDFDID` (systemd >= 258: the
//! identity of the main process's pidfd) names sigshim too and is dropped with the rewrite;
//! libsystemd checks it only when it is set.
//!
//! The socket-activation descriptors themselves (3 .. 3+LISTEN_FDS-1) are left exactly where
//! they are: sigshim never closes them, everything it opens is close-on-exec and lands above
//! them (they are open), and the descriptors the child is handed (`--ready fd:N`, and
//! `--notify-fd N`, which is sigshim's own) may not be numbers in that range ([`listen_fds`]).
//!
//! The watchdog (`WatchdogSec=`) can only be fed by the app: with `--ready` other than `notify`
//! the app has no notify socket, nothing pings, and systemd kills the service when the first
//! period ends. sigshim does not ping on the app's behalf (a wrapper that pings while the app
//! hangs would defeat the watchdog); it says so at start ([`watchdog_warning`]).
//!
//! Last, `--log auto` looks at what stdout and stderr are ([`Sink`]): sigshim captures the
//! app's output only where nobody else reads it, that is when each of them is systemd's journal
//! stream for this very service (`JOURNAL_STREAM`, "device:inode" of the stream, matches) or
//! /dev/null. A terminal, a pipe (a supervisor's logger), a file or anything else belongs to
//! whoever set it up, and the app inherits it.
//!
//! Everything here is pure except [`Sink::of`] (one fstat) and [`me`].

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Bytes reserved after `NAME=` for a PID: ten digits (`i32::MAX` has ten) and the NUL.
pub const PID_SLOT: usize = 11;

/// The variables that name the main PID and are rewritten to the app's.
pub const PID_VARS: [&str; 2] = ["LISTEN_PID", "WATCHDOG_PID"];

/// sigshim's own PID.
pub fn me() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Whether `value` is exactly the decimal `pid` (what libsystemd's parse_pid accepts: digits,
/// no sign; blanks around are forgiven as there).
pub fn names(value: &OsStr, pid: i32) -> bool {
    let s = value.as_bytes().trim_ascii();
    !s.is_empty()
        && s.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            == Some(pid)
}

/// The child's environment, built before fork: `NAME=value` entries, each with its NUL, and
/// which of them hold a PID slot for the child to fill.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChildEnv {
    pub entries: Vec<Vec<u8>>,
    /// Indexes into `entries` whose last [`PID_SLOT`] bytes are the slot.
    pub pid_slots: Vec<usize>,
}

/// Builds the child's environment from `vars` (sigshim's own): `remove`d and `set` names as
/// the caller says, each of [`PID_VARS`] that names `me` turned into a slot for the child's PID
/// (and `LISTEN_PIDFDID` dropped with `LISTEN_PID`). Entries with a NUL byte cannot be passed
/// and are left out, as before.
pub fn child_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    me: i32,
    remove: &[OsString],
    set: &[(OsString, OsString)],
) -> ChildEnv {
    let vars: Vec<(OsString, OsString)> = vars
        .into_iter()
        .filter(|(k, _)| !remove.contains(k) && !set.iter().any(|(s, _)| s == k))
        .chain(set.iter().cloned())
        .collect();
    let listen_rewritten = vars.iter().any(|(k, v)| k == "LISTEN_PID" && names(v, me));
    let mut env = ChildEnv::default();
    for (k, v) in vars {
        if listen_rewritten && k == "LISTEN_PIDFDID" {
            continue;
        }
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        if PID_VARS.iter().any(|p| k == *p) && names(&v, me) {
            // Filled in the child; until then a valid number (sigshim's own) and NULs.
            let start = kv.len();
            kv.resize(start + PID_SLOT, 0);
            write_pid(&mut kv[start..], me);
            env.pid_slots.push(env.entries.len());
        } else {
            if k.as_bytes().contains(&0) || v.as_bytes().contains(&0) {
                continue;
            }
            kv.extend_from_slice(v.as_bytes());
            kv.push(0);
        }
        env.entries.push(kv);
    }
    env
}

/// Writes `pid` in decimal and a NUL at the start of `slot` (at least [`PID_SLOT`] bytes).
/// Async-signal-safe: no allocation, no call, only stores into `slot`; used in the forked child.
pub fn write_pid(slot: &mut [u8], pid: i32) {
    let mut n = pid.unsigned_abs();
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut i = 0;
    while i < len && i + 1 < slot.len() {
        slot[i] = digits[len - 1 - i];
        i += 1;
    }
    if i < slot.len() {
        slot[i] = 0;
    }
}

/// The socket-activation descriptors sigshim was handed, as a range of numbers: `LISTEN_FDS`
/// descriptors from 3, when `LISTEN_PID` names `me` (or is absent, which is how a caller that
/// is not systemd may set it up). `None` when there are none for sigshim.
pub fn listen_fds(
    listen_pid: Option<&OsStr>,
    listen_fds: Option<&OsStr>,
    me: i32,
) -> Option<std::ops::Range<i32>> {
    let n: i32 = std::str::from_utf8(listen_fds?.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if n <= 0 || listen_pid.is_some_and(|p| !names(p, me)) {
        return None;
    }
    Some(3..3i32.saturating_add(n))
}

/// [`listen_fds`] from sigshim's own environment.
pub fn listen_fds_here() -> Option<std::ops::Range<i32>> {
    listen_fds(
        std::env::var_os("LISTEN_PID").as_deref(),
        std::env::var_os("LISTEN_FDS").as_deref(),
        me(),
    )
}

/// Refuses a descriptor number the child would get (or sigshim would write to) that is one of
/// the socket-activation descriptors: handing it over would replace the app's socket.
pub fn check_fd(option: &str, fd: i32, listen: Option<std::ops::Range<i32>>) -> Result<(), String> {
    match listen {
        Some(r) if r.contains(&fd) => Err(format!(
            "{option}: descriptor {fd} is one of the sockets systemd passed (LISTEN_FDS: {}..={}); pick a number from {} up",
            r.start,
            r.end - 1,
            r.end
        )),
        _ => Ok(()),
    }
}

/// The warning for a watchdog nothing will feed: `WATCHDOG_USEC` is set for sigshim
/// (`WATCHDOG_PID` names it, or is absent), systemd listens (`NOTIFY_SOCKET`), and the app
/// has no notify socket because `--ready` is not `notify`.
pub fn watchdog_warning(
    watchdog_usec: Option<&OsStr>,
    watchdog_pid: Option<&OsStr>,
    notify_socket: bool,
    ready_notify: bool,
    me: i32,
) -> Option<String> {
    let usec: u64 = std::str::from_utf8(watchdog_usec?.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if usec == 0 || ready_notify || !notify_socket || watchdog_pid.is_some_and(|p| !names(p, me)) {
        return None;
    }
    let period = std::time::Duration::from_micros(usec);
    Some(format!(
        "the unit has a watchdog (WatchdogSec={period:?}) but the app cannot ping it: only --ready notify gives the app a notify socket; systemd will kill the service {period:?} after it started. Use --ready notify with an app that sends WATCHDOG=1, or remove WatchdogSec="
    ))
}

/// What one of sigshim's standard descriptors is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// systemd's journal stream for this service (`JOURNAL_STREAM` matches).
    Journal,
    /// /dev/null.
    Null,
    /// Closed: nobody reads it either.
    Closed,
    Terminal,
    Pipe,
    File,
    /// A socket that is not the journal stream (a log driver, a supervisor).
    Socket,
    /// A character device other than /dev/null, or anything else.
    Other,
}

impl Sink {
    /// Looks at descriptor `fd`; `journal_stream` is `JOURNAL_STREAM`'s value ("DEV:INODE").
    pub fn of(fd: i32, journal_stream: Option<&OsStr>) -> Sink {
        // SAFETY: fstat into a zeroed stat buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above; fd may be closed (EBADF is an answer).
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Sink::Closed;
        }
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(fd) } == 1;
        Sink::classify(
            st.st_mode,
            st.st_dev,
            st.st_ino,
            st.st_rdev,
            tty,
            journal_stream.and_then(parse_journal_stream),
        )
    }

    /// The pure part of [`Sink::of`].
    pub fn classify(
        mode: u32,
        dev: u64,
        ino: u64,
        rdev: u64,
        tty: bool,
        journal: Option<(u64, u64)>,
    ) -> Sink {
        let kind = mode & libc::S_IFMT;
        if journal == Some((dev, ino)) {
            return Sink::Journal;
        }
        match kind {
            libc::S_IFCHR if rdev == libc::makedev(1, 3) => Sink::Null,
            _ if tty => Sink::Terminal,
            libc::S_IFIFO => Sink::Pipe,
            libc::S_IFREG => Sink::File,
            libc::S_IFSOCK => Sink::Socket,
            _ => Sink::Other,
        }
    }

    /// Nobody else reads what goes there: sigshim may take it.
    pub fn unread(self) -> bool {
        matches!(self, Sink::Journal | Sink::Null | Sink::Closed)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Sink::Journal => "systemd's journal stream for this service",
            Sink::Null => "/dev/null",
            Sink::Closed => "closed",
            Sink::Terminal => "a terminal",
            Sink::Pipe => "a pipe",
            Sink::File => "a file",
            Sink::Socket => "a socket that is not the journal stream",
            Sink::Other => "a device",
        }
    }
}

/// `JOURNAL_STREAM=DEV:INODE`, both decimal (systemd.exec(5)).
pub fn parse_journal_stream(v: &OsStr) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(v.as_bytes()).ok()?;
    let (d, i) = s.trim().split_once(':')?;
    Some((d.parse().ok()?, i.parse().ok()?))
}

/// `--log auto`'s first question: may sigshim capture the app's output at all? Only when
/// neither stdout nor stderr is read by anyone else. Returns the answer and why, for `-v`.
pub fn auto_capture(stdout: Sink, stderr: Sink) -> (bool, String) {
    let both = format!(
        "stdout is {}, stderr is {}",
        stdout.describe(),
        stderr.describe()
    );
    if stdout.unread() && stderr.unread() {
        (true, both)
    } else {
        (false, format!("{both}: the app writes there itself"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        v.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn text(env: &ChildEnv) -> Vec<String> {
        env.entries
            .iter()
            .map(|e| {
                let end = e.iter().position(|&b| b == 0).expect("NUL");
                String::from_utf8_lossy(&e[..end]).into_owned()
            })
            .collect()
    }

    #[test]
    fn pid_variables_naming_sigshim_become_slots() {
        let env = child_env(
            vars(&[
                ("PATH", "/bin"),
                ("LISTEN_PID", "4242"),
                ("LISTEN_FDS", "2"),
                ("LISTEN_PIDFDID", "77"),
                ("WATCHDOG_PID", "4242"),
                ("WATCHDOG_USEC", "2000000"),
            ]),
            4242,
            &[],
            &[],
        );
        assert_eq!(
            text(&env),
            [
                "PATH=/bin",
                "LISTEN_PID=4242",
                "LISTEN_FDS=2",
                "WATCHDOG_PID=4242",
                "WATCHDOG_USEC=2000000"
            ]
        );
        assert_eq!(env.pid_slots, [1, 3]);
        // The child fills the slot with its own PID, shorter or longer.
        let mut env = env;
        for &i in &env.pid_slots.clone() {
            let e = &mut env.entries[i];
            let at = e.len() - PID_SLOT;
            write_pid(&mut e[at..], 7);
        }
        assert_eq!(text(&env)[1], "LISTEN_PID=7");
        let e = &mut env.entries[3];
        let at = e.len() - PID_SLOT;
        write_pid(&mut e[at..], i32::MAX);
        assert_eq!(text(&env)[3], "WATCHDOG_PID=2147483647");
    }

    #[test]
    fn other_pids_are_left_alone() {
        let env = child_env(
            vars(&[
                ("LISTEN_PID", "99"),
                ("LISTEN_PIDFDID", "77"),
                ("WATCHDOG_PID", "42x"),
            ]),
            4242,
            &[],
            &[],
        );
        assert_eq!(
            text(&env),
            ["LISTEN_PID=99", "LISTEN_PIDFDID=77", "WATCHDOG_PID=42x"]
        );
        assert!(env.pid_slots.is_empty());
    }

    #[test]
    fn remove_and_set_apply_first() {
        let env = child_env(
            vars(&[
                ("NOTIFY_SOCKET", "/run/systemd/notify"),
                ("A", "1"),
                ("B", "2"),
            ]),
            1,
            &["NOTIFY_SOCKET".into()],
            &[
                ("B".into(), "3".into()),
                ("WATCHDOG_PID".into(), "1".into()),
            ],
        );
        assert_eq!(text(&env), ["A=1", "B=3", "WATCHDOG_PID=1"]);
        assert_eq!(env.pid_slots, [2]);
    }

    #[test]
    fn names_is_exact() {
        assert!(names(OsStr::new("4242"), 4242));
        assert!(names(OsStr::new(" 4242\n"), 4242));
        assert!(!names(OsStr::new("+4242"), 4242));
        assert!(!names(OsStr::new("42420"), 4242));
        assert!(!names(OsStr::new(""), 4242));
        assert!(!names(OsStr::new("99999999999"), 4242));
    }

    #[test]
    fn write_pid_digits() {
        let mut slot = [b'x'; PID_SLOT];
        for (pid, want) in [(0, "0"), (1, "1"), (10, "10"), (4194304, "4194304")] {
            write_pid(&mut slot, pid);
            let end = slot.iter().position(|&b| b == 0).unwrap();
            assert_eq!(&slot[..end], want.as_bytes());
        }
    }

    #[test]
    fn listen_range() {
        let o = |s: &str| Some(OsString::from(s));
        let r =
            |p: Option<OsString>, n: Option<OsString>| listen_fds(p.as_deref(), n.as_deref(), 50);
        assert_eq!(r(o("50"), o("2")), Some(3..5));
        assert_eq!(r(None, o("1")), Some(3..4));
        assert_eq!(r(o("51"), o("2")), None);
        assert_eq!(r(o("50"), o("0")), None);
        assert_eq!(r(o("50"), o("x")), None);
        assert_eq!(r(o("50"), None), None);
        assert!(check_fd("--ready fd:4", 4, Some(3..5)).is_err());
        assert!(check_fd("--ready fd:5", 5, Some(3..5)).is_ok());
        assert!(check_fd("--notify-fd", 3, None).is_ok());
    }

    #[test]
    fn watchdog_warning_only_when_nothing_can_ping() {
        let o = |s: &str| Some(OsString::from(s));
        let w = |usec: Option<OsString>, pid: Option<OsString>, sock: bool, notify: bool| {
            watchdog_warning(usec.as_deref(), pid.as_deref(), sock, notify, 7)
        };
        let msg = w(o("2000000"), o("7"), true, false).expect("warning");
        assert!(
            msg.contains("WatchdogSec=2s") && msg.contains("--ready notify"),
            "{msg}"
        );
        assert!(w(o("2000000"), None, true, false).is_some());
        assert!(w(o("2000000"), o("7"), true, true).is_none());
        assert!(w(o("2000000"), o("8"), true, false).is_none());
        assert!(w(o("2000000"), o("7"), false, false).is_none());
        assert!(w(o("0"), o("7"), true, false).is_none());
        assert!(w(None, o("7"), true, false).is_none());
    }

    #[test]
    fn sinks() {
        let null = libc::makedev(1, 3);
        let c = |mode, tty, journal| Sink::classify(mode, 5, 9, null, tty, journal);
        assert_eq!(c(libc::S_IFSOCK, false, Some((5, 9))), Sink::Journal);
        assert_eq!(c(libc::S_IFSOCK, false, Some((5, 8))), Sink::Socket);
        assert_eq!(c(libc::S_IFCHR, false, None), Sink::Null);
        assert_eq!(
            Sink::classify(libc::S_IFCHR, 5, 9, libc::makedev(136, 0), true, None),
            Sink::Terminal
        );
        assert_eq!(c(libc::S_IFIFO, false, None), Sink::Pipe);
        assert_eq!(c(libc::S_IFREG, false, None), Sink::File);
        assert_eq!(
            parse_journal_stream(OsStr::new("8:12345")),
            Some((8, 12345))
        );
        assert_eq!(parse_journal_stream(OsStr::new("8-12345")), None);
        assert!(auto_capture(Sink::Journal, Sink::Journal).0);
        assert!(auto_capture(Sink::Null, Sink::Journal).0);
        assert!(!auto_capture(Sink::Terminal, Sink::Null).0);
        assert!(!auto_capture(Sink::Journal, Sink::File).0);
        assert!(!auto_capture(Sink::Pipe, Sink::Pipe).0);
    }

    #[test]
    fn real_descriptors() {
        let null = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(Sink::of(null.as_raw_fd(), None), Sink::Null);
        let (r, _w) = crate::sys::pipe().unwrap();
        assert_eq!(Sink::of(r.as_raw_fd(), None), Sink::Pipe);
        assert_eq!(Sink::of(-1, None), Sink::Closed);
    }
}
