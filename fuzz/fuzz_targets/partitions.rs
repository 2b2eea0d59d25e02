//! Any bytes as a disk, read for MBR/GPT partition tables with 512- and 4096-byte sectors.
//! Must never panic.
#![no_main]

use guestwall_vdisk::{PartitionTable, ReadAt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let disk = data.to_vec();
    for ss in [512, 4096] {
        if let Ok(t) = PartitionTable::read(&disk, ss) {
            for p in &t.partitions {
                if let Ok(v) = p.view(&disk) {
                    let mut b = [0u8; 16];
                    let _ = v.read_exact_at(0, &mut b[..16.min(v.size() as usize)]);
                }
            }
        }
    }
});
