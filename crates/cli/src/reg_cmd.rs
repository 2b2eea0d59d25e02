//! `guestwall reg ...`: reg.exe on offline hives.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use guestwall_reg::{Mounts, RunOptions};

/// Examples and exit codes of `guestwall reg --help`.
pub const AFTER_HELP: &str = "\
Examples (reg.exe's syntax; `guestwall reg /?` shows reg's own help):
  guestwall reg --load 'HKLM\\BROKENSYSTEM=/mnt/win/Windows/System32/config/SYSTEM' \\
    delete 'HKLM\\BROKENSYSTEM\\ControlSet001\\services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile' /v DoNotAllowExceptions /f
  guestwall reg --hive SYSTEM add 'ControlSet001\\Control\\Terminal Server' /v fDenyTSConnections /t REG_DWORD /d 0 /f
  guestwall reg --hive SYSTEM query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\MpsSvc' /v Start
  guestwall reg --hive SYSTEM import fix.reg

CurrentControlSet (a link on a running Windows) is mapped to the control set Select\\Current
names, with a note. Changes without /f ask on standard input, as reg.exe does.

Exit codes: 0 done, 2 bad syntax, key or value not found, or a refused write (nothing written).";

/// reg.exe's `reg /?` text, as far as guestwall implements it.
const REG_HELP: &str = "\
REG Operation [Parameter List]

  Operation  [ QUERY   | ADD    | DELETE  | EXPORT | IMPORT ]

Return Code: (Except for REG COMPARE)

  0 - Successful
  1 - Failed  (guestwall: 2)

For help on a specific operation type:

  REG Operation /?

guestwall runs these operations on offline hive files: name the file with --hive FILE (paths
relative to its root, or under its usual place such as HKLM\\SYSTEM) or mount it the way
`reg load` does with --load HKLM\\NAME=FILE.

REG QUERY KeyName [/v [ValueName] | /ve] [/s]
REG ADD KeyName [{/v ValueName | /ve}] [/t Type] [/s Separator] [/d Data] [/f]
  Type: REG_SZ | REG_MULTI_SZ | REG_EXPAND_SZ | REG_DWORD | REG_QWORD | REG_BINARY |
        REG_DWORD_BIG_ENDIAN | REG_NONE | REG_LINK
REG DELETE KeyName [{/v ValueName | /ve | /va}] [/f]
REG EXPORT KeyName FileName [/y]
REG IMPORT FileName
";

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
    /// Edit a dirty hive even when its logs cannot be applied, or were applied only in part
    /// (its last changes are lost).
    #[arg(long)]
    allow_dirty: bool,
    /// Build and verify the change, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where the undo journal of a change inside a disk image goes (a hive named
    /// `IMAGE::Windows/System32/config/SYSTEM`; default: beside the image).
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<std::path::PathBuf>,
    /// The reg.exe command line: add|delete|query|import|export and its arguments, e.g.
    /// delete "HKLM\BROKENSYSTEM\...\DomainProfile" /v DoNotAllowExceptions /f
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    args: Vec<String>,
}

/// Runs `guestwall reg`.
pub fn run(a: RegArgs, out: &mut dyn Write) -> Result<u8> {
    if a.args.iter().any(|x| x == "/?" || x == "-?") {
        out.write_all(REG_HELP.as_bytes())?;
        return Ok(0);
    }
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
    let mut note = |text: &str| eprintln!("guestwall: note: {text}");
    // Hives inside disk images (IMAGE::PATH) are read through the image and written in place.
    let images = guestwall_repair::ImageHives {
        journal_dir: a.journal_dir.clone(),
    };
    let opts = RunOptions {
        save: crate::save_options(a.allow_dirty, a.dry_run),
        confirm: Some(&mut ask),
        note: Some(&mut note),
        hives: Some(&images),
    };
    guestwall_reg::run(&a.args, &mounts, opts, out)?;
    Ok(0)
}
