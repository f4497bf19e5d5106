//! The command line: clap's definition, then validation into a [`Config`] made of sigshim's own
//! types, so nothing past this module sees clap.
//!
//! Every error here is a usage error (exit 2) with one line naming the problem. Option parsing
//! stops at the first non-option word: `sigshim -v app --flag` hands `--flag` to the app.

pub use crate::diag::Verbosity;
use crate::exit::Policy;
use crate::output::syslog::{Format, parse_facility, parse_priority};
use crate::schedule::{Schedule, parse_duration};
use crate::signals::{Options, Rewrite, Target, parse_rewrite, parse_signal};
use clap::{ArgAction, Parser};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// What sigshim's exit status means, one row per case: `--help`, the man page's EXIT STATUS
/// (tests/man.rs) and the README's table (checked by tests/man.rs) are all made from this.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "N",
        "the child exited with N (after --success-exit mapping)",
    ),
    (
        "(signal)",
        "the child died of a signal: sigshim dies of the same signal (or exits 128+n with \
         --exit-code-on-signal, or as PID 1 of a namespace); never with a core dump of its own, \
         so a child's core dump is reported as a plain kill (systemd: Result=signal, not \
         core-dump) while the child's own core file is written as usual",
    ),
    ("127", "PROGRAM was not found"),
    ("126", "PROGRAM was found but could not be executed"),
    (
        "125",
        "sigshim itself failed (including a failed --user drop and --ready-timeout)",
    ),
    ("2", "usage error"),
];

const AFTER_HELP: &str = "\
Exit status: the child's own code, or its death signal re-raised; 127 PROGRAM not found;
126 not executable; 125 sigshim itself failed; 2 usage error. See --help for more.";

const SIGNALS_AND_DURATIONS: &str = "\
Signals are accepted by name or number, with or without SIG, in any case: INT, SIGINT, 2, RTMIN+3.
Durations: 500ms, 4s, 1.5s, 2m, 1h, or compound, largest unit first: 1m30s, 1h2m3.5s, 2s500ms.";

const EXAMPLES: &str = "\
Examples, one per init (sigshim(1) explains each):
  # Upstart >= 1.4 job: the app traps only INT; the deadline stays below 'kill timeout 5'
  expect stop
  exec /usr/bin/sigshim --upstart-expect-stop --stop-signal INT --kill-after 4s --log syslog -- /usr/local/bin/graceful

  # systemd unit (Type=notify, KillMode=mixed): reload by HUP reaches an app that wants USR2
  ExecStart=/usr/bin/sigshim --ready log:^ready --rewrite HUP:USR2 --stop-signal INT --kill-after 20s --log journald -- /usr/sbin/app

  # runit / daemontools run script
  exec /usr/bin/sigshim --stop-signal INT --kill-after 10s -- /usr/local/bin/graceful 2>&1

  # s6 run script, with notification-fd 3 in the service directory
  exec /usr/bin/sigshim --notify-fd 3 --ready tcp:127.0.0.1:8080 --stop-signal INT -- /usr/local/bin/graceful

  # container ENTRYPOINT: sigshim is PID 1 and reaps every orphan
  ENTRYPOINT [\"/sigshim\", \"--stop-signal\", \"INT\", \"--kill-after\", \"8s\", \"--\"]";

/// `--help`'s text after the options: signals and durations, the exit status table, examples.
fn after_long_help() -> String {
    let mut out = format!("{SIGNALS_AND_DURATIONS}\n\nExit status:\n");
    for (code, meaning) in EXIT_STATUS {
        // Wrapped at 100 columns under a 11-column code column.
        let mut line = format!("  {code:<9}");
        for word in meaning.split(' ') {
            if line.len() + 1 + word.len() > 100 && line.len() > 11 {
                out.push_str(line.trim_end());
                out.push('\n');
                line = " ".repeat(11);
            } else if line.len() > 11 {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(EXAMPLES);
    out
}

#[derive(Parser, Debug, Default)]
#[command(
    name = "sigshim",
    version,
    about = "Run a service as a direct child: translate its stop signal, enforce a kill deadline, \
             and hand the init the child's own exit outcome.",
    after_help = AFTER_HELP,
    after_long_help = after_long_help(),
    override_usage = "sigshim [OPTIONS] [--] PROGRAM [ARGS]...",
    // Everything after PROGRAM belongs to PROGRAM.
    trailing_var_arg = true,
    // A later occurrence of an option replaces an earlier one (wrapper scripts append).
    args_override_self = true,
)]
struct Args {
    /// Signal the child receives when the init asks for a stop (TERM or INT arrives). Without
    /// it, stop requests reach the child as they are (plain forwarding).
    #[arg(long, value_name = "SIG", help_heading = "Stopping")]
    stop_signal: Option<String>,

    /// Comma-separated signals that mean "stop" and are translated to --stop-signal.
    #[arg(
        long,
        value_name = "SIGS",
        default_value = "TERM,INT",
        help_heading = "Stopping"
    )]
    stop_on: String,

    /// Comma-separated signals that mean "reload" (systemd's ReloadSignal=), or "none". They
    /// reach the app as usual (after --rewrite); under systemd, when the app does not speak
    /// sd_notify itself (--ready other than notify), sigshim also reports each one as a reload:
    /// RELOADING=1 before it delivers the signal, READY=1 once delivered, so `systemctl
    /// reload` of a Type=notify-reload unit completes.
    #[arg(long, value_name = "SIGS", default_value = "HUP")]
    reload_on: String,

    /// Deliver TO when FROM arrives (repeatable); TO may be "ignore". Example: HUP:USR2.
    #[arg(long, value_name = "FROM:TO", action = ArgAction::Append, help_heading = "Signals")]
    rewrite: Vec<String>,

    /// After the stop signal, SIGKILL the child's process group and every descendant if the
    /// child has not exited within DURATION. 0 is refused (it would leave the app no time to
    /// stop); without this option sigshim waits as long as the app takes.
    #[arg(
        long,
        value_name = "DURATION",
        conflicts_with = "stop_schedule",
        help_heading = "Stopping"
    )]
    kill_after: Option<String>,

    /// Multi-step stop, start-stop-daemon style: SIG/DURATION/SIG/.../SIG, e.g.
    /// INT/20s/TERM/5s/KILL; ending on a DURATION means KILL after it. A wait of 0 is refused.
    /// Replaces --stop-signal and --kill-after.
    #[arg(
        long,
        value_name = "SCHED",
        conflicts_with = "stop_signal",
        help_heading = "Stopping"
    )]
    stop_schedule: Option<String>,

    /// Send signals to the child process only, not to its whole process group.
    #[arg(long, help_heading = "Signals")]
    single_child: bool,

    /// Do not set the signals that are translated away (TERM under --stop-signal INT) to
    /// ignored in the child. The guard protects the app when the init signals every process
    /// directly (systemd KillMode=control-group).
    #[arg(long, help_heading = "Signals")]
    no_guard: bool,

    /// Report a child killed by signal n as exit code 128+n instead of dying of the signal.
    #[arg(long, help_heading = "Exit status")]
    exit_code_on_signal: bool,

    /// Map this child exit code to 0 (repeatable).
    #[arg(long, value_name = "N", action = ArgAction::Append,
          value_parser = clap::value_parser!(u8), help_heading = "Exit status")]
    success_exit: Vec<u8>,

    /// Signal the child receives if sigshim itself dies.
    #[arg(
        long,
        value_name = "SIG",
        default_value = "KILL",
        help_heading = "Signals"
    )]
    pdeathsig: String,

    /// Do not become a child subreaper (orphaned descendants then go to PID 1, not sigshim).
    #[arg(long, help_heading = "Signals")]
    no_subreaper: bool,

    /// Restart the app when this signal arrives (consumed, never forwarded); sigshim keeps its
    /// PID, so the init keeps tracking it. systemd: ExecReload=/bin/kill -USR1 $MAINPID.
    #[arg(long, value_name = "SIG", help_heading = "Restarts and hooks")]
    restart_on: Option<String>,

    /// How --restart-on restarts: stop-start (stop the app by the stop schedule, wind down
    /// what it left, start it again) or overlap (start the new app, wait until it is ready
    /// by --ready, then stop the old one; with --listen no connection is refused).
    #[arg(
        long,
        value_name = "MODE",
        value_parser = ["stop-start", "overlap"],
        help_heading = "Restarts and hooks"
    )]
    restart_mode: Option<String>,

    /// Hold a listening socket for the app and hand it to every generation at fd 3 and up,
    /// with LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID (sd_listen_fds(3)) and server-starter's
    /// SERVER_STARTER_PORT; repeatable. SPEC: tcp:[HOST]:PORT or unix:PATH, with ,backlog=N
    /// ,name=NAME and, for unix, ,mode=0660 ,owner=USER[:GROUP]. Sockets systemd passed to
    /// sigshim (LISTEN_PID naming it) are held and handed on the same way, first.
    #[arg(
        long,
        value_name = "SPEC",
        action = ArgAction::Append,
        help_heading = "Restarts and hooks"
    )]
    listen: Vec<String>,

    /// Run CMD (with sh -c) when the app has started. Its environment says what happened:
    /// SIGSHIM_EVENT, SIGSHIM_GENERATION, SIGSHIM_APP_PID, SIGSHIM_PROGRAM.
    #[arg(long, value_name = "CMD", help_heading = "Restarts and hooks")]
    on_start: Option<OsString>,

    /// Run CMD when a restart (--restart-on) has started the next generation.
    #[arg(long, value_name = "CMD", help_heading = "Restarts and hooks")]
    on_restart: Option<OsString>,

    /// Run CMD before sigshim exits, with SERVICE_RESULT, EXIT_CODE and EXIT_STATUS as
    /// systemd's ExecStopPost= gets them, and SIGSHIM_REASON (exited, stopped, not-ready,
    /// not-started); sigshim waits for it, at most --hook-timeout.
    #[arg(long, value_name = "CMD", help_heading = "Restarts and hooks")]
    on_exit: Option<OsString>,

    /// How long a hook may run before it is killed (default 10s). A hook never changes
    /// sigshim's exit status and never outlives it.
    #[arg(long, value_name = "DURATION", help_heading = "Restarts and hooks")]
    hook_timeout: Option<String>,

    /// Run hooks as the caller, not as --user.
    #[arg(long, help_heading = "Restarts and hooks")]
    hooks_as_caller: bool,

    /// On a terminal, keep its foreground instead of handing it to the app (which is then
    /// stopped by SIGTTIN the moment it reads the terminal).
    #[arg(long, help_heading = "Terminal")]
    keep_terminal: bool,

    /// How long processes the app leaves behind when it exits get between SIGTERM and SIGKILL
    /// (default: the kill deadline, or 2s; 0: SIGKILL at once).
    #[arg(long, value_name = "DURATION", help_heading = "Stopping")]
    leftover_grace: Option<String>,

    /// Where the app's stdout and stderr go: auto, journald, syslog, or inherit (no capture).
    /// auto captures only where nobody else reads the output (sigshim's stdout and stderr are
    /// each systemd's journal stream for this service, or /dev/null), to the journal if its
    /// socket exists, else to syslog if /dev/log exists; a terminal, a pipe or a file is left
    /// to the app. -v says what it chose and why.
    #[arg(long, value_name = "MODE", default_value = "auto",
          value_parser = ["auto", "journald", "syslog", "inherit"], help_heading = "Output")]
    log: String,

    /// Identifier of the app's log records (default: PROGRAM's basename). Sent whole, as
    /// syslog(3) and logger(1) send it; for syslog a space, control character, ':', '[' or ']'
    /// becomes '_' and a tag is cut at 480 bytes (48 for RFC 5424), with a warning.
    #[arg(long, value_name = "TAG", help_heading = "Output")]
    tag: Option<OsString>,

    /// Syslog facility of the records (daemon, local0..local7, user, ...).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "daemon",
        help_heading = "Output"
    )]
    facility: String,

    /// Priority of stdout lines (emerg, alert, crit, err, warning, notice, info, debug, or 0-7).
    #[arg(
        long,
        value_name = "PRIO",
        default_value = "info",
        help_heading = "Output"
    )]
    stdout_priority: String,

    /// Priority of stderr lines.
    #[arg(
        long,
        value_name = "PRIO",
        default_value = "err",
        help_heading = "Output"
    )]
    stderr_priority: String,

    /// Do not interpret a leading <N> (sd-daemon(3)) as the line's priority.
    #[arg(long, help_heading = "Output")]
    no_level_prefix: bool,

    /// journald's native socket.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/systemd/journal/socket",
        help_heading = "Output"
    )]
    journal_socket: PathBuf,

    /// How records reach journald: stream (its stdout stream, the `stdout` socket beside
    /// --journal-socket, as systemd-cat and StandardOutput=journal use it: batched, the cheapest
    /// for journald; journald cuts lines at its LineMax) or native (a datagram per record to
    /// --journal-socket, with SYSLOG_PID and lines cut at --max-line). Default: stream when that
    /// socket exists and --max-line is not given, else native.
    #[arg(long, value_name = "PROTOCOL", value_parser = ["stream", "native"],
          help_heading = "Output")]
    journal_protocol: Option<String>,

    /// The syslog socket.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/dev/log",
        help_heading = "Output"
    )]
    syslog_socket: PathBuf,

    /// Syslog record format.
    #[arg(long, value_name = "FORMAT", default_value = "rfc3164",
          value_parser = ["rfc3164", "rfc5424"], help_heading = "Output")]
    syslog_format: String,

    /// Longest record in bytes; longer lines are split into several records, never cut
    /// (default: 256 KiB for journald, 8000 for syslog, which rsyslog's 8 KiB limit fits).
    #[arg(long, value_name = "BYTES", help_heading = "Output")]
    max_line: Option<usize>,

    /// Give the app a pseudo-terminal as stdout (stderr stays a pipe), so that it line-buffers
    /// and its lines arrive as they are written; TERM=dumb, NO_COLOR=1 and PAGER=cat keep it
    /// plain unless already set. Needs captured output.
    #[arg(long, help_heading = "Output")]
    stdout_pty: bool,

    /// After the app exits, how long to keep reading output that something else still writes
    /// (0: send what the pipes already hold, wait for nothing more).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        help_heading = "Output"
    )]
    drain_timeout: String,

    /// When the app counts as ready: spawn (right after exec), notify (it sends READY=1 to the
    /// NOTIFY_SOCKET sigshim gives it), log:REGEX (an output line matches), tcp:HOST:PORT (a
    /// connection succeeds), file:PATH (the file exists), fd:N (it writes a newline on fd N),
    /// alive:DURATION (it still runs DURATION after exec: a guess, for an app that can tell
    /// nothing).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "spawn",
        help_heading = "Readiness"
    )]
    ready: String,

    /// If the app is not ready within DURATION, stop it and exit 125 (0 is refused; without
    /// this option sigshim waits as long as it takes).
    #[arg(long, value_name = "DURATION", help_heading = "Readiness")]
    ready_timeout: Option<String>,

    /// Once ready, write a newline to this descriptor and close it (s6 notification-fd).
    #[arg(long, value_name = "N", help_heading = "Readiness")]
    notify_fd: Option<i32>,

    /// Once ready, stop sigshim itself with SIGSTOP once (for Upstart's "expect stop"); if
    /// sigshim exits before that, it raises the SIGSTOP first, so that Upstart moves on.
    #[arg(long, help_heading = "Readiness")]
    upstart_expect_stop: bool,

    /// Once ready, create this file; remove it at exit.
    #[arg(long, value_name = "PATH", help_heading = "Readiness")]
    ready_file: Option<PathBuf>,

    /// Run the app as USER (name or uid), with GROUP as its only group if given, else USER's
    /// primary group and supplementary groups. sigshim itself keeps running as the caller.
    #[arg(long, value_name = "USER[:GROUP]", help_heading = "Privileges")]
    user: Option<String>,

    /// Set no_new_privs for the app: setuid programs and file capabilities no longer raise
    /// its privileges.
    #[arg(long, help_heading = "Privileges")]
    no_new_privs: bool,

    /// More of sigshim's own messages (-v: info, -vv: debug). They go where the app's output
    /// goes while sigshim captures it (journald or syslog, identifier `sigshim`), else to
    /// stderr. stderr also gets fatal errors, warnings about the log destination or the init's
    /// own timeout, and any message the destination does not take.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,

    /// Only errors (where -v says).
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,

    /// The program to run, and its arguments.
    #[arg(value_name = "PROGRAM", required = true, num_args = 1.., allow_hyphen_values = true)]
    command: Vec<OsString>,
}

/// The `--log` choice; `auto` is resolved at start, when the sockets are looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogMode {
    Auto,
    Journald,
    Syslog,
    Inherit,
}

/// The log options, validated.
#[derive(Clone, Debug)]
pub struct Log {
    pub mode: LogMode,
    pub journal_socket: PathBuf,
    /// `--journal-protocol`: `Some(true)` stream, `Some(false)` native, `None` chosen at start.
    pub journal_stream: Option<bool>,
    pub syslog_socket: PathBuf,
    pub syslog_format: Format,
    pub tag: Vec<u8>,
    pub facility: u8,
    pub stdout_priority: u8,
    pub stderr_priority: u8,
    pub level_prefix: bool,
    pub max_line: Option<usize>,
    pub drain_timeout: Duration,
}

/// `--on-start`, `--on-restart`, `--on-exit` and how they run.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub start: Option<OsString>,
    pub restart: Option<OsString>,
    pub exit: Option<OsString>,
    pub timeout: Duration,
    pub as_caller: bool,
}

/// Everything the rest of sigshim needs, validated: plain data. What depends on the
/// environment (which init is above, whether the log sockets exist) is decided at set-up.
#[derive(Debug)]
pub struct Config {
    pub command: Vec<OsString>,
    /// Combined into one plan at set-up (`signals::Plan`), once the init above is known.
    pub signals: Options,
    pub subreaper: bool,
    /// `--keep-terminal`.
    pub keep_terminal: bool,
    /// `--stdout-pty`.
    pub stdout_pty: bool,
    /// `--restart-mode`, when `--restart-on` is given.
    pub restart_mode: Option<crate::machine::RestartMode>,
    pub hooks: Hooks,
    /// `--listen`.
    pub listen: Vec<crate::listen::Spec>,
    pub policy: Policy,
    pub log: Log,
    pub ready: crate::notify::Mode,
    pub ready_timeout: Option<Duration>,
    pub delivery: crate::notify::Delivery,
    /// `--user`, resolved when sigshim starts (the user database is consulted then).
    pub user: Option<String>,
    pub no_new_privs: bool,
    pub verbosity: Verbosity,
}

/// The clap definition, for the man page (tests/man.rs keeps sigshim.1 in step with it).
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// What parsing produced: a config to run, or text to print and an exit code (help, version,
/// usage errors).
pub enum Parsed {
    Run(Box<Config>),
    Print { text: String, code: i32 },
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Parsed {
    let args: Vec<OsString> = args.into_iter().collect();
    if let Some(a) = quick(&args) {
        return finish(a);
    }
    // One clap Command for both passes: building it is most of sigshim's start-up.
    let mut cmd = command();
    cmd.build();
    if let Err(msg) = unknown_options(&cmd, &args) {
        return Parsed::Print {
            text: format!(
                "sigshim: usage: {} (see sigshim --help)\n",
                crate::diag::one_line(&msg)
            ),
            code: crate::exit::USAGE,
        };
    }
    let parsed = cmd
        .try_get_matches_from_mut(args)
        .and_then(|m| <Args as clap::FromArgMatches>::from_arg_matches(&m));
    let args = match parsed {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() {
                crate::exit::USAGE
            } else {
                0
            };
            let text = if e.kind() == clap::error::ErrorKind::MissingRequiredArgument {
                "sigshim: usage: missing PROGRAM: sigshim [OPTIONS] [--] PROGRAM [ARGS]... \
                 (see sigshim --help)\n"
                    .to_string()
            } else if e.use_stderr() {
                // clap's first line is the one naming the problem; keep our message shape.
                let rendered = e.to_string();
                let first = rendered.lines().next().unwrap_or("invalid arguments");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                format!(
                    "sigshim: usage: {} (see sigshim --help)\n",
                    crate::diag::one_line(first)
                )
            } else {
                e.to_string()
            };
            return Parsed::Print { text, code };
        }
    };
    finish(args)
}

/// Validation, the same whichever parser read the words.
fn finish(args: Args) -> Parsed {
    match validate(args).and_then(refuse_zero_waits) {
        Ok(c) => Parsed::Run(Box::new(c)),
        Err(msg) => Parsed::Print {
            text: format!(
                "sigshim: usage: {} (see sigshim --help)\n",
                crate::diag::one_line(&msg)
            ),
            code: crate::exit::USAGE,
        },
    }
}

/// The command lines a service runs with, read without clap: building clap's command (every
/// option, its help text, then the parse) took 147 µs of a 1.4 ms start (median of 200 starts
/// of the static build, `--log inherit -- /bin/true`), and its code is what most of sigshim's
/// resident pages were faulted in for. This reads only what is plainly valid: known long
/// options as `--name VALUE` or `--name=VALUE`, flags, one `-v`/`-vv`/`-q` word, then `--` or
/// PROGRAM. Anything else — help, version, an unknown or misspelt option, a value that starts
/// with `-`, is empty, is not UTF-8 or that clap would refuse, a conflict, an option clap
/// counts or repeats differently — returns `None` and goes to clap, so every message and every
/// help text is clap's own. The tests check that what this accepts, clap reads the same way.
fn quick(args: &[OsString]) -> Option<Args> {
    let mut a = defaults();
    let mut loud = false;
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        let w = word.to_str()?;
        if w == "--" {
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            if name == "verbose" || name == "quiet" {
                if loud || inline.is_some() {
                    return None;
                }
                loud = true;
                (a.verbose, a.quiet) = (u8::from(name == "verbose"), name == "quiet");
                continue;
            }
            match (option(name)?, inline) {
                (Opt::Flag(set), None) => set(&mut a),
                (Opt::Flag(_), Some(_)) => return None,
                (Opt::Value(set), v) => set(&mut a, value(v, &mut words)?),
                (Opt::Checked(set), v) => set(&mut a, value(v, &mut words)?)?,
            }
        } else if let Some(shorts) = w.strip_prefix('-') {
            // One `-v...` or `-q` word (clap counts repeated words in its own way).
            if loud || shorts.is_empty() || shorts.len() > 100 {
                return None;
            }
            loud = true;
            if shorts == "q" {
                a.quiet = true;
            } else if shorts.bytes().all(|b| b == b'v') {
                a.verbose = shorts.len() as u8;
            } else {
                return None;
            }
        } else {
            // PROGRAM: it and everything after it are the command.
            a.command.push(word.clone());
            break;
        }
    }
    a.command.extend(words.cloned());
    let conflict = (a.kill_after.is_some() || a.stop_signal.is_some()) && a.stop_schedule.is_some();
    (!a.command.is_empty() && !conflict).then_some(a)
}

/// An option's value, inline or the next word, if the fast path takes it: UTF-8, not empty,
/// not starting with `-` (clap decides those).
fn value<'a>(
    inline: Option<&'a str>,
    words: &mut impl Iterator<Item = &'a OsString>,
) -> Option<&'a str> {
    let v = match inline {
        Some(v) => v,
        None => words.next()?.to_str()?,
    };
    (!v.is_empty() && !v.starts_with('-')).then_some(v)
}

/// The defaults clap's definition above gives (the tests compare the two).
fn defaults() -> Args {
    Args {
        stop_on: "TERM,INT".into(),
        reload_on: "HUP".into(),
        pdeathsig: "KILL".into(),
        log: "auto".into(),
        facility: "daemon".into(),
        stdout_priority: "info".into(),
        stderr_priority: "err".into(),
        journal_socket: "/run/systemd/journal/socket".into(),
        syslog_socket: "/dev/log".into(),
        syslog_format: "rfc3164".into(),
        drain_timeout: "2s".into(),
        ready: "spawn".into(),
        ..Args::default()
    }
}

enum Opt {
    Flag(fn(&mut Args)),
    Value(fn(&mut Args, &str)),
    /// Sets the value, or `None` where clap's value parser would refuse it.
    Checked(fn(&mut Args, &str) -> Option<()>),
}

/// The fast path's table of long options (without `--verbose` and `--quiet`, read apart). An
/// option missing here still works: the fast path declines and clap reads it.
fn option(name: &str) -> Option<Opt> {
    use Opt::{Checked, Flag, Value};
    fn one_of(v: &str, allowed: &[&str]) -> Option<String> {
        allowed.contains(&v).then(|| v.to_string())
    }
    fn number<T: std::str::FromStr>(v: &str) -> Option<T> {
        v.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| v.parse().ok())?
    }
    Some(match name {
        "stop-signal" => Value(|a, v| a.stop_signal = Some(v.into())),
        "stop-on" => Value(|a, v| a.stop_on = v.into()),
        "reload-on" => Value(|a, v| a.reload_on = v.into()),
        "rewrite" => Value(|a, v| a.rewrite.push(v.into())),
        "kill-after" => Value(|a, v| a.kill_after = Some(v.into())),
        "stop-schedule" => Value(|a, v| a.stop_schedule = Some(v.into())),
        "single-child" => Flag(|a| a.single_child = true),
        "no-guard" => Flag(|a| a.no_guard = true),
        "exit-code-on-signal" => Flag(|a| a.exit_code_on_signal = true),
        "success-exit" => Checked(|a, v| {
            a.success_exit.push(number(v)?);
            Some(())
        }),
        "pdeathsig" => Value(|a, v| a.pdeathsig = v.into()),
        "no-subreaper" => Flag(|a| a.no_subreaper = true),
        "restart-on" => Value(|a, v| a.restart_on = Some(v.into())),
        "restart-mode" => Checked(|a, v| {
            a.restart_mode = Some(one_of(v, &["stop-start", "overlap"])?);
            Some(())
        }),
        "listen" => Value(|a, v| a.listen.push(v.into())),
        "on-start" => Value(|a, v| a.on_start = Some(v.into())),
        "on-restart" => Value(|a, v| a.on_restart = Some(v.into())),
        "on-exit" => Value(|a, v| a.on_exit = Some(v.into())),
        "hook-timeout" => Value(|a, v| a.hook_timeout = Some(v.into())),
        "hooks-as-caller" => Flag(|a| a.hooks_as_caller = true),
        "keep-terminal" => Flag(|a| a.keep_terminal = true),
        "leftover-grace" => Value(|a, v| a.leftover_grace = Some(v.into())),
        "log" => Checked(|a, v| {
            a.log = one_of(v, &["auto", "journald", "syslog", "inherit"])?;
            Some(())
        }),
        "tag" => Value(|a, v| a.tag = Some(v.into())),
        "facility" => Value(|a, v| a.facility = v.into()),
        "stdout-priority" => Value(|a, v| a.stdout_priority = v.into()),
        "stderr-priority" => Value(|a, v| a.stderr_priority = v.into()),
        "no-level-prefix" => Flag(|a| a.no_level_prefix = true),
        "journal-socket" => Value(|a, v| a.journal_socket = v.into()),
        "journal-protocol" => Checked(|a, v| {
            a.journal_protocol = Some(one_of(v, &["stream", "native"])?);
            Some(())
        }),
        "syslog-socket" => Value(|a, v| a.syslog_socket = v.into()),
        "syslog-format" => Checked(|a, v| {
            a.syslog_format = one_of(v, &["rfc3164", "rfc5424"])?;
            Some(())
        }),
        "max-line" => Checked(|a, v| {
            a.max_line = Some(number(v)?);
            Some(())
        }),
        "stdout-pty" => Flag(|a| a.stdout_pty = true),
        "drain-timeout" => Value(|a, v| a.drain_timeout = v.into()),
        "ready" => Value(|a, v| a.ready = v.into()),
        "ready-timeout" => Value(|a, v| a.ready_timeout = Some(v.into())),
        "notify-fd" => Checked(|a, v| {
            a.notify_fd = Some(number(v)?);
            Some(())
        }),
        "upstart-expect-stop" => Flag(|a| a.upstart_expect_stop = true),
        "ready-file" => Value(|a, v| a.ready_file = Some(v.into())),
        "user" => Value(|a, v| a.user = Some(v.into())),
        "no-new-privs" => Flag(|a| a.no_new_privs = true),
        _ => return None,
    })
}

/// Refuses a word that looks like an option but is none, before PROGRAM.
///
/// PROGRAM may start with `-` (clap's `allow_hyphen_values` on it), so without this check a
/// misspelled option (`--stop-sginal INT`) became the program to run: "cannot exec", exit 127,
/// and an init answers that with a respawn loop (#13). The walk follows clap's own rules, read
/// from the clap definition so that a new option needs nothing here: `--` ends the options; a
/// long option may carry `=VALUE` or take the next word as its value; a cluster of short flags
/// (`-vv`) may end in one that takes a value; the first other word is PROGRAM, and everything
/// after it belongs to PROGRAM (`sigshim -v app --flag`). A PROGRAM whose name starts with `-`
/// goes after `--`. Values themselves are left to clap and `validate`.
fn unknown_options(cmd: &clap::Command, args: &[OsString]) -> Result<(), String> {
    let takes_value = |a: &clap::Arg| a.get_action().takes_values();
    let mut words = args.iter().skip(1).map(|w| w.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--" {
            return Ok(());
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline_value) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            let found = cmd.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            });
            match found {
                Some(a) if takes_value(a) && !inline_value => {
                    words.next();
                }
                Some(_) => {}
                None => return Err(unknown(cmd, &word)),
            }
        } else if let Some(shorts) = word.strip_prefix('-') {
            if shorts.is_empty() {
                return Err("'-' is not an option; a PROGRAM named '-' goes after --".into());
            }
            for (i, c) in shorts.char_indices() {
                let found = cmd.get_arguments().find(|a| {
                    a.get_short() == Some(c)
                        || a.get_all_short_aliases().is_some_and(|al| al.contains(&c))
                });
                match found {
                    // `-xVALUE`, or `-x VALUE` when the flag ends the cluster.
                    Some(a) if takes_value(a) => {
                        if i + c.len_utf8() == shorts.len() {
                            words.next();
                        }
                        break;
                    }
                    Some(_) => {}
                    None if shorts.chars().count() == 1 => return Err(unknown(cmd, &word)),
                    None => {
                        return Err(format!("unknown option '-{c}' in '{word}'"));
                    }
                }
            }
        } else {
            // PROGRAM: the options end here.
            return Ok(());
        }
    }
    Ok(())
}

/// "unknown option 'WORD'", with clap's suggestion of a close option name if it has one (its
/// Jaro-similarity rule, the same as for any other misspelling clap reports).
fn unknown(cmd: &clap::Command, word: &str) -> String {
    let option = word.split_once('=').map_or(word, |(name, _)| name);
    // Parsed alone, with PROGRAM not taking hyphen values, the word is clap's unknown argument.
    let mut strict = cmd.clone();
    for id in cmd.get_positionals().map(|a| a.get_id().clone()) {
        strict = strict.mut_arg(id, |a| a.allow_hyphen_values(false).required(false));
    }
    let probe = strict.try_get_matches_from(["sigshim", option]);
    let suggestion =
        probe
            .err()
            .and_then(|e| match e.get(clap::error::ContextKind::SuggestedArg) {
                Some(clap::error::ContextValue::String(s)) => Some(s.clone()),
                _ => None,
            });
    match suggestion {
        Some(s) => format!("unknown option '{option}'; did you mean '{s}'?"),
        None => {
            format!("unknown option '{option}'; a PROGRAM whose name starts with '-' goes after --")
        }
    }
}

/// What a duration of 0 means, option by option (#13). `parse_duration` accepts `0`; here the
/// options where 0 has no honest reading are refused:
/// - `--kill-after 0` and a 0 wait in `--stop-schedule`: systemd (`TimeoutStopSec=0`) and
///   timeout(1) read 0 as "no deadline", Kubernetes (`terminationGracePeriodSeconds: 0`) as
///   "kill at once"; sigshim would do the latter, SIGKILL right after the stop signal, which
///   defeats the translation. Leave the option out to wait as long as the app takes.
/// - `--ready-timeout 0`: no app is ready in no time; leave it out to wait forever.
///
/// Accepted, with the meaning the manual gives: `--leftover-grace 0` (processes the app leaves
/// behind get SIGKILL at once) and `--drain-timeout 0` (what the pipes already hold is still
/// sent, but sigshim does not wait for writers that keep them open).
fn refuse_zero_waits(c: Config) -> Result<Config, String> {
    let zero_step = c
        .signals
        .stop_schedule
        .as_ref()
        .is_some_and(|s| s.steps().iter().any(|s| s.wait == Some(Duration::ZERO)));
    for (option, zero) in [
        ("--kill-after", c.signals.kill_after == Some(Duration::ZERO)),
        ("--stop-schedule", zero_step),
    ] {
        if zero {
            return Err(format!(
                "{option}: a wait of 0 leaves the app no time to stop before the next signal; \
                 give it time (e.g. 100ms), or leave {option} out to wait as long as the app \
                 takes"
            ));
        }
    }
    if c.hooks.timeout == Duration::ZERO {
        return Err(
            "--hook-timeout: 0 leaves a hook no time to run; give it time (e.g. 5s)".into(),
        );
    }
    if c.ready_timeout == Some(Duration::ZERO) {
        return Err(
            "--ready-timeout: 0 leaves the app no time to become ready; give it time \
                    (e.g. 30s), or leave --ready-timeout out to wait as long as it takes"
                .into(),
        );
    }
    Ok(c)
}

fn validate(a: Args) -> Result<Config, String> {
    let sig = |what: &str, s: &str| parse_signal(s).map_err(|e| format!("{what}: {e}"));
    let duration = |what: &str, d: &str| parse_duration(d).map_err(|e| format!("{what}: {e}"));
    let stop_on = a
        .stop_on
        .split(',')
        .map(|s| sig("--stop-on", s))
        .collect::<Result<Vec<_>, _>>()?;
    let reload_on = if a.reload_on.trim().eq_ignore_ascii_case("none") {
        Vec::new()
    } else {
        a.reload_on
            .split(',')
            .map(|s| sig("--reload-on", s))
            .collect::<Result<Vec<_>, _>>()?
    };
    let rewrites = a
        .rewrite
        .iter()
        .map(|r| parse_rewrite(r).map_err(|e| format!("--rewrite: {e}")))
        .collect::<Result<Vec<Rewrite>, _>>()?;
    let signals = Options {
        stop_on,
        reload_on,
        stop_signal: a
            .stop_signal
            .as_deref()
            .map(|s| sig("--stop-signal", s))
            .transpose()?,
        stop_schedule: a
            .stop_schedule
            .as_deref()
            .map(Schedule::parse)
            .transpose()?,
        kill_after: a
            .kill_after
            .as_deref()
            .map(|k| duration("--kill-after", k))
            .transpose()?,
        rewrites,
        pdeathsig: sig("--pdeathsig", &a.pdeathsig)?,
        leftover_grace: a
            .leftover_grace
            .as_deref()
            .map(|g| duration("--leftover-grace", g))
            .transpose()?,
        guard: !a.no_guard,
        target: if a.single_child {
            Target::Child
        } else {
            Target::Group
        },
        restart_on: a
            .restart_on
            .as_deref()
            .map(|s| sig("--restart-on", s))
            .transpose()?,
    };
    // Combining is checked here too, so a bad combination is a usage error before anything
    // runs (set-up builds the same plan again with the init's default deadline).
    crate::signals::Plan::new(&signals, None)?;
    if a.command[0].is_empty() {
        return Err("PROGRAM is empty".into());
    }
    if a.on_restart.is_some() && signals.restart_on.is_none() {
        return Err("--on-restart: restarts need --restart-on SIG".into());
    }
    let restart_mode = match (&signals.restart_on, a.restart_mode.as_deref()) {
        (None, Some(_)) => {
            return Err("--restart-mode: restarts need --restart-on SIG".into());
        }
        (None, None) => None,
        (Some(_), Some("overlap")) => Some(crate::machine::RestartMode::Overlap),
        (Some(_), _) => Some(crate::machine::RestartMode::StopStart),
    };
    let log = validate_log(&a)?;
    let ready = crate::notify::parse_mode(&a.ready)?;
    if restart_mode == Some(crate::machine::RestartMode::Overlap)
        && ready == crate::notify::Mode::Spawn
    {
        return Err(
            "--restart-mode overlap: with --ready spawn the running app would be stopped the moment the new one is exec'd; say how the new one shows it serves (--ready notify, log:, fd: or file:) or give it a grace period (--ready alive:2s)"
                .into(),
        );
    }
    if restart_mode == Some(crate::machine::RestartMode::Overlap)
        && matches!(ready, crate::notify::Mode::Tcp(..))
    {
        return Err(
            "--restart-mode overlap: --ready tcp: cannot tell the new app from the old one (or from sockets sigshim holds); use notify, log:, fd: or file:"
                .into(),
        );
    }
    if a.stdout_pty && log.mode == LogMode::Inherit && !matches!(ready, crate::notify::Mode::Log(_))
    {
        return Err(
            "--stdout-pty: with --log inherit the app writes to sigshim's own stdout; capture it (--log journald, syslog or auto, or --ready log:)"
                .into(),
        );
    }
    let ready_timeout = a
        .ready_timeout
        .as_deref()
        .map(|d| duration("--ready-timeout", d))
        .transpose()?;
    let held = a
        .listen
        .iter()
        .map(|s| crate::listen::parse_spec(s))
        .collect::<Result<Vec<_>, _>>()?;
    if !held.is_empty() && matches!(ready, crate::notify::Mode::Tcp(..)) {
        return Err(
            "--ready tcp: with --listen: the held socket accepts connections before the app does; use notify, log:, fd: or file:"
                .into(),
        );
    }
    // systemd's socket-activation descriptors stay where the app expects them (inherit.rs),
    // and the held ones follow them.
    let inherited = crate::inherit::listen_fds_here();
    let listen = match (&inherited, held.len() as i32) {
        (_, 0) => inherited.clone(),
        (Some(r), n) => Some(r.start..r.end + n),
        (None, n) => Some(3..3 + n),
    };
    if let crate::notify::Mode::Fd(n) = ready {
        crate::inherit::check_fd(&format!("--ready fd:{n}"), n, listen.clone())?;
    }
    if let Some(fd) = a.notify_fd {
        crate::inherit::check_fd("--notify-fd", fd, inherited)?;
        // SAFETY: fcntl F_GETFD only inspects the descriptor table.
        if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(format!(
                "--notify-fd: {fd} is not an open descriptor of sigshim (3 or above)"
            ));
        }
    }
    Ok(Config {
        command: a.command,
        signals,
        subreaper: !a.no_subreaper,
        keep_terminal: a.keep_terminal,
        stdout_pty: a.stdout_pty,
        restart_mode,
        listen: held,
        hooks: Hooks {
            start: a.on_start.clone(),
            restart: a.on_restart.clone(),
            exit: a.on_exit.clone(),
            timeout: match a.hook_timeout.as_deref() {
                Some(d) => duration("--hook-timeout", d)?,
                None => Duration::from_secs(10),
            },
            as_caller: a.hooks_as_caller,
        },
        policy: Policy {
            code_on_signal: a.exit_code_on_signal,
            success: a.success_exit.iter().map(|&n| i32::from(n)).collect(),
        },
        log,
        ready,
        ready_timeout,
        delivery: crate::notify::Delivery {
            notify_fd: a.notify_fd,
            ready_file: a.ready_file.clone(),
            upstart_expect_stop: a.upstart_expect_stop,
        },
        user: a.user.clone(),
        no_new_privs: a.no_new_privs,
        verbosity: match (a.quiet, a.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::Debug,
        },
    })
}

fn validate_log(a: &Args) -> Result<Log, String> {
    let priority = |what: &str, s: &str| {
        parse_priority(s).ok_or_else(|| {
            format!("{what}: unknown priority '{s}' (emerg, alert, crit, err, warning, notice, info, debug or 0-7)")
        })
    };
    let tag = match &a.tag {
        Some(t) => t.as_bytes().to_vec(),
        None => {
            let prog = a.command[0].as_bytes();
            let base = prog.rsplit(|&b| b == b'/').next().unwrap_or(prog);
            base.to_vec()
        }
    };
    if tag.is_empty() {
        return Err("--tag: the tag is empty".into());
    }
    if tag.contains(&0) {
        return Err("--tag: the tag contains a NUL byte".into());
    }
    let max_line = match a.max_line {
        Some(0) => return Err("--max-line: must be at least 1 byte".into()),
        Some(n) if n > 64 * 1024 * 1024 => {
            return Err("--max-line: at most 64 MiB".into());
        }
        other => other,
    };
    let journal_stream = a.journal_protocol.as_deref().map(|p| p == "stream");
    if journal_stream == Some(true) && max_line.is_some() {
        return Err(
            "--max-line: with --journal-protocol stream, journald cuts lines at its own LineMax; use --journal-protocol native for records cut at --max-line".into(),
        );
    }
    Ok(Log {
        mode: match a.log.as_str() {
            "journald" => LogMode::Journald,
            "syslog" => LogMode::Syslog,
            "inherit" => LogMode::Inherit,
            _ => LogMode::Auto,
        },
        journal_socket: a.journal_socket.clone(),
        journal_stream,
        syslog_socket: a.syslog_socket.clone(),
        syslog_format: if a.syslog_format == "rfc5424" {
            Format::Rfc5424
        } else {
            Format::Rfc3164
        },
        tag,
        facility: parse_facility(&a.facility).ok_or_else(|| {
            format!(
                "--facility: unknown facility '{}' (daemon, user, local0..local7, ...)",
                a.facility
            )
        })?,
        stdout_priority: priority("--stdout-priority", &a.stdout_priority)?,
        stderr_priority: priority("--stderr-priority", &a.stderr_priority)?,
        level_prefix: !a.no_level_prefix,
        max_line,
        drain_timeout: parse_duration(&a.drain_timeout)
            .map_err(|e| format!("--drain-timeout: {e}"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, (String, i32)> {
        let it = std::iter::once("sigshim")
            .chain(args.iter().copied())
            .map(OsString::from);
        match parse(it) {
            Parsed::Run(c) => Ok(*c),
            Parsed::Print { text, code } => Err((text, code)),
        }
    }

    /// What clap makes of `words`, as `parse` asks it (None: a usage error, help or version).
    fn by_clap(words: &[OsString]) -> Option<Args> {
        let mut cmd = command();
        cmd.build();
        unknown_options(&cmd, words).ok()?;
        let m = cmd.try_get_matches_from_mut(words.to_vec()).ok()?;
        <Args as clap::FromArgMatches>::from_arg_matches(&m).ok()
    }

    /// Whether the fast path took `words`; panics if it read them otherwise than clap does.
    fn quick_agrees(words: &[&str]) -> bool {
        let words: Vec<OsString> = std::iter::once("sigshim")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect();
        let Some(fast) = quick(&words) else {
            return false;
        };
        let slow = by_clap(&words)
            .unwrap_or_else(|| panic!("the fast path took {words:?}, which clap refuses"));
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{words:?}");
        true
    }

    #[test]
    fn the_fast_path_reads_service_command_lines_as_clap_does() {
        for words in [
            &["app"][..],
            &["--log", "inherit", "--", "/bin/true"],
            &["--", "app", "--stop-signal", "INT"],
            &["-v", "app", "--flag", "-v"],
            &[
                "--upstart-expect-stop",
                "--stop-signal",
                "INT",
                "--kill-after",
                "4s",
                "graceful",
            ],
            &[
                "--ready",
                "log:^ready",
                "--rewrite",
                "HUP:USR2",
                "--rewrite=USR1:ignore",
                "a",
            ],
            &[
                "--notify-fd",
                "3",
                "--ready",
                "tcp:127.0.0.1:8080",
                "--",
                "graceful",
            ],
            &[
                "-vv",
                "--tag=x",
                "--success-exit",
                "3",
                "--success-exit",
                "04",
                "app",
            ],
            &[
                "--log",
                "syslog",
                "--log",
                "inherit",
                "--syslog-format=rfc5424",
                "app",
            ],
            &["--max-line", "100", "--no-guard", "--no-guard", "-q", "app"],
            &[
                "--verbose",
                "--stop-schedule",
                "INT/20s/TERM/5s/KILL",
                "app",
            ],
            &[
                "--listen",
                "tcp::8080,name=web",
                "--restart-on",
                "USR1",
                "app",
            ],
            &["--restart-mode", "overlap", "--on-start", "echo hi", "app"],
        ] {
            assert!(quick_agrees(words), "the fast path declined {words:?}");
        }
    }

    #[test]
    fn the_fast_path_leaves_the_rest_to_clap() {
        for words in [
            &[][..],
            &["--"],
            &["--help"],
            &["-h", "app"],
            &["--version"],
            &["--stop-sginal", "INT", "app"],
            &["--log", "nonsense", "app"],
            &["--kill-after", "-1s", "app"],
            &["--tag=", "app"],
            &["--tag", "-x", "app"],
            &["-vq", "app"],
            &["-v", "-v", "app"],
            &["--kill-after", "1s", "--stop-schedule", "INT/1s", "app"],
            &["--stop-signal", "INT", "--stop-schedule", "INT/1s", "app"],
            &["--no-guard=yes", "app"],
            &["--success-exit", "256", "app"],
            &["--success-exit", "+3", "app"],
            &["-", "app"],
            &["--log"],
        ] {
            assert!(!quick_agrees(words), "the fast path took {words:?}");
        }
    }

    #[test]
    fn the_fast_path_knows_options_as_clap_does() {
        for arg in command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let takes = arg.get_action().takes_values();
            match option(long) {
                Some(Opt::Flag(_)) => assert!(!takes, "--{long}"),
                Some(Opt::Value(_) | Opt::Checked(_)) => assert!(takes, "--{long}"),
                // Read apart (verbose, quiet), or left to clap.
                None => {}
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_never_reads_words_otherwise_than_clap(
            picks in proptest::collection::vec(0..WORDS.len(), 0..7),
            dashes in proptest::bool::ANY,
            program in 0..3usize,
        ) {
            let mut words: Vec<&str> = picks.iter().flat_map(|&i| WORDS[i].iter().copied()).collect();
            if dashes {
                words.push("--");
            }
            let programs: [&[&str]; 3] = [&["app", "--flag"], &["-app"], &[]];
            words.extend(programs[program]);
            quick_agrees(&words);
        }
    }

    const WORDS: &[&[&str]] = &[
        &["--stop-signal", "INT"],
        &["--stop-signal=TERM"],
        &["--stop-on", "TERM"],
        &["--reload-on", "none"],
        &["--rewrite", "HUP:USR2"],
        &["--kill-after", "4s"],
        &["--stop-schedule", "INT/1s/KILL"],
        &["--single-child"],
        &["--no-guard"],
        &["--exit-code-on-signal"],
        &["--success-exit", "3"],
        &["--success-exit", "300"],
        &["--pdeathsig", "TERM"],
        &["--no-subreaper"],
        &["--restart-on", "USR1"],
        &["--restart-mode", "stop-start"],
        &["--restart-mode", "bogus"],
        &["--listen", "tcp::8080"],
        &["--on-start", "x"],
        &["--on-restart=y"],
        &["--on-exit", "z"],
        &["--hook-timeout", "5s"],
        &["--hooks-as-caller"],
        &["--keep-terminal"],
        &["--leftover-grace", "0"],
        &["--log", "syslog"],
        &["--log=journald"],
        &["--log", "Syslog"],
        &["--tag", "t"],
        &["--tag", "-x"],
        &["--facility", "local0"],
        &["--stdout-priority", "debug"],
        &["--stderr-priority", "7"],
        &["--no-level-prefix"],
        &["--journal-socket", "/tmp/j"],
        &["--journal-protocol", "native"],
        &["--journal-protocol=stream"],
        &["--journal-protocol", "datagram"],
        &["--syslog-socket=/tmp/s"],
        &["--syslog-format", "rfc5424"],
        &["--max-line", "100"],
        &["--max-line", "-1"],
        &["--stdout-pty"],
        &["--drain-timeout", "1s"],
        &["--ready", "notify"],
        &["--ready-timeout", "3s"],
        &["--notify-fd", "3"],
        &["--upstart-expect-stop"],
        &["--ready-file", "/tmp/r"],
        &["--user", "nobody"],
        &["--no-new-privs"],
        &["-v"],
        &["-vvv"],
        &["-q"],
        &["--verbose"],
        &["--quiet"],
        &["--no-guard=1"],
        &["--bogus"],
        &["--help"],
        &["-V"],
        &["--"],
    ];

    #[test]
    fn options_stop_at_program() {
        let c = run(&["-v", "app", "--flag", "-v"]).unwrap();
        assert_eq!(c.command, ["app", "--flag", "-v"]);
        assert_eq!(c.verbosity, Verbosity::Verbose);
        let c = run(&["--", "app", "--stop-signal", "INT"]).unwrap();
        assert_eq!(c.command, ["app", "--stop-signal", "INT"]);
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            &["--stop-signal", "NOPE", "app"][..],
            &["--rewrite", "KILL:INT", "app"],
            &["--kill-after", "-1s", "app"],
            &["--kill-after", "abc", "app"],
            &["--stop-schedule", "INT/1s", "--kill-after", "1s", "app"],
            &["--success-exit", "256", "app"],
            &["--log", "nonsense", "app"],
            &["--facility", "nonsense", "app"],
            &["--max-line", "0", "app"],
            &[],
        ] {
            let (text, code) = run(args).expect_err("accepted");
            assert_eq!(code, 2, "{args:?}");
            assert!(text.starts_with("sigshim: usage: "), "{text}");
            assert!(text.ends_with(" (see sigshim --help)\n"), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
        }
    }

    #[test]
    fn unknown_options_are_usage_errors() {
        for (args, names, suggests) in [
            (
                &["--stop-sginal", "INT", "--", "app"][..],
                "'--stop-sginal'",
                Some("'--stop-signal'"),
            ),
            (
                &["--stop-sginal=INT", "app"],
                "'--stop-sginal'",
                Some("'--stop-signal'"),
            ),
            (
                &["-v", "--kil-after", "4s", "app"],
                "'--kil-after'",
                Some("'--kill-after'"),
            ),
            (
                &["--tag", "x", "--no-new-priv", "app"],
                "'--no-new-priv'",
                Some("'--no-new-privs'"),
            ),
            (&["-x", "app"], "'-x'", None),
            (&["-vx", "app"], "'-x' in '-vx'", None),
            (&["-", "app"], "'-'", None),
            (&["--zzzzzzzz", "app"], "'--zzzzzzzz'", None),
        ] {
            let (text, code) = run(args).expect_err("accepted");
            assert_eq!(code, 2, "{args:?}");
            assert!(text.starts_with("sigshim: usage: "), "{text}");
            assert!(text.ends_with(" (see sigshim --help)\n"), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(text.contains(names), "{args:?}: {text}");
            match suggests {
                Some(s) => assert!(text.contains(&format!("did you mean {s}?")), "{text}"),
                None => assert!(!text.contains("did you mean"), "{text}"),
            }
        }
    }

    #[test]
    fn hyphen_words_that_are_not_options_here() {
        // Values of options, and everything from PROGRAM on, are not checked as options.
        let c = run(&["--tag", "-x", "app", "--stop-sginal", "-"]).unwrap();
        assert_eq!(c.command, ["app", "--stop-sginal", "-"]);
        assert_eq!(c.log.tag, b"-x");
        let c = run(&["-v", "--", "-app", "--no-such"]).unwrap();
        assert_eq!(c.command, ["-app", "--no-such"]);
        let c = run(&["--stop-signal=INT", "-vv", "app"]).unwrap();
        assert_eq!(c.verbosity, Verbosity::Debug);
        // A value that starts with '-' is the option's, and validated as such.
        let (text, _) = run(&["--kill-after", "-1s", "app"]).expect_err("accepted");
        assert!(text.contains("'-1s'"), "{text}");
    }

    #[test]
    fn zero_durations() {
        for (args, names) in [
            (
                &["--kill-after", "0", "app"][..],
                "--kill-after: a wait of 0",
            ),
            (&["--kill-after", "0ms", "app"], "--kill-after: a wait of 0"),
            (
                &["--stop-schedule", "INT/0/KILL", "app"],
                "--stop-schedule: a wait of 0",
            ),
            (
                &["--stop-schedule", "INT/5s/TERM/0s", "app"],
                "--stop-schedule: a wait of 0",
            ),
            (
                &["--ready-timeout", "0", "app"],
                "--ready-timeout: 0 leaves",
            ),
        ] {
            let (text, code) = run(args).expect_err("accepted");
            assert_eq!(code, 2, "{args:?}");
            assert!(
                text.starts_with(&format!("sigshim: usage: {names}")),
                "{text}"
            );
            assert_eq!(text.lines().count(), 1, "{text}");
        }
        let c = run(&["--leftover-grace", "0", "--drain-timeout", "0", "app"]).unwrap();
        assert_eq!(c.signals.leftover_grace, Some(Duration::ZERO));
        assert_eq!(c.log.drain_timeout, Duration::ZERO);
        // The smallest non-zero deadline is a deadline.
        let c = run(&["--kill-after", "1ms", "app"]).unwrap();
        assert_eq!(c.signals.kill_after, Some(Duration::from_millis(1)));
        let c = run(&["--kill-after", "1m30s", "app"]).unwrap();
        assert_eq!(c.signals.kill_after, Some(Duration::from_secs(90)));
    }

    #[test]
    fn guard_follows_translation() {
        let guard = |args: &[&str]| {
            let c = run(args).unwrap();
            crate::signals::Plan::new(&c.signals, None)
                .unwrap()
                .guard()
                .to_vec()
        };
        use crate::signals::Signal;
        assert_eq!(guard(&["--stop-signal", "INT", "app"]), [Signal::TERM]);
        assert!(guard(&["--stop-signal", "INT", "--no-guard", "app"]).is_empty());
        assert!(guard(&["app"]).is_empty());
        assert_eq!(guard(&["--stop-signal", "TERM", "app"]), [Signal::INT]);
        assert!(guard(&["--stop-on", "TERM", "app"]).is_empty());
        // A schedule step or the parent-death signal is delivered, so never guarded.
        assert!(guard(&["--stop-schedule", "INT/20s/TERM/5s/KILL", "app"]).is_empty());
        assert!(guard(&["--stop-signal", "INT", "--pdeathsig", "TERM", "app"]).is_empty());
    }
}
