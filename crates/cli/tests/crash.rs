//! Crash safety: a save killed at any moment leaves the old hive or the new one under the
//! target's name, never a torn file, and a complete backup whenever a backup exists.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use guestwall_regf::{Hive, OpenOptions};

const KEY: &str =
    "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile";

fn add_args(hive: &str) -> Vec<String> {
    [
        "reg",
        "--hive",
        hive,
        "add",
        KEY,
        "/v",
        "Marker",
        "/t",
        "REG_BINARY",
        "/d",
        &"ab".repeat(30_000),
        "/f",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Checks the invariants after a run that may have been killed. Returns true when the edit
/// made it.
fn check(dir: &Path, target: &Path, original: &[u8]) -> bool {
    let now = std::fs::read(target).expect("the target must always exist");
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    for e in std::fs::read_dir(dir).unwrap() {
        let f = e.unwrap().file_name().to_string_lossy().into_owned();
        if f.starts_with(&format!("{name}.guestwall-backup-")) {
            assert!(
                std::fs::read(dir.join(&f)).unwrap() == original,
                "backup {f} is not the original"
            );
        } else if f != name && f != ".guestwall-history" {
            // Only our own temporary files may be left over by a kill.
            assert!(
                f.starts_with(&format!(".{name}.guestwall-")),
                "unexpected file {f}"
            );
        }
    }
    if now == original {
        return false;
    }
    let h = Hive::open_with(target, &OpenOptions { replay_logs: false })
        .expect("a changed target must be a whole hive");
    assert!(!h.base_block().is_dirty());
    h.check_all().unwrap();
    let v = h
        .key(KEY)
        .unwrap()
        .value("Marker")
        .unwrap()
        .expect("a changed target must hold the edit");
    assert_eq!(v.data().unwrap().len(), 30_000);
    true
}

fn fresh(dir: &Path, src: &[u8]) -> std::path::PathBuf {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let p = dir.join("SYSTEM");
    std::fs::write(&p, src).unwrap();
    p
}

#[test]
fn a_crash_at_each_step_leaves_old_or_new_and_the_backup_whole() {
    let t = TempDir::new("faults");
    let src = guestwall_samples::broken_rdp_system().unwrap();
    for (point, changed) in [
        ("after-backup", false),
        ("after-temp-write", false),
        ("before-rename", false),
        ("after-rename", true),
    ] {
        let target = fresh(&t.0, &src);
        let o = Command::new(env!("CARGO_BIN_EXE_guestwall"))
            .args(add_args(target.to_str().unwrap()))
            .env("GUESTWALL_FAULT_AT", point)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !o.status.success(),
            "{point}: the fault point was not reached"
        );
        assert_eq!(check(&t.0, &target, &src), changed, "{point}");
        // The next save cleans up after the crash and succeeds (or has nothing to do).
        let o = Command::new(env!("CARGO_BIN_EXE_guestwall"))
            .args(add_args(target.to_str().unwrap()))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{point}: {}", stderr(&o));
        let h = Hive::open(&target).unwrap();
        assert!(
            h.key(KEY).unwrap().value("Marker").unwrap().is_some(),
            "{point}"
        );
        if !changed {
            assert!(
                !t.files()
                    .iter()
                    .any(|f| f.starts_with('.') && f != ".guestwall-history"),
                "{point}: temporary files left: {:?}",
                t.files()
            );
        }
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Kills `runs` saves at random moments and checks each outcome; returns (old, new).
///
/// The kill window is [0, 1.1 × the time of an uninterrupted save], measured first. Saves that
/// are killed run beside other I/O (the fresh copy just written still has to reach the disk
/// when the backup is fsynced), so they can take longer than the measured one. When the
/// window turns out to end before any save completed (or to start after every save
/// completed), up to `runs` more kills are made with the window moved later (or earlier),
/// so that the kills cover the whole save. Every run, in either phase, must leave the old or
/// the new hive and an intact backup.
fn kill_at_random(src: &[u8], runs: usize, tag: &str) -> (usize, usize) {
    let t = TempDir::new(tag);
    // How long an uninterrupted save takes on this machine.
    let target = fresh(&t.0, src);
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_guestwall"))
        .args(add_args(target.to_str().unwrap()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let full = start.elapsed().as_micros() as u64;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ full);
    let (mut old, mut new) = (0, 0);
    let mut kill_once = |from: u64, to: u64| {
        let target = fresh(&t.0, src);
        let mut child = Command::new(env!("CARGO_BIN_EXE_guestwall"))
            .args(add_args(target.to_str().unwrap()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(from + rng.below(to - from)));
        let _ = child.kill();
        let _ = child.wait();
        check(&t.0, &target, src)
    };
    for _ in 0..runs {
        if kill_once(0, full * 11 / 10) {
            new += 1;
        } else {
            old += 1;
        }
    }
    let mut window = (0, full * 11 / 10);
    for _ in 0..runs {
        if new > 0 && old > 0 {
            break;
        }
        window = if new == 0 {
            (window.1 / 2, window.1 * 2)
        } else {
            (0, window.1 / 2)
        };
        if kill_once(window.0, window.1.max(window.0 + 1)) {
            new += 1;
        } else {
            old += 1;
        }
    }
    (old, new)
}

#[test]
fn killed_at_random_moments_the_sample_is_old_or_new() {
    let src = guestwall_samples::broken_rdp_system().unwrap();
    let (old, new) = kill_at_random(&src, 150, "kill-sample");
    eprintln!("sample: {old} runs left the old hive, {new} the new one");
    assert!((150..=300).contains(&(old + new)));
}

#[test]
fn killed_at_random_moments_a_12mb_system_hive_is_old_or_new() {
    let Some(c) = corpus() else { return };
    let src = std::fs::read(c.join("regipy/SYSTEM")).unwrap();
    let (old, new) = kill_at_random(&src, 40, "kill-system");
    eprintln!("SYSTEM: {old} runs left the old hive, {new} the new one");
    assert!((40..=80).contains(&(old + new)));
    // Kills spread over the whole save: both outcomes occur.
    assert!(old > 0 && new > 0, "old {old}, new {new}");
}
