//! `signal`: arbitrary text (lossily decoded from the input bytes, as the command line
//! would hand it over) through sigshim's parser; see `sigshim_fuzz::check_signal` for the contract.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sigshim_fuzz::check_signal(&String::from_utf8_lossy(data));
});
