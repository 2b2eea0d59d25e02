//! `guestwall fix`, `guestwall undo` and `guestwall script`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use guestwall_regf::save::UndoOptions;
use guestwall_repair::{FixOptions, ScriptKind};

use crate::diagnose_cmd::EXIT_NOT_REACHABLE;

/// Examples and exit codes of `guestwall fix --help`.
pub const FIX_HELP: &str = "\
Examples:
  guestwall fix --dry-run /mnt/win        every change (key, value, before -> after); writes nothing
  guestwall fix /mnt/win                  backup, atomic write, verification, diagnosis afterwards
  guestwall fix --json SYSTEM             the same as JSON (schema in docs/json.md)
  guestwall fix --include-policy-cache /mnt/win   also the Group Policy cache in SOFTWARE
  guestwall fix os-disk.vhdx              inside a disk image or block device, in place: only the
                                          hive's changed pages, in its own clusters, after an undo
                                          journal (os-disk.vhdx.guestwall-journal)
  guestwall fix --dry-run capture.txt     a capture of the running VM: the plan, as the commands
                                          to run on its console (a capture is never written to)

A disk image is refused, with nothing written, when writing in place is not safe: a hibernated
or uncleanly stopped Windows, a dirty VHDX log, blocks that live in a parent image, a hive that
would have to grow, an image another process holds, a mounted block device.

It never switches a profile off or allows all inbound traffic unless asked with --firewall-off
or --allow-inbound (the article's temporary steps), and then also makes the minimal fix, so
that RDP still works once the firewall is back on. Another guestwall writing the same hive is
waited for (GUESTWALL_LOCK_WAIT seconds, default 30).

Exit codes: 0 RDP reachable afterwards, 1 still not reachable (see the causes left), 2 bad input
or a refused write (read-only, no permission, damaged logs without --allow-dirty): nothing
written.";

/// Examples and exit codes of `guestwall undo --help`.
pub const UNDO_HELP: &str = "\
Examples:
  guestwall undo --list /mnt/win      every operation recorded for these hives, newest first
  guestwall undo --dry-run /mnt/win   what the next undo would restore
  guestwall undo /mnt/win             revert the latest operation (all the hives it changed)
  guestwall undo os-disk.vhdx         put back the bytes an in-place repair of the image changed

Each fix, netsh or reg change is one operation in .guestwall-history beside the hives; undo
reverts the latest one not yet undone, from the backups it made, and keeps the file it
replaces as .guestwall-undone-<time>. A hive that something else wrote since is left alone
unless --force.

Exit codes: 0 reverted, 1 nothing to undo, 2 refused or bad input (nothing written).";

/// Examples and exit codes of `guestwall script --help`.
pub const SCRIPT_HELP: &str = "\
Examples:
  guestwall script /mnt/win                          netsh commands for the serial console (cmd)
  guestwall script --powershell SYSTEM               NetSecurity cmdlets, by rule ID (any language)
  guestwall script --offline-cmd --drive F SYSTEM    reg.exe batch file for a Windows rescue VM
  guestwall script os-disk.vhdx                      the same, read from a disk image
  guestwall script capture.txt                       from a capture of the running VM (- : stdin)

Exit codes: 0 printed, 2 bad input.";

/// Examples and exit codes of `guestwall netsh --help`.
pub const NETSH_HELP: &str = "\
Examples:
  guestwall netsh --system SYSTEM advfirewall firewall set rule group=\"Remote Desktop\" new enable=yes
  guestwall netsh --system SYSTEM advfirewall set allprofiles firewallpolicy blockinbound,allowoutbound
  guestwall netsh --system SYSTEM advfirewall firewall show rule name=all dir=in verbose
  guestwall netsh --system /mnt/win advfirewall show allprofiles
  guestwall netsh --system os-disk.vhd advfirewall firewall show rule name=all dir=in

Output is netsh's; guestwall's own notes (backup, the diagnosis afterwards) go to stderr.

Exit codes: 0 done, 1 no rule matched (as netsh), 2 bad syntax, bad input or a refused write.";

/// The machine: a SYSTEM hive or a Windows folder.
#[derive(Args)]
pub struct TargetArgs {
    /// A SYSTEM hive file (SOFTWARE is looked for beside it), a Windows folder (a mounted
    /// OS volume, its Windows folder, System32, or System32\config), or a disk image or
    /// block device (repaired in place, behind an undo journal).
    target: PathBuf,
    /// The SOFTWARE hive, when it is not beside SYSTEM (it must exist).
    #[arg(long, value_name = "FILE")]
    software: Option<PathBuf>,
    /// The partition of a disk image that holds Windows, when it has several installations.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    partition: Option<u32>,
    /// Where the undo journal of a repair inside a disk image goes (default: beside the
    /// image; for a block device, the current folder).
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
}

impl TargetArgs {
    /// The capture the target is, when it is one (detected by content).
    fn capture(&self) -> Result<Option<guestwall_capture::Capture>> {
        crate::collect_cmd::capture_of(
            &self.target,
            &[
                ("--software", self.software.is_some()),
                ("--partition", self.partition.is_some()),
                ("--journal-dir", self.journal_dir.is_some()),
            ],
        )
    }

    fn locate(&self) -> Result<guestwall_ingest::Target> {
        let mut t =
            guestwall_ingest::locate_with(&self.target, self.software.as_deref(), self.partition)?;
        if let Some(img) = t.image.as_mut() {
            img.journal_dir = self.journal_dir.clone();
        } else if self.journal_dir.is_some() {
            anyhow::bail!(
                "--journal-dir applies to a disk image, and {} is not one",
                self.target.display()
            );
        }
        Ok(t)
    }
}

/// What to fix and how far to go.
#[derive(Args)]
pub struct FixFlags {
    /// The TCP port RDP listens on, when the hive does not say (1-65535).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// The article's temporary step: default inbound action ALLOW on every profile. Exposes
    /// every listening port; undo it once RDP works.
    #[arg(long)]
    allow_inbound: bool,
    /// The article's temporary step: switch the firewall OFF on every profile (the minimal
    /// fix is made too). Exposes every listening port; turn it back on once RDP works.
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
    /// diagnosis before and after (schema in docs/json.md); errors are JSON too.
    #[arg(long)]
    json: bool,
}

impl FixArgs {
    /// True with --json.
    pub fn json(&self) -> bool {
        self.json
    }
}

/// Runs `guestwall fix`; exit code 0 when RDP is reachable afterwards, 1 when not.
pub fn fix(a: FixArgs, out: &mut dyn Write) -> Result<u8> {
    if let Some(cap) = a.target.capture()? {
        return fix_capture(&a, &cap, out);
    }
    let target = a.target.locate()?;
    let opts = a.flags.options();
    let save = crate::save_options(a.allow_dirty, a.dry_run);
    let fixed = guestwall_repair::fix(&target, &opts, &save)
        .with_context(|| format!("cannot fix {}", target.system.display()))?;
    let named = a.target.target.display().to_string();
    let software = a.target.software.as_ref().map(|s| s.display().to_string());
    let args = guestwall_diagnose::target_args(&named, software.as_deref());
    // What is exposed is said once the write has succeeded (never before: a failed write
    // exposes nothing), on stderr as well when stdout is not read by a person.
    if !a.dry_run && (a.json || !std::io::stdout().is_terminal()) {
        for w in exposure_warnings(&opts) {
            crate::warn(w);
        }
    }
    if a.json {
        let text = serde_json::to_string_pretty(&guestwall_repair::fixed_json(&fixed, &named))?;
        writeln!(out, "{text}")?;
    } else {
        guestwall_repair::write_fixed(&fixed, &args, out)?;
    }
    Ok(if fixed.reachable() {
        0
    } else {
        EXIT_NOT_REACHABLE
    })
}

/// `fix` of a capture: only `--dry-run`, which prints the plan and the console commands that
/// carry it out on the VM (guestwall cannot write to a running machine through its text).
fn fix_capture(a: &FixArgs, cap: &guestwall_capture::Capture, out: &mut dyn Write) -> Result<u8> {
    let named = a.target.target.display().to_string();
    anyhow::ensure!(
        a.dry_run,
        "{named} is a capture of a running machine: guestwall writes only to disks (hives, a Windows folder, a disk image). `guestwall fix --dry-run {named}` shows the plan, and `guestwall script {named}` the commands to run on the VM"
    );
    anyhow::ensure!(
        !a.allow_dirty,
        "--allow-dirty applies to hive files, and {named} is a capture"
    );
    let configs = guestwall_ingest::capture::load_capture(cap)?;
    let opts = a.flags.options();
    let plan = guestwall_repair::plan(&configs, &opts);
    let kind = ScriptKind::Netsh;
    let reachable = !plan.after.is_empty() && plan.after.iter().all(|d| d.reachable);
    if a.json {
        let fixed = guestwall_repair::Fixed {
            after: plan.after.clone(),
            plan,
            writes: Vec::new(),
            dry_run: true,
        };
        let mut doc = guestwall_repair::fixed_json(&fixed, &named);
        if let Some(m) = doc.as_object_mut() {
            m.insert(
                "commands".into(),
                guestwall_repair::script(&fixed.plan, &kind).into(),
            );
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        guestwall_repair::write_console_plan(&plan, &kind, out)?;
    }
    Ok(if reachable { 0 } else { EXIT_NOT_REACHABLE })
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
    /// Print JSON (what was undone, or with --list the history); errors are JSON too.
    #[arg(long)]
    json: bool,
}

impl UndoArgs {
    /// True with --json.
    pub fn json(&self) -> bool {
        self.json
    }
}

/// Exit code of `undo` when there is nothing to undo.
pub const EXIT_NOTHING_TO_UNDO: u8 = 1;

/// Runs `guestwall undo`: reverts the latest operation as a whole (exit 0), or says there is
/// nothing to undo (exit 1).
pub fn undo(a: UndoArgs, out: &mut dyn Write) -> Result<u8> {
    let target = a.target.locate()?;
    if a.list {
        let ops = guestwall_repair::history(&target)?;
        if a.json {
            let doc = guestwall_repair::history_json(&ops);
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        } else {
            guestwall_repair::write_history(&ops, out)?;
        }
        return Ok(0);
    }
    let opts = UndoOptions {
        dry_run: a.dry_run,
        force: a.force,
        lock_wait: crate::lock_wait(),
        on_lock_wait: Some(crate::lock_wait_note),
    };
    let undone = guestwall_repair::undo(&target, &opts)?;
    if a.json {
        let doc = guestwall_repair::undone_json(&undone, a.dry_run);
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(if undone.nothing() {
            EXIT_NOTHING_TO_UNDO
        } else {
            0
        });
    }
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
    /// The drive letter the OS disk is attached as on the rescue VM (with --offline-cmd):
    /// F or F: alike.
    #[arg(long, default_value = "F:", requires = "offline_cmd")]
    drive: String,
}

/// Runs `guestwall script`.
pub fn script(a: ScriptArgs, out: &mut dyn Write) -> Result<u8> {
    let configs = match a.target.capture()? {
        Some(cap) => {
            anyhow::ensure!(
                !a.offline_cmd,
                "--offline-cmd writes a batch file for a rescue VM with the OS disk attached, and {} is a capture of the running machine: leave it out for netsh, or use --powershell",
                a.target.target.display()
            );
            guestwall_ingest::capture::load_capture(&cap)?
        }
        None => {
            let target = a.target.locate()?;
            guestwall_ingest::load(&target)
                .with_context(|| format!("cannot read {}", target.system.display()))?
        }
    };
    let opts = a.flags.options();
    let plan = guestwall_repair::plan(&configs, &opts);
    let kind = if a.powershell {
        ScriptKind::PowerShell
    } else if a.offline_cmd {
        let letter = a
            .drive
            .trim()
            .trim_end_matches(['\\', '/'])
            .trim_end_matches(':');
        anyhow::ensure!(
            letter.len() == 1 && letter.as_bytes()[0].is_ascii_alphabetic(),
            "--drive takes a drive letter, such as F or F: (got {:?})",
            a.drive
        );
        let drive = format!("{}:", letter.to_ascii_uppercase());
        if drive == "C:" {
            crate::warn("--drive C: is normally the rescue VM's own system disk: the script would back up and edit the rescue VM's registry, not the broken VM's. Check the letter the attached OS disk got (diskmgmt.msc or `Get-Disk`)");
        }
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
    /// The partition of a disk image that holds Windows, when it has several installations.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    partition: Option<u32>,
    /// Where the undo journal of a change inside a disk image goes (default: beside the
    /// image).
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    /// Print the changes and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Edit a dirty hive even when its logs cannot be applied (its last changes are lost).
    #[arg(long)]
    allow_dirty: bool,
    /// Print `show rule` in English (labels, values and rule names) even when the VM's console
    /// shows another language.
    #[arg(long)]
    english: bool,
    /// The netsh command: advfirewall firewall show|set|add|delete rule ..., advfirewall
    /// show|set allprofiles|currentprofile|<x>profile ...
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    command: Vec<String>,
}

/// Runs `guestwall netsh`: 0 on success, 1 when no rule matches, 2 on bad input.
pub fn netsh(a: NetshArgs, out: &mut dyn Write) -> Result<u8> {
    let mut target = guestwall_ingest::locate_with(&a.system, a.software.as_deref(), a.partition)?;
    if let Some(img) = target.image.as_mut() {
        img.journal_dir = a.journal_dir.clone();
    }
    let save = crate::save_options(a.allow_dirty, a.dry_run);
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    match guestwall_repair::netsh::run_in(&target, &a.command, &save, a.english, out, &mut err) {
        Ok(code) => Ok(code),
        // Keep the io::Error itself in the chain, so that a closed pipe is recognised.
        Err(guestwall_repair::RepairError::Io(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}
