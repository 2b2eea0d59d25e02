//! `guestwall diagnose` as a process: exit codes, text and JSON.

mod common;

use common::*;

fn write(dir: &std::path::Path, name: &str, bytes: Vec<u8>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn exit_codes_follow_reachability() {
    let t = TempDir::new("diag-exit");
    let healthy = write(
        &t.0,
        "SYSTEM.healthy",
        guestwall_samples::healthy_rdp_system().unwrap(),
    );
    let o = gw(&["diagnose", &healthy]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("Result: RDP is reachable on every profile"));
    let broken = sample(&t.0);
    let o = gw(&["diagnose", &broken]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("Public   BLOCKED"), "{text}");
    // Each cause once, with the profiles it affects (lines are wrapped: compare words).
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("1. [rdp-rule-disabled] Domain, Private, Public rule \"Remote Desktop - User Mode (TCP-In)\" (RemoteDesktop-UserMode-In-TCP, local store)"), "{text}");
    assert_eq!(text.matches("[rdp-rule-disabled]").count(), 1, "{text}");
    assert!(text.contains("2. [block-all-inbound] Public"), "{text}");
    // Lines are wrapped at 100 columns; only a single word (a long registry path) and the
    // commands to copy are longer.
    assert!(
        text.lines().all(|l| l.chars().count() <= 100
            || !l.trim().contains(' ')
            || l.starts_with("  guestwall ")),
        "{text}"
    );
    // The result names the causes and the next command.
    assert!(text.contains("Result: RDP is NOT reachable (rdp-rule-disabled, block-all-inbound).\nNext:\n  guestwall fix --dry-run "), "{text}");
    // Bad input: a missing file, a non-hive, a folder without Windows in it.
    assert_eq!(gw(&["diagnose", "/nonexistent"]).status.code(), Some(2));
    let junk = write(&t.0, "junk", b"not a hive".to_vec());
    let o = gw(&["diagnose", &junk]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a registry hive"));
    std::fs::create_dir_all(t.0.join("empty")).unwrap();
    let o = gw(&["diagnose", t.0.join("empty").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no SYSTEM hive"), "{}", stderr(&o));
}

#[test]
fn json_has_the_documented_shape() {
    let t = TempDir::new("diag-json");
    let broken = sample(&t.0);
    let o = gw(&["diagnose", "--json", &broken]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["port"], 3389);
    assert_eq!(v["reachable"], false);
    for p in ["domain", "private", "public"] {
        assert_eq!(v["profiles"][p]["verdict"], "blocked", "{p}");
        assert_eq!(v["profiles"][p]["causes"][0]["code"], "rdp-rule-disabled");
        assert!(v["profiles"][p]["causes"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("Active=FALSE"));
    }
    assert_eq!(
        v["profiles"]["public"]["causes"][1]["code"],
        "block-all-inbound"
    );
    assert!(v["findings"].is_array());
    // --port cannot move the listener: the diagnosis stays on the hive's port, and the
    // mismatch is reported (issue 8, finding 8).
    let o = gw(&["diagnose", "--json", "--port", "3390", &broken]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["port"], 3389);
    assert_eq!(v["port_source"]["kind"], "hive");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "port-mismatch"));
}

#[test]
fn software_beside_or_given() {
    let t = TempDir::new("diag-sw");
    let sys = write(
        &t.0,
        "SYSTEM",
        guestwall_samples::healthy_rdp_system().unwrap(),
    );
    let mut sw = guestwall_regf::build::KeySpec::new("");
    sw.path_mut("Policies\\Microsoft\\Windows NT\\Terminal Services")
        .push_value(
            "fDenyTSConnections",
            guestwall_regf::data::REG_DWORD,
            1u32.to_le_bytes(),
        );
    let sw_bytes = guestwall_regf::build::build_hive(&sw, &Default::default()).unwrap();
    let elsewhere = t.0.join("other");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let sw_path = write(&elsewhere, "SOFTWARE", sw_bytes.clone());
    assert_eq!(gw(&["diagnose", &sys]).status.code(), Some(0));
    let o = gw(&["diagnose", "--software", &sw_path, &sys]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("[rdp-disabled]"));
    // Found beside SYSTEM, in any case.
    write(&t.0, "software", sw_bytes);
    assert_eq!(gw(&["diagnose", &sys]).status.code(), Some(1));
}
