//! `--user` and `--no-new-privs`, checked in the child's own /proc/self/status.

mod support;

use std::process::Command;
use support::*;

fn status_of(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(sigshim());
    cmd.args(["--log", "inherit"]).args(args).args([
        "--",
        "grep",
        "-E",
        "^(Uid|Gid|Groups|NoNewPrivs):",
        "/proc/self/status",
    ]);
    let mut run = Run::start(cmd);
    let st = run.wait();
    (st.code(), run.rest().join("\n"), run.stderr())
}

fn ids(name: &str, flag: &str) -> String {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn user_drop_sets_every_id_and_exactly_the_groups() {
    if !require_root("privilege drop") {
        return;
    }
    let (uid, gid) = (ids("nobody", "-u"), ids("nobody", "-g"));
    let groups = ids("nobody", "-G");
    let (code, out, err) = status_of(&["--user", "nobody"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Gid:\t{gid}\t{gid}\t{gid}\t{gid}")),
        "{out}"
    );
    let got: Vec<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .unwrap()
        .split_whitespace()
        .collect();
    let want: Vec<&str> = groups.split_whitespace().collect();
    assert_eq!(
        got, want,
        "supplementary groups are not exactly nobody's (root's left?)"
    );
    assert!(!got.contains(&"0"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");

    // Debian's group for nobody; `getent` reads the same database sigshim does.
    let group = "nogroup";
    let entry = Command::new("getent")
        .args(["group", group])
        .output()
        .unwrap();
    let entry = String::from_utf8(entry.stdout).unwrap();
    let ggid = entry
        .split(':')
        .nth(2)
        .expect("getent group nogroup")
        .to_string();
    let (code, out, err) = status_of(&["--user", &format!("nobody:{group}"), "--no-new-privs"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Gid:\t{ggid}\t{ggid}\t{ggid}\t{ggid}")),
        "{out}"
    );
    assert!(out.contains(&format!("Groups:\t{ggid} ")), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[test]
fn unknown_user_fails_before_the_child_runs() {
    let marker = temp_dir("unknown-user").join("ran");
    let mut cmd = Command::new(sigshim());
    cmd.args([
        "--log",
        "inherit",
        "--user",
        "no-such-user-sigshim",
        "--",
        "touch",
    ])
    .arg(&marker);
    let mut run = Run::start(cmd);
    let st = run.wait();
    assert_eq!(st.code(), Some(125), "{}", run.stderr());
    assert_eq!(
        run.stderr(),
        "sigshim: fatal: unknown user 'no-such-user-sigshim'\n"
    );
    assert!(!marker.exists(), "the app ran");
    run.assert_nothing_left();
}

#[test]
fn a_drop_that_cannot_happen_is_fatal() {
    // Unprivileged, setgroups fails: the app must not run as the caller instead.
    if !require_root("running sigshim as nobody") {
        return;
    }
    let marker = temp_dir("failed-drop").join("ran");
    std::fs::set_permissions(
        marker.parent().unwrap(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(sigshim())
        .args(["--log", "inherit", "--user", "root", "--", "touch"])
        .arg(&marker);
    let mut run = Run::start(cmd);
    let st = run.wait();
    assert_eq!(st.code(), Some(125), "{}", run.stderr());
    assert!(
        run.stderr()
            .starts_with("sigshim: fatal: cannot drop privileges to root:"),
        "{}",
        run.stderr()
    );
    assert!(!marker.exists(), "the app ran although the drop failed");
    run.assert_nothing_left();
}

#[test]
fn dropped_app_still_logs() {
    if !require_root("privilege drop") {
        return;
    }
    let dir = temp_dir("drop-log");
    let sock_path = dir.join("log.sock");
    let rx = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    rx.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut cmd = Command::new(sigshim());
    cmd.args(["--log", "syslog", "--syslog-socket"])
        .arg(&sock_path)
        .args(["--tag", "dropped", "--user", "nobody", "--", "sh", "-c"])
        .arg("echo uid=$(id -u); echo oops >&2");
    let mut run = Run::start(cmd);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 2 {
        let n = rx.recv(&mut buf).expect("records from the dropped app");
        let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
        if rec.contains(" dropped[") {
            got.push(rec);
        }
    }
    let nobody = ids("nobody", "-u");
    assert!(
        got[0].starts_with("<30>") && got[0].ends_with(&format!("]: uid={nobody}")),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("<27>") && got[1].ends_with("]: oops"),
        "{got:?}"
    );
}

/// A change of uid clears the parent-death signal (prctl(2)): it must be set after the drop,
/// or a dropped app would outlive a SIGKILLed sigshim.
#[test]
fn dropped_app_still_dies_with_sigshim() {
    if !require_root("privilege drop") {
        return;
    }
    // The probe runs as nobody: from a copy nobody can reach wherever the clone is.
    let bins = SharedBins::new();
    let mut run = Run::sigshim(&[
        "--log",
        "inherit",
        "--user",
        "nobody",
        "--",
        &bins.probe(),
        "ready",
    ]);
    let child = field(&run.expect("ready"), "pid");
    let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
    let nobody = ids("nobody", "-u");
    assert!(status.contains(&format!("Uid:\t{nobody}\t")), "{status}");
    run.signal(libc::SIGKILL);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&run.wait()),
        Some(libc::SIGKILL)
    );
    assert!(
        eventually(std::time::Duration::from_secs(5), || is_zombie_or_gone(
            child
        )),
        "the dropped child {child} outlived sigshim"
    );
}
