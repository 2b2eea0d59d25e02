//! Our `.reg` export read back by an independent importer (hivex's `hivexregedit --merge`):
//! the merged hive must hold exactly the keys, values, types and bytes we exported.

mod common;

use std::path::Path;
use std::process::Command;

use guestwall_regf::build::{build_hive, reg_multi_sz, reg_sz, BuildOptions, KeySpec};
use guestwall_regf::data::{REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_QWORD, REG_SZ};
use guestwall_regf::{dump_jsonl, export_reg, ExportOptions, Hive, RegEncoding};

fn hivexregedit() -> Option<()> {
    // `hivexregedit --help` exits 1; that it runs at all is what counts.
    let ok = Command::new("hivexregedit").arg("--help").output().is_ok();
    if ok {
        return Some(());
    }
    assert!(
        !common::in_ci(),
        "CI=true but hivexregedit (libwin-hivex-perl) is missing"
    );
    common::notice("hivexregedit not installed; skipping");
    None
}

fn dump(h: &Hive, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    dump_jsonl(h, key, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Exports `key` of `src`, merges it with hivexregedit into an empty hive, and compares.
fn round_trip(src: &Hive, key: &str, work: &Path) {
    let reg = work.join("export.reg");
    let opts = ExportOptions {
        root_prefix: "HKEY_LOCAL_MACHINE\\T".into(),
        encoding: RegEncoding::Utf8,
    };
    export_reg(src, key, &opts, std::fs::File::create(&reg).unwrap()).unwrap();
    // regedit creates missing parents on import; hivexregedit needs them to exist.
    let mut empty = KeySpec::new("");
    let (_, canonical) = src.resolve(key).unwrap();
    if let Some((parent, _)) = canonical.rsplit_once('\\') {
        empty.path_mut(parent);
    }
    let target = work.join("target");
    std::fs::write(
        &target,
        build_hive(&empty, &BuildOptions::default()).unwrap(),
    )
    .unwrap();
    let o = Command::new("hivexregedit")
        .args(["--merge", "--prefix", "HKEY_LOCAL_MACHINE\\T"])
        .arg(&target)
        .arg(&reg)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "hivexregedit: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let merged = Hive::open(&target).unwrap();
    let ours = dump(src, key);
    let theirs = dump(&merged, key);
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a, b);
    }
}

fn workdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("guestwall-export-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_value_type_survives_an_independent_import() {
    let Some(()) = hivexregedit() else { return };
    let spec = KeySpec::new("").subkey(
        KeySpec::new("Types")
            .value("", REG_SZ, reg_sz("the default"))
            .value(
                "quotes \"and\" \\backslashes\\",
                REG_SZ,
                reg_sz("C:\\Program Files\\\"x\""),
            )
            .value(
                "expand",
                REG_EXPAND_SZ,
                reg_sz("%SystemRoot%\\system32\\svchost.exe -k NetworkService"),
            )
            .value(
                "multi",
                REG_MULTI_SZ,
                reg_multi_sz(&["one", "two", "three"]),
            )
            .value("dword", REG_DWORD, 3389u32.to_le_bytes())
            .value("qword", REG_QWORD, u64::MAX.to_le_bytes())
            .value("binary", REG_BINARY, (0..=255u8).collect::<Vec<u8>>())
            .value("big", REG_BINARY, vec![0xA5; 20_000])
            .value("empty", REG_BINARY, Vec::new())
            .value("sz without terminator", REG_SZ, b"a\0b\0".to_vec())
            .value("odd type", 0x100, vec![1, 2, 3])
            .subkey(KeySpec::new("Child").value("x", REG_DWORD, 1u32.to_le_bytes())),
    );
    let hive = Hive::from_bytes(build_hive(&spec, &BuildOptions::default()).unwrap()).unwrap();
    let w = workdir("types");
    round_trip(&hive, "Types", &w);
    std::fs::remove_dir_all(&w).unwrap();
}

#[test]
fn a_real_firewall_policy_survives_an_independent_import() {
    let Some(()) = hivexregedit() else { return };
    let Some(c) = common::corpus() else { return };
    let hive = Hive::open(c.join("regipy/SYSTEM")).unwrap();
    let w = workdir("fw");
    round_trip(
        &hive,
        "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy",
        &w,
    );
    std::fs::remove_dir_all(&w).unwrap();
}
