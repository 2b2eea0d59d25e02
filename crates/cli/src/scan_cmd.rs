//! `guestwall scan`: many targets diagnosed in parallel (the work is `guestwall_scan::scan`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

/// Examples and exit codes shown by `guestwall scan --help`.
pub const AFTER_HELP: &str = "\
Examples:
  guestwall scan disks/*.vhdx /mnt/vm1 hives/SYSTEM --json > fleet.jsonl
  find /fleet -name SYSTEM | guestwall scan --from - --sort --json
  guestwall scan -j 2 --from targets.txt       one line of text per target, then the summary

Each target is what `guestwall diagnose` takes: a SYSTEM hive, a Windows folder, a disk image
or block device, or a capture of a running machine (`guestwall collect`), told by content. With --json each record is the `diagnose --json` document on one line
(schema 1, docs/json.md) plus `elapsed_ms`; a target that cannot be read is an error record
({\"schema\", \"target\", \"error\": {\"message\"}, \"exit_code\": 2, \"elapsed_ms\"}), and the scan
goes on. Records come as targets finish; --sort writes them in the targets' sorted order.
The summary table (counts, targets per cause) and the progress bar go to standard error, and
only when it is a terminal.

Exit codes: 0 every target reachable, 1 any not reachable (or only for some clients),
2 any target could not be read (or no targets).";

/// Arguments of `guestwall scan`.
#[derive(Args)]
pub struct ScanArgs {
    /// Targets: SYSTEM hives, Windows folders, disk images, block devices, captures.
    targets: Vec<PathBuf>,
    /// Also read targets from FILE, one per line (`-`: standard input; blank lines and lines
    /// starting with # are skipped).
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Targets diagnosed at once (default: the number of CPUs).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Write the records in the targets' sorted order instead of as they finish.
    #[arg(long)]
    sort: bool,
    /// The TCP port RDP listens on, when a hive does not say (as `diagnose --port`).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// JSON Lines: one `diagnose --json` document per line, with the target and timing.
    #[arg(long)]
    pub json: bool,
}

/// Runs `guestwall scan`.
pub fn run(a: ScanArgs, colour: crate::colour::When, out: &mut dyn Write) -> Result<u8> {
    let targets = guestwall_scan::gather(&a.targets, a.from.as_deref())?;
    if targets.is_empty() {
        bail!("no targets: name them, or list them with --from FILE (- for standard input)");
    }
    let palette = colour.stdout();
    let opts = guestwall_scan::ScanOptions {
        jobs: a
            .jobs
            .map(usize::from)
            .unwrap_or_else(|| guestwall_scan::ScanOptions::default().jobs),
        sort: a.sort,
        port: a.port,
        format: if a.json {
            guestwall_scan::Format::JsonLines
        } else {
            guestwall_scan::Format::Text
        },
        palette,
    };
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let b = indicatif::ProgressBar::new(targets.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} targets, {elapsed} ({msg})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (mut not_reachable, mut some, mut unreadable) = (0u64, 0u64, 0u64);
    // Records going to the same terminal are written with the bar out of the way.
    let mut out = Suspended {
        bar: &bar,
        inner: out,
    };
    let sum = guestwall_scan::scan(&targets, &opts, &mut out, &mut |o| {
        // As the summary counts them: unreadable targets apart from the ones not reachable.
        match o.status {
            guestwall_scan::Status::Reachable => {}
            guestwall_scan::Status::Conditional => some += 1,
            guestwall_scan::Status::Blocked => not_reachable += 1,
            guestwall_scan::Status::Unreadable => unreadable += 1,
        }
        let mut msg = format!("{not_reachable} not reachable");
        if some > 0 {
            msg.push_str(&format!(", {some} only for some clients"));
        }
        if unreadable > 0 {
            msg.push_str(&format!(", {unreadable} could not be read"));
        }
        bar.set_message(msg);
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if tty {
        let palette = colour.stderr();
        let mut err = std::io::stderr().lock();
        sum.write_table(&palette, &mut err)?;
    }
    Ok(sum.exit_code())
}

/// Writes through `inner` with the progress bar cleared for the write and drawn again after.
struct Suspended<'a> {
    bar: &'a indicatif::ProgressBar,
    inner: &'a mut dyn Write,
}

impl Write for Suspended<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.flush())
    }
}
