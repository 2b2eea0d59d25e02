//! Any text as a firewall rule string: parsing never panics, and the lossless layer gives back
//! exactly the input. Connection security rules too.
#![no_main]

use guestwall_firewall::{ConSecRule, Rule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let r = Rule::parse("fuzz", s);
    assert_eq!(r.raw.to_string(), s);
    let _ = ConSecRule::parse("fuzz", s);
});
