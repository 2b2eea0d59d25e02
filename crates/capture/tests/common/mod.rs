//! Shared by the integration tests: where the corpus is, and the CI rule for skipping.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// True when running under CI, where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Prints a notice on the real stderr (past the harness's capture).
pub fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTICE: {msg}");
}

/// The shared corpus (`../shared/corpus` beside the repository, or `$GUESTWALL_CORPUS`);
/// `None` with a notice when it is missing, a failure under CI.
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

/// A corpus file's bytes (the corpus must be there).
pub fn read(corpus: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(corpus.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}
