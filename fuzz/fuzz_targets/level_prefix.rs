//! `lines::parse_level_prefix` on arbitrary bytes; see `sigshim_fuzz::check_level_prefix`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sigshim_fuzz::check_level_prefix(data);
});
