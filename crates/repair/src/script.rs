//! A [`Plan`] as commands: netsh for the serial console of the running VM, the same with
//! PowerShell's NetSecurity cmdlets, or a reg.exe batch file for a Windows rescue VM that has
//! the OS disk attached.
//!
//! The online scripts act on the running system, so they only carry the changes of the
//! current control set (the first in [`Plan::control_sets`]) and of SOFTWARE; `ControlSetNNN`
//! becomes `CurrentControlSet`. They name firewall rules the way each tool does: netsh by
//! display name (`name=`, which is localized on a non-English Windows), PowerShell by rule ID
//! (`-Name`, the same in every language). The offline script carries every change, with the
//! keys under the hives it loads.

use std::fmt::Write as _;

use guestwall_firewall::{names::display, Profile, Rule};

use crate::{Change, FixKind, HiveKind, Op, Plan, RdpListener};

/// Which script to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptKind {
    /// `netsh advfirewall` (and `reg`/`sc` where netsh has no command), for the serial
    /// console's cmd channel.
    Netsh,
    /// PowerShell with the NetSecurity module.
    PowerShell,
    /// A reg.exe batch file for a Windows rescue VM with the OS disk attached at `drive`
    /// (for example `F:`).
    OfflineCmd {
        /// The drive letter of the attached OS disk, with its colon.
        drive: String,
    },
}

/// Writes the plan as a script of the given kind.
pub fn script(plan: &Plan, kind: &ScriptKind) -> String {
    match kind {
        ScriptKind::Netsh => online(plan, false),
        ScriptKind::PowerShell => online(plan, true),
        ScriptKind::OfflineCmd { drive } => offline_cmd(plan, drive),
    }
}

/// The changes a running system needs: SOFTWARE, and SYSTEM's current control set, each
/// change once.
fn online_changes(plan: &Plan) -> Vec<&Change> {
    let current = plan.control_sets.first().map(String::as_str).unwrap_or("");
    let mut out: Vec<&Change> = Vec::new();
    for c in &plan.changes {
        let keep = match c.hive {
            HiveKind::Software => true,
            HiveKind::System => first_component(&c.key).eq_ignore_ascii_case(current),
        };
        if keep
            && !out
                .iter()
                .any(|o| o.kind == c.kind && o.key.eq_ignore_ascii_case(&c.key))
        {
            out.push(c);
        }
    }
    out
}

fn first_component(key: &str) -> &str {
    key.split('\\').next().unwrap_or("")
}

/// `HKLM\SYSTEM\CurrentControlSet\...` or `HKLM\SOFTWARE\...` for a running system.
fn online_key(c: &Change) -> String {
    match c.hive {
        HiveKind::Software => format!("HKLM\\SOFTWARE\\{}", c.key),
        HiveKind::System => {
            let rest = c.key.split_once('\\').map_or("", |(_, r)| r);
            format!("HKLM\\SYSTEM\\CurrentControlSet\\{rest}")
        }
    }
}

fn profile_keyword(p: Profile) -> &'static str {
    match p {
        Profile::Domain => "domainprofile",
        Profile::Private => "privateprofile",
        Profile::Public => "publicprofile",
    }
}

/// A PowerShell single-quoted string.
fn ps(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The rule string a change writes, parsed.
fn rule_after(c: &Change) -> Option<Rule> {
    match &c.op {
        Op::SetString(s) => Some(Rule::parse(&c.value, s)),
        _ => None,
    }
}

fn header(plan: &Plan, out: &mut String, comment: &str) {
    let _ = writeln!(
        out,
        "{comment} guestwall: repair inbound RDP through the guest OS firewall"
    );
    for d in plan.before.iter().take(1) {
        let _ = writeln!(
            out,
            "{comment} Diagnosis of {} (port {}): {}",
            d.label,
            d.port,
            if d.reachable {
                "reachable"
            } else {
                "NOT reachable"
            }
        );
        for p in &d.profiles {
            let _ = writeln!(out, "{comment}   {}: {}", p.profile, p.verdict.key());
        }
    }
    if let Some(d) = plan.before.first() {
        if let (Some(tag), Some(from)) = (&d.language.tag, &d.language.names_from) {
            let _ = if before_windows8(&d.os) {
                writeln!(
                    out,
                    "{comment} The VM's language is {tag} (rule names from {from}): a rule whose name in {tag} is not known here is changed by its ID, through its registry value (this Windows has no -NetFirewallRule cmdlets)"
                )
            } else if d.language.names_known == 0 {
                writeln!(
                    out,
                    "{comment} The VM's language is {tag} and none of its rule names is known here ({from}): rules are changed by their IDs through PowerShell; `guestwall script --powershell` writes the whole fix that way"
                )
            } else {
                writeln!(
                    out,
                    "{comment} The VM's language is {tag}: rules are named as its console shows them (names from {from}); a rule whose name in {tag} is not known here is changed by its ID through PowerShell"
                )
            };
        }
    }
    for u in &plan.unresolved {
        let _ = writeln!(
            out,
            "{comment} Not fixed here ({}): {} -- {}",
            u.code, u.detail, u.action
        );
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "{comment} WARNING: {w}");
    }
}

fn online(plan: &Plan, powershell: bool) -> String {
    let comment = if powershell { "#" } else { "REM" };
    let mut out = String::new();
    header(plan, &mut out, comment);
    let changes = online_changes(plan);
    if changes.is_empty() {
        let _ = if plan.unresolved.is_empty() {
            writeln!(out, "{comment} No change needed.")
        } else {
            writeln!(
                out,
                "{comment} No change guestwall can make here: `guestwall fix --dry-run` lists what is not fixed and why."
            )
        };
        return out;
    }
    let mut start: Vec<String> = Vec::new();
    // The VM's console shows names in another language: English names do not work there.
    let foreign = plan
        .before
        .first()
        .and_then(|d| d.language.names_from.as_ref().and(d.language.tag.clone()));
    let foreign = foreign.as_deref();
    let pre_windows8 = plan.before.first().is_some_and(|d| before_windows8(&d.os));
    if powershell && pre_windows8 {
        let _ = writeln!(
            out,
            "{comment} This is Windows 7 / Server 2008 R2 or older: it has no -NetFirewall* cmdlets; use the netsh script (`guestwall script` without --powershell)"
        );
    }
    for c in changes {
        let _ = match &c.shown_as() {
            Some(shown) => writeln!(out, "{comment} [{}] {shown}", c.code),
            None => writeln!(out, "{comment} [{}] {}\\{}", c.code, online_key(c), c.value),
        };
        if c.policy_cache {
            let _ = writeln!(
                out,
                "{comment} Group Policy owns this setting: change the GPO, or the next refresh undoes this"
            );
        }
        let line = if powershell {
            ps_line(c, &mut start)
        } else {
            netsh_line(c, &mut start, foreign, pre_windows8)
        };
        out.push_str(&line);
        out.push('\n');
    }
    // BFE before MpsSvc: the firewall service depends on the filtering engine.
    start.sort_by_key(|s| match s.to_ascii_lowercase().as_str() {
        "bfe" => 0,
        "mpssvc" => 1,
        _ => 2,
    });
    for s in start {
        let _ = writeln!(
            out,
            "{}",
            if powershell {
                format!("Start-Service -Name {}", ps(&s))
            } else {
                format!("sc start {s}")
            }
        );
    }
    out
}

/// netsh names rules by display name: an indirect string that guestwall cannot resolve
/// (`@FirewallAPI.dll,-30793`) is no name netsh accepts, so such a rule is changed by its ID
/// through PowerShell, which the cmd channel can start. On a Windows in another language
/// (`foreign`), an English name is no name netsh accepts either.
fn unnamed(name: &str) -> bool {
    name.trim_start().starts_with('@')
}

/// True when `name` is the English display name of a built-in rule (not the VM's own).
fn english_name(name: &str) -> bool {
    guestwall_firewall::names::is_english_display_name(name)
}

/// Why netsh has no name for the rule `c` changes alone: an unresolved indirect string, an
/// English name on a Windows in another language (`foreign`), a name other rules share.
/// `None` when netsh can name it (or `c` changes no rule).
fn netsh_cannot(c: &Change, foreign: Option<&str>) -> Option<String> {
    let (FixKind::EnableRule {
        name, shared_name, ..
    }
    | FixKind::DisableRule {
        name, shared_name, ..
    }
    | FixKind::AddProfile {
        name, shared_name, ..
    }) = &c.kind
    else {
        return None;
    };
    if unnamed(name) {
        Some(format!("this one's is an unresolved {name}"))
    } else if let Some(lang) = foreign.filter(|_| english_name(name)) {
        Some(format!(
            "the name of \"{name}\" in {lang} is not known here"
        ))
    } else if *shared_name {
        Some(format!("other rules are also named \"{name}\""))
    } else {
        None
    }
}

/// Before Windows 8 / Server 2012 there are no NetSecurity cmdlets: the rule's registry
/// value, by its ID, which the firewall reads when it starts.
fn via_registry(c: &Change, why: &str) -> String {
    format!(
        "REM netsh names rules by display name, and {}; Windows before 8 / Server 2012 has no\n\
         REM -NetFirewallRule cmdlets: the rule's registry value is set by its ID, and the firewall\n\
         REM reads it when it starts, so restart the VM afterwards\n{}",
        why,
        reg_line(c, &online_key(c), false)
    )
}

fn via_powershell(c: &Change, start: &mut Vec<String>, why: &str) -> String {
    let cmd = ps_line(c, start);
    format!(
        "REM netsh names rules by display name, and {}; PowerShell changes this rule alone, by its ID\npowershell -NoProfile -Command \"{}\"",
        why,
        cmd.replace('"', "\\\"")
    )
}

/// True when the OS is known to be older than Windows 8 / Server 2012 (NT 6.2), which brought
/// the NetSecurity cmdlets (`Enable-NetFirewallRule`, ...).
fn before_windows8(os: &guestwall_diagnose::OsInfo) -> bool {
    let Some((major, minor)) = os.version.as_deref().and_then(|v| v.split_once('.')) else {
        return false;
    };
    match (major.parse::<u32>(), minor.parse::<u32>()) {
        (Ok(major), Ok(minor)) => (major, minor) < (6, 2),
        _ => false,
    }
}

/// The netsh (cmd) line for `c`; a rule netsh cannot name goes through PowerShell by its ID,
/// or through its registry value where the OS is older than Windows 8 (`pre_windows8`).
fn netsh_line(
    c: &Change,
    start: &mut Vec<String>,
    foreign: Option<&str>,
    pre_windows8: bool,
) -> String {
    if let Some(why) = netsh_cannot(c, foreign).filter(|_| !c.policy_cache) {
        return if pre_windows8 {
            via_registry(c, &why)
        } else {
            via_powershell(c, start, &why)
        };
    }
    match &c.kind {
        FixKind::EnableRule { name, .. } | FixKind::DisableRule { name, .. } if !c.policy_cache => {
            let yn = if matches!(c.kind, FixKind::EnableRule { .. }) {
                "yes"
            } else {
                "no"
            };
            format!("netsh advfirewall firewall set rule name=\"{name}\" dir=in new enable={yn}")
        }
        FixKind::AddProfile { name, .. } if !c.policy_cache => {
            let profiles = rule_after(c)
                .map(|r| r.profiles.to_string().to_ascii_lowercase())
                .unwrap_or_default();
            format!(
                "netsh advfirewall firewall set rule name=\"{name}\" dir=in new profile={profiles}"
            )
        }
        FixKind::AddPortRule {
            name,
            port,
            listener,
            ..
        } => {
            let program = match listener {
                RdpListener::Kernel => " program=System",
                RdpListener::TermService => {
                    " program=\"%SystemRoot%\\system32\\svchost.exe\" service=termservice"
                }
                RdpListener::Any => "",
            };
            format!(
                "netsh advfirewall firewall add rule name=\"{name}\" dir=in action=allow protocol=TCP localport={port}{program} profile=any enable=yes"
            )
        }
        FixKind::RemoveShield {
            profile,
            outbound_block,
        } if !c.policy_cache => format!(
            "netsh advfirewall set {} firewallpolicy blockinbound,{}",
            profile_keyword(*profile),
            if *outbound_block {
                "blockoutbound"
            } else {
                "allowoutbound"
            }
        ),
        FixKind::EnableProfile { profile } if !c.policy_cache => {
            format!(
                "netsh advfirewall set {} state on",
                profile_keyword(*profile)
            )
        }
        FixKind::FirewallOff { profile } if !c.policy_cache => {
            format!(
                "netsh advfirewall set {} state off",
                profile_keyword(*profile)
            )
        }
        FixKind::AllowInbound { profile } if !c.policy_cache => format!(
            "netsh advfirewall set {} firewallpolicy allowinbound,allowoutbound",
            profile_keyword(*profile)
        ),
        FixKind::ServiceStart { service, start: s } => {
            start.push(service.clone());
            let word = match s {
                2 => "auto",
                3 => "demand",
                _ => "disabled",
            };
            format!("sc config {service} start= {word}")
        }
        FixKind::DisableConSec { name, .. } if !c.policy_cache => {
            format!(
                "netsh advfirewall consec set rule name=\"{}\" new enable=no",
                display(name)
            )
        }
        _ => reg_line(c, &online_key(c), false),
    }
}

/// How PowerShell selects an existing rule: by its ID (`-Name`); a rule known only from
/// netsh's display has its display name for an ID, and is selected by it (`-DisplayName`,
/// which takes every rule of that name, as netsh's `name=` does).
fn ps_rule(id: &str, name: &str) -> String {
    if id == name {
        format!("-DisplayName {}", ps(name))
    } else {
        format!("-Name {}", ps(id))
    }
}

fn ps_line(c: &Change, start: &mut Vec<String>) -> String {
    match &c.kind {
        FixKind::EnableRule { id, name, .. } if !c.policy_cache => {
            format!("Enable-NetFirewallRule {}", ps_rule(id, name))
        }
        FixKind::DisableRule { id, name, .. } if !c.policy_cache => {
            format!("Disable-NetFirewallRule {}", ps_rule(id, name))
        }
        FixKind::AddProfile { id, name, .. } if !c.policy_cache => {
            let profiles = rule_after(c)
                .map(|r| r.profiles.to_string())
                .unwrap_or_default();
            format!(
                "Set-NetFirewallRule {} -Profile {profiles}",
                ps_rule(id, name)
            )
        }
        FixKind::AddPortRule {
            id,
            name,
            port,
            listener,
        } => {
            let program = match listener {
                RdpListener::Kernel => " -Program 'System'",
                RdpListener::TermService => {
                    " -Program '%SystemRoot%\\system32\\svchost.exe' -Service 'termservice'"
                }
                RdpListener::Any => "",
            };
            format!(
                "New-NetFirewallRule -Name {} -DisplayName {} -Group {} -Direction Inbound -Action Allow -Protocol TCP -LocalPort {port}{program} -Profile Any -Enabled True",
                ps(id),
                ps(name),
                ps(guestwall_firewall::names::REMOTE_DESKTOP_GROUP)
            )
        }
        FixKind::RemoveShield { profile, .. } if !c.policy_cache => {
            format!("Set-NetFirewallProfile -Name {profile} -AllowInboundRules True")
        }
        FixKind::EnableProfile { profile } if !c.policy_cache => {
            format!("Set-NetFirewallProfile -Name {profile} -Enabled True")
        }
        FixKind::FirewallOff { profile } if !c.policy_cache => {
            format!("Set-NetFirewallProfile -Name {profile} -Enabled False")
        }
        FixKind::AllowInbound { profile } if !c.policy_cache => {
            format!("Set-NetFirewallProfile -Name {profile} -DefaultInboundAction Allow")
        }
        FixKind::ServiceStart { service, start: s } => {
            start.push(service.clone());
            let word = match s {
                2 => "Automatic",
                3 => "Manual",
                _ => "Disabled",
            };
            format!("Set-Service -Name {} -StartupType {word}", ps(service))
        }
        FixKind::DisableConSec { id, .. } if !c.policy_cache => {
            format!("Disable-NetIPsecRule -IPsecRuleName {}", ps(id))
        }
        _ => {
            let path = format!("Registry::{}", online_key(c));
            match &c.op {
                Op::SetDword(d) => format!(
                    "New-ItemProperty -Force -Path {} -Name {} -PropertyType DWord -Value {d} | Out-Null",
                    ps(&path),
                    ps(&c.value)
                ),
                Op::SetString(s) => format!(
                    "New-ItemProperty -Force -Path {} -Name {} -PropertyType String -Value {} | Out-Null",
                    ps(&path),
                    ps(&c.value),
                    ps(s)
                ),
                Op::DeleteValue => format!("Remove-ItemProperty -Path {} -Name {}", ps(&path), ps(&c.value)),
            }
        }
    }
}

/// A reg.exe argument in double quotes. In a batch file `%` doubles; reg.exe reads `\"` as a
/// quote, and a backslash before the closing quote must double.
fn cmd_quote(s: &str, batch: bool) -> String {
    let mut q = s.replace('"', "\\\"");
    if batch {
        q = q.replace('%', "%%");
    }
    let trailing = q.len() - q.trim_end_matches('\\').len();
    q.extend(std::iter::repeat_n('\\', trailing));
    format!("\"{q}\"")
}

/// `reg add` / `reg delete` for one change under `key`.
fn reg_line(c: &Change, key: &str, batch: bool) -> String {
    let v = cmd_quote(&c.value, batch);
    let k = cmd_quote(key, batch);
    match &c.op {
        Op::SetDword(d) => format!("reg add {k} /v {v} /t REG_DWORD /d {d} /f"),
        Op::SetString(s) => {
            if !batch && s.contains('%') {
                // An interactive cmd expands %VAR% and cannot escape it inside quotes.
                format!(
                    "REM this value holds '%' which an interactive cmd would expand: run the --powershell script for it\nREM reg add {k} /v {v} /t REG_SZ /d {} /f",
                    cmd_quote(s, false)
                )
            } else {
                format!("reg add {k} /v {v} /t REG_SZ /d {} /f", cmd_quote(s, batch))
            }
        }
        Op::DeleteValue => format!("reg delete {k} /v {v} /f"),
    }
}

fn offline_cmd(plan: &Plan, drive: &str) -> String {
    let drive = drive.trim_end_matches(['\\', '/']);
    let config = format!("{drive}\\Windows\\System32\\config");
    let mut out = String::from("@echo off\r\n");
    let mut body = String::new();
    header(plan, &mut body, "REM");
    let _ = writeln!(
        body,
        "REM The OS disk of the broken VM is attached to this rescue VM as {drive}"
    );
    let _ = writeln!(
        body,
        "REM Undo: copy the files back from {config}.guestwall-bak (while the hives are unloaded)"
    );
    if plan.changes.is_empty() {
        let _ = writeln!(body, "REM No change needed.");
    } else {
        let hives: Vec<HiveKind> = [HiveKind::System, HiveKind::Software]
            .into_iter()
            .filter(|h| plan.changes.iter().any(|c| c.hive == *h))
            .collect();
        let _ = writeln!(
            body,
            "REM 1. Back up the registry folder, as the article does"
        );
        let _ = writeln!(
            body,
            "if exist \"{config}.guestwall-bak\" (echo {config}.guestwall-bak exists already: move it away first, it may be the only good copy & exit /b 1)"
        );
        let _ = writeln!(
            body,
            "robocopy \"{config}\" \"{config}.guestwall-bak\" /E /COPY:DAT /R:0 /W:0 /NFL /NDL"
        );
        let _ = writeln!(body, "if errorlevel 8 (echo backup failed & exit /b 1)");
        let _ = writeln!(body, "REM 2. Load the hives");
        for h in &hives {
            let _ = writeln!(body, "reg load HKLM\\BROKEN{h} \"{config}\\{h}\"");
            let _ = writeln!(body, "if errorlevel 1 (echo cannot load {h} & exit /b 1)");
        }
        let _ = writeln!(body, "REM 3. The changes");
        for c in &plan.changes {
            let before = c.before.as_deref().unwrap_or("(absent)");
            let _ = writeln!(body, "REM [{}] was: {}", c.code, before.replace('%', "%%"));
            let key = format!("HKLM\\BROKEN{}\\{}", c.hive, c.key);
            let _ = writeln!(body, "{}", reg_line(c, &key, true));
        }
        let _ = writeln!(body, "REM 4. Unload the hives");
        for h in &hives {
            let _ = writeln!(body, "reg unload HKLM\\BROKEN{h}");
        }
    }
    for line in body.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_quoting() {
        assert_eq!(cmd_quote("a%b%", true), "\"a%%b%%\"");
        assert_eq!(cmd_quote("a%b%", false), "\"a%b%\"");
        assert_eq!(cmd_quote("say \"hi\"", false), "\"say \\\"hi\\\"\"");
        assert_eq!(cmd_quote("C:\\dir\\", false), "\"C:\\dir\\\\\"");
    }

    #[test]
    fn powershell_quoting() {
        assert_eq!(ps("it's"), "'it''s'");
    }
}
