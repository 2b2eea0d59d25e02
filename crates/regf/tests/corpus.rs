//! The reader on every real hive of the shared corpus.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use guestwall_regf::{
    dump_jsonl, error_chain, export_reg, ExportOptions, Hive, LogInput, OpenOptions, RegData,
    RegEncoding,
};

/// Opens a hive (with logs) and reads all of it: every key, value and data, a dump and an
/// export. Returns the error chain on failure.
fn read_fully(path: &Path) -> Result<(u64, u64), String> {
    let hive = Hive::open(path).map_err(|e| error_chain(&e))?;
    let counts = hive.check_all().map_err(|e| error_chain(&e))?;
    hive.cell_stats().map_err(|e| error_chain(&e))?;
    dump_jsonl(&hive, "", std::io::sink()).map_err(|e| error_chain(&e))?;
    let opts = ExportOptions {
        root_prefix: "HKEY_LOCAL_MACHINE\\X".into(),
        encoding: RegEncoding::Utf16,
    };
    export_reg(&hive, "", &opts, std::io::sink()).map_err(|e| error_chain(&e))?;
    Ok(counts)
}

/// Runs `read_fully` in a thread and fails the test if it takes more than 20 s (a hang).
fn read_with_deadline(path: PathBuf) -> Result<(u64, u64), String> {
    let (tx, rx) = mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let _ = tx.send(read_fully(&p));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{} did not finish within 20 s (hang?)", path.display()))
}

/// Files the reader must refuse, each with a piece of the message that says why and where.
const REFUSED: &[(&str, &str)] = &[
    ("Registry/NotAHive", "found \"MZ"),
    (
        "Registry/SAMBadHBinHeader",
        "invalid hive bin at file offset 0x00002000: signature",
    ),
    ("Registry/system.LOG1", "(the file is empty)"),
    ("Registry/system.LOG2", "(the file is empty)"),
    ("dfwinreg/SYSTEM.DAT", "Windows 9x/Me registry"),
    ("dfwinreg/USER.DAT", "Windows 9x/Me registry"),
    ("dfwinreg/NTUSER.DAT.LOG", "new-format transaction log"),
    ("plaso/ntuser.dat.LOG", "old-format transaction log"),
    (
        "plaso/regf/corrupt_sub_key_list.hiv",
        "cell 0x00004480 (file offset 0x00005480): the cell is unallocated",
    ),
    (
        "regipy/corrupted_system_hive",
        "invalid hive bin at file offset 0x0001a000",
    ),
    ("yarp/BadListHive", "reached twice"),
    ("yarp/BadSubkeyHive", "reached twice"),
    (
        "yarp/DeletedDataHiveTruncated",
        "offset lies outside the hive bins data",
    ),
    (
        "yarp/EffectiveSizeHive",
        "offset lies outside the hive bins data",
    ),
    ("yarp/InvalidParentFragment", "found \"hbin"),
    ("yarp/OldLogWithRemnantData", "old-format transaction log"),
    ("yarp/SqliteFragment", "found \"hbin"),
    (
        "yarp/TruncatedHive",
        "needs 491520 bytes but the file has 12288",
    ),
    ("yarp/TruncatedHiveBin", "found \"hbin"),
    (
        "yarp/TruncatedNameHive",
        "name length: expected at most 16 bytes",
    ),
];

#[test]
fn every_corpus_file_is_read_or_refused_clearly() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut read = 0;
    let mut refused = 0;
    for path in common::files_under(&corpus) {
        let rel = path
            .strip_prefix(&corpus)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.ends_with(".md") || rel.ends_with(".txt") {
            // Text captures: not hives, and must be refused as such.
            let err = read_with_deadline(path.clone()).expect_err(&rel);
            assert!(
                err.contains("not a registry hive") || err.contains("truncated"),
                "{rel}: {err}"
            );
            continue;
        }
        let is_log = rel.to_ascii_lowercase().contains(".log");
        let expected = REFUSED.iter().find(|(p, _)| *p == rel);
        match (read_with_deadline(path.clone()), expected) {
            (Ok(_), None) => read += 1,
            (Err(e), Some((_, why))) => {
                assert!(e.contains(why), "{rel}: error {e:?} does not say {why:?}");
                refused += 1;
            }
            (Err(e), None) if is_log => {
                assert!(
                    e.contains("transaction log") || e.contains("the file is empty"),
                    "{rel}: a log file must be refused as one, got {e:?}"
                );
                refused += 1;
            }
            (Ok(_), Some((_, why))) => panic!("{rel}: read, but expected a refusal ({why})"),
            (Err(e), None) => panic!("{rel}: refused unexpectedly: {e}"),
        }
    }
    eprintln!("{read} hives read fully, {refused} files refused");
    assert!(read >= 80, "only {read} hives read");
}

fn dump(hive: &Hive) -> Vec<u8> {
    let mut out = Vec::new();
    dump_jsonl(hive, "", &mut out).unwrap();
    out
}

#[test]
fn new_format_logs_replay_to_what_windows_recovered() {
    let Some(c) = common::corpus() else { return };
    let dir = c.join("yarp/NewDirtyHive1");
    let hive = Hive::open(dir.join("NewDirtyHive")).unwrap();
    let rec = hive.recovery();
    assert!(rec.was_dirty && rec.applied());
    let applied: Vec<_> = rec
        .logs
        .iter()
        .map(|l| (l.entries_applied, l.applied_seq))
        .collect();
    assert_eq!(applied, vec![(1, Some((2, 2))), (3, Some((3, 5)))]);
    assert!(hive.warnings().is_empty());
    let windows = Hive::open(dir.join("RecoveredHive_Windows10")).unwrap();
    assert_eq!(
        dump(&hive),
        dump(&windows),
        "keys and values differ from Windows' recovery"
    );
    // Byte for byte, the recovered hive bins equal what Windows wrote.
    assert_eq!(hive.bytes()[4096..], windows.bytes()[4096..]);
    // Without logs the primary is older: Key1 exists there and not after recovery.
    let plain = Hive::open_with(
        dir.join("NewDirtyHive"),
        &OpenOptions { replay_logs: false },
    )
    .unwrap();
    assert!(plain.find_key("Key1").unwrap().is_some());
    assert!(hive.find_key("Key1").unwrap().is_none());
    assert!(hive.find_key("key3\\KEY3_3").unwrap().is_some());
    assert_eq!(plain.warnings().len(), 1);
}

#[test]
fn old_format_log_replays_to_what_windows_recovered() {
    let Some(c) = common::corpus() else { return };
    let dir = c.join("yarp/OldDirtyHive");
    let hive = Hive::open(dir.join("OldDirtyHive")).unwrap();
    let rec = hive.recovery();
    assert!(rec.applied());
    assert_eq!(rec.logs[0].pages_applied, 64);
    assert!(rec.logs[1].note.as_deref().unwrap().contains("empty"));
    let windows = Hive::open(dir.join("RecoveredHive_Windows7")).unwrap();
    assert_eq!(dump(&hive), dump(&windows));
    assert!(hive
        .find_key("key_with_many_subkeys\\5000\\find_me_in_log")
        .unwrap()
        .is_some());
    let v = hive
        .key("key_with_many_subkeys\\4500")
        .unwrap()
        .value("V")
        .unwrap()
        .unwrap();
    assert_eq!(
        RegData::decode(v.data_type(), &v.data().unwrap()),
        RegData::MultiString(vec!["a".into(), "bb".into(), "ccc".into()])
    );
}

#[test]
fn windows10_lazy_flush_logs_are_applied_in_sequence() {
    let Some(c) = common::corpus() else { return };
    // The primary's last complete write is 1621; the logs hold 2107..=2130 across both files.
    let hive = Hive::open(c.join("regipy/SYSTEM_B")).unwrap();
    let rec = hive.recovery();
    let got: Vec<_> = rec
        .logs
        .iter()
        .map(|l| (l.applied_seq, l.pages_applied))
        .collect();
    assert_eq!(
        got,
        vec![(Some((2107, 2110)), 10), (Some((2111, 2130)), 305)]
    );
    assert_eq!(hive.base_block().primary_seq, 2130);
    assert!(hive.warnings().is_empty());
    let (keys, _) = hive.check_all().unwrap();
    let plain = Hive::open_with(
        c.join("regipy/SYSTEM_B"),
        &OpenOptions { replay_logs: false },
    )
    .unwrap();
    let (plain_keys, _) = plain.check_all().unwrap();
    assert_eq!((plain_keys, keys), (33123, 35595));

    // A stale entry (27) after 36..=39 is an older generation and is skipped.
    let hive =
        Hive::open(c.join("DFIRArtifactMuseum/Amcache/Win10/APTSimulatorVM/Amcache.hve")).unwrap();
    let rec = hive.recovery();
    assert_eq!(rec.logs[1].applied_seq, Some((38, 39)));
    assert!(rec.logs[1].note.as_deref().unwrap().contains("stale"));
}

#[test]
fn bad_or_foreign_logs_are_not_applied() {
    let Some(c) = common::corpus() else { return };
    for d in ["BadLogHive1", "BadLogHive2", "BadLogHive3"] {
        let hive = Hive::open(c.join("yarp").join(d).join("BadLogHive")).unwrap();
        assert!(!hive.recovery().applied(), "{d}");
        assert!(hive.warnings()[0].contains("hive is dirty"), "{d}");
    }
    // Dirty, with no logs at all: read as it is, with a warning.
    let hive = Hive::open(c.join("regipy/SYSTEM_2")).unwrap();
    assert!(hive.recovery().logs.is_empty());
    assert!(hive.warnings()[0].contains("no transaction logs were found"));
}

#[test]
fn windows7_system_hive_facts() {
    let Some(c) = common::corpus() else { return };
    let hive = Hive::open(c.join("regipy/SYSTEM")).unwrap();
    assert!(!hive.base_block().is_dirty());
    let get = |k: &str, v: &str| {
        let val = hive.key(k).unwrap().value(v).unwrap().unwrap();
        RegData::decode(val.data_type(), &val.data().unwrap())
    };
    assert_eq!(get("Select", "Current"), RegData::Dword(1));
    assert_eq!(get("select", "LASTKNOWNGOOD"), RegData::Dword(2));
    assert!(hive.find_key("ControlSet002").unwrap().is_some());
    let rules = hive
        .key("ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules")
        .unwrap();
    assert_eq!(rules.value_count(), 323);
    let RegData::String(rdp) = get(
        "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules",
        "RemoteDesktop-In-TCP",
    ) else {
        panic!("RDP rule is not a string")
    };
    assert!(rdp.starts_with("v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|LPort=3389|"), "{rdp}");
    assert_eq!(
        get(
            "ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp",
            "PortNumber"
        ),
        RegData::Dword(3389)
    );
}

#[test]
fn names_match_case_insensitively_like_windows() {
    let Some(c) = common::corpus() else { return };
    let hive = Hive::open(c.join("yarp/UnicodeHive")).unwrap();
    let (_, path) = hive.resolve("ПриВет\\КлюЧ").unwrap();
    assert_eq!(path, "Привет\\Ключ");
    assert_eq!(hive.resolve("\\привеТ").unwrap().1, "Привет");

    let hive = Hive::open(c.join("yarp/ExtendedASCIIHive")).unwrap();
    let key = hive.key("ËIGENAARDIG").unwrap();
    assert!(key.name().is_compressed());
    let v = key.value("ëigenaardig").unwrap().unwrap();
    assert_eq!(
        RegData::decode(v.data_type(), &v.data().unwrap()),
        RegData::String("ëigenaardig".into())
    );

    // ß has no one-character uppercase, so Windows leaves it alone and sorts it after S.
    let hive = Hive::open(c.join("yarp/UpcaseHive")).unwrap();
    let names: Vec<String> = hive
        .root()
        .unwrap()
        .subkeys()
        .unwrap()
        .iter()
        .map(|k| k.name().to_string_lossy())
        .collect();
    assert_eq!(names, ["ss1", "SS3", "ß2"]);
    assert!(hive.find_key("SS1").unwrap().is_some());
    assert!(hive.find_key("ss2").unwrap().is_none());
}

#[test]
fn big_data_values_are_reassembled() {
    let Some(c) = common::corpus() else { return };
    let hive = Hive::open(c.join("yarp/BigDataHive")).unwrap();
    let key = hive.key("key_with_bigdata").unwrap();
    let d = key.value("").unwrap().unwrap();
    assert!(matches!(
        d.storage().unwrap(),
        guestwall_regf::DataStorage::BigData(_, 2)
    ));
    let data = d.data().unwrap();
    assert_eq!(data.len(), 16345);
    assert!(data.iter().all(|&b| b == b'1'));
    let data = key.value("V").unwrap().unwrap().data().unwrap();
    assert_eq!(data.len(), 81725);
    assert!(data.iter().all(|&b| b == b'2'));
}

#[test]
fn logs_are_found_case_insensitively() {
    let Some(c) = common::corpus() else { return };
    // transactions_NTUSER.DAT has transactions_ntuser.dat.log1 and .log2 beside it.
    let logs = guestwall_regf::find_logs(&c.join("regipy/transactions_NTUSER.DAT"));
    let names: Vec<_> = logs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "transactions_ntuser.dat.log1",
            "transactions_ntuser.dat.log2"
        ]
    );
    let hive = Hive::open(c.join("regipy/transactions_NTUSER.DAT")).unwrap();
    assert_eq!(hive.recovery().logs[0].applied_seq, Some((566, 588)));
}

/// A log that is there but cannot be read (its base block zeroed) may have held entries the
/// hive needs: before the first readable one (a gap the primary does not explain), or after
/// the last one applied. The recovery is then partial, so that nothing writes it as if whole
/// (found by a user trial: SYSTEM_B with either log zeroed read as fully recovered).
#[test]
fn an_unreadable_log_makes_the_recovery_partial() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = corpus.join("regipy");
    let hive = std::fs::read(dir.join("SYSTEM_B")).unwrap();
    let log = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let at = |n: &str| guestwall_regf::Location::File(dir.join(n));
    let whole = Hive::from_bytes_with_logs(
        hive.clone(),
        &[
            LogInput::new(at("SYSTEM_B.LOG1"), log("SYSTEM_B.LOG1")),
            LogInput::new(at("SYSTEM_B.LOG2"), log("SYSTEM_B.LOG2")),
        ],
    )
    .unwrap();
    assert!(whole.recovery().partial.is_none());
    for broken in ["SYSTEM_B.LOG1", "SYSTEM_B.LOG2"] {
        let logs: Vec<LogInput> = ["SYSTEM_B.LOG1", "SYSTEM_B.LOG2"]
            .iter()
            .map(|n| {
                let mut b = log(n);
                if *n == broken {
                    b[..512].fill(0);
                }
                LogInput::new(at(n), b)
            })
            .collect();
        let h = Hive::from_bytes_with_logs(hive.clone(), &logs).unwrap();
        let why = h
            .recovery()
            .partial
            .clone()
            .unwrap_or_else(|| panic!("{broken} zeroed: the recovery is called complete"));
        assert!(why.contains(broken), "{broken}: {why}");
        assert!(
            h.warnings()
                .iter()
                .any(|w| w.contains("applied only in part")),
            "{broken}: {:?}",
            h.warnings()
        );
    }
}
