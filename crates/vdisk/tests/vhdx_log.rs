//! A dirty VHDX log. qemu replays and empties the log before closing, so the test writes
//! the log entries itself, following MS-VHDX §2.3, into a qemu-made dynamic VHDX: a new
//! header (sequence + 1) carrying a LogGuid, payload blocks appended to the file, and log
//! entries whose descriptors update the BAT sector to point at them (and zero part of one).
//! The replayed view is checked against the intended content and against qemu's own replay
//! (`qemu-img check -r all` on a copy, then `qemu-img convert -O raw`).

mod common;

use std::path::Path;

use common::*;
use crc::{Crc, CRC_32_ISCSI};
use guestwall_vdisk::{Disk, Error, Format};

const MIB: u64 = 1 << 20;
const C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);
const BAT_GUID: [u8; 16] = [
    0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08,
];
const LOG_GUID: [u8; 16] = *b"guestwall-log-01";

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn crc_fix(b: &mut [u8]) {
    put32(b, 4, 0);
    let c = C.checksum(b);
    put32(b, 4, c);
}

enum Desc {
    Data { file_offset: u64, sector: Vec<u8> },
    Zero { file_offset: u64, len: u64 },
}

/// One log entry (MS-VHDX §2.3.1).
fn entry(seq: u64, tail: u32, flushed: u64, last: u64, descs: &[Desc]) -> Vec<u8> {
    let desc_area = (64 + 32 * descs.len()).next_multiple_of(4096);
    let data_count = descs
        .iter()
        .filter(|d| matches!(d, Desc::Data { .. }))
        .count();
    let len = desc_area + 4096 * data_count;
    let mut e = vec![0u8; len];
    e[..4].copy_from_slice(b"loge");
    put32(&mut e, 8, len as u32);
    put32(&mut e, 12, tail);
    put64(&mut e, 16, seq);
    put32(&mut e, 24, descs.len() as u32);
    e[32..48].copy_from_slice(&LOG_GUID);
    put64(&mut e, 48, flushed);
    put64(&mut e, 56, last);
    let mut k = 0;
    for (i, d) in descs.iter().enumerate() {
        let o = 64 + 32 * i;
        match d {
            Desc::Zero { file_offset, len } => {
                e[o..o + 4].copy_from_slice(b"zero");
                put64(&mut e, o + 8, *len);
                put64(&mut e, o + 16, *file_offset);
            }
            Desc::Data {
                file_offset,
                sector,
            } => {
                e[o..o + 4].copy_from_slice(b"desc");
                e[o + 4..o + 8].copy_from_slice(&sector[4092..]);
                e[o + 8..o + 16].copy_from_slice(&sector[..8]);
                put64(&mut e, o + 16, *file_offset);
                let s = desc_area + 4096 * k;
                k += 1;
                e[s..s + 4].copy_from_slice(b"data");
                put32(&mut e, s + 4, (seq >> 32) as u32);
                e[s + 8..s + 4092].copy_from_slice(&sector[8..4092]);
                put32(&mut e, s + 4092, seq as u32);
            }
        }
        put64(&mut e, o + 24, seq);
    }
    crc_fix(&mut e);
    e
}

struct Dirty {
    bytes: Vec<u8>,
    log_at: usize,
    /// Virtual blocks (1 MiB) the log maps, and their new content.
    expect: Vec<(u64, Vec<u8>)>,
}

/// Makes `img` (a qemu dynamic VHDX with 1 MiB blocks) dirty: blocks 40 and 41 appended with
/// patterns, the BAT change only in the log (two entries, seq 10 and 11), the first 8 KiB of
/// block 40 zeroed by a zero descriptor, plus an older lone entry (seq 5) that must be ignored.
fn make_dirty(img: &Path) -> Dirty {
    let mut b = std::fs::read(img).unwrap();
    b.resize((b.len() as u64).next_multiple_of(MIB) as usize, 0);
    // Current header.
    let seq_of = |b: &[u8], at: usize| le64(b, at + 8);
    let (cur, other) = if seq_of(&b, 0x20000) > seq_of(&b, 0x10000) {
        (0x20000, 0x10000)
    } else {
        (0x10000, 0x20000)
    };
    let log_off = le64(&b, cur + 72) as usize;
    let log_len = le32(&b, cur + 68) as usize;
    assert!(log_len >= MIB as usize);
    let rt = 0x30000;
    let bat_at = (0..le32(&b, rt + 8) as usize)
        .map(|i| rt + 16 + 32 * i)
        .find(|&e| b[e..e + 16] == BAT_GUID)
        .map(|e| le64(&b, e + 16) as usize)
        .unwrap();
    // Payload written before the "crash": two new blocks at the end.
    let new1 = b.len() as u64;
    let p1 = pattern(0x40, MIB as usize);
    let p2 = pattern(0x41, MIB as usize);
    b.extend_from_slice(&p1);
    b.extend_from_slice(&p2);
    let size = b.len() as u64;
    // The BAT sector holding entries 40 and 41 (chunk ratio 4096: index = block).
    const BLOCK: usize = 40;
    let sec_at = bat_at + (BLOCK * 8).next_multiple_of(4096)
        - if (BLOCK * 8).is_multiple_of(4096) {
            0
        } else {
            4096
        };
    let mut sec1 = b[sec_at..sec_at + 4096].to_vec();
    let at40 = 40 * 8 - (sec_at - bat_at);
    put64(&mut sec1, at40, ((new1 / MIB) << 20) | 6);
    let mut sec2 = sec1.clone();
    put64(&mut sec2, at40 + 8, (((new1 + MIB) / MIB) << 20) | 6);
    let e1 = entry(
        10,
        0,
        size,
        size,
        &[
            Desc::Data {
                file_offset: sec_at as u64,
                sector: sec1,
            },
            Desc::Zero {
                file_offset: new1,
                len: 8192,
            },
        ],
    );
    let e2 = entry(
        11,
        0,
        size,
        size,
        &[Desc::Data {
            file_offset: sec_at as u64,
            sector: sec2,
        }],
    );
    let stale_at = e1.len() + e2.len() + 4096;
    let stale = entry(
        5,
        stale_at as u32,
        size,
        size,
        &[Desc::Zero {
            file_offset: sec_at as u64,
            len: 4096,
        }],
    );
    b[log_off..log_off + log_len].fill(0);
    b[log_off..log_off + e1.len()].copy_from_slice(&e1);
    b[log_off + e1.len()..log_off + e1.len() + e2.len()].copy_from_slice(&e2);
    b[log_off + stale_at..log_off + stale_at + stale.len()].copy_from_slice(&stale);
    // The new header (sequence + 1, with the LogGuid) in the other slot.
    let mut h = b[cur..cur + 4096].to_vec();
    put64(&mut h, 8, seq_of(&b, cur) + 1);
    h[48..64].copy_from_slice(&LOG_GUID);
    crc_fix(&mut h);
    b[other..other + 4096].copy_from_slice(&h);
    let mut block40 = p1;
    block40[..8192].fill(0);
    Dirty {
        bytes: b,
        log_at: log_off,
        expect: vec![(40, block40), (41, p2)],
    }
}

#[test]
fn dirty_log_is_replayed_in_memory_like_qemu_replays_it() {
    if !have_tools(&["qemu-img", "sfdisk", "mkfs.fat", "mkntfs", "truncate", "dd"]) {
        return;
    }
    let dir = TempDir::new("vhdx-log");
    let raw = build_gpt_raw(&dir);
    let clean = dir.path("clean.vhdx");
    qemu_convert(&raw, "vhdx", "subformat=dynamic,block_size=1M", &clean);
    let dirty = make_dirty(&clean);
    let img = dir.path("dirty.vhdx");
    std::fs::write(&img, &dirty.bytes).unwrap();
    let d = Disk::open(&img).unwrap();
    assert_eq!(d.format(), Format::VhdxDynamic);
    assert!(d.log_dirty());
    assert!(
        d.warnings()
            .iter()
            .any(|w| w.contains("replayed in memory") && w.contains("2 entries")),
        "{:?}",
        d.warnings()
    );
    // The intended content: the raw disk with blocks 40 and 41 replaced.
    let mut want = std::fs::read(&raw).unwrap();
    for (blk, data) in &dirty.expect {
        let at = (*blk * MIB) as usize;
        want[at..at + MIB as usize].copy_from_slice(data);
    }
    let expected = dir.path("expected.raw");
    std::fs::write(&expected, &want).unwrap();
    assert_same_bytes(&d, &expected, "replayed view vs intended content");
    // The file was not touched.
    assert_eq!(std::fs::read(&img).unwrap(), dirty.bytes);
    // qemu refuses to read it as it is; after its own replay it reads what we read.
    let q = dir.path("qemu.vhdx");
    std::fs::write(&q, &dirty.bytes).unwrap();
    run(
        "qemu-img",
        &[
            "check",
            "-q",
            "-r",
            "all",
            "-f",
            "vhdx",
            q.to_str().unwrap(),
        ],
    );
    let qraw = dir.path("qemu.raw");
    qemu_raw(&q, "vhdx", &qraw);
    assert_same_bytes(&d, &qraw, "replayed view vs qemu's replay");
    // After qemu's replay the log is clean.
    let d2 = Disk::open(&q).unwrap();
    assert!(!d2.log_dirty());
    assert_same_bytes(&d2, &qraw, "qemu-replayed file");
}

#[test]
fn unreplayable_logs_are_refused_with_the_reason() {
    if !have_tools(&["qemu-img"]) {
        return;
    }
    let dir = TempDir::new("vhdx-badlog");
    let clean = dir.path("clean.vhdx");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=1M",
            clean.to_str().unwrap(),
            "96M",
        ],
    );
    let dirty = make_dirty(&clean);
    let img = dir.path("bad.vhdx");
    let refuse = |bytes: &[u8], needle: &str| {
        std::fs::write(&img, bytes).unwrap();
        let e = Disk::open(&img).unwrap_err();
        assert!(matches!(e, Error::LogReplay { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
    };
    // A data sector whose sequence number disagrees (checksum recomputed).
    let mut b = dirty.bytes.clone();
    let e1 = dirty.log_at;
    let len = le32(&b, e1 + 8) as usize;
    put32(&mut b, e1 + len - 4, 99);
    crc_fix(&mut b[e1..e1 + len]);
    refuse(&b, "has sequence 99");
    // The newest entry's tail points to nothing: no complete sequence; the older lone entry
    // (seq 5) is the active sequence then, and it is fine. Break it too to get a refusal.
    let mut b = dirty.bytes.clone();
    let e2 = e1 + len;
    let len2 = le32(&b, e2 + 8) as usize;
    put32(&mut b, e2 + 12, 0x80000);
    crc_fix(&mut b[e2..e2 + len2]);
    put32(&mut b, e1 + 12, 0x80000);
    crc_fix(&mut b[e1..e1 + len]);
    let stale = e1 + len + len2 + 4096;
    let ls = le32(&b, stale + 8) as usize;
    put32(&mut b, stale + 12, 0x80000);
    crc_fix(&mut b[stale..stale + ls]);
    refuse(&b, "none forms a complete sequence");
    // The file is shorter than FlushedFileOffset.
    let mut b = dirty.bytes.clone();
    b.truncate(b.len() - MIB as usize);
    refuse(&b, "FlushedFileOffset");
    // A LogGuid with no entries at all: clean, nothing replayed.
    let mut b = dirty.bytes.clone();
    b[e1..e1 + 64].fill(0);
    b[e2..e2 + 64].fill(0);
    b[stale..stale + 64].fill(0);
    std::fs::write(&img, &b).unwrap();
    let d = Disk::open(&img).unwrap();
    assert!(!d.log_dirty());
}
