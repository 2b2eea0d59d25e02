//! `guestwall demo`: builds a sample hive so that a fresh clone can run the main job without
//! a Windows disk.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

/// Exit codes of `guestwall demo --help`.
pub const AFTER_HELP: &str = "\
Examples:
  guestwall demo                  in a new folder under the system's temporary directory
  guestwall demo --dir ./sample   in ./sample (created if missing; nothing in it is overwritten)

Exit codes: 0 the sample was diagnosed, fixed and diagnosed again; 2 the folder already holds a
SYSTEM file, or it cannot be written.";

/// Arguments of `guestwall demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Folder to write the sample hive into (created if missing; an existing SYSTEM in it is
    /// never overwritten). Default: a new folder under the system's temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A new folder `guestwall-demo-<pid>[-n]` under the temporary directory (never an existing
/// one).
fn new_temp_folder() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..1000 {
        let name = if n == 0 {
            format!("guestwall-demo-{}", std::process::id())
        } else {
            format!("guestwall-demo-{}-{n}", std::process::id())
        };
        let d = base.join(name);
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", d.display())),
        }
    }
    bail!("no free folder name under {}", base.display())
}

/// Writes `bytes` to `path`, which must not exist.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} already exists; the demo never overwrites a file (choose another --dir, or leave --dir out)",
                    path.display()
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
            }
        })?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Diagnoses `configs` and writes the report for `shown` (the path as the user sees it).
fn show_diagnosis(
    configs: &[guestwall_firewall::MachineConfig],
    shown: &str,
    palette: &guestwall_diagnose::Palette,
    out: &mut dyn Write,
) -> Result<Vec<guestwall_diagnose::Diagnosis>> {
    let diags: Vec<_> = configs
        .iter()
        .map(|c| guestwall_diagnose::diagnose(c, None))
        .collect();
    guestwall_diagnose::write_text_styled(
        &diags,
        &guestwall_diagnose::shell_quote(shown),
        palette,
        out,
    )?;
    Ok(diags)
}

/// Builds the sample SYSTEM hive, diagnoses it, prints the serial-console script, fixes it
/// offline and diagnoses it again.
pub fn run(args: DemoArgs, colour: crate::colour::When, out: &mut dyn Write) -> Result<u8> {
    let palette = colour.stdout();
    let dir = match args.dir {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            d
        }
        None => new_temp_folder()?,
    };
    let path = dir.join("SYSTEM");
    let bytes = guestwall_samples::broken_rdp_system()?;
    write_new(&path, &bytes)?;
    let shown = path.display().to_string();
    writeln!(
        out,
        "Built a sample SYSTEM hive of a Windows Server 2019 VM that boots to the logon screen\n\
         while RDP times out:\n  {shown}\n"
    )?;
    writeln!(out, "$ guestwall diagnose {shown}")?;
    let target = guestwall_ingest::locate(&path, None)?;
    let configs = guestwall_ingest::load(&target)?;
    show_diagnosis(&configs, &shown, &palette, out)?;
    writeln!(
        out,
        "\nBoth causes of Microsoft's article: the Remote Desktop rules are disabled (cause 1) and\n\
         the Public profile blocks all inbound connections (cause 2, netsh: BlockInboundAlways).\n"
    )?;
    writeln!(
        out,
        "$ guestwall script {shown}   (for the serial console of the running VM)"
    )?;
    let opts = guestwall_repair::FixOptions::default();
    let plan = guestwall_repair::plan(&configs, &opts);
    out.write_all(
        guestwall_repair::script(&plan, &guestwall_repair::ScriptKind::Netsh).as_bytes(),
    )?;
    writeln!(
        out,
        "\n$ guestwall fix {shown}   (offline: backup, atomic write, verification)"
    )?;
    let save = crate::save_options(false, false);
    let fixed = guestwall_repair::fix(&target, &opts, &save)?;
    guestwall_repair::write_fixed(&fixed, &guestwall_diagnose::shell_quote(&shown), out)?;
    writeln!(out, "\n$ guestwall diagnose {shown}")?;
    let diags = show_diagnosis(&guestwall_ingest::load(&target)?, &shown, &palette, out)?;
    if !diags.iter().all(|d| d.reachable) {
        bail!("the sample is still not reachable after the fix");
    }
    writeln!(
        out,
        "\nThe demo's files (the hive, its backup, the operation history) are in {}; remove the folder when done.",
        dir.display()
    )?;
    Ok(0)
}
