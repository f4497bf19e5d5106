//! sigshim's own diagnostics: a minimal `tracing` subscriber that writes one line per event to
//! stderr in the one message shape sigshim uses (`sigshim: warning: ...`), or, when the app's
//! output is captured, to the same journald/syslog destination under the identifier `sigshim`
//! (so an operator finds sigshim's account of a stop next to the app's last lines). A
//! diagnostic that cannot be sent there goes to stderr; events with the field
//! `stderr = true` go to stderr as well (the fallback count belongs beside the fallback lines).
//!
//! tracing-subscriber would bring formatting machinery, span storage and timestamps that a
//! wrapper printing a handful of lines does not need; this is the whole of what sigshim uses.
//! Spans are not used. Each line goes out in a single write(2) so that lines from sigshim and
//! the app, sharing a stderr, never interleave mid-line.

use crate::cli::Verbosity;
use crate::output::{Settings, Target, journald, syslog};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

struct Diag {
    max: LevelFilter,
}

struct Message {
    text: String,
    stderr: bool,
}

impl Visit for Message {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "stderr" {
            self.stderr = value;
        } else {
            let _ = write!(self.text, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = &mut self.text;
        if field.name() == "message" {
            let _ = write!(text, "{value:?}");
        } else {
            let _ = write!(text, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.text, " {}={value}", field.name());
        }
    }
}

impl Subscriber for Diag {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let (level, priority) = match *event.metadata().level() {
            Level::ERROR => ("error", 3),
            Level::WARN => ("warning", 4),
            Level::INFO => ("info", 6),
            Level::DEBUG => ("debug", 7),
            Level::TRACE => ("trace", 7),
        };
        let mut msg = Message {
            text: String::new(),
            stderr: false,
        };
        event.record(&mut msg);
        let sent = SINK
            .get()
            .is_some_and(|sink| sink.send(priority, msg.text.as_bytes()));
        if !sent || msg.stderr {
            let line = format!("sigshim: {level}: {}\n", one_line(&msg.text));
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// The log destination for sigshim's own records.
struct Sink {
    path: PathBuf,
    sock: OnceLock<OwnedFd>,
    encoder: SinkEncoder,
}

enum SinkEncoder {
    Journald(journald::JournalHeader),
    Syslog(syslog::SyslogHeader),
}

static SINK: OnceLock<Sink> = OnceLock::new();

impl Sink {
    /// One datagram, never blocking: false sends the diagnostic to stderr instead.
    fn send(&self, priority: u8, message: &[u8]) -> bool {
        let sock = match self.sock.get() {
            Some(s) => s,
            None => match crate::output::connect_dgram(&self.path) {
                Ok(s) => self.sock.get_or_init(|| s),
                Err(_) => return false,
            },
        };
        let mut record = Vec::with_capacity(128 + message.len());
        let _ = match &self.encoder {
            SinkEncoder::Journald(h) => journald::encode_entry(&mut record, h, priority, message),
            SinkEncoder::Syslog(h) => {
                syslog::encode(&mut record, h, priority, &syslog::Stamp::now(), message)
            }
        };
        // SAFETY: send on our socket with a valid buffer.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                record.as_ptr().cast(),
                record.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        n >= 0
    }
}

/// Sends sigshim's diagnostics to the app's log destination from now on, as `sigshim`.
pub fn route_to(settings: &Settings) {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    let (path, encoder) = match &settings.target {
        Target::Journald(p) => (
            p.clone(),
            SinkEncoder::Journald(journald::JournalHeader::new(
                b"sigshim",
                pid,
                settings.facility,
            )),
        ),
        Target::Syslog(p, format) => (
            p.clone(),
            SinkEncoder::Syslog(syslog::SyslogHeader::new(
                *format,
                settings.facility,
                b"sigshim",
                pid,
                &crate::output::hostname(),
            )),
        ),
        // Diagnostics stay on stderr, which is where the copied lines go too.
        Target::Passthrough => return,
    };
    let _ = SINK.set(Sink {
        path,
        sock: OnceLock::new(),
        encoder,
    });
}

pub fn init(verbosity: Verbosity) {
    let max = match verbosity {
        Verbosity::Quiet => LevelFilter::ERROR,
        Verbosity::Normal => LevelFilter::WARN,
        Verbosity::Verbose => LevelFilter::INFO,
        Verbosity::Debug => LevelFilter::DEBUG,
    };
    let _ = tracing::subscriber::set_global_default(Diag { max });
}

/// An OS error as people read it: "No such file or directory", without Rust's "(os error 2)".
pub fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A message made safe for one line: control characters from user input (a value with a
/// newline, a program name with an escape sequence) are shown escaped, so every message sigshim
/// prints stays exactly one line and cannot forge another.
pub fn one_line(msg: &str) -> String {
    if !msg.chars().any(char::is_control) {
        return msg.to_string();
    }
    msg.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}
