//! Any bytes as a .reg file: the parser never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = guestwall_regf::regfile::parse_reg(data);
});
