//! Line splitting of a child's captured stdout/stderr into log records, and the sd-daemon `<N>`
//! priority prefix.
//!
//! This module owns the byte-level framing only: it turns whatever `read(2)` returned from a pipe
//! into records (one per `\n`-terminated line, long lines cut into chunks of at most `max` bytes,
//! never dropped), and it parses a leading `<N>`. It does no I/O, chooses no priority defaults and
//! knows nothing about the destination; the encoders (`journald`, `syslog`) and the supervise loop
//! do that. Bytes are passed through untouched (invalid UTF-8, `\r`, NUL): making them safe for a
//! given transport is the encoder's job.

/// Splits a byte stream into records: one per `\n`-terminated line (the `\n` is not part of the
/// record).
///
/// A line longer than `max` bytes is emitted as consecutive chunks of at most `max` bytes (never
/// truncated); each chunk is emitted as soon as `max` bytes of the line are known, so a slow
/// writer's long line is not held back. (A line of exactly `max` bytes is therefore one record,
/// and its `\n`, arriving after the chunk went out, adds no empty record.) A chunk boundary does not split a UTF-8 multi-byte
/// sequence when the bytes at the cut look like valid UTF-8: the cut backs off (at most 3 bytes)
/// to the start of the incomplete character, unless that would leave the chunk empty (only
/// possible when `max < 4`). A `\r` before `\n` is kept: it is data, and DESIGN.md promises lines
/// arrive intact. Empty lines are emitted as empty records; the caller decides what to do with
/// them.
///
/// Memory: one buffer of exactly `max` bytes, allocated in [`LineSplitter::new`] and never grown.
/// Complete lines found inside one `feed` slice are emitted straight from that slice (no copy);
/// only a partial line that straddles two reads is copied into the buffer.
#[derive(Debug)]
pub struct LineSplitter {
    /// The partial line carried over between `feed` calls; `len() < max` between calls.
    buf: Vec<u8>,
    max: usize,
    /// True when at least one chunk of the current line has been emitted and nothing of it is
    /// buffered: a `\n` arriving now ends a line that was cut exactly at a chunk boundary, so it
    /// must not produce an extra empty record.
    cut_at_boundary: bool,
}

impl LineSplitter {
    /// A splitter emitting records of at most `max` bytes. `max` must be at least 1 (a `max` of 0
    /// is treated as 1 rather than looping forever).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            buf: Vec::with_capacity(max),
            max,
            cut_at_boundary: false,
        }
    }

    /// The largest record this splitter emits, in bytes.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Bytes currently buffered (the start of a line whose `\n` has not arrived yet).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes read from the pipe; calls `emit` for each complete record, in order.
    pub fn feed(&mut self, data: &[u8], emit: &mut dyn FnMut(&[u8])) {
        self.feed_marked(data, &mut |r, end| {
            if end != End::Terminator {
                emit(r)
            }
        });
    }

    /// At EOF: emits the pending partial line (if non-empty) and resets, so the splitter can be
    /// reused for another stream.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        self.finish_marked(&mut |r, end| {
            if end != End::Terminator {
                emit(r)
            }
        });
    }

    /// [`feed`](Self::feed), saying how each record ends: the records of one line cut at `max`
    /// are `Cut` but the last, which is `Newline`. A line that ended exactly at a cut (its `\n`
    /// came right after a chunk had gone out as `Cut`) gets an empty `Terminator` record, so a
    /// reader that joins `Cut` records to the next one never joins two lines.
    pub fn feed_marked(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&[u8], End)) {
        while !data.is_empty() {
            if self.buf.is_empty() {
                data = self.feed_direct(data, emit);
            } else {
                data = self.feed_buffered(data, emit);
            }
        }
    }

    /// [`finish`](Self::finish); the partial last line is `Eof`, and a line whose last chunk
    /// went out as `Cut` gets its empty `Terminator`.
    pub fn finish_marked(&mut self, emit: &mut dyn FnMut(&[u8], End)) {
        if !self.buf.is_empty() {
            emit(&self.buf, End::Eof);
            self.buf.clear();
        } else if self.cut_at_boundary {
            emit(&[], End::Terminator);
        }
        self.cut_at_boundary = false;
    }

    /// Nothing is buffered: emit records straight out of `data` (the zero-copy fast path).
    /// Returns the unconsumed rest of `data`.
    fn feed_direct<'d>(&mut self, data: &'d [u8], emit: &mut dyn FnMut(&[u8], End)) -> &'d [u8] {
        // Only a line shorter than `max` goes out whole here; once `max` bytes of a line are known
        // a chunk is cut (below) whether or not '\n' comes next, exactly as when the same bytes
        // trickle in one read at a time, so records never depend on how the pipe was read.
        let window = &data[..data.len().min(self.max)];
        if let Some(nl) = find_newline(window) {
            if nl == 0 && self.cut_at_boundary {
                // The previous chunk ended exactly where the line did.
                emit(&[], End::Terminator);
            } else {
                emit(&data[..nl], End::Newline);
            }
            self.cut_at_boundary = false;
            return &data[nl + 1..];
        }
        if data.len() >= self.max {
            // At least `max` bytes of the line and no '\n' among them: cut a chunk now. After a
            // UTF-8 back-off the next byte is the cut character's lead byte, never '\n', so the
            // flag only matters when the cut was at exactly `max`.
            let n = chunk_len(&data[..self.max]);
            emit(&data[..n], End::Cut);
            self.cut_at_boundary = true;
            return &data[n..];
        }
        self.buf.extend_from_slice(data);
        &[]
    }

    /// Part of the line is buffered: append to it until the line ends or the buffer holds `max`
    /// bytes. Returns the unconsumed rest of `data`.
    fn feed_buffered<'d>(&mut self, data: &'d [u8], emit: &mut dyn FnMut(&[u8], End)) -> &'d [u8] {
        let room = self.max - self.buf.len();
        let window = &data[..data.len().min(room)];
        if let Some(nl) = find_newline(window) {
            self.buf.extend_from_slice(&data[..nl]);
            emit(&self.buf, End::Newline);
            self.buf.clear();
            self.cut_at_boundary = false;
            return &data[nl + 1..];
        }
        if data.len() >= room {
            self.buf.extend_from_slice(&data[..room]);
            let n = chunk_len(&self.buf);
            emit(&self.buf[..n], End::Cut);
            // Keep the (at most 3) bytes of a character cut by the boundary for the next chunk.
            self.buf.copy_within(n.., 0);
            self.buf.truncate(self.max - n);
            self.cut_at_boundary = self.buf.is_empty();
            return &data[room..];
        }
        self.buf.extend_from_slice(data);
        &[]
    }
}

/// How a record ends (the marked API of [`LineSplitter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The line's `\n`.
    Newline,
    /// Cut at `max`: the line goes on in the next record of the same stream.
    Cut,
    /// Empty: the line cut just before ended here (its `\n`, or EOF, came after the cut).
    Terminator,
    /// The stream ended without a `\n`.
    Eof,
}

fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// How many bytes of a full chunk to emit: all of it, unless it ends inside a UTF-8 multi-byte
/// sequence whose lead byte is valid (RFC 3629 §4: C2..DF, E0..EF, F0..F4) and is followed only by
/// continuation bytes, too few to complete it. Then the cut moves back to that lead byte, provided
/// the chunk stays non-empty. Bytes that are not UTF-8 anyway are cut at `max`, since no backing
/// off can make them valid.
fn chunk_len(chunk: &[u8]) -> usize {
    let len = chunk.len();
    // A sequence is at most 4 bytes, so an incomplete one starts within the last 3 bytes.
    for back in 1..=3.min(len) {
        let b = chunk[len - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead byte
        }
        let need = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return len, // ASCII or not a valid lead byte: nothing to back off for
        };
        if back < need && back < len {
            return len - back;
        }
        return len;
    }
    len
}

/// Parses the sd-daemon(3) priority prefix: a line starting with `<N>`, N a single digit 0..=7
/// (`SD_EMERG`..`SD_DEBUG`), sets that line's priority. Returns the priority and the rest of the
/// line without the prefix. Anything else (`<8>`, `<>`, `<12>`, `<3`, `x<3>`) is not a prefix.
pub fn parse_level_prefix(line: &[u8]) -> Option<(u8, &[u8])> {
    match line {
        [b'<', d @ b'0'..=b'7', b'>', rest @ ..] => Some((d - b'0', rest)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `parts` one after another, then finishes; returns every record.
    fn split(max: usize, parts: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for p in parts {
            s.feed(p, &mut |r| out.push(r.to_vec()));
            assert!(s.pending() < s.max(), "buffer must never hold a full chunk");
        }
        s.finish(&mut |r| out.push(r.to_vec()));
        assert_eq!(s.pending(), 0);
        out
    }

    fn recs(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn marked(max: usize, parts: &[&[u8]]) -> Vec<(String, End)> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for p in parts {
            s.feed_marked(p, &mut |r, e| {
                out.push((String::from_utf8_lossy(r).into_owned(), e))
            });
        }
        s.finish_marked(&mut |r, e| out.push((String::from_utf8_lossy(r).into_owned(), e)));
        out
    }

    #[test]
    fn marks_say_how_each_record_ends() {
        use End::*;
        let m = |v: &[(&str, End)]| -> Vec<(String, End)> {
            v.iter().map(|(s, e)| (s.to_string(), *e)).collect()
        };
        assert_eq!(
            marked(4, &[b"abcdefghij\nx\nend"]),
            m(&[
                ("abcd", Cut),
                ("efgh", Cut),
                ("ij", Newline),
                ("x", Newline),
                ("end", Eof)
            ])
        );
        // A last chunk of exactly max bytes at EOF: terminated too.
        assert_eq!(marked(4, &[b"last"]), m(&[("last", Cut), ("", Terminator)]));
        // A line of exactly max bytes is cut as soon as max bytes are known, whatever the
        // reads: then its newline is an empty terminator, never a join of two lines.
        assert_eq!(
            marked(4, &[b"abcd\n"]),
            m(&[("abcd", Cut), ("", Terminator)])
        );
        assert_eq!(
            marked(4, &[b"abcd", b"\nx\n"]),
            m(&[("abcd", Cut), ("", Terminator), ("x", Newline)])
        );
        assert_eq!(
            marked(4, &[b"ab", b"cd", b"\n"]),
            m(&[("abcd", Cut), ("", Terminator)])
        );
        // The unmarked API keeps its records: no terminator.
        assert_eq!(split(4, &[b"ab", b"cd", b"\n"]), recs(&["abcd"]));
    }

    #[test]
    fn simple_lines() {
        assert_eq!(split(100, &[b"a\nbc\n"]), recs(&["a", "bc"]));
    }

    #[test]
    fn empty_lines_are_records() {
        assert_eq!(split(100, &[b"\n\na\n\n"]), recs(&["", "", "a", ""]));
    }

    #[test]
    fn carriage_return_is_kept() {
        assert_eq!(split(100, &[b"a\r\nb\r\n"]), recs(&["a\r", "b\r"]));
    }

    #[test]
    fn partial_line_across_feeds() {
        assert_eq!(
            split(100, &[b"hel", b"lo\nwo", b"rld\n"]),
            recs(&["hello", "world"])
        );
    }

    #[test]
    fn final_line_without_newline_flushed_at_finish() {
        assert_eq!(split(100, &[b"a\nlast"]), recs(&["a", "last"]));
    }

    #[test]
    fn finish_with_nothing_pending_emits_nothing() {
        assert!(split(100, &[b"a\n"]).len() == 1);
        assert!(split(100, &[]).is_empty());
    }

    #[test]
    fn long_line_is_chunked_not_truncated() {
        assert_eq!(split(4, &[b"abcdefghij\n"]), recs(&["abcd", "efgh", "ij"]));
    }

    #[test]
    fn line_of_exactly_max_bytes_is_one_record() {
        assert_eq!(split(4, &[b"abcd\nx\n"]), recs(&["abcd", "x"]));
        // Split across reads, in the buffered path too.
        assert_eq!(split(4, &[b"ab", b"cd", b"\nx\n"]), recs(&["abcd", "x"]));
        assert_eq!(split(4, &[b"abcd", b"\n", b"\n"]), recs(&["abcd", ""]));
        assert_eq!(split(4, &[b"abcdefgh\n"]), recs(&["abcd", "efgh"]));
    }

    #[test]
    fn chunk_emitted_as_soon_as_max_bytes_accumulate() {
        let mut s = LineSplitter::new(4);
        let mut out: Vec<Vec<u8>> = Vec::new();
        s.feed(b"ab", &mut |r| out.push(r.to_vec()));
        assert!(out.is_empty());
        s.feed(b"cd", &mut |r| out.push(r.to_vec()));
        assert_eq!(out, recs(&["abcd"]));
        assert_eq!(s.pending(), 0);
        s.feed(b"e", &mut |r| out.push(r.to_vec()));
        assert_eq!(s.pending(), 1);
    }

    #[test]
    fn max_one() {
        assert_eq!(split(1, &[b"ab\n\nc\n"]), recs(&["a", "b", "", "c"]));
    }

    #[test]
    fn zero_max_is_treated_as_one() {
        assert_eq!(LineSplitter::new(0).max(), 1);
    }

    #[test]
    fn complete_lines_are_not_copied() {
        // The fast path hands out slices of the caller's buffer.
        let data = b"one\ntwo\n";
        let mut s = LineSplitter::new(100);
        let mut ptrs = Vec::new();
        s.feed(data, &mut |r| ptrs.push(r.as_ptr()));
        assert_eq!(ptrs, vec![data.as_ptr(), data[4..].as_ptr()]);
        // A long line's chunks also come straight from the input.
        let long = [b'x'; 10];
        let mut s = LineSplitter::new(4);
        let mut ptrs = Vec::new();
        s.feed(&long, &mut |r| ptrs.push(r.as_ptr()));
        assert_eq!(ptrs, vec![long.as_ptr(), long[4..].as_ptr()]);
        assert_eq!(s.pending(), 2);
    }

    #[test]
    fn buffer_never_reallocates() {
        let mut s = LineSplitter::new(8);
        let cap = s.buf.capacity();
        let ptr = s.buf.as_ptr();
        for _ in 0..100 {
            s.feed(b"0123456789abc\ndef", &mut |_| {});
            s.feed("é€😀".as_bytes(), &mut |_| {});
        }
        assert_eq!(s.buf.capacity(), cap);
        assert_eq!(s.buf.as_ptr(), ptr);
    }

    #[test]
    fn utf8_not_split_at_chunk_boundary() {
        // "ab€" is 5 bytes; max 4 would cut the 3-byte '€' after its first byte.
        let r = split(4, &["ab€cd\n".as_bytes()]);
        assert_eq!(r, recs(&["ab", "€c", "d"]));
        // Same, byte by byte through the buffered path.
        let bytes = "ab€cd\n".as_bytes();
        let parts: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(split(4, &parts), recs(&["ab", "€c", "d"]));
        // 4-byte character.
        assert_eq!(split(4, &["a😀b\n".as_bytes()]), recs(&["a", "😀", "b"]));
        // Complete character exactly at the boundary: no back-off.
        assert_eq!(split(3, &["ab€\n".as_bytes()]), recs(&["ab", "€"]));
        assert_eq!(split(5, &["ab€\n".as_bytes()]), recs(&["ab€"]));
    }

    #[test]
    fn utf8_backoff_never_leaves_an_empty_chunk() {
        // max 2 cannot hold '€' (3 bytes): it has to be cut, but no byte is lost.
        let r = split(2, &["€€\n".as_bytes()]);
        assert_eq!(r.concat(), "€€".as_bytes());
        assert!(r.iter().all(|c| !c.is_empty() && c.len() <= 2));
    }

    #[test]
    fn invalid_utf8_is_cut_at_max() {
        // A continuation byte with no lead, and an invalid lead byte (0xF8): plain cut.
        assert_eq!(
            split(3, &[b"a\x80\x80\x80\n"]),
            vec![b"a\x80\x80".to_vec(), b"\x80".to_vec()]
        );
        assert_eq!(
            split(3, &[b"ab\xF8xy\n"]),
            vec![b"ab\xF8".to_vec(), b"xy".to_vec()]
        );
        // 0xC0/0xC1 are never valid leads (overlong forms).
        assert_eq!(
            split(3, &[b"ab\xC0\x80\n"]),
            vec![b"ab\xC0".to_vec(), b"\x80".to_vec()]
        );
    }

    #[test]
    fn chunk_len_cases() {
        assert_eq!(chunk_len(b"abcd"), 4);
        assert_eq!(chunk_len(b"ab\xE2\x82"), 2);
        assert_eq!(chunk_len(b"abc\xE2"), 3);
        assert_eq!(chunk_len(b"a\xE2\x82\xAC"), 4);
        assert_eq!(chunk_len(b"a\xF0\x9F\x98"), 1);
        assert_eq!(chunk_len(b"\xF0\x9F\x98"), 3); // backing off would empty the chunk
        assert_eq!(chunk_len(b"\xE2"), 1);
        assert_eq!(chunk_len(b"a\x80\x80\x80"), 4); // no lead within reach
        assert_eq!(chunk_len(b"ab\xC3\xA9"), 4);
    }

    /// Reference model of the documented behaviour, written the obvious (copying) way.
    fn model(max: usize, input: &[u8]) -> Vec<Vec<u8>> {
        fn chunks(max: usize, mut l: &[u8], out: &mut Vec<Vec<u8>>) {
            while l.len() >= max {
                let n = chunk_len(&l[..max]);
                out.push(l[..n].to_vec());
                l = &l[n..];
            }
            if !l.is_empty() {
                out.push(l.to_vec());
            }
        }
        let mut out = Vec::new();
        let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let partial = lines.pop().unwrap_or_default();
        for line in lines {
            if line.is_empty() {
                out.push(Vec::new());
            } else {
                chunks(max, line, &mut out);
            }
        }
        chunks(max, partial, &mut out);
        out
    }

    #[test]
    fn matches_model_for_every_read_pattern() {
        // Property-style check without proptest: for several limits, every way of cutting the
        // input into two reads, and byte-at-a-time reads, give the model's records.
        let input = "héllo wörld\n\n€€€ 😀😀 abc\r\nx\nabc\u{e9}\nno newline at end"
            .as_bytes()
            .iter()
            .copied()
            .chain(*b"\nabc\xE2\nab\xF0\x9F\n\x80\x80\x80\x80\x80\nend\xE2\x82")
            .collect::<Vec<u8>>();
        for max in 1..=20 {
            let expected = model(max, &input);
            assert_eq!(split(max, &[&input]), expected, "max={max} one read");
            for cut in 0..=input.len() {
                let r = split(max, &[&input[..cut], &input[cut..]]);
                assert_eq!(r, expected, "max={max} cut={cut}");
            }
            let one_by_one: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(split(max, &one_by_one), expected, "max={max} byte-wise");
            assert!(expected.iter().all(|r| r.len() <= max));
        }
    }

    #[test]
    fn valid_utf8_chunks_stay_valid() {
        let input = "a€😀é€€b😀😀😀 x é\n€€€€€€€€€€€\n".repeat(3);
        for max in 4..=16 {
            for r in split(max, &[input.as_bytes()]) {
                assert!(std::str::from_utf8(&r).is_ok(), "max={max} {r:?}");
            }
        }
    }

    #[test]
    fn line_of_max_bytes_ending_mid_character_is_split_the_same_way_however_read() {
        // "abc" + the first byte of '€', then '\n': cut before the lead byte in every case.
        let want = vec![b"abc".to_vec(), b"\xE2".to_vec()];
        assert_eq!(split(4, &[b"abc\xE2\n"]), want);
        assert_eq!(split(4, &[b"abc\xE2", b"\n"]), want);
        assert_eq!(split(4, &[b"ab", b"c\xE2\n"]), want);
    }

    #[test]
    fn reuse_after_finish() {
        let mut s = LineSplitter::new(4);
        let mut out = Vec::new();
        s.feed(b"abcd", &mut |r| out.push(r.to_vec()));
        s.finish(&mut |r| out.push(r.to_vec()));
        // The boundary flag is reset: a leading '\n' of the next stream is an empty line.
        s.feed(b"\n", &mut |r| out.push(r.to_vec()));
        assert_eq!(out, recs(&["abcd", ""]));
    }

    #[test]
    fn level_prefix() {
        assert_eq!(parse_level_prefix(b"<3>boom"), Some((3, &b"boom"[..])));
        assert_eq!(parse_level_prefix(b"<0>"), Some((0, &b""[..])));
        assert_eq!(parse_level_prefix(b"<7><5>x"), Some((7, &b"<5>x"[..])));
        for bad in [
            &b"<8>x"[..],
            b"<>x",
            b"<12>x",
            b"<3",
            b"x<3>",
            b"",
            b"<",
            b" <3>x",
            b"<a>x",
            b"<-1>x",
        ] {
            assert_eq!(parse_level_prefix(bad), None, "{bad:?}");
        }
    }
}
