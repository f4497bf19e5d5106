//! Encoder for systemd-journald's native protocol: one journal entry per datagram, built from
//! `NAME=value` fields (systemd `docs/JOURNAL_NATIVE_PROTOCOL.md`).
//!
//! This module owns the byte layout of an entry: the per-stream header (`SYSLOG_IDENTIFIER`,
//! `SYSLOG_PID`, `SYSLOG_FACILITY`) encoded once, then `PRIORITY` and `MESSAGE` per record, plus a
//! decoder for tests. It does no I/O: sending the datagram, and falling back to a sealed memfd when
//! the kernel answers `EMSGSIZE` (same document, "Basics"), belong to the socket layer.
//!
//! Safety against forged entries: journald splits a datagram at `\n` — a line holds one field, an
//! empty line separates entries, and lines starting with `.` or `#` are skipped
//! (`journald-native.c`, `server_process_native_message`). So any value containing `\n` uses the
//! length-prefixed binary form, and then no byte of the value is ever read as structure. Every
//! other byte (NUL, `\r`, `=`, invalid UTF-8) is carried verbatim by the readable `NAME=value`
//! form, which the protocol document recommends whenever allowed: journald takes the key up to the
//! first `=` (our names never contain one) and the value up to the `\n`.

use super::decimal;

/// The fields that do not change for a stream, encoded once: `SYSLOG_IDENTIFIER`, `SYSLOG_PID`
/// (the child's PID) and `SYSLOG_FACILITY` (the facility's decimal number, e.g. 3 for `daemon`),
/// with the same binary-safe field encoding as the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalHeader {
    bytes: Vec<u8>,
}

impl JournalHeader {
    /// Encodes the stream's constant fields. The identifier is taken as given (journald accepts
    /// any bytes; a `\n` in it is carried by the binary form, so it cannot add fields).
    pub fn new(identifier: &[u8], pid: u32, facility: u8) -> Self {
        let mut bytes = Vec::with_capacity(identifier.len() + 64);
        encode_field(&mut bytes, "SYSLOG_IDENTIFIER", identifier);
        let mut digits = [0u8; 10];
        encode_field(&mut bytes, "SYSLOG_PID", decimal(pid, &mut digits));
        encode_field(
            &mut bytes,
            "SYSLOG_FACILITY",
            decimal(u32::from(facility), &mut digits),
        );
        Self { bytes }
    }

    /// The encoded fields, ready to be copied at the start of every entry.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Appends one complete entry to `out`: the header's fields, then `PRIORITY=<0..7>\n`, then
/// `MESSAGE` (binary form when the message contains `\n`). `out` is not cleared, so the caller can
/// reuse one buffer for every record and avoid an allocation per line. A priority above 7 (which
/// the syslog priorities cannot express) is sent as 7, `debug`, rather than an invalid field.
///
/// Returns where the message's own bytes lie in `out` (what a fallback prints instead).
pub fn encode_entry(
    out: &mut Vec<u8>,
    header: &JournalHeader,
    priority: u8,
    message: &[u8],
) -> std::ops::Range<usize> {
    encode_marked(out, header, priority, None, message)
}

/// How a record relates to the app's line, for a reader that puts split lines back together:
/// journald's own stdout path marks a cut with the trusted field `_LINE_BREAK=`, which a
/// client may not send, so sigshim uses its own names. Every record of a split line carries
/// `SIGSHIM_STREAM=stdout|stderr`; every one but the last carries `SIGSHIM_LINE_BREAK=`:
/// `line-max` (the line goes on in the next record of the same stream, joined as is) or `nul`
/// (the line held a NUL byte there: joined with one). A whole line carries neither, except
/// `SIGSHIM_LINE_BREAK=eof` on a last line the app ended without a newline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub stream: &'static [u8],
    pub split: bool,
    pub line_break: Option<&'static [u8]>,
}

/// [`encode_entry`] with a [`Mark`]: its fields go between `PRIORITY` and `MESSAGE`.
pub fn encode_marked(
    out: &mut Vec<u8>,
    header: &JournalHeader,
    priority: u8,
    mark: Option<Mark>,
    message: &[u8],
) -> std::ops::Range<usize> {
    // One reservation for the whole entry: header + "PRIORITY=N\n" + marks + "MESSAGE\n" +
    // u64 + message + "\n" at most.
    out.reserve(header.bytes.len() + 11 + 64 + 8 + 8 + message.len() + 1);
    out.extend_from_slice(&header.bytes);
    out.extend_from_slice(b"PRIORITY=");
    out.push(b'0' + priority.min(7));
    out.push(b'\n');
    if let Some(m) = mark {
        if m.split {
            encode_field(out, "SIGSHIM_STREAM", m.stream);
        }
        if let Some(b) = m.line_break {
            encode_field(out, "SIGSHIM_LINE_BREAK", b);
        }
    }
    encode_field(out, "MESSAGE", message);
    // Both forms end with the value itself and one '\n'.
    let end = out.len() - 1;
    end - message.len()..end
}

/// Appends one field to `out`: `NAME=value\n` when `value` has no `\n`, otherwise the binary form
/// `NAME\n` + value length as a little-endian u64 + value + `\n` (JOURNAL_NATIVE_PROTOCOL.md,
/// "Data Format"). `name` must be a valid journal field name (`A-Z`, `0-9`, `_`, at most 64
/// bytes, not starting with a digit or `_`): journald silently drops fields with invalid names.
pub fn encode_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    debug_assert!(
        is_valid_field_name(name.as_bytes()),
        "bad field name {name:?}"
    );
    out.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Parses a datagram into its `(name, value)` pairs, in order (a name may repeat). Returns `None`
/// for anything the encoder above never produces: trailing bytes without `\n`, an empty line
/// (journald's entry separator), an invalid field name, a binary value whose length runs past the
/// end or is not followed by `\n`.
pub fn decode(datagram: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut fields = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let line = &rest[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let name = field_name(&line[..eq])?;
            fields.push((name, line[eq + 1..].to_vec()));
            rest = &rest[nl + 1..];
        } else {
            let name = field_name(line)?;
            let after = &rest[nl + 1..];
            let len_bytes: [u8; 8] = after.get(..8)?.try_into().ok()?;
            let len = usize::try_from(u64::from_le_bytes(len_bytes)).ok()?;
            let end = 8usize.checked_add(len)?;
            let value = after.get(8..end)?;
            if after.get(end) != Some(&b'\n') {
                return None;
            }
            fields.push((name, value.to_vec()));
            rest = &after[end + 1..];
        }
    }
    Some(fields)
}

fn field_name(bytes: &[u8]) -> Option<String> {
    is_valid_field_name(bytes).then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// A field name a client may send: 1..=64 bytes of `A-Z`, `0-9`, `_`, not starting with a digit
/// (systemd `journal_field_valid()`), and not starting with `_` either, since those are trusted
/// fields journald adds itself and ignores from clients (JOURNAL_NATIVE_PROTOCOL.md).
fn is_valid_field_name(name: &[u8]) -> bool {
    match name.first() {
        None | Some(b'0'..=b'9' | b'_') => false,
        Some(_) => {
            name.len() <= 64
                && name
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
        fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    fn entry(message: &[u8]) -> Vec<u8> {
        let h = JournalHeader::new(b"graceful", 4242, 3);
        let mut out = Vec::new();
        encode_entry(&mut out, &h, 6, message);
        out
    }

    #[test]
    fn exact_bytes_simple() {
        assert_eq!(
            entry(b"hello"),
            b"SYSLOG_IDENTIFIER=graceful\nSYSLOG_PID=4242\nSYSLOG_FACILITY=3\n\
              PRIORITY=6\nMESSAGE=hello\n"
        );
    }

    #[test]
    fn marks_sit_between_priority_and_message() {
        let h = JournalHeader::new(b"app", 7, 3);
        let mut out = Vec::new();
        let mark = Mark {
            stream: b"stderr",
            split: true,
            line_break: Some(b"line-max"),
        };
        encode_marked(&mut out, &h, 3, Some(mark), b"part");
        assert_eq!(
            out,
            b"SYSLOG_IDENTIFIER=app\nSYSLOG_PID=7\nSYSLOG_FACILITY=3\nPRIORITY=3\n\
              SIGSHIM_STREAM=stderr\nSIGSHIM_LINE_BREAK=line-max\nMESSAGE=part\n"
        );
        out.clear();
        let eof = Mark {
            stream: b"stdout",
            split: false,
            line_break: Some(b"eof"),
        };
        encode_marked(&mut out, &h, 6, Some(eof), b"last");
        let f = decode(&out).unwrap();
        assert_eq!(field(&f, "SIGSHIM_LINE_BREAK"), [b"eof"]);
        assert!(field(&f, "SIGSHIM_STREAM").is_empty());
    }

    #[test]
    fn exact_bytes_binary_form() {
        // The example from JOURNAL_NATIVE_PROTOCOL.md, with a newline so the binary form is used.
        let mut out = Vec::new();
        encode_field(&mut out, "FOO", b"B\nR");
        assert_eq!(out, b"FOO\n\x03\0\0\0\0\0\0\0B\nR\n");
        out.clear();
        encode_field(&mut out, "FOO", b"BAR");
        assert_eq!(out, b"FOO=BAR\n");
    }

    #[test]
    fn header_fields() {
        let h = JournalHeader::new(b"app", 0, 23);
        assert_eq!(
            h.as_bytes(),
            b"SYSLOG_IDENTIFIER=app\nSYSLOG_PID=0\nSYSLOG_FACILITY=23\n"
        );
        let h = JournalHeader::new(b"x", u32::MAX, 0);
        let f = decode(h.as_bytes()).unwrap();
        assert_eq!(field(&f, "SYSLOG_PID"), [b"4294967295"]);
    }

    #[test]
    fn identifier_with_newline_cannot_add_fields() {
        let h = JournalHeader::new(b"evil\nMESSAGE=forged\n\nPRIORITY=0", 1, 3);
        let mut out = Vec::new();
        encode_entry(&mut out, &h, 6, b"real");
        let f = decode(&out).unwrap();
        assert_eq!(f.len(), 5);
        assert_eq!(field(&f, "MESSAGE"), [b"real"]);
        assert_eq!(field(&f, "PRIORITY"), [b"6"]);
        assert_eq!(
            field(&f, "SYSLOG_IDENTIFIER"),
            [b"evil\nMESSAGE=forged\n\nPRIORITY=0"]
        );
    }

    #[test]
    fn round_trips() {
        let big: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
        let cases: Vec<Vec<u8>> = vec![
            b"line\nwith\nnewlines".to_vec(),
            b"\n".to_vec(),
            b"carriage\rreturn\r".to_vec(),
            b"nul\0byte\0".to_vec(),
            b"\xff\xfe invalid \xc3 utf-8".to_vec(),
            b"a=b==c=".to_vec(),
            b"=".to_vec(),
            b"".to_vec(),
            b"\n\nMESSAGE=forged\n".to_vec(),
            big,
        ];
        for msg in &cases {
            for priority in 0..=7 {
                let h = JournalHeader::new(b"id=\xff\0\r", 77, 16);
                let mut out = Vec::new();
                encode_entry(&mut out, &h, priority, msg);
                let f = decode(&out).unwrap_or_else(|| panic!("undecodable for {msg:?}"));
                let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(
                    names,
                    [
                        "SYSLOG_IDENTIFIER",
                        "SYSLOG_PID",
                        "SYSLOG_FACILITY",
                        "PRIORITY",
                        "MESSAGE"
                    ]
                );
                assert_eq!(field(&f, "MESSAGE"), [msg.as_slice()]);
                assert_eq!(field(&f, "PRIORITY"), [[b'0' + priority].as_slice()]);
                assert_eq!(field(&f, "SYSLOG_IDENTIFIER"), [b"id=\xff\0\r"]);
                assert_eq!(field(&f, "SYSLOG_FACILITY"), [b"16"]);
                // Outside binary values the datagram has no empty line (an entry separator).
                if !msg.contains(&b'\n') {
                    assert!(!out.windows(2).any(|w| w == b"\n\n"));
                }
            }
        }
    }

    #[test]
    fn simple_form_used_whenever_allowed() {
        // Readable for strace, as the protocol document recommends.
        let out = entry(b"nul\0 cr\r eq= \xff");
        assert!(out.ends_with(b"MESSAGE=nul\0 cr\r eq= \xff\n"));
        assert!(entry(b"").ends_with(b"\nMESSAGE=\n"));
    }

    #[test]
    fn appends_without_clearing() {
        let h = JournalHeader::new(b"a", 1, 3);
        let mut out = b"keep".to_vec();
        encode_entry(&mut out, &h, 3, b"m");
        assert!(out.starts_with(b"keep"));
        assert_eq!(decode(&out[4..]).unwrap().len(), 5);
    }

    #[test]
    fn reused_buffer_does_not_reallocate() {
        let h = JournalHeader::new(b"app", 1, 3);
        let mut out = Vec::with_capacity(4096);
        let ptr = out.as_ptr();
        for i in 0..1000 {
            out.clear();
            encode_entry(&mut out, &h, (i % 8) as u8, b"some log line\nsecond");
        }
        assert_eq!(out.as_ptr(), ptr);
    }

    #[test]
    fn out_of_range_priority_is_clamped() {
        let mut out = Vec::new();
        encode_entry(&mut out, &JournalHeader::new(b"a", 1, 3), 9, b"m");
        assert_eq!(field(&decode(&out).unwrap(), "PRIORITY"), [b"7"]);
    }

    #[test]
    fn decode_rejects_malformed() {
        for bad in [
            &b"MESSAGE=no newline"[..],
            b"\n",
            b"MESSAGE=a\n\nMESSAGE=b\n",
            b"lower=x\n",
            b"_TRUSTED=x\n",
            b"1ABC=x\n",
            b"=x\n",
            b"MESSAGE\n\x05\0\0\0\0\0\0\0abc\n",
            b"MESSAGE\n\x03\0\0\0\0\0\0\0abcX",
            b"MESSAGE\n\x03\0\0",
            b"MESSAGE\n\xff\xff\xff\xff\xff\xff\xff\xffabc\n",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        assert_eq!(decode(b""), Some(vec![]));
    }

    #[test]
    fn field_names() {
        assert!(is_valid_field_name(b"MESSAGE"));
        assert!(is_valid_field_name(b"A_1"));
        assert!(is_valid_field_name(&[b'A'; 64]));
        assert!(!is_valid_field_name(&[b'A'; 65]));
        assert!(!is_valid_field_name(b""));
        assert!(!is_valid_field_name(b"_PID"));
        assert!(!is_valid_field_name(b"9A"));
        assert!(!is_valid_field_name(b"MESSAGe"));
        assert!(!is_valid_field_name(b"A-B"));
    }

    #[test]
    fn decimal_digits() {
        let mut b = [0u8; 10];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(10, &mut b), b"10");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }

    #[test]
    fn message_range_points_at_the_value() {
        let h = JournalHeader::new(b"app", 42, 3);
        for msg in [&b"plain"[..], b"two\nlines", b"", b"\xff\r\0"] {
            let mut out = b"previous".to_vec();
            let r = encode_entry(&mut out, &h, 6, msg);
            assert_eq!(&out[r], msg);
        }
    }
}
