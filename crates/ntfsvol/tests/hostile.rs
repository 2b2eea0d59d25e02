//! Damaged volumes: truncation, flipped boot sector fields, broken MFT records, bad runs, a
//! directory index that points back into itself, BitLocker, other file systems, and random
//! mutations. Every case is a precise error, never a panic or a hang.

mod common;

use common::*;
use guestwall_ntfsvol::{Error, FileView, Volume};
use guestwall_source::ReadAt;
use std::process::Command;
use std::time::{Duration, Instant};

fn open_err(img: Vec<u8>) -> Error {
    match Volume::open(img) {
        Ok(_) => panic!("opened a damaged volume"),
        Err(e) => e,
    }
}

fn le16(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}
fn le32(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize
}

/// Undoes the update sequence fixups of a multi-sector record in place; returns the USN.
fn unfix(rec: &mut [u8]) -> [u8; 2] {
    let (ofs, cnt) = (le16(rec, 4), le16(rec, 6));
    let usn = [rec[ofs], rec[ofs + 1]];
    for i in 0..cnt - 1 {
        let tail = (i + 1) * 512 - 2;
        assert_eq!([rec[tail], rec[tail + 1]], usn, "record fixup");
        rec[tail] = rec[ofs + 2 + 2 * i];
        rec[tail + 1] = rec[ofs + 3 + 2 * i];
    }
    usn
}

/// Puts the fixups back (after a change made on unfixed bytes).
fn refix(rec: &mut [u8], usn: [u8; 2]) {
    let (ofs, cnt) = (le16(rec, 4), le16(rec, 6));
    for i in 0..cnt - 1 {
        let tail = (i + 1) * 512 - 2;
        rec[ofs + 2 + 2 * i] = rec[tail];
        rec[ofs + 3 + 2 * i] = rec[tail + 1];
        rec[tail] = usn[0];
        rec[tail + 1] = usn[1];
    }
}

/// Edits MFT record `n` of `img` (fixups undone around the edit).
fn edit_record(img: &mut [u8], at: usize, size: usize, f: impl FnOnce(&mut [u8])) {
    let rec = &mut img[at..at + size];
    assert_eq!(&rec[0..4], b"FILE");
    let usn = unfix(rec);
    f(rec);
    refix(rec, usn);
}

/// The offset in the record of its first attribute of type `ty`.
fn find_attr(rec: &[u8], ty: u32) -> usize {
    let mut off = le16(rec, 20);
    loop {
        let t = le32(rec, off) as u32;
        assert_ne!(t, 0xFFFF_FFFF, "attribute {ty:#x} not found");
        if t == ty {
            return off;
        }
        off += le32(rec, off + 4);
    }
}

#[test]
fn not_ntfs_bitlocker_zeros_fat32_disks() {
    if ready().is_none() {
        return;
    }
    let base = load(&image("none"));
    let mut bl = base.clone();
    bl[3..11].copy_from_slice(b"-FVE-FS-");
    let e = open_err(bl);
    assert!(matches!(e, Error::BitLocker));
    assert!(
        e.to_string()
            .contains("encrypted with BitLocker; unlock it first (for example with dislocker) and pass the unlocked volume"),
        "{e}"
    );
    let e = open_err(vec![0u8; 1 << 20]).to_string();
    assert!(e.contains("zeros"), "{e}");
    let e = open_err(vec![0u8; 100]).to_string();
    assert!(e.contains("too small"), "{e}");

    let fat = workdir().join("esp.img");
    std::fs::File::create(&fat)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-n", "ESP"])
        .arg(&fat));
    let e = open_err(load(&fat)).to_string();
    assert!(e.contains("FAT32 (an EFI system partition?)"), "{e}");

    // A whole disk (MBR, then GPT) instead of its partition.
    let disk = workdir().join("disk.img");
    for (label, want) in [("dos", "MBR"), ("gpt", "GPT")] {
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let mut child = Command::new("sfdisk")
            .args(["-q", "--no-reread", "--no-tell-kernel"])
            .arg(&disk)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("label: {label}\nstart=2048, size=8192\n").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        let e = open_err(load(&disk)).to_string();
        assert!(e.contains(want) && e.contains("pass one partition"), "{e}");
    }
}

#[test]
fn truncated_and_damaged_boot_sectors() {
    if ready().is_none() {
        return;
    }
    let base = load(&image("none"));
    let e = open_err(base[..8 << 20].to_vec());
    assert!(
        matches!(&e, Error::BootSector { field, detail } if field.contains("total sectors") && detail.contains("truncated")),
        "{e}"
    );
    // (offset, bytes, the field the error names; None: any error, the geometry being valid
    // but what follows from it wrong).
    let cases: &[(usize, &[u8], Option<&str>)] = &[
        (0x0B, &[0xE8, 0x03], Some("bytes per sector")), // 1000
        (0x0B, &[0x00, 0x20], Some("bytes per sector")), // 8192
        (0x0D, &[3], Some("sectors per cluster")),
        (0x0D, &[0xE0], Some("sectors per cluster")), // 2^32 sectors
        (0x0D, &[0x80], Some("MFT mirror")),          // 64 KiB clusters: the mirror is past the end
        (0x28, &[0; 8], Some("total sectors")),
        (0x28, &[0xFF; 8], Some("total sectors")),
        (0x30, &[0xFF; 8], Some("MFT cluster")),
        (0x30, &[0; 8], Some("MFT cluster")),
        (0x30, &[5, 0, 0, 0, 0, 0, 0, 0], None), // a cluster that holds no MFT
        (
            0x38,
            &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0],
            Some("MFT mirror"),
        ),
        (0x40, &[0x40], Some("clusters per MFT record")),
        (0x40, &[0xF0], Some("clusters per MFT record")), // 64 KiB records
        (0x40, &[0xF4], None),                            // 4 KiB records: record 0 is not one
        (0x44, &[0xE0], Some("clusters per index record")),
        (0x1FE, &[0x55, 0x00], Some("signature")),
    ];
    for (at, bytes, field) in cases {
        let mut img = base.clone();
        img[*at..*at + bytes.len()].copy_from_slice(bytes);
        match (Volume::open(img), field) {
            (Err(Error::BootSector { field: f, detail }), Some(want)) => {
                assert!(f.contains(want), "{at:#x}: {f}: {detail}")
            }
            (Err(e), None) => assert!(!matches!(e, Error::CratePanic { .. }), "{at:#x}: {e}"),
            (Err(e), Some(want)) => panic!("{at:#x}: wanted {want}, got {e}"),
            (Ok(_), _) => panic!("{at:#x}: opened"),
        }
    }
}

#[test]
fn damaged_mft_records() {
    if ready().is_none() {
        return;
    }
    let img_path = image("main");
    let base = load(&img_path);
    let vol = Volume::open(base.clone()).unwrap();
    let rs = vol.geometry().file_record_size as usize;
    let sys = vol.file("Windows/System32/config/SYSTEM").unwrap();
    let n = sys.record();
    let at = vol.record_offset(n).unwrap() as usize;
    let at0 = vol.record_offset(0).unwrap() as usize;
    drop(vol);

    // The MFT's own record with a torn sector.
    let mut img = base.clone();
    img[at0 + 1022] ^= 0xFF;
    let e = open_err(img);
    assert!(
        matches!(&e, Error::Record { record: 0, detail, .. } if detail.contains("fixup mismatch in sector 1")),
        "{e}"
    );

    let expect_file_err = |img: Vec<u8>, check: &dyn Fn(&Error) -> bool| {
        let vol = Volume::open(img).unwrap();
        let e = vol.file("Windows/System32/config/SYSTEM").unwrap_err();
        assert!(check(&e), "{e}");
        // find_windows meets the same record and fails the same way, or skips it.
        let _ = vol.find_windows();
    };

    // SYSTEM's record: torn sector, bad signature, attribute length out of range.
    let mut img = base.clone();
    img[at + 510] ^= 0xFF;
    expect_file_err(
        img,
        &|e| matches!(e, Error::Record { record, detail, .. } if *record == n && detail.contains("fixup")),
    );
    let mut img = base.clone();
    img[at..at + 4].copy_from_slice(b"BAAD");
    expect_file_err(
        img,
        &|e| matches!(e, Error::Record { detail, .. } if detail.contains("BAAD")),
    );
    let mut img = base.clone();
    edit_record(&mut img, at, rs, |r| {
        let d = find_attr(r, 0x80);
        r[d + 4..d + 8].copy_from_slice(&0x7FF8u32.to_le_bytes());
    });
    expect_file_err(
        img,
        &|e| matches!(e, Error::Record { detail, .. } if detail.contains("runs past bytes in use")),
    );
    let mut img = base.clone();
    edit_record(&mut img, at, rs, |r| {
        let d = find_attr(r, 0x80);
        r[d + 4..d + 8].copy_from_slice(&16u32.to_le_bytes());
    });
    expect_file_err(
        img,
        &|e| matches!(e, Error::Record { detail, .. } if detail.contains("below 24")),
    );

    // Runs: rewrite the $DATA mapping pairs (8 bytes of room) and header.
    let with_runs = |pairs: &[u8], highest: u64, alloc: u64, data: u64, init: u64| {
        let mut img = base.clone();
        edit_record(&mut img, at, rs, |r| {
            let d = find_attr(r, 0x80);
            let ro = d + le16(r, d + 32);
            let end = d + le32(r, d + 4);
            assert!(pairs.len() <= end - ro);
            r[ro..end].fill(0);
            r[ro..ro + pairs.len()].copy_from_slice(pairs);
            r[d + 24..d + 32].copy_from_slice(&highest.to_le_bytes());
            r[d + 40..d + 48].copy_from_slice(&alloc.to_le_bytes());
            r[d + 48..d + 56].copy_from_slice(&data.to_le_bytes());
            r[d + 56..d + 64].copy_from_slice(&init.to_le_bytes());
        });
        img
    };
    let lcn = (sys.runs()[0].volume_offset.unwrap() / 4096) as u16;
    let [lo, hi] = lcn.to_le_bytes();
    let runs_err = |img: Vec<u8>, want: &str| {
        let want = want.to_string();
        expect_file_err(
            img,
            &move |e| matches!(e, Error::Runs { detail, .. } if detail.contains(&want)),
        );
    };
    // Two one-cluster runs on the same cluster (a delta of 0).
    runs_err(
        with_runs(&[0x21, 1, lo, hi, 0x11, 1, 0], 1, 8192, 8192, 8192),
        "runs overlap",
    );
    // A run past the end of the volume (cluster 32767 of 16383).
    runs_err(
        with_runs(&[0x21, 1, 0xFF, 0x7F], 0, 4096, 4096, 4096),
        "past the end of the volume",
    );
    // DataSize beyond the runs, a huge claimed size, InitializedSize > DataSize.
    runs_err(
        with_runs(&[0x21, 1, lo, hi], 0, 4096, 8192, 4096),
        "exceeds the 4096 bytes",
    );
    runs_err(
        with_runs(&[0x21, 1, lo, hi], 0, 4096, 1 << 60, 4096),
        "exceeds the 4096 bytes",
    );
    runs_err(
        with_runs(&[0x21, 1, lo, hi], 0, 4096, 4096, 8192),
        "InitializedSize 8192 exceeds",
    );
    // Header VCNs that disagree with the runs, a truncated pair, a negative LCN.
    runs_err(
        with_runs(&[0x21, 1, lo, hi], 5, 4096, 4096, 4096),
        "header says",
    );
    runs_err(
        with_runs(&[0x21, 1, lo, hi, 0x21, 1, 0, 0x80], 1, 8192, 8192, 8192),
        "below 0",
    );
    runs_err(
        with_runs(&[0x21, 1, lo, hi, 0x41, 1, 0, 0], 1, 8192, 8192, 8192),
        "truncated",
    );
    // The reference: the same edit with sane values reads.
    let vol = Volume::open(with_runs(&[0x21, 1, lo, hi], 0, 4096, 4096, 4096)).unwrap();
    let f = vol.file("Windows/System32/config/SYSTEM").unwrap();
    let mut b = [0u8; 4];
    f.read_exact_at(0, &mut b).unwrap();
    assert_eq!(&b, b"regf");
}

/// A leaf of the root directory's B-tree whose last entry is made to point to the leaf
/// itself: a lookup that lands there and a listing both stop with a loop error.
#[test]
fn directory_index_pointing_back_into_itself() {
    if ready().is_none() {
        return;
    }
    let img_path = image("frag");
    let mut img = load(&img_path);
    let vol = Volume::open(img.clone()).unwrap();
    let cs = vol.geometry().cluster_size as usize;
    drop(vol);
    // The root's $INDEX_ALLOCATION, as ntfsinfo lists it.
    let out = String::from_utf8(run(Command::new("ntfsinfo")
        .args(["-f", "-i", "5", "-v"])
        .arg(&img_path)))
    .unwrap();
    let mut runs = Vec::new();
    let mut in_alloc = false;
    for line in out.lines() {
        if line.starts_with("Dumping attribute") {
            in_alloc = line.contains("$INDEX_ALLOCATION");
        }
        let c: Vec<&str> = line.split_whitespace().collect();
        if in_alloc && c.len() == 3 && c[0].starts_with("0x") && c[1].starts_with("0x") {
            let h = |s: &str| usize::from_str_radix(&s[2..], 16).unwrap();
            runs.push((h(c[0]), h(c[1]), h(c[2])));
        }
    }
    assert!(!runs.is_empty(), "the root has no index allocation:\n{out}");
    // Find a leaf INDX record and its last key.
    let mut target = None;
    'outer: for &(vcn0, lcn, len) in &runs {
        for k in 0..len {
            let at = (lcn + k) * cs;
            let rec = &img[at..at + 4096];
            if &rec[0..4] != b"INDX" {
                continue;
            }
            let mut r = rec.to_vec();
            unfix(&mut r);
            if r[24 + 12] & 1 != 0 {
                continue; // not a leaf
            }
            let mut off = 24 + le32(&r, 24);
            let mut last_key = String::new();
            loop {
                let len = le16(&r, off + 8);
                let flags = r[off + 12];
                if flags & 2 != 0 {
                    break;
                }
                let name_len = r[off + 16 + 64] as usize;
                let units: Vec<u16> = (0..name_len)
                    .map(|i| le16(&r, off + 16 + 66 + 2 * i) as u16)
                    .collect();
                last_key = String::from_utf16_lossy(&units);
                off += len;
            }
            target = Some((at, vcn0 + k, off, last_key));
            break 'outer;
        }
    }
    let (at, vcn, last_off, last_key) = target.expect("a leaf index record");
    {
        let rec = &mut img[at..at + 4096];
        let usn = unfix(rec);
        assert!(le32(rec, 28) + 8 <= le32(rec, 32), "room for 8 more bytes");
        let used = (le32(rec, 28) + 8) as u32;
        rec[28..32].copy_from_slice(&used.to_le_bytes());
        rec[last_off + 8..last_off + 10].copy_from_slice(&24u16.to_le_bytes());
        rec[last_off + 12] |= 1;
        rec[last_off + 16..last_off + 24].copy_from_slice(&(vcn as u64).to_le_bytes());
        refix(rec, usn);
    }
    let vol = Volume::open(img).unwrap();
    // A name just after the leaf's last key lands on its last entry, which now loops.
    let probe = format!("{last_key}~");
    let e = vol.file(&probe).unwrap_err();
    assert!(e.to_string().contains("points back into itself"), "{e}");
    let e = vol.find_windows().unwrap_err();
    assert!(e.to_string().contains("reached twice"), "{e}");
    // Names elsewhere in the tree still resolve.
    assert!(vol.file("Windows/System32/config/SYSTEM").is_ok());
}

/// A shared image with a few bits flipped, without copying it.
struct Patched {
    base: std::sync::Arc<Vec<u8>>,
    flips: Vec<(usize, u8)>,
}

impl ReadAt for Patched {
    fn size(&self) -> u64 {
        self.base.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.base.as_slice().read_exact_at(offset, buf)?;
        for &(at, bit) in &self.flips {
            if let Some(i) = (at as u64)
                .checked_sub(offset)
                .filter(|&i| i < buf.len() as u64)
            {
                buf[i as usize] ^= bit;
            }
        }
        Ok(())
    }
}

/// Random byte flips over the boot sector, the MFT and the root index of a small volume:
/// each iteration opens, finds Windows and reads every file found. Nothing may panic (the
/// test would fail), and every iteration is fast.
#[test]
fn random_mutations_never_panic() {
    if ready().is_none() {
        return;
    }
    let base = std::sync::Arc::new(load(&image("two")));
    let vol = Volume::open(base.as_ref().clone()).unwrap();
    let mft = vol.record_offset(0).unwrap() as usize;
    let rs = vol.geometry().file_record_size as usize;
    drop(vol);
    let mut seed = 0x5EED_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut opened, mut errors, mut crate_panics) = (0, 0, 0);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let iterations = 2000;
    for i in 0..iterations {
        let mut img = Patched {
            base: base.clone(),
            flips: Vec::new(),
        };
        let flips = 1 + next() % 8;
        for _ in 0..flips {
            let r = next();
            let at = match r % 4 {
                0 => (r >> 8) as usize % 512,
                _ => mft + (r >> 8) as usize % (100 * rs),
            };
            img.flips.push((at, 1 << ((r >> 40) % 8)));
        }
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(move || {
            let vol = Volume::open(img)?;
            let mut n = 0u64;
            for w in vol.find_windows()? {
                for f in w.files.keys() {
                    let v: FileView<Patched> = vol.file(&w.path_of(*f).unwrap())?;
                    let mut buf = vec![0u8; v.size().min(1 << 20) as usize];
                    v.read_exact_at(0, &mut buf).map_err(|e| Error::Corrupt {
                        detail: e.to_string(),
                    })?;
                    n += buf.len() as u64;
                }
            }
            Ok::<u64, Error>(n)
        });
        slowest = slowest.max(t.elapsed());
        match outcome {
            Ok(Ok(_)) => opened += 1,
            Ok(Err(Error::CratePanic { .. })) => crate_panics += 1,
            Ok(Err(_)) => errors += 1,
            Err(_) => panic!("iteration {i}: a panic escaped"),
        }
    }
    notice(&format!(
        "random mutations: {iterations} iterations in {:?} (slowest {slowest:?}): {opened} read fine, {errors} errors, {crate_panics} caught ntfs-crate panics",
        start.elapsed()
    ));
    assert!(
        slowest < Duration::from_secs(5),
        "an iteration took {slowest:?}"
    );
    assert!(errors > 0 && opened > 0);
}
