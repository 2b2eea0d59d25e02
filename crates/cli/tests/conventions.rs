//! The conventions of the command line: completions, the manual page, `--version` with the
//! commit, and colour only where asked for (a terminal without NO_COLOR, or `--color always`).

mod common;

use common::*;
use std::process::{Command, Stdio};

const ESC: u8 = 0x1b;

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef guestwall"),
        ("fish", "complete -c guestwall"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let o = gw(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let text = stdout(&o);
        assert!(text.contains(marker), "{shell}: no {marker:?}");
        for sub in ["diagnose", "scan", "probe", "fix", "netsh", "completions"] {
            assert!(text.contains(sub), "{shell}: {sub} missing");
        }
        assert!(text.contains("color"), "{shell}");
    }
    let o = gw(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bash_completion_completes_subcommands() {
    if !std::path::Path::new("/bin/bash").exists() {
        notice("skipping the bash completion run: no /bin/bash");
        return;
    }
    let t = TempDir::new("conv-bash");
    let script = t.0.join("guestwall.bash");
    std::fs::write(&script, gw(&["completions", "bash"]).stdout).unwrap();
    // Ask the completion function what follows `guestwall sc`.
    let run = format!(
        "source {}; COMP_WORDS=(guestwall sc); COMP_CWORD=1; COMP_LINE='guestwall sc'; COMP_POINT=12; \
         _guestwall guestwall sc guestwall; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let o = Command::new("/bin/bash")
        .args(["-c", &run])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let words = stdout(&o);
    assert!(words.lines().any(|w| w == "scan"), "{words} {}", stderr(&o));
    assert!(words.lines().any(|w| w == "script"), "{words}");
}

#[test]
fn manual_page() {
    let o = gw(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let page = stdout(&o);
    assert!(
        page.contains(".TH guestwall 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    for s in ["diagnose", "scan", "probe", "completions", "\\-\\-color"] {
        assert!(page.contains(s), "{s} missing from the manual page");
    }
    let t = TempDir::new("conv-man");
    let dir = t.0.join("man1");
    let o = gw(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [
        "guestwall.1",
        "guestwall-scan.1",
        "guestwall-probe.1",
        "guestwall-hive-dump.1",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.contains(".TH"), "{f}");
    }
    // man(1) reads it, when it is installed.
    if std::path::Path::new("/usr/bin/man").exists() {
        let o = Command::new("/usr/bin/man")
            .arg("-l")
            .arg(dir.join("guestwall-probe.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if o.status.success() {
            assert!(stdout(&o).contains("--timeout"), "{}", stdout(&o));
        }
    }
}

#[test]
fn version_names_the_commit() {
    let o = gw(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let v = stdout(&o);
    assert!(
        v.starts_with(&format!("guestwall {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(h) = head {
        if h.status.success() {
            let h = String::from_utf8_lossy(&h.stdout).trim().to_string();
            // The binary is rebuilt when HEAD moves (build.rs watches it).
            assert!(v.contains(&format!("(commit {h})")), "{v} vs {h}");
        }
    }
}

fn strip_ansi(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == ESC && b.get(i + 1) == Some(&b'[') {
            i += 2;
            while i < b.len() && !b[i].is_ascii_alphabetic() {
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn gw_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guestwall"));
    c.args(args).stdin(Stdio::null()).env_remove("NO_COLOR");
    c.env_remove("CLICOLOR_FORCE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn colour_only_when_asked_and_never_changes_the_text() {
    let t = TempDir::new("conv-colour");
    let broken = sample(&t.0);
    let plain = gw_env(&["diagnose", &broken], &[]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(!plain.stdout.contains(&ESC), "a pipe got escape codes");
    let never = gw_env(&["--color", "never", "diagnose", &broken], &[]);
    assert_eq!(never.stdout, plain.stdout);
    // NO_COLOR with auto: none; an explicit always wins over NO_COLOR.
    let no_color = gw_env(&["diagnose", &broken], &[("NO_COLOR", "1")]);
    assert_eq!(no_color.stdout, plain.stdout);
    let always = gw_env(
        &["diagnose", "--color", "always", &broken],
        &[("NO_COLOR", "1")],
    );
    assert_eq!(always.status.code(), Some(1));
    let text = stdout(&always);
    assert!(text.contains("\u{1b}[31mBLOCKED"), "{text:?}");
    // The escape codes are all that differs: the words and their wrapping are the same.
    assert_eq!(strip_ansi(&always.stdout), plain.stdout);
    // JSON is never coloured.
    let json = gw_env(&["diagnose", "--json", "--color", "always", &broken], &[]);
    assert!(!json.stdout.contains(&ESC));
    // Healthy: green.
    let healthy = t.0.join("healthy");
    std::fs::write(&healthy, guestwall_samples::healthy_rdp_system().unwrap()).unwrap();
    let o = gw_env(
        &["diagnose", "--color", "always", healthy.to_str().unwrap()],
        &[],
    );
    assert!(stdout(&o).contains("\u{1b}[32mALLOWED"), "{}", stdout(&o));
}

/// Runs guestwall under a pseudo-terminal (util-linux `script`); returns what the terminal
/// showed.
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> Option<String> {
    if !std::path::Path::new("/usr/bin/script").exists() {
        assert!(!in_ci(), "CI=true but util-linux's script is missing");
        notice("skipping the terminal tests: no /usr/bin/script");
        return None;
    }
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_guestwall"));
    let mut c = Command::new("/usr/bin/script");
    c.args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm-256color");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn a_terminal_gets_colour_unless_no_color() {
    let t = TempDir::new("conv-tty");
    let broken = sample(&t.0);
    let Some(tty) = on_a_terminal(&format!("diagnose {broken}"), &[]) else {
        return;
    };
    assert!(tty.contains("\u{1b}[31mBLOCKED"), "{tty:?}");
    let tty = on_a_terminal(&format!("diagnose {broken}"), &[("NO_COLOR", "1")]).unwrap();
    assert!(!tty.contains('\u{1b}'), "{tty:?}");
    assert!(tty.contains("BLOCKED"));
    let tty = on_a_terminal(&format!("--color never diagnose {broken}"), &[]).unwrap();
    assert!(!tty.contains('\u{1b}'), "{tty:?}");
}

#[test]
fn scan_summary_on_a_terminal_only() {
    let t = TempDir::new("conv-scan-tty");
    let broken = sample(&t.0);
    let healthy = t.0.join("healthy");
    std::fs::write(&healthy, guestwall_samples::healthy_rdp_system().unwrap()).unwrap();
    let args = format!("scan --json --color never {broken} {}", healthy.display());
    let Some(tty) = on_a_terminal(&args, &[]) else {
        return;
    };
    assert!(tty.contains("Scanned 2 targets"), "{tty:?}");
    assert!(
        tty.contains("reachable") && tty.contains("rdp-rule-disabled"),
        "{tty:?}"
    );
    // Piped: records only.
    let o = gw(&["scan", "--json", &broken, healthy.to_str().unwrap()]);
    assert!(!stderr(&o).contains("Scanned"));
    assert_eq!(stdout(&o).lines().count(), 2);
}
