#!/usr/bin/python3
"""A reproduction of Upstart's handling of ONE job, for sigshim's tests (tests/inits.rs).

Upstart is no longer packaged, so the job files in upstart/ cannot be run under the real init.
This harness does what Upstart documents and what its source does for the parts those jobs use,
and nothing else; a stanza it does not reproduce is an error, never silently ignored.

Reproduced (references: ubports/upstart init/job_process.c, init/system.c, init/man/init.5;
libnih nih/config.c for the file syntax):

- The job file syntax: nih_config tokens (quotes, backslash escapes, `\\` + newline joins lines,
  `#` comments), `script ... end script` blocks, "Unknown stanza" for anything else. Stanzas that
  appeared after the version given with --version are unknown, as they were to that Upstart:
  `kill signal` (1.3), `console log`, `setuid`, `setgid` (1.4), `reload signal` (1.10). The
  default console is `none` before 1.4 and `log` since.
- The exec line: a command containing any of SHELL_CHARS  ~`!$^&*()=|\\{}[];"'<>?  runs as
  `/bin/sh -e -c "exec COMMAND" /bin/sh` (the shell then replaces itself, so the PID stays);
  otherwise it is split on whitespace and passed to execvp() directly (job_process_start). A
  `script` block runs as `/bin/sh -e -c SCRIPT` when it is one line, else from /proc/self/fd/9.
- The job's process (job_process_spawn_with_fd): fork; setsid(), so every job process leads its
  own session and process group; stdin /dev/null; stdout/stderr per `console`; rlimits, umask
  (default 022), nice, working directory (default /); every signal disposition reset to default
  and an empty signal mask; execvp() with the job environment only: PATH and TERM as init has
  them, `env` stanzas, the KEY=VALUE arguments of `start JOB KEY=VALUE`, UPSTART_JOB and
  UPSTART_INSTANCE. An exec failure is reported over a close-on-exec pipe.
- `console log`: stdout and stderr are a pseudo-terminal whose output goes to LOGDIR/JOB.log
  (Upstart's /var/log/upstart/JOB.log; --log-dir plays `init --logdir`). Written as read from the
  pty master (so "\\r\\n" line ends, the pty's ONLCR). `console none`: /dev/null. `console
  output`/`owner`: there is no system console here, so the harness's own stdout and stderr.
- `expect stop`: the job stays start/spawned until its main process stops itself with SIGSTOP
  (waitpid WUNTRACED); Upstart then sends SIGCONT to that PID and the job becomes start/running
  (job_process_stopped). A stop requested while spawned waits for that SIGSTOP too, as in
  Upstart: job_change_goal only acts on a running job. `expect fork|daemon` are not reproduced.
- `stop`: `kill signal` (default TERM) to the whole process group of the main process,
  kill(-getpgid(pid)) (system_kill), then after `kill timeout` seconds (default 5) SIGKILL to the
  group, unless the main process has exited first; Upstart waits for the main process only.
- The outcome: the main process's exit status or signal, `normal exit`, `respawn` (the job is
  restarted when its main process ends while the goal is start, unless the status is listed in
  `normal exit`; exit 0 counts as a failure for a respawning service), `respawn limit` (default
  10 in 5 s), `task`.
- Upstart is PID 1 and reaps everything; the harness is a child subreaper for the same effect.

Usage:
  upstart.py run   [--version V] [--log-dir DIR] [--substitute OLD=NEW]... [--pass-env NAME]...
                   JOBFILE [KEY=VALUE...]
      `start JOB KEY=VALUE...`, then supervise it in the foreground. SIGUSR1, SIGTERM or SIGINT
      to the harness = `stop JOB`; the harness exits once the job is stop/waiting (exit 0 with a
      `result` line), or 3 when the job could not be spawned.
  upstart.py check [--version V] [--substitute OLD=NEW]... JOBFILE [KEY=VALUE...]
      parse only; print what Upstart would run, as one JSON object.

  --version V         the Upstart version whose rules apply (default 1.13; e.g. 0.6.5, 1.4)
  --substitute OLD=NEW  replace the text OLD by NEW in the job file before parsing (install
                      paths -> test paths); it is an error when OLD does not occur
  --pass-env NAME     add NAME=<the harness's value> to the start arguments (as `start JOB
                      NAME=$NAME` would), e.g. the test's SIGSHIM_TEST_TAG
  --log-dir DIR       where `console log` output goes (required for console log)
  --job-name NAME     the name the job is installed under (default: the file name without
                      .conf), i.e. UPSTART_JOB and the log file's name

Output (stdout, one line per event, flushed at once), in Upstart's own words where it has them:
  upstart: legacy-app start/spawned, process 42
  upstart: legacy-app main process (42) stopped by STOP signal
  upstart: legacy-app main process (42) continued with CONT (expect stop)
  upstart: legacy-app start/running, process 42
  upstart: legacy-app stop/killed, process 42
  upstart: Sending TERM signal to legacy-app main process (42) as process group 42
  upstart: legacy-app main process (42) exited normally | terminated with status N |
           killed by TERM signal
  upstart: Sending KILL signal to legacy-app main process (42) as process group 42
  upstart: legacy-app stop/waiting
  upstart: result main=42 outcome=exit:0|signal:TERM sigkill=no|yes stop_ms=12 respawns=0
Errors go to stderr as `upstart: FILE:LINE: message` (parse) or `upstart: ...`.
"""

import argparse
import ctypes
import errno
import json
import os
import resource
import select
import signal
import sys
import time

SHELL = "/bin/sh"
# job_process.c: any of these in an exec line makes Upstart run it through the shell.
SHELL_CHARS = "~`!$^&*()=|\\{}[];\"'<>?"
# nih/config.c
WS = " \t\r"
CNL = "#\n"
CNLWS = " \t\r#\n"
# The environment every job starts from (job_class_environment: PATH and TERM as init has them;
# init sets these at boot, paths.h).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TERM = "linux"
JOB_PROCESS_SCRIPT_FD = 9

# When each stanza (or stanza argument) appeared; an older Upstart rejects it. From Upstart's
# NEWS as summarised in shared/reference/peers.md.
INTRODUCED = {
    "kill signal": (1, 3),
    "console log": (1, 4),
    "setuid": (1, 4),
    "setgid": (1, 4),
    "reload signal": (1, 10),
}

RLIMITS = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO", "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}


def say(line):
    sys.stdout.write("upstart: %s\n" % line)
    sys.stdout.flush()


def warn(line):
    sys.stderr.write("upstart: %s\n" % line)
    sys.stderr.flush()


def signame(num):
    try:
        return signal.Signals(num).name[3:]
    except ValueError:
        return str(num)


def parse_signal(text):
    """nih_signal_from_name: a name with or without SIG, or a number."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None


# ---------------------------------------------------------------------------------------------
# Job file syntax (libnih nih/config.c, transcribed)


class ParseError(Exception):
    def __init__(self, pos, message):
        super().__init__(message)
        self.pos = pos
        self.message = message


class NotReproduced(ParseError):
    pass


class Text:
    def __init__(self, text):
        self.s = text
        self.n = len(text)

    def token(self, pos, delim, dequote):
        """nih_config_token: one token up to an unquoted, unescaped character of `delim`.
        Whitespace inside is kept, an escaped newline (with the whitespace around it) becomes
        one space, trailing whitespace is dropped; with `dequote`, quotes and the backslash of
        an escape are removed. Returns (token, position of the delimiter)."""
        s, out = self.s, []
        ws, nl, slash, quote = 0, False, False, None
        p = pos
        while p < self.n:
            c, extra, isq = s[p], 0, False
            if slash:
                slash = False
                if c == "\n":
                    nl = True
                    p += 1
                    continue
                extra = 1
            elif c == "\\":
                slash = True
                p += 1
                continue
            elif quote:
                if c == quote:
                    quote, isq = None, True
                elif c == "\n":
                    nl = True
                    p += 1
                    continue
                elif c in WS:
                    ws += 1
                    p += 1
                    continue
            elif c in "\"'":
                quote, isq = c, True
            elif c in delim:
                break
            elif c in WS:
                ws += 1
                p += 1
                continue
            if nl:
                out.append(" ")
            elif ws:
                out.append(s[p - ws - extra:p - extra])
            if extra and not dequote:
                out.append("\\")
            if not (isq and dequote):
                out.append(c)
            ws, nl = 0, False
            p += 1
        if slash:
            raise ParseError(p, "Trailing slash in file")
        if quote:
            raise ParseError(p, "Unterminated quoted string")
        return "".join(out), p

    def has_token(self, p):
        return p < self.n and self.s[p] not in CNL

    def next_line(self, p):
        while p < self.n and self.s[p] != "\n":
            p += 1
        return min(p + 1, self.n)

    def skip_comment(self, p):
        if self.has_token(p):
            raise ParseError(p, "Unexpected token")
        return self.next_line(p)

    def next_arg(self, p):
        """nih_config_next_arg: a dequoted token, then any whitespace (and escaped newlines)."""
        start = p
        arg, p = self.token(p, CNLWS, True)
        if not arg:
            raise ParseError(start, "Expected token")
        while p < self.n:
            if self.s[p] == "\\":
                if p + 1 < self.n and self.s[p + 1] == "\n":
                    p += 1
                else:
                    break
            elif self.s[p] not in WS:
                break
            p += 1
        return arg, p

    def args(self, p):
        """nih_config_parse_args: every argument up to the end of the line or a comment."""
        out = []
        while self.has_token(p):
            arg, p = self.next_arg(p)
            out.append(arg)
        return out, self.skip_comment(p)

    def command(self, p):
        """nih_config_parse_command: the rest of the line, quotes and escapes kept (the shell,
        if one runs, interprets them), up to an unquoted `#` or the end of the line."""
        cmd, p = self.token(p, CNL, False)
        return cmd, self.skip_comment(p)

    def block(self, p, kind):
        """nih_config_parse_block: lines up to `end KIND`, minus their common indentation."""
        lines, start = [], p
        while True:
            if p >= self.n:
                raise ParseError(start, "Unterminated block")
            eol = self.s.find("\n", p)
            line = self.s[p:] if eol < 0 else self.s[p:eol]
            words = line.split("#", 1)[0].split()
            if words == ["end", kind]:
                p = self.n if eol < 0 else eol + 1
                break
            lines.append(line + "\n")
            p = self.n if eol < 0 else eol + 1
        indent = None
        for line in lines:
            lead = line[: len(line) - len(line.lstrip(WS))]
            if indent is None:
                indent = lead
            else:
                k = 0
                while k < min(len(indent), len(lead)) and indent[k] == lead[k]:
                    k += 1
                indent = indent[:k]
        cut = len(indent or "")
        return "".join(line[cut:] for line in lines), p

    def lineno(self, p):
        return self.s.count("\n", 0, min(p, self.n)) + 1


class Job:
    def __init__(self, name, version):
        self.name = name
        self.version = version
        self.script = False
        self.command = None
        self.env = []
        self.expect = "none"
        self.kill_signal = signal.SIGTERM
        self.kill_timeout = 5
        self.console = "log" if version >= (1, 4) else "none"
        self.normal_exit = []
        self.respawn = False
        self.respawn_limit = (10, 5)
        self.task = False
        self.umask = 0o022
        self.nice = None
        self.limits = {}
        self.chdir = None

    def argv(self):
        """What job_process_start passes to execvp, and whether a shell runs."""
        if self.script or any(c in SHELL_CHARS for c in self.command):
            script = self.command if self.script else "exec %s" % self.command
            body = script.rstrip("\n")
            if "\n" not in body:
                return [SHELL, "-e", "-c", body, SHELL], True, None
            return [SHELL, "-e", "/proc/self/fd/%d" % JOB_PROCESS_SCRIPT_FD], True, script
        return self.command.split(), False, None

    def describe(self):
        argv, shell, script = self.argv()
        return {
            "name": self.name,
            "argv": argv,
            "shell": shell,
            "script": script,
            "expect": self.expect,
            "kill_signal": signame(self.kill_signal),
            "kill_timeout": self.kill_timeout,
            "console": self.console,
            "normal_exit": [outcome_name(v) for v in self.normal_exit],
            "respawn": self.respawn,
            "respawn_limit": list(self.respawn_limit) if self.respawn_limit else None,
            "task": self.task,
            "env": self.env,
        }


def outcome_name(status):
    """Upstart keeps an exit status as is and a signal as signum << 8."""
    return "signal:%s" % signame(status >> 8) if status > 255 else "exit:%d" % status


def require_version(job, what, p):
    since = INTRODUCED[what]
    if job.version < since:
        raise ParseError(p, "Unknown stanza (%r arrived in Upstart %d.%d)" % ((what,) + since))


def parse_job(text, name, version):
    t = Text(text)
    job = Job(name, version)
    p = 0
    while p < t.n:
        while p < t.n and t.s[p] in WS:
            p += 1
        if not t.has_token(p):
            p = t.skip_comment(p)
            continue
        at = p
        stanza, p = t.next_arg(p)
        p = parse_stanza(t, job, stanza, at, p)
    if job.command is None:
        raise ParseError(t.n, "job has no exec or script stanza: nothing to run")
    return job


def one_arg(t, p):
    arg, p = t.next_arg(p)
    return arg, t.skip_comment(p)


def parse_stanza(t, job, stanza, at, p):
    if stanza == "exec":
        if not t.has_token(p):
            raise ParseError(p, "Expected token")
        job.command, p = t.command(p)
        job.script = False
        return p
    if stanza == "script":
        p = t.skip_comment(p)
        job.command, p = t.block(p, "script")
        job.script = True
        return p
    if stanza in ("pre-start", "post-start", "pre-stop", "post-stop"):
        raise NotReproduced(at, "%s is not reproduced by this harness" % stanza)
    if stanza in ("description", "author", "version", "usage"):
        _, p = one_arg(t, p)
        return p
    if stanza in ("emits", "export"):
        _, p = t.args(p)
        return p
    if stanza in ("start", "stop"):
        word, p = t.next_arg(p)
        if word != "on":
            raise ParseError(at, "Unknown stanza")
        return skip_event_expression(t, p)
    if stanza == "manual":
        return t.skip_comment(p)
    if stanza == "task":
        job.task = True
        return t.skip_comment(p)
    if stanza == "respawn":
        if not t.has_token(p):
            job.respawn = True
            return t.skip_comment(p)
        word, p = t.next_arg(p)
        if word != "limit":
            raise ParseError(at, "Unexpected token")
        args, p = t.args(p)
        if args == ["unlimited"]:
            job.respawn_limit = None
        elif len(args) == 2 and all(a.isdigit() for a in args):
            job.respawn_limit = (int(args[0]), int(args[1]))
        else:
            raise ParseError(at, "Illegal value")
        return p
    if stanza == "normal":
        word, p = t.next_arg(p)
        if word != "exit":
            raise ParseError(at, "Unknown stanza")
        args, p = t.args(p)
        if not args:
            raise ParseError(at, "Expected token")
        for a in args:
            if a.isdigit():
                job.normal_exit.append(int(a))
            else:
                sig = parse_signal(a)
                if sig is None:
                    raise ParseError(at, "Illegal exit status, expected integer or signal: %s" % a)
                job.normal_exit.append(sig << 8)
        return p
    if stanza == "env":
        var, p = one_arg(t, p)
        job.env.append(var)
        return p
    if stanza == "expect":
        kind, p = one_arg(t, p)
        if kind in ("fork", "daemon"):
            raise NotReproduced(
                at, "expect %s is not reproduced (and must not be used with sigshim: Upstart "
                "would ptrace it and adopt the app as the main process)" % kind)
        if kind not in ("stop", "none"):
            raise ParseError(at, "Unknown argument")
        job.expect = kind
        return p
    if stanza == "kill":
        word, p = t.next_arg(p)
        if word == "timeout":
            value, p = one_arg(t, p)
            if not value.isdigit():
                raise ParseError(at, "Illegal value")
            job.kill_timeout = int(value)
            return p
        if word == "signal":
            require_version(job, "kill signal", at)
            value, p = one_arg(t, p)
            sig = parse_signal(value)
            if sig is None:
                raise ParseError(at, "Illegal signal")
            job.kill_signal = sig
            return p
        raise ParseError(at, "Unknown stanza")
    if stanza == "reload":
        word, p = t.next_arg(p)
        if word != "signal":
            raise ParseError(at, "Unknown stanza")
        require_version(job, "reload signal", at)
        _, p = one_arg(t, p)
        return p
    if stanza == "console":
        kind, p = one_arg(t, p)
        if kind == "log":
            require_version(job, "console log", at)
        elif kind not in ("none", "output", "owner"):
            raise ParseError(at, "Unknown argument")
        job.console = kind
        return p
    if stanza == "umask":
        value, p = one_arg(t, p)
        try:
            job.umask = int(value, 8)
        except ValueError:
            raise ParseError(at, "Illegal value")
        return p
    if stanza == "nice":
        value, p = one_arg(t, p)
        try:
            job.nice = int(value)
        except ValueError:
            raise ParseError(at, "Illegal value")
        return p
    if stanza == "limit":
        args, p = t.args(p)
        if len(args) != 3 or args[0] not in RLIMITS:
            raise ParseError(at, "Unknown limit or wrong arguments")
        vals = []
        for v in args[1:]:
            if v == "unlimited":
                vals.append(-1)
            elif v.isdigit():
                vals.append(int(v))
            else:
                raise ParseError(at, "Illegal value")
        job.limits[args[0]] = tuple(vals)
        return p
    if stanza == "chdir":
        job.chdir, p = one_arg(t, p)
        return p
    if stanza in ("setuid", "setgid"):
        require_version(job, stanza, at)
        raise NotReproduced(at, "%s is not reproduced by this harness" % stanza)
    if stanza in ("chroot", "instance", "oom", "apparmor", "cgroup", "debug"):
        raise NotReproduced(at, "%s is not reproduced by this harness" % stanza)
    raise ParseError(at, "Unknown stanza")


def skip_event_expression(t, p):
    """`start on` / `stop on`: an event expression, which may span lines inside parentheses.
    The harness starts the job itself, so only the extent of the expression matters."""
    depth, quote = 0, None
    while p < t.n:
        c = t.s[p]
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "#" and depth == 0:
            return t.next_line(p)
        elif c == "\n" and depth == 0 and t.s[p - 1] != "\\":
            return p + 1
        p += 1
    return p


def load(path, version, substitutions, name=None):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for old, new in substitutions:
        if old not in text:
            raise SystemExit("upstart: --substitute %s: %r does not occur in %s" % (old, old, path))
        text = text.replace(old, new)
    if name is None:
        name = os.path.basename(path)
        if name.endswith(".conf"):
            name = name[: -len(".conf")]
    try:
        return parse_job(text, name, version)
    except ParseError as e:
        warn("%s:%d: %s" % (path, Text(text).lineno(e.pos), e.message))
        sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Running the job


def job_environment(job, start_args):
    env = {"PATH": DEFAULT_PATH, "TERM": DEFAULT_TERM}
    for var in job.env + start_args:
        if "=" in var:
            k, v = var.split("=", 1)
            env[k] = v
        elif var in os.environ:
            env[var] = os.environ[var]
    env["UPSTART_JOB"] = job.name
    env["UPSTART_INSTANCE"] = ""
    return env


def spawn(job, env, log_dir):
    """job_process_spawn_with_fd. Returns (pid, pty master or None); raises OSError when the
    child could not exec (reported over a close-on-exec pipe, as Upstart does)."""
    argv, _, script = job.argv()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    master = slave = None
    if job.console == "log":
        master, slave = os.openpty()
        os.set_inheritable(master, False)
    script_r = None
    if script is not None:
        script_r, script_w = os.pipe()
        os.write(script_w, script.encode())
        os.close(script_w)
    # Block every signal across fork so the child cannot run the harness's handlers before it
    # has reset them (job_process_spawn_with_fd does the same).
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    pid = os.fork()
    if pid == 0:
        stage = "setup"
        try:
            os.close(err_r)
            os.setsid()
            null = os.open("/dev/null", os.O_RDWR)
            os.dup2(null, 0)
            if job.console == "none":
                os.dup2(null, 1)
                os.dup2(null, 2)
            elif job.console == "log":
                os.dup2(slave, 1)
                os.dup2(slave, 2)
            if null > 2:
                os.close(null)
            if slave is not None:
                os.close(slave)
            if script_r is not None:
                os.dup2(script_r, JOB_PROCESS_SCRIPT_FD)
            for res, (soft, hard) in job.limits.items():
                r = getattr(resource, RLIMITS[res])
                resource.setrlimit(r, (soft if soft >= 0 else resource.RLIM_INFINITY,
                                       hard if hard >= 0 else resource.RLIM_INFINITY))
            os.umask(job.umask)
            if job.nice is not None:
                os.setpriority(os.PRIO_PROCESS, 0, job.nice)
            stage = "chdir"
            os.chdir(job.chdir or "/")
            # nih_signal_reset: every signal back to its default action (ignored ones too:
            # Python ignores SIGPIPE and SIGXFSZ), then the mask init had (empty).
            signal.set_wakeup_fd(-1)
            for s in signal.valid_signals():
                if s in (signal.SIGKILL, signal.SIGSTOP):
                    continue
                try:
                    signal.signal(s, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            stage = "exec"
            os.execvpe(argv[0], argv, env)
        except BaseException as e:  # any failure before exec must reach the parent
            num = getattr(e, "errno", None) or errno.EINVAL
            os.write(err_w, ("%s:%d" % (stage, num)).encode())
        finally:
            os._exit(255)
    signal.pthread_sigmask(signal.SIG_SETMASK, old)
    os.close(err_w)
    if slave is not None:
        os.close(slave)
    if script_r is not None:
        os.close(script_r)
    report = b""
    while True:
        chunk = os.read(err_r, 256)
        if not chunk:
            break
        report += chunk
    os.close(err_r)
    if report:
        stage, num = report.decode().split(":")
        os.waitpid(pid, 0)
        if master is not None:
            os.close(master)
        raise OSError(int(num), "unable to %s: %s" % (stage, os.strerror(int(num))))
    if master is not None:
        os.set_blocking(master, False)
    return pid, master


def group_kill(pid, sig):
    """system_kill: the signal goes to the whole process group of `pid`."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        pgid = 0
    try:
        os.kill(-pgid if pgid > 0 else pid, sig)
    except ProcessLookupError:
        pass
    return pgid


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        warn("prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))


class Console:
    """The pty master of a `console log` job and the log file it feeds."""

    def __init__(self, log_dir, name):
        self.path = os.path.join(log_dir, name + ".log")
        self.master = None

    def attach(self, master):
        self.close()
        self.master = master

    def pump(self):
        if self.master is None:
            return
        with open(self.path, "ab") as log:
            while True:
                try:
                    data = os.read(self.master, 65536)
                except BlockingIOError:
                    return
                except OSError as e:
                    if e.errno == errno.EIO:  # every slave descriptor is closed
                        self.close()
                        return
                    raise
                if not data:
                    self.close()
                    return
                log.write(data)
                log.flush()

    def close(self):
        if self.master is not None:
            os.close(self.master)
            self.master = None


def run(job, start_args, log_dir):
    if job.console == "log" and not log_dir:
        raise SystemExit("upstart: console log needs --log-dir (Upstart's /var/log/upstart)")
    set_subreaper()
    env = job_environment(job, start_args)

    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    requests = {"stop": False}

    def on_stop(signum, frame):
        requests["stop"] = True

    for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_stop)
    signal.signal(signal.SIGCHLD, lambda s, f: None)  # wakes select through the wakeup fd

    console = Console(log_dir, job.name) if job.console == "log" else None
    goal = "start"
    respawns = 0
    respawn_time, respawn_count = None, 0
    sigkill = False
    stop_started = None
    outcome = None

    def start_process():
        try:
            pid, master = spawn(job, env, log_dir)
        except OSError as e:
            warn("Failed to spawn %s main process: %s" % (job.name, e.strerror))
            say("%s stop/waiting" % job.name)
            sys.exit(3)
        if console is not None:
            console.attach(master)
        say("%s start/spawned, process %d" % (job.name, pid))
        return pid

    def begin_stop(pid):
        nonlocal stop_started, kill_deadline
        stop_started = time.monotonic()
        say("%s stop/killed, process %d" % (job.name, pid))
        pgid = group_kill(pid, job.kill_signal)
        say("Sending %s signal to %s main process (%d) as process group %d"
            % (signame(job.kill_signal), job.name, pid, pgid))
        kill_deadline = time.monotonic() + job.kill_timeout

    main = start_process()
    state = "spawned"
    if job.expect != "stop":
        state = "running"
        say("%s start/running, process %d" % (job.name, main))
    kill_deadline = None

    while True:
        timeout = None
        if kill_deadline is not None:
            timeout = max(0.0, kill_deadline - time.monotonic())
        fds = [wake_r] + ([console.master] if console and console.master is not None else [])
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            ready = []
        if console is not None:
            console.pump()
        try:
            while os.read(wake_r, 512):
                pass
        except BlockingIOError:
            pass

        if requests["stop"] and goal == "start":
            goal = "stop"
            if state == "running":
                state = "killed"
                begin_stop(main)
            else:
                say("stop requested while %s is spawned: waiting for it to stop itself "
                    "(expect stop)" % job.name)

        if kill_deadline is not None and time.monotonic() >= kill_deadline:
            kill_deadline = None
            sigkill = True
            pgid = group_kill(main, signal.SIGKILL)
            say("Sending KILL signal to %s main process (%d) as process group %d"
                % (job.name, main, pgid))

        # Reap: the main process (exit or stop) and any orphan the harness adopted.
        ended = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid != main:
                continue
            if os.WIFSTOPPED(status):
                sig = os.WSTOPSIG(status)
                say("%s main process (%d) stopped by %s signal" % (job.name, main, signame(sig)))
                if sig == signal.SIGSTOP and state == "spawned" and job.expect == "stop":
                    os.kill(main, signal.SIGCONT)
                    say("%s main process (%d) continued with CONT (expect stop)"
                        % (job.name, main))
                    state = "running"
                    say("%s start/running, process %d" % (job.name, main))
                    if goal == "stop":
                        state = "killed"
                        begin_stop(main)
                continue
            if os.WIFEXITED(status):
                code = os.WEXITSTATUS(status)
                ended = code
                if code:
                    say("%s main process (%d) terminated with status %d" % (job.name, main, code))
                else:
                    say("%s main process (%d) exited normally" % (job.name, main))
            elif os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                ended = sig << 8
                say("%s main process (%d) killed by %s signal" % (job.name, main, signame(sig)))

        if ended is None:
            continue
        kill_deadline = None
        if console is not None:
            console.pump()
        outcome = ended
        # job_process_terminated: while the goal is start, a non-zero status (or any end of a
        # respawning service) is a failure unless `normal exit` lists it; failures respawn.
        if goal == "start" and (ended or (job.respawn and not job.task)):
            failed = ended not in job.normal_exit
            if failed and job.respawn:
                now = time.monotonic()
                too_fast = False
                if job.respawn_limit:
                    limit, interval = job.respawn_limit
                    if respawn_time is not None and now - respawn_time < interval:
                        respawn_count += 1
                        too_fast = respawn_count > limit
                    else:
                        respawn_time, respawn_count = now, 1
                if too_fast:
                    warn("%s respawning too fast, stopped" % job.name)
                else:
                    say("%s main process ended, respawning" % job.name)
                    respawns += 1
                    main = start_process()
                    state = "spawned"
                    if job.expect != "stop":
                        state = "running"
                        say("%s start/running, process %d" % (job.name, main))
                    continue
            elif failed:
                say("%s failed: main process %s" % (job.name, outcome_name(ended)))
        break

    say("%s stop/waiting" % job.name)
    stop_ms = int((time.monotonic() - stop_started) * 1000) if stop_started else -1
    say("result main=%d outcome=%s sigkill=%s stop_ms=%d respawns=%d"
        % (main, outcome_name(outcome), "yes" if sigkill else "no", stop_ms, respawns))
    if console is not None:
        console.close()
    return 0


def parse_version(text):
    try:
        parts = tuple(int(x) for x in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError("not a version: %r" % text)
    return parts[:2] if len(parts) >= 2 else (parts[0], 0)


def main():
    ap = argparse.ArgumentParser(prog="upstart.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    for verb in ("run", "check"):
        p = sub.add_parser(verb)
        p.add_argument("--version", type=parse_version, default=(1, 13))
        p.add_argument("--substitute", action="append", default=[], metavar="OLD=NEW")
        p.add_argument("--pass-env", action="append", default=[], metavar="NAME")
        p.add_argument("--log-dir")
        p.add_argument("--job-name")
        p.add_argument("jobfile")
        p.add_argument("start_args", nargs="*", metavar="KEY=VALUE")
    a = ap.parse_args()
    subs = []
    for s in a.substitute:
        if "=" not in s:
            ap.error("--substitute wants OLD=NEW, got %r" % s)
        subs.append(tuple(s.split("=", 1)))
    for kv in a.start_args:
        if "=" not in kv:
            ap.error("start arguments are KEY=VALUE, got %r" % kv)
    start_args = list(a.start_args)
    for name in a.pass_env:
        if name in os.environ:
            start_args.append("%s=%s" % (name, os.environ[name]))
    job = load(a.jobfile, a.version, subs, a.job_name)
    if a.verb == "check":
        d = job.describe()
        d["environment"] = job_environment(job, start_args)
        print(json.dumps(d, sort_keys=True))
        return 0
    return run(job, start_args, a.log_dir)


if __name__ == "__main__":
    sys.exit(main())
