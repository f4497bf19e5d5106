//! journald's native protocol: `journald::decode` takes the raw input without panicking, then
//! an entry built from structured input (identifier, PID, facility, priority, message, any
//! bytes) round-trips exactly. See `sigshim_fuzz::check_journald`.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sigshim::output::journald::decode(data);
    let mut u = Unstructured::new(data);
    let Ok((identifier, pid, facility, priority)) = <(Vec<u8>, u32, u8, u8)>::arbitrary(&mut u)
    else {
        return;
    };
    let message = u.take_rest();
    sigshim_fuzz::check_journald(&identifier, pid, facility, priority, message);
});
