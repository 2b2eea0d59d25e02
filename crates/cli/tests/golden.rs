//! Golden JSON: `diagnose --json` and `fix --dry-run --json` of the sample and of two corpus
//! hives, compared byte for byte with the files in `tests/golden/` (the temporary folder's path
//! replaced by `$DIR`). They were taken before the refactoring of issue 9, which had to leave
//! the JSON output unchanged. `GUESTWALL_BLESS=1` rewrites them (only when the output is meant
//! to change).

mod common;

use std::path::Path;

use common::{corpus, gw, sample, TempDir};

fn check(name: &str, dir: &Path, args: &[&str]) {
    let o = gw(args);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout)
        .unwrap()
        .replace(dir.to_str().unwrap(), "$DIR");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var("GUESTWALL_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&golden, &text).unwrap();
        return;
    }
    let want =
        std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    assert!(
        text == want,
        "{name}: the JSON differs from {} (GUESTWALL_BLESS=1 rewrites it when a change is meant)\n--- got ---\n{text}",
        golden.display()
    );
}

fn both(name: &str, dir: &Path, target: &str) {
    check(
        &format!("{name}.diagnose"),
        dir,
        &["diagnose", "--json", target],
    );
    check(
        &format!("{name}.fix"),
        dir,
        &["fix", "--dry-run", "--json", target],
    );
}

#[test]
fn the_samples_json_is_unchanged() {
    let t = TempDir::new("golden-sample");
    let sys = sample(&t.0);
    both("sample", &t.0, &sys);
}

#[test]
fn corpus_json_is_unchanged() {
    let Some(c) = corpus() else { return };
    let t = TempDir::new("golden-corpus");
    let w7 = common::copy_into(&t.0, &c.join("regipy/SYSTEM"), "SYSTEM");
    both("win7", &t.0, &w7);
    let d = t.0.join("w10");
    std::fs::create_dir_all(&d).unwrap();
    common::copy_with_logs(&d, &c.join("regipy/SYSTEM_B"), "SYSTEM_B");
    both("win10", &t.0, d.join("SYSTEM_B").to_str().unwrap());
}
