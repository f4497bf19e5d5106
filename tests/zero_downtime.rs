//! Restarts without downtime (issue 14), measured: a real HTTP app (Python's http.server,
//! tests/support/http_app.py) on a socket sigshim holds (`--listen`), under a steady load of
//! fresh connections from this test, restarted again and again with `--restart-on USR1`.
//!
//! Overlap: the new generation starts on the same socket, and the old one is stopped only
//! once the new one is ready: no connection is refused or reset, and a slow request in flight
//! during a restart completes. Stop-then-start, for contrast: nothing is refused either (the
//! socket stays open in sigshim and connections wait in its backlog), but each restart is a
//! gap that requests spend waiting. The numbers go to stderr (`--nocapture`) and into
//! BENCHMARKS.md.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/http_app.py");

/// A free port on 127.0.0.1 (bound and released: another process could take it in between,
/// which would show as a bind failure, never as a wrong result).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request on a fresh connection.
fn get(port: u16, path: &str) -> Result<String, std::io::Error> {
    // Each failure says where it happened (and from which local port), to tell a refused or
    // reset connection from a lost answer.
    let at = |what: &'static str, local: Option<std::net::SocketAddr>| {
        move |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("{what} (from {local:?}): {e}"))
        }
    };
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(at("connect", None))?;
    let local = s.local_addr().ok();
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .map_err(at("send", local))?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(at("answer", local))?;
    if !out.starts_with("HTTP/1.0 200") || !out.contains("\r\n\r\ngen ") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("incomplete answer: {out:?}"),
        ));
    }
    Ok(out)
}

/// Clients requesting in a loop, each on a fresh connection, counting what happened.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    slowest: Arc<Mutex<Duration>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let slowest = Arc::new(Mutex::new(Duration::ZERO));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failed, slowest) =
                    (stop.clone(), ok.clone(), failed.clone(), slowest.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let t0 = Instant::now();
                        match get(port, "/") {
                            Ok(_) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                let took = t0.elapsed();
                                let mut s = slowest.lock().unwrap();
                                *s = (*s).max(took);
                            }
                            Err(e) => failed.lock().unwrap().push(format!("{:?}: {e}", e.kind())),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            slowest,
            threads,
        }
    }

    /// Stops the clients; returns (answers, failures, slowest answer).
    fn finish(self) -> (u64, Vec<String>, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failed = self.failed.lock().unwrap().clone();
        let slowest = *self.slowest.lock().unwrap();
        (self.ok.load(Ordering::Relaxed), failed, slowest)
    }
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Outcome {
    restarts: usize,
    took: Duration,
    ok: u64,
    failed: Vec<String>,
    slowest: Duration,
    slow_request: Result<String, std::io::Error>,
    fds: (usize, usize),
    rss: (u64, u64),
}

/// sigshim with `--listen` and `--restart-on USR1` in `mode` in front of the HTTP app, `n`
/// restarts under load, a slow request across the first one.
fn restarts(mode: &str, n: usize, starter: bool) -> Outcome {
    let port = free_port();
    let mut cmd = Command::new(sigshim());
    cmd.args([
        "--listen",
        &format!("tcp:127.0.0.1:{port}"),
        "--restart-on",
        "USR1",
        "--restart-mode",
        mode,
        "--stop-signal",
        "INT",
        "--kill-after",
        "10s",
        "--ready",
        "log:^ready",
        "--log",
        "inherit",
        "--",
        "python3",
        APP,
    ]);
    if starter {
        cmd.env("HTTP_APP_STARTER", "1");
    }
    let mut run = Run::start(cmd);
    let first = field(&run.expect("ready pid="), "pid");
    let shim = run.pid();
    let before = (fd_count(shim), rss_kib(shim));
    let load = Load::start(port, 4);
    // A slow request, in flight when the first restart begins.
    let slow = std::thread::spawn(move || get(port, "/slow"));
    let handling = run.expect("slow request in flight");
    assert_eq!(field(&handling, "pid"), first, "{handling}");
    let t0 = Instant::now();
    let mut last = first;
    for i in 0..n {
        run.signal(libc::SIGUSR1);
        let pid = field(&run.expect("ready pid="), "pid");
        assert_ne!(pid, last, "restart {i}: the same app answered ready");
        last = pid;
    }
    let took = t0.elapsed();
    let (ok, failed, slowest) = load.finish();
    let slow_request = slow.join().unwrap();
    // Old generations gone; sigshim's descriptors and memory where they were.
    assert!(
        eventually(Duration::from_secs(15), || leftovers(&run.tag).len() == 2),
        "old generations left: {:?}",
        leftovers(&run.tag)
    );
    // A descriptor can be in use for a moment (the last old generation's pipes until their
    // EOF is read, a pidfd during a scan): the count is compared once it has settled.
    eventually(Duration::from_secs(5), || fd_count(shim) <= before.0);
    let after = (fd_count(shim), rss_kib(shim));
    run.signal(libc::SIGTERM);
    run.expect(&format!("stopped pid={last}"));
    let st = run.wait();
    assert_eq!(st.code(), Some(0), "{}", run.stderr());
    run.assert_nothing_left();
    Outcome {
        restarts: n,
        took,
        ok,
        failed,
        slowest,
        slow_request,
        fds: (before.0, after.0),
        rss: (before.1, after.1),
    }
}

fn report(what: &str, o: &Outcome) {
    eprintln!(
        "{what}: {} restarts in {:.1?} ({:.0} ms each), {} answers, {} failed, slowest answer {:.0?}; sigshim fds {} -> {}, RSS {} -> {} KiB",
        o.restarts,
        o.took,
        o.took.as_secs_f64() * 1000.0 / o.restarts as f64,
        o.ok,
        o.failed.len(),
        o.slowest,
        o.fds.0,
        o.fds.1,
        o.rss.0,
        o.rss.1
    );
}

/// 100 overlap restarts under load: nothing refused or reset, the slow request answered,
/// sigshim's descriptors the same and its memory flat, no old generation left.
#[test]
fn overlap_restarts_drop_no_connection() {
    let o = restarts("overlap", 100, false);
    report("overlap", &o);
    assert!(
        o.failed.is_empty(),
        "failed requests: {:?}",
        &o.failed[..o.failed.len().min(5)]
    );
    assert!(o.ok > 100, "only {} answers", o.ok);
    let slow = o
        .slow_request
        .expect("the slow request in flight during a restart");
    assert!(slow.contains("gen 1 "), "{slow}");
    assert_eq!(o.fds.0, o.fds.1, "sigshim's descriptors grew");
    assert!(
        o.rss.1 < o.rss.0 + 1024,
        "sigshim's RSS grew from {} to {} KiB",
        o.rss.0,
        o.rss.1
    );
}

/// Stop-then-start, for contrast: the held socket keeps connections waiting instead of
/// refused, but each restart is a gap of at least the app's start-up that a request can spend
/// waiting in the backlog.
#[test]
fn stop_then_start_keeps_connections_waiting() {
    let o = restarts("stop-start", 20, false);
    report("stop-start", &o);
    assert!(
        o.failed.is_empty(),
        "failed requests: {:?}",
        &o.failed[..o.failed.len().min(5)]
    );
    let slow = o
        .slow_request
        .expect("the slow request in flight during a restart");
    assert!(slow.contains("gen 1 "), "{slow}");
    assert_eq!(o.fds.0, o.fds.1, "sigshim's descriptors grew");
}

/// An app written against server-starter's environment (SERVER_STARTER_PORT) restarts
/// without dropping a connection too.
#[test]
fn a_server_starter_app_restarts_without_dropping() {
    let o = restarts("overlap", 10, true);
    report("overlap, server-starter app", &o);
    assert!(
        o.failed.is_empty(),
        "failed requests: {:?}",
        &o.failed[..o.failed.len().min(5)]
    );
    assert!(o.slow_request.is_ok());
}
