//! String tables compiled by the real MinGW-w64 tools (windres, ld, objcopy): PE32 and PE32+,
//! with and without code sections, Dutch, Japanese, German, Russian, Chinese and Korean text,
//! two languages in one file, a `MUI` resource beside the strings, edge IDs and lengths.
//! Every string must come out exactly as the `.rc` file says.

mod common;

use common::*;
use guestwall_mui::{lang, resolve_indirect, Error, StringTable, StringTables};
use std::time::Instant;

fn parse(bytes: &[u8]) -> StringTable {
    match StringTable::parse(bytes) {
        Ok(t) => t,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn check_exact(t: &StringTable, want: &[(u32, &str)]) {
    for (id, text) in want {
        assert_eq!(t.get(*id), Some(*text), "string {id}");
    }
    assert_eq!(t.len(), want.len(), "{:?}", t.iter().collect::<Vec<_>>());
    assert!(t.notes().is_empty(), "{:?}", t.notes());
}

#[test]
fn dutch_table_in_every_layout() {
    if !tools() {
        return;
    }
    let rc = dutch_rc();
    for (arch, rsrc_only) in [
        (Arch::X64, false),
        (Arch::X64, true),
        (Arch::X86, false),
        (Arch::X86, true),
    ] {
        let bytes = build(&rc, arch, rsrc_only);
        let t = parse(&bytes);
        check_exact(&t, DUTCH);
        assert_eq!(t.languages(), &[0x0413], "{arch:?}");
        assert_eq!(t.is_pe32_plus(), Some(arch == Arch::X64));
        assert!(!t.has_mui_resource());
        for missing in [0, 28751, 28754, 28774, 28780, 65535, 70000] {
            assert_eq!(t.get(missing), None, "{missing}");
        }
        // Indirect strings as rules store them, in both spellings Windows uses.
        let mut tables = StringTables::new();
        tables.insert("FirewallAPI.dll.mui", t);
        assert_eq!(
            resolve_indirect("@FirewallAPI.dll,-28775", &tables).as_deref(),
            Some("Extern bureaublad - Gebruikersmodus (TCP-In)")
        );
        assert_eq!(
            resolve_indirect("@%SystemRoot%\\system32\\firewallapi.dll,-28752", &tables).as_deref(),
            Some("Extern bureaublad")
        );
        assert_eq!(resolve_indirect("@FirewallAPI.dll,-28780", &tables), None);
        eprintln!(
            "{arch:?} rsrc_only={rsrc_only}: {} bytes, {} strings",
            bytes.len(),
            DUTCH.len()
        );
    }
}

/// Every built-in name of a language, compiled into a file of that language.
fn builtin_strings(tag: &str) -> Vec<(u32, &'static str)> {
    guestwall_mui::builtin_names()
        .iter()
        .filter(|b| b.lang == tag)
        .map(|b| (u32::from(b.id), b.text))
        .collect()
}

#[test]
fn non_ascii_languages_each_in_its_own_file() {
    if !tools() {
        return;
    }
    let extra_de: &[(u32, &str)] = &[
        (1, "Grüße: äöü ÄÖÜ ß"),
        (2, "Schließen – „Anführungszeichen“"),
    ];
    let mut tags: Vec<&str> = guestwall_mui::builtin_names()
        .iter()
        .map(|b| b.lang)
        .collect();
    tags.dedup();
    assert_eq!(tags.len(), 13);
    for tag in tags {
        let extra = if tag == "de-DE" { extra_de } else { &[][..] };
        let langid = lang::by_tag(tag).unwrap().langid;
        let mut strings = builtin_strings(tag);
        strings.extend_from_slice(extra);
        assert!(!strings.is_empty());
        let rc = rc_tables(&[(langid & 0x3ff, langid >> 10, &strings)]);
        let t = parse(&build(&rc, Arch::X64, true));
        check_exact(&t, &strings);
        assert_eq!(t.languages(), &[langid], "{tag}");
        // The file's own language agrees with the built-in table.
        let mut tables = StringTables::new();
        tables.insert("FirewallAPI.dll", t);
        for (id, text) in &strings {
            if *id > 28000 {
                let ind = format!("@FirewallAPI.dll,-{id}");
                assert_eq!(resolve_indirect(&ind, &tables).as_deref(), Some(*text));
                assert_eq!(guestwall_mui::builtin(tag, &ind), Some(*text));
            }
        }
    }
}

#[test]
fn two_languages_in_one_file() {
    if !tools() {
        return;
    }
    let german = builtin_strings("de-DE");
    // Dutch first, then German (LANGUAGE 0x07, 0x01).
    let rc = rc_tables(&[(0x13, 0x01, DUTCH), (0x07, 0x01, &german)]);
    for arch in [Arch::X64, Arch::X86] {
        let mut t = parse(&build(&rc, arch, false));
        assert!(t.notes().is_empty(), "{:?}", t.notes());
        let mut langs = t.languages().to_vec();
        langs.sort_unstable();
        assert_eq!(langs, vec![0x0407, 0x0413]);
        // Every string exactly, in each language.
        for (id, text) in DUTCH {
            assert_eq!(t.get_in(*id, 0x0413), Some(*text));
        }
        for (id, text) in &german {
            assert_eq!(t.get_in(*id, 0x0407), Some(*text));
        }
        assert_eq!(t.get_in(28777, 0x0407), None);
        assert_eq!(t.len(), DUTCH.len(), "distinct IDs");
        assert_eq!(t.iter().count(), DUTCH.len() + german.len());
        // Without a preference the first language the directory lists wins (the tree sorts
        // LANGIDs: 0x0407 before 0x0413); with one, that language.
        assert_eq!(t.get(28752), Some("Remotedesktop"));
        t.prefer_language(0x0413);
        assert_eq!(t.get(28752), Some("Extern bureaublad"));
        assert_eq!(t.get(28777), Some("test text for ID 28777 (a description)"));
        t.prefer_language(lang::parse_install_language("0407").unwrap());
        assert_eq!(
            t.get(28775),
            Some("Remotedesktop - Benutzermodus (TCP eingehend)")
        );
        // German has no 28778: the first language that has it.
        assert_eq!(t.get(28778), Some("Extern bureaublad - Schaduw (TCP-In)"));
        // Another German LANGID (de-CH, 0x0807) prefers German too.
        t.prefer_language(0x0807);
        assert_eq!(t.get(28752), Some("Remotedesktop"));
    }
}

#[test]
fn mui_resource_and_version_beside_the_strings() {
    if !tools() {
        return;
    }
    let rc = "#pragma code_page(65001)\n\
        LANGUAGE 0x13, 0x01\n\
        1 MUI\nBEGIN\n  0xFECDFECDL, 0x00010000L, 0x00000000L\nEND\n\
        1 VERSIONINFO\nFILEVERSION 10,0,17763,1\nBEGIN\nEND\n\
        STRINGTABLE\nBEGIN\n  28752 \"Extern bureaublad\"\nEND\n";
    let t = parse(&build(rc, Arch::X64, true));
    assert!(t.has_mui_resource());
    check_exact(&t, &[(28752, "Extern bureaublad")]);
}

#[test]
fn edge_ids_lengths_and_escapes() {
    if !tools() {
        return;
    }
    let long: String = "Lång – ".repeat(700); // 4900 UTF-16 units, multi-byte in UTF-8
    let full: Vec<String> = (0..16).map(|i| format!("slot {i} of block 1799")).collect();
    let mut strings: Vec<(u32, &str)> = vec![
        (0, "ID 0 (block 1)"),
        (65535, "ID 65535 (block 4096) \"quoted\" and \\ backslash"),
        (16, &long),
        (100, "emoji outside the BMP: 😀 (a surrogate pair)"),
    ];
    for (i, s) in full.iter().enumerate() {
        strings.push((28768 + i as u32, s));
    }
    let rc = rc_tables(&[(0x13, 0x01, &strings)]);
    let t = parse(&build(&rc, Arch::X64, false));
    check_exact(&t, &strings);
    assert_eq!(
        t.get(16).map(|s| s.chars().count()),
        Some(long.chars().count())
    );
}

#[test]
fn files_without_strings_are_refused_clearly() {
    if !tools() {
        return;
    }
    let rc = "LANGUAGE 0x13, 0x01\n1 VERSIONINFO\nFILEVERSION 1,0,0,0\nBEGIN\nEND\n";
    match StringTable::parse(&build(rc, Arch::X64, false)) {
        Err(Error::NoStrings { types }) => assert_eq!(types, "RT_VERSION"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn parse_time_and_size() {
    if !tools() {
        return;
    }
    // 4096 blocks' worth of IDs would be a 1 MB .rc; 2000 strings spread over 125 blocks in two
    // languages is a realistic FirewallAPI.dll.mui size (the real one has ~1500 strings).
    let texts: Vec<String> = (0..2000)
        .map(|i| format!("Regel {i}: Extern bureaublad (TCP-In)"))
        .collect();
    let strings: Vec<(u32, &str)> = texts
        .iter()
        .enumerate()
        .map(|(i, s)| (20000 + i as u32, s.as_str()))
        .collect();
    let rc = rc_tables(&[(0x13, 0x01, &strings), (0x07, 0x01, &strings)]);
    let bytes = build(&rc, Arch::X64, true);
    let start = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        let t = parse(&bytes);
        assert_eq!(t.len(), 2000);
    }
    let per = start.elapsed() / rounds;
    let t = parse(&bytes);
    check_exact(&t, &strings);
    eprintln!(
        "{} bytes, 4000 strings in 2 languages: {per:?} per parse",
        bytes.len()
    );
    assert!(per.as_millis() < 200, "{per:?}");
}
