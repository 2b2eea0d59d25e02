//! `guestwall reg ...`: reg.exe on offline hives.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use guestwall_reg::{Mounts, RunOptions};

/// Arguments of `guestwall reg`.
#[derive(Args)]
pub struct RegArgs {
    /// Edit this hive file; key paths are relative to its root (or start with its usual
    /// place, e.g. HKLM\SYSTEM).
    #[arg(long, value_name = "FILE")]
    hive: Option<PathBuf>,
    /// With --hive: where the hive's root appears in .reg files and output (default from the
    /// file name, e.g. HKEY_LOCAL_MACHINE\SYSTEM).
    #[arg(long, requires = "hive")]
    prefix: Option<String>,
    /// Mount a hive the way `reg load` does: --load HKLM\BROKENSYSTEM=F:\Windows\System32\config\SYSTEM.
    /// May be given more than once.
    #[arg(long, value_name = "ROOT\\NAME=FILE")]
    load: Vec<String>,
    /// Edit a dirty hive even when its logs cannot be applied (its last changes are lost).
    #[arg(long)]
    allow_dirty: bool,
    /// Build and verify the change, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// The reg.exe command line: add|delete|query|import|export and its arguments, e.g.
    /// delete "HKLM\BROKENSYSTEM\...\DomainProfile" /v DoNotAllowExceptions /f
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    args: Vec<String>,
}

/// Runs `guestwall reg`.
pub fn run(a: RegArgs, out: &mut dyn Write) -> Result<u8> {
    let mut mounts = Mounts::new();
    if let Some(h) = &a.hive {
        mounts.add_hive(h.clone(), a.prefix.as_deref());
    }
    for l in &a.load {
        mounts.add_load(l)?;
    }
    if mounts.is_empty() {
        bail!("no hive: give --hive FILE or --load HKLM\\NAME=FILE");
    }
    // Like reg.exe, a change without /f asks, and reads the answer from standard input
    // (so `echo y | guestwall reg ...` works); no answer at all refuses the change.
    let interactive = std::io::stdin().is_terminal();
    let mut ask = |question: &str| -> Option<bool> {
        if interactive {
            eprint!("{question} (Yes/No) ");
        }
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(matches!(
                line.trim().to_ascii_lowercase().as_str(),
                "y" | "yes"
            )),
        }
    };
    let opts = RunOptions {
        save: crate::save_options(a.allow_dirty, a.dry_run),
        confirm: Some(&mut ask),
    };
    guestwall_reg::run(&a.args, &mounts, opts, out)?;
    Ok(0)
}
