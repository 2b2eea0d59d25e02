//! The whole capture entry point on arbitrary bytes: any encoding, any mix of formats, cut
//! anywhere. It must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = guestwall_capture::parse_capture(data, "fuzz");
    // Touch the results so that nothing is optimised away.
    let _ = (c.notes.len(), c.registry.len(), c.rules.len(), c.truncated);
});
