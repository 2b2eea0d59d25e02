//! `guestwall diagnose`: per profile, does inbound RDP get through, and if not, why.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// Examples and exit codes shown by `guestwall diagnose --help`.
pub const AFTER_HELP: &str = "\
Examples:
  guestwall diagnose /mnt/win                      a mounted OS volume (Windows folder found case-insensitively)
  guestwall diagnose /mnt/win/Windows/System32     also: Windows, System32, System32/config
  guestwall diagnose SYSTEM                        a hive file; SOFTWARE is looked for beside it
  guestwall diagnose SYSTEM --software /other/SOFTWARE --json
  guestwall diagnose os-disk.vhd                   a disk image (raw, VHD, VHDX) or block device: read
                                                   without mounting; --partition N when it holds
                                                   several Windows installations
  guestwall diagnose capture.txt                   text captured on the running VM: the collector's
                                                   output (`guestwall collect`), Run Command's JSON,
                                                   reg query, netsh advfirewall, sc, Get-NetFirewall*
  az vm run-command invoke ... | guestwall diagnose - --json     the same from standard input

The port is the one RDP listens on (RDP-Tcp\\PortNumber in the hive); --port is used only when
the hive does not say, and a --port that differs from the hive's is reported, not believed.

Exit codes: 0 RDP reachable on every profile, 1 not reachable (or only for some clients),
2 bad input (not a SYSTEM hive, unreadable, missing --software file).";

/// Arguments of `guestwall diagnose`.
#[derive(Args)]
pub struct DiagnoseArgs {
    /// A SYSTEM hive file (SOFTWARE is looked for beside it), a Windows folder (a mounted
    /// OS volume, its Windows folder, System32, or System32\config), a disk image (raw,
    /// VHD, VHDX, an NTFS volume image) or block device, read without mounting, or a capture
    /// of the running machine (a text file, or - for standard input), told apart by content.
    target: PathBuf,
    /// The partition of a disk image that holds Windows, when it has several installations
    /// (1-based, as `fdisk -l` numbers them).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    partition: Option<u32>,
    /// The SOFTWARE hive, when it is not beside SYSTEM (it must exist).
    #[arg(long, value_name = "FILE")]
    software: Option<PathBuf>,
    /// The TCP port RDP listens on, when the hive does not say (1-65535).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Print JSON (schema in docs/json.md); errors are JSON too.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when RDP is not reachable (or only conditionally).
pub const EXIT_NOT_REACHABLE: u8 = 1;

/// Runs `guestwall diagnose`; exit code 0 when RDP is reachable, 1 when not.
pub fn run(a: DiagnoseArgs, colour: crate::colour::When, out: &mut dyn Write) -> Result<u8> {
    if let Some(cap) = crate::collect_cmd::capture_of(
        &a.target,
        &[
            ("--software", a.software.is_some()),
            ("--partition", a.partition.is_some()),
        ],
    )? {
        let configs = guestwall_ingest::capture::load_capture(&cap)?;
        return report(&configs, &a, true, colour, out);
    }
    let target = guestwall_ingest::locate_with(&a.target, a.software.as_deref(), a.partition)?;
    let slow = crate::SlowNotice::start(format!("reading {}", a.target.display()), a.json);
    let configs = guestwall_ingest::load(&target)
        .with_context(|| format!("cannot read {}", target.system.display()))?;
    drop(slow);
    if target.image.is_some() && std::env::var_os("GUESTWALL_COUNT_READS").is_some() {
        eprintln!(
            "guestwall: read {} bytes from {}",
            guestwall_ingest::image::image_bytes_read(),
            target.system.display()
        );
    }
    report(&configs, &a, false, colour, out)
}

/// Diagnoses and prints; `online` for a capture. Exit code 0 when RDP is reachable, 1 when not.
fn report(
    configs: &[guestwall_diagnose::MachineConfig],
    a: &DiagnoseArgs,
    online: bool,
    colour: crate::colour::When,
    out: &mut dyn Write,
) -> Result<u8> {
    let diags: Vec<_> = configs
        .iter()
        .map(|c| guestwall_diagnose::diagnose(c, a.port))
        .collect();
    let named = a.target.display().to_string();
    let written = if a.json {
        guestwall_diagnose::write_json(&diags, &named, out)
    } else {
        let software = a.software.as_ref().map(|s| s.display().to_string());
        let args = guestwall_diagnose::target_args(&named, software.as_deref());
        guestwall_diagnose::write_text_with(&diags, &args, online, &colour.stdout(), out)
    };
    // A reader that went away (`guestwall diagnose X | head -1`) is no error, and the exit
    // code still says the verdict.
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(if diags.iter().all(|d| d.reachable) {
        0
    } else {
        EXIT_NOT_REACHABLE
    })
}
