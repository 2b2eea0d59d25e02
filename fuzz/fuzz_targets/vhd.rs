//! Any bytes as a VHD file (or anything else: detection is by content). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "vdisk_common.rs"]
mod vdisk_common;

fuzz_target!(|data: &[u8]| {
    vdisk_common::exercise(data.to_vec(), "fuzz.vhd");
});
