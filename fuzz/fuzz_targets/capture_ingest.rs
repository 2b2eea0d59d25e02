//! A capture on arbitrary bytes, turned into the firewall model (the ingest step after the
//! parser) and diagnosed: it must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = guestwall_capture::parse_capture(data, "fuzz");
    if let Ok(configs) = guestwall_ingest::capture::load_capture(&c) {
        for cfg in &configs {
            let d = guestwall_diagnose::diagnose(cfg, None);
            let _ = d.reachable;
        }
    }
});
