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
    /// journald's stdout stream socket, when records go over the stream protocol (the
    /// `Target::Journald` path is then only for sigshim's own diagnostics).
    pub journal_stream: Option<PathBuf>,
}

/// The capture channels created before the child is spawned: the write ends go to the child.
pub struct Pipes {
    read: [OwnedFd; 2],
    pub write: [OwnedFd; 2],
    /// stdout is a pseudo-terminal (`--stdout-pty`).
    pub stdout_pty: bool,
}

impl Pipes {
    /// Two pipes, or a pseudo-terminal for stdout and a pipe for stderr with `stdout_pty`.
    /// A pty that cannot be had (no /dev/pts in a minimal container, the pty limit) is not a
    /// failure: stdout gets a pipe and the reason is returned, for one warning.
    pub fn new(stdout_pty: bool) -> std::io::Result<(Pipes, Option<std::io::Error>)> {
        let (err_r, err_w) = crate::sys::pipe()?;
        let (out, why) = match stdout_pty.then(crate::sys::raw_pty) {
            Some(Ok(pair)) => (Some(pair), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let is_pty = out.is_some();
        let (out_r, out_w) = match out {
            Some(pair) => pair,
            None => crate::sys::pipe()?,
        };
        Ok((
            Pipes {
                read: [out_r, err_r],
                write: [out_w, err_w],
                stdout_pty: is_pty,
            },
            why,
        ))
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
    /// The generation whose stdout or stderr this is.
    g: u32,
    fd: Option<OwnedFd>,
    splitter: lines::LineSplitter,
    priority: u8,
    /// The record header (identifier, the app's PID) of this generation.
    encoder: Encoder,
    /// Stream 1 (stderr) or 2: where a passthrough copy goes.
    out_fd: RawFd,
    /// `stdout` or `stderr` (SIGSHIM_STREAM of a split line's records).
    name: &'static [u8],
    /// While a line cut at --max-line goes on: its priority (the `<N>` prefix is read at the
    /// start of a line only, and a continuation keeps the line's priority).
    cont: Option<u8>,
    /// journald's stdout stream for this stream's records (stream protocol only), connected
    /// when its first record goes out, closed once its pipe is done and its records are sent.
    conn: Option<OwnedFd>,
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
    /// The generation that wrote it (whose credentials it is sent with).
    g: u32,
    /// Its stream: 1 stdout, 2 stderr (which journald stream connection takes it).
    out: u8,
}

#[derive(Clone)]
enum Encoder {
    Journald(journald::JournalHeader),
    /// journald's stdout stream protocol: `<N>line\n`, the rest is in the connection's header.
    JournalStream,
    Syslog(syslog::SyslogHeader),
    Passthrough,
}

pub struct Output {
    /// Every generation's stdout and stderr, in the order they were added.
    streams: Vec<Stream>,
    settings: Settings,
    hostname: Vec<u8>,
    path: PathBuf,
    sock: Option<OwnedFd>,
    retry_at: Option<Instant>,
    /// Records not yet sent, in order; `head` is the first unsent one.
    buf: Vec<u8>,
    recs: Vec<Rec>,
    head: usize,
    read_buf: Vec<u8>,
    fallback_lines: u64,
    warned: bool,
    sent: u64,
    /// `--ready log:REGEX`, and the generation whose lines it is matched against until the
    /// first match.
    ready_regex: Option<regex_lite::Regex>,
    watch: Option<u32>,
    matched: Option<u32>,
    /// The head record's sealed copy, kept while the socket is full (journald only).
    memfd: Option<OwnedFd>,
    /// sendmmsg's headers and iovecs, allocated once (BATCH each).
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    /// SCM_CREDENTIALS naming each generation's app, attached to its records while the app is
    /// there and the kernel lets sigshim speak for it (see `send_as`).
    creds: Vec<(u32, Vec<u64>)>,
    /// The kernel refused (no CAP_SYS_ADMIN): sigshim's own credentials from now on.
    creds_refused: bool,
    /// Stream protocol: how many bytes of the head record are already written.
    head_off: usize,
    /// A connection failed since the last one that worked (for "reachable again").
    down: bool,
}

/// Which of our descriptors a pollfd entry is, so `supervise` can hand results back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Stream(usize),
    Socket,
}

impl Output {
    /// The destination is connected when the first record goes out, so that a start that
    /// fails (no descriptor left for the app) fails with one message.
    pub fn new(settings: &Settings, ready_regex: Option<regex_lite::Regex>) -> Output {
        let path = match (&settings.target, &settings.journal_stream) {
            (Target::Journald(_), Some(p)) => p.clone(),
            (Target::Journald(p) | Target::Syslog(p, _), _) => p.clone(),
            (Target::Passthrough, _) => PathBuf::from("stdout/stderr"),
        };
        Output {
            streams: Vec::with_capacity(4),
            settings: settings.clone(),
            hostname: crate::sys::hostname(),
            path,
            sock: None,
            retry_at: None,
            buf: Vec::with_capacity(READ_CHUNK * 2),
            recs: Vec::with_capacity(1024),
            head: 0,
            read_buf: vec![0; READ_CHUNK],
            fallback_lines: 0,
            warned: false,
            sent: 0,
            ready_regex,
            watch: None,
            matched: None,
            memfd: None,
            // SAFETY: mmsghdr is plain old data; all-zero is a valid empty header.
            hdrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                };
                BATCH
            ],
            creds: Vec::new(),
            creds_refused: false,
            head_off: 0,
            down: false,
        }
    }

    /// Sends generation `g`'s records as `creds` (its app's PID, uid and gid), so that
    /// journald records the app as their writer (`_PID`, `_COMM`, `_EXE`, `_UID`,
    /// `_CMDLINE`) and not sigshim. The kernel allows it to a sender with CAP_SYS_ADMIN (and
    /// CAP_SETUID/CAP_SETGID for another user's ids), unix(7); without, the first send fails
    /// with EPERM and sigshim's own credentials go instead, as the kernel fills them in.
    /// `None` when the app is gone (reaped: its PID may be another process's at any moment).
    pub fn send_as(&mut self, g: u32, creds: Option<libc::ucred>) {
        self.creds.retain(|(x, _)| *x != g);
        if let Some(c) = creds
            && !self.creds_refused
            && matches!(self.settings.target, Target::Journald(_))
        {
            self.creds.push((g, crate::sys::creds_control(c)));
        }
    }

    /// Reads generation `g`'s pipes from now on; its records carry `pid`. Its lines are
    /// watched for `--ready log:` until one matches.
    pub fn add(&mut self, g: u32, pid: i32, pipes: Pipes) {
        // Streams of earlier generations that are done and empty are dropped here (with
        // their journald stream, which journald then sees end).
        let queued = self.pending() > 0;
        self.streams
            .retain(|s| s.fd.is_some() || s.splitter.pending() > 0 || (s.conn.is_some() && queued));
        let st = &self.settings;
        let encoder = match &st.target {
            Target::Journald(_) if st.journal_stream.is_some() => Encoder::JournalStream,
            Target::Journald(_) => Encoder::Journald(journald::JournalHeader::new(
                &st.tag,
                pid as u32,
                st.facility,
            )),
            Target::Syslog(_, format) => Encoder::Syslog(syslog::SyslogHeader::new(
                *format,
                st.facility,
                &st.tag,
                pid as u32,
                &self.hostname,
            )),
            Target::Passthrough => Encoder::Passthrough,
        };
        let [out_r, err_r] = pipes.read;
        for (i, (fd, priority, name)) in [
            (out_r, st.stdout_priority, &b"stdout"[..]),
            (err_r, st.stderr_priority, &b"stderr"[..]),
        ]
        .into_iter()
        .enumerate()
        {
            self.streams.push(Stream {
                g,
                fd: Some(fd),
                splitter: lines::LineSplitter::new(st.max_line),
                priority,
                encoder: encoder.clone(),
                out_fd: i as RawFd + 1,
                name,
                cont: None,
                conn: None,
            });
        }
        if self.ready_regex.is_some() {
            self.watch = Some(g);
        }
    }

    /// The generation whose line matched `--ready log:REGEX`, once per match.
    pub fn take_ready_match(&mut self) -> Option<u32> {
        self.matched.take()
    }

    /// Whether a pipe is still open (the app or something it started can still write).
    pub fn open(&self) -> bool {
        self.streams.iter().any(|s| s.fd.is_some())
    }

    /// The descriptors to poll now: the pipes while nothing is queued (for the destination or
    /// on sigshim's own stdout/stderr), the socket while a send is waiting for room.
    pub fn poll_fds(&self, fds: &mut Vec<libc::pollfd>, tokens: &mut Vec<Token>) {
        if self.pending() == 0 && crate::sys::console_backlog() < crate::sys::CONSOLE_MAX {
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
        } else if let Some(fd) = self.wait_fd() {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            });
            tokens.push(Token::Socket);
        }
    }

    /// The socket the head record waits on for room: the datagram socket, or (stream
    /// protocol) the head record's journald stream.
    fn wait_fd(&self) -> Option<RawFd> {
        if self.settings.journal_stream.is_none() {
            return self.sock.as_ref().map(|s| s.as_raw_fd());
        }
        let r = self.recs.get(self.head)?;
        let s = self
            .streams
            .iter()
            .find(|s| s.g == r.g && s.out_fd == RawFd::from(r.out))?;
        s.conn.as_ref().map(|c| c.as_raw_fd())
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

    /// Everything is delivered: every pipe at EOF, nothing queued.
    pub fn done(&self) -> bool {
        !self.open() && self.pending() == 0
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
                    if self.pending() > 0
                        || crate::sys::console_backlog() >= crate::sys::CONSOLE_MAX
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Splits `read_buf[..n]` (or, at EOF, the partial last line) of stream `i` into records
    /// and queues them encoded.
    ///
    /// journald gets a split line marked so that it can be put back together (a line cut at
    /// --max-line, a NUL byte, which journalctl would otherwise show as a blob, as journald's
    /// own stdout path ends a line at a NUL too; see `journald::Mark`). Syslog has no field for
    /// it: its records are the chunks, as they were.
    fn frame(&mut self, i: usize, n: Option<usize>) {
        let Output {
            streams,
            buf,
            recs,
            settings,
            read_buf,
            ready_regex,
            watch,
            matched,
            ..
        } = self;
        let level_prefix = settings.level_prefix;
        let Stream {
            g,
            splitter,
            priority: default_priority,
            encoder,
            out_fd,
            name,
            cont,
            ..
        } = &mut streams[i];
        let (g, default_priority, out_fd) = (*g, *default_priority, *out_fd);
        let name: &'static [u8] = name;
        let encoder = &*encoder;
        let stamp = match encoder {
            Encoder::Syslog(_) => Some(syslog::Stamp::now()),
            Encoder::Journald(_) | Encoder::JournalStream | Encoder::Passthrough => None,
        };
        let watched = *watch == Some(g);
        let out = out_fd as u8;
        let mut emit = |line: &[u8], end: lines::End| {
            let journald = matches!(encoder, Encoder::Journald(_) | Encoder::JournalStream);
            if end == lines::End::Terminator && !journald {
                // Only journald's records say where a line was cut; elsewhere the end of a
                // cut line is no record.
                *cont = None;
                return;
            }
            if watched
                && matched.is_none()
                && let Some(re) = ready_regex
                && re.is_match(&String::from_utf8_lossy(line))
            {
                *matched = Some(g);
                *watch = None;
            }
            if let Encoder::Passthrough = encoder {
                crate::sys::console_line(out_fd, line);
                return;
            }
            let continuing = cont.is_some();
            let (priority, message) = match (*cont, lines::parse_level_prefix(line)) {
                (Some(p), _) => (p, line),
                (None, Some((p, rest))) if level_prefix => (p, rest),
                _ => (default_priority, line),
            };
            *cont = (end == lines::End::Cut).then_some(priority);
            let mut push = |buf: &mut Vec<u8>, msg: std::ops::Range<usize>, start: usize| {
                recs.push(Rec {
                    start,
                    end: buf.len(),
                    msg: msg.start,
                    msg_end: msg.end,
                    g,
                    out,
                });
            };
            match (encoder, &stamp) {
                (Encoder::Journald(h), _) => {
                    let split = continuing || end == lines::End::Cut || message.contains(&0);
                    let mut segments = message.split(|&b| b == 0).peekable();
                    while let Some(seg) = segments.next() {
                        let line_break: Option<&'static [u8]> = if segments.peek().is_some() {
                            Some(b"nul")
                        } else {
                            match end {
                                lines::End::Cut => Some(b"line-max"),
                                lines::End::Eof => Some(b"eof"),
                                lines::End::Newline | lines::End::Terminator => None,
                            }
                        };
                        let mark = (split || line_break.is_some()).then_some(journald::Mark {
                            stream: name,
                            split,
                            line_break,
                        });
                        let start = buf.len();
                        let msg = journald::encode_marked(buf, h, priority, mark, seg);
                        push(buf, msg, start);
                    }
                }
                (Encoder::JournalStream, _) => {
                    // journald reads `<N>` at the start of each line (level prefix on in the
                    // connection's header), so the line's priority goes first, and again after
                    // a NUL, where journald ends a line (`_LINE_BREAK=nul`) and starts the next.
                    // A piece cut at --max-line goes on without a line end: journald gets the
                    // line whole and cuts it at its own LineMax (`_LINE_BREAK=line-max`); a
                    // last line without '\n' ends with the connection (`_LINE_BREAK=eof`).
                    // The prefix is left out where journald would take the stream's own
                    // priority anyway: one parse less per line for journald.
                    let prefix = |buf: &mut Vec<u8>, seg: &[u8]| {
                        if priority != default_priority || seg.first() == Some(&b'<') {
                            buf.extend_from_slice(&[b'<', b'0' + priority.min(7), b'>']);
                        }
                    };
                    let start = buf.len();
                    buf.reserve(message.len() + 4);
                    if !continuing {
                        prefix(buf, message);
                    }
                    let msg_start = buf.len();
                    if message.contains(&0) {
                        for (k, seg) in message.split(|&b| b == 0).enumerate() {
                            if k > 0 {
                                buf.push(0);
                                prefix(buf, seg);
                            }
                            buf.extend_from_slice(seg);
                        }
                    } else {
                        buf.extend_from_slice(message);
                    }
                    let msg_end = buf.len();
                    if matches!(end, lines::End::Newline | lines::End::Terminator) {
                        buf.push(b'\n');
                    }
                    push(buf, msg_start..msg_end, start);
                }
                (Encoder::Syslog(h), Some(st)) => {
                    let start = buf.len();
                    let msg = syslog::encode(buf, h, priority, st, message);
                    push(buf, msg, start);
                }
                (Encoder::Syslog(_), None) => unreachable!("a stamp is taken for syslog"),
                (Encoder::Passthrough, _) => unreachable!("passthrough lines are written above"),
            }
        };
        match n {
            Some(n) => splitter.feed_marked(&read_buf[..n], &mut emit),
            None => splitter.finish_marked(&mut emit),
        }
    }

    fn connect(&mut self, now: Instant) {
        self.retry_at = Some(now + RETRY);
        match crate::sys::connect_dgram(&self.path) {
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
        self.down = true;
        if !self.warned {
            self.warned = true;
            let why = if self.path.exists() && !crate::sys::is_socket(&self.path) {
                "it is not a socket".to_string()
            } else {
                crate::sys::os_error(e)
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
        if self.settings.journal_stream.is_some() {
            return self.flush_stream(now);
        }
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
                // The kernel only reads the control data of a send: one copy per generation
                // serves all its records.
                let (control, len) = match self.creds.iter_mut().find(|(x, _)| *x == r.g) {
                    Some((_, c)) => (c.as_mut_ptr().cast(), c.len() * 8),
                    None => (std::ptr::null_mut(), 0),
                };
                self.hdrs[k].msg_hdr.msg_control = control;
                self.hdrs[k].msg_hdr.msg_controllen = len as _;
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
                Some(libc::EMSGSIZE) => {
                    if !self.send_oversized() {
                        break;
                    }
                }
                // Not allowed to speak for the app (no CAP_SYS_ADMIN): sigshim's own
                // credentials from now on. The app gone (ESRCH): its records go as sigshim's.
                _ if self.credentials_refused(&err) => {}
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

    /// A send refused for the credentials it carried: EPERM (sigshim may not speak for the
    /// app, no CAP_SYS_ADMIN: its own credentials from now on) or ESRCH (the head record's app
    /// is gone: its records go as sigshim's). True when that was it and the send can be tried
    /// again.
    fn credentials_refused(&mut self, err: &std::io::Error) -> bool {
        if self.creds.is_empty() {
            return false;
        }
        match err.raw_os_error() {
            Some(libc::EPERM) => {
                info!(
                    "cannot send the app's records with its credentials ({}): journald records sigshim as their writer",
                    crate::sys::os_error(err)
                );
                self.creds.clear();
                self.creds_refused = true;
                true
            }
            Some(libc::ESRCH) => {
                let g = self.recs[self.head].g;
                self.creds.retain(|(x, _)| *x != g);
                true
            }
            _ => false,
        }
    }

    /// Connects stream `i` to journald's stdout stream and sends the header journald reads
    /// first (systemd's `journald-stream.c`): identifier, no unit, the stream's priority with
    /// the facility, level prefix on (every line starts with its own `<N>`), no forwarding.
    fn connect_stream(&mut self, i: usize, now: Instant) {
        let s = &self.streams[i];
        let priority = u32::from(self.settings.facility) << 3 | u32::from(s.priority.min(7));
        let mut digits = [0u8; 10];
        let mut header = Vec::with_capacity(self.settings.tag.len() + 24);
        header.extend_from_slice(&self.settings.tag);
        header.extend_from_slice(b"\n\n");
        header.extend_from_slice(decimal(priority, &mut digits));
        header.extend_from_slice(b"\n1\n0\n0\n0\n");
        let conn = crate::sys::connect_stream(&self.path).and_then(|fd| {
            // A fresh connection's buffer takes the few dozen bytes at once.
            // SAFETY: send on our socket from a valid buffer.
            let n = unsafe {
                libc::send(
                    fd.as_raw_fd(),
                    header.as_ptr().cast(),
                    header.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            match n {
                n if n == header.len() as isize => Ok(fd),
                n if n < 0 => Err(std::io::Error::last_os_error()),
                _ => Err(std::io::Error::from_raw_os_error(libc::EAGAIN)),
            }
        });
        match conn {
            Ok(fd) => {
                if std::mem::take(&mut self.down) {
                    info!("{} is reachable again", self.path.display());
                }
                self.retry_at = None;
                self.streams[i].conn = Some(fd);
            }
            Err(e) => {
                self.retry_at = Some(now + RETRY);
                self.lost(&e);
            }
        }
    }

    /// [`flush`] for the stream protocol: each run of queued records of one stream in one
    /// sendmsg(2) on that stream's connection, with the generation's credentials, until the
    /// queue is empty or a connection is full. A connection that breaks (journald restarting)
    /// is made again at once, then at most once a second; meanwhile records go to stderr.
    fn flush_stream(&mut self, now: Instant) {
        let mut reconnected = false;
        while self.pending() > 0 {
            let r = self.recs[self.head];
            let Some(i) = self
                .streams
                .iter()
                .position(|s| s.g == r.g && s.out_fd == RawFd::from(r.out))
            else {
                // Streams with queued records are kept (`add`); never here.
                self.fallback(r);
                self.head += 1;
                self.head_off = 0;
                continue;
            };
            if self.streams[i].conn.is_none() && self.retry_at.is_none_or(|t| now >= t) {
                self.connect_stream(i, now);
            }
            let Some(conn) = &self.streams[i].conn else {
                self.fallback_all();
                break;
            };
            // The run of records of this stream that lie one after the other in `buf`.
            let mut last = self.head;
            while let Some(n) = self.recs.get(last + 1) {
                if n.g != r.g || n.out != r.out || n.start != self.recs[last].end {
                    break;
                }
                last += 1;
            }
            let bytes = &self.buf[r.start + self.head_off..self.recs[last].end];
            let mut iov = libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            // SAFETY: msghdr is plain old data; all-zero is an empty header.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            if let Some((_, c)) = self.creds.iter_mut().find(|(x, _)| *x == r.g) {
                msg.msg_control = c.as_mut_ptr().cast();
                msg.msg_controllen = (c.len() * 8) as _;
            }
            // SAFETY: one iovec into `self.buf` and the generation's control data, both
            // untouched until the call returns.
            let n = unsafe {
                libc::sendmsg(
                    conn.as_raw_fd(),
                    &msg,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n > 0 {
                let to = r.start + self.head_off + n as usize;
                while self.head < self.recs.len() && self.recs[self.head].end <= to {
                    self.head += 1;
                    self.sent += 1;
                }
                self.head_off = match self.recs.get(self.head) {
                    Some(h) if h.start < to => to - h.start,
                    _ => 0,
                };
                continue;
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => break,
                _ if self.credentials_refused(&err) => {}
                _ => {
                    // EPIPE, ECONNRESET: journald went away. The head record goes again whole
                    // on the next connection: what the old one had of it is gone with journald.
                    self.streams[i].conn = None;
                    self.head_off = 0;
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
            self.head_off = 0;
            // A stream whose pipe is done has nothing more to say: journald sees it end (and
            // flushes an unterminated last line, `_LINE_BREAK=eof`).
            for s in &mut self.streams {
                if s.fd.is_none() {
                    s.conn = None;
                }
            }
        }
    }

    /// The head record is too large for one datagram: journald takes it through a sealed
    /// memfd (JOURNAL_NATIVE_PROTOCOL.md); syslog has no such path, so it goes to stderr.
    /// False when the socket is full: the record stays queued until it has room.
    fn send_oversized(&mut self) -> bool {
        let r = self.recs[self.head];
        let sent = match (&self.settings.target, &self.sock) {
            (Target::Journald(_), Some(sock)) => {
                // The sealed copy is made once and kept while the socket is full.
                let memfd = match self.memfd.take() {
                    Some(m) => Ok(m),
                    None => sealed_memfd(&self.buf[r.start..r.end]),
                };
                let g = r.g;
                let creds = self
                    .creds
                    .iter()
                    .find(|(x, _)| *x == g)
                    .and_then(|(_, c)| crate::sys::creds_of(c));
                match memfd {
                    Ok(m) => match crate::sys::send_msg(
                        sock.as_raw_fd(),
                        None,
                        &[],
                        &[m.as_raw_fd()],
                        creds,
                        libc::MSG_DONTWAIT,
                    ) {
                        Ok(_) => true,
                        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                            self.memfd = Some(m);
                            return false;
                        }
                        Err(_) => false,
                    },
                    Err(_) => false,
                }
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
        true
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
        crate::sys::console_line(2, &self.buf[r.msg..r.msg_end]);
    }

    /// Stops reading generation `g` (its main child and leftovers are gone, or its drain time
    /// is over): what its pipes hold now is read first, then its partial last lines.
    pub fn close(&mut self, g: u32) {
        for i in 0..self.streams.len() {
            if self.streams[i].g == g && self.streams[i].fd.is_some() {
                self.take_one(i);
                if self.streams[i].fd.take().is_some() {
                    self.frame(i, None);
                }
            }
        }
        self.flush(Instant::now());
    }

    /// Reads what the pipes hold right now, and no more than that: at most one pipe's
    /// capacity per stream, so a writer that keeps a pipe full cannot keep sigshim here
    /// (or grow its memory). Used when the app's end is seen (a ready line written just before
    /// the exit is read before the exit is handled) and at the very end.
    pub fn take_buffered(&mut self) {
        for i in 0..self.streams.len() {
            self.take_one(i);
        }
        self.flush(Instant::now());
    }

    /// What stream `i` holds now, at most one pipe's capacity.
    fn take_one(&mut self, i: usize) {
        let Some(fd) = &self.streams[i].fd else {
            return;
        };
        // SAFETY: F_GETPIPE_SZ on our own pipe; failure means "not a pipe", then 64 KiB.
        let cap = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let mut left = if cap > 0 { cap as usize } else { 64 * 1024 };
        while left > 0 {
            match self.read_once(i) {
                Got::Data(n) => {
                    self.frame(i, Some(n));
                    left = left.saturating_sub(n);
                }
                Got::Nothing => break,
                Got::End => {
                    self.streams[i].fd = None;
                    self.frame(i, None);
                    break;
                }
            }
        }
    }

    /// Whether generation `g`'s records go with its app's credentials: its app must not be
    /// reaped while they are queued (`speak_last`).
    pub fn speaks_for(&self, g: u32) -> bool {
        self.creds.iter().any(|(x, _)| *x == g)
    }

    /// Generation `g`'s app has ended and is about to be reaped, after which its PID names
    /// nobody (or somebody else): what its pipes hold and everything queued goes out now, with
    /// its credentials, waiting for room until `deadline` at most.
    pub fn speak_last(&mut self, deadline: Instant) {
        self.take_buffered();
        self.deliver(deadline);
    }

    /// Sends until nothing is queued or `deadline` passes, waiting for room in between.
    fn deliver(&mut self, deadline: Instant) {
        while self.pending() > 0 {
            let now = Instant::now();
            let Some(fd) = self.wait_fd() else {
                break;
            };
            if now >= deadline {
                break;
            }
            let ms = deadline
                .saturating_duration_since(now)
                .as_millis()
                .clamp(1, i32::MAX as u128) as i32;
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: poll on one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, ms) };
            self.flush(Instant::now());
        }
    }

    /// At the end: what the pipes hold (bounded, see `take_buffered`), the partial last lines,
    /// then everything queued, within `deadline` (a stuck destination gets what it can take;
    /// the rest goes to stderr). Reports the fallback count.
    pub fn finish(&mut self, deadline: Instant) {
        self.take_buffered();
        for i in 0..self.streams.len() {
            if self.streams[i].fd.take().is_some() {
                self.frame(i, None);
            }
        }
        self.flush(Instant::now());
        self.deliver(deadline);
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
        if !matches!(self.settings.target, Target::Passthrough) {
            info!("{} records sent to {}", self.sent, self.path.display());
        }
    }
}

/// journald's path for entries larger than a datagram: the entry in a sealed memfd
/// (JOURNAL_NATIVE_PROTOCOL.md), which journald maps whole.
fn sealed_memfd(data: &[u8]) -> std::io::Result<OwnedFd> {
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
    Ok(memfd)
}

/// The sender for sigshim's own diagnostics (`diag`): the app's destination, under the
/// identifier `sigshim` and sigshim's PID, one non-blocking datagram each; false when the
/// destination does not take it (the diagnostic then goes to stderr).
pub fn diag_sender(settings: &Settings) -> Option<crate::diag::Sender> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    enum Enc {
        Journald(journald::JournalHeader),
        Syslog(syslog::SyslogHeader),
    }
    let (path, enc) = match &settings.target {
        Target::Journald(p) => (
            p.clone(),
            Enc::Journald(journald::JournalHeader::new(
                b"sigshim",
                pid,
                settings.facility,
            )),
        ),
        Target::Syslog(p, format) => (
            p.clone(),
            Enc::Syslog(syslog::SyslogHeader::new(
                *format,
                settings.facility,
                b"sigshim",
                pid,
                &crate::sys::hostname(),
            )),
        ),
        // Diagnostics stay on stderr, which is where the copied lines go too.
        Target::Passthrough => return None,
    };
    let sock: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    Some(Box::new(move |priority: u8, message: &[u8]| {
        let s = match sock.get() {
            Some(s) => s,
            None => match crate::sys::connect_dgram(&path) {
                Ok(s) => sock.get_or_init(|| s),
                Err(_) => return false,
            },
        };
        let mut record = Vec::with_capacity(128 + message.len());
        match &enc {
            Enc::Journald(h) => {
                journald::encode_entry(&mut record, h, priority, message);
            }
            Enc::Syslog(h) => {
                syslog::encode(&mut record, h, priority, &syslog::Stamp::now(), message);
            }
        }
        // SAFETY: send on our socket with a valid buffer.
        let n = unsafe {
            libc::send(
                s.as_raw_fd(),
                record.as_ptr().cast(),
                record.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        n >= 0
    }))
}
