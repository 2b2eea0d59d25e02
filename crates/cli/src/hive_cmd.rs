//! `guestwall hive ...`: read hive files.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use guestwall_regf::{self as regf, report, ExportOptions, Hive, OpenOptions, RegEncoding};

/// Examples and exit codes of `guestwall hive --help`.
pub const AFTER_HELP: &str = "\
Examples:
  guestwall hive info SYSTEM                  header, dirty state, logs found and applied, counts
  guestwall hive ls SYSTEM                    the root key's subkeys and values
  guestwall hive ls SYSTEM 'ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy'
  guestwall hive get SYSTEM Select Current    one value, printed like hivexget
  guestwall hive export SYSTEM 'ControlSet001\\Services\\MpsSvc' > mpssvc.reg
  guestwall hive dump SYSTEM > system.jsonl

A dirty hive is recovered in memory from the logs beside it (--no-logs: the primary alone);
nothing is ever written.

Exit codes: 0 done, 2 unreadable or corrupt hive, or a key or value not found.";

/// Subcommands of `guestwall hive`.
#[derive(Subcommand)]
pub enum HiveCommand {
    /// Header facts, dirty state, logs found and applied, and counts.
    Info {
        #[command(flatten)]
        open: OpenArgs,
    },
    /// List a key's subkeys and values.
    Ls {
        #[command(flatten)]
        open: OpenArgs,
        /// Key path relative to the hive's root, with `\` between names. Without it: the
        /// root key.
        key: Option<String>,
    },
    /// Print a value's data, or every value of a key.
    Get {
        #[command(flatten)]
        open: OpenArgs,
        /// Key path relative to the hive's root.
        key: String,
        /// Value name; `@` for the default value. Without it, all values are printed.
        value: Option<String>,
    },
    /// Export a key and its subtree as a .reg file, as regedit writes it.
    Export {
        #[command(flatten)]
        open: OpenArgs,
        /// Key path relative to the hive's root (default: the whole hive).
        #[arg(default_value = "")]
        key: String,
        /// Write UTF-8 instead of UTF-16LE with a byte order mark.
        #[arg(long)]
        utf8: bool,
        /// Registry path the hive's root is shown under (default: from the file name, e.g.
        /// HKEY_LOCAL_MACHINE\SYSTEM).
        #[arg(long)]
        prefix: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Dump keys and values as JSON Lines, one record per key and per value.
    Dump {
        #[command(flatten)]
        open: OpenArgs,
        /// Key path relative to the hive's root (default: the whole hive).
        #[arg(default_value = "")]
        key: String,
    },
}

/// How to open the hive.
#[derive(Args)]
pub struct OpenArgs {
    /// The hive file, or a hive inside a disk image: `IMAGE::Windows/System32/config/SOFTWARE`
    /// (or `IMAGE::partition N::PATH`, the form guestwall prints), read without mounting.
    pub hive: PathBuf,
    /// Read the primary file alone, even if it is dirty and logs lie beside it.
    #[arg(long)]
    pub no_logs: bool,
}

impl OpenArgs {
    /// Opens the hive and prints its warnings.
    pub fn open(&self) -> Result<Hive> {
        let opts = OpenOptions {
            replay_logs: !self.no_logs,
        };
        let hive = match self.in_image()? {
            Some(src) => Hive::open_source(&src, &opts),
            None => Hive::open_with(&self.hive, &opts),
        }
        .with_context(|| format!("cannot read hive {}", self.hive.display()))?;
        for w in hive.warnings() {
            crate::warn(&format!("{}: {w}", self.hive.display()));
        }
        Ok(hive)
    }
}

impl OpenArgs {
    /// The hive inside a disk image that `IMAGE::PATH` names, when the argument is that (and
    /// no file of that name exists).
    fn in_image(&self) -> Result<Option<guestwall_ingest::image::ImageHive>> {
        let arg = self.hive.to_string_lossy();
        if self.hive.exists() {
            return Ok(None);
        }
        let Some((image, partition, inner)) = guestwall_ingest::image::split_image_path(&arg)
        else {
            return Ok(None);
        };
        let target = guestwall_ingest::locate_with(&image, None, partition)?;
        let Some(img) = target.image else {
            anyhow::bail!(
                "{}: not a disk image, so `{arg}` names no file inside one",
                image.display()
            );
        };
        Ok(Some(guestwall_ingest::image::open_file(&img, &inner)?))
    }

    /// The hive's file name (inside the image, for `IMAGE::PATH`).
    fn file_name(&self) -> String {
        let arg = self.hive.to_string_lossy();
        let inner = match guestwall_ingest::image::split_image_path(&arg) {
            Some((_, _, inner)) if !self.hive.exists() => inner,
            _ => arg.into_owned(),
        };
        inner
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// Runs a `hive` subcommand.
pub fn run(cmd: HiveCommand, out: &mut dyn Write) -> Result<u8> {
    match cmd {
        HiveCommand::Info { open } => {
            let hive = open.open()?;
            report::write_info(&hive, out)?;
        }
        HiveCommand::Ls { open, key } => {
            let hive = open.open()?;
            report::write_ls(&hive, key.as_deref().unwrap_or(""), out)?;
        }
        HiveCommand::Get { open, key, value } => {
            let hive = open.open()?;
            report::write_get(&hive, &key, value.as_deref(), out)?;
        }
        HiveCommand::Export {
            open,
            key,
            utf8,
            prefix,
            output,
        } => {
            let hive = open.open()?;
            let root_prefix =
                prefix.unwrap_or_else(|| regf::default_root_prefix(&open.file_name()));
            let opts = ExportOptions {
                root_prefix,
                encoding: if utf8 {
                    RegEncoding::Utf8
                } else {
                    RegEncoding::Utf16
                },
            };
            match output {
                Some(path) => {
                    let f = File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    regf::export_reg(&hive, &key, &opts, f)?;
                }
                None => regf::export_reg(&hive, &key, &opts, out)?,
            }
        }
        HiveCommand::Dump { open, key } => {
            let hive = open.open()?;
            regf::dump_jsonl(&hive, &key, out)?;
        }
    }
    Ok(0)
}
