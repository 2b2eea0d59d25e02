//! Damaged images: truncations, flipped bytes, out-of-spec fields, BAT entries pointing
//! anywhere, damaged partition tables, and random mutations. Each gives a clear error or a
//! documented warning, never a panic or a hang.

#![allow(clippy::big_endian_bytes)] // VHD is big-endian

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use guestwall_vdisk::{Disk, Error, NoParents, PartitionTable, ReadAt, Scheme};

const MIB: u64 = 1 << 20;

fn open_mem(bytes: &[u8], name: &str) -> Result<Disk, Error> {
    Disk::from_source(Arc::new(bytes.to_vec()), Path::new(name), &NoParents, 16)
}

/// Bytes shared between cases, with a few bytes flipped (no copy per case).
struct Mutated {
    base: Arc<Vec<u8>>,
    flips: Vec<(usize, u8)>,
}

impl ReadAt for Mutated {
    fn size(&self) -> u64 {
        self.base.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.base.read_exact_at(offset, buf)?;
        for &(at, x) in &self.flips {
            if let Some(i) = (at as u64)
                .checked_sub(offset)
                .filter(|&i| i < buf.len() as u64)
            {
                buf[i as usize] ^= x;
            }
        }
        Ok(())
    }
}

/// Opens, then reads everything and the partition table; only panics are failures.
fn exercise(bytes: &[u8], name: &str) -> Result<(), Error> {
    exercise_disk(open_mem(bytes, name)?)
}

fn exercise_disk(d: Disk) -> Result<(), Error> {
    let size = d.size();
    // 64 KiB at 64 places spread over the disk, and the last bytes.
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..64u64 {
        let off = size / 64 * i;
        let n = (size - off).min(buf.len() as u64) as usize;
        let _ = d.read_exact_at(off, &mut buf[..n]);
    }
    if size > 0 {
        let _ = d.read_exact_at(size - 1, &mut buf[..1]);
    }
    let _ = d.map(0, size);
    let _ = PartitionTable::read(&d, d.logical_sector_size());
    Ok(())
}

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
fn crc32c_fix(b: &mut [u8]) {
    put32(b, 4, 0);
    let c = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(b);
    put32(b, 4, c);
}

/// A 16 MiB GPT disk with a pattern, and its qemu conversions, all in memory.
struct Images {
    raw: Vec<u8>,
    vhd_fixed: Vec<u8>,
    vhd_dyn: Vec<u8>,
    vhdx_fixed: Vec<u8>,
    vhdx_dyn: Vec<u8>,
}

fn images(dir: &TempDir) -> Images {
    let raw = dir.path("small.raw");
    run("truncate", &["-s", "16M", raw.to_str().unwrap()]);
    run_stdin("sfdisk", &["-q", raw.to_str().unwrap()], Some("label: gpt\nsize=4MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\ntype=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"data\"\n"));
    write_at(&raw, 6 * MIB, &pattern(3, 3 * MIB as usize));
    let conv = |fmt: &str, opts: &str, name: &str| {
        let p = dir.path(name);
        qemu_convert(&raw, fmt, opts, &p);
        std::fs::read(p).unwrap()
    };
    Images {
        vhd_fixed: conv("vpc", "subformat=fixed,force_size=on", "f.vhd"),
        vhd_dyn: conv("vpc", "subformat=dynamic,force_size=on", "d.vhd"),
        vhdx_fixed: conv("vhdx", "subformat=fixed,block_size=1M", "f.vhdx"),
        vhdx_dyn: conv("vhdx", "subformat=dynamic,block_size=1M", "d.vhdx"),
        raw: std::fs::read(raw).unwrap(),
    }
}

fn tools() -> bool {
    have_tools(&["qemu-img", "sfdisk", "truncate"])
}

#[test]
fn truncation_at_many_points_never_panics() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("trunc");
    let im = images(&dir);
    let mut cases = 0;
    let t0 = std::time::Instant::now();
    for (name, b) in [
        ("f.vhd", &im.vhd_fixed),
        ("d.vhd", &im.vhd_dyn),
        ("f.vhdx", &im.vhdx_fixed),
        ("d.vhdx", &im.vhdx_dyn),
        ("raw", &im.raw),
    ] {
        let n = b.len();
        let mut cuts: Vec<usize> = vec![
            0,
            1,
            7,
            8,
            9,
            511,
            512,
            513,
            1024,
            1535,
            1536,
            4096,
            0x10000,
            0x10fff,
            0x11000,
            0x20000,
            0x21000,
            0x30000,
            0x3ffff,
            0x40000,
            0x50000,
            MIB as usize,
            MIB as usize + 4096,
            2 * MIB as usize,
            3 * MIB as usize,
            4 * MIB as usize,
        ];
        cuts.extend([n - 1, n - 511, n - 512, n - 513, n - 4096, n / 2, n / 3]);
        cuts.extend((0..40).map(|i| n / 40 * i + 17));
        for c in cuts.into_iter().filter(|&c| c < n) {
            cases += 1;
            let r = exercise(&b[..c], name);
            if name.ends_with("vhdx") && (8..0x30000).contains(&c) {
                let e = r.unwrap_err();
                assert!(
                    e.to_string().contains("truncated") || e.to_string().contains("header"),
                    "{name} cut at {c:#x}: {e}"
                );
            }
        }
    }
    eprintln!("truncation: {cases} cases in {:?}", t0.elapsed());
}

/// Where the structures of each image are: (start, length).
fn hot_ranges(name: &str, b: &[u8]) -> Vec<(usize, usize)> {
    let n = b.len();
    match name {
        "d.vhd" => {
            let table = u64::from_be_bytes(b[512 + 16..512 + 24].try_into().unwrap()) as usize;
            vec![(0, 512), (512, 1024), (table, 64), (n - 512, 512)]
        }
        "raw" => vec![(0, 2048), (n - 512 * 33, 512 * 33)],
        _ => {
            let mut v = vec![(0x10000, 128), (0x20000, 128), (0x30000, 96), (0x40000, 96)];
            for i in 0..le32(b, 0x30008) as usize {
                let e = 0x30010 + 32 * i;
                let off = le64(b, e + 16) as usize;
                v.push((off, 512));
                if b[e] != 0x66 {
                    v.push((off + 0x10000, 256)); // metadata items
                }
            }
            // The log region.
            v.push((le64(b, 0x10000 + 72) as usize, 4096));
            v
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("mutate");
    let im = images(&dir);
    // A small xorshift generator: reproducible, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let t0 = std::time::Instant::now();
    let mut cases = 0;
    let mut opened = 0;
    for (name, b) in [
        ("d.vhd", &im.vhd_dyn),
        ("f.vhdx", &im.vhdx_fixed),
        ("d.vhdx", &im.vhdx_dyn),
        ("raw", &im.raw),
    ] {
        // Mutate the structures (headers, tables, metadata, BAT), not the payload.
        let hot = hot_ranges(name, b);
        let hot = |r: u64, _len: usize| -> usize {
            let (a, l) = hot[(r % hot.len() as u64) as usize];
            a + (r >> 8) as usize % l
        };
        let base = Arc::new(b.clone());
        for _ in 0..3000 {
            let flips = (0..1 + next() % 8)
                .map(|_| (hot(next(), b.len()), 1u8 << (next() % 8)))
                .collect();
            let m = Mutated {
                base: base.clone(),
                flips,
            };
            cases += 1;
            if Disk::from_source(Arc::new(m), Path::new(name), &NoParents, 16)
                .and_then(exercise_disk)
                .is_ok()
            {
                opened += 1;
            }
        }
    }
    eprintln!(
        "mutations: {cases} cases ({opened} still opened) in {:?}",
        t0.elapsed()
    );
}

#[test]
fn vhdx_headers_region_tables_and_fields() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("vhdx-fields");
    let im = images(&dir);
    let b = &im.vhdx_dyn;
    let good = open_mem(b, "d.vhdx").unwrap();
    let cur = good.vhdx_header().unwrap().clone();
    // One header damaged: the other is used.
    let mut m = b.clone();
    m[cur.offset as usize + 200] ^= 0xff;
    let d = open_mem(&m, "d.vhdx").unwrap();
    assert_ne!(d.vhdx_header().unwrap().index, cur.index);
    assert!(!d.vhdx_header().unwrap().other_valid);
    // Both damaged.
    m[0x10000 + 0x20000 - cur.offset as usize + 8] ^= 0xff;
    let e = open_mem(&m, "d.vhdx").unwrap_err().to_string();
    assert!(
        e.contains("no valid header") && e.contains("checksum"),
        "{e}"
    );
    // The next header a writer writes parses back as current.
    let (at, bytes) = cur.next_header(
        guestwall_vdisk::Guid([7; 16]),
        guestwall_vdisk::Guid([8; 16]),
    );
    let mut m = b.clone();
    m[at as usize..at as usize + 4096].copy_from_slice(&bytes);
    let d = open_mem(&m, "d.vhdx").unwrap();
    let h = d.vhdx_header().unwrap();
    assert_eq!((h.offset, h.header.sequence), (at, cur.header.sequence + 1));
    assert_eq!(h.header.data_write_guid, guestwall_vdisk::Guid([8; 16]));
    assert!(h.other_valid);
    // Region table 1 damaged: table 2 with a warning; both: an error.
    let mut m = b.clone();
    m[0x30000 + 20] ^= 1;
    let d = open_mem(&m, "d.vhdx").unwrap();
    assert!(
        d.warnings().iter().any(|w| w.contains("region table")),
        "{:?}",
        d.warnings()
    );
    m[0x40000 + 20] ^= 1;
    let e = open_mem(&m, "d.vhdx").unwrap_err().to_string();
    assert!(e.contains("both are damaged"), "{e}");
    // Regions that overlap: the BAT moved onto the metadata region.
    let rt = 0x30000;
    let (mut bat_e, mut meta_e) = (0, 0);
    for i in 0..le32(b, rt + 8) as usize {
        let e = rt + 16 + 32 * i;
        if b[e] == 0x66 {
            bat_e = e
        } else {
            meta_e = e
        }
    }
    let meta_off = le64(b, meta_e + 16);
    let bat_off = le64(b, bat_e + 16) as usize;
    let mut m = b.clone();
    for t in [0x30000, 0x40000] {
        put64(&mut m, bat_e - 0x30000 + t + 16, meta_off);
        crc32c_fix(&mut m[t..t + 0x10000]);
    }
    let e = open_mem(&m, "d.vhdx").unwrap_err().to_string();
    assert!(e.contains("overlaps"), "{e}");
    // An unknown region marked required.
    let mut m = b.clone();
    for t in [0x30000, 0x40000] {
        let n = le32(&m, t + 8) as usize;
        let e = t + 16 + 32 * n;
        m[e..e + 16].copy_from_slice(&[0x42; 16]);
        put64(&mut m, e + 16, 64 * MIB);
        put32(&mut m, e + 24, MIB as u32);
        put32(&mut m, e + 28, 1);
        put32(&mut m, t + 8, n as u32 + 1);
        crc32c_fix(&mut m[t..t + 0x10000]);
    }
    let e = open_mem(&m, "d.vhdx").unwrap_err();
    assert!(
        matches!(e, Error::Unsupported { .. }) && e.to_string().contains("required"),
        "{e}"
    );
    // Metadata fields out of spec.
    let meta = meta_off as usize;
    let item = |m: &[u8], id0: u8| -> usize {
        (0..le32(m, meta + 8) as usize >> 16)
            .map(|i| meta + 32 + 32 * i)
            .find(|&e| m[e] == id0)
            .map(|e| meta + le32(m, e + 16) as usize)
            .unwrap()
    };
    for (id0, at, val, needle) in [
        (0x37u8, 0usize, 3 * MIB, "block size"),
        (0x37, 0, 512 * MIB, "block size"),
        (0x1d, 0, 1000, "logical sector size"),
        (0xc7, 0, 520, "physical sector size"),
        (0x24, 0, 1 << 60, "virtual disk size"),
        (0x24, 0, 0, "virtual disk size"),
        (0x24, 0, 1 << 40, "BAT region"),
    ] {
        let mut m = b.clone();
        let p = item(&m, id0) + at;
        if id0 == 0x24 {
            put64(&mut m, p, val)
        } else {
            put32(&mut m, p, val as u32)
        }
        let e = open_mem(&m, "d.vhdx").unwrap_err().to_string();
        assert!(e.contains(needle), "{needle}: {e}");
    }
    // BAT entries past the end of the file, over the headers, over the metadata, bad states.
    let first_present = (0..16)
        .find(|&i| le64(b, bat_off + 8 * i) & 7 == 6)
        .unwrap();
    let e_at = bat_off + 8 * first_present;
    for (val, needle) in [
        ((1u64 << 40) | 6, "past the end of the file"),
        (6, "header section"),
        ((meta_off / MIB) << 20 | 6, "overlaps the region"),
        (((bat_off as u64) / MIB) << 20 | 6, "overlaps the region"),
        (
            ((le64(b, 0x10000 + 72)) / MIB) << 20 | 6,
            "overlaps the log",
        ),
        (((le64(b, e_at)) & !7) | 4, "state 4"),
        (((le64(b, e_at)) & !7) | 7, "state 7"),
    ] {
        let mut m = b.clone();
        put64(&mut m, e_at, val);
        let e = open_mem(&m, "d.vhdx").unwrap_err().to_string();
        assert!(e.contains(needle), "{needle}: {e}");
        assert!(
            e.contains(&format!("{e_at:#x}")),
            "names the entry's offset: {e}"
        );
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn vhd_footers_headers_and_bat() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("vhd-fields");
    let im = images(&dir);
    // Fixed: a damaged footer is an error (there is no copy).
    let mut m = im.vhd_fixed.clone();
    let n = m.len();
    m[n - 512 + 100] ^= 1;
    let e = open_mem(&m, "f.vhd").unwrap_err();
    assert!(matches!(e, Error::BadChecksum { .. }), "{e}");
    // The current size larger than the data.
    let mut m = im.vhd_fixed.clone();
    m[n - 512 + 48..n - 512 + 56].copy_from_slice(&(1u64 << 50).to_be_bytes());
    let c = !m[n - 512..]
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |a, (_, &x)| a.wrapping_add(x.into()));
    m[n - 448..n - 444].copy_from_slice(&c.to_be_bytes());
    let e = open_mem(&m, "f.vhd").unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("current size"), "{e}");
    // Dynamic: the trailing footer damaged, the copy at 0 is used with a warning.
    let b = &im.vhd_dyn;
    let n = b.len();
    let mut m = b.clone();
    m[n - 512 + 100] ^= 1;
    let d = open_mem(&m, "d.vhd").unwrap();
    assert!(
        d.warnings().iter().any(|w| w.contains("copy at offset 0")),
        "{:?}",
        d.warnings()
    );
    assert_same_bytes_mem(&d, &open_mem(b, "d.vhd").unwrap());
    // Both footers damaged.
    m[100] ^= 1;
    assert!(open_mem(&m, "d.vhd").is_err());
    // The dynamic header damaged.
    let mut m = b.clone();
    m[512 + 300] ^= 1;
    let e = open_mem(&m, "d.vhd").unwrap_err();
    assert!(matches!(e, Error::BadChecksum { offset: 512, .. }), "{e}");
    // A BAT entry past the end, and one over the header (checksums need no fix: the BAT has none).
    let table = u64::from_be_bytes(b[512 + 16..512 + 24].try_into().unwrap()) as usize;
    let used = (0..8)
        .find(|&i| be32(b, table + 4 * i) != u32::MAX)
        .unwrap();
    for (v, needle) in [(0x7fff_fff0u32, "past the end"), (1, "overlaps")] {
        let mut m = b.clone();
        m[table + 4 * used..table + 4 * used + 4].copy_from_slice(&v.to_be_bytes());
        let e = open_mem(&m, "d.vhd").unwrap_err().to_string();
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

fn assert_same_bytes_mem(a: &Disk, b: &Disk) {
    assert_eq!(a.size(), b.size());
    let mut x = vec![0u8; MIB as usize];
    let mut y = vec![0u8; MIB as usize];
    let mut off = 0;
    while off < a.size() {
        a.read_exact_at(off, &mut x).unwrap();
        b.read_exact_at(off, &mut y).unwrap();
        assert!(x == y, "differ in MiB at {off:#x}");
        off += MIB;
    }
}

#[test]
fn damaged_partition_tables() {
    if !have_tools(&["sfdisk", "truncate"]) {
        return;
    }
    let dir = TempDir::new("parts");
    let raw = dir.path("g.raw");
    run("truncate", &["-s", "16M", raw.to_str().unwrap()]);
    run_stdin(
        "sfdisk",
        &["-q", raw.to_str().unwrap()],
        Some("label: gpt\nsize=4MiB\nsize=4MiB\ntype=DE94BBA4-06D1-4D40-A16A-BFD50179D6AC\n"),
    );
    let g = std::fs::read(&raw).unwrap();
    let good = PartitionTable::read(&g, 512).unwrap();
    assert_eq!(good.partitions.len(), 3);
    assert_eq!(good.partitions[2].kind.name(), "Windows recovery");
    // Primary header damaged: the backup, with a warning.
    let mut m = g.clone();
    m[512 + 40] ^= 1;
    let t = PartitionTable::read(&m, 512).unwrap();
    assert_eq!(t.partitions, good.partitions);
    assert!(
        t.warnings.iter().any(|w| w.contains("backup")),
        "{:?}",
        t.warnings
    );
    // Primary entry array damaged: the backup too.
    let mut m = g.clone();
    m[1024 + 200] ^= 1;
    let t = PartitionTable::read(&m, 512).unwrap();
    assert_eq!(t.partitions, good.partitions);
    assert!(
        t.warnings[0].contains("entry array checksum"),
        "{:?}",
        t.warnings
    );
    // Both damaged.
    let n = m.len();
    m[n - 512 + 40] ^= 1;
    let e = PartitionTable::read(&m, 512).unwrap_err().to_string();
    assert!(e.contains("both headers are damaged"), "{e}");
    // The disk cut short: the last partition and the backup header are gone; the primary
    // header's usable range no longer fits, so the table is refused with the reason.
    let cut = &g[..12 * MIB as usize];
    let e = PartitionTable::read(&cut.to_vec(), 512)
        .unwrap_err()
        .to_string();
    assert!(e.contains("usable LBAs"), "{e}");
    // MBR: a partition past the end is dropped with a warning; EBR chains that loop.
    let raw = dir.path("m.raw");
    run("truncate", &["-s", "16M", raw.to_str().unwrap()]);
    run_stdin("sfdisk", &["-q", raw.to_str().unwrap()], Some("label: dos\nsize=4MiB, type=7\ntype=5\nsize=2MiB, type=83\nsize=2MiB, type=7\nsize=2MiB, type=7\n"));
    let m0 = std::fs::read(&raw).unwrap();
    let good = PartitionTable::read(&m0, 512).unwrap();
    assert_eq!(
        good.partitions.iter().map(|p| p.index).collect::<Vec<_>>(),
        [1, 2, 5, 6, 7]
    );
    assert_table_matches_sfdisk(&good, &raw);
    let mut m = m0.clone();
    put32(&mut m, 446 + 12, 1 << 30);
    let t = PartitionTable::read(&m, 512).unwrap();
    assert_eq!(t.partitions.len(), 4);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("partition 1") && w.contains("past the end")),
        "{:?}",
        t.warnings
    );
    // The second EBR's link points back to the first EBR.
    let ext = le32(&m0, 446 + 16 + 8) as usize;
    let ebr1 = ext * 512;
    let next_rel = le32(&m0, ebr1 + 462 + 8) as usize;
    let ebr2 = (ext + next_rel) * 512;
    let mut m = m0.clone();
    put32(&mut m, ebr2 + 462 + 8, 0);
    m[ebr2 + 462 + 4] = 5;
    put32(&mut m, ebr2 + 462 + 8, next_rel as u32); // to itself
    let t = PartitionTable::read(&m, 512).unwrap();
    assert!(
        t.warnings.iter().any(|w| w.contains("loops")),
        "{:?}",
        t.warnings
    );
    assert_eq!(
        t.partitions.iter().map(|p| p.index).collect::<Vec<_>>(),
        [1, 2, 5, 6]
    );
    // A logical partition past the end of its extended partition.
    let mut m = m0.clone();
    put32(&mut m, ebr2 + 446 + 12, 1 << 20);
    let t = PartitionTable::read(&m, 512).unwrap();
    assert!(
        t.warnings.iter().any(|w| w.contains("logical partition 6")),
        "{:?}",
        t.warnings
    );
    // No table, but an NTFS or BitLocker boot sector: one whole-disk partition.
    let mut v = vec![0u8; 4 * MIB as usize];
    v[3..11].copy_from_slice(b"NTFS    ");
    v[510] = 0x55;
    v[511] = 0xaa;
    let t = PartitionTable::read(&v, 512).unwrap();
    assert_eq!(t.scheme, Scheme::WholeDisk);
    assert_eq!((t.partitions[0].start, t.partitions[0].len), (0, 4 * MIB));
    v[3..11].copy_from_slice(b"-FVE-FS-");
    assert_eq!(
        PartitionTable::read(&v, 512).unwrap().partitions[0]
            .kind
            .name(),
        "BitLocker"
    );
    // Nothing at all.
    let t = PartitionTable::read(&vec![0u8; MIB as usize], 512).unwrap();
    assert_eq!(t.scheme, Scheme::None);
    assert!(t.partitions.is_empty());
}

#[test]
fn gpt_with_4k_sectors_is_found() {
    if !have_tools(&["sfdisk", "truncate"]) {
        return;
    }
    // sfdisk on a 4K-sector "device": a loop device is not available here, so the 512-byte
    // table sfdisk writes is moved to 4K LBAs by hand (header at 4096, entries at LBA 2).
    let dir = TempDir::new("gpt4k");
    let raw = dir.path("g.raw");
    run("truncate", &["-s", "16M", raw.to_str().unwrap()]);
    run_stdin(
        "sfdisk",
        &["-q", raw.to_str().unwrap()],
        Some("label: gpt\nfirst-lba: 2048\nsize=4MiB\n"),
    );
    let g = std::fs::read(&raw).unwrap();
    let mut v = vec![0u8; 64 * MIB as usize];
    v[..512].copy_from_slice(&g[..512]);
    let mut h = g[512..512 + 92].to_vec();
    let last = v.len() as u64 / 4096 - 1;
    put64(&mut h, 32, last);
    put64(&mut h, 40, 6);
    put64(&mut h, 48, last - 6);
    put64(&mut h, 72, 2);
    let mut entries = g[1024..1024 + 128 * 128].to_vec();
    put64(&mut entries, 32, 256); // 1 MiB in 4K sectors
    put64(&mut entries, 40, 256 + 1023);
    let ecrc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&entries);
    put32(&mut h, 88, ecrc);
    put32(&mut h, 16, 0);
    let hcrc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&h);
    put32(&mut h, 16, hcrc);
    v[4096..4096 + 92].copy_from_slice(&h);
    v[8192..8192 + entries.len()].copy_from_slice(&entries);
    let t = PartitionTable::read(&v, 512).unwrap();
    assert_eq!(t.sector_size, 4096);
    assert_eq!((t.partitions[0].start, t.partitions[0].len), (MIB, 4 * MIB));
}
