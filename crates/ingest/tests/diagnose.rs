//! Diagnosis of the real SYSTEM hives of the corpus, and of scenario hives made by editing
//! them with guestwall's own writer: one scenario per cause.

use std::path::Path;

use guestwall_diagnose::{codes, diagnose, Code, Diagnosis};
use guestwall_firewall::{Profile, Rule, Verdict};
use guestwall_regf::build::{build_hive, reg_sz, BuildOptions, KeySpec};
use guestwall_regf::data::{REG_DWORD, REG_SZ};
use guestwall_regf::write::Edit;
use guestwall_regf::{Hive, RegData};
use guestwall_samples::scenario::{
    set_dword, set_sz, win7_scenario, TempDir as Tmp, FW, W7_RDP, W7_RDP_PUBLIC,
};

#[path = "../../regf/tests/common/mod.rs"]
mod common;
use common::corpus;

fn run(system: &Path) -> Vec<Diagnosis> {
    let t = guestwall_ingest::locate(system, None).unwrap();
    guestwall_ingest::load(&t)
        .unwrap()
        .iter()
        .map(|c| diagnose(c, None))
        .collect()
}

fn verdicts(d: &Diagnosis) -> Vec<Verdict> {
    d.profiles.iter().map(|p| p.verdict).collect()
}

fn codes_of(d: &Diagnosis, p: Profile) -> Vec<Code> {
    d.profiles
        .iter()
        .find(|r| r.profile == p)
        .unwrap()
        .causes
        .iter()
        .map(|c| c.code)
        .collect()
}

fn finding_codes(d: &Diagnosis) -> Vec<Code> {
    d.findings
        .iter()
        .map(|c| c.code)
        .filter(|c| *c != codes::INPUT_NOTE)
        .collect()
}

use Verdict::{Allowed as A, Blocked as B, Conditional as C};

#[test]
fn every_rule_string_in_the_corpus_round_trips() {
    let Some(c) = corpus() else { return };
    let mut n = 0;
    let mut with_problems = 0;
    for h in [
        "regipy/SYSTEM",
        "regipy/SYSTEM_2",
        "regipy/SYSTEM_B",
        "yarp/System_Delta",
    ] {
        let hive = Hive::open(c.join(h)).unwrap();
        hive.walk(hive.root().unwrap(), "", |path, key| {
            let up = path.to_ascii_uppercase();
            if !(up.contains("FIREWALLPOLICY") || up.contains("WINDOWSFIREWALL")) {
                return Ok(());
            }
            for v in key.values()? {
                if let RegData::String(s) = RegData::decode(v.data_type(), &v.data()?) {
                    if !s.starts_with('v') && !s.starts_with('V') {
                        continue;
                    }
                    let r = Rule::parse(&v.name().to_string_lossy(), &s);
                    assert_eq!(r.raw.to_string(), s, "{h}: {path}\\{}", v.name());
                    n += 1;
                    if !r.problems.is_empty() {
                        with_problems += 1;
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    }
    eprintln!("{n} rule strings round-tripped; {with_problems} with problems");
    assert!(n > 1500, "only {n} rule strings");
}

#[test]
fn windows7_rdp_is_allowed_on_domain_and_private_only() {
    let Some(c) = corpus() else { return };
    let d = &run(&c.join("regipy/SYSTEM"))[0];
    assert_eq!(verdicts(d), [A, A, B]);
    assert_eq!(
        codes_of(d, Profile::Public),
        [codes::RDP_RULE_WRONG_PROFILE, codes::RDP_RULE_DISABLED]
    );
    let public = &d.profiles[2];
    assert_eq!(
        public.causes[0].rule.as_deref(),
        Some("RemoteDesktop-In-TCP")
    );
    assert_eq!(
        public.causes[1].rule.as_deref(),
        Some("RemoteDesktop-In-TCP_1")
    );
    assert!(d.profiles[0].allowed_by[0]
        .label()
        .contains("Remote Desktop (TCP-In)"));
    assert!(!d.reachable);
    assert_eq!(finding_codes(d), Vec::<&str>::new());
}

#[test]
fn windows8_and_10_have_rdp_off_and_their_rules_disabled() {
    let Some(c) = corpus() else { return };
    for h in ["regipy/SYSTEM_2", "regipy/SYSTEM_B"] {
        let d = &run(&c.join(h))[0];
        assert_eq!(verdicts(d), [B, B, B], "{h}");
        for p in Profile::ALL {
            assert_eq!(codes_of(d, p), [codes::RDP_RULE_DISABLED], "{h} {p}");
            assert_eq!(
                d.profiles[0].causes[0].rule.as_deref(),
                Some("RemoteDesktop-UserMode-In-TCP")
            );
        }
        assert_eq!(finding_codes(d), [codes::RDP_DISABLED], "{h}");
    }
    // Windows 10's Store-app rules allow inbound for AppContainer packages and have no
    // protocol or port: they must not be taken for an RDP allow rule.
    let t = guestwall_ingest::locate(&c.join("regipy/SYSTEM_B"), None).unwrap();
    let cfg = &guestwall_ingest::load(&t).unwrap()[0];
    let appx = cfg
        .policy
        .rules
        .iter()
        .filter(|r| r.rule.active && r.rule.app_pkg_id.is_some() && r.rule.protocol.is_none())
        .count();
    assert!(appx >= 10, "{appx}");
}

#[test]
fn non_system_hives_are_refused_clearly() {
    let Some(c) = corpus() else { return };
    for (file, looks) in [
        ("regipy/NTUSER.DAT", "NTUSER.DAT"),
        ("regipy/SAM", "SAM"),
        ("regipy/UsrClass.dat", "UsrClass.dat"),
    ] {
        let t = guestwall_ingest::locate(&c.join(file), None).unwrap();
        let e = guestwall_ingest::load(&t).unwrap_err().to_string();
        assert!(
            e.contains("is not a SYSTEM hive") && e.contains(looks),
            "{file}: {e}"
        );
    }
}

// ----- scenarios -----

/// The Windows 7 SYSTEM hive with RDP allowed on every profile (the Public copy of the rule
/// enabled), plus `edits`; and a SOFTWARE hive beside it when `software` is given.
fn scenario(c: &Path, t: &Tmp, edits: &[Edit], software: Option<KeySpec>) -> Vec<Diagnosis> {
    let sys = win7_scenario(c, &t.0, edits);
    if let Some(spec) = software {
        std::fs::write(
            t.0.join("SOFTWARE"),
            build_hive(&spec, &BuildOptions::default()).unwrap(),
        )
        .unwrap();
    }
    run(&sys)
}

fn software(policies: KeySpec) -> KeySpec {
    let mut root = KeySpec::new("");
    root.path_mut("Microsoft\\Windows NT\\CurrentVersion")
        .push_value("CurrentVersion", REG_SZ, reg_sz("6.1"))
        .push_value("CurrentBuildNumber", REG_SZ, reg_sz("7601"))
        .push_value(
            "ProductName",
            REG_SZ,
            reg_sz("Windows Server 2008 R2 Datacenter"),
        );
    root.path_mut("Policies").subkeys.extend(policies.subkeys);
    root
}

#[test]
fn scenario_baseline_is_reachable() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("base");
    let d = &scenario(&c, &t, &[], None)[0];
    assert_eq!(verdicts(d), [A, A, A]);
    assert!(d.reachable, "{:?}", d);
}

#[test]
fn scenario_block_all_inbound_on_one_and_on_every_profile() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("shield1");
    let d = &scenario(
        &c,
        &t,
        &[set_dword(
            &format!("{FW}\\PublicProfile"),
            "DoNotAllowExceptions",
            1,
        )],
        None,
    )[0];
    assert_eq!(verdicts(d), [A, A, B]);
    assert_eq!(codes_of(d, Profile::Public), [codes::BLOCK_ALL_INBOUND]);
    assert!(d.profiles[2].causes[0]
        .detail
        .contains("PublicProfile\\DoNotAllowExceptions"));
    let t = Tmp::new("shield3");
    let edits: Vec<Edit> = ["DomainProfile", "StandardProfile", "PublicProfile"]
        .iter()
        .map(|p| set_dword(&format!("{FW}\\{p}"), "DoNotAllowExceptions", 1))
        .collect();
    let d = &scenario(&c, &t, &edits, None)[0];
    assert_eq!(verdicts(d), [B, B, B]);
    for p in Profile::ALL {
        assert_eq!(codes_of(d, p), [codes::BLOCK_ALL_INBOUND]);
    }
}

#[test]
fn scenario_custom_port() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("port");
    let rdp_tcp = "ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp";
    let d = &scenario(&c, &t, &[set_dword(rdp_tcp, "PortNumber", 3391)], None)[0];
    assert_eq!(d.port, 3391);
    assert_eq!(verdicts(d), [B, B, B]);
    assert_eq!(codes_of(d, Profile::Domain), [codes::RDP_PORT_NOT_ALLOWED]);
    assert!(finding_codes(d).contains(&codes::CUSTOM_PORT));
    // With a rule for the new port it is reachable.
    let t = Tmp::new("port2");
    let rule =
        "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3391|App=System|Name=RDP 3391|";
    let d = &scenario(
        &c,
        &t,
        &[
            set_dword(rdp_tcp, "PortNumber", 3391),
            set_sz(&format!("{FW}\\FirewallRules"), "rdp-3391", rule),
        ],
        None,
    )[0];
    assert_eq!(verdicts(d), [A, A, A]);
}

#[test]
fn scenario_block_rule() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("block");
    let rule = "v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|Name=Block RDP|";
    let d = &scenario(
        &c,
        &t,
        &[set_sz(&format!("{FW}\\FirewallRules"), "blockrdp", rule)],
        None,
    )[0];
    assert_eq!(verdicts(d), [B, B, B]);
    for p in Profile::ALL {
        assert_eq!(codes_of(d, p), [codes::BLOCK_RULE]);
    }
    assert_eq!(d.profiles[0].causes[0].rule.as_deref(), Some("blockrdp"));
    // Scoped to the local subnet: conditional.
    let t = Tmp::new("block2");
    let rule = "v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=LocalSubnet|Name=Block RDP|";
    let d = &scenario(
        &c,
        &t,
        &[set_sz(&format!("{FW}\\FirewallRules"), "blockrdp", rule)],
        None,
    )[0];
    assert_eq!(verdicts(d), [C, C, C]);
    assert!(d.profiles[0].causes[0].conditions[0].contains("LocalSubnet"));
    assert!(d.profiles[0].causes[0].internet_client.is_some());
}

#[test]
fn scenario_group_policy_overrides() {
    let Some(c) = corpus() else { return };
    // GP turns local rules off on Public and shields Domain.
    let policies = KeySpec::new("Policies").subkey(
        KeySpec::new("Microsoft").subkey(
            KeySpec::new("WindowsFirewall")
                .subkey(KeySpec::new("PublicProfile").value(
                    "AllowLocalPolicyMerge",
                    REG_DWORD,
                    0u32.to_le_bytes(),
                ))
                .subkey(KeySpec::new("DomainProfile").value(
                    "DoNotAllowExceptions",
                    REG_DWORD,
                    1u32.to_le_bytes(),
                ))
                .subkey(KeySpec::new("PrivateProfile").value(
                    "EnableFirewall",
                    REG_DWORD,
                    1u32.to_le_bytes(),
                )),
        ),
    );
    let t = Tmp::new("gp");
    let d = &scenario(&c, &t, &[], Some(software(policies)))[0];
    assert_eq!(verdicts(d), [B, A, B]);
    assert_eq!(codes_of(d, Profile::Domain), [codes::POLICY_OVERRIDE]);
    assert!(d.profiles[0].causes[0].detail.contains(
        "SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\DomainProfile\\DoNotAllowExceptions"
    ));
    assert_eq!(
        codes_of(d, Profile::Public),
        [codes::POLICY_OVERRIDE, codes::POLICY_OVERRIDE]
    );
    assert!(d.profiles[2].causes[0]
        .detail
        .contains("AllowLocalPolicyMerge = 0"));
    assert_eq!(
        d.os_name(),
        Some("Windows Server 2008 R2 Datacenter, build 7601")
    );
    // A GP block rule.
    let policies = KeySpec::new("Policies").subkey(KeySpec::new("Microsoft").subkey(
        KeySpec::new("WindowsFirewall").subkey(KeySpec::new("FirewallRules").value(
            "gpblock",
            REG_SZ,
            reg_sz(
                "v2.10|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|Name=GPO blocks RDP|",
            ),
        )),
    ));
    let t = Tmp::new("gp2");
    let d = &scenario(&c, &t, &[], Some(software(policies)))[0];
    assert_eq!(verdicts(d), [B, B, B]);
    assert_eq!(codes_of(d, Profile::Private), [codes::POLICY_OVERRIDE]);
    assert_eq!(d.profiles[1].causes[0].rule.as_deref(), Some("gpblock"));
}

#[test]
fn scenario_services_disabled() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("mpssvc");
    let d = &scenario(
        &c,
        &t,
        &[set_dword("ControlSet001\\Services\\MpsSvc", "Start", 4)],
        None,
    )[0];
    assert_eq!(verdicts(d), [B, B, B]);
    assert_eq!(
        codes_of(d, Profile::Domain),
        [codes::FIREWALL_SERVICE_DISABLED]
    );
    assert_eq!(finding_codes(d), [codes::FIREWALL_SERVICE_DISABLED]);
    assert!(!d.reachable);
    let t = Tmp::new("bfe");
    let d = &scenario(
        &c,
        &t,
        &[set_dword("ControlSet001\\Services\\BFE", "Start", 4)],
        None,
    )[0];
    assert_eq!(finding_codes(d), [codes::FIREWALL_SERVICE_DISABLED]);
    let t = Tmp::new("termservice");
    let d = &scenario(
        &c,
        &t,
        &[set_dword(
            "ControlSet001\\Services\\TermService",
            "Start",
            4,
        )],
        None,
    )[0];
    assert_eq!(verdicts(d), [A, A, A]);
    assert_eq!(finding_codes(d), [codes::TERMSERVICE_DISABLED]);
    assert!(!d.reachable);
}

#[test]
fn scenario_rdp_disabled_locally_and_by_policy() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("deny");
    let d = &scenario(
        &c,
        &t,
        &[set_dword(
            "ControlSet001\\Control\\Terminal Server",
            "fDenyTSConnections",
            1,
        )],
        None,
    )[0];
    assert_eq!(verdicts(d), [A, A, A]);
    assert_eq!(finding_codes(d), [codes::RDP_DISABLED]);
    assert!(!d.reachable);
    // The policy copy wins over a local 0.
    let policies = KeySpec::new("Policies").subkey(KeySpec::new("Microsoft").subkey(
        KeySpec::new("Windows NT").subkey(KeySpec::new("Terminal Services").value(
            "fDenyTSConnections",
            REG_DWORD,
            1u32.to_le_bytes(),
        )),
    ));
    let t = Tmp::new("deny-gp");
    let d = &scenario(&c, &t, &[], Some(software(policies)))[0];
    assert_eq!(finding_codes(d), [codes::RDP_DISABLED]);
    assert!(d.findings[0].detail.contains("Group Policy"));
}

#[test]
fn scenario_rule_limited_to_one_profile_and_rule_missing() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("oneprofile");
    let domain_only = W7_RDP.replace("Profile=Domain|Profile=Private|", "Profile=Domain|");
    let edits = [
        set_sz(
            &format!("{FW}\\FirewallRules"),
            "RemoteDesktop-In-TCP",
            &domain_only,
        ),
        set_sz(
            &format!("{FW}\\FirewallRules"),
            "RemoteDesktop-In-TCP_1",
            &W7_RDP_PUBLIC.replace("Active=TRUE", "Active=FALSE"),
        ),
    ];
    let d = &scenario(&c, &t, &edits, None)[0];
    assert_eq!(verdicts(d), [A, B, B]);
    assert_eq!(
        codes_of(d, Profile::Private),
        [codes::RDP_RULE_WRONG_PROFILE]
    );
    let t = Tmp::new("missing");
    let edits = [
        Edit::DeleteValue {
            key: format!("{FW}\\FirewallRules"),
            name: "RemoteDesktop-In-TCP".into(),
        },
        Edit::DeleteValue {
            key: format!("{FW}\\FirewallRules"),
            name: "RemoteDesktop-In-TCP_1".into(),
        },
    ];
    let d = &scenario(&c, &t, &edits, None)[0];
    assert_eq!(verdicts(d), [B, B, B]);
    assert_eq!(codes_of(d, Profile::Domain), [codes::RDP_RULE_MISSING]);
}

#[test]
fn scenario_profile_switched_off() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("off");
    let edits = [
        set_dword(&format!("{FW}\\PublicProfile"), "EnableFirewall", 0),
        set_sz(
            &format!("{FW}\\FirewallRules"),
            "RemoteDesktop-In-TCP_1",
            &W7_RDP_PUBLIC.replace("Active=TRUE", "Active=FALSE"),
        ),
    ];
    let d = &scenario(&c, &t, &edits, None)[0];
    assert_eq!(verdicts(d), [A, A, A]);
    assert_eq!(codes_of(d, Profile::Public), [codes::FIREWALL_OFF]);
    assert!(d.reachable);
}

#[test]
fn scenario_ipsec_required() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("ipsec");
    let edits = [
        Edit::CreateKey { key: format!("{FW}\\ConSecRules") },
        set_sz(&format!("{FW}\\ConSecRules"), "{ipsec-rdp}", "v2.10|Action=SecureServer|Active=TRUE|Protocol=6|EP1Port=3389|Name=Require IPsec for RDP|"),
    ];
    let d = &scenario(&c, &t, &edits, None)[0];
    assert_eq!(codes_of(d, Profile::Domain), [codes::IPSEC_REQUIRED]);
    assert_eq!(finding_codes(d), [codes::IPSEC_REQUIRED]);
    assert!(!d.reachable);
}

#[test]
fn scenario_next_boot_uses_another_control_set() {
    let Some(c) = corpus() else { return };
    let t = Tmp::new("select");
    // Next boot loads ControlSet002, where the Domain profile blocks everything.
    let edits = [
        set_dword("Select", "Default", 2),
        set_dword(
            "ControlSet002\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\DomainProfile",
            "DoNotAllowExceptions",
            1,
        ),
    ];
    let ds = scenario(&c, &t, &edits, None);
    assert_eq!(ds.len(), 2);
    assert!(ds[0].label.contains("ControlSet001 (Select\\Current)"));
    assert!(ds[1]
        .label
        .contains("ControlSet002 (Select\\Default, the next boot)"));
    assert_eq!(
        codes_of(&ds[1], Profile::Domain),
        [codes::BLOCK_ALL_INBOUND]
    );
    assert!(ds[0]
        .findings
        .iter()
        .any(|f| f.detail.contains("Select\\Default is 2")));
}

#[test]
fn a_windows_folder_is_found_case_insensitively() {
    let t = Tmp::new("folder");
    let config = t.0.join("WINDOWS").join("system32").join("Config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("system"),
        guestwall_samples::broken_rdp_system().unwrap(),
    )
    .unwrap();
    let target = guestwall_ingest::locate(&t.0, None).unwrap();
    assert_eq!(target.system, config.join("system"));
    assert_eq!(target.software, None);
    let d = &guestwall_ingest::load(&target).unwrap()[0];
    let d = diagnose(d, None);
    assert_eq!(verdicts(&d), [B, B, B]);
    assert_eq!(
        codes_of(&d, Profile::Public),
        [codes::RDP_RULE_DISABLED, codes::BLOCK_ALL_INBOUND]
    );
    let e = guestwall_ingest::locate(&t.0.join("nothing"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such file"), "{e}");
}
