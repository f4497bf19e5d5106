//! Encoders for syslog records sent as datagrams to `/dev/log`: the BSD format of RFC 3164, exactly
//! as glibc's `syslog(3)` writes it to that socket, and RFC 5424; plus facility and priority names.
//!
//! This module owns the bytes of one record: the per-stream parts (tag, PID, hostname) sanitized
//! and formatted once in [`SyslogHeader`], and per record the `<PRI>`, the timestamp (written digit
//! by digit, no formatting machinery, since a chatty child can produce a million lines a second)
//! and the escaped message. The clock is read by the caller ([`Stamp::now`] is the one function
//! here that makes system calls), so everything else is pure. Sockets, reconnection and the
//! choice between journald and syslog belong to the socket layer.
//!
//! The tag is sent as real senders send it (#13): glibc's `syslog(3)` and util-linux `logger`
//! write the whole ident, non-ASCII bytes included, and rsyslog keeps it, so an rsyslog filter
//! on the program's name matches the same records with sigshim in front as without. Only what
//! would break the record is changed (see [`SyslogHeader`]), and sigshim says so once.
//!
//! What a child cannot forge through its output:
//! - another program's identity: the tag is fixed per stream and stripped of the bytes receivers
//!   use to find its end (rsyslog's 3164 parser ends the TAG at a space or `:`, and cuts
//!   `programname` at `[`), so it always ends at our own `[PID]: `;
//!   them on receipt by default (`$EscapeControlCharactersOnReceive on`), and they are data.

use super::decimal;

/// Which record layout [`encode`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG` — BSD syslog, RFC 3164 §4.1, as glibc sends it.
    Rfc3164,
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG` — RFC 5424 §6.
    Rfc5424,
}

/// Facility names of syslog(3) and the RFC 5424 §6.2.1 table, in code order.
const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Severity names of syslog(3) (`LOG_EMERG`..`LOG_DEBUG`, RFC 5424 §6.2.1), with the deprecated
/// aliases `error` and `warn` from `<syslog.h>`'s `prioritynames` table (as logger(1) accepts).
const SEVERITIES: [(&str, u8); 10] = [
    ("emerg", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("error", 3),
    ("warning", 4),
    ("warn", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];

/// Parses a facility name (`kern user mail daemon auth syslog lpr news uucp cron authpriv ftp
/// local0`..`local7`, case-insensitive) into its code 0..=23. `None` for anything else.
pub fn parse_facility(s: &str) -> Option<u8> {
    lookup(&FACILITIES, s)
}

/// The name of facility `code` (what `--facility` accepts).
pub fn facility_name(code: u8) -> Option<&'static str> {
    FACILITIES
        .iter()
        .find(|&&(_, c)| c == code)
        .map(|&(n, _)| n)
}

/// Parses a priority (severity) name (`emerg alert crit err|error warning|warn notice info debug`,
/// case-insensitive) or a single digit 0..=7. `None` for anything else.
pub fn parse_priority(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [d @ b'0'..=b'7'] => Some(d - b'0'),
        _ => lookup(&SEVERITIES, s),
    }
}

fn lookup(table: &[(&str, u8)], s: &str) -> Option<u8> {
    table
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|&(_, code)| code)
}

/// The longest RFC 3164 tag sent whole. RFC 3164 §4.1.3 asks for at most 32 alphanumeric
/// characters, but no sender keeps to that: glibc's `syslog(3)` and util-linux `logger` send the
/// whole ident. rsyslog keeps up to 511 bytes of `TAG[PID]:` (CONF_TAG_MAXSIZE; checked against
/// rsyslogd 8.2302) and moves the rest into the message, so 480 bytes plus the longest
/// `[PID]:` always arrive whole.
const TAG_MAX_3164: usize = 480;
/// RFC 5424 §6.2.5: `APP-NAME = NILVALUE / 1*48PRINTUSASCII`; util-linux `logger --rfc5424`
/// refuses a longer tag.
const APP_NAME_MAX: usize = 48;
/// RFC 5424 §6.2.4: `HOSTNAME = NILVALUE / 1*255PRINTUSASCII`.
const HOSTNAME_MAX: usize = 255;
/// The 3164 tag used when none is given: 3164 has no NILVALUE, and an empty tag would make the
/// receiver take `[PID]:` or the message for the tag.
const DEFAULT_TAG_3164: &[u8] = b"sigshim";

/// The per-stream parts of every record, formatted once: everything except `<PRI>`, the timestamp
/// and the message.
///
/// The tag (RFC 3164 TAG, RFC 5424 APP-NAME), in both formats:
/// - kept byte for byte, bytes >= 0x80 (UTF-8 names) included, as glibc and `logger` send them;
///   rsyslog keeps them in `syslogtag` (its `programname` stops at the first of them);
/// - a space, a control character (below 0x21, and 0x7f), `:`, `[` and `]` become `_`: a space
///   or `:` would end the TAG early and push the rest into the message, a newline would start a
///   line of its own in a log file, and `[`/`]` could carry a fake `[PID]`;
/// - cut to 480 bytes for RFC 3164 (what rsyslog keeps whole, see [`TAG_MAX_3164`]) and 48 for
///   RFC 5424 (§6.2.5), never inside a UTF-8 sequence;
/// - empty becomes `sigshim` (3164 has no NILVALUE) or `-` (5424's NILVALUE).
///
/// A changed tag is reported once per process, as a warning naming both forms.
///
/// The RFC 5424 HOSTNAME: each byte outside printable US-ASCII (PRINTUSASCII, 0x21..=0x7e)
/// becomes `_` (`:` is kept so an IPv6 address, which §6.2.4 allows, stays intact), capped at
/// 255 bytes; empty becomes `-`. RFC 3164 records carry no hostname, like glibc's: the receiver
/// adds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogHeader {
    format: Format,
    facility: u8,
    /// 3164: `TAG[PID]: `. 5424: ` HOSTNAME APP-NAME PROCID - -` (MSGID and STRUCTURED-DATA are
    /// NILVALUE; the space before MSG is added only when there is a message, RFC 5424 §6).
    suffix: Vec<u8>,
}

impl SyslogHeader {
    /// Formats the stream's constant parts. `facility` is a code from [`parse_facility`]; anything
    /// above 23 is clamped to 23 (`local7`) so the PRI stays within RFC 5424's 0..=191.
    pub fn new(format: Format, facility: u8, tag: &[u8], pid: u32, hostname: &[u8]) -> Self {
        let mut suffix = Vec::with_capacity(64 + tag.len().min(APP_NAME_MAX));
        let mut digits = [0u8; 10];
        let pid = decimal(pid, &mut digits);
        let sent_tag = match format {
            Format::Rfc3164 => sanitized_tag(tag, TAG_MAX_3164, DEFAULT_TAG_3164),
            Format::Rfc5424 => sanitized_tag(tag, APP_NAME_MAX, b"-"),
        };
        if !tag.is_empty() && sent_tag != tag {
            warn_tag_changed(format, tag, &sent_tag);
        }
        match format {
            Format::Rfc3164 => {
                suffix.extend_from_slice(&sent_tag);
                suffix.push(b'[');
                suffix.extend_from_slice(pid);
                suffix.extend_from_slice(b"]: ");
            }
            Format::Rfc5424 => {
                suffix.push(b' ');
                push_sanitized_host(&mut suffix, hostname);
                suffix.push(b' ');
                suffix.extend_from_slice(&sent_tag);
                suffix.push(b' ');
                suffix.extend_from_slice(pid);
                suffix.extend_from_slice(b" - -");
            }
        }
        Self {
            format,
            facility: facility.min(23),
            suffix,
        }
    }
}

/// The tag as sent: see [`SyslogHeader`].
fn sanitized_tag(tag: &[u8], max: usize, empty: &[u8]) -> Vec<u8> {
    if tag.is_empty() {
        return empty.to_vec();
    }
    let mut end = tag.len().min(max);
    // Never cut inside a UTF-8 sequence: back up over continuation bytes (10xxxxxx) to the
    // start of the character that does not fit.
    // A UTF-8 character has at most 3 of them; other bytes are not UTF-8 and are cut anywhere.
    if end < tag.len() {
        let floor = end.saturating_sub(3);
        while end > floor && tag[end] & 0xc0 == 0x80 {
            end -= 1;
        }
    }
    tag[..end]
        .iter()
        .map(|&b| match b {
            0..=0x20 | 0x7f | b':' | b'[' | b']' => b'_',
            _ => b,
        })
        .collect()
}

/// Appends the RFC 5424 HOSTNAME: bytes outside 0x21..=0x7e replaced by `_`, at most 255
/// bytes, `-` when empty.
fn push_sanitized_host(out: &mut Vec<u8>, host: &[u8]) {
    if host.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(
        host.iter()
            .take(HOSTNAME_MAX)
            .map(|&b| if (0x21..=0x7e).contains(&b) { b } else { b'_' }),
    );
}

/// Says once per process that the tag went out changed, and why: an operator whose rsyslog
/// filter names the program must know it will not match (#13). The one side effect of this
/// module besides [`Stamp::now`]: a tracing event, which reaches stderr or the log only once
/// `diag` is set up, and nothing at all in unit tests.
fn warn_tag_changed(format: Format, tag: &[u8], sent: &[u8]) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let (limit, name) = match format {
        Format::Rfc3164 => (TAG_MAX_3164, "rsyslog keeps 480 bytes of a tag whole"),
        Format::Rfc5424 => (APP_NAME_MAX, "RFC 5424's APP-NAME holds 48 bytes"),
    };
    let why = if tag.len() > limit {
        name
    } else {
        "a space, control character, ':', '[' or ']' would end the tag early or forge a [PID]"
    };
    // A tag of hundreds of bytes is named by its start.
    let shown = |t: &[u8]| {
        let t = String::from_utf8_lossy(t);
        match t.char_indices().nth(60) {
            Some((i, _)) => format!("{}...", &t[..i]),
            None => t.into_owned(),
        }
    };
    tracing::warn!(
        "syslog tag '{}' is sent as '{}': {why}; choose another with --tag",
        shown(tag),
        shown(sent)
    );
}

/// Wall-clock time as the caller read it, so encoders stay pure and testable: broken-down LOCAL
/// time, microseconds, and the local offset from UTC in seconds (east positive, as `tm_gmtoff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub year: i32,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    pub hour: u8,
    pub min: u8,
    /// 0..=60 (60 only during a leap second, as `struct tm` allows)
    pub sec: u8,
    /// 0..=999_999
    pub micros: u32,
    pub utc_offset_secs: i32,
}

impl Stamp {
    /// The current local time: `clock_gettime(CLOCK_REALTIME)` for seconds and microseconds, then
    /// `localtime_r(3)` for the broken-down time and `tm_gmtoff` (a glibc/musl extension present
    /// on every Linux libc) for the offset. Costs a libc time-zone lookup; a caller formatting many
    /// records per wake-up can call it once and reuse the value.
    pub fn now() -> Stamp {
        // SAFETY: timespec is a plain C struct of integers (and padding on some targets), for which
        // all-zero bytes are a valid value.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
        // CLOCK_REALTIME is always supported, so the call only writes `ts`.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
            return Stamp::from_unix_utc(0, 0);
        }
        let micros = u32::try_from(ts.tv_nsec / 1000).unwrap_or(0).min(999_999);
        // SAFETY: `struct tm` holds integers and `tm_zone`, a raw pointer for which null is valid;
        // all-zero bytes are therefore a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; localtime_r (unlike localtime) writes only
        // to `tm` and is thread-safe. It returns null only if the year overflows `int`.
        let converted = unsafe { libc::localtime_r(&ts.tv_sec, &mut tm) };
        if converted.is_null() {
            // `as`: time_t is i64 on the targets we ship, i32 on some older 32-bit ones.
            return Stamp::from_unix_utc(ts.tv_sec as i64, micros);
        }
        let small = |v: libc::c_int| u8::try_from(v).unwrap_or(0);
        Stamp {
            year: tm.tm_year.saturating_add(1900),
            month: small(tm.tm_mon + 1),
            day: small(tm.tm_mday),
            hour: small(tm.tm_hour),
            min: small(tm.tm_min),
            sec: small(tm.tm_sec),
            micros,
            utc_offset_secs: i32::try_from(tm.tm_gmtoff).unwrap_or(0),
        }
    }

    /// UTC broken-down time for a Unix time, used when `localtime_r` cannot convert (and by
    /// tests). Days to civil date: Howard Hinnant's `civil_from_days` ("chrono-Compatible
    /// Low-Level Date Algorithms"), exact for the proleptic Gregorian calendar.
    fn from_unix_utc(secs: i64, micros: u32) -> Stamp {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Stamp {
            year: i32::try_from(year).unwrap_or(i32::MAX),
            // The ranges are guaranteed by the algorithm (month 1..=12, day 1..=31) and rem_euclid.
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            min: (rem % 3600 / 60) as u8,
            sec: (rem % 60) as u8,
            micros,
            utc_offset_secs: 0,
        }
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Appends one record (one datagram's payload) to `out`, which is not cleared, so one buffer can
/// serve every record without an allocation per line.
///
/// - RFC 3164: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG` — glibc `syslog(3)`'s "%h %e %T " in the C
///   locale (day space-padded: `Nov  2`), no hostname, local time.
/// - RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`, TIMESTAMP like
///   `2026-11-22T00:40:40.123456+00:00` (§6.2.3: local time with its offset, 6 fraction digits),
///   no BOM, so MSG is MSG-ANY (§6.4); with an empty message the record ends after SD.
///
/// PRI = facility × 8 + severity (RFC 5424 §6.2.1); a severity above 7 is sent as 7 (`debug`).
/// NUL and `\n` in `message` are written as `#000` and `#012` (see the module documentation).
pub fn encode(
    out: &mut Vec<u8>,
    header: &SyslogHeader,
    severity: u8,
    stamp: &Stamp,
    message: &[u8],
) -> std::ops::Range<usize> {
    // "<191>1 " + 32-byte timestamp + " " + the escaped message, in the common case of no escapes.
    out.reserve(40 + header.suffix.len() + 1 + message.len());
    let pri = u32::from(header.facility) * 8 + u32::from(severity.min(7));
    out.push(b'<');
    let mut digits = [0u8; 10];
    out.extend_from_slice(decimal(pri, &mut digits));
    out.push(b'>');
    match header.format {
        Format::Rfc3164 => {
            push_3164_time(out, stamp);
            out.push(b' ');
            out.extend_from_slice(&header.suffix);
            let start = out.len();
            push_escaped(out, message);
            start..out.len()
        }
        Format::Rfc5424 => {
            out.extend_from_slice(b"1 ");
            push_5424_time(out, stamp);
            out.extend_from_slice(&header.suffix);
            if !message.is_empty() {
                out.push(b' ');
            }
            let start = out.len();
            push_escaped(out, message);
            start..out.len()
        }
    }
}

/// `Mmm dd hh:mm:ss` (RFC 3164 §4.1.2), day padded with a space as strftime's `%e`.
fn push_3164_time(out: &mut Vec<u8>, t: &Stamp) {
    out.extend_from_slice(MONTHS[usize::from(t.month.clamp(1, 12) - 1)]);
    out.push(b' ');
    if t.day < 10 {
        out.push(b' ');
        out.push(b'0' + t.day);
    } else {
        push2(out, t.day);
    }
    out.push(b' ');
    push_clock(out, t);
}

/// `YYYY-MM-DDThh:mm:ss.ffffff±hh:mm` (RFC 5424 §6.2.3, RFC 3339). Values outside the RFC's digit
/// counts (a year past 9999, say) are clamped rather than allowed to widen a field.
fn push_5424_time(out: &mut Vec<u8>, t: &Stamp) {
    let year = t.year.clamp(0, 9999) as u16;
    push2(out, (year / 100) as u8);
    push2(out, (year % 100) as u8);
    out.push(b'-');
    push2(out, t.month);
    out.push(b'-');
    push2(out, t.day);
    out.push(b'T');
    push_clock(out, t);
    out.push(b'.');
    let micros = t.micros.min(999_999);
    push2(out, (micros / 10_000) as u8);
    push2(out, (micros / 100 % 100) as u8);
    push2(out, (micros % 100) as u8);
    // RFC 3339 allows "Z" for UTC; "+00:00" is equally valid and keeps one code path.
    out.push(if t.utc_offset_secs < 0 { b'-' } else { b'+' });
    // Sub-minute offsets (historical LMT zones) are truncated: TIME-NUMOFFSET has no seconds.
    let off = t.utc_offset_secs.unsigned_abs();
    push2(out, (off / 3600).min(99) as u8);
    out.push(b':');
    push2(out, (off % 3600 / 60) as u8);
}

/// `hh:mm:ss`.
fn push_clock(out: &mut Vec<u8>, t: &Stamp) {
    push2(out, t.hour);
    out.push(b':');
    push2(out, t.min);
    out.push(b':');
    push2(out, t.sec);
}

/// Two decimal digits of `v % 100`.
fn push2(out: &mut Vec<u8>, v: u8) {
    let v = v % 100;
    out.push(b'0' + v / 10);
    out.push(b'0' + v % 10);
}

/// Appends `message` with NUL as `#000` and `\n` as `#012` (octal, rsyslog's escape style).
fn push_escaped(out: &mut Vec<u8>, message: &[u8]) {
    let mut rest = message;
    while let Some(i) = rest.iter().position(|&b| b == 0 || b == b'\n') {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(if rest[i] == 0 { b"#000" } else { b"#012" });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        year: 2026,
        month: 11,
        day: 22,
        hour: 0,
        min: 40,
        sec: 40,
        micros: 123_456,
        utc_offset_secs: 0,
    };

    fn record(header: &SyslogHeader, severity: u8, stamp: &Stamp, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, header, severity, stamp, message);
        out
    }

    fn h3164(tag: &[u8]) -> SyslogHeader {
        SyslogHeader::new(Format::Rfc3164, 3, tag, 4242, b"host")
    }

    fn h5424(tag: &[u8], host: &[u8]) -> SyslogHeader {
        SyslogHeader::new(Format::Rfc5424, 3, tag, 4242, host)
    }

    #[test]
    fn rfc3164_exact_bytes() {
        assert_eq!(
            record(&h3164(b"graceful"), 6, &STAMP, b"hello world"),
            b"<30>Nov 22 00:40:40 graceful[4242]: hello world"
        );
        // Day space-padded like glibc's "%e"; err from local7 = 23*8+3.
        let stamp = Stamp {
            month: 1,
            day: 2,
            hour: 9,
            min: 5,
            sec: 7,
            ..STAMP
        };
        let h = SyslogHeader::new(Format::Rfc3164, 23, b"app", 1, b"");
        assert_eq!(
            record(&h, 3, &stamp, b"x"),
            b"<187>Jan  2 09:05:07 app[1]: x"
        );
        // kern.emerg: PRI 0.
        let h = SyslogHeader::new(Format::Rfc3164, 0, b"k", 7, b"");
        assert_eq!(record(&h, 0, &STAMP, b""), b"<0>Nov 22 00:40:40 k[7]: ");
    }

    #[test]
    fn rfc5424_exact_bytes() {
        assert_eq!(
            record(&h5424(b"graceful", b"web1"), 6, &STAMP, b"hello world"),
            b"<30>1 2026-11-22T00:40:40.123456+00:00 web1 graceful 4242 - - hello world"
        );
        let stamp = Stamp {
            year: 999,
            month: 3,
            day: 4,
            micros: 7,
            utc_offset_secs: -(5 * 3600 + 30 * 60),
            ..STAMP
        };
        assert_eq!(
            record(&h5424(b"", b""), 7, &stamp, b"m"),
            b"<31>1 0999-03-04T00:40:40.000007-05:30 - - 4242 - - m"
        );
        let east = Stamp {
            utc_offset_secs: 13 * 3600 + 45 * 60,
            ..STAMP
        };
        assert!(
            record(&h5424(b"a", b"h"), 6, &east, b"m")
                .starts_with(b"<30>1 2026-11-22T00:40:40.123456+13:45 ")
        );
        // Half an hour west: the sign must not be lost with zero hours.
        let west = Stamp {
            utc_offset_secs: -1800,
            ..STAMP
        };
        assert!(
            record(&h5424(b"a", b"h"), 6, &west, b"m")
                .starts_with(b"<30>1 2026-11-22T00:40:40.123456-00:30 ")
        );
    }

    #[test]
    fn rfc5424_empty_message_ends_after_structured_data() {
        assert_eq!(
            record(&h5424(b"a", b"h"), 6, &STAMP, b""),
            b"<30>1 2026-11-22T00:40:40.123456+00:00 h a 4242 - -"
        );
    }

    #[test]
    fn tag_cannot_forge_another_program() {
        let out = record(&h3164(b"evil[1]: x"), 6, &STAMP, b"msg");
        assert_eq!(out, b"<30>Nov 22 00:40:40 evil_1___x[4242]: msg");
        assert_eq!(count(&out, b"]: "), 1);
        assert_eq!(count(&out, b"["), 1);
        // Control bytes and spaces in the tag; non-ASCII is kept, as glibc and logger send it.
        let out = record(&h3164("a b\n\0\té\x7f".as_bytes()), 6, &STAMP, b"m");
        assert_eq!(out, "<30>Nov 22 00:40:40 a_b___é_[4242]: m".as_bytes());
        // 5424: no space can shift the fields.
        let out = record(&h5424(b"my app: [x]", b"bad host\n"), 6, &STAMP, b"m");
        assert_eq!(
            out,
            b"<30>1 2026-11-22T00:40:40.123456+00:00 bad_host_ my_app___x_ 4242 - - m"
        );
        let out = record(
            &h5424("café".as_bytes(), "hôst".as_bytes()),
            6,
            &STAMP,
            b"m",
        );
        assert_eq!(
            out,
            "<30>1 2026-11-22T00:40:40.123456+00:00 h__st café 4242 - - m".as_bytes()
        );
    }

    #[test]
    fn tag_and_hostname_caps() {
        // A long tag goes out whole, as glibc and logger send it (RFC 3164's 32 is no sender's).
        let name = b"a-very-long-program-name-for-the-payments-reconciler-v2";
        let out = record(&h3164(name), 6, &STAMP, b"m");
        let want = [&b"<30>Nov 22 00:40:40 "[..], name, b"[4242]: m"].concat();
        assert_eq!(out, want);
        let long = [b'a'; 600];
        let out = record(&h3164(&long), 6, &STAMP, b"m");
        let want = [&b"<30>Nov 22 00:40:40 "[..], &[b'a'; 480], b"[4242]: m"].concat();
        assert_eq!(out, want);
        let long = [b'a'; 300];
        let out = record(&h5424(&long, &long), 6, &STAMP, b"m");
        let want = [
            &b"<30>1 2026-11-22T00:40:40.123456+00:00 "[..],
            &[b'a'; 255],
            b" ",
            &[b'a'; 48],
            b" 4242 - - m",
        ]
        .concat();
        assert_eq!(out, want);
    }

    #[test]
    fn tag_is_never_cut_inside_a_character() {
        // 47 ASCII bytes and a 2-byte é: the é does not fit in 48 and goes whole.
        let tag = format!("{}é", "a".repeat(47));
        let out = record(&h5424(tag.as_bytes(), b"h"), 6, &STAMP, b"m");
        let want = format!(
            "<30>1 2026-11-22T00:40:40.123456+00:00 h {} 4242 - - m",
            "a".repeat(47)
        );
        assert_eq!(out, want.as_bytes());
        // A 4-byte character straddling byte 480.
        let tag = format!("{}😀z", "a".repeat(478));
        let out = record(&h3164(tag.as_bytes()), 6, &STAMP, b"m");
        let want = format!("<30>Nov 22 00:40:40 {}[4242]: m", "a".repeat(478));
        assert_eq!(out, want.as_bytes());
        // Bytes that are not UTF-8 are cut at the limit, at most 3 continuation bytes earlier.
        let tag = [0x80u8; 60];
        let out = record(&h5424(&tag, b"h"), 6, &STAMP, b"m");
        let want = [
            &b"<30>1 2026-11-22T00:40:40.123456+00:00 h "[..],
            &[0x80; 45],
            b" 4242 - - m",
        ]
        .concat();
        assert_eq!(out, want);
    }

    #[test]
    fn empty_tag_defaults() {
        assert_eq!(
            record(&h3164(b""), 6, &STAMP, b"m"),
            b"<30>Nov 22 00:40:40 sigshim[4242]: m"
        );
        assert_eq!(
            record(&h5424(b"", b"h"), 6, &STAMP, b"m"),
            b"<30>1 2026-11-22T00:40:40.123456+00:00 h - 4242 - - m"
        );
    }

    #[test]
    fn hostname_keeps_ipv6_colons() {
        let out = record(&h5424(b"a", b"fe80::1"), 6, &STAMP, b"m");
        assert_eq!(
            out,
            b"<30>1 2026-11-22T00:40:40.123456+00:00 fe80::1 a 4242 - - m"
        );
    }

    #[test]
    fn message_newline_and_nul_are_escaped() {
        for h in [h3164(b"app"), h5424(b"app", b"h")] {
            let out = record(&h, 6, &STAMP, b"one\ntwo\0three\n");
            assert!(!out.contains(&b'\n'));
            assert!(!out.contains(&0));
            assert!(out.ends_with(b"one#012two#000three#012"));
            // Nothing after the escaped newline looks like a new record's "<PRI>" at a line start.
            let out = record(&h, 6, &STAMP, b"x\n<0>Nov 22 00:40:40 root[1]: forged");
            assert_eq!(out.iter().filter(|&&b| b == b'<').count(), 2);
            assert!(!out.contains(&b'\n'));
        }
    }

    #[test]
    fn other_bytes_pass_unchanged() {
        let msg = b"cr\r tab\t esc\x1b bad\xff\xfe utf8 \xc3\xa9 #012 ]: [";
        let out = record(&h3164(b"app"), 6, &STAMP, msg);
        assert!(out.ends_with(msg));
    }

    #[test]
    fn severity_and_facility_clamped() {
        let out = record(&h3164(b"a"), 9, &STAMP, b"m");
        assert!(out.starts_with(b"<31>"));
        let h = SyslogHeader::new(Format::Rfc3164, 99, b"a", 1, b"");
        assert!(record(&h, 7, &STAMP, b"m").starts_with(b"<191>"));
    }

    #[test]
    fn appends_and_reuses_buffer() {
        let h = h3164(b"app");
        let mut out = Vec::with_capacity(256);
        let ptr = out.as_ptr();
        for i in 0..1000 {
            out.clear();
            encode(&mut out, &h, (i % 8) as u8, &STAMP, b"a typical log line");
        }
        assert_eq!(out.as_ptr(), ptr);
        let mut out = b"keep".to_vec();
        encode(&mut out, &h, 6, &STAMP, b"m");
        assert!(out.starts_with(b"keep<30>"));
    }

    #[test]
    fn facilities() {
        assert_eq!(parse_facility("kern"), Some(0));
        assert_eq!(parse_facility("user"), Some(1));
        assert_eq!(parse_facility("daemon"), Some(3));
        assert_eq!(parse_facility("DAEMON"), Some(3));
        assert_eq!(parse_facility("syslog"), Some(5));
        assert_eq!(parse_facility("cron"), Some(9));
        assert_eq!(parse_facility("authpriv"), Some(10));
        assert_eq!(parse_facility("ftp"), Some(11));
        assert_eq!(parse_facility("local0"), Some(16));
        assert_eq!(parse_facility("Local7"), Some(23));
        for bad in ["", "local8", "daemon ", "3", "log_daemon", "security", "x"] {
            assert_eq!(parse_facility(bad), None, "{bad:?}");
        }
        // Every code in the table is distinct and in range.
        let mut codes: Vec<u8> = FACILITIES.iter().map(|&(_, c)| c).collect();
        codes.dedup();
        assert_eq!(codes.len(), FACILITIES.len());
        assert!(codes.iter().all(|&c| c <= 23));
    }

    #[test]
    fn priorities() {
        let want = [
            ("emerg", 0),
            ("alert", 1),
            ("crit", 2),
            ("err", 3),
            ("error", 3),
            ("warning", 4),
            ("warn", 4),
            ("notice", 5),
            ("info", 6),
            ("debug", 7),
            ("INFO", 6),
            ("Err", 3),
        ];
        for (name, code) in want {
            assert_eq!(parse_priority(name), Some(code), "{name}");
        }
        for d in 0..=7u8 {
            assert_eq!(parse_priority(&d.to_string()), Some(d));
        }
        for bad in [
            "",
            "8",
            "07",
            "-1",
            "10",
            "panic",
            "information",
            " info",
            "<3>",
        ] {
            assert_eq!(parse_priority(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unix_to_utc_civil() {
        let s = Stamp::from_unix_utc(0, 0);
        assert_eq!(
            (s.year, s.month, s.day, s.hour, s.min, s.sec),
            (1970, 1, 1, 0, 0, 0)
        );
        // 2026-11-22T00:40:40Z
        assert_eq!(Stamp::from_unix_utc(1_795_308_040, 123_456), STAMP);
        // Leap day and end of a leap year.
        let s = Stamp::from_unix_utc(951_782_400, 0); // 2000-02-29T00:00:00Z
        assert_eq!((s.year, s.month, s.day), (2000, 2, 29));
        let s = Stamp::from_unix_utc(1_735_689_599, 0); // 2024-12-31T23:59:59Z
        assert_eq!(
            (s.year, s.month, s.day, s.hour, s.min, s.sec),
            (2024, 12, 31, 23, 59, 59)
        );
        let s = Stamp::from_unix_utc(-1, 0); // 1969-12-31T23:59:59Z
        assert_eq!((s.year, s.month, s.day, s.sec), (1969, 12, 31, 59));
    }

    #[test]
    fn now_is_plausible() {
        let s = Stamp::now();
        assert!(s.year >= 2024);
        assert!((1..=12).contains(&s.month));
        assert!((1..=31).contains(&s.day));
        assert!(s.hour < 24 && s.min < 60 && s.sec <= 60);
        assert!(s.micros < 1_000_000);
        assert!(s.utc_offset_secs.abs() <= 15 * 3600);
        // Formatting a real clock value keeps the fixed widths.
        let out = record(&h5424(b"a", b"h"), 6, &s, b"m");
        assert_eq!(
            out.len(),
            b"<30>1 2026-11-22T00:40:40.123456+00:00 h a 4242 - - m".len()
        );
    }

    fn count(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).filter(|w| *w == needle).count()
    }

    #[test]
    fn message_range_points_at_the_escaped_message() {
        for format in [Format::Rfc3164, Format::Rfc5424] {
            let h = SyslogHeader::new(format, 3, b"app", 42, b"host");
            for (msg, want) in [
                (&b"plain"[..], &b"plain"[..]),
                (b"nul\0here", b"nul#000here"),
                (b"", b""),
            ] {
                let mut out = b"previous".to_vec();
                let r = encode(&mut out, &h, 6, &STAMP, msg);
                assert_eq!(&out[r.clone()], want);
                assert_eq!(r.end, out.len());
            }
        }
    }
}
