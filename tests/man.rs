//! sigshim.1, the manual page, and the README's exit-status table, kept in step with the
//! command line.
//!
//! The page is written by hand where prose serves the reader (DESCRIPTION, SIGNALS,
//! ENVIRONMENT, EXAMPLES, ...) and generated from the clap definition where the command line is
//! the truth: the title line (version), SYNOPSIS, OPTIONS and EXIT STATUS. Each generated part
//! sits between `.\" BEGIN GENERATED name` and `.\" END GENERATED name` in sigshim.1; this test
//! renders them again and fails when the file differs. A new option needs only its doc comment
//! (and a `help_heading`, or it lands under "General options"); then
//!
//!     SIGSHIM_BLESS=1 cargo test --test man
//!
//! rewrites the generated parts (and the README's table), and the test checks the result with
//! `mandoc -T lint` and `man --warnings`, which must both say nothing.
//!
//! Rendering rules, so the page reads well and copies well: every `-` is written `\-` (groff
//! renders a bare `-` as a typographic hyphen, U+2010, which breaks a command pasted into a
//! shell); hyphenation is off (`.nh`: no `/usr/lo-` `cal/bin`); no source line is longer than
//! 80 bytes (mandoc's style check); option names in the text are bold.

mod support;

use std::fmt::Write as _;
use std::process::Command;
use support::*;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sigshim.1");
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const BLESS: &str = "SIGSHIM_BLESS=1 cargo test --test man";

fn blessing() -> bool {
    std::env::var_os("SIGSHIM_BLESS").is_some()
}

// ---------------------------------------------------------------------------------------------
// roff

/// Escapes text for a roff text line: `\` as `\e`, every `-` as `\-`; a line may not start
/// with `.` or `'` (a request), which `\&` prevents.
fn escape(text: &str) -> String {
    assert!(
        text.is_ascii(),
        "keep the man page ASCII (mandoc and old groff): {text:?}"
    );
    let mut out = text.replace('\\', "\\e").replace('-', "\\-");
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// A word of help text as roff: an option name (`--stop-signal`, with any punctuation after
/// it) in bold, anything else escaped.
fn word(w: &str) -> String {
    let name_end = w
        .char_indices()
        .skip(2)
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-'))
        .map_or(w.len(), |(i, _)| i);
    if w.starts_with("--") && name_end > 2 && !w[name_end - 1..name_end].contains('-') {
        format!(
            "\\fB{}\\fR{}",
            escape(&w[..name_end]),
            escape(&w[name_end..])
        )
    } else {
        escape(w)
    }
}

/// Fills `text` into source lines of at most 80 bytes, words kept whole.
fn fill(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for w in text.split_whitespace().map(word) {
        if !line.is_empty() && line.len() + 1 + w.len() > 80 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        // A continuation line must not start with a request character either.
        if line.is_empty() && (w.starts_with('.') || w.starts_with('\'')) {
            line.push_str("\\&");
        }
        line.push_str(&w);
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Ends a help text with a period (clap drops the one of a one-paragraph doc comment).
fn sentence(text: &str) -> String {
    let t = text.trim();
    if t.ends_with(['.', '!', '?']) {
        t.to_string()
    } else {
        format!("{t}.")
    }
}

// ---------------------------------------------------------------------------------------------
// The generated parts

fn command() -> clap::Command {
    let mut cmd = sigshim::cli::command();
    cmd.build();
    cmd
}

/// The options in definition order, PROGRAM, help and version left out.
fn options(cmd: &clap::Command) -> Vec<&clap::Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect()
}

fn takes_value(a: &clap::Arg) -> bool {
    a.get_action().takes_values()
}

fn repeats(a: &clap::Arg) -> bool {
    matches!(
        a.get_action(),
        clap::ArgAction::Append | clap::ArgAction::Count
    )
}

fn value_name(a: &clap::Arg) -> String {
    a.get_value_names()
        .and_then(|v| v.first())
        .map_or_else(|| a.get_id().as_str().to_uppercase(), |v| v.to_string())
}

/// `\fB\-\-kill\-after\fR \fIDURATION\fR`, or `\fB\-v\fR, \fB\-\-verbose\fR`; `gap` goes
/// between an option and its value.
fn names(a: &clap::Arg, with_short: bool, gap: &str) -> String {
    let mut out = String::new();
    if let (true, Some(s)) = (with_short, a.get_short()) {
        write!(out, "\\fB\\-{s}\\fR").unwrap();
        if a.get_long().is_some() {
            out.push_str(", ");
        }
    }
    if let Some(l) = a.get_long() {
        write!(out, "\\fB\\-\\-{}\\fR", escape(l)).unwrap();
    }
    if takes_value(a) {
        write!(out, "{gap}\\fI{}\\fR", escape(&value_name(a))).unwrap();
    }
    out
}

fn title() -> String {
    format!(
        ".TH SIGSHIM 1 @DATE@ \"sigshim {}\" \"General Commands Manual\"\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn synopsis(cmd: &clap::Command) -> String {
    let mut out = String::from(".SY sigshim\n");
    for a in options(cmd) {
        // The short form where there is one: the synopsis is for the eye. An unbreakable
        // space keeps an option and its value on one line.
        let shown = match a.get_short() {
            Some(s) => format!("\\fB\\-{s}\\fR"),
            None => names(a, false, "\\ "),
        };
        writeln!(out, "[{shown}]{}", if repeats(a) { "..." } else { "" }).unwrap();
    }
    out.push_str(".RB [ \\-\\- ]\n.I PROGRAM\n.RI [ ARGS ]...\n.YS\n");
    out.push_str(".SY sigshim\n.B \\-\\-help\n.YS\n");
    out.push_str(".SY sigshim\n.B \\-\\-version\n.YS\n");
    out
}

fn option_entries(cmd: &clap::Command) -> String {
    // Headings in the order they first appear; options without one come last.
    let mut headings: Vec<Option<&str>> = Vec::new();
    for a in options(cmd) {
        if !headings.contains(&a.get_help_heading()) {
            headings.push(a.get_help_heading());
        }
    }
    headings.sort_by_key(|h| h.is_none());
    let mut out = String::new();
    for h in headings {
        writeln!(out, ".SS {}", escape(h.unwrap_or("General options"))).unwrap();
        for a in options(cmd)
            .into_iter()
            .filter(|a| a.get_help_heading() == h)
        {
            let help = a
                .get_long_help()
                .or(a.get_help())
                .unwrap_or_else(|| panic!("--{}: no doc comment", a.get_id()))
                .to_string();
            let mut text = sentence(&help);
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            // A flag's "false" and a counter's "0" say nothing.
            if takes_value(a) && !defaults.is_empty() && !text.contains("default") {
                write!(text, " Default: {}.", defaults.join(",")).unwrap();
            }
            let missing: Vec<String> = a
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .filter(|v| !text.contains(v.as_str()))
                .collect();
            if !missing.is_empty() {
                write!(text, " Also: {}.", missing.join(", ")).unwrap();
            }
            writeln!(out, ".TP\n{}", names(a, true, " ")).unwrap();
            out.push_str(&fill(&text));
        }
    }
    out.push_str(".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n");
    out.push_str("Print the help (\\fB\\-h\\fR: a summary), and exit 0.\n");
    out.push_str(".TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\n");
    out.push_str("Print the version, and exit 0.\n");
    out
}

fn exit_status() -> String {
    let mut out = String::new();
    for (code, meaning) in sigshim::cli::EXIT_STATUS {
        let code = match *code {
            "N" => "\\fIN\\fR".to_string(),
            c => format!("\\fB{}\\fR", escape(c)),
        };
        writeln!(out, ".TP\n{code}").unwrap();
        out.push_str(&fill(&sentence(meaning)));
    }
    out
}

/// The README's table, made from the same rows; options and PROGRAM in backticks.
fn readme_table() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for (code, meaning) in sigshim::cli::EXIT_STATUS {
        let meaning: Vec<String> = meaning
            .split(' ')
            .map(|w| {
                let end = w
                    .char_indices()
                    .skip(2)
                    .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-'))
                    .map_or(w.len(), |(i, _)| i);
                if w.starts_with("--") && end > 2 {
                    format!("`{}`{}", &w[..end], &w[end..])
                } else {
                    w.to_string()
                }
            })
            .collect();
        writeln!(out, "| {code} | {} |", meaning.join(" ")).unwrap();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Splicing the generated parts into the hand-written page

/// Replaces the text between `.\" BEGIN GENERATED name` and `.\" END GENERATED name`.
fn splice(page: &str, name: &str, body: &str) -> String {
    let begin = format!(".\\\" BEGIN GENERATED {name}\n");
    let end = format!(".\\\" END GENERATED {name}\n");
    let b = page
        .find(&begin)
        .unwrap_or_else(|| panic!("sigshim.1 has no line {begin:?}: put it back"));
    let e = page[b..]
        .find(&end)
        .map(|i| b + i)
        .unwrap_or_else(|| panic!("sigshim.1 has no line {end:?} after the BEGIN"));
    format!("{}{begin}{body}{}", &page[..b], &page[e..])
}

/// The date on the `.TH` line: `YYYY-MM-DD`.
fn th_date(page: &str) -> Option<String> {
    let th = page.lines().find(|l| l.starts_with(".TH "))?;
    th.split_whitespace().nth(3).map(str::to_string)
}

/// Today (UTC) as `YYYY-MM-DD`, for a page whose content changed.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The page with every generated part rendered afresh; the `.TH` date is `date`.
fn render(page: &str, date: &str) -> String {
    let cmd = command();
    let mut page = splice(page, "title", &title().replace("@DATE@", date));
    page = splice(&page, "synopsis", &synopsis(&cmd));
    page = splice(&page, "options", &option_entries(&cmd));
    splice(&page, "exit-status", &exit_status())
}

#[test]
fn man_page_is_current() {
    let committed = std::fs::read_to_string(PAGE).expect("read sigshim.1");
    // The date changes only when the content does.
    let kept = th_date(&committed).unwrap_or_else(today);
    let fresh = render(&committed, &kept);
    if fresh != committed {
        if blessing() {
            std::fs::write(PAGE, render(&committed, &today())).expect("write sigshim.1");
        } else {
            let diff = first_difference(&committed, &fresh);
            panic!(
                "sigshim.1 is out of date with the command line; regenerate it with\n    {BLESS}\nfirst difference:\n{diff}"
            );
        }
    }
}

fn first_difference(old: &str, new: &str) -> String {
    let (o, n): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let i = o.iter().zip(&n).take_while(|(a, b)| a == b).count();
    format!(
        "  line {}:\n  - {}\n  + {}",
        i + 1,
        o.get(i).unwrap_or(&"(end)"),
        n.get(i).unwrap_or(&"(end)")
    )
}

#[test]
fn readme_exit_status_is_the_same_table() {
    let readme = std::fs::read_to_string(README).expect("read README.md");
    let table = readme_table();
    if readme.contains(&table) {
        return;
    }
    // The table is the run of `|` lines after the "## Exit status" heading.
    let heading = readme
        .find("\n## Exit status\n")
        .expect("README.md has no '## Exit status' section");
    let start = heading
        + readme[heading..]
            .find("\n|")
            .expect("no table under '## Exit status'")
        + 1;
    let end = start
        + readme[start..]
            .split_inclusive('\n')
            .take_while(|l| l.starts_with('|'))
            .map(str::len)
            .sum::<usize>();
    if blessing() {
        let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
        std::fs::write(README, updated).expect("write README.md");
    } else {
        panic!(
            "README.md's exit-status table differs from sigshim::cli::EXIT_STATUS; regenerate \
             it with\n    {BLESS}\nwant:\n{table}found:\n{}",
            &readme[start..end]
        );
    }
}

/// What `--help` prints about the exit status is the same table (the real binary's output,
/// compared with blanks squeezed).
#[test]
fn help_shows_the_same_exit_status() {
    let mut run = Run::sigshim(&["--help"]);
    let out = run.rest().join("\n");
    assert_eq!(run.wait().code(), Some(0));
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = squeeze(&out);
    for (code, meaning) in sigshim::cli::EXIT_STATUS {
        let row = squeeze(&format!("{code} {meaning}"));
        assert!(
            help.contains(&row),
            "--help lacks the exit-status row {row:?}"
        );
    }
}

/// The hand-written sections an operator looks for are there.
#[test]
fn man_page_has_its_sections() {
    let page = std::fs::read_to_string(PAGE).expect("read sigshim.1");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SIGNALS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            page.contains(&format!("\n.SH {section}\n"))
                || page.contains(&format!("\n.SH \"{section}\"\n")),
            "sigshim.1 has no {section} section"
        );
    }
    for env in [
        "NOTIFY_SOCKET",
        "LISTEN_PID",
        "WATCHDOG_USEC",
        "UPSTART_JOB",
        "JOURNAL_STREAM",
        "INVOCATION_ID",
    ] {
        assert!(page.contains(env), "ENVIRONMENT does not mention {env}");
    }
    for init in [
        "Upstart",
        "systemd",
        "runit",
        "s6",
        "daemontools",
        "supervisord",
        "start\\-stop\\-daemon",
        "ENTRYPOINT",
    ] {
        assert!(page.contains(init), "EXAMPLES has nothing for {init}");
    }
}

/// `mandoc -T lint` and `man --warnings` have nothing to say, and the rendered page has no
/// typographic hyphen or minus (every `-` an operator copies is the ASCII one).
#[test]
fn man_page_is_lint_clean() {
    for (tool, package) in [("mandoc", "mandoc"), ("man", "man-db")] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            skip(&format!(
                "{tool} is not installed (Debian package {package}; .ci/run installs it)"
            ));
            return;
        }
    }
    // The page as the generated parts make it (what SIGSHIM_BLESS=1 writes; the same as
    // sigshim.1 once that is current), so linting never races a blessing test.
    let committed = std::fs::read_to_string(PAGE).expect("read sigshim.1");
    let dir = Scratch::new("man");
    let page = dir.path("sigshim.1");
    std::fs::write(
        &page,
        render(&committed, &th_date(&committed).unwrap_or_else(today)),
    )
    .expect("write the page to lint");
    let mut lint = Command::new("mandoc");
    lint.args(["-T", "lint", "-W", "style"]).arg(&page);
    let mut lint = Run::start(lint);
    let said = lint.rest().join("\n");
    let st = lint.wait();
    assert!(
        st.success() && said.is_empty() && lint.stderr().is_empty(),
        "mandoc -T lint sigshim.1 ({st}):\n{said}{}",
        lint.stderr()
    );

    let mut man = Command::new("man");
    man.args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .env("MAN_DISABLE_SECCOMP", "1");
    let mut man = Run::start(man);
    let text = man.rest().join("\n");
    let st = man.wait();
    assert!(
        st.success() && man.stderr().is_empty(),
        "man --warnings -l sigshim.1 ({st}):\n{}",
        man.stderr()
    );
    for (bad, what) in [('\u{2010}', "hyphen"), ('\u{2212}', "minus sign")] {
        if let Some(line) = text.lines().find(|l| l.contains(bad)) {
            panic!(
                "a typographic {what} (U+{:04X}) in the rendered page, write - as \\- in sigshim.1:\n{line}",
                bad as u32
            );
        }
    }
    assert!(text.contains("--kill-after DURATION"), "{text}");
}
