//! `--listen` (issue 14) against the real binary: what a unix socket looks like on disk and to
//! the app, what happens to a socket file left behind or still served, and the errors an
//! operator sees for a busy port or a typo. The zero-downtime restarts on a held socket are in
//! `tests/zero_downtime.rs`.

mod support;

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use support::*;

/// An app that reports what it was handed (the LISTEN_* variables, what fd 3 is bound to) and
/// answers one connection on fd 3 with its PID.
const APP: &str = r#"
import os, socket, sys
s = socket.socket(fileno=3)
print("pid=%d listen_pid=%s fds=%s names=%s starter=%s addr=%s" % (
    os.getpid(), os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS"),
    os.environ.get("LISTEN_FDNAMES"), os.environ.get("SERVER_STARTER_PORT"),
    s.getsockname()), flush=True)
c, _ = s.accept()
c.sendall(b"served by %d\n" % os.getpid())
c.close()
"#;

/// A unix socket with a mode and a name: the file has that mode, the app gets the socket at
/// fd 3 with LISTEN_PID naming itself, and a client reaches the app through it.
#[test]
fn a_unix_socket_is_handed_to_the_app() {
    let dir = Scratch::new("listen-unix");
    let path = dir.file("api.sock");
    let mut cmd = Command::new(sigshim());
    cmd.args([
        "--log",
        "inherit",
        "--listen",
        &format!("unix:{path},mode=0660,name=api"),
        "--",
        "python3",
        "-c",
        APP,
    ]);
    let mut run = Run::start(cmd);
    let line = run.expect("listen_pid=");
    let pid = field(&line, "pid");
    assert!(line.contains(&format!("listen_pid={pid} ")), "{line}");
    assert!(line.contains(" fds=1 names=api "), "{line}");
    assert!(
        line.contains(&format!("starter={path}=3 addr={path}")),
        "{line}"
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let mut c = UnixStream::connect(&path).unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, format!("served by {pid}\n"));
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
}

/// A socket file left by an earlier run (nobody answers on it) is replaced; one that another
/// process still serves is not taken over: sigshim refuses to start and says why.
#[test]
fn a_stale_socket_file_is_replaced_a_live_one_is_not() {
    let dir = Scratch::new("listen-stale");
    let path = dir.file("app.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(std::fs::metadata(&path).unwrap().file_type().is_socket());
    let mut cmd = Command::new(sigshim());
    cmd.args([
        "--log",
        "inherit",
        "--listen",
        &format!("unix:{path}"),
        "--",
        "python3",
        "-c",
        APP,
    ]);
    let mut run = Run::start(cmd);
    let pid = field(&run.expect("listen_pid="), "pid");
    let mut c = UnixStream::connect(&path).unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, format!("served by {pid}\n"));
    assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());

    let live = dir.file("live.sock");
    let _server = UnixListener::bind(&live).unwrap();
    let out = Command::new(sigshim())
        .args(["--listen", &format!("unix:{live}"), "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains(&format!("--listen unix:{live}: cannot listen")),
        "{err}"
    );
    // The live server's socket is still there and still answers.
    assert!(UnixStream::connect(&live).is_ok());
}

/// A port another process holds: sigshim does not start the app (125) and names the port and
/// the reason; it never shares the port with SO_REUSEPORT.
#[test]
fn a_busy_port_is_an_error_not_a_shared_port() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let out = Command::new(sigshim())
        .args([
            "--listen",
            &format!("tcp:127.0.0.1:{port}"),
            "--",
            "sh",
            "-c",
            "echo the app ran",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains(&format!("tcp:127.0.0.1:{port}")), "{err}");
    assert!(err.to_lowercase().contains("in use"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("the app ran"));
}

/// Typos in a spec are usage errors (exit 2) that say what is wrong, before anything runs.
#[test]
fn spec_typos_are_usage_errors() {
    for (spec, says) in [
        ("tcp:8080", "expected tcp:[HOST]:PORT"),
        ("tcp:127.0.0.1:http", "invalid port"),
        ("udp:127.0.0.1:53", "expected tcp:[HOST]:PORT or unix:PATH"),
        ("unix:relative.sock", "absolute"),
        ("tcp::8080,mode=0600", "for unix"),
        ("tcp::8080,backlgo=5", "unknown option 'backlgo'"),
        ("unix:/run/x.sock,name=a:b", "without ':'"),
    ] {
        let out = Command::new(sigshim())
            .args(["--listen", spec, "--", "sh", "-c", "echo the app ran"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {err}");
        assert!(err.contains(says), "{spec}: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("the app ran"));
    }
}
