//! `guestwall demo`: builds a sample hive so that a fresh clone can run the main job without
//! a Windows disk.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use guestwall_regf::{report, Hive};
use guestwall_samples::FIREWALL_POLICY;

/// Arguments of `guestwall demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Folder to write the sample hive into (default: a new folder under the system's
    /// temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Builds the sample SYSTEM hive and runs guestwall on it.
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
        "Built a sample SYSTEM hive of a Windows Server 2019 VM whose RDP times out:\n  {}\n",
        path.display()
    )?;

    writeln!(out, "$ guestwall hive info {}", path.display())?;
    let hive = Hive::open(&path)?;
    report::write_info(&hive, &mut *out)?;

    let policy = format!("ControlSet001\\{FIREWALL_POLICY}");
    for key in ["PublicProfile", "FirewallRules"] {
        writeln!(
            out,
            "\n$ guestwall hive get {} '{policy}\\{key}'",
            path.display()
        )?;
        report::write_get(&hive, &format!("{policy}\\{key}"), None, &mut *out)?;
    }
    writeln!(
        out,
        "\nThe Public profile has DoNotAllowExceptions=1 (netsh: BlockInboundAlways) and the \
         RemoteDesktop rules are Active=FALSE: the two causes of Microsoft's article."
    )?;
    Ok(0)
}
