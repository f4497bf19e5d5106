//! sigshim under the inits and supervisors it is made for, against the real binary:
//!
//! - real runit, s6, daemontools, supervisord and start-stop-daemon stopping a sigshim-wrapped
//!   legacy app (traps only SIGINT) the way each of them stops a service (TERM, or TERM+CONT),
//!   through tests/harness/supervisors.sh, and s6's readiness protocol (notification-fd);
//! - sigshim's Upstart awareness (the deadline warning), sigshim as PID 1 of a container's PID
//!   namespace, and its readiness probes on their own.
//!
//! The job files in upstart/ run under a real Upstart in tests/upstart.rs.
//!
//! Every service carries a unique SIGSHIM_TEST_TAG in its environment (supervisors get it through
//! the run script), so "nothing is left running" is checked by
//! looking for that tag in /proc, and a failing test kills what carries it.
//!
//! Readiness is checked for order, not time: the app is held at a gate (a FIFO it reads before
//! announcing readiness) until the test opens it. Before that the readiness signal must not have
//! fired (a bounded wait during which it must not appear); after it, it must.

mod support;

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};
use support::*;

const SUPERVISORS_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/supervisors.sh");

/// How long a readiness signal must stay away while the app is held at its gate. Anything that
/// fires at spawn time or on an earlier line fires within milliseconds.
const HELD: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// Helpers

/// Quotes `s` for a POSIX shell command line.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// True if `path` does not appear within `within` (a bounded check for something that must not
/// happen yet).
fn stays_absent(path: &Path, within: Duration) -> bool {
    !eventually(within, || path.exists())
}

/// Waits (bounded) for `path` to exist.
fn wait_file(path: &Path) {
    assert!(
        eventually(TIMEOUT, || path.exists()),
        "{} did not appear within {TIMEOUT:?}",
        path.display()
    );
}

/// A FIFO the app reads one line from before it announces readiness: until the test opens it,
/// the app cannot be ready.
struct Gate(PathBuf);

impl Gate {
    fn new(dir: &Scratch) -> Gate {
        let path = dir.path("gate");
        let c = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        Gate(path)
    }

    fn shell(&self) -> String {
        format!("read go < {}", sh_quote(self.0.to_str().unwrap()))
    }

    /// Lets the app through, once it is reading (non-blocking open: ENXIO until it is).
    fn open(&self) {
        let mut f = eventually_value(TIMEOUT, || {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.0)
        })
        .unwrap_or_else(|e| panic!("nobody reads the gate {}: {e}", self.0.display()));
        f.write_all(b"go\n").expect("write gate");
    }
}

/// Gives the command a pipe as descriptor `fd` (what s6-supervise does with notification-fd)
/// and returns a receiver of everything written to it, chunk by chunk, until EOF.
fn notify_pipe(cmd: &mut Command, fd: i32) -> (OwnedFd, Receiver<Vec<u8>>) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned here only.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let raw = w.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; the new descriptor loses O_CLOEXEC, so it is inherited.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, fd) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut r = r;
        let mut buf = [0u8; 64];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (w, rx)
}

/// The probe as the app, held at `gate` first: `echo held; <gate>; <before>; exec probe legacy M`.
fn held_legacy_app(gate: &Gate, before: &str, marker: &str) -> String {
    format!(
        "echo held; {}; {before} exec {} legacy {}",
        gate.shell(),
        sh_quote(probe()),
        sh_quote(marker)
    )
}

fn children_of(parent: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn comm(pid: i32) -> String {
    read(Path::new(&format!("/proc/{pid}/comm")))
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Supervisors (tests/harness/supervisors.sh)

/// One supervisor with one service ("app") running `service`, a shell command line.
struct Supervised {
    system: &'static str,
    state: PathBuf,
    tag: String,
    service: String,
    env: Vec<(String, String)>,
    paths: HashMap<String, PathBuf>,
}

impl Supervised {
    /// Starts the supervisor and the service (installing the package if needed). `None` when
    /// the tests may not use root here (`require_root` said why, or panicked under CI).
    fn start(system: &'static str, service: &str, env: &[(&str, &str)]) -> Option<Supervised> {
        if !require_root(&format!("{system} test")) {
            return None;
        }
        let mut s = Supervised {
            system,
            state: temp_dir(system),
            tag: unique_tag(),
            service: service.to_string(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            paths: HashMap::new(),
        };
        for line in s.verb("paths").lines() {
            if let Some((k, v)) = line.split_once('=') {
                s.paths.insert(k.to_string(), PathBuf::from(v));
            }
        }
        s.verb("start");
        Some(s)
    }

    fn command(&self, verb: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.args([SUPERVISORS_SH, self.system, verb])
            .env("SIGSHIM_DAEMON_STATE", &self.state)
            .env("SIGSHIM_SERVICE", &self.service)
            .env("SIGSHIM_SERVICE_TAG", &self.tag)
            .env_remove("SIGSHIM_TEST_TAG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a verb; panics with everything the harness and the service said if it fails.
    fn verb(&self, verb: &str) -> String {
        let out = output_within(&mut self.command(verb), None, HARNESS_TIMEOUT);
        if !out.status.success() {
            panic!(
                "supervisors.sh {} {verb} failed ({}):\nstdout:\n{}\nstderr:\n{}\n{}",
                self.system,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.context()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn path(&self, key: &str) -> &Path {
        self.paths
            .get(key)
            .unwrap_or_else(|| panic!("supervisors.sh paths printed no {key}="))
    }

    /// What the service wrote (sigshim's and the app's stdout and stderr).
    fn out(&self) -> String {
        read(self.path("out"))
    }

    fn context(&self) -> String {
        format!(
            "service output:\n{}\nsupervisor log:\n{}",
            self.out(),
            read(self.path("log"))
        )
    }

    /// Waits (bounded) for a line containing `needle` in the service's output; returns it.
    fn wait_line(&self, needle: &str) -> String {
        eventually_value(TIMEOUT, || {
            self.out()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_string)
                .ok_or(())
        })
        .unwrap_or_else(|()| panic!("no {needle:?} from the service\n{}", self.context()))
    }

    /// `rc=N ms=M` from stop-service / up-ready.
    fn rc_ms(&self, answer: &str) -> (u64, u64) {
        let get = |k: &str| -> u64 {
            answer
                .split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {k} in {answer:?}"))
        };
        (get("rc="), get("ms="))
    }

    /// Stops the service the supervisor's way and checks the stop was the app's own clean exit:
    /// fast (the app exits as soon as it has cleaned up; far below sigshim's 3 s deadline and
    /// the supervisor's own SIGKILL at 5 s), marker written, nothing carrying the tag left.
    fn stop_cleanly(&self, marker: &Path, app: i32) {
        let answer = self.verb("stop-service");
        let (rc, ms) = self.rc_ms(&answer);
        assert_eq!(
            rc,
            0,
            "{} stop failed: {answer}\n{}",
            self.system,
            self.context()
        );
        // daemontools' supervise reads commands up to 1 s after a start: allow for that.
        assert!(
            ms < 2500,
            "{} stop took {ms} ms: the app did not exit by itself\n{}",
            self.system,
            self.context()
        );
        assert_eq!(
            read(marker),
            "clean\n",
            "the app did not clean up\n{}",
            self.context()
        );
        let out = self.out();
        let after_ready = out.split_once("ready pid=").map(|x| x.1).unwrap_or("");
        assert!(
            after_ready.contains("cleanup") && after_ready.contains("clean-exit"),
            "no cleanup/clean-exit after ready\n{}",
            self.context()
        );
        let left = eventually_value(Duration::from_secs(5), || {
            let l = leftovers(&self.tag);
            l.is_empty().then_some(()).ok_or(l)
        });
        assert!(
            left.is_ok(),
            "left running after {} stopped the service: {left:?}\n{}",
            self.system,
            self.context()
        );
        assert!(is_zombie_or_gone(app), "the app {app} still runs");
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // Never panic in drop (a second panic aborts and hides the first): report instead.
        let out = output_within(&mut self.command("stop"), None, HARNESS_TIMEOUT);
        if !out.status.success() {
            eprintln!("supervisors.sh {} stop failed: {out:?}", self.system);
        }
        for pid in leftovers(&self.tag) {
            kill(pid, libc::SIGKILL);
        }
        if std::thread::panicking() {
            eprintln!("{} state kept in {}", self.system, self.state.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

/// The service every supervisor test runs: the legacy app behind sigshim, as a run script would
/// have it (`exec sigshim --stop-signal INT --kill-after 3s -- app`).
fn legacy_service(marker: &str) -> String {
    format!(
        "{} --stop-signal INT --kill-after 3s --log inherit -- {} legacy {}",
        sh_quote(sigshim()),
        sh_quote(probe()),
        sh_quote(marker)
    )
}

/// Starts `system` with the legacy service and waits for the app's ready line.
fn supervised_legacy(system: &'static str, dir: &Scratch) -> Option<(Supervised, i32)> {
    let sv = Supervised::start(system, &legacy_service(&dir.file("marker")), &[])?;
    let app = field(&sv.wait_line("ready pid="), "pid");
    Some((sv, app))
}

/// runit: `sv stop` = TERM then CONT to sigshim's PID (runsv), and sv waits until it is down.
#[test]
fn runit_sv_stop_cleans_up() {
    let dir = Scratch::new("runit");
    let Some((sv, app)) = supervised_legacy("runit", &dir) else {
        return;
    };
    sv.stop_cleanly(&dir.path("marker"), app);
    // runsv ran ./finish with the exit code it saw: the app's own 0, and no signal.
    let finish = read(sv.path("finish"));
    assert_eq!(finish.trim(), "0 0", "runit's ./finish saw {finish:?}");
}

/// s6: `s6-svc -d` = down-signal (TERM) then CONT; -wD waits until down and ./finish ran.
#[test]
fn s6_svc_down_cleans_up() {
    let dir = Scratch::new("s6");
    let Some((sv, app)) = supervised_legacy("s6", &dir) else {
        return;
    };
    sv.stop_cleanly(&dir.path("marker"), app);
    let status = sv.verb("status");
    assert!(status.contains("down (exitcode 0)"), "s6-svstat: {status}");
}

/// daemontools: `svc -d` = TERM then CONT, no escalation at all.
#[test]
fn daemontools_svc_down_cleans_up() {
    let dir = Scratch::new("daemontools");
    let Some((sv, app)) = supervised_legacy("daemontools", &dir) else {
        return;
    };
    sv.stop_cleanly(&dir.path("marker"), app);
    assert!(sv.verb("status").contains(": down "));
}

/// supervisord: `supervisorctl stop` = stopsignal (TERM) to sigshim's PID, SIGKILL after
/// stopwaitsecs (5 s).
#[test]
fn supervisord_stop_cleans_up() {
    let dir = Scratch::new("supervisord");
    let Some((sv, app)) = supervised_legacy("supervisord", &dir) else {
        return;
    };
    sv.stop_cleanly(&dir.path("marker"), app);
    let log = read(sv.path("log"));
    assert!(
        log.contains("stopped: app (exit status 0)"),
        "supervisord did not see a clean exit:\n{log}"
    );
    assert!(!log.contains("SIGKILL"), "supervisord had to kill:\n{log}");
}

/// start-stop-daemon: `--stop --retry TERM/5/KILL/5 --pidfile` returns as soon as the PID is
/// gone, i.e. long before the KILL step.
#[test]
fn start_stop_daemon_retry_cleans_up() {
    let dir = Scratch::new("ssd");
    let Some((sv, app)) = supervised_legacy("start-stop-daemon", &dir) else {
        return;
    };
    sv.stop_cleanly(&dir.path("marker"), app);
}

/// s6 readiness: with notification-fd 3, `sigshim --notify-fd 3 --ready fd:4` tells
/// s6-supervise the service is ready only once the app wrote its newline on fd 4, so
/// `s6-svc -wU` returns after that and not before.
#[test]
fn s6_notification_fd_waits_for_the_app() {
    let dir = Scratch::new("s6-ready");
    let gate = Gate::new(&dir);
    let app_ready = dir.path("app-ready");
    let marker = dir.file("marker");
    // The probe creates PROBE_READY_FILE, then writes "\n" to PROBE_READY_FD: when s6 says
    // ready, the file must already be there.
    let app = held_legacy_app(&gate, "", &marker);
    let service = format!(
        "PROBE_READY_FD=4 PROBE_READY_FILE={} {} --notify-fd 3 --ready fd:4 --stop-signal INT \
         --kill-after 3s --log inherit -- sh -c {}",
        sh_quote(app_ready.to_str().unwrap()),
        sh_quote(sigshim()),
        sh_quote(&app)
    );
    let Some(sv) = Supervised::start(
        "s6",
        &service,
        &[
            ("SIGSHIM_SERVICE_DOWN", "1"),
            ("SIGSHIM_NOTIFICATION_FD", "3"),
        ],
    ) else {
        return;
    };
    let mut up = sv
        .command("up-ready")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("s6-svc -wU");
    sv.wait_line("held");
    let returned_early = eventually(HELD, || up.try_wait().expect("try_wait").is_some());
    if returned_early {
        let out = up.wait_with_output().unwrap();
        panic!(
            "s6-svc -wU returned while the app was still held before its readiness: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            sv.context()
        );
    }
    gate.open();
    let done = eventually(TIMEOUT, || up.try_wait().expect("try_wait").is_some());
    // Checked right when -wU returned: the app announced readiness before s6 heard of it.
    let file_was_there = app_ready.exists();
    if !done {
        let _ = up.kill();
    }
    let out = up.wait_with_output().unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(done, "s6-svc -wU never returned\n{}", sv.context());
    let (rc, _) = sv.rc_ms(&answer);
    assert_eq!(rc, 0, "s6-svc -wU: {answer}\n{}", sv.context());
    assert!(
        file_was_there,
        "s6 had the service ready before the app announced readiness\n{}",
        sv.context()
    );
    let status = sv.verb("status");
    assert!(status.contains("ready"), "s6-svstat: {status}");
    let app = field(&sv.wait_line("ready pid="), "pid");
    sv.stop_cleanly(Path::new(&marker), app);
}

// ---------------------------------------------------------------------------------------------
// Upstart awareness (sigshim alone; the upstart/ jobs under a real Upstart are in tests/upstart.rs)

/// The harness scripts run under a watchdog (#13): one that never returns (here a shell that
/// waits forever, with a background child holding its output open) is killed with its whole
/// process group at the bound, and the result says so, instead of hanging the suite.
#[test]
fn harness_scripts_run_under_a_watchdog() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo started; (sleep 300 &); exec sleep 300"]);
    let t0 = Instant::now();
    let out = output_within(&mut cmd, None, Duration::from_millis(300));
    let took = t0.elapsed();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[watchdog]") && err.contains("did not finish within 300ms"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "the watchdog took {took:?}");
}

/// With UPSTART_JOB set, a deadline of 5 s or more cannot fit in Upstart's default kill timeout:
/// sigshim says so once at start; 3 s, the default, or no Upstart at all: nothing.
#[test]
fn upstart_deadline_warning() {
    for (kill_after, upstart, warns) in [
        (Some("10s"), true, true),
        (Some("5s"), true, true),
        (Some("3s"), true, false),
        (None, true, false),
        (Some("10s"), false, false),
    ] {
        let dir = Scratch::new("warn");
        let marker = dir.file("marker");
        let mut cmd = Command::new(sigshim());
        if let Some(d) = kill_after {
            cmd.args(["--kill-after", d]);
        }
        cmd.args(["--stop-signal", "INT", "--log", "inherit", "--"])
            .args([probe(), "legacy", &marker]);
        if upstart {
            cmd.env("UPSTART_JOB", "legacy-app");
        } else {
            cmd.env_remove("UPSTART_JOB");
        }
        let mut run = Run::start(cmd);
        run.expect("ready");
        run.signal(libc::SIGTERM);
        run.expect("clean-exit");
        assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
        let err = run.stderr();
        let count = err.matches("exceeds Upstart's kill timeout").count();
        let case = format!("--kill-after {kill_after:?}, UPSTART_JOB set: {upstart}");
        if warns {
            assert_eq!(count, 1, "{case}: want one warning:\n{err}");
            let line = err
                .lines()
                .find(|l| l.contains("exceeds Upstart's kill timeout"))
                .unwrap();
            assert!(line.starts_with("sigshim: warning: "), "{case}: {line}");
            assert!(
                line.contains(&format!("kill deadline {}", kill_after.unwrap())),
                "{case}: {line}"
            );
            assert!(line.contains("raise 'kill timeout'"), "{case}: {line}");
        } else {
            assert_eq!(count, 0, "{case}: want no warning:\n{err}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Container

/// As PID 1 of a new PID namespace (a container's ENTRYPOINT): the app's shell leaves an orphan
/// behind, which sigshim adopts and reaps; `docker stop`'s SIGTERM becomes the INT the app
/// traps; sigshim exits with the app's status.
#[test]
fn container_pid1_translates_and_reaps() {
    if !require_root("PID-namespace test") {
        return;
    }
    let dir = Scratch::new("container");
    let marker = dir.file("marker");
    let script = format!(
        "(exec sleep 1000 &); exec {} legacy {}",
        sh_quote(probe()),
        sh_quote(&marker)
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", sigshim()])
        .args([
            "--stop-signal",
            "INT",
            "--kill-after",
            "3s",
            "--log",
            "inherit",
        ])
        .args(["--", "sh", "-c", &script]);
    let mut run = Run::start(cmd);
    let ready = run.expect("ready pid=");
    assert_eq!(
        field(&ready, "pid"),
        2,
        "sigshim is not PID 1 of the namespace"
    );
    let init = eventually_value(Duration::from_secs(5), || {
        children_of(run.pid()).first().copied().ok_or(())
    })
    .expect("sigshim under unshare");
    assert_eq!(comm(init), "sigshim");
    // The shell's background sleep outlived its subshell: re-parented to sigshim.
    let orphan = eventually_value(TIMEOUT, || {
        children_of(init)
            .into_iter()
            .find(|&p| comm(p) == "sleep")
            .ok_or(())
    })
    .unwrap_or_else(|()| panic!("no orphaned sleep under sigshim: {:?}", children_of(init)));
    kill(orphan, libc::SIGKILL);
    assert!(
        eventually(TIMEOUT, || !Path::new(&format!("/proc/{orphan}")).exists()),
        "orphan {orphan} not reaped (zombie: {})",
        is_zombie(orphan)
    );
    kill(init, libc::SIGTERM);
    run.expect("cleanup");
    run.expect("clean-exit");
    let st = run.wait();
    assert_eq!(st.code(), Some(0), "{st:?}\n{}", run.stderr());
    assert_eq!(read(Path::new(&marker)), "clean\n");
    run.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// Readiness probes (sigshim alone)

/// sigshim with `args` over the held legacy app; `--ready-file` shows when sigshim calls it
/// ready. `before` runs in the app's shell after the gate (e.g. more output lines).
struct Held {
    run: Run,
    dir: Scratch,
    gate: Gate,
    ready_file: PathBuf,
}

fn held(name: &str, args: &[&str], env: &[(&str, &str)], before: &str) -> Held {
    held_with(name, args, env, before, |_| {})
}

fn held_with(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    before: &str,
    setup: impl FnOnce(&mut Command),
) -> Held {
    let dir = Scratch::new(name);
    let gate = Gate::new(&dir);
    let ready_file = dir.path("sigshim-ready");
    let app = held_legacy_app(&gate, before, &dir.file("marker"));
    let mut cmd = Command::new(sigshim());
    cmd.args(["--stop-signal", "INT", "--log", "inherit", "--ready-file"])
        .arg(&ready_file)
        .args(args)
        .args(["--", "sh", "-c", &app])
        .envs(env.iter().copied());
    setup(&mut cmd);
    let mut run = Run::start(cmd);
    run.expect("held");
    Held {
        run,
        dir,
        gate,
        ready_file,
    }
}

impl Held {
    /// The ready file must not appear while the app is held; it must once the gate is open.
    fn check_ready_only_after_gate(&mut self) {
        assert!(
            stays_absent(&self.ready_file, HELD),
            "sigshim called the app ready while it was held before announcing readiness\n{}",
            self.run.stderr()
        );
        self.gate.open();
        assert!(
            eventually(TIMEOUT, || self.ready_file.exists()),
            "sigshim never called the app ready\nstdout: {:?}\nstderr: {}",
            self.run.seen,
            self.run.stderr()
        );
    }

    /// Stops it (TERM -> INT), expects the clean exit, and that the ready file went with it.
    fn stop(mut self) {
        self.run.expect_any_order("ready pid=");
        self.run.signal(libc::SIGTERM);
        self.run.expect("clean-exit");
        let st = self.run.wait();
        assert_eq!(st.code(), Some(0), "{st:?}\n{}", self.run.stderr());
        assert_eq!(read(&self.dir.path("marker")), "clean\n");
        assert!(
            !self.ready_file.exists(),
            "sigshim left its --ready-file behind"
        );
        self.run.assert_nothing_left();
    }
}

/// `--ready log:REGEX`: the first matching line, not an earlier one, and only once (the
/// --notify-fd pipe gets exactly one newline although two lines match).
#[test]
fn ready_log_regex() {
    let mut notify = None;
    let mut h = held_with(
        "ready-log",
        &["--ready", "log:^serving", "--notify-fd", "3"],
        &[],
        "echo serving 1; echo serving 2;",
        |cmd| notify = Some(notify_pipe(cmd, 3)),
    );
    let (w, rx) = notify.unwrap();
    drop(w);
    assert!(
        rx.try_recv().is_err(),
        "--notify-fd written before any output"
    );
    h.check_ready_only_after_gate();
    h.run.expect("serving 1");
    h.run.expect("serving 2");
    let first = rx.recv_timeout(TIMEOUT).expect("nothing on --notify-fd");
    h.stop();
    let mut all = first;
    while let Ok(more) = rx.recv_timeout(TIMEOUT) {
        all.extend(more);
    }
    assert_eq!(all, b"\n", "--notify-fd must get exactly one newline");
}

/// `--ready tcp:HOST:PORT`: ready once a connect succeeds, i.e. once the app listens.
#[test]
fn ready_tcp() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let target = format!("tcp:127.0.0.1:{port}");
    let mut h = held(
        "ready-tcp",
        &["--ready", &target],
        &[("PROBE_LISTEN", &port)],
        "",
    );
    h.check_ready_only_after_gate();
    h.run.expect_any_order("listening on");
    std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap()))
        .expect("ready, but the port does not accept");
    h.stop();
}

/// `--ready file:PATH`: ready once PATH exists.
#[test]
fn ready_file() {
    let dir = Scratch::new("ready-file-target");
    let target = dir.path("app-ready");
    let t = target.to_str().unwrap();
    let mode = format!("file:{t}");
    let mut h = held(
        "ready-file",
        &["--ready", &mode],
        &[("PROBE_READY_FILE", t)],
        "",
    );
    h.check_ready_only_after_gate();
    assert!(target.exists());
    h.stop();
}

/// `--ready fd:N`: sigshim hands the app the write end of a pipe as fd N; ready once the app
/// writes a newline there (s6's notification-fd protocol, from the app's side).
#[test]
fn ready_fd() {
    let mut h = held(
        "ready-fd",
        &["--ready", "fd:4"],
        &[("PROBE_READY_FD", "4")],
        "",
    );
    h.check_ready_only_after_gate();
    h.run.expect_any_order("notified fd 4");
    h.stop();
}

/// `--ready notify`: the app sends READY=1 to the NOTIFY_SOCKET sigshim gives it.
#[test]
fn ready_notify() {
    let mut h = held(
        "ready-notify",
        &["--ready", "notify"],
        &[("PROBE_NOTIFY", "1")],
        "",
    );
    h.check_ready_only_after_gate();
    h.run.expect_any_order("sent READY=1");
    h.stop();
}

/// The default, `--ready spawn`: ready as soon as the program was exec'd, held or not.
#[test]
fn ready_spawn_is_the_default() {
    let h = held("ready-spawn", &[], &[], "");
    wait_file(&h.ready_file);
    h.gate.open();
    h.stop();
}

/// `--ready-timeout`: an app that never gets ready is stopped with the normal stop schedule
/// (the legacy app gets its INT and cleans up), with one error line, and sigshim exits 125.
#[test]
fn ready_timeout_stops_the_app() {
    let dir = Scratch::new("ready-timeout");
    let marker = dir.file("marker");
    let never = format!("file:{}", dir.file("never"));
    let ready_file = dir.path("sigshim-ready");
    let mut cmd = Command::new(sigshim());
    cmd.args([
        "--stop-signal",
        "INT",
        "--log",
        "inherit",
        "--ready",
        &never,
    ])
    .args(["--ready-timeout", "500ms", "--ready-file"])
    .arg(&ready_file)
    .args(["--", probe(), "legacy", &marker]);
    let t0 = Instant::now();
    let mut run = Run::start(cmd);
    run.expect("ready pid=");
    run.expect("cleanup");
    run.expect("clean-exit");
    let st = run.wait();
    let elapsed = t0.elapsed();
    assert_eq!(st.code(), Some(125), "{st:?}\n{}", run.stderr());
    assert!(
        elapsed >= Duration::from_millis(450),
        "gave up after {elapsed:?}, before the 500ms timeout"
    );
    let err = run.stderr();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("not ready within"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("sigshim: error: ") && lines[0].ends_with(": stopping it"),
        "{}",
        lines[0]
    );
    assert_eq!(read(Path::new(&marker)), "clean\n");
    assert!(!ready_file.exists(), "a never-ready app got a ready file");
    run.assert_nothing_left();
}

/// The notify relay socket is abstract, so anything in the network namespace can reach it: a
/// READY=1 from outside the app's process group is refused, and the app's own still counts.
#[test]
fn relay_ignores_strangers() {
    let dir = Scratch::new("relay-stranger");
    let ready_file = dir.file("ready");
    let mut run = Run::sigshim(&[
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
    let stranger = std::os::unix::net::UnixDatagram::unbound().unwrap();
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
    stranger.send_to_addr(b"READY=1\n", &addr).unwrap();
    assert!(
        eventually(TIMEOUT, || run
            .stderr()
            .contains("ignoring a notify message")),
        "{}",
        run.stderr()
    );
    assert!(
        !Path::new(&ready_file).exists(),
        "a stranger's READY=1 counted"
    );
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    run.assert_nothing_left();
}
