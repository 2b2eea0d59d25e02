//! Round trips from every corpus SYSTEM hive: `reg query /s` text rendered by `guestwall reg`
//! (crates/reg, independent of this crate's parser), parsed back, compared value by value
//! with the hive read by guestwall-regf; and the collector's output (the Rust encoder of what
//! the PowerShell script prints), decoded back and compared the same way.

mod common;

use common::{control_set, machine};

use std::path::Path;
use std::time::Instant;

use guestwall_capture::collector::encode;
use guestwall_capture::regquery::Fidelity;
use guestwall_capture::{parse_capture, Capture, NoteKind, RegTree};
use guestwall_firewall::{Direction, Rule};
use guestwall_regf::{Hive, Key};

const HIVES: &[&str] = &[
    "regipy/SYSTEM",
    "regipy/SYSTEM_2",
    "regipy/SYSTEM_B",
    "yarp/System_Delta",
];

fn open(corpus: &Path, rel: &str) -> Hive {
    Hive::open(corpus.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// True when reg.exe's text of the value tells its bytes exactly: a string with one
/// terminating NUL and no other; a multi-string of non-empty items, terminated; numbers and
/// hex always (a number of the wrong length is shown as hex).
fn text_tells_bytes(t: u32, data: &[u8]) -> bool {
    let units: Vec<u16> = data
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0xFF)]))
        .collect();
    // reg.exe prints line-oriented text: a CR or LF in the data cannot survive it.
    let valid = |u: &[u16]| {
        char::decode_utf16(u.iter().copied()).all(|r| r.is_ok())
            && !u.iter().any(|&c| c == 10 || c == 13)
    };
    match t {
        1 | 2 | 6 => {
            data.len().is_multiple_of(2)
                && units.last() == Some(&0)
                && units.iter().filter(|&&u| u == 0).count() == 1
                && valid(&units)
        }
        7 => {
            if !data.len().is_multiple_of(2) || !valid(&units) {
                return false;
            }
            if units == [0] {
                return true;
            }
            let n = units.len();
            n >= 2
                && units[n - 1] == 0
                && units[n - 2] == 0
                && units[0] != 0
                && !units.windows(2).take(n - 2).any(|w| w == [0, 0])
                // An item containing the two characters `\0` would be split.
                && !String::from_utf16_lossy(&units).contains("\\0")
        }
        _ => true,
    }
}

struct Counts {
    keys: usize,
    values: usize,
    exact: usize,
    text_only: usize,
}

/// Compares every key and value under `path` of the hive with the tree (`prefix` is the
/// tree's path of the hive root).
fn compare(hive: &Hive, path: &str, prefix: &str, tree: &RegTree, c: &mut Counts) {
    let start = hive.find_key(path).unwrap().unwrap();
    hive.walk(start, path, |p, k: &Key<'_>| {
        let full = format!("{prefix}\\{p}");
        let tk = tree
            .key(&full)
            .unwrap_or_else(|| panic!("key {full} missing from the parsed tree"));
        assert!(tk.values_complete && tk.subkeys_complete, "{full}");
        c.keys += 1;
        let values = k.values().unwrap();
        assert_eq!(tk.values.len(), values.len(), "{full}: value count");
        for v in &values {
            let name = v.name().to_string_lossy();
            let data = v.data().unwrap();
            let tv = tk
                .value(&name)
                .unwrap_or_else(|| panic!("{full}: value {name:?} missing"));
            assert_eq!(tv.reg_type, v.data_type(), "{full}\\{name}: type");
            c.values += 1;
            if text_tells_bytes(v.data_type(), &data) {
                assert_eq!(tv.data, data.as_ref(), "{full}\\{name}: bytes");
                c.exact += 1;
            } else {
                // reg.exe's text loses bytes here: the decoded forms must still agree.
                let want = guestwall_regf::data::RegData::decode(v.data_type(), &data).to_string();
                let got = guestwall_regf::data::RegData::decode(tv.reg_type, &tv.data).to_string();
                // A line break in the data ends reg.exe's line: only what precedes it is there.
                let want = want.split(['\r', '\n']).next().unwrap_or("");
                assert_eq!(want, got, "{full}\\{name}: text");
                c.text_only += 1;
            }
        }
        Ok(())
    })
    .unwrap();
}

fn reg_query(file: &Path, key: &str) -> Vec<u8> {
    let mut mounts = guestwall_reg::Mounts::new();
    mounts
        .add_load(&format!("HKLM\\SYSTEM={}", file.display()))
        .unwrap();
    let args: Vec<String> = ["query", key, "/s"].iter().map(|s| s.to_string()).collect();
    let mut out = format!("C:\\Windows\\system32>reg query \"{key}\" /s\r\n").into_bytes();
    guestwall_reg::run(
        &args,
        &mounts,
        guestwall_reg::RunOptions::default(),
        &mut out,
    )
    .unwrap();
    out
}

/// No note but for the rest of values whose data holds a line break (reg.exe prints it raw).
fn no_loss(c: &Capture, line_breaks: usize) {
    let bad: Vec<String> = c
        .notes
        .iter()
        .filter(|n| {
            matches!(
                n.kind,
                NoteKind::Unparsed | NoteKind::Damaged | NoteKind::Truncated
            )
        })
        .map(|n| n.to_string())
        .collect();
    assert!(bad.len() <= line_breaks, "{bad:?}");
}

fn values_with_line_breaks(hive: &Hive, path: &str) -> usize {
    let mut n = 0;
    let start = hive.find_key(path).unwrap().unwrap();
    hive.walk(start, path, |_, k| {
        for v in k.values().unwrap() {
            if matches!(v.data_type(), 1 | 2 | 7) {
                let s = guestwall_regf::data::RegData::decode(v.data_type(), &v.data().unwrap())
                    .to_string();
                n += usize::from(s.contains(['\r', '\n']));
            }
        }
        Ok(())
    })
    .unwrap();
    n
}

#[test]
fn reg_query_text_of_every_system_hive_parses_back_to_the_hive_bytes() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    for rel in HIVES {
        let hive = open(&corpus, rel);
        let cs = control_set(&hive);
        let mut counts = Counts {
            keys: 0,
            values: 0,
            exact: 0,
            text_only: 0,
        };
        let mut bytes = 0;
        let t0 = Instant::now();
        for sub in [
            "Services\\SharedAccess\\Parameters\\FirewallPolicy",
            "Control\\Terminal Server",
            "Services",
        ] {
            let path = format!("{cs}\\{sub}");
            if hive.find_key(&path).unwrap().is_none() {
                common::notice(&format!("{rel}: no {path}"));
                continue;
            }
            let text = reg_query(&corpus.join(rel), &format!("HKLM\\SYSTEM\\{path}"));
            bytes += text.len();
            let cap = parse_capture(&text, rel);
            no_loss(&cap, values_with_line_breaks(&hive, &path));
            compare(
                &hive,
                &path,
                "HKEY_LOCAL_MACHINE\\SYSTEM",
                &cap.registry,
                &mut counts,
            );
        }
        assert!(counts.values > 0, "{rel}");
        eprintln!(
            "reg query round trip {rel}: {} bytes of text, {} keys, {} values ({} byte-exact, {} where reg.exe's text loses bytes), {:?}",
            bytes,
            counts.keys,
            counts.values,
            counts.exact,
            counts.text_only,
            t0.elapsed()
        );
    }
}

fn strip_desc_independently(s: &str) -> String {
    s.split('|')
        .enumerate()
        .filter(|(i, t)| *i == 0 || !t.starts_with("Desc="))
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("|")
}

/// A rule the collector left out must be unable to match inbound TCP to `port`, judged by the
/// firewall crate's own rule parser.
fn cannot_match(id: &str, s: &str, port: u16) -> bool {
    let r = Rule::parse(id, s);
    r.direction == Some(Direction::Out)
        || r.protocol.is_some_and(|p| p != 6)
        || !r.local_ports.covers(port)
        || r.app_pkg_id.is_some()
        || r.app.as_deref().is_some_and(|a| {
            let a = a.to_ascii_lowercase();
            !(a == "system" || a == "svchost.exe" || a.ends_with("\\svchost.exe"))
        })
        || r.service
            .as_deref()
            .is_some_and(|s| !(s.eq_ignore_ascii_case("termservice") || s == "*"))
}

#[test]
fn collector_output_of_every_system_hive_decodes_back() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    for rel in HIVES {
        let hive = open(&corpus, rel);
        let cs = control_set(&hive);
        let m = machine(&hive);
        let out = encode::output(&m, 3389);
        let block = out
            .lines()
            .take_while(|l| !l.starts_with("GUESTWALL:"))
            .count();
        let t0 = Instant::now();
        let cap = parse_capture(out.as_bytes(), rel);
        let took = t0.elapsed();
        no_loss_but_filtered(&cap);
        assert_eq!(cap.collectors.len(), 1);
        let info = &cap.collectors[0];
        assert_eq!(info.port, Some(3389));
        assert_eq!(cap.machine.as_deref(), Some("VM-1"));
        assert!(cap.listeners_checked);
        assert_eq!(cap.listeners.len(), 1);
        assert_eq!(cap.listeners[0].services, ["TermService"]);
        assert_eq!(cap.service("TermService").unwrap().running(), Some(false));
        assert_eq!(cap.service("MpsSvc").unwrap().running(), Some(true));
        let active = cap.active_profiles.as_ref().unwrap();
        assert_eq!(active[0].profile, Some(guestwall_firewall::Profile::Domain));
        // The group policy store is not in SYSTEM: the collector says it is absent.
        assert!(cap
            .registry
            .is_absent("HKLM\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall", None));

        // Every value of the local store, but Defaults, and the filtered rules.
        let fw = format!("{cs}\\Services\\SharedAccess\\Parameters\\FirewallPolicy");
        let tree_fw =
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy";
        let (mut kept, mut left_out, mut exact) = (0, 0, 0);
        let Some(start) = hive.find_key(&fw).unwrap() else {
            common::notice(&format!("{rel}: no {fw}"));
            continue;
        };
        hive.walk(start, "", |p, k| {
            if p.split('\\')
                .next()
                .is_some_and(|x| x.eq_ignore_ascii_case("Defaults"))
            {
                return Ok(());
            }
            let path = if p.is_empty() {
                tree_fw.to_string()
            } else {
                format!("{tree_fw}\\{p}")
            };
            let tk = cap.registry.key(&path).unwrap_or_else(|| panic!("{path}"));
            let rules = p.ends_with("FirewallRules") || p.ends_with("\\System");
            for v in k.values().unwrap() {
                let name = v.name().to_string_lossy();
                let data = v.data().unwrap();
                match tk.value(&name) {
                    Some(tv) => {
                        assert_eq!(tv.reg_type, v.data_type(), "{path}\\{name}");
                        if rules && v.data_type() == 1 {
                            let s = guestwall_regf::data::RegData::decode(1, &data).to_string();
                            assert_eq!(tv.string().unwrap(), strip_desc_independently(&s));
                            kept += 1;
                        } else if text_tells_bytes(v.data_type(), &data) {
                            assert_eq!(tv.data, data.as_ref(), "{path}\\{name}");
                            assert_ne!(tv.fidelity, Fidelity::TypeUnknown);
                            exact += 1;
                        }
                    }
                    None => {
                        assert!(rules, "{path}\\{name} missing");
                        let s = guestwall_regf::data::RegData::decode(1, &data).to_string();
                        assert!(cannot_match(&name, &s, 3389), "{path}\\{name}: {s}");
                        left_out += 1;
                    }
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(left_out, info.filtered_rules, "{rel}");
        // The RDP rules themselves are kept.
        let rules_key = format!("{fw}\\FirewallRules");
        let tree_rules = format!("{tree_fw}\\FirewallRules");
        let mut rdp = 0;
        for id in ["RemoteDesktop-UserMode-In-TCP", "RemoteDesktop-In-TCP"] {
            if hive
                .find_key(&rules_key)
                .unwrap()
                .and_then(|k| k.value(id).unwrap())
                .is_some()
            {
                assert!(
                    cap.registry.value(&tree_rules, id).is_some(),
                    "{rel}: {id} left out"
                );
                rdp += 1;
            }
        }
        assert!(rdp > 0, "{rel}: no RDP rule in the hive");
        // Terminal Server, the port and the service Start values.
        let ts = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server";
        let want_deny = hive
            .find_key(&format!("{cs}\\Control\\Terminal Server"))
            .unwrap()
            .and_then(|k| k.value("fDenyTSConnections").unwrap())
            .map(|v| v.data().unwrap().into_owned());
        assert_eq!(
            cap.registry
                .value(ts, "fDenyTSConnections")
                .map(|v| v.data.clone()),
            want_deny
        );
        for svc in ["MpsSvc", "BFE", "TermService"] {
            let want = hive
                .find_key(&format!("{cs}\\Services\\{svc}"))
                .unwrap()
                .and_then(|k| k.value("Start").unwrap())
                .map(|v| v.data().unwrap().into_owned());
            let got = cap
                .registry
                .value(
                    &format!("HKLM\\SYSTEM\\CurrentControlSet\\Services\\{svc}"),
                    "Start",
                )
                .map(|v| v.data.clone());
            assert_eq!(got, want, "{rel} {svc}");
        }
        let block_bytes: usize = out.split("\r\n").take(block).map(|l| l.len() + 2).sum();
        eprintln!(
            "collector {rel}: block {} bytes ({} over Run Command's 4096 with the notice: {}), payload {} bytes, gzip {} bytes, {} rules kept, {} left out, {} other values byte-exact, decoded in {:?}",
            block_bytes,
            if out.len() > 4096 { "is" } else { "is not" },
            out.len(),
            info.payload_bytes,
            info.compressed_bytes,
            kept,
            left_out,
            exact,
            took
        );
        // The notice is there exactly when the block is over the budget.
        assert_eq!(
            out.contains("GUESTWALL: the capture is"),
            block_bytes - 2 > guestwall_capture::collector::RUN_COMMAND_BUDGET
        );
    }
}

fn no_loss_but_filtered(c: &Capture) {
    let bad: Vec<String> = c
        .notes
        .iter()
        .filter(|n| {
            matches!(
                n.kind,
                NoteKind::Unparsed | NoteKind::Damaged | NoteKind::Truncated
            )
        })
        .map(|n| n.to_string())
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
}
