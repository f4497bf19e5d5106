//! Robustness of the real binary under abuse: signal storms, a 1 GiB log flood, faults of the
//! destination and of the process tree, exhausted descriptors, and hostile command lines.
//!
//! Every test reads sigshim's stderr at the end and fails if it holds `panicked at`: whatever
//! happens, sigshim answers with its own one-line message and exit code, never a Rust panic.
//! Log destinations are datagram sockets the test binds in its own temporary directory and
//! reads on a thread ([`Sink`]); never the host's /dev/log or journal.
//!
//! The flood saturates both cores for half a minute, and the storms use up the user's quota of
//! queued real-time signals (RLIMIT_SIGPENDING), either of which would distort what other tests
//! measure. So those take [`CPU`] for writing and every other test takes it for reading: the
//! light tests run in parallel with each other, the heavy ones alone.
//!
//! Expect about a minute for the whole file (the 1 GiB flood alone takes ~35 s with the debug
//! build of sigshim); `SIGSHIM_FLOOD_BYTES` shrinks the flood for a quick local run.

mod support;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::*;

// ---------------------------------------------------------------------------------------------
// Helpers

static CPU: RwLock<()> = RwLock::new(());

fn shared_cpu() -> RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive_cpu() -> RwLockWriteGuard<'static, ()> {
    CPU.write().unwrap_or_else(|e| e.into_inner())
}

/// `sigshim ARGS...` with arguments that need not be UTF-8.
fn run_os<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(sigshim());
    cmd.args(args);
    Run::start(cmd)
}

/// sigshim's stderr once `done` holds for it (the reader thread may lag the exit).
fn stderr_once(run: &Run, done: impl Fn(&str) -> bool) -> String {
    eventually_value(TIMEOUT, || {
        let err = run.stderr();
        if done(&err) { Ok(err) } else { Err(err) }
    })
    .unwrap_or_else(|err| err)
}

/// Fails if sigshim panicked: every failure must be its own message, never a Rust panic.
fn assert_no_panic(what: &str, stderr: &str) {
    assert!(
        !stderr.contains("panicked at"),
        "{what}: sigshim panicked:\n{stderr}"
    );
}

/// The child's lines sigshim wrote to its stderr because the destination was unusable.
fn fallback_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.starts_with("sigshim:"))
        .collect()
}

/// N from `sigshim: warning: N lines went to stderr instead of ...`.
fn fallback_count(stderr: &str) -> Option<usize> {
    stderr.lines().find_map(|l| {
        let before = l.split_once(" went to stderr")?.0;
        let before = before
            .strip_suffix(" lines")
            .or_else(|| before.strip_suffix(" line"))?;
        before
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// The PID the child script wrote to `dir/pid` (its `$$`).
fn script_pid(dir: &Path) -> i32 {
    let path = dir.join("pid");
    eventually_value(TIMEOUT, || {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|s| s.ends_with('\n'))
            .and_then(|s| s.trim().parse().ok())
            .ok_or(())
    })
    .unwrap_or_else(|()| panic!("the child never wrote its PID to {}", path.display()))
}

/// `Name:  N kB` from /proc/PID/status, in KiB (None once the process has released its memory).
fn status_kib(pid: i32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of `pid`, in seconds (proc(5) fields 14 and 15).
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}

fn send_signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill on a PID this test started and has not reaped.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// A syslog receiver the test owns: a datagram socket bound at `path`, read on a thread with
/// recvmmsg(2). It counts every record, the app's (RFC 3164 records whose TAG is the app's)
/// and, of those, the ones that end with an expected suffix, and keeps the first `keep` records.
struct Sink {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    total: Arc<AtomicU64>,
    app: Arc<AtomicU64>,
    exact: Arc<AtomicU64>,
    kept: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<UnixDatagram>>,
}

struct SinkOptions {
    /// Records whose bytes contain `TAG[` count as the app's.
    tag: Vec<u8>,
    /// The app's records that also end with this count as exact.
    suffix: Vec<u8>,
    keep: usize,
}

impl Sink {
    fn start(path: &Path, opts: SinkOptions) -> Sink {
        let sock = UnixDatagram::bind(path).expect("bind the sink");
        Sink::with_socket(sock, path, opts)
    }

    /// Like `start`, with the socket's receive queue as long as systemd makes it on every host
    /// it runs (`net.unix.max_dgram_qlen = 512`, sysctl.d/50-default.conf) instead of the
    /// kernel's default of 10 that this machine keeps: with 10, a datagram sender and its
    /// receiver take turns every 10 records. The limit is taken from the network namespace the
    /// socket is created in, so a helper thread creates it in a namespace of its own where the
    /// sysctl can be raised without touching the host's (root only; else the host's length).
    fn start_long_queue(path: &Path, opts: SinkOptions) -> (Sink, &'static str) {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return (Sink::start(path, opts), "the host's max_dgram_qlen");
        }
        let p = path.to_path_buf();
        let sock = std::thread::spawn(move || {
            // SAFETY: unshare on this helper thread only; it exits right after binding.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // /proc/sys/net shows the namespace of the task that opens it: this thread's.
            let ours = std::fs::read_link("/proc/thread-self/ns/net")?;
            let host = std::fs::read_link(format!("/proc/{}/ns/net", std::process::id()))?;
            if ours == host {
                return Err(std::io::Error::other(
                    "still in the host's network namespace",
                ));
            }
            std::fs::write("/proc/sys/net/unix/max_dgram_qlen", "512")?;
            UnixDatagram::bind(&p)
        })
        .join()
        .expect("namespace thread");
        match sock {
            Ok(sock) => (Sink::with_socket(sock, path, opts), "max_dgram_qlen 512"),
            Err(e) => {
                eprintln!(
                    "cannot raise the receive queue in a private netns ({e}): using the host's"
                );
                (Sink::start(path, opts), "the host's max_dgram_qlen")
            }
        }
    }

    fn with_socket(sock: UnixDatagram, path: &Path, opts: SinkOptions) -> Sink {
        // A short timeout lets the thread notice `stop`; reading stops once the queue is empty.
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let total = Arc::new(AtomicU64::new(0));
        let app = Arc::new(AtomicU64::new(0));
        let exact = Arc::new(AtomicU64::new(0));
        let kept = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, total, app, exact, kept) = (
                Arc::clone(&stop),
                Arc::clone(&total),
                Arc::clone(&app),
                Arc::clone(&exact),
                Arc::clone(&kept),
            );
            let mut needle = opts.tag.clone();
            needle.push(b'[');
            std::thread::spawn(move || {
                let mut kept_count = 0;
                recv_loop(&sock, &stop, |rec| {
                    total.fetch_add(1, Ordering::Relaxed);
                    // RFC 3164: `<PRI>` then the 15-byte timestamp and a space, then TAG.
                    let tag_at = rec.iter().take(5).position(|&b| b == b'>').map(|p| p + 17);
                    if tag_at.is_some_and(|t| rec.get(t..).is_some_and(|r| r.starts_with(&needle)))
                    {
                        app.fetch_add(1, Ordering::Relaxed);
                        if rec.ends_with(&opts.suffix) {
                            exact.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if kept_count < opts.keep {
                        kept_count += 1;
                        kept.lock().unwrap().push(rec.to_vec());
                    }
                });
                sock
            })
        };
        Sink {
            path: path.to_path_buf(),
            stop,
            total,
            app,
            exact,
            kept,
            thread: Some(thread),
        }
    }

    fn app(&self) -> u64 {
        self.app.load(Ordering::Relaxed)
    }

    fn kept(&self) -> Vec<Vec<u8>> {
        self.kept.lock().unwrap().clone()
    }

    /// Waits (bounded) until a kept record satisfies `check`.
    fn wait_for(&self, what: &str, check: impl Fn(&[u8]) -> bool) {
        let found = eventually(TIMEOUT, || self.kept().iter().any(|r| check(r)));
        assert!(
            found,
            "no record {what} at {}; got {:?}",
            self.path.display(),
            self.kept()
                .iter()
                .map(|r| r.escape_ascii().to_string())
                .collect::<Vec<_>>()
        );
    }

    /// Reads what is still queued, then stops; returns (total, app, exact) and the socket.
    fn finish(mut self) -> ((u64, u64, u64), UnixDatagram) {
        self.stop.store(true, Ordering::Relaxed);
        let sock = self.thread.take().unwrap().join().expect("sink thread");
        let counts = (
            self.total.load(Ordering::Relaxed),
            self.app.load(Ordering::Relaxed),
            self.exact.load(Ordering::Relaxed),
        );
        (counts, sock)
    }

    /// The destination vanishes: its path is unlinked and its socket closed.
    fn vanish(self) {
        std::fs::remove_file(&self.path).expect("unlink the sink");
        let (_, sock) = self.finish();
        drop(sock);
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Receives datagrams in batches until `stop` is set and the queue is empty.
fn recv_loop(sock: &UnixDatagram, stop: &AtomicBool, mut on_record: impl FnMut(&[u8])) {
    use std::os::fd::AsRawFd;
    const BATCH: usize = 64;
    const SIZE: usize = 16 * 1024;
    let mut bufs = vec![0u8; BATCH * SIZE];
    loop {
        let mut iovs: Vec<libc::iovec> = bufs
            .chunks_mut(SIZE)
            .map(|c| libc::iovec {
                iov_base: c.as_mut_ptr().cast(),
                iov_len: SIZE,
            })
            .collect();
        // SAFETY: mmsghdr is plain old data; zeroed is a valid empty header.
        let mut msgs: Vec<libc::mmsghdr> =
            (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: BATCH headers, each pointing at one iovec of SIZE bytes inside `bufs`, which
        // outlives the call. MSG_WAITFORONE: return once at least one datagram arrived.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_WAITFORONE as _,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) if !stop.load(Ordering::Relaxed) => continue,
                _ => return,
            }
        }
        for (k, m) in msgs.iter().take(n as usize).enumerate() {
            let len = m.msg_len as usize;
            on_record(&bufs[k * SIZE..k * SIZE + len]);
        }
    }
}

/// The pipe inodes among `pid`'s descriptors above 2.
fn pipes_above_stderr_of(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) > Some(2))
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .filter(|t| t.starts_with("pipe:"))
        .collect()
}

/// How many pipes sigshim (`pid`) holds above fd 2 that it did not inherit: the read ends of
/// the child's stdout and stderr while it still reads them. Pipes the test process itself
/// holds (descriptors leaked into it by whatever started `cargo test`, which sigshim passes on
/// like any exec wrapper) are not counted.
fn pipes_above_stderr(pid: i32) -> usize {
    let inherited = pipes_above_stderr_of(std::process::id());
    pipes_above_stderr_of(pid as u32)
        .iter()
        .filter(|p| !inherited.contains(p))
        .count()
}

// ---------------------------------------------------------------------------------------------
// Signal storms

/// 10,000 signals of mixed kinds (USR1, USR2, HUP, WINCH and four real-time ones) sent to
/// sigshim as fast as a loop of kill(2) goes, while the probe echoes what it receives. Standard
/// signals coalesce (signal(7)), real-time ones queue: either way sigshim must survive, keep
/// forwarding (each kind arrives; a distinct signal sent after the storm is echoed), and still
/// stop the child cleanly, well inside its deadline, on SIGTERM.
#[test]
fn signal_storm_keeps_forwarding_and_stops_cleanly() {
    let _cpu = exclusive_cpu();
    let mut run = Run::sigshim(&[
        "--log",
        "inherit",
        "--kill-after",
        "2s",
        "--",
        probe(),
        "signals",
    ]);
    run.expect("ready");
    let shim = run.pid();
    let rt = libc::SIGRTMIN();
    let kinds = [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGHUP,
        libc::SIGWINCH,
        rt + 1,
        rt + 2,
        rt + 3,
        rt + 4,
    ];
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..10_000 {
        // EAGAIN when the real-time queue is full (RLIMIT_SIGPENDING) is the kernel's business.
        if !send_signal(shim, kinds[i % kinds.len()]) {
            refused += 1;
        }
    }
    let storm = started.elapsed();
    assert!(
        run.child.try_wait().expect("try_wait").is_none(),
        "sigshim died during the storm:\n{}",
        run.stderr()
    );
    // A signal not in the storm: its echo proves the loop is not stuck.
    run.signal(libc::SIGALRM);
    run.expect("child got 14");
    for k in kinds {
        run.expect_any_order(&format!("child got {k}"));
    }
    let echoed = run
        .seen
        .iter()
        .filter(|l| l.starts_with("child got"))
        .count();
    eprintln!(
        "storm: 10,000 signals in {storm:?} ({refused} refused by the kernel); {echoed} echoed so far"
    );

    let stop = Instant::now();
    run.signal(libc::SIGTERM);
    let st = run.wait();
    let took = stop.elapsed();
    let err = stderr_once(&run, |_| true);
    assert_no_panic("storm", &err);
    assert_eq!(
        st.code(),
        Some(0),
        "the probe exits 0 on TERM: {st:?}\n{err}"
    );
    assert!(
        took < Duration::from_secs(2),
        "stop took {took:?}: the 2s kill deadline was reached, TERM did not get through"
    );
    run.assert_nothing_left();
}

/// The child for the deadline tests: ignores every signal of the storms (an ignored
/// disposition survives exec) and sleeps, so that only the SIGKILL of the kill deadline ends
/// it and sigshim must die of SIGKILL.
const IGNORES_EVERYTHING: &str =
    "trap '' TERM INT HUP USR1 USR2 WINCH RTMIN+1 RTMIN+2; echo ready; exec sleep 1000";

/// A storm that does not stop while the stop schedule runs: sigshim keeps receiving signals as
/// fast as they can be sent, and the kill deadline must still fire on time (the deadline is
/// poll(2)'s timeout; a loop that only ever reads signals would starve it).
#[test]
fn sustained_signal_storm_does_not_delay_the_kill_deadline() {
    let _cpu = exclusive_cpu();
    let mut run = Run::sigshim(&[
        "--log",
        "inherit",
        "--kill-after",
        "300ms",
        "--",
        "bash",
        "-c",
        IGNORES_EVERYTHING,
    ]);
    run.expect("ready");
    let shim = run.pid();
    let rt = libc::SIGRTMIN();
    let kinds = [libc::SIGUSR1, libc::SIGHUP, rt + 1, libc::SIGWINCH, rt + 2];
    let stop = Instant::now();
    run.signal(libc::SIGTERM);
    let mut sent = 0u64;
    let st = loop {
        // try_wait before each burst: once reaped the PID may be reused, so no signal follows.
        if let Some(st) = run.child.try_wait().expect("try_wait") {
            break st;
        }
        if stop.elapsed() > Duration::from_secs(10) {
            let state = std::fs::read_to_string(format!("/proc/{shim}/status"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("State") || l.starts_with("SigQ"))
                .collect::<Vec<_>>()
                .join(", ");
            panic!(
                "sigshim did not stop within 10 s under a signal storm (kill deadline 300ms, \
                 {sent} signals sent, {state})\n{}",
                run.stderr()
            );
        }
        for k in kinds {
            send_signal(shim, k);
            sent += 1;
        }
    };
    let took = stop.elapsed();
    eprintln!("storm during the stop: {sent} signals, stopped after {took:?}");
    let err = stderr_once(&run, |e| e.contains("kill deadline"));
    assert_no_panic("storm during stop", &err);
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}\n{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(300 + 1500),
        "stop took {took:?} with a 300ms deadline under a storm"
    );
    run.assert_nothing_left();
}

/// A burst of queued real-time signals (40,000, sent while sigshim is stopped, as a busy
/// same-user process could queue them), then the init's SIGTERM: the stop must still be sent
/// at once and the 300ms kill deadline kept. Real-time signals queue one entry each
/// (signal(7)), so this is 40,000 reads of the signalfd that the loop must interleave with its
/// deadlines rather than finish first.
#[test]
fn queued_signal_burst_does_not_delay_the_kill_deadline() {
    let _cpu = exclusive_cpu();
    let mut run = Run::sigshim(&[
        "--log",
        "inherit",
        "--kill-after",
        "300ms",
        "--",
        "bash",
        "-c",
        IGNORES_EVERYTHING,
    ]);
    run.expect("ready");
    let shim = run.pid();
    let rt = libc::SIGRTMIN();
    run.signal(libc::SIGSTOP);
    let mut queued = 0;
    for i in 0..40_000 {
        // Fails with EAGAIN once the user's RLIMIT_SIGPENDING is used up: then fewer queue.
        if send_signal(shim, rt + 1 + (i % 2)) {
            queued += 1;
        }
    }
    let stop = Instant::now();
    run.signal(libc::SIGTERM);
    run.signal(libc::SIGCONT);
    let st = run.wait_for(Duration::from_secs(120));
    let took = stop.elapsed();
    eprintln!("{queued} queued real-time signals, then TERM: stopped after {took:?}");
    let err = stderr_once(&run, |e| e.contains("kill deadline"));
    assert_no_panic("queued burst", &err);
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}\n{err}");
    assert!(
        took < Duration::from_millis(300 + 1500),
        "with {queued} real-time signals queued, a stop with a 300ms kill deadline took {took:?}"
    );
    run.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// Log flood

/// 1 GiB of 100-byte lines (10,737,418 lines), written by `yes | head` as fast as it goes,
/// through `--log syslog` to a socket the test reads: sigshim's peak RSS (VmHWM, sampled while
/// it runs) stays under 16 MiB, every line arrives exactly once as a well-formed record, none
/// goes to stderr, and the exit status passes through.
///
/// `SIGSHIM_FLOOD_BYTES` overrides the size for a quick local run.
#[test]
fn log_flood_of_1_gib_bounded_memory_every_line_counted() {
    flood(&[]);
}

/// The same flood through `--stdout-pty`: the pseudo-terminal is read like the pipe, with the
/// same back-pressure and the same bound.
#[test]
fn log_flood_through_a_pty_bounded_memory_every_line_counted() {
    flood(&["--stdout-pty"]);
}

fn flood(flags: &[&str]) {
    let _cpu = exclusive_cpu();
    let bytes: u64 = std::env::var("SIGSHIM_FLOOD_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let line = "x".repeat(99);
    let lines = bytes / 100;
    let dir = Scratch::new("flood");
    let path = dir.join("sink.sock");
    let (sink, queue) = Sink::start_long_queue(
        &path,
        SinkOptions {
            tag: b"flood".to_vec(),
            suffix: format!("]: {line}").into_bytes(),
            keep: 4,
        },
    );
    let started = Instant::now();
    let lines_arg = lines.to_string();
    let mut args = vec![
        "--log",
        "syslog",
        "--syslog-socket",
        path.to_str().unwrap(),
        "--tag",
        "flood",
    ];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[
        "--",
        "sh",
        "-c",
        "yes \"$1\" | head -n \"$2\"",
        "sh",
        &line,
        &lines_arg,
    ]);
    let mut run = Run::sigshim(&args);
    let shim = run.pid();
    let mut peak_kib = 0;
    let mut samples = 0;
    let mut shim_cpu = 0.0;
    while !is_zombie_or_gone(shim) {
        if let Some(hwm) = status_kib(shim, "VmHWM:") {
            peak_kib = peak_kib.max(hwm);
            samples += 1;
            shim_cpu = cpu_seconds(shim).max(shim_cpu);
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the flood did not finish in 10 minutes ({} records so far)",
            sink.app()
        );
        std::thread::sleep(Duration::from_millis(20)); // sampling interval, not a synchronisation
    }
    let st = run.wait();
    let took = started.elapsed();
    let ((total, app, exact), _sock) = sink.finish();
    let err = stderr_once(&run, |_| true);
    assert_no_panic("flood", &err);
    eprintln!(
        "flood {flags:?}: {lines} lines ({bytes} bytes) in {took:.1?} ({:.0} lines/s, {:.1} MiB/s); \
         sigshim VmHWM {peak_kib} KiB over {samples} samples, {shim_cpu:.1} s of CPU; \
         {total} records ({app} the app's); receiver with {queue}",
        lines as f64 / took.as_secs_f64(),
        bytes as f64 / took.as_secs_f64() / 1048576.0
    );
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(samples > 0, "sigshim exited before VmHWM could be read");
    assert!(
        peak_kib < 16 * 1024,
        "sigshim's peak RSS (VmHWM) was {peak_kib} KiB, over 16 MiB"
    );
    assert_eq!(
        fallback_count(&err),
        None,
        "lines went to stderr instead of the receiver:\n{}",
        &err[..err.len().min(2000)]
    );
    assert_eq!(
        app, lines,
        "the receiver counted {app} of the app's records, {lines} written"
    );
    assert_eq!(
        exact,
        lines,
        "{} records were not `flood[PID]: LINE`",
        app - exact
    );
    run.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// Faults of the destination

/// The destination disappears mid-run (its path unlinked, its socket closed): the lines
/// written after that go to sigshim's stderr, all of them, counted at exit; the app keeps
/// running and its exit code passes through.
#[test]
fn destination_vanishes_mid_run() {
    let _cpu = shared_cpu();
    let dir = Scratch::new("vanish");
    let path = dir.join("sink.sock");
    let sink = Sink::start(
        &path,
        SinkOptions {
            tag: b"vanish".to_vec(),
            suffix: Vec::new(),
            keep: 1000,
        },
    );
    let go = dir.join("go");
    let script = format!(
        "i=1; while [ $i -le 50 ]; do echo before $i; i=$((i+1)); done; \
         while [ ! -e '{go}' ]; do sleep 0.02; done; \
         i=1; while [ $i -le 50 ]; do echo after $i; echo err $i >&2; i=$((i+1)); done; exit 7",
        go = go.display()
    );
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        path.to_str().unwrap(),
        "--tag",
        "vanish",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    sink.wait_for("`before 50`", |r| r.ends_with(b"]: before 50"));
    assert_eq!(sink.app(), 50);
    sink.vanish();
    std::fs::write(&go, "").unwrap();
    let st = run.wait();
    let err = stderr_once(&run, |e| fallback_count(e).is_some());
    assert_no_panic("vanish", &err);
    assert_eq!(
        st.code(),
        Some(7),
        "the app's exit code must pass through\n{err}"
    );
    let mut got: Vec<&str> = fallback_lines(&err);
    got.sort_unstable();
    let mut want: Vec<String> = (1..=50)
        .flat_map(|i| [format!("after {i}"), format!("err {i}")])
        .collect();
    want.sort_unstable();
    assert_eq!(
        got, want,
        "not every line written after the loss is on stderr:\n{err}"
    );
    assert_eq!(fallback_count(&err), Some(100), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("sigshim: warning:") && l.contains(path.to_str().unwrap())),
        "no warning naming {}:\n{err}",
        path.display()
    );
    run.assert_nothing_left();
}

/// Destinations that cannot work, for both targets: a regular file, a directory, a path that
/// does not exist, a stream socket, a path longer than sockaddr_un holds. Each time: a warning
/// naming the path, the lines on sigshim's stderr, counted, and the app's exit code.
#[test]
fn unusable_destinations_fall_back_to_stderr() {
    let _cpu = shared_cpu();
    let dir = Scratch::new("unusable");
    let file = dir.join("regular-file");
    std::fs::write(&file, "").unwrap();
    let subdir = dir.join("a-directory");
    std::fs::create_dir(&subdir).unwrap();
    let stream = dir.join("stream.sock");
    let _listener = UnixListener::bind(&stream).expect("bind a stream socket");
    let long = dir.join("l".repeat(120));
    let cases: Vec<(&str, &Path)> = vec![
        ("regular file", &file),
        ("directory", &subdir),
        ("missing", Path::new("/nonexistent/sigshim-test.sock")),
        ("stream socket", &stream),
        ("path too long", &long),
    ];
    for (what, path) in cases {
        let p = path.to_str().unwrap();
        for flags in [
            ["--log", "syslog", "--syslog-socket", p],
            ["--log", "journald", "--journal-socket", p],
        ] {
            let mut args = flags.to_vec();
            args.extend_from_slice(&[
                "--",
                "sh",
                "-c",
                "echo one; echo two >&2; printf three; exit 7",
            ]);
            let mut run = Run::sigshim(&args);
            let st = run.wait();
            let err = stderr_once(&run, |e| fallback_count(e).is_some());
            assert_no_panic(what, &err);
            assert_eq!(st.code(), Some(7), "{what} {flags:?}: {err}");
            let mut lines = fallback_lines(&err);
            lines.sort_unstable();
            assert_eq!(lines, ["one", "three", "two"], "{what} {flags:?}: {err}");
            assert_eq!(fallback_count(&err), Some(3), "{what} {flags:?}: {err}");
            assert!(
                err.lines()
                    .any(|l| l.starts_with("sigshim: warning:") && l.contains(p)),
                "{what} {flags:?}: no warning naming the path:\n{err}"
            );
            run.assert_nothing_left();
        }
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"",
        "the regular file was written to"
    );
}

/// journald's socket refuses permission (mode 000). Root ignores socket permissions, so as root
/// sigshim runs as `nobody` under setpriv(1); either way the connect fails with EACCES and the
/// lines go to stderr with a warning that says so.
#[test]
fn journal_socket_permission_denied() {
    let _cpu = shared_cpu();
    let dir = Scratch::new("eacces");
    let path = dir.join("journal.sock");
    let sink = UnixDatagram::bind(&path).expect("bind");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // The directory must let `nobody` reach the socket to be refused by the socket itself.
    std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(sigshim());
        c
    } else {
        Command::new(sigshim())
    };
    cmd.args(["--log", "journald", "--journal-socket"])
        .arg(&path)
        .args(["--", "sh", "-c", "echo one; echo two >&2; exit 5"])
        .current_dir("/");
    let mut run = Run::start(cmd);
    let st = run.wait();
    let err = stderr_once(&run, |e| fallback_count(e).is_some());
    assert_no_panic("EACCES", &err);
    assert_eq!(st.code(), Some(5), "{err}");
    let mut lines = fallback_lines(&err);
    lines.sort_unstable();
    assert_eq!(lines, ["one", "two"], "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("sigshim: warning:")
            && l.contains(path.to_str().unwrap())
            && l.contains("Permission denied")),
        "no warning naming the path and 'Permission denied':\n{err}"
    );
    sink.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    assert!(
        sink.recv(&mut buf).is_err(),
        "a record got through a mode-000 socket"
    );
    run.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// Faults of sigshim's own resources

/// RLIMIT_NOFILE from 3 (only stdin/stdout/stderr fit) upwards, with and without output
/// capture: sigshim either works (the child's exit code passes through, lines possibly on
/// stderr) or fails with one `sigshim: fatal:` line and exit 125, and leaves no child behind.
/// At 4 nothing fits beside the signalfd, so that must fail with 125. At 3 a dynamically
/// linked build does not even reach `main` (ld.so cannot open libgcc_s: exit 127 with the
/// loader's message); the static musl build reaches it and must fail with 125.
#[test]
fn too_few_file_descriptors() {
    let _cpu = shared_cpu();
    let dir = Scratch::new("nofile");
    let path = dir.join("sink.sock");
    let _sink = Sink::start(
        &path,
        SinkOptions {
            tag: b"nofile".to_vec(),
            suffix: Vec::new(),
            keep: 100,
        },
    );
    let mut report = Vec::new();
    for capture in [false, true] {
        let mut failed_low = false;
        for limit in 3u64..=14 {
            let mut cmd = Command::new(sigshim());
            if capture {
                cmd.args(["--log", "syslog", "--syslog-socket", path.to_str().unwrap()])
                    .args(["--tag", "nofile"]);
            } else {
                cmd.args(["--log", "inherit"]);
            }
            cmd.args(["--", "sh", "-c", "echo hello; exit 3"]);
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and `lim` is a plain copied value.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut run = Run::start(cmd);
            let st = run.wait();
            let err = stderr_once(&run, |e| e.is_empty() || e.ends_with('\n'));
            let what = format!("nofile={limit} capture={capture}");
            assert_no_panic(&what, &err);
            match st.code() {
                Some(3) => report.push(format!("{what}: works")),
                Some(127) if limit == 3 && err.contains("error while loading shared libraries") => {
                    report.push(format!("{what}: the dynamic loader failed: {}", err.trim()));
                }
                Some(125) => {
                    let lines: Vec<&str> = err.lines().collect();
                    assert_eq!(lines.len(), 1, "{what}: not one line:\n{err}");
                    assert!(lines[0].starts_with("sigshim: fatal: "), "{what}: {err}");
                    report.push(format!("{what}: {}", lines[0]));
                    if limit == 4 {
                        failed_low = true;
                    }
                }
                other => panic!("{what}: exit {other:?} ({st:?}), neither 3 nor 125:\n{err}"),
            }
            run.assert_nothing_left();
        }
        assert!(
            failed_low,
            "capture={capture}: sigshim worked with only 4 descriptors?\n{}",
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
}

/// The child closes its stdout early and keeps running: sigshim keeps running too, the child's
/// stderr is still forwarded, and a stop still works (the exit code of the child's TERM trap
/// passes through). Then the same with both streams closed: nothing to read, still supervised.
#[test]
fn child_closes_its_output_early() {
    let _cpu = shared_cpu();
    let dir = Scratch::new("closed-out");
    let path = dir.join("sink.sock");
    let sink = Sink::start(
        &path,
        SinkOptions {
            tag: b"closer".to_vec(),
            suffix: Vec::new(),
            keep: 100,
        },
    );
    let go = dir.join("go");
    let script = format!(
        "echo out1; exec >&-; echo err1 >&2; trap 'echo stopping >&2; exit 3' TERM; \
         while [ ! -e '{go}' ]; do sleep 0.02; done; echo err2 >&2; \
         while :; do sleep 0.02; done",
        go = go.display()
    );
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        path.to_str().unwrap(),
        "--tag",
        "closer",
        "--kill-after",
        "5s",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    // daemon.info (<30>) for stdout, daemon.err (<27>) for stderr.
    sink.wait_for("<30>...out1", |r| {
        r.starts_with(b"<30>") && r.ends_with(b"]: out1")
    });
    sink.wait_for("<27>...err1", |r| {
        r.starts_with(b"<27>") && r.ends_with(b"]: err1")
    });
    std::fs::write(&go, "").unwrap();
    sink.wait_for("<27>...err2", |r| {
        r.starts_with(b"<27>") && r.ends_with(b"]: err2")
    });
    assert!(run.child.try_wait().unwrap().is_none(), "sigshim exited");
    let stop = Instant::now();
    run.signal(libc::SIGTERM);
    let st = run.wait();
    let took = stop.elapsed();
    let err = stderr_once(&run, |_| true);
    assert_no_panic("closed stdout", &err);
    assert_eq!(st.code(), Some(3), "{err}");
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?}: the trap did not run"
    );
    sink.wait_for("<27>...stopping", |r| r.ends_with(b"]: stopping"));
    run.assert_nothing_left();

    // Both streams closed: sigshim has nothing left to read but must keep supervising.
    let script = format!(
        "exec >&- 2>&-; trap 'exit 3' TERM; echo $$ > '{pid}.tmp'; mv '{pid}.tmp' '{pid}'; \
         while :; do sleep 0.02; done",
        pid = dir.join("pid").display()
    );
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        path.to_str().unwrap(),
        "--tag",
        "closer",
        "--kill-after",
        "5s",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let child = script_pid(&dir);
    // The child closed both streams before writing its PID: sigshim sees EOF on both pipes and
    // closes its ends, and must go on supervising.
    assert!(
        eventually(TIMEOUT, || pipes_above_stderr(run.pid()) == 0),
        "sigshim still holds {} pipes after both reached EOF",
        pipes_above_stderr(run.pid())
    );
    assert!(!is_zombie_or_gone(child));
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "sigshim exited with the pipes"
    );
    let stop = Instant::now();
    run.signal(libc::SIGTERM);
    let st = run.wait();
    let err = stderr_once(&run, |_| true);
    assert_no_panic("closed stdout and stderr", &err);
    assert_eq!(st.code(), Some(3), "{err}");
    assert!(stop.elapsed() < Duration::from_secs(5));
    run.assert_nothing_left();
}

/// The child starts 200 grandchildren and exits: plain background jobs, setsid'd ones (out of
/// its process group), orphans (re-parented to sigshim, the subreaper) and TERM-ignoring ones
/// (only SIGKILL after the leftover grace ends them). sigshim exits with the child's code only
/// once all of them are gone, and none is left running or as a zombie.
#[test]
fn two_hundred_grandchildren_none_survive() {
    let _cpu = shared_cpu();
    let dir = Scratch::new("grandchildren");
    let pids = dir.join("pids");
    let script = format!(
        "p='{pids}'; i=0; while [ $i -lt 200 ]; do \
           case $((i % 4)) in \
             0) sleep 1000 & echo $! >> \"$p\" ;; \
             1) setsid sleep 1000 & echo $! >> \"$p\" ;; \
             2) ( sleep 1000 & echo $! >> \"$p\" ) ;; \
             3) ( trap '' TERM; exec sleep 1000 ) & echo $! >> \"$p\" ;; \
           esac; i=$((i+1)); done; exit 4",
        pids = pids.display()
    );
    let started = Instant::now();
    let mut run = Run::sigshim(&[
        "--log",
        "inherit",
        "--leftover-grace",
        "300ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let st = run.wait_for(Duration::from_secs(30));
    let took = started.elapsed();
    let err = stderr_once(&run, |_| true);
    assert_no_panic("grandchildren", &err);
    assert_eq!(st.code(), Some(4), "{err}");
    let list: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().expect("a PID"))
        .collect();
    assert_eq!(
        list.len(),
        200,
        "the script did not start 200 grandchildren"
    );
    // sigshim exits only after waitpid(2) says it has no children left: each grandchild must
    // be gone entirely, not even a zombie waiting for a new parent to reap it.
    let left = eventually_value(Duration::from_secs(5), || {
        let left: Vec<(i32, bool)> = list
            .iter()
            .filter(|&&p| Path::new(&format!("/proc/{p}")).exists())
            .map(|&p| (p, is_zombie(p)))
            .collect();
        if left.is_empty() { Ok(()) } else { Err(left) }
    });
    assert!(
        left.is_ok(),
        "grandchildren still present (pid, zombie): {left:?}"
    );
    eprintln!("200 grandchildren: sigshim exited after {took:?}");
    run.assert_nothing_left();
}

/// sigshim is SIGKILLed while the child streams output into the log: the child (which ignores
/// SIGPIPE and every polite signal, so only the parent-death signal can end it) dies with it.
#[test]
fn sigkill_mid_stream_takes_the_child() {
    let _cpu = shared_cpu();
    let dir = Scratch::new("killed");
    let path = dir.join("sink.sock");
    let sink = Sink::start(
        &path,
        SinkOptions {
            tag: b"stream".to_vec(),
            suffix: Vec::new(),
            keep: 10,
        },
    );
    let script = format!(
        "trap '' PIPE TERM INT HUP; echo $$ > '{pid}.tmp'; mv '{pid}.tmp' '{pid}'; \
         while :; do echo line; done",
        pid = dir.join("pid").display()
    );
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        path.to_str().unwrap(),
        "--tag",
        "stream",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let child = script_pid(&dir);
    assert!(
        eventually(TIMEOUT, || sink.app() >= 1000),
        "the stream did not start: {} records",
        sink.app()
    );
    run.signal(libc::SIGKILL);
    let st = run.wait();
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert!(
        eventually(Duration::from_secs(5), || is_zombie_or_gone(child)),
        "the child {child} outlived sigshim's SIGKILL"
    );
    run.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// Hostile command lines

/// The largest single argument Linux passes through execve(2) (MAX_ARG_STRLEN, 32 pages,
/// including the NUL). A 1 MiB single argument cannot reach sigshim at all: the kernel refuses
/// the exec with E2BIG, which the first check below documents. 1 MiB in total can, as eight of
/// these.
const MAX_ARG: usize = 32 * 4096 - 1;

/// Arguments of the largest size the kernel passes, as PROGRAM's arguments (1 MiB in total,
/// all delivered intact) and as option values (each a usage error with one line, or accepted
/// and working).
#[test]
fn huge_arguments() {
    let _cpu = shared_cpu();
    let one_mib = "a".repeat(1 << 20);
    let e = Command::new(sigshim())
        .arg(&one_mib)
        .output()
        .expect_err("the kernel passes a 1 MiB argument?");
    assert_eq!(e.raw_os_error(), Some(libc::E2BIG), "{e}");

    // PROGRAM's arguments: 8 × 128 KiB, every byte delivered.
    let big = "b".repeat(MAX_ARG);
    let mut args: Vec<&str> = vec![
        "--log",
        "inherit",
        "--",
        "sh",
        "-c",
        "n=0; for a; do n=$((n + ${#a})); done; echo total=$n count=$#",
        "sh",
    ];
    args.extend(std::iter::repeat_n(big.as_str(), 8));
    let mut run = Run::sigshim(&args);
    run.expect(&format!("total={} count=8", 8 * MAX_ARG));
    let st = run.wait();
    assert_no_panic("program arguments", &run.stderr());
    assert_eq!(st.code(), Some(0), "{}", run.stderr());

    // Option values.
    let junk = "Z".repeat(MAX_ARG);
    let digits = "9".repeat(MAX_ARG);
    let long_path = format!("/{}", "p".repeat(MAX_ARG - 1));
    let schedule = format!("INT/1ms/{}", "TERM/1ms/".repeat((MAX_ARG - 20) / 9))
        .trim_end_matches('/')
        .to_string();
    let tiny = format!("0.{}1s", "0".repeat(MAX_ARG - 5));
    let usage: Vec<(&str, &str)> = vec![
        ("--stop-signal", &junk),
        ("--stop-on", &junk),
        ("--pdeathsig", &digits),
        ("--rewrite", &junk),
        ("--kill-after", &digits),
        ("--stop-schedule", &junk),
        ("--leftover-grace", &junk),
        ("--facility", &junk),
        ("--stdout-priority", &junk),
        ("--max-line", &digits),
        ("--drain-timeout", &digits),
    ];
    for (opt, value) in usage {
        let mut run = Run::sigshim(&[opt, value, "--", "true"]);
        let st = run.wait();
        let err = stderr_once(&run, |e| e.ends_with('\n'));
        assert_no_panic(opt, &err);
        assert_eq!(
            st.code(),
            Some(2),
            "{opt} <{} bytes>: {}",
            value.len(),
            &err[..err.len().min(300)]
        );
        assert_eq!(err.lines().count(), 1, "{opt}: not one line");
        assert!(
            err.starts_with("sigshim: usage: "),
            "{opt}: {}",
            &err[..err.len().min(300)]
        );
    }
    let works: Vec<(&str, &str)> = vec![
        ("--tag", &junk),
        ("--syslog-socket", &long_path),
        ("--journal-socket", &long_path),
        ("--stop-schedule", &schedule),
        ("--drain-timeout", &tiny),
    ];
    for (opt, value) in works {
        let mut run = Run::sigshim(&[opt, value, "--log", "inherit", "--", "sh", "-c", "exit 3"]);
        let st = run.wait();
        let err = stderr_once(&run, |_| true);
        assert_no_panic(opt, &err);
        assert_eq!(
            st.code(),
            Some(3),
            "{opt} <{} bytes>: {}",
            value.len(),
            &err[..err.len().min(300)]
        );
    }
    // A long destination path with capture on: the connect fails (ENAMETOOLONG), lines fall back.
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        &long_path,
        "--tag",
        &junk,
        "--",
        "sh",
        "-c",
        "echo hello; exit 3",
    ]);
    let st = run.wait();
    let err = stderr_once(&run, |e| fallback_count(e).is_some());
    assert_no_panic("long socket path", &err);
    assert_eq!(st.code(), Some(3), "{}", &err[..err.len().min(500)]);
    assert_eq!(fallback_lines(&err), ["hello"]);
    run.assert_nothing_left();
}

/// 10,000 `--rewrite` rules: all are read (the first one's rule and the last one's both
/// apply; a later rule for the same signal wins) and sigshim runs normally.
#[test]
fn ten_thousand_rewrite_rules() {
    let _cpu = shared_cpu();
    let mut args: Vec<String> = vec!["--log".into(), "inherit".into()];
    args.extend(["--rewrite".into(), "USR2:WINCH".into()]);
    let fillers = [
        "HUP:USR2",
        "SIGURG:ignore",
        "RTMIN+1:RTMIN+2",
        "13:10",
        "pwr:int",
    ];
    for i in 0..9_998 {
        args.extend(["--rewrite".into(), fillers[i % fillers.len()].to_string()]);
    }
    args.extend(["--rewrite".into(), "HUP:USR1".into()]);
    args.extend(["--".into(), probe().into(), "signals".into()]);
    let started = Instant::now();
    let mut run = run_os(&args);
    run.expect("ready");
    eprintln!("10,000 rewrite rules: ready after {:?}", started.elapsed());
    run.signal(libc::SIGUSR2);
    run.expect(&format!("child got {}", libc::SIGWINCH));
    run.signal(libc::SIGHUP);
    run.expect(&format!("child got {}", libc::SIGUSR1));
    run.signal(libc::SIGTERM);
    let st = run.wait();
    let err = stderr_once(&run, |_| true);
    assert_no_panic("10,000 rules", &err);
    assert_eq!(st.code(), Some(0), "{err}");
    run.assert_nothing_left();
}

/// Runs sigshim with `args` and asserts a usage error: exit 2, one `sigshim: usage:` line.
fn assert_usage_error<S: AsRef<OsStr>>(args: &[S]) {
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let mut run = run_os(args);
    let st = run.wait();
    let err = stderr_once(&run, |e| e.ends_with('\n'));
    assert_no_panic(&format!("{shown:?}"), &err);
    assert_eq!(st.code(), Some(2), "{shown:?}: {st:?}\n{err}");
    assert!(err.starts_with("sigshim: usage: "), "{shown:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{shown:?}: not one line: {err:?}");
    run.assert_nothing_left();
}

/// Signal numbers out of range in every option that takes a signal: exit 2, one line.
#[test]
fn out_of_range_signals() {
    let _cpu = shared_cpu();
    let values = [
        "0",
        "65",
        "-1",
        "SIG0",
        "SIG65",
        "RTMIN+31",
        "RTMAX+1",
        "RTMIN-1",
        "4294967297",
        "99999999999999999999",
        "RTMIN+2147483647",
    ];
    for v in values {
        for opt in ["--stop-signal", "--stop-on", "--pdeathsig"] {
            assert_usage_error(&[&format!("{opt}={v}"), "--", "true"]);
            assert_usage_error(&[opt, v, "--", "true"]);
        }
        assert_usage_error(&[&format!("--stop-on=TERM,{v}"), "--", "true"]);
        assert_usage_error(&["--rewrite", &format!("{v}:INT"), "--", "true"]);
        assert_usage_error(&["--rewrite", &format!("HUP:{v}"), "--", "true"]);
        assert_usage_error(&["--stop-schedule", &format!("{v}/1s"), "--", "true"]);
        assert_usage_error(&["--stop-schedule", &format!("INT/1s/{v}"), "--", "true"]);
    }
}

/// Durations that overflow any integer type, or pass the one-year cap: exit 2, one line, in
/// every option that takes a duration.
#[test]
fn overflowing_durations() {
    let _cpu = shared_cpu();
    let values = [
        "99999999999999999999999999999999999999999h",
        "340282366920938463463374607431768211456s",
        "18446744073709551616ms",
        "18446744073709551616",
        "8785h",
        "527041m",
        "31622400.000000001s",
        "9223372036854775807.9999999999s",
        "1e9s",
        "-1s",
        "4s4",
    ];
    for v in values {
        for opt in [
            "--kill-after",
            "--leftover-grace",
            "--drain-timeout",
            "--ready-timeout",
        ] {
            assert_usage_error(&[&format!("{opt}={v}"), "--", "true"]);
        }
        assert_usage_error(&["--stop-schedule", &format!("INT/{v}/KILL"), "--", "true"]);
    }
}

/// Tags with bytes that could forge a record's identity (spaces, brackets, colons, a newline,
/// a fake `[PID]: `, invalid UTF-8): sigshim accepts them, and the syslog header comes out
/// sanitized (RFC 3164 and 5424) while journald carries the exact bytes in a field of their own.
/// An empty tag is a usage error.
#[test]
fn tags_with_odd_bytes() {
    let _cpu = shared_cpu();
    let dir = Scratch::new("odd-tags");
    let tags: Vec<Vec<u8>> = vec![
        b"a b".to_vec(),
        b"[x]".to_vec(),
        b"a:b".to_vec(),
        b"evil[1]: forged".to_vec(),
        b"line\nbreak".to_vec(),
        b"<0>root".to_vec(),
        b"\xff\xfe\x80bad".to_vec(),
        b" ".to_vec(),
        vec![b'T'; 300],
        vec![b'T'; 600],
    ];
    for (i, tag) in tags.iter().enumerate() {
        for format in ["rfc3164", "rfc5424"] {
            let path = dir.join(format!("syslog-{i}-{format}.sock"));
            let sink = UnixDatagram::bind(&path).unwrap();
            sink.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut args: Vec<OsString> = ["--log", "syslog", "--syslog-format", format]
                .map(OsString::from)
                .to_vec();
            args.extend([OsString::from("--syslog-socket"), path.clone().into()]);
            args.extend([OsString::from("--tag"), OsString::from_vec(tag.clone())]);
            args.extend(["--", "sh", "-c", "echo msg; exit 6"].map(OsString::from));
            let mut run = run_os(&args);
            let st = run.wait();
            let err = stderr_once(&run, |_| true);
            let what = format!("{format} tag {:?}", tag.escape_ascii().to_string());
            assert_no_panic(&what, &err);
            assert_eq!(st.code(), Some(6), "{what}: {err}");
            let mut buf = vec![0u8; 65536];
            let rec = loop {
                let n = sink
                    .recv(&mut buf)
                    .unwrap_or_else(|e| panic!("{what}: no record: {e}"));
                if buf[..n].ends_with(b"msg") {
                    break buf[..n].to_vec();
                }
            };
            // Whole, as syslog(3) and logger send it (bytes >= 0x80 too), but with no byte that
            // ends the tag or forges a line or a [PID]; cut at 480 / 48 bytes.
            let sanitized: Vec<u8> = tag
                .iter()
                .take(if format == "rfc3164" { 480 } else { 48 })
                .map(|&b| match b {
                    b':' | b'[' | b']' | 0..=0x20 | 0x7f => b'_',
                    _ => b,
                })
                .collect();
            let shown = rec.escape_ascii().to_string();
            assert!(
                !rec.contains(&b'\n') && !rec.contains(&0),
                "{what}: {shown}"
            );
            if format == "rfc3164" {
                // <30>Mmm dd hh:mm:ss TAG[PID]: msg
                let after_ts = &rec[4 + 16..];
                assert!(after_ts.starts_with(&sanitized), "{what}: {shown}");
                let rest = &after_ts[sanitized.len()..];
                assert!(rest.starts_with(b"["), "{what}: {shown}");
                let close = rest.iter().position(|&b| b == b']').unwrap();
                assert!(
                    rest[1..close].iter().all(u8::is_ascii_digit),
                    "{what}: {shown}"
                );
                assert_eq!(&rest[close..], b"]: msg", "{what}: {shown}");
            } else {
                // <30>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - msg
                let fields: Vec<&[u8]> = rec.splitn(8, |&b| b == b' ').collect();
                assert_eq!(fields.len(), 8, "{what}: {shown}");
                assert_eq!(fields[3], sanitized.as_slice(), "{what}: {shown}");
                assert!(fields[4].iter().all(u8::is_ascii_digit), "{what}: {shown}");
                assert_eq!(&fields[5..], [&b"-"[..], b"-", b"msg"], "{what}: {shown}");
            }
            run.assert_nothing_left();
        }

        // journald: the identifier is carried verbatim (binary-safe field encoding).
        let path = dir.join(format!("journal-{i}.sock"));
        let sink = UnixDatagram::bind(&path).unwrap();
        sink.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut args: Vec<OsString> = ["--log", "journald"].map(OsString::from).to_vec();
        args.extend([OsString::from("--journal-socket"), path.clone().into()]);
        args.extend([OsString::from("--tag"), OsString::from_vec(tag.clone())]);
        args.extend(["--", "sh", "-c", "echo msg; exit 6"].map(OsString::from));
        let mut run = run_os(&args);
        let st = run.wait();
        let err = stderr_once(&run, |_| true);
        let what = format!("journald tag {:?}", tag.escape_ascii().to_string());
        assert_no_panic(&what, &err);
        assert_eq!(st.code(), Some(6), "{what}: {err}");
        let mut buf = vec![0u8; 65536];
        let fields = loop {
            let n = sink
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("{what}: no entry: {e}"));
            let fields = sigshim::output::journald::decode(&buf[..n])
                .unwrap_or_else(|| panic!("{what}: undecodable entry"));
            if fields.iter().any(|(k, v)| k == "MESSAGE" && v == b"msg") {
                break fields;
            }
        };
        let ids: Vec<&[u8]> = fields
            .iter()
            .filter(|(k, _)| k == "SYSLOG_IDENTIFIER")
            .map(|(_, v)| v.as_slice())
            .collect();
        assert_eq!(ids, [tag.as_slice()], "{what}");
        assert_eq!(fields.len(), 5, "{what}: {fields:?}");
        run.assert_nothing_left();
    }
    assert_usage_error(&["--tag", "", "--", "true"]);
    assert_usage_error(&["--tag=", "--", "true"]);
}

/// Values with a newline or invalid UTF-8 where a name is expected: a usage error on one line
/// (the offending value must not add a line of its own to the message, which an init would
/// log as a separate line), and PROGRAM names with odd bytes: 127 with one line.
#[test]
fn odd_bytes_in_values_and_program_names() {
    let _cpu = shared_cpu();
    for opt in [
        "--stop-signal",
        "--stop-on",
        "--rewrite",
        "--kill-after",
        "--stop-schedule",
        "--pdeathsig",
        "--facility",
        "--stdout-priority",
        "--drain-timeout",
        "--log",
        "--syslog-format",
        "--max-line",
        "--success-exit",
    ] {
        assert_usage_error(&[opt, "TE\nRM", "--", "true"]);
        let invalid = OsString::from_vec(b"TE\xffRM".to_vec());
        assert_usage_error(&[
            OsStr::new(opt),
            &invalid,
            OsStr::new("--"),
            OsStr::new("true"),
        ]);
    }
    for name in [
        &b"no\nsuch-program"[..],
        b"\xff\xfe-no-such",
        b"/no/such dir/[1]: x",
    ] {
        let mut run = run_os([OsStr::new("--"), OsStr::from_bytes(name)]);
        let st = run.wait();
        let err = stderr_once(&run, |e| e.ends_with('\n'));
        let what = name.escape_ascii().to_string();
        assert_no_panic(&what, &err);
        assert_eq!(st.code(), Some(127), "{what}: {err}");
        assert!(err.starts_with("sigshim: fatal: "), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
    }
}
