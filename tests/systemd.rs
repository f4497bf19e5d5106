//! The unit files in `systemd/` under a real systemd: systemd 252 as PID 1 of a throw-away
//! systemd-nspawn container (tests/harness/systemd-nspawn.sh), one container per test (boot
//! takes about half a second), so the tests run in parallel and never share a unit or a journal.
//!
//! The release binaries (`cargo build --release --bins`, which .ci/run does first) are bound
//! read-only at /opt/sigshim/bin; /usr/bin/sigshim is a symlink to the one there. So the shipped
//! unit files are installed byte for byte, without even a path substituted: `/usr/bin/sigshim`
//! and `/usr/local/bin/NAME` exist inside. The apps are small scripts that exec the probe
//! (tests/support/probe.rs), so the PID sigshim starts is the probe's. What the tests add is
//! observation only, in drop-ins: an `ExecStopPost=` that records `$SERVICE_RESULT $EXIT_CODE
//! $EXIT_STATUS`, and the changes a test is about (KillMode=control-group, a short
//! TimeoutStopSec).
//!
//! Every check reads real state inside the container: `systemctl show`, `journalctl -o json`,
//! files under /run, /proc. Waiting is bounded polling of that state ([`Container::until`]),
//! never a sleep; readiness is made observable with a gate (a FIFO the app script reads before
//! it execs the probe), so "start has not returned yet" is a state the test holds, not a timing.

mod support;

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

const NSPAWN_SH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/harness/systemd-nspawn.sh"
);
const TRIXIE_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/trixie-root.sh");
const LEGACY_UNIT: &str = include_str!("../systemd/legacy-app.service");
const TEMPLATE_UNIT: &str = include_str!("../systemd/sigshim@.service");

/// Where the release directory appears inside the container.
const BIN: &str = "/opt/sigshim/bin";
/// The legacy app's clean-stop marker (the probe writes "clean\n" there during its cleanup).
const MARKER: &str = "/run/legacy-app.clean";
/// If this FIFO exists when the app script starts, the script prints `waiting for gate` and
/// reads one line from it before it execs the probe: the app is not ready until the test says.
const GATE: &str = "/run/legacy-app.gate";

/// The legacy app: one line on stderr (for the priority check), the optional gate, then the
/// probe in `legacy` mode (exec: same PID), which traps only SIGINT and reloads on USR2.
const LEGACY_APP: &str = r#"#!/bin/sh
echo "starting (stderr)" >&2
if [ -p /run/legacy-app.gate ]; then
    echo "waiting for gate"
    read _ < /run/legacy-app.gate
fi
exec /opt/sigshim/bin/sigshim-probe legacy /run/legacy-app.clean
"#;

/// An app that never stops by itself: ignores TERM and INT, and so do the two grandchildren it
/// starts (one in its process group, one in a session of its own).
const HANG_APP: &str = "#!/bin/sh\nexec /opt/sigshim/bin/sigshim-probe ignore-stop\n";

/// Observation only: what systemd tells ExecStopPost= about the main process, one line per stop
/// in /run/stoppost-UNIT. `$$` is systemd's escape for a literal `$` (the shell expands them).
const OBSERVE_DROPIN: &str = "[Service]\n\
ExecStopPost=/bin/sh -c 'echo \"$$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS\" >> /run/stoppost-%n'\n";

// ---------------------------------------------------------------------------------------------
// The container

/// One running container, stopped (and its state directory removed) on drop. A failing test
/// keeps the state directory, with the container's whole journal saved in it.
struct Container {
    state: PathBuf,
    name: String,
    /// The host directory bound read-only at [`BIN`].
    release: PathBuf,
    /// The OS tree under the container's overlay: the host's / when `None`.
    root: Option<PathBuf>,
}

impl Container {
    /// Boots a container for test `short` (a few letters: it becomes the hostname). `None`
    /// when not root (skipped loudly; a failure under CI=true).
    fn boot(short: &str) -> Option<Container> {
        Container::boot_on(short, None)
    }

    /// Boots systemd 257 from the Debian 13 tree ([`trixie_root`]) for what systemd 252 lacks.
    fn boot_newer(short: &str) -> Option<Container> {
        if !require_root(&format!("systemd 257 test ({short})")) {
            return None;
        }
        let root = trixie_root(short)?;
        Container::boot_on(short, Some(root))
    }

    fn boot_on(short: &str, root: Option<PathBuf>) -> Option<Container> {
        if !require_root(&format!("systemd test ({short})")) {
            return None;
        }
        let c = Container {
            release: release_dir(),
            state: temp_dir(&format!("nspawn-{short}")),
            name: format!("sigshim-{short}-{}", std::process::id()),
            root,
        };
        let t0 = Instant::now();
        let out = c.script(&["start"], None);
        if !out.status.success() {
            panic!(
                "{NSPAWN_SH} start failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        eprintln!(
            "{}: booted in {:.2?} ({})",
            c.name,
            t0.elapsed(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
        Some(c)
    }

    /// `systemd-nspawn.sh ARGS...` for this container.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(NSPAWN_SH)
            .args(args)
            .env("SIGSHIM_NSPAWN_STATE", &self.state)
            .env("SIGSHIM_NSPAWN_NAME", &self.name)
            .env(
                "SIGSHIM_NSPAWN_BIND_RO",
                format!("{}:{BIN}", self.release.display()),
            );
        if let Some(root) = &self.root {
            cmd.env("SIGSHIM_NSPAWN_ROOT", root);
        }
        cmd
    }

    fn script(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        output_within(&mut self.command(args), stdin, HARNESS_TIMEOUT)
    }

    /// A command inside the container, whatever its outcome.
    fn try_exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        self.script(&a, None)
    }

    /// A command inside the container that must succeed; its stdout.
    fn exec(&self, args: &[&str]) -> String {
        let out = self.try_exec(args);
        if !out.status.success() {
            panic!(
                "in {}: {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sh -c SCRIPT` inside the container; must succeed.
    fn sh(&self, script: &str) -> String {
        self.exec(&["sh", "-c", script])
    }

    /// Writes `contents` to `path` inside the container (the directory is created).
    fn write(&self, path: &str, contents: &str, mode: &str) {
        let script =
            format!("mkdir -p \"$(dirname '{path}')\" && cat > '{path}' && chmod {mode} '{path}'");
        let out = self.script(&["exec", "sh", "-c", &script], Some(contents.as_bytes()));
        assert!(
            out.status.success(),
            "writing {path} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A `systemctl` command run in the background (e.g. a `start` that blocks until the unit
    /// is ready), so the test can look at the unit meanwhile.
    fn spawn_systemctl(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(&["exec", "systemctl"]);
        cmd.args(args);
        Run::start(cmd)
    }

    /// `systemctl show -p P1,P2,... UNIT` as a map.
    fn show(&self, unit: &str, props: &[&str]) -> BTreeMap<String, String> {
        let out = self.exec(&["systemctl", "show", "-p", &props.join(","), unit]);
        out.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn prop(&self, unit: &str, prop: &str) -> String {
        self.show(unit, &[prop]).remove(prop).unwrap_or_default()
    }

    /// Every journal entry about or from `unit` (`journalctl -u`: the unit's processes, and
    /// systemd's messages about it), all fields.
    fn journal(&self, unit: &str) -> Vec<Entry> {
        self.exec(&[
            "journalctl",
            "-u",
            unit,
            "-o",
            "json",
            "--all",
            "--no-pager",
        ])
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("journalctl printed bad JSON ({e}): {l}"))
        })
        .collect()
    }

    /// Polls `check` (every 50 ms, each poll runs commands in the container) until it returns
    /// `Some`, for at most `timeout`; panics naming `what` and the unit's journal otherwise.
    fn until<T>(
        &self,
        what: &str,
        unit: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let end = Instant::now() + timeout;
        loop {
            if let Some(v) = check() {
                return v;
            }
            if Instant::now() > end {
                panic!("{what}: not within {timeout:?}\n{}", self.describe(unit));
            }
            std::thread::sleep(Duration::from_millis(50)); // polling interval of a bounded wait
        }
    }

    /// Waits until the unit's journal holds an entry for which `pred` holds; returns it.
    fn journal_entry(&self, unit: &str, what: &str, pred: impl Fn(&Entry) -> bool) -> Entry {
        self.until(what, unit, TIMEOUT, || {
            self.journal(unit).into_iter().find(|e| pred(e))
        })
    }

    /// The first app record of `unit` with identifier `id` whose message starts with `prefix`.
    fn app_line(&self, unit: &str, id: &str, prefix: &str) -> Entry {
        self.journal_entry(
            unit,
            &format!("a {id} record starting with {prefix:?}"),
            |e| text(e, "SYSLOG_IDENTIFIER") == id && text(e, "MESSAGE").starts_with(prefix),
        )
    }

    /// State and journal of a unit, for failure messages.
    fn describe(&self, unit: &str) -> String {
        let status = self.try_exec(&["systemctl", "status", "--no-pager", "-l", "-n", "0", unit]);
        let journal = self.try_exec(&[
            "journalctl",
            "-u",
            unit,
            "--no-pager",
            "-o",
            "short-precise",
        ]);
        format!(
            "--- systemctl status {unit}:\n{}\n--- journalctl -u {unit}:\n{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&journal.stdout)
        )
    }

    /// Lines ExecStopPost= recorded for `unit`: "$SERVICE_RESULT $EXIT_CODE $EXIT_STATUS".
    fn stoppost(&self, unit: &str) -> Vec<String> {
        self.sh(&format!("cat /run/stoppost-{unit} 2>/dev/null || true"))
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Installs the shipped units, the app scripts and the observation drop-ins.
    fn install(&self) {
        self.sh(&format!("ln -sf {BIN}/sigshim /usr/bin/sigshim"));
        self.write("/etc/systemd/system/legacy-app.service", LEGACY_UNIT, "644");
        self.write("/etc/systemd/system/sigshim@.service", TEMPLATE_UNIT, "644");
        self.write("/usr/local/bin/legacy-app", LEGACY_APP, "755");
        self.write("/usr/local/bin/hang", HANG_APP, "755");
        // What systemd itself thinks of the shipped files, before any drop-in is added.
        let verify = self.try_exec(&[
            "systemd-analyze",
            "verify",
            "/etc/systemd/system/legacy-app.service",
            "/etc/systemd/system/sigshim@legacy-app.service",
        ]);
        assert!(
            verify.status.success() && verify.stderr.is_empty(),
            "systemd-analyze verify complains about the unit files:\n{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        for unit in ["legacy-app.service", "sigshim@.service"] {
            self.write(
                &format!("/etc/systemd/system/{unit}.d/50-test-observe.conf"),
                OBSERVE_DROPIN,
                "644",
            );
        }
        self.exec(&["systemctl", "daemon-reload"]);
    }

    /// Adds a drop-in to `unit` and reloads systemd.
    fn drop_in(&self, unit: &str, name: &str, contents: &str) {
        self.write(
            &format!("/etc/systemd/system/{unit}.d/{name}.conf"),
            contents,
            "644",
        );
        self.exec(&["systemctl", "daemon-reload"]);
    }

    /// `systemctl start UNIT`, which must succeed; the unit's journal in the panic otherwise
    /// (the usual cause: a sigshim that does not know an option of the unit file yet).
    fn start(&self, unit: &str) {
        let out = self.try_exec(&["systemctl", "start", unit]);
        if !out.status.success() {
            panic!(
                "systemctl start {unit} failed ({}): {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.describe(unit)
            );
        }
    }

    /// `systemctl stop UNIT` and how long it took.
    fn stop(&self, unit: &str) -> Duration {
        let t0 = Instant::now();
        let out = self.try_exec(&["systemctl", "stop", unit]);
        let took = t0.elapsed();
        assert!(
            out.status.success(),
            "systemctl stop {unit} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.describe(unit)
        );
        took
    }

    /// The unit's main PID (sigshim), checked to be a running sigshim.
    fn main_pid(&self, unit: &str) -> i32 {
        let pid: i32 = self.prop(unit, "MainPID").parse().expect("MainPID");
        assert!(pid > 0, "{unit} has no main PID\n{}", self.describe(unit));
        let comm = self.sh(&format!("cat /proc/{pid}/comm"));
        assert_eq!(
            comm.trim(),
            "sigshim",
            "MainPID {pid} of {unit} is not sigshim"
        );
        pid
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            // The overlay vanishes with the container: keep its journal for a look.
            let j = self.try_exec(&["journalctl", "--no-pager", "-o", "short-precise"]);
            let path = self.state.join("journal.txt");
            let _ = std::fs::write(&path, &j.stdout);
            eprintln!("container journal saved in {}", path.display());
        }
        // Never panic in drop (a second panic aborts and hides the first): report instead.
        let out = self.script(&["stop"], None);
        if !out.status.success() {
            eprintln!(
                "{NSPAWN_SH} stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if failed {
            eprintln!("container state kept in {}", self.state.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

/// The Debian 13 tree (systemd 257) that tests/harness/trixie-root.sh builds once and caches
/// (.ci/run builds it before the tests). `None` when it cannot be had: skipped loudly, a
/// failure under CI=true.
fn trixie_root(short: &str) -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(TRIXIE_SH)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {TRIXIE_SH}: {e}"));
    let printed = String::from_utf8_lossy(&out.stdout);
    match printed.lines().last() {
        Some(dir) if out.status.success() => Some(PathBuf::from(dir.trim())),
        _ => {
            let why = format!(
                "systemd 257 test ({short}): {TRIXIE_SH} could not provide the Debian 13 tree ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// The release binaries the container runs: next to the test's own build (`target/release`
/// beside `target/debug`, whatever CARGO_TARGET_DIR says). Panics if they are not built.
fn release_dir() -> PathBuf {
    let exe = Path::new(sigshim());
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("release");
    for bin in ["sigshim", "sigshim-probe"] {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: the systemd tests run the release binaries; build them with \
             `cargo build --release --bins` (.ci/run does) and run the tests again",
            dir.join(bin).display()
        );
    }
    dir
}

// ---------------------------------------------------------------------------------------------
// Journal entries

type Entry = Map<String, Value>;

/// A field as text ("" when absent; journalctl prints non-UTF-8 values as byte arrays, which
/// none of these fields are).
fn text(e: &Entry, field: &str) -> String {
    match e.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(b)) => String::from_utf8_lossy(
            &b.iter()
                .filter_map(|v| v.as_u64().map(|n| n as u8))
                .collect::<Vec<u8>>(),
        )
        .into_owned(),
        _ => String::new(),
    }
}

fn num(e: &Entry, field: &str) -> i64 {
    text(e, field)
        .parse()
        .unwrap_or_else(|_| panic!("{field} is not a number in {e:?}"))
}

/// Entries from systemd (PID 1) itself whose message contains `needle`.
fn from_systemd<'a>(journal: &'a [Entry], needle: &'a str) -> impl Iterator<Item = &'a Entry> {
    journal
        .iter()
        .filter(move |e| text(e, "_PID") == "1" && text(e, "MESSAGE").contains(needle))
}

/// Blocks until the app script is waiting on the gate, checks that the start job is still
/// running (the unit `activating`, `systemctl start` not returned), opens the gate and returns
/// once `systemctl start` has returned successfully.
fn start_through_gate(c: &Container, unit: &str, id: &str) {
    c.sh(&format!("rm -f {GATE} && mkfifo {GATE}"));
    let mut start = c.spawn_systemctl(&["start", unit]);
    c.app_line(unit, id, "waiting for gate");
    let state = c.show(unit, &["ActiveState", "SubState"]);
    assert_eq!(
        (state["ActiveState"].as_str(), state["SubState"].as_str()),
        ("activating", "start"),
        "the app is not ready yet (it waits on the gate), so {unit} must still be starting\n{}",
        c.describe(unit)
    );
    assert!(
        start.child.try_wait().expect("try_wait").is_none(),
        "systemctl start {unit} returned before the app was ready\n{}",
        c.describe(unit)
    );
    // Bounded: if the app script is gone, nothing would ever open the FIFO for reading.
    c.sh(&format!("timeout 15 sh -c 'echo go > {GATE}'"));
    let st = start.wait_for(TIMEOUT);
    assert!(
        st.success(),
        "systemctl start {unit}: {st}\n{}\n{}",
        start.stderr(),
        c.describe(unit)
    );
    c.sh(&format!("rm -f {GATE}"));
}

/// The app's PID from its `ready pid=N` line in the journal.
fn app_pid(c: &Container, unit: &str, id: &str) -> i32 {
    field(&text(&c.app_line(unit, id, "ready pid="), "MESSAGE"), "pid")
}

// ---------------------------------------------------------------------------------------------
// a. Readiness

/// `--ready log:^ready`: `systemctl start` blocks while the app has not printed its ready line
/// and returns once it has; the unit is then active with sigshim as its main PID, and the app
/// did not inherit systemd's NOTIFY_SOCKET (only `--ready notify` hands it a socket).
#[test]
fn start_returns_once_the_app_printed_ready() {
    let Some(c) = Container::boot("ready-log") else {
        return;
    };
    c.install();
    let unit = "legacy-app.service";
    start_through_gate(&c, unit, "legacy-app");
    let state = c.show(unit, &["ActiveState", "SubState", "StatusText"]);
    assert_eq!(state["ActiveState"], "active", "{}", c.describe(unit));
    assert_eq!(state["SubState"], "running");
    assert!(
        !state["StatusText"].is_empty(),
        "sigshim sent no STATUS= (systemctl status shows it)"
    );
    c.main_pid(unit);
    let pid = app_pid(&c, unit, "legacy-app");
    let environ = c.sh(&format!("tr '\\0' '\\n' < /proc/{pid}/environ"));
    assert!(
        !environ.lines().any(|l| l.starts_with("NOTIFY_SOCKET=")),
        "the app got a NOTIFY_SOCKET under --ready log: (it must be removed):\n{environ}"
    );
}

/// The legacy app as an instance of the template unit with `--ready notify`; the probe sends
/// `READY=1`, `STATUS=probe serving` and its own `MAINPID=` (PROBE_NOTIFY=1: every variable of
/// the environment file reaches the app too).
fn notify_instance(c: &Container) -> &'static str {
    c.write(
        "/etc/sigshim/legacy-app.env",
        "SIGSHIM_STOP_SIGNAL=INT\nSIGSHIM_READY=notify\nSIGSHIM_OPTS=--rewrite HUP:USR2\nPROBE_NOTIFY=1\n",
        "644",
    );
    "sigshim@legacy-app.service"
}

/// `--ready notify` through the template unit, under the default `NotifyAccess=main`: the app
/// sends READY=1 (with its own MAINPID=) to the socket sigshim gave it, sigshim relays it from
/// its own PID, and systemd accepts it. Without the relay systemd would refuse the app's
/// message ("reception only permitted for main PID") and the start would time out.
#[test]
fn start_returns_once_the_app_sent_ready_through_sigshim() {
    let Some(c) = Container::boot("ready-notify") else {
        return;
    };
    c.install();
    let unit = notify_instance(&c);
    assert_eq!(c.prop(unit, "NotifyAccess"), "main");
    start_through_gate(&c, unit, "legacy-app");
    let state = c.show(unit, &["ActiveState", "SubState", "StatusText"]);
    assert_eq!(state["ActiveState"], "active", "{}", c.describe(unit));
    let main = c.main_pid(unit);
    let sent = c.app_line(unit, "legacy-app", "sent READY=1 to ");
    let socket = text(&sent, "MESSAGE")["sent READY=1 to ".len()..].to_string();
    assert_ne!(
        socket, "/run/systemd/notify",
        "the app was handed systemd's own socket, not sigshim's relay"
    );
    let pid = num(&sent, "_PID");
    assert_ne!(
        pid, main as i64,
        "the probe is sigshim's child, not sigshim"
    );
    // The app's MAINPID= was not passed on: sigshim stays the main PID.
    assert_eq!(c.prop(unit, "MainPID"), main.to_string());
    let journal = c.journal(unit);
    let refused: Vec<String> = from_systemd(&journal, "notification message")
        .map(|e| text(e, "MESSAGE"))
        .collect();
    assert!(
        refused.is_empty(),
        "systemd refused notifications: {refused:?}"
    );
    // Stop still works through the template (INT to the app, clean exit).
    c.stop(unit);
    assert_eq!(c.prop(unit, "Result"), "success", "{}", c.describe(unit));
}

/// Under `--ready notify` the app's own `STATUS=` is relayed and is what systemd shows once the
/// unit is ready (`systemctl status` → Status: "probe serving"): sigshim's own STATUS= must not
/// replace what the app said about itself.
#[test]
fn notify_mode_shows_the_apps_own_status() {
    let Some(c) = Container::boot("status") else {
        return;
    };
    c.install();
    let unit = notify_instance(&c);
    c.start(unit);
    c.app_line(unit, "legacy-app", "sent READY=1 to ");
    assert_eq!(
        c.prop(unit, "StatusText"),
        "probe serving",
        "the app's STATUS= (sent with its READY=1) is not what systemd shows\n{}",
        c.describe(unit)
    );
}

// ---------------------------------------------------------------------------------------------
// b. Reload

/// `systemctl reload` (ExecReload= sends HUP to sigshim) reaches the app as USR2, the signal it
/// reloads on, each time; the app keeps running under the same main PID.
#[test]
fn reload_reaches_the_app_as_usr2() {
    let Some(c) = Container::boot("reload") else {
        return;
    };
    c.install();
    let unit = "legacy-app.service";
    c.start(unit);
    let main = c.main_pid(unit);
    let pid = app_pid(&c, unit, "legacy-app");
    for n in 1..=2 {
        c.exec(&["systemctl", "reload", unit]);
        c.until(
            &format!("reload #{n} in the journal"),
            unit,
            TIMEOUT,
            || {
                let lines: Vec<Entry> = c
                    .journal(unit)
                    .into_iter()
                    .filter(|e| {
                        text(e, "SYSLOG_IDENTIFIER") == "legacy-app"
                            && text(e, "MESSAGE") == "reload"
                    })
                    .collect();
                (lines.len() >= n).then(|| {
                    assert!(lines.iter().all(|e| num(e, "_PID") == pid as i64));
                })
            },
        );
    }
    let state = c.show(unit, &["ActiveState", "MainPID"]);
    assert_eq!(state["ActiveState"], "active", "{}", c.describe(unit));
    assert_eq!(state["MainPID"], main.to_string());
}

// ---------------------------------------------------------------------------------------------
// c. Stop

/// `systemctl stop` makes the legacy app (which traps only SIGINT) run its cleanup: the marker
/// says "clean", `cleanup` and `clean-exit` are in the journal in that order, the unit ends
/// `Result=success` with the main process exited 0, and ExecStopPost= saw the same. systemd had
/// nothing left to SIGKILL.
#[test]
fn stop_runs_the_apps_cleanup_and_ends_clean() {
    let Some(c) = Container::boot("stop") else {
        return;
    };
    c.install();
    let unit = "legacy-app.service";
    c.start(unit);
    app_pid(&c, unit, "legacy-app");
    let took = c.stop(unit);
    eprintln!("systemctl stop {unit} took {took:.2?}");
    assert_eq!(
        c.sh(&format!("cat {MARKER}")),
        "clean\n",
        "{}",
        c.describe(unit)
    );
    // ExecMainCode/ExecMainStatus cannot tell: a unit that stopped cleanly and is referenced
    // by nothing is unloaded at once, and `systemctl show` then reads a fresh copy (both 0).
    // ExecStopPost= is where systemd says how the main process ended.
    let state = c.show(unit, &["ActiveState", "Result"]);
    assert_eq!(state["ActiveState"], "inactive", "{}", c.describe(unit));
    assert_eq!(state["Result"], "success");
    assert_eq!(c.stoppost(unit), ["success exited 0"]);
    let journal = c.journal(unit);
    let app: Vec<String> = journal
        .iter()
        .filter(|e| text(e, "SYSLOG_IDENTIFIER") == "legacy-app")
        .map(|e| text(e, "MESSAGE"))
        .collect();
    let at = |m: &str| app.iter().position(|l| l == m);
    assert!(
        matches!((at("cleanup"), at("clean-exit")), (Some(a), Some(b)) if a < b),
        "no cleanup then clean-exit in the app's records: {app:?}"
    );
    let killed: Vec<String> = from_systemd(&journal, "Killing process")
        .map(|e| text(e, "MESSAGE"))
        .collect();
    assert!(
        killed.is_empty(),
        "systemd had to kill processes: {killed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// d. Journal identity

/// The app's lines are in the journal under the app's identifier with the app's PID as journald
/// records it (`_PID`, `_COMM`, `_EXE`: sigshim, root here, sends them over journald's stdout
/// stream with the app's credentials), so `journalctl _COMM=...` and `journalctl
/// /path/to/app` find them; stdout at priority 6 and stderr at 3 with the facility, attributed
/// to the unit; none came through systemd's stream of sigshim's own stdout/stderr (sigshim did
/// not fall back to its stderr: such a copy would carry sigshim's PID). sigshim's own account
/// of the stop (the unit passes -v) is there under `sigshim` with sigshim's PID.
#[test]
fn journal_has_the_apps_lines_under_its_identity() {
    let Some(c) = Container::boot("journal") else {
        return;
    };
    c.install();
    let unit = "legacy-app.service";
    c.start(unit);
    let main = c.main_pid(unit) as i64;
    let pid = app_pid(&c, unit, "legacy-app") as i64;
    c.stop(unit);
    let ready = c.app_line(unit, "legacy-app", "ready pid=");
    let stderr = c.app_line(unit, "legacy-app", "starting (stderr)");
    c.app_line(unit, "legacy-app", "clean-exit");
    for (e, prio) in [(&ready, 6), (&stderr, 3)] {
        assert_eq!(num(e, "PRIORITY"), prio, "{e:?}");
        assert_eq!(num(e, "SYSLOG_FACILITY"), 3, "{e:?}");
        assert_eq!(num(e, "_PID"), pid, "{e:?}");
        assert_eq!(text(e, "_SYSTEMD_UNIT"), unit, "{e:?}");
    }
    // The app is the script, then the probe it exec'd, under one PID; journald names it by
    // either (it keeps what it read about a PID for a second, so the name can lag the exec).
    for e in [&ready, &stderr] {
        let comm = text(e, "_COMM");
        assert!(
            comm == "legacy-app" || comm == "sigshim-probe",
            "_COMM={comm}: not the app's name\n{e:?}"
        );
    }
    let by_pid = c.exec(&[
        "journalctl",
        &format!("_PID={pid}"),
        "-o",
        "cat",
        "--no-pager",
    ]);
    assert!(
        by_pid.lines().any(|l| l.starts_with("ready pid=")),
        "journalctl _PID={pid} does not find the app's lines:\n{by_pid}"
    );
    let journal = c.journal(unit);
    for e in journal
        .iter()
        .filter(|e| text(e, "SYSLOG_IDENTIFIER") == "legacy-app")
    {
        assert_eq!(num(e, "_PID"), pid, "{e:?}");
        assert_eq!(text(e, "_TRANSPORT"), "stdout", "{e:?}");
    }
    let app_lines = ["ready pid=", "starting (stderr)", "clean-exit"];
    let copied: Vec<String> = journal
        .iter()
        .filter(|e| text(e, "_PID") == main.to_string())
        .map(|e| text(e, "MESSAGE"))
        .filter(|m| app_lines.iter().any(|l| m.contains(l)))
        .collect();
    assert!(
        copied.is_empty(),
        "lines reached the journal through sigshim's stdout/stderr instead: {copied:?}"
    );
    let own = c.journal_entry(unit, "sigshim's own record of the stop", |e| {
        let m = text(e, "MESSAGE");
        text(e, "SYSLOG_IDENTIFIER") == "sigshim"
            && m.contains("SIGTERM received")
            && m.contains("SIGINT")
    });
    assert_eq!(num(&own, "SYSLOG_PID"), main, "{own:?}");
    assert_eq!(text(&own, "_SYSTEMD_UNIT"), unit, "{own:?}");
}

// ---------------------------------------------------------------------------------------------
// e. KillMode=control-group

/// Under KillMode=control-group systemd sends SIGTERM to every process of the unit, the app
/// included. The app (which dies of a raw TERM) starts with TERM ignored (sigshim's
/// direct-delivery guard: SigIgn shows it), so it still gets sigshim's INT and cleans up.
#[test]
fn control_group_kill_mode_still_cleans_up() {
    let Some(c) = Container::boot("cgroup") else {
        return;
    };
    c.install();
    let unit = "legacy-app.service";
    c.drop_in(
        unit,
        "60-test-killmode",
        "[Service]\nKillMode=control-group\n",
    );
    assert_eq!(c.prop(unit, "KillMode"), "control-group");
    c.start(unit);
    let pid = app_pid(&c, unit, "legacy-app");
    let sigign = c.sh(&format!(
        "sed -n 's/^SigIgn:[[:space:]]*//p' /proc/{pid}/status"
    ));
    let mask = u64::from_str_radix(sigign.trim(), 16).expect("SigIgn");
    assert_ne!(
        mask & (1 << (libc::SIGTERM - 1)),
        0,
        "the app does not ignore SIGTERM (SigIgn {sigign}): a raw TERM would kill it"
    );
    c.stop(unit);
    assert_eq!(
        c.sh(&format!("cat {MARKER}")),
        "clean\n",
        "{}",
        c.describe(unit)
    );
    assert_eq!(c.prop(unit, "Result"), "success", "{}", c.describe(unit));
    assert_eq!(c.stoppost(unit), ["success exited 0"]);
    c.app_line(unit, "legacy-app", "clean-exit");
}

// ---------------------------------------------------------------------------------------------
// f. Kill deadline

/// Starts `sigshim@hang` (an app that ignores every stop, with grandchildren that do too) with
/// a 2 s deadline; returns the main PID and the app's PIDs.
fn start_hang(c: &Container) -> (i32, Vec<i32>) {
    // The regex has a space: ${SIGSHIM_READY} keeps it one argument.
    c.write(
        "/etc/sigshim/hang.env",
        "SIGSHIM_STOP_SIGNAL=INT\nSIGSHIM_KILL_AFTER=2s\nSIGSHIM_READY=log:^ready pid=\n",
        "644",
    );
    let unit = "sigshim@hang.service";
    c.start(unit);
    let main = c.main_pid(unit);
    let app = app_pid(c, unit, "hang");
    let gc = text(&c.app_line(unit, "hang", "grandchildren "), "MESSAGE");
    (main, vec![app, field(&gc, "group"), field(&gc, "setsid")])
}

/// Asserts the record of a stop decided by sigshim's deadline: the main process (sigshim) died
/// of SIGKILL like the app, so systemd reports Result=signal, code=killed, status=9, the unit is
/// failed; sigshim said why under its own identifier; systemd's own stop timeout never fired;
/// every process of the app is gone.
fn assert_killed_by_deadline(c: &Container, unit: &str, main: i32, pids: &[i32], took: Duration) {
    eprintln!("systemctl stop {unit} took {took:.2?}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "stop took {took:?}: sigshim's 2 s deadline should decide it\n{}",
        c.describe(unit)
    );
    let state = c.show(
        unit,
        &["ActiveState", "Result", "ExecMainCode", "ExecMainStatus"],
    );
    assert_eq!(state["Result"], "signal", "{}", c.describe(unit));
    assert_eq!(state["ExecMainCode"], "2", "CLD_KILLED");
    assert_eq!(state["ExecMainStatus"], "9", "SIGKILL");
    assert_eq!(state["ActiveState"], "failed");
    assert_eq!(c.stoppost(unit), ["signal killed KILL"]);
    let own = c.journal_entry(unit, "sigshim's deadline record", |e| {
        text(e, "SYSLOG_IDENTIFIER") == "sigshim" && text(e, "MESSAGE").contains("kill deadline")
    });
    assert_eq!(num(&own, "SYSLOG_PID"), main as i64);
    let journal = c.journal(unit);
    let timeouts: Vec<String> = from_systemd(&journal, "timed out")
        .map(|e| text(e, "MESSAGE"))
        .collect();
    assert!(
        timeouts.is_empty(),
        "systemd's own timeout fired: {timeouts:?}"
    );
    let alive = c.sh(&format!(
        "for p in {}; do [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status && echo $p; done; true",
        pids.iter().map(i32::to_string).collect::<Vec<_>>().join(" ")
    ));
    assert!(alive.trim().is_empty(), "still running: {alive}");
}

/// An app that ignores its stop signal is SIGKILLed at sigshim's deadline (2 s), well before
/// TimeoutStopSec (30 s), and the unit reports how it ended.
#[test]
fn hung_app_is_killed_at_sigshims_deadline() {
    let Some(c) = Container::boot("deadline") else {
        return;
    };
    c.install();
    let unit = "sigshim@hang.service";
    c.drop_in(
        "sigshim@hang.service",
        "60-test-timeout",
        "[Service]\nTimeoutStopSec=30s\n",
    );
    assert_eq!(c.prop(unit, "TimeoutStopUSec"), "30s");
    let (main, pids) = start_hang(&c);
    let took = c.stop(unit);
    assert_killed_by_deadline(&c, unit, main, &pids, took);
}

/// With TimeoutStopSec (1 s) shorter than sigshim's deadline (2 s), sigshim's
/// EXTEND_TIMEOUT_USEC= (sent when the stop starts, covering deadline plus drain) keeps systemd
/// from timing out first: the deadline still decides, exactly as above.
#[test]
fn extend_timeout_lets_sigshims_deadline_decide() {
    let Some(c) = Container::boot("extend") else {
        return;
    };
    c.install();
    let unit = "sigshim@hang.service";
    c.drop_in(
        "sigshim@hang.service",
        "60-test-timeout",
        "[Service]\nTimeoutStopSec=1s\n",
    );
    let (main, pids) = start_hang(&c);
    let took = c.stop(unit);
    assert_killed_by_deadline(&c, unit, main, &pids, took);
}

// ---------------------------------------------------------------------------------------------
// g. What systemd hands the service reaches the app (issue 10)

/// The children of `pid` inside the container.
fn children(c: &Container, pid: i32) -> Vec<i32> {
    c.sh(&format!("cat /proc/{pid}/task/{pid}/children"))
        .split_whitespace()
        .map(|p| p.parse().expect("a PID"))
        .collect()
}

/// The one child of the unit's main PID (sigshim): the app.
fn the_app(c: &Container, unit: &str) -> i32 {
    let main = c.main_pid(unit);
    c.until("sigshim's child", unit, TIMEOUT, || {
        match children(c, main).as_slice() {
            [app] => Some(*app),
            _ => None,
        }
    })
}

/// `NAME=value` of process `pid`'s environment inside the container.
fn environ(c: &Container, pid: i32) -> BTreeMap<String, String> {
    c.sh(&format!("tr '\\0' '\\n' < /proc/{pid}/environ"))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// How many descriptors process `pid` has open.
fn fd_count(c: &Container, pid: i32) -> usize {
    c.sh(&format!("ls /proc/{pid}/fd | wc -l"))
        .trim()
        .parse()
        .expect("a count")
}

/// An echo server behind a socket unit: the strict side of the proxy test (it checks
/// LISTEN_PID itself, and is not under sigshim).
const ECHO_BACKEND: &str = r#"#!/usr/bin/python3
import os, socket
assert int(os.environ["LISTEN_PID"]) == os.getpid() and os.environ["LISTEN_FDS"] == "1"
server = socket.socket(fileno=3)
while True:
    conn, _ = server.accept()
    conn.sendall(b"echo " + conn.recv(4096))
    conn.close()
"#;

/// Installs the echo backend (socket-activated, /run/echo.sock, reachable by any user) and a
/// proxy in front of it, `UNIT.socket` on /run/UNIT.sock activating `UNIT.service`:
/// systemd-socket-proxyd under sigshim with `opts`. The proxy uses libsystemd's
/// sd_listen_fds(3), which takes the socket only if LISTEN_PID is its own PID; without the
/// rewrite it says "Didn't get any sockets passed in" and exits.
fn install_proxy(c: &Container, unit: &str, opts: &str) {
    c.sh(&format!("ln -sf {BIN}/sigshim /usr/bin/sigshim"));
    c.write("/usr/local/bin/echo-backend", ECHO_BACKEND, "755");
    c.write(
        "/etc/systemd/system/echo-backend.socket",
        "[Socket]\nListenStream=/run/echo.sock\nSocketMode=0666\n",
        "644",
    );
    c.write(
        "/etc/systemd/system/echo-backend.service",
        "[Service]\nExecStart=/usr/local/bin/echo-backend\n",
        "644",
    );
    c.write(
        &format!("/etc/systemd/system/{unit}.socket"),
        &format!("[Socket]\nListenStream=/run/{unit}.sock\n"),
        "644",
    );
    let proxyd = c.sh("ls /usr/lib/systemd/systemd-socket-proxyd /lib/systemd/systemd-socket-proxyd 2>/dev/null | head -n1");
    c.write(
        &format!("/etc/systemd/system/{unit}.service"),
        &format!(
            "[Service]\nExecStart=/usr/bin/sigshim --log journald {opts} -- {} /run/echo.sock\n",
            proxyd.trim()
        ),
        "644",
    );
    c.exec(&["systemctl", "daemon-reload"]);
    c.exec(&["systemctl", "start", "echo-backend.socket"]);
    c.exec(&["systemctl", "start", &format!("{unit}.socket")]);
}

/// A client's exchange through `/run/UNIT.sock`.
fn ask(c: &Container, unit: &str, what: &str) -> String {
    c.exec(&[
        "timeout",
        "10",
        "python3",
        "-c",
        &format!(
            "import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/{unit}.sock'); \
             s.sendall(b'{what}'); print(s.recv(4096).decode())"
        ),
    ])
    .trim()
    .to_string()
}

/// Checks a socket-activated proxy under sigshim: answers come back, its environment names
/// the app (LISTEN_PID is the app's PID, LISTEN_FDS=1), fd 3 is the socket in the app and is
/// still open in sigshim. Returns the app's PID.
fn check_proxy(c: &Container, unit: &str) -> i32 {
    let service = format!("{unit}.service");
    assert_eq!(
        ask(c, unit, "hello"),
        "echo hello",
        "{}",
        c.describe(&service)
    );
    assert_eq!(ask(c, unit, "again"), "echo again");
    let main = c.main_pid(&service);
    let app = the_app(c, &service);
    assert_eq!(
        c.sh(&format!("cat /proc/{app}/comm")).trim(),
        "systemd-socket-",
        "sigshim's child is not the proxy"
    );
    let env = environ(c, app);
    assert_eq!(env.get("LISTEN_PID"), Some(&app.to_string()), "{env:?}");
    assert_eq!(env.get("LISTEN_FDS").map(String::as_str), Some("1"));
    assert!(!env.contains_key("LISTEN_PIDFDID"), "{env:?}");
    // sigshim's own environment still says what systemd said: its PID.
    assert_eq!(environ(c, main).get("LISTEN_PID"), Some(&main.to_string()));
    for pid in [app, main] {
        let fd3 = c.sh(&format!("readlink /proc/{pid}/fd/3"));
        assert!(fd3.starts_with("socket:"), "fd 3 of {pid} is {fd3}");
    }
    app
}

/// A `.socket` unit activates a sigshim-wrapped systemd-socket-proxyd (libsystemd's strict
/// sd_listen_fds: LISTEN_PID must be its own PID) and a client gets its answers through it.
#[test]
fn socket_activation_reaches_a_strict_app() {
    let Some(c) = Container::boot("listen") else {
        return;
    };
    install_proxy(&c, "proxy", "");
    check_proxy(&c, "proxy");
}

/// The same with `--user nobody`: the app runs as nobody, the inherited socket still works.
#[test]
fn socket_activation_reaches_a_strict_app_as_another_user() {
    let Some(c) = Container::boot("listen-user") else {
        return;
    };
    install_proxy(&c, "proxyuser", "--user nobody");
    let app = check_proxy(&c, "proxyuser");
    let uid = c.sh(&format!("awk '/^Uid:/ {{ print $2 }}' /proc/{app}/status"));
    assert_eq!(uid.trim(), "65534", "the proxy does not run as nobody");
}

/// An app that treats the watchdog as libsystemd's sd_watchdog_enabled(3) does (enabled only
/// if WATCHDOG_PID is its own PID) and pings with WATCHDOG=1 every half period; a line per
/// ping. Without a notify socket it cannot ping at all and says so.
const WATCHDOG_APP: &str = r#"#!/usr/bin/python3
import os, socket, time
def notify(msg):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg.encode(), addr)
    s.close()
    return True
usec = int(os.environ.get("WATCHDOG_USEC", "0"))
pid = os.environ.get("WATCHDOG_PID")
enabled = usec > 0 and (pid is None or int(pid) == os.getpid())
print(f"watchdog enabled={enabled} socket={'NOTIFY_SOCKET' in os.environ}", flush=True)
notify("READY=1")
n = 0
while True:
    time.sleep(usec / 2e6 if enabled else 1)
    if enabled and notify("WATCHDOG=1"):
        n += 1
        print(f"ping {n}", flush=True)
"#;

fn install_watchdog(c: &Container, unit: &str, ready: &str) {
    c.sh(&format!("ln -sf {BIN}/sigshim /usr/bin/sigshim"));
    c.write("/usr/local/bin/wd-app", WATCHDOG_APP, "755");
    c.write(
        &format!("/etc/systemd/system/{unit}"),
        &format!(
            "[Service]\nType=notify\nWatchdogSec=2s\n\
             ExecStart=/usr/bin/sigshim --ready {ready} --log journald -- /usr/local/bin/wd-app\n"
        ),
        "644",
    );
    c.exec(&["systemctl", "daemon-reload"]);
}

/// `WatchdogSec=2s` with `--ready notify`: the app finds WATCHDOG_PID naming itself, pings
/// through sigshim's relay, and the unit stays active, same main PID, for seven pings (3.5
/// watchdog periods) without a watchdog timeout.
#[test]
fn watchdog_is_fed_through_the_relay() {
    let Some(c) = Container::boot("watchdog") else {
        return;
    };
    let unit = "wd.service";
    install_watchdog(&c, unit, "notify");
    c.start(unit);
    let main = c.main_pid(unit);
    let first = c.app_line(unit, "wd-app", "watchdog ");
    assert_eq!(
        text(&first, "MESSAGE"),
        "watchdog enabled=True socket=True",
        "the app does not see a watchdog meant for it"
    );
    c.until("the app's 7th ping", unit, Duration::from_secs(30), || {
        c.journal(unit)
            .iter()
            .any(|e| text(e, "MESSAGE") == "ping 7")
            .then_some(())
    });
    let state = c.show(unit, &["ActiveState", "MainPID", "Result"]);
    assert_eq!(state["ActiveState"], "active", "{}", c.describe(unit));
    assert_eq!(state["MainPID"], main.to_string());
    assert_eq!(state["Result"], "success");
    let journal = c.journal(unit);
    let timeouts: Vec<String> = from_systemd(&journal, "atchdog")
        .map(|e| text(e, "MESSAGE"))
        .collect();
    assert!(
        timeouts.is_empty(),
        "systemd's watchdog fired: {timeouts:?}"
    );
}

/// `WatchdogSec=` without `--ready notify`: the app has no notify socket, so nothing can feed
/// the watchdog. sigshim says so at start, naming the fix; and it is right: systemd kills the
/// service when the period ends.
#[test]
fn watchdog_without_notify_mode_is_warned_about() {
    let Some(c) = Container::boot("watchdog-warn") else {
        return;
    };
    let unit = "wdwarn.service";
    install_watchdog(&c, unit, "spawn");
    c.start(unit);
    let warning = c.journal_entry(unit, "sigshim's watchdog warning", |e| {
        text(e, "SYSLOG_IDENTIFIER") == "sigshim" && text(e, "MESSAGE").contains("watchdog")
    });
    let msg = text(&warning, "MESSAGE");
    assert!(
        msg.contains("WatchdogSec=2s") && msg.contains("--ready notify"),
        "{msg}"
    );
    assert_eq!(num(&warning, "PRIORITY"), 4, "a warning");
    c.until("systemd's watchdog kill", unit, TIMEOUT, || {
        (c.prop(unit, "Result") == "watchdog").then_some(())
    });
}

/// A shell app that announces itself with the real systemd-notify (252: READY=1, then a
/// barrier: a pipe it waits on until the receiver closes it, 5 s at most, then exit 1), then,
/// once the test opens the gate, calls it 100 times more and sends 100 descriptors to the fd
/// store and 100 with plain messages (fd-sender).
const NOTIFY_APP: &str = r#"#!/bin/sh
t0=$(date +%s%N)
systemd-notify --ready --status="ready by systemd-notify"
rc=$?
echo "notify rc=$rc ms=$(( ($(date +%s%N) - t0) / 1000000 ))"
read _ < /run/notify.gate
fail=0
i=0
while [ $i -lt 100 ]; do
    i=$((i + 1))
    systemd-notify --status="call $i" || fail=$((fail + 1))
done
echo "status calls done failed=$fail"
python3 /usr/local/bin/fd-sender 100
exec sleep infinity
"#;

const FD_SENDER: &str = r#"#!/usr/bin/python3
import os, socket, sys
n = int(sys.argv[1])
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
for i in range(n):
    r, w = os.pipe()
    socket.send_fds(s, [f"FDSTORE=1\nFDNAME=p{i}\nFDPOLL=0".encode()], [r])
    socket.send_fds(s, [b"STATUS=a message with a descriptor"], [w])
    os.close(r)
    os.close(w)
s.send(b"STATUS=fd-sender done")
print(f"fd-sender sent {n}", flush=True)
"#;

/// `systemd-notify --ready` (and `--status`) from the app under `--ready notify`: it returns
/// 0 at once (sigshim passes its barrier on to systemd, which closes it), the unit is active;
/// 100 more calls and 200 messages carrying descriptors later, sigshim holds exactly as many
/// descriptors as before, and the 100 meant for the fd store are in systemd's fd store.
#[test]
fn systemd_notify_from_the_app_returns_at_once_and_leaks_nothing() {
    let Some(c) = Container::boot("sd-notify") else {
        return;
    };
    let unit = "notify-app.service";
    c.sh(&format!("ln -sf {BIN}/sigshim /usr/bin/sigshim"));
    c.write("/usr/local/bin/notify-app", NOTIFY_APP, "755");
    c.write("/usr/local/bin/fd-sender", FD_SENDER, "755");
    c.write(
        &format!("/etc/systemd/system/{unit}"),
        "[Service]\nType=notify\nFileDescriptorStoreMax=128\n\
         ExecStart=/usr/bin/sigshim --ready notify --log journald -- /usr/local/bin/notify-app\n",
        "644",
    );
    c.exec(&["systemctl", "daemon-reload"]);
    c.sh("rm -f /run/notify.gate && mkfifo /run/notify.gate");
    c.start(unit);
    let line = text(&c.app_line(unit, "notify-app", "notify rc="), "MESSAGE");
    eprintln!("systemd-notify --ready under sigshim: {line}");
    assert_eq!(field(&line, "rc"), 0, "{line}\n{}", c.describe(unit));
    assert!(
        field(&line, "ms") < 2000,
        "systemd-notify --ready waited for its barrier: {line}"
    );
    let state = c.show(unit, &["ActiveState", "StatusText"]);
    assert_eq!(state["ActiveState"], "active", "{}", c.describe(unit));
    assert_eq!(state["StatusText"], "ready by systemd-notify");
    let main = c.main_pid(unit);
    let before = fd_count(&c, main);
    c.sh("timeout 15 sh -c 'echo go > /run/notify.gate'");
    let done = text(
        &c.app_line(unit, "notify-app", "status calls done"),
        "MESSAGE",
    );
    assert_eq!(field(&done, "failed"), 0, "{done}");
    c.app_line(unit, "notify-app", "fd-sender sent 100");
    c.until("the last status", unit, TIMEOUT, || {
        (c.prop(unit, "StatusText") == "fd-sender done").then_some(())
    });
    let after = fd_count(&c, main);
    eprintln!(
        "sigshim's descriptors: {before} before, {after} after 300 messages with descriptors"
    );
    assert_eq!(after, before, "sigshim kept descriptors it received");
    assert_eq!(
        c.prop(unit, "NFileDescriptorStore"),
        "100",
        "{}",
        c.describe(unit)
    );
    let journal = c.journal(unit);
    let refused: Vec<String> = from_systemd(&journal, "notification message")
        .map(|e| text(e, "MESSAGE"))
        .collect();
    assert!(
        refused.is_empty(),
        "systemd refused notifications: {refused:?}"
    );
}

/// A Type=notify-reload unit (systemd >= 253: `systemctl reload` sends SIGHUP and waits for
/// RELOADING=1 with MONOTONIC_USEC, then READY=1), run on systemd 257.
fn notify_reload_unit(c: &Container, unit: &str, exec: &str) {
    c.sh(&format!("ln -sf {BIN}/sigshim /usr/bin/sigshim"));
    c.write(
        &format!("/etc/systemd/system/{unit}"),
        &format!("[Service]\nType=notify-reload\nExecStart={exec}\n"),
        "644",
    );
    c.exec(&["systemctl", "daemon-reload"]);
    c.start(unit);
}

/// An app that does not speak sd_notify (the legacy probe: ready when it prints `ready`,
/// reloads on USR2) under Type=notify-reload: sigshim reports each reload itself when it
/// delivers it, so `systemctl reload` completes, twice, with the same main PID.
#[test]
fn notify_reload_completes_for_an_app_that_does_not_speak_notify() {
    let Some(c) = Container::boot_newer("reload-plain") else {
        return;
    };
    let unit = "plain-reload.service";
    notify_reload_unit(
        &c,
        unit,
        &format!(
            "/usr/bin/sigshim --ready log:^ready --rewrite HUP:USR2 --stop-signal INT --log journald -v -- {BIN}/sigshim-probe legacy /run/marker"
        ),
    );
    let main = c.main_pid(unit);
    for n in 1..=2 {
        let out = c.try_exec(&["timeout", "20", "systemctl", "reload", unit]);
        assert!(
            out.status.success(),
            "systemctl reload #{n}: {} {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            c.describe(unit)
        );
        c.until(&format!("the app's reload #{n}"), unit, TIMEOUT, || {
            (c.journal(unit)
                .iter()
                .filter(|e| text(e, "MESSAGE") == "reload")
                .count()
                >= n)
                .then_some(())
        });
    }
    let state = c.show(
        unit,
        &["ActiveState", "SubState", "MainPID", "ReloadResult"],
    );
    assert_eq!(state["ActiveState"], "active", "{}", c.describe(unit));
    assert_eq!(state["SubState"], "running");
    assert_eq!(state["MainPID"], main.to_string());
    assert_eq!(state["ReloadResult"], "success");
    c.stop(unit);
    assert_eq!(c.sh("cat /run/marker"), "clean\n", "{}", c.describe(unit));
}

/// An app that reports its own reload: on SIGHUP it sends RELOADING=1 with MONOTONIC_USEC,
/// then waits for the test's gate before READY=1.
const RELOAD_APP: &str = r#"#!/usr/bin/python3
import os, signal, socket, time
def notify(msg):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg.encode(), addr)
    s.close()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
notify("READY=1\nSTATUS=serving")
print("ready", flush=True)
n = 0
while True:
    signal.sigwait({signal.SIGHUP})
    n += 1
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notify(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading")
    print(f"reloading {n}", flush=True)
    with open("/run/reload.gate") as gate:
        gate.readline()
    notify("READY=1\nSTATUS=serving")
    print(f"reloaded {n}", flush=True)
"#;

/// An app that speaks sd_notify under Type=notify-reload and `--ready notify`: its own
/// RELOADING=1 and MONOTONIC_USEC= are relayed, and so is the READY=1 that ends the reload
/// (before, sigshim swallowed it as a second readiness). `systemctl reload` waits for the app
/// (it has not returned while the app holds its READY=1 back) and completes once it is sent.
#[test]
fn notify_reload_completes_for_an_app_that_reports_it() {
    let Some(c) = Container::boot_newer("reload-notify") else {
        return;
    };
    let unit = "notify-reload.service";
    c.write("/usr/local/bin/reload-app", RELOAD_APP, "755");
    c.sh("rm -f /run/reload.gate && mkfifo /run/reload.gate");
    notify_reload_unit(
        &c,
        unit,
        "/usr/bin/sigshim --ready notify --log journald -- /usr/local/bin/reload-app",
    );
    let main = c.main_pid(unit);
    let mut reload = c.spawn_systemctl(&["reload", unit]);
    c.app_line(unit, "reload-app", "reloading 1");
    let state = c.show(unit, &["ActiveState", "SubState", "StatusText"]);
    assert_eq!(
        (state["ActiveState"].as_str(), state["SubState"].as_str()),
        ("reloading", "reload-notify"),
        "systemd did not take the app's RELOADING=1\n{}",
        c.describe(unit)
    );
    assert_eq!(state["StatusText"], "reloading");
    assert!(
        reload.child.try_wait().expect("try_wait").is_none(),
        "systemctl reload returned before the app said READY=1\n{}",
        c.describe(unit)
    );
    c.sh("timeout 15 sh -c 'echo go > /run/reload.gate'");
    let st = reload.wait_for(TIMEOUT);
    assert!(
        st.success(),
        "systemctl reload: {st}\n{}\n{}",
        reload.stderr(),
        c.describe(unit)
    );
    c.app_line(unit, "reload-app", "reloaded 1");
    let state = c.show(unit, &["ActiveState", "SubState", "MainPID", "StatusText"]);
    assert_eq!(state["ActiveState"], "active", "{}", c.describe(unit));
    assert_eq!(state["SubState"], "running");
    assert_eq!(state["MainPID"], main.to_string());
    assert_eq!(state["StatusText"], "serving");
}

/// Lines journald would show as a blob or cut without a trace: a line with NUL bytes, and
/// one longer than --max-line (16 here). The shell does not exec anything, so its name stays
/// the writer's name (`_COMM=lines-app`).
const LINES_APP: &str = r#"#!/bin/sh
printf 'one\0two\0three\n'
printf '0123456789abcdefXYZ\n'
echo "ready"
sleep infinity
"#;

/// The app's records are found by its own name (`journalctl _COMM=lines-app`); a NUL-holding
/// line is three readable records (journalctl shows text, not `[blob data]`), a line over
/// --max-line two, each marked (SIGSHIM_STREAM, SIGSHIM_LINE_BREAK) so they join back into
/// the lines the app wrote.
#[test]
fn split_and_nul_lines_stay_readable_and_joinable() {
    let Some(c) = Container::boot("lines") else {
        return;
    };
    let unit = "lines-app.service";
    c.sh(&format!("ln -sf {BIN}/sigshim /usr/bin/sigshim"));
    c.write("/usr/local/bin/lines-app", LINES_APP, "755");
    c.write(
        &format!("/etc/systemd/system/{unit}"),
        "[Service]\nType=notify\nExecStart=/usr/bin/sigshim --ready log:^ready --max-line 16 --log journald -- /usr/local/bin/lines-app\n",
        "644",
    );
    c.exec(&["systemctl", "daemon-reload"]);
    c.start(unit);
    let app = the_app(&c, unit);
    let records: Vec<Entry> = c.until("the app's records by _COMM", unit, TIMEOUT, || {
        let r: Vec<Entry> = c
            .exec(&[
                "journalctl",
                "_COMM=lines-app",
                "-o",
                "json",
                "--all",
                "--no-pager",
            ])
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        (r.len() >= 6).then_some(r)
    });
    let got: Vec<(String, String, String)> = records
        .iter()
        .map(|e| {
            assert!(
                matches!(e.get("MESSAGE"), Some(Value::String(_))),
                "a blob: {e:?}"
            );
            assert_eq!(num(e, "_PID"), app as i64, "{e:?}");
            // The writer's executable: the script's interpreter (`journalctl /usr/bin/dash`).
            assert_eq!(text(e, "_EXE"), "/usr/bin/dash", "{e:?}");
            assert_eq!(text(e, "_SYSTEMD_UNIT"), unit);
            (
                text(e, "MESSAGE"),
                text(e, "SIGSHIM_STREAM"),
                text(e, "SIGSHIM_LINE_BREAK"),
            )
        })
        .collect();
    let want = |m: &str, s: &str, b: &str| (m.to_string(), s.to_string(), b.to_string());
    assert_eq!(
        got,
        [
            want("one", "stdout", "nul"),
            want("two", "stdout", "nul"),
            want("three", "stdout", ""),
            want("0123456789abcdef", "stdout", "line-max"),
            want("XYZ", "stdout", ""),
            want("ready", "", ""),
        ]
    );
    let shown = c.exec(&[
        "journalctl",
        "-u",
        unit,
        "-t",
        "lines-app",
        "-o",
        "cat",
        "--no-pager",
    ]);
    assert_eq!(
        shown.lines().collect::<Vec<_>>(),
        ["one", "two", "three", "0123456789abcdef", "XYZ", "ready"],
        "what journalctl shows"
    );
}

/// `--log auto` under systemd: stdout is the unit's journal stream (the default), so sigshim
/// captures, and says why with -v; with StandardOutput=file:, the file is the app's and gets
/// its lines, and nothing of the app's reaches the journal.
#[test]
fn log_auto_captures_the_journal_stream_and_leaves_a_file_alone() {
    let Some(c) = Container::boot("log-auto") else {
        return;
    };
    c.sh(&format!("ln -sf {BIN}/sigshim /usr/bin/sigshim"));
    let exec = format!(
        "ExecStart=/usr/bin/sigshim -v --ready log:^ready -- {BIN}/sigshim-probe legacy /run/m\n"
    );
    c.write(
        "/etc/systemd/system/auto-journal.service",
        &format!("[Service]\nType=notify\n{exec}"),
        "644",
    );
    c.write(
        "/etc/systemd/system/auto-file.service",
        &format!("[Service]\nType=notify\nStandardOutput=file:/run/auto.out\n{exec}"),
        "644",
    );
    c.exec(&["systemctl", "daemon-reload"]);

    let unit = "auto-journal.service";
    c.start(unit);
    let ready = c.app_line(unit, "sigshim-probe", "ready pid=");
    assert_eq!(
        text(&ready, "_TRANSPORT"),
        "stdout",
        "not through journald's stream protocol"
    );
    let why = c.journal_entry(unit, "sigshim's --log auto reason", |e| {
        text(e, "MESSAGE").starts_with("--log auto: ")
    });
    assert_eq!(
        text(&why, "MESSAGE"),
        "--log auto: stdout is systemd's journal stream for this service, stderr is systemd's journal stream for this service: sending the app's lines to /run/systemd/journal/stdout"
    );

    let unit = "auto-file.service";
    c.start(unit);
    let out = c.until("the app's ready line in the file", unit, TIMEOUT, || {
        let f = c.sh("cat /run/auto.out 2>/dev/null || true");
        f.contains("ready pid=").then_some(f)
    });
    assert!(
        out.contains("--log auto: stdout is a file, stderr is a file: the app writes there itself: not capturing"),
        "{out}"
    );
    let captured: Vec<String> = c
        .journal(unit)
        .iter()
        .filter(|e| text(e, "SYSLOG_IDENTIFIER") == "sigshim-probe")
        .map(|e| text(e, "MESSAGE"))
        .collect();
    assert!(
        captured.is_empty(),
        "auto captured what a file should get: {captured:?}"
    );
}

/// The dewy-style unit: a `.socket` unit's socket, held by sigshim across generations of a
/// real HTTP app (tests/support/http_app.py, strict about LISTEN_PID), and
/// `ExecReload=/bin/kill -USR1 $MAINPID` with `--restart-on USR1 --restart-mode overlap`:
/// `systemctl reload` completes, MainPID stays sigshim's, the app is a new process, and a
/// client that keeps asking throughout gets every answer.
#[test]
fn reload_restarts_the_app_on_the_held_socket() {
    let Some(c) = Container::boot("restart") else {
        return;
    };
    c.sh(&format!("ln -sf {BIN}/sigshim /usr/bin/sigshim"));
    c.write(
        "/usr/local/bin/http-app",
        include_str!("support/http_app.py"),
        "755",
    );
    c.write(
        "/etc/systemd/system/web.socket",
        "[Socket]\nListenStream=127.0.0.1:8099\n",
        "644",
    );
    c.write(
        "/etc/systemd/system/web.service",
        "[Service]\nType=notify\nKillMode=mixed\n\
         ExecStart=/usr/bin/sigshim --restart-on USR1 --restart-mode overlap --stop-signal INT \
         --kill-after 5s --ready log:^ready --log journald -- /usr/bin/python3 /usr/local/bin/http-app\n\
         ExecReload=/bin/kill -USR1 $MAINPID\n",
        "644",
    );
    c.exec(&["systemctl", "daemon-reload"]);
    c.exec(&["systemctl", "start", "web.socket"]);
    let ask = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8099/', timeout=10).read().decode().strip())";
    let first = c.exec(&["python3", "-c", ask]);
    assert!(first.starts_with("gen 1 pid "), "{first}");
    let main = c.main_pid("web.service");
    let app = the_app(&c, "web.service");
    // A client asking in a loop until told to stop, counting answers and failures.
    c.write(
        "/usr/local/bin/ask-loop",
        "#!/usr/bin/python3\nimport os, urllib.request as u\nok = bad = 0\n\
         while not os.path.exists('/run/ask-stop'):\n    try:\n        \
         u.urlopen('http://127.0.0.1:8099/', timeout=10).read(); ok += 1\n    \
         except Exception as e:\n        bad += 1; print('failed:', e, flush=True)\n\
         print(f'ok={ok} bad={bad}', flush=True)\n",
        "755",
    );
    c.sh("rm -f /run/ask-stop; (/usr/local/bin/ask-loop > /run/ask.out 2>&1 &)");
    for _ in 0..3 {
        c.exec(&["systemctl", "reload", "web.service"]);
    }
    assert_eq!(c.main_pid("web.service"), main, "MainPID changed");
    let new_app = c.until("a new app", "web.service", TIMEOUT, || {
        let a = the_app(&c, "web.service");
        (a != app).then_some(a)
    });
    let env = environ(&c, new_app);
    assert_eq!(env.get("LISTEN_PID"), Some(&new_app.to_string()), "{env:?}");
    assert!(
        env.get("SIGSHIM_GENERATION")
            .is_some_and(|g| g.parse::<u32>().unwrap_or(0) > 1),
        "{env:?}"
    );
    c.sh("touch /run/ask-stop");
    let out = c.until("the client's count", "web.service", TIMEOUT, || {
        let o = c.sh("cat /run/ask.out");
        o.contains("ok=").then_some(o)
    });
    assert!(
        out.contains(" bad=0"),
        "{out}\n{}",
        c.describe("web.service")
    );
    let ok: u64 = out
        .split("ok=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(ok > 0, "the client got no answer at all: {out}");
    let answer = c.exec(&["python3", "-c", ask]);
    assert!(
        answer.contains(&format!("pid {new_app}")) || !answer.contains(&format!("pid {app}")),
        "{answer}"
    );
    assert_eq!(
        c.show("web.service", &["ActiveState"])["ActiveState"],
        "active"
    );
}
