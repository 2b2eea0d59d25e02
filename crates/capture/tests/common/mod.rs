//! Shared by the integration tests: where the corpus is, and the CI rule for skipping.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// True when running under CI, where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Prints a notice on the real stderr (past the harness's capture).
pub fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTICE: {msg}");
}

/// The shared corpus (`../shared/corpus` beside the repository, or `$GUESTWALL_CORPUS`);
/// `None` with a notice when it is missing, a failure under CI.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("GUESTWALL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !in_ci(),
        "CI=true but the corpus is missing at {}",
        dir.display()
    );
    notice(&format!(
        "corpus not found at {}; skipping this test",
        dir.display()
    ));
    None
}

/// A corpus file's bytes (the corpus must be there).
pub fn read(corpus: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(corpus.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---- A corpus hive as the collector sees the machine (shared with the CLI's capture tests) ----

use guestwall_capture::collector::encode::{Machine, MemKey, MemValue};
use guestwall_regf::{Hive, Key};

/// `ControlSetNNN` that `Select\Current` names (1 when it is missing).
pub fn control_set(h: &Hive) -> String {
    let cur = h
        .find_key("Select")
        .ok()
        .flatten()
        .and_then(|k| k.value("Current").ok().flatten())
        .and_then(|v| v.data().ok().map(|d| d.into_owned()))
        .and_then(|d| {
            d.get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        })
        .unwrap_or(1);
    format!("ControlSet{cur:03}")
}

pub fn mem(k: &Key<'_>, depth: usize) -> MemKey {
    MemKey {
        name: k.name().to_string_lossy(),
        values: k
            .values()
            .unwrap()
            .iter()
            .map(|v| MemValue {
                name: v.name().to_string_lossy(),
                reg_type: v.data_type(),
                data: v.data().unwrap().into_owned(),
            })
            .collect(),
        subkeys: if depth < 12 {
            k.subkeys()
                .unwrap()
                .iter()
                .map(|s| mem(s, depth + 1))
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// HKLM as the collector sees it: SYSTEM\Select and SYSTEM\CurrentControlSet (the current
/// control set's firewall policy, Terminal Server and the three services).
pub fn machine(hive: &Hive) -> Machine {
    let cs = control_set(hive);
    let mut ccs = MemKey {
        name: "CurrentControlSet".into(),
        ..MemKey::default()
    };
    let mut services = MemKey {
        name: "Services".into(),
        ..MemKey::default()
    };
    for name in ["BFE", "MpsSvc", "SharedAccess", "TermService"] {
        if let Some(k) = hive.find_key(&format!("{cs}\\Services\\{name}")).unwrap() {
            services.subkeys.push(mem(&k, 0));
        }
    }
    let mut control = MemKey {
        name: "Control".into(),
        ..MemKey::default()
    };
    if let Some(k) = hive
        .find_key(&format!("{cs}\\Control\\Terminal Server"))
        .unwrap()
    {
        control.subkeys.push(mem(&k, 0));
    }
    ccs.subkeys = vec![control, services];
    let mut system = MemKey {
        name: "SYSTEM".into(),
        ..MemKey::default()
    };
    if let Some(k) = hive.find_key("Select").unwrap() {
        system.subkeys.push(mem(&k, 0));
    }
    system.subkeys.push(ccs);
    Machine {
        hklm: MemKey {
            name: String::new(),
            values: Vec::new(),
            subkeys: vec![system],
        },
        host: "VM-1".into(),
        time: "2026-12-02T20:00:00.0000000Z".into(),
        ps_version: "5.1.17763.1852".into(),
        services: vec![
            ("MpsSvc".into(), Some("Running".into())),
            ("BFE".into(), Some("Running".into())),
            ("TermService".into(), Some("Stopped".into())),
        ],
        networks: Some(vec![("contoso.local".into(), "Ethernet 2".into(), 2)]),
        firewall: vec![(
            "Domain".into(),
            "True".into(),
            "Block".into(),
            "True".into(),
        )],
        listeners: vec![(
            "0.0.0.0".into(),
            3389,
            1044,
            "svchost".into(),
            "TermService".into(),
        )],
    }
}
