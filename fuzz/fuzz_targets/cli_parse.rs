//! `cli::parse` on an arbitrary argv: the input split at NUL bytes (which no argv element can
//! hold) gives the words after `sigshim`, so the dictionary's option names and values become
//! whole words. See `sigshim_fuzz::check_cli`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let words: Vec<Vec<u8>> = data.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    if words.len() > 64 {
        return;
    }
    sigshim_fuzz::check_cli(words);
});
