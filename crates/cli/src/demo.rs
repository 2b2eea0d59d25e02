//! `guestwall demo`: builds a sample hive so that a fresh clone can run the main job without
//! a Windows disk.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `guestwall demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Folder to write the sample hive into (default: a new folder under the system's
    /// temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Builds the sample SYSTEM hive, diagnoses it, prints the serial-console script, fixes it
/// offline and diagnoses it again.
pub fn run(args: DemoArgs, out: &mut dyn Write) -> Result<u8> {
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("guestwall-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("SYSTEM");
    let bytes = guestwall_samples::broken_rdp_system()?;
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(
        out,
        "Built a sample SYSTEM hive of a Windows Server 2019 VM that boots to the logon screen\n\
         while RDP times out:\n  {}\n",
        path.display()
    )?;
    writeln!(out, "$ guestwall diagnose {}", path.display())?;
    let target = guestwall_ingest::locate(&path, None)?;
    let diags: Vec<_> = guestwall_ingest::load(&target)?
        .iter()
        .map(|c| guestwall_diagnose::diagnose(c, None))
        .collect();
    guestwall_diagnose::write_text(&diags, out)?;
    writeln!(
        out,
        "\nBoth causes of Microsoft's article: the Remote Desktop rules are disabled (cause 1) and\n\
         the Public profile blocks all inbound connections (cause 2, netsh: BlockInboundAlways).\n"
    )?;
    writeln!(
        out,
        "$ guestwall script {}   (for the serial console of the running VM)",
        path.display()
    )?;
    let configs = guestwall_ingest::load(&target)?;
    let opts = guestwall_repair::FixOptions::default();
    let plan = guestwall_repair::plan(&configs, &opts);
    out.write_all(
        guestwall_repair::script(&plan, &guestwall_repair::ScriptKind::Netsh).as_bytes(),
    )?;
    writeln!(
        out,
        "\n$ guestwall fix {}   (offline: backup, atomic write, verification)",
        path.display()
    )?;
    let save = guestwall_regf::save::SaveOptions::default();
    let fixed = guestwall_repair::fix(&target, &opts, &save)?;
    guestwall_repair::write_fixed(&fixed, out)?;
    writeln!(out, "\n$ guestwall diagnose {}", path.display())?;
    let diags: Vec<_> = guestwall_ingest::load(&target)?
        .iter()
        .map(|c| guestwall_diagnose::diagnose(c, None))
        .collect();
    guestwall_diagnose::write_text(&diags, out)?;
    if !diags.iter().all(|d| d.reachable) {
        anyhow::bail!("the sample is still not reachable after the fix");
    }
    Ok(0)
}
