//! `guestwall collect`: the collector to run on the VM, and the capture side of the other
//! commands (a target that is captured text rather than a disk).

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use clap::Args;
use guestwall_capture::Capture;

/// Examples shown by `guestwall collect --help`.
pub const AFTER_HELP: &str = "\
Examples:
  guestwall collect > collector.ps1          the PowerShell collector (default)
  az vm run-command invoke -g RG -n VM --command-id RunPowerShellScript --scripts @collector.ps1 > out.json
  guestwall diagnose out.json                Run Command's JSON, the raw output or a pasted console alike
  guestwall collect --cmd                    for the serial console's cmd channel (reg, sc, netsh, netstat)
  guestwall collect --port 3390              RDP listens on another port

The PowerShell collector reads the raw registry values (language-independent), the services'
states, the connected networks' profiles and who listens on the RDP port, and prints one
compressed block that fits Run Command's 4,096-byte output window; when it does not fit, it
says so and writes the whole block to C:\\Windows\\Temp\\guestwall-capture.txt as well. It
changes nothing on the VM.

Exit codes: 0 printed, 2 bad input.";

/// Arguments of `guestwall collect`.
#[derive(Args)]
pub struct CollectArgs {
    /// The PowerShell collector (the default): for Run Command or a PowerShell prompt.
    #[arg(long, conflicts_with = "cmd")]
    powershell: bool,
    /// The cmd collector, for the serial console's cmd channel: only reg query, sc, netsh
    /// and netstat (its output is longer than Run Command returns).
    #[arg(long)]
    cmd: bool,
    /// The TCP port RDP listens on, for the listener check and the rule filter (1-65535).
    #[arg(long, default_value_t = 3389, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
}

/// Runs `guestwall collect`: prints the collector.
pub fn run(a: CollectArgs, out: &mut dyn Write) -> Result<u8> {
    let _ = a.powershell;
    guestwall_capture::write_collector(out, a.cmd, a.port)?;
    Ok(0)
}

/// The capture `target` is (`-`, or a text file holding one), detected by content; `None`
/// for a hive, a folder or an image. Options that only mean something for disks are refused
/// with a capture.
pub fn capture_of(target: &Path, disk_options: &[(&str, bool)]) -> Result<Option<Capture>> {
    let Some(cap) = guestwall_ingest::capture::capture_target(target)? else {
        return Ok(None);
    };
    for (flag, given) in disk_options {
        anyhow::ensure!(
            !given,
            "{flag} applies to a disk (hives, a Windows folder, a disk image), and {} is a capture of a running machine",
            target.display()
        );
    }
    Ok(Some(cap))
}
