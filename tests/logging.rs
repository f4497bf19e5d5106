//! The log path, against the real binary and real receivers: a private systemd-journald and a
//! private rsyslogd (tests/harness/*.sh, driven by support/daemons.rs), or a socket the test
//! owns. Never the host's /dev/log or journal.
//!
//! Children here are mostly `sh -c` scripts that `cat` files the test wrote, so every byte the
//! child emits (invalid UTF-8, `\r`, NUL, a final line without `\n`) is known exactly and the
//! records can be compared byte for byte. With capture on, the child's stdout goes to the log,
//! not to the test: the child tells its PID by writing `$$` to a file (sigshim execs `sh`
//! directly, so that is the PID the records must carry), and "everything has arrived" is a
//! barrier record the test sends after sigshim exits (both daemons handle their socket in
//! order). sigshim's own diagnostics may reach the same destination under the identifier
//! `sigshim`; they are not the app's records and are left aside.

mod support;
// The daemon API lives next to the harness; included here by path so the harness module needs
// no change (it also compiles as `support::daemons`).
#[path = "support/daemons.rs"]
mod daemons;

use daemons::{
    JournalEntry, Journald, Rsyslog, SyslogRecord, field_bytes, field_str, parse_flat_json,
};
use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// The identifier of sigshim's own diagnostics at the log destination.
const SIGSHIM_ID: &str = "sigshim";

/// The PID the child script wrote to `dir/pid` (its `$$`), once it is there.
fn script_pid(dir: &Path) -> i32 {
    let path = dir.join("pid");
    eventually_value(TIMEOUT, || {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|s| s.ends_with('\n'))
            .and_then(|s| s.trim().parse().ok())
            .ok_or(())
    })
    .unwrap_or_else(|()| panic!("the child never wrote its PID to {}", path.display()))
}

/// N from sigshim's exit summary `sigshim: warning: N lines went to stderr because ...`.
fn fallback_count(stderr: &str) -> Option<usize> {
    stderr.lines().find_map(|l| {
        let before = l.split_once(" went to stderr")?.0;
        let before = before
            .strip_suffix(" lines")
            .or_else(|| before.strip_suffix(" line"))?;
        let digits = before.rsplit(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    })
}

/// sigshim's stderr once `done` holds for it, or as it is after TIMEOUT. `Run` collects stderr
/// on a thread, which may not have read the last bytes yet when `wait` sees the exit.
fn stderr_once(run: &Run, done: impl Fn(&str) -> bool) -> String {
    eventually_value(TIMEOUT, || {
        let err = run.stderr();
        if done(&err) { Ok(err) } else { Err(err) }
    })
    .unwrap_or_else(|err| err)
}

/// Lines on sigshim's stderr that are not sigshim's own (`sigshim: ...`): the child's lines,
/// written there verbatim while the destination was unreachable.
fn fallback_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.starts_with("sigshim:"))
        .collect()
}

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("sigshim: warning:"))
        .collect()
}

/// At most 100 characters of `bytes`, escaped, for failure messages.
fn show(bytes: &[u8]) -> String {
    let s = bytes.escape_ascii().to_string();
    if s.len() > 100 {
        format!("{}... ({} bytes)", &s[..100], bytes.len())
    } else {
        s
    }
}

/// `prefix` followed by a-z repeated up to `len` bytes: a long line whose pieces differ.
fn pattern(prefix: &[u8], len: usize) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend((0..len - prefix.len()).map(|i| b'a' + (i % 26) as u8));
    v
}

/// What a child writes on one stream, and the records that must come of it.
#[derive(Default)]
struct Stream {
    /// The bytes, in chunks, so that the child can alternate between stdout and stderr.
    chunks: Vec<Vec<u8>>,
    /// (message, priority) of each line, in order.
    want: Vec<(Vec<u8>, u8)>,
}

impl Stream {
    fn raw(&mut self, bytes: &[u8]) {
        if self.chunks.is_empty() {
            self.chunks.push(Vec::new());
        }
        self.chunks.last_mut().unwrap().extend_from_slice(bytes);
    }

    /// A line the child writes as `written` + `\n`, expected as `msg` at `priority`.
    fn line(&mut self, written: &[u8], msg: &[u8], priority: u8) {
        self.raw(written);
        self.raw(b"\n");
        self.want.push((msg.to_vec(), priority));
    }

    /// The stream's last bytes, with no `\n`: flushed at EOF as a record of its own.
    fn unterminated(&mut self, written: &[u8], priority: u8) {
        self.raw(written);
        self.want.push((written.to_vec(), priority));
    }

    /// `NAME i` for i in `range`; every `every`-th line is written as `<level>NAME i`, which
    /// arrives at `level` without the prefix when prefixes are honoured.
    fn numbered(
        &mut self,
        name: &str,
        range: RangeInclusive<usize>,
        priority: u8,
        every: usize,
        level: u8,
    ) {
        for i in range {
            let msg = format!("{name} {i}");
            if i % every == 0 {
                self.line(format!("<{level}>{msg}").as_bytes(), msg.as_bytes(), level);
            } else {
                self.line(msg.as_bytes(), msg.as_bytes(), priority);
            }
        }
        self.chunks.push(Vec::new());
    }
}

/// Writes both streams' chunks into `dir` and returns a `sh -c` script that writes its PID to
/// `dir/pid` (see [`script_pid`]), cats the chunks in turn (stdout chunk, stderr chunk, ...)
/// and exits at once.
fn child_script(dir: &Path, out: &Stream, err: &Stream) -> String {
    let mut cmds = vec![format!("echo $$ > '{}'", dir.join("pid").display())];
    for i in 0..out.chunks.len().max(err.chunks.len()) {
        for (stream, name, redirect) in [(out, "out", ""), (err, "err", " >&2")] {
            if let Some(chunk) = stream.chunks.get(i).filter(|c| !c.is_empty()) {
                let path = dir.join(format!("{name}.{i}"));
                std::fs::write(&path, chunk).expect("write chunk");
                cmds.push(format!("cat '{}'{redirect}", path.display()));
            }
        }
    }
    cmds.join(" && ")
}

/// Checks the records of one stream against what the child wrote: the same lines, each exactly
/// once, in order, each at its priority. A line longer than `max` may arrive as several
/// consecutive records, each at most `max` bytes, that join back into the line.
fn check_stream(what: &str, got: &[(Vec<u8>, u8)], want: &[(Vec<u8>, u8)], max: usize) {
    let mut g = 0;
    for (i, (line, priority)) in want.iter().enumerate() {
        let record = |g: usize| {
            got.get(g).unwrap_or_else(|| {
                panic!(
                    "{what}: ran out of records at line {i} of {} ({}): {} records in all, the \
                     last one {}",
                    want.len(),
                    show(line),
                    got.len(),
                    got.last().map_or("-".into(), |r| show(&r.0))
                )
            })
        };
        if line.len() <= max {
            let (msg, p) = record(g);
            assert!(
                msg == line && p == priority,
                "{what}: line {i} was {} at priority {priority}, record {g} is {} at {p}",
                show(line),
                show(msg)
            );
            g += 1;
        } else {
            let first = g;
            let mut joined = Vec::new();
            while joined.len() < line.len() {
                let (msg, p) = record(g);
                assert!(
                    !msg.is_empty() && msg.len() <= max,
                    "{what}: piece {} of the {}-byte line {i} has {} bytes (max {max})",
                    g - first,
                    line.len(),
                    msg.len()
                );
                assert_eq!(p, priority, "{what}: piece {} of line {i}", g - first);
                joined.extend_from_slice(msg);
                g += 1;
            }
            assert!(
                joined == *line,
                "{what}: the {} records of the {}-byte line {i} do not join back into it: {}",
                g - first,
                line.len(),
                show(&joined)
            );
        }
    }
    assert!(
        g == got.len(),
        "{what}: {} records more than lines written; the first extra: {}",
        got.len() - g,
        show(&got[g].0)
    );
}

fn vm_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of proc(5) (utime, stime); `after` starts at field 3.
    let ticks = f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}

fn fd_target(pid: i32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/fd/{fd}: {e}"))
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// journald

/// 1. Through a real journald: 100,000 stdout and 1,000 stderr lines from a child that exits as
///    soon as it has written them, a 200 KiB line, a line of odd bytes, and a final line without
///    `\n`. Every line arrives exactly once, in order per stream, with the identity and priority
///    of the contract.
#[test]
fn journald_every_line_once_in_order() {
    let Some(jd) = Journald::start("jd-lines") else {
        return;
    };
    let dir = Scratch::new("jd-lines");
    const MAX: usize = 64 * 1024;
    let (mut out, mut err) = (Stream::default(), Stream::default());
    for c in 0..10 {
        out.numbered("out", c * 10_000 + 1..=(c + 1) * 10_000, 6, 1000, 4);
        err.numbered("err", c * 100 + 1..=(c + 1) * 100, 3, 50, 5);
    }
    let big = pattern(b"big ", 200 * 1024);
    out.line(&big, &big, 6);
    // Invalid UTF-8, a lone \r, NUL, a tab, an escape sequence: data, one line (the NUL ends a
    // journal record, as in journald's own stdout path; the marks join the two back).
    let odd = b"odd \xff\xfe \xc3( cr\rhere nul\x00here tab\tend \x1b[31m";
    out.line(odd, odd, 6);
    out.unterminated(b"final line without newline", 6);
    let script = child_script(&dir, &out, &err);

    let tag = "jd-lines";
    let max = MAX.to_string();
    let mut run = Run::sigshim(&[
        "--log",
        "journald",
        "--journal-socket",
        jd.socket_str(),
        "--tag",
        tag,
        "--max-line",
        &max,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let st = run.wait_for(Duration::from_secs(60));
    let stderr = run.stderr();
    assert_eq!(st.code(), Some(0), "{stderr}");
    let pid = script_pid(&dir).to_string();
    assert!(
        fallback_lines(&stderr).is_empty() && fallback_count(&stderr).is_none(),
        "lines went to stderr although journald was up:\n{}",
        &stderr[..stderr.len().min(2000)]
    );

    jd.barrier();
    let entries = jd.entries_for(
        tag,
        &[
            "MESSAGE",
            "PRIORITY",
            "SYSLOG_IDENTIFIER",
            "SYSLOG_PID",
            "SYSLOG_FACILITY",
            "SIGSHIM_STREAM",
            "SIGSHIM_LINE_BREAK",
        ],
    );
    for e in &entries {
        let short = show(&field_bytes(e, "MESSAGE").expect("MESSAGE"));
        assert_eq!(field_str(e, "SYSLOG_PID"), Some(pid.clone()), "{short}");
        assert_eq!(
            field_str(e, "SYSLOG_FACILITY").as_deref(),
            Some("3"),
            "{short}"
        );
    }
    let (got_out, got_err) = rejoin_journal(&entries, MAX, &[6, 4]);
    check_stream("stdout", &got_out, &out.want, usize::MAX);
    check_stream("stderr", &got_err, &err.want, usize::MAX);
    run.assert_nothing_left();
}

/// Lines as (bytes, priority).
type Lines = Vec<(Vec<u8>, u8)>;

/// Puts the app's lines back together from journal records, as a reader of sigshim's records
/// would (README: a split line's records carry SIGSHIM_STREAM, all but its last
/// SIGSHIM_LINE_BREAK=line-max or =nul); a whole line's stream is told by its priority
/// (`out_levels`). Every piece is checked to be at most `max` bytes and at its line's priority.
fn rejoin_journal(entries: &[JournalEntry], max: usize, out_levels: &[u8]) -> (Lines, Lines) {
    let mut done: [Lines; 2] = [Vec::new(), Vec::new()];
    // Per stream: the line being put together, and whether the last piece ended at a NUL.
    let mut open: [Option<(Vec<u8>, u8, bool)>; 2] = [None, None];
    for e in entries {
        let msg = field_bytes(e, "MESSAGE").expect("MESSAGE");
        let short = show(&msg);
        let priority: u8 = field_str(e, "PRIORITY")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no PRIORITY: {short}"));
        assert!(
            msg.len() <= max,
            "a {}-byte record (max {max}): {short}",
            msg.len()
        );
        let i = match field_str(e, "SIGSHIM_STREAM").as_deref() {
            Some("stdout") => 0,
            Some("stderr") => 1,
            Some(other) => panic!("SIGSHIM_STREAM={other}: {short}"),
            None if out_levels.contains(&priority) => 0,
            None => 1,
        };
        let brk = field_str(e, "SIGSHIM_LINE_BREAK");
        let (mut line, p0) = match open[i].take() {
            Some((mut line, p0, nul)) => {
                if nul {
                    line.push(0);
                }
                assert_eq!(
                    priority, p0,
                    "a piece at another priority than its line: {short}"
                );
                (line, p0)
            }
            None => (Vec::new(), priority),
        };
        line.extend_from_slice(&msg);
        match brk.as_deref() {
            Some("line-max") => open[i] = Some((line, p0, false)),
            Some("nul") => open[i] = Some((line, p0, true)),
            None | Some("eof") => done[i].push((line, p0)),
            Some(other) => panic!("SIGSHIM_LINE_BREAK={other}: {short}"),
        }
    }
    assert!(
        open.iter().all(Option::is_none),
        "a split line never ended: {open:?}"
    );
    let [out, err] = done;
    (out, err)
}

/// 1a. The same through journald's stdout stream protocol, sigshim's default where the stream
///     socket is there (no --max-line): every line exactly once, in order per stream, under the
///     app's identifier, `_PID` (the app's credentials go with the stream, sigshim being root
///     here), facility and per-stream priority, `<N>` prefixes honoured; journald itself cuts
///     the 200 KiB line at its LineMax and the NUL line at the NUL, and marks each cut
///     (`_LINE_BREAK=line-max` / `nul`) so the pieces join back, and the last line without a
///     `\n` comes with `_LINE_BREAK=eof`. Nothing went through the native socket.
#[test]
fn journald_stream_every_line_once_in_order() {
    let Some(jd) = Journald::start("jd-stream") else {
        return;
    };
    let dir = Scratch::new("jd-stream");
    let (mut out, mut err) = (Stream::default(), Stream::default());
    for c in 0..10 {
        out.numbered("out", c * 10_000 + 1..=(c + 1) * 10_000, 6, 1000, 4);
        err.numbered("err", c * 100 + 1..=(c + 1) * 100, 3, 50, 5);
    }
    let big = pattern(b"big ", 200 * 1024);
    out.line(&big, &big, 6);
    let odd = b"odd \xff\xfe \xc3( cr\rhere nul\x00here tab\tend \x1b[31m";
    out.line(odd, odd, 6);
    // A line that starts like a prefix but is not one sigshim honours (--level-prefix reads
    // one digit 0-7): journald must not take it either.
    out.line(b"<9>not a prefix", b"<9>not a prefix", 6);
    out.unterminated(b"final line without newline", 6);
    let script = child_script(&dir, &out, &err);

    let tag = "jd-stream";
    let mut run = Run::sigshim(&[
        "--log",
        "journald",
        "--journal-socket",
        jd.socket_str(),
        "--tag",
        tag,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let st = run.wait_for(Duration::from_secs(60));
    let stderr = run.stderr();
    assert_eq!(st.code(), Some(0), "{stderr}");
    let pid = script_pid(&dir).to_string();
    assert!(
        fallback_lines(&stderr).is_empty() && fallback_count(&stderr).is_none(),
        "lines went to stderr although journald was up:\n{}",
        &stderr[..stderr.len().min(2000)]
    );

    jd.barrier();
    let entries = jd.entries_for(
        tag,
        &[
            "MESSAGE",
            "PRIORITY",
            "SYSLOG_FACILITY",
            "SYSLOG_PID",
            "_PID",
            "_TRANSPORT",
            "_STREAM_ID",
            "_LINE_BREAK",
        ],
    );
    let mut streams: Vec<String> = Vec::new();
    let mut done: [Lines; 2] = [Vec::new(), Vec::new()];
    let mut open: [Option<(Vec<u8>, u8, bool)>; 2] = [None, None];
    let mut breaks = HashSet::new();
    for e in &entries {
        let msg = field_bytes(e, "MESSAGE").expect("MESSAGE");
        let short = show(&msg);
        assert_eq!(
            field_str(e, "_TRANSPORT").as_deref(),
            Some("stdout"),
            "{short}"
        );
        assert_eq!(field_str(e, "_PID"), Some(pid.clone()), "{short}");
        assert_eq!(
            field_str(e, "SYSLOG_FACILITY").as_deref(),
            Some("3"),
            "{short}"
        );
        assert_eq!(field_str(e, "SYSLOG_PID"), None, "{short}");
        let priority: u8 = field_str(e, "PRIORITY").unwrap().parse().unwrap();
        // Which stream: the first record of each stream id tells (`out 1` or `err 1`).
        let id = field_str(e, "_STREAM_ID").expect("_STREAM_ID");
        if !streams.contains(&id) {
            assert!(streams.len() < 2, "a third stream id: {short}");
            streams.push(id.clone());
        }
        let first_of = |want: &str| {
            entries
                .iter()
                .find(|x| field_str(x, "_STREAM_ID").as_deref() == Some(&id))
                .and_then(|x| field_str(x, "MESSAGE"))
                .is_some_and(|m| m.starts_with(want))
        };
        let i = if first_of("out ") { 0 } else { 1 };
        let (mut line, p0) = match open[i].take() {
            Some((mut line, p0, nul)) => {
                if nul {
                    line.push(0);
                }
                (line, p0)
            }
            None => (Vec::new(), priority),
        };
        line.extend_from_slice(&msg);
        let brk = field_str(e, "_LINE_BREAK");
        breaks.insert(brk.clone());
        match brk.as_deref() {
            Some("line-max") => open[i] = Some((line, p0, false)),
            Some("nul") => open[i] = Some((line, p0, true)),
            None | Some("eof") => done[i].push((line, p0)),
            Some(other) => panic!("_LINE_BREAK={other}: {short}"),
        }
    }
    assert!(open.iter().all(Option::is_none), "a split line never ended");
    for b in ["line-max", "nul", "eof"] {
        assert!(
            breaks.contains(&Some(b.to_string())),
            "no record with _LINE_BREAK={b}: journald did not cut where expected"
        );
    }
    let [got_out, got_err] = done;
    check_stream("stdout", &got_out, &out.want, usize::MAX);
    check_stream("stderr", &got_err, &err.want, usize::MAX);
    let native = jd.query(
        &[&format!("SYSLOG_IDENTIFIER={tag}"), "_TRANSPORT=journal"],
        &["MESSAGE"],
    );
    assert!(
        native.is_empty(),
        "{} records went by the native protocol",
        native.len()
    );
    run.assert_nothing_left();
}

/// 1b. A line bigger than a datagram can carry, under a --max-line that allows it, arrives as
///     one entry (journald's protocol: a sealed memfd for an oversized entry).
#[test]
fn journald_oversized_entry_arrives_whole() {
    let Some(jd) = Journald::start("jd-big") else {
        return;
    };
    let dir = Scratch::new("jd-big");
    let mut out = Stream::default();
    let big = pattern(b"whole ", 400 * 1024); // net.core.wmem_max is 208 KiB by default
    out.line(&big, &big, 6);
    let script = child_script(&dir, &out, &Stream::default());
    let mut run = Run::sigshim(&[
        "--log",
        "journald",
        "--journal-socket",
        jd.socket_str(),
        "--tag",
        "jd-big",
        "--max-line",
        "1048576",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let st = run.wait();
    assert_eq!(st.code(), Some(0), "{}", run.stderr());
    jd.barrier();
    let entries = jd.entries_for("jd-big", &["MESSAGE", "PRIORITY"]);
    let got: Vec<_> = entries
        .iter()
        .map(|e| (field_bytes(e, "MESSAGE").unwrap(), 6))
        .collect();
    check_stream("stdout", &got, &out.want, 1_048_576);
}

/// 8. `--log auto` picks the journal when its socket exists at the default path: run inside the
///    private journald's mount namespace, where /run/systemd/journal/socket is that journald's,
///    with stdout and stderr on /dev/null (nobody else reads them, so sigshim may capture; a
///    pipe, a terminal or a file is left to the app: tests/log_auto.rs). With -v, sigshim's
///    record of the choice is there too, under `sigshim`.
#[test]
fn auto_prefers_the_journal_at_its_default_path() {
    let Some(jd) = Journald::start("jd-auto") else {
        return;
    };
    let mut cmd = Command::new("nsenter");
    cmd.args([
        "--target",
        &jd.pid().to_string(),
        "--mount",
        "--",
        "sh",
        "-c",
        "exec \"$0\" \"$@\" >/dev/null 2>&1",
        sigshim(),
        "-v",
        "--tag",
        "jd-auto",
        "--",
        "sh",
        "-c",
        "echo via auto",
    ]);
    let mut run = Run::start(cmd);
    let st = run.wait();
    assert_eq!(st.code(), Some(0), "{}", run.stderr());
    jd.barrier();
    let entries = jd.entries_for("jd-auto", &["MESSAGE", "_TRANSPORT"]);
    let got: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                field_str(e, "MESSAGE").unwrap_or_default(),
                field_str(e, "_TRANSPORT").unwrap_or_default(),
            )
        })
        .collect();
    // _TRANSPORT=stdout: journald's stream protocol (sigshim's default where the stream socket
    // is there), not /dev/log, which journald also serves there.
    assert_eq!(got, [("via auto".to_string(), "stdout".to_string())]);
    let own: Vec<String> = jd
        .entries_for("sigshim", &["MESSAGE"])
        .iter()
        .filter_map(|e| field_str(e, "MESSAGE"))
        .collect();
    assert!(
        own.iter().any(|m| m
            == "--log auto: stdout is /dev/null, stderr is /dev/null: sending the app's lines to /run/systemd/journal/stdout"),
        "sigshim did not say why it captured: {own:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// rsyslog

/// The records of a private rsyslogd for a sigshim run of `sh -c SCRIPT` with `flags`, after
/// sigshim has exited 0, with the child's PID.
fn run_into_rsyslog(
    rs: &Rsyslog,
    dir: &Path,
    tag: &str,
    flags: &[&str],
    script: &str,
) -> (Vec<SyslogRecord>, i32) {
    let mut args = vec![
        "--log",
        "syslog",
        "--syslog-socket",
        rs.socket_str(),
        "--tag",
        tag,
    ];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    let mut run = Run::sigshim(&args);
    let st = run.wait_for(Duration::from_secs(30));
    let stderr = run.stderr();
    assert_eq!(st.code(), Some(0), "{stderr}");
    assert!(
        fallback_lines(&stderr).is_empty(),
        "lines went to stderr although rsyslogd was up:\n{}",
        &stderr[..stderr.len().min(2000)]
    );
    let pid = script_pid(dir);
    rs.barrier();
    run.assert_nothing_left();
    let records = rs
        .records()
        .into_iter()
        .filter(|r| r.programname != SIGSHIM_ID)
        .collect();
    (records, pid)
}

/// Checks identity on every record but sigshim's own (nothing but our tag and PID: no forged
/// `evil`), then each stream's lines. `rfc3164` selects rsyslog's representation of the tag and message.
#[allow(clippy::too_many_arguments)]
fn check_syslog(
    records: &[SyslogRecord],
    rfc3164: bool,
    tag: &str,
    pid: i32,
    facility: &str,
    out_levels: &[u8],
    out: &Stream,
    err: &Stream,
    max: usize,
) {
    let want_tag = if rfc3164 {
        format!("{tag}[{pid}]:")
    } else {
        format!("{tag}[{pid}]")
    };
    let (mut got_out, mut got_err) = (Vec::new(), Vec::new());
    for r in records {
        assert!(
            r.programname == tag && r.tag == want_tag && r.pid == pid.to_string(),
            "a record under another identity (want {want_tag}): {r:?}"
        );
        assert_eq!(r.facility, facility, "{r:?}");
        let msg = if rfc3164 {
            r.message_3164().to_vec()
        } else {
            r.msg.clone()
        };
        let severity = r.severity_code();
        if out_levels.contains(&severity) {
            got_out.push((msg, severity));
        } else {
            got_err.push((msg, severity));
        }
    }
    check_stream("stdout", &got_out, &out.want, max);
    check_stream("stderr", &got_err, &err.want, max);
}

/// The rsyslog workload: 10,000 stdout and 1,000 stderr lines with `<N>` prefixes, a line
/// longer than --max-line, odd bytes, the issue's forging attempt, a final line without `\n`.
/// `out_level`/`err_level` are the prefixes used; the forged `<0>` arrives at 0 (emerg).
fn syslog_workload(
    out_default: u8,
    err_default: u8,
    out_level: u8,
    err_level: u8,
) -> (Stream, Stream) {
    let (mut out, mut err) = (Stream::default(), Stream::default());
    for c in 0..5 {
        out.numbered(
            "out",
            c * 2000 + 1..=(c + 1) * 2000,
            out_default,
            500,
            out_level,
        );
        err.numbered(
            "err",
            c * 200 + 1..=(c + 1) * 200,
            err_default,
            100,
            err_level,
        );
    }
    let big = pattern(b"big ", 20 * 1024);
    out.line(&big, &big, out_default);
    // NUL is left out: the syslog encoder writes it as an escape (a NUL would end the record
    // for some receivers), so it does not arrive byte for byte.
    let odd = b"odd \xff\xfe \xc3( cr\rhere tab\tend \x1b[31m";
    out.line(odd, odd, out_default);
    // "x\n<0>evil[1]: forged\n" is two lines for sigshim. The second one's <0> is a level
    // prefix like any other: it arrives at emerg, under sigshim's tag, with the rest as text.
    out.line(b"x", b"x", out_default);
    out.line(b"<0>evil[1]: forged", b"evil[1]: forged", 0);
    out.unterminated(b"final line without newline", out_default);
    (out, err)
}

/// 2. RFC 3164 through a real rsyslogd: tag, PID, facility, severity and message as rsyslog
///    parsed them.
#[test]
fn rsyslog_rfc3164_every_line_once_in_order() {
    let Some(rs) = Rsyslog::start("rs-3164") else {
        return;
    };
    let dir = Scratch::new("rs-3164");
    let (out, err) = syslog_workload(6, 3, 4, 5);
    let script = child_script(&dir, &out, &err);
    let flags = [
        "--syslog-format",
        "rfc3164",
        "--facility",
        "local3",
        "--max-line",
        "8192",
    ];
    let (records, pid) = run_into_rsyslog(&rs, &dir, "rs-3164", &flags, &script);
    check_syslog(
        &records,
        true,
        "rs-3164",
        pid,
        "local3",
        &[6, 4, 0],
        &out,
        &err,
        8192,
    );
}

/// 2. The same through RFC 5424, with the stream priorities set by flag.
#[test]
fn rsyslog_rfc5424_every_line_once_in_order() {
    let Some(rs) = Rsyslog::start("rs-5424") else {
        return;
    };
    let dir = Scratch::new("rs-5424");
    // stdout notice (5), stderr crit (2); prefixes <4> on stdout, <1> on stderr.
    let (out, err) = syslog_workload(5, 2, 4, 1);
    let script = child_script(&dir, &out, &err);
    let flags = [
        "--syslog-format",
        "rfc5424",
        "--facility",
        "local3",
        "--stdout-priority",
        "notice",
        "--stderr-priority",
        "crit",
        "--max-line",
        "8192",
    ];
    let (records, pid) = run_into_rsyslog(&rs, &dir, "rs-5424", &flags, &script);
    check_syslog(
        &records,
        false,
        "rs-5424",
        pid,
        "local3",
        &[5, 4, 0],
        &out,
        &err,
        8192,
    );
}

/// 2. --no-level-prefix: `<N>` is text. Also the defaults: RFC 3164, facility daemon, info/err.
#[test]
fn rsyslog_no_level_prefix_and_defaults() {
    let Some(rs) = Rsyslog::start("rs-noprefix") else {
        return;
    };
    let dir = Scratch::new("rs-noprefix");
    let (mut out, mut err) = (Stream::default(), Stream::default());
    out.line(b"<4>kept as text", b"<4>kept as text", 6);
    out.line(b"x", b"x", 6);
    out.line(b"<0>evil[1]: forged", b"<0>evil[1]: forged", 6);
    err.line(b"<5>also text", b"<5>also text", 3);
    let script = child_script(&dir, &out, &err);
    let (records, pid) =
        run_into_rsyslog(&rs, &dir, "rs-noprefix", &["--no-level-prefix"], &script);
    check_syslog(
        &records,
        true,
        "rs-noprefix",
        pid,
        "daemon",
        &[6],
        &out,
        &err,
        8192,
    );
}

/// 2. The tag as real senders send it (#13): a PROGRAM whose name is longer than RFC 3164's 32
///    characters, or not ASCII, reaches rsyslogd under the same `syslogtag` and `programname`
///    as the same name sent by util-linux `logger` (which, like glibc's syslog(3), sends the
///    whole ident), so rsyslog filters on the name keep matching with sigshim in front. The
///    default tag (PROGRAM's basename) is what is checked: that is what operators filter on.
///    What would break the record is changed, and said once: a space (logger's record loses
///    its message to the tag) and a tag past the 511 bytes rsyslog keeps of `TAG[PID]:`.
#[test]
fn rsyslog_tags_as_real_senders_send_them() {
    let Some(rs) = Rsyslog::start("rs-tags") else {
        return;
    };
    let dir = Scratch::new("rs-tags");
    let logger_pid = std::process::id().to_string();
    let program_tag = |r: &SyslogRecord| {
        r.tag
            .rsplit_once('[')
            .map(|(t, _)| t.to_string())
            .unwrap_or_default()
    };
    for name in ["payments-reconciler-with-a-long-name-v2", "café-worker"] {
        // PROGRAM is a link to echo whose basename is the name.
        let program = dir.path(name);
        std::os::unix::fs::symlink("/bin/echo", &program).unwrap();
        let message = format!("hello from {name}");
        let mut args = vec!["--log", "syslog", "--syslog-socket", rs.socket_str(), "--"];
        args.extend([program.to_str().unwrap(), &message]);
        let mut run = Run::sigshim(&args);
        assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
        assert_eq!(run.stderr(), "", "a warning for a tag sent as it is");
        let logger_message = format!("logger: {message}");
        let mut logger = Command::new("logger");
        logger
            .args(["-u", rs.socket_str(), "-t", name])
            .arg(format!("--id={logger_pid}"))
            .arg(&logger_message);
        let mut logger = Run::start(logger);
        assert_eq!(logger.wait().code(), Some(0), "{}", logger.stderr());
        let records = rs.wait_records(TIMEOUT, |r| {
            [&message, &logger_message]
                .iter()
                .all(|m| r.iter().any(|r| r.message_3164() == m.as_bytes()))
        });
        let ours = records
            .iter()
            .find(|r| r.message_3164() == message.as_bytes())
            .unwrap();
        let logger = records
            .iter()
            .find(|r| r.message_3164() == logger_message.as_bytes())
            .unwrap();
        assert_eq!(program_tag(ours), name, "{ours:?}");
        assert_eq!(
            program_tag(ours),
            program_tag(logger),
            "{ours:?}\n{logger:?}"
        );
        assert_eq!(ours.programname, logger.programname, "{ours:?}\n{logger:?}");
        assert_eq!(logger.pid, logger_pid);
    }

    // A space: logger's record is misparsed (its tag ends at the space); ours arrives whole
    // under `my_app`, with one warning saying why, as sigshim's own record.
    let long = "x".repeat(600);
    for (tag, sent) in [
        ("my app", "my_app".to_string()),
        (long.as_str(), "x".repeat(480)),
    ] {
        let message = format!("tagged {}", tag.len());
        let mut run = Run::sigshim(&[
            "--log",
            "syslog",
            "--syslog-socket",
            rs.socket_str(),
            "--tag",
            tag,
            "--",
            "echo",
            &message,
        ]);
        assert_eq!(run.wait().code(), Some(0), "{}", run.stderr());
        let records = rs.wait_records(TIMEOUT, |r| {
            r.iter().any(|r| r.message_3164() == message.as_bytes())
        });
        let ours = records
            .iter()
            .find(|r| r.message_3164() == message.as_bytes())
            .unwrap();
        assert_eq!(ours.tag, format!("{sent}[{}]:", ours.pid), "{ours:?}");
        let warnings: Vec<_> = records
            .iter()
            .filter(|r| r.programname == SIGSHIM_ID && r.msg_lossy().contains("syslog tag"))
            .collect();
        let want_start = format!(" syslog tag '{}", &tag[..tag.len().min(60)]);
        let mine: Vec<_> = warnings
            .iter()
            .filter(|r| r.msg_lossy().starts_with(&want_start))
            .collect();
        assert_eq!(mine.len(), 1, "not one warning for {tag:?}: {warnings:?}");
        assert!(mine[0].msg_lossy().contains("--tag"), "{:?}", mine[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// At stop

/// 3a. The legacy app under `--stop-signal INT --log syslog`: after SIGTERM to sigshim, every
///     line it printed, cleanup included, is in the log, under the default tag (PROGRAM's
///     basename) and the app's PID.
#[test]
fn stop_legacy_app_every_line_arrives() {
    let Some(rs) = Rsyslog::start("stop-legacy") else {
        return;
    };
    let dir = Scratch::new("stop-legacy");
    let marker = dir.join("marker");
    let mut run = Run::sigshim(&[
        "-v",
        "--stop-signal",
        "INT",
        "--log",
        "syslog",
        "--syslog-socket",
        rs.socket_str(),
        "--",
        probe(),
        "legacy",
        marker.to_str().unwrap(),
        "200",
    ]);
    // The probe's `ready` reaches the log, not the test: wait for it there.
    let records = rs.wait_records(TIMEOUT, |r| {
        r.iter().any(|x| x.msg.starts_with(b" ready pid="))
    });
    let ready = records
        .iter()
        .find(|x| x.msg.starts_with(b" ready pid="))
        .unwrap()
        .msg_lossy();
    let pid = field(&ready, "pid");
    run.signal(libc::SIGTERM);
    let st = run.wait();
    assert_eq!(st.code(), Some(0), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "clean\n");
    rs.barrier();
    // sigshim's own account of the stop is in the same log, under its own identifier and PID.
    let own: Vec<String> = rs
        .records()
        .into_iter()
        .filter(|r| r.programname == SIGSHIM_ID)
        .map(|r| {
            assert_eq!(r.pid, run.pid().to_string(), "{r:?}");
            String::from_utf8_lossy(r.message_3164()).into_owned()
        })
        .collect();
    for want in [
        format!("started {} as pid {pid}", probe()),
        format!("SIGTERM received: stopping pid {pid} with SIGINT"),
        format!("pid {pid} exited with status 0"),
    ] {
        assert!(own.contains(&want), "no sigshim record {want:?} in {own:?}");
    }
    assert!(
        !run.stderr().contains("SIGTERM received"),
        "{}",
        run.stderr()
    );
    let records: Vec<SyslogRecord> = rs
        .records()
        .into_iter()
        .filter(|r| r.programname != SIGSHIM_ID)
        .collect();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(r.message_3164()).into_owned())
        .collect();
    assert_eq!(msgs, [ready.trim_start(), "cleanup", "clean-exit"]);
    for r in &records {
        assert_eq!(
            (
                r.tag.as_str(),
                r.pid.as_str(),
                r.facility.as_str(),
                r.severity.as_str()
            ),
            (
                format!("sigshim-probe[{pid}]:").as_str(),
                pid.to_string().as_str(),
                "daemon",
                "info"
            ),
            "{r:?}"
        );
    }
    run.assert_nothing_left();
}

/// 3b. A child that ignores the stop and is SIGKILLed at the deadline while it is still
///     writing: every byte it wrote before the kill arrives. `tee` writes each block to the
///     pipe before the file (unbuffered), so the file is a lower bound of what the pipe got.
#[test]
fn stop_killed_child_every_written_line_arrives() {
    let Some(rs) = Rsyslog::start("stop-kill") else {
        return;
    };
    let dir = Scratch::new("stop-kill");
    let written = dir.join("written");
    const LINES: usize = 100_000;
    let script = format!(
        "trap '' TERM INT; seq 1 {LINES} | tee '{}'; exec sleep 1000",
        written.display()
    );
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        rs.socket_str(),
        "--tag",
        "stop-kill",
        "--kill-after",
        "300ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    rs.wait_records(TIMEOUT, |r| r.iter().any(|x| x.programname == "stop-kill"));
    run.signal(libc::SIGTERM);
    let st = run.wait();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{}", run.stderr());
    rs.barrier();

    let got: Vec<Vec<u8>> = rs
        .records()
        .iter()
        .filter(|r| r.programname != SIGSHIM_ID)
        .map(|r| r.message_3164().to_vec())
        .collect();
    // What arrived is 1, 2, 3, ... with no gap or repeat; the last record may be a line the
    // kill cut short (flushed at EOF without its `\n`).
    for (i, msg) in got.iter().enumerate() {
        let want = (i + 1).to_string().into_bytes();
        let ok = msg == &want || (i + 1 == got.len() && want.starts_with(msg) && !msg.is_empty());
        assert!(ok, "record {i} is {}, expected {}", show(msg), show(&want));
    }
    // And it covers everything the child had written when it was killed.
    let file = std::fs::read(&written).unwrap();
    let complete = file.iter().filter(|&&b| b == b'\n').count();
    assert!(complete > 0, "the child wrote nothing before the kill");
    assert!(
        got.len() >= complete,
        "the child wrote {complete} lines before it was killed, {} arrived",
        got.len()
    );
    eprintln!(
        "killed after writing {complete} of {LINES} lines; {} records arrived",
        got.len()
    );
    run.assert_nothing_left();
}

/// 3c. A grandchild outside sigshim's reach (no subreaper, its own session) keeps the output
///     pipe open after the child exits: sigshim forwards what came, stops reading at the drain
///     deadline, and exits with the child's status.
#[test]
fn drain_deadline_bounds_a_pipe_held_open() {
    let Some(jd) = Journald::start("jd-drain") else {
        return;
    };
    let started = Instant::now();
    let mut run = Run::sigshim(&[
        "--no-subreaper",
        "--drain-timeout",
        "500ms",
        "--log",
        "journald",
        "--journal-socket",
        jd.socket_str(),
        "--tag",
        "jd-drain",
        "--",
        "sh",
        "-c",
        "(setsid sleep 30 &); echo last; exit 0",
    ]);
    let st = run.wait();
    let took = started.elapsed();
    assert_eq!(st.code(), Some(0), "{}", run.stderr());
    // The holder really was there (and is re-parented away from sigshim): clean it up.
    let holders = leftovers(&run.tag);
    assert!(
        !holders.is_empty(),
        "no setsid'd sleep holding the pipe: the test proves nothing"
    );
    for pid in holders {
        kill(pid, libc::SIGKILL);
    }
    assert!(
        took >= Duration::from_millis(500),
        "sigshim exited after {took:?}, before the 500ms drain deadline, with the pipe still open"
    );
    assert!(
        took < Duration::from_millis(2500),
        "sigshim took {took:?}: the 500ms drain deadline was not kept"
    );
    jd.barrier();
    let msgs: Vec<String> = jd
        .entries_for("jd-drain", &["MESSAGE"])
        .iter()
        .map(|e| field_str(e, "MESSAGE").unwrap_or_default())
        .collect();
    assert_eq!(msgs, ["last"]);
}

/// 3c'. `--drain-timeout 0` (#13): sigshim does not wait for a writer that keeps the pipe
///     open, but every line the app wrote before it exited is still sent.
#[test]
fn drain_timeout_zero_still_sends_what_the_pipe_holds() {
    let dir = Scratch::new("drain0");
    let path = dir.join("sink.sock");
    let sink = UnixDatagram::bind(&path).expect("bind the sink");
    sink.set_read_timeout(Some(TIMEOUT)).unwrap();
    const LINES: usize = 200;
    // Read as the records come: a datagram queue holds only max_dgram_qlen (10 by default).
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < LINES {
            let Ok(n) = sink.recv(&mut buf) else { break };
            let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some((_, msg)) = rec.split_once(" drain0[") {
                let msg = msg.split_once("]: ").expect("TAG[PID]: ").1;
                got.push(msg.to_string());
            }
        }
        got
    });
    let script = format!("(setsid sleep 30 &); seq 1 {LINES}; exit 0");
    let started = Instant::now();
    let mut run = Run::sigshim(&[
        "--no-subreaper",
        "--drain-timeout",
        "0",
        "--log",
        "syslog",
        "--syslog-socket",
        path.to_str().unwrap(),
        "--tag",
        "drain0",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let st = run.wait();
    let took = started.elapsed();
    let holders = leftovers(&run.tag);
    assert!(
        !holders.is_empty(),
        "no setsid'd sleep holding the pipe: the test proves nothing"
    );
    for pid in holders {
        kill(pid, libc::SIGKILL);
    }
    assert_eq!(st.code(), Some(0), "{}", run.stderr());
    assert!(
        took < Duration::from_secs(2),
        "sigshim took {took:?} with --drain-timeout 0 (the pipe stays open for 30 s)"
    );
    // The reader ends at LINES records or after TIMEOUT without one (its watchdog).
    let got = reader.join().expect("reader");
    let want: Vec<String> = (1..=LINES).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "{}", run.stderr());
}

/// 3d. The worst end: the app exits after writing 5,000 lines into its pipe, a grandchild out
///     of reach keeps the pipe open (so no EOF ever comes), and the destination takes only a
///     handful of datagrams and then never reads. At the drain deadline sigshim must still
///     account for every line: each one is either in the receiver's queue or on its stderr.
#[test]
fn stuck_destination_at_the_drain_deadline_loses_no_line() {
    let dir = Scratch::new("stuck");
    let path = dir.join("sink.sock");
    let sink = UnixDatagram::bind(&path).expect("bind the sink");
    const LINES: usize = 5000;
    let script = format!("(setsid sleep 30 &); seq 1 {LINES}; exit 0");
    let started = Instant::now();
    let mut run = Run::sigshim(&[
        "--no-subreaper",
        "--drain-timeout",
        "300ms",
        "--log",
        "syslog",
        "--syslog-socket",
        path.to_str().unwrap(),
        "--tag",
        "stuck",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let st = run.wait();
    let took = started.elapsed();
    for pid in leftovers(&run.tag) {
        kill(pid, libc::SIGKILL);
    }
    let stderr = stderr_once(&run, |e| fallback_count(e).is_some());
    assert_eq!(st.code(), Some(0), "{stderr}");
    assert!(
        took < Duration::from_millis(300 + 2000),
        "sigshim took {took:?} with a 300ms drain deadline"
    );

    // The receiver's queue, read only now: the app's records (sigshim's own are left aside).
    sink.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut received = Vec::new();
    while let Ok(n) = sink.recv(&mut buf) {
        let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
        if let Some((_, msg)) = rec
            .split_once(" stuck[")
            .and_then(|(_, r)| r.split_once("]: "))
        {
            received.push(msg.to_string());
        }
    }
    let fallback = fallback_lines(&stderr);
    let mut all: Vec<usize> = received
        .iter()
        .map(String::as_str)
        .chain(fallback.iter().copied())
        .map(|l| {
            l.parse()
                .unwrap_or_else(|_| panic!("not one of the app's lines: {l:?}"))
        })
        .collect();
    all.sort_unstable();
    assert!(
        all == (1..=LINES).collect::<Vec<_>>(),
        "{} lines in the receiver, {} on stderr: not each of 1..={LINES} exactly once \
         (first missing: {:?})",
        received.len(),
        fallback.len(),
        (1..=LINES).find(|n| all.binary_search(n).is_err())
    );
    assert_eq!(fallback_count(&stderr), Some(fallback.len()), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Destination down and back

/// The restart tests' app: FIRST lines `n 1`.., then it waits for `go1`; then 50 lines every
/// 10 ms until `go2`; then LAST_BATCH lines and `done N`. (The sleeps pace the app; they sync
/// nothing.)
const FIRST: usize = 2000;
const LAST_BATCH: usize = 1000;

fn restart_app(go1: &Path, go2: &Path) -> String {
    format!(
        r#"i=1
while [ $i -le {FIRST} ]; do echo "n $i"; i=$((i+1)); done
while [ ! -e '{go1}' ]; do sleep 0.01; done
while [ ! -e '{go2}' ]; do
  k=0
  while [ $k -lt 50 ]; do echo "n $i"; i=$((i+1)); k=$((k+1)); done
  sleep 0.01
done
k=0
while [ $k -lt {LAST_BATCH} ]; do echo "n $i"; i=$((i+1)); k=$((k+1)); done
echo "done $((i-1))""#,
        go1 = go1.display(),
        go2 = go2.display()
    )
}

/// Waits (bounded) until lines written while `daemon` is down show up on sigshim's stderr.
fn wait_for_fallback(run: &Run, daemon: &str) {
    let down = eventually_value(TIMEOUT, || {
        let n = fallback_lines(&run.stderr()).len();
        if n >= 200 { Ok(n) } else { Err(n) }
    });
    if let Err(n) = down {
        panic!(
            "{daemon} is down, but only {n} lines reached sigshim's stderr:\n{}",
            run.stderr()
        );
    }
}

/// The restart app's lines 1..=`total`: each exactly once in `dest` (`logged`) or on sigshim's
/// `stderr`, the first FIRST and the last LAST_BATCH in `dest`, and the exit summary counting
/// the ones on stderr.
fn check_restart_delivery(dest: &str, logged: &[usize], total: usize, stderr: &str) {
    let on_stderr: Vec<usize> = fallback_lines(stderr)
        .iter()
        .map(|l| {
            l.strip_prefix("n ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line on sigshim's stderr: {l:?}"))
        })
        .collect();
    eprintln!(
        "{total} lines: {} in {dest}, {} on stderr while it was down",
        logged.len(),
        on_stderr.len()
    );
    let mut seen = HashSet::new();
    for n in logged.iter().chain(&on_stderr) {
        assert!(
            seen.insert(*n),
            "line {n} arrived twice ({dest} and/or stderr)"
        );
    }
    let missing: Vec<usize> = (1..=total).filter(|n| !seen.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} lines are neither in {dest} nor on stderr, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert_eq!(seen.len(), total, "lines beyond `done {total}`");
    let logged_set: HashSet<usize> = logged.iter().copied().collect();
    assert!(
        (1..=FIRST).all(|n| logged_set.contains(&n)),
        "lines sent before the stop are missing from {dest}"
    );
    assert!(
        (total - LAST_BATCH + 1..=total).all(|n| logged_set.contains(&n)),
        "delivery did not resume after the restart: the last {LAST_BATCH} lines are not all \
         in {dest}"
    );
    assert_eq!(
        fallback_count(stderr),
        Some(on_stderr.len()),
        "the exit summary does not count the {} lines on stderr:\n{}",
        on_stderr.len(),
        warnings(stderr).join("\n")
    );
}

/// 4. rsyslogd stops while the app keeps writing, and comes back while it still writes: every
///    line ends up in rsyslog or, while it was down, on sigshim's stderr; none twice; the count
///    sigshim reports matches; delivery resumes after the restart.
///
///    rsyslogd is stopped only once everything sent so far has arrived (a datagram still queued
///    in a socket when its daemon exits is lost to any sender, silently), so the test can demand
///    that nothing at all is missing. The restart happens mid-stream.
#[test]
fn rsyslog_restart_loses_no_line() {
    let Some(mut rs) = Rsyslog::start("rs-restart") else {
        return;
    };
    let dir = Scratch::new("rs-restart");
    let (go1, go2) = (dir.join("go1"), dir.join("go2"));
    let script = restart_app(&go1, &go2);
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        rs.socket_str(),
        "--tag",
        "rs-restart",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let number = |r: &SyslogRecord| -> Option<usize> {
        std::str::from_utf8(r.message_3164())
            .ok()?
            .strip_prefix("n ")?
            .parse()
            .ok()
    };

    rs.wait_records(TIMEOUT, |r| r.iter().filter_map(number).count() >= FIRST);
    rs.stop();
    std::fs::write(&go1, "").unwrap();

    wait_for_fallback(&run, "rsyslogd");

    rs.start_again();
    rs.wait_records(Duration::from_secs(15), |r| {
        r.iter().filter_map(number).any(|n| n > FIRST)
    });
    std::fs::write(&go2, "").unwrap();
    let st = run.wait_for(Duration::from_secs(30));
    let stderr = stderr_once(&run, |e| fallback_count(e).is_some());
    assert_eq!(st.code(), Some(0), "{stderr}");
    rs.barrier();

    let records = rs.records();
    let total: usize = records
        .iter()
        .find_map(|r| {
            std::str::from_utf8(r.message_3164())
                .ok()?
                .strip_prefix("done ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `done N` record in rsyslog; stderr:\n{stderr}"));
    let logged: Vec<usize> = records.iter().filter_map(number).collect();
    check_restart_delivery("rsyslog", &logged, total, &stderr);
    // One warning when the destination went away (and the summary), not one per line.
    let w = warnings(&stderr);
    assert!(
        w.len() >= 2 && w.len() <= 4,
        "expected a warning and the summary, got {} warnings:\n{}",
        w.len(),
        w.join("\n")
    );
    run.assert_nothing_left();
}

/// 4b. The same with journald over its stream protocol: journald stops while the app keeps
///     writing (sigshim's connections break: EPIPE), and comes back while it still writes
///     (sigshim connects anew). Every line ends up in the journal or, while journald was down,
///     on sigshim's stderr; none twice; the count matches; delivery resumes. journald is stopped
///     once everything sent so far is in the journal (bytes still in a stream when its reader
///     exits are lost to any writer), so nothing at all may be missing.
#[test]
fn journald_restart_loses_no_line() {
    let Some(mut jd) = Journald::start("jd-restart") else {
        return;
    };
    let dir = Scratch::new("jd-restart");
    let (go1, go2) = (dir.join("go1"), dir.join("go2"));
    let script = restart_app(&go1, &go2);
    let tag = "jd-restart";
    let mut run = Run::sigshim(&[
        "--log",
        "journald",
        "--journal-socket",
        jd.socket_str(),
        "--tag",
        tag,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    jd.wait_count(tag, FIRST, TIMEOUT);
    jd.stop();
    std::fs::write(&go1, "").unwrap();
    wait_for_fallback(&run, "journald");
    jd.start_again();
    let before = jd.count(tag);
    jd.wait_count(tag, before + 1, Duration::from_secs(15));
    std::fs::write(&go2, "").unwrap();
    let st = run.wait_for(Duration::from_secs(30));
    let stderr = stderr_once(&run, |e| fallback_count(e).is_some());
    assert_eq!(st.code(), Some(0), "{stderr}");
    jd.barrier();

    let messages: Vec<String> = jd
        .entries_for(tag, &["MESSAGE", "_TRANSPORT"])
        .iter()
        .inspect(|e| assert_eq!(field_str(e, "_TRANSPORT").as_deref(), Some("stdout")))
        .filter_map(|e| field_str(e, "MESSAGE"))
        .collect();
    let total: usize = messages
        .iter()
        .find_map(|m| m.strip_prefix("done ")?.parse().ok())
        .unwrap_or_else(|| panic!("no `done N` entry; stderr:\n{stderr}"));
    let logged: Vec<usize> = messages
        .iter()
        .filter_map(|m| m.strip_prefix("n ")?.parse().ok())
        .collect();
    check_restart_delivery("the journal", &logged, total, &stderr);
    run.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// A receiver that never reads

/// For 2 s while `run`'s destination takes nothing: sigshim's peak VmRSS stays under 16 MiB
/// and it uses under 1 s of CPU (blocked on a full destination it waits in poll(2); a busy
/// loop would use ~2 s), and the app `child` still runs. Then a SIGTERM ends it by SIGKILL at
/// the 300 ms kill deadline, within `within` in all.
fn stays_small_and_stops_on_schedule(run: &mut Run, child: i32, within: Duration) {
    let shim = run.pid();
    let (window, cpu_before) = (Instant::now(), cpu_seconds(shim));
    let mut peak = 0;
    while window.elapsed() < Duration::from_secs(2) {
        peak = peak.max(vm_rss_kib(shim));
        std::thread::sleep(Duration::from_millis(50)); // sampling interval, not a synchronisation
    }
    let cpu = cpu_seconds(shim) - cpu_before;
    eprintln!("destination full: sigshim peak VmRSS {peak} KiB, {cpu:.2} s CPU in 2 s");
    assert!(
        peak < 16 * 1024,
        "sigshim's VmRSS reached {peak} KiB while its destination did not read"
    );
    assert!(
        cpu < 1.0,
        "sigshim used {cpu:.2} s of CPU in 2 s while its destination was full: busy waiting?"
    );
    assert!(!is_zombie_or_gone(child), "the app should still be running");

    let stop = Instant::now();
    run.signal(libc::SIGTERM);
    let st = run.wait_for(Duration::from_secs(5));
    let took = stop.elapsed();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{}", run.stderr());
    assert!(
        took >= Duration::from_millis(300) && took < within,
        "stop took {took:?} (kill deadline 300ms, drain deadline 500ms; at most {within:?})"
    );
}

/// 5. The app writes as fast as it can to a receiver that never reads: sigshim stops reading
///    (the app blocks on its pipe) instead of buffering, stays small and idle, and a stop still
///    runs on schedule.
#[test]
fn never_reading_receiver_bounds_memory_and_keeps_the_deadline() {
    let dir = Scratch::new("sink");
    let path = dir.join("sink.sock");
    let sink = UnixDatagram::bind(&path).expect("bind the sink");
    let line = "x".repeat(99);
    // TERM and INT ignored, so only the kill deadline ends the app.
    let script = format!(
        "trap '' TERM INT; echo $$ > '{}'; exec yes {line}",
        dir.join("pid").display()
    );
    let mut run = Run::sigshim(&[
        "--log",
        "syslog",
        "--syslog-socket",
        path.to_str().unwrap(),
        "--tag",
        "flood",
        "--kill-after",
        "300ms",
        "--drain-timeout",
        "500ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let child = script_pid(&dir);

    stays_small_and_stops_on_schedule(&mut run, child, Duration::from_millis(300 + 500 + 2000));

    // The sink did get the app's records, well-formed: daemon.info = <30>, our tag and the
    // app's PID (sigshim's own diagnostics, under `sigshim`, may be queued there too).
    sink.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65536];
    let want = format!("flood[{child}]: {line}");
    let mut seen = Vec::new();
    while let Ok(n) = sink.recv(&mut buf) {
        seen.push(buf[..n].to_vec());
    }
    assert!(
        seen.iter()
            .any(|r| r.starts_with(b"<30>") && r.ends_with(want.as_bytes())),
        "no record `<30>... {want}` among the {} queued: {:?}",
        seen.len(),
        seen.iter().take(3).map(|r| show(r)).collect::<Vec<_>>()
    );
    run.assert_nothing_left();
}

/// 5b. The same with a journald stdout stream that accepts the connection and never reads:
///     sigshim stays small and idle, and a stop still runs on schedule (the app's last words,
///     which sigshim tries to get out before reaping it, wait no longer than the drain
///     deadline). The stream starts with journald's header: identifier, no unit, the stream's
///     priority with the facility (daemon.info = 30), level prefix on, no forwarding.
#[test]
fn never_reading_journal_stream_bounds_memory_and_keeps_the_deadline() {
    let dir = Scratch::new("stream-sink");
    let listener = std::os::unix::net::UnixListener::bind(dir.join("stdout")).unwrap();
    let line = "x".repeat(99);
    let script = format!(
        "trap '' TERM INT; echo $$ > '{}'; exec yes {line}",
        dir.join("pid").display()
    );
    let socket = dir.join("socket");
    let mut run = Run::sigshim(&[
        "--log",
        "journald",
        "--journal-protocol",
        "stream",
        "--journal-socket",
        socket.to_str().unwrap(),
        "--tag",
        "flood",
        "--kill-after",
        "300ms",
        "--drain-timeout",
        "500ms",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let child = script_pid(&dir);
    let (mut conn, _) = listener.accept().expect("sigshim connects the stream");
    // The drain deadline twice: the app's last words, then the drain.
    stays_small_and_stops_on_schedule(
        &mut run,
        child,
        Duration::from_millis(300 + 500 + 500 + 2000),
    );
    let mut head = vec![0u8; 4096];
    let n = std::io::Read::read(&mut conn, &mut head).unwrap();
    let want = format!("flood\n\n30\n1\n0\n0\n0\n{line}\n{line}\n");
    assert!(
        head[..n].starts_with(want.as_bytes()),
        "the stream does not start with journald's header and the app's lines: {}",
        show(&head[..n.min(200)])
    );
    run.assert_nothing_left();
}

// ---------------------------------------------------------------------------------------------
// inherit

/// 6. `--log inherit` captures nothing: the child's fds 0-2 are sigshim's own. So is the default
///    (`auto`) when neither the journal's socket nor /dev/log exists.
#[test]
fn inherit_hands_over_sigshims_own_fds() {
    let mut modes: Vec<&[&str]> = vec![&["--log", "inherit"]];
    let no_receiver =
        !Path::new("/run/systemd/journal/socket").exists() && !Path::new("/dev/log").exists();
    if no_receiver {
        modes.push(&[]);
    } else {
        eprintln!("this host has a journal or /dev/log: the default (auto) is not checked here");
    }
    for mode in modes {
        let mut args = mode.to_vec();
        args.extend_from_slice(&["--", probe(), "ready"]);
        let mut run = Run::sigshim(&args);
        let child = field(&run.expect("ready"), "pid");
        for fd in 0..=2 {
            assert_eq!(
                fd_target(child, fd),
                fd_target(run.pid(), fd),
                "{mode:?}: the child's fd {fd} is not sigshim's"
            );
        }
        run.signal(libc::SIGTERM);
        let st = run.wait();
        assert_eq!(st.code(), Some(0), "{mode:?}: {}", run.stderr());
        run.assert_nothing_left();
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input

/// 7. Bad logging options are usage errors: exit 2, one line naming the problem.
#[test]
fn logging_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--log", "nonsense", "true"], "nonsense"),
        (&["--facility", "nonsense", "true"], "nonsense"),
        (&["--max-line", "0", "true"], "max-line"),
        (&["--syslog-format", "rfc9999", "true"], "rfc9999"),
        (&["--stdout-priority", "loud", "true"], "loud"),
        (&["--stderr-priority", "8", "true"], "8"),
        (&["--drain-timeout", "abc", "true"], "abc"),
        (&["--journal-protocol", "datagram", "true"], "datagram"),
        (
            &["--journal-protocol", "stream", "--max-line", "100", "true"],
            "--journal-protocol native",
        ),
    ];
    for (args, names) in cases {
        let mut run = Run::sigshim(args);
        let st = run.wait();
        let err = stderr_once(&run, |e| e.ends_with('\n'));
        assert_eq!(st.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(names),
            "{args:?}: message does not name {names}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        run.assert_nothing_left();
    }
}

/// 7. A destination that is not a socket: a clear warning naming it, the lines on sigshim's
///    stderr, counted at exit, and the app runs and its exit status passes through.
#[test]
fn unusable_destination_falls_back_to_stderr() {
    let dir = Scratch::new("not-a-socket");
    let file = dir.join("regular-file");
    std::fs::write(&file, "").unwrap();
    let f = file.to_str().unwrap();
    for flags in [
        ["--log", "syslog", "--syslog-socket", f],
        ["--log", "journald", "--journal-socket", f],
    ] {
        let mut args = flags.to_vec();
        args.extend_from_slice(&[
            "--",
            "sh",
            "-c",
            "echo one; echo two >&2; printf three; exit 7",
        ]);
        let mut run = Run::sigshim(&args);
        let st = run.wait();
        let err = stderr_once(&run, |e| fallback_count(e).is_some());
        assert_eq!(st.code(), Some(7), "{flags:?}: {err}");
        let mut lines = fallback_lines(&err);
        lines.sort();
        assert_eq!(lines, ["one", "three", "two"], "{flags:?}: {err}");
        assert!(
            warnings(&err).iter().any(|w| w.contains(f)),
            "{flags:?}: no warning naming {f}:\n{err}"
        );
        assert_eq!(fallback_count(&err), Some(3), "{flags:?}: {err}");
        // The file is left alone.
        assert_eq!(std::fs::read(&file).unwrap(), b"", "{flags:?}");
        run.assert_nothing_left();
    }
}

// ---------------------------------------------------------------------------------------------
// The harness itself

/// rsyslog's JSON lines carry raw bytes >= 0x7f: the reader must take them byte for byte.
#[test]
fn harness_reads_rsyslog_json_byte_for_byte() {
    let line = b"{\"tag\":\"a[1]:\", \"msg\":\" cr\\rx\\u0001 \xff\\\"q\\\\ \\u00e9\"}";
    let f = parse_flat_json(line).unwrap();
    assert_eq!(f[0], ("tag".to_string(), b"a[1]:".to_vec()));
    assert_eq!(f[1].1, b" cr\rx\x01 \xff\"q\\ \xc3\xa9".to_vec());
    assert!(parse_flat_json(b"{\"a\":\"b\"").is_none());
    assert!(parse_flat_json(b"{\"a\":1}").is_none());
    assert_eq!(
        fallback_count("sigshim: warning: 12 lines went to stderr because x"),
        Some(12)
    );
    assert_eq!(
        fallback_count("sigshim: warning: 1 line went to stderr because x"),
        Some(1)
    );
}
