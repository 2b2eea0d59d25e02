//! `guestwall fix`, `guestwall undo` and `guestwall script`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use guestwall_regf::save::UndoOptions;
use guestwall_repair::{FixOptions, ScriptKind};

use crate::diagnose_cmd::EXIT_NOT_REACHABLE;

/// The machine: a SYSTEM hive or a Windows folder.
#[derive(Args)]
pub struct TargetArgs {
    /// A SYSTEM hive file (SOFTWARE is looked for beside it), or a Windows folder: a mounted
    /// OS volume, its Windows folder, or Windows\System32\config.
    target: PathBuf,
    /// The SOFTWARE hive, when it is not beside SYSTEM.
    #[arg(long, value_name = "FILE")]
    software: Option<PathBuf>,
}

impl TargetArgs {
    fn locate(&self) -> Result<guestwall_ingest::Target> {
        Ok(guestwall_ingest::locate(
            &self.target,
            self.software.as_deref(),
        )?)
    }
}

/// What to fix and how far to go.
#[derive(Args)]
pub struct FixFlags {
    /// Examine this TCP port instead of the configured RDP port.
    #[arg(long)]
    port: Option<u16>,
    /// The article's temporary step: default inbound action ALLOW on every profile. Exposes
    /// every listening port; undo it once RDP works.
    #[arg(long)]
    allow_inbound: bool,
    /// The article's temporary step: switch the firewall OFF on every profile. Exposes every
    /// listening port; turn it back on once RDP works.
    #[arg(long)]
    firewall_off: bool,
    /// Also edit the Group Policy cache in SOFTWARE (the next policy refresh restores it).
    #[arg(long)]
    include_policy_cache: bool,
    /// Do what Azure VMAccess "Reset configuration only" does, and nothing else: RDP
    /// enabled, every profile on, the RDP rule enabled.
    #[arg(long)]
    reset_rdp_config: bool,
}

impl FixFlags {
    fn options(&self) -> FixOptions {
        FixOptions {
            port: self.port,
            allow_inbound: self.allow_inbound,
            firewall_off: self.firewall_off,
            include_policy_cache: self.include_policy_cache,
            reset_rdp_config: self.reset_rdp_config,
        }
    }
}

/// Arguments of `guestwall fix`.
#[derive(Args)]
pub struct FixArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    flags: FixFlags,
    /// Print every change (key, value, before -> after) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Edit a dirty hive even when its logs cannot be applied (its last changes are lost).
    #[arg(long)]
    allow_dirty: bool,
    /// Print JSON: the changes, what stays unresolved, warnings, files written, and the
    /// diagnosis before and after.
    #[arg(long)]
    json: bool,
}

/// Runs `guestwall fix`; exit code 0 when RDP is reachable afterwards, 1 when not.
pub fn fix(a: FixArgs, out: &mut dyn Write) -> Result<u8> {
    let target = a.target.locate()?;
    let opts = a.flags.options();
    let save = crate::save_options(a.allow_dirty, a.dry_run);
    let fixed = guestwall_repair::fix(&target, &opts, &save)
        .with_context(|| format!("cannot fix {}", target.system.display()))?;
    // What is exposed is said once the write has succeeded (never before: a failed write
    // exposes nothing), on stderr as well when stdout is not read by a person.
    if !a.dry_run && (a.json || !std::io::stdout().is_terminal()) {
        for w in exposure_warnings(&opts) {
            crate::warn(w);
        }
    }
    if a.json {
        let text = serde_json::to_string_pretty(&guestwall_repair::fixed_json(&fixed))?;
        writeln!(out, "{text}")?;
    } else {
        guestwall_repair::write_fixed(&fixed, out)?;
    }
    Ok(if fixed.reachable() {
        0
    } else {
        EXIT_NOT_REACHABLE
    })
}

/// What `--allow-inbound` and `--firewall-off` exposed, said after a successful write.
fn exposure_warnings(o: &FixOptions) -> Vec<&'static str> {
    let mut w = Vec::new();
    if o.allow_inbound {
        w.push("--allow-inbound: every profile now lets ALL inbound traffic through, to every listening port; only the cloud's network rules (NSG) still filter");
    }
    if o.firewall_off {
        w.push("--firewall-off: the Windows Firewall is now OFF on every profile: nothing on the VM filters inbound traffic");
    }
    w
}

/// Arguments of `guestwall undo`.
#[derive(Args)]
pub struct UndoArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Say what would be restored, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// List the operations recorded for these hives (newest first) and change nothing.
    #[arg(long, conflicts_with_all = ["dry_run", "force"])]
    list: bool,
    /// Restore even a hive that something else (Windows, another tool) has written since
    /// guestwall saved it; that later change is lost (the file is kept beside it).
    #[arg(long)]
    force: bool,
}

/// Exit code of `undo` when there is nothing to undo.
pub const EXIT_NOTHING_TO_UNDO: u8 = 1;

/// Runs `guestwall undo`: reverts the latest operation as a whole (exit 0), or says there is
/// nothing to undo (exit 1).
pub fn undo(a: UndoArgs, out: &mut dyn Write) -> Result<u8> {
    let target = a.target.locate()?;
    if a.list {
        let ops = guestwall_repair::history(&target)?;
        guestwall_repair::write_history(&ops, out)?;
        return Ok(0);
    }
    let opts = UndoOptions {
        dry_run: a.dry_run,
        force: a.force,
        lock_wait: None,
        on_lock_wait: Some(crate::lock_wait_note),
    };
    let undone = guestwall_repair::undo(&target, &opts)?;
    if undone.nothing() {
        writeln!(
            out,
            "Nothing to undo: no guestwall change of {} is in effect (`guestwall undo --list` shows the history).",
            target.system.display()
        )?;
        return Ok(EXIT_NOTHING_TO_UNDO);
    }
    guestwall_repair::write_undone(&undone, a.dry_run, out)?;
    Ok(0)
}

/// Arguments of `guestwall script`.
#[derive(Args)]
pub struct ScriptArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    flags: FixFlags,
    /// PowerShell (NetSecurity cmdlets) instead of netsh.
    #[arg(long, conflicts_with = "offline_cmd")]
    powershell: bool,
    /// A reg.exe batch file for a Windows rescue VM: robocopy backup, reg load, the changes,
    /// reg unload.
    #[arg(long)]
    offline_cmd: bool,
    /// The drive the OS disk is attached as on the rescue VM (with --offline-cmd).
    #[arg(long, default_value = "F:", requires = "offline_cmd")]
    drive: String,
}

/// Runs `guestwall script`.
pub fn script(a: ScriptArgs, out: &mut dyn Write) -> Result<u8> {
    let target = a.target.locate()?;
    let configs = guestwall_ingest::load(&target)
        .with_context(|| format!("cannot read {}", target.system.display()))?;
    let opts = a.flags.options();
    let plan = guestwall_repair::plan(&configs, &opts);
    let kind = if a.powershell {
        ScriptKind::PowerShell
    } else if a.offline_cmd {
        let drive = a.drive.trim().to_string();
        anyhow::ensure!(
            drive.len() == 2 && drive.ends_with(':') && drive.as_bytes()[0].is_ascii_alphabetic(),
            "--drive takes a drive letter with its colon, such as F:"
        );
        ScriptKind::OfflineCmd { drive }
    } else {
        ScriptKind::Netsh
    };
    out.write_all(guestwall_repair::script(&plan, &kind).as_bytes())?;
    Ok(0)
}

/// Arguments of `guestwall netsh`.
#[derive(Args)]
pub struct NetshArgs {
    /// The SYSTEM hive (or a Windows folder).
    #[arg(long, value_name = "SYSTEM")]
    system: PathBuf,
    /// The SOFTWARE hive, when it is not beside SYSTEM.
    #[arg(long, value_name = "FILE")]
    software: Option<PathBuf>,
    /// Print the changes and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Edit a dirty hive even when its logs cannot be applied (its last changes are lost).
    #[arg(long)]
    allow_dirty: bool,
    /// The netsh command: advfirewall firewall show|set|add|delete rule ..., advfirewall
    /// show|set allprofiles|currentprofile|<x>profile ...
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    command: Vec<String>,
}

/// Runs `guestwall netsh`: 0 on success, 1 when no rule matches, 2 on bad input.
pub fn netsh(a: NetshArgs, out: &mut dyn Write) -> Result<u8> {
    let target = guestwall_ingest::locate(&a.system, a.software.as_deref())?;
    let save = crate::save_options(a.allow_dirty, a.dry_run);
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    match guestwall_repair::netsh::run(&target, &a.command, &save, out, &mut err) {
        Ok(code) => Ok(code),
        // Keep the io::Error itself in the chain, so that a closed pipe is recognised.
        Err(guestwall_repair::RepairError::Io(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}
