//! What a diagnosis costs: time and bytes read (through `Counting`) to open the volume, find
//! Windows, and read 64 KiB at random offsets of the 12 MB SYSTEM hive, against the hive's
//! size. Printed as NOTICE lines; the assertions check that reading stays lazy.

mod common;

use common::*;
use guestwall_ntfsvol::{HiveFile, Volume};
use guestwall_source::{Counting, FileSource, PageCache, ReadAt};
use std::time::Instant;

fn measure(kind: &str) {
    let img = image(kind);
    let src = std::sync::Arc::new(Counting::new(FileSource::open(&img).unwrap()));
    let t0 = Instant::now();
    let vol = Volume::open(src.clone()).unwrap();
    let (open_t, open_b, open_r) = (t0.elapsed(), src.bytes_read(), src.reads());
    let t1 = Instant::now();
    let wins = vol.find_windows().unwrap();
    let (find_t, find_b, find_r) = (
        t1.elapsed(),
        src.bytes_read() - open_b,
        src.reads() - open_r,
    );
    let path = wins[0].path_of(HiveFile::System).unwrap();
    let t2 = Instant::now();
    let hive = vol.file(&path).unwrap();
    let (map_t, map_b) = (t2.elapsed(), src.bytes_read() - open_b - find_b);
    let before = src.bytes_read();
    let t3 = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut x = 0x1234_5678_9abc_def0u64;
    let reads = 32;
    for _ in 0..reads {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = x % (hive.size() - buf.len() as u64);
        hive.read_exact_at(at, &mut buf).unwrap();
    }
    let (read_t, read_b) = (t3.elapsed(), src.bytes_read() - before);
    let total = src.bytes_read();
    notice(&format!(
        "{kind}: open {open_t:?} ({open_b} bytes, {open_r} reads); find_windows {find_t:?} ({find_b} bytes, {find_r} reads); \
         map {path} {map_t:?} ({map_b} bytes, {} runs); {reads} × 64 KiB at random offsets {read_t:?} ({read_b} bytes); \
         total {total} bytes = {:.1}% of the {}-byte hive",
        hive.runs().len(),
        100.0 * total as f64 / hive.size() as f64,
        hive.size()
    ));
    // Reads are exactly what was asked for: no read-ahead, no whole-file copy.
    assert_eq!(read_b, reads * 64 * 1024);
    // Everything before the reads (volume metadata, $UpCase's 128 KiB, directories, records)
    // is a small fraction of the hive.
    assert!(
        open_b + find_b + map_b < hive.size() / 16,
        "metadata cost {} bytes",
        open_b + find_b + map_b
    );

    // The same reads through a page cache, twice: the second pass costs nothing.
    let cached = PageCache::new(&hive, 4096, 1024);
    let before = src.bytes_read();
    for pass in 0..2 {
        let mut y = 0x1234_5678_9abc_def0u64;
        for _ in 0..reads {
            y ^= y << 13;
            y ^= y >> 7;
            y ^= y << 17;
            let at = y % (hive.size() - buf.len() as u64);
            cached.read_exact_at(at, &mut buf[..4096]).unwrap();
        }
        if pass == 0 {
            assert!(src.bytes_read() - before <= reads * 8192);
        }
    }
    let (hits, misses) = cached.stats();
    assert!(hits >= reads, "{hits} hits, {misses} misses");
}

#[test]
fn cost_of_a_diagnosis_contiguous_hive() {
    if ready().is_none() {
        return;
    }
    measure("main");
}

#[test]
fn cost_of_a_diagnosis_fragmented_hive() {
    if ready().is_none() {
        return;
    }
    measure("frag");
}
