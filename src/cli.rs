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

const AFTER_HELP: &str = "\
Exit status: the child's own code, or its death signal re-raised; 127 PROGRAM not found;
126 not executable; 125 sigshim itself failed; 2 usage error. See --help for more.";

const AFTER_LONG_HELP: &str = "\
Signals are accepted by name or number, with or without SIG, in any case: INT, SIGINT, 2, RTMIN+3.
Durations: 500ms, 4s, 1.5s, 2m, 1h.

Exit status:
  N        the child exited with N (after --success-exit mapping)
  (signal) the child died of a signal: sigshim dies of the same signal
           (or exits 128+n with --exit-code-on-signal, or as PID 1 of a namespace)
  127      PROGRAM was not found
  126      PROGRAM was found but could not be executed
  125      sigshim itself failed (including a failed --user drop and --ready-timeout)
  2        usage error

Examples, one per init:
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

#[derive(Parser, Debug)]
#[command(
    name = "sigshim",
    version,
    about = "Run a service as a direct child: translate its stop signal, enforce a kill deadline, \
             and hand the init the child's own exit outcome.",
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP,
    // Everything after PROGRAM belongs to PROGRAM.
    trailing_var_arg = true,
    // A later occurrence of an option replaces an earlier one (wrapper scripts append).
    args_override_self = true,
)]
struct Args {
    /// Signal the child receives when the init asks for a stop (TERM or INT arrives). Without
    /// it, stop requests reach the child as they are (plain forwarding).
    #[arg(long, value_name = "SIG")]
    stop_signal: Option<String>,

    /// Comma-separated signals that mean "stop" and are translated to --stop-signal.
    #[arg(long, value_name = "SIGS", default_value = "TERM,INT")]
    stop_on: String,

    /// Comma-separated signals that mean "reload" (systemd's ReloadSignal=), or "none". They
    /// reach the app as usual (after --rewrite); under systemd, when the app does not speak
    /// sd_notify itself (--ready other than notify), sigshim also reports each one as a reload:
    /// RELOADING=1 before it delivers the signal, READY=1 once delivered, so `systemctl
    /// reload` of a Type=notify-reload unit completes.
    #[arg(long, value_name = "SIGS", default_value = "HUP")]
    reload_on: String,

    /// Deliver TO when FROM arrives (repeatable); TO may be "ignore". Example: HUP:USR2.
    #[arg(long, value_name = "FROM:TO", action = ArgAction::Append)]
    rewrite: Vec<String>,

    /// After the stop signal, SIGKILL the child's process group and every descendant if the
    /// child has not exited within DURATION.
    #[arg(long, value_name = "DURATION", conflicts_with = "stop_schedule")]
    kill_after: Option<String>,

    /// Multi-step stop, start-stop-daemon style: SIG/DURATION/SIG/.../SIG, e.g.
    /// INT/20s/TERM/5s/KILL. Replaces --stop-signal and --kill-after.
    #[arg(long, value_name = "SCHED", conflicts_with = "stop_signal")]
    stop_schedule: Option<String>,

    /// Send signals to the child process only, not to its whole process group.
    #[arg(long)]
    single_child: bool,

    /// Do not set the signals that are translated away (TERM under --stop-signal INT) to
    /// ignored in the child. The guard protects the app when the init signals every process
    /// directly (systemd KillMode=control-group).
    #[arg(long)]
    no_guard: bool,

    /// Report a child killed by signal n as exit code 128+n instead of dying of the signal.
    #[arg(long)]
    exit_code_on_signal: bool,

    /// Map this child exit code to 0 (repeatable).
    #[arg(long, value_name = "N", action = ArgAction::Append,
          value_parser = clap::value_parser!(u8))]
    success_exit: Vec<u8>,

    /// Signal the child receives if sigshim itself dies.
    #[arg(long, value_name = "SIG", default_value = "KILL")]
    pdeathsig: String,

    /// Do not become a child subreaper (orphaned descendants then go to PID 1, not sigshim).
    #[arg(long)]
    no_subreaper: bool,

    /// How long processes the app leaves behind when it exits get between SIGTERM and SIGKILL
    /// (default: the kill deadline, or 2s).
    #[arg(long, value_name = "DURATION")]
    leftover_grace: Option<String>,

    /// Where the app's stdout and stderr go: auto, journald, syslog, or inherit (no capture).
    /// auto captures only where nobody else reads the output (sigshim's stdout and stderr are
    /// each systemd's journal stream for this service, or /dev/null), to the journal if its
    /// socket exists, else to syslog if /dev/log exists; a terminal, a pipe or a file is left
    /// to the app. -v says what it chose and why.
    #[arg(long, value_name = "MODE", default_value = "auto",
          value_parser = ["auto", "journald", "syslog", "inherit"])]
    log: String,

    /// Identifier of the app's log records (default: PROGRAM's basename).
    #[arg(long, value_name = "TAG")]
    tag: Option<OsString>,

    /// Syslog facility of the records (daemon, local0..local7, user, ...).
    #[arg(long, value_name = "NAME", default_value = "daemon")]
    facility: String,

    /// Priority of stdout lines (emerg, alert, crit, err, warning, notice, info, debug, or 0-7).
    #[arg(long, value_name = "PRIO", default_value = "info")]
    stdout_priority: String,

    /// Priority of stderr lines.
    #[arg(long, value_name = "PRIO", default_value = "err")]
    stderr_priority: String,

    /// Do not interpret a leading <N> (sd-daemon(3)) as the line's priority.
    #[arg(long)]
    no_level_prefix: bool,

    /// journald's native socket.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/systemd/journal/socket"
    )]
    journal_socket: PathBuf,

    /// The syslog socket.
    #[arg(long, value_name = "PATH", default_value = "/dev/log")]
    syslog_socket: PathBuf,

    /// Syslog record format.
    #[arg(long, value_name = "FORMAT", default_value = "rfc3164",
          value_parser = ["rfc3164", "rfc5424"])]
    syslog_format: String,

    /// Longest record in bytes; longer lines are split into several records, never cut
    /// (default: 256 KiB for journald, 8000 for syslog, which rsyslog's 8 KiB limit fits).
    #[arg(long, value_name = "BYTES")]
    max_line: Option<usize>,

    /// After the app exits, how long to keep reading output that something else still writes.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    drain_timeout: String,

    /// When the app counts as ready: spawn (right after exec), notify (it sends READY=1 to the
    /// NOTIFY_SOCKET sigshim gives it), log:REGEX (an output line matches), tcp:HOST:PORT (a
    /// connection succeeds), file:PATH (the file exists), fd:N (it writes a newline on fd N).
    #[arg(long, value_name = "MODE", default_value = "spawn")]
    ready: String,

    /// If the app is not ready within DURATION, stop it and exit 125.
    #[arg(long, value_name = "DURATION")]
    ready_timeout: Option<String>,

    /// Once ready, write a newline to this descriptor and close it (s6 notification-fd).
    #[arg(long, value_name = "N")]
    notify_fd: Option<i32>,

    /// Once ready, stop sigshim itself with SIGSTOP once (for Upstart's `expect stop`).
    #[arg(long)]
    upstart_expect_stop: bool,

    /// Once ready, create this file; remove it at exit.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,

    /// Run the app as USER (name or uid), with GROUP as its only group if given, else USER's
    /// primary group and supplementary groups. sigshim itself keeps running as the caller.
    #[arg(long, value_name = "USER[:GROUP]")]
    user: Option<String>,

    /// Set no_new_privs for the app: setuid programs and file capabilities no longer raise
    /// its privileges.
    #[arg(long)]
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

/// Everything the rest of sigshim needs, validated: plain data. What depends on the
/// environment (which init is above, whether the log sockets exist) is decided at set-up.
#[derive(Debug)]
pub struct Config {
    pub command: Vec<OsString>,
    /// Combined into one plan at set-up (`signals::Plan`), once the init above is known.
    pub signals: Options,
    pub subreaper: bool,
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
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() {
                crate::exit::USAGE
            } else {
                0
            };
            let text = if e.kind() == clap::error::ErrorKind::MissingRequiredArgument {
                "sigshim: usage: missing PROGRAM (sigshim [OPTIONS] -- PROGRAM [ARGS...])\n"
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
    match validate(args) {
        Ok(c) => Parsed::Run(Box::new(c)),
        Err(msg) => Parsed::Print {
            text: format!("sigshim: usage: {}\n", crate::diag::one_line(&msg)),
            code: crate::exit::USAGE,
        },
    }
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
    };
    // Combining is checked here too, so a bad combination is a usage error before anything
    // runs (set-up builds the same plan again with the init's default deadline).
    crate::signals::Plan::new(&signals, None)?;
    if a.command[0].is_empty() {
        return Err("PROGRAM is empty".into());
    }
    let log = validate_log(&a)?;
    let ready = crate::notify::parse_mode(&a.ready)?;
    let ready_timeout = a
        .ready_timeout
        .as_deref()
        .map(|d| duration("--ready-timeout", d))
        .transpose()?;
    // systemd's socket-activation descriptors stay where the app expects them (inherit.rs).
    let listen = crate::inherit::listen_fds_here();
    if let crate::notify::Mode::Fd(n) = ready {
        crate::inherit::check_fd(&format!("--ready fd:{n}"), n, listen.clone())?;
    }
    if let Some(fd) = a.notify_fd {
        crate::inherit::check_fd("--notify-fd", fd, listen)?;
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
    Ok(Log {
        mode: match a.log.as_str() {
            "journald" => LogMode::Journald,
            "syslog" => LogMode::Syslog,
            "inherit" => LogMode::Inherit,
            _ => LogMode::Auto,
        },
        journal_socket: a.journal_socket.clone(),
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
            assert_eq!(text.lines().count(), 1, "{text}");
        }
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
