//! The `guestwall` command line: argument parsing, dispatch, exit codes and error output.
//! Every subcommand calls a library function that writes to an `impl Write`; no format logic
//! lives here.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod diagnose_cmd;
mod hive_cmd;
mod reg_cmd;
mod repair_cmd;

/// Finds out why a Windows guest refuses inbound Remote Desktop, from its offline disk.
#[derive(Parser)]
#[command(name = "guestwall", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per profile, does inbound RDP get through, and if not, why (exit 0 reachable, 1 not).
    Diagnose(diagnose_cmd::DiagnoseArgs),
    /// Make inbound RDP reachable: the smallest change, backup first, atomic write, verified,
    /// diagnosed again (exit 0 reachable afterwards, 1 not).
    Fix(repair_cmd::FixArgs),
    /// Restore the hives from guestwall's latest backup.
    Undo(repair_cmd::UndoArgs),
    /// Print the fix as commands: netsh for the serial console (default), PowerShell, or a
    /// reg.exe batch file for a Windows rescue VM.
    Script(repair_cmd::ScriptArgs),
    /// Run the article's `netsh advfirewall` commands against an offline SYSTEM hive.
    Netsh(repair_cmd::NetshArgs),
    /// Read registry hive files.
    #[command(subcommand)]
    Hive(hive_cmd::HiveCommand),
    /// reg.exe on offline hives: add, delete, query, import, export (backup first, atomic
    /// write, verification).
    Reg(reg_cmd::RegArgs),
    /// Build a sample SYSTEM hive and run guestwall on it (no Windows disk needed).
    Demo(demo::DemoArgs),
}

/// Exit code for bad input: unreadable, corrupt or missing files, keys and values.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Diagnose(args) => diagnose_cmd::run(args, &mut out),
        Command::Fix(args) => repair_cmd::fix(args, &mut out),
        Command::Undo(args) => repair_cmd::undo(args, &mut out),
        Command::Script(args) => repair_cmd::script(args, &mut out),
        Command::Netsh(args) => repair_cmd::netsh(args, &mut out),
        Command::Hive(cmd) => hive_cmd::run(cmd, &mut out),
        Command::Reg(args) => reg_cmd::run(args, &mut out),
        Command::Demo(args) => demo::run(args, &mut out),
    };
    let result = result.and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guestwall: error: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// A reader that went away (`guestwall hive dump X | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints warnings to stderr, prefixed.
fn warn(msg: &str) {
    eprintln!("guestwall: warning: {msg}");
}

/// The command line as typed (arguments with spaces quoted), for the operation history.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
                format!("\"{}\"", a.replace('"', "\\\""))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Said once when another process holds a hive's lock.
fn lock_wait_note(path: &std::path::Path, wait: std::time::Duration) {
    eprintln!(
        "guestwall: another process is writing {}; waiting up to {} s for it to finish",
        path.display(),
        wait.as_secs_f64().round()
    );
}

/// How the writing commands save: backup, lock, history.
fn save_options(allow_dirty: bool, dry_run: bool) -> guestwall_regf::save::SaveOptions {
    guestwall_regf::save::SaveOptions {
        allow_dirty,
        dry_run,
        lock_wait: None,
        on_lock_wait: Some(lock_wait_note),
        command: Some(command_line()),
    }
}
