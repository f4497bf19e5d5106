//! Restarts (`--restart-on`, both modes) and lifecycle hooks (issue 14), against the real
//! binary. The app is the legacy probe: it prints `ready pid=N`, cleans up on INT.
//!
//! Hooks write their environment to a file the test reads; a hook's output goes to the log
//! destination under TAG-hook (checked against a real rsyslogd).

#[path = "support/daemons.rs"]
mod daemons;
mod support;

use daemons::Rsyslog;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;
use support::*;

fn legacy_flags(mode: &str) -> Vec<String> {
    [
        "--log",
        "inherit",
        "--ready",
        "log:^ready",
        "--stop-signal",
        "INT",
        "--kill-after",
        "5s",
        "--restart-on",
        "USR1",
        "--restart-mode",
        mode,
    ]
    .map(String::from)
    .to_vec()
}

fn start(flags: &[String], app: &[&str]) -> Run {
    let mut cmd = Command::new(sigshim());
    cmd.args(flags).arg("--").args(app);
    Run::start(cmd)
}

/// Waits until sigshim's stderr (-v) says `what`.
fn says(run: &Run, what: &str) {
    assert!(
        eventually(TIMEOUT, || run.stderr().contains(what)),
        "sigshim never said {what:?}:\n{}",
        run.stderr()
    );
}

/// An app whose generation 2 dies at once ("broken"); every other one is the legacy app.
fn broken_second_generation() -> String {
    format!(
        "if [ \"$SIGSHIM_GENERATION\" = 2 ]; then echo broken; exit 1; fi; exec {} legacy",
        probe()
    )
}

/// Stop-then-start: the app is stopped by the full schedule (its cleanup runs), then started
/// again; sigshim keeps its PID; each generation is announced ready; a stop after that
/// stops the new one.
#[test]
fn stop_then_start() {
    let mut run = start(&legacy_flags("stop-start"), &[probe(), "legacy"]);
    let first = field(&run.expect("ready pid="), "pid");
    run.signal(libc::SIGUSR1);
    // The old one's cleanup comes before the new one starts.
    run.expect("cleanup");
    run.expect("clean-exit");
    let second = field(&run.expect("ready pid="), "pid");
    assert_ne!(first, second);
    assert!(is_zombie_or_gone(first));
    run.signal(libc::SIGUSR1);
    run.expect("cleanup");
    let third = field(&run.expect("ready pid="), "pid");
    assert_ne!(second, third);
    run.signal(libc::SIGTERM);
    run.expect("cleanup");
    let st = run.wait();
    assert_eq!(st.code(), Some(0), "{}", run.stderr());
    run.assert_nothing_left();
}

/// Overlap: the new generation starts beside the old one, and only once it is ready is the
/// old one stopped (its cleanup comes after the new one's ready line).
#[test]
fn overlap() {
    let mut flags = legacy_flags("overlap");
    flags.push("-v".into());
    let mut run = start(&flags, &[probe(), "legacy"]);
    let first = field(&run.expect("ready pid="), "pid");
    run.signal(libc::SIGUSR1);
    let second = field(&run.expect("ready pid="), "pid");
    assert_ne!(first, second);
    // The old one was still running when the new one became ready.
    run.expect("cleanup");
    assert!(eventually(TIMEOUT, || is_zombie_or_gone(first)));
    assert!(!is_zombie_or_gone(second));
    says(&run, &format!("stopping generation 1 (pid {first})"));
    run.signal(libc::SIGTERM);
    run.expect("cleanup");
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    run.assert_nothing_left();
}

/// Overlap: a new generation that fails before it is ready is killed, the running one keeps
/// serving (and restarts again later); a stop request during a restart stops everything.
#[test]
fn overlap_failure_keeps_the_old_one() {
    let mut flags = legacy_flags("overlap");
    flags.push("-v".into());
    let app = broken_second_generation();
    let mut run = start(&flags, &["sh", "-c", &app]);
    let first = field(&run.expect("ready pid="), "pid");
    run.signal(libc::SIGUSR1);
    run.expect("broken");
    says(&run, "failed before it was ready");
    assert!(
        !is_zombie_or_gone(first),
        "the serving generation was stopped"
    );
    run.signal(libc::SIGUSR1);
    let third = field(&run.expect("ready pid="), "pid");
    run.expect("cleanup");
    assert!(eventually(TIMEOUT, || is_zombie_or_gone(first)));
    // A restart, then a stop before the new one is ready: everything stops.
    run.signal(libc::SIGUSR1);
    run.signal(libc::SIGTERM);
    let st = run.wait();
    assert!(is_zombie_or_gone(third));
    assert_eq!(st.code(), Some(0), "{st:?}\n{}", run.stderr());
    run.assert_nothing_left();
}

/// Stop-then-start: a next generation that cannot be started ends sigshim with that
/// outcome (126), so that the init's own restart policy takes over.
#[test]
fn stop_then_start_failure_ends_sigshim() {
    let dir = Scratch::new("restart-fail");
    let app = dir.path("app");
    std::fs::write(&app, format!("#!/bin/sh\nexec {} legacy\n", probe())).unwrap();
    set_mode(&app, 0o755);
    let mut run = start(&legacy_flags("stop-start"), &[app.to_str().unwrap()]);
    run.expect("ready pid=");
    set_mode(&app, 0o644);
    run.signal(libc::SIGUSR1);
    run.expect("clean-exit");
    let st = run.wait();
    assert_eq!(st.code(), Some(126), "{}", run.stderr());
    assert!(
        run.stderr().contains("sigshim: fatal: cannot exec"),
        "{}",
        run.stderr()
    );
    run.assert_nothing_left();
}

fn set_mode(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A hook's view: its environment as KEY=VALUE lines, written by the hook to `file`.
fn env_dump(file: &str) -> String {
    // Written whole, then renamed: the test never reads half a file.
    format!(
        "env | grep -E '^(SIGSHIM_|SERVICE_RESULT|EXIT_CODE|EXIT_STATUS)' | sort > {file}.tmp && mv {file}.tmp {file}"
    )
}

fn read_env(file: &std::path::Path) -> Vec<String> {
    assert!(
        eventually(TIMEOUT, || file.exists()),
        "the hook wrote nothing to {}",
        file.display()
    );
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn has(env: &[String], kv: &str) {
    assert!(env.iter().any(|l| l == kv), "no {kv} in {env:?}");
}

/// The exit hook's environment for each way the app can end, and sigshim's outcome
/// unchanged by it.
#[test]
fn exit_hook_environment() {
    let dir = Scratch::new("hooks");
    type Case<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<&'a str>,
        &'a [&'a str],
        Option<i32>,
        Option<i32>,
    );
    let cases: Vec<Case> = vec![
        (
            "clean",
            vec![],
            vec!["true"],
            &[
                "SERVICE_RESULT=success",
                "EXIT_CODE=exited",
                "EXIT_STATUS=0",
                "SIGSHIM_REASON=exited",
            ],
            Some(0),
            None,
        ),
        (
            "code",
            vec![],
            vec!["sh", "-c", "exit 3"],
            &[
                "SERVICE_RESULT=exit-code",
                "EXIT_CODE=exited",
                "EXIT_STATUS=3",
                "SIGSHIM_REASON=exited",
                "SIGSHIM_EXIT=3",
            ],
            Some(3),
            None,
        ),
        (
            "signal",
            vec![],
            vec!["sh", "-c", "kill -TERM $$"],
            &[
                "SERVICE_RESULT=signal",
                "EXIT_CODE=killed",
                "EXIT_STATUS=TERM",
                "SIGSHIM_REASON=exited",
                "SIGSHIM_EXIT=SIGTERM",
            ],
            None,
            Some(libc::SIGTERM),
        ),
        (
            "not-ready",
            vec![
                "--ready",
                "file:/nonexistent/sigshim-test",
                "--ready-timeout",
                "200ms",
            ],
            vec!["sleep", "100"],
            &[
                "SERVICE_RESULT=timeout",
                "SIGSHIM_REASON=not-ready",
                "SIGSHIM_EXIT=125",
            ],
            Some(125),
            None,
        ),
        (
            "not-started",
            vec![],
            vec!["/nonexistent/sigshim-test-app"],
            &[
                "SERVICE_RESULT=exit-code",
                "EXIT_STATUS=127",
                "SIGSHIM_REASON=not-started",
                "SIGSHIM_EXIT=127",
            ],
            Some(127),
            None,
        ),
    ];
    for (name, flags, app, want, code, sig) in cases {
        let file = dir.file(name);
        let mut cmd = Command::new(sigshim());
        cmd.args(["--on-exit", &env_dump(&file)])
            .args(&flags)
            .arg("--")
            .args(&app);
        let mut run = Run::start(cmd);
        let st = run.wait();
        assert_eq!(
            (st.code(), st.signal()),
            (code, sig),
            "{name}: {}",
            run.stderr()
        );
        let env = read_env(&dir.path(name));
        has(&env, "SIGSHIM_EVENT=exit");
        for kv in want {
            has(&env, kv);
        }
        run.assert_nothing_left();
    }
}

/// A deadline kill, seen by the exit hook: stopped, killed by KILL.
#[test]
fn exit_hook_after_a_deadline_kill() {
    let dir = Scratch::new("hook-kill");
    let file = dir.file("env");
    let mut run = Run::sigshim(&[
        "--kill-after",
        "200ms",
        "--on-exit",
        &env_dump(&file),
        "--",
        "sh",
        "-c",
        "trap '' TERM; echo ready; exec sleep 100",
    ]);
    run.expect("ready");
    run.signal(libc::SIGTERM);
    let st = run.wait();
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    let env = read_env(&dir.path("env"));
    for kv in [
        "SERVICE_RESULT=signal",
        "EXIT_CODE=killed",
        "EXIT_STATUS=KILL",
        "SIGSHIM_REASON=stopped",
    ] {
        has(&env, kv);
    }
    run.assert_nothing_left();
}

/// A hanging hook is killed at its deadline; sigshim's outcome is the app's, and nothing of
/// the hook is left.
#[test]
fn a_hanging_hook_is_killed() {
    let mut run = Run::sigshim(&[
        "--hook-timeout",
        "300ms",
        "--on-exit",
        "echo hook-started; exec sleep 100",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    run.expect("hook-started");
    let st = run.wait_for(Duration::from_secs(5));
    assert_eq!(st.code(), Some(4), "{}", run.stderr());
    run.assert_nothing_left();
}

/// Start and restart hooks: their environment names the generation and its app; a restart
/// hook runs for each generation after the first.
#[test]
fn start_and_restart_hooks() {
    let dir = Scratch::new("hooks-restart");
    let mut flags = legacy_flags("stop-start");
    flags.extend([
        "--on-start".into(),
        env_dump(&dir.file("start")),
        "--on-restart".into(),
        env_dump(&dir.file("restart-$SIGSHIM_GENERATION")),
    ]);
    let mut run = start(&flags, &[probe(), "legacy"]);
    let first = field(&run.expect("ready pid="), "pid");
    let env = read_env(&dir.path("start"));
    has(&env, "SIGSHIM_EVENT=start");
    has(&env, "SIGSHIM_GENERATION=1");
    has(&env, &format!("SIGSHIM_APP_PID={first}"));
    run.signal(libc::SIGUSR1);
    let second = field(&run.expect("ready pid="), "pid");
    let env = read_env(&dir.path("restart-2"));
    has(&env, "SIGSHIM_EVENT=restart");
    has(&env, "SIGSHIM_GENERATION=2");
    has(&env, &format!("SIGSHIM_APP_PID={second}"));
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait().code(), Some(0));
    run.assert_nothing_left();
}

/// A hook's output goes where the app's goes, under TAG-hook.
#[test]
fn hook_output_is_logged_under_its_own_tag() {
    let Some(rs) = Rsyslog::start("hook-log") else {
        return;
    };
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        rs.socket_str(),
        "--tag",
        "hooked",
        "--on-exit",
        "echo from the exit hook",
        "--",
        "sh",
        "-c",
        "echo from the app",
    ]);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    rs.barrier();
    let recs = rs.records();
    let find = |tag: &str, text: &str| {
        recs.iter()
            .any(|r| r.programname == tag && r.msg_lossy().contains(text))
    };
    assert!(find("hooked", "from the app"), "{recs:#?}");
    assert!(find("hooked-hook", "from the exit hook"), "{recs:#?}");
}

/// Hooks run as --user unless --hooks-as-caller.
#[test]
fn hooks_run_as_the_user() {
    if !require_root("a privilege drop") {
        return;
    }
    let dir = Scratch::new("hook-user");
    // A directory nobody can write to: the hook's uid goes out on stdout instead.
    for (flags, want) in [(vec![], "nobody"), (vec!["--hooks-as-caller"], "root")] {
        let mut cmd = Command::new(sigshim());
        cmd.args([
            "--log",
            "inherit",
            "--user",
            "nobody",
            "--on-exit",
            "echo hook-user=$(id -un)",
        ])
        .args(&flags)
        .args(["--", "true"]);
        let mut run = Run::start(cmd);
        let line = run.expect("hook-user=");
        assert_eq!(line, format!("hook-user={want}"), "{}", run.stderr());
        assert_eq!(run.wait().code(), Some(0));
    }
    drop(dir);
}

/// A restart requested while the app is still starting (a deploy landing during a start) is
/// kept, not dropped: it is carried out once the app is ready.
#[test]
fn a_request_during_the_start_is_kept() {
    let dir = temp_dir("restart-during-start");
    // Generation 1 is held before it is ready until the test opens the gate (a FIFO); every
    // generation then becomes the legacy app.
    let gate = dir.join("gate");
    assert!(
        Command::new("mkfifo")
            .arg(&gate)
            .status()
            .unwrap()
            .success()
    );
    let script = format!(
        "echo started=$$; if [ \"$SIGSHIM_GENERATION\" = 1 ]; then read go < {gate}; fi; exec {probe} legacy",
        gate = gate.display(),
        probe = probe()
    );
    let mut flags = legacy_flags("stop-start");
    flags.push("-v".into());
    let mut run = start(&flags, &["sh", "-c", &script]);
    let first = field(&run.expect("started="), "started");
    run.signal(libc::SIGUSR1);
    says(&run, "restarting once");
    std::fs::write(&gate, "go\n").unwrap();
    run.expect("ready pid=");
    run.expect("cleanup");
    let second = run.expect("started=");
    assert_ne!(first, field(&second, "started"), "{second}");
    run.expect("ready pid=");
    run.signal(libc::SIGTERM);
    run.expect("cleanup");
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    run.assert_nothing_left();
}

/// Overlap for an app that can tell nothing (`--ready alive:DURATION`): a new generation that
/// dies within the grace period is a failed restart and the running one keeps serving; one
/// that lives through it replaces the old one. Without a readiness mode, overlap is refused.
#[test]
fn overlap_with_a_grace_period() {
    let refused = Command::new(sigshim())
        .args([
            "--restart-on",
            "USR1",
            "--restart-mode",
            "overlap",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--ready alive:"), "{err}");

    let app = broken_second_generation();
    let flags: Vec<String> = [
        "-v",
        "--log",
        "inherit",
        "--ready",
        "alive:300ms",
        "--stop-signal",
        "INT",
        "--restart-on",
        "USR1",
        "--restart-mode",
        "overlap",
    ]
    .map(String::from)
    .to_vec();
    let mut run = start(&flags, &["sh", "-c", &app]);
    let first = field(&run.expect("ready pid="), "pid");
    says(&run, "is ready");
    run.signal(libc::SIGUSR1);
    run.expect("broken");
    says(&run, "failed before it was ready");
    assert!(
        !is_zombie_or_gone(first),
        "the serving generation was stopped"
    );
    run.signal(libc::SIGUSR1);
    let third = field(&run.expect("ready pid="), "pid");
    // The old one is stopped only once the new one has lived through its grace period.
    run.expect("cleanup");
    says(&run, &format!("stopping generation 1 (pid {first})"));
    assert!(!is_zombie_or_gone(third));
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    run.assert_nothing_left();
}

/// A generation whose PID an earlier generation had (PIDs wrap: a service restarted for months
/// meets its own old PIDs) is still itself: what it leaves behind is its own, and goes when it
/// is replaced, not only when sigshim exits. Forced with ns_last_pid in a private PID namespace,
/// overlap restarts: generation 1 gets PID X and is replaced; generation 3 gets X again and
/// starts a helper in a session of its own (out of its process group) that ignores SIGTERM;
/// when generation 4 replaces it, that helper must be wound down with it.
#[test]
fn a_generation_with_an_earlier_ones_pid_is_still_itself() {
    if !require_root("PID recycling in a PID namespace") {
        return;
    }
    let dir = Scratch::new("gen-reuse");
    let script = r#"
set -eu
sigshim=$1 dir=$2
app='echo $$ >> "$0/gens"; if [ -e "$0/third" ] && [ ! -e "$0/helper" ]; then setsid sh -c "trap \"\" TERM; echo \$\$ > \"\$0/helper\"; exec sleep 1000" "$0" </dev/null >/dev/null 2>&1 & until [ -s "$0/helper" ]; do :; done; fi; echo ready; exec sleep 1000'
# Ready once its helper runs: generation 2 is stopped after that, and sigshim's look at the
# processes then finds the helper under its parent, generation 3's app. (A helper started
# after sigshim's last look and orphaned before its next is attributed to no generation: a
# limit of attribution by /proc, not what this test is about.)
"$sigshim" -v --restart-on USR2 --restart-mode overlap --ready log:^ready --leftover-grace 200ms \
    -- sh -c "$app" "$dir" 2>"$dir/err" &
sp=$!
until [ -s "$dir/gens" ]; do :; done
first=$(sed -n 1p "$dir/gens")
until grep -q "pid $first is ready" "$dir/err"; do :; done
kill -USR2 "$sp"
until grep -q "pid $first was killed" "$dir/err"; do :; done
while [ -e "/proc/$first" ]; do :; done
: > "$dir/third"
# From here until generation 3's fork nothing in this namespace forks but sigshim.
echo $((first - 1)) > /proc/sys/kernel/ns_last_pid
kill -USR2 "$sp"
until [ -s "$dir/helper" ]; do :; done
third=$(sed -n 3p "$dir/gens")
helper=$(cat "$dir/helper")
echo "first=$first third=$third helper=$helper"
# The same PID, so its second "is ready" and "was killed" are generation 3's.
until [ "$(grep -c "pid $third is ready" "$dir/err")" -ge 2 ]; do :; done
kill -USR2 "$sp"
until [ "$(grep -c "pid $third was killed" "$dir/err")" -ge 2 ]; do :; done
# Generation 3 is done once its leftovers are: sigshim says so, or (the failure) never.
end=$((SECONDS + 5))
while [ -e "/proc/$helper" ] && ! grep -q '^State:.*Z' "/proc/$helper/status" && [ $SECONDS -lt $end ]; do :; done
if [ -e "/proc/$helper" ] && ! grep -q '^State:.*Z' "/proc/$helper/status"; then
    echo "left running=1"
else
    echo "left running=0"
fi
kill -TERM "$sp"
wait "$sp" || true
"#;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "bash",
        "-c",
        script,
        "bash",
    ])
    .args([sigshim(), dir.to_str().unwrap()]);
    let mut run = Run::start(cmd);
    let ids = run.expect("first=");
    assert_eq!(
        field(&ids, "first"),
        field(&ids, "third"),
        "the PID was not recycled: {ids}"
    );
    let left = run.expect("left running=");
    assert_eq!(
        field(&left, "running"),
        0,
        "generation 3's helper outlived its generation by 5 s ({ids}): it was taken for \
         generation 1's; sigshim said:\n{}",
        std::fs::read_to_string(dir.join("err")).unwrap_or_default()
    );
    assert!(run.wait().success());
}
