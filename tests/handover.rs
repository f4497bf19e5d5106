//! What the init hands the main process reaches the app as meant, and what the app says reaches
//! the init whole: against the real binary, without an init (tests/systemd.rs has the same
//! under a real systemd). Each receiver is a socket the test owns in its scratch directory: the
//! "journal socket" of `--log auto` and the `NOTIFY_SOCKET` of the relay's upstream.
//!
//! - LISTEN_PID and WATCHDOG_PID naming sigshim name the app; other values are left alone;
//!   the socket-activation descriptors stay in place, and `--ready fd:`/`--notify-fd` numbers
//!   among them are refused;
//! - a watchdog nothing can feed is warned about;
//! - `--log auto` on a terminal, a pipe, a file, /dev/null and a journal stream (a stream
//!   socket named by JOURNAL_STREAM), and what `-v` says about it;
//! - the notify relay: descriptors never kept, FDSTORE=1 ones passed up, barriers closed by the
//!   upstream, refused senders warned about once.
//!
//! No root needed.

mod support;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

/// `sh -c SCRIPT sigshim`: the script execs "$0" (sigshim) after setting up what the init
/// would (variables naming its own PID, `$$`, which sigshim keeps across exec; descriptors).
fn via_sh(script: &str) -> Run {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, sigshim()]);
    Run::start(cmd)
}

/// What the app (`sh -c` printing its environment) saw.
const SHOW_ENV: &str = "echo \"pid=$$ listen=$LISTEN_PID wd=$WATCHDOG_PID fds=$LISTEN_FDS names=$LISTEN_FDNAMES pidfdid=${LISTEN_PIDFDID-unset}\"; echo \"fd3=$(readlink /proc/self/fd/3)\"";

/// systemd's variables naming the main PID name the app once sigshim is in between: LISTEN_PID
/// and WATCHDOG_PID become the app's PID (LISTEN_PIDFDID, sigshim's pidfd, goes), the rest is
/// as systemd set it, and descriptor 3 is still the same file.
#[test]
fn pid_variables_naming_sigshim_name_the_app() {
    let mut run = via_sh(&format!(
        "exec 3</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web LISTEN_PIDFDID=12 \
         WATCHDOG_PID=$$ WATCHDOG_USEC=5000000 exec \"$0\" --log inherit -- sh -c '{}'",
        SHOW_ENV.replace('\'', "'\\''")
    ));
    let line = run.expect("pid=");
    let pid = field(&line, "pid");
    assert_eq!(field(&line, "listen"), pid, "{line}");
    assert_eq!(field(&line, "wd"), pid, "{line}");
    assert_ne!(pid, run.pid(), "the app is sigshim's child, not sigshim");
    assert!(line.ends_with("fds=1 names=web pidfdid=unset"), "{line}");
    assert_eq!(run.expect("fd3="), "fd3=/dev/null");
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
}

/// A value that does not name sigshim is someone else's: left exactly as it was.
#[test]
fn other_pids_are_left_alone() {
    let mut run = via_sh(&format!(
        "exec 3</dev/null; LISTEN_PID=1 LISTEN_FDS=1 LISTEN_PIDFDID=12 WATCHDOG_PID=1 \
         exec \"$0\" --log inherit -- sh -c '{}'",
        SHOW_ENV.replace('\'', "'\\''")
    ));
    let line = run.expect("pid=");
    assert!(
        line.contains(" listen=1 wd=1 ") && line.ends_with("pidfdid=12"),
        "{line}"
    );
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
}

/// `--ready fd:N` and `--notify-fd N` may not take one of the socket-activation descriptors
/// (3.. 3+LISTEN_FDS-1 when LISTEN_PID names sigshim): a usage error, exit 2. The number
/// right after them is fine.
#[test]
fn descriptors_among_the_passed_sockets_are_refused() {
    for opt in ["--ready fd:4", "--notify-fd 3"] {
        let mut run = via_sh(&format!(
            "exec 3</dev/null 4</dev/null; LISTEN_PID=$$ LISTEN_FDS=2 exec \"$0\" {opt} -- true"
        ));
        let st = run.wait();
        let err = run.stderr();
        assert_eq!(st.code(), Some(2), "{opt}: {err}");
        assert!(
            err.starts_with("sigshim: usage: ")
                && err.contains("is one of the sockets systemd passed (LISTEN_FDS: 3..=4)"),
            "{opt}: {err}"
        );
    }
    let mut run = via_sh(
        "exec 3</dev/null 4</dev/null; LISTEN_PID=$$ LISTEN_FDS=2 exec \"$0\" --log inherit --ready fd:5 -- sh -c 'echo >&5; echo announced'",
    );
    run.expect("announced");
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
}

/// A socket standing in for systemd's notify socket: what sigshim sends upstream.
struct Upstream {
    sock: UnixDatagram,
    path: String,
    _dir: Scratch,
}

impl Upstream {
    fn new(name: &str) -> Upstream {
        let dir = Scratch::new(name);
        let path = dir.file("notify");
        let sock = UnixDatagram::bind(&path).expect("bind the upstream socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Upstream {
            sock,
            path,
            _dir: dir,
        }
    }

    /// The next message and the descriptors that came with it; `None` after `timeout`.
    fn recv(&self, timeout: Duration) -> Option<(String, Vec<OwnedFd>)> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(m) = recv_with_fds(&self.sock) {
                return Some(m);
            }
        }
        None
    }

    /// Messages until one contains `needle`, which it returns with everything before it.
    fn until(&self, needle: &str) -> Vec<(String, Vec<OwnedFd>)> {
        let mut seen = Vec::new();
        let end = Instant::now() + TIMEOUT;
        while Instant::now() < end {
            if let Some(m) = self.recv(Duration::from_millis(200)) {
                let done = m.0.contains(needle);
                seen.push(m);
                if done {
                    return seen;
                }
            }
        }
        panic!(
            "no message with {needle:?} upstream; got {:?}",
            seen.iter().map(|m| &m.0).collect::<Vec<_>>()
        );
    }
}

/// recvmsg with room for descriptors (SCM_RIGHTS); `None` on timeout.
fn recv_with_fds(sock: &UnixDatagram) -> Option<(String, Vec<OwnedFd>)> {
    let mut buf = [0u8; 8192];
    let mut control = [0u64; 256];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr pointing at local buffers that outlive the call; the CMSG
    // macros stay inside `control`.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return None;
        }
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let data = libc::CMSG_DATA(cmsg).cast::<i32>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Some((
            String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
            fds,
        ))
    }
}

/// With a watchdog for sigshim (WATCHDOG_USEC, WATCHDOG_PID naming it) and systemd listening,
/// `--ready` other than notify leaves the app without a way to ping: sigshim warns at start,
/// naming the fix. Under `--ready notify` it does not.
#[test]
fn a_watchdog_nothing_can_feed_is_warned_about() {
    let up = Upstream::new("wd-warn");
    let mut run = via_sh(&format!(
        "NOTIFY_SOCKET={} WATCHDOG_PID=$$ WATCHDOG_USEC=3000000 exec \"$0\" --log inherit -- sh -c 'echo app ran'",
        up.path
    ));
    run.expect("app ran");
    assert_eq!(run.wait().code(), Some(0));
    let err = run.stderr();
    let warning: Vec<&str> = err.lines().filter(|l| l.contains("watchdog")).collect();
    assert_eq!(warning.len(), 1, "{err}");
    assert!(
        warning[0].starts_with("sigshim: warning: ")
            && warning[0].contains("WatchdogSec=3s")
            && warning[0].contains("--ready notify"),
        "{}",
        warning[0]
    );
    let mut run = via_sh(&format!(
        "NOTIFY_SOCKET={} WATCHDOG_PID=$$ WATCHDOG_USEC=3000000 exec \"$0\" --log inherit --ready notify -- sh -c 'echo app ran'",
        up.path
    ));
    run.expect("app ran");
    run.wait();
    assert!(!run.stderr().contains("watchdog"), "{}", run.stderr());
}

// ---------------------------------------------------------------------------------------------
// --log auto

/// A datagram socket standing in for the journal: `--journal-socket` points at it.
struct Journal {
    sock: UnixDatagram,
    path: String,
    _dir: Scratch,
}

impl Journal {
    fn new(name: &str) -> Journal {
        let dir = Scratch::new(name);
        let path = dir.file("journal.socket");
        let sock = UnixDatagram::bind(&path).expect("bind");
        sock.set_nonblocking(true).unwrap();
        Journal {
            sock,
            path,
            _dir: dir,
        }
    }

    /// Every record received so far (sigshim has exited: nothing more comes).
    fn records(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    /// The sigshim arguments of an auto run against this journal (no syslog to fall back on).
    fn args(&self, tag: &str) -> String {
        format!(
            "-v --log auto --journal-socket {} --syslog-socket /nonexistent/log --tag {tag}",
            self.path
        )
    }
}

/// Asserts sigshim left the output alone: nothing reached the journal socket.
fn assert_not_captured(j: &Journal, what: &str) {
    let got = j.records();
    assert!(got.is_empty(), "{what}: auto captured: {got:?}");
}

/// On a pipe (a supervisor's logger, `| logger`): the app writes there itself, and -v says
/// why (on stderr, also a pipe).
#[test]
fn auto_leaves_a_pipe_alone() {
    let j = Journal::new("auto-pipe");
    let mut run = via_sh(&format!(
        "exec \"$0\" {} -- sh -c 'echo on the pipe'",
        j.args("pipe")
    ));
    run.expect("on the pipe");
    assert_eq!(run.wait().code(), Some(0));
    assert!(
        run.stderr().contains(
            "sigshim: info: --log auto: stdout is a pipe, stderr is a pipe: the app writes there itself: not capturing"
        ),
        "{}",
        run.stderr()
    );
    assert_not_captured(&j, "pipe");
}

/// In a file (`>> app.log`): the app writes there itself.
#[test]
fn auto_leaves_a_file_alone() {
    let j = Journal::new("auto-file");
    let dir = Scratch::new("auto-file-out");
    let out = dir.file("out.log");
    let mut run = via_sh(&format!(
        "exec \"$0\" {} -- sh -c 'echo in the file' >{out} 2>&1",
        j.args("file")
    ));
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("in the file\n"), "{text}");
    assert!(
        text.contains(
            "--log auto: stdout is a file, stderr is a file: the app writes there itself"
        ),
        "{text}"
    );
    assert_not_captured(&j, "file");
}

/// stdout on /dev/null but stderr on a pipe: someone reads stderr, so nothing is captured.
#[test]
fn auto_leaves_output_alone_if_either_stream_is_read() {
    let j = Journal::new("auto-mixed");
    let mut run = via_sh(&format!(
        "exec \"$0\" {} -- sh -c 'echo to stderr >&2' >/dev/null",
        j.args("mixed")
    ));
    assert_eq!(run.wait().code(), Some(0));
    assert!(run.stderr().contains("to stderr\n"), "{}", run.stderr());
    assert_not_captured(&j, "stdout /dev/null, stderr a pipe");
}

/// On /dev/null nobody reads the output: sigshim sends it to the journal, and its own -v
/// record of the choice too (under `sigshim`).
#[test]
fn auto_captures_what_would_go_to_dev_null() {
    let j = Journal::new("auto-null");
    let mut run = via_sh(&format!(
        "exec \"$0\" {} -- sh -c 'echo into the journal' >/dev/null 2>&1",
        j.args("null")
    ));
    assert_eq!(run.wait().code(), Some(0));
    let got = j.records();
    assert!(
        got.iter()
            .any(|r| r.contains("SYSLOG_IDENTIFIER=null\n")
                && r.contains("MESSAGE=into the journal\n")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|r| r.contains("SYSLOG_IDENTIFIER=sigshim\n")
            && r.contains("MESSAGE=--log auto: stdout is /dev/null, stderr is /dev/null: sending the app's lines to ")),
        "{got:?}"
    );
}

/// stdout and stderr on a stream socket that JOURNAL_STREAM names (device:inode, as systemd
/// sets it for StandardOutput=journal): captured. The same socket without JOURNAL_STREAM, or
/// with a stale one (a variable inherited from a unit by something that redirected its
/// output), is just a socket someone reads: left alone.
#[test]
fn auto_captures_the_journal_stream_only_when_it_is_the_one() {
    use std::os::unix::fs::MetadataExt;
    for (env, captured) in [(Some(true), true), (Some(false), false), (None, false)] {
        let j = Journal::new("auto-stream");
        let (ours, theirs) = UnixStream::pair().unwrap();
        let meta = std::fs::metadata(format!("/proc/self/fd/{}", theirs.as_raw_fd())).unwrap();
        let stream = match env {
            Some(true) => format!("JOURNAL_STREAM={}:{} ", meta.dev(), meta.ino()),
            Some(false) => format!("JOURNAL_STREAM={}:{} ", meta.dev(), meta.ino() + 1),
            None => String::new(),
        };
        let theirs: OwnedFd = theirs.into();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            &format!(
                "{stream}exec \"$0\" {} -- sh -c 'echo via the stream'",
                j.args("stream")
            ),
            sigshim(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(theirs.try_clone().unwrap()))
        .stderr(Stdio::from(theirs));
        let mut child = cmd.spawn().expect("spawn");
        drop(cmd);
        let (tx, rx) = mpsc::channel();
        let mut reader = ours;
        std::thread::spawn(move || {
            let mut all = String::new();
            let _ = reader.read_to_string(&mut all);
            let _ = tx.send(all);
        });
        let text = rx
            .recv_timeout(TIMEOUT)
            .expect("sigshim's output within the timeout");
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(0), "{text}");
        let got = j.records();
        let in_journal = got.iter().any(|r| r.contains("MESSAGE=via the stream\n"));
        assert_eq!(
            in_journal, captured,
            "JOURNAL_STREAM {env:?}: {got:?} / {text}"
        );
        assert_eq!(text.contains("via the stream\n"), !captured, "{text}");
    }
}

/// On a terminal (typed at a shell): the app writes to it itself, nothing to the journal.
#[test]
fn auto_leaves_a_terminal_alone() {
    let j = Journal::new("auto-tty");
    let (mut master, slave) = pty();
    let mut cmd = Command::new(sigshim());
    cmd.args(j.args("tty").split(' '))
        .args(["--", "sh", "-c", "echo on the terminal"])
        .env("SIGSHIM_TEST_TAG", unique_tag())
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().expect("spawn");
    drop(cmd);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the last slave descriptor is closed: the end of the output.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(String::from_utf8_lossy(&all).into_owned());
    });
    let text = rx
        .recv_timeout(TIMEOUT)
        .expect("the terminal's output within the timeout");
    assert_eq!(child.wait().unwrap().code(), Some(0), "{text}");
    assert!(text.contains("on the terminal\r\n"), "{text}");
    assert!(
        text.contains(
            "--log auto: stdout is a terminal, stderr is a terminal: the app writes there itself"
        ),
        "{text}"
    );
    assert_not_captured(&j, "terminal");
}

/// A pseudo-terminal: (master as a File, slave).
fn pty() -> (std::fs::File, OwnedFd) {
    let (mut m, mut s) = (-1, -1);
    // SAFETY: openpty fills two descriptors; no name, termios or window size.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: descriptors openpty just created, owned by nobody else.
    unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

// ---------------------------------------------------------------------------------------------
// The notify relay

/// The app under `--ready notify`: one READY=1, then 100 FDSTORE=1 messages with a pipe each,
/// 100 plain messages with a pipe each, a BARRIER=1 it waits on (sd_notify_barrier(3): the
/// receiver upstream closes the pipe), and a last STATUS.
const RELAY_APP: &str = r#"
import os, select, socket, sys
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
s.send(b"READY=1\nSTATUS=up")
print("sent ready", flush=True)
sys.stdin.readline()
for i in range(100):
    r, w = os.pipe()
    socket.send_fds(s, [f"FDSTORE=1\nFDNAME=p{i}".encode()], [r])
    socket.send_fds(s, [b"STATUS=with a descriptor"], [w])
    os.close(r)
    os.close(w)
r, w = os.pipe()
socket.send_fds(s, [b"BARRIER=1"], [w])
os.close(w)
ok = select.select([r], [], [], 5)[0] and os.read(r, 1) == b""
print(f"barrier {'passed' if ok else 'timed out'}", flush=True)
s.send(b"STATUS=done")
print("done", flush=True)
sys.stdin.readline()
"#;

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The relay keeps none of the descriptors the app sends: those of FDSTORE=1 go up (systemd's
/// fd store takes them from the main PID), the barrier's pipe goes up (the receiver closes it
/// and the app's barrier passes), every other one is closed. sigshim's descriptor count is the
/// same after 201 messages with descriptors as before.
#[test]
fn the_relay_passes_descriptors_on_or_closes_them() {
    let up = Upstream::new("relay-fds");
    let dir = Scratch::new("relay-fds-app");
    let app = dir.file("app.py");
    std::fs::write(&app, RELAY_APP).unwrap();
    let gate = dir.file("gate");
    // The app reads its stdin from a FIFO the test writes to, one line per step.
    let mkfifo = Command::new("mkfifo").arg(&gate).status().unwrap();
    assert!(mkfifo.success());
    let mut run = via_sh(&format!(
        "NOTIFY_SOCKET={} exec \"$0\" --log inherit --ready notify -- python3 {app} <{gate}",
        up.path
    ));
    let mut gate_w = std::fs::OpenOptions::new().write(true).open(&gate).unwrap();
    run.expect("sent ready");
    let first = up.until("READY=1");
    assert!(first.iter().all(|(_, fds)| fds.is_empty()));
    // The app's STATUS came before READY=1 went up, and nothing else.
    let texts: Vec<&str> = first.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(texts, ["STATUS=up\n", "READY=1\n"], "{texts:?}");
    let before = fd_count(run.pid());
    use std::io::Write;
    writeln!(gate_w).unwrap();
    // Upstream: 100 FDSTORE messages with one descriptor each, the barrier with its pipe,
    // which the test (the upstream) closes by dropping it.
    let mut stored = 0;
    let mut barrier = false;
    for (m, fds) in up.until("BARRIER=1") {
        if m.starts_with("FDSTORE=1\n") {
            assert_eq!(fds.len(), 1, "{m}");
            stored += 1;
        } else if m == "BARRIER=1" {
            assert_eq!(fds.len(), 1, "the barrier's pipe");
            barrier = true;
        } else {
            assert!(fds.is_empty(), "a descriptor passed up with {m:?}");
        }
    }
    assert_eq!(stored, 100);
    assert!(barrier);
    run.expect("barrier passed");
    up.until("STATUS=done");
    run.expect("done");
    let after = fd_count(run.pid());
    assert_eq!(after, before, "sigshim kept descriptors it received");
    writeln!(gate_w).unwrap();
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
}

/// Anything in the network namespace can reach the relay's abstract socket: 50 READY=1 from a
/// stranger are refused with one warning, not fifty.
#[test]
fn refused_senders_are_warned_about_once() {
    let dir = Scratch::new("relay-strangers");
    let ready_file = dir.file("ready");
    let mut run = Run::sigshim(&[
        "--log",
        "inherit",
        "--ready",
        "notify",
        "--ready-file",
        &ready_file,
        "--stop-signal",
        "INT",
        "--",
        probe(),
        "legacy",
    ]);
    let app = field(&run.expect("ready pid="), "pid");
    let environ = std::fs::read(format!("/proc/{app}/environ")).unwrap();
    let socket = environ
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"NOTIFY_SOCKET="))
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
        .expect("the app has a NOTIFY_SOCKET");
    let name = socket.strip_prefix('@').expect("an abstract socket");
    assert_eq!(name.len(), 5, "not the kernel's autobind name: {socket}");
    let stranger = UnixDatagram::unbound().unwrap();
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
    for _ in 0..50 {
        stranger.send_to_addr(b"READY=1\n", &addr).unwrap();
    }
    assert!(
        eventually(TIMEOUT, || run
            .stderr()
            .contains("ignoring a notify message")),
        "{}",
        run.stderr()
    );
    // The relay reads at most 16 a wake-up: give it the rest, then stop the app.
    stranger.send_to_addr(b"STATUS=last\n", &addr).unwrap();
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    let err = run.stderr();
    assert_eq!(err.matches("ignoring").count(), 1, "{err}");
    assert!(
        !std::path::Path::new(&ready_file).exists(),
        "a stranger's READY=1 counted"
    );
    run.assert_nothing_left();
}

/// A restart as systemd hears it (`Type=notify-reload` / `ExecReload=kill -USR1 $MAINPID`):
/// RELOADING=1 with MONOTONIC_USEC and an EXTEND_TIMEOUT_USEC covering the stop schedule, the
/// drain and the readiness timeout, then READY=1 once the new generation is ready.
#[test]
fn a_restart_is_reported_as_a_reload() {
    let up = Upstream::new("restart-reload");
    let mut run = via_sh(&format!(
        "NOTIFY_SOCKET={} exec \"$0\" --log inherit --ready log:^ready --ready-timeout 7s \
         --stop-signal INT --kill-after 5s --drain-timeout 1s --restart-on USR1 \
         --restart-mode overlap -- {} legacy",
        up.path,
        probe()
    ));
    let first = field(&run.expect("ready pid="), "pid");
    let seen = up.until("READY=1");
    assert!(
        seen.last().unwrap().0.contains(&format!("pid {first}")),
        "{seen:?}"
    );
    run.signal(libc::SIGUSR1);
    let second = field(&run.expect("ready pid="), "pid");
    let seen = up.until("READY=1");
    let texts: Vec<&str> = seen.iter().map(|m| m.0.as_str()).collect();
    let reloading = texts
        .iter()
        .find(|t| t.contains("RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {texts:?}"));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    assert!(reloading.contains("STATUS=restarting"), "{reloading}");
    // 5 s of schedule + 1 s of drain + 7 s of readiness + 1 s of margin.
    assert!(
        reloading.contains("EXTEND_TIMEOUT_USEC=14000000\n"),
        "{reloading}"
    );
    assert!(texts.last().unwrap().contains("READY=1"), "{texts:?}");
    assert_ne!(first, second);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
}
