//! Shared harness for the integration tests: run the real sigshim binary over the probe,
//! synchronise on the probe's lines, and clean up whatever a failing test leaves behind.
//!
//! Every process a test starts carries a unique `SIGSHIM_TEST_TAG` in its environment (children
//! inherit it), so "nothing is left running" is checked by looking for that tag in
//! /proc/*/environ, and the watchdog in `Drop` can kill stragglers of a failed test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(15);

pub fn sigshim() -> &'static str {
    env!("CARGO_BIN_EXE_sigshim")
}

pub fn probe() -> &'static str {
    env!("CARGO_BIN_EXE_sigshim-probe")
}

/// Copies of sigshim and the probe that any user can execute, for tests whose app runs as
/// `nobody` (`--user nobody`).
///
/// `target/` lies wherever the project was cloned, often in a directory other users cannot
/// enter (under /root, or in a `mktemp -d`, mode 0700): sigshim's child, once it is `nobody`,
/// then gets "Permission denied" for `target/debug/sigshim-probe` although the file itself is
/// mode 0755. (setpriv(1) does not show this: it still holds root's capabilities when it
/// execs, so the binary it starts is found; what that binary execs as `nobody` is not.) So the
/// two binaries are hard-linked (copied when target/ is on another filesystem) into a
/// directory of the test's own, mode 0755, under the first of $TMPDIR, /tmp, /var/tmp and
/// /dev/shm where `nobody` itself, asked with `test -x` in a shell that runs as `nobody`,
/// can execute them. Removed with the test's files.
pub struct SharedBins {
    dir: Scratch,
}

impl SharedBins {
    /// Panics, naming every place tried, if no candidate directory is reachable for `nobody`
    /// (a misconfigured machine, not something to skip over).
    pub fn new() -> SharedBins {
        use std::os::unix::fs::PermissionsExt;
        let mut tried = Vec::new();
        let mut bases = vec![std::env::temp_dir()];
        for b in ["/tmp", "/var/tmp", "/dev/shm"] {
            if !bases.iter().any(|p| p.as_path() == std::path::Path::new(b)) {
                bases.push(b.into());
            }
        }
        for base in bases {
            let Ok(dir) = Scratch::new_in(&base, "shared-bins") else {
                tried.push(format!("{}: cannot create a directory", base.display()));
                continue;
            };
            std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755))
                .expect("chmod the shared-bins directory");
            for (src, name) in [(sigshim(), "sigshim"), (probe(), "sigshim-probe")] {
                let dst = dir.path(name);
                if std::fs::hard_link(src, &dst).is_err() {
                    std::fs::copy(src, &dst)
                        .unwrap_or_else(|e| panic!("cannot copy {src} to {}: {e}", dst.display()));
                }
            }
            let bins = SharedBins { dir };
            match bins.nobody_can_execute() {
                Ok(()) => return bins,
                Err(why) => tried.push(format!("{}: {why}", base.display())),
            }
        }
        panic!(
            "no directory found whose binaries `nobody` can execute; tried:\n  {}",
            tried.join("\n  ")
        );
    }

    fn nobody_can_execute(&self) -> Result<(), String> {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["sh", "-c", "test -x \"$1\" && test -x \"$2\"", "sh"])
            .arg(self.sigshim())
            .arg(self.probe())
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run setpriv: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`test -x` as nobody failed ({}) {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    pub fn sigshim(&self) -> String {
        self.dir.file("sigshim")
    }

    pub fn probe(&self) -> String {
        self.dir.file("sigshim-probe")
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub fn unique_tag() -> String {
    format!(
        "t{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        Instant::now().elapsed().as_nanos()
    )
}

/// A running sigshim (or any command) with its stdout read line by line.
pub struct Run {
    pub child: Child,
    pub tag: String,
    desc: String,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// Signalled when the stderr reader reached EOF.
    stderr_done: Receiver<()>,
    status: Option<ExitStatus>,
}

impl Run {
    /// `sigshim ARGS...` with stdout piped.
    pub fn sigshim(args: &[&str]) -> Run {
        let mut cmd = Command::new(sigshim());
        cmd.args(args);
        Run::start(cmd)
    }

    pub fn start(mut cmd: Command) -> Run {
        let tag = unique_tag();
        let desc = format!("{cmd:?}");
        cmd.env("SIGSHIM_TEST_TAG", &tag)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        let (done_tx, stderr_done) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match err.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
            let _ = done_tx.send(());
        });
        Run {
            child,
            tag,
            desc,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_done,
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn context(&self) -> String {
        format!(
            "command: {}\nstatus: {:?}\nstdout so far:\n  {}\nstderr:\n{}",
            self.desc,
            self.status,
            self.seen.join("\n  "),
            self.stderr()
        )
    }

    /// Waits for the next line containing `needle` and returns it.
    pub fn expect(&mut self, needle: &str) -> String {
        self.try_expect(needle, TIMEOUT)
            .unwrap_or_else(|| panic!("no line containing {needle:?}\n{}", self.context()))
    }

    /// Like `expect`, but also satisfied by a line already seen (for lines whose order
    /// relative to others is not fixed, e.g. from two processes).
    pub fn expect_any_order(&mut self, needle: &str) -> String {
        match self.seen.iter().find(|l| l.contains(needle)) {
            Some(l) => l.clone(),
            None => self.expect(needle),
        }
    }

    pub fn try_expect(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// Every line up to EOF (the command must be exiting).
    pub fn rest(&mut self) -> Vec<String> {
        let end = Instant::now() + TIMEOUT;
        while let Ok(line) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on a PID we started and have not reaped.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the command to exit (watchdog: panics with context after `timeout`).
    pub fn wait_for(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                self.status = Some(st);
                // Everything it wrote to stderr is read once the reader sees EOF (bounded: a
                // leftover process could hold stderr open).
                let _ = self.stderr_done.recv_timeout(Duration::from_secs(5));
                return st;
            }
            if Instant::now() > end {
                panic!("did not exit within {timeout:?}\n{}", self.context());
            }
            std::thread::sleep(Duration::from_millis(2)); // polling interval of a bounded wait
        }
    }

    pub fn wait(&mut self) -> ExitStatus {
        self.wait_for(TIMEOUT)
    }

    /// Asserts that no process carrying this run's tag is still alive.
    pub fn assert_nothing_left(&self) {
        let left = eventually_value(Duration::from_secs(5), || {
            let l = leftovers(&self.tag);
            l.is_empty().then_some(()).ok_or(l)
        });
        if let Err(left) = left {
            panic!("processes left running: {left:?}\n{}", self.context());
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in leftovers(&self.tag) {
            // SAFETY: kill on a process that carries this test's unique tag.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// PIDs of live (non-zombie) processes whose environment holds SIGSHIM_TEST_TAG=tag.
pub fn leftovers(tag: &str) -> Vec<i32> {
    let needle = format!("SIGSHIM_TEST_TAG={tag}");
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) && !is_zombie_or_gone(pid) {
            out.push(pid);
        }
    }
    out
}

/// A zombie counts as dead: it runs nothing and only waits for its parent to reap it.
pub fn is_zombie_or_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_none_or(|st| st == "Z" || st == "X"),
    }
}

pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(false)
}

/// Polls `check` until it returns true or `timeout` passes (for states with no event to wait
/// on, like a process disappearing from /proc).
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    eventually_value(timeout, || if check() { Ok(()) } else { Err(()) }).is_ok()
}

pub fn eventually_value<T, E>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let end = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > end => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(5)), // polling interval of eventually
        }
    }
}

/// `key=value` from a probe line such as `ready pid=42 pgid=42`.
pub fn field(line: &str, key: &str) -> i32 {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill with a PID the test read from its own probe.
    unsafe { libc::kill(pid, sig) };
}

/// The bound on a harness script (starting or stopping a daemon, a supervisor, a container):
/// generous, because some install packages or boot a system, but a bound, so that a script
/// waiting forever on a sigshim that never stops fails its test instead of hanging the suite.
pub const HARNESS_TIMEOUT: Duration = Duration::from_secs(300);

/// `cmd.output()` under a watchdog: the command runs in a process group of its own, and if it
/// has not exited within `timeout` the whole group is SIGKILLed and the result says so (status
/// "killed by SIGKILL", a `[watchdog]` line at the end of stderr). Never panics, so it serves
/// in `Drop` too; callers that need success check the status and show stderr. Output still held
/// open by a process that outlived the command is collected for at most 5 s more.
pub fn output_within(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> std::process::Output {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let failed = |why: String, stdout: Vec<u8>, mut stderr: Vec<u8>| {
        stderr.extend_from_slice(format!("\n[watchdog] {desc}: {why}\n").as_bytes());
        std::process::Output {
            status: ExitStatusExt::from_raw(libc::SIGKILL),
            stdout,
            stderr,
        }
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start: {e}"), Vec::new(), Vec::new()),
    };
    let collect = |mut r: Box<dyn Read + Send>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let (done_tx, done) = channel();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
            let _ = done_tx.send(());
        });
        (buf, done)
    };
    let (out, out_done) = collect(Box::new(child.stdout.take().expect("stdout")));
    let (err, err_done) = collect(Box::new(child.stderr.take().expect("stderr")));
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        let data = data.to_vec();
        // A writer thread: a child that does not read must not block the watchdog.
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let end = Instant::now() + timeout;
    let pgid = child.id() as i32;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if Instant::now() > end => {
                // SAFETY: kill on the process group of a command we started.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                let _ = child.wait();
                break Err(format!(
                    "did not finish within {timeout:?}: its process group was killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)), // polling interval of a bounded wait
            Err(e) => break Err(format!("cannot wait: {e}")),
        }
    };
    for done in [&out_done, &err_done] {
        let _ = done.recv_timeout(Duration::from_secs(5));
    }
    let (stdout, stderr) = (out.lock().unwrap().clone(), err.lock().unwrap().clone());
    match status {
        Ok(status) => std::process::Output {
            status,
            stdout,
            stderr,
        },
        Err(why) => failed(why, stdout, stderr),
    }
}

/// A directory for one test's files: removed when the test passes, kept (and named on stderr)
/// when it fails.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        Scratch(temp_dir(name))
    }

    /// A directory under `base` instead of the temporary directory.
    pub fn new_in(base: &std::path::Path, name: &str) -> std::io::Result<Scratch> {
        let d = base.join(format!("sigshim-test-{name}-{}", unique_tag()));
        std::fs::create_dir_all(&d)?;
        Ok(Scratch(d))
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// `name` inside the directory, as a string for command lines.
    pub fn file(&self, name: &str) -> String {
        self.path(name)
            .to_str()
            .expect("UTF-8 temp path")
            .to_string()
    }
}

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sigshim-test-{name}-{}", unique_tag()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Whether this machine lets the tests use root-only features (namespaces). Without them a
/// test skips loudly (see [`skip`]), except under CI=true where a missing prerequisite is a
/// failure.
pub fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(&format!(
        "{what} needs root (run the suite as root, or via .ci/run)"
    ));
    false
}

/// Where skipped tests are listed, one line each, for `.ci/run` to print after `cargo test`
/// (it empties the file before).
pub const SKIP_LIST: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-tests.txt");

/// Records that the calling test is skipping, and why, where a contributor sees it. A skipped
/// test still counts as "ok" in cargo's summary and cargo captures what a passing test prints,
/// so a plain `eprintln!` would vanish and a run that skipped every daemon test would look all
/// green. So the line `SKIPPED: TEST: WHY` goes
/// - straight to the terminal (/dev/tty), past cargo's capture, when there is one: a
///   contributor running plain `cargo test` sees it among cargo's own lines;
/// - to [`SKIP_LIST`], which `.ci/run` prints as a summary after the tests (CI has no
///   terminal);
/// - to stderr as well (shown with `--nocapture`).
///
/// Under CI=true there is no skipping: a missing prerequisite fails the test instead.
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}, and CI=true makes a missing prerequisite a failure");
    }
    let line = format!("SKIPPED: {test}: {why}\n");
    eprint!("{line}");
    use std::io::Write;
    if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        let _ = tty.write_all(line.as_bytes());
    }
    if let Ok(mut list) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(SKIP_LIST)
    {
        let _ = list.write_all(line.as_bytes());
    }
}
