//! Localized Windows (issue 13): the VM's language read from SYSTEM, the rule names its
//! console shows (built-in sourced names when only the hive is at hand), netsh's `group=` and
//! `name=` matching them, and the diagnosis showing them. Hives are the corpus's Windows 7
//! SYSTEM with `InstallLanguage` set by guestwall's own writer.

mod common;

use common::*;

/// The corpus's Windows 7 SYSTEM in `dir`, its install language set to `langid` (`0413`).
fn with_language(dir: &TempDir, langid: &str) -> Option<String> {
    let corpus = corpus()?;
    let p = copy_into(&dir.0, &corpus.join("regipy/SYSTEM"), "SYSTEM");
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
        langid,
        "/f",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    Some(p)
}

fn json(p: &str) -> serde_json::Value {
    let o = gw(&["diagnose", p, "--json"]);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The IDs of the enabled rules of the Remote Desktop group, from `netsh show rule`.
fn enabled_rdp_rules(p: &str) -> Vec<String> {
    let o = gw(&[
        "netsh",
        "--system",
        p,
        "--english",
        "advfirewall",
        "firewall",
        "show",
        "rule",
        "name=all",
        "group=@FirewallAPI.dll,-28752",
        "verbose",
    ]);
    let text = stdout(&o);
    let mut out = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("Rule Name:") {
            name = n.trim().to_string();
        }
        if line.starts_with("Enabled:") && line.contains("Yes") {
            out.push(name.clone());
        }
    }
    out
}

#[test]
fn dutch_german_and_japanese_groups_enable_exactly_the_remote_desktop_rules() {
    for (langid, tag, group, rule) in [
        (
            "0413",
            "nl-NL",
            "Extern bureaublad",
            "Extern bureaublad (TCP-In)",
        ),
        (
            "0407",
            "de-DE",
            "Remotedesktop",
            "Remotedesktop (TCP eingehend)",
        ),
        (
            "0411",
            "ja-JP",
            "リモート デスクトップ",
            "リモート デスクトップ (TCP 受信)",
        ),
    ] {
        let dir = TempDir::new(&format!("lang-{tag}"));
        let Some(p) = with_language(&dir, langid) else {
            return;
        };
        let before = json(&p);
        assert_eq!(before["language"]["tag"], tag);
        assert!(before["language"]["names_known"].as_u64().unwrap() >= 1);
        // The diagnosis names the rule as the VM's console does.
        let text = stdout(&gw(&["diagnose", &p]));
        assert!(text.contains(&format!("Language: {tag}")), "{text}");
        assert!(text.contains(rule), "{tag}: {text}");
        // The corpus hive's Remote Desktop rules are disabled (Win7: two in the group).
        let all = gw(&[
            "netsh",
            "--system",
            &p,
            "--english",
            "advfirewall",
            "firewall",
            "show",
            "rule",
            "name=all",
            "group=Remote Desktop",
        ]);
        let n_group = stdout(&all).matches("Rule Name:").count();
        assert!(n_group >= 1, "{}", stdout(&all));
        // Upper case, as a user may type it: netsh compares without regard to case.
        let o = gw(&[
            "netsh",
            "--system",
            &p,
            "advfirewall",
            "firewall",
            "set",
            "rule",
            &format!("group={}", group.to_uppercase()),
            "new",
            "enable=yes",
        ]);
        assert!(o.status.success(), "{tag}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains(&format!("Updated {n_group} rule(s).")),
            "{tag}: {}",
            stdout(&o)
        );
        // Exactly the group's rules are enabled now, and nothing else changed.
        assert_eq!(enabled_rdp_rules(&p).len(), n_group, "{tag}");
        let after = json(&p);
        assert_ne!(before["profiles"], after["profiles"], "{tag}");
    }
}

#[test]
fn a_rule_is_found_by_its_localized_name_and_still_by_its_english_one() {
    let dir = TempDir::new("lang-name");
    let Some(p) = with_language(&dir, "0413") else {
        return;
    };
    // The Windows 7 hive has two rules of that name (Domain,Private and Public).
    for name in ["Extern bureaublad (TCP-In)", "Remote Desktop (TCP-In)"] {
        let o = gw(&[
            "netsh",
            "--system",
            &p,
            "advfirewall",
            "firewall",
            "show",
            "rule",
            &format!("name={name}"),
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let text = stdout(&o);
        assert_eq!(text.matches("Rule Name:").count(), 2, "{name}: {text}");
        // Shown as the Dutch console shows it.
        assert_eq!(
            text.matches("Extern bureaublad (TCP-In)").count(),
            2,
            "{name}: {text}"
        );
    }
}

#[test]
fn a_language_without_sourced_names_says_so_and_english_names_still_work() {
    let dir = TempDir::new("lang-ko");
    // Korean: the built-in table has no sourced names for it.
    let Some(p) = with_language(&dir, "0412") else {
        return;
    };
    let j = json(&p);
    assert_eq!(j["language"]["tag"], "ko-KR");
    assert_eq!(j["language"]["names_known"], 0);
    let from = j["language"]["names_from"].as_str().unwrap();
    assert!(from.starts_with("none"), "{from}");
    let o = gw(&[
        "netsh",
        "--system",
        &p,
        "advfirewall",
        "firewall",
        "set",
        "rule",
        "group=Remote Desktop",
        "new",
        "enable=yes",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_english_windows_shows_no_language_line_and_keeps_english_names() {
    let dir = TempDir::new("lang-en");
    let Some(p) = with_language(&dir, "0409") else {
        return;
    };
    let j = json(&p);
    assert_eq!(j["language"]["tag"], "en-US");
    assert!(j["language"]["names_from"].is_null());
    let text = stdout(&gw(&["diagnose", &p]));
    assert!(!text.contains("Language:"), "{text}");
    assert!(text.contains("Remote Desktop (TCP-In)"), "{text}");
}

/// The serial-console script names a rule as the VM's console does; where that name is not
/// known (a language without sourced names), it changes the rule by ID through PowerShell and
/// says why.
#[test]
fn the_console_script_uses_the_vms_names_or_rule_ids() {
    for (langid, expect) in [
        (
            "0413",
            "netsh advfirewall firewall set rule name=\"Extern bureaublad (TCP-In)\" dir=in new enable=yes",
        ),
        (
            "0409",
            "netsh advfirewall firewall set rule name=\"Remote Desktop (TCP-In)\" dir=in new enable=yes",
        ),
        (
            "0412",
            "the name of \"Remote Desktop (TCP-In)\" in ko-KR is not known here",
        ),
    ] {
        let dir = TempDir::new(&format!("lang-script-{langid}"));
        let Some(p) = with_language(&dir, langid) else {
            return;
        };
        // Leave one rule of that name (the Windows 7 hive has two), so that netsh can name it.
        let o = gw(&[
            "reg",
            "--hive",
            &p,
            "delete",
            "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules",
            "/v",
            "RemoteDesktop-In-TCP",
            "/f",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let script = stdout(&gw(&["script", &p]));
        assert!(script.contains(expect), "{langid}:\n{script}");
        if langid == "0412" {
            // Windows 7 has no Enable-NetFirewallRule: by ID, through the registry value.
            assert!(
                script.contains("/v \"RemoteDesktop-In-TCP_1\" /t REG_SZ")
                    && script.contains("restart the VM"),
                "{script}"
            );
            assert!(
                script.contains("The VM's language is ko-KR")
                    && script.contains("changed by its ID, through its registry value"),
                "{script}"
            );
        }
        if langid == "0409" {
            assert!(!script.contains("The VM's language"), "{script}");
        }
    }
}

/// `netsh ... show rule` on a German Windows prints netsh's German words, laid out as the
/// real German capture in the shared corpus (`netsh/de`): the same labels, values at column
/// 41; `--english` prints English.
#[test]
fn show_rule_speaks_the_vms_language_where_its_words_are_documented() {
    let Some(corpus) = corpus() else { return };
    let real =
        std::fs::read_to_string(corpus.join("netsh/de/rule-verbose-dayz-partly-redacted.txt"))
            .unwrap();
    let columns = |text: &str| -> Vec<(String, usize)> {
        text.lines()
            .filter_map(|l| {
                let (label, rest) = l.split_once(':')?;
                let pad = rest.chars().take_while(|c| *c == ' ').count();
                (pad > 0).then(|| (format!("{label}:"), label.chars().count() + 1 + pad))
            })
            .collect()
    };
    let real_labels = columns(&real);
    assert_eq!(real_labels.len(), 18, "{real_labels:?}");

    let dir = TempDir::new("lang-show-de");
    let Some(p) = with_language(&dir, "0407") else {
        return;
    };
    let show = |extra: &[&str]| {
        let mut args = vec!["netsh", "--system", &p];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "advfirewall",
            "firewall",
            "show",
            "rule",
            "name=all",
            "group=Remotedesktop",
            "verbose",
        ]);
        let o = gw(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let german = show(&[]);
    let ours = columns(german.split("\n\n").next().unwrap_or(&german));
    assert!(ours.len() >= 15, "{german}");
    for (label, col) in &ours {
        let found = real_labels.iter().find(|(l, _)| l == label);
        assert_eq!(
            found.map(|(_, c)| *c),
            Some(*col),
            "{label}: not laid out as in the real German capture\n{german}"
        );
    }
    for word in [
        "Aktiviert:",
        "Ja",
        "Eingehend",
        "Domäne,Privat",
        "Zulassen",
        "Beliebig",
    ] {
        assert!(german.contains(word), "{word}:\n{german}");
    }
    let english = show(&["--english"]);
    assert!(english.contains("Rule Name:"), "{english}");
    assert!(!english.contains("Regelname:"), "{english}");
    // English throughout: the rule names too.
    assert!(english.contains("Remote Desktop (TCP-In)"), "{english}");
    assert!(
        !english.contains("Remotedesktop (TCP eingehend)"),
        "{english}"
    );
}
