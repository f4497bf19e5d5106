//! sigshim-probe: the small child program the integration tests run under sigshim.
//!
//! It announces itself (`ready pid=N pgid=G`) and then prints one line per event, so tests
//! synchronise on its output, never on sleeps (dumb-init's `print_signals` idea). Every line
//! goes out in one write(2) on an unbuffered stdout, so lines from a child and a grandchild
//! sharing the pipe never interleave mid-line.
//!
//! Modes:
//!   legacy [MARKER] [LINGER_MS]  traps only SIGINT: on INT prints `cleanup`, writes "clean" to
//!                                MARKER, waits LINGER_MS, prints `clean-exit`, exits 0. SIGTERM
//!                                keeps its default action (dies uncleanly). USR2 prints
//!                                `reload`. Announces readiness as `announce_readiness` says.
//!   signals [--grandchild]       prints `child got N` for every signal; with --grandchild also
//!                                forks a grandchild in its group that prints `gc got N`.
//!                                Exits 0 after SIGTERM.
//!   ignore-stop                  ignores TERM and INT; forks a grandchild in its group and one
//!                                that calls setsid(), both ignoring too; prints their PIDs.
//!   orphan                       forks a child that forks a grandchild and exits at once; the
//!                                grandchild prints `orphan pid=N` and exits (re-parented first).
//!   exit N                       exits with N.
//!   raise SIG                    dies of signal number SIG.
//!   status                       prints `SigBlk=.. SigIgn=..` from /proc/self/status first
//!                                (combine: `status legacy ...`).

#![no_main]

use std::io::Write;
use std::time::Duration;

fn say(line: &str) {
    let mut buf = line.as_bytes().to_vec();
    buf.push(b'\n');
    // One write per line; a closed stdout is not the probe's problem.
    // SAFETY: write on fd 1 with a valid buffer.
    unsafe { libc::write(1, buf.as_ptr().cast(), buf.len()) };
}

fn pid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

fn ready() {
    // SAFETY: getpgrp has no preconditions.
    let pgid = unsafe { libc::getpgrp() };
    say(&format!("ready pid={} pgid={pgid}", pid()));
}

/// Every signal but the synchronous faults, as the kernel's 64-bit set: the C library would
/// leave out its own real-time signals (glibc 32 and 33), whose default action would then
/// kill the probe before it could report them.
fn all_signals() -> u64 {
    let mut set = u64::MAX;
    for s in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL] {
        set &= !(1u64 << (s - 1));
    }
    set
}

fn block_all() -> u64 {
    let set = all_signals();
    // SAFETY: rt_sigprocmask with a valid pointer to an 8-byte set.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &set as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    set
}

fn wait_signal(set: &u64) -> i32 {
    loop {
        // SAFETY: rt_sigtimedwait with a valid 8-byte set, no info and no timeout.
        let s = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                set as *const u64,
                std::ptr::null_mut::<libc::siginfo_t>(),
                std::ptr::null::<libc::timespec>(),
                8usize,
            )
        };
        if s > 0 {
            return s as i32;
        }
    }
}

fn ignore(sig: i32) {
    // SAFETY: setting a disposition to SIG_IGN.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
}

fn status() {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    say(&format!(
        "SigBlk={} SigIgn={}",
        field("SigBlk:"),
        field("SigIgn:")
    ));
}

fn legacy(marker: Option<&str>, linger_ms: u64) -> ! {
    // Like Python, sh and most C programs, an INT that was ignored when the program started
    // stays ignored: the app never learns of the stop.
    // SAFETY: querying a disposition into a zeroed struct.
    let inherited_ignore = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old);
        old.sa_sigaction == libc::SIG_IGN
    };
    if inherited_ignore {
        say("SIGINT ignored at start: not trapping it");
        ready();
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }
    // Only INT (stop) and USR2 (reload) are handled; TERM keeps whatever disposition the probe
    // was started with.
    let set = (1u64 << (libc::SIGINT - 1)) | (1u64 << (libc::SIGUSR2 - 1));
    // SAFETY: rt_sigprocmask with a valid pointer to an 8-byte set.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &set as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    ready();
    announce_readiness();
    while wait_signal(&set) == libc::SIGUSR2 {
        say("reload");
    }
    say("cleanup");
    if let Some(m) = marker {
        std::fs::write(m, "clean\n").expect("write marker");
    }
    std::thread::sleep(Duration::from_millis(linger_ms)); // the app's own slow cleanup, not a test sync
    say("clean-exit");
    std::process::exit(0);
}

/// Readiness the way real services announce it, chosen by environment variables so that any
/// mode can use it (the tests of `--ready`):
///   PROBE_LISTEN=PORT      listen on 127.0.0.1:PORT (the listener stays open)
///   PROBE_READY_FILE=PATH  create PATH
///   PROBE_READY_FD=N       write "\n" to fd N and close it (s6's notification-fd)
///   PROBE_NOTIFY=1         send READY=1 and a STATUS to $NOTIFY_SOCKET (sd_notify(3))
/// Each prints a line saying it did, after doing it.
fn announce_readiness() {
    if let Ok(port) = std::env::var("PROBE_LISTEN") {
        let l = std::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>().expect("port")))
            .expect("listen");
        say(&format!("listening on {}", l.local_addr().expect("addr")));
        std::mem::forget(l);
    }
    if let Ok(path) = std::env::var("PROBE_READY_FILE") {
        std::fs::write(&path, "").expect("ready file");
        say(&format!("created {path}"));
    }
    if let Some(fd) = std::env::var("PROBE_READY_FD")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
    {
        // SAFETY: writing one byte to and closing a descriptor the caller handed us.
        unsafe {
            libc::write(fd, b"\n".as_ptr().cast(), 1);
            libc::close(fd);
        }
        say(&format!("notified fd {fd}"));
    }
    if std::env::var("PROBE_NOTIFY").as_deref() == Ok("1") {
        let path = std::env::var("NOTIFY_SOCKET").expect("NOTIFY_SOCKET not set");
        let sock = std::os::unix::net::UnixDatagram::unbound().expect("socket");
        let msg = format!("READY=1\nSTATUS=probe serving\nMAINPID={}\n", pid());
        let sent = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .expect("abstract address");
                sock.send_to_addr(msg.as_bytes(), &addr)
            }
            None => sock.send_to(msg.as_bytes(), &path),
        };
        sent.expect("sd_notify");
        say(&format!("sent READY=1 to {path}"));
    }
}

fn signals(grandchild: bool) -> ! {
    let set = block_all();
    let role = if grandchild {
        // SAFETY: single-threaded probe; the child only loops on sigwaitinfo and writes.
        match unsafe { libc::fork() } {
            0 => "gc",
            _ => "child",
        }
    } else {
        "child"
    };
    if role == "gc" {
        say(&format!("gc ready pid={}", pid()));
    } else {
        ready();
    }
    loop {
        let s = wait_signal(&set);
        say(&format!("{role} got {s}"));
        if s == libc::SIGTERM {
            std::process::exit(0);
        }
    }
}

fn ignore_stop() -> ! {
    ignore(libc::SIGTERM);
    ignore(libc::SIGINT);
    // SAFETY: fork in a single-threaded program; children only call async-signal-safe
    // functions before pausing.
    unsafe {
        let a = libc::fork();
        if a == 0 {
            loop {
                libc::pause();
            }
        }
        let b = libc::fork();
        if b == 0 {
            libc::setsid();
            loop {
                libc::pause();
            }
        }
        ready();
        say(&format!("grandchildren group={a} setsid={b}"));
        loop {
            libc::pause();
        }
    }
}

fn orphan() -> ! {
    let set = block_all();
    // SAFETY: fork in a single-threaded program.
    unsafe {
        let c = libc::fork();
        if c == 0 {
            let parent = libc::getpid();
            let g = libc::fork();
            if g == 0 {
                // Wait until re-parented, so the orphan really is sigshim's to reap.
                while libc::getppid() == parent {
                    libc::sched_yield();
                }
                say(&format!("orphan pid={}", libc::getpid()));
                libc::_exit(0);
            }
            libc::_exit(0);
        }
        let mut st = 0;
        libc::waitpid(c, &mut st, 0);
    }
    ready();
    loop {
        let s = wait_signal(&set);
        say(&format!("child got {s}"));
        if s == libc::SIGTERM {
            std::process::exit(0);
        }
    }
}

// A C `main` instead of Rust's: the Rust runtime sets SIGPIPE to ignored before `fn main`
// runs, which would hide what sigshim handed over in the dispositions the probe reports.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    run();
    0
}

fn run() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args: &[String] = &args;
    if args.first().map(String::as_str) == Some("status") {
        status();
        args = &args[1..];
    }
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("legacy") => legacy(
            arg(1).filter(|m| !m.is_empty()),
            arg(2).and_then(|n| n.parse().ok()).unwrap_or(0),
        ),
        Some("signals") => signals(arg(1) == Some("--grandchild")),
        Some("ignore-stop") => ignore_stop(),
        Some("orphan") => orphan(),
        Some("exit") => std::process::exit(arg(1).and_then(|n| n.parse().ok()).unwrap_or(0)),
        Some("raise") => {
            let s: i32 = arg(1).and_then(|n| n.parse().ok()).expect("raise SIGNUM");
            // SAFETY: restoring the default action and raising a signal on ourselves.
            unsafe {
                libc::signal(s, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, s);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::raise(s);
            }
            std::process::exit(99);
        }
        Some("ready") => {
            // Block first: a signal sent the moment `ready` is read must not find the default
            // action still in place.
            let set = block_all();
            ready();
            wait_signal(&set);
        }
        _ => {
            let _ = writeln!(std::io::stderr(), "usage: see tests/probe/main.rs");
            std::process::exit(64);
        }
    }
}
