//! Localized rule names read from the VM's own language file (issue 13): a resource-only
//! `FirewallAPI.dll.mui` compiled with MinGW-w64's windres and linked with its ld, placed under
//! `Windows\System32\nl-NL\` of a Windows folder and of an NTFS volume image (laid out by
//! wimlib). The rule names shown and matched come out of that file exactly, non-ASCII text
//! included; a damaged file falls back to the built-in names with a note.

mod common;
#[path = "common/images_build.rs"]
mod images_build;
#[path = "../../mui/tests/common/mod.rs"]
mod mui;
#[path = "../../ntfsvol/tests/common/mod.rs"]
mod ntfs;

use std::path::{Path, PathBuf};

use common::*;
use images_build::{ntfs_volume, run, s};

/// Test text (not a translation: marked as such) that the built-in table cannot give, with
/// non-ASCII letters, so that a name shown proves it came from the file.
const GROUP: &str = "Extern bureaublad";
const RULE: &str = "Extern bureaublad (TCP-In) [testtekst uit het bestand: één ß]";

fn mui_file() -> Vec<u8> {
    let rc = mui::rc_tables(&[(0x13, 0x01, &[(28752, GROUP), (28753, RULE)])]);
    mui::build(&rc, mui::Arch::X64, true)
}

/// `dir/Windows/System32/{config/SYSTEM, nl-NL/FirewallAPI.dll.mui}`: the corpus's Windows 7
/// SYSTEM with InstallLanguage 0413, and `mui` (when given).
fn tree(dir: &Path, corpus: &Path, mui: Option<&[u8]>) -> PathBuf {
    let sys32 = dir.join("Windows/System32");
    std::fs::create_dir_all(sys32.join("config")).unwrap();
    let p = copy_into(
        &sys32.join("config"),
        &corpus.join("regipy/SYSTEM"),
        "SYSTEM",
    );
    let o = gw(&[
        "reg",
        "--hive",
        &p,
        "add",
        "ControlSet001\\Control\\Nls\\Language",
        "/v",
        "InstallLanguage",
        "/t",
        "REG_SZ",
        "/d",
        "0413",
        "/f",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in std::fs::read_dir(sys32.join("config")).unwrap() {
        let f = f.unwrap().path();
        if f.file_name()
            .unwrap()
            .to_string_lossy()
            .contains("guestwall")
        {
            std::fs::remove_file(f).unwrap();
        }
    }
    let _ = std::fs::remove_file(sys32.join("config/.guestwall-history"));
    if let Some(m) = mui {
        std::fs::create_dir_all(sys32.join("nl-NL")).unwrap();
        std::fs::write(sys32.join("nl-NL/FirewallAPI.dll.mui"), m).unwrap();
    }
    dir.join("Windows")
}

fn diagnose_json(target: &str) -> serde_json::Value {
    let o = gw(&["diagnose", target, "--json"]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{target}: {}",
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn check_names_from_file(target: &str) {
    let j = diagnose_json(target);
    assert_eq!(j["language"]["tag"], "nl-NL", "{target}");
    let from = j["language"]["names_from"].as_str().unwrap();
    assert!(
        from.ends_with("nl-NL/FirewallAPI.dll.mui"),
        "{target}: {from}"
    );
    let text = stdout(&gw(&["diagnose", target]));
    assert!(text.contains(RULE), "{target}:\n{text}");
}

#[test]
fn names_come_from_the_vms_language_file_in_a_folder_and_an_image() {
    let Some(corpus) = corpus() else { return };
    if !mui::tools() {
        return;
    }
    for tool in ["mkntfs", "wimlib-imagex"] {
        if !std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(!in_ci(), "CI=true but {tool} is missing");
            notice(&format!("{tool} not installed; skipping this test"));
            return;
        }
    }
    let dir = TempDir::new("mui-names");
    let mui = mui_file();
    let win = tree(&dir.0.join("tree"), &corpus, Some(&mui));

    // A Windows folder (as a mounted volume shows it).
    let target = win.display().to_string();
    check_names_from_file(&target);
    // netsh on that machine: the group and the rule by their names in the file.
    let system = win.join("System32/config/SYSTEM");
    let o = gwp_show(&system, &format!("name={RULE}"));
    assert_eq!(o.matches("Rule Name:").count(), 2, "{o}");

    // The same tree inside an NTFS volume image.
    let wim = dir.0.join("tree.wim");
    run(
        "wimlib-imagex",
        &["capture", s(&dir.0.join("tree")), s(&wim), "--no-acls"],
    );
    let vol = dir.0.join("volume.img");
    ntfs_volume(&vol, 64 << 20, 0, "Windows", Some(&wim));
    check_names_from_file(&vol.display().to_string());
}

fn gwp_show(system: &Path, selector: &str) -> String {
    let o = gw(&[
        "netsh",
        "--system",
        &system.display().to_string(),
        "advfirewall",
        "firewall",
        "show",
        "rule",
        selector,
    ]);
    assert!(o.status.success(), "{selector}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn a_damaged_language_file_falls_back_to_the_built_in_names_with_a_note() {
    let Some(corpus) = corpus() else { return };
    let dir = TempDir::new("mui-damaged");
    let win = tree(
        &dir.0.join("tree"),
        &corpus,
        Some(b"MZ this is not a PE file at all"),
    );
    let j = diagnose_json(&win.display().to_string());
    assert_eq!(j["language"]["tag"], "nl-NL");
    assert_eq!(
        j["language"]["names_from"],
        "guestwall's built-in table of sourced names"
    );
    let notes = j["findings"].to_string();
    assert!(notes.contains("FirewallAPI.dll.mui: not read"), "{notes}");
    // The built-in Dutch names are shown.
    let text = stdout(&gw(&["diagnose", &win.display().to_string()]));
    assert!(text.contains("Extern bureaublad (TCP-In)"), "{text}");
}
