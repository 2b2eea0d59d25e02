//! Damaged language files: truncation at every offset, flipped bytes in every directory entry,
//! entries that point back to their own table, absurd counts, data past the end of the file,
//! strings longer than their block, overlapping blocks, broken headers, random mutations.
//! Every case is a precise error or a partial table with notes, never a panic or a hang.

mod common;

use common::*;
use guestwall_mui::{Error, StringTable};
use std::time::{Duration, Instant};

/// The Dutch table in two blocks: 1798 (28752, 28753) and 1799 (28775..=28779).
fn dutch(arch: Arch, rsrc_only: bool) -> Vec<u8> {
    build(&dutch_rc(), arch, rsrc_only)
}

fn original(id: u32) -> Option<&'static str> {
    DUTCH.iter().find(|(i, _)| *i == id).map(|(_, s)| *s)
}

/// A parse that must not fail: the table, with what the notes say.
fn partial(bytes: &[u8]) -> StringTable {
    match StringTable::parse(bytes) {
        Ok(t) => t,
        Err(e) => panic!("expected a partial table, got: {e}"),
    }
}

fn notes_text(t: &StringTable) -> String {
    t.notes()
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Dutch file's structure, read independently from the headers and the tree:
/// (tree file offset, RT_STRING table offset, [(block id, block entry file offset, lang table
/// offset, lang entry file offset, data entry offset)]).
struct Layout {
    tree: usize,
    type_entry: usize,
    blocks_off: u32,
    blocks: Vec<Block>,
}

struct Block {
    id: u32,
    entry: usize,
    langs_off: u32,
    lang_entry: usize,
    data_entry_off: u32,
}

fn layout(pe: &[u8]) -> Layout {
    let (tree, _, _, _) = rsrc_location(pe);
    let root = table_at(pe, tree, 0);
    let (_, to, type_entry) = *root.iter().find(|(n, _, _)| *n == 6).expect("RT_STRING");
    let blocks_off = to & 0x7fff_ffff;
    let blocks = table_at(pe, tree, blocks_off)
        .into_iter()
        .map(|(id, off, entry)| {
            let langs_off = off & 0x7fff_ffff;
            let (_, data_entry_off, lang_entry) = table_at(pe, tree, langs_off)[0];
            Block {
                id,
                entry,
                langs_off,
                lang_entry,
                data_entry_off,
            }
        })
        .collect();
    Layout {
        tree,
        type_entry,
        blocks_off,
        blocks,
    }
}

#[test]
fn layout_is_what_the_tests_assume() {
    if !tools() {
        return;
    }
    let pe = dutch(Arch::X64, true);
    let l = layout(&pe);
    assert_eq!(
        l.blocks.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![1798, 1799]
    );
}

#[test]
fn truncation_at_every_offset() {
    if !tools() {
        return;
    }
    for (arch, rsrc_only) in [(Arch::X64, true), (Arch::X64, false), (Arch::X86, true)] {
        let pe = dutch(arch, rsrc_only);
        let (mut errors, mut partials, mut whole) = (0, 0, 0);
        let start = Instant::now();
        for cut in 0..=pe.len() {
            match StringTable::parse(&pe[..cut]) {
                Ok(t) => {
                    // Whatever comes out is exactly what the file says: never a cut string.
                    for (id, _, text) in t.iter() {
                        assert_eq!(Some(text), original(u32::from(id)), "cut {cut}, id {id}");
                    }
                    if t.len() == DUTCH.len() && t.notes().is_empty() {
                        whole += 1;
                    } else {
                        assert!(
                            !t.notes().is_empty(),
                            "cut {cut}: strings lost without a note"
                        );
                        partials += 1;
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(!msg.is_empty());
                    if cut < 2 {
                        assert!(matches!(e, Error::NotPe { .. }), "cut {cut}: {msg}");
                    }
                    errors += 1;
                }
            }
        }
        eprintln!(
            "{arch:?} rsrc_only={rsrc_only}: {} cuts: {errors} errors, {partials} partial tables, {whole} whole; {:?}",
            pe.len() + 1,
            start.elapsed()
        );
        assert!(partials > 0, "some cuts fall inside the string data");
        assert!(errors > 0 && whole > 0);
    }
}

#[test]
fn flipped_bytes_in_every_directory_entry() {
    if !tools() {
        return;
    }
    let pe = dutch(Arch::X64, true);
    let l = layout(&pe);
    // The tree: tables, entries and data entries, up to the first string block.
    let (tree_rva, sec_off, sec_rva) = {
        let (_, rva, so, sv) = rsrc_location(&pe);
        (rva, so, sv)
    };
    let first_data = l
        .blocks
        .iter()
        .map(|b| le32(&pe, l.tree + b.data_entry_off as usize))
        .min()
        .unwrap();
    let tree_end = sec_off + (first_data - sec_rva) as usize;
    assert!(tree_end > l.tree && tree_rva >= sec_rva);
    let start = Instant::now();
    let (mut ok, mut err, mut cases) = (0, 0, 0);
    for at in l.tree..tree_end {
        for f in [
            |b: u8| b ^ 0x01,
            |b: u8| b ^ 0x80,
            |_| 0x00,
            |_| 0xFF,
            |b: u8| b.wrapping_add(0x10),
        ] {
            let mut m = pe.clone();
            m[at] = f(m[at]);
            if m[at] == pe[at] {
                continue;
            }
            cases += 1;
            match StringTable::parse(&m) {
                Ok(t) => {
                    ok += 1;
                    // Bounded output: never more strings than the two blocks can hold.
                    assert!(t.iter().count() <= 2 * 16, "byte {at:#x}");
                }
                Err(e) => {
                    err += 1;
                    assert!(
                        e.to_string().contains("0x") || matches!(e, Error::NoStrings { .. }),
                        "{e}"
                    );
                }
            }
        }
    }
    eprintln!(
        "{cases} flips over {} tree bytes: {ok} tables, {err} errors, {:?}",
        tree_end - l.tree,
        start.elapsed()
    );
    assert!(ok > 0 && err > 0);
}

#[test]
fn block_entry_pointing_to_its_own_table() {
    if !tools() {
        return;
    }
    let mut pe = dutch(Arch::X64, true);
    let l = layout(&pe);
    let b0 = &l.blocks[0];
    put32(&mut pe, b0.entry + 4, 0x8000_0000 | l.blocks_off);
    let t = partial(&pe);
    let notes = notes_text(&t);
    assert!(
        notes.contains("string block 1798") && notes.contains("loop"),
        "{notes}"
    );
    assert!(notes.contains(&format!("{:#x}", b0.entry)), "{notes}");
    assert_eq!(t.get(28752), None);
    for id in 28775..=28779 {
        assert_eq!(t.get(id), original(id));
    }
    assert_eq!(t.len(), 5);
}

#[test]
fn language_entry_pointing_to_its_own_table_or_deeper() {
    if !tools() {
        return;
    }
    let pristine = dutch(Arch::X64, false);
    let l = layout(&pristine);
    let b1 = &l.blocks[1];
    // Its own table: a loop.
    let mut pe = pristine.clone();
    put32(&mut pe, b1.lang_entry + 4, 0x8000_0000 | b1.langs_off);
    let t = partial(&pe);
    let notes = notes_text(&t);
    assert!(
        notes.contains("string block 1799 (language 0x0413)") && notes.contains("loop"),
        "{notes}"
    );
    assert_eq!((t.get(28752), t.get(28775)), (original(28752), None));
    // A table never visited: a fourth level.
    let mut pe = pristine.clone();
    put32(&mut pe, b1.lang_entry + 4, 0x8000_0000 | b1.data_entry_off);
    let notes = notes_text(&partial(&pe));
    assert!(notes.contains("fourth level"), "{notes}");
}

#[test]
fn rt_string_pointing_to_the_root_is_an_error() {
    if !tools() {
        return;
    }
    let mut pe = dutch(Arch::X64, true);
    let l = layout(&pe);
    put32(&mut pe, l.type_entry + 4, 0x8000_0000);
    match StringTable::parse(&pe) {
        Err(Error::Resource { offset, detail }) => {
            assert_eq!(offset, l.type_entry as u64);
            assert!(detail.contains("loop"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn data_outside_the_file() {
    if !tools() {
        return;
    }
    let pristine = dutch(Arch::X64, true);
    let l = layout(&pristine);
    let d0 = l.tree + l.blocks[0].data_entry_off as usize;
    // An RVA in no section.
    let mut pe = pristine.clone();
    put32(&mut pe, d0, 0x7fff_0000);
    let t = partial(&pe);
    assert!(
        notes_text(&t).contains("RVA 0x7fff0000"),
        "{}",
        notes_text(&t)
    );
    assert_eq!((t.get(28752), t.get(28775)), (None, original(28775)));
    // A size of 4 GiB: what the section holds is read, and said.
    let mut pe = pristine.clone();
    put32(&mut pe, d0 + 4, u32::MAX);
    let t = partial(&pe);
    assert!(
        notes_text(&t).contains("0xffffffff bytes"),
        "{}",
        notes_text(&t)
    );
    assert_eq!(t.get(28752), original(28752));
    // Both blocks unreachable: an error naming the first.
    let mut pe = pristine.clone();
    for b in &l.blocks {
        put32(&mut pe, l.tree + b.data_entry_off as usize, 0xdead_0000);
    }
    match StringTable::parse(&pe) {
        Err(Error::Resource { offset, detail }) => {
            assert_eq!(offset, d0 as u64);
            assert!(detail.contains("and 1 more"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn absurd_counts() {
    if !tools() {
        return;
    }
    let pristine = dutch(Arch::X64, true);
    let l = layout(&pristine);
    // Root: 65535 ID entries cannot fit in the section.
    let mut pe = pristine.clone();
    put16(&mut pe, l.tree + 14, 0xFFFF);
    match StringTable::parse(&pe) {
        Err(Error::Resource { offset, detail }) => {
            assert_eq!(offset, l.tree as u64);
            assert!(detail.contains("root table"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // The table of blocks: named + ID counts both at their maximum.
    let mut pe = pristine.clone();
    put16(&mut pe, l.tree + l.blocks_off as usize + 12, 0xFFFF);
    put16(&mut pe, l.tree + l.blocks_off as usize + 14, 0xFFFF);
    let e = StringTable::parse(&pe).unwrap_err();
    assert!(e.to_string().contains("cannot be read"), "{e}");
    // One language table too long: the other block survives.
    let mut pe = pristine.clone();
    put16(
        &mut pe,
        l.tree + l.blocks[0].langs_off as usize + 14,
        0x8000,
    );
    let t = partial(&pe);
    assert_eq!((t.get(28752), t.get(28775)), (None, original(28775)));
}

#[test]
fn string_longer_than_its_block() {
    if !tools() {
        return;
    }
    let mut pe = dutch(Arch::X64, true);
    let l = layout(&pe);
    let (_, _, sec_off, sec_rva) = rsrc_location(&pe);
    let d1 = l.tree + l.blocks[1].data_entry_off as usize;
    let data = sec_off + (le32(&pe, d1) - sec_rva) as usize;
    // Block 1799 holds 28768..=28783: 28775 is index 7, after seven empty slots.
    for i in 0..7 {
        assert_eq!(le16(&pe, data + 2 * i), 0);
    }
    let len_at = data + 14;
    assert_eq!(
        le16(&pe, len_at) as usize,
        original(28775).unwrap().encode_utf16().count()
    );
    put16(&mut pe, len_at, 0xFFFF);
    let t = partial(&pe);
    let notes = notes_text(&t);
    assert!(
        notes.contains("string 28775 has 65535 UTF-16 units"),
        "{notes}"
    );
    assert!(notes.contains(&format!("{len_at:#x}")), "{notes}");
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(28753), original(28753));
}

#[test]
fn shared_tables_and_overlapping_blocks_are_bounded() {
    if !tools() {
        return;
    }
    // 300 blocks of one string each, and one block with a 20000-unit string.
    let big = "x".repeat(20_000);
    let texts: Vec<String> = (0..300).map(|i| format!("s{i}")).collect();
    let mut strings: Vec<(u32, &str)> = texts
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u32 * 16, s.as_str()))
        .collect();
    strings.push((65535, &big));
    let pristine = build(&rc_tables(&[(0x13, 0x01, &strings)]), Arch::X64, true);
    assert_eq!(partial(&pristine).len(), 301);
    let l = layout(&pristine);
    assert_eq!(l.blocks.len(), 301);
    let last = l.blocks.last().unwrap();
    let (big_rva, big_size) = (
        le32(&pristine, l.tree + last.data_entry_off as usize),
        le32(&pristine, l.tree + last.data_entry_off as usize + 4),
    );
    assert!(big_size > 40_000);

    // Every data entry points at the big block: 301 × 40 KB to decode without a budget.
    let mut pe = pristine.clone();
    for b in &l.blocks {
        let d = l.tree + b.data_entry_off as usize;
        put32(&mut pe, d, big_rva);
        put32(&mut pe, d + 4, big_size);
    }
    let start = Instant::now();
    let t = partial(&pe);
    let took = start.elapsed();
    let decoded: usize = t.iter().map(|(_, _, s)| s.len()).sum();
    eprintln!(
        "overlapping blocks: {} bytes in, {decoded} bytes of text out, {} strings, {took:?}",
        pe.len(),
        t.len()
    );
    assert!(decoded <= pe.len(), "{decoded} > {}", pe.len());
    assert!(notes_text(&t).contains("overlap"), "{}", notes_text(&t));
    assert!(took < Duration::from_millis(500));

    // Every block entry points at the same language table: each table is entered once, the
    // rest are noted (64 kept, the others counted).
    let mut pe = pristine.clone();
    for b in &l.blocks {
        put32(&mut pe, b.entry + 4, 0x8000_0000 | l.blocks[0].langs_off);
    }
    let t = partial(&pe);
    assert_eq!(t.len(), 1);
    assert_eq!(t.notes().len(), 64);
    assert_eq!(t.notes().len() + t.notes_dropped(), 300);
}

#[test]
fn damaged_headers() {
    if !tools() {
        return;
    }
    let pristine = dutch(Arch::X64, false);
    let nt = le32(&pristine, 0x3c) as usize;
    let expect = |pe: &[u8], want: &str| match StringTable::parse(pe) {
        Ok(_) => panic!("parsed a file whose headers say {want}"),
        Err(e) => assert!(e.to_string().contains(want), "want {want:?}, got: {e}"),
    };
    let mut pe = pristine.clone();
    put32(&mut pe, 0x3c, 0xFFFF_FFF0);
    expect(&pe, "no PE signature at e_lfanew = 0xfffffff0");
    let mut pe = pristine.clone();
    put16(&mut pe, nt + 6, 0xFFFF);
    expect(&pe, "section table (65535 sections)");
    let mut pe = pristine.clone();
    put16(&mut pe, nt + 24, 0x1234);
    expect(&pe, "optional header magic 0x1234");
    let mut pe = pristine.clone();
    put16(&mut pe, nt + 20, 4);
    expect(&pe, "NT headers");
    let dirs = nt + 24 + 112;
    let mut pe = pristine.clone();
    put32(&mut pe, dirs + 16, 0x10);
    expect(&pe, "RVA 0x10 is in no section");
    let mut pe = pristine.clone();
    put32(&mut pe, dirs + 16, 0);
    expect(&pe, "resource data directory (entry 2) is empty");
    // NumberOfRvaAndSizes = 2: no resource entry at all.
    let mut pe = pristine.clone();
    put32(&mut pe, nt + 24 + 108, 2);
    expect(&pe, "resource data directory");
    for (bytes, want) in [
        (&b""[..], "an empty file"),
        (b"regf\0\0\0\0", "a registry hive"),
        (b"MZ", "no PE signature"),
    ] {
        expect(bytes, want);
    }
}

#[test]
fn random_mutations() {
    if !tools() {
        return;
    }
    let rc = rc_tables(&[(0x13, 0x01, DUTCH), (0x07, 0x01, DUTCH)]);
    let seeds = [build(&rc, Arch::X64, true), build(&rc, Arch::X86, false)];
    let mut rng = Rng(0x6d75_695f_7374_7273);
    let start = Instant::now();
    let (mut ok, mut err, mut slowest) = (0, 0, Duration::ZERO);
    let rounds = 4000;
    for round in 0..rounds {
        let seed = &seeds[round % seeds.len()];
        let mut m = seed.clone();
        let (tree, _, _, _) = rsrc_location(seed);
        for _ in 0..1 + rng.below(12) {
            // Half the changes land in the headers and the tree, where they matter most.
            let at = if rng.below(2) == 0 {
                rng.below(m.len())
            } else {
                rng.below((tree + 0x200).min(m.len()))
            };
            m[at] = rng.next() as u8;
        }
        if rng.below(10) == 0 {
            m.truncate(rng.below(m.len()));
        }
        let t0 = Instant::now();
        match StringTable::parse(&m) {
            Ok(t) => {
                ok += 1;
                let text: usize = t.iter().map(|(_, _, s)| s.len()).sum();
                assert!(text <= 3 * m.len(), "round {round}");
            }
            Err(e) => {
                err += 1;
                assert!(!e.to_string().is_empty());
            }
        }
        slowest = slowest.max(t0.elapsed());
    }
    eprintln!(
        "{rounds} mutants: {ok} tables, {err} errors, {:?} in all, slowest {slowest:?}",
        start.elapsed()
    );
    assert!(ok > 0 && err > 0);
    assert!(slowest < Duration::from_millis(100), "{slowest:?}");
}
