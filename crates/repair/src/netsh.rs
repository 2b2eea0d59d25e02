//! `guestwall netsh`: the article's `netsh advfirewall` commands, run against an offline
//! SYSTEM hive.
//!
//! Show commands read the current control set (`Select\Current`), as netsh on the running
//! machine would: `show rule` lists the local store's rules and the Group Policy rules (with
//! their `Rule source`); `show <profiles>` shows the local store's settings, as netsh's
//! default (local) store does. Changes are made to the local store of every control set that
//! can boot (Current, and Default when it differs), through the same safe save as `fix`:
//! backup, atomic write, verification, re-diagnosis. Rules set by Group Policy cannot be
//! changed this way, as on a running machine.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;

use guestwall_diagnose::{Code, MachineConfig};
use guestwall_firewall::{Origin, Profile, Rule, Store, StoreProfile};
use guestwall_ingest::{load, Target};
use guestwall_netsh::edit::{apply_spec, matches_local, new_rule};
use guestwall_netsh::render::{
    write_ok, write_profiles, write_rules_in, ShownProfile, ShownRule, Words, NO_MATCH,
};
use guestwall_netsh::{parse, Command, Inbound, Outbound, ProfileSel, ProfileSetting};
use guestwall_regf::save::SaveOptions;

use crate::apply::{apply_in, lock_target, RepairError, Result};
use crate::{Change, FixKind, Op, Plan};
use guestwall_regf::save::Operation;

/// Exit code when a filter selects no rule (netsh exits non-zero too).
pub const EXIT_NO_MATCH: u8 = 1;

/// Runs one `netsh advfirewall` command line (the words after `advfirewall`) against the
/// target's hives. Output goes to `out` as netsh writes it; guestwall's own notes (backups,
/// warnings, the diagnosis afterwards) go to `err`. Returns the exit code: 0, or
/// [`EXIT_NO_MATCH`].
pub fn run(
    target: &Target,
    words: &[String],
    save: &SaveOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    run_in(target, words, save, false, out, err)
}

/// [`run`]; `show rule` output is in the VM's language where netsh's words in it are
/// documented, unless `english`.
pub fn run_in(
    target: &Target,
    words: &[String],
    save: &SaveOptions,
    english: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let cmd = parse(words).map_err(|e| RepairError::Usage(e.0))?;
    // A command that writes takes the hives' locks before it reads them.
    let mut op = Operation::new(
        save.command
            .clone()
            .unwrap_or_else(|| "guestwall netsh".into()),
    );
    let writes = !matches!(cmd, Command::ShowRule { .. } | Command::ShowProfiles(_));
    if writes {
        lock_target(&mut op, target, save)?;
    }
    let configs = load(target)?;
    let current = &configs[0];
    let io = |e: std::io::Error| RepairError::Io(e);
    match cmd {
        Command::ShowRule { filter, verbose } => {
            let mut shown = Vec::new();
            for r in &current.policy.rules {
                let source = match r.store {
                    Store::Local => "Local Setting",
                    Store::GroupPolicy => "Group Policy",
                    _ => continue,
                };
                if selects(r, &filter).map_err(|e| RepairError::Usage(e.0))? {
                    shown.push(ShownRule {
                        rule: &r.rule,
                        source,
                        local_name: r.local_name.as_deref().filter(|_| !english),
                        local_group: r.local_group.as_deref().filter(|_| !english),
                    });
                }
            }
            let language = if english {
                Words::english()
            } else {
                Words::for_language(current.names.language.as_deref())
            };
            write_rules_in(out, &shown, verbose, language).map_err(io)?;
            Ok(if shown.is_empty() { EXIT_NO_MATCH } else { 0 })
        }
        Command::ShowProfiles(sel) => {
            let profiles = selected(current, sel, err)?;
            let shown: Vec<ShownProfile> = profiles
                .iter()
                .map(|&p| shown_profile(current, p))
                .collect();
            write_profiles(out, &shown).map_err(io)?;
            gp_note(current, &profiles, err).map_err(io)?;
            Ok(0)
        }
        Command::SetRule { filter, new } => {
            let mut changes = Vec::new();
            let mut updated = 0;
            let mut policy_hits = 0;
            for (n, cfg) in configs.iter().enumerate() {
                for r in &cfg.policy.rules {
                    if !selects(r, &filter).map_err(|e| RepairError::Usage(e.0))? {
                        continue;
                    }
                    match r.store {
                        Store::Local => {}
                        Store::GroupPolicy | Store::Mdm => {
                            policy_hits += usize::from(n == 0);
                            continue;
                        }
                        // Service-hardening rules are not shown or changed by netsh at all.
                        Store::ServiceHardening => continue,
                    }
                    updated += usize::from(n == 0);
                    let mut raw = r.rule.raw.clone();
                    if apply_spec(&mut raw, &new).map_err(|e| RepairError::Usage(e.0))? {
                        let kind = FixKind::EditRule {
                            id: r.rule.id.clone(),
                            name: r.display_name(),
                        };
                        changes.push(rule_change(
                            &r.origin,
                            &r.rule,
                            Op::SetString(raw.to_string()),
                            kind,
                        ));
                    }
                }
            }
            if policy_hits > 0 {
                writeln!(err, "guestwall: {policy_hits} matching rule(s) come from Group Policy or MDM and were left alone: change them there").map_err(io)?;
            }
            if updated == 0 {
                writeln!(out, "\n{NO_MATCH}\n").map_err(io)?;
                return Ok(EXIT_NO_MATCH);
            }
            write_changes(&mut op, target, configs_sets(&configs), changes, save, err)?;
            writeln!(out, "\nUpdated {updated} rule(s).").map_err(io)?;
            write_ok(out).map_err(io)?;
            Ok(0)
        }
        Command::AddRule(spec) => {
            let id = new_rule_id();
            let mut changes = Vec::new();
            for cfg in &configs {
                let version = crate::native_rule_version(cfg);
                let s = new_rule(&spec, version).map_err(|e| RepairError::Usage(e.0))?;
                let at = Origin::system(format!("{}\\FirewallRules", cfg.firewall_policy_key()))
                    .value(id.as_str());
                let rule = Rule::parse(&id, &s);
                changes.push(Change::at(
                    &at,
                    None,
                    Op::SetString(s),
                    Code::NetshCommand,
                    FixKind::NewRule {
                        id: id.clone(),
                        name: rule.display_name(),
                    },
                ));
            }
            write_changes(&mut op, target, configs_sets(&configs), changes, save, err)?;
            writeln!(out).map_err(io)?;
            write_ok(out).map_err(io)?;
            Ok(0)
        }
        Command::DeleteRule(filter) => {
            let mut changes = Vec::new();
            let mut deleted = 0;
            for (n, cfg) in configs.iter().enumerate() {
                for r in cfg.policy.rules.iter().filter(|r| r.store == Store::Local) {
                    if selects(r, &filter).map_err(|e| RepairError::Usage(e.0))? {
                        deleted += usize::from(n == 0);
                        let kind = FixKind::DeleteRule {
                            id: r.rule.id.clone(),
                            name: r.display_name(),
                        };
                        changes.push(rule_change(&r.origin, &r.rule, Op::DeleteValue, kind));
                    }
                }
            }
            if deleted == 0 {
                writeln!(out, "\n{NO_MATCH}\n").map_err(io)?;
                return Ok(EXIT_NO_MATCH);
            }
            write_changes(&mut op, target, configs_sets(&configs), changes, save, err)?;
            writeln!(out, "\nDeleted {deleted} rule(s).").map_err(io)?;
            write_ok(out).map_err(io)?;
            Ok(0)
        }
        Command::SetProfiles(sel, setting) => {
            let profiles = selected(current, sel, err)?;
            let mut changes = Vec::new();
            for cfg in &configs {
                for &p in &profiles {
                    profile_changes(cfg, p, setting, &mut changes)?;
                }
            }
            let wrote = write_changes(&mut op, target, configs_sets(&configs), changes, save, err)?;
            // Said once the write has succeeded: a failed write exposes nothing.
            if wrote {
                match setting {
                    ProfileSetting::State(Some(false)) => writeln!(err, "guestwall: WARNING: the firewall is now OFF on the {} profile(s): nothing on the VM filters inbound traffic there; only the cloud's network rules (NSG) do. Turn it back on once RDP works", names(&profiles)).map_err(io)?,
                    ProfileSetting::FirewallPolicy(Inbound::Allow, _) => writeln!(err, "guestwall: WARNING: the {} profile(s) now let in ALL inbound traffic that no rule blocks, to every listening port; only the cloud's network rules (NSG) still filter. Set blockinbound again once RDP works", names(&profiles)).map_err(io)?,
                    _ => {}
                }
            }
            writeln!(out).map_err(io)?;
            write_ok(out).map_err(io)?;
            Ok(0)
        }
    }
}

fn names(ps: &[Profile]) -> String {
    ps.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn configs_sets(configs: &[MachineConfig]) -> Vec<String> {
    configs.iter().map(|c| c.control_set.clone()).collect()
}

fn rule_change(origin: &Origin, rule: &Rule, op: Op, kind: FixKind) -> Change {
    Change::at(
        origin,
        Some(rule.raw.to_string()),
        op,
        Code::NetshCommand,
        kind,
    )
}

/// The profiles a selector stands for; `currentprofile` uses the network hint.
fn selected(cfg: &MachineConfig, sel: ProfileSel, err: &mut dyn Write) -> Result<Vec<Profile>> {
    Ok(match sel {
        ProfileSel::All => Profile::ALL.to_vec(),
        ProfileSel::One(p) => vec![p],
        ProfileSel::Current => match &cfg.network_hint {
            Some(h) => {
                let _ = writeln!(
                    err,
                    "guestwall: the current profile is taken to be {} (network \"{}\", the last one connected)",
                    h.profile, h.name
                );
                vec![h.profile]
            }
            None => {
                return Err(RepairError::Usage(
                    "currentprofile: which profile was active cannot be told offline without SOFTWARE (NetworkList); name the profile (domainprofile, privateprofile, publicprofile) or use allprofiles".into(),
                ))
            }
        },
    })
}

fn local_profile(cfg: &MachineConfig, p: Profile) -> Option<&StoreProfile> {
    cfg.policy.local.profile(p, false)
}

/// The local store's settings for one profile, with Windows' defaults where a value is absent.
fn shown_profile(cfg: &MachineConfig, p: Profile) -> ShownProfile {
    let sp = local_profile(cfg, p);
    let get = |f: fn(&StoreProfile) -> Option<bool>| sp.and_then(f);
    let on = get(|s| s.enable_firewall.as_ref().map(|x| x.value)).unwrap_or(true);
    let shielded = get(|s| s.shielded.as_ref().map(|x| x.value)).unwrap_or(false);
    let inbound_block = get(|s| s.default_inbound_block.as_ref().map(|x| x.value)).unwrap_or(true);
    let outbound_block =
        get(|s| s.default_outbound_block.as_ref().map(|x| x.value)).unwrap_or(false);
    let log = sp.map(|s| &s.logging);
    ShownProfile {
        profile: p,
        on,
        inbound: if shielded {
            "BlockInboundAlways"
        } else if inbound_block {
            "BlockInbound"
        } else {
            "AllowInbound"
        },
        outbound: if outbound_block {
            "BlockOutbound"
        } else {
            "AllowOutbound"
        },
        local_firewall_rules: "N/A (GPO-store only)".into(),
        local_consec_rules: "N/A (GPO-store only)".into(),
        inbound_user_notification: !get(|s| s.disable_notifications.as_ref().map(|x| x.value))
            .unwrap_or(false),
        remote_management: false,
        unicast_response: !get(|s| s.disable_unicast_responses.as_ref().map(|x| x.value))
            .unwrap_or(false),
        log_allowed: log
            .and_then(|l| l.log_allowed.as_ref())
            .is_some_and(|x| x.value),
        log_dropped: log
            .and_then(|l| l.log_dropped.as_ref())
            .is_some_and(|x| x.value),
        log_file: log
            .and_then(|l| l.file.as_ref())
            .map(|x| x.value.clone())
            .unwrap_or_else(|| "%systemroot%\\system32\\LogFiles\\Firewall\\pfirewall.log".into()),
        log_max_kb: log
            .and_then(|l| l.max_kb.as_ref())
            .map_or(4096, |x| x.value),
    }
}

/// netsh shows the local store; say so when Group Policy overrides what it shows.
fn gp_note(cfg: &MachineConfig, profiles: &[Profile], err: &mut dyn Write) -> std::io::Result<()> {
    let Some(gp) = &cfg.policy.group_policy else {
        return Ok(());
    };
    for &p in profiles {
        if gp.profile(p, true).is_some() {
            writeln!(err, "guestwall: note: Group Policy also configures the {p} profile, and its values win over the local ones shown; `guestwall diagnose` shows what is in force")?;
        }
    }
    Ok(())
}

/// The changes a profile setting makes to one control set's local store.
fn profile_changes(
    cfg: &MachineConfig,
    p: Profile,
    setting: ProfileSetting,
    out: &mut Vec<Change>,
) -> Result<()> {
    let sp = local_profile(cfg, p);
    let key = cfg.local_profile_origin(p);
    let cur = |f: fn(&StoreProfile) -> Option<bool>| sp.and_then(f).map(u32::from);
    let mut set = |name: &str, before: Option<u32>, value: Option<u32>| {
        // An absent value already holds its default: writing the default adds nothing.
        let default = match name {
            "DefaultInboundAction" | "EnableFirewall" => 1,
            _ => 0,
        };
        if before.or(Some(default)) == value {
            return;
        }
        out.push(Change::at(
            &key.value(name),
            before.map(|b| b.to_string()),
            value.map_or(Op::DeleteValue, Op::SetDword),
            Code::NetshCommand,
            FixKind::ProfileSetting { profile: p },
        ));
    };
    let not_configured = || {
        RepairError::Usage("notconfigured applies to a Group Policy store; the offline hive's local store needs on/off or a policy".into())
    };
    let shield = cur(|s| s.shielded.as_ref().map(|x| x.value));
    match setting {
        ProfileSetting::State(None) => return Err(not_configured()),
        ProfileSetting::State(Some(on)) => {
            set(
                "EnableFirewall",
                cur(|s| s.enable_firewall.as_ref().map(|x| x.value)),
                Some(u32::from(on)),
            );
        }
        ProfileSetting::FirewallPolicy(inbound, outbound) => {
            let inbound_now = cur(|s| s.default_inbound_block.as_ref().map(|x| x.value));
            match inbound {
                Inbound::NotConfigured => return Err(not_configured()),
                Inbound::Block | Inbound::Allow => {
                    let block = u32::from(inbound == Inbound::Block);
                    // Absent means 0, so only a value that is there is set back to 0.
                    if shield.is_some() {
                        set("DoNotAllowExceptions", shield, Some(0));
                    }
                    set("DefaultInboundAction", inbound_now, Some(block));
                }
                Inbound::BlockAlways => {
                    set("DoNotAllowExceptions", shield, Some(1));
                    set("DefaultInboundAction", inbound_now, Some(1));
                }
            }
            let outbound_now = cur(|s| s.default_outbound_block.as_ref().map(|x| x.value));
            match outbound {
                Outbound::NotConfigured => return Err(not_configured()),
                Outbound::Allow => set("DefaultOutboundAction", outbound_now, Some(0)),
                Outbound::Block => set("DefaultOutboundAction", outbound_now, Some(1)),
            }
        }
    }
    Ok(())
}

/// Writes the changes (nothing when there are none), then reports the backup and the
/// diagnosis afterwards on `err`. Returns true when something was written.
fn write_changes(
    op: &mut Operation,
    target: &Target,
    control_sets: Vec<String>,
    changes: Vec<Change>,
    save: &SaveOptions,
    err: &mut dyn Write,
) -> Result<bool> {
    let io = |e: std::io::Error| RepairError::Io(e);
    if changes.is_empty() {
        writeln!(err, "guestwall: nothing to change").map_err(io)?;
        return Ok(false);
    }
    let plan = Plan {
        control_sets,
        changes,
        ..Plan::default()
    };
    if save.dry_run {
        writeln!(
            err,
            "guestwall: dry run, nothing written; the changes would be:"
        )
        .map_err(io)?;
        let mut text = Vec::new();
        crate::write_plan(&plan, &mut text).map_err(io)?;
        err.write_all(&text).map_err(io)?;
        return Ok(false);
    }
    let fixed = apply_in(op, target, plan, save, None)?;
    for w in &fixed.writes {
        w.report
            .write_text(&w.hive.to_string(), &w.path, w.changes, false, err)
            .map_err(io)?;
    }
    for d in &fixed.after {
        writeln!(
            err,
            "guestwall: RDP (TCP {}) afterwards, {}: {}",
            d.port,
            d.label,
            crate::apply::summary(d)
        )
        .map_err(io)?;
    }
    Ok(true)
}

/// A fresh rule ID in the form netsh gives the rules it adds: `{GUID}`.
fn new_rule_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_usize(i);
        *w = h.finish();
    }
    let b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    // Version 4 (random) and the RFC 4122 variant.
    format!(
        "{{{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-4{:01X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6] & 0x0f, b[7], (b[8] & 0x3f) | 0x80, b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// Whether `filter` selects the stored rule: by its ID-level names, their English text, or
/// their text in the VM's language.
fn selects(
    r: &guestwall_firewall::StoredRule,
    filter: &guestwall_netsh::Filter,
) -> std::result::Result<bool, guestwall_netsh::UsageError> {
    matches_local(
        &r.rule,
        filter,
        r.local_name.as_deref(),
        r.local_group.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_ids_look_like_netsh_guids_and_differ() {
        let a = super::new_rule_id();
        let b = super::new_rule_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 38);
        assert!(a.starts_with('{') && a.ends_with('}'));
        assert_eq!(&a[15..16], "4");
    }
}
