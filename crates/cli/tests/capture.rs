//! Captures of a running machine as targets: `guestwall diagnose|script|fix --dry-run CAPTURE`
//! and `guestwall collect`.
//!
//! The central check: captures rendered from every corpus SYSTEM hive (`reg query /s` text,
//! netsh's `show allprofiles` and `show rule ... verbose`, the collector's block, raw and inside
//! Run Command's JSON, on a file and on standard input) give the same verdicts and causes as
//! `guestwall diagnose HIVE` of the same hive.

mod common;

#[path = "../../capture/tests/common/mod.rs"]
mod capture_common;

use std::path::Path;

use common::{gw, gw_stdin, stderr, stdout, TempDir};
use guestwall_capture::collector::encode;
use guestwall_regf::Hive;

const HIVES: &[&str] = &[
    "regipy/SYSTEM",
    "regipy/SYSTEM_2",
    "regipy/SYSTEM_B",
    "yarp/System_Delta",
];

/// Codes that say something about the input rather than the machine: they differ between a
/// hive and a capture by nature (no SOFTWARE hive vs the Group Policy store not captured).
const INPUT_CODES: &[&str] = &[
    "input-note",
    "unknown",
    "online-state",
    "active-profile",
    "active-profile-hint",
    "control-set-mismatch",
    "logs-partly-applied",
];

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

/// What must agree between two diagnoses of one machine: reachability, each profile's verdict
/// and causes (codes, rule names), and the blocking findings.
fn essence(doc: &serde_json::Value) -> serde_json::Value {
    let mut profiles = serde_json::Map::new();
    for (k, p) in doc["profiles"].as_object().expect("profiles") {
        let causes: Vec<serde_json::Value> = p["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "code": c["code"],
                    "blocking": c["blocking"],
                    "rule": c["rule"]["name"],
                })
            })
            .collect();
        profiles.insert(
            k.clone(),
            serde_json::json!({ "verdict": p["verdict"], "causes": causes }),
        );
    }
    let findings: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["code"])
        .filter(|c| !INPUT_CODES.contains(&c.as_str().unwrap_or("")))
        .collect();
    serde_json::json!({
        "reachable": doc["reachable"],
        "port": doc["port"],
        "profiles": profiles,
        "findings": findings,
    })
}

// ---- A `reg query` renderer, from reg.exe's documented layout --------------------------------
//
// Written for these tests from the layout reg.exe prints (and `docs/capture-formats.md` §2),
// not from guestwall's parser: a blank line, the key's full path, each value as four spaces,
// the name (`(Default)` for the default value), four spaces, the type name, four spaces, the
// data; REG_SZ/REG_EXPAND_SZ as text up to the first NUL, REG_MULTI_SZ with its strings joined
// by the two characters `\0`, REG_DWORD/REG_QWORD as `0x` and lower-case hex, the rest as
// upper-case hex bytes; with /s every subkey follows the same way. Lines end in CRLF.

fn type_name(t: u32) -> String {
    match t {
        0 => "REG_NONE".into(),
        1 => "REG_SZ".into(),
        2 => "REG_EXPAND_SZ".into(),
        3 => "REG_BINARY".into(),
        4 => "REG_DWORD".into(),
        5 => "REG_DWORD_BIG_ENDIAN".into(),
        6 => "REG_LINK".into(),
        7 => "REG_MULTI_SZ".into(),
        8 => "REG_RESOURCE_LIST".into(),
        9 => "REG_FULL_RESOURCE_DESCRIPTOR".into(),
        10 => "REG_RESOURCE_REQUIREMENTS_LIST".into(),
        11 => "REG_QWORD".into(),
        n => format!("REG_UNKNOWN_0x{n:x}"),
    }
}

fn utf16(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn shown(t: u32, data: &[u8]) -> String {
    let hex = || data.iter().map(|b| format!("{b:02X}")).collect::<String>();
    match t {
        1 | 2 | 6 => {
            let u: Vec<u16> = utf16(data).into_iter().take_while(|c| *c != 0).collect();
            String::from_utf16_lossy(&u)
        }
        7 => {
            let u = utf16(data);
            let items: Vec<String> = u.split(|c| *c == 0).map(String::from_utf16_lossy).collect();
            let mut items: Vec<String> = items;
            while items.last().is_some_and(|s| s.is_empty()) {
                items.pop();
            }
            items.join("\\0")
        }
        4 if data.len() == 4 => format!(
            "0x{:x}",
            u32::from_le_bytes([data[0], data[1], data[2], data[3]])
        ),
        11 if data.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(data);
            format!("0x{:x}", u64::from_le_bytes(b))
        }
        _ => hex(),
    }
}

/// `reg query "HKLM\SYSTEM\<shown>" [/s | /v NAME]` of the hive's key `path`, with the prompt
/// line an admin's transcript has.
fn reg_query(hive: &Hive, path: &str, shown_as: &str, value: Option<&str>, out: &mut String) {
    let arg = match value {
        Some(v) => format!(" /v {v}"),
        None => " /s".into(),
    };
    out.push_str(&format!(
        "C:\\Windows\\system32>reg query \"HKLM\\SYSTEM\\{shown_as}\"{arg}\r\n"
    ));
    let Some(start) = hive.find_key(path).unwrap() else {
        out.push_str(
            "ERROR: The system was unable to find the specified registry key or value.\r\n\r\n",
        );
        return;
    };
    hive.walk(start, "", |p, k| {
        if value.is_some() && !p.is_empty() {
            return Ok(());
        }
        let full = if p.is_empty() {
            format!("HKEY_LOCAL_MACHINE\\SYSTEM\\{shown_as}")
        } else {
            format!("HKEY_LOCAL_MACHINE\\SYSTEM\\{shown_as}\\{p}")
        };
        out.push_str(&format!("\r\n{full}\r\n"));
        for v in k.values().unwrap() {
            let name = v.name().to_string_lossy();
            if value.is_some_and(|n| !n.eq_ignore_ascii_case(&name)) {
                continue;
            }
            let data = v.data().unwrap();
            let name = if name.is_empty() {
                "(Default)".to_string()
            } else {
                name
            };
            out.push_str(&format!(
                "    {name}    {}    {}\r\n",
                type_name(v.data_type()),
                shown(v.data_type(), &data)
            ));
        }
        Ok(())
    })
    .unwrap();
    out.push_str("\r\n");
}

/// What an admin captures with reg.exe alone: Select, the firewall policy, Terminal Server
/// and the services' Start, through `CurrentControlSet` as on the running machine.
fn reg_transcript(hive: &Hive) -> String {
    let cs = capture_common::control_set(hive);
    let mut t = String::new();
    reg_query(hive, "Select", "Select", None, &mut t);
    let ccs = |p: &str| (format!("{cs}\\{p}"), format!("CurrentControlSet\\{p}"));
    for p in [
        "Services\\SharedAccess\\Parameters\\FirewallPolicy",
        "Control\\Terminal Server",
    ] {
        let (path, shown_as) = ccs(p);
        reg_query(hive, &path, &shown_as, None, &mut t);
    }
    for s in ["MpsSvc", "BFE", "TermService"] {
        let (path, shown_as) = ccs(&format!("Services\\{s}"));
        reg_query(hive, &path, &shown_as, Some("Start"), &mut t);
    }
    t
}

/// netsh's view of the hive, as `guestwall netsh` prints it, behind the prompts it was typed at.
fn netsh_transcript(hive: &Path) -> String {
    let h = hive.to_str().unwrap();
    let mut t = String::new();
    for cmd in [
        "advfirewall show allprofiles",
        "advfirewall firewall show rule name=all dir=in verbose",
    ] {
        let mut args = vec!["netsh", "--system", h];
        args.extend(cmd.split(' '));
        let o = gw(&args);
        // 1: no rule matched (netsh's own exit code), as on a hive without rules.
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{cmd}: {}",
            stderr(&o)
        );
        t.push_str(&format!("C:\\>netsh {cmd}\r\n"));
        t.push_str(&stdout(&o).replace('\n', "\r\n"));
        t.push_str("\r\n");
    }
    t
}

/// Run Command's JSON around a StdOut message, as `az vm run-command invoke` prints it.
fn run_command_json(stdout_text: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "value": [
            { "code": "ComponentStatus/StdOut/succeeded", "displayStatus": "Provisioning succeeded",
              "level": "Info", "message": stdout_text, "time": null },
            { "code": "ComponentStatus/StdErr/succeeded", "displayStatus": "Provisioning succeeded",
              "level": "Info", "message": "", "time": null }
        ]
    }))
    .unwrap()
}

fn diagnose_json(target: &str) -> serde_json::Value {
    let o = gw(&["diagnose", "--json", target]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{target}: exit {:?}: {}",
        o.status.code(),
        stderr(&o)
    );
    json(&o)
}

/// netsh's display against the hive: each profile's verdict and causes are the same, except
/// where netsh cannot tell: a rule it shows with no program, service or port (an app's rule
/// whose package it does not show) makes the verdict `conditional` on what it does not show,
/// never `allowed`. netsh shows neither fDenyTSConnections nor the services' start types, so
/// those findings are `unknown` instead.
fn same_by_display(rel: &str, got: &serde_json::Value, offline: &serde_json::Value) {
    // netsh's display gives the offline verdicts and causes: the rules it shows with no
    // program, service or port (app-package rules) are left out with a note, instead of
    // burying the real cause (a user trial found 69 "block-rule" causes and a script that
    // disabled Windows' own app rules).
    let (g, want) = (essence(got), essence(offline));
    for p in ["domain", "private", "public"] {
        assert_eq!(
            g["profiles"][p], want["profiles"][p],
            "{rel}: netsh capture, {p}: {got:#}"
        );
    }
    // Windows 10's SYSTEM has hundreds of app-package rules.
    if rel.ends_with("SYSTEM_B") {
        assert!(
            got["findings"].to_string().contains("app-package rules"),
            "{rel}: no note on the rules left out"
        );
    }
    if want["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "rdp-disabled")
    {
        assert!(got["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "unknown"
                && f["detail"].as_str().unwrap().contains("fDenyTSConnections")));
    }
}

#[test]
fn captures_of_every_corpus_system_hive_give_the_offline_verdicts() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let t = TempDir::new("capture-same");
    for rel in HIVES {
        let file = corpus.join(rel);
        let hive = Hive::open(&file).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let offline = diagnose_json(file.to_str().unwrap());
        let want = essence(&offline);
        let name = rel.replace('/', "-");

        // 1. reg query text.
        let reg = t.0.join(format!("{name}.reg-query.txt"));
        std::fs::write(&reg, reg_transcript(&hive)).unwrap();
        let got = diagnose_json(reg.to_str().unwrap());
        assert_eq!(essence(&got), want, "{rel}: reg query capture");
        assert_eq!(got["target"], reg.to_str().unwrap());
        assert_eq!(got["control_set"]["name"], "CurrentControlSet");
        // The port comes from the capture, with the line it is on.
        if offline["port_source"]["kind"] == "hive" {
            let o = got["port_source"]["origin"].as_str().unwrap();
            assert!(
                o.starts_with("SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\\PortNumber (")
                    && o.contains(".reg-query.txt:"),
                "{o}"
            );
        }

        // 2. netsh's display (display-level: marked as such).
        let ns = t.0.join(format!("{name}.netsh.txt"));
        std::fs::write(&ns, netsh_transcript(&file)).unwrap();
        let got = diagnose_json(ns.to_str().unwrap());
        same_by_display(rel, &got, &offline);
        assert!(
            got["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["detail"]
                    .as_str()
                    .unwrap()
                    .contains("come from netsh's display")),
            "{rel}: the display-level rules are not marked"
        );

        // 3. The collector's block: raw, on standard input, and inside Run Command's JSON.
        let out = encode::output(&capture_common::machine(&hive), 3389);
        let col = t.0.join(format!("{name}.collector.txt"));
        std::fs::write(&col, &out).unwrap();
        let got = diagnose_json(col.to_str().unwrap());
        assert_eq!(essence(&got), want, "{rel}: collector capture");
        // Online, the active profile is known (the encoder's machine is on a domain network).
        assert!(
            got["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == "active-profile"
                    && f["detail"].as_str().unwrap().contains("Domain profile")),
            "{rel}: {got:#}"
        );
        let o = gw_stdin(&["diagnose", "--json", "-"], &out);
        assert_eq!(essence(&json(&o)), want, "{rel}: collector on stdin");
        assert_eq!(json(&o)["target"], "-");
        let rc = t.0.join(format!("{name}.run-command.json"));
        std::fs::write(&rc, run_command_json(&out)).unwrap();
        assert_eq!(
            essence(&diagnose_json(rc.to_str().unwrap())),
            want,
            "{rel}: Run Command JSON"
        );
        eprintln!(
            "{rel}: collector output {} bytes (Run Command returns the last 4,096)",
            out.len()
        );
        assert!(out.len() < 4096, "{rel}: {} bytes", out.len());
    }
}

#[test]
fn the_reg_query_renderer_writes_what_reg_exe_wrote() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    // The real sample: `reg query "HKLM\...\Terminal Server" /v fDenyTSConnections`.
    let real = std::fs::read_to_string(
        corpus.join("netsh/en-secondary/reg-query-fdenytsconnections-and-portnumber.txt"),
    )
    .unwrap();
    let real_lines: Vec<&str> = real.lines().map(|l| l.trim_end_matches('\r')).collect();
    // The same value through the renderer.
    assert_eq!(
        format!(
            "    {}    {}    {}",
            "fDenyTSConnections",
            type_name(4),
            shown(4, &0u32.to_le_bytes())
        ),
        real_lines[2]
    );
    assert_eq!(real_lines[0], "");
    assert!(real_lines[1].starts_with("HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\"));
    // Every value line of every real reg query sample is one the renderer would write.
    for f in [
        "netsh/en-secondary/reg-query-fdenytsconnections-and-portnumber.txt",
        "netsh/en-secondary/reg-query-portnumber-evilwinrm.txt",
    ] {
        let text = std::fs::read_to_string(corpus.join(f)).unwrap();
        for l in text.lines().map(|l| l.trim_end_matches('\r')) {
            let Some(rest) = l.strip_prefix("    ") else {
                continue;
            };
            let parts: Vec<&str> = rest.split("    ").collect();
            if parts.len() != 3 || !parts[1].starts_with("REG_") {
                continue;
            }
            let n = u32::from_str_radix(parts[2].trim_start_matches("0x"), 16).unwrap();
            assert_eq!(
                format!(
                    "    {}    {}    {}",
                    parts[0],
                    type_name(4),
                    shown(4, &n.to_le_bytes())
                ),
                l,
                "{f}"
            );
        }
    }
}

#[test]
fn real_captures_in_the_corpus_diagnose_without_error() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut n = 0;
    for lang in ["en", "en-secondary", "de", "ru", "es"] {
        let Ok(dir) = std::fs::read_dir(corpus.join("netsh").join(lang)) else {
            continue;
        };
        for e in dir {
            let p = e.unwrap().path();
            let name = p.to_string_lossy().into_owned();
            if !name.ends_with(".txt") || name.ends_with(".source.txt") {
                continue;
            }
            let doc = diagnose_json(&name);
            assert_eq!(doc["schema"], 1, "{name}");
            assert_eq!(doc["target"], name.as_str());
            // Text output too, with the next commands for a capture (never `fix` without
            // --dry-run).
            let o = gw(&["diagnose", &name]);
            let text = stdout(&o);
            assert!(text.contains("Inbound TCP"), "{name}: {text}");
            assert!(
                !text.contains("guestwall fix '")
                    && !text.contains(&format!("guestwall fix {name}")),
                "{text}"
            );
            n += 1;
        }
    }
    assert!(n >= 10, "{n} captures");
    // The German verbose capture's rules are read (labels and values translated).
    let de = diagnose_json(
        corpus
            .join("netsh/de/rule-verbose-dayz-partly-redacted.txt")
            .to_str()
            .unwrap(),
    );
    assert!(
        de["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["detail"]
                .as_str()
                .unwrap()
                .contains("firewall rules come from netsh's display")),
        "{de:#}"
    );
    // A capture of RDP's rule scoped to two networks: conditional, naming the scope and line.
    let vcl = diagnose_json(
        corpus
            .join("netsh/en/rules-vcl-rdp-and-icmp-nonverbose.txt")
            .to_str()
            .unwrap(),
    );
    assert_eq!(vcl["profiles"]["public"]["verdict"], "conditional");
    let c = &vcl["profiles"]["public"]["causes"][0];
    assert_eq!(c["code"], "rdp-rule-scoped");
    assert!(c["conditions"][0]
        .as_str()
        .unwrap()
        .contains("152.14.53.0/26"));
    // A capture without rules says they are unknown: conditional, never blocked.
    let sc = diagnose_json(
        corpus
            .join("netsh/en-secondary/sc-query-and-qc-termservice.txt")
            .to_str()
            .unwrap(),
    );
    for p in ["domain", "private", "public"] {
        assert_eq!(sc["profiles"][p]["verdict"], "conditional");
        assert_eq!(sc["profiles"][p]["causes"][0]["code"], "unknown");
    }
    assert_eq!(sc["port_source"]["kind"], "unknown");
    assert!(sc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "online-state"
            && f["detail"].as_str().unwrap().contains("TermService")));
}

/// Hard-wraps every line at `width` characters, as a console window does.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.split("\r\n") {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            out.push_str("\r\n");
        }
        for chunk in chars.chunks(width) {
            out.extend(chunk);
            out.push_str("\r\n");
        }
    }
    out
}

#[test]
fn wrapped_cut_and_damaged_captures_give_partial_results_never_a_panic() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let t = TempDir::new("capture-damage");
    let file = corpus.join("regipy/SYSTEM_2");
    let hive = Hive::open(&file).unwrap();
    let want = essence(&diagnose_json(file.to_str().unwrap()));

    // Console wrapping at 120 and 80 columns: the same result as unwrapped.
    let netsh = netsh_transcript(&file);
    let p = t.0.join("unwrapped.txt");
    std::fs::write(&p, &netsh).unwrap();
    let plain = essence(&diagnose_json(p.to_str().unwrap()));
    let _ = &want;
    for width in [120, 80] {
        let p = t.0.join(format!("wrapped-{width}.txt"));
        std::fs::write(&p, wrap(&netsh, width)).unwrap();
        assert_eq!(
            essence(&diagnose_json(p.to_str().unwrap())),
            plain,
            "wrapped at {width}"
        );
    }

    // The same for reg query output, whose key lines (90 characters and more below
    // FirewallPolicy) the console wraps too (a user trial found every value lost at 80).
    let reg = reg_transcript(&hive);
    let p = t.0.join("reg-unwrapped.txt");
    std::fs::write(&p, &reg).unwrap();
    let plain = essence(&diagnose_json(p.to_str().unwrap()));
    for width in [120, 80] {
        let p = t.0.join(format!("reg-wrapped-{width}.txt"));
        std::fs::write(&p, wrap(&reg, width)).unwrap();
        assert_eq!(
            essence(&diagnose_json(p.to_str().unwrap())),
            plain,
            "reg query wrapped at {width}"
        );
    }

    // Run Command keeps the last 4,096 bytes: the start of a long reg query capture is gone.
    let cut = &reg.as_bytes()[reg.len() - 4096..];
    let p = t.0.join("cut.txt");
    std::fs::write(&p, cut).unwrap();
    let doc = diagnose_json(p.to_str().unwrap());
    let details: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["detail"].as_str().unwrap())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("cut") || d.contains("without its key line")),
        "{details:#?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("unknown") || d.contains("does not show")),
        "{details:#?}"
    );

    // A collector block with one base64 character changed: the checksum fails, and the
    // diagnosis says so with the line, and that the rules are unknown.
    let out = encode::output(&capture_common::machine(&hive), 3389);
    let mut lines: Vec<String> = out.split("\r\n").map(str::to_string).collect();
    let l = &mut lines[3];
    let c = if l.starts_with('A') { "B" } else { "A" };
    l.replace_range(0..1, c);
    let p = t.0.join("damaged-block.txt");
    std::fs::write(&p, lines.join("\r\n")).unwrap();
    let doc = diagnose_json(p.to_str().unwrap());
    assert_eq!(
        doc["profiles"]["public"]["verdict"], "conditional",
        "{doc:#}"
    );
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["detail"].as_str().unwrap().contains(":1:")),
        "{doc:#}"
    );

    // Mutated captures of every kind, in process: never a panic.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for base in [reg.as_bytes(), netsh.as_bytes(), out.as_bytes()] {
        for _ in 0..60 {
            let mut b = base.to_vec();
            for _ in 0..(1 + rnd() % 16) {
                let i = (rnd() as usize) % b.len();
                match rnd() % 3 {
                    0 => b[i] = rnd() as u8,
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, b"\r\n:|\t-"[(rnd() % 6) as usize]),
                }
            }
            let cap = guestwall_capture::parse_capture(&b, "mutated");
            if let Ok(cfgs) = guestwall_ingest::capture::load_capture(&cap) {
                for c in &cfgs {
                    let d = guestwall_diagnose::diagnose(c, None);
                    let _ = guestwall_diagnose::to_json(&[d], "mutated");
                }
            }
        }
    }
}

#[test]
fn fix_script_and_collect_on_captures() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let t = TempDir::new("capture-fix");
    // Windows 8.1: RDP off, its rules disabled.
    let hive = Hive::open(corpus.join("regipy/SYSTEM_2")).unwrap();
    let out = encode::output(&capture_common::machine(&hive), 3389);
    let cap = t.0.join("vm.txt");
    std::fs::write(&cap, &out).unwrap();
    let c = cap.to_str().unwrap();

    // A real fix on a capture is refused, nothing is written.
    let o = gw(&["fix", c]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is a capture of a running machine")
            && stderr(&o).contains("--dry-run"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&cap).unwrap(), out);
    assert_eq!(t.files(), ["vm.txt"]);

    // The dry run: the plan and the console commands.
    let o = gw(&["fix", "--dry-run", c]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Dry run on a capture: nothing is written"),
        "{text}"
    );
    assert!(
        text.contains("netsh advfirewall firewall set rule"),
        "{text}"
    );
    assert!(text.contains("reg add \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\" /v \"fDenyTSConnections\" /t REG_DWORD /d 0 /f"), "{text}");
    assert!(
        text.contains("Predicted:") && text.contains("RDP reachable"),
        "{text}"
    );
    let o = gw(&["fix", "--dry-run", "--json", c]);
    let doc = json(&o);
    assert_eq!(doc["dry_run"], true);
    assert!(doc["commands"]
        .as_str()
        .unwrap()
        .contains("netsh advfirewall"));
    assert!(!doc["changes"].as_array().unwrap().is_empty());

    // The same plan as offline: the same changes, by code and value.
    let file = corpus.join("regipy/SYSTEM_2");
    let d = t.0.join("offline");
    std::fs::create_dir_all(&d).unwrap();
    let sys = common::copy_into(&d, &file, "SYSTEM");
    let offline = json(&gw(&["fix", "--dry-run", "--json", &sys]));
    let changes = |v: &serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["code"].clone(), c["value"].clone()))
            .collect()
    };
    assert_eq!(changes(&doc), changes(&offline));

    // script: netsh and PowerShell; --offline-cmd is for a disk.
    let o = gw(&["script", c]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("netsh advfirewall firewall set rule"));
    let o = gw(&["script", "--powershell", c]);
    assert!(
        stdout(&o).contains("Enable-NetFirewallRule -Name 'RemoteDesktop-UserMode-In-TCP'"),
        "{}",
        stdout(&o)
    );
    let o = gw(&["script", "--offline-cmd", c]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--offline-cmd"), "{}", stderr(&o));
    // Options for disks are refused with a capture.
    let o = gw(&["diagnose", "--software", c, c]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--software applies to a disk"),
        "{}",
        stderr(&o)
    );

    // Standard input that is no capture: exit 2, saying what it takes.
    let o = gw_stdin(&["diagnose", "-"], "hello\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("<stdin>") && stderr(&o).contains("guestwall collect"),
        "{}",
        stderr(&o)
    );
    let o = gw_stdin(&["diagnose", "--json", "-"], "hello\n");
    assert_eq!(json(&o)["exit_code"], 2);

    // collect prints the collectors.
    let o = gw(&["collect"]);
    assert_eq!(o.status.code(), Some(0));
    let ps = stdout(&o);
    assert!(
        ps.contains("$Port = 3389") && ps.contains("BEGIN GUESTWALL CAPTURE"),
        "{ps}"
    );
    let o = gw(&["collect", "--cmd", "--port", "3390"]);
    let cmd = stdout(&o);
    assert!(
        cmd.contains("reg query")
            && cmd.contains("port=3390")
            && cmd.contains("netstat -ano -p TCP"),
        "{cmd}"
    );
    assert_eq!(
        gw(&["collect", "--cmd", "--powershell"]).status.code(),
        Some(2)
    );
}

/// `scripts/fleet-runcommand` against a fake `az` that replays recorded Run Command JSON: one
/// document per VM, built from a corpus hive's collector output, and one VM Run Command cannot
/// reach.
#[test]
fn the_fleet_script_runs_the_collector_everywhere_and_prints_json_lines() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    if std::process::Command::new("jq")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!common::in_ci(), "CI=true but jq is missing");
        common::notice("jq not installed; skipping the fleet script test");
        return;
    }
    let t = TempDir::new("fleet");
    let bin = t.0.join("bin");
    let rec = t.0.join("recorded");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&rec).unwrap();
    let sub = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines";
    let mut want = Vec::new();
    for (vm, rel) in [
        ("vm-win7", "regipy/SYSTEM"),
        ("vm-win81", "regipy/SYSTEM_2"),
        ("vm-win10", "regipy/SYSTEM_B"),
    ] {
        let hive = Hive::open(corpus.join(rel)).unwrap();
        let out = encode::output(&capture_common::machine(&hive), 3389);
        std::fs::write(rec.join(format!("{vm}.json")), run_command_json(&out)).unwrap();
        want.push((
            format!("{sub}/{vm}"),
            essence(&diagnose_json(corpus.join(rel).to_str().unwrap())),
        ));
    }
    // The fake az: `vm list` lists the VMs (and one that Run Command cannot reach);
    // `run-command invoke --ids ID` prints the recorded document, after checking that it was
    // given the collector.
    let az = bin.join("az");
    std::fs::write(
        &az,
        format!(
            r#"#!/usr/bin/env bash
set -eu
REC='{rec}'
case "$1 $2" in
  "vm list") printf '%s\n' '{sub}/vm-win7' '{sub}/vm-win81' '{sub}/vm-gone' '{sub}/vm-win10' ;;
  "vm run-command")
    id="" script=""
    while [ $# -gt 0 ]; do
      case "$1" in --ids) id=$2; shift ;; --scripts) script=${{2#@}}; shift ;; esac
      shift
    done
    grep -q 'BEGIN GUESTWALL CAPTURE' "$script" || {{ echo "no collector given" >&2; exit 3; }}
    f="$REC/${{id##*/}}.json"
    [ -f "$f" ] || {{ echo "(Conflict) The VM is not running" >&2; exit 1; }}
    cat "$f" ;;
  *) echo "fake az: $*" >&2; exit 9 ;;
esac
"#,
            rec = rec.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fleet-runcommand");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = std::process::Command::new(&script)
        .args([
            "--resource-group",
            "rg",
            "--parallel",
            "3",
            "--guestwall",
            env!("CARGO_BIN_EXE_guestwall"),
        ])
        .env("PATH", &path)
        .output()
        .unwrap();
    // One VM could not be diagnosed: exit 2.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 4, "{}", stdout(&o));
    // In the order listed; each VM's verdicts are its hive's.
    assert_eq!(lines[2]["vm"], format!("{sub}/vm-gone"));
    assert_eq!(lines[2]["exit_code"], 2);
    assert!(lines[2]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not running"));
    let diagnosed: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["vm"] != format!("{sub}/vm-gone"))
        .collect();
    for ((vm, w), got) in want.iter().zip(diagnosed) {
        assert_eq!(&got["vm"], vm);
        assert_eq!(&essence(got), w, "{vm}");
        assert_eq!(got["schema"], 1);
        assert_eq!(got["exit_code"], if w["reachable"] == true { 0 } else { 1 });
    }
}

/// `Get-NetFirewallRule` objects (Format-List, and ConvertTo-Json with its enum numbers),
/// joined with `Get-NetFirewallPortFilter` by rule ID, are rules of the model: a disabled
/// Remote Desktop rule is found by its ID, and the PowerShell script enables it by that ID.
/// Without the port filter the rule's ports are unknown, and the verdict does not pretend.
#[test]
fn powershell_rule_objects_with_their_port_filters_are_rules() {
    let rule = |enabled: &str| {
        format!(
            "Name              : RemoteDesktop-UserMode-In-TCP\r\nDisplayName       : Remote Desktop - User Mode (TCP-In)\r\nDisplayGroup      : Remote Desktop\r\nEnabled           : {enabled}\r\nDirection         : Inbound\r\nAction            : Allow\r\nProfile           : Any\r\nPolicyStoreSource : PersistentStore\r\n\r\n"
        )
    };
    let filter = "InstanceID    : RemoteDesktop-UserMode-In-TCP\r\nProtocol      : TCP\r\nLocalPort     : 3389\r\nRemotePort    : Any\r\nIcmpType      : Any\r\nDynamicTarget : Any\r\n\r\n";
    let list = |enabled: &str, with_filter: bool| {
        format!(
            "PS C:\\> Get-NetFirewallRule -DisplayGroup \"Remote Desktop\" | Format-List\r\n\r\n{}{}",
            rule(enabled),
            if with_filter {
                format!("PS C:\\> Get-NetFirewallRule -DisplayGroup \"Remote Desktop\" | Get-NetFirewallPortFilter | Format-List *\r\n\r\n{filter}")
            } else {
                String::new()
            }
        )
    };
    let verdicts = |j: &serde_json::Value| -> Vec<String> {
        ["domain", "private", "public"]
            .iter()
            .map(|p| {
                j["profiles"][p]["verdict"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    };
    // Disabled, with its port filter: blocked by that rule, fixed by its ID.
    let o = gw_stdin(&["diagnose", "-", "--json"], &list("False", true));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(verdicts(&j), ["blocked", "blocked", "blocked"]);
    let cause = &j["profiles"]["public"]["causes"][0];
    assert_eq!(cause["code"], "rdp-rule-disabled", "{j:#}");
    assert_eq!(
        cause["rule"]["id"], "RemoteDesktop-UserMode-In-TCP",
        "{j:#}"
    );
    let s = gw_stdin(&["script", "-", "--powershell"], &list("False", true));
    assert!(
        stdout(&s).contains("Enable-NetFirewallRule -Name 'RemoteDesktop-UserMode-In-TCP'"),
        "{}",
        stdout(&s)
    );
    // Enabled, with its port filter: allowed.
    let j = json(&gw_stdin(&["diagnose", "-", "--json"], &list("True", true)));
    assert_eq!(verdicts(&j), ["allowed", "allowed", "allowed"], "{j:#}");
    // Enabled, without the port filter: not known to allow TCP 3389.
    let j = json(&gw_stdin(
        &["diagnose", "-", "--json"],
        &list("True", false),
    ));
    assert!(
        verdicts(&j).iter().all(|v| v == "conditional"),
        "{:?}",
        verdicts(&j)
    );
    // ConvertTo-Json, with the enums as numbers (Enabled 1 = True, Direction 1 = Inbound,
    // Action 2 = Allow, Profile 0 = Any).
    let json_capture = "PS C:\\> Get-NetFirewallRule -Name RemoteDesktop-UserMode-In-TCP | ConvertTo-Json\r\n{\r\n    \"Name\":  \"RemoteDesktop-UserMode-In-TCP\",\r\n    \"DisplayName\":  \"Remote Desktop - User Mode (TCP-In)\",\r\n    \"DisplayGroup\":  \"Remote Desktop\",\r\n    \"Enabled\":  1,\r\n    \"Profile\":  0,\r\n    \"Direction\":  1,\r\n    \"Action\":  2,\r\n    \"PolicyStoreSource\":  \"PersistentStore\"\r\n}\r\nPS C:\\> Get-NetFirewallRule -Name RemoteDesktop-UserMode-In-TCP | Get-NetFirewallPortFilter | ConvertTo-Json\r\n{\r\n    \"InstanceID\":  \"RemoteDesktop-UserMode-In-TCP\",\r\n    \"Protocol\":  \"TCP\",\r\n    \"LocalPort\":  \"3389\",\r\n    \"RemotePort\":  \"Any\"\r\n}\r\n";
    let j = json(&gw_stdin(&["diagnose", "-", "--json"], json_capture));
    assert_eq!(verdicts(&j), ["allowed", "allowed", "allowed"], "{j:#}");
}

/// From a user trial: the console script made from a whole netsh capture changes the RDP rule
/// and nothing else (it once disabled dozens of Windows' app rules by display names passed as
/// IDs); a capture of one rule says nothing of the others (it once concluded "no RDP rule
/// exists" and added one); and the OS is not inferred from a `Program: System` rule that is
/// not for port 3389.
#[test]
fn trial4_netsh_captures_fix_only_what_they_show() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = TempDir::new("trial4-netsh");
    let cap = dir.0.join("system_b.txt");
    std::fs::write(&cap, netsh_transcript(&corpus.join("regipy/SYSTEM_B"))).unwrap();
    let cap = cap.to_str().unwrap();
    let script = stdout(&gw(&["script", cap]));
    let commands: Vec<&str> = script.lines().filter(|l| !l.starts_with("REM")).collect();
    assert_eq!(
        commands,
        ["netsh advfirewall firewall set rule name=\"Remote Desktop - User Mode (TCP-In)\" dir=in new enable=yes"],
        "{script}"
    );
    let ps = stdout(&gw(&["script", cap, "--powershell"]));
    assert!(
        ps.contains("Enable-NetFirewallRule -DisplayName 'Remote Desktop - User Mode (TCP-In)'"),
        "{ps}"
    );
    assert!(!ps.contains("Disable-NetFirewallRule"), "{ps}");
    // netsh shows no rule ID: the rule is named as the capture shows it, with its line, never
    // as a registry value named after its display name (which does not exist on the VM).
    let rule_line = std::fs::read_to_string(cap)
        .unwrap()
        .lines()
        .position(|l| l.contains("Remote Desktop - User Mode (TCP-In)"))
        .unwrap()
        + 1;
    let shown = "netsh rule \"Remote Desktop - User Mode (TCP-In)\" (".to_string();
    let plan = stdout(&gw(&["fix", "--dry-run", cap]));
    assert!(
        plan.contains(&format!("[rdp-rule-disabled] {shown}"))
            && plan.contains(&format!(":{rule_line})"))
            && !plan.contains("FirewallRules\\Remote Desktop"),
        "{plan}"
    );
    assert!(
        script.contains(&format!("REM [rdp-rule-disabled] {shown}")),
        "{script}"
    );
    let j = json(&gw(&["fix", "--dry-run", cap, "--json"]));
    let change = &j["changes"][0];
    assert!(
        change["shown_as"]
            .as_str()
            .is_some_and(|s| s.starts_with(&shown)),
        "{j:#}"
    );

    // One rule's capture: whether another rule allows RDP is unknown; nothing is added.
    let one = corpus.join("netsh/en/rule-verbose-iphttps-tcp-out.txt");
    let one = one.to_str().unwrap();
    let j = json(&gw(&["diagnose", one, "--json"]));
    for p in ["domain", "private", "public"] {
        assert_eq!(j["profiles"][p]["verdict"], "conditional", "{j:#}");
    }
    assert!(!j.to_string().contains("rdp-rule-missing"), "{j:#}");
    let s = stdout(&gw(&["script", one]));
    assert!(!s.contains("add rule"), "{s}");

    // SYSTEM_2 (Windows 8.1): no RDP rule for the kernel's listener, so no Windows 7.
    let cap2 = dir.0.join("system_2.txt");
    std::fs::write(&cap2, netsh_transcript(&corpus.join("regipy/SYSTEM_2"))).unwrap();
    let j = json(&gw(&["diagnose", cap2.to_str().unwrap(), "--json"]));
    assert_ne!(j["os"]["version"], "6.1", "{}", j["os"]);
}

/// A capture that holds the VM's language (`reg query ...\Nls\Language`, which the collector
/// now reads too) gives the console script the names that Windows shows (a user trial found
/// English names printed for a Dutch VM, which match nothing there).
#[test]
fn a_captured_language_names_rules_as_that_windows_does() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = TempDir::new("capture-language");
    let p = std::path::PathBuf::from(common::copy_with_logs(
        &dir.0,
        &corpus.join("regipy/SYSTEM_B"),
        "SYSTEM",
    ));
    let o = gw(&[
        "reg",
        "--hive",
        p.to_str().unwrap(),
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
    let hive = Hive::open(&p).unwrap();
    let mut t = reg_transcript(&hive);
    let cs = capture_common::control_set(&hive);
    reg_query(
        &hive,
        &format!("{cs}\\Control\\Nls\\Language"),
        "CurrentControlSet\\Control\\Nls\\Language",
        None,
        &mut t,
    );
    let j = json(&gw_stdin(&["diagnose", "-", "--json"], &t));
    assert_eq!(j["language"]["tag"], "nl-NL", "{}", j["language"]);
    let script = stdout(&gw_stdin(&["script", "-"], &t));
    assert!(
        script.contains("name=\"Extern bureaublad - Gebruikersmodus (TCP-In)\""),
        "{script}"
    );
}

/// Run Command's JSON with nothing on StdOut and an error on StdErr: the error says what the
/// VM said (a user trial got "not a registry hive").
#[test]
fn run_command_errors_are_shown() {
    let dir = TempDir::new("rc-error");
    let p = dir.0.join("vm.json");
    std::fs::write(
        &p,
        r#"{
  "value": [
    {"code": "ComponentStatus/StdOut/succeeded", "displayStatus": "Provisioning succeeded", "level": "Info", "message": ""},
    {"code": "ComponentStatus/StdErr/succeeded", "displayStatus": "Provisioning succeeded", "level": "Info", "message": "reg : ERROR: Access is denied."}
  ]
}"#,
    )
    .unwrap();
    let o = gw(&["diagnose", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("StdErr says: reg : ERROR: Access is denied."),
        "{}",
        stderr(&o)
    );
}

/// A user trial (the fifth) of the online path, one check per finding:
/// 1. a collector run for 3389 on a VM whose RDP listens on 3390 left out the rules that could
///    allow 3390 and looked for a listener on 3389 only: the verdict is conditional, never
///    "blocked", and nothing is claimed about the listener; the collector now checks the port
///    RDP listens on (PortNumber) itself;
/// 2. a rule netsh shows under a name other rules share (no rule ID) is not changed by a
///    command that would change them all;
/// 3. Windows 7 has no Enable-NetFirewallRule: its rule is changed through its registry value;
/// 4. a plan with nothing it can change does not say "No change needed";
/// 5. a predicted "reachable" from a capture says what the capture does not show;
/// 6. the block-all-inbound advice names the profile and keeps its outbound action;
/// 7. a capture without rules is not explained as "a rule is scoped";
/// 8. a text file that is no capture says so (not "not a registry hive").
#[test]
fn trial5_online_findings() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let t = TempDir::new("capture-trial5");

    // 1. The corpus Windows 10 hive with RDP moved to 3390.
    let hive = Hive::open(corpus.join("regipy/SYSTEM_B")).unwrap();
    let mut m = capture_common::machine(&hive);
    let rdp_tcp = "SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp";
    let k = m.hklm.find_mut(rdp_tcp).expect("RDP-Tcp");
    let v = k
        .values
        .iter_mut()
        .find(|v| v.name.eq_ignore_ascii_case("PortNumber"))
        .expect("PortNumber");
    v.data = 3390u32.to_le_bytes().to_vec();
    let old = t.0.join("old-collector.txt");
    std::fs::write(&old, encode::block(&encode::payload_at(&m, 3389))).unwrap();
    let j = diagnose_json(old.to_str().unwrap());
    for p in ["domain", "private", "public"] {
        assert_eq!(j["profiles"][p]["verdict"], "conditional", "{j:#}");
    }
    let text = j.to_string();
    assert!(!text.contains("rdp-port-not-allowed"), "{j:#}");
    assert!(!text.contains("nothing listens on TCP 3390"), "{j:#}");
    assert!(
        text.contains("was run for TCP 3389")
            && text.contains("listening sockets of TCP 3389 only"),
        "{j:#}"
    );
    let s = stdout(&gw(&["script", old.to_str().unwrap()]));
    assert!(!s.contains("add rule"), "{s}");
    // Today's collector checks 3390: the rules for 3389 do not allow it, which is certain.
    assert_eq!(encode::checked_port(&m, 3389), 3390);
    let new = t.0.join("new-collector.txt");
    std::fs::write(&new, encode::output(&m, 3389)).unwrap();
    let j = diagnose_json(new.to_str().unwrap());
    for p in ["domain", "private", "public"] {
        assert_eq!(j["profiles"][p]["verdict"], "blocked", "{j:#}");
    }
    assert!(j.to_string().contains("rdp-port-not-allowed"), "{j:#}");
    assert!(guestwall_capture::collector_powershell(3389).contains("GetValue('PortNumber'"));
    // A console transcript that filtered netstat to another port says nothing of 3390; one
    // filtered to 3390 does.
    for (filter, said) in [
        (":3389", "listening sockets of TCP 3389 only"),
        (":3390", "nothing listens on TCP 3390"),
    ] {
        let tr = format!(
            "C:\\>reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\" /v PortNumber\r\n\r\n\
             HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\r\n\
             \x20   PortNumber    REG_DWORD    0xd3e\r\n\r\n\
             C:\\>netstat -ano | findstr {filter}\r\n\r\nC:\\>\r\n"
        );
        let f = t.0.join("netstat.txt");
        std::fs::write(&f, &tr).unwrap();
        let d = stdout(&gw(&["diagnose", f.to_str().unwrap()]));
        assert!(
            d.contains("RDP listens on TCP 3390") && d.contains(said),
            "{tr}\n{d}"
        );
    }

    // 2-4. Two rules named "Block bad" (a TCP 3389-3390 block, a UDP 53 allow) in a copy of
    // the Windows 7 hive, captured through netsh.
    let w7 = t.0.join("SYSTEM7");
    std::fs::copy(corpus.join("regipy/SYSTEM"), &w7).unwrap();
    let w7s = w7.to_str().unwrap();
    for add in [
        "action=block protocol=TCP localport=3389-3390",
        "action=allow protocol=UDP localport=53",
    ] {
        let mut args = vec![
            "netsh",
            "--system",
            w7s,
            "advfirewall",
            "firewall",
            "add",
            "rule",
            "name=Block bad",
            "dir=in",
        ];
        args.extend(add.split(' '));
        let o = gw(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let cap = t.0.join("w7-netsh.txt");
    std::fs::write(&cap, netsh_transcript(&w7)).unwrap();
    let c = cap.to_str().unwrap();
    for ps in [false, true] {
        let mut args = vec!["script", c];
        if ps {
            args.push("--powershell");
        }
        let s = stdout(&gw(&args));
        assert!(
            !s.contains("'Block bad'") && !s.contains("name=\"Block bad\""),
            "{s}"
        );
        assert!(
            s.contains("is not changed: other rules are also named \"Block bad\""),
            "{s}"
        );
    }
    let plan = stdout(&gw(&["fix", "--dry-run", c]));
    assert!(!plan.contains("No change needed"), "{plan}");
    assert!(
        plan.contains("Predicted:") && plan.contains("RDP NOT reachable"),
        "{plan}"
    );
    // 3. The hive itself (rule IDs known): two "Remote Desktop (TCP-In)" rules on Windows 7.
    let s = stdout(&gw(&["script", w7s]));
    assert!(
        !s.lines()
            .any(|l| !l.starts_with("REM") && l.contains("NetFirewallRule")),
        "{s}"
    );
    assert!(
        s.contains("/v \"RemoteDesktop-In-TCP_1\" /t REG_SZ") && s.contains("restart the VM"),
        "{s}"
    );
    let s = stdout(&gw(&["script", w7s, "--powershell"]));
    assert!(s.contains("no -NetFirewall* cmdlets"), "{s}");

    // 5. A netsh capture does not show fDenyTSConnections: the prediction says so.
    let b = std::path::PathBuf::from(common::copy_with_logs(
        &t.0,
        &corpus.join("regipy/SYSTEM_B"),
        "SYSTEM_B",
    ));
    let o = gw(&[
        "netsh",
        "--system",
        b.to_str().unwrap(),
        "advfirewall",
        "firewall",
        "set",
        "rule",
        "group=Remote Desktop",
        "new",
        "enable=no",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let capb = t.0.join("b-netsh.txt");
    std::fs::write(&capb, netsh_transcript(&b)).unwrap();
    let plan = stdout(&gw(&["fix", "--dry-run", capb.to_str().unwrap()]));
    assert!(
        plan.contains("RDP reachable (as far as the capture shows"),
        "{plan}"
    );
    assert!(plan.contains("for Run Command, --powershell"), "{plan}");

    // 6. Public alone set to block all inbound and outbound.
    let o = gw(&[
        "netsh",
        "--system",
        w7s,
        "advfirewall",
        "set",
        "publicprofile",
        "firewallpolicy",
        "blockinboundalways,blockoutbound",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = stdout(&gw(&["diagnose", w7s]));
    assert!(
        d.contains("set publicprofile firewallpolicy blockinbound,blockoutbound")
            && !d.contains("set allprofiles firewallpolicy"),
        "{d}"
    );

    // 7. Only the profiles captured: unknown, not "scoped".
    let prof = t.0.join("profiles.txt");
    let full = netsh_transcript(&b);
    let cut = full
        .split("C:\\>netsh advfirewall firewall")
        .next()
        .unwrap();
    std::fs::write(&prof, cut).unwrap();
    let s = stdout(&gw(&["script", prof.to_str().unwrap()]));
    assert!(!s.contains("scoped by address or port"), "{s}");

    // 8. Text that is no capture.
    let notes = t.0.join("notes.txt");
    std::fs::write(&notes, "shopping list\r\nmilk\r\n").unwrap();
    let o = gw(&["diagnose", notes.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a registry hive")
            && stderr(&o).contains("no part of it is a capture"),
        "{}",
        stderr(&o)
    );
}
