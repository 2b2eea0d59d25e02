//! Crafted and mutated hives: every one gives a typed error naming where, never a panic, a
//! hang or an unbounded allocation.

mod common;

use guestwall_regf::build::{build_hive, reg_sz, BuildOptions, KeySpec};
use guestwall_regf::data::{REG_BINARY, REG_SZ};
use guestwall_regf::{
    checksum, dump_jsonl, error_chain, export_reg, Error, ExportOptions, Hive, LogInput,
    RegEncoding,
};

const BASE: usize = 4096;

fn small() -> Vec<u8> {
    let spec = KeySpec::new("")
        .subkey(
            KeySpec::new("A")
                .subkey(KeySpec::new("B").value("v", REG_SZ, reg_sz("hello world")))
                .subkey(KeySpec::new("C")),
        )
        .value("big", REG_BINARY, vec![3u8; 20_000])
        .value("small", REG_BINARY, vec![1u8; 100]);
    build_hive(&spec, &BuildOptions::default()).unwrap()
}

fn put(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn fix_checksum(b: &mut [u8]) {
    let c = checksum(&b[..508]);
    put(b, 508, c);
}

/// Reads everything there is to read; returns the first error.
fn read_all(bytes: Vec<u8>) -> Result<(), Error> {
    let hive = Hive::from_bytes(bytes)?;
    hive.check_all()?;
    hive.cell_stats()?;
    dump_jsonl(&hive, "", std::io::sink())?;
    let opts = ExportOptions {
        root_prefix: "X".into(),
        encoding: RegEncoding::Utf8,
    };
    export_reg(&hive, "", &opts, std::io::sink())?;
    for k in hive.root()?.subkeys()? {
        k.security()?;
    }
    Ok(())
}

/// Cell offsets in the small hive, found with the reader.
struct Cells {
    a: u32,
    a_list: u32,
    b: u32,
    root_values: u32,
    big: u32,
}

fn cells(bytes: &[u8]) -> Cells {
    let hive = Hive::from_bytes(bytes.to_vec()).unwrap();
    let root = hive.root().unwrap();
    let a = hive.key("A").unwrap();
    let big = root.value("big").unwrap().unwrap();
    Cells {
        a: a.cell(),
        a_list: a.subkey_list_cell(),
        b: hive.key("A\\B").unwrap().cell(),
        root_values: root.value_list_cell(),
        big: big.cell(),
    }
}

fn file_off(cell: u32) -> usize {
    BASE + cell as usize + 4
}

#[test]
fn root_offset_of_all_ones_is_an_error_not_a_panic() {
    // nt-hive panics on exactly this (assert on 0xFFFFFFFF after a recomputed checksum).
    let mut b = small();
    put(&mut b, 36, u32::MAX);
    fix_checksum(&mut b);
    let e = read_all(b).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidBaseBlock {
                field: "root cell offset",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn root_pointing_into_a_bin_header_or_free_cell_is_refused() {
    let mut b = small();
    put(&mut b, 36, 0);
    fix_checksum(&mut b);
    let e = error_chain(&read_all(b).unwrap_err());
    assert!(e.contains("points into a hive bin header"), "{e}");
}

#[test]
fn a_key_that_lists_itself_is_a_cycle() {
    let mut b = small();
    let c = cells(&b);
    // A's lh list: first element -> A itself.
    put(&mut b, file_off(c.a_list) + 4, c.a);
    let e = read_all(b.clone()).unwrap_err();
    assert!(error_chain(&e).contains("reached twice"), "{e}");
    // Lookups through the loop stay finite.
    let hive = Hive::from_bytes(b).unwrap();
    assert!(hive.find_key("A\\A\\A\\A\\A\\A").unwrap().is_some());
}

#[test]
fn a_child_pointing_to_an_ancestor_is_a_cycle() {
    let mut b = small();
    let c = cells(&b);
    let root = Hive::from_bytes(b.clone()).unwrap().base_block().root_cell;
    // B's place in A's list now holds the root.
    put(&mut b, file_off(c.a_list) + 4, root);
    let e = read_all(b).unwrap_err();
    assert!(
        matches!(&e, Error::AtKey { inner, .. } if matches!(**inner, Error::Cycle { .. })),
        "{e}"
    );
}

#[test]
fn deep_trees_are_cut_at_the_depth_limit() {
    let mut spec = KeySpec::new("leaf");
    for i in 0..600 {
        spec = KeySpec::new(&format!("d{i}")).subkey(spec);
    }
    let b = build_hive(&KeySpec::new("").subkey(spec), &BuildOptions::default()).unwrap();
    let e = read_all(b).unwrap_err();
    assert!(error_chain(&e).contains("deeper than 512"), "{e}");
}

#[test]
fn index_root_inside_index_root_is_refused() {
    let mut b = small();
    let c = cells(&b);
    // Turn A's list into an ri whose only element is itself.
    let o = file_off(c.a_list);
    b[o..o + 2].copy_from_slice(b"ri");
    b[o + 2..o + 4].copy_from_slice(&1u16.to_le_bytes());
    put(&mut b, o + 4, c.a_list);
    put(&mut b, file_off(c.a) + 20, 1);
    let e = error_chain(&read_all(b).unwrap_err());
    assert!(e.contains("another index root"), "{e}");
}

#[test]
fn list_counts_larger_than_their_cells_are_refused() {
    let mut b = small();
    let c = cells(&b);
    let o = file_off(c.a_list);
    b[o + 2..o + 4].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let e = error_chain(&read_all(b).unwrap_err());
    assert!(e.contains("number of elements"), "{e}");

    let mut b = small();
    // A claims 4 billion values.
    put(&mut b, file_off(c.a) + 36, u32::MAX);
    put(&mut b, file_off(c.a) + 40, c.root_values);
    let e = error_chain(&read_all(b).unwrap_err());
    assert!(e.contains("value list"), "{e}");

    let mut b = small();
    // A claims 3 subkeys; its list holds 2.
    put(&mut b, file_off(c.a) + 20, 3);
    let e = error_chain(&read_all(b).unwrap_err());
    assert!(e.contains("number of subkeys: expected 2"), "{e}");
}

#[test]
fn cell_sizes_that_overflow_are_refused() {
    for size in [i32::MIN as u32, 0xFFFF_FFFC, 0x8000_0008] {
        let mut b = small();
        let c = cells(&b);
        put(&mut b, BASE + c.b as usize, size);
        let e = read_all(b).unwrap_err();
        assert!(
            matches!(&e, Error::AtKey { .. } | Error::InvalidCell { .. }),
            "{size:#x}: {e}"
        );
    }
}

#[test]
fn huge_data_sizes_do_not_allocate() {
    let mut b = small();
    let c = cells(&b);
    // "big" claims 2 GB of data.
    put(&mut b, file_off(c.big) + 4, 0x7FFF_FFFF);
    let e = error_chain(&read_all(b).unwrap_err());
    assert!(e.contains("number of segments"), "{e}");

    // Inline data longer than 4 bytes.
    let mut b = small();
    put(&mut b, file_off(c.big) + 4, 0x8000_0010);
    let e = error_chain(&read_all(b).unwrap_err());
    assert!(e.contains("inline data size"), "{e}");
}

#[test]
fn big_data_segment_lists_are_checked() {
    let mut b = small();
    let c = cells(&b);
    let hive = Hive::from_bytes(b.clone()).unwrap();
    let db = hive
        .root()
        .unwrap()
        .value("big")
        .unwrap()
        .unwrap()
        .raw_data_offset();
    // Point the segment list at the db record itself: its "segments" are not cells of data.
    put(&mut b, file_off(db) + 4, db);
    let e = read_all(b).unwrap_err();
    assert!(matches!(e, Error::AtKey { .. }), "{e}");
    let _ = c;
}

#[test]
fn name_lengths_past_the_cell_are_refused() {
    let mut b = small();
    let c = cells(&b);
    b[file_off(c.b) + 72..file_off(c.b) + 74].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let e = error_chain(&read_all(b).unwrap_err());
    assert!(e.contains("name length"), "{e}");
}

#[test]
fn bad_bins_and_sizes_are_refused_with_offsets() {
    let mut b = small();
    put(&mut b, BASE + 8, 0); // first bin's size
    let e = read_all(b).unwrap_err().to_string();
    assert!(e.contains("file offset 0x00001000: size"), "{e}");

    let mut b = small();
    put(&mut b, BASE + 8, 0x7FFF_F000);
    assert!(read_all(b).is_err());

    let mut b = small();
    put(&mut b, 40, 0x1000_0000); // hive bins size far beyond the file
    fix_checksum(&mut b);
    let e = read_all(b).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");

    let mut b = small();
    put(&mut b, 24, 9); // minor version
    fix_checksum(&mut b);
    assert!(matches!(
        read_all(b),
        Err(Error::UnsupportedVersion { minor: 9, .. })
    ));
}

#[test]
fn hostile_logs_are_rejected_entry_by_entry() {
    // A dirty primary and a new-format log whose entry points outside the hive.
    let mut primary = small();
    put(&mut primary, 4, 2); // primary seq 2, secondary 1
    fix_checksum(&mut primary);
    let mut log = primary[..512].to_vec();
    put(&mut log, 28, 6);
    put(&mut log, 4, 1);
    put(&mut log, 8, 1);
    fix_checksum(&mut log);
    let mut entry = vec![0u8; 512 + 4096];
    entry[..4].copy_from_slice(b"HvLE");
    let n = entry.len() as u32;
    put(&mut entry, 4, n);
    put(&mut entry, 12, 1); // sequence
    put(&mut entry, 16, 0x1000_0000); // hive bins size
    put(&mut entry, 20, 1); // one page
    put(&mut entry, 40, 0x0FFF_F000); // page offset far away
    put(&mut entry, 44, 4096);
    let h1 = guestwall_regf::marvin32(guestwall_regf::MARVIN_SEED, &entry[40..]);
    entry[24..32].copy_from_slice(&h1.to_le_bytes());
    let h2 = guestwall_regf::marvin32(guestwall_regf::MARVIN_SEED, &entry[..32]);
    entry[32..40].copy_from_slice(&h2.to_le_bytes());
    log.extend_from_slice(&entry);
    let logs = [LogInput::new(
        guestwall_regf::Location::Memory("x.LOG1".into()),
        log.clone(),
    )];
    let hive = Hive::from_bytes_with_logs(primary.clone(), &logs).unwrap();
    assert!(!hive.recovery().applied());
    assert!(hive.recovery().logs[0]
        .note
        .as_deref()
        .unwrap()
        .contains("beyond"));
    assert_eq!(
        hive.bytes().len(),
        primary.len(),
        "nothing was allocated for the fake growth"
    );

    // A page outside the entry's own hive bins size is rejected when the entry is scanned.
    let mut outside = log.clone();
    put(&mut outside, 512 + 16, 0x1_0000);
    let e = &mut outside[512..512 + 4096 + 512];
    let h1 = guestwall_regf::marvin32(guestwall_regf::MARVIN_SEED, &e[40..]);
    e[24..32].copy_from_slice(&h1.to_le_bytes());
    let h2 = guestwall_regf::marvin32(guestwall_regf::MARVIN_SEED, &e[..32]);
    e[32..40].copy_from_slice(&h2.to_le_bytes());
    let logs = [LogInput::new(
        guestwall_regf::Location::Memory("x.LOG1".into()),
        outside,
    )];
    let hive = Hive::from_bytes_with_logs(primary.clone(), &logs).unwrap();
    assert!(hive.recovery().logs[0]
        .note
        .as_deref()
        .unwrap()
        .contains("outside the hive bins data"));

    // The same entry with a bad hash is ignored too.
    let mut bad = log.clone();
    bad[512 + 24] ^= 1;
    let logs = [LogInput::new(
        guestwall_regf::Location::Memory("x.LOG1".into()),
        bad,
    )];
    let hive = Hive::from_bytes_with_logs(primary, &logs).unwrap();
    assert!(hive.recovery().logs[0]
        .note
        .as_deref()
        .unwrap()
        .contains("hash mismatch"));
}

/// A small deterministic generator (xorshift) so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
    let mut b = src.to_vec();
    let edits = 1 + rng.below(8);
    for _ in 0..edits {
        let at = rng.below(b.len());
        match rng.below(4) {
            0 => b[at] = rng.next() as u8,
            1 => b[at] ^= 1 << rng.below(8),
            2 => {
                // A plausible offset or size in a 32-bit field.
                let at = at & !3;
                if at + 4 <= b.len() {
                    let v = [
                        0u32,
                        u32::MAX,
                        0x20,
                        0x8000_0000,
                        0x7FFF_FFFF,
                        rng.next() as u32,
                    ][rng.below(6)];
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => b.truncate(at.max(1)),
        }
    }
    if rng.below(2) == 0 && b.len() >= 512 {
        fix_checksum(&mut b);
    }
    b
}

#[test]
fn random_mutations_never_panic() {
    let mut seeds: Vec<Vec<u8>> = vec![small()];
    if let Some(c) = common::corpus() {
        for f in [
            "hivex/minimal",
            "hivex/special",
            "yarp/BigDataHive",
            "python-registry/UNICODE_TESTS",
        ] {
            seeds.push(std::fs::read(c.join(f)).unwrap());
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut errors = 0;
    for i in 0..3000 {
        let seed = &seeds[i % seeds.len()];
        let m = mutate(&mut rng, seed);
        let r = std::panic::catch_unwind(|| read_all(m.clone()));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                errors += 1;
                assert!(!e.to_string().is_empty());
            }
            Err(_) => {
                let path = std::env::temp_dir().join(format!("guestwall-panic-{i}"));
                std::fs::write(&path, &m).unwrap();
                panic!("iteration {i} panicked; input saved to {}", path.display());
            }
        }
    }
    assert!(errors > 100, "mutations should mostly be caught ({errors})");
}
