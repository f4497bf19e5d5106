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
use std::time::Duration;
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
}

/// Parses `spawn`, `notify`, `log:REGEX`, `tcp:HOST:PORT`, `file:PATH`, `fd:N`.
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
        _ => Err(bad(
            "expected spawn, notify, log:REGEX, tcp:HOST:PORT, file:PATH or fd:N",
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
/// when, is the state machine's (`machine`); this owns the I/O.
pub struct Detector {
    mode: Mode,
    tcp: Vec<SocketAddr>,
    fd_read: Option<OwnedFd>,
    relay: Option<OwnedFd>,
    /// The app's PID, which is also its process group.
    app: Option<libc::pid_t>,
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
            fd_read: None,
            relay: None,
            app: None,
        };
        match &mode {
            Mode::Notify => {
                let (sock, name) = relay_socket()?;
                d.relay = Some(sock);
                setup.env_remove.clear();
                setup.env_set.push(("NOTIFY_SOCKET".into(), name.into()));
            }
            Mode::Fd(n) => {
                let (rd, wr) = crate::sys::pipe()?;
                setup.fd = Some((wr.as_raw_fd(), *n));
                setup.fd_owned = Some(wr);
                d.fd_read = Some(rd);
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

    /// The app runs as `pid`.
    pub fn started(&mut self, pid: libc::pid_t) {
        self.app = Some(pid);
    }

    /// Whether this mode is polled (tcp, file) rather than announced by an event.
    pub fn probes(&self) -> bool {
        matches!(self.mode, Mode::Tcp(..) | Mode::File(_))
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

    /// Descriptors to poll: the fd-mode pipe until it spoke, and the relay socket always.
    pub fn poll_fds(&self, fds: &mut Vec<libc::pollfd>) -> (Option<usize>, Option<usize>) {
        let mut add = |fd: &Option<OwnedFd>| {
            fd.as_ref().map(|f| {
                fds.push(libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                fds.len() - 1
            })
        };
        (add(&self.fd_read), add(&self.relay))
    }

    /// The fd-mode pipe is readable: a newline means ready; EOF without one means the app
    /// closed it without announcing anything.
    pub fn on_fd(&mut self) -> bool {
        let Some(fd) = &self.fd_read else {
            return false;
        };
        let mut buf = [0u8; 512];
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 && buf[..n as usize].contains(&b'\n') {
            self.fd_read = None;
            return true;
        }
        if n == 0 {
            warn!("the app closed its readiness descriptor without writing a newline");
            self.fd_read = None;
        }
        false
    }

    /// A datagram on the relay socket: READY=1 makes the app ready; the states systemd
    /// understands are passed on from sigshim's PID; MAINPID= never (sigshim stays the main
    /// process that KillMode=mixed signals).
    pub fn on_relay(&mut self, up: &Announcer) -> bool {
        let Some(sock) = &self.relay else {
            return false;
        };
        let mut buf = [0u8; 4096];
        let mut ready = false;
        loop {
            let Some((n, sender)) = recv_with_sender(sock.as_raw_fd(), &mut buf) else {
                return ready;
            };
            // Only the app's own process group speaks for it: the socket is reachable from the
            // whole network namespace, and a stray READY=1 must not start a unit early.
            // SAFETY: getpgid has no memory-safety preconditions.
            if sender.is_none_or(|pid| {
                self.app
                    .is_none_or(|app| unsafe { libc::getpgid(pid) } != app)
            }) {
                warn!(
                    "ignoring a notify message from pid {} (not in the app's process group)",
                    sender.map_or_else(|| "?".to_string(), |p| p.to_string())
                );
                continue;
            }
            let text = String::from_utf8_lossy(&buf[..n]);
            let mut relay = String::new();
            for line in text.lines() {
                let key = line.split_once('=').map_or(line, |(k, _)| k);
                match key {
                    "READY" if line == "READY=1" => ready = true,
                    "STATUS"
                    | "WATCHDOG"
                    | "EXTEND_TIMEOUT_USEC"
                    | "RELOADING"
                    | "STOPPING"
                    | "ERRNO"
                    | "BUSERROR"
                    | "WATCHDOG_USEC" => {
                        relay.push_str(line);
                        relay.push('\n');
                    }
                    _ => debug!("not relaying '{line}' from the app"),
                }
            }
            up.relay(relay.trim_end());
        }
    }
}

/// Announcing readiness and the stop to whatever init is above.
pub struct Announcer {
    delivery: Delivery,
    /// NOTIFY_SOCKET is set: systemd listens.
    upstream: bool,
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
            upstream: std::env::var_os("NOTIFY_SOCKET").is_some(),
            app_status: *mode == Mode::Notify,
            ready: false,
        }
    }

    /// Whether systemd listens (NOTIFY_SOCKET is set).
    pub fn upstream(&self) -> bool {
        self.upstream
    }

    /// Passes the app's own notify states on to systemd.
    pub fn relay(&self, states: &str) {
        if self.upstream && !states.is_empty() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Custom(states)]);
        }
    }

    /// The app is ready: tell everyone above, once.
    pub fn declare(&mut self, pid: i32) {
        if self.ready {
            return;
        }
        self.ready = true;
        info!("pid {pid} is ready");
        if self.upstream {
            // In notify mode the app's own STATUS (relayed just before) says more than ours.
            let status = format!("running: pid {pid}");
            let mut states = vec![sd_notify::NotifyState::Ready];
            if !self.app_status {
                states.push(sd_notify::NotifyState::Status(&status));
            }
            if let Err(e) = sd_notify::notify(&states) {
                warn!("cannot notify systemd: {}", crate::sys::os_error(&e));
            }
        }
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

    /// Upstart's `expect stop`: the job stops itself, Upstart continues it with SIGCONT
    /// (init(5)). Also raised once before an exit that came before readiness, or Upstart never
    /// sees the exit (`machine`, Action::UnblockUpstart).
    pub fn stop_for_upstart(&self) {
        // SAFETY: kill on our own PID.
        unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
    }

    /// The stop sequence began: tell systemd, and make its stop timeout cover `covers`.
    pub fn stopping(&self, status: &str, covers: Option<Duration>) {
        if !self.upstream {
            return;
        }
        let status = format!("stopping: {status}");
        let mut states = vec![
            sd_notify::NotifyState::Stopping,
            sd_notify::NotifyState::Status(&status),
        ];
        if let Some(d) = covers {
            let usec = d.as_micros().min(u128::from(u32::MAX)) as u32;
            states.push(sd_notify::NotifyState::ExtendTimeoutUsec(usec));
        }
        let _ = sd_notify::notify(&states);
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

/// One datagram and the PID of its sender (SCM_CREDENTIALS, which the kernel fills in
/// truthfully for unprivileged senders); `None` when nothing is queued.
fn recv_with_sender(fd: RawFd, buf: &mut [u8]) -> Option<(usize, Option<libc::pid_t>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain old data; the pointers set below stay valid for the call, and
    // the CMSG macros stay inside the control buffer whose length is given.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return None;
        }
        let mut sender = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS
            {
                let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                sender = Some(cred.pid);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Some((n as usize, sender))
    }
}

/// A datagram socket in the abstract namespace: no file to clean up, and nothing the app could
/// lack permission for after dropping privileges. Like any abstract socket it is reachable from
/// the whole network namespace, so it asks for the sender's credentials and `on_relay` hears
/// only the app's process group.
fn relay_socket() -> std::io::Result<(OwnedFd, String)> {
    let sock = crate::sys::dgram_socket()?;
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("sigshim/notify/{pid}/{nanos}");
    // SAFETY: sockaddr_un is plain old data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // Abstract: sun_path starts with a NUL byte (unix(7)).
    for (d, s) in addr.sun_path[1..].iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t;
    // SAFETY: bind with a valid sockaddr_un of `len` bytes.
    if unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
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
    Ok((sock, format!("@{name}")))
}
