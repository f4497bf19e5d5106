//! `lines::LineSplitter` with random chunking: the first two bytes choose `max` (1..=600), the
//! third how many read boundaries follow (0..=15, two bytes each); the rest is the stream.
//! See `sigshim_fuzz::check_splitter` for the contract.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, n, rest @ ..] = data else {
        return;
    };
    let max = usize::from(u16::from_le_bytes([*a, *b])) % 600 + 1;
    let n = usize::from(*n % 16).min(rest.len() / 2);
    let (cut_bytes, input) = rest.split_at(n * 2);
    let mut cuts: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (input.len() + 1))
        .collect();
    cuts.sort_unstable();
    sigshim_fuzz::check_splitter(max, input, &cuts);
});
