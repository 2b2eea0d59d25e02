//! The evaluator: precedence, profiles, merge, and the matching rules that matter for RDP.

use guestwall_firewall::*;

const RDP_TCP: &str = "v2.29|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|EmbedCtxt=@FirewallAPI.dll,-28752|";

fn win10() -> Os {
    Os {
        nt: Some((10, 0)),
        build: Some(17763),
    }
}

fn policy(rules: &[(&str, Store, &str)]) -> Policy {
    Policy {
        rules: rules
            .iter()
            .map(|(id, store, s)| {
                StoredRule::new(*store, Origin::system("test"), Rule::parse(id, s))
            })
            .collect(),
        ..Policy::default()
    }
}

fn verdicts(p: &Policy, port: u16) -> Vec<Verdict> {
    let os = win10();
    p.evaluate(&Listener::rdp(&os, port), &os)
        .iter()
        .map(|d| d.verdict)
        .collect()
}

use Verdict::{Allowed as A, Blocked as B, Conditional as C};

#[test]
fn an_enabled_rdp_rule_allows_every_profile() {
    assert_eq!(
        verdicts(&policy(&[("rdp", Store::Local, RDP_TCP)]), 3389),
        [A, A, A]
    );
    // Not another port, and nothing at all without the rule: default block.
    assert_eq!(
        verdicts(&policy(&[("rdp", Store::Local, RDP_TCP)]), 3390),
        [B, B, B]
    );
    assert_eq!(verdicts(&Policy::default(), 3389), [B, B, B]);
}

#[test]
fn disabled_and_profile_scoped_rules() {
    let off = RDP_TCP.replace("Active=TRUE", "Active=FALSE");
    assert_eq!(
        verdicts(&policy(&[("rdp", Store::Local, &off)]), 3389),
        [B, B, B]
    );
    let dom = RDP_TCP.replace("Protocol=6|", "Protocol=6|Profile=Domain|");
    assert_eq!(
        verdicts(&policy(&[("rdp", Store::Local, &dom)]), 3389),
        [A, B, B]
    );
}

#[test]
fn block_beats_allow_and_bypass_is_not_plain_traffic() {
    let block = "v2.29|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|Name=no rdp|";
    let p = policy(&[("rdp", Store::Local, RDP_TCP), ("b", Store::Local, block)]);
    assert_eq!(verdicts(&p, 3389), [B, B, B]);
    let os = win10();
    let d = p.evaluate_profile(Profile::Public, &Listener::rdp(&os, 3389), &os);
    assert_eq!(d.decider, Decider::BlockRules(vec![1]));
    // A block rule for svchost.exe without a service matches TermService too.
    let svchost = "v2.29|Action=Block|Active=TRUE|Dir=In|App=%SystemRoot%\\System32\\svchost.exe|";
    assert_eq!(
        verdicts(
            &policy(&[("rdp", Store::Local, RDP_TCP), ("b", Store::Local, svchost)]),
            3389
        ),
        [B, B, B]
    );
    // ...but one for another service does not.
    let other =
        "v2.29|Action=Block|Active=TRUE|Dir=In|App=%SystemRoot%\\System32\\svchost.exe|Svc=dhcp|";
    assert_eq!(
        verdicts(
            &policy(&[("rdp", Store::Local, RDP_TCP), ("b", Store::Local, other)]),
            3389
        ),
        [A, A, A]
    );
    // Bypass needs IPsec: it does not admit a plain client.
    let bypass = "v2.29|Action=ByPass|Active=TRUE|Dir=In|Protocol=6|LPort=3389|Security=Authenticate|RMAuth=D:(A;;CC;;;S-1-5-11)|";
    assert_eq!(
        verdicts(&policy(&[("b", Store::Local, bypass)]), 3389),
        [B, B, B]
    );
}

#[test]
fn rules_that_never_match_rdp() {
    // Store-app rules (AppContainer) with no protocol, port or program: the trap of a naive
    // evaluator on Windows 10.
    let appx = "v2.26|Action=Allow|Active=TRUE|Dir=In|Name=Cortana|AppPkgId=S-1-15-2-1861897761-1695161497-2927542615-642690995-327840285-2659745135-2630312742|LUOwn=S-1-5-21-1-2-3-1001|";
    assert_eq!(
        verdicts(&policy(&[("x", Store::Local, appx)]), 3389),
        [B, B, B]
    );
    // Another owner, another program, UDP, outbound, an ICMP rule.
    for s in [
        "v2.29|Action=Allow|Active=TRUE|Dir=In|LUOwn=S-1-5-21-1-2-3-1001|",
        "v2.29|Action=Allow|Active=TRUE|Dir=In|App=C:\\x.exe|",
        "v2.29|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=3389|",
        "v2.29|Action=Allow|Active=TRUE|Dir=Out|Protocol=6|LPort=3389|",
        "v2.29|Action=Allow|Active=TRUE|Dir=In|Protocol=1|ICMP4=8:*|",
        "v2.29|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=RPC|",
        "v2.29|Action=Allow|Active=TRUE|Dir=In|IFType=Wireless|",
    ] {
        assert_eq!(
            verdicts(&policy(&[("x", Store::Local, s)]), 3389),
            [B, B, B],
            "{s}"
        );
    }
    // A catch-all allow does match: no protocol, no port, no program.
    assert_eq!(
        verdicts(
            &policy(&[("x", Store::Local, "v2.29|Action=Allow|Active=TRUE|Dir=In|")]),
            3389
        ),
        [A, A, A]
    );
    // NetworkService as owner, a port range and Svc=* match.
    for s in [
        "v2.29|Action=Allow|Active=TRUE|Dir=In|LUOwn=S-1-5-20|",
        "v2.29|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort2_10=3000-4000|",
        "v2.29|Action=Allow|Active=TRUE|Dir=In|App=C:\\Windows\\System32\\SVCHOST.EXE|Svc=*|",
    ] {
        assert_eq!(
            verdicts(&policy(&[("x", Store::Local, s)]), 3389),
            [A, A, A],
            "{s}"
        );
    }
}

#[test]
fn the_windows7_listener_is_the_kernel() {
    let os = Os {
        nt: Some((6, 1)),
        build: Some(7601),
    };
    let win7 = "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|App=System|";
    let p = policy(&[("x", Store::Local, win7)]);
    let d = p.evaluate(&Listener::rdp(&os, 3389), &os);
    assert!(d.iter().all(|d| d.verdict == A));
    // The user-mode rule does not apply on Windows 7 ...
    let p = policy(&[("x", Store::Local, RDP_TCP)]);
    assert!(p
        .evaluate(&Listener::rdp(&os, 3389), &os)
        .iter()
        .all(|d| d.verdict == B));
    // ... and the kernel rule does not apply from Windows 8 on.
    assert_eq!(
        verdicts(&policy(&[("x", Store::Local, win7)]), 3389),
        [B, B, B]
    );
}

#[test]
fn conditions_unknown_offline_make_the_verdict_conditional() {
    let scoped = RDP_TCP.replace("LPort=3389|", "LPort=3389|RA4=10.0.0.0/8|");
    assert_eq!(
        verdicts(&policy(&[("x", Store::Local, &scoped)]), 3389),
        [C, C, C]
    );
    let subnet_block =
        "v2.29|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=LocalSubnet|";
    assert_eq!(
        verdicts(
            &policy(&[
                ("x", Store::Local, RDP_TCP),
                ("b", Store::Local, subnet_block)
            ]),
            3389
        ),
        [C, C, C]
    );
    let unknown = RDP_TCP.replace("LPort=3389|", "LPort=3389|FutureToken=1|");
    assert_eq!(
        verdicts(&policy(&[("x", Store::Local, &unknown)]), 3389),
        [C, C, C]
    );
    // IPsec-only allow rules do not admit plain clients.
    let auth = RDP_TCP.replace("LPort=3389|", "LPort=3389|Security=Authenticate|");
    assert_eq!(
        verdicts(&policy(&[("x", Store::Local, &auth)]), 3389),
        [B, B, B]
    );
}

fn store(public: StoreProfile) -> StoreSettings {
    StoreSettings {
        public: Some(public),
        ..StoreSettings::default()
    }
}

fn set(v: bool) -> Option<Setting<bool>> {
    Some(Setting::new(v, Origin::system("k").value("x")))
}

#[test]
fn profile_settings_and_group_policy() {
    // Shielded: blocks even with the rule.
    let mut p = policy(&[("rdp", Store::Local, RDP_TCP)]);
    p.local = store(StoreProfile {
        shielded: set(true),
        ..Default::default()
    });
    assert_eq!(verdicts(&p, 3389), [A, A, B]);
    // Firewall off: allows without a rule.
    let p = Policy {
        local: store(StoreProfile {
            enable_firewall: set(false),
            ..Default::default()
        }),
        ..Policy::default()
    };
    assert_eq!(verdicts(&p, 3389), [B, B, A]);
    // Default inbound allow.
    let p = Policy {
        local: store(StoreProfile {
            default_inbound_block: set(false),
            ..Default::default()
        }),
        ..Policy::default()
    };
    assert_eq!(verdicts(&p, 3389), [B, B, A]);
    // GP turns local rules off on Public: the local RDP rule no longer counts there.
    let mut p = policy(&[("rdp", Store::Local, RDP_TCP)]);
    p.group_policy = Some(store(StoreProfile {
        allow_local_policy_merge: set(false),
        ..Default::default()
    }));
    assert_eq!(verdicts(&p, 3389), [A, A, B]);
    let os = win10();
    let d = p.evaluate_profile(Profile::Public, &Listener::rdp(&os, 3389), &os);
    assert_eq!(d.relevant[0].excluded, Some(Exclusion::LocalRulesOff));
    // ... but a GP rule does.
    p.rules.push(StoredRule::new(
        Store::GroupPolicy,
        Origin::software("gp"),
        Rule::parse("gp", RDP_TCP),
    ));
    assert_eq!(verdicts(&p, 3389), [A, A, A]);
    // A GP shield cannot be lifted locally: "on" wins.
    let mut p = policy(&[("rdp", Store::Local, RDP_TCP)]);
    p.group_policy = Some(store(StoreProfile {
        shielded: set(true),
        ..Default::default()
    }));
    p.local = store(StoreProfile {
        shielded: set(false),
        ..Default::default()
    });
    assert_eq!(verdicts(&p, 3389), [A, A, B]);
}

#[test]
fn malformed_rules_are_not_loaded() {
    let bad = RDP_TCP.replace("Protocol=6|", "");
    let p = policy(&[("x", Store::Local, &bad)]);
    assert_eq!(verdicts(&p, 3389), [B, B, B]);
    let os = win10();
    let d = p.evaluate_profile(Profile::Domain, &Listener::rdp(&os, 3389), &os);
    assert_eq!(d.relevant[0].excluded, Some(Exclusion::Malformed));
}

#[test]
fn service_hardening_blocks_apply_to_their_service_everywhere() {
    let wsh = "V2.0|Action=Block|Dir=In|App=%SystemRoot%\\system32\\svchost.exe|Svc=TermService|Name=Block TermService|";
    let p = policy(&[
        ("rdp", Store::Local, RDP_TCP),
        ("wsh", Store::ServiceHardening, wsh),
    ]);
    assert_eq!(verdicts(&p, 3389), [B, B, B]);
    // Hardening rules for other services, and hardening allows, change nothing.
    let other = "V2.0|Action=Block|Dir=In|App=%SystemRoot%\\system32\\svchost.exe|Svc=DHCP|";
    let allow = "V2.0|Action=Allow|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=TermService|";
    let p = policy(&[
        ("rdp", Store::Local, RDP_TCP),
        ("a", Store::ServiceHardening, other),
        ("b", Store::ServiceHardening, allow),
    ]);
    assert_eq!(verdicts(&p, 3389), [A, A, A]);
    let p = policy(&[("b", Store::ServiceHardening, allow)]);
    assert_eq!(verdicts(&p, 3389), [B, B, B]);
}

#[test]
fn ipsec_connection_security_rules() {
    let mut p = policy(&[("rdp", Store::Local, RDP_TCP)]);
    p.consec_rules.push(StoredConSec {
        store: Store::Local,
        origin: Origin::system("cs"),
        rule: ConSecRule::parse(
            "ipsec",
            "v2.10|Action=SecureServer|Active=TRUE|Profile=Public|Protocol=6|EP1Port=3389|",
        ),
    });
    let os = win10();
    let req = p.ipsec_requirements(&Listener::rdp(&os, 3389));
    assert_eq!(req, vec![(0, vec![Profile::Public])]);
    // Group Policy can keep local IPsec rules out.
    p.group_policy = Some(store(StoreProfile {
        allow_local_ipsec_policy_merge: set(false),
        ..Default::default()
    }));
    assert!(p.ipsec_requirements(&Listener::rdp(&os, 3389)).is_empty());
}
