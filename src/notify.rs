//! Readiness: deciding when the app is ready (`--ready`), and telling the init above.
//!
//! The app is ready right after exec (`spawn`), when it sends `READY=1` itself (`notify`: it gets
//! a notify socket of sigshim's own, and sigshim relays what it says from sigshim's PID so that
//! systemd's default `NotifyAccess=main` accepts it, puma#3086), when an output line matches
//! (`log:`, checked by `output`), when a TCP port accepts (`tcp:`), when a file appears
//! (`file:`), or when it writes a newline on a descriptor (`fd:`, s6's notification-fd).
//! Probes that have no event to wait on (tcp, file) are retried every 100 ms until ready (the
//! timer is the state machine's, and stops for good once the app is ready, so an idle sigshim
//! still makes no system calls).
//!
//! Detecting ([`Detector`]) and announcing ([`Announcer`]) are apart: the same event is
//! delivered to whatever is above, systemd (`READY=1` on `$NOTIFY_SOCKET`, via the sd-notify
//! crate), s6 (`--notify-fd`), Upstart's `expect stop` (sigshim stops itself once; Upstart
//! continues it), or a ready file. `supervise` owns the loop; this module owns the descriptors
//! and the protocol.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// `--ready MODE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Spawn,
    Notify,
    Log(String),
    Tcp(String, u16),
    File(PathBuf),
    Fd(i32),
    /// Still running this long after exec: a guess, for an app that can tell nothing.
    Alive(Duration),
}

/// Parses `spawn`, `notify`, `log:REGEX`, `tcp:HOST:PORT`, `file:PATH`, `fd:N`,
/// `alive:DURATION`.
pub fn parse_mode(spec: &str) -> Result<Mode, String> {
    let bad = |why: &str| format!("--ready '{spec}': {why}");
    match spec.split_once(':') {
        None if spec == "spawn" => Ok(Mode::Spawn),
        None if spec == "notify" => Ok(Mode::Notify),
        Some(("log", re)) => {
            regex_lite::Regex::new(re).map_err(|e| bad(&format!("invalid regex: {e}")))?;
            Ok(Mode::Log(re.to_string()))
        }
        Some(("tcp", hp)) => {
            let (host, port) = hp
                .rsplit_once(':')
                .ok_or_else(|| bad("expected tcp:HOST:PORT"))?;
            let port = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(bad("empty host"));
            }
            Ok(Mode::Tcp(host.to_string(), port))
        }
        Some(("file", p)) if !p.is_empty() => Ok(Mode::File(PathBuf::from(p))),
        Some(("fd", n)) => match n.parse::<i32>() {
            Ok(n) if (3..=1024).contains(&n) => Ok(Mode::Fd(n)),
            _ => Err(bad("N must be a descriptor number from 3 to 1024")),
        },
        Some(("alive", d)) => match crate::schedule::parse_duration(d) {
            Ok(d) if !d.is_zero() => Ok(Mode::Alive(d)),
            Ok(_) => Err(bad("alive:0 is spawn; give the app time (e.g. alive:2s)")),
            Err(e) => Err(bad(&e)),
        },
        _ => Err(bad(
            "expected spawn, notify, log:REGEX, tcp:HOST:PORT, file:PATH, fd:N or alive:DURATION",
        )),
    }
}

/// How readiness is reported upwards (besides `$NOTIFY_SOCKET`, which is used when set).
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    /// s6: write a newline to this descriptor and close it.
    pub notify_fd: Option<i32>,
    /// Create this file when ready; remove it at exit.
    pub ready_file: Option<PathBuf>,
    /// Upstart `expect stop`: SIGSTOP ourselves once.
    pub upstart_expect_stop: bool,
}

/// What the child needs from readiness: environment changes and a descriptor.
pub struct ChildSetup {
    pub env_set: Vec<(OsString, OsString)>,
    pub env_remove: Vec<OsString>,
    /// (our descriptor, the number it gets in the child)
    pub fd: Option<(RawFd, i32)>,
    /// Closed in sigshim once the child has it.
    pub fd_owned: Option<OwnedFd>,
}

/// Detecting readiness: the descriptors and probes of `--ready`. When to probe, and until
/// when, is the state machine's (`machine`); this owns the I/O. With restarts each generation
/// gets its own descriptor (`fd:`), and the relay tells generations apart by process group.
pub struct Detector {
    mode: Mode,
    tcp: Vec<SocketAddr>,
    /// `fd:` mode: the read end of each generation's readiness pipe, until it spoke.
    fd_read: Vec<(u32, OwnedFd)>,
    relay: Option<OwnedFd>,
    /// Each generation's app: (generation, PID = process group, uid), newest last.
    apps: Vec<(u32, libc::pid_t, libc::uid_t)>,
    /// The relay's receive buffers, allocated once.
    relay_buf: Vec<u8>,
    relay_control: Vec<u64>,
    /// Messages the relay dropped since it last said so (refused senders, truncated data),
    /// and when it last said so: one warning at most every [`WARN_EVERY`].
    dropped: u64,
    warned_at: Option<Instant>,
}

impl Detector {
    /// Sets up the mode's descriptors, and resolves a tcp probe's host: at set-up, before
    /// sigshim blocks any signal, so that a hung resolver cannot make it deaf to a stop.
    pub fn new(mode: Mode) -> std::io::Result<(Detector, ChildSetup)> {
        let mut setup = ChildSetup {
            env_set: Vec::new(),
            // sigshim is the one that talks to systemd; an app that finds NOTIFY_SOCKET would
            // be refused under NotifyAccess=main and could confuse it under =all.
            env_remove: vec!["NOTIFY_SOCKET".into()],
            fd: None,
            fd_owned: None,
        };
        let mut d = Detector {
            mode: mode.clone(),
            tcp: Vec::new(),
            fd_read: Vec::new(),
            relay: None,
            apps: Vec::new(),
            relay_buf: Vec::new(),
            relay_control: Vec::new(),
            dropped: 0,
            warned_at: None,
        };
        match &mode {
            Mode::Notify => {
                let (sock, name) = relay_socket()?;
                d.relay = Some(sock);
                // A datagram as large as systemd takes (NOTIFY_BUFFER_MAX), one byte more to
                // see a larger one; descriptors as many as one message can carry.
                d.relay_buf = vec![0; NOTIFY_BUFFER_MAX + 1];
                d.relay_control = crate::sys::control_buffer(SCM_MAX_FD, true);
                setup.env_remove.clear();
                setup.env_set.push(("NOTIFY_SOCKET".into(), name.into()));
            }
            Mode::Tcp(host, port) => {
                d.tcp = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("cannot resolve {host}: {e}"))
                    })?
                    .collect();
            }
            _ => {}
        }
        Ok((d, setup))
    }

    /// Before generation `g` is spawned: in `fd:` mode a new pipe, whose write end (and the
    /// number it gets in the child) goes to the app; in `file:` mode the file of an earlier
    /// generation is removed, so that only this one's counts.
    pub fn arm(&mut self, g: u32) -> std::io::Result<Option<(OwnedFd, i32)>> {
        match &self.mode {
            Mode::Fd(n) => {
                let (rd, wr) = crate::sys::pipe()?;
                self.fd_read.push((g, rd));
                Ok(Some((wr, *n)))
            }
            Mode::File(p) if g > 1 => {
                let _ = std::fs::remove_file(p);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Generation `g` runs as `pid`, with `uid`.
    pub fn started(&mut self, g: u32, pid: libc::pid_t, uid: libc::uid_t) {
        self.apps.push((g, pid, uid));
    }

    /// Whether this mode is polled (tcp, file) rather than announced by an event.
    pub fn probes(&self) -> bool {
        matches!(self.mode, Mode::Tcp(..) | Mode::File(_))
    }

    /// `alive:DURATION`: how long the app must keep running to count as ready.
    pub fn alive_after(&self) -> Option<Duration> {
        match self.mode {
            Mode::Alive(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the app counts as ready as soon as it runs.
    pub fn on_spawn(&self) -> bool {
        self.mode == Mode::Spawn
    }

    /// One probe: does the port accept, does the file exist.
    pub fn probe(&self) -> bool {
        match &self.mode {
            Mode::Tcp(..) => self
                .tcp
                .iter()
                .any(|a| TcpStream::connect_timeout(a, Duration::from_millis(100)).is_ok()),
            Mode::File(p) => p.exists(),
            _ => false,
        }
    }

    /// Descriptors to poll: each fd-mode pipe until it spoke (index into the pipes), and the
    /// relay socket always.
    pub fn poll_fds(&self, fds: &mut Vec<libc::pollfd>) -> (Vec<usize>, bool) {
        let mut pipes = Vec::new();
        for (i, (_, fd)) in self.fd_read.iter().enumerate() {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            pipes.push(i);
        }
        if let Some(r) = &self.relay {
            fds.push(libc::pollfd {
                fd: r.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        (pipes, self.relay.is_some())
    }

    /// Fd-mode pipe `i` is readable: a newline means its generation is ready; EOF without
    /// one means the app closed it without announcing anything.
    pub fn on_fd(&mut self, i: usize) -> Option<u32> {
        let (g, fd) = self.fd_read.get(i)?;
        let g = *g;
        let mut buf = [0u8; 512];
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 && buf[..n as usize].contains(&b'\n') {
            self.fd_read.remove(i);
            return Some(g);
        }
        if n == 0 {
            warn!("the app closed its readiness descriptor without writing a newline");
            self.fd_read.remove(i);
        }
        None
    }

    /// Datagrams on the relay socket, one batch per wake-up (at most `RELAY_BATCH`, and
    /// none after a READY=1, so that the machine declares readiness before anything the app
    /// sent later, its BARRIER=1 above all, goes up). Returns whether the app said READY=1.
    ///
    /// What systemd understands is passed on from sigshim's PID, the main PID, as it came
    /// (`MAINPID=` never: sigshim stays the main process that KillMode=mixed signals). READY=1
    /// is the machine's to announce. Descriptors: those of `FDSTORE=1` go on to systemd's fd
    /// store, the pipe of `BARRIER=1` too (systemd closes it once it has processed everything
    /// before it, so the app's sd_notify_barrier(3) means what it says); every other one is
    /// closed here at once, as systemd does with them. Returns the generation that said
    /// READY=1, if one did.
    pub fn on_relay(&mut self, up: &Announcer) -> Option<u32> {
        let sock = self.relay.as_ref()?;
        let fd = sock.as_raw_fd();
        for _ in 0..RELAY_BATCH {
            let got = recv_message(fd, &mut self.relay_buf, &mut self.relay_control)?;
            let g = speaks_for(&self.apps, got.sender);
            let why = if got.truncated {
                Some("that was truncated (too large, or too many descriptors)".to_string())
            } else if g.is_none() {
                Some(format!(
                    "from pid {}, outside the app's process group",
                    got.sender
                        .map_or_else(|| "?".to_string(), |(p, _)| p.to_string())
                ))
            } else {
                None
            };
            if let Some(why) = why {
                // `got.fds` is dropped, which closes them.
                self.dropped_one(&why);
                continue;
            }
            let message = &self.relay_buf[..got.len];
            let valid = match relay_plan(message) {
                Relay::Barrier if got.fds.len() == 1 => {
                    up.relay(b"BARRIER=1", &got.fds);
                    true
                }
                Relay::Barrier | Relay::Nothing => true,
                Relay::Pass { text, fds } => {
                    up.relay(text.as_bytes(), if fds { &got.fds } else { &[] });
                    true
                }
                Relay::Refuse(why) => {
                    debug!("not relaying a notify message from the app: {why}");
                    false
                }
            };
            // Every descriptor received is closed here (after the relay sent its copies).
            drop(got.fds);
            // A message systemd would drop whole does not make the app ready either.
            if valid && has_line(message, b"READY=1") {
                return g;
            }
        }
        None
    }

    /// Counts a dropped message and warns at most every WARN_EVERY.
    fn dropped_one(&mut self, why: &str) {
        self.dropped += 1;
        let now = Instant::now();
        if self
            .warned_at
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            let what = match self.dropped {
                1 => "a notify message".to_string(),
                n => format!("{n} notify messages, the last"),
            };
            warn!(
                "ignoring {what} {why} (at most one such warning every {}s)",
                WARN_EVERY.as_secs()
            );
            self.dropped = 0;
            self.warned_at = Some(now);
        }
    }
}

/// Whether a message's sender (PID and uid, as the kernel vouches for them) speaks for the app
/// (its PID and uid). Only the app's own process group does: the socket is reachable from the
/// whole network namespace, and a stray READY=1 must not start a unit early. A sender that has
/// already exited and been reaped (a helper that sends and quits at once, before sigshim reads
/// its message) has no process group to look at any more; its message counts if it came from
/// the app's user, the one thing about it still known.
/// With generations, the one whose app leads the sender's process group; a reaped sender is
/// credited to the newest generation of its user.
fn speaks_for(
    apps: &[(u32, libc::pid_t, libc::uid_t)],
    sender: Option<(libc::pid_t, libc::uid_t)>,
) -> Option<u32> {
    let (pid, uid) = sender?;
    // SAFETY: getpgid has no memory-safety preconditions.
    match unsafe { libc::getpgid(pid) } {
        -1 if crate::sys::errno() == libc::ESRCH => apps
            .iter()
            .rev()
            .find(|&&(_, _, u)| u == uid)
            .map(|&(g, _, _)| g),
        -1 => None,
        group => apps
            .iter()
            .rev()
            .find(|&&(_, app, _)| app == group)
            .map(|&(g, _, _)| g),
    }
}

/// The most datagrams read per wake-up: a flood from the app must not starve the loop.
const RELAY_BATCH: usize = 16;
/// systemd's limit on a notify datagram (NOTIFY_BUFFER_MAX = PIPE_BUF).
const NOTIFY_BUFFER_MAX: usize = 4096;
/// The kernel's limit on descriptors in one message (SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;
/// At most one warning about dropped notify messages this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The keys the relay passes on as they came. MAINPID= is not among them (sigshim stays the
/// main PID); READY=1 is the machine's; NOTIFYACCESS= and EXIT_STATUS= would describe sigshim,
/// which keeps its own.
const RELAYED: &[&str] = &[
    "STATUS",
    "WATCHDOG",
    "WATCHDOG_USEC",
    "EXTEND_TIMEOUT_USEC",
    "RELOADING",
    "STOPPING",
    "MONOTONIC_USEC",
    "ERRNO",
    "BUSERROR",
    "FDSTORE",
    "FDSTOREREMOVE",
    "FDNAME",
    "FDPOLL",
];

/// What to send up for one message of the app's.
#[derive(Debug, PartialEq, Eq)]
pub enum Relay {
    /// These lines, with the message's descriptors if `fds` (FDSTORE=1).
    Pass { text: String, fds: bool },
    /// `BARRIER=1` alone: its one descriptor goes up with it.
    Barrier,
    /// Nothing to relay (READY=1 alone, or only keys that stay here).
    Nothing,
    /// Not a valid message (systemd would drop it too).
    Refuse(&'static str),
}

/// Decides what one message of the app's becomes upstream (pure: tested below).
pub fn relay_plan(message: &[u8]) -> Relay {
    if message.contains(&0) {
        return Relay::Refuse("it contains a NUL byte");
    }
    let Ok(text) = std::str::from_utf8(message) else {
        return Relay::Refuse("it is not UTF-8");
    };
    if has_line(message, b"BARRIER=1") {
        // systemd drops a barrier with anything else in it; so does the relay.
        return if text.trim_end_matches('\n') == "BARRIER=1" {
            Relay::Barrier
        } else {
            Relay::Refuse("BARRIER=1 with other lines")
        };
    }
    let mut out = String::new();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let key = line.split_once('=').map_or(line, |(k, _)| k);
        if RELAYED.contains(&key) {
            out.push_str(line);
            out.push('\n');
        } else if line != "READY=1" {
            debug!("not relaying '{line}' from the app");
        }
    }
    if out.is_empty() {
        return Relay::Nothing;
    }
    let fds = has_line(message, b"FDSTORE=1");
    Relay::Pass { text: out, fds }
}

fn has_line(message: &[u8], line: &[u8]) -> bool {
    message.split(|&b| b == b'\n').any(|l| l == line)
}

/// The init's notify socket (`$NOTIFY_SOCKET`): one datagram per message, sent from
/// sigshim's PID (the kernel attaches its credentials, which systemd checks), with descriptors
/// when the relay passes some on. The sd-notify crate is not used for this: it cannot pass
/// descriptors without another dependency, does not take an abstract `@name`, and opens a
/// socket per message.
pub struct Upstream {
    sock: OwnedFd,
    addr: (libc::sockaddr_un, libc::socklen_t),
}

impl Upstream {
    /// From `$NOTIFY_SOCKET`; `None` when it is unset (or unusable, which is said once).
    fn from_env() -> Option<Upstream> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        let Some(addr) = crate::sys::unix_addr(name.as_encoded_bytes()) else {
            warn!(
                "NOTIFY_SOCKET={} is neither a path nor @name: sigshim cannot notify the init",
                name.to_string_lossy()
            );
            return None;
        };
        // SAFETY: socket with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            warn!(
                "cannot create a socket to notify the init: {}",
                crate::sys::os_error(&std::io::Error::last_os_error())
            );
            return None;
        }
        // SAFETY: a descriptor we just created.
        let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // A send waits for room in systemd's queue, but never more than a second: the loop
        // must keep serving signals and deadlines.
        let limit = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a valid timeval; failure only leaves sends unbounded.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                (&limit as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Some(Upstream { sock, addr })
    }

    fn send(&self, message: &[u8], fds: &[OwnedFd]) -> std::io::Result<()> {
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        loop {
            match crate::sys::send_msg(
                self.sock.as_raw_fd(),
                Some(&self.addr),
                message,
                &raw,
                None,
                0,
            ) {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(_) => return Ok(()),
            }
        }
    }
}

/// Announcing readiness, reloads and the stop to whatever init is above.
pub struct Announcer {
    delivery: Delivery,
    /// systemd listens (NOTIFY_SOCKET is set).
    upstream: Option<Upstream>,
    /// The app reports its own STATUS (notify mode): sigshim's would overwrite it.
    app_status: bool,
    ready: bool,
}

impl Announcer {
    pub fn new(delivery: Delivery, mode: &Mode) -> Announcer {
        if let Some(fd) = delivery.notify_fd {
            // The descriptor is s6's channel to sigshim, not the app's: if the app inherited it,
            // it could announce readiness on its own, or hold it open after sigshim closed it.
            // SAFETY: fcntl on a descriptor validated at parse time.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Announcer {
            delivery,
            upstream: Upstream::from_env(),
            app_status: *mode == Mode::Notify,
            ready: false,
        }
    }

    /// Whether systemd listens (NOTIFY_SOCKET is set).
    pub fn upstream(&self) -> bool {
        self.upstream.is_some()
    }

    /// One message to systemd; a failure is a warning (systemd gone, or its queue full for a
    /// second).
    fn notify(&self, message: &[u8], fds: &[OwnedFd]) {
        if let Some(up) = &self.upstream
            && let Err(e) = up.send(message, fds)
        {
            warn!("cannot notify systemd: {}", crate::sys::os_error(&e));
        }
    }

    /// Passes the app's own notify message on to systemd, with descriptors if any.
    pub fn relay(&self, message: &[u8], fds: &[OwnedFd]) {
        if !message.is_empty() {
            self.notify(message, fds);
        }
    }

    /// The app (generation) `pid` is ready: systemd hears READY=1 every time (it ends a
    /// restart too); s6's notification fd, Upstart's `expect stop` and the ready file fire
    /// once, for the first generation.
    pub fn declare(&mut self, pid: i32) {
        info!("pid {pid} is ready");
        // In notify mode the app's own STATUS (relayed just before) says more than ours.
        let message = if self.app_status {
            "READY=1\n".to_string()
        } else {
            format!("READY=1\nSTATUS=running: pid {pid}\n")
        };
        self.notify(message.as_bytes(), &[]);
        if self.ready {
            return;
        }
        self.ready = true;
        if let Some(path) = &self.delivery.ready_file
            && let Err(e) = std::fs::write(path, b"")
        {
            warn!(
                "cannot create the ready file {}: {}",
                path.display(),
                crate::sys::os_error(&e)
            );
        }
        if let Some(fd) = self.delivery.notify_fd.take() {
            // SAFETY: writing one byte to, then closing, a descriptor the caller handed us for
            // exactly this (s6's notification-fd protocol).
            unsafe {
                libc::write(fd, b"\n".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
        if self.delivery.upstart_expect_stop {
            self.stop_for_upstart();
        }
    }

    /// A reload begins (Type=notify-reload, sd_notify(3)): RELOADING=1 with the monotonic
    /// time, which systemd >= 253 requires to be later than its reload request; a restart
    /// says what it does in STATUS= and makes the unit's timeout cover it (`covers`).
    pub fn reloading(&self, status: Option<&str>, covers: Option<Duration>) {
        let usec = monotonic_usec();
        let mut message = format!("RELOADING=1\nMONOTONIC_USEC={usec}\n");
        if let Some(s) = status {
            message.push_str(&format!("STATUS={s}\n"));
        }
        if let Some(d) = covers {
            message.push_str(&extend_timeout(d));
        }
        self.notify(message.as_bytes(), &[]);
    }

    /// A restart failed and the running generation keeps serving: the reload is over.
    pub fn restart_failed(&self, status: &str) {
        self.notify(format!("READY=1\nSTATUS={status}\n").as_bytes(), &[]);
    }

    /// READY=1 again: a reload is done.
    pub fn ready_again(&self) {
        self.notify(b"READY=1\n", &[]);
    }

    /// Upstart's `expect stop`: the job stops itself, Upstart continues it with SIGCONT
    /// (init(5)). Also raised once before an exit that came before readiness, or Upstart never
    /// sees the exit (`machine`, Action::UnblockUpstart).
    pub fn stop_for_upstart(&self) {
        upstart_stop_once();
    }

    /// The stop sequence began: tell systemd, and make its stop timeout cover `covers`.
    pub fn stopping(&self, status: &str, covers: Option<Duration>) {
        if self.upstream.is_none() {
            return;
        }
        let mut message = format!("STOPPING=1\nSTATUS=stopping: {status}\n");
        if let Some(d) = covers {
            message.push_str(&extend_timeout(d));
        }
        self.notify(message.as_bytes(), &[]);
    }

    /// At exit: a ready file must not outlive the service it announces.
    pub fn cleanup(&self) {
        if self.ready
            && let Some(path) = &self.delivery.ready_file
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether sigshim has raised its `expect stop` SIGSTOP (at most once per process).
static UPSTART_STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Raises SIGSTOP on sigshim itself for Upstart's `expect stop`, unless it already did. Once
/// only: Upstart continues a stopped main process only while the job is `spawned`
/// (job_process_stopped, init/job_process.c); a second SIGSTOP would never be continued.
/// Returns whether it raised it now (it returns once sigshim has been continued).
pub fn upstart_stop_once() -> bool {
    if UPSTART_STOPPED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return false;
    }
    // SAFETY: kill on our own PID.
    unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
    true
}

/// `EXTEND_TIMEOUT_USEC=` for `d`, whole: systemd reads it as a 64-bit count of microseconds
/// (a u32 would stop near 71 minutes).
pub fn extend_timeout(d: Duration) -> String {
    let usec = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    format!("EXTEND_TIMEOUT_USEC={usec}\n")
}

/// CLOCK_MONOTONIC in microseconds, the clock of systemd's MONOTONIC_USEC=.
fn monotonic_usec() -> u64 {
    // SAFETY: timespec is plain old data; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above, with a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// One received message: its length, its sender, the descriptors that came with it (owned:
/// dropped means closed), and whether the kernel had to cut anything (MSG_TRUNC, MSG_CTRUNC).
struct Received {
    len: usize,
    sender: Option<(libc::pid_t, libc::uid_t)>,
    fds: Vec<OwnedFd>,
    truncated: bool,
}

/// One datagram, its sender's PID (SCM_CREDENTIALS, which the kernel fills in truthfully for
/// unprivileged senders) and its descriptors (SCM_RIGHTS, close-on-exec); `None` when nothing
/// is queued.
fn recv_message(fd: RawFd, buf: &mut [u8], control: &mut [u64]) -> Option<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data; the pointers set below stay valid for the call, and
    // the CMSG macros stay inside the control buffer whose length is given.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(control) as _;
        let n = libc::recvmsg(
            fd,
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | libc::MSG_TRUNC,
        );
        if n < 0 {
            return None;
        }
        let mut got = Received {
            len: (n as usize).min(buf.len()),
            sender: None,
            fds: Vec::new(),
            // MSG_TRUNC makes recvmsg return the real length: larger than systemd takes.
            truncated: n as usize >= buf.len()
                || msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0,
        };
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                    if len >= std::mem::size_of::<libc::ucred>() =>
                {
                    let cred: libc::ucred = std::ptr::read_unaligned(data.cast());
                    got.sender = Some((cred.pid, cred.uid));
                }
                (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                    for i in 0..len / std::mem::size_of::<RawFd>() {
                        let raw: RawFd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                        got.fds
                            .push(<OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw));
                    }
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Some(got)
    }
}

/// A datagram socket in the abstract namespace: no file to clean up, and nothing the app could
/// lack permission for after dropping privileges. Its name is the kernel's choice (autobind:
/// bind with the address family alone, unix(7)), so no other process can take it first. Like
/// any abstract socket it is reachable from the whole network namespace, so it asks for the
/// sender's credentials and `on_relay` hears only the app's process group.
fn relay_socket() -> std::io::Result<(OwnedFd, String)> {
    let sock = crate::sys::dgram_socket()?;
    // SAFETY: sockaddr_un is plain old data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let family = std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t;
    // SAFETY: bind with the family alone: autobind.
    if unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            family,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: getsockname into a sockaddr_un of `len` bytes.
    if unsafe {
        libc::getsockname(
            sock.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_un).cast(),
            &mut len,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // An abstract name: a NUL, then the kernel's five hex digits.
    let name: Vec<u8> = addr.sun_path[1..(len - family) as usize]
        .iter()
        .map(|&c| c as u8)
        .collect();
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a valid int option.
    if unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok((sock, format!("@{}", String::from_utf8_lossy(&name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_passes_what_systemd_understands() {
        assert_eq!(
            relay_plan(b"READY=1\nSTATUS=serving\nMAINPID=42\n"),
            Relay::Pass {
                text: "STATUS=serving\n".into(),
                fds: false
            }
        );
        assert_eq!(relay_plan(b"READY=1"), Relay::Nothing);
        assert_eq!(
            relay_plan(b"RELOADING=1\nMONOTONIC_USEC=123456"),
            Relay::Pass {
                text: "RELOADING=1\nMONOTONIC_USEC=123456\n".into(),
                fds: false
            }
        );
        assert_eq!(
            relay_plan(b"FDSTORE=1\nFDNAME=conn"),
            Relay::Pass {
                text: "FDSTORE=1\nFDNAME=conn\n".into(),
                fds: true
            }
        );
        assert_eq!(relay_plan(b"BARRIER=1\n"), Relay::Barrier);
        assert!(matches!(
            relay_plan(b"BARRIER=1\nREADY=1"),
            Relay::Refuse(_)
        ));
        assert!(matches!(relay_plan(b"STATUS=a\0b"), Relay::Refuse(_)));
        assert!(matches!(relay_plan(b"STATUS=\xff"), Relay::Refuse(_)));
        assert_eq!(
            relay_plan(b"EXIT_STATUS=3\nNOTIFYACCESS=all"),
            Relay::Nothing
        );
        assert_eq!(
            relay_plan(b"WATCHDOG=1"),
            Relay::Pass {
                text: "WATCHDOG=1\n".into(),
                fds: false
            }
        );
    }

    #[test]
    fn who_speaks_for_the_app() {
        let me = crate::inherit::me();
        // SAFETY: getpgrp and geteuid have no preconditions.
        let (group, uid) = unsafe { (libc::getpgrp(), libc::geteuid()) };
        let apps = [(1, group + 1, uid), (2, group, uid)];
        assert_eq!(speaks_for(&apps, Some((me, uid))), Some(2));
        assert_eq!(speaks_for(&apps[..1], Some((me, uid))), None);
        assert_eq!(speaks_for(&apps, None), None);
        // A sender already gone: its uid decides, for the newest generation of that user (no
        // PID is this large: pid_max <= 2^22).
        assert_eq!(speaks_for(&apps, Some((i32::MAX - 1, uid))), Some(2));
        assert_eq!(speaks_for(&apps, Some((i32::MAX - 1, uid + 1))), None);
    }

    #[test]
    fn extend_timeout_is_not_clamped() {
        assert_eq!(
            extend_timeout(Duration::from_secs(3 * 3600)),
            "EXTEND_TIMEOUT_USEC=10800000000\n"
        );
        assert_eq!(
            extend_timeout(Duration::from_millis(1500)),
            "EXTEND_TIMEOUT_USEC=1500000\n"
        );
    }

    #[test]
    fn relay_socket_name_is_the_kernels() {
        let (a, name_a) = relay_socket().unwrap();
        let (_b, name_b) = relay_socket().unwrap();
        assert!(name_a.starts_with('@') && name_a.len() > 1, "{name_a}");
        assert_ne!(name_a, name_b);
        // Reachable under that name, with the sender's credentials attached.
        let (addr, len) = crate::sys::unix_addr(name_a.as_bytes()).unwrap();
        let c = crate::sys::dgram_socket().unwrap();
        crate::sys::send_msg(c.as_raw_fd(), Some(&(addr, len)), b"STATUS=x", &[], None, 0).unwrap();
        let mut buf = vec![0; NOTIFY_BUFFER_MAX + 1];
        let mut control = crate::sys::control_buffer(SCM_MAX_FD, true);
        let got = recv_message(a.as_raw_fd(), &mut buf, &mut control).unwrap();
        assert_eq!(&buf[..got.len], b"STATUS=x");
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        assert_eq!(got.sender, Some((crate::inherit::me(), uid)));
        assert!(!got.truncated && got.fds.is_empty());
    }

    #[test]
    fn received_descriptors_are_owned_and_oversized_messages_flagged() {
        let (a, name) = relay_socket().unwrap();
        let to = crate::sys::unix_addr(name.as_bytes()).unwrap();
        let c = crate::sys::dgram_socket().unwrap();
        let (r, w) = crate::sys::pipe().unwrap();
        crate::sys::send_msg(
            c.as_raw_fd(),
            Some(&to),
            b"BARRIER=1",
            &[w.as_raw_fd()],
            None,
            0,
        )
        .unwrap();
        drop(w);
        let mut buf = vec![0; NOTIFY_BUFFER_MAX + 1];
        let mut control = crate::sys::control_buffer(SCM_MAX_FD, true);
        let got = recv_message(a.as_raw_fd(), &mut buf, &mut control).unwrap();
        assert_eq!(got.fds.len(), 1);
        // The pipe's write end is open only in `got`: dropping it closes it, and the reader
        // sees EOF (what sd_notify_barrier waits for).
        let mut pfd = libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd, no wait.
        unsafe { libc::poll(&mut pfd, 1, 0) };
        assert_eq!(pfd.revents & libc::POLLHUP, 0);
        drop(got);
        // SAFETY: as above.
        unsafe { libc::poll(&mut pfd, 1, 0) };
        assert_ne!(pfd.revents & libc::POLLHUP, 0);
        let big = vec![b'x'; NOTIFY_BUFFER_MAX + 100];
        crate::sys::send_msg(c.as_raw_fd(), Some(&to), &big, &[], None, 0).unwrap();
        let got = recv_message(a.as_raw_fd(), &mut buf, &mut control).unwrap();
        assert!(got.truncated);
    }
}
