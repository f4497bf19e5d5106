//! The syslog encoder with any tag, hostname, PID, facility, severity, clock value and message
//! bytes, in both formats. See `sigshim_fuzz::check_syslog`.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((rfc5424, facility, severity, pid, tag, host)) =
        <(bool, u8, u8, u32, Vec<u8>, Vec<u8>)>::arbitrary(&mut u)
    else {
        return;
    };
    let Ok((year, month, day, hour, min, sec, micros, offset)) =
        <(i32, u8, u8, u8, u8, u8, u32, i32)>::arbitrary(&mut u)
    else {
        return;
    };
    let stamp = sigshim_fuzz::stamp(year, month, day, hour, min, sec, micros, offset);
    let message = u.take_rest();
    sigshim_fuzz::check_syslog(
        rfc5424, facility, severity, pid, &tag, &host, stamp, message,
    );
});
