//! The command line as a process: exit codes, messages, output formats.

mod common;

use common::*;
use std::process::Command;

const POLICY: &str = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy";

#[test]
fn demo_runs_on_a_fresh_clone() {
    let t = TempDir::new("demo");
    let o = gw(&["demo", "--dir", t.0.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("Public   BLOCKED"), "{s}");
    assert!(
        s.contains("[block-all-inbound]") && s.contains("[rdp-rule-disabled]"),
        "{s}"
    );
    assert!(t.0.join("SYSTEM").is_file());
    // Then the script, the fix and the diagnosis afterwards.
    assert!(s.contains("netsh advfirewall firewall set rule name=\"Remote Desktop - User Mode (TCP-In)\" dir=in new enable=yes"), "{s}");
    assert!(s.contains("1 -> (deleted)"), "{s}");
    assert!(
        s.contains("Result: RDP is reachable on every profile.\n\nThe demo's files"),
        "{s}"
    );
    assert_eq!(
        t.files().len(),
        3,
        "the hive, its backup and the operation history"
    );
}

#[test]
fn get_prints_values_like_hivexget() {
    let t = TempDir::new("get");
    let h = sample(&t.0);
    let o = gw(&["hive", "get", &h, "select", "current"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "1\n"));
    let o = gw(&[
        "hive",
        "get",
        &h,
        "ControlSet001\\Services\\BFE",
        "ImagePath",
    ]);
    assert_eq!(
        stdout(&o),
        "%systemroot%\\system32\\svchost.exe -k LocalServiceNoNetworkFirewall -p\n"
    );
    let o = gw(&["hive", "ls", &h, POLICY]);
    assert_eq!(
        stdout(&o),
        "DomainProfile\\\nFirewallRules\\\nPublicProfile\\\nStandardProfile\\\n"
    );
}

#[test]
fn missing_keys_values_and_files_exit_2_with_a_message() {
    let t = TempDir::new("missing");
    let h = sample(&t.0);
    let text = t.0.join("notes.txt").to_string_lossy().into_owned();
    std::fs::write(&text, "abc").unwrap();
    for (args, needle) in [
        (
            vec!["hive", "get", &h, "No\\Such\\Key"],
            "key not found: No\\Such\\Key",
        ),
        (
            vec!["hive", "get", &h, "Select", "Nope"],
            "value \"Nope\" not found in key Select",
        ),
        (
            vec!["hive", "info", "/nonexistent/SYSTEM"],
            "/nonexistent/SYSTEM: No such file",
        ),
        (
            vec!["hive", "ls", &text],
            "not a registry hive: expected signature \"regf\" at offset 0x00000000, found \"abc\"",
        ),
    ] {
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    // Usage errors are bad input too.
    assert_eq!(gw(&["hive", "get"]).status.code(), Some(2));
}

#[test]
fn corrupt_hives_exit_2_naming_the_offset() {
    let t = TempDir::new("corrupt");
    let h = sample(&t.0);
    let mut b = std::fs::read(&h).unwrap();
    b[4096 + 8..4096 + 12].copy_from_slice(&0u32.to_le_bytes()); // first bin's size
    std::fs::write(&h, b).unwrap();
    let o = gw(&["hive", "dump", &h]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid hive bin at file offset 0x00001000: size"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn export_is_utf16_with_bom_like_regedit() {
    let t = TempDir::new("export");
    let h = sample(&t.0);
    let o = gw(&["hive", "export", &h, "Select"]);
    assert!(o.status.success());
    assert_eq!(&o.stdout[..2], &[0xFF, 0xFE]);
    let units: Vec<u16> = o.stdout[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16(&units).unwrap();
    assert_eq!(
        text,
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\Select]\r\n\
         \"Current\"=dword:00000001\r\n\"Default\"=dword:00000001\r\n\"Failed\"=dword:00000000\r\n\
         \"LastKnownGood\"=dword:00000001\r\n\r\n"
    );
    let o = gw(&[
        "hive",
        "export",
        "--utf8",
        "--prefix",
        "HKEY_LOCAL_MACHINE\\BROKENSYSTEM",
        &h,
        "controlset001\\services\\bfe",
    ]);
    let s = stdout(&o);
    assert!(s.starts_with("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\BROKENSYSTEM\\ControlSet001\\Services\\BFE]\r\n"), "{s}");
    // regedit's wrapping: 20 bytes after a 19-character prefix, then 25 a line.
    assert!(s.contains("\"ImagePath\"=hex(2):25,00,73,00,79,00,73,00,74,00,65,00,6d,00,72,00,6f,00,6f,00,\\\r\n  74,00,25,00"), "{s}");
    let out = t.0.join("out.reg");
    let o = gw(&["hive", "export", &h, "-o", out.to_str().unwrap()]);
    assert!(o.status.success() && o.stdout.is_empty());
    assert!(std::fs::metadata(&out).unwrap().len() > 1000);
}

#[test]
fn dump_is_json_lines_with_raw_hex() {
    let t = TempDir::new("dump");
    let h = sample(&t.0);
    let o = gw(&["hive", "dump", &h, "Select"]);
    assert_eq!(
        stdout(&o),
        "{\"key\":\"Select\"}\n\
         {\"key\":\"Select\",\"value\":\"Current\",\"type\":4,\"data\":\"01000000\"}\n\
         {\"key\":\"Select\",\"value\":\"Default\",\"type\":4,\"data\":\"01000000\"}\n\
         {\"key\":\"Select\",\"value\":\"Failed\",\"type\":4,\"data\":\"00000000\"}\n\
         {\"key\":\"Select\",\"value\":\"LastKnownGood\",\"type\":4,\"data\":\"01000000\"}\n"
    );
    let o = gw(&["hive", "dump", &h]);
    let first = stdout(&o).lines().next().unwrap().to_string();
    assert_eq!(first, "{\"key\":\"\"}");
    for line in stdout(&o).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.get("key").is_some());
    }
}

#[test]
fn dirty_hives_warn_and_no_logs_reads_the_primary() {
    let t = TempDir::new("dirty");
    let h = sample(&t.0);
    let mut b = std::fs::read(&h).unwrap();
    b[4..8].copy_from_slice(&2u32.to_le_bytes()); // primary sequence number 2, secondary 1
    let c = guestwall_regf::checksum(&b[..508]);
    b[508..512].copy_from_slice(&c.to_le_bytes());
    std::fs::write(&h, b).unwrap();
    let o = gw(&["hive", "info", &h]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("warning:") && stderr(&o).contains("no transaction logs were found")
    );
    assert!(stdout(&o).contains("dirty (sequence numbers differ"));
    let o = gw(&["hive", "info", "--no-logs", &h]);
    assert!(stderr(&o).contains("logs were not used (--no-logs)"));
}

#[test]
fn a_closed_pipe_keeps_the_verdict_as_the_exit_code() {
    // The sample SYSTEM is not reachable: exit 1, also when the reader went away (a user
    // trial got 0, "reachable", from `guestwall diagnose X | head -1`).
    let t = TempDir::new("pipe-verdict");
    let h = sample(&t.0);
    for json in [false, true] {
        let mut args = vec!["diagnose", h.as_str()];
        if json {
            args.push("--json");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_guestwall"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{}", stderr(&o));
    }
}

#[test]
fn closed_pipe_is_not_an_error() {
    let t = TempDir::new("pipe");
    let h = sample(&t.0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_guestwall"))
        .args(["hive", "dump", &h])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
