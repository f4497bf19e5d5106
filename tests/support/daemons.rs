//! Real log daemons for the log tests: a private rsyslogd and a private systemd-journald, each
//! started by the project's scripts in `tests/harness/` with its own state directory, so tests
//! running in parallel never share a daemon and never touch the host's /dev/log or /run.
//!
//! This module owns starting, stopping and reading back; the scripts own how each daemon is
//! configured (see their headers for what a record looks like and why). Reading is byte-exact:
//! rsyslog writes raw bytes >= 0x7f into its JSON lines and journalctl prints non-UTF-8 values as
//! arrays of bytes, and the tests compare messages byte for byte.
//!
//! Waiting is never a sleep: [`Rsyslog::barrier`] and [`Journald::barrier`] send a marker record
//! of their own and wait (bounded) until it shows up. Both daemons handle their socket in order,
//! so once the marker is there, everything sent before it is there too.
#![allow(dead_code)]

use super::{
    HARNESS_TIMEOUT, TIMEOUT, eventually_value, output_within, require_root, temp_dir, unique_tag,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const RSYSLOG_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/rsyslog.sh");
const JOURNALD_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/journald.sh");

/// Identifier of the marker records `barrier` sends; `records()` leaves them out.
const BARRIER_TAG: &str = "sigshim-test-barrier";

/// One daemon instance: its script, its state directory, and the paths its script reported.
struct Daemon {
    script: &'static str,
    state: PathBuf,
    paths: HashMap<String, PathBuf>,
}

impl Daemon {
    fn start(script: &'static str, name: &str) -> Daemon {
        let mut d = Daemon {
            script,
            state: temp_dir(name),
            paths: HashMap::new(),
        };
        d.verb("start");
        let paths = d.verb("paths");
        for line in paths.lines() {
            if let Some((k, v)) = line.split_once('=') {
                d.paths.insert(k.to_string(), PathBuf::from(v));
            }
        }
        d
    }

    /// Runs `script VERB` for this instance; panics with the script's output if it fails.
    fn verb(&self, verb: &str) -> String {
        self.command(verb, &[])
    }

    fn command(&self, verb: &str, args: &[&str]) -> String {
        let mut cmd = Command::new("bash");
        cmd.arg(self.script)
            .arg(verb)
            .args(args)
            .env("SIGSHIM_DAEMON_STATE", &self.state);
        let out = output_within(&mut cmd, None, HARNESS_TIMEOUT);
        if !out.status.success() {
            panic!(
                "{} {verb} failed ({}):\nstdout:\n{}\nstderr:\n{}",
                self.script,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn path(&self, key: &str) -> &Path {
        self.paths
            .get(key)
            .unwrap_or_else(|| panic!("{} paths printed no {key}=", self.script))
    }

    fn pid(&self) -> i32 {
        let status = self.verb("status");
        status
            .trim()
            .strip_prefix("running pid=")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{} status: {status:?}", self.script))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Never panic in drop (a second panic aborts and hides the first): report instead.
        let mut cmd = Command::new("bash");
        cmd.arg(self.script)
            .arg("stop")
            .env("SIGSHIM_DAEMON_STATE", &self.state);
        let out = output_within(&mut cmd, None, HARNESS_TIMEOUT);
        if !out.status.success() {
            eprintln!("{} stop failed: {out:?}", self.script);
        }
        // A failed test keeps the state (config, daemon log, records) for a look; a passing
        // one leaves nothing behind.
        if std::thread::panicking() {
            eprintln!("daemon state kept in {}", self.state.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rsyslogd

/// A private rsyslogd listening on its own socket (`socket()`), writing every record it
/// receives to a JSON-lines file that `records()` reads back.
pub struct Rsyslog {
    daemon: Daemon,
}

/// One record as rsyslogd parsed it. `msg` is byte-exact. For RFC 3164 input rsyslog keeps the
/// space after `TAG[PID]:` in `msg` (`message_3164` removes it); for RFC 5424 `msg` is MSG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogRecord {
    /// rsyslog's `syslogtag`: `app[42]:` for RFC 3164, `app[42]` for RFC 5424.
    pub tag: String,
    pub programname: String,
    /// `procid`; `-` when the sender gave none.
    pub pid: String,
    /// Facility name: `daemon`, `local3`, ...
    pub facility: String,
    /// Severity name: `emerg alert crit err warning notice info debug`.
    pub severity: String,
    pub msg: Vec<u8>,
}

impl SyslogRecord {
    /// The severity as its number 0..=7.
    pub fn severity_code(&self) -> u8 {
        match self.severity.as_str() {
            "emerg" => 0,
            "alert" => 1,
            "crit" => 2,
            "err" => 3,
            "warning" => 4,
            "notice" => 5,
            "info" => 6,
            "debug" => 7,
            other => panic!("unknown severity {other:?} in {self:?}"),
        }
    }

    /// The message of an RFC 3164 record: `msg` without the one space rsyslog keeps after the
    /// tag. Panics if that space is missing (the record was not what the sender meant).
    pub fn message_3164(&self) -> &[u8] {
        self.msg
            .strip_prefix(b" ")
            .unwrap_or_else(|| panic!("RFC 3164 msg without the leading space: {self:?}"))
    }

    pub fn msg_lossy(&self) -> String {
        String::from_utf8_lossy(&self.msg).into_owned()
    }
}

impl Rsyslog {
    /// Starts a private rsyslogd (installing the package if needed). `None` when the tests may
    /// not use root here: the caller returns, `require_root` has said why (or panicked on CI).
    pub fn start(name: &str) -> Option<Rsyslog> {
        if !require_root(&format!("rsyslogd test ({name})")) {
            return None;
        }
        Some(Rsyslog {
            daemon: Daemon::start(RSYSLOG_SH, name),
        })
    }

    /// The datagram socket rsyslogd reads: pass it to `--syslog-socket`.
    pub fn socket(&self) -> &Path {
        self.daemon.path("socket")
    }

    /// The socket path as a `&str`, for command lines.
    pub fn socket_str(&self) -> &str {
        self.socket().to_str().expect("UTF-8 temp path")
    }

    pub fn pid(&self) -> i32 {
        self.daemon.pid()
    }

    /// Stops rsyslogd (SIGTERM by PID; it writes what it had read first). The socket then
    /// refuses datagrams.
    pub fn stop(&mut self) {
        self.daemon.verb("stop");
    }

    /// Starts it again on the same socket path; earlier records stay in the file.
    pub fn start_again(&mut self) {
        self.daemon.verb("start");
    }

    pub fn restart(&mut self) {
        self.daemon.verb("restart");
    }

    /// Every record written so far (barrier markers left out), in the order rsyslogd received
    /// them. A last line still being written is ignored until it is complete.
    pub fn records(&self) -> Vec<SyslogRecord> {
        let path = self.daemon.path("records");
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        };
        let complete = match data.iter().rposition(|&b| b == b'\n') {
            Some(i) => &data[..i],
            None => return Vec::new(),
        };
        complete
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                let fields = parse_flat_json(line).unwrap_or_else(|| {
                    panic!(
                        "{}: not a flat JSON object: {}",
                        path.display(),
                        line.escape_ascii()
                    )
                });
                let get = |k: &str| -> Vec<u8> {
                    fields
                        .iter()
                        .find(|(name, _)| name == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| panic!("no {k} in {}", line.escape_ascii()))
                };
                let text = |k: &str| String::from_utf8_lossy(&get(k)).into_owned();
                SyslogRecord {
                    tag: text("tag"),
                    programname: text("programname"),
                    pid: text("pid"),
                    facility: text("facility"),
                    severity: text("severity"),
                    msg: get("msg"),
                }
            })
            .filter(|r| r.programname != BARRIER_TAG)
            .collect()
    }

    /// Waits (bounded by `timeout`) until `done(records)` holds and returns those records;
    /// panics with a summary of what did arrive otherwise.
    pub fn wait_records(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[SyslogRecord]) -> bool,
    ) -> Vec<SyslogRecord> {
        eventually_value(timeout, || {
            let r = self.records();
            if done(&r) { Ok(r) } else { Err(r) }
        })
        .unwrap_or_else(|r| {
            panic!(
                "rsyslog records did not reach the expected state within {timeout:?}; {} \
                 records, the last ones:\n{}",
                r.len(),
                summary(&r)
            )
        })
    }

    /// Sends a marker datagram and waits until rsyslogd has written it: afterwards every
    /// datagram sent to the socket before this call is in `records()`.
    pub fn barrier(&self) {
        let id = unique_tag();
        let sock = UnixDatagram::unbound().expect("datagram socket");
        let datagram = format!("<14>Jan  1 00:00:00 {BARRIER_TAG}[1]: {id}");
        sock.send_to(datagram.as_bytes(), self.socket())
            .unwrap_or_else(|e| panic!("barrier to {}: {e}", self.socket().display()));
        let path = self.daemon.path("records").to_path_buf();
        let needle = id.into_bytes();
        let found = eventually_value(TIMEOUT, || {
            let data = std::fs::read(&path).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle) {
                Ok(())
            } else {
                Err(())
            }
        });
        assert!(
            found.is_ok(),
            "rsyslogd did not write the barrier record within {TIMEOUT:?} (is it running?)"
        );
    }
}

fn summary(records: &[SyslogRecord]) -> String {
    records
        .iter()
        .rev()
        .take(10)
        .rev()
        .map(|r| {
            let msg = r.msg.escape_ascii().to_string();
            let msg: String = msg.chars().take(120).collect();
            format!(
                "  {} {}.{} pid={} msg={msg}",
                r.tag, r.facility, r.severity, r.pid
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses one flat JSON object whose values are all strings (what rsyslog's `option.jsonf`
/// template writes) into (name, value bytes) pairs, without requiring UTF-8: rsyslog escapes
/// `"`, `\` and control characters but writes other bytes raw. `None` if it is not such an
/// object.
pub fn parse_flat_json(line: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut p = JsonBytes { s: line, i: 0 };
    let mut out = Vec::new();
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let key = String::from_utf8(p.string()?).ok()?;
            p.ws();
            p.eat(b':')?;
            p.ws();
            let value = p.string()?;
            out.push((key, value));
            p.ws();
            match p.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    p.ws();
    (p.i == line.len()).then_some(out)
}

struct JsonBytes<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonBytes<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => return Some(out),
                b'\\' => match self.next()? {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let mut code = self.hex4()?;
                        if (0xd800..0xdc00).contains(&code) {
                            // A surrogate pair: \uD8xx\uDCxx.
                            self.eat(b'\\')?;
                            self.eat(b'u')?;
                            let low = self.hex4()?;
                            code = 0x10000 + ((code - 0xd800) << 10) + (low.checked_sub(0xdc00)?);
                        }
                        let c = char::from_u32(code)?;
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    _ => return None,
                },
                b => out.push(b),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// systemd-journald

/// A private systemd-journald in its own mount and network namespace. `socket()` is its native
/// protocol socket as seen from the host; `query()` reads the journal back as JSON.
pub struct Journald {
    daemon: Daemon,
    /// The sockets journald holds once started (its listeners and its own): any other socket
    /// it holds is a client's stdout stream connection.
    own_sockets: std::collections::HashSet<u64>,
}

/// The inodes of the sockets process `pid` holds.
fn socket_inodes(pid: i32) -> std::collections::HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Default::default();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_str()?.to_string();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Connections waiting in the backlog of journald `pid`'s stdout stream socket (its Recv-Q, as
/// `ss` shows it in journald's network namespace).
fn stream_backlog(pid: i32) -> usize {
    let out = Command::new("nsenter")
        .args(["--target", &pid.to_string(), "--net", "ss", "-xlH"])
        .output()
        .expect("nsenter ss (iproute2, util-linux)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("/systemd/journal/stdout "))
        .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(0)
}

/// One journal entry as `journalctl -o json` prints it. Use [`field_bytes`] / [`field_str`] to
/// read a field whatever its JSON shape.
pub type JournalEntry = Map<String, Value>;

impl Journald {
    /// Starts a private journald. `None` when the tests may not use root here (see
    /// [`Rsyslog::start`]).
    pub fn start(name: &str) -> Option<Journald> {
        if !require_root(&format!("journald test ({name})")) {
            return None;
        }
        let daemon = Daemon::start(JOURNALD_SH, name);
        let own_sockets = socket_inodes(daemon.pid());
        Some(Journald {
            daemon,
            own_sockets,
        })
    }

    /// The native protocol socket: pass it to `--journal-socket`.
    pub fn socket(&self) -> &Path {
        self.daemon.path("socket")
    }

    pub fn socket_str(&self) -> &str {
        self.socket().to_str().expect("UTF-8 temp path")
    }

    /// journald's PID, e.g. for `nsenter --target PID --mount`, where the default paths
    /// (/run/systemd/journal/socket, /dev/log) lead to this journald.
    pub fn pid(&self) -> i32 {
        self.daemon.pid()
    }

    pub fn stop(&mut self) {
        self.daemon.verb("stop");
    }

    pub fn start_again(&mut self) {
        self.daemon.verb("start");
        self.own_sockets = socket_inodes(self.daemon.pid());
    }

    /// Every entry, every field.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.query(&[], &[])
    }

    /// Entries matching all of `matches` (journalctl matches such as `SYSLOG_IDENTIFIER=app`),
    /// in journal order, with only `fields` (plus the cursor and timestamps journalctl always
    /// adds); all fields when `fields` is empty. Long values are printed in full (`--all`).
    pub fn query(&self, matches: &[&str], fields: &[&str]) -> Vec<JournalEntry> {
        let joined;
        let mut args = vec!["-o", "json", "--all"];
        if !fields.is_empty() {
            joined = format!("--output-fields={}", fields.join(","));
            args.push(&joined);
        }
        args.extend_from_slice(matches);
        let out = self.daemon.command("read", &args);
        out.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("journalctl printed bad JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Entries whose SYSLOG_IDENTIFIER is `identifier`, with only `fields`.
    pub fn entries_for(&self, identifier: &str, fields: &[&str]) -> Vec<JournalEntry> {
        self.query(&[&format!("SYSLOG_IDENTIFIER={identifier}")], fields)
    }

    /// How many entries carry SYSLOG_IDENTIFIER=`identifier` (cheap: no JSON).
    pub fn count(&self, identifier: &str) -> usize {
        let m = format!("SYSLOG_IDENTIFIER={identifier}");
        self.daemon
            .command(
                "read",
                &["-q", "-o", "cat", "--output-fields=SYSLOG_IDENTIFIER", &m],
            )
            .lines()
            .count()
    }

    /// Waits (bounded) until at least `n` entries carry `identifier`; returns the count.
    pub fn wait_count(&self, identifier: &str, n: usize, timeout: Duration) -> usize {
        eventually_value(timeout, || {
            let c = self.count(identifier);
            if c >= n { Ok(c) } else { Err(c) }
        })
        .unwrap_or_else(|c| {
            panic!("{c} journal entries for {identifier}, expected at least {n} within {timeout:?}")
        })
    }

    /// Waits until journald has taken every stdout stream connection made before this call
    /// and read each to its end (nothing in the listening socket's backlog, then no stream
    /// connection left open: journald reads a stream's every line before it closes it, and
    /// closes it at the writer's EOF), then sends a marker entry on the native socket and waits
    /// until journald has stored it: afterwards every datagram sent to that socket before this
    /// call is in the journal too. For writers that have closed their streams (exited).
    pub fn barrier(&self) {
        let pid = self.pid();
        let drained = eventually_value(TIMEOUT, || {
            // The backlog first: a connection accepted after this look is open in the next.
            match stream_backlog(pid) {
                0 => {}
                n => return Err(format!("{n} stream connections not yet accepted")),
            }
            match socket_inodes(pid).difference(&self.own_sockets).count() {
                0 => Ok(()),
                n => Err(format!("{n} stream connections still open")),
            }
        });
        if let Err(e) = drained {
            panic!("journald did not finish its streams within {TIMEOUT:?}: {e}");
        }
        let id = unique_tag();
        let sock = UnixDatagram::unbound().expect("datagram socket");
        let datagram = format!("SYSLOG_IDENTIFIER={BARRIER_TAG}\nMESSAGE={id}\n");
        sock.send_to(datagram.as_bytes(), self.socket())
            .unwrap_or_else(|e| panic!("barrier to {}: {e}", self.socket().display()));
        let m = format!("MESSAGE={id}");
        let found = eventually_value(TIMEOUT, || {
            let out = self
                .daemon
                .command("read", &["-q", "-o", "cat", "--output-fields=MESSAGE", &m]);
            if out.contains(&id) { Ok(()) } else { Err(()) }
        });
        assert!(
            found.is_ok(),
            "journald did not store the barrier entry within {TIMEOUT:?} (is it running?)"
        );
    }
}

/// A field's bytes whatever journalctl made of it: a string, or an array of byte values (for
/// values that are not valid UTF-8 or hold control characters). `None` when the field is absent
/// (or printed as null). Panics on a field that occurs more than once in the entry.
pub fn field_bytes(entry: &JournalEntry, name: &str) -> Option<Vec<u8>> {
    match entry.get(name)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone().into_bytes()),
        Value::Array(items) if items.iter().all(Value::is_u64) => Some(
            items
                .iter()
                .map(|v| {
                    u8::try_from(v.as_u64().unwrap())
                        .unwrap_or_else(|_| panic!("{name}: byte value out of range: {v}"))
                })
                .collect(),
        ),
        other => panic!("{name} occurs more than once or has an unexpected shape: {other}"),
    }
}

/// A field as text (lossy for non-UTF-8 values).
pub fn field_str(entry: &JournalEntry, name: &str) -> Option<String> {
    field_bytes(entry, name).map(|b| String::from_utf8_lossy(&b).into_owned())
}
