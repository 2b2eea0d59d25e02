//! Wrapped, truncated, mixed-language, UTF-16 and damaged transcripts: partial results with
//! clear notes, never a panic. Also PowerShell objects, sc, netstat and the collector's
//! damage checks.

mod common;

use std::time::Instant;

use guestwall_capture::collector::encode::{self, Machine, MemKey, MemValue};
use guestwall_capture::{
    decode_collector, parse_capture, Action, CaptureError, Direction, Language, NoteKind, Profile,
    ProfileSet,
};

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            out.push('\n');
        }
        for chunk in chars.chunks(width) {
            out.extend(chunk);
            out.push('\n');
        }
    }
    out
}

const LONG_DESC: &str = "Inbound rule for the Remote Desktop service to allow RDP traffic. [TCP 3389] This text is long enough to be wrapped twice at eighty columns by the console.";

fn rule_block() -> String {
    format!(
        "\nRule Name:                            Remote Desktop - User Mode (TCP-In)\n\
        ----------------------------------------------------------------------\n\
        Description:                          {LONG_DESC}\n\
        Enabled:                              No\n\
        Direction:                            In\n\
        Profiles:                             Domain,Private\n\
        Grouping:                             Remote Desktop\n\
        LocalIP:                              Any\n\
        RemoteIP:                             Any\n\
        Protocol:                             TCP\n\
        LocalPort:                            3389\n\
        RemotePort:                           Any\n\
        Edge traversal:                       No\n\
        Program:                              C:\\Windows\\system32\\svchost.exe\n\
        Service:                              termservice\n\
        InterfaceTypes:                       Any\n\
        Security:                             NotRequired\n\
        Rule source:                          Local Setting\n\
        Action:                               Allow\nOk.\n"
    )
}

#[test]
fn console_wrapped_lines_are_joined() {
    for width in [80, 120] {
        let text = wrap(&rule_block(), width);
        let c = parse_capture(text.as_bytes(), "wrapped");
        assert_eq!(c.rules.len(), 1, "{width}");
        let r = &c.rules[0];
        assert_eq!(r.description.as_ref().unwrap().text, LONG_DESC, "{width}");
        assert_eq!(r.enabled.as_ref().unwrap().value, Some(false));
        assert_eq!(r.action.as_ref().unwrap().value, Some(Action::Allow));
        assert!(
            c.notes.iter().all(|n| n.kind != NoteKind::Unparsed),
            "{width}: {:?}",
            c.notes
        );
    }
    // A reg value line wrapped at 80 columns.
    let rule = "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|";
    let text = format!(
        "C:\\>reg query HKLM\\SYSTEM\\X /v RemoteDesktop-UserMode-In-TCP\n\nHKEY_LOCAL_MACHINE\\SYSTEM\\X\n    RemoteDesktop-UserMode-In-TCP    REG_SZ    {rule}\n\n"
    );
    let c = parse_capture(wrap(&text, 80).as_bytes(), "wrapped-reg");
    let v = c
        .registry
        .value("HKLM\\SYSTEM\\X", "RemoteDesktop-UserMode-In-TCP")
        .unwrap();
    assert_eq!(v.string().as_deref(), Some(rule));
}

fn many_rules(n: usize) -> String {
    let mut s = String::from("PS C:\\> netsh advfirewall firewall show rule name=all dir=in\n");
    for i in 0..n {
        s.push_str(&format!(
            "\nRule Name:                            Rule {i}\n----------------------------------------------------------------------\nEnabled:                              Yes\nDirection:                            In\nProfiles:                             Public\nGrouping:\nLocalIP:                              Any\nRemoteIP:                             Any\nProtocol:                             TCP\nLocalPort:                            {}\nRemotePort:                           Any\nEdge traversal:                       No\nAction:                               Block\n",
            1000 + i
        ));
    }
    s.push_str("Ok.\n");
    s
}

#[test]
fn run_command_keeps_the_last_4096_bytes() {
    let full = many_rules(40);
    assert!(full.len() > 8000);
    let tail = &full.as_bytes()[full.len() - 4096..];
    // As Run Command returns it: JSON with the (cut) standard output.
    let json = serde_json::json!({"value": [
        {"code": "ComponentStatus/StdOut/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": String::from_utf8_lossy(tail)},
        {"code": "ComponentStatus/StdErr/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": ""}
    ]});
    let c = parse_capture(json.to_string().as_bytes(), "runcommand.json");
    assert!(c.truncated);
    assert!(c.run_command.is_some());
    assert!(c.notes.iter().any(|n| n.kind == NoteKind::Truncated));
    // The last rules are all there, complete.
    let last = c.rules.last().unwrap();
    assert_eq!(last.name.text, "Rule 39");
    assert_eq!(last.local_port.as_ref().unwrap().text, "1039");
    assert_eq!(last.action.as_ref().unwrap().value, Some(Action::Block));
    assert!(c.rules.len() >= 5, "{}", c.rules.len());
    // The raw tail without the JSON: the first block starts in the middle.
    let c = parse_capture(tail, "tail.txt");
    assert!(c.truncated, "{:?}", c.notes);
}

fn big_machine(rules: usize) -> Machine {
    let values = (0..rules)
        .map(|i| MemValue {
            name: format!("{{{i:08}-0000-0000-0000-000000000000}}"),
            reg_type: 1,
            data: format!("v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=10.{}.{}.0/24|Name=Custom RDP {i}|Desc=for team {i}|", i % 256, i / 256)
                .encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes)
                .collect(),
        })
        .collect();
    let mut k = MemKey {
        name: String::new(),
        ..MemKey::default()
    };
    let mut cur = &mut k;
    for part in "SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules".split('\\') {
        cur.subkeys.push(MemKey {
            name: part.into(),
            ..MemKey::default()
        });
        cur = cur.subkeys.last_mut().unwrap();
    }
    cur.values = values;
    Machine {
        hklm: k,
        host: "BIG".into(),
        time: "2026-12-02T20:00:00Z".into(),
        ps_version: "7.4.6".into(),
        ..Machine::default()
    }
}

#[test]
fn a_collector_block_cut_at_the_start_is_reported() {
    let out = encode::output(&big_machine(300), 3389);
    assert!(out.len() > 4096);
    assert!(out.contains("GUESTWALL: the capture is"));
    // Whole: every rule is there, Desc= removed.
    let c = parse_capture(out.as_bytes(), "whole");
    assert!(!c.truncated);
    let key = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules";
    assert_eq!(c.registry.key(key).unwrap().values.len(), 300);
    let v = c
        .registry
        .value(key, "{00000007-0000-0000-0000-000000000000}")
        .unwrap();
    assert_eq!(
        v.string().as_deref(),
        Some("v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=10.7.0.0/24|Name=Custom RDP 7|")
    );
    // Cut: Run Command's last 4,096 bytes.
    let tail = &out.as_bytes()[out.len() - 4096..];
    let c = parse_capture(tail, "cut");
    assert!(c.truncated);
    assert!(c.registry.is_empty());
    assert!(c.notes.iter().any(|n| n.text.contains("collector says")));
    assert_eq!(
        decode_collector(tail, "cut").unwrap_err(),
        CaptureError::NoBlock
    );
}

#[test]
fn damaged_collector_blocks_are_refused_with_their_line() {
    let out = encode::output(&big_machine(3), 3389);
    // One base64 character changed: the checksum says so.
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    let l = &mut lines[2];
    let flipped = if l.starts_with('A') { "B" } else { "A" };
    l.replace_range(0..1, flipped);
    let damaged = lines.join("\r\n");
    match decode_collector(damaged.as_bytes(), "damaged") {
        Err(CaptureError::Checksum { line, .. }) => assert_eq!(line, 1),
        other => panic!("{other:?}"),
    }
    let c = parse_capture(damaged.as_bytes(), "damaged");
    assert!(c
        .notes
        .iter()
        .any(|n| n.kind == NoteKind::Damaged && n.line == Some(1)));
    assert!(c.registry.is_empty());
    // Cut at the end: no END line.
    let cut = lines[..3].join("\r\n");
    assert!(matches!(
        decode_collector(cut.as_bytes(), "cut"),
        Err(CaptureError::NoEnd { line: 1 })
    ));
    assert!(parse_capture(cut.as_bytes(), "cut").truncated);
}

#[test]
fn a_gzip_bomb_is_refused_without_inflating_it() {
    use base64::Engine;
    use sha2::Digest;
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"guestwall-capture\t1\n").unwrap();
    let zeros = vec![b'a'; 1 << 20];
    for _ in 0..20 {
        gz.write_all(&zeros).unwrap();
    }
    let z = gz.finish().unwrap();
    let sha: String = sha2::Sha256::digest(&z)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let text = format!(
        "-----BEGIN GUESTWALL CAPTURE v1-----\nbytes={} sha256={sha}\n{}\n-----END GUESTWALL CAPTURE v1-----\n",
        z.len(),
        base64::engine::general_purpose::STANDARD.encode(&z)
    );
    let t0 = Instant::now();
    assert!(matches!(
        decode_collector(text.as_bytes(), "bomb"),
        Err(CaptureError::TooLarge { .. })
    ));
    assert!(t0.elapsed().as_secs() < 5);
}

#[test]
fn mixed_languages_and_encodings() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut text = Vec::new();
    for (cmd, f) in [
        (
            "netsh advfirewall show allprofiles",
            "netsh/en/allprofiles-htb-gpo-off.txt",
        ),
        (
            "netsh advfirewall firewall show rule name=all verbose",
            "netsh/de/rule-verbose-dayz-partly-redacted.txt",
        ),
        (
            "netsh advfirewall firewall show rule name=http",
            "netsh/ru/rule-http-ws2008.txt",
        ),
        (
            "sc query TermService",
            "netsh/en-secondary/sc-query-and-qc-termservice.txt",
        ),
    ] {
        text.extend(format!("C:\\Windows\\system32>{cmd}\r\n").into_bytes());
        text.extend(common::read(&corpus, f));
    }
    let check = |c: &guestwall_capture::Capture| {
        assert_eq!(c.profiles.len(), 3);
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].language, Language::German);
        assert_eq!(c.rules[1].language, Language::Russian);
        for l in [Language::English, Language::German, Language::Russian] {
            assert!(c.languages.contains(&l), "{l:?}");
        }
        assert_eq!(c.service("TermService").unwrap().running(), Some(true));
        assert!(
            !c.notes.iter().any(|n| n.kind == NoteKind::Unparsed),
            "{:?}",
            c.notes
        );
    };
    let utf8 = parse_capture(&text, "mixed");
    check(&utf8);
    let s = String::from_utf8(text.clone()).unwrap();
    let le: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
    for (name, bytes) in [
        ("utf16le-bom", [&[0xFF, 0xFE][..], &le].concat()),
        ("utf16le", le.clone()),
        ("utf16be-bom", [&[0xFE, 0xFF][..], &be].concat()),
        ("utf8-bom", [&[0xEF, 0xBB, 0xBF][..], &text].concat()),
    ] {
        let c = parse_capture(&bytes, name);
        check(&c);
        assert_eq!(
            c.rules[1].action.as_ref().unwrap().line,
            utf8.rules[1].action.as_ref().unwrap().line
        );
    }
    // The German capture in Windows-1252 (ä = E4, Ö = D6): the profile names still match.
    let de = common::read(&corpus, "netsh/de/rule-verbose-dayz-partly-redacted.txt");
    let latin: Vec<u8> = String::from_utf8(de)
        .unwrap()
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let c = parse_capture(&latin, "cp1252");
    assert_eq!(
        c.rules[0].profiles.as_ref().unwrap().value,
        Some(ProfileSet::ALL)
    );
    assert!(c.notes.iter().any(|n| n.kind == NoteKind::Encoding));
}

#[test]
fn random_damage_never_panics() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut base = rule_block().into_bytes();
    base.extend(common::read(
        &corpus,
        "netsh/en/allprofiles-htb-gpo-off.txt",
    ));
    base.extend(common::read(&corpus, "netsh/ru/rule-http-ws2008.txt"));
    base.extend(encode::output(&big_machine(5), 3389).into_bytes());
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let t0 = Instant::now();
    for _ in 0..1500 {
        let mut b = base.clone();
        for _ in 0..(next() % 8 + 1) {
            if b.is_empty() {
                break;
            }
            let i = usize::try_from(next() % b.len() as u64).unwrap();
            match next() % 4 {
                0 => b[i] = next() as u8,
                1 => {
                    b.remove(i);
                }
                2 => b.insert(i, b"\n\r:|\t\\-{[0 "[usize::try_from(next() % 11).unwrap()]),
                _ => b.truncate(i),
            }
        }
        let c = parse_capture(&b, "mutant");
        let _ = c.notes.len();
    }
    eprintln!("1500 damaged transcripts parsed in {:?}", t0.elapsed());
}

#[test]
fn powershell_objects_as_format_list_and_json() {
    let list = "PS C:\\> Get-NetFirewallRule -Name RemoteDesktop-UserMode-In-TCP | Format-List\n\n\
Name                  : RemoteDesktop-UserMode-In-TCP\n\
DisplayName           : Remote Desktop - User Mode (TCP-In)\n\
Description           : Inbound rule for the Remote Desktop service to allow RDP traffic. [TCP\n\
\x20                       3389]\n\
DisplayGroup          : Remote Desktop\n\
Group                 : @FirewallAPI.dll,-28752\n\
Enabled               : False\n\
Profile               : Domain, Private\n\
Platform              : {}\n\
Direction             : Inbound\n\
Action                : Allow\n\
EdgeTraversalPolicy   : Block\n\
PrimaryStatus         : OK\n\
Status                : Se analizó la regla correctamente desde el almacén. (65536)\n\
PolicyStoreSource     : PersistentStore\n\
PolicyStoreSourceType : Local\n\n\
PS C:\\> Get-NetConnectionProfile | ConvertTo-Json\n\
{\n    \"Name\":  \"contoso.local\",\n    \"InterfaceAlias\":  \"Ethernet\",\n    \"InterfaceIndex\":  6,\n    \"NetworkCategory\":  2,\n    \"IPv4Connectivity\":  4\n}\n\
PS C:\\> Get-NetFirewallRule -Name X | Select Name,DisplayName,Enabled,Direction,Action,Profile | ConvertTo-Json\n\
[{\"Name\":\"X\",\"DisplayName\":\"Block it\",\"Enabled\":1,\"Direction\":1,\"Action\":4,\"Profile\":4}]\n\
PS C:\\> Get-NetTCPConnection -State Listen -LocalPort 3389\n\n\
LocalAddress                        LocalPort RemoteAddress                       RemotePort State       AppliedSetting OwningProcess\n\
------------                        --------- -------------                       ---------- -----       -------------- -------------\n\
::                                  3389      ::                                  0          Listen                     1044\n\
0.0.0.0                             3389      0.0.0.0                             0          Listen                     1044\n";
    let c = parse_capture(list.as_bytes(), "ps");
    assert!(
        !c.notes.iter().any(|n| n.kind == NoteKind::Unparsed),
        "{:?}",
        c.notes
    );
    assert_eq!(c.ps_rules.len(), 2);
    let r = &c.ps_rules[0];
    assert_eq!(r.id.as_deref(), Some("RemoteDesktop-UserMode-In-TCP"));
    assert_eq!(r.enabled, Some(false));
    assert_eq!(r.direction, Some(Direction::In));
    assert_eq!(r.action, Some(Action::Allow));
    assert_eq!(
        r.profiles,
        Some(ProfileSet::of(&[Profile::Domain, Profile::Private]))
    );
    assert_eq!(r.group.as_deref(), Some("@FirewallAPI.dll,-28752"));
    let desc = c.ps_objects[0].get("Description").unwrap();
    assert_eq!(
        desc.text,
        "Inbound rule for the Remote Desktop service to allow RDP traffic. [TCP 3389]"
    );
    let r = &c.ps_rules[1];
    assert_eq!(
        (r.enabled, r.direction, r.action, r.profiles),
        (
            Some(true),
            Some(Direction::In),
            Some(Action::Block),
            Some(ProfileSet::of(&[Profile::Public]))
        )
    );
    let a = c.active_profiles.as_ref().unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].profile, Some(Profile::Domain));
    assert_eq!(a[0].network.as_deref(), Some("contoso.local"));
    assert!(c.listeners_checked);
    assert_eq!(c.listeners.len(), 2);
    assert!(c
        .listeners
        .iter()
        .all(|l| l.listening && l.port == 3389 && l.pid == Some(1044)));
}

#[test]
fn sc_output_localized_missing_and_queryex() {
    let text = "C:\\>sc queryex TermService\n\n\
SERVICE_NAME: TermService\n\
\x20       TYPE               : 20  WIN32_SHARE_PROCESS\n\
\x20       STATE              : 4  RUNNING\n\
\x20                               (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\n\
\x20       WIN32_EXIT_CODE    : 0  (0x0)\n\
\x20       SERVICE_EXIT_CODE  : 0  (0x0)\n\
\x20       CHECKPOINT         : 0x0\n\
\x20       WAIT_HINT          : 0x0\n\
\x20       PID                : 1044\n\
\x20       FLAGS              :\n\n\
C:\\>sc qc MpsSvc\n\
[SC] QueryServiceConfig ERFOLG\n\n\
DIENSTNAME: MpsSvc\n\
\x20       TYP                : 20  WIN32_SHARE_PROCESS\n\
\x20       STARTTYP           : 4   DISABLED\n\
\x20       FEHLERSTEUERUNG    : 1   NORMAL\n\
\x20       BINARY_PATH_NAME   : C:\\Windows\\system32\\svchost.exe -k LocalServiceNoNetworkFirewall -p\n\n\
C:\\>sc query BFE\n\
[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\n\n\
The specified service does not exist as an installed service.\n\n\
C:\\>netstat -ano | findstr :3389\n\
\x20 TCP    0.0.0.0:3389           0.0.0.0:0              LISTENING       1044\n";
    let c = parse_capture(text.as_bytes(), "sc");
    assert!(
        !c.notes.iter().any(|n| n.kind == NoteKind::Unparsed),
        "{:?}",
        c.notes
    );
    let t = c.service("TermService").unwrap();
    assert_eq!(t.pid.as_ref().unwrap().value, Some(1044));
    assert_eq!(t.service_type.as_ref().unwrap().value, Some(0x20));
    let m = c.service("MpsSvc").unwrap();
    assert_eq!(m.start.as_ref().unwrap().value, Some(4));
    assert!(m.binary_path.as_ref().unwrap().text.ends_with("-p"));
    assert!(c.languages.contains(&Language::German));
    let b = c.service("BFE").unwrap();
    assert_eq!(b.exists, Some(false));
    assert_eq!(b.running(), Some(false));
    assert_eq!(c.listeners[0].services, ["TermService"]);
}

#[test]
fn the_cmd_collector_output_is_read_by_its_markers() {
    let script = guestwall_capture::collector_cmd(3390);
    assert!(script.contains("reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\" /v fDenyTSConnections"));
    // Every port: RDP may listen on another one than the port given (PortNumber decides).
    assert!(
        script.contains("echo ##### guestwall-cmd: netstat -ano -p TCP\r\nnetstat -ano -p TCP\r\n")
    );
    // What it prints for two of its sections (echo off: no prompts, only markers).
    let out = "##### guestwall-cmd: guestwall-cmd v1 port=3390\r\n\
##### guestwall-cmd: hostname\r\nVM-7\r\n\
##### guestwall-cmd: reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\" /v fDenyTSConnections\r\n\
\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\r\n    fDenyTSConnections    REG_DWORD    0x1\r\n\r\n\
##### guestwall-cmd: reg query \"HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services\"\r\n\
ERROR: The system was unable to find the specified registry key or value.\r\n\
##### guestwall-cmd: reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile\" /s\r\n\
\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile\r\n    EnableFirewall    REG_DWORD    0x1\r\n\r\n\
##### guestwall-cmd: netstat -ano -p TCP\r\n\
##### guestwall-cmd: end\r\n";
    let c = parse_capture(out.as_bytes(), "cmd");
    assert!(
        !c.notes.iter().any(|n| n.kind == NoteKind::Unparsed),
        "{:?}",
        c.notes
    );
    assert_eq!(c.machine.as_deref(), Some("VM-7"));
    let ts = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server";
    assert_eq!(
        c.registry.value(ts, "fDenyTSConnections").unwrap().dword(),
        Some(1)
    );
    assert!(c.registry.is_absent(
        "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services",
        None
    ));
    let pp = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile";
    assert!(c.registry.is_absent(pp, Some("DoNotAllowExceptions")));
    assert!(!c.registry.is_absent(ts, Some("fSingleSessionPerUser")));
    assert!(c.listeners_checked && c.listeners.is_empty());
}

#[test]
fn the_powershell_collector_is_plain_and_names_the_port() {
    let s = guestwall_capture::collector_powershell(3390);
    assert!(s.contains("$Port = 3390"));
    assert!(s.contains("W 'SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy' $true @('Defaults') 0"));
    assert!(s.contains("V 'SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp' @('PortNumber')"));
    assert!(s.contains("-----BEGIN GUESTWALL CAPTURE v1-----"));
    assert!(s.contains("guestwall-capture.txt"));
    // Balanced braces and parentheses (a cheap syntax check for a script nobody runs here).
    for (o, c) in [('{', '}'), ('(', ')')] {
        assert_eq!(s.matches(o).count(), s.matches(c).count(), "{o}{c}");
    }
}
