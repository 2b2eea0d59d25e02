//! A PE file that Microsoft's tools built (`Registry/NotAHive` in `../shared/corpus`: a .NET
//! console executable, PE32, with version and manifest resources but no string table): refused
//! with the resource types it has, which objdump lists too; and its truncations and mutations
//! never panic.

mod common;

use common::{in_ci, notice, Rng};
use guestwall_mui::{Error, StringTable};
use std::path::PathBuf;

fn not_a_hive() -> Option<Vec<u8>> {
    let dir = std::env::var_os("GUESTWALL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    let path = dir.join("Registry/NotAHive");
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            assert!(
                !in_ci(),
                "CI=true but {} is unreadable: {e}",
                path.display()
            );
            notice(&format!(
                "{} not found ({e}); skipping this test",
                path.display()
            ));
            None
        }
    }
}

#[test]
fn a_windows_built_pe_without_strings() {
    let Some(pe) = not_a_hive() else { return };
    match StringTable::parse(&pe) {
        Err(Error::NoStrings { types }) => assert_eq!(types, "RT_VERSION, RT_MANIFEST"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn its_truncations_and_mutations() {
    let Some(pe) = not_a_hive() else { return };
    let mut kinds = std::collections::BTreeMap::new();
    let mut count = |r: Result<StringTable, Error>| {
        let k = match r {
            Ok(_) => "table",
            Err(Error::NotPe { .. }) => "not PE",
            Err(Error::Headers { .. }) => "headers",
            Err(Error::NoResources { .. }) => "no resources",
            Err(Error::Resource { .. }) => "resource",
            Err(Error::NoStrings { .. }) => "no strings",
            Err(_) => "other",
        };
        *kinds.entry(k).or_insert(0usize) += 1;
    };
    for cut in (0..pe.len()).step_by(7) {
        count(StringTable::parse(&pe[..cut]));
    }
    let mut rng = Rng(0x4e6f_7441_4869_7665);
    for _ in 0..2000 {
        let mut m = pe.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(m.len());
            m[at] = rng.next() as u8;
        }
        count(StringTable::parse(&m));
    }
    eprintln!("NotAHive, truncated and mutated: {kinds:?}");
    assert!(kinds.get("no strings").is_some_and(|&n| n > 0));
    assert!(kinds.get("not PE").is_some_and(|&n| n > 0));
}
