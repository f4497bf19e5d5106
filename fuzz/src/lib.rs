//! The checks behind the fuzz targets. Each one states a contract from sigshim's documentation
//! (the module docs of `signals`, `schedule`, `output::lines`, `output::journald`,
//! `output::syslog`, and `cli`) and panics, which libFuzzer reports as a crash, when the function
//! under test breaks it or panics itself. Expected values are computed here from the
//! documentation, not with sigshim's own helpers, so that a helper and its check cannot share a
//! mistake. `tests/properties.rs` states the same contracts for proptest.

use sigshim::cli::{self, Parsed};
use sigshim::output::journald::{self, JournalHeader};
use sigshim::output::lines::{LineSplitter, parse_level_prefix};
use sigshim::output::syslog::{self, Format, Stamp, SyslogHeader};
use sigshim::schedule::{Schedule, parse_duration};
use sigshim::signals::{Action, Signal, parse_rewrite, parse_signal, rtmax};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The longest duration sigshim accepts (366 days).
pub const YEAR_NANOS: u128 = 366 * 24 * 3_600_000_000_000;

/// A signal number sigshim may hand out: 1..=64, the C library's own 32 and 33 included.
pub fn valid_number(n: i32) -> bool {
    (1..=rtmax()).contains(&n)
}

/// What a rewrite may start from: not KILL/STOP, not CHLD, not a synchronous fault.
pub fn interceptable(s: Signal) -> bool {
    !matches!(s.0, 9 | 19 | 17 | 11 | 7 | 8 | 4 | 5 | 31)
}

/// `parse_signal`: a result is a valid number, and its Display form parses back to it.
pub fn check_signal(spec: &str) {
    if let Ok(sig) = parse_signal(spec) {
        assert!(valid_number(sig.0), "{spec:?} gave {sig:?}");
        let shown = sig.to_string();
        assert_eq!(parse_signal(&shown), Ok(sig), "{spec:?} -> {shown:?}");
        assert_eq!(parse_signal(&sig.0.to_string()), Ok(sig));
    }
}

/// `parse_duration`: at most a year; the value reads back exactly from `S.NNNNNNNNNs`.
pub fn check_duration(spec: &str) {
    if let Ok(d) = parse_duration(spec) {
        assert!(d.as_nanos() <= YEAR_NANOS, "{spec:?} gave {d:?}");
        let again = format!("{}.{:09}s", d.as_secs(), d.subsec_nanos());
        assert_eq!(parse_duration(&again), Ok(d), "{spec:?} -> {again:?}");
    }
}

/// `Schedule::parse`: a schedule has at least one step; every step but the last waits, the last
/// does not; KILL is only ever last; deadlines can be computed.
pub fn check_schedule(spec: &str) {
    let Ok(sched) = Schedule::parse(spec) else {
        return;
    };
    let steps = sched.steps();
    assert!(!steps.is_empty(), "{spec:?}");
    assert_eq!(sched.first_signal(), steps[0].signal);
    let now = std::time::Instant::now();
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        assert!(valid_number(step.signal.0), "{spec:?}: {step:?}");
        assert_eq!(step.wait.is_none(), last, "{spec:?}: step {i} {step:?}");
        assert!(
            last || step.signal != Signal::KILL,
            "{spec:?}: KILL before the end"
        );
        if let Some(w) = step.wait {
            assert!(w.as_nanos() <= YEAR_NANOS);
            assert_eq!(sched.deadline(i, now), now.checked_add(w));
        }
    }
}

/// `parse_rewrite`: FROM can be intercepted, TO is a valid signal or `ignore`, and the rule
/// reads back from its Display parts.
pub fn check_rewrite(spec: &str) {
    let Ok(r) = parse_rewrite(spec) else {
        return;
    };
    assert!(interceptable(r.from), "{spec:?} gave {r:?}");
    let to = match r.to {
        Action::Send(to) => {
            assert!(valid_number(to.0), "{spec:?} gave {r:?}");
            to.to_string()
        }
        Action::Drop => "ignore".to_string(),
    };
    let again = format!("{}:{to}", r.from);
    assert_eq!(parse_rewrite(&again), Ok(r), "{spec:?} -> {again:?}");
}

/// `parse_level_prefix`: exactly a leading `<0>`..`<7>`.
pub fn check_level_prefix(line: &[u8]) {
    let want = match line {
        [b'<', d @ b'0'..=b'7', b'>', rest @ ..] => Some((d - b'0', rest)),
        _ => None,
    };
    assert_eq!(parse_level_prefix(line), want, "{line:?}");
}

/// Feeds `input` cut at `cuts`, then finishes; checks the buffer bound on the way.
pub fn split(max: usize, input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut s = LineSplitter::new(max);
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        let c = c.clamp(at, input.len());
        s.feed(&input[at..c], &mut |r| out.push(r.to_vec()));
        assert!(s.pending() < s.max(), "the buffer held a full chunk");
        at = c;
    }
    s.finish(&mut |r| out.push(r.to_vec()));
    assert_eq!(s.pending(), 0, "finish left bytes behind");
    out
}

/// The documented cut of a full chunk: back off at most 3 bytes to the lead byte of a UTF-8
/// sequence the chunk ends inside, unless the chunk would be empty.
pub fn documented_cut(chunk: &[u8]) -> usize {
    let len = chunk.len();
    for back in 1..=3usize.min(len) {
        let tail_is_continuation = chunk[len - back + 1..].iter().all(|&b| b & 0xC0 == 0x80);
        let seq_len = match chunk[len - back] {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => continue,
        };
        if tail_is_continuation && seq_len > back && back < len {
            return len - back;
        }
        if tail_is_continuation {
            return len;
        }
    }
    len
}

/// `LineSplitter`: the records of each line concatenate to the line; none exceeds `max` or holds
/// `\n`; only empty lines give empty records; one line per `\n` plus a non-empty tail; cuts are
/// the documented ones; the read boundaries change nothing.
pub fn check_splitter(max: usize, input: &[u8], cuts: &[usize]) {
    let records = split(max, input, cuts);
    let whole = split(max, input, &[]);
    assert_eq!(
        records, whole,
        "records depend on the read boundaries {cuts:?}"
    );
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let newlines = input.iter().filter(|&&b| b == b'\n').count();
    let tail = !input.ends_with(b"\n") && !input.is_empty();
    assert_eq!(lines.len(), newlines + usize::from(tail));
    let mut next = records.iter();
    for (n, line) in lines.iter().enumerate() {
        if line.is_empty() {
            assert_eq!(next.next().map(Vec::as_slice), Some(&b""[..]), "line {n}");
            continue;
        }
        let mut rest: &[u8] = line;
        while !rest.is_empty() {
            let rec = next
                .next()
                .unwrap_or_else(|| panic!("records ran out in line {n}"));
            assert!(!rec.is_empty(), "empty record inside line {n}");
            assert!(rec.len() <= max, "{}-byte record, max {max}", rec.len());
            assert!(
                rest.starts_with(rec),
                "record {rec:?} is not the rest of line {n}"
            );
            if rec.len() < rest.len() {
                assert!(
                    rest.len() >= max,
                    "line {n} cut before max bytes were known"
                );
                assert_eq!(rec.len(), documented_cut(&rest[..max]), "cut of line {n}");
            }
            rest = &rest[rec.len()..];
        }
    }
    assert!(next.next().is_none(), "records left after the last line");
    if max >= 4 && std::str::from_utf8(input).is_ok() {
        for r in &records {
            assert!(
                std::str::from_utf8(r).is_ok(),
                "valid UTF-8 cut inside a character"
            );
        }
    }
}

/// journald: the entry decodes to exactly the five fields with every byte back; no empty line
/// or skipped line outside binary values.
pub fn check_journald(identifier: &[u8], pid: u32, facility: u8, priority: u8, message: &[u8]) {
    let header = JournalHeader::new(identifier, pid, facility);
    let mut out = b"kept".to_vec();
    journald::encode_entry(&mut out, &header, priority, message);
    assert!(out.starts_with(b"kept"));
    let entry = &out[4..];
    let fields = journald::decode(entry).expect("undecodable entry");
    let want: Vec<(String, Vec<u8>)> = vec![
        ("SYSLOG_IDENTIFIER".into(), identifier.to_vec()),
        ("SYSLOG_PID".into(), pid.to_string().into_bytes()),
        ("SYSLOG_FACILITY".into(), facility.to_string().into_bytes()),
        ("PRIORITY".into(), priority.min(7).to_string().into_bytes()),
        ("MESSAGE".into(), message.to_vec()),
    ];
    assert_eq!(fields, want);
    // journald's own walk: a line with '=' is a field; without, a binary field.
    let mut rest = entry;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').expect("unterminated");
        let line = &rest[..nl];
        assert!(!line.is_empty(), "an empty line would end the entry");
        assert!(line[0] != b'.' && line[0] != b'#', "a line journald skips");
        if line.contains(&b'=') {
            rest = &rest[nl + 1..];
        } else {
            let after = &rest[nl + 1..];
            let len = u64::from_le_bytes(after[..8].try_into().unwrap()) as usize;
            assert_eq!(after[8 + len], b'\n');
            rest = &after[8 + len + 1..];
        }
    }
}

/// The RFC 5424 HOSTNAME: printable US-ASCII, `_` for any other byte, at most 255 bytes.
fn sanitized_host(value: &[u8]) -> Vec<u8> {
    if value.is_empty() {
        return b"-".to_vec();
    }
    value
        .iter()
        .take(255)
        .map(|&b| if (0x21..=0x7e).contains(&b) { b } else { b'_' })
        .collect()
}

/// The tag: byte for byte, except space, control characters (below 0x21, 0x7f), `:`, `[`, `]`
/// as `_`; cut at `cap` bytes, but not inside a UTF-8 character (backing up over at most 3
/// continuation bytes); `empty` when empty.
fn sanitized_tag(value: &[u8], cap: usize, empty: &[u8]) -> Vec<u8> {
    if value.is_empty() {
        return empty.to_vec();
    }
    let mut end = value.len().min(cap);
    let mut backed = 0;
    while end < value.len() && backed < 3 && end > 0 && (0x80..0xc0).contains(&value[end]) {
        end -= 1;
        backed += 1;
    }
    value[..end]
        .iter()
        .map(|&b| {
            if b <= b' ' || b == 0x7f || b":[]".contains(&b) {
                b'_'
            } else {
                b
            }
        })
        .collect()
}

fn escaped(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in message {
        match b {
            0 => out.extend_from_slice(b"#000"),
            b'\n' => out.extend_from_slice(b"#012"),
            _ => out.push(b),
        }
    }
    out
}

/// syslog: no `\n`, no NUL, one `<PRI>` at the start, and everything before the message is
/// exactly the header derived from the sanitized tag (and hostname); the message follows with
/// NUL and `\n` escaped.
#[allow(clippy::too_many_arguments)]
pub fn check_syslog(
    rfc5424: bool,
    facility: u8,
    severity: u8,
    pid: u32,
    tag: &[u8],
    host: &[u8],
    stamp: Stamp,
    message: &[u8],
) {
    let format = if rfc5424 {
        Format::Rfc5424
    } else {
        Format::Rfc3164
    };
    let header = SyslogHeader::new(format, facility, tag, pid, host);
    let mut out = Vec::new();
    syslog::encode(&mut out, &header, severity, &stamp, message);
    assert!(
        !out.contains(&b'\n'),
        "newline in {:?}",
        out.escape_ascii().to_string()
    );
    assert!(
        !out.contains(&0),
        "NUL in {:?}",
        out.escape_ascii().to_string()
    );
    let pri = format!(
        "<{}>",
        u32::from(facility.min(23)) * 8 + u32::from(severity.min(7))
    );
    assert!(out.starts_with(pri.as_bytes()));
    let rest = &out[pri.len()..];
    let mut want = Vec::new();
    if rfc5424 {
        assert!(rest.starts_with(b"1 "));
        let ts = &rest[2..34];
        assert!(!ts.contains(&b' '), "timestamp {ts:?} has a space");
        want.push(b' ');
        want.extend(sanitized_host(host));
        want.push(b' ');
        want.extend(sanitized_tag(tag, 48, b"-"));
        want.extend(format!(" {pid} - -").as_bytes());
        if !message.is_empty() {
            want.push(b' ');
        }
        want.extend(escaped(message));
        assert_eq!(&rest[34..], want.as_slice());
    } else {
        assert_eq!(rest[15], b' ', "timestamp is not 15 bytes");
        let t = sanitized_tag(tag, 480, b"sigshim");
        assert!(t.iter().all(|b| !b" :[]\n\0".contains(b)));
        want.extend(&t);
        want.extend(format!("[{pid}]: ").as_bytes());
        want.extend(escaped(message));
        assert_eq!(&rest[16..], want.as_slice());
    }
}

/// `cli::parse`: never panics; Run has a non-empty PROGRAM; Print exits 0 or 2, and a usage
/// error starts with `sigshim: usage: `.
pub fn check_cli(words: Vec<Vec<u8>>) {
    let argv = std::iter::once(OsString::from("sigshim"))
        .chain(words.iter().cloned().map(OsString::from_vec))
        .collect::<Vec<_>>();
    match cli::parse(argv) {
        Parsed::Run(cfg) => {
            assert!(!cfg.command.is_empty() && !cfg.command[0].is_empty());
        }
        Parsed::Print { text, code } => {
            assert!(code == 0 || code == 2, "code {code}: {text}");
            if code == 2 {
                assert!(text.starts_with("sigshim: usage: "), "{text}");
            }
        }
    }
}

/// A `Stamp` from raw fields (any values: the encoder must keep its shape whatever it gets).
#[allow(clippy::too_many_arguments)]
pub fn stamp(
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    min: u8,
    sec: u8,
    micros: u32,
    utc_offset_secs: i32,
) -> Stamp {
    Stamp {
        year,
        month,
        day,
        hour,
        min,
        sec,
        micros,
        utc_offset_secs,
    }
}
