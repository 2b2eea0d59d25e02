//! `guestwall diagnose`: per profile, does inbound RDP get through, and if not, why.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `guestwall diagnose`.
#[derive(Args)]
pub struct DiagnoseArgs {
    /// A SYSTEM hive file (SOFTWARE is looked for beside it), or a Windows folder: a mounted
    /// OS volume, its Windows folder, or Windows\System32\config.
    target: PathBuf,
    /// The SOFTWARE hive, when it is not beside SYSTEM.
    #[arg(long, value_name = "FILE")]
    software: Option<PathBuf>,
    /// Examine this TCP port instead of the configured RDP port.
    #[arg(long)]
    port: Option<u16>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Exit code when RDP is not reachable (or only conditionally).
pub const EXIT_NOT_REACHABLE: u8 = 1;

/// Runs `guestwall diagnose`; exit code 0 when RDP is reachable, 1 when not.
pub fn run(a: DiagnoseArgs, out: &mut dyn Write) -> Result<u8> {
    let target = guestwall_ingest::locate(&a.target, a.software.as_deref())?;
    let configs = guestwall_ingest::load(&target)
        .with_context(|| format!("cannot read {}", target.system.display()))?;
    let diags: Vec<_> = configs
        .iter()
        .map(|c| guestwall_diagnose::diagnose(c, a.port))
        .collect();
    if a.json {
        guestwall_diagnose::write_json(&diags, out)?;
    } else {
        guestwall_diagnose::write_text(&diags, out)?;
    }
    Ok(if diags.iter().all(|d| d.reachable) {
        0
    } else {
        EXIT_NOT_REACHABLE
    })
}
