//! The `guestwall` command line: argument parsing, dispatch, exit codes and error output.
//! Every subcommand calls a library function that writes to an `impl Write`; no format logic
//! lives here.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod collect_cmd;
mod colour;
mod demo;
mod diagnose_cmd;
mod hive_cmd;
mod probe_cmd;
mod reg_cmd;
mod repair_cmd;
mod scan_cmd;
mod slow;

use slow::SlowNotice;

/// `guestwall --version`: the package version and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GUESTWALL_COMMIT"),
    ")"
);

/// Finds out why a Windows guest refuses inbound Remote Desktop, from its offline disk, and
/// repairs it safely.
#[derive(Parser)]
#[command(
    name = "guestwall",
    version = VERSION,
    about,
    long_about = None,
    after_help = "Start with `guestwall demo` (no Windows disk needed), then `guestwall diagnose /mnt/win`.\n\nExit codes: 0 success (RDP reachable), 1 RDP not reachable (or nothing to undo, or no rule matched), 2 bad input or a refused write (nothing written)."
)]
struct Cli {
    /// Colour verdicts: `auto` on a terminal unless NO_COLOR is set, `always`, `never`.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = colour::When::Auto)]
    color: colour::When,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per profile, does inbound RDP get through, and if not, why.
    #[command(after_help = diagnose_cmd::AFTER_HELP)]
    Diagnose(diagnose_cmd::DiagnoseArgs),
    /// Diagnose many targets in parallel: one record per target (JSON Lines with --json), a
    /// summary by cause.
    #[command(after_help = scan_cmd::AFTER_HELP)]
    Scan(scan_cmd::ScanArgs),
    /// From the client side: does TCP reach the RDP port, does an RDP server answer, which
    /// security it chooses, does TLS complete.
    #[command(after_help = probe_cmd::AFTER_HELP)]
    Probe(probe_cmd::ProbeArgs),
    /// Make inbound RDP reachable: the smallest change, backup first, atomic write, verified,
    /// diagnosed again.
    #[command(after_help = repair_cmd::FIX_HELP)]
    Fix(repair_cmd::FixArgs),
    /// Revert the latest guestwall change of the hives (fix, netsh or reg), as a whole.
    #[command(after_help = repair_cmd::UNDO_HELP)]
    Undo(repair_cmd::UndoArgs),
    /// Print the fix as commands: netsh for the serial console (default), PowerShell, or a
    /// reg.exe batch file for a Windows rescue VM.
    #[command(after_help = repair_cmd::SCRIPT_HELP)]
    Script(repair_cmd::ScriptArgs),
    /// Run the article's `netsh advfirewall` commands against an offline SYSTEM hive.
    #[command(after_help = repair_cmd::NETSH_HELP)]
    Netsh(repair_cmd::NetshArgs),
    /// Read registry hive files.
    #[command(subcommand, after_help = hive_cmd::AFTER_HELP)]
    Hive(hive_cmd::HiveCommand),
    /// reg.exe on offline hives: add, delete, query, import, export (backup first, atomic
    /// write, verification). `guestwall reg /?` shows reg's own help.
    #[command(after_help = reg_cmd::AFTER_HELP)]
    Reg(reg_cmd::RegArgs),
    /// Print the collector to run on the VM (PowerShell, or --cmd for the serial console);
    /// its output is what `diagnose`, `script` and `fix --dry-run` take as a capture.
    #[command(after_help = collect_cmd::AFTER_HELP)]
    Collect(collect_cmd::CollectArgs),
    /// Print a shell completion script: bash, zsh, fish, powershell (or elvish).
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a folder.
    #[command(
        after_help = "Examples:\n  guestwall man | man -l -\n  guestwall man --dir /usr/local/share/man/man1"
    )]
    Man {
        /// Write guestwall.1 and guestwall-COMMAND.1 into DIR instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Build a sample SYSTEM hive and run guestwall on it (no Windows disk needed).
    #[command(after_help = demo::AFTER_HELP)]
    Demo(demo::DemoArgs),
}

/// Where each shell's completion script goes.
const COMPLETIONS_HELP: &str = "\
Examples:
  guestwall completions bash > /etc/bash_completion.d/guestwall
  guestwall completions zsh > \"${fpath[1]}/_guestwall\"
  guestwall completions fish > ~/.config/fish/completions/guestwall.fish
  guestwall completions powershell >> $PROFILE";

/// Writes the completion script of `shell`.
fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<u8> {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "guestwall", out);
    Ok(0)
}

/// Writes the manual page, or the pages of every command into `dir`.
fn man(dir: Option<std::path::PathBuf>, out: &mut dyn Write) -> anyhow::Result<u8> {
    use anyhow::Context;
    use clap::CommandFactory;
    let cmd = Cli::command();
    match dir {
        None => clap_mangen::Man::new(cmd).render(out)?,
        Some(d) => {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            clap_mangen::generate_to(cmd, &d)
                .with_context(|| format!("cannot write into {}", d.display()))?;
            writeln!(out, "manual pages written to {}", d.display())?;
        }
    }
    Ok(0)
}

/// Exit code for bad input: unreadable, corrupt or missing files, keys and values, and
/// refused writes.
const EXIT_BAD_INPUT: u8 = 2;

/// Ctrl-C and SIGTERM end the process as usual, except during a save, where they only ask it
/// to stop at its next safe point (see `guestwall_regf::save::InterruptFlags`).
fn handle_signals() {
    let f = guestwall_regf::save::interrupt_flags();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registration fails only for forbidden signals; these are not.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, f.idle.clone());
        let _ = signal_hook::flag::register(sig, f.interrupted.clone());
    }
}

fn main() -> ExitCode {
    handle_signals();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let usage = !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
            // With --json, a usage error is a JSON document too.
            if usage && std::env::args().any(|a| a == "--json") {
                let doc = guestwall_diagnose::error_json(
                    e.render()
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or("usage error"),
                    EXIT_BAD_INPUT,
                );
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            e.exit()
        }
    };
    let json = match &cli.command {
        Command::Diagnose(a) => a.json,
        Command::Scan(a) => a.json,
        Command::Probe(a) => a.json,
        Command::Fix(a) => a.json(),
        Command::Undo(a) => a.json(),
        _ => false,
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Diagnose(args) => diagnose_cmd::run(args, cli.color, &mut out),
        Command::Scan(args) => scan_cmd::run(args, cli.color, &mut out),
        Command::Probe(args) => probe_cmd::run(args, cli.color, &mut out),
        Command::Fix(args) => repair_cmd::fix(args, &mut out),
        Command::Undo(args) => repair_cmd::undo(args, &mut out),
        Command::Script(args) => repair_cmd::script(args, &mut out),
        Command::Netsh(args) => repair_cmd::netsh(args, &mut out),
        Command::Hive(cmd) => hive_cmd::run(cmd, &mut out),
        Command::Reg(args) => reg_cmd::run(args, &mut out),
        Command::Collect(args) => collect_cmd::run(args, &mut out),
        Command::Demo(args) => demo::run(args, cli.color, &mut out),
        Command::Completions { shell } => completions(shell, &mut out),
        Command::Man { dir } => man(dir, &mut out),
    };
    // A reader that went away at the end keeps the command's exit code (the verdict).
    let result = result.and_then(|code| match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        r => r.map(|()| code).map_err(Into::into),
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let text = error_text(&e);
            if json {
                let doc = guestwall_diagnose::error_json(&text, EXIT_BAD_INPUT);
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_default()
                );
            }
            eprintln!("guestwall: error: {text}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// The error and its causes as one line, each path or message said once: a level whose text
/// another level already contains is left out, and so is a context such as `cannot fix X`
/// when a later level names X.
fn error_text(e: &anyhow::Error) -> String {
    let levels: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        let later = &levels[i + 1..];
        let said = kept.iter().any(|k| k.contains(l.as_str()))
            || later.iter().any(|x| x.contains(l.as_str()));
        let path_said_later = l
            .rsplit(' ')
            .next()
            .filter(|w| w.contains('/') || w.contains('\\'))
            .is_some_and(|w| later.iter().any(|x| x.contains(w)));
        if !said && !path_said_later && !l.is_empty() {
            kept.push(l);
        }
    }
    kept.join(": ")
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

/// The lock wait `GUESTWALL_LOCK_WAIT` asks for; a value that is no number of seconds is
/// said, and the default used.
fn lock_wait() -> Option<std::time::Duration> {
    let v = std::env::var("GUESTWALL_LOCK_WAIT").ok()?;
    match v.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Some(std::time::Duration::from_secs_f64(s)),
        _ => {
            warn(&format!(
                "GUESTWALL_LOCK_WAIT={v:?} is not a number of seconds; waiting the default 30 s"
            ));
            Some(std::time::Duration::from_secs(30))
        }
    }
}

/// How the writing commands save: backup, lock, history.
fn save_options(allow_dirty: bool, dry_run: bool) -> guestwall_regf::save::SaveOptions {
    guestwall_regf::save::SaveOptions {
        allow_dirty,
        dry_run,
        lock_wait: lock_wait(),
        on_lock_wait: Some(lock_wait_note),
        command: Some(command_line()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_text_says_each_thing_once() {
        let e = anyhow::anyhow!("refusing to write /x/SYSTEM: read-only")
            .context("/x/SYSTEM")
            .context("cannot fix /x/SYSTEM");
        assert_eq!(
            super::error_text(&e),
            "refusing to write /x/SYSTEM: read-only"
        );
        let e = anyhow::anyhow!("not a registry hive").context("/x/junk");
        assert_eq!(super::error_text(&e), "/x/junk: not a registry hive");
    }
}
