//! `guestwall demo`: builds a sample hive so that a fresh clone can run the main job.

use std::io::Write;

use anyhow::Result;
use clap::Args;

/// Arguments of `guestwall demo`.
#[derive(Args)]
pub struct DemoArgs {}

/// Runs the demo.
pub fn run(_args: DemoArgs, out: &mut dyn Write) -> Result<u8> {
    writeln!(out, "demo: not yet")?;
    Ok(0)
}
