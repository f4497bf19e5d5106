//! Property tests for the pure parts: the parsers of what an operator writes (signal specs,
//! rewrite rules, durations, stop schedules, the command line) and the framing and encoders of
//! what the child writes (the `<N>` prefix, the line splitter, the journald and syslog encoders).
//!
//! Each property states the documented contract of one function and checks it against
//! arbitrary input, never against sigshim's own helpers: the expected values are computed here
//! from the documentation (the RFCs, JOURNAL_NATIVE_PROTOCOL.md, the module docs), so that a
//! helper and its check cannot share a mistake. The fuzz targets in `fuzz/` take the same
//! functions further; these run in every `cargo test` and stay well under a few seconds each.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sigshim::cli::{self, Parsed};
use sigshim::output::journald::{self, JournalHeader};
use sigshim::output::lines::{LineSplitter, parse_level_prefix};
use sigshim::output::syslog::{self, Format, Stamp, SyslogHeader};
use sigshim::schedule::{Schedule, parse_duration};
use sigshim::signals::{Action, Deliver, Plan, Signal, parse_rewrite, parse_signal, rtmax, rtmin};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // A failure is reported with its minimal input and kept, for replay, in
        // tests/properties.proptest-regressions (commit it with the fix).
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Signals

/// Every number sigshim accepts: 1 to 64, the C library's own real-time signals (32, 33)
/// included, since a signal sigshim refused to name it could still receive.
fn valid_number(n: i32) -> bool {
    (1..=rtmax()).contains(&n)
}

fn any_valid_signal() -> impl Strategy<Value = Signal> {
    (1..=rtmax())
        .prop_filter("reserved by libc", |&n| valid_number(n))
        .prop_map(Signal)
}

/// The names signal(7) lists for Linux on x86, with the numbers they stand for.
const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Upper- or lower-cases each ASCII letter of `s` according to the bits of `mask`.
fn mixed_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// Strings that look like signal specs more often than random text does.
fn signal_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t]{0,2}(SIG|sig|Sig)?(RTMIN|RTMAX|rtmin|rtmax)[+-]?[0-9]{0,12}[ \t]{0,2}",
        "[+-]?[0-9]{1,25}",
        "(SIG)?[A-Za-z]{1,8}[0-9]{0,2}",
        Just("RTMIN+2147483647".to_string()),
        Just("RTMAX-2147483647".to_string()),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Never panics; whatever it accepts is a real, usable signal number.
    #[test]
    fn parse_signal_total(s in signal_like()) {
        if let Ok(sig) = parse_signal(&s) {
            prop_assert!(valid_number(sig.0), "{s:?} gave {sig:?}");
        }
    }

    /// Display round-trips through the parser, and so does the bare number, in any case, with
    /// or without SIG, with surrounding blanks.
    #[test]
    fn signal_display_round_trips(sig in any_valid_signal(), mask in any::<u64>(),
                                  pad in "[ \t]{0,2}") {
        let shown = sig.to_string();
        prop_assert!(shown.starts_with("SIG"), "{shown}");
        prop_assert_eq!(parse_signal(&shown), Ok(sig));
        prop_assert_eq!(parse_signal(&mixed_case(&shown, mask)), Ok(sig));
        prop_assert_eq!(parse_signal(&format!("{pad}{}{pad}", &shown[3..])), Ok(sig));
        prop_assert_eq!(parse_signal(&sig.0.to_string()), Ok(sig));
    }

    /// Every number parses exactly when it is a valid signal.
    #[test]
    fn signal_numbers(n in -100i64..200, zeros in 0usize..3) {
        let spec = format!("{}{n}", "0".repeat(zeros));
        let parsed = parse_signal(&spec);
        let valid = i32::try_from(n).is_ok_and(valid_number);
        prop_assert_eq!(parsed.is_ok(), valid && n >= 0, "{:?}: {:?}", spec, parsed);
        if let Ok(sig) = parsed {
            prop_assert_eq!(i64::from(sig.0), n);
        }
    }

    /// RTMIN+k and RTMAX-k name rtmin()+k and rtmax()-k within the real-time range, and are
    /// refused outside it, however large k is.
    #[test]
    fn realtime_offsets(k in prop_oneof![0u64..64, any::<u32>().prop_map(u64::from),
                                         Just(i32::MAX as u64), Just(i32::MAX as u64 - 1)],
                        lower in any::<bool>(), sig_prefix in any::<bool>()) {
        let (min, max) = (i64::from(rtmin()), i64::from(rtmax()));
        let case = |s: String| if lower { s.to_lowercase() } else { s };
        let p = if sig_prefix { "SIG" } else { "" };
        let k = k as i64;
        let up = parse_signal(&case(format!("{p}RTMIN+{k}")));
        prop_assert_eq!(up.ok().map(|s| i64::from(s.0)), (min + k <= max).then_some(min + k));
        let down = parse_signal(&case(format!("{p}RTMAX-{k}")));
        prop_assert_eq!(down.ok().map(|s| i64::from(s.0)), (max - k >= min).then_some(max - k));
    }

    /// Each documented name, in any case, with or without SIG, is its signal(7) number.
    #[test]
    fn signal_names(i in 0..NAMES.len(), mask in any::<u64>(), sig_prefix in any::<bool>()) {
        let (name, n) = NAMES[i];
        let spec = if sig_prefix { format!("SIG{name}") } else { name.to_string() };
        prop_assert_eq!(parse_signal(&mixed_case(&spec, mask)), Ok(Signal(n)));
    }

    /// Never panics; a rule is accepted exactly when FROM is a signal sigshim can intercept and
    /// TO is a signal or `ignore`.
    #[test]
    fn parse_rewrite_total(s in prop_oneof![
        any::<String>(),
        (signal_like(), signal_like()).prop_map(|(a, b)| format!("{a}:{b}")),
    ]) {
        if let Ok(r) = parse_rewrite(&s) {
            prop_assert!(interceptable(r.from), "{s:?} gave {r:?}");
            if let Action::Send(to) = r.to {
                prop_assert!(valid_number(to.0), "{s:?} gave {r:?}");
            }
        }
    }

    /// FROM:TO built from valid parts parses back to exactly those parts.
    #[test]
    fn rewrite_round_trips(from in any_valid_signal(), to in any_valid_signal(),
                           ignore in any::<bool>(), mask in any::<u64>()) {
        let to_spec = if ignore { mixed_case("ignore", mask) } else { to.to_string() };
        let spec = format!("{from}:{to_spec}");
        let r = parse_rewrite(&spec);
        if interceptable(from) {
            let r = r.map_err(|e| TestCaseError::fail(format!("{spec:?}: {e}")))?;
            prop_assert_eq!(r.from, from);
            prop_assert_eq!(r.to, if ignore { Action::Drop } else { Action::Send(to) });
        } else {
            prop_assert!(r.is_err(), "{spec:?} accepted");
        }
    }
}

/// What a rewrite may start from: not KILL/STOP (uncatchable), not CHLD (reaping), not the
/// synchronous faults (never intercepted).
fn interceptable(s: Signal) -> bool {
    !matches!(s.0, 9 | 19 | 17 | 11 | 7 | 8 | 4 | 5 | 31)
}

// ---------------------------------------------------------------------------------------------
// Durations and schedules

const NANOS: [(&str, u128); 6] = [
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("", 1_000_000_000),
    ("m", 60_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
];
const YEAR_NANOS: u128 = 366 * 24 * 3_600_000_000_000;

proptest! {
    #![proptest_config(config())]

    /// Never panics, and never accepts more than the documented year.
    #[test]
    fn parse_duration_total(s in prop_oneof![
        any::<String>(),
        "[ ]?[0-9]{0,30}(\\.[0-9]{0,30})?(ms|s|m|min|h|d|us|)[ ]?",
        "[0-9.]{0,10}[a-z]{0,3}",
    ]) {
        if let Ok(d) = parse_duration(&s) {
            prop_assert!(d.as_nanos() <= YEAR_NANOS, "{s:?} gave {d:?}");
        }
    }

    /// INT.FRAC UNIT is INT units plus FRAC of a unit, truncated, never more than the exact
    /// value and off by less than 10 ns (integer scaling of non-decimal units such as `h`).
    /// Overflow is an error, never a wrap or a panic.
    #[test]
    fn duration_value(int in prop_oneof![0u128..1000, 0u128..10_000_000, any::<u64>().prop_map(u128::from)],
                      frac in proptest::option::of("[0-9]{0,18}"),
                      unit in 0..NANOS.len(),
                      lead_zeros in 0usize..3) {
        let (suffix, per_unit) = NANOS[unit];
        let frac_part = frac.as_ref().map(|f| format!(".{f}")).unwrap_or_default();
        let spec = format!("{}{int}{frac_part}{suffix}", "0".repeat(lead_zeros));
        let f = frac.unwrap_or_default();
        let frac_exact = if f.is_empty() {
            0
        } else {
            f.parse::<u128>().unwrap() * per_unit / 10u128.pow(f.len() as u32)
        };
        let exact = int * per_unit + frac_exact;
        match parse_duration(&spec) {
            Ok(d) => {
                prop_assert!(exact <= YEAR_NANOS, "{spec:?} accepted as {d:?}, past a year");
                let got = d.as_nanos();
                prop_assert!(got <= exact && exact - got < 10,
                             "{spec:?}: got {got} ns, exact {exact} ns");
            }
            Err(e) => {
                prop_assert!(exact > YEAR_NANOS, "{spec:?} refused: {e}");
                prop_assert!(e.contains("too long"), "{spec:?}: {e}");
            }
        }
    }

    /// A compound duration (`1h2m3.5s`: parts largest unit first, each unit once) is the sum
    /// of its parts, each read as a single-part duration would be; the same parts in another
    /// order, or a unit twice, are refused.
    #[test]
    fn compound_duration_is_the_sum(parts in proptest::collection::vec(
                                        (any::<bool>(), 0u64..100_000, proptest::option::of(0u32..1000)),
                                        4)) {
        // h, m (or min), s, ms: the subset chosen by the bools, in that order.
        let units = [("h", 3_600_000_000_000u128), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000)];
        let mut spec = String::new();
        let mut exact: u128 = 0;
        let mut chosen = Vec::new();
        for ((used, int, frac), (unit, per)) in parts.iter().zip(units) {
            if !used {
                continue;
            }
            let part = match frac {
                Some(f) => format!("{int}.{f:03}{unit}"),
                None => format!("{int}{unit}"),
            };
            exact += u128::from(*int) * per + frac.map_or(0, |f| u128::from(f) * per / 1000);
            spec.push_str(&part);
            chosen.push(part);
        }
        prop_assume!(!chosen.is_empty());
        match parse_duration(&spec) {
            Ok(d) => {
                prop_assert!(exact <= YEAR_NANOS, "{spec:?} accepted past a year");
                let single: u128 = chosen.iter().map(|p| parse_duration(p).unwrap().as_nanos()).sum();
                prop_assert_eq!(d.as_nanos(), single, "{:?}", spec);
                prop_assert!(d.as_nanos() <= exact && exact - d.as_nanos() < 10, "{spec:?}: {d:?} vs {exact}");
            }
            Err(e) => prop_assert!(exact > YEAR_NANOS && e.contains("too long"), "{spec:?} refused: {e}"),
        }
        if chosen.len() >= 2 {
            let mut reversed = chosen.clone();
            reversed.reverse();
            prop_assert!(parse_duration(&reversed.concat()).is_err(), "{:?} accepted", reversed.concat());
            let twice = format!("{}{}", chosen[0], chosen[0]);
            prop_assert!(parse_duration(&twice).is_err(), "{twice:?} accepted");
        }
    }

    /// A duration printed as seconds with nine decimals (or as whole ms) reads back exactly.
    #[test]
    fn duration_round_trips(nanos in 0u64..=(YEAR_NANOS as u64)) {
        let d = Duration::from_nanos(nanos);
        let spec = format!("{}.{:09}s", d.as_secs(), d.subsec_nanos());
        prop_assert_eq!(parse_duration(&spec), Ok(d));
        let ms = Duration::from_millis(nanos / 1_000_000);
        prop_assert_eq!(parse_duration(&format!("{}ms", ms.as_millis())), Ok(ms));
    }

    /// Never panics; whatever it accepts is a well-formed schedule: at least one step, every
    /// step but the last has a wait, the last has none, KILL only as the last step, and every
    /// deadline can be computed.
    #[test]
    fn schedule_parse_total(s in prop_oneof![
        any::<String>(),
        proptest::collection::vec(prop_oneof![signal_like(), "[0-9]{1,4}(ms|s|m|h)?"], 0..7)
            .prop_map(|v| v.join("/")),
    ]) {
        if let Ok(sched) = Schedule::parse(&s) {
            check_schedule_shape(&s, &sched)?;
        }
    }

    /// SIG/DUR/SIG/DUR/... built from valid parts parses to exactly those steps, with SIGKILL
    /// appended after a final duration, and is refused when anything follows a KILL.
    #[test]
    fn schedule_round_trips(steps in proptest::collection::vec(
                                (any_valid_signal(), 0u64..100_000), 1..6),
                            ends_on_duration in any::<bool>()) {
        let mut parts = Vec::new();
        for (i, (sig, ms)) in steps.iter().enumerate() {
            parts.push(sig.to_string());
            if i + 1 < steps.len() || ends_on_duration {
                parts.push(format!("{ms}ms"));
            }
        }
        let spec = parts.join("/");
        let kill_before_last = steps[..steps.len() - 1].iter().any(|(s, _)| *s == Signal::KILL);
        let parsed = Schedule::parse(&spec);
        if kill_before_last {
            prop_assert!(parsed.is_err(), "{spec:?} accepted");
            return Ok(());
        }
        let sched = parsed.map_err(|e| TestCaseError::fail(format!("{spec:?}: {e}")))?;
        check_schedule_shape(&spec, &sched)?;
        let got = sched.steps();
        for (i, (sig, ms)) in steps.iter().enumerate() {
            prop_assert_eq!(got[i].signal, *sig);
            let last_written = i + 1 == steps.len();
            if *sig == Signal::KILL {
                prop_assert_eq!(got[i].wait, None);
            } else if !last_written || ends_on_duration {
                prop_assert_eq!(got[i].wait, Some(Duration::from_millis(*ms)));
            } else {
                prop_assert_eq!(got[i].wait, None);
            }
        }
        let last = steps.last().unwrap().0;
        let appended = ends_on_duration && last != Signal::KILL;
        prop_assert_eq!(got.len(), steps.len() + usize::from(appended), "{:?}", spec);
        if appended {
            prop_assert_eq!(got.last().unwrap().signal, Signal::KILL);
        }
        // `SIG/DUR` is exactly --kill-after.
        if steps.len() == 1 && ends_on_duration && last != Signal::KILL {
            prop_assert_eq!(&sched, &Schedule::kill_after(last, Duration::from_millis(steps[0].1)));
        }
    }
}

fn check_schedule_shape(spec: &str, sched: &Schedule) -> Result<(), TestCaseError> {
    let steps = sched.steps();
    prop_assert!(!steps.is_empty(), "{spec:?}: no steps");
    prop_assert_eq!(sched.first_signal(), steps[0].signal);
    let now = std::time::Instant::now();
    for (i, step) in steps.iter().enumerate() {
        prop_assert!(valid_number(step.signal.0), "{spec:?}: {step:?}");
        let last = i + 1 == steps.len();
        prop_assert_eq!(
            step.wait.is_none(),
            last,
            "{:?}: step {} {:?}",
            spec,
            i,
            step
        );
        prop_assert!(
            last || step.signal != Signal::KILL,
            "{spec:?}: KILL before the end"
        );
        if let Some(w) = step.wait {
            prop_assert!(w.as_nanos() <= YEAR_NANOS);
            prop_assert_eq!(sched.deadline(i, now), now.checked_add(w));
        }
    }
    prop_assert_eq!(sched.step(steps.len()), None);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Level prefixes and line splitting

proptest! {
    #![proptest_config(config())]

    /// `<N>` with N one digit 0..=7 at the very start, and nothing else, is a prefix; the rest
    /// of the line is returned untouched.
    #[test]
    fn level_prefix(line in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12),
        (0u8..12, proptest::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(d, rest)| [format!("<{d}>").into_bytes(), rest].concat()),
    ]) {
        let want = match line.as_slice() {
            [b'<', d, b'>', ..] if (b'0'..=b'7').contains(d) => Some((d - b'0', &line[3..])),
            _ => None,
        };
        prop_assert_eq!(parse_level_prefix(&line), want);
    }
}

/// Bytes that exercise the splitter: newlines, multi-byte UTF-8 (whole and cut), stray
/// continuation and invalid lead bytes, `\r` and NUL.
fn splitter_input() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => Just(b"\n".to_vec()),
        4 => "[a-z]{1,12}".prop_map(String::into_bytes),
        2 => any::<String>().prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 1..6),
        1 => prop_oneof![Just(vec![0xE2]), Just(vec![0xE2, 0x82]), Just(vec![0xF0, 0x9F, 0x98]),
                         Just(vec![0x80]), Just(vec![0xC0]), Just(vec![0xF8]), Just(b"\r".to_vec()),
                         Just(vec![0])],
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// Feeds `input` cut at `cuts` (sorted, deduplicated offsets), then finishes.
fn split(max: usize, input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut s = LineSplitter::new(max);
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        let c = c.min(input.len()).max(at);
        s.feed(&input[at..c], &mut |r| out.push(r.to_vec()));
        assert!(s.pending() < s.max(), "the buffer held a full chunk");
        at = c;
    }
    s.finish(&mut |r| out.push(r.to_vec()));
    assert_eq!(s.pending(), 0, "finish left bytes behind");
    out
}

/// The lines of `input` as the contract defines them: split at `\n`, plus the unterminated
/// tail when it is not empty.
fn lines_of(input: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// The cut the contract describes for a chunk of exactly `max` bytes: back off (at most 3
/// bytes) to the lead byte of a UTF-8 sequence the chunk ends inside, unless that leaves the
/// chunk empty. Written from the documentation, independently of `lines::chunk_len`.
fn documented_cut(chunk: &[u8]) -> usize {
    let len = chunk.len();
    for back in 1..=3usize.min(len) {
        let lead = chunk[len - back];
        let tail_is_continuation = chunk[len - back + 1..].iter().all(|&b| b & 0xC0 == 0x80);
        let seq_len = match lead {
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

proptest! {
    #![proptest_config(config())]

    /// For any bytes, any read boundaries and any limit:
    /// - the records of each line, concatenated, are that line, in order, and no record is
    ///   longer than `max` or contains `\n`; only an empty line gives an empty record;
    /// - there is one line per `\n`, plus one for a non-empty unterminated tail;
    /// - a line is cut only where it must be: every record but a line's last is at least
    ///   `max - 3` bytes (the UTF-8 back-off), and the cuts are the documented ones;
    /// - how the pipe was read does not change the records.
    #[test]
    fn line_splitter(input in splitter_input(),
                     max in prop_oneof![1usize..8, 1usize..64, Just(4096)],
                     mut cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let mut cuts: Vec<usize> = cuts.drain(..).map(|i| i.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let records = split(max, &input, &cuts);
        let whole = split(max, &input, &[]);
        prop_assert_eq!(&records, &whole, "records depend on the read boundaries {:?}", cuts);
        let bytewise: Vec<usize> = (1..input.len()).collect();
        if input.len() < 200 {
            prop_assert_eq!(&split(max, &input, &bytewise), &whole, "byte-at-a-time reads differ");
        }

        let lines = lines_of(&input);
        let mut next = records.iter();
        for (n, line) in lines.iter().enumerate() {
            if line.is_empty() {
                prop_assert_eq!(next.next().map(Vec::as_slice), Some(&b""[..]),
                                "line {} is empty: one empty record", n);
                continue;
            }
            let mut rest: &[u8] = line;
            while !rest.is_empty() {
                let rec = next.next().ok_or_else(|| TestCaseError::fail(
                    format!("records ran out in line {n} with {} bytes left", rest.len())))?;
                prop_assert!(!rec.is_empty(), "an empty record inside line {}", n);
                prop_assert!(rec.len() <= max, "a {}-byte record with max {}", rec.len(), max);
                prop_assert!(!rec.contains(&b'\n'));
                prop_assert!(rest.starts_with(rec), "record {:?} is not the next part of line {} ({:?})",
                             rec, n, rest);
                if rec.len() < rest.len() {
                    // Not the line's last record: cut where the contract says.
                    let window = &rest[..max.min(rest.len())];
                    prop_assert_eq!(window.len(), max, "cut before max bytes were known");
                    prop_assert_eq!(rec.len(), documented_cut(window),
                                    "cut of {:?} (max {})", window, max);
                    prop_assert!(rec.len() + 3 >= max);
                }
                rest = &rest[rec.len()..];
            }
        }
        prop_assert!(next.next().is_none(), "records left over after the last line");
        let newlines = input.iter().filter(|&&b| b == b'\n').count();
        let tail = input.rsplit(|&b| b == b'\n').next().is_some_and(|t| !t.is_empty());
        prop_assert_eq!(lines.len(), newlines + usize::from(tail));
    }

    /// The marked records say how to put the lines back together (README "Split lines"): a
    /// reader that joins each `Cut` record to the next and ends a line at any other record gets
    /// exactly the lines of the input, whatever the reads; `Eof` marks exactly a non-empty
    /// unterminated tail, and a `Terminator` is empty and always follows a `Cut`.
    #[test]
    fn marked_records_join_back_into_the_lines(input in splitter_input(),
                                                max in prop_oneof![1usize..8, 1usize..64],
                                                cut in any::<prop::sample::Index>()) {
        use sigshim::output::lines::End;
        let at = cut.index(input.len() + 1);
        let mut s = LineSplitter::new(max);
        let mut recs: Vec<(Vec<u8>, End)> = Vec::new();
        s.feed_marked(&input[..at], &mut |r, e| recs.push((r.to_vec(), e)));
        s.feed_marked(&input[at..], &mut |r, e| recs.push((r.to_vec(), e)));
        s.finish_marked(&mut |r, e| recs.push((r.to_vec(), e)));
        let mut joined: Vec<Vec<u8>> = Vec::new();
        let mut open: Option<Vec<u8>> = None;
        let mut prev = None;
        for (r, e) in &recs {
            if *e == End::Terminator {
                prop_assert!(r.is_empty(), "a terminator with bytes");
                prop_assert_eq!(prev, Some(End::Cut), "a terminator after {:?}", prev);
            }
            let mut line = open.take().unwrap_or_default();
            line.extend_from_slice(r);
            if *e == End::Cut {
                open = Some(line);
            } else {
                joined.push(line);
            }
            prev = Some(*e);
        }
        prop_assert!(open.is_none(), "the last record was a cut");
        let lines: Vec<Vec<u8>> = lines_of(&input).into_iter().map(<[u8]>::to_vec).collect();
        prop_assert_eq!(&joined, &lines);
        let tail = input.rsplit(|&b| b == b'\n').next().is_some_and(|t| !t.is_empty());
        let eofs = recs.iter().filter(|(_, e)| *e == End::Eof).count();
        prop_assert!(eofs <= usize::from(tail), "an Eof without an unterminated tail");
    }

    /// Valid UTF-8 stays valid UTF-8 record by record once a record can hold any character.
    #[test]
    fn line_splitter_keeps_utf8_whole(text in any::<String>(), max in 4usize..40,
                                      cut in any::<prop::sample::Index>()) {
        let input = text.as_bytes();
        for r in split(max, input, &[cut.index(input.len() + 1)]) {
            prop_assert!(std::str::from_utf8(&r).is_ok(), "{:?} (max {})", r, max);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// journald native protocol

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
        .collect()
}

fn bytes_with_newlines() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'='), Just(0u8), any::<u8>()],
            0..40
        ),
        "(MESSAGE=|\n|PRIORITY=0|\n\n|_PID=1|[a-z]{0,4}){0,8}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// An entry decodes to exactly the five fields, in order, with every byte of the message
    /// and the identifier back as given; and nothing in the datagram outside a binary value is
    /// an empty line (journald's entry separator), so one entry stays one entry.
    #[test]
    fn journald_round_trip(identifier in bytes_with_newlines(), message in bytes_with_newlines(),
                           pid in any::<u32>(), facility in any::<u8>(), priority in any::<u8>(),
                           prefix in proptest::collection::vec(any::<u8>(), 0..4)) {
        let header = JournalHeader::new(&identifier, pid, facility);
        let mut out = prefix.clone();
        journald::encode_entry(&mut out, &header, priority, &message);
        prop_assert!(out.starts_with(&prefix), "encode_entry cleared the buffer");
        let entry = &out[prefix.len()..];
        let fields = journald::decode(entry)
            .ok_or_else(|| TestCaseError::fail(format!("undecodable: {:?}", entry.escape_ascii().to_string())))?;
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        prop_assert_eq!(names, ["SYSLOG_IDENTIFIER", "SYSLOG_PID", "SYSLOG_FACILITY", "PRIORITY", "MESSAGE"]);
        prop_assert_eq!(field(&fields, "SYSLOG_IDENTIFIER"), [identifier.as_slice()]);
        let (pid, facility) = (pid.to_string(), facility.to_string());
        let priority = priority.min(7).to_string();
        prop_assert_eq!(field(&fields, "SYSLOG_PID"), [pid.as_bytes()]);
        prop_assert_eq!(field(&fields, "SYSLOG_FACILITY"), [facility.as_bytes()]);
        prop_assert_eq!(field(&fields, "PRIORITY"), [priority.as_bytes()]);
        prop_assert_eq!(field(&fields, "MESSAGE"), [message.as_slice()]);
        check_journald_framing(entry)?;
    }

    /// The decoder takes any bytes without panicking.
    #[test]
    fn journald_decode_total(bytes in bytes_with_newlines()) {
        let _ = journald::decode(&bytes);
    }
}

/// Walks the datagram the way journald's native parser does (`server_process_native_message`):
/// a line with `=` is a field, a line without one is a name followed by a 64-bit little-endian
/// length and that many bytes and `\n`. An empty line would end the entry; a line starting
/// with `.` or `#` would be skipped. Neither may occur.
fn check_journald_framing(mut rest: &[u8]) -> Result<(), TestCaseError> {
    while !rest.is_empty() {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| TestCaseError::fail("trailing bytes without \\n"))?;
        let line = &rest[..nl];
        prop_assert!(
            !line.is_empty(),
            "an empty line: journald would start a new entry"
        );
        prop_assert!(line[0] != b'.' && line[0] != b'#', "a line journald skips");
        if line.contains(&b'=') {
            let name = &line[..line.iter().position(|&b| b == b'=').unwrap()];
            prop_assert!(
                name.iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            );
            rest = &rest[nl + 1..];
        } else {
            let after = &rest[nl + 1..];
            prop_assert!(after.len() >= 8, "binary field without its length");
            let len = u64::from_le_bytes(after[..8].try_into().unwrap()) as usize;
            prop_assert!(
                after.len() > 8 + len && after[8 + len] == b'\n',
                "binary value overruns"
            );
            rest = &after[8 + len + 1..];
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// syslog

fn any_stamp() -> impl Strategy<Value = Stamp> {
    (
        any::<i32>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        any::<i32>(),
    )
        .prop_map(
            |(year, month, day, hour, min, sec, micros, utc_offset_secs)| Stamp {
                year,
                month,
                day,
                hour,
                min,
                sec,
                micros,
                utc_offset_secs,
            },
        )
}

/// A realistic clock value: what `Stamp::now` can return.
fn sane_stamp() -> impl Strategy<Value = Stamp> {
    (
        1970i32..2200,
        1u8..=12,
        1u8..=31,
        0u8..24,
        0u8..60,
        0u8..=60,
        0u32..1_000_000,
        -14 * 3600..=14 * 3600,
    )
        .prop_map(
            |(year, month, day, hour, min, sec, micros, utc_offset_secs)| Stamp {
                year,
                month,
                day,
                hour,
                min,
                sec,
                micros,
                utc_offset_secs,
            },
        )
}

/// The tag or APP-NAME as the module documentation describes it: byte for byte, except that a
/// space, a control character (below 0x21, 0x7f), `:`, `[` and `]` become `_`; cut at `cap`
/// bytes but never inside a UTF-8 character (backing up at most 3 continuation bytes); a
/// default when empty.
fn sanitized_tag(tag: &[u8], cap: usize, empty: &[u8]) -> Vec<u8> {
    if tag.is_empty() {
        return empty.to_vec();
    }
    let mut end = tag.len().min(cap);
    let mut backed = 0;
    while end < tag.len() && backed < 3 && end > 0 && (0x80..0xc0).contains(&tag[end]) {
        end -= 1;
        backed += 1;
    }
    tag[..end]
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

fn sanitized_host(host: &[u8]) -> Vec<u8> {
    if host.is_empty() {
        return b"-".to_vec();
    }
    host.iter()
        .take(255)
        .map(|&b| if (0x21..=0x7e).contains(&b) { b } else { b'_' })
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

fn tag_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..60),
        proptest::collection::vec(any::<u8>(), 470..520),
        "[a-z]{0,40}".prop_map(String::into_bytes),
        "[a-zé😀]{40,60}".prop_map(String::into_bytes),
        "([a-z]{0,3}|\\[[0-9]{1,5}\\]|: |:|\\[|\\]| |\n|\0|<0>){0,10}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any tag, hostname, PID, facility, severity, clock value and message bytes: one record
    /// with no `\n` and no NUL (so no receiver can see a second record), starting with the one
    /// `<PRI>` computed from facility and severity; everything before the message is exactly
    /// the header derived from the sanitized tag, so no tag and no message can forge another
    /// program's identity; the message follows with only NUL and `\n` escaped.
    #[test]
    fn syslog_record(tag in tag_bytes(), host in tag_bytes(), pid in any::<u32>(),
                     facility in any::<u8>(), severity in any::<u8>(), stamp in any_stamp(),
                     message in bytes_with_newlines(), rfc5424 in any::<bool>()) {
        let format = if rfc5424 { Format::Rfc5424 } else { Format::Rfc3164 };
        let header = SyslogHeader::new(format, facility, &tag, pid, &host);
        let mut out = Vec::new();
        syslog::encode(&mut out, &header, severity, &stamp, &message);
        prop_assert!(!out.contains(&b'\n'), "a newline in {:?}", out.escape_ascii().to_string());
        prop_assert!(!out.contains(&0), "a NUL in {:?}", out.escape_ascii().to_string());

        let pri = format!("<{}>", u32::from(facility.min(23)) * 8 + u32::from(severity.min(7)));
        prop_assert!(out.starts_with(pri.as_bytes()), "{:?} does not start with {}", out.escape_ascii().to_string(), pri);
        let rest = &out[pri.len()..];
        let body = escaped(&message);
        if rfc5424 {
            // "1 " TIMESTAMP(32) " " HOSTNAME " " APP-NAME " " PROCID " - -" [" " MSG]
            prop_assert!(rest.starts_with(b"1 "));
            let after_ts = &rest[2 + 32..];
            let mut want = b" ".to_vec();
            want.extend(sanitized_host(&host));
            want.push(b' ');
            let app = sanitized_tag(&tag, 48, b"-");
            prop_assert!(!app.iter().any(|b| b" :[]".contains(b)));
            want.extend(&app);
            want.extend(format!(" {pid} - -").as_bytes());
            if !message.is_empty() {
                want.push(b' ');
            }
            want.extend(&body);
            prop_assert_eq!(after_ts.escape_ascii().to_string(), want.escape_ascii().to_string());
            // The seven header fields are found by splitting at spaces, as a receiver does.
            let fields: Vec<&[u8]> = rest.splitn(7, |&b| b == b' ').collect();
            prop_assert_eq!(fields.len(), 7);
            prop_assert_eq!(fields[3], app.as_slice());
            let pid = pid.to_string();
            prop_assert_eq!(fields[4], pid.as_bytes());
        } else {
            // TIMESTAMP(15) " " TAG "[" PID "]: " MSG
            prop_assert_eq!(rest[15], b' ');
            let tag_out = sanitized_tag(&tag, 480, b"sigshim");
            prop_assert!(!tag_out.is_empty());
            prop_assert!(tag_out.iter().all(|&b| b > b' ' && b != 0x7f && !b":[]".contains(&b)));
            if std::str::from_utf8(&tag).is_ok() {
                prop_assert!(std::str::from_utf8(&tag_out).is_ok(), "a UTF-8 tag cut inside a character");
            }
            let mut want = tag_out.clone();
            want.extend(format!("[{pid}]: ").as_bytes());
            want.extend(&body);
            prop_assert_eq!(rest[16..].escape_ascii().to_string(), want.escape_ascii().to_string());
            // rsyslog's 3164 parser ends the TAG at the first ':' or ' ' after the timestamp
            // and cuts programname at '[': both land on ours.
            let end = rest[16..].iter().position(|&b| b == b':' || b == b' ').unwrap();
            let tag_pid = [&tag_out[..], format!("[{pid}]").as_bytes()].concat();
            prop_assert_eq!(&rest[16..16 + end], tag_pid.as_slice());
        }
    }

    /// With a real clock value the timestamps keep their exact shapes: RFC 3164 `Mmm dd
    /// hh:mm:ss` (day space-padded) and RFC 3339 with microseconds and a numeric offset.
    #[test]
    fn syslog_timestamps(stamp in sane_stamp(), rfc5424 in any::<bool>()) {
        let format = if rfc5424 { Format::Rfc5424 } else { Format::Rfc3164 };
        let header = SyslogHeader::new(format, 3, b"app", 1, b"host");
        let mut out = Vec::new();
        syslog::encode(&mut out, &header, 6, &stamp, b"m");
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let want = if rfc5424 {
            let off = stamp.utc_offset_secs.unsigned_abs();
            format!("<30>1 {:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02} host app 1 - - m",
                    stamp.year, stamp.month, stamp.day, stamp.hour, stamp.min, stamp.sec,
                    stamp.micros, if stamp.utc_offset_secs < 0 { '-' } else { '+' },
                    off / 3600, off % 3600 / 60)
        } else {
            format!("<30>{} {:>2} {:02}:{:02}:{:02} app[1]: m", months[usize::from(stamp.month) - 1],
                    stamp.day, stamp.hour, stamp.min, stamp.sec)
        };
        prop_assert_eq!(String::from_utf8_lossy(&out), want);
    }
}

// ---------------------------------------------------------------------------------------------
// The command line

/// Words a command line is made of: real options (so parsing gets past clap often), values
/// that are valid, invalid or hostile, and arbitrary bytes.
fn argv_word() -> impl Strategy<Value = OsString> {
    const OPTIONS: &[&str] = &[
        "--stop-signal",
        "--stop-on",
        "--rewrite",
        "--kill-after",
        "--stop-schedule",
        "--single-child",
        "--no-guard",
        "--exit-code-on-signal",
        "--success-exit",
        "--pdeathsig",
        "--no-subreaper",
        "--leftover-grace",
        "--log",
        "--tag",
        "--facility",
        "--stdout-priority",
        "--stderr-priority",
        "--no-level-prefix",
        "--journal-socket",
        "--syslog-socket",
        "--syslog-format",
        "--max-line",
        "--drain-timeout",
        "--ready",
        "--ready-timeout",
        "--notify-fd",
        "--upstart-expect-stop",
        "--ready-file",
        "-v",
        "-vv",
        "-q",
        "--",
        "-h",
        "--help",
        "-V",
        "--version",
        "--stop-signal=",
        "--tag=",
        "--rewrite=",
    ];
    const VALUES: &[&str] = &[
        "INT",
        "TERM",
        "0",
        "65",
        "-1",
        "RTMIN+3",
        "RTMIN+2147483647",
        "HUP:USR2",
        "KILL:INT",
        "HUP:ignore",
        "4s",
        "500ms",
        "1.5s",
        "99999999999999999999999h",
        "INT/1s/KILL",
        "INT/20s/TERM/5s/KILL",
        "KILL/1s/TERM",
        "syslog",
        "journald",
        "inherit",
        "auto",
        "daemon",
        "local7",
        "info",
        "8",
        "rfc5424",
        "256",
        "1",
        "18446744073709551616",
        "spawn",
        "notify",
        "log:^ready",
        "log:(",
        "tcp:127.0.0.1:1",
        "file:/nonexistent",
        "fd:3",
        "fd:-1",
        "",
        " ",
        "true",
        "app",
        "/bin/true",
        "a b\n[1]: x",
    ];
    prop_oneof![
        4 => proptest::sample::select(OPTIONS).prop_map(OsString::from),
        4 => proptest::sample::select(VALUES).prop_map(OsString::from),
        1 => (proptest::sample::select(OPTIONS), proptest::sample::select(VALUES))
            .prop_map(|(o, v)| OsString::from(format!("{o}={v}"))),
        1 => any::<String>().prop_map(OsString::from),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(OsString::from_vec),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..config() })]

    /// Any argv: no panic; either a configuration with a non-empty PROGRAM, or text to print
    /// with exit 0 (help, version) or 2 (usage error, one `sigshim: usage:` line).
    #[test]
    fn cli_parse_total(words in proptest::collection::vec(argv_word(), 0..12)) {
        let argv = std::iter::once(OsString::from("sigshim")).chain(words.iter().cloned());
        match cli::parse(argv) {
            Parsed::Run(cfg) => {
                prop_assert!(!cfg.command.is_empty(), "{words:?}");
                prop_assert!(!cfg.command[0].is_empty(), "{words:?}");
            }
            Parsed::Print { text, code } => {
                prop_assert!(code == 0 || code == 2, "{words:?}: code {code}: {text}");
                prop_assert!(!text.is_empty(), "{words:?}");
                if code == 2 {
                    prop_assert!(text.starts_with("sigshim: usage: "), "{words:?}: {text}");
                    prop_assert!(text.ends_with('\n'), "{words:?}: {text:?}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// A usage error is one line even when the offending value holds a newline (STYLE.md: one
    /// message shape, one line).
    #[test]
    fn usage_errors_are_one_line(option in proptest::sample::select(&[
        "--stop-signal", "--stop-on", "--rewrite", "--kill-after", "--stop-schedule",
        "--pdeathsig", "--leftover-grace", "--facility", "--stdout-priority", "--drain-timeout",
    ][..]), before in "[A-Z]{0,4}", after in "[A-Z]{0,4}") {
        let value = format!("{before}\n{after}");
        let argv = ["sigshim", option, &value, "app"].map(OsString::from);
        match cli::parse(argv) {
            Parsed::Print { text, code } => {
                prop_assert_eq!(code, 2);
                prop_assert_eq!(text.lines().count(), 1, "{} {:?}: {:?}", option, value, text);
            }
            Parsed::Run(_) => prop_assert!(false, "{option} {value:?} accepted"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The signal plan

/// A signal spec as an operator writes it: a name, a number, or RTMIN+N.
fn spec_of(sig: Signal, form: u8) -> String {
    match form % 3 {
        0 => sig.to_string(),
        1 => sig.0.to_string(),
        _ => sig.to_string().trim_start_matches("SIG").to_lowercase(),
    }
}

/// Random command lines with every option that shapes the plan.
fn plan_argv() -> impl Strategy<Value = Vec<String>> {
    let sig = || (any_valid_signal(), any::<u8>()).prop_map(|(s, f)| spec_of(s, f));
    let catchable = || {
        any_valid_signal()
            .prop_filter("interceptable", |s| interceptable(*s))
            .prop_map(|s| s.to_string())
    };
    (
        proptest::option::of(sig()),
        proptest::collection::vec(catchable(), 0..3),
        proptest::collection::vec(
            (catchable(), prop_oneof![sig(), Just("ignore".to_string())]),
            0..4,
        ),
        proptest::option::of(proptest::collection::vec(sig(), 1..4)),
        proptest::option::of(sig()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(stop, stop_on, rewrites, schedule, pdeath, no_guard, kill_after)| {
                let mut a: Vec<String> = Vec::new();
                if let Some(steps) = schedule {
                    a.push("--stop-schedule".into());
                    a.push(steps.join("/1s/"));
                } else {
                    if let Some(s) = stop {
                        a.extend(["--stop-signal".into(), s]);
                    }
                    if kill_after {
                        a.extend(["--kill-after".into(), "3s".into()]);
                    }
                }
                if !stop_on.is_empty() {
                    a.extend(["--stop-on".into(), stop_on.join(",")]);
                }
                for (from, to) in rewrites {
                    a.extend(["--rewrite".into(), format!("{from}:{to}")]);
                }
                if let Some(p) = pdeath {
                    a.extend(["--pdeathsig".into(), p]);
                }
                if no_guard {
                    a.push("--no-guard".into());
                }
                a.push("app".into());
                a
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..config() })]

    /// The plan's invariant over random command lines: nothing sigshim delivers to the app by
    /// any path (routes, schedule steps, the parent-death signal, job control, leftovers) is
    /// ever in the guard; a stop request translated away is guarded unless something delivers
    /// it; and KILL, STOP and CHLD are never guarded.
    #[test]
    fn plan_guard_never_holds_a_delivered_signal(argv in plan_argv(), upstart in any::<bool>()) {
        let words = std::iter::once(OsString::from("sigshim")).chain(argv.iter().map(OsString::from));
        let Parsed::Run(cfg) = cli::parse(words) else {
            return Ok(());
        };
        let default = upstart.then_some(std::time::Duration::from_secs(4));
        let plan = Plan::new(&cfg.signals, default).map_err(|e| TestCaseError::fail(format!("{argv:?}: {e}")))?;
        // What sigshim sends the app, worked out here from the parts, not from the plan's own
        // account of it.
        let mut delivered: Vec<Signal> = (1..=rtmax())
            .map(Signal)
            .filter(|s| interceptable(*s))
            .filter_map(|s| match plan.route(s).deliver {
                Deliver::Send(t) => Some(t),
                Deliver::Suspend => Some(Signal::TSTP),
                Deliver::Drop | Deliver::Restart => None,
            })
            .collect();
        delivered.extend(plan.schedule().steps().iter().map(|st| st.signal));
        delivered.extend([cfg.signals.pdeathsig, Signal::TSTP, Signal::CONT]);
        delivered.extend(plan.leftover());
        for g in plan.guard() {
            prop_assert!(!delivered.contains(g), "{argv:?}: {g} guarded and delivered");
            prop_assert!(![Signal::KILL, Signal::STOP, Signal::CHLD].contains(g), "{argv:?}: {g}");
            let r = plan.route(*g);
            prop_assert!(r.stop, "{argv:?}: {g} guarded but no stop request");
            prop_assert!(r.deliver != Deliver::Send(*g), "{argv:?}: {g} is delivered as itself");
        }
        if argv.iter().any(|a| a == "--no-guard") {
            prop_assert!(plan.guard().is_empty());
        } else {
            for s in (1..=rtmax()).map(Signal) {
                let r = plan.route(s);
                if r.stop && r.deliver != Deliver::Send(s) && !delivered.contains(&s) {
                    prop_assert!(plan.guard().contains(&s), "{argv:?}: {s} not guarded");
                }
            }
        }
        for s in plan.leftover() {
            prop_assert!(*s != Signal::KILL, "{argv:?}");
        }
    }
}
