//! Every real capture of `../shared/corpus/netsh` parses without loss. The expected values
//! are written from reading each file, field by field.

mod common;

use guestwall_capture::netsh::{Edge, InboundPolicy, List, LocalRules, OutboundPolicy, Protocol};
use guestwall_capture::{
    parse_capture, Action, Capture, Direction, Language, NoteKind, Profile, ProfileSet,
};

fn parse(rel: &str) -> Option<Capture> {
    let c = common::corpus()?;
    Some(parse_capture(&common::read(&c, rel), rel))
}

fn no_loss(c: &Capture) {
    let bad: Vec<String> = c
        .notes
        .iter()
        .filter(|n| matches!(n.kind, NoteKind::Unparsed | NoteKind::Damaged))
        .map(|n| n.to_string())
        .collect();
    assert!(bad.is_empty(), "{}: {bad:?}", c.origin_name);
    assert!(!c.truncated, "{}", c.origin_name);
}

fn items(v: &[&str]) -> List {
    List::Items(v.iter().map(|s| s.to_string()).collect())
}

#[test]
fn allprofiles_htb_gpo_off() {
    let Some(c) = parse("netsh/en/allprofiles-htb-gpo-off.txt") else {
        return;
    };
    no_loss(&c);
    assert_eq!(c.profiles.len(), 3);
    let names: Vec<Option<Profile>> = c.profiles.iter().map(|p| p.profile).collect();
    assert_eq!(
        names,
        [
            Some(Profile::Domain),
            Some(Profile::Private),
            Some(Profile::Public)
        ]
    );
    for (p, header_line) in c.profiles.iter().zip([2, 18, 34]) {
        assert_eq!(p.origin.line, header_line);
        assert_eq!(p.state.as_ref().unwrap().value, Some(false));
        assert_eq!(p.state.as_ref().unwrap().text, "OFF");
        assert_eq!(p.state.as_ref().unwrap().line, header_line + 2);
        assert_eq!(
            p.inbound.as_ref().unwrap().value,
            Some(InboundPolicy::BlockInbound)
        );
        assert_eq!(
            p.outbound.as_ref().unwrap().value,
            Some(OutboundPolicy::AllowOutbound)
        );
        assert_eq!(
            p.local_firewall_rules.as_ref().unwrap().value,
            Some(LocalRules::NotApplicable)
        );
        assert_eq!(
            p.local_firewall_rules.as_ref().unwrap().text,
            "N/A (GPO-store only)"
        );
        assert_eq!(
            p.local_consec_rules.as_ref().unwrap().value,
            Some(LocalRules::NotApplicable)
        );
        assert_eq!(
            p.inbound_user_notification.as_ref().unwrap().value,
            Some(false)
        );
        assert_eq!(p.remote_management.as_ref().unwrap().value, Some(false));
        assert_eq!(p.unicast_response.as_ref().unwrap().value, Some(true));
        assert_eq!(p.log_allowed.as_ref().unwrap().value, Some(false));
        assert_eq!(p.log_dropped.as_ref().unwrap().value, Some(false));
        assert_eq!(
            p.log_file.as_ref().unwrap().text,
            "%systemroot%\\system32\\LogFiles\\Firewall\\pfirewall.log"
        );
        assert_eq!(p.log_max_kb.as_ref().unwrap().value, Some(4096));
        assert!(p.other.is_empty());
        assert!(!p.current, "no command line: not known to be current");
    }
    assert_eq!(c.active_profiles, None);
    assert_eq!(c.languages, [Language::English]);
}

#[test]
fn currentprofile_tells_the_active_profile_when_the_command_is_known() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let text = common::read(&corpus, "netsh/en/currentprofile-crtp-domain-off.txt");
    let c = parse_capture(&text, "crtp");
    no_loss(&c);
    assert_eq!(c.profiles.len(), 1);
    assert_eq!(c.profiles[0].profile, Some(Profile::Domain));
    assert_eq!(c.profiles[0].state.as_ref().unwrap().value, Some(false));
    // The `Ok.` trailer was read, and nothing was left.
    assert_eq!(c.blocks.len(), 1);
    // With the prompt the capture came from, the profile is known to be the active one.
    let mut with_prompt =
        b"PS C:\\Windows\\system32> netsh advfirewall show currentprofile\r\n".to_vec();
    with_prompt.extend(&text);
    let c = parse_capture(&with_prompt, "crtp");
    no_loss(&c);
    assert!(c.profiles[0].current);
    let active = c.active_profiles.as_ref().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].profile, Some(Profile::Domain));
    assert_eq!(c.profiles[0].origin.line, 3);
}

#[test]
fn damaged_rendered_copies_without_dashes_or_logging_header() {
    let Some(c) = parse("netsh/en/currentprofile-datacadamia-rendered.txt") else {
        return;
    };
    no_loss(&c);
    assert_eq!(c.profiles.len(), 1);
    let p = &c.profiles[0];
    assert_eq!(p.profile, Some(Profile::Domain));
    assert_eq!(p.state.as_ref().unwrap().value, Some(true));
    assert_eq!(
        p.inbound_user_notification.as_ref().unwrap().value,
        Some(true)
    );
    assert_eq!(p.log_max_kb.as_ref().unwrap().value, Some(4096));
    assert_eq!(p.log_max_kb.as_ref().unwrap().line, 13);

    let Some(c) = parse("netsh/en/monitor-show-firewall-public-datacadamia-rendered.txt") else {
        return;
    };
    no_loss(&c);
    let p = &c.profiles[0];
    assert_eq!(p.profile, Some(Profile::Public));
    assert_eq!(
        p.local_firewall_rules.as_ref().unwrap().value,
        Some(LocalRules::Enable)
    );
    assert_eq!(
        p.local_consec_rules.as_ref().unwrap().value,
        Some(LocalRules::Enable)
    );
    assert_eq!(p.remote_management.as_ref().unwrap().value, Some(false));
}

#[test]
fn verbose_rule_iphttps() {
    let Some(c) = parse("netsh/en/rule-verbose-iphttps-tcp-out.txt") else {
        return;
    };
    no_loss(&c);
    assert_eq!(c.rules.len(), 1);
    let r = &c.rules[0];
    assert_eq!(r.origin.line, 2);
    assert_eq!(r.name.text, "Core Networking - IPHTTPS (TCP-Out)");
    assert_eq!(
        r.description.as_ref().unwrap().text,
        "Outbound TCP rule to allow IPHTTPS tunneling technology to provide connectivity across HTTP proxies and firewalls."
    );
    assert_eq!(r.enabled.as_ref().unwrap().value, Some(true));
    assert_eq!(r.direction.as_ref().unwrap().value, Some(Direction::Out));
    assert_eq!(r.profiles.as_ref().unwrap().value, Some(ProfileSet::ALL));
    assert_eq!(r.grouping.as_ref().unwrap().text, "Core Networking");
    assert_eq!(r.local_ip.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(r.remote_ip.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(
        r.protocol.as_ref().unwrap().value,
        Some(Protocol::Number(6))
    );
    assert_eq!(r.local_port.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(
        r.remote_port.as_ref().unwrap().value,
        Some(items(&["IPHTTPS"]))
    );
    assert_eq!(r.edge.as_ref().unwrap().value, Some(Edge::No));
    assert_eq!(
        r.program.as_ref().unwrap().text,
        "C:\\WINDOWS\\system32\\svchost.exe"
    );
    assert_eq!(r.service.as_ref().unwrap().text, "iphlpsvc");
    assert_eq!(r.interface_types.as_ref().unwrap().text, "Any");
    assert_eq!(r.security.as_ref().unwrap().text, "NotRequired");
    assert_eq!(r.rule_source.as_ref().unwrap().text, "Local Setting");
    assert_eq!(r.action.as_ref().unwrap().value, Some(Action::Allow));
    assert_eq!(r.action.as_ref().unwrap().line, 20);
    assert!(r.unknown.is_empty());
    assert_eq!(r.language, Language::English);
}

#[test]
fn verbose_rules_with_protocol_any() {
    let Some(c) = parse("netsh/en/rule-verbose-unity-livecapture-protocol-any.txt") else {
        return;
    };
    no_loss(&c);
    let r = &c.rules[0];
    assert_eq!(r.name.text, "Unity 2022.1.0b10 Live Capture");
    assert!(r.description.is_none());
    assert_eq!(r.direction.as_ref().unwrap().value, Some(Direction::In));
    assert_eq!(
        r.profiles.as_ref().unwrap().value,
        Some(ProfileSet::of(&[Profile::Domain, Profile::Private]))
    );
    assert_eq!(r.grouping.as_ref().unwrap().text, "");
    assert_eq!(r.protocol.as_ref().unwrap().value, Some(Protocol::Any));
    assert!(r.local_port.is_none() && r.remote_port.is_none());
    assert_eq!(
        r.program.as_ref().unwrap().text,
        "C:\\Program Files\\Unity\\2022.1.0b10\\Editor\\Unity.exe"
    );
    assert!(r.service.is_none());
    assert_eq!(r.action.as_ref().unwrap().value, Some(Action::Allow));

    let Some(c) = parse("netsh/en/rule-verbose-virtualdesktop-streamer-protocol-any.txt") else {
        return;
    };
    no_loss(&c);
    assert_eq!(c.rules.len(), 1);
    let r = &c.rules[0];
    assert_eq!(r.name.text, "Virtual Desktop Streamer");
    assert_eq!(
        r.grouping.as_ref().unwrap().text,
        "Virtual Desktop Streamer"
    );
    assert_eq!(r.edge.as_ref().unwrap().value, Some(Edge::Yes));
    assert_eq!(r.profiles.as_ref().unwrap().value, Some(ProfileSet::ALL));
    assert_eq!(
        r.program.as_ref().unwrap().text,
        "C:\\Program Files\\Virtual Desktop Streamer\\VirtualDesktop.Streamer.exe"
    );
}

#[test]
fn non_verbose_rules_with_icmp_table_and_address_lists() {
    let Some(c) = parse("netsh/en/rules-vcl-rdp-and-icmp-nonverbose.txt") else {
        return;
    };
    no_loss(&c);
    assert_eq!(c.rules.len(), 2);
    let r = &c.rules[0];
    assert_eq!(r.name.text, "VCL: allow RDP port 3389");
    assert_eq!(
        r.remote_ip.as_ref().unwrap().value,
        Some(items(&["152.14.53.0/26", "10.10.1.2-10.10.2.22"]))
    );
    assert_eq!(
        r.protocol.as_ref().unwrap().value,
        Some(Protocol::Number(6))
    );
    assert_eq!(r.local_port.as_ref().unwrap().value, Some(items(&["3389"])));
    assert_eq!(r.remote_port.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(r.action.as_ref().unwrap().value, Some(Action::Allow));
    assert!(
        r.program.is_none(),
        "non-verbose output has no Program line"
    );
    let r = &c.rules[1];
    assert_eq!(r.origin.line, 14);
    assert_eq!(r.name.text, "VCL: allow ping to/from any address");
    assert_eq!(
        r.protocol.as_ref().unwrap().value,
        Some(Protocol::Number(1))
    );
    assert_eq!(r.icmp, [("8".to_string(), "Any".to_string())]);
    assert!(r.local_port.is_none());
    assert_eq!(r.edge.as_ref().unwrap().value, Some(Edge::No));
}

#[test]
fn russian_rule() {
    let Some(c) = parse("netsh/ru/rule-http-ws2008.txt") else {
        return;
    };
    no_loss(&c);
    assert_eq!(c.rules.len(), 1);
    let r = &c.rules[0];
    assert_eq!(r.language, Language::Russian);
    assert_eq!(r.name.text, "http");
    assert_eq!(r.enabled.as_ref().unwrap().text, "Да");
    assert_eq!(r.enabled.as_ref().unwrap().value, Some(true));
    assert_eq!(r.direction.as_ref().unwrap().value, Some(Direction::In));
    // "Profiles:" stays English on this build, its value is Russian.
    assert_eq!(r.profiles.as_ref().unwrap().text, "Домен,Частный,Публичный");
    assert_eq!(r.profiles.as_ref().unwrap().value, Some(ProfileSet::ALL));
    assert_eq!(r.grouping.as_ref().unwrap().text, "");
    assert_eq!(r.local_ip.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(
        r.remote_ip.as_ref().unwrap().value,
        Some(items(&["192.168.0.1/32"]))
    );
    assert_eq!(
        r.protocol.as_ref().unwrap().value,
        Some(Protocol::Number(6))
    );
    assert_eq!(r.local_port.as_ref().unwrap().value, Some(items(&["80"])));
    assert_eq!(r.remote_port.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(r.edge.as_ref().unwrap().value, Some(Edge::No));
    assert_eq!(r.action.as_ref().unwrap().value, Some(Action::Allow));
    assert_eq!(r.action.as_ref().unwrap().line, 14);
    assert!(c.languages.contains(&Language::Russian));
}

#[test]
fn german_rule_with_redacted_values() {
    let Some(c) = parse("netsh/de/rule-verbose-dayz-partly-redacted.txt") else {
        return;
    };
    // The redacted Edgeausnahme value is kept as text and left unparsed; nothing is lost.
    no_loss(&c);
    let r = &c.rules[0];
    assert_eq!(r.language, Language::German);
    assert_eq!(r.name.text, "DayZ");
    assert_eq!(r.description.as_ref().unwrap().text, "CUT");
    assert_eq!(r.enabled.as_ref().unwrap().value, Some(true));
    assert_eq!(r.direction.as_ref().unwrap().value, Some(Direction::Out));
    assert_eq!(r.profiles.as_ref().unwrap().value, Some(ProfileSet::ALL));
    assert_eq!(r.grouping.as_ref().unwrap().text, "CUt");
    assert_eq!(r.local_ip.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(r.remote_ip.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(
        r.protocol.as_ref().unwrap().value,
        Some(Protocol::Number(17))
    );
    assert_eq!(r.local_port.as_ref().unwrap().value, Some(List::Any));
    assert_eq!(
        r.remote_port.as_ref().unwrap().value,
        Some(items(&["2302"]))
    );
    assert_eq!(r.edge.as_ref().unwrap().text, "CUt");
    assert_eq!(r.edge.as_ref().unwrap().value, None);
    assert_eq!(
        r.program.as_ref().unwrap().text,
        "C:\\\\Windows\\\\system32\\\\svchost.exe"
    );
    assert_eq!(r.service.as_ref().unwrap().text, "CUT");
    assert_eq!(r.interface_types.as_ref().unwrap().text, "CUT");
    assert_eq!(r.security.as_ref().unwrap().text, "CUT");
    assert_eq!(r.rule_source.as_ref().unwrap().text, "CUT");
    assert_eq!(r.action.as_ref().unwrap().value, Some(Action::Allow));
    assert_eq!(r.action.as_ref().unwrap().line, 21);
}

#[test]
fn reg_query_values() {
    let Some(c) = parse("netsh/en-secondary/reg-query-fdenytsconnections-and-portnumber.txt")
    else {
        return;
    };
    no_loss(&c);
    let key = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server";
    let v = c.registry.value(key, "fDenyTSConnections").unwrap();
    assert_eq!((v.reg_type, v.data.as_slice()), (4, &[0u8, 0, 0, 0][..]));
    assert_eq!(v.origin.line, 3);
    assert_eq!(c.registry.len(), 1);
    // Without the command line, the key's other values are unknown, not absent.
    assert!(!c.registry.key(key).unwrap().values_complete);
    assert!(!c.registry.is_absent(key, Some("fSingleSessionPerUser")));

    let Some(c) = parse("netsh/en-secondary/reg-query-portnumber-evilwinrm.txt") else {
        return;
    };
    no_loss(&c);
    let v = c
        .registry
        .value(
            "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp",
            "portnumber",
        )
        .unwrap();
    assert_eq!(v.dword(), Some(3389));
    assert_eq!(v.shown, "0xd3d");
}

#[test]
fn sc_query() {
    let Some(c) = parse("netsh/en-secondary/sc-query-and-qc-termservice.txt") else {
        return;
    };
    no_loss(&c);
    assert_eq!(c.services.len(), 1);
    let s = c.service("termservice").unwrap();
    assert_eq!(s.name, "TermService");
    assert_eq!(s.origin.line, 2);
    assert_eq!(s.service_type.as_ref().unwrap().value, Some(0x30));
    assert_eq!(s.state.as_ref().unwrap().value, Some(4));
    assert_eq!(s.state.as_ref().unwrap().text, "4  RUNNING");
    assert_eq!(s.running(), Some(true));
    assert!(s.start.is_none(), "sc query does not tell the start type");
}

#[test]
fn every_corpus_capture_parses_without_loss() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut n = 0;
    for lang in ["en", "de", "ru", "en-secondary"] {
        let dir = corpus.join("netsh").join(lang);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "txt")
                    && !p.to_string_lossy().ends_with(".source.txt")
            })
            .collect();
        files.sort();
        for f in files {
            let c = parse_capture(&std::fs::read(&f).unwrap(), &f.to_string_lossy());
            no_loss(&c);
            assert!(!c.blocks.is_empty(), "{}", f.display());
            n += 1;
        }
    }
    assert_eq!(n, 13, "the corpus has 13 captures");
}
