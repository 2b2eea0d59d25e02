//! Our dump against hivex's (Debian's python3-hivex), an independent reader, on every hive of
//! the corpus: every key, value, type and byte must agree.

mod common;

use std::path::Path;
use std::process::Command;

use guestwall_regf::{dump_jsonl, BaseBlock, FileType, Hive, OpenOptions};
use serde_json::Value;

/// Hives that hivex cannot read but that are valid for Windows, with the reason and what we
/// read instead.
const HIVEX_REFUSES: &[(&str, &str)] = &[
    // A zero-length value whose data offset is junk; Windows never reads it, hivex checks it.
    ("yarp/System_Delta", "Bad address"),
    // Key names ending in half a UTF-16 surrogate pair, which hivex's iconv rejects.
    ("yarp/TruncatedPairHive", "Invalid argument"),
    ("yarp/TruncatedPairHive2", "Invalid argument"),
];

fn parse_lines(s: &[u8]) -> Vec<Value> {
    std::str::from_utf8(s)
        .expect("dump is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

fn hivex_dump(py: &Path, hive: &Path) -> Result<Vec<Value>, String> {
    let script = common::repo_root().join("tests/peer/hivex_dump.py");
    let out = Command::new(py).arg(script).arg(hive).output().unwrap();
    if out.status.success() {
        Ok(parse_lines(&out.stdout))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_hive_hivex_reads_dumps_identically() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let Some(py) = common::hivex_python() else {
        return;
    };
    let mut compared = 0;
    let mut clean_compared = 0;
    for path in common::files_under(&corpus) {
        let rel = path
            .strip_prefix(&corpus)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&path).unwrap();
        let Ok(base) = BaseBlock::parse(&bytes) else {
            continue;
        };
        if base.file_type != FileType::Primary {
            continue;
        }
        // hivex reads the primary file alone, so compare against our primary-only reading.
        let ours = Hive::open_with(&path, &OpenOptions { replay_logs: false }).and_then(|h| {
            let mut out = Vec::new();
            dump_jsonl(&h, "", &mut out)?;
            Ok(out)
        });
        match (hivex_dump(&py, &path), ours) {
            (Ok(theirs), Ok(ours)) => {
                let ours = parse_lines(&ours);
                assert_eq!(ours.len(), theirs.len(), "{rel}: record count");
                for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                    assert_eq!(a, b, "{rel}: record {i} differs");
                }
                compared += 1;
                if !base.is_dirty() {
                    clean_compared += 1;
                }
            }
            (Err(_), Err(_)) => {} // both refuse
            (Ok(_), Err(e)) => panic!("{rel}: hivex reads it but we refuse: {e}"),
            // hivex refuses any base block with a wrong checksum; we read it with a warning.
            (Err(why), Ok(_)) if !base.checksum_ok() => {
                assert!(why.contains("hivex.Hivex("), "{rel}: {why}");
            }
            (Err(why), Ok(_)) => {
                let known = HIVEX_REFUSES.iter().find(|(p, _)| *p == rel);
                let Some((_, reason)) = known else {
                    panic!("{rel}: we read it but hivex refuses: {why}")
                };
                assert!(
                    why.contains(reason),
                    "{rel}: hivex failed differently: {why}"
                );
            }
        }
    }
    eprintln!("{compared} hives compared with hivex ({clean_compared} clean)");
    assert!(
        clean_compared >= 60,
        "only {clean_compared} clean hives compared"
    );
}

#[test]
fn hivex_refusals_are_windows_valid_and_read_by_us() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    // System_Delta's Session Manager value has length 0: its data is empty whatever the offset.
    let h = Hive::open(corpus.join("yarp/System_Delta")).unwrap();
    assert_eq!(h.check_all().unwrap().0, 586);
    // The truncated surrogate pairs are shown as U+FFFD and still resolve by lookup.
    let h = Hive::open(corpus.join("yarp/TruncatedPairHive2")).unwrap();
    let names: Vec<String> = h
        .root()
        .unwrap()
        .subkeys()
        .unwrap()
        .iter()
        .map(|k| k.name().to_string_lossy())
        .collect();
    assert_eq!(
        names,
        ["key1", "key2", "key3", "key\u{fffd}", "key\u{fffd}"]
    );
}
