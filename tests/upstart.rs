//! The job files in `upstart/` under a real Upstart: Upstart 1.13.2's own init as PID 1 of a
//! private PID + mount + network namespace (tests/harness/upstart-ns.sh), a fresh one per test,
//! so tests run in parallel and never share a job, a log or a process.
//!
//! The job files are installed byte for byte: inside the namespace `/usr/bin/sigshim` is the
//! binary under test (an overlay of /usr/bin), `/usr/local/bin/legacy-app` is the test's
//! stand-in, and `/dev/log` leads to a private real rsyslogd where a test needs one. The
//! stand-in is a small shell script that takes its behaviour for the Nth start from line N of a
//! plan (the probe's `legacy` mode, the shipped demo app, an exit before readiness, a hang, ...),
//! and records `run N pid=P` in a file, so each respawn is visible.
//!
//! What is read back is Upstart's own account: `initctl status`, its log (`init --verbose`,
//! written to the namespace's /dev/kmsg), the job's `console log` file; plus /proc for PIDs,
//! process groups and "nothing left running" (every process of the PID namespace but init).
//! Waiting is bounded polling of that state, never a sleep; readiness is held at a gate (a FIFO
//! the stand-in reads before it can print its ready line), so "start has not returned yet" is a
//! state the test holds, not a timing.
//!
//! Without root or without the Upstart binaries (../shared/reference/upstart beside the
//! project), each test prints SKIPPED and how to get them; under CI=true that is a failure.
//!
//! Also here, because the Upstart jobs depend on it: sigshim's readiness when the app prints its
//! ready line and exits at once (the line must count whichever of the two sigshim sees first).

mod support;
// The daemon API lives next to the harness; included here by path as in tests/logging.rs.
#[path = "support/daemons.rs"]
mod daemons;

use daemons::Rsyslog;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/upstart-ns.sh");
const JOB_14: &str = include_str!("../upstart/legacy-app.conf");
const JOB_06: &str = include_str!("../upstart/legacy-app-0.6.conf");
const DEMO_APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/legacy-app");
const JOB: &str = "legacy-app";

/// How long something that must not happen yet (a `start` returning, a `stop` returning) is
/// given to happen anyway. Anything not waiting for the gate happens within milliseconds.
const HELD: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// The Upstart instance

/// One real Upstart in its own namespace, stopped (SIGKILL to its PID 1, which ends everything
/// inside) when dropped.
struct Upstart {
    state: Scratch,
    paths: HashMap<String, PathBuf>,
    /// The namespace's init, as the host sees it.
    init: i32,
}

impl Upstart {
    /// Starts an instance with sigshim at /usr/bin/sigshim and, given a socket, /dev/log
    /// leading to it. `None` when this machine cannot run it (SKIPPED, or a panic on CI).
    fn start(name: &str, devlog: Option<&Path>) -> Option<Upstart> {
        if !require_root(&format!("Upstart test ({name})")) {
            return None;
        }
        let check = Command::new("bash")
            .args([HARNESS, "check"])
            .env("SIGSHIM_DAEMON_STATE", "/nonexistent")
            .output()
            .expect("run upstart-ns.sh check");
        if !check.status.success() {
            let why = String::from_utf8_lossy(&check.stderr);
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "Upstart test ({name}): no Upstart to run, and CI=true makes that a failure:\n{why}"
                );
            }
            eprintln!("SKIPPED: Upstart test ({name}): no Upstart to run:\n{why}");
            return None;
        }
        let state = Scratch::new(&format!("upstart-{name}"));
        let mut up = Upstart {
            state,
            paths: HashMap::new(),
            init: 0,
        };
        let mut cmd = up.harness(&["start"]);
        cmd.env("SIGSHIM_UPSTART_USR_BIN", sigshim());
        if let Some(sock) = devlog {
            cmd.env("SIGSHIM_UPSTART_DEVLOG", sock);
        }
        let started = up.checked(cmd, "start");
        up.init = started
            .split_whitespace()
            .find_map(|w| w.strip_prefix("init="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("upstart-ns.sh start printed {started:?}"));
        assert!(
            started.contains("upstart 1.13"),
            "not the Upstart expected: {started}"
        );
        for line in up.checked(up.harness(&["paths"]), "paths").lines() {
            if let Some((k, v)) = line.split_once('=') {
                up.paths.insert(k.to_string(), PathBuf::from(v));
            }
        }
        Some(up)
    }

    fn harness(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(HARNESS)
            .args(args)
            .env("SIGSHIM_DAEMON_STATE", &*self.state)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a harness command to completion (bounded); panics with everything known if it
    /// fails or hangs.
    fn checked(&self, cmd: Command, what: &str) -> String {
        let out = self.finish(Background::spawn(cmd, what), TIMEOUT);
        if !out.status.success() {
            panic!(
                "upstart-ns.sh {what} failed ({}):\nstdout: {}\nstderr: {}\n{}",
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
            .unwrap_or_else(|| panic!("upstart-ns.sh paths printed no {key}="))
    }

    /// `initctl ARGS` inside, to completion; its stdout. Panics if initctl fails.
    fn ctl(&self, args: &[&str]) -> String {
        let mut full = vec!["ctl"];
        full.extend_from_slice(args);
        self.checked(self.harness(&full), &full.join(" "))
    }

    /// `initctl ARGS` inside, in the background (for the commands that block: start, stop).
    fn ctl_background(&self, args: &[&str]) -> Background {
        let mut full = vec!["ctl"];
        full.extend_from_slice(args);
        Background::spawn(self.harness(&full), &full.join(" "))
    }

    /// Waits (bounded by `timeout`) for a background command; panics with context if it does
    /// not end in time.
    fn finish(&self, mut bg: Background, timeout: Duration) -> Output {
        if !bg.ended_within(timeout) {
            bg.kill();
            let child = bg.child.take().expect("running");
            let out = child.wait_with_output().expect("wait");
            panic!(
                "`{}` did not return within {timeout:?}\nstdout: {}\n{}",
                bg.what,
                String::from_utf8_lossy(&out.stdout),
                self.context()
            );
        }
        let child = bg.child.take().expect("running");
        child.wait_with_output().expect("wait")
    }

    /// Installs a job file as NAME.conf, byte for byte, and has Upstart read it.
    fn job(&self, name: &str, text: &str) {
        let file = self.state.path(&format!("{name}.conf.new"));
        std::fs::write(&file, text).expect("write job");
        self.checked(self.harness(&["job", name, file.to_str().unwrap()]), "job");
    }

    /// The stand-in for /usr/local/bin/legacy-app, taking its Nth behaviour from `plan[N-1]`
    /// (the last one repeats): see [`Plan`].
    fn app(&self, plan: &[&str]) -> Plan {
        let plan_file = self.state.path("plan");
        std::fs::write(&plan_file, plan.join("\n") + "\n").expect("write plan");
        let gate = self.state.path("gate");
        let c = CString::new(gate.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let script = format!(
            r#"#!/bin/sh
# The stand-in for /usr/local/bin/legacy-app (tests/upstart.rs): start N does line N of the plan.
runs={runs}
n=1
[ -f "$runs" ] && n=$(( $(wc -l < "$runs") + 1 ))
echo "run $n pid=$$" >> "$runs"
action=$(sed -n "${{n}}p" {plan})
[ -n "$action" ] || action=$(tail -n 1 {plan})
marker={dir}/marker.$n
set -- $action
case $1 in
    legacy) exec {probe} legacy "$marker" ;;
    demo) exec {demo} {dir}/demo-state ;;
    held) read go < {gate}; exec {probe} legacy "$marker" ;;
    hang) exec {probe} ignore-stop ;;
    exit) echo "run $n: exiting at once with $2"; exit "$2" ;;
    ready-exit) echo "run $n: ready, and exiting with $2"; exit "$2" ;;
    usr1-exit) trap "echo 'run $n: USR1, exiting with $2'; exit $2" USR1
        echo "run $n: ready pid=$$"
        while :; do sleep 0.05; done ;;
    never) trap "echo 'run $n: cleanup'; echo clean > $marker; exit 0" INT
        echo "run $n: starting, never serving"
        while :; do sleep 0.05; done ;;
esac
echo "unknown plan action: $action" >&2
exit 64
"#,
            runs = self.state.file("runs"),
            plan = plan_file.display(),
            dir = self.state.display(),
            probe = probe(),
            demo = DEMO_APP,
            gate = gate.display(),
        );
        let app = self.path("bin").join("legacy-app");
        std::fs::write(&app, script).expect("write stand-in");
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Plan {
            runs: self.state.path("runs"),
            dir: self.state.to_path_buf(),
            gate,
        }
    }

    /// Upstart's log so far.
    fn kmsg(&self) -> String {
        std::fs::read_to_string(self.path("kmsg")).unwrap_or_default()
    }

    /// Upstart's log lines containing `needle`.
    fn kmsg_lines(&self, needle: &str) -> Vec<String> {
        self.kmsg()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// Waits (bounded) for a line of Upstart's log containing `needle`; returns it.
    fn wait_kmsg(&self, needle: &str, timeout: Duration) -> String {
        eventually_value(timeout, || {
            self.kmsg_lines(needle).into_iter().next().ok_or(())
        })
        .unwrap_or_else(|()| panic!("Upstart never logged {needle:?}\n{}", self.context()))
    }

    /// The job's `console log` file, "\r\n" (the pty's) turned into "\n".
    fn console_log(&self, job: &str) -> String {
        std::fs::read_to_string(self.path("logdir").join(format!("{job}.log")))
            .unwrap_or_default()
            .replace("\r\n", "\n")
    }

    /// Waits (bounded) until the console log has a line containing `needle`.
    fn wait_console(&self, job: &str, needle: &str) -> String {
        eventually_value(TIMEOUT, || {
            self.console_log(job)
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_string)
                .ok_or(())
        })
        .unwrap_or_else(|()| panic!("no {needle:?} in the console log\n{}", self.context()))
    }

    /// `initctl status JOB`, parsed.
    fn status(&self, job: &str) -> Status {
        Status::parse(&self.ctl(&["status", job]))
    }

    /// Waits (bounded) until `initctl status` satisfies `done`.
    fn wait_status(&self, job: &str, what: &str, done: impl Fn(&Status) -> bool) -> Status {
        eventually_value(TIMEOUT, || {
            let s = self.status(job);
            if done(&s) { Ok(s) } else { Err(s) }
        })
        .unwrap_or_else(|s| panic!("{job} never {what}; last: {s:?}\n{}", self.context()))
    }

    /// Every live process of the namespace except its init: (host PID, PID inside, command).
    fn processes(&self) -> Vec<(i32, i32, String)> {
        let ns = std::fs::read_link(format!("/proc/{}/ns/pid", self.init)).ok();
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == self.init
                || ns.is_none()
                || std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok() != ns
                || is_zombie_or_gone(pid)
            {
                continue;
            }
            let inner = ns_pid(pid).unwrap_or(0);
            out.push((pid, inner, comm(pid)));
        }
        out
    }

    /// The host PID of the process that is `inner` inside the namespace.
    fn host_pid(&self, inner: i32) -> i32 {
        self.processes()
            .into_iter()
            .find(|&(_, i, _)| i == inner)
            .map(|(h, _, _)| h)
            .unwrap_or_else(|| {
                panic!(
                    "no live process {inner} in the namespace: {:?}\n{}",
                    self.processes(),
                    self.context()
                )
            })
    }

    /// Nothing of the job is left: the namespace holds its init and nothing else.
    fn assert_nothing_left(&self) {
        let left = eventually_value(Duration::from_secs(5), || {
            let p = self.processes();
            p.is_empty().then_some(()).ok_or(p)
        });
        if let Err(p) = left {
            panic!(
                "left running inside the namespace: {p:?}\n{}",
                self.context()
            );
        }
    }

    fn context(&self) -> String {
        let logs: Vec<String> = std::fs::read_dir(self.path("logdir"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                format!(
                    "--- {}:\n{}",
                    e.path().display(),
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .replace("\r\n", "\n")
                )
            })
            .collect();
        let kmsg: Vec<String> = self
            .kmsg()
            .lines()
            .filter(|l| !l.contains("Connection from private client"))
            .map(str::to_string)
            .collect();
        let tail = &kmsg[kmsg.len().saturating_sub(60)..];
        format!(
            "Upstart's log (last {} lines):\n{}\nconsole logs:\n{}\nprocesses inside: {:?}\nstate: {}",
            tail.len(),
            tail.join("\n"),
            logs.join("\n"),
            self.processes(),
            self.state.display()
        )
    }
}

impl Drop for Upstart {
    fn drop(&mut self) {
        // Never panic in drop (a second panic aborts and hides the first): report instead.
        match self.harness(&["stop"]).output() {
            Ok(o) if o.status.success() => {}
            other => eprintln!("upstart-ns.sh stop failed: {other:?}"),
        }
    }
}

/// A command running in the background (an initctl that blocks), in a process group of its
/// own: the watchdog kills the whole group (bash, nsenter, initctl), since any of them left
/// would hold the output pipes open. Killed if still running when dropped.
struct Background {
    /// Taken when waited for.
    child: Option<Child>,
    what: String,
}

impl Background {
    fn spawn(mut cmd: Command, what: &str) -> Background {
        let child = cmd
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        Background {
            child: Some(child),
            what: what.to_string(),
        }
    }

    fn ended_within(&mut self, timeout: Duration) -> bool {
        let child = self.child.as_mut().expect("running");
        eventually(timeout, || child.try_wait().expect("try_wait").is_some())
    }

    /// SIGKILL to the command's whole process group (its leader's PID is the group's ID).
    fn kill(&mut self) {
        if let Some(child) = &self.child {
            kill(-(child.id() as i32), libc::SIGKILL);
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            self.kill();
            if let Some(child) = self.child.as_mut() {
                let _ = child.wait();
            }
        }
    }
}

/// `JOB GOAL/STATE[, process N]` from initctl status.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    goal: String,
    state: String,
    process: Option<i32>,
}

impl Status {
    fn parse(line: &str) -> Status {
        let line = line.trim();
        let (_, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("initctl status: {line:?}"));
        let (gs, process) = match rest.split_once(", process ") {
            Some((gs, p)) => (gs, Some(p.trim().parse().expect("process PID"))),
            None => (rest, None),
        };
        let (goal, state) = gs
            .split_once('/')
            .unwrap_or_else(|| panic!("initctl status: {line:?}"));
        Status {
            goal: goal.to_string(),
            state: state.to_string(),
            process,
        }
    }

    fn is(&self, gs: &str) -> bool {
        format!("{}/{}", self.goal, self.state) == gs
    }

    /// The main process's PID inside the namespace.
    fn main(&self) -> i32 {
        self.process
            .unwrap_or_else(|| panic!("no main process: {self:?}"))
    }
}

/// What the stand-in app recorded: which start is which process.
struct Plan {
    runs: PathBuf,
    dir: PathBuf,
    gate: PathBuf,
}

impl Plan {
    /// `(N, PID inside the namespace)` of every start so far.
    fn runs(&self) -> Vec<(usize, i32)> {
        std::fs::read_to_string(&self.runs)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let n = l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("runs: {l:?}"));
                (n, field(l, "pid"))
            })
            .collect()
    }

    /// Waits (bounded) for start N; its PID inside the namespace.
    fn wait_run(&self, n: usize, up: &Upstart) -> i32 {
        eventually_value(TIMEOUT, || {
            self.runs()
                .into_iter()
                .find(|&(k, _)| k == n)
                .map(|(_, p)| p)
                .ok_or(())
        })
        .unwrap_or_else(|()| panic!("the app was never started a {n}th time\n{}", up.context()))
    }

    fn marker(&self, n: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("marker.{n}"))).unwrap_or_default()
    }

    /// Lets a `held` app through, once it is reading (non-blocking open: ENXIO until it is).
    fn open_gate(&self) {
        let mut f = eventually_value(TIMEOUT, || {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.gate)
        })
        .unwrap_or_else(|e| panic!("nobody reads the gate {}: {e}", self.gate.display()));
        f.write_all(b"go\n").expect("write gate");
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// The PID inside the innermost namespace of host process `pid` (NSpid in /proc/PID/status).
fn ns_pid(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// (state, ppid, pgrp) from /proc/PID/stat (fields after the last ')', proc(5)).
fn stat(pid: i32) -> (char, i32, i32) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    let mut f = s[s.rfind(')').unwrap() + 1..].split_whitespace();
    let state = f.next().unwrap().chars().next().unwrap();
    let ppid = f.next().unwrap().parse().unwrap();
    let pgrp = f.next().unwrap().parse().unwrap();
    (state, ppid, pgrp)
}

fn children_of(parent: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn exe(pid: i32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default()
}

/// A duration of the job's exec line (`--kill-after 4s`) or stanza (`kill timeout 8`): the
/// tests check relations between the job's numbers, not copies of them.
fn job_secs(job: &str, key: &str) -> f64 {
    let at = job
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| {
            l.split_once(key)
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .unwrap_or_else(|| panic!("no {key:?} in the job"));
    let word = at.split_whitespace().next().unwrap();
    match (word.strip_suffix("ms"), word.strip_suffix('s')) {
        (Some(ms), _) => ms.parse::<f64>().unwrap() / 1000.0,
        (None, Some(s)) => s.parse().unwrap(),
        (None, None) => word.parse().unwrap(),
    }
}

fn secs(d: f64) -> Duration {
    Duration::from_secs_f64(d)
}

/// Starts the job with `initctl start` and waits (bounded) until that returns; the status it
/// printed.
fn start_job(up: &Upstart, job: &str) -> Status {
    let out = up.finish(up.ctl_background(&["start", job]), TIMEOUT);
    assert!(
        out.status.success(),
        "start {job}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        up.context()
    );
    Status::parse(&String::from_utf8_lossy(&out.stdout))
}

/// Stops the job with `initctl stop`; returns how long that took.
fn stop_job(up: &Upstart, job: &str, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    let out = up.finish(up.ctl_background(&["stop", job]), timeout);
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "stop {job}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        up.context()
    );
    let st = Status::parse(&String::from_utf8_lossy(&out.stdout));
    assert!(
        st.is("stop/waiting"),
        "after stop: {st:?}\n{}",
        up.context()
    );
    took
}

/// The job's main process (host PID) must be sigshim itself, leading its own process group
/// (Upstart's setsid), with the app as its only child, in a process group of its own.
/// Returns (sigshim, app) as host PIDs.
fn check_process_tree(up: &Upstart, st: &Status, app_inner: i32) -> (i32, i32) {
    let main = up.host_pid(st.process.expect("a main process"));
    assert_eq!(
        exe(main),
        std::fs::canonicalize(sigshim()).unwrap(),
        "the job's main process is not sigshim\n{}",
        up.context()
    );
    let (_, _, main_group) = stat(main);
    assert_eq!(main_group, main, "Upstart's main process leads its group");
    let app = up.host_pid(app_inner);
    assert_eq!(children_of(main), vec![app], "sigshim's children");
    let (_, parent, group) = stat(app);
    assert_eq!(parent, main, "the app is sigshim's direct child");
    assert_eq!(group, app, "the app leads a process group of its own");
    assert_ne!(group, main_group);
    (main, app)
}

/// Upstart's `stop` went the way the job means it: TERM to the main process, never Upstart's
/// own SIGKILL.
fn check_no_upstart_kill(up: &Upstart) {
    assert!(
        !up.kmsg_lines(&format!("Sending TERM signal to {JOB} main process"))
            .is_empty(),
        "no stop signal in Upstart's log\n{}",
        up.context()
    );
    assert!(
        up.kmsg_lines("Sending KILL signal").is_empty(),
        "Upstart had to SIGKILL: its kill timeout passed first\n{}",
        up.context()
    );
}

// ---------------------------------------------------------------------------------------------
// The >= 1.4 job (upstart/legacy-app.conf)

/// The shipped job with the shipped demo app (demo/legacy-app, only its state file moved into
/// the test's directory): `start` returns with the job running, `reload` does nothing to the
/// app (the job drops SIGHUP: the demo app has no reload and would die of it), and `stop` runs
/// the app's SIGINT cleanup, whose lines reach the console log; nothing is left.
#[test]
fn shipped_job_runs_the_shipped_demo_app() {
    let Some(up) = Upstart::start("demo", None) else {
        return;
    };
    let plan = up.app(&["demo"]);
    up.job(JOB, JOB_14);
    let st = start_job(&up, JOB);
    assert!(st.is("start/running"), "{st:?}\n{}", up.context());
    let (main, app) = check_process_tree(&up, &st, plan.wait_run(1, &up));
    up.wait_console(JOB, "legacy-app: ready, pid");
    let lock = plan.dir.join("demo-state.lock");
    assert!(lock.exists(), "the demo app holds no lock");

    // reload: HUP to sigshim, which the job drops. The stop below is the proof: its INT reaches
    // the app after the HUP would have (sigshim reads signals in order), and the same app cleans
    // up; had the HUP been passed on, that app would be dead and a respawned one in its place.
    up.ctl(&["reload", JOB]);
    stop_job(&up, JOB, TIMEOUT);
    check_no_upstart_kill(&up);
    assert_eq!(
        plan.runs().len(),
        1,
        "the app was started again\n{}",
        up.context()
    );
    assert!(up.kmsg_lines("respawning").is_empty(), "{}", up.context());
    // Upstart copies the pty to the file as it reads it: the last line may come after the exit.
    up.wait_console(JOB, "legacy-app: clean exit");
    let log = up.console_log(JOB);
    let after = log.split_once("legacy-app: ready").map_or("", |x| x.1);
    assert!(
        after.contains("SIGINT received: saving state") && after.contains("legacy-app: clean exit"),
        "the cleanup lines are not in the console log:\n{log}"
    );
    assert_eq!(
        std::fs::read_to_string(plan.dir.join("demo-state")).unwrap_or_default(),
        "clean shutdown\n"
    );
    assert!(!lock.exists(), "the demo app left its lock behind");
    assert!(
        up.kmsg_lines(&format!("main process ({}) exited normally", st.main()))
            .len()
            == 1,
        "sigshim did not end with the app's own exit 0\n{}",
        up.context()
    );
    assert!(is_zombie_or_gone(main) && is_zombie_or_gone(app));
    up.assert_nothing_left();
}

/// `expect stop`: while the app is held before its ready line, the job stays start/spawned and
/// `start` does not return; once it prints it, sigshim raises SIGSTOP, Upstart continues it and
/// `start` returns with the job running and sigshim not left stopped. The process tree is what
/// the job promises; `reload` is dropped while other signals still reach the app (USR2: the
/// probe's reload); `stop` is the app's clean exit, well before any deadline.
#[test]
fn start_returns_once_the_app_is_ready() {
    let Some(up) = Upstart::start("ready", None) else {
        return;
    };
    let plan = up.app(&["held"]);
    up.job(JOB, JOB_14);
    let mut start = up.ctl_background(&["start", JOB]);
    let inner = plan.wait_run(1, &up);
    let spawned = up.wait_status(JOB, "start/spawned", |s| s.is("start/spawned"));
    assert!(
        !start.ended_within(HELD),
        "`start` returned while the app was held before its ready line\n{}",
        up.context()
    );
    assert!(up.status(JOB).is("start/spawned"));
    plan.open_gate();
    let out = up.finish(start, TIMEOUT);
    let st = Status::parse(&String::from_utf8_lossy(&out.stdout));
    assert!(st.is("start/running"), "{st:?}\n{}", up.context());
    assert_eq!(st.process, spawned.process, "the main process changed");
    let stopped = format!("main process ({}) stopped by STOP signal", st.main());
    assert_eq!(up.kmsg_lines(&stopped).len(), 1, "{}", up.context());
    let (main, app) = check_process_tree(&up, &st, inner);
    assert!(
        eventually(TIMEOUT, || stat(main).0 != 'T'),
        "sigshim was left stopped"
    );
    up.wait_console(JOB, "ready pid=");

    up.ctl(&["reload", JOB]);
    kill(main, libc::SIGUSR2);
    up.wait_console(JOB, "reload");
    assert!(!is_zombie_or_gone(app), "the app died of the reload");

    let took = stop_job(&up, JOB, TIMEOUT);
    assert!(
        took < secs(job_secs(JOB_14, "--kill-after")),
        "stop took {took:?}: the app did not exit by itself\n{}",
        up.context()
    );
    check_no_upstart_kill(&up);
    assert_eq!(plan.marker(1), "clean\n", "{}", up.context());
    up.wait_console(JOB, "clean-exit");
    let log = up.console_log(JOB);
    let after = log.split_once("ready pid=").map_or("", |x| x.1);
    assert!(
        after.contains("\nreload\n")
            && after.contains("\ncleanup\n")
            && after.contains("\nclean-exit\n"),
        "console log:\n{log}"
    );
    assert!(!log.contains("sigshim: warning"), "{log}");
    up.assert_nothing_left();
}

/// `stop` while the job still waits for readiness: Upstart waits for the SIGSTOP (it tells
/// sigshim nothing), so `stop` does not return while the app is held; once the app is ready,
/// the stop goes on as usual: TERM, the app's INT cleanup, no respawn.
#[test]
fn stop_while_waiting_for_readiness() {
    let Some(up) = Upstart::start("stop-spawned", None) else {
        return;
    };
    let plan = up.app(&["held"]);
    up.job(JOB, JOB_14);
    let _start = up.ctl_background(&["start", JOB]);
    plan.wait_run(1, &up);
    up.wait_status(JOB, "start/spawned", |s| s.is("start/spawned"));
    let mut stop = up.ctl_background(&["stop", JOB]);
    up.wait_status(JOB, "stop/spawned", |s| s.is("stop/spawned"));
    assert!(
        !stop.ended_within(HELD),
        "`stop` returned while the job was still spawned\n{}",
        up.context()
    );
    plan.open_gate();
    let out = up.finish(stop, TIMEOUT);
    let st = Status::parse(&String::from_utf8_lossy(&out.stdout));
    assert!(st.is("stop/waiting"), "{st:?}\n{}", up.context());
    check_no_upstart_kill(&up);
    assert_eq!(plan.marker(1), "clean\n", "{}", up.context());
    up.wait_console(JOB, "clean-exit");
    let log = up.console_log(JOB);
    assert!(
        log.contains("\ncleanup\n") && log.contains("\nclean-exit\n"),
        "{log}"
    );
    assert_eq!(plan.runs().len(), 1);
    up.assert_nothing_left();
}

/// `stop` while the job waits for an app that never gets ready: the job's --ready-timeout is
/// the bound. When it passes, sigshim stops the app (its INT cleanup runs), raises its SIGSTOP
/// before exiting, Upstart moves on with its stop, and `stop` returns; the goal being stop,
/// nothing is respawned.
#[test]
fn stop_while_waiting_is_bounded_by_the_ready_timeout() {
    let Some(up) = Upstart::start("stop-never-ready", None) else {
        return;
    };
    let plan = up.app(&["never"]);
    up.job(JOB, JOB_14);
    let timeout = job_secs(JOB_14, "--ready-timeout");
    let t0 = Instant::now();
    let _start = up.ctl_background(&["start", JOB]);
    plan.wait_run(1, &up);
    up.wait_status(JOB, "start/spawned", |s| s.is("start/spawned"));
    let stop = up.ctl_background(&["stop", JOB]);
    up.wait_status(JOB, "stop/spawned", |s| s.is("stop/spawned"));
    let out = up.finish(stop, secs(timeout) + TIMEOUT);
    let took = t0.elapsed();
    assert!(
        took >= secs(timeout - 0.1),
        "stop returned after {took:?}, before the job's --ready-timeout of {timeout} s"
    );
    let st = Status::parse(&String::from_utf8_lossy(&out.stdout));
    assert!(st.is("stop/waiting"), "{st:?}\n{}", up.context());
    assert_eq!(plan.marker(1), "clean\n", "{}", up.context());
    up.wait_console(JOB, "not ready within");
    assert_eq!(
        up.kmsg_lines("terminated with status 125").len(),
        1,
        "{}",
        up.context()
    );
    assert!(
        up.kmsg_lines("Sending KILL signal").is_empty(),
        "{}",
        up.context()
    );
    assert_eq!(plan.runs().len(), 1, "{}", up.context());
    up.assert_nothing_left();
}

/// An app that ignores the stop (and leaves a grandchild in its group and one in a session of
/// its own): sigshim SIGKILLs all of it at its deadline (--kill-after), before Upstart's
/// `kill timeout` would SIGKILL sigshim; Upstart never sends KILL; nothing is left.
#[test]
fn hung_app_is_killed_at_sigshims_deadline() {
    let Some(up) = Upstart::start("hung", None) else {
        return;
    };
    let plan = up.app(&["hang"]);
    up.job(JOB, JOB_14);
    let st = start_job(&up, JOB);
    assert!(st.is("start/running"), "{st:?}\n{}", up.context());
    plan.wait_run(1, &up);
    up.wait_console(JOB, "grandchildren group=");
    let deadline = job_secs(JOB_14, "--kill-after");
    let kill_timeout = job_secs(JOB_14, "kill timeout");
    assert!(deadline < kill_timeout);
    let took = stop_job(&up, JOB, secs(kill_timeout) + TIMEOUT);
    assert!(
        took >= secs(deadline - 0.2) && took < secs(kill_timeout),
        "stop took {took:?}; sigshim's deadline is {deadline} s, Upstart's kill timeout {kill_timeout} s\n{}",
        up.context()
    );
    check_no_upstart_kill(&up);
    // sigshim reports the app's end as its own: killed by KILL (sigshim's, not Upstart's).
    let killed = format!("main process ({}) killed by KILL signal", st.main());
    assert_eq!(up.kmsg_lines(&killed).len(), 1, "{}", up.context());
    up.wait_console(JOB, "kill deadline passed");
    up.assert_nothing_left();
}

/// Respawn sees the app's own outcome through sigshim: a crash (the app SIGKILLed) and an exit
/// with 3 are respawned; the app's own clean exit 0 (on an INT sent to it directly) is a
/// `normal exit`: the job stops, no third respawn.
#[test]
fn respawns_a_crash_and_a_failure_not_a_normal_exit() {
    let Some(up) = Upstart::start("respawn", None) else {
        return;
    };
    let plan = up.app(&["legacy", "usr1-exit 3", "legacy"]);
    up.job(JOB, JOB_14);
    let first = start_job(&up, JOB);
    let (_, app1) = check_process_tree(&up, &first, plan.wait_run(1, &up));

    kill(app1, libc::SIGKILL);
    let main1 = first.main();
    up.wait_kmsg(
        &format!("main process ({main1}) killed by KILL signal"),
        TIMEOUT,
    );
    let second = up.wait_status(JOB, "respawned", |s| {
        s.is("start/running") && s.process.is_some_and(|p| p != main1)
    });
    let (_, app2) = check_process_tree(&up, &second, plan.wait_run(2, &up));

    kill(app2, libc::SIGUSR1);
    let main2 = second.main();
    up.wait_kmsg(
        &format!("main process ({main2}) terminated with status 3"),
        TIMEOUT,
    );
    let third = up.wait_status(JOB, "respawned", |s| {
        s.is("start/running") && s.process.is_some_and(|p| p != main2)
    });
    let (_, app3) = check_process_tree(&up, &third, plan.wait_run(3, &up));

    kill(app3, libc::SIGINT);
    let main3 = third.main();
    up.wait_kmsg(&format!("main process ({main3}) exited normally"), TIMEOUT);
    up.wait_status(JOB, "stopped", |s| s.is("stop/waiting"));
    assert_eq!(plan.marker(3), "clean\n");
    assert_eq!(plan.runs().len(), 3, "{}", up.context());
    assert_eq!(
        up.kmsg_lines(&format!("{JOB} main process ended, respawning"))
            .len(),
        2,
        "{}",
        up.context()
    );
    up.assert_nothing_left();
}

/// `expect stop` + `respawn`, the app ending before sigshim's SIGSTOP: at once with exit 3
/// (before any ready line), then right after printing its ready line with exit 4. Upstart
/// alone would log "respawning" and leave the job start/running with no process; sigshim
/// raises its SIGSTOP before exiting, so each is respawned, and the third start runs for real.
#[test]
fn respawns_an_exit_before_readiness() {
    let Some(up) = Upstart::start("early-exit", None) else {
        return;
    };
    let plan = up.app(&["exit 3", "ready-exit 4", "legacy"]);
    up.job(JOB, JOB_14);
    let _start = up.ctl_background(&["start", JOB]);
    let third = plan.wait_run(3, &up);
    let st = up.wait_status(JOB, "running the third start", |s| {
        s.is("start/running") && s.process.is_some()
    });
    let (main, _) = check_process_tree(&up, &st, third);
    for status in [3, 4] {
        assert_eq!(
            up.kmsg_lines(&format!("terminated with status {status}"))
                .len(),
            1,
            "{}",
            up.context()
        );
    }
    assert_eq!(
        up.kmsg_lines("stopped by STOP signal").len(),
        3,
        "every start raised exactly one SIGSTOP\n{}",
        up.context()
    );
    assert_eq!(
        up.kmsg_lines(&format!("{JOB} main process ended, respawning"))
            .len(),
        2,
        "{}",
        up.context()
    );
    up.wait_console(JOB, "run 2: ready, and exiting with 4");
    up.wait_console(JOB, "ready pid=");
    assert!(!is_zombie_or_gone(main));
    stop_job(&up, JOB, TIMEOUT);
    assert_eq!(plan.marker(3), "clean\n", "{}", up.context());
    up.assert_nothing_left();
}

/// An exit 0 before readiness is a `normal exit`: the job stops, nothing is respawned.
#[test]
fn normal_exit_before_readiness_is_not_respawned() {
    let Some(up) = Upstart::start("early-exit0", None) else {
        return;
    };
    let plan = up.app(&["exit 0"]);
    up.job(JOB, JOB_14);
    let _start = up.ctl_background(&["start", JOB]);
    plan.wait_run(1, &up);
    up.wait_kmsg("exited normally", TIMEOUT);
    up.wait_status(JOB, "stopped", |s| s.is("stop/waiting"));
    assert_eq!(plan.runs().len(), 1, "{}", up.context());
    assert!(up.kmsg_lines("respawning").is_empty(), "{}", up.context());
    up.assert_nothing_left();
}

/// `respawn limit`: an app that cannot even be executed (no /usr/local/bin/legacy-app: sigshim
/// exits 127 before any readiness) is respawned until Upstart gives up ("respawning too fast,
/// stopped"): the first start plus as many respawns as the limit allows, then stop/waiting.
#[test]
fn respawn_limit_is_honoured() {
    let Some(up) = Upstart::start("respawn-limit", None) else {
        return;
    };
    up.job(JOB, JOB_14);
    let limit: usize = JOB_14
        .lines()
        .find_map(|l| l.strip_prefix("respawn limit "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("respawn limit N T in the job");
    let _start = up.ctl_background(&["start", JOB]);
    up.wait_kmsg(&format!("{JOB} respawning too fast, stopped"), TIMEOUT);
    up.wait_status(JOB, "stopped", |s| s.is("stop/waiting"));
    assert_eq!(
        up.kmsg_lines(&format!("{JOB} main process ended, respawning"))
            .len(),
        limit,
        "{}",
        up.context()
    );
    assert_eq!(
        up.kmsg_lines("terminated with status 127").len(),
        limit + 1,
        "{}",
        up.context()
    );
    assert_eq!(up.kmsg_lines("stopped by STOP signal").len(), limit + 1);
    let fatal = "sigshim: fatal: cannot exec /usr/local/bin/legacy-app: No such file or directory";
    let each = eventually_value(TIMEOUT, || {
        let n = up.console_log(JOB).matches(fatal).count();
        if n == limit + 1 { Ok(n) } else { Err(n) }
    });
    assert!(
        each.is_ok(),
        "{each:?} of {} starts said why\n{}",
        limit + 1,
        up.context()
    );
    up.assert_nothing_left();
}

/// `--ready-timeout`: an app that never prints its ready line is stopped by sigshim when the
/// job's timeout passes (the app's INT cleanup runs), sigshim exits 125, and the job is
/// respawned; the second start is ready and runs.
#[test]
fn ready_timeout_stops_and_respawns() {
    let Some(up) = Upstart::start("ready-timeout", None) else {
        return;
    };
    let plan = up.app(&["never", "legacy"]);
    up.job(JOB, JOB_14);
    let timeout = job_secs(JOB_14, "--ready-timeout");
    let t0 = Instant::now();
    let _start = up.ctl_background(&["start", JOB]);
    plan.wait_run(1, &up);
    up.wait_kmsg("terminated with status 125", secs(timeout) + TIMEOUT);
    let waited = t0.elapsed();
    assert!(
        waited >= secs(timeout - 0.1),
        "gave up after {waited:?}, before the job's --ready-timeout of {timeout} s"
    );
    assert_eq!(plan.marker(1), "clean\n", "the app was not stopped cleanly");
    up.wait_console(JOB, "run 1: cleanup");
    up.wait_console(JOB, "not ready within");
    let log = up.console_log(JOB);
    assert!(log.contains("run 1: cleanup"), "{log}");
    assert!(
        log.contains("sigshim: error: ") && log.contains("not ready within"),
        "{log}"
    );
    let inner = plan.wait_run(2, &up);
    let st = up.wait_status(JOB, "running the second start", |s| {
        s.is("start/running") && s.process.is_some()
    });
    check_process_tree(&up, &st, inner);
    stop_job(&up, JOB, TIMEOUT);
    assert_eq!(plan.marker(2), "clean\n");
    up.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// The 0.6 job (upstart/legacy-app-0.6.conf), as far as Upstart 1.13 runs it

/// The 0.6 job under 1.13 (what 1.13 cannot tell about 0.6 itself: see upstart/README.md): no
/// `console log`, so sigshim sends every line to syslog, here a private real rsyslogd behind
/// the namespace's /dev/log: the ready line, then the cleanup lines of the stop, each tagged
/// legacy-app[PID] with the app's PID, facility daemon.
#[test]
fn job_06_logs_every_line_to_syslog() {
    let Some(rsyslog) = Rsyslog::start("upstart06") else {
        return;
    };
    let Some(up) = Upstart::start("job06", Some(rsyslog.socket())) else {
        return;
    };
    let plan = up.app(&["legacy"]);
    up.job(JOB, JOB_06);
    let st = start_job(&up, JOB);
    assert!(st.is("start/running"), "{st:?}\n{}", up.context());
    let inner = plan.wait_run(1, &up);
    check_process_tree(&up, &st, inner);
    stop_job(&up, JOB, TIMEOUT);
    check_no_upstart_kill(&up);
    assert_eq!(plan.marker(1), "clean\n");
    rsyslog.barrier();
    let records: Vec<_> = rsyslog
        .records()
        .into_iter()
        .filter(|r| r.programname == JOB)
        .collect();
    let messages: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(r.message_3164()).into_owned())
        .collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].starts_with("ready pid="), "{messages:?}");
    assert_eq!(&messages[1..], ["cleanup", "clean-exit"]);
    for r in &records {
        assert_eq!(r.pid, inner.to_string(), "{r:?}");
        assert_eq!(
            (r.facility.as_str(), r.severity.as_str()),
            ("daemon", "info")
        );
    }
    assert!(
        !up.path("logdir").join(format!("{JOB}.log")).exists(),
        "console none: Upstart should have no log for the job"
    );
    up.assert_nothing_left();
}

/// When each stanza appeared, from the NEWS file of Upstart's own sources (upstart-1.13.2
/// NEWS): `expect stop` 0.5.0, `kill signal` 1.3, `console log` and `setuid`/`setgid` 1.4,
/// `reload signal` 1.10. The rest of what the jobs use was in 0.6 already.
const STANZA_SINCE: &[(&str, (u32, u32))] = &[
    ("kill signal", (1, 3)),
    ("console log", (1, 4)),
    ("setuid", (1, 4)),
    ("setgid", (1, 4)),
    ("reload signal", (1, 10)),
];

/// The stanzas (first words, `kill signal`/`console log` as two) of a job file.
fn stanzas(job: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut continued = false;
    for line in job.lines() {
        let was_continued = continued;
        continued = line.ends_with('\\');
        let t = line.trim();
        if was_continued || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        out.push(match words[..] {
            [
                "kill" | "console" | "reload" | "respawn" | "normal",
                second,
                ..,
            ] => {
                format!("{} {second}", words[0])
            }
            _ => words[0].to_string(),
        });
    }
    out
}

/// Each job uses only what its Upstart has: the 0.6 job nothing from after 0.6, the 1.4 job
/// nothing from after 1.4 (and it does need 1.4: an older Upstart refuses it). That an Upstart
/// refuses a job with a stanza it does not know is checked here against 1.13 itself (same
/// parser since 0.6: nih_config, "Unknown stanza"); what 0.6 itself does cannot be run here.
#[test]
fn each_job_uses_only_stanzas_its_upstart_knows() {
    let newest = |job: &str| {
        stanzas(job)
            .iter()
            .filter_map(|s| STANZA_SINCE.iter().find(|(n, _)| n == s).map(|&(_, v)| v))
            .max()
            .unwrap_or((0, 6))
    };
    assert_eq!(newest(JOB_06), (0, 6), "{:?}", stanzas(JOB_06));
    assert_eq!(newest(JOB_14), (1, 4), "{:?}", stanzas(JOB_14));
    for job in [JOB_06, JOB_14] {
        let s = stanzas(job);
        for want in [
            "expect",
            "respawn",
            "respawn limit",
            "normal exit",
            "kill timeout",
            "exec",
        ] {
            assert!(s.iter().any(|x| x == want), "no {want} in {s:?}");
        }
    }

    let Some(up) = Upstart::start("stanzas", None) else {
        return;
    };
    up.job("unknown-stanza", "frobnicate yes\nexec /bin/true\n");
    up.wait_kmsg("Unknown stanza", TIMEOUT);
    let out = up
        .harness(&["ctl", "status", "unknown-stanza"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a job with an unknown stanza was loaded"
    );
    // Both shipped jobs load (the file is read on install; an error would be logged).
    up.job(JOB, JOB_06);
    up.job("legacy-app-14", JOB_14);
    for j in [JOB, "legacy-app-14"] {
        assert!(up.status(j).is("stop/waiting"));
    }
    // Every error Upstart logged is about the unknown stanza (each reload re-reads that file).
    let errors = up.kmsg_lines("<3>");
    assert!(
        errors
            .iter()
            .all(|l| l.contains("unknown-stanza.conf:1: Unknown stanza")),
        "{errors:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Upstart and sigshim: the deadline and the exec line

/// Without --kill-after, sigshim's deadline under Upstart is 4 s: an app that ignores the stop is
/// SIGKILLed by sigshim before Upstart's own default `kill timeout` (5 s, the job sets none).
#[test]
fn default_deadline_beats_the_default_kill_timeout() {
    let Some(up) = Upstart::start("default-deadline", None) else {
        return;
    };
    up.app(&["hang"]);
    up.job(
        "stubborn",
        "console log\nexec /usr/bin/sigshim --log inherit -- /usr/local/bin/legacy-app\n",
    );
    let st = start_job(&up, "stubborn");
    assert!(st.is("start/running"), "{st:?}");
    up.wait_console("stubborn", "grandchildren group=");
    let took = stop_job(&up, "stubborn", TIMEOUT);
    assert!(
        took >= Duration::from_millis(3800) && took < Duration::from_secs(5),
        "stop took {took:?}: sigshim's default deadline under Upstart is 4 s\n{}",
        up.context()
    );
    assert!(
        up.kmsg_lines("Sending KILL signal").is_empty(),
        "{}",
        up.context()
    );
    up.assert_nothing_left();
}

/// An exec line with shell characters runs under `/bin/sh -e -c "exec LINE"`: the shell
/// replaces itself with sigshim, so the main process is still sigshim (upstart/README.md
/// promises this for a quoted readiness pattern).
#[test]
fn exec_line_with_shell_characters_still_runs_sigshim() {
    let Some(up) = Upstart::start("shell-line", None) else {
        return;
    };
    let plan = up.app(&["legacy"]);
    let job = JOB_14.replace("--ready log:ready", "--ready 'log:^ready pid=[0-9]+'");
    assert_ne!(job, JOB_14);
    up.job(JOB, &job);
    let st = start_job(&up, JOB);
    assert!(st.is("start/running"), "{st:?}\n{}", up.context());
    check_process_tree(&up, &st, plan.wait_run(1, &up));
    stop_job(&up, JOB, TIMEOUT);
    assert_eq!(plan.marker(1), "clean\n");
    up.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// For contrast: the usual workaround, `exec app 2>&1 | logger`, under the same Upstart

/// The job sigshim replaces, with the same app: Upstart runs a shell (the `|`), tracks the
/// shell's PID, and stops with TERM to the whole group: the app dies of it without its cleanup,
/// and the job's outcome is the shell's.
#[test]
fn contrast_logger_pipe_tracks_the_shell_and_kills_the_app() {
    let Some(rsyslog) = Rsyslog::start("upstart-logger") else {
        return;
    };
    let Some(up) = Upstart::start("logger", Some(rsyslog.socket())) else {
        return;
    };
    let plan = up.app(&["legacy"]);
    up.job(
        JOB,
        "exec /usr/local/bin/legacy-app 2>&1 | logger -t legacy-app\n",
    );
    let st = start_job(&up, JOB);
    let inner = plan.wait_run(1, &up);
    let main = up.host_pid(st.main());
    let app = up.host_pid(inner);
    assert_ne!(main, app, "Upstart tracks the app itself");
    assert_eq!(comm(main), "sh", "Upstart's main process");
    assert_eq!(stat(app).1, main, "the app is the shell's child");
    rsyslog.wait_records(TIMEOUT, |r| {
        r.iter().any(|r| r.msg_lossy().contains("ready pid="))
    });
    stop_job(&up, JOB, TIMEOUT);
    assert_eq!(plan.marker(1), "", "the app cleaned up");
    assert_eq!(
        up.kmsg_lines(&format!(
            "main process ({}) killed by TERM signal",
            st.main()
        ))
        .len(),
        1,
        "{}",
        up.context()
    );
    rsyslog.barrier();
    let msgs: Vec<String> = rsyslog
        .records()
        .iter()
        .filter(|r| r.programname == JOB)
        .map(|r| r.msg_lossy())
        .collect();
    assert!(!msgs.iter().any(|m| m.contains("cleanup")), "{msgs:?}");
    up.assert_nothing_left();
}

/// The same pipe with `kill signal INT` (1.3+), the fix people try next: the app now gets the
/// signal it traps, but logger got the same INT at the same moment, so the cleanup lines never
/// reach syslog; the app's cleanup either writes into a pipe nobody reads any more or dies of
/// SIGPIPE on its first line (then it never finishes: the marker stays empty).
#[test]
fn contrast_logger_pipe_loses_the_cleanup_lines() {
    let Some(rsyslog) = Rsyslog::start("upstart-logger-int") else {
        return;
    };
    let Some(up) = Upstart::start("logger-int", Some(rsyslog.socket())) else {
        return;
    };
    let plan = up.app(&["legacy"]);
    up.job(
        JOB,
        "kill signal INT\nexec /usr/local/bin/legacy-app 2>&1 | logger -t legacy-app\n",
    );
    start_job(&up, JOB);
    plan.wait_run(1, &up);
    rsyslog.wait_records(TIMEOUT, |r| {
        r.iter().any(|r| r.msg_lossy().contains("ready pid="))
    });
    stop_job(&up, JOB, TIMEOUT);
    assert_eq!(
        up.kmsg_lines("Sending INT signal to legacy-app main process")
            .len(),
        1,
        "{}",
        up.context()
    );
    rsyslog.barrier();
    let msgs: Vec<String> = rsyslog
        .records()
        .iter()
        .filter(|r| r.programname == JOB)
        .map(|r| r.msg_lossy())
        .collect();
    assert!(msgs.iter().any(|m| m.contains("ready pid=")), "{msgs:?}");
    assert!(
        !msgs
            .iter()
            .any(|m| m.contains("cleanup") || m.contains("clean-exit")),
        "the cleanup lines arrived after all: {msgs:?}"
    );
    eprintln!(
        "logger pipe with kill signal INT: the app's cleanup {}",
        if plan.marker(1).is_empty() {
            "died on its first line (SIGPIPE)"
        } else {
            "ran, its lines lost"
        }
    );
    up.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// sigshim alone: the readiness `expect stop` relies on

/// Gives the command a pipe as descriptor `fd`; returns the read end and the write end, which
/// the caller drops once the command is spawned (so that EOF comes when the command closes it).
fn notify_pipe(cmd: &mut Command, fd: i32) -> (File, OwnedFd) {
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
    (r, w)
}

/// An app that prints its ready line and exits at once: sigshim may see the exit before the
/// line. Made certain here: sigshim is frozen (SIGSTOP from outside) while the app prints and
/// exits, then continued, so the SIGCHLD and the line wait for it together. The line still
/// counts: --notify-fd gets its newline (and under Upstart, the SIGSTOP is raised as ready).
#[test]
fn ready_line_counts_when_the_exit_is_seen_first() {
    let dir = Scratch::new("ready-then-exit");
    let gate = dir.path("gate");
    let c = CString::new(gate.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let app = format!("read go < {}; echo ready; exit 3", gate.display());
    let mut cmd = Command::new(sigshim());
    cmd.args([
        "--ready",
        "log:ready",
        "--notify-fd",
        "3",
        "--log",
        "inherit",
    ])
    .args(["--", "sh", "-c", &app]);
    let (mut notified, write_end) = notify_pipe(&mut cmd, 3);
    let mut run = Run::start(cmd);
    drop(write_end);
    let shim = run.pid();
    let child = eventually_value(TIMEOUT, || children_of(shim).first().copied().ok_or(()))
        .expect("sigshim started no app");
    kill(shim, libc::SIGSTOP);
    assert!(
        eventually(TIMEOUT, || stat(shim).0 == 'T'),
        "sigshim not stopped"
    );
    let mut w = eventually_value(TIMEOUT, || {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&gate)
    })
    .expect("the app never read its gate");
    w.write_all(b"go\n").unwrap();
    drop(w);
    assert!(
        eventually(TIMEOUT, || is_zombie(child)),
        "the app did not exit while sigshim was frozen"
    );
    kill(shim, libc::SIGCONT);
    run.expect("ready");
    assert_eq!(run.wait().code(), Some(3), "{}", run.stderr());
    let mut got = Vec::new();
    notified.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"\n", "readiness was dropped\n{}", run.stderr());
    run.assert_nothing_left();
}
