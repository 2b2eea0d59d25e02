//! `guestwall scan` as a process: one record per target, exit codes, order, colour.

mod common;

use common::*;
use std::path::Path;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

fn records(o: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A folder of targets: a healthy hive, a broken one, a Windows folder, a file that is no
/// hive, a user hive, a name that does not exist.
struct Fleet {
    dir: TempDir,
    good: String,
    broken: String,
    windows: String,
    junk: String,
    missing: String,
}

fn fleet(tag: &str) -> Fleet {
    let dir = TempDir::new(tag);
    let healthy = guestwall_samples::healthy_rdp_system().unwrap();
    let good = write(&dir.0, "vm-good.SYSTEM", &healthy);
    let broken = write(
        &dir.0,
        "vm-broken.SYSTEM",
        &guestwall_samples::broken_rdp_system().unwrap(),
    );
    write(
        &dir.0,
        "vm-mounted/Windows/System32/config/SYSTEM",
        &healthy,
    );
    let windows = dir.0.join("vm-mounted").to_string_lossy().into_owned();
    let junk = write(&dir.0, "vm-torn.vhd", &[0x5a; 4096]);
    let missing = dir.0.join("vm-gone").to_string_lossy().into_owned();
    Fleet {
        dir,
        good,
        broken,
        windows,
        junk,
        missing,
    }
}

#[test]
fn one_record_per_target_and_the_exit_code_of_the_worst() {
    let f = fleet("scan-records");
    // Every target reachable: 0.
    let o = gw(&["scan", "--json", &f.good, &f.windows]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(records(&o).len(), 2);
    // One not reachable: 1.
    let o = gw(&["scan", "--json", &f.good, &f.broken, &f.windows]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // One unreadable (anywhere in the list): 2, and the scan goes on past it.
    let o = gw(&[
        "scan", "--json", "-j", "2", &f.junk, &f.good, &f.missing, &f.broken, &f.windows,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let recs = records(&o);
    assert_eq!(recs.len(), 5, "{}", stdout(&o));
    let by = |t: &str| {
        recs.iter()
            .find(|r| r["target"] == t)
            .unwrap_or_else(|| panic!("no record for {t}"))
            .clone()
    };
    for t in [&f.junk, &f.missing] {
        let r = by(t);
        assert_eq!(r["schema"], 1);
        assert_eq!(r["exit_code"], 2);
        assert!(
            r["error"]["message"].as_str().unwrap().contains(t.as_str()),
            "{r}"
        );
        assert!(r["elapsed_ms"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(by(&f.broken)["reachable"], false);
    assert_eq!(by(&f.good)["reachable"], true);
    assert_eq!(by(&f.windows)["reachable"], true);
    // The record is `diagnose --json`'s document, plus the timing.
    for t in [&f.broken, &f.windows] {
        let mut rec = by(t);
        assert!(rec["elapsed_ms"].is_number());
        rec.as_object_mut().unwrap().remove("elapsed_ms");
        let d = gw(&["diagnose", "--json", t]);
        let doc: serde_json::Value = serde_json::from_slice(&d.stdout).unwrap();
        assert_eq!(rec, doc);
    }
    // A loop of symbolic links is named as one (a user trial saw "no such file").
    let a = f.dir.0.join("loop-a");
    let b = f.dir.0.join("loop-b");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let lo = gw(&["scan", "--json", a.to_str().unwrap()]);
    assert_eq!(lo.status.code(), Some(2));
    let msg = records(&lo)[0]["error"]["message"].to_string();
    assert!(msg.contains("symbolic links"), "{msg}");
    // Not a terminal: no summary, no progress bar, no escape codes anywhere.
    assert!(!stderr(&o).contains("Scanned"), "{}", stderr(&o));
    assert!(!o.stdout.contains(&0x1b) && !o.stderr.contains(&0x1b));
}

#[test]
fn sort_gives_the_same_order_every_time() {
    let f = fleet("scan-sort");
    let mut targets = vec![
        f.windows.clone(),
        f.missing.clone(),
        f.broken.clone(),
        f.junk.clone(),
        f.good.clone(),
    ];
    // Many targets so that two threads finish out of order.
    for i in 0..30 {
        let name = format!("copy-{:02}.SYSTEM", 29 - i);
        let p = f.dir.0.join(&name);
        std::fs::copy(&f.broken, &p).unwrap();
        targets.push(p.to_string_lossy().into_owned());
    }
    let mut args = vec!["scan", "--json", "--sort", "-j", "2"];
    args.extend(targets.iter().map(String::as_str));
    let mut sorted = targets.clone();
    sorted.sort();
    let mut first: Option<Vec<serde_json::Value>> = None;
    for _ in 0..3 {
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(2));
        let mut recs = records(&o);
        let names: Vec<String> = recs
            .iter()
            .map(|r| r["target"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, sorted);
        for r in &mut recs {
            r.as_object_mut().unwrap().remove("elapsed_ms");
        }
        match &first {
            None => first = Some(recs),
            Some(f) => assert_eq!(&recs, f),
        }
    }
}

#[test]
fn targets_from_a_list_and_from_stdin() {
    let f = fleet("scan-from");
    let list = write(
        &f.dir.0,
        "targets.txt",
        format!("# the fleet\n{}\n\n  {}  \n", f.good, f.broken).as_bytes(),
    );
    let o = gw(&["scan", "--json", "--sort", "--from", &list, &f.windows]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let names: Vec<String> = records(&o)
        .iter()
        .map(|r| r["target"].as_str().unwrap().to_string())
        .collect();
    let mut want = vec![f.windows.clone(), f.good.clone(), f.broken.clone()];
    want.sort();
    assert_eq!(names, want);
    let o = gw_stdin(
        &["scan", "--json", "--from", "-"],
        &format!("{}\n{}\n", f.good, f.windows),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(records(&o).len(), 2);
    // No targets at all is bad input, said as JSON with --json.
    let o = gw_stdin(&["scan", "--json", "--from", "-"], "# nothing\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no targets"), "{}", stderr(&o));
}

#[test]
fn text_lines_and_colour() {
    let f = fleet("scan-text");
    let o = gw(&["scan", "--sort", "-j", "1", &f.good, &f.broken, &f.junk]);
    assert_eq!(o.status.code(), Some(2));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("blocked ") && lines[0].contains(&f.broken),
        "{text}"
    );
    assert!(
        lines[0].ends_with("rdp-rule-disabled, block-all-inbound"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("reachable ") && lines[1].contains(&f.good),
        "{text}"
    );
    assert!(
        lines[2].starts_with("error ") && lines[2].contains(&f.junk),
        "{text}"
    );
    assert!(!o.stdout.contains(&0x1b));
    // --color always paints the status words; never paints nothing.
    let o = gw(&["scan", "--color", "always", &f.good, &f.broken]);
    assert!(
        stdout(&o).contains("\u{1b}[32mreachable"),
        "{:?}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("\u{1b}[31mblocked"), "{:?}", stdout(&o));
    let o = gw(&["scan", "--color", "never", &f.good, &f.broken]);
    assert!(!o.stdout.contains(&0x1b));
}

#[test]
fn corpus_hives_are_scanned_like_diagnose() {
    let Some(corpus) = corpus() else { return };
    let system = corpus.join("regipy/SYSTEM").to_string_lossy().into_owned();
    let system_b = corpus
        .join("regipy/SYSTEM_B")
        .to_string_lossy()
        .into_owned();
    let ntuser = corpus
        .join("Registry/NTUSER1.DAT")
        .to_string_lossy()
        .into_owned();
    // And captures of running machines (console text), recognised by content.
    let mut captures: Vec<String> = std::fs::read_dir(corpus.join("netsh/en"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path().to_string_lossy().into_owned())
                .filter(|p| p.ends_with(".txt") && !p.ends_with(".source.txt"))
                .collect()
        })
        .unwrap_or_default();
    captures.sort();
    captures.truncate(4);
    assert!(!captures.is_empty(), "no captures in the corpus");
    let mut args = vec![
        "scan", "--json", "--sort", "-j", "2", &system, &system_b, &ntuser,
    ];
    args.extend(captures.iter().map(String::as_str));
    let o = gw(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let recs = records(&o);
    assert_eq!(recs.len(), 3 + captures.len());
    // A capture is diagnosed, not refused as a hive.
    for c in &captures {
        let r = recs.iter().find(|r| r["target"] == c.as_str()).unwrap();
        assert!(r.get("error").is_none(), "{r}");
    }
    for r in &recs {
        let t = r["target"].as_str().unwrap();
        let d = gw(&["diagnose", "--json", t]);
        let doc: serde_json::Value = serde_json::from_slice(&d.stdout).unwrap();
        let mut rec = r.clone();
        rec.as_object_mut().unwrap().remove("elapsed_ms");
        if d.status.code() == Some(2) {
            // An error document names no target; the scan's record does.
            assert_eq!(rec.as_object_mut().unwrap().remove("target").unwrap(), *t);
        }
        assert_eq!(rec, doc, "{t}");
    }
}
