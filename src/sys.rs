//! The leaf of the crate: descriptors, sockets, errno, the raw signal mask, and the console.
//!
//! Everything here is a thin, documented wrapper over one system call or a small group of them,
//! used by several modules (`output`, `notify`, `diag`, `child`, `supervise`), so that none of
//! those has to import another for a helper. Nothing here knows about sigshim's policy.
//!
//! The console is sigshim's own stdout and stderr, written without ever blocking the loop: a
//! stalled reader (a full console, a stuck log driver, a terminal on Ctrl-S) must not make
//! sigshim deaf to the init's stop. Lines are queued up to a bound and written when poll(2)
//! says the descriptor has room; the loop stops reading the app's pipes while the queue is
//! full, so the app blocks on its own pipe instead (the same back-pressure as journald's).

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

/// An OS error as people read it: "No such file or directory", without Rust's "(os error 2)".
pub fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// sigshim's own PID, asked once: musl does not cache getpid(2), and the signal and exit paths
/// need it. Never for code between fork and exec, which would get its parent's PID.
pub fn pid() -> i32 {
    use std::sync::atomic::{AtomicI32, Ordering};
    static PID: AtomicI32 = AtomicI32::new(0);
    match PID.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: getpid has no preconditions.
            let p = unsafe { libc::getpid() };
            PID.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// errno of the last failed call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
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
    set_nonblocking(r.as_raw_fd());
    Ok((r, w))
}

/// A pseudo-terminal for the app's stdout: (master, sigshim's, non-blocking; slave, the
/// app's). Both close-on-exec and opened without becoming anyone's controlling terminal
/// (O_NOCTTY: the app can never get SIGHUP or job control from it). The slave is raw: no
/// `\n` to `\r\n` translation, no echo, no line editing, no control characters turned into
/// signals; the app's bytes come out as written. What changes for the app is that isatty(1)
/// is true, so its C library (or Python, Perl...) line-buffers stdout.
pub fn raw_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors; name, termios and winsize are optional.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are ours.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: fcntl and termios calls on our own descriptors, with a zeroed termios filled by
    // tcgetattr before use.
    unsafe {
        for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    set_nonblocking(master.as_raw_fd());
    Ok((master, slave))
}

/// Sets O_NONBLOCK on a descriptor of ours (its open file description must not be shared).
pub fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor the caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// A non-blocking, close-on-exec unix datagram socket.
pub fn dgram_socket() -> std::io::Result<OwnedFd> {
    unix_socket(libc::SOCK_DGRAM)
}

/// A non-blocking, close-on-exec unix socket of `kind` (SOCK_DGRAM, SOCK_STREAM).
fn unix_socket(kind: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: socket with constant flags.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The address of the unix socket at `path` (any path: relative ones too).
fn path_addr(path: &std::path::Path) -> std::io::Result<(libc::sockaddr_un, libc::socklen_t)> {
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
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    Ok((addr, len))
}

fn connect_addr(
    fd: &OwnedFd,
    addr: &libc::sockaddr_un,
    len: libc::socklen_t,
) -> std::io::Result<()> {
    // SAFETY: connect with a valid, initialised sockaddr_un of `len` bytes.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (addr as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A datagram socket connected to the unix socket at `path`, with a large send buffer so that
/// a burst queues in the kernel rather than in sigshim.
pub fn connect_dgram(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    let (addr, len) = path_addr(path)?;
    let fd = dgram_socket()?;
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
    connect_addr(&fd, &addr, len)?;
    Ok(fd)
}

/// A non-blocking stream socket connected to the unix socket at `path`. A listener whose
/// backlog is full answers EAGAIN at once instead of making sigshim wait.
pub fn connect_stream(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    let (addr, len) = path_addr(path)?;
    let fd = unix_socket(libc::SOCK_STREAM)?;
    connect_addr(&fd, &addr, len)?;
    Ok(fd)
}

/// A unix socket address from its name as systemd writes one in `NOTIFY_SOCKET`: a path, or
/// `@name` for the abstract namespace (unix(7): sun_path starts with a NUL byte). `None` when it
/// does not fit or is neither.
pub fn unix_addr(name: &[u8]) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let family = std::mem::size_of::<libc::sa_family_t>();
    let (bytes, abstract_) = match name {
        [b'@', rest @ ..] if !rest.is_empty() => (rest, true),
        [b'/', ..] => (name, false),
        _ => return None,
    };
    // A path needs its NUL; an abstract name takes the leading NUL instead.
    if bytes.len() + 1 > addr.sun_path.len() || bytes.contains(&0) {
        return None;
    }
    let at = usize::from(abstract_);
    for (d, s) in addr.sun_path[at..].iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = family + bytes.len() + 1;
    Some((addr, len as libc::socklen_t))
}

/// One datagram with optional descriptors (SCM_RIGHTS) and credentials (SCM_CREDENTIALS), to
/// `to` when given (else the connected peer). Returns the bytes sent.
pub fn send_msg(
    fd: RawFd,
    to: Option<&(libc::sockaddr_un, libc::socklen_t)>,
    data: &[u8],
    fds: &[RawFd],
    creds: Option<libc::ucred>,
    flags: libc::c_int,
) -> std::io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut control = control_buffer(fds.len(), creds.is_some());
    // SAFETY: msghdr is plain old data; every pointer set below stays valid for the call, and
    // the CMSG macros stay inside `control`, sized by control_buffer for exactly these headers.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        if let Some((addr, len)) = to {
            msg.msg_name = (addr as *const libc::sockaddr_un) as *mut libc::c_void;
            msg.msg_namelen = *len;
        }
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !control.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = (control.len() * 8) as _;
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            if !fds.is_empty() {
                let size = std::mem::size_of_val(fds) as u32;
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size) as _;
                std::ptr::copy_nonoverlapping(
                    fds.as_ptr().cast::<u8>(),
                    libc::CMSG_DATA(cmsg),
                    size as usize,
                );
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
            if let Some(c) = creds {
                let size = std::mem::size_of::<libc::ucred>() as u32;
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_CREDENTIALS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::ucred>(), c);
            }
        }
        let n = libc::sendmsg(fd, &msg, flags | libc::MSG_NOSIGNAL);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

/// A zeroed, u64-aligned control buffer with room for `fds` descriptors and, if `creds`, one
/// ucred.
pub fn control_buffer(fds: usize, creds: bool) -> Vec<u64> {
    // SAFETY: CMSG_SPACE is a pure size computation.
    let bytes = unsafe {
        (if fds > 0 {
            libc::CMSG_SPACE((fds * std::mem::size_of::<RawFd>()) as u32)
        } else {
            0
        }) + if creds {
            libc::CMSG_SPACE(std::mem::size_of::<libc::ucred>() as u32)
        } else {
            0
        }
    } as usize;
    vec![0u64; bytes.div_ceil(8)]
}

/// A control buffer holding one SCM_CREDENTIALS header with `c`, for sendmsg/sendmmsg.
pub fn creds_control(c: libc::ucred) -> Vec<u64> {
    let mut control = control_buffer(0, true);
    // SAFETY: msghdr is plain old data; the buffer has room for exactly one ucred header, and
    // the CMSG macros stay inside it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = (control.len() * 8) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_CREDENTIALS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::ucred>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::ucred>(), c);
    }
    control
}

/// The ucred inside a buffer made by [`creds_control`] (`None` for an empty one).
pub fn creds_of(control: &[u64]) -> Option<libc::ucred> {
    if control.is_empty() {
        return None;
    }
    let mut control = control.to_vec();
    // SAFETY: as in creds_control: a buffer laid out by it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = (control.len() * 8) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        Some(std::ptr::read_unaligned(
            libc::CMSG_DATA(cmsg).cast::<libc::ucred>(),
        ))
    }
}

/// Whether `path` is a unix socket.
/// Whether sigshim has a controlling terminal, whether or not stdin, stdout or stderr is it
/// (`app </dev/null >log 2>&1 &` at a shell has one): /dev/tty opens exactly then.
pub fn has_controlling_terminal() -> bool {
    // SAFETY: open of a constant NUL-terminated path, close of the descriptor it returned.
    unsafe {
        let fd = libc::open(
            c"/dev/tty".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::close(fd);
            return true;
        }
        false
    }
}

pub fn is_socket(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
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

/// Blocks until a descriptor is ready or `timeout` passes. EINTR counts as "nothing happened".
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<std::time::Duration>) -> std::io::Result<()> {
    let ms = match timeout {
        None => -1,
        // Round up: waking a millisecond early would only spin back into poll.
        Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
    };
    // SAFETY: poll on a valid slice of pollfds.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 && errno() != libc::EINTR {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

// --- the raw signal mask -------------------------------------------------------------------
//
// The kernel's signal set is 64 bits on x86_64 and every other Linux architecture sigshim
// builds for. The C libraries hide part of it: glibc's sigaddset() refuses 32 and 33 and its
// sigprocmask() silently drops them, musl does the same for 32 to 34. A signal sigshim cannot
// block keeps its default action, which is to terminate: `kill -33 sigshim` used to end it.
// So the mask, the dispositions and the signalfd go through the raw system calls.

/// A kernel signal set: bit n-1 is signal n.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    pub fn with(mut self, sig: i32) -> SigSet {
        if (1..=64).contains(&sig) {
            self.0 |= 1 << (sig - 1);
        }
        self
    }
}

/// The kernel's `struct sigaction` for rt_sigaction(2). No restorer is needed for SIG_DFL and
/// SIG_IGN, which never return to user space.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Signals whose disposition `set_disposition` last set to SIG_DFL, bit n-1 for signal n. sigshim
/// installs no handler of its own and sets dispositions only through `set_disposition`, so
/// these are known to be at their default action: `exit::raise` need not set it again.
static AT_DEFAULT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether `sig`'s disposition is known to be SIG_DFL (set so by `set_disposition`).
pub fn at_default(sig: i32) -> bool {
    (1..=64).contains(&sig)
        && AT_DEFAULT.load(std::sync::atomic::Ordering::Relaxed) & (1 << (sig - 1)) != 0
}

/// Sets `sig`'s disposition to SIG_DFL or SIG_IGN. Async-signal-safe: one system call on a
/// stack value and an atomic store, so the child uses it between fork and exec.
///
/// # Safety
/// `handler` must be SIG_DFL or SIG_IGN.
pub unsafe fn set_disposition(sig: i32, handler: libc::sighandler_t) -> bool {
    let act = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction with a valid pointer to a correctly laid out struct and the
    // kernel's sigset size (8 bytes).
    let done = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        ) == 0
    };
    if (1..=64).contains(&sig) {
        let bit = 1u64 << (sig - 1);
        let order = std::sync::atomic::Ordering::Relaxed;
        if done && handler == libc::SIG_DFL {
            AT_DEFAULT.fetch_or(bit, order);
        } else {
            // Failed, or ignored: not known to be at its default any more.
            AT_DEFAULT.fetch_and(!bit, order);
        }
    }
    done
}

/// rt_sigprocmask(how, set). Async-signal-safe.
pub fn sigmask(how: libc::c_int, set: SigSet) -> bool {
    // SAFETY: rt_sigprocmask with a valid pointer to 8 bytes and no old-set pointer.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set.0 as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        ) == 0
    }
}

/// A blocking, close-on-exec signalfd for `set` (signalfd4(2)).
///
/// Blocking, so that a loop with nothing else to wait for sleeps in read(2) on it and a signal
/// costs one system call instead of poll(2) and then read(2) (catatonit waits the same way).
/// A read after poll(2) reported it readable never blocks: the caller is the only reader, and
/// the signals in `set` are blocked, so nothing else can take a pending one first.
pub fn signalfd(set: SigSet) -> std::io::Result<OwnedFd> {
    // SAFETY: signalfd4 with a valid pointer to 8 bytes.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &set.0 as *const u64,
            8usize,
            libc::SFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just created for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

// --- the console ---------------------------------------------------------------------------

/// Most a console queue holds before the loop stops reading the app's output.
pub const CONSOLE_MAX: usize = 256 * 1024;

/// How a console descriptor is written without blocking.
enum How {
    /// A descriptor of our own on the same pipe or terminal, opened through /proc/self/fd with
    /// O_NONBLOCK: the flag belongs to our open file description only, so the init's or the
    /// terminal's other users never see it (setting it on fd 1 itself would).
    Own(OwnedFd),
    /// A socket (journald's stdout stream, a supervisor's socketpair): send(MSG_DONTWAIT).
    Socket,
    /// A regular file or anything else: plain write(2), which does not wait on a reader.
    Plain,
}

struct Console {
    fd: RawFd,
    how: Option<How>,
    queue: Vec<u8>,
    /// Bytes of `queue` already written.
    done: usize,
    /// EPIPE or another hard error: nothing more is written (and nothing raises SIGPIPE again).
    broken: bool,
}

thread_local! {
    // sigshim is single-threaded; thread_local keeps the console out of any lock.
    static CONSOLES: RefCell<[Console; 2]> = const { RefCell::new([Console::new(1), Console::new(2)]) };
}

impl Console {
    const fn new(fd: RawFd) -> Console {
        Console {
            fd,
            how: None,
            queue: Vec::new(),
            done: 0,
            broken: false,
        }
    }

    fn how(&mut self) -> &How {
        let fd = self.fd;
        self.how.get_or_insert_with(|| {
            // SAFETY: fstat into a zeroed struct.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd, &mut st) } != 0 {
                return How::Plain;
            }
            match st.st_mode & libc::S_IFMT {
                libc::S_IFSOCK => How::Socket,
                libc::S_IFIFO | libc::S_IFCHR => {
                    let path = format!("/proc/self/fd/{fd}\0");
                    // O_NOCTTY: reopening a terminal must never make it our controlling one.
                    // SAFETY: open with a NUL-terminated path.
                    let own = unsafe {
                        libc::open(
                            path.as_ptr().cast(),
                            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
                        )
                    };
                    if own >= 0 {
                        // SAFETY: a descriptor we just opened.
                        How::Own(unsafe { OwnedFd::from_raw_fd(own) })
                    } else {
                        // No /proc: plain writes; poll(POLLOUT) before each keeps most of them
                        // from blocking.
                        How::Plain
                    }
                }
                _ => How::Plain,
            }
        })
    }

    fn backlog(&self) -> usize {
        self.queue.len() - self.done
    }

    fn push(&mut self, parts: &[&[u8]]) {
        if self.broken {
            return;
        }
        for p in parts {
            self.queue.extend_from_slice(p);
        }
        self.flush();
    }

    /// Writes what it can without blocking.
    fn flush(&mut self) {
        if self.backlog() > 0 {
            self.how();
        }
        while self.backlog() > 0 && !self.broken {
            let fd = self.fd;
            let buf = &self.queue[self.done..];
            let n = match self.how.as_ref().unwrap_or(&How::Plain) {
                How::Own(own) => {
                    // SAFETY: write from a valid slice to our own descriptor.
                    unsafe { libc::write(own.as_raw_fd(), buf.as_ptr().cast(), buf.len()) }
                }
                How::Socket => {
                    // SAFETY: send from a valid slice.
                    unsafe {
                        libc::send(
                            fd,
                            buf.as_ptr().cast(),
                            buf.len(),
                            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                        )
                    }
                }
                How::Plain => {
                    let mut pfd = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: poll on one pollfd, without waiting.
                    if unsafe { libc::poll(&mut pfd, 1, 0) } == 0 {
                        return;
                    }
                    // SAFETY: write from a valid slice.
                    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }
                }
            };
            if n > 0 {
                self.done += n as usize;
                continue;
            }
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return,
                _ => {
                    // EPIPE (the reader is gone), EBADF (closed by the caller), EIO (a hung-up
                    // terminal): nothing written later would arrive either.
                    self.broken = true;
                    self.queue = Vec::new();
                    self.done = 0;
                    return;
                }
            }
        }
        if self.backlog() == 0 {
            self.queue.clear();
            self.done = 0;
        }
    }

    fn pollfd(&mut self) -> Option<libc::pollfd> {
        if self.backlog() == 0 || self.broken {
            return None;
        }
        let fd = match self.how() {
            How::Own(own) => own.as_raw_fd(),
            _ => self.fd,
        };
        Some(libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        })
    }
}

/// Queues `line` and a newline for sigshim's stdout (1) or stderr (2) and writes what fits now.
pub fn console_line(fd: RawFd, line: &[u8]) {
    console_write(fd, &[line, b"\n"]);
}

/// Queues bytes for sigshim's stdout (1) or stderr (2) and writes what fits now.
pub fn console_write(fd: RawFd, parts: &[&[u8]]) {
    let i = if fd == 1 { 0 } else { 1 };
    CONSOLES.with(|c| c.borrow_mut()[i].push(parts));
}

/// Bytes waiting on either console.
pub fn console_backlog() -> usize {
    CONSOLES.with(|c| c.borrow().iter().map(Console::backlog).sum())
}

/// The console descriptors with a backlog, to poll for POLLOUT.
pub fn console_pollfds(fds: &mut Vec<libc::pollfd>) -> usize {
    CONSOLES.with(|c| {
        let mut n = 0;
        for con in c.borrow_mut().iter_mut() {
            if let Some(p) = con.pollfd() {
                fds.push(p);
                n += 1;
            }
        }
        n
    })
}

/// Writes what the consoles can take now.
pub fn console_flush() {
    CONSOLES.with(|c| c.borrow_mut().iter_mut().for_each(Console::flush));
}

/// At exit: waits until `deadline` at most for the consoles to take their backlog.
pub fn console_finish(deadline: Instant) {
    loop {
        console_flush();
        let mut fds = Vec::with_capacity(2);
        if console_pollfds(&mut fds) == 0 {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let _ = poll(&mut fds, Some(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigset_bits() {
        let s = SigSet::default().with(1).with(64).with(0).with(65);
        assert_eq!(s.0, 1 | (1 << 63));
    }

    #[test]
    fn os_error_drops_the_code() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error(&e), "No such file or directory");
    }
}
