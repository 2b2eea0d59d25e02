//! Shared by the vdisk fuzz targets: open a disk from bytes (parents refused), read samples,
//! map everything, read the partition table. Must never panic.

use std::path::Path;
use std::sync::Arc;

use guestwall_vdisk::{Disk, NoParents, PartitionTable, ReadAt};

pub fn exercise(file: Vec<u8>, name: &str) {
    let Ok(d) = Disk::from_source(Arc::new(file), Path::new(name), &NoParents, 4) else {
        return;
    };
    let size = d.size();
    let mut buf = vec![0u8; 16 * 1024];
    for i in 0..16u64 {
        let off = size / 16 * i;
        let n = (size - off).min(buf.len() as u64) as usize;
        let _ = d.read_exact_at(off, &mut buf[..n]);
    }
    let _ = d.map(0, size.min(64 << 20));
    let _ = d
        .vhdx_header()
        .map(|h| h.next_header(Default::default(), Default::default()));
    if let Ok(t) = PartitionTable::read(&d, d.logical_sector_size()) {
        for p in &t.partitions {
            if let Ok(v) = p.view(&d) {
                let _ = v.read_exact_at(0, &mut buf[..512.min(v.size() as usize)]);
            }
        }
    }
}
