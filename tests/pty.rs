//! `--stdout-pty` (issue 16): live lines from apps that block-buffer a pipe, against a real
//! journald and a real rsyslogd.
//!
//! The apps are the ones the option exists for: a C program using printf without fflush and
//! a Python program run without `-u` (PYTHONUNBUFFERED is removed from their environment).
//! Each prints a line a second, stamped with CLOCK_MONOTONIC, and the test notes when each
//! line reaches the log. Through a pipe the lines arrive together at exit; through the pty
//! each arrives within a second of being printed.

#[path = "support/daemons.rs"]
mod daemons;
mod support;

use daemons::{Journald, Rsyslog, field_str};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

const C_APP: &str = r#"#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    for (int i = 0; i < 3; i++) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        printf("tick %d at %ld.%09ld\n", i, (long)t.tv_sec, t.tv_nsec);
        sleep(1);
    }
    return 0;
}
"#;

const PY_APP: &str = "import time\nfor i in range(3):\n    print('tick %d at %.9f' % (i, time.monotonic()))\n    time.sleep(1)\n";

fn monotonic() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// The C app, compiled into `dir` with the machine's gcc.
fn c_app(dir: &Path) -> PathBuf {
    let src = dir.join("tick.c");
    let bin = dir.join("tick");
    std::fs::write(&src, C_APP).unwrap();
    let st = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("gcc (Debian package gcc)");
    assert!(st.success(), "gcc failed");
    bin
}

/// `tick N at T` → (N, T).
fn tick(msg: &str) -> Option<(usize, f64)> {
    let rest = msg.trim_start().strip_prefix("tick ")?;
    let (n, t) = rest.split_once(" at ")?;
    Some((n.parse().ok()?, t.trim().parse().ok()?))
}

/// Runs `app` under sigshim with `flags` and the destination's flags, polling `read` (the
/// messages the destination holds for `tag`) and noting when each tick first appears. Returns
/// each tick's delay: arrival minus the time the app printed it.
fn delays(
    log: &[&str],
    flags: &[&str],
    app: &[&str],
    tag: &str,
    read: impl Fn() -> Vec<String>,
) -> Vec<f64> {
    let mut cmd = Command::new(sigshim());
    cmd.args(log)
        .args(["--tag", tag])
        .args(flags)
        .arg("--")
        .args(app)
        .env_remove("PYTHONUNBUFFERED");
    let mut run = Run::start(cmd);
    let mut seen: Vec<Option<f64>> = vec![None; 3];
    let done = eventually(Duration::from_secs(15), || {
        let got = read();
        // Taken after the read: the delay is an upper bound.
        let now = monotonic();
        for m in got {
            if let Some((n, printed)) = tick(&m)
                && n < 3
                && seen[n].is_none()
            {
                seen[n] = Some(now - printed);
            }
        }
        seen.iter().all(Option::is_some)
    });
    let st = run.wait();
    assert!(done, "not every tick arrived: {seen:?}\n{}", run.stderr());
    assert_eq!(st.code(), Some(0), "{}", run.stderr());
    run.assert_nothing_left();
    seen.into_iter().map(Option::unwrap).collect()
}

/// The verdicts for one destination: through the pipe the first line waits for the exit (the
/// app block-buffers); through the pty every line arrives within a second.
fn check(dest: &str, app: &str, pipe: &[f64], pty: &[f64]) {
    eprintln!("{dest}, {app}: delays through a pipe {pipe:.2?} s, through the pty {pty:.2?} s");
    assert!(
        pipe[0] > 1.5,
        "{dest}, {app}: through a pipe the first line arrived after {:.2} s; it was expected late (block buffering)",
        pipe[0]
    );
    for (n, d) in pty.iter().enumerate() {
        assert!(
            *d < 1.0,
            "{dest}, {app}: through the pty line {n} took {d:.2} s"
        );
    }
}

#[test]
fn live_lines_reach_journald() {
    let Some(jd) = Journald::start("pty-journald") else {
        return;
    };
    let dir = Scratch::new("pty-jd");
    let c = c_app(&dir);
    let log = ["--log", "journald", "--journal-socket", jd.socket_str()];
    let read = |tag: &str| {
        jd.entries_for(tag, &["MESSAGE"])
            .iter()
            .filter_map(|e| field_str(e, "MESSAGE"))
            .collect::<Vec<_>>()
    };
    std::thread::scope(|s| {
        let runs: Vec<_> = [
            ("c", vec![c.to_str().unwrap()]),
            ("python", vec!["python3", "-c", PY_APP]),
        ]
        .into_iter()
        .flat_map(|(name, app)| {
            let app2 = app.clone();
            let read = &read;
            let log = &log;
            [
                s.spawn(move || {
                    (
                        name,
                        false,
                        delays(log, &[], &app, &format!("jd-pipe-{name}"), || {
                            read(&format!("jd-pipe-{name}"))
                        }),
                    )
                }),
                s.spawn(move || {
                    (
                        name,
                        true,
                        delays(
                            log,
                            &["--stdout-pty"],
                            &app2,
                            &format!("jd-pty-{name}"),
                            || read(&format!("jd-pty-{name}")),
                        ),
                    )
                }),
            ]
        })
        .collect();
        let results: Vec<_> = runs.into_iter().map(|h| h.join().unwrap()).collect();
        for name in ["c", "python"] {
            let get = |pty| {
                &results
                    .iter()
                    .find(|r| r.0 == name && r.1 == pty)
                    .unwrap()
                    .2
            };
            check("journald", name, get(false), get(true));
        }
    });
}

#[test]
fn live_lines_reach_rsyslog() {
    let Some(rs) = Rsyslog::start("pty-rsyslog") else {
        return;
    };
    let dir = Scratch::new("pty-rs");
    let c = c_app(&dir);
    let log = ["--log", "syslog", "--syslog-socket", rs.socket_str()];
    let read = |tag: &str| {
        rs.records()
            .into_iter()
            .filter(|r| r.programname == tag)
            .map(|r| r.msg_lossy())
            .collect::<Vec<_>>()
    };
    std::thread::scope(|s| {
        let runs: Vec<_> = [
            ("c", vec![c.to_str().unwrap()]),
            ("python", vec!["python3", "-c", PY_APP]),
        ]
        .into_iter()
        .flat_map(|(name, app)| {
            let app2 = app.clone();
            let read = &read;
            let log = &log;
            [
                s.spawn(move || {
                    (
                        name,
                        false,
                        delays(log, &[], &app, &format!("rs-pipe-{name}"), || {
                            read(&format!("rs-pipe-{name}"))
                        }),
                    )
                }),
                s.spawn(move || {
                    (
                        name,
                        true,
                        delays(
                            log,
                            &["--stdout-pty"],
                            &app2,
                            &format!("rs-pty-{name}"),
                            || read(&format!("rs-pty-{name}")),
                        ),
                    )
                }),
            ]
        })
        .collect();
        let results: Vec<_> = runs.into_iter().map(|h| h.join().unwrap()).collect();
        for name in ["c", "python"] {
            let get = |pty| {
                &results
                    .iter()
                    .find(|r| r.0 == name && r.1 == pty)
                    .unwrap()
                    .2
            };
            check("rsyslog", name, get(false), get(true));
        }
    });
}

/// What the app sees and what the records hold: stdout is a terminal that is nobody's
/// controlling terminal, stderr still a pipe with its own priority, TERM/NO_COLOR/PAGER set
/// (a caller's value kept), no `\r` and no escape sequence added, the last line without a
/// newline delivered at exit.
#[test]
fn the_pty_is_raw_and_plain() {
    let Some(rs) = Rsyslog::start("pty-plain") else {
        return;
    };
    let app = "import os, sys\n\
        print('tty', os.isatty(1), os.isatty(2))\n\
        try:\n    os.tcgetpgrp(1); print('controlling terminal')\n\
        except OSError as e:\n    print('not controlling', e.errno)\n\
        print('env', os.environ.get('TERM'), os.environ.get('NO_COLOR'), os.environ.get('PAGER'))\n\
        print('tab\\there, two\\n\\nblank')\n\
        print('oops', file=sys.stderr)\n\
        sys.stdout.write('last without newline')\n";
    let mut cmd = Command::new(sigshim());
    cmd.args([
        "--log",
        "syslog",
        "--syslog-socket",
        rs.socket_str(),
        "--tag",
        "plain",
        "--stdout-pty",
        "--",
        "python3",
        "-c",
        app,
    ])
    .env("TERM", "vt100")
    .env_remove("NO_COLOR")
    .env_remove("PAGER");
    let mut run = Run::start(cmd);
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
    rs.barrier();
    let recs: Vec<_> = rs
        .records()
        .into_iter()
        .filter(|r| r.programname == "plain")
        .collect();
    let msgs: Vec<String> = recs
        .iter()
        .map(|r| r.msg_lossy().trim_start().to_string())
        .collect();
    let want = [
        "tty True False",
        &format!("not controlling {}", libc::ENOTTY),
        "env vt100 1 cat",
        "tab\there, two",
        "",
        "blank",
        "oops",
        "last without newline",
    ];
    let mut sorted = msgs.clone();
    sorted.sort();
    let mut expected: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(sorted, expected, "{recs:#?}");
    for r in &recs {
        assert!(!r.msg.contains(&b'\r') && !r.msg.contains(&0x1b), "{r:?}");
        let expect = if r.msg_lossy().contains("oops") {
            "err"
        } else {
            "info"
        };
        assert_eq!(r.severity, expect, "{r:?}");
    }
    run.assert_nothing_left();
}

/// `--ready log:` reads the pty like the pipe.
#[test]
fn readiness_from_a_pty_line() {
    let dir = Scratch::new("pty-ready");
    let file = dir.file("ready");
    let mut run = Run::sigshim(&[
        "--log",
        "inherit",
        "--ready",
        "log:^up",
        "--ready-file",
        &file,
        "--stdout-pty",
        "--",
        "sh",
        "-c",
        "echo up; exec sleep 100",
    ]);
    run.expect("up");
    assert!(eventually(TIMEOUT, || Path::new(&file).exists()));
    run.signal(libc::SIGTERM);
    run.wait();
    run.assert_nothing_left();
}

/// No pseudo-terminal to be had (a private mount namespace whose /dev/pts is empty): one
/// warning, and the app runs with a pipe.
#[test]
fn without_a_pty_the_pipe_and_one_warning() {
    if !require_root("a private mount namespace") {
        return;
    }
    let script = format!(
        "mount -t tmpfs none /dev/pts && exec {} --log inherit --ready log:^hello --stdout-pty -- sh -c 'echo hello; [ -t 1 ] || echo not-a-tty'",
        sigshim()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c", &script]);
    let mut run = Run::start(cmd);
    run.expect("hello");
    run.expect("not-a-tty");
    assert_eq!(run.wait().code(), Some(0));
    let err = run.stderr();
    assert_eq!(
        err.matches("cannot open a pseudo-terminal").count(),
        1,
        "{err}"
    );
}

#[test]
fn stdout_pty_needs_capture() {
    let mut cmd = Command::new(sigshim());
    cmd.args(["--log", "inherit", "--stdout-pty", "--", "true"]);
    let out = output_within(&mut cmd, None, TIMEOUT);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("sigshim: usage: --stdout-pty"));
}
