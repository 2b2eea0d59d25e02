//! Bytes as a VHDX file. A real VHDX is at least 4 MiB (headers, log, BAT and metadata each
//! in their own MiB), more than a fuzz input holds, so the input is spread out: its first four
//! 256 KiB pieces go to the start of the file's first four MiB (where qemu and Hyper-V put
//! the headers and region tables, the log, the BAT and the metadata), the rest from 4 MiB on.
//! `scripts/fuzz-smoke` packs real qemu-made VHDX files the same way for seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "vdisk_common.rs"]
mod vdisk_common;

const PIECE: usize = 256 * 1024;
const MIB: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut file = Vec::new();
    for (i, p) in data.chunks(PIECE).enumerate() {
        let at = if i < 4 {
            i * MIB
        } else {
            4 * MIB + (i - 4) * PIECE
        };
        if file.len() < at + p.len() {
            file.resize(at + p.len(), 0);
        }
        file[at..at + p.len()].copy_from_slice(p);
    }
    vdisk_common::exercise(file, "fuzz.vhdx");
});
