//! Prints what the PowerShell collector prints for a small made-up machine (an RDP rule, the
//! Terminal Server values, running services): a seed for the fuzz targets and a sample of the
//! format.

use guestwall_capture::collector::encode::{output, Machine, MemKey, MemValue};

fn key(name: &str, values: Vec<MemValue>, subkeys: Vec<MemKey>) -> MemKey {
    MemKey {
        name: name.into(),
        values,
        subkeys,
    }
}

fn sz(name: &str, s: &str) -> MemValue {
    MemValue {
        name: name.into(),
        reg_type: 1,
        data: s
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect(),
    }
}

fn dword(name: &str, v: u32) -> MemValue {
    MemValue {
        name: name.into(),
        reg_type: 4,
        data: v.to_le_bytes().to_vec(),
    }
}

fn main() {
    let rdp = "v2.29|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|";
    let fw = key(
        "FirewallPolicy",
        vec![],
        vec![
            key("DomainProfile", vec![dword("EnableFirewall", 1)], vec![]),
            key(
                "FirewallRules",
                vec![sz("RemoteDesktop-UserMode-In-TCP", rdp)],
                vec![],
            ),
            key(
                "PublicProfile",
                vec![dword("EnableFirewall", 1), dword("DoNotAllowExceptions", 1)],
                vec![],
            ),
            key("StandardProfile", vec![dword("EnableFirewall", 1)], vec![]),
        ],
    );
    let ccs = key(
        "CurrentControlSet",
        vec![],
        vec![
            key(
                "Control",
                vec![],
                vec![key(
                    "Terminal Server",
                    vec![dword("fDenyTSConnections", 0)],
                    vec![key(
                        "WinStations",
                        vec![],
                        vec![key("RDP-Tcp", vec![dword("PortNumber", 3389)], vec![])],
                    )],
                )],
            ),
            key(
                "Services",
                vec![],
                vec![
                    key("BFE", vec![dword("Start", 2)], vec![]),
                    key("MpsSvc", vec![dword("Start", 2)], vec![]),
                    key(
                        "SharedAccess",
                        vec![],
                        vec![key("Parameters", vec![], vec![fw])],
                    ),
                    key("TermService", vec![dword("Start", 3)], vec![]),
                ],
            ),
        ],
    );
    let m = Machine {
        hklm: key(
            "",
            vec![],
            vec![key(
                "SYSTEM",
                vec![],
                vec![key("Select", vec![dword("Current", 1)], vec![]), ccs],
            )],
        ),
        host: "SAMPLE-VM".into(),
        time: "2026-12-02T20:00:00.0000000Z".into(),
        ps_version: "5.1.20348.2849".into(),
        services: vec![
            ("MpsSvc".into(), Some("Running".into())),
            ("BFE".into(), Some("Running".into())),
            ("TermService".into(), Some("Running".into())),
        ],
        networks: Some(vec![("Network".into(), "Ethernet".into(), 0)]),
        firewall: vec![(
            "Public".into(),
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
    };
    print!("{}", output(&m, 3389));
}
