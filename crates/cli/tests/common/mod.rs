//! Helpers shared by the command-line tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn gw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guestwall"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs guestwall with `input` on standard input.
pub fn gw_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_guestwall"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit before it reads its input (an error it finds first): a broken pipe
    // here is not a failure of the test.
    if let Err(e) = c.stdin.take().unwrap().write_all(input.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    c.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("guestwall-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the sample broken SYSTEM hive into `dir`; returns its path.
pub fn sample(dir: &Path) -> String {
    let p = dir.join("SYSTEM");
    std::fs::write(&p, guestwall_samples::broken_rdp_system().unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

// The corpus lookup and the CI rule (skip with a notice, or fail under CI=true) are the regf
// tests' own.
#[path = "../../../regf/tests/common/mod.rs"]
mod shared;
#[allow(unused_imports)] // each test binary uses its own subset, as with dead_code above
pub use shared::{corpus, in_ci, notice};

/// Copies a file into `dir` (writable).
pub fn copy_into(dir: &Path, src: &Path, name: &str) -> String {
    let to = dir.join(name);
    std::fs::copy(src, &to).unwrap();
    let mut p = std::fs::metadata(&to).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    p.set_readonly(false);
    std::fs::set_permissions(&to, p).unwrap();
    to.to_string_lossy().into_owned()
}

/// Copies a hive and its `.LOG1`/`.LOG2` into `dir` (writable) as `name`, `name.LOG1` and
/// `name.LOG2`; returns the hive's path.
pub fn copy_with_logs(dir: &Path, src: &Path, name: &str) -> String {
    for ext in [".LOG1", ".LOG2"] {
        let mut log = src.as_os_str().to_owned();
        log.push(ext);
        copy_into(dir, Path::new(&log), &format!("{name}{ext}"));
    }
    copy_into(dir, src, name)
}
