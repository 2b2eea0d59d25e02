//! Regression tests for issue 8 ("Never lose a change, never claim a false success"): one test
//! (or a few) per finding, named after it. Each one failed before the fix.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{corpus, gw, gw_stdin, in_ci, notice, sample, stderr, stdout, TempDir};
use guestwall_regf::build::{build_hive, reg_sz, BuildOptions, KeySpec};
use guestwall_regf::data::{REG_DWORD, REG_SZ};

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Tests that need root (chown, setpriv, mount) skip with a notice when not root.
fn need_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    notice(&format!("not running as root; skipping {what}"));
    false
}

fn reachable(system: &str) -> bool {
    gw(&["diagnose", system]).status.code() == Some(0)
}

fn read(p: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn gw_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guestwall"));
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// A tmpfs of `size` mounted at `dir` for the life of the value (root only).
struct Mount(PathBuf);
impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !in_ci(),
                "CI=true but a tmpfs cannot be mounted at {}",
                dir.display()
            );
            notice("cannot mount a tmpfs; skipping this test");
            return None;
        }
        Some(Mount(dir.to_path_buf()))
    }
    fn read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A SOFTWARE hive whose Group Policy store blocks all inbound on the Public profile.
fn gp_software(dir: &Path) -> String {
    let mut root = KeySpec::new("");
    root.path_mut("Microsoft\\Windows NT\\CurrentVersion")
        .push_value("CurrentMajorVersionNumber", REG_DWORD, 10u32.to_le_bytes())
        .push_value("CurrentMinorVersionNumber", REG_DWORD, 0u32.to_le_bytes())
        .push_value("CurrentBuildNumber", REG_SZ, reg_sz("17763"));
    root.path_mut("Policies\\Microsoft\\WindowsFirewall\\PublicProfile")
        .push_value("DoNotAllowExceptions", REG_DWORD, 1u32.to_le_bytes());
    let p = dir.join("SOFTWARE");
    std::fs::write(&p, build_hive(&root, &BuildOptions::default()).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

// ---- 1. Symlinked hive ----------------------------------------------------------------------

#[test]
fn finding_01_a_symlinked_hive_is_fixed_where_it_lives_and_undone_through_the_link() {
    let t = TempDir::new("symlink");
    let real_dir = t.0.join("real");
    let work = t.0.join("work");
    std::fs::create_dir_all(&real_dir).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let real = sample(&real_dir);
    let original = read(&real);
    let link = work.join("SYSTEM");
    std::os::unix::fs::symlink("../real/SYSTEM", &link).unwrap();
    let link_s = link.to_str().unwrap();

    let o = gw(&["fix", link_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The link is still a link, to the real file, which now holds the fix.
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(read(&real) != original);
    assert!(reachable(&real));
    // The backup is a regular file beside the real hive; nothing was put beside the link.
    let backups: Vec<_> = std::fs::read_dir(&real_dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains(".guestwall-backup-")
        })
        .collect();
    assert_eq!(backups.len(), 1);
    assert!(backups[0].file_type().unwrap().is_file());
    assert!(
        read(backups[0].path()) == original,
        "{} differs",
        stringify!(backups[0].path())
    );
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        1,
        "only the link in work/"
    );

    // The other writing commands go through the link too.
    let o = gw(&[
        "reg",
        "--hive",
        link_s,
        "add",
        "ControlSet001\\Control",
        "/v",
        "X",
        "/t",
        "REG_DWORD",
        "/d",
        "7",
        "/f",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&gw(&["hive", "get", &real, "ControlSet001\\Control", "X"])),
        "7\n"
    );
    let o = gw(&[
        "netsh",
        "--system",
        link_s,
        "advfirewall",
        "set",
        "publicprofile",
        "state",
        "on",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // Undo through the link goes back step by step to the original bytes.
    for _ in 0..2 {
        let o = gw(&["undo", link_s]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert!(read(&real) == original, "{} differs", stringify!(&real));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let o = gw(&["undo", link_s]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "nothing left to undo: {}",
        stdout(&o)
    );
}

#[test]
fn finding_01_a_dangling_link_is_refused_and_nothing_is_written() {
    let t = TempDir::new("dangling");
    let link = t.0.join("SYSTEM");
    std::os::unix::fs::symlink("nowhere/SYSTEM", &link).unwrap();
    for args in [
        vec!["fix", link.to_str().unwrap()],
        vec!["reg", "--hive", link.to_str().unwrap(), "add", "A", "/f"],
    ] {
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(t.files(), ["SYSTEM"], "{args:?}");
    }
}

// ---- 2. Owner and mode --------------------------------------------------------------------

#[test]
fn finding_02_owner_group_and_mode_are_kept_by_fix_and_undo() {
    if !need_root("the owner test (chown)") {
        return;
    }
    let t = TempDir::new("owner");
    let sys = sample(&t.0);
    let nobody = 65534;
    std::os::unix::fs::chown(&sys, Some(nobody), Some(nobody)).unwrap();
    std::fs::set_permissions(&sys, std::fs::Permissions::from_mode(0o640)).unwrap();
    let check = |when: &str| {
        let m = std::fs::metadata(&sys).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (nobody, nobody, 0o640),
            "{when}"
        );
    };
    let o = gw(&["fix", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    check("after fix");
    let o = gw(&["undo", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    check("after undo");
}

#[test]
fn finding_02_a_hive_the_user_may_not_write_is_refused_before_anything_is_written() {
    if !need_root("the permission test (setpriv)") {
        return;
    }
    let t = TempDir::new("perm");
    std::fs::set_permissions(&t.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sys = sample(&t.0);
    std::os::unix::fs::chown(&sys, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&sys, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = read(&sys);
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_guestwall"))
        .args(["fix", &sys])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("may not be written"), "{}", stderr(&o));
    assert!(stderr(&o).contains("0444"), "{}", stderr(&o));
    assert_eq!(t.files(), ["SYSTEM"]);
    assert!(read(&sys) == before, "{} differs", stringify!(&sys));
    assert_eq!(std::fs::metadata(&sys).unwrap().mode() & 0o7777, 0o444);
}

#[test]
fn finding_02_and_06_a_read_only_file_system_is_refused_with_the_reason() {
    if !need_root("the read-only mount test") {
        return;
    }
    let t = TempDir::new("rofs");
    let Some(m) = Mount::tmpfs(&t.0.join("mnt"), "1m") else {
        return;
    };
    let sys = sample(&m.0);
    let before = read(&sys);
    m.read_only();
    for args in [
        vec!["fix", "--firewall-off", &sys],
        vec![
            "netsh",
            "--system",
            &sys,
            "advfirewall",
            "set",
            "allprofiles",
            "state",
            "off",
        ],
    ] {
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("read-only") && e.contains("ntfs-3g") && e.contains("hibernated"),
            "{e}"
        );
        // No claim that the firewall is now off: nothing was written.
        assert!(!e.contains("is now OFF") && !e.contains("is OFF"), "{e}");
    }
    assert!(read(&sys) == before, "{} differs", stringify!(&sys));
    assert_eq!(std::fs::read_dir(&m.0).unwrap().count(), 1);
}

// ---- 3. Two writers at once ------------------------------------------------------------------

#[test]
fn finding_03_twenty_concurrent_pairs_of_writers_keep_every_change() {
    let t = TempDir::new("concurrent");
    let sys = sample(&t.0);
    let add = |name: String| {
        Command::new(env!("CARGO_BIN_EXE_guestwall"))
            .args([
                "reg",
                "--hive",
                &sys,
                "add",
                "ControlSet001\\Control",
                "/v",
                &name,
                "/t",
                "REG_DWORD",
                "/d",
                "1",
                "/f",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    for i in 0..20 {
        let a = add(format!("A{i}"));
        let b = add(format!("B{i}"));
        for c in [a, b] {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "pair {i}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    for i in 0..20 {
        for v in [format!("A{i}"), format!("B{i}")] {
            let o = gw(&["hive", "get", &sys, "ControlSet001\\Control", &v]);
            assert_eq!(o.status.code(), Some(0), "{v} was lost");
        }
    }
    // No temporary file is left, and every save kept its own backup.
    let files = t.files();
    assert!(
        !files.iter().any(|f| f.contains("guestwall-new")),
        "{files:?}"
    );
    assert_eq!(
        files
            .iter()
            .filter(|f| f.contains("guestwall-backup"))
            .count(),
        40
    );
}

#[test]
fn finding_03_a_writer_waits_for_the_lock_with_a_message_then_fails_clearly() {
    let t = TempDir::new("lockwait");
    let sys = sample(&t.0);
    let before = read(&sys);
    // Another process holds the lock (util-linux flock takes the same flock(2) lock).
    let mut holder = Command::new("flock")
        .args([sys.as_str(), "sleep", "5"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = gw_env(&["fix", &sys], &[("GUESTWALL_LOCK_WAIT", "1")]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("waiting up to 1 s"), "{e}");
    assert!(e.contains("another process is writing"), "{e}");
    assert!(read(&sys) == before, "{} differs", stringify!(&sys));
    assert_eq!(t.files(), ["SYSTEM"]);
}

#[test]
fn finding_03_stale_temp_cleanup_removes_only_temps_no_live_process_owns() {
    let t = TempDir::new("staletemp");
    let sys = sample(&t.0);
    let mut live = Command::new("sleep").arg("30").spawn().unwrap();
    let live_tmp = t.0.join(format!(".SYSTEM.guestwall-new-{}", live.id()));
    let dead_tmp = t.0.join(".SYSTEM.guestwall-new-4194303"); // above any pid_max default
    std::fs::write(&live_tmp, b"live").unwrap();
    std::fs::write(&dead_tmp, b"dead").unwrap();
    let o = gw(&["fix", &sys]);
    let _ = live.kill();
    let _ = live.wait();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(live_tmp.exists(), "a live process's temp file was removed");
    assert!(!dead_tmp.exists(), "a dead process's temp file was left");
}

// ---- 4. A partly broken log -------------------------------------------------------------------

#[test]
fn finding_04_a_partly_broken_log_is_reported_everywhere_and_not_made_permanent() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("brokenlog");
    common::copy_with_logs(&t.0, &c.join("regipy/SYSTEM_B"), "SYSTEM_B");
    // Random bytes in the middle of LOG2, as in the trial.
    let log2 = t.0.join("SYSTEM_B.LOG2");
    let mut b = read(&log2);
    let mut x = 0x2545F4914F6CDD1Du64;
    let mid = b.len() / 3;
    for byte in &mut b[mid..mid + 4096] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    std::fs::write(&log2, &b).unwrap();
    let sys = t.0.join("SYSTEM_B");
    let sys_s = sys.to_str().unwrap();
    let before: Vec<Vec<u8>> = ["", ".LOG1", ".LOG2"]
        .iter()
        .map(|e| read(t.0.join(format!("SYSTEM_B{e}"))))
        .collect();

    let o = gw(&["diagnose", sys_s]);
    assert!(stdout(&o).contains("only in part"), "{}", stdout(&o));
    let o = gw(&["diagnose", "--json", sys_s]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v.to_string().contains("only in part"), "{v}");

    // fix refuses, names --allow-dirty, writes nothing.
    let o = gw(&["fix", sys_s]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("only in part") && stderr(&o).contains("--allow-dirty"),
        "{}",
        stderr(&o)
    );
    for (e, want) in ["", ".LOG1", ".LOG2"].iter().zip(&before) {
        assert!(
            &read(t.0.join(format!("SYSTEM_B{e}"))) == want,
            "SYSTEM_B{e} changed"
        );
    }
    assert_eq!(t.files().len(), 3);
    // The other writers refuse too.
    let o = gw(&[
        "reg",
        "--hive",
        sys_s,
        "add",
        "ControlSet001\\Control",
        "/v",
        "X",
        "/f",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("only in part"));

    // With --allow-dirty it is written, and the output and JSON say what was lost.
    let o = gw(&["fix", "--allow-dirty", "--json", sys_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("only in part"), "{v}");
}

// ---- 6. Write failures ------------------------------------------------------------------------

#[test]
fn finding_06_a_full_disk_leaves_nothing_behind_and_says_so() {
    if !need_root("the full-disk test (tmpfs)") {
        return;
    }
    let t = TempDir::new("fulldisk");
    let Some(m) = Mount::tmpfs(&t.0.join("mnt"), "128k") else {
        return;
    };
    let sys = sample(&m.0);
    let before = read(&sys);
    // Fill what is left.
    let filler = m.0.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    use std::io::Write;
    while f.write_all(&[0u8; 4096]).is_ok() {}
    drop(f);
    for _ in 0..3 {
        let o = gw(&["fix", "--firewall-off", &sys]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("no space left"), "{e}");
        assert!(!e.contains("is now OFF") && !e.contains("is OFF"), "{e}");
    }
    assert!(read(&sys) == before, "{} differs", stringify!(&sys));
    let mut names: Vec<String> = std::fs::read_dir(&m.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["SYSTEM", "filler"],
        "litter left by the failed attempts"
    );
}

#[test]
fn finding_06_a_failed_temp_write_removes_its_backup_and_temp_file() {
    // The same path as a full disk, by fault injection (debug builds), without root.
    let t = TempDir::new("injected");
    let sys = sample(&t.0);
    let before = read(&sys);
    let o = gw_env(&["fix", &sys], &[("GUESTWALL_FAIL_AT", "temp-write")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no space left"), "{}", stderr(&o));
    assert_eq!(t.files(), ["SYSTEM"]);
    assert!(read(&sys) == before, "{} differs", stringify!(&sys));
}

// ---- 7. Undo mixes operations ---------------------------------------------------------------

#[test]
fn finding_07_undo_reverts_the_latest_operation_as_a_whole() {
    let t = TempDir::new("undoops");
    let sys = sample(&t.0);
    let sw = gp_software(&t.0);
    let (sys0, sw0) = (read(&sys), read(&sw));
    // 1: fix with the policy cache: SYSTEM and SOFTWARE.
    let o = gw(&["fix", "--include-policy-cache", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let (sys1, sw1) = (read(&sys), read(&sw));
    assert!(sys1 != sys0 && sw1 != sw0);
    // 2: a netsh change to SYSTEM alone.
    let o = gw(&[
        "netsh",
        "--system",
        &sys,
        "advfirewall",
        "firewall",
        "add",
        "rule",
        "name=Test 5000",
        "dir=in",
        "action=allow",
        "protocol=TCP",
        "localport=5000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = gw(&[
        "reg",
        "--hive",
        &sys,
        "add",
        "ControlSet001\\Control",
        "/v",
        "Marker",
        "/t",
        "REG_DWORD",
        "/d",
        "1",
        "/f",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sys2 = read(&sys);
    assert!(sys2 != sys1);

    let list = stdout(&gw(&["undo", "--list", &sys]));
    assert!(
        list.contains("netsh") && list.contains("--include-policy-cache") && list.contains("reg"),
        "{list}"
    );
    assert!(
        list.find("reg --hive").unwrap() < list.find("--include-policy-cache").unwrap(),
        "newest first: {list}"
    );

    // Undo the reg change: SYSTEM goes back to after the netsh change; SOFTWARE untouched.
    assert_eq!(gw(&["undo", &sys]).status.code(), Some(0));
    assert!(read(&sw) == sw1);
    // Undo the netsh change.
    assert_eq!(gw(&["undo", &sys]).status.code(), Some(0));
    assert!(read(&sys) == sys1, "SYSTEM is not back to the fix's result");
    assert!(
        read(&sw) == sw1,
        "SOFTWARE was restored from the wrong operation"
    );
    // Undo the fix: both hives back.
    let o = gw(&["undo", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("SOFTWARE"), "{}", stdout(&o));
    assert!(read(&sys) == sys0 && read(&sw) == sw0);
    // Nothing left: said, with exit 1.
    let o = gw(&["undo", &sys]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("Nothing to undo"), "{}", stdout(&o));
}

#[test]
fn finding_07_undo_refuses_a_hive_changed_since_unless_forced() {
    let t = TempDir::new("undochanged");
    let sys = sample(&t.0);
    let original = read(&sys);
    assert_eq!(gw(&["fix", &sys]).status.code(), Some(0));
    // Something else writes the hive afterwards (here: a healthy hive copied over it).
    let other = guestwall_samples::healthy_rdp_system().unwrap();
    std::fs::write(&sys, &other).unwrap();
    let o = gw(&["undo", &sys]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("changed since") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert!(read(&sys) == other, "{} differs", stringify!(&sys));
    let o = gw(&["undo", "--force", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(read(&sys) == original, "{} differs", stringify!(&sys));
    // The overwritten content is kept.
    assert!(t
        .files()
        .iter()
        .any(|f| f.contains("guestwall-undone-") && std::fs::read(t.0.join(f)).unwrap() == other));
}

// ---- 5. demo --dir ----------------------------------------------------------------------------

#[test]
fn finding_05_demo_never_overwrites_and_says_where_its_files_are() {
    let t = TempDir::new("demodir");
    let precious = t.0.join("SYSTEM");
    std::fs::write(&precious, b"an 11 MB SYSTEM hive, say").unwrap();
    let o = gw(&["demo", "--dir", t.0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("already exists") && stderr(&o).contains("never overwrites"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read(&precious), b"an 11 MB SYSTEM hive, say");
    assert_eq!(t.files(), ["SYSTEM"]);
    // A fresh folder: the demo runs and says where its files are.
    let d = t.0.join("fresh");
    let o = gw(&["demo", "--dir", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!(
        "The demo's files (the hive, its backup, the operation history) are in {}",
        d.display()
    )));
    // Without --dir it makes a new folder and names it.
    let o = gw(&["demo"]);
    assert_eq!(o.status.code(), Some(0));
    let s = stdout(&o);
    let line = s
        .lines()
        .find(|l| l.starts_with("The demo's files"))
        .unwrap();
    let dir = line
        .rsplit(" are in ")
        .next()
        .unwrap()
        .split("; remove")
        .next()
        .unwrap();
    assert!(Path::new(dir).join("SYSTEM").is_file(), "{dir}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ---- 8. --port ------------------------------------------------------------------------------

#[test]
fn finding_08_port_says_where_it_comes_from_and_never_moves_the_listener() {
    let t = TempDir::new("port");
    let sys = sample(&t.0);
    let o = gw(&["diagnose", "--port", "22", &sys]);
    let text = stdout(&o);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("RDP listens on TCP 3389 (PortNumber in the hive"),
        "{text}"
    );
    assert!(!flat.contains("listens on TCP 22"), "{text}");
    assert!(
        flat.contains("[port-mismatch] --port 22 was given, but RDP listens on TCP 3389"),
        "{text}"
    );
    // fix --port 22 fixes 3389 (no rule for 22), says so, and is truthful about the result.
    let o = gw(&["fix", "--port", "22", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("WARNING: ControlSet001: --port 22 was given"),
        "{text}"
    );
    assert!(!text.contains("LPort=22|"), "{text}");
    assert!(reachable(&sys));
    // Out of range: exit 2.
    for bad in ["0", "65536", "-1", "x"] {
        let o = gw(&["diagnose", "--port", bad, &sys]);
        assert_eq!(o.status.code(), Some(2), "--port {bad}");
    }
}

// ---- 9. CONDITIONAL without a reason ----------------------------------------------------------

#[test]
fn finding_09_a_conditional_verdict_names_the_rule_and_the_condition() {
    let t = TempDir::new("cond");
    let sys = sample(&t.0);
    // The RDP rule, enabled but limited to the local subnet; the Public shield removed.
    let fw = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy";
    let rule = "v2.27|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=LocalSubnet|RA6=LocalSubnet|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|EmbedCtxt=@FirewallAPI.dll,-28752|";
    for args in [
        vec![
            "reg",
            "--hive",
            &sys,
            "add",
            &format!("{fw}\\FirewallRules"),
            "/v",
            "RemoteDesktop-UserMode-In-TCP",
            "/t",
            "REG_SZ",
            "/d",
            rule,
            "/f",
        ],
        vec![
            "reg",
            "--hive",
            &sys,
            "delete",
            &format!("{fw}\\PublicProfile"),
            "/v",
            "DoNotAllowExceptions",
            "/f",
        ],
    ] {
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let o = gw(&["diagnose", &sys]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("Domain   CONDITIONAL"), "{text}");
    assert!(
        flat.contains("[rdp-rule-scoped] Domain, Private, Public"),
        "{text}"
    );
    assert!(flat.contains("RemoteDesktop-UserMode-In-TCP"), "{text}");
    assert!(
        flat.contains("only when the client's address is in LocalSubnet"),
        "{text}"
    );
    assert!(
        flat.contains("A client from the internet: blocked"),
        "{text}"
    );
    let o = gw(&["diagnose", "--json", &sys]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["profiles"]["domain"]["causes"][0];
    assert_eq!(c["code"], "rdp-rule-scoped");
    assert_eq!(c["rule"]["id"], "RemoteDesktop-UserMode-In-TCP");
    assert!(c["conditions"][0].as_str().unwrap().contains("LocalSubnet"));
    assert!(c["internet_client"]
        .as_str()
        .unwrap()
        .starts_with("blocked"));
    // fix names the rule and widens nothing.
    let o = gw(&["fix", "--dry-run", &sys]);
    let text = stdout(&o);
    // Nothing is changed, and it does not claim nothing needs changing (trial 5).
    assert!(
        text.contains("No change guestwall can make here") && !text.contains("No change needed"),
        "{text}"
    );
    assert!(
        text.contains("RemoteDesktop-UserMode-In-TCP") && text.contains("LocalSubnet"),
        "{text}"
    );
}

// ---- 10. Scoped rules enabled by fix ----------------------------------------------------------

#[test]
fn finding_10_fix_does_not_enable_a_subnet_scoped_rule_and_scripts_name_rules_netsh_accepts() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("scoped");
    common::copy_with_logs(&t.0, &c.join("regipy/SYSTEM_B"), "SYSTEM_B");
    let sys = t.0.join("SYSTEM_B");
    let sys = sys.to_str().unwrap();
    let o = gw(&[
        "reg",
        "--hive",
        sys,
        "add",
        "ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp",
        "/v",
        "PortNumber",
        "/t",
        "REG_DWORD",
        "/d",
        "3390",
        "/f",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&gw(&["diagnose", sys]));
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        !flat.contains("would allow TCP 3390 but is disabled"),
        "{text}"
    );
    assert!(
        flat.contains("MCX-TERMSRV-In-TCP, local store) would allow TCP 3390 only to some clients"),
        "{text}"
    );
    let o = gw(&["fix", "--json", sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let changed: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap())
        .collect();
    assert!(!changed.contains(&"MCX-TERMSRV-In-TCP"), "{changed:?}");
    assert!(
        changed.contains(&"guestwall-RemoteDesktop-In-TCP-3390"),
        "{changed:?}"
    );
    assert_eq!(gw(&["undo", sys]).status.code(), Some(0));
    // A script never names a rule by an indirect string netsh does not accept.
    let s = stdout(&gw(&["script", sys]));
    assert!(!s.contains("name=\"@"), "{s}");
}

#[test]
fn finding_10_a_rule_without_a_name_netsh_knows_is_changed_by_id() {
    let t = TempDir::new("unnamed");
    let sys = sample(&t.0);
    let fw = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules";
    // The RDP rule with an indirect name guestwall cannot resolve.
    let rule = "v2.27|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-99999|";
    let o = gw(&[
        "reg",
        "--hive",
        &sys,
        "add",
        fw,
        "/v",
        "RemoteDesktop-UserMode-In-TCP",
        "/t",
        "REG_SZ",
        "/d",
        rule,
        "/f",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&gw(&["script", &sys]));
    assert!(!s.contains("name=\"@"), "{s}");
    assert!(s.contains("powershell -NoProfile -Command \"Enable-NetFirewallRule -Name 'RemoteDesktop-UserMode-In-TCP'\""), "{s}");
}

// ---- 11. Wrong inputs -------------------------------------------------------------------------

#[test]
fn finding_11_wrong_inputs_are_named_for_what_they_are() {
    let t = TempDir::new("wrong");
    let sys = sample(&t.0);
    // A SOFTWARE hive given as the target.
    let sw = gp_software(&t.0);
    let o = gw(&["diagnose", &sw]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is not a SYSTEM hive: it looks like SOFTWARE"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("assumed"), "{}", stderr(&o));
    // --software that does not exist: exit 2 before anything, for diagnose and fix.
    let before = read(&sys);
    for cmd in ["diagnose", "fix"] {
        let o = gw(&[cmd, "--software", "/nonexistent/SOFTWARE", &sys]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(
            stderr(&o).contains("/nonexistent/SOFTWARE") && stderr(&o).contains("no such file"),
            "{}",
            stderr(&o)
        );
    }
    assert!(read(&sys) == before, "{} differs", stringify!(&sys));
    // --software naming a SYSTEM hive.
    let o = gw(&["diagnose", "--software", &sys, &sys]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is not a SOFTWARE hive"),
        "{}",
        stderr(&o)
    );
    // Windows\System32 and Windows\System32\config are targets.
    let config = t.0.join("Windows/System32/config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::copy(&sys, config.join("SYSTEM")).unwrap();
    for d in ["Windows/System32", "Windows/System32/config", "Windows", ""] {
        let o = gw(&["diagnose", t.0.join(d).to_str().unwrap()]);
        assert_ne!(o.status.code(), Some(2), "{d}: {}", stderr(&o));
    }
    // Disk images are named as such.
    let vhdx = t.0.join("disk.vhdx");
    let mut b = b"vhdxfile".to_vec();
    b.resize(1 << 20, 0);
    std::fs::write(&vhdx, &b).unwrap();
    let o = gw(&["diagnose", vhdx.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is a VHDX disk image"),
        "{}",
        stderr(&o)
    );
    let raw = t.0.join("disk.raw");
    let mut b = vec![0u8; 1 << 20];
    b[510] = 0x55;
    b[511] = 0xAA;
    std::fs::write(&raw, &b).unwrap();
    let o = gw(&["diagnose", raw.to_str().unwrap()]);
    assert!(stderr(&o).contains("MBR partition table"), "{}", stderr(&o));
}

#[test]
fn finding_11_real_non_system_hives_are_named() {
    let Some(c) = corpus() else { return };
    for (f, looks) in [
        ("regipy/NTUSER.DAT", "NTUSER.DAT"),
        ("regipy/SAM", "SAM"),
        ("regipy/SECURITY", "SECURITY"),
    ] {
        let o = gw(&["diagnose", c.join(f).to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{f}");
        let e = stderr(&o);
        assert!(
            e.contains("is not a SYSTEM hive") && e.contains(looks),
            "{f}: {e}"
        );
        assert!(!e.contains("assumed"), "{e}");
    }
}

// ---- 12. netsh notes --------------------------------------------------------------------------

#[test]
fn finding_12_netsh_names_the_cause_that_remains() {
    let t = TempDir::new("netshnote");
    let sys = sample(&t.0);
    // RDP turned off as well; then enable the group and remove the Public shield.
    let o = gw(&[
        "reg",
        "--hive",
        &sys,
        "add",
        "ControlSet001\\Control\\Terminal Server",
        "/v",
        "fDenyTSConnections",
        "/t",
        "REG_DWORD",
        "/d",
        "1",
        "/f",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = gw(&[
        "netsh",
        "--system",
        &sys,
        "advfirewall",
        "set",
        "allprofiles",
        "firewallpolicy",
        "blockinbound,allowoutbound",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = gw(&[
        "netsh",
        "--system",
        &sys,
        "advfirewall",
        "firewall",
        "set",
        "rule",
        "group=Remote Desktop",
        "new",
        "enable=yes",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(
            "Domain allowed, Private allowed, Public allowed; RDP NOT reachable: rdp-disabled"
        ),
        "{e}"
    );
    assert!(e.contains("fDenyTSConnections = 1"), "{e}");
}

#[test]
fn finding_12_service_hardening_rules_are_not_called_group_policy() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("wsh");
    let sys = common::copy_into(&t.0, &c.join("regipy/SYSTEM"), "SYSTEM");
    // name=all matches every rule, the service-hardening ones included (RestrictedServices):
    // they are not Group Policy rules, and netsh does not touch them.
    let o = gw(&[
        "netsh",
        "--system",
        &sys,
        "--dry-run",
        "advfirewall",
        "firewall",
        "set",
        "rule",
        "name=all",
        "new",
        "enable=yes",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Group Policy"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("RestrictedServices"), "{}", stderr(&o));
}

// ---- 13. --firewall-off -----------------------------------------------------------------------

#[test]
fn finding_13_firewall_off_also_makes_the_minimal_fix() {
    let t = TempDir::new("fwoff");
    let sys = sample(&t.0);
    let o = gw(&["fix", "--firewall-off", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("The minimal fix was made as well"),
        "{}",
        stdout(&o)
    );
    // Turn the firewall back on: RDP still passes.
    let o = gw(&[
        "netsh",
        "--system",
        &sys,
        "advfirewall",
        "set",
        "allprofiles",
        "state",
        "on",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(reachable(&sys), "{}", stdout(&gw(&["diagnose", &sys])));
}

// ---- 15. JSON as a contract -------------------------------------------------------------------

#[test]
fn finding_15_json_has_a_schema_structured_fields_and_json_errors() {
    let t = TempDir::new("jsonc");
    let sys = sample(&t.0);
    let v: serde_json::Value =
        serde_json::from_slice(&gw(&["diagnose", "--json", &sys]).stdout).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["control_set"]["name"], "ControlSet001");
    assert_eq!(
        v["control_set"]["source"],
        "Select\\Current and Select\\Default"
    );
    assert_eq!(v["control_sets"].as_array().unwrap().len(), 1);
    assert!(v["os"].is_object());
    assert!(v["os"]["inferred"].as_bool().unwrap());
    assert!(v["causes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["profiles"] == serde_json::json!(["domain", "private", "public"])));
    // allowed_by as structured rules, after the fix.
    assert_eq!(gw(&["fix", &sys]).status.code(), Some(0));
    let v: serde_json::Value =
        serde_json::from_slice(&gw(&["diagnose", "--json", &sys]).stdout).unwrap();
    let by = &v["profiles"]["public"]["allowed_by"][0];
    assert_eq!(by["id"], "RemoteDesktop-UserMode-In-TCP");
    assert_eq!(by["name"], "Remote Desktop - User Mode (TCP-In)");
    assert_eq!(by["store"], "local");
    // Errors are JSON too, with exit code 2.
    for args in [
        vec!["diagnose", "--json", "/nonexistent"],
        vec!["fix", "--json", "/nonexistent"],
    ] {
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(2));
        let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(e["schema"], 1);
        assert_eq!(e["exit_code"], 2);
        assert!(e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent"));
    }
}

#[test]
fn finding_15_the_readme_json_example_is_true() {
    // The README shows a diagnosis document; every key it shows must be in a real one, at the
    // same place, with a value of the same kind.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```json\n")
        .expect("the README has a ```json example");
    let body = &readme[start + 8..];
    let example: serde_json::Value =
        serde_json::from_str(&body[..body.find("```").unwrap()]).unwrap();
    let t = TempDir::new("readmejson");
    let sys = sample(&t.0);
    let real: serde_json::Value =
        serde_json::from_slice(&gw(&["diagnose", "--json", &sys]).stdout).unwrap();
    fn same_shape(e: &serde_json::Value, r: &serde_json::Value, at: &str) {
        use serde_json::Value as V;
        match (e, r) {
            (V::Object(eo), V::Object(ro)) => {
                for (k, ev) in eo {
                    let rv = ro.get(k).unwrap_or_else(|| {
                        panic!("{at}.{k} is in the README but not in the output")
                    });
                    same_shape(ev, rv, &format!("{at}.{k}"));
                }
            }
            (V::Array(ea), V::Array(ra)) => {
                if let (Some(e0), Some(r0)) = (ea.first(), ra.first()) {
                    same_shape(e0, r0, &format!("{at}[0]"));
                }
            }
            (V::Null, _) | (_, V::Null) => {}
            (e, r) => assert_eq!(
                std::mem::discriminant(e),
                std::mem::discriminant(r),
                "{at}: README has {e}, output has {r}"
            ),
        }
    }
    same_shape(&example, &real, "$");
    assert_eq!(example["schema"], real["schema"]);
}

// ---- 16. Help and small conveniences ------------------------------------------------------------

#[test]
fn finding_16_help_shows_examples_and_exit_codes() {
    for cmd in [
        "diagnose", "fix", "undo", "script", "netsh", "hive", "reg", "demo",
    ] {
        let o = gw(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{cmd}");
        let h = stdout(&o);
        assert!(h.contains("Examples"), "{cmd}: {h}");
        assert!(h.contains("Exit codes"), "{cmd}: {h}");
    }
    let h = stdout(&gw(&["hive", "ls", "--help"]));
    assert!(!h.contains("[default: ]"), "{h}");
    let o = gw(&["reg", "/?"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("REG Operation [Parameter List]"));
}

#[test]
fn finding_16_reg_maps_current_control_set_and_ends_quietly_in_a_pipe() {
    let t = TempDir::new("ccs");
    let sys = sample(&t.0);
    let o = gw(&["reg", "--hive", &sys, "query", "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("CurrentControlSet is a link")
            && stderr(&o).contains("ControlSet001 (Select\\Current = 1)"),
        "{}",
        stderr(&o)
    );
    // reg query /s into a pipe that closes early: quiet, exit 0.
    let mut c = Command::new(env!("CARGO_BIN_EXE_guestwall"))
        .args(["reg", "--hive", &sys, "query", "ControlSet001", "/s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(c.stdout.take());
    let o = c.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn finding_16_drive_takes_f_and_f_colon_and_warns_about_c() {
    let t = TempDir::new("drive");
    let sys = sample(&t.0);
    let a = stdout(&gw(&["script", "--offline-cmd", "--drive", "F", &sys]));
    let b = stdout(&gw(&["script", "--offline-cmd", "--drive", "f:", &sys]));
    assert_eq!(a, b);
    assert!(a.contains("F:\\Windows\\System32\\config"), "{a}");
    let o = gw(&["script", "--offline-cmd", "--drive", "C:", &sys]);
    assert!(
        stderr(&o).contains("rescue VM's own system disk"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        gw(&["script", "--offline-cmd", "--drive", "FF", &sys])
            .status
            .code(),
        Some(2)
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(readme.contains("cargo install --path crates/cli"));
}

// ---- 17. The flaky test -----------------------------------------------------------------------

#[test]
fn finding_17_writing_to_a_child_that_already_exited_is_not_a_failure() {
    // reg.exe's prompt, answered on stdin by a child that exits first (a missing hive): the
    // helper used to panic with "Broken pipe" about 1 run in 8.
    let big = "y\n".repeat(64 * 1024);
    for _ in 0..40 {
        let o = gw_stdin(&["reg", "--hive", "/nonexistent/SYSTEM", "add", "X"], &big);
        assert_eq!(o.status.code(), Some(2));
    }
}

#[test]
fn finding_17_a_skip_notice_is_printed_once_per_binary() {
    assert!(notice("finding 17: this notice is printed once"));
    assert!(!notice("finding 17: this notice is printed once"));
}

// ---- The second trial (after the first round of fixes) ------------------------------------------

/// A history line, as guestwall writes them (tab-separated).
fn hist_line(fields: &[&str]) -> String {
    format!("{}\n", fields.join("\t"))
}

fn digest_of(p: &Path) -> String {
    format!("{:032x}", guestwall_regf::save::file_digest(&read(p)))
}

#[test]
fn trial2_01_a_forged_history_cannot_make_undo_touch_other_files() {
    let t = TempDir::new("forged");
    let config = t.0.join("Windows/System32/config");
    std::fs::create_dir_all(&config).unwrap();
    let sys = sample(&config);
    std::fs::copy(&sys, config.join("sys.bak")).unwrap();
    std::fs::write(
        config.join("x.bak"),
        guestwall_samples::healthy_rdp_system().unwrap(),
    )
    .unwrap();
    let host = t.0.join("hostfile.txt");
    std::fs::write(&host, b"HOST CONTENT\n").unwrap();
    let neighbour = config.join("notes.txt");
    std::fs::write(&neighbour, b"a file beside the hives\n").unwrap();
    let d_sys = digest_of(Path::new(&sys));
    // An absolute path outside the folder, and a file beside the hives that is no target.
    let history = [
        hist_line(&["op", "00000000000000000001-1-0", "20260101T000000Z", "evil"]),
        hist_line(&[
            "file",
            "00000000000000000001-1-0",
            "SYSTEM",
            "sys.bak",
            &d_sys,
            &d_sys,
        ]),
        hist_line(&[
            "file",
            "00000000000000000001-1-0",
            host.to_str().unwrap(),
            "x.bak",
            &digest_of(&host),
            &digest_of(&host),
        ]),
        hist_line(&[
            "op",
            "00000000000000000002-1-0",
            "20260101T000001Z",
            "evil2",
        ]),
        hist_line(&[
            "file",
            "00000000000000000002-1-0",
            "notes.txt",
            "x.bak",
            &digest_of(&neighbour),
            &digest_of(&neighbour),
        ]),
    ]
    .concat();
    std::fs::write(config.join(".guestwall-history"), history).unwrap();
    for args in [
        vec!["undo", t.0.to_str().unwrap()],
        vec!["undo", "--force", t.0.to_str().unwrap()],
    ] {
        let _ = gw(&args);
        assert_eq!(read(&host), b"HOST CONTENT\n", "{args:?}");
        assert_eq!(read(&neighbour), b"a file beside the hives\n", "{args:?}");
    }
    // A history that is a symbolic link is neither read nor written through.
    let victim = t.0.join("victim.txt");
    std::fs::write(&victim, b"victim\n").unwrap();
    std::fs::remove_file(config.join(".guestwall-history")).unwrap();
    std::os::unix::fs::symlink(&victim, config.join(".guestwall-history")).unwrap();
    let o = gw(&["fix", &sys]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    assert_eq!(read(&victim), b"victim\n");
}

#[test]
fn trial2_02_undo_and_a_writer_take_turns_and_the_history_stays_true() {
    for round in 0..4 {
        let t = TempDir::new(&format!("undorace{round}"));
        let sys = sample(&t.0);
        let add = |v: &str| {
            gw(&[
                "reg",
                "--hive",
                &sys,
                "add",
                "Select",
                "/v",
                v,
                "/t",
                "REG_DWORD",
                "/d",
                "1",
                "/f",
            ])
        };
        assert_eq!(add("A").status.code(), Some(0));
        let mut holder = Command::new("flock")
            .args([sys.as_str(), "sleep", "1"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let spawn = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_guestwall"))
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let writer = spawn(&[
            "reg",
            "--hive",
            &sys,
            "add",
            "Select",
            "/v",
            "B",
            "/t",
            "REG_DWORD",
            "/d",
            "1",
            "/f",
        ]);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let undo = spawn(&["undo", &sys]);
        let _ = holder.wait();
        let w = writer.wait_with_output().unwrap();
        let u = undo.wait_with_output().unwrap();
        assert_eq!(
            w.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&w.stderr)
        );
        assert_eq!(
            u.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&u.stderr)
        );
        let has = |v: &str| gw(&["hive", "get", &sys, "Select", v]).status.code() == Some(0);
        let undid = String::from_utf8_lossy(&u.stdout).into_owned();
        if undid.contains("/v B") {
            // The undo came second and reverted B: A stays.
            assert!(!has("B") && has("A"), "{undid}");
        } else {
            // The undo came first and reverted A; B was written on top of that.
            assert!(has("B") && !has("A"), "{undid}");
        }
        // Whatever the order, the next undo agrees with the file.
        let o = gw(&["undo", &sys]);
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            read(&sys),
            guestwall_samples::broken_rdp_system().unwrap().to_vec(),
            "round {round}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn trial2_03_fix_and_netsh_at_once_keep_both_changes_and_claim_nothing_false() {
    let Some(c) = corpus() else { return };
    for round in 0..3 {
        let t = TempDir::new(&format!("fixnetsh{round}"));
        let sys = common::copy_into(&t.0, &c.join("regipy/SYSTEM"), "SYSTEM");
        let mut holder = Command::new("flock")
            .args([sys.as_str(), "sleep", "1"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let spawn = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_guestwall"))
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let netsh = spawn(&[
            "netsh",
            "--system",
            &sys,
            "advfirewall",
            "firewall",
            "set",
            "rule",
            "name=Remote Desktop (TCP-In)",
            "new",
            "remoteip=10.0.0.0/8",
        ]);
        let fix = spawn(&["fix", &sys]);
        let _ = holder.wait();
        let n = netsh.wait_with_output().unwrap();
        let f = fix.wait_with_output().unwrap();
        assert_eq!(
            n.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&n.stderr)
        );
        // netsh's scope is kept on both rules it matched, and fix's change, if it made one,
        // is kept too.
        let q = |v: &str| {
            stdout(&gw(&[
                "reg",
                "--hive",
                &sys,
                "query",
                "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules",
                "/v",
                v,
            ]))
        };
        let (r0, r1) = (q("RemoteDesktop-In-TCP"), q("RemoteDesktop-In-TCP_1"));
        assert!(
            r0.contains("RA4=10.0.0.0/8") && r1.contains("RA4=10.0.0.0/8"),
            "round {round}: {r0}{r1}"
        );
        let fixed = String::from_utf8_lossy(&f.stdout).into_owned();
        assert!(
            matches!(f.status.code(), Some(0) | Some(1)),
            "{}",
            String::from_utf8_lossy(&f.stderr)
        );
        if fixed.contains("FirewallRules\\RemoteDesktop-In-TCP_1") {
            assert!(
                r1.contains("Active=TRUE"),
                "round {round}: fix's change was lost: {r1}"
            );
        }
    }
}

#[test]
fn trial2_04_an_undo_cut_short_before_the_logs_is_completed_by_the_next() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("undocut");
    let originals: Vec<Vec<u8>> = ["", ".LOG1", ".LOG2"]
        .iter()
        .map(|e| {
            common::copy_into(
                &t.0,
                &c.join(format!("regipy/SYSTEM_B{e}")),
                &format!("SYSTEM_B{e}"),
            );
            read(t.0.join(format!("SYSTEM_B{e}")))
        })
        .collect();
    let sys = t.0.join("SYSTEM_B");
    let sys = sys.to_str().unwrap();
    assert_eq!(gw(&["fix", sys]).status.code(), Some(0));
    let o = gw_env(
        &["undo", sys],
        &[("GUESTWALL_FAULT_AT", "restore-after-rename")],
    );
    assert!(!o.status.success());
    assert!(
        !t.0.join("SYSTEM_B.LOG1").exists(),
        "the logs were moved back before the kill"
    );
    let o = gw(&["undo", sys]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    for (e, want) in ["", ".LOG1", ".LOG2"].iter().zip(&originals) {
        assert!(
            &read(t.0.join(format!("SYSTEM_B{e}"))) == want,
            "SYSTEM_B{e} differs"
        );
    }
}

#[test]
fn trial2_05_the_history_survives_moving_the_folder() {
    let t = TempDir::new("moved");
    let m1 = t.0.join("m1");
    std::fs::create_dir_all(&m1).unwrap();
    let sys = sample(&m1);
    gp_software(&m1);
    let sys0 = read(&sys);
    assert_eq!(
        gw(&["fix", "--include-policy-cache", m1.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let sys1 = read(&sys);
    let o = gw(&[
        "netsh",
        "--system",
        m1.to_str().unwrap(),
        "advfirewall",
        "set",
        "allprofiles",
        "state",
        "off",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m2 = t.0.join("m2");
    std::fs::rename(&m1, &m2).unwrap();
    let list = stdout(&gw(&["undo", "--list", m2.to_str().unwrap()]));
    assert!(
        list.contains("state off") && list.contains("--include-policy-cache"),
        "{list}"
    );
    assert_eq!(gw(&["undo", m2.to_str().unwrap()]).status.code(), Some(0));
    assert!(
        read(m2.join("SYSTEM")) == sys1,
        "the netsh change alone is undone"
    );
    assert_eq!(gw(&["undo", m2.to_str().unwrap()]).status.code(), Some(0));
    assert!(read(m2.join("SYSTEM")) == sys0);
}

#[test]
fn trial2_06_07_commands_suggested_keep_software_and_undo_needs_every_hive() {
    let t = TempDir::new("swelse");
    let a = t.0.join("A");
    let b = t.0.join("B");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let sys = sample(&a);
    let sw = gp_software(&b);
    let text = stdout(&gw(&["diagnose", "--software", &sw, &sys]));
    assert!(
        text.contains(&format!("guestwall fix {sys} --software {sw}")),
        "{text}"
    );
    let o = gw(&["fix", "--include-policy-cache", "--software", &sw, &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("Undo with: guestwall undo {sys} --software {sw}")),
        "{}",
        stdout(&o)
    );
    // SYSTEM alone: refused, naming what to add; nothing restored.
    let before = (read(&sys), read(&sw));
    let o = gw(&["undo", &sys]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--software"), "{}", stderr(&o));
    assert!((read(&sys), read(&sw)) == before);
    let o = gw(&["undo", &sys, "--software", &sw]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Without SOFTWARE the fix says what it could not see.
    let o = gw(&["fix", "--dry-run", &sys]);
    assert!(
        stdout(&o).contains("Note: no SOFTWARE hive beside SYSTEM"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn trial2_08_a_history_line_cut_short_does_not_hide_later_operations() {
    let t = TempDir::new("cutline");
    let sys = sample(&t.0);
    std::fs::write(t.0.join(".guestwall-history"), "op\tjunk-without-an-end").unwrap();
    for v in ["A", "B"] {
        let o = gw(&[
            "reg",
            "--hive",
            &sys,
            "add",
            "Select",
            "/v",
            v,
            "/t",
            "REG_DWORD",
            "/d",
            "1",
            "/f",
        ]);
        assert_eq!(o.status.code(), Some(0));
    }
    for _ in 0..2 {
        let o = gw(&["undo", &sys]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    }
    assert_eq!(
        read(&sys),
        guestwall_samples::broken_rdp_system().unwrap().to_vec()
    );
}

#[test]
fn trial2_09_operations_sort_by_time_across_folders() {
    let t = TempDir::new("order");
    let a = t.0.join("A");
    let b = t.0.join("B");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let sys = sample(&a);
    let sw = gp_software(&b);
    let o = gw(&["reg", "--hive", &sw, "add", "Policies\\Marker", "/f"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = gw(&["fix", "--include-policy-cache", "--software", &sw, &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list = stdout(&gw(&["undo", "--list", &sys, "--software", &sw]));
    let fix_at = list.find("include-policy-cache").unwrap();
    let reg_at = list.find("Policies\\Marker").unwrap();
    assert!(fix_at < reg_at, "newest first: {list}");
    assert!(list[..reg_at].contains("next to undo"), "{list}");
}

#[test]
fn trial2_10_parallel_undos_take_turns() {
    let t = TempDir::new("undos3");
    let sys = sample(&t.0);
    for v in ["A", "B", "C"] {
        gw(&[
            "reg",
            "--hive",
            &sys,
            "add",
            "Select",
            "/v",
            v,
            "/t",
            "REG_DWORD",
            "/d",
            "1",
            "/f",
        ]);
    }
    let kids: Vec<_> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_guestwall"))
                .args(["undo", &sys])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(
        read(&sys),
        guestwall_samples::broken_rdp_system().unwrap().to_vec()
    );
    assert_eq!(gw(&["undo", &sys]).status.code(), Some(1));
}

#[test]
fn trial2_11_the_console_script_changes_only_what_fix_changes() {
    let t = TempDir::new("scriptsame");
    let sys = sample(&t.0);
    let o = gw(&[
        "reg",
        "--hive",
        &sys,
        "add",
        "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\PublicProfile",
        "/v",
        "DefaultOutboundAction",
        "/t",
        "REG_DWORD",
        "/d",
        "1",
        "/f",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let s = stdout(&gw(&["script", &sys]));
    assert!(
        s.contains("set publicprofile firewallpolicy blockinbound,blockoutbound"),
        "{s}"
    );
    assert!(!s.contains("allowoutbound"), "{s}");
}

#[test]
fn trial2_11_rules_sharing_a_display_name_are_changed_by_id() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("samename");
    let sys = common::copy_into(&t.0, &c.join("regipy/SYSTEM"), "SYSTEM");
    let s = stdout(&gw(&["script", &sys]));
    // Windows 7's RemoteDesktop-In-TCP and RemoteDesktop-In-TCP_1 share "Remote Desktop (TCP-In)".
    assert!(
        !s.contains("set rule name=\"Remote Desktop (TCP-In)\""),
        "{s}"
    );
    // Windows 7 has no Enable-NetFirewallRule (trial 5): the rule's registry value, by its ID.
    assert!(
        s.contains("/v \"RemoteDesktop-In-TCP_1\" /t REG_SZ") && s.contains("restart the VM"),
        "{s}"
    );
    // PowerShell by ID where the cmdlets exist: the same rules in a Windows 10 hive.
    let b = common::copy_with_logs(&t.0, &c.join("regipy/SYSTEM_B"), "SYSTEM_B");
    let o = gw(&[
        "netsh",
        "--system",
        &b,
        "advfirewall",
        "firewall",
        "add",
        "rule",
        "name=Remote Desktop - User Mode (TCP-In)",
        "dir=in",
        "action=allow",
        "protocol=TCP",
        "localport=3389",
        "enable=no",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gw(&[
        "netsh",
        "--system",
        &b,
        "advfirewall",
        "firewall",
        "set",
        "rule",
        "group=Remote Desktop",
        "new",
        "enable=no",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&gw(&["script", &b]));
    assert!(
        s.contains("Enable-NetFirewallRule -Name 'RemoteDesktop-UserMode-In-TCP'"),
        "{s}"
    );
}

#[test]
fn trial2_12_a_software_that_is_no_software_is_refused() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("swntuser");
    let sys = sample(&t.0);
    let o = gw(&[
        "diagnose",
        "--software",
        c.join("regipy/NTUSER.DAT").to_str().unwrap(),
        &sys,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is not a SOFTWARE hive: it looks like NTUSER.DAT"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn trial2_13_an_invalid_port_number_is_named_and_fixed() {
    let t = TempDir::new("badport");
    let sys = sample(&t.0);
    let key = "ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp";
    for v in ["0", "70000"] {
        gw(&[
            "reg",
            "--hive",
            &sys,
            "add",
            key,
            "/v",
            "PortNumber",
            "/t",
            "REG_DWORD",
            "/d",
            v,
            "/f",
        ]);
        let text = stdout(&gw(&["diagnose", &sys]));
        assert!(
            text.contains("[rdp-port-invalid]") && !text.contains("the hive has no PortNumber"),
            "{text}"
        );
    }
    let o = gw(&["fix", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(
        stdout(&gw(&["hive", "get", &sys, key, "PortNumber"])),
        "3389\n"
    );
    // No PortNumber at all: 3389, and a --port that differs is a mismatch.
    gw(&[
        "reg",
        "--hive",
        &sys,
        "delete",
        key,
        "/v",
        "PortNumber",
        "/f",
    ]);
    let text = stdout(&gw(&["diagnose", "--port", "3390", &sys]));
    assert!(
        text.contains("[port-mismatch]") && text.contains("RDP listens on TCP 3389"),
        "{text}"
    );
}

#[test]
fn trial2_14_a_dirty_hive_can_be_previewed_and_the_hints_say_allow_dirty() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("dirtyprev");
    let sys = common::copy_into(&t.0, &c.join("regipy/SYSTEM_2"), "SYSTEM");
    let o = gw(&["fix", "--dry-run", &sys]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("a real write would be refused"),
        "{}",
        stdout(&o)
    );
    let text = stdout(&gw(&["diagnose", &sys]));
    assert!(
        text.contains(&format!("guestwall fix --allow-dirty {sys}")),
        "{text}"
    );
}

#[test]
fn trial2_16_a_damaged_log_entry_is_named_as_damaged() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("dmglog");
    common::copy_with_logs(&t.0, &c.join("regipy/SYSTEM_B"), "SYSTEM_B");
    let log1 = t.0.join("SYSTEM_B.LOG1");
    let mut b = read(&log1);
    b[0x6F9C] ^= 0xff;
    std::fs::write(&log1, b).unwrap();
    let o = gw(&["hive", "info", t.0.join("SYSTEM_B").to_str().unwrap()]);
    let text = stdout(&o);
    assert!(text.contains("hash mismatch"), "{text}");
    assert!(!text.contains("is missing"), "{text}");
    assert!(!text.contains("older than the primary"), "{text}");
    assert!(text.contains("later entries not applied"), "{text}");
}

#[test]
fn trial2_17_usage_errors_are_json_with_json_and_undo_speaks_json() {
    let o = gw(&["diagnose", "--json", "--port", "70000", "x"]);
    assert_eq!(o.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("70000"));
    let t = TempDir::new("undojson");
    let sys = sample(&t.0);
    gw(&["fix", &sys]);
    let v: serde_json::Value =
        serde_json::from_slice(&gw(&["undo", "--list", "--json", &sys]).stdout).unwrap();
    assert_eq!(v["operations"].as_array().unwrap().len(), 1);
    let o = gw(&["undo", "--json", &sys]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["nothing_to_undo"], false);
    assert!(v["undone"]["command"].as_str().unwrap().contains("fix"));
    let o = gw(&["undo", "--json", &sys]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn trial2_18_fifos_and_devices_are_refused_at_once() {
    let t = TempDir::new("fifo");
    let fifo = t.0.join("SYSTEM");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for args in [
        vec!["diagnose", fifo.to_str().unwrap()],
        vec!["fix", fifo.to_str().unwrap()],
        vec!["hive", "info", fifo.to_str().unwrap()],
        vec!["diagnose", "/dev/zero"],
    ] {
        let start = std::time::Instant::now();
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{args:?}"
        );
        assert!(
            stderr(&o).contains("FIFO") || stderr(&o).contains("character device"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn trial2_19_ctrl_c_during_a_save_stops_it_cleanly() {
    let t = TempDir::new("sigint");
    let sys = sample(&t.0);
    let before = read(&sys);
    for point in ["after-backup", "after-temp-write", "before-rename"] {
        let o = gw_env(&["fix", &sys], &[("GUESTWALL_SIGNAL_AT", point)]);
        assert_eq!(o.status.code(), Some(2), "{point}");
        assert!(
            stderr(&o).contains("interrupted"),
            "{point}: {}",
            stderr(&o)
        );
        assert!(read(&sys) == before, "{point}");
        assert_eq!(t.files(), ["SYSTEM"], "{point}: litter");
    }
    // Past the rename the save completes.
    let o = gw_env(&["fix", &sys], &[("GUESTWALL_SIGNAL_AT", "after-rename")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(reachable(&sys));
}
