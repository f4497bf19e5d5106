//! Output forwarding: the child's stdout and stderr, read by sigshim itself and sent one
//! record per line to journald (native protocol) or syslog (/dev/log), never lost.
//!
//! The pure parts live in submodules: `lines` (framing and `<N>` prefixes), `journald` and
//! `syslog` (encoders). This file owns the descriptors: the two pipes, the destination socket,
//! the bounded queue between them and the stderr fallback. It never blocks: `supervise` polls
//! the pipes only while the queue is empty and the socket for POLLOUT while it is not, so a
//! slow destination makes sigshim stop reading (the app then blocks on its pipe, exactly as it
//! would on journald's own stream) while signals and deadlines keep being served.
//!
//! Records are batched into one sendmmsg(2) per read. A destination that is missing or goes
//! away (journald or rsyslogd restarting, systemd#6620) is reconnected when the next line
//! arrives, at most once a second; meanwhile lines go to sigshim's stderr verbatim, with one
//! warning and a count at the end, instead of disappearing.

pub mod journald;
pub mod lines;
pub mod syslog;

/// Writes `n` in decimal into `buf` without allocating; returns the digits (the encoders'
/// numbers: PIDs, facilities, PRI).
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Where captured lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Journald(PathBuf),
    Syslog(PathBuf, syslog::Format),
    /// Lines copied unchanged to sigshim's own stdout/stderr (`--log inherit` when readiness
    /// must watch the output).
    Passthrough,
}

/// The log settings from the command line, with `auto` already resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    pub target: Target,
    pub tag: Vec<u8>,
    pub facility: u8,
    pub stdout_priority: u8,
    pub stderr_priority: u8,
    pub level_prefix: bool,
    pub max_line: usize,
}

/// The pipes created before the child is spawned: the write ends go to the child.
pub struct Pipes {
    read: [OwnedFd; 2],
    pub write: [OwnedFd; 2],
}

/// A close-on-exec pipe whose read end (sigshim's) is non-blocking; the write end, which the
/// app gets, keeps ordinary blocking writes.
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    Ok((r, w))
}

impl Pipes {
    pub fn new() -> std::io::Result<Pipes> {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        Ok(Pipes {
            read: [out_r, err_r],
            write: [out_w, err_w],
        })
    }
}

/// What one read(2) of a capture pipe gave.
enum Got {
    /// This many bytes, in `read_buf`.
    Data(usize),
    /// Nothing for now (EAGAIN).
    Nothing,
    /// EOF, or a read error, which means the same for us.
    End,
}

const READ_CHUNK: usize = 64 * 1024;
const BATCH: usize = 64;
const RETRY: Duration = Duration::from_secs(1);

struct Stream {
    fd: Option<OwnedFd>,
    splitter: lines::LineSplitter,
    priority: u8,
}

/// One queued record: `buf[start..end]` is the encoded datagram, `buf[msg..msg_end]` the line
/// inside it (what the stderr fallback prints: the journald value verbatim, the syslog message
/// with its NUL escapes).
#[derive(Clone, Copy)]
struct Rec {
    start: usize,
    end: usize,
    msg: usize,
    msg_end: usize,
}

enum Encoder {
    Journald(journald::JournalHeader),
    Syslog(syslog::SyslogHeader),
    Passthrough,
}

pub struct Output {
    streams: [Stream; 2],
    encoder: Encoder,
    path: PathBuf,
    sock: Option<OwnedFd>,
    retry_at: Option<Instant>,
    /// Records not yet sent, in order; `head` is the first unsent one.
    buf: Vec<u8>,
    recs: Vec<Rec>,
    head: usize,
    level_prefix: bool,
    read_buf: Vec<u8>,
    fallback_lines: u64,
    warned: bool,
    sent: u64,
    /// `--ready log:REGEX`, until the first match.
    ready_regex: Option<regex_lite::Regex>,
    ready_matched: bool,
    /// sendmmsg's headers and iovecs, allocated once (BATCH each).
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
}

/// Which of our descriptors a pollfd entry is, so `supervise` can hand results back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Stream(usize),
    Socket,
}

impl Output {
    pub fn new(
        settings: &Settings,
        pipes: Pipes,
        child_pid: i32,
        ready_regex: Option<regex_lite::Regex>,
    ) -> Output {
        let [out_r, err_r] = pipes.read;
        let pid = child_pid as u32;
        let (encoder, path) = match &settings.target {
            Target::Journald(p) => (
                Encoder::Journald(journald::JournalHeader::new(
                    &settings.tag,
                    pid,
                    settings.facility,
                )),
                p.clone(),
            ),
            Target::Syslog(p, format) => (
                Encoder::Syslog(syslog::SyslogHeader::new(
                    *format,
                    settings.facility,
                    &settings.tag,
                    pid,
                    &hostname(),
                )),
                p.clone(),
            ),
            Target::Passthrough => (Encoder::Passthrough, PathBuf::from("stdout/stderr")),
        };
        let stream = |fd, priority| Stream {
            fd: Some(fd),
            splitter: lines::LineSplitter::new(settings.max_line),
            priority,
        };
        let mut out = Output {
            streams: [
                stream(out_r, settings.stdout_priority),
                stream(err_r, settings.stderr_priority),
            ],
            encoder,
            path,
            sock: None,
            retry_at: None,
            buf: Vec::with_capacity(READ_CHUNK * 2),
            recs: Vec::with_capacity(1024),
            head: 0,
            level_prefix: settings.level_prefix,
            read_buf: vec![0; READ_CHUNK],
            fallback_lines: 0,
            warned: false,
            sent: 0,
            ready_regex,
            ready_matched: false,
            // SAFETY: mmsghdr is plain old data; all-zero is a valid empty header.
            hdrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                };
                BATCH
            ],
        };
        if !matches!(out.encoder, Encoder::Passthrough) {
            out.connect(Instant::now());
        }
        out
    }

    /// True once, after an output line matched `--ready log:REGEX`.
    pub fn take_ready_match(&mut self) -> bool {
        if self.ready_matched && self.ready_regex.is_some() {
            self.ready_regex = None;
            return true;
        }
        false
    }

    /// Whether a pipe is still open (the app or something it started can still write).
    pub fn open(&self) -> bool {
        self.streams.iter().any(|s| s.fd.is_some())
    }

    /// The descriptors to poll now: the pipes while nothing is queued, the socket while a
    /// send is waiting for room.
    pub fn poll_fds(&self, fds: &mut Vec<libc::pollfd>, tokens: &mut Vec<Token>) {
        if self.pending() == 0 {
            for (i, s) in self.streams.iter().enumerate() {
                if let Some(fd) = &s.fd {
                    fds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    tokens.push(Token::Stream(i));
                }
            }
        } else if let Some(sock) = &self.sock {
            fds.push(libc::pollfd {
                fd: sock.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            });
            tokens.push(Token::Socket);
        }
    }

    /// Handles readiness of one of our descriptors.
    pub fn ready(&mut self, token: Token) {
        match token {
            Token::Socket => {
                self.flush(Instant::now());
            }
            Token::Stream(i) => self.read_stream(i),
        }
    }

    /// Records waiting for the destination.
    pub fn pending(&self) -> usize {
        self.recs.len() - self.head
    }

    /// One read of stream `i` into `read_buf`.
    fn read_once(&mut self, i: usize) -> Got {
        let Some(fd) = &self.streams[i].fd else {
            return Got::End;
        };
        loop {
            // SAFETY: reading into our own buffer of READ_CHUNK bytes.
            let n = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    self.read_buf.as_mut_ptr().cast(),
                    self.read_buf.len(),
                )
            };
            if n > 0 {
                return Got::Data(n as usize);
            }
            match (n, std::io::Error::last_os_error().raw_os_error()) {
                (0, _) => return Got::End,
                (_, Some(libc::EINTR)) => continue,
                (_, Some(libc::EAGAIN)) => return Got::Nothing,
                _ => return Got::End,
            }
        }
    }

    /// Reads what the pipe has (several reads while the destination keeps up), frames it into
    /// records and sends them.
    fn read_stream(&mut self, i: usize) {
        for _ in 0..16 {
            match self.read_once(i) {
                Got::Nothing => return,
                Got::End => {
                    // Flush the last line, even without its '\n'.
                    self.streams[i].fd = None;
                    self.frame(i, None);
                    self.flush(Instant::now());
                    return;
                }
                Got::Data(n) => {
                    self.frame(i, Some(n));
                    self.flush(Instant::now());
                    if self.pending() > 0 {
                        return;
                    }
                }
            }
        }
    }

    /// Splits `read_buf[..n]` (or, at EOF, the partial last line) of stream `i` into records
    /// and queues them encoded.
    fn frame(&mut self, i: usize, n: Option<usize>) {
        let Output {
            streams,
            encoder,
            buf,
            recs,
            level_prefix,
            read_buf,
            ready_regex,
            ready_matched,
            ..
        } = self;
        let stream = &mut streams[i];
        let default_priority = stream.priority;
        let stamp = match encoder {
            Encoder::Syslog(_) => Some(syslog::Stamp::now()),
            Encoder::Journald(_) | Encoder::Passthrough => None,
        };
        let mut emit = |line: &[u8]| {
            if !*ready_matched && let Some(re) = ready_regex {
                *ready_matched = re.is_match(&String::from_utf8_lossy(line));
            }
            if let Encoder::Passthrough = encoder {
                write_line(if i == 0 { 1 } else { 2 }, line);
                return;
            }
            let (priority, message) = match lines::parse_level_prefix(line) {
                Some((p, rest)) if *level_prefix => (p, rest),
                _ => (default_priority, line),
            };
            let start = buf.len();
            let msg = match (&*encoder, &stamp) {
                (Encoder::Journald(h), _) => journald::encode_entry(buf, h, priority, message),
                (Encoder::Syslog(h), Some(st)) => syslog::encode(buf, h, priority, st, message),
                (Encoder::Syslog(_), None) => unreachable!("a stamp is taken for syslog"),
                (Encoder::Passthrough, _) => unreachable!("passthrough lines are written above"),
            };
            recs.push(Rec {
                start,
                end: buf.len(),
                msg: msg.start,
                msg_end: msg.end,
            });
        };
        match n {
            Some(n) => stream.splitter.feed(&read_buf[..n], &mut emit),
            None => stream.splitter.finish(&mut emit),
        }
    }

    fn connect(&mut self, now: Instant) {
        self.retry_at = Some(now + RETRY);
        match connect_dgram(&self.path) {
            Ok(fd) => {
                if self.warned {
                    info!("{} is reachable again", self.path.display());
                }
                self.sock = Some(fd);
            }
            Err(e) => self.lost(&e),
        }
    }

    fn lost(&mut self, e: &std::io::Error) {
        self.sock = None;
        if !self.warned {
            self.warned = true;
            let why = if self.path.exists() && !is_socket(&self.path) {
                "it is not a socket".to_string()
            } else {
                crate::diag::os_error(e)
            };
            warn!(
                stderr = true,
                "cannot send to {}: {why}; writing the app's lines to stderr until it is back",
                self.path.display(),
            );
        }
    }

    /// Sends queued records: batches of sendmmsg(2) until the queue is empty or the socket is
    /// full. Without a destination, the records go to stderr.
    fn flush(&mut self, now: Instant) {
        let mut reconnected = false;
        while self.pending() > 0 {
            if self.sock.is_none() && self.retry_at.is_none_or(|t| now >= t) {
                self.connect(now);
            }
            let Some(sock) = &self.sock else {
                self.fallback_all();
                break;
            };
            let fd = sock.as_raw_fd();
            let batch = self.pending().min(BATCH);
            for k in 0..batch {
                let r = self.recs[self.head + k];
                self.iovs[k] = libc::iovec {
                    iov_base: self.buf[r.start..].as_ptr() as *mut libc::c_void,
                    iov_len: r.end - r.start,
                };
                self.hdrs[k].msg_hdr.msg_iov = &mut self.iovs[k];
                self.hdrs[k].msg_hdr.msg_iovlen = 1;
            }
            // The raw system call: musl's sendmmsg() is a loop of sendmsg() on 64-bit, which
            // would undo the batching in the static build.
            // SAFETY: `batch` headers, each pointing at one iovec into `self.buf`, which is not
            // touched until the call returns.
            let sent = unsafe {
                libc::syscall(
                    libc::SYS_sendmmsg,
                    fd,
                    self.hdrs.as_mut_ptr(),
                    batch as libc::c_uint,
                    (libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) as libc::c_uint,
                )
            };
            if sent > 0 {
                self.head += sent as usize;
                self.sent += sent as u64;
                continue;
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                    break;
                }
                Some(libc::EMSGSIZE) => self.send_oversized(),
                _ => {
                    // ECONNREFUSED, ENOTCONN, EPIPE: the receiver went away. Reconnect once at
                    // once (a restarted daemon has usually re-created its socket), else fall back
                    // and wait for the next retry: a socket that accepts connections but refuses
                    // every send must not keep sigshim in this loop.
                    self.lost(&err);
                    self.retry_at = if reconnected { Some(now + RETRY) } else { None };
                    reconnected = true;
                }
            }
        }
        if self.pending() == 0 {
            self.buf.clear();
            self.recs.clear();
            self.head = 0;
        }
    }

    /// The head record is too large for one datagram: journald takes it through a sealed
    /// memfd (JOURNAL_NATIVE_PROTOCOL.md); syslog has no such path, so it goes to stderr.
    fn send_oversized(&mut self) {
        let r = self.recs[self.head];
        let sent = match (&self.encoder, &self.sock) {
            (Encoder::Journald(_), Some(sock)) => {
                send_memfd(sock.as_raw_fd(), &self.buf[r.start..r.end]).is_ok()
            }
            _ => false,
        };
        if sent {
            self.sent += 1;
        } else {
            warn!(
                "a {}-byte record is too large for {}; it went to stderr (lower --max-line)",
                r.end - r.start,
                self.path.display()
            );
            self.fallback(r);
        }
        self.head += 1;
    }

    fn fallback_all(&mut self) {
        while self.head < self.recs.len() {
            let r = self.recs[self.head];
            self.fallback(r);
            self.head += 1;
        }
    }

    /// Writes one raw line to sigshim's stderr: better in the init's console log than lost.
    fn fallback(&mut self, r: Rec) {
        self.fallback_lines += 1;
        write_line(2, &self.buf[r.msg..r.msg_end]);
    }

    /// At the end: the partial last lines, then everything queued, within `deadline` (a stuck
    /// destination gets what it can take; the rest goes to stderr). Reports the fallback count.
    pub fn finish(&mut self, deadline: Instant) {
        for i in 0..2 {
            // What the pipe already holds is read whatever the queue's state: the writers may
            // be gone, and bytes left in a pipe would be lost without a trace. A pipe holds at
            // most its capacity, so this stays bounded.
            while let Got::Data(n) = self.read_once(i) {
                self.frame(i, Some(n));
            }
            self.streams[i].fd = None;
            self.frame(i, None);
        }
        self.flush(Instant::now());
        while self.pending() > 0 {
            let now = Instant::now();
            if now >= deadline || self.sock.is_none() {
                break;
            }
            if let Some(sock) = &self.sock {
                let ms = deadline
                    .saturating_duration_since(now)
                    .as_millis()
                    .clamp(1, i32::MAX as u128) as i32;
                let mut pfd = libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: poll on one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, ms) };
            }
            self.flush(Instant::now());
        }
        if self.pending() > 0 {
            warn!(
                "{} did not take the last {} records in time; they went to stderr",
                self.path.display(),
                self.pending()
            );
            self.fallback_all();
        }
        if self.fallback_lines > 0 {
            warn!(
                stderr = true,
                "{} {} went to stderr instead of {}",
                self.fallback_lines,
                if self.fallback_lines == 1 {
                    "line"
                } else {
                    "lines"
                },
                self.path.display()
            );
        }
        if !matches!(self.encoder, Encoder::Passthrough) {
            info!("{} records sent to {}", self.sent, self.path.display());
        }
    }
}

/// Writes `line` and a newline to `fd` in one writev(2) (blocking: sigshim's own stdout and
/// stderr are the init's, which takes what it is given).
fn write_line(fd: RawFd, line: &[u8]) {
    let iov = [
        libc::iovec {
            iov_base: line.as_ptr() as *mut libc::c_void,
            iov_len: line.len(),
        },
        libc::iovec {
            iov_base: b"\n".as_ptr() as *mut libc::c_void,
            iov_len: 1,
        },
    ];
    // SAFETY: writev with two valid iovecs. A failing stdout/stderr leaves nothing else to try.
    unsafe { libc::writev(fd, iov.as_ptr(), 2) };
}

/// A non-blocking, close-on-exec unix datagram socket.
pub fn dgram_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn connect_dgram(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let fd = dgram_socket()?;
    // A large send buffer lets a burst queue in the kernel instead of in sigshim.
    let size: libc::c_int = 8 * 1024 * 1024;
    // SAFETY: setsockopt with a valid int option; failure only leaves the default.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: connect with a valid, initialised sockaddr_un of `len` bytes.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// journald's path for entries larger than a datagram: the entry in a sealed memfd, passed as
/// SCM_RIGHTS in an otherwise empty datagram.
fn send_memfd(sock: RawFd, data: &[u8]) -> std::io::Result<()> {
    let name = CString::new("sigshim-journal-entry").expect("no NUL");
    // SAFETY: memfd_create with a valid name.
    let raw =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just created.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut off = 0;
    while off < data.len() {
        // SAFETY: writing from a valid slice.
        let n = unsafe {
            libc::write(
                memfd.as_raw_fd(),
                data[off..].as_ptr().cast(),
                data.len() - off,
            )
        };
        if n <= 0 {
            return Err(std::io::Error::last_os_error());
        }
        off += n as usize;
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on our memfd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = memfd.as_raw_fd();
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: msghdr is plain old data; the control buffer is CMSG_SPACE bytes for one fd, and
    // the CMSG macros stay inside it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::copy_nonoverlapping(
            (&fd as *const RawFd).cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of::<RawFd>(),
        );
        // This one blocks (no MSG_DONTWAIT): it is rare, and the entry must not be dropped.
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn hostname() -> Vec<u8> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Vec::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf[..end].to_vec()
}

/// `--log auto`: the journal if its socket exists, else syslog if its socket exists, else
/// nothing (inherit).
pub fn is_socket(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}
