//! Durations and the stop schedule: pure arithmetic, no clocks read here.
//!
//! A stop schedule is start-stop-daemon's `--retry` idea (`INT/20s/TERM/5s/KILL`): send a
//! signal, wait up to a duration for the child to exit, move to the next signal. `--kill-after
//! 4s` is the two-step schedule `STOP-SIGNAL/4s/KILL`. The supervisor asks this module when the
//! current step's deadline falls and what comes next; the moment the child exits it stops
//! asking, so the schedule never adds a fixed wait.

use crate::signals::{Signal, parse_signal};
use std::time::{Duration, Instant};

/// Parses a duration: one or more NUMBER UNIT parts, largest unit first, each unit at most
/// once (`500ms`, `4s`, `1.5s`, `2m`, `1h`, `1m30s`, `1h2m3.5s`, `2s500ms`), or a bare number of
/// seconds (`4`). Units: `h`, `m` or `min`, `s`, `ms`. A NUMBER is decimal digits with an
/// optional fraction (`.25s`). At most a year. `0` parses (to zero); what zero means is the
/// caller's to decide.
pub fn parse_duration(spec: &str) -> Result<Duration, String> {
    // Blanks are forgiven ("TERM, INT"); a newline or other control character is not: a
    // value that spans lines is a mistake, not a signal.
    let s = spec.trim_matches([' ', '\t']);
    let invalid =
        || format!("invalid duration '{spec}' (use e.g. 500ms, 4s, 1.5s, 2m, 1m30s, 1h2m3.5s)");
    let too_long = || format!("duration '{spec}' is too long (at most 1 year)");
    if s.is_empty() {
        return Err(invalid());
    }
    let mut rest = s;
    let mut total: u128 = 0;
    // The previous part's unit, as nanoseconds: each unit must be smaller than the one before
    // (`1s1m`, `1s2s` are typos, not sums).
    let mut previous: Option<u128> = None;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            // A bare number is seconds, but only as the whole value: in `1m30` the 30 could be
            // meant as anything.
            "" if previous.is_none() => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        if previous.is_some_and(|p| nanos_per_unit >= p) {
            return Err(invalid());
        }
        previous = Some(nanos_per_unit);
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits_ok(int) || !digits_ok(frac) {
            return Err(invalid());
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| too_long())?
        };
        // Fractional digits beyond nanoseconds carry no meaning; ignore them rather than
        // overflow.
        let mut frac_nanos: u128 = 0;
        let mut scale = nanos_per_unit;
        for b in frac.bytes().take(18) {
            scale /= 10;
            frac_nanos += u128::from(b - b'0') * scale;
        }
        total = int
            .checked_mul(nanos_per_unit)
            .and_then(|n| n.checked_add(frac_nanos))
            .and_then(|n| n.checked_add(total))
            .ok_or_else(too_long)?;
        rest = next;
    }
    const YEAR_NANOS: u128 = 366 * 24 * 3_600_000_000_000;
    if total > YEAR_NANOS {
        return Err(too_long());
    }
    Ok(Duration::from_nanos(total as u64))
}

/// One step: send `signal`, then wait `wait` for the child to exit before the next step
/// (`None`: wait as long as it takes; only the last step may do that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub signal: Signal,
    pub wait: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    steps: Vec<Step>,
}

impl Schedule {
    /// Send `signal` and wait for as long as the child takes.
    pub fn forever(signal: Signal) -> Schedule {
        Schedule {
            steps: vec![Step { signal, wait: None }],
        }
    }

    /// `--kill-after`: `signal`, then SIGKILL once `after` has passed.
    pub fn kill_after(signal: Signal, after: Duration) -> Schedule {
        Schedule {
            steps: vec![
                Step {
                    signal,
                    wait: Some(after),
                },
                Step {
                    signal: Signal::KILL,
                    wait: None,
                },
            ],
        }
    }

    /// `INT/20s/TERM/5s/KILL`. Ending on a duration means SIGKILL when it passes (as
    /// start-stop-daemon's schedule would give up; a service wrapper must not leave the app
    /// running instead). Steps after a KILL could never run and are refused.
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let parts: Vec<&str> = spec.split('/').collect();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < parts.len() {
            let signal =
                parse_signal(parts[i]).map_err(|e| format!("stop schedule '{spec}': {e}"))?;
            if steps
                .last()
                .is_some_and(|s: &Step| s.signal == Signal::KILL)
            {
                return Err(format!("stop schedule '{spec}': nothing can follow KILL"));
            }
            let wait = match parts.get(i + 1) {
                Some(d) => {
                    Some(parse_duration(d).map_err(|e| format!("stop schedule '{spec}': {e}"))?)
                }
                None => None,
            };
            steps.push(Step { signal, wait });
            i += 2;
        }
        if steps
            .last()
            .is_some_and(|s| s.wait.is_some() && s.signal != Signal::KILL)
        {
            steps.push(Step {
                signal: Signal::KILL,
                wait: None,
            });
        }
        if steps.last().is_some_and(|s| s.signal == Signal::KILL) {
            // Waiting after a SIGKILL is meaningless: the kernel does not negotiate.
            if let Some(last) = steps.last_mut() {
                last.wait = None;
            }
        }
        Ok(Schedule { steps })
    }

    pub fn first_signal(&self) -> Signal {
        self.steps[0].signal
    }

    pub fn step(&self, i: usize) -> Option<Step> {
        self.steps.get(i).copied()
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// When step `i`, begun at `started`, gives way to the next one.
    pub fn deadline(&self, i: usize, started: Instant) -> Option<Instant> {
        self.steps.get(i)?.wait.and_then(|w| started.checked_add(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("4s"), Ok(Duration::from_secs(4)));
        assert_eq!(parse_duration("4"), Ok(Duration::from_secs(4)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90min"), Ok(Duration::from_secs(5400)));
        // Compound: largest unit first, each once.
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("1h2m3.5s"),
            Ok(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_duration("2s500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1h30min"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("1h0m1ms"),
            Ok(Duration::from_millis(3_600_001))
        );
        assert_eq!(parse_duration(" 1m30s "), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("8783h59m59s"),
            Ok(Duration::from_secs(31_622_399))
        );
        for bad in [
            "1m30",
            "30s1m",
            "1s1s",
            "1m1min",
            "500ms2s",
            "1m 30s",
            "1m-30s",
            "1ms30",
            "m30s",
            "1h.s",
            "8784h1ms",
            "8783h60m1s",
            "",
            "-1s",
            "abc",
            "1x",
            "s",
            ".",
            "1..2s",
            "1e3s",
            "99999999999999999999999999999s",
            "400d",
            "9000h",
            "\n4s",
            "4s\n",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn schedules() {
        let s = Schedule::parse("INT/20s/TERM/5s/KILL").unwrap();
        assert_eq!(s.steps().len(), 3);
        assert_eq!(s.first_signal(), Signal::INT);
        // Ending on a duration means KILL after it.
        let s = Schedule::parse("TERM/5s").unwrap();
        assert_eq!(
            s,
            Schedule::kill_after(Signal::TERM, Duration::from_secs(5))
        );
        // A lone signal waits forever.
        assert_eq!(
            Schedule::parse("INT").unwrap(),
            Schedule::forever(Signal::INT)
        );
        for bad in ["", "INT/x", "FOO/1s", "KILL/1s/TERM", "INT//KILL"] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn deadlines_are_arithmetic() {
        let s = Schedule::kill_after(Signal::INT, Duration::from_millis(300));
        let t0 = Instant::now();
        assert_eq!(s.deadline(0, t0), Some(t0 + Duration::from_millis(300)));
        assert_eq!(s.deadline(1, t0), None);
        assert_eq!(s.deadline(2, t0), None);
    }
}
