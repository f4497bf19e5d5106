//! sigshim's own diagnostics: a minimal `tracing` subscriber that writes one line per event in
//! the one message shape sigshim uses (`sigshim: warning: ...`).
//!
//! Where they go, one rule (README "sigshim's own messages", `--help` of `-v`): while sigshim
//! captures the app's output (journald or syslog), to that destination under the identifier
//! `sigshim` with sigshim's PID, so an operator finds sigshim's account of a stop next to the
//! app's last lines (`output` registers the sender; this module knows no encoder); otherwise
//! to sigshim's stderr. To stderr as well, whatever the destination: a message the destination
//! does not take (missing, full), like the app's lines; warnings about the destination itself
//! or about the init's own timeout (events with the field `stderr = true`), which belong beside
//! the lines that went to stderr and in the init's console; and fatal errors (`main`), which
//! end sigshim before anything else could be read.
//!
//! Lines to stderr go through the console queue (`sys`): a stalled stderr never blocks the
//! loop, and a broken one (EPIPE) is given up instead of raising SIGPIPE over and over.
//!
//! tracing-subscriber would bring formatting machinery, span storage and timestamps that a
//! wrapper printing a handful of lines does not need; this is the whole of what sigshim uses.
//! Spans are not used.

use std::fmt::Write as _;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Verbosity of sigshim's own diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

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
            .is_some_and(|send| send(priority, msg.text.as_bytes()));
        if !sent || msg.stderr {
            let line = format!("sigshim: {level}: {}", one_line(&msg.text));
            crate::sys::console_line(2, line.as_bytes());
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Sends one of sigshim's own records to the log destination: (priority, message) -> taken.
pub type Sender = Box<dyn Fn(u8, &[u8]) -> bool + Send + Sync>;

static SINK: OnceLock<Sender> = OnceLock::new();

/// From now on, diagnostics also go to `send` (the app's log destination, as `sigshim`).
pub fn route_to(send: Sender) {
    let _ = SINK.set(send);
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
