//! Helpers shared by the integration tests: where the corpus is, and whether peers exist.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when running under CI, where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared corpus (`../shared/corpus` beside the repository, or `$GUESTWALL_CORPUS`).
/// Prints a notice and returns `None` when it is missing; under CI a missing corpus fails.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("GUESTWALL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !in_ci(),
        "CI=true but the corpus is missing at {}",
        dir.display()
    );
    notice(&format!(
        "corpus not found at {}; skipping this test",
        dir.display()
    ));
    None
}

/// Debian's python3 with the hivex module, if installed. Under CI it must be.
pub fn hivex_python() -> Option<PathBuf> {
    let py = PathBuf::from("/usr/bin/python3");
    let ok = Command::new(&py)
        .args(["-c", "import hivex"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(!in_ci(), "CI=true but /usr/bin/python3 cannot import hivex");
    notice("python3-hivex not installed; skipping this peer test");
    None
}

/// Prints a skip notice on the real stderr, past the test harness's output capture (which
/// only intercepts the `print!` family), so that a skipped test is visible in a normal run.
pub fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTICE: {msg}");
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
