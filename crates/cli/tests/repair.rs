//! `guestwall fix`, `undo`, `netsh` and `script` from the command line. The scripts are
//! checked by running them: the netsh script's commands through `guestwall netsh`, the
//! offline batch file's reg.exe lines through `guestwall reg --load`.

mod common;

use common::{copy_into, copy_with_logs, corpus, gw, sample, stderr, stdout, TempDir};

/// Splits a cmd.exe command line: spaces separate words except inside double quotes, `\"`
/// is a literal quote (as reg.exe reads it), and the quotes themselves are removed. In a
/// batch file `%%` stands for `%`.
fn cmd_words(line: &str, batch: bool) -> Vec<String> {
    let line = if batch {
        line.replace("%%", "%")
    } else {
        line.to_string()
    };
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            _ => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Runs a script line's words after its command name as `guestwall <prefix> ...`, which must
/// succeed.
fn run_as_guestwall(prefix: &[&str], words: &[String], line: &str) {
    let mut args: Vec<&str> = prefix.to_vec();
    args.extend(words[1..].iter().map(String::as_str));
    let o = gw(&args);
    assert_eq!(o.status.code(), Some(0), "{line}: {}", stderr(&o));
}

fn diagnose_ok(system: &str) -> bool {
    gw(&["diagnose", system]).status.code() == Some(0)
}

#[test]
fn fix_dry_run_fix_second_fix_and_undo() {
    let t = TempDir::new("fixcli");
    let sys = sample(&t.0);
    let original = std::fs::read(&sys).unwrap();
    let o = gw(&["fix", "--dry-run", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("[block-all-inbound] SYSTEM\\ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile\\DoNotAllowExceptions"), "{text}");
    assert!(text.contains("1 -> (deleted)"), "{text}");
    assert!(text.contains("Dry run: nothing was written"), "{text}");
    assert!(std::fs::read(&sys).unwrap() == original);
    assert_eq!(t.files(), ["SYSTEM"]);

    let o = gw(&["fix", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("backup: "), "{text}");
    assert!(
        text.contains("After: ") && text.contains("RDP reachable"),
        "{text}"
    );
    assert!(diagnose_ok(&sys));
    let files = t.files();
    assert_eq!(
        files,
        [
            ".guestwall-history",
            "SYSTEM",
            files[2].as_str() // the backup
        ],
        "{files:?}"
    );
    assert!(files[2].starts_with("SYSTEM.guestwall-backup-"));
    let backup = t.0.join(&files[2]);
    assert!(std::fs::read(&backup).unwrap() == original);

    let o = gw(&["fix", &sys]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("No change needed."));
    assert_eq!(t.files().len(), 3);

    let o = gw(&["undo", "--dry-run", &sys]);
    assert!(stdout(&o).contains("would restore"), "{}", stdout(&o));
    assert!(std::fs::read(&sys).unwrap() != original);
    let o = gw(&["undo", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("restored"), "{}", stdout(&o));
    assert!(std::fs::read(&sys).unwrap() == original);
    assert!(!diagnose_ok(&sys));
}

#[test]
fn fix_json_lists_changes_writes_and_verdicts() {
    let t = TempDir::new("fixjson");
    let sys = sample(&t.0);
    let o = gw(&["fix", "--json", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["reachable"], true);
    assert_eq!(v["dry_run"], false);
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[1]["value"], "DoNotAllowExceptions");
    assert_eq!(changes[1]["before"], "1");
    assert!(changes[1]["after"].is_null());
    assert_eq!(changes[1]["code"], "block-all-inbound");
    let backup = v["writes"][0]["backup"].as_str().unwrap();
    assert!(std::path::Path::new(backup).is_file());
    assert_eq!(v["before"]["profiles"]["public"]["verdict"], "blocked");
    assert_eq!(v["after"]["profiles"]["public"]["verdict"], "allowed");
    assert_eq!(v["schema"], 1);
    // Fixed already: no change, nothing written.
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&gw(&["fix", "--json", &sys]))).unwrap();
    assert_eq!(v["changes"].as_array().unwrap().len(), 0);
    assert_eq!(v["writes"].as_array().unwrap().len(), 0);
}

#[test]
fn fix_explains_what_it_cannot_fix_and_warns_about_exposure() {
    let t = TempDir::new("fixwarn");
    let sys = sample(&t.0);
    let o = gw(&["fix", "--dry-run", "--firewall-off", &sys]);
    assert_eq!(o.status.code(), Some(0));
    // A dry run says in its plan what would be exposed, and claims nothing on stderr.
    assert!(
        stdout(&o).contains("WARNING: --firewall-off"),
        "{}",
        stdout(&o)
    );
    assert!(!stderr(&o).contains("now OFF"), "{}", stderr(&o));
    let o = gw(&["fix", "--dry-run", "--allow-inbound", &sys]);
    assert!(stdout(&o).contains("ALL inbound traffic"), "{}", stdout(&o));
    // A real run says it on stderr too (stdout is not a terminal here), after the write.
    let o = gw(&["fix", "--allow-inbound", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("ALL inbound traffic"), "{}", stderr(&o));
    assert_eq!(gw(&["undo", &sys]).status.code(), Some(0));
    // Bad input: exit 2, nothing written.
    let junk = t.0.join("junk");
    std::fs::write(&junk, b"not a hive").unwrap();
    let o = gw(&["fix", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("junk"), "{}", stderr(&o));
    assert!(std::fs::read(&junk).unwrap() == b"not a hive");
    let files = t.files();
    assert!(
        files.contains(&"junk".to_string())
            && files
                .iter()
                .all(|f| f == "junk" || f.starts_with("SYSTEM") || f == ".guestwall-history"),
        "{files:?}"
    );
}

#[test]
fn netsh_runs_the_articles_online_commands_offline() {
    let t = TempDir::new("netsh");
    let sys = sample(&t.0);
    let netsh = |args: &[&str]| {
        let mut v = vec!["netsh", "--system", sys.as_str(), "advfirewall"];
        v.extend_from_slice(args);
        gw(&v)
    };
    // show rule, by English name and by indirect string.
    for name in [
        "name=Remote Desktop - User Mode (TCP-In)",
        "name=@FirewallAPI.dll,-28775",
    ] {
        let o = netsh(&["firewall", "show", "rule", name, "verbose"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = stdout(&o);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert_eq!(
            lines[1],
            format!(
                "{:<38}{}",
                "Rule Name:", "Remote Desktop - User Mode (TCP-In)"
            )
        );
        assert_eq!(lines[2], "-".repeat(70));
        assert!(
            lines.contains(&"Enabled:                              No"),
            "{text}"
        );
        assert!(
            lines.contains(&"Grouping:                             Remote Desktop"),
            "{text}"
        );
        assert!(
            lines.contains(&"Rule source:                          Local Setting"),
            "{text}"
        );
        assert!(
            text.ends_with("Action:                               Allow\nOk.\n\n"),
            "{text}"
        );
    }
    // The article's first online step: enable the group.
    let o = netsh(&[
        "firewall",
        "set",
        "rule",
        "group=Remote Desktop",
        "new",
        "enable=yes",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Updated 3 rule(s).\nOk."),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("backup"), "{}", stderr(&o));
    // Public still blocks everything: the second step.
    assert!(!diagnose_ok(&sys));
    let o = netsh(&["show", "publicprofile"]);
    assert!(
        stdout(&o)
            .contains("Firewall Policy                       BlockInboundAlways,AllowOutbound"),
        "{}",
        stdout(&o)
    );
    let o = netsh(&[
        "set",
        "allprofiles",
        "firewallpolicy",
        "blockinbound,allowoutbound",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(diagnose_ok(&sys));
    let o = netsh(&["show", "allprofiles"]);
    let text = stdout(&o);
    assert_eq!(
        text.matches("Firewall Policy                       BlockInbound,AllowOutbound")
            .count(),
        3,
        "{text}"
    );
    assert_eq!(text.matches(&"-".repeat(70)).count(), 3);
    // Only Active changed in the rules, only DoNotAllowExceptions in the profiles.
    let o = gw(&[
        "hive",
        "get",
        &sys,
        "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile",
    ]);
    assert!(
        stdout(&o).contains("DoNotAllowExceptions"),
        "{}",
        stdout(&o)
    );
    // state off is done when asked, with a warning, and on puts it back.
    let o = netsh(&["set", "publicprofile", "state", "off"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("OFF"), "{}", stderr(&o));
    assert!(stdout(&netsh(&["show", "publicprofile"]))
        .contains("State                                 OFF"));
    netsh(&["set", "publicprofile", "state", "on"]);
    assert!(stdout(&netsh(&["show", "publicprofile"]))
        .contains("State                                 ON"));
    // add, show, delete.
    let o = netsh(&[
        "firewall",
        "add",
        "rule",
        "name=RDP 3390",
        "dir=in",
        "action=allow",
        "protocol=TCP",
        "localport=3390",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = netsh(&["firewall", "show", "rule", "name=RDP 3390"]);
    assert!(
        stdout(&o).contains("LocalPort:                            3390"),
        "{}",
        stdout(&o)
    );
    let o = netsh(&["firewall", "delete", "rule", "name=RDP 3390"]);
    assert!(stdout(&o).contains("Deleted 1 rule(s)."));
    let o = netsh(&["firewall", "delete", "rule", "name=RDP 3390"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("No rules match the specified criteria."));
    // Mistakes: exit 2, nothing written.
    let before = std::fs::read(&sys).unwrap();
    let n = t.files().len();
    for bad in [
        &[
            "firewall",
            "add",
            "rule",
            "name=x",
            "dir=in",
            "action=allow",
            "localport=99999",
        ][..],
        &[
            "firewall",
            "set",
            "rule",
            "group=Remote Desktop",
            "enable=yes",
        ],
        &["set", "currentprofile", "state", "off"],
        &[
            "set",
            "allprofiles",
            "firewallpolicy",
            "notconfigured,allowoutbound",
        ],
    ] {
        let o = netsh(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stdout(&o));
        assert!(!stderr(&o).is_empty());
    }
    assert!(std::fs::read(&sys).unwrap() == before);
    assert_eq!(t.files().len(), n);
}

#[test]
fn netsh_shows_every_inbound_rule_of_a_real_hive() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("netshw7");
    let sys = copy_into(&t.0, &c.join("regipy/SYSTEM"), "SYSTEM");
    let o = gw(&[
        "netsh",
        "--system",
        &sys,
        "advfirewall",
        "firewall",
        "show",
        "rule",
        "name=all",
        "dir=in",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    let target = guestwall_ingest::locate(std::path::Path::new(&sys), None).unwrap();
    let cfg = &guestwall_ingest::load(&target).unwrap()[0];
    let inbound = cfg
        .policy
        .rules
        .iter()
        .filter(|r| r.rule.direction == Some(guestwall_firewall::Direction::In))
        .filter(|r| {
            matches!(
                r.store,
                guestwall_firewall::Store::Local | guestwall_firewall::Store::GroupPolicy
            )
        })
        .count();
    assert!(inbound > 100, "{inbound}");
    assert_eq!(text.matches("\nRule Name:").count(), inbound);
    assert_eq!(
        text.matches("Direction:                            In\n")
            .count(),
        inbound
    );
    // Every label line puts its value at column 38.
    for l in text.lines() {
        if let Some((label, _)) = l.split_once(':') {
            if l.len() > label.len() + 1 && !l.starts_with(' ') {
                assert_eq!(l[label.len() + 1..38].trim(), "", "{l}");
                assert_ne!(l.as_bytes()[38], b' ', "{l}");
            }
        }
    }
    // The Windows 7 RDP rule for Public is disabled.
    let o = gw(&[
        "netsh",
        "--system",
        &sys,
        "advfirewall",
        "firewall",
        "show",
        "rule",
        "name=Remote Desktop (TCP-In)",
    ]);
    let text = stdout(&o);
    assert_eq!(text.matches("Rule Name:").count(), 2, "{text}");
    assert!(text.contains("Profiles:                             Public\nGrouping:                             Remote Desktop\nLocalIP:                              Any\nRemoteIP:                             Any\nProtocol:                             TCP\nLocalPort:                            3389"), "{text}");
}

#[test]
fn the_serial_console_script_fixes_the_hive_when_run_through_netsh() {
    let t = TempDir::new("script-netsh");
    let sys = sample(&t.0);
    let o = gw(&["script", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let script = stdout(&o);
    let commands: Vec<&str> = script.lines().filter(|l| !l.starts_with("REM")).collect();
    assert_eq!(
        commands,
        [
            "netsh advfirewall firewall set rule name=\"Remote Desktop - User Mode (TCP-In)\" dir=in new enable=yes",
            "netsh advfirewall set publicprofile firewallpolicy blockinbound,allowoutbound",
        ]
    );
    for line in commands {
        let words = cmd_words(line, false);
        assert_eq!(words[0], "netsh");
        run_as_guestwall(&["netsh", "--system", &sys], &words, line);
    }
    assert!(diagnose_ok(&sys));
    // The PowerShell version names the rule by its ID.
    let t2 = TempDir::new("script-ps");
    let sys2 = sample(&t2.0);
    let ps = stdout(&gw(&["script", "--powershell", &sys2]));
    assert!(
        ps.contains("Enable-NetFirewallRule -Name 'RemoteDesktop-UserMode-In-TCP'"),
        "{ps}"
    );
    assert!(
        ps.contains("Set-NetFirewallProfile -Name Public -AllowInboundRules True"),
        "{ps}"
    );
}

#[test]
fn the_offline_batch_script_fixes_the_hive_when_run_through_reg() {
    let check = |sys: &str, extra: &[&str]| {
        let mut args = vec!["script", "--offline-cmd", "--drive", "G:"];
        args.extend_from_slice(extra);
        args.push(sys);
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains("\r\n"));
        let lines: Vec<&str> = script.lines().map(|l| l.trim_end_matches('\r')).collect();
        assert_eq!(lines[0], "@echo off");
        assert!(lines.iter().any(|l| l.starts_with("robocopy \"G:\\Windows\\System32\\config\" \"G:\\Windows\\System32\\config.guestwall-bak\"")));
        assert!(lines
            .contains(&"reg load HKLM\\BROKENSYSTEM \"G:\\Windows\\System32\\config\\SYSTEM\""));
        assert_eq!(
            lines
                .iter()
                .filter(|l| **l == "reg unload HKLM\\BROKENSYSTEM")
                .count(),
            1
        );
        let mut ran = 0;
        for l in lines
            .iter()
            .filter(|l| l.starts_with("reg add") || l.starts_with("reg delete"))
        {
            let words = cmd_words(l, true);
            let mount = format!("HKLM\\BROKENSYSTEM={sys}");
            run_as_guestwall(&["reg", "--load", &mount], &words, l);
            ran += 1;
        }
        assert!(ran > 0);
        assert!(diagnose_ok(sys), "{}", stdout(&gw(&["diagnose", sys])));
    };
    let t = TempDir::new("script-cmd");
    check(&sample(&t.0), &[]);
    let Some(c) = corpus() else { return };
    // Windows 10: RDP off and its rules disabled; the rule strings hold %SystemRoot%.
    let t = TempDir::new("script-cmd-b");
    let sys = copy_with_logs(&t.0, &c.join("regipy/SYSTEM_B"), "SYSTEM_B");
    check(&sys, &[]);
    let o = gw(&[
        "hive",
        "get",
        &sys,
        "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules",
        "RemoteDesktop-UserMode-In-TCP",
    ]);
    assert!(
        stdout(&o).contains("App=%SystemRoot%\\system32\\svchost.exe"),
        "{}",
        stdout(&o)
    );
}
