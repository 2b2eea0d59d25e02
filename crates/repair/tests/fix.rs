//! `fix` and `undo` on the real SYSTEM hives of the corpus and on a scenario hive per cause:
//! afterwards diagnose reports RDP reachable, hivex reads the fixed hive and sees exactly the
//! planned changes, EnableFirewall stays 1 wherever it was, the backup is the original byte for
//! byte, undo restores it, and a second fix changes nothing.

#[path = "../../regf/tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{corpus, hivex_python, repo_root};
use guestwall_diagnose::codes;
use guestwall_firewall::{Profile, Rule, Verdict};
use guestwall_ingest::{locate, Target};
use guestwall_regf::build::{build_hive, reg_sz, BuildOptions, KeySpec};
use guestwall_regf::data::{REG_DWORD, REG_SZ};
use guestwall_regf::save::{SaveOptions, UndoOptions};
use guestwall_regf::write::Edit;
use guestwall_regf::{Hive, OpenOptions, RegData};
use guestwall_repair::{fix, undo, FixKind, FixOptions, Fixed, HiveKind, Op};
use guestwall_samples::scenario::{
    set_dword, set_sz, win7_scenario, TempDir as Tmp, FW, W7_RDP, W7_RDP_PUBLIC,
};

/// Every (key, value) → (type, data) of a hive, logs replayed or not.
type Values = std::collections::BTreeMap<(String, String), (u32, Vec<u8>)>;

fn values_of(path: &Path, replay_logs: bool) -> Values {
    let h = Hive::open_with(path, &OpenOptions { replay_logs }).unwrap();
    let mut out = Values::new();
    h.walk(h.root().unwrap(), "", |p, k| {
        for v in k.values()? {
            out.insert(
                (p.to_string(), v.name().to_string_lossy()),
                (v.data_type(), v.data()?.to_vec()),
            );
        }
        Ok(())
    })
    .unwrap();
    out
}

fn hivex_reads(py: &Path, path: &Path) -> bool {
    std::process::Command::new(py)
        .arg(repo_root().join("tests/peer/hivex_dump.py"))
        .arg(path)
        .output()
        .unwrap()
        .status
        .success()
}

/// The same, as hivex reads the file (primary only, as hivex always does).
fn hivex_values(py: &Path, path: &Path) -> Values {
    let out = std::process::Command::new(py)
        .arg(repo_root().join("tests/peer/hivex_dump.py"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hivex cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Values::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(name) = r.get("value") else { continue };
        let data = r["data"].as_str().unwrap();
        let bytes = (0..data.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&data[i..i + 2], 16).unwrap())
            .collect();
        v.insert(
            (
                r["key"].as_str().unwrap().to_string(),
                name.as_str().unwrap().to_string(),
            ),
            (r["type"].as_u64().unwrap() as u32, bytes),
        );
    }
    v
}

fn lower(k: &(String, String)) -> (String, String) {
    (k.0.to_ascii_lowercase(), k.1.to_ascii_lowercase())
}

/// The (key, value) pairs a fix's SYSTEM changes touch.
fn planned(f: &Fixed, hive: HiveKind) -> BTreeSet<(String, String)> {
    f.plan
        .changes
        .iter()
        .filter(|c| c.hive == hive)
        .map(|c| lower(&(c.key.clone(), c.value.clone())))
        .collect()
}

/// Checks everything the issue asks of a fix of the SYSTEM hive at `sys`, then undoes it.
/// `before` is the logical content before the fix.
fn check_fix_cycle(sys: &Path, opts: &FixOptions, save: &SaveOptions) -> Fixed {
    let original = std::fs::read(sys).unwrap();
    let before = values_of(sys, true);
    let target = locate(sys, None).unwrap();
    let f = fix(&target, opts, save).unwrap();
    assert!(
        f.reachable(),
        "{}: not reachable after the fix: {:#?}\n{:#?}",
        sys.display(),
        f.after,
        f.plan.unresolved
    );
    // The prediction matched what was read back.
    for (p, a) in f.plan.after.iter().zip(&f.after) {
        assert_eq!(p.reachable, a.reachable);
        let pv: Vec<Verdict> = p.profiles.iter().map(|x| x.verdict).collect();
        let av: Vec<Verdict> = a.profiles.iter().map(|x| x.verdict).collect();
        assert_eq!(pv, av);
    }
    let w = f
        .writes
        .iter()
        .find(|w| w.hive == HiveKind::System)
        .expect("SYSTEM written");
    // The backup is the original, byte for byte.
    let backup = w.report.backup.clone().unwrap();
    assert!(
        std::fs::read(&backup).unwrap() == original,
        "backup differs"
    );
    // Only the planned values changed: by our reader, and by hivex.
    let after = values_of(sys, false);
    let mut changed: BTreeSet<(String, String)> = BTreeSet::new();
    for (k, v) in &before {
        if after.get(k) != Some(v) {
            changed.insert(lower(k));
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            changed.insert(lower(k));
        }
    }
    assert_eq!(changed, planned(&f, HiveKind::System), "{}", sys.display());
    if let Some(py) = hivex_python() {
        // hivex must read the fixed hive as we do, whenever it could read the original
        // (it cannot read every value of the differencing hive System_Delta).
        if hivex_reads(&py, &backup) {
            let hx = hivex_values(&py, sys);
            assert!(hx == after, "hivex reads the fixed hive differently");
        }
    }
    // EnableFirewall is still 1 wherever it was (unless --firewall-off was asked for).
    if !opts.firewall_off {
        for ((k, n), (_, d)) in &before {
            if n.eq_ignore_ascii_case("EnableFirewall") && d.as_slice() == [1, 0, 0, 0] {
                assert_eq!(
                    after[&(k.clone(), n.clone())].1,
                    vec![1, 0, 0, 0],
                    "{k}\\{n}"
                );
            }
        }
    }
    // A second fix is a no-op: no change planned, nothing written.
    let fixed_bytes = std::fs::read(sys).unwrap();
    let again = fix(&target, opts, save).unwrap();
    assert!(again.plan.changes.is_empty(), "{:#?}", again.plan.changes);
    assert!(again.writes.is_empty());
    assert!(
        std::fs::read(sys).unwrap() == fixed_bytes,
        "second fix wrote"
    );
    // Undo restores the original, logs included.
    let logs_moved = w.report.logs_moved.clone();
    let u = undo(&target, &UndoOptions::default()).unwrap();
    assert_eq!(u.files[0].backup.as_deref(), Some(backup.as_path()));
    assert!(
        std::fs::read(sys).unwrap() == original,
        "undo did not restore"
    );
    for (from, to) in logs_moved {
        assert!(
            !to.exists() && from.exists(),
            "log {} restored",
            from.display()
        );
    }
    assert!(values_of(sys, true) == before);
    f
}

#[test]
fn every_real_system_hive_is_fixed_verified_and_undone() {
    let Some(c) = corpus() else { return };
    for (name, logs, dirty_without_logs) in [
        ("regipy/SYSTEM", false, false),
        ("regipy/SYSTEM_2", false, true),
        ("regipy/SYSTEM_B", true, false),
        ("yarp/System_Delta", false, false),
    ] {
        let t = Tmp::new(&name.replace('/', "-"));
        let src = c.join(name);
        let file = src.file_name().unwrap().to_owned();
        let sys = t.0.join(&file);
        std::fs::copy(&src, &sys).unwrap();
        if logs {
            for ext in ["LOG1", "LOG2"] {
                let l = format!("{}.{ext}", src.display());
                std::fs::copy(&l, t.0.join(format!("{}.{ext}", file.to_string_lossy()))).unwrap();
            }
        }
        let save = SaveOptions {
            allow_dirty: dirty_without_logs,
            ..SaveOptions::default()
        };
        if dirty_without_logs {
            // Refused without the explicit option, and nothing written.
            let target = locate(&sys, None).unwrap();
            let e = fix(&target, &FixOptions::default(), &SaveOptions::default()).unwrap_err();
            assert!(format!("{e:?}").contains("dirty"), "{e:?}");
            assert_eq!(std::fs::read_dir(&t.0).unwrap().count(), 1);
        }
        let f = check_fix_cycle(&sys, &FixOptions::default(), &save);
        assert!(!f.plan.changes.is_empty(), "{name}");
        eprintln!("{name}: {} changes", f.plan.changes.len());
    }
}

#[test]
fn the_built_in_rules_change_only_at_active() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("active");
    let sys = t.0.join("SYSTEM_B");
    for ext in ["", ".LOG1", ".LOG2"] {
        std::fs::copy(
            c.join(format!("regipy/SYSTEM_B{ext}")),
            t.0.join(format!("SYSTEM_B{ext}")),
        )
        .unwrap();
    }
    let target = locate(&sys, None).unwrap();
    let f = fix(&target, &FixOptions::default(), &SaveOptions::default()).unwrap();
    let rule = f
        .plan
        .changes
        .iter()
        .find(|c| matches!(c.kind, FixKind::EnableRule { .. }))
        .unwrap();
    let before = rule.before.clone().unwrap();
    let Op::SetString(after) = &rule.op else {
        panic!()
    };
    assert_eq!(after, &before.replace("Active=FALSE", "Active=TRUE"));
    assert_eq!(rule.value, "RemoteDesktop-UserMode-In-TCP");
    // fDenyTSConnections is the other change on this Windows 10 hive.
    assert!(f
        .plan
        .changes
        .iter()
        .any(|c| c.value == "fDenyTSConnections" && c.op == Op::SetDword(0)));
}

// ----- scenarios: the Windows 7 hive with RDP allowed everywhere, then broken one way -----

/// The Windows 7 SYSTEM hive made reachable, then `edits`; SOFTWARE beside it when given.
fn scenario(c: &Path, t: &Tmp, edits: &[Edit], software: Option<KeySpec>) -> PathBuf {
    let sys = win7_scenario(c, &t.0, edits);
    if let Some(spec) = software {
        std::fs::write(
            t.0.join("SOFTWARE"),
            build_hive(&spec, &BuildOptions::default()).unwrap(),
        )
        .unwrap();
    }
    sys
}

fn not_reachable(sys: &Path) {
    let target = locate(sys, None).unwrap();
    let configs = guestwall_ingest::load(&target).unwrap();
    assert!(configs
        .iter()
        .any(|c| !guestwall_diagnose::diagnose(c, None).reachable));
}

fn kinds(f: &Fixed) -> Vec<FixKind> {
    f.plan.changes.iter().map(|c| c.kind.clone()).collect()
}

fn get_sz(sys: &Path, key: &str, name: &str) -> Option<String> {
    let h = Hive::open(sys).unwrap();
    let k = h.find_key(key).ok()??;
    let v = k.value(name).ok()??;
    match RegData::decode(v.data_type(), &v.data().ok()?) {
        RegData::String(s) => Some(s),
        RegData::Dword(d) => Some(d.to_string()),
        _ => None,
    }
}

#[test]
fn scenario_block_all_inbound_is_removed_from_each_profile() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("shield");
    let edits: Vec<Edit> = ["DomainProfile", "StandardProfile", "PublicProfile"]
        .iter()
        .map(|p| set_dword(&format!("{FW}\\{p}"), "DoNotAllowExceptions", 1))
        .collect();
    let sys = scenario(&c, &t, &edits, None);
    not_reachable(&sys);
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    assert_eq!(
        kinds(&f),
        Profile::ALL
            .map(|profile| FixKind::RemoveShield {
                profile,
                outbound_block: false,
            })
            .to_vec()
    );
    assert!(f.plan.changes.iter().all(|c| c.op == Op::DeleteValue));
}

#[test]
fn scenario_custom_port_gets_a_native_rule() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("port");
    let rdp_tcp = "ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp";
    let sys = scenario(&c, &t, &[set_dword(rdp_tcp, "PortNumber", 3391)], None);
    not_reachable(&sys);
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    assert_eq!(f.plan.changes.len(), 1);
    let ch = &f.plan.changes[0];
    assert_eq!(ch.code, codes::RDP_PORT_NOT_ALLOWED);
    let Op::SetString(s) = &ch.op else { panic!() };
    let r = Rule::parse(&ch.value, s);
    // Windows 7: rule version 2.10, the kernel listener, TCP 3391, inbound allow.
    assert!(
        s.starts_with("v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3391|App=System|"),
        "{s}"
    );
    assert!(r.is_well_formed());
    assert!(r.profiles.is_all());
}

#[test]
fn scenario_block_rule_is_disabled_not_deleted() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("block");
    let rule = "v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|Name=Block RDP|";
    let sys = scenario(
        &c,
        &t,
        &[set_sz(&format!("{FW}\\FirewallRules"), "blockrdp", rule)],
        None,
    );
    not_reachable(&sys);
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    assert_eq!(f.plan.changes.len(), 1);
    assert_eq!(
        f.plan.changes[0].op,
        Op::SetString(rule.replace("Active=TRUE", "Active=FALSE"))
    );
}

#[test]
fn scenario_rule_limited_to_one_profile_is_extended() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("oneprofile");
    let domain_only = W7_RDP.replace("Profile=Domain|Profile=Private|", "Profile=Domain|");
    let edits = [
        set_sz(
            &format!("{FW}\\FirewallRules"),
            "RemoteDesktop-In-TCP",
            &domain_only,
        ),
        Edit::DeleteValue {
            key: format!("{FW}\\FirewallRules"),
            name: "RemoteDesktop-In-TCP_1".into(),
        },
    ];
    let sys = scenario(&c, &t, &edits, None);
    not_reachable(&sys);
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    assert_eq!(f.plan.changes.len(), 1, "{:#?}", f.plan.changes);
    let Op::SetString(s) = &f.plan.changes[0].op else {
        panic!()
    };
    // Only Profile tokens were added, after the existing one.
    assert_eq!(
        s,
        &domain_only.replace(
            "Profile=Domain|",
            "Profile=Domain|Profile=Private|Profile=Public|"
        )
    );
}

#[test]
fn scenario_missing_rule_is_added() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("missing");
    let edits = ["RemoteDesktop-In-TCP", "RemoteDesktop-In-TCP_1"].map(|n| Edit::DeleteValue {
        key: format!("{FW}\\FirewallRules"),
        name: n.into(),
    });
    let sys = scenario(&c, &t, &edits, None);
    not_reachable(&sys);
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    assert!(matches!(
        kinds(&f)[..],
        [FixKind::AddPortRule { port: 3389, .. }]
    ));
}

#[test]
fn scenario_services_and_rdp_disabled() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("services");
    let edits = [
        set_dword("ControlSet001\\Services\\MpsSvc", "Start", 4),
        set_dword("ControlSet001\\Services\\BFE", "Start", 4),
        set_dword("ControlSet001\\Services\\TermService", "Start", 4),
        set_dword(
            "ControlSet001\\Control\\Terminal Server",
            "fDenyTSConnections",
            1,
        ),
    ];
    let sys = scenario(&c, &t, &edits, None);
    not_reachable(&sys);
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    let mut got: Vec<(String, Op)> = f
        .plan
        .changes
        .iter()
        .map(|c| (format!("{}\\{}", c.key, c.value), c.op.clone()))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            (
                "ControlSet001\\Control\\Terminal Server\\fDenyTSConnections".to_string(),
                Op::SetDword(0)
            ),
            (
                "ControlSet001\\Services\\BFE\\Start".to_string(),
                Op::SetDword(2)
            ),
            (
                "ControlSet001\\Services\\MpsSvc\\Start".to_string(),
                Op::SetDword(2)
            ),
            (
                "ControlSet001\\Services\\TermService\\Start".to_string(),
                Op::SetDword(3)
            ),
        ]
    );
}

#[test]
fn scenario_ipsec_rule_is_disabled() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("ipsec");
    let edits = [
        Edit::CreateKey {
            key: format!("{FW}\\ConSecRules"),
        },
        set_sz(
            &format!("{FW}\\ConSecRules"),
            "{ipsec-rdp}",
            "v2.10|Action=SecureServer|Active=TRUE|Protocol=6|EP1Port=3389|Name=Require IPsec for RDP|",
        ),
    ];
    let sys = scenario(&c, &t, &edits, None);
    not_reachable(&sys);
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    assert!(matches!(kinds(&f)[..], [FixKind::DisableConSec { .. }]));
}

#[test]
fn scenario_both_bootable_control_sets_are_fixed() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("select");
    let edits = [
        set_dword("Select", "Default", 2),
        set_dword(&format!("{FW}\\PublicProfile"), "DoNotAllowExceptions", 1),
        set_dword(
            "ControlSet002\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\DomainProfile",
            "DoNotAllowExceptions",
            1,
        ),
    ];
    let sys = scenario(&c, &t, &edits, None);
    not_reachable(&sys);
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    let keys: BTreeSet<&str> = f
        .plan
        .changes
        .iter()
        .map(|c| c.key.split('\\').next().unwrap())
        .collect();
    assert_eq!(keys, BTreeSet::from(["ControlSet001", "ControlSet002"]));
    assert_eq!(f.after.len(), 2);
}

fn gp_software(value: (&str, &str, u32)) -> KeySpec {
    let mut root = KeySpec::new("");
    root.path_mut("Microsoft\\Windows NT\\CurrentVersion")
        .push_value("CurrentVersion", REG_SZ, reg_sz("6.1"))
        .push_value("CurrentBuildNumber", REG_SZ, reg_sz("7601"));
    root.path_mut(&format!(
        "Policies\\Microsoft\\WindowsFirewall\\{}",
        value.0
    ))
    .push_value(value.1, REG_DWORD, value.2.to_le_bytes());
    root
}

#[test]
fn scenario_group_policy_is_reported_not_silently_fixed() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("gp");
    let sys = scenario(
        &c,
        &t,
        &[],
        Some(gp_software(("PublicProfile", "AllowLocalPolicyMerge", 0))),
    );
    let target = locate(&sys, None).unwrap();
    assert!(target.software.is_some());
    let sw = target.software.clone().unwrap();
    let sw_before = std::fs::read(&sw).unwrap();
    let f = fix(&target, &FixOptions::default(), &SaveOptions::default()).unwrap();
    assert!(!f.reachable());
    assert!(f.plan.changes.is_empty(), "{:#?}", f.plan.changes);
    assert!(f
        .plan
        .unresolved
        .iter()
        .any(|u| u.code == codes::POLICY_OVERRIDE && u.action.contains("--include-policy-cache")));
    assert!(std::fs::read(&sw).unwrap() == sw_before);
    // With --include-policy-cache the SOFTWARE cache is edited, with a warning.
    let opts = FixOptions {
        include_policy_cache: true,
        ..FixOptions::default()
    };
    let f = fix(&target, &opts, &SaveOptions::default()).unwrap();
    assert!(f.reachable(), "{:#?}", f.after);
    assert!(f
        .plan
        .changes
        .iter()
        .all(|c| c.policy_cache && c.hive == HiveKind::Software));
    assert!(f.plan.warnings.iter().any(|w| w.contains("policy refresh")));
    assert_eq!(
        get_sz(
            &sw,
            "Policies\\Microsoft\\WindowsFirewall\\PublicProfile",
            "AllowLocalPolicyMerge"
        )
        .as_deref(),
        Some("1")
    );
    let w = f
        .writes
        .iter()
        .find(|w| w.hive == HiveKind::Software)
        .unwrap();
    assert!(std::fs::read(w.report.backup.as_ref().unwrap()).unwrap() == sw_before);
    // undo restores SOFTWARE too.
    undo(&target, &UndoOptions::default()).unwrap();
    assert!(std::fs::read(&sw).unwrap() == sw_before);
}

#[test]
fn scenario_profile_off_is_left_alone_unless_reset_rdp_config() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("reset");
    let edits = [
        set_dword(&format!("{FW}\\PublicProfile"), "EnableFirewall", 0),
        set_sz(
            &format!("{FW}\\FirewallRules"),
            "RemoteDesktop-In-TCP_1",
            &W7_RDP_PUBLIC.replace("Active=TRUE", "Active=FALSE"),
        ),
        set_dword(
            "ControlSet001\\Control\\Terminal Server",
            "fDenyTSConnections",
            1,
        ),
    ];
    let sys = scenario(&c, &t, &edits, None);
    let target = locate(&sys, None).unwrap();
    // Plain fix: RDP back on; the profile stays off (RDP passes it), with a warning.
    let dry = SaveOptions {
        dry_run: true,
        ..SaveOptions::default()
    };
    let f = fix(&target, &FixOptions::default(), &dry).unwrap();
    assert_eq!(kinds(&f), [FixKind::EnableRdp]);
    assert!(
        f.plan
            .warnings
            .iter()
            .any(|w| w.contains("--reset-rdp-config")),
        "{:?}",
        f.plan.warnings
    );
    // VMAccess "reset configuration only": RDP on, every profile on, the RDP rule on.
    let opts = FixOptions {
        reset_rdp_config: true,
        ..FixOptions::default()
    };
    let f = check_fix_cycle(&sys, &opts, &SaveOptions::default());
    let k = kinds(&f);
    assert!(k.contains(&FixKind::EnableRdp));
    assert!(k.contains(&FixKind::EnableProfile {
        profile: Profile::Public
    }));
    assert!(k
        .iter()
        .any(|k| matches!(k, FixKind::EnableRule { id, .. } if id == "RemoteDesktop-In-TCP_1")));
}

#[test]
fn allow_inbound_and_firewall_off_only_when_asked_and_with_a_warning() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("explicit");
    let sys = scenario(
        &c,
        &t,
        &[set_dword(
            &format!("{FW}\\PublicProfile"),
            "DoNotAllowExceptions",
            1,
        )],
        None,
    );
    for (opts, value, want) in [
        (
            FixOptions {
                allow_inbound: true,
                ..FixOptions::default()
            },
            "DefaultInboundAction",
            0,
        ),
        (
            FixOptions {
                firewall_off: true,
                ..FixOptions::default()
            },
            "EnableFirewall",
            0,
        ),
    ] {
        let f = check_fix_cycle(&sys, &opts, &SaveOptions::default());
        let set: Vec<_> = f.plan.changes.iter().filter(|c| c.value == value).collect();
        assert_eq!(set.len(), 3, "{value}");
        assert!(set.iter().all(|c| c.op == Op::SetDword(want)));
        assert!(f
            .plan
            .warnings
            .iter()
            .any(|w| w.contains("ALL inbound") || w.contains("OFF")));
    }
    // Without the options neither value is ever written.
    let f = check_fix_cycle(&sys, &FixOptions::default(), &SaveOptions::default());
    assert!(f
        .plan
        .changes
        .iter()
        .all(|c| c.value != "EnableFirewall" && c.value != "DefaultInboundAction"));
}

#[test]
fn dry_run_writes_nothing() {
    let t = Tmp::new("dry");
    let sys = t.0.join("SYSTEM");
    std::fs::write(&sys, guestwall_samples::broken_rdp_system().unwrap()).unwrap();
    let original = std::fs::read(&sys).unwrap();
    let target = Target {
        system: sys.clone(),
        software: None,
        software_given: false,
        image: None,
    };
    let f = fix(
        &target,
        &FixOptions::default(),
        &SaveOptions {
            dry_run: true,
            ..SaveOptions::default()
        },
    )
    .unwrap();
    assert_eq!(f.plan.changes.len(), 2);
    assert!(f.reachable());
    assert!(f.writes.iter().all(|w| w.report.backup.is_none()));
    assert!(std::fs::read(&sys).unwrap() == original);
    assert_eq!(std::fs::read_dir(&t.0).unwrap().count(), 1);
    let mut text = Vec::new();
    guestwall_repair::write_fixed(&f, "SYSTEM", &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("1 -> (deleted)"), "{text}");
    assert!(
        text.contains("Active=FALSE") && text.contains("Active=TRUE"),
        "{text}"
    );
    assert!(text.contains("nothing was written"), "{text}");
}

#[test]
fn undo_without_a_backup_changes_nothing_and_undo_goes_back_step_by_step() {
    let t = Tmp::new("undo");
    let sys = t.0.join("SYSTEM");
    std::fs::write(&sys, guestwall_samples::broken_rdp_system().unwrap()).unwrap();
    let v0 = std::fs::read(&sys).unwrap();
    let target = Target {
        system: sys.clone(),
        software: None,
        software_given: false,
        image: None,
    };
    let u = undo(&target, &UndoOptions::default()).unwrap();
    assert!(u.nothing());
    assert!(std::fs::read(&sys).unwrap() == v0);
    // Two operations: first RDP moved to TCP 3390 (a reg-style edit), then the fix (which
    // now adds a rule for 3390 as well).
    guestwall_regf::save::edit_file(
        &sys,
        &[Edit::SetValue {
            key: "ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp".into(),
            name: "PortNumber".into(),
            data_type: REG_DWORD,
            data: 3390u32.to_le_bytes().to_vec(),
        }],
        &SaveOptions::default(),
    )
    .unwrap();
    let v1 = std::fs::read(&sys).unwrap();
    assert!(v1 != v0);
    // A second save within the same second gets a distinct backup name.
    fix(&target, &FixOptions::default(), &SaveOptions::default()).unwrap();
    assert!(std::fs::read(&sys).unwrap() != v1);
    undo(&target, &UndoOptions::default()).unwrap();
    assert!(std::fs::read(&sys).unwrap() == v1);
    undo(&target, &UndoOptions::default()).unwrap();
    assert!(std::fs::read(&sys).unwrap() == v0);
    let u = undo(&target, &UndoOptions::default()).unwrap();
    assert!(u.nothing());
}

#[test]
fn fix_and_undo_cycles_on_a_dirty_hive_keep_its_logs() {
    // Several saves in the same second: each backup, and the logs moved aside with it, get a
    // name of their own, and each undo finds its logs again.
    let Some(c) = corpus() else { return };
    let t = Tmp::new("cycles");
    for ext in ["", ".LOG1", ".LOG2"] {
        std::fs::copy(
            c.join(format!("regipy/SYSTEM_B{ext}")),
            t.0.join(format!("SYSTEM_B{ext}")),
        )
        .unwrap();
    }
    let sys = t.0.join("SYSTEM_B");
    let target = locate(&sys, None).unwrap();
    let originals: Vec<Vec<u8>> = ["", ".LOG1", ".LOG2"]
        .iter()
        .map(|e| std::fs::read(t.0.join(format!("SYSTEM_B{e}"))).unwrap())
        .collect();
    for round in 0..4 {
        let f = fix(&target, &FixOptions::default(), &SaveOptions::default()).unwrap();
        assert!(f.reachable(), "round {round}");
        assert_eq!(f.writes[0].report.logs_moved.len(), 2, "round {round}");
        assert!(!t.0.join("SYSTEM_B.LOG1").exists());
        let u = undo(&target, &UndoOptions::default()).unwrap();
        assert_eq!(u.files[0].logs_restored.len(), 2, "round {round}");
        for (e, want) in ["", ".LOG1", ".LOG2"].iter().zip(&originals) {
            assert!(
                &std::fs::read(t.0.join(format!("SYSTEM_B{e}"))).unwrap() == want,
                "round {round}: SYSTEM_B{e} differs after undo"
            );
        }
    }
}
