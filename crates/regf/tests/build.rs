//! Hives written by the builder read back exactly, by us and by hivex.

mod common;

use std::process::Command;

use guestwall_regf::build::{build_hive, reg_multi_sz, reg_sz, BuildError, BuildOptions, KeySpec};
use guestwall_regf::data::{REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD, REG_SZ};
use guestwall_regf::{dump_jsonl, DataStorage, Hive, ListKind, RegData};

fn sample() -> KeySpec {
    let mut many = KeySpec::new("Many");
    for i in 0..2500 {
        many.subkeys.push(KeySpec::new(&format!("k{i:04}")));
    }
    KeySpec::new("")
        .subkey(
            KeySpec::new("Select")
                .value("Current", REG_DWORD, 1u32.to_le_bytes())
                .value("Default", REG_DWORD, 1u32.to_le_bytes()),
        )
        .subkey(
            KeySpec::new("Types")
                .value("", REG_SZ, reg_sz("default value"))
                .value("sz", REG_SZ, reg_sz("C:\\Windows \"quoted\""))
                .value("multi", REG_MULTI_SZ, reg_multi_sz(&["a", "bc", "Привет"]))
                .value("qword", REG_QWORD, 0x1122_3344_5566_7788u64.to_le_bytes())
                .value("empty", REG_BINARY, Vec::new())
                .value("three", REG_BINARY, vec![1, 2, 3])
                .value(
                    "big",
                    REG_BINARY,
                    (0..40_000u32).map(|i| i as u8).collect::<Vec<u8>>(),
                )
                .value("exactly16344", REG_BINARY, vec![7u8; 16_344])
                .value("Ключ", 0x1234, vec![9u8; 10]),
        )
        .subkey(KeySpec {
            name: "Ünïcode Ключ".into(),
            class: Some("SomeClass".into()),
            ..KeySpec::default()
        })
        .subkey(many)
}

#[test]
fn built_hive_reads_back_exactly() {
    let bytes = build_hive(&sample(), &BuildOptions::default()).unwrap();
    let hive = Hive::from_bytes(bytes).unwrap();
    assert!(!hive.base_block().is_dirty());
    assert_eq!(hive.root().unwrap().name().to_string_lossy(), "ROOT");
    let types = hive.key("TYPES").unwrap();
    let get = |n: &str| {
        let v = types.value(n).unwrap().unwrap();
        (v.data_type(), v.data().unwrap().into_owned())
    };
    assert_eq!(get("").1, reg_sz("default value"));
    assert_eq!(
        RegData::decode(REG_MULTI_SZ, &get("multi").1),
        RegData::MultiString(vec!["a".into(), "bc".into(), "Привет".into()])
    );
    assert_eq!(
        RegData::decode(REG_QWORD, &get("qword").1),
        RegData::Qword(0x1122_3344_5566_7788)
    );
    assert_eq!(get("empty").1, Vec::<u8>::new());
    assert_eq!(get("three").1, vec![1, 2, 3]);
    assert_eq!(get("ключ"), (0x1234, vec![9u8; 10]));
    let big = types.value("big").unwrap().unwrap();
    assert!(matches!(big.storage().unwrap(), DataStorage::BigData(_, 3)));
    assert_eq!(big.data().unwrap().len(), 40_000);
    assert!(big
        .data()
        .unwrap()
        .iter()
        .enumerate()
        .all(|(i, &b)| b == i as u8));
    let exact = types.value("exactly16344").unwrap().unwrap();
    assert!(matches!(exact.storage().unwrap(), DataStorage::Cell(_)));
    assert!(matches!(
        types.value("three").unwrap().unwrap().storage().unwrap(),
        DataStorage::Inline
    ));

    let uni = hive.key("ünïcode КЛЮЧ").unwrap();
    assert!(!uni.name().is_compressed());
    assert_eq!(uni.class_name().unwrap().as_deref(), Some("SomeClass"));

    let many = hive.key("Many").unwrap();
    assert_eq!(many.subkey_count(), 2500);
    let (kind, _) = list_kind(&hive, many.subkey_list_cell());
    assert_eq!(kind, ListKind::Ri);
    let names: Vec<String> = many
        .subkeys()
        .unwrap()
        .iter()
        .map(|k| k.name().to_string_lossy())
        .collect();
    assert_eq!(names.len(), 2500);
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    assert!(hive.find_key("many\\K1999").unwrap().is_some());
    assert_eq!(hive.check_all().unwrap(), (2505, 11));
    let sec = hive.root().unwrap().security().unwrap();
    assert_eq!(sec.ref_count, 2505);
}

fn list_kind(hive: &Hive, cell: u32) -> (ListKind, usize) {
    let data = hive.cell(cell).unwrap();
    let kind = match &data[..2] {
        b"ri" => ListKind::Ri,
        b"lh" => ListKind::Lh,
        b"lf" => ListKind::Lf,
        _ => ListKind::Li,
    };
    (kind, u16::from_le_bytes([data[2], data[3]]) as usize)
}

#[test]
fn version_1_3_stores_big_data_in_one_cell() {
    let spec = KeySpec::new("").value("big", REG_BINARY, vec![5u8; 20_000]);
    let opts = BuildOptions {
        minor: 3,
        ..BuildOptions::default()
    };
    let hive = Hive::from_bytes(build_hive(&spec, &opts).unwrap()).unwrap();
    let v = hive.root().unwrap().value("big").unwrap().unwrap();
    assert!(matches!(v.storage().unwrap(), DataStorage::Cell(_)));
    assert_eq!(v.data().unwrap().len(), 20_000);
}

#[test]
fn builder_refuses_what_windows_would_refuse() {
    let dup = KeySpec::new("")
        .subkey(KeySpec::new("a"))
        .subkey(KeySpec::new("A"));
    assert_eq!(
        build_hive(&dup, &BuildOptions::default()),
        Err(BuildError::DuplicateKey("A".into()))
    );
    let dup = KeySpec::new("").value("v", 1, vec![]).value("V", 1, vec![]);
    assert_eq!(
        build_hive(&dup, &BuildOptions::default()),
        Err(BuildError::DuplicateValue("V".into()))
    );
    let bad = KeySpec::new("").subkey(KeySpec::new("a\\b"));
    assert!(matches!(
        build_hive(&bad, &BuildOptions::default()),
        Err(BuildError::InvalidKeyName(_))
    ));
}

#[test]
fn hivex_reads_built_hives_identically() {
    let Some(py) = common::hivex_python() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("guestwall-build-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("built");
    let bytes = build_hive(&sample(), &BuildOptions::default()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let hive = Hive::from_bytes(bytes).unwrap();
    let mut ours = Vec::new();
    dump_jsonl(&hive, "", &mut ours).unwrap();
    let out = Command::new(py)
        .arg(common::repo_root().join("tests/peer/hivex_dump.py"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parse = |b: &[u8]| -> Vec<serde_json::Value> {
        std::str::from_utf8(b)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(parse(&ours), parse(&out.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}
