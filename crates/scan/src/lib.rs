//! `guestwall scan`: many targets (hive files, Windows folders, disk images, captures of a
//! running machine) diagnosed in
//! parallel, one record per target, and a summary by cause.
//!
//! - [`scan`] runs the diagnoses on a rayon pool of `jobs` threads and writes each record to
//!   an `impl Write` as soon as it is ready (or, with [`ScanOptions::sort`], in the targets'
//!   sorted order). A target that cannot be read is an error record, never the end of the scan.
//! - Records are JSON Lines ([`Format::JsonLines`]): the document of `diagnose --json`
//!   (schema 1, `docs/json.md`) with `elapsed_ms` added, or the error document with `target`
//!   and `elapsed_ms`; or one line of text per target ([`Format::Text`]).
//! - Memory does not grow with the number of targets: a diagnosis is dropped once its record
//!   is written; what is kept is the [`Summary`] (counts by cause) and the list of target
//!   names. Targets are handed out in order from a shared counter, so records waiting for
//!   their turn under `sort` are at most about as many as there are threads.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use guestwall_diagnose::{Diagnosis, Palette};

/// Exit code (and per-target status) of a target whose RDP is reachable on every profile.
pub const EXIT_REACHABLE: u8 = 0;
/// Exit code of a target whose RDP is not reachable (or only for some clients).
pub const EXIT_NOT_REACHABLE: u8 = 1;
/// Exit code of a target that could not be read.
pub const EXIT_UNREADABLE: u8 = 2;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document per line (JSON Lines).
    JsonLines,
    /// One line of text per target: status, time, target, causes or error.
    Text,
}

/// What a scan does.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Threads diagnosing at once (at least 1).
    pub jobs: usize,
    /// Write the records in the targets' sorted order (byte order of the names as given)
    /// instead of as they finish.
    pub sort: bool,
    /// The RDP port when a hive does not say (as `diagnose --port`).
    pub port: Option<u16>,
    /// The record format.
    pub format: Format,
    /// Colours for [`Format::Text`] (plain for files and pipes).
    pub palette: Palette,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            sort: false,
            port: None,
            format: Format::JsonLines,
            palette: Palette::plain(),
        }
    }
}

/// The status of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// RDP reachable on every profile of every control set that boots.
    Reachable,
    /// Reachable only for some clients (a scoped rule), nothing blocking.
    Conditional,
    /// Not reachable.
    Blocked,
    /// Could not be read.
    Unreadable,
}

impl Status {
    /// `reachable`, `conditional`, `blocked`, `error`.
    pub fn key(self) -> &'static str {
        match self {
            Status::Reachable => "reachable",
            Status::Conditional => "conditional",
            Status::Blocked => "blocked",
            Status::Unreadable => "error",
        }
    }

    /// The exit code a target with this status asks for.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Reachable => EXIT_REACHABLE,
            Status::Conditional | Status::Blocked => EXIT_NOT_REACHABLE,
            Status::Unreadable => EXIT_UNREADABLE,
        }
    }

    fn paint(self, palette: &Palette, text: &str) -> String {
        use guestwall_diagnose::Verdict;
        match self {
            Status::Reachable => palette.verdict(Verdict::Allowed, text),
            Status::Conditional => palette.verdict(Verdict::Conditional, text),
            Status::Blocked | Status::Unreadable => palette.verdict(Verdict::Blocked, text),
        }
    }
}

/// One target's result, as handed to the progress callback (the record itself is already
/// written).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The target as given.
    pub target: String,
    /// Its status.
    pub status: Status,
    /// The blocking cause codes (for a reachable target, none).
    pub causes: Vec<&'static str>,
    /// Time taken to read and diagnose it.
    pub elapsed: Duration,
}

/// Counts over a whole scan: what the summary table shows and the exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Targets scanned.
    pub targets: usize,
    /// Reachable on every profile.
    pub reachable: usize,
    /// Reachable only for some clients.
    pub conditional: usize,
    /// Not reachable.
    pub blocked: usize,
    /// Could not be read.
    pub unreadable: usize,
    /// Per blocking cause code, the number of targets it applies to.
    pub by_cause: BTreeMap<&'static str, usize>,
    /// Wall-clock time of the whole scan.
    pub elapsed: Duration,
    /// Sum of the per-target times (the work done, over all threads).
    pub busy: Duration,
    /// Threads used.
    pub jobs: usize,
}

impl Summary {
    fn add(&mut self, o: &Outcome) {
        self.targets += 1;
        self.busy += o.elapsed;
        match o.status {
            Status::Reachable => self.reachable += 1,
            Status::Conditional => self.conditional += 1,
            Status::Blocked => self.blocked += 1,
            Status::Unreadable => self.unreadable += 1,
        }
        for c in &o.causes {
            *self.by_cause.entry(c).or_default() += 1;
        }
    }

    /// 2 when any target could not be read, else 1 when any is not reachable, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.unreadable > 0 {
            EXIT_UNREADABLE
        } else if self.blocked + self.conditional > 0 {
            EXIT_NOT_REACHABLE
        } else {
            EXIT_REACHABLE
        }
    }

    /// Writes the summary table: the counts, then the targets per cause, most frequent first.
    pub fn write_table(&self, palette: &Palette, out: &mut dyn Write) -> io::Result<()> {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.targets as f64 / secs
        } else {
            0.0
        };
        writeln!(
            out,
            "Scanned {} target{} in {:.2} s ({} job{}, {:.1} targets/s)",
            self.targets,
            if self.targets == 1 { "" } else { "s" },
            secs,
            self.jobs,
            if self.jobs == 1 { "" } else { "s" },
            rate
        )?;
        let rows = [
            (Status::Reachable, "reachable", self.reachable),
            (
                Status::Conditional,
                "only for some clients",
                self.conditional,
            ),
            (Status::Blocked, "not reachable", self.blocked),
            (Status::Unreadable, "could not be read", self.unreadable),
        ];
        for (status, label, n) in rows {
            if n > 0 || status == Status::Reachable {
                let padded = format!("{label:<24}");
                writeln!(out, "  {} {n:>6}", status.paint(palette, &padded))?;
            }
        }
        if !self.by_cause.is_empty() {
            writeln!(out, "  {:<24} {:>6}", "by cause", "targets")?;
            let mut causes: Vec<(&&str, &usize)> = self.by_cause.iter().collect();
            causes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (code, n) in causes {
                writeln!(out, "    {code:<22} {n:>6}")?;
            }
        }
        Ok(())
    }
}

/// Reads a list of targets: one per line, surrounding blanks trimmed, empty lines and lines
/// starting with `#` skipped.
pub fn read_list(r: impl BufRead) -> io::Result<Vec<String>> {
    let mut v = Vec::new();
    for line in r.lines() {
        let line = line?;
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            v.push(t.to_string());
        }
    }
    Ok(v)
}

/// One finished target: its place in the output order, the record, the outcome.
struct Done {
    index: usize,
    record: String,
    outcome: Outcome,
}

/// Scans `targets` (see the crate documentation): writes one record per target to `out`,
/// calls `progress` after each record is written, and returns the summary. Only a failure
/// to write `out` ends the scan early.
pub fn scan(
    targets: &[String],
    opts: &ScanOptions,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(&Outcome),
) -> io::Result<Summary> {
    let start = Instant::now();
    let jobs = opts.jobs.max(1);
    let mut order: Vec<usize> = (0..targets.len()).collect();
    if opts.sort {
        order.sort_by(|&a, &b| targets[a].cmp(&targets[b]).then(a.cmp(&b)));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("guestwall-scan-{i}"))
        .build()
        .map_err(io::Error::other)?;
    let next = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Bounded: a slow reader of `out` holds the workers back instead of letting records pile up.
    let (tx, rx) = mpsc::sync_channel::<Done>(jobs * 2);
    let mut summary = Summary {
        jobs,
        ..Summary::default()
    };
    let mut result = Ok(());
    std::thread::scope(|s| {
        let (next, stop, order) = (&next, &stop, &order);
        s.spawn(move || {
            pool.broadcast(|_| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let slot = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = order.get(slot) else { break };
                let (record, outcome) = run_one(&targets[i], opts);
                if tx
                    .send(Done {
                        index: slot,
                        record,
                        outcome,
                    })
                    .is_err()
                {
                    break;
                }
            });
            drop(tx);
        });
        // Records that finished before their turn (only with `sort`).
        let mut waiting: BTreeMap<usize, Done> = BTreeMap::new();
        let mut turn = 0;
        for done in rx {
            if result.is_err() {
                continue; // drain so that the workers finish
            }
            let ready: Vec<Done> = if opts.sort {
                waiting.insert(done.index, done);
                let mut v = Vec::new();
                while let Some(d) = waiting.remove(&turn) {
                    v.push(d);
                    turn += 1;
                }
                v
            } else {
                vec![done]
            };
            for d in ready {
                if let Err(e) = out.write_all(d.record.as_bytes()).and_then(|_| out.flush()) {
                    stop.store(true, Ordering::Relaxed);
                    result = Err(e);
                    break;
                }
                summary.add(&d.outcome);
                progress(&d.outcome);
            }
        }
    });
    result?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Reads and diagnoses one target; returns its record (with the line end) and outcome.
fn run_one(target: &str, opts: &ScanOptions) -> (String, Outcome) {
    let start = Instant::now();
    let result = diagnose_target(Path::new(target), opts.port);
    let elapsed = start.elapsed();
    let ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    let (status, causes, record) = match result {
        Ok(diags) => {
            let status = status_of(&diags);
            let mut causes: Vec<&'static str> = Vec::new();
            for d in &diags {
                for c in guestwall_diagnose::blocking_codes(d) {
                    if !causes.contains(&c.as_str()) {
                        causes.push(c.as_str());
                    }
                }
            }
            let record = match opts.format {
                Format::JsonLines => {
                    let mut doc = guestwall_diagnose::to_json(&diags, target);
                    if let serde_json::Value::Object(m) = &mut doc {
                        m.insert("elapsed_ms".into(), ms.into());
                    }
                    json_line(&doc)
                }
                Format::Text => text_line(status, ms, target, &causes.join(", "), opts),
            };
            (status, causes, record)
        }
        Err(message) => {
            let record = match opts.format {
                Format::JsonLines => {
                    // The error document of `diagnose --json`, with the target and timing.
                    let doc = serde_json::json!({
                        "schema": guestwall_diagnose::JSON_SCHEMA,
                        "target": target,
                        "error": { "message": message },
                        "exit_code": EXIT_UNREADABLE,
                        "elapsed_ms": ms,
                    });
                    json_line(&doc)
                }
                Format::Text => text_line(Status::Unreadable, ms, target, &message, opts),
            };
            (Status::Unreadable, Vec::new(), record)
        }
    };
    let outcome = Outcome {
        target: target.to_string(),
        status,
        causes,
        elapsed,
    };
    (record, outcome)
}

fn json_line(doc: &serde_json::Value) -> String {
    let mut s = serde_json::to_string(doc).unwrap_or_default();
    s.push('\n');
    s
}

fn text_line(status: Status, ms: f64, target: &str, rest: &str, opts: &ScanOptions) -> String {
    let word = status.paint(&opts.palette, &format!("{:<11}", status.key()));
    if rest.is_empty() {
        format!("{word} {ms:>9.1} ms  {target}\n")
    } else {
        format!("{word} {ms:>9.1} ms  {target}  {rest}\n")
    }
}

/// The status of a target from the diagnoses of its control sets.
pub fn status_of(diags: &[Diagnosis]) -> Status {
    if !diags.is_empty() && diags.iter().all(|d| d.reachable) {
        return Status::Reachable;
    }
    let blocking = diags
        .iter()
        .any(|d| !guestwall_diagnose::blocking_codes(d).is_empty());
    let conditional = diags
        .iter()
        .flat_map(|d| &d.profiles)
        .any(|p| p.verdict == guestwall_diagnose::Verdict::Conditional);
    if !blocking && conditional {
        Status::Conditional
    } else {
        Status::Blocked
    }
}

/// Locates, reads and diagnoses one target (a capture, recognised by content, or hives,
/// a Windows folder, a disk image), as `guestwall diagnose` does; the error is the
/// message of the error record.
pub fn diagnose_target(target: &Path, port: Option<u16>) -> Result<Vec<Diagnosis>, String> {
    let shown = target.display().to_string();
    let named = |text: String| {
        if text.contains(&shown) {
            text
        } else {
            format!("cannot read {shown}: {text}")
        }
    };
    if target.as_os_str() == "-" {
        return Err("standard input is no scan target: list targets on it with --from -".into());
    }
    // A capture of a running machine (text, recognised by content), as `diagnose` takes it.
    if let Some(cap) =
        guestwall_ingest::capture::capture_target(target).map_err(|e| named(error_text(&e)))?
    {
        let configs =
            guestwall_ingest::capture::load_capture(&cap).map_err(|e| named(error_text(&e)))?;
        return Ok(configs
            .iter()
            .map(|c| guestwall_diagnose::diagnose(c, port))
            .collect());
    }
    let located = guestwall_ingest::locate(target, None).map_err(|e| named(error_text(&e)))?;
    let configs = guestwall_ingest::load(&located).map_err(|e| named(error_text(&e)))?;
    Ok(configs
        .iter()
        .map(|c| guestwall_diagnose::diagnose(c, port))
        .collect())
}

/// An error and its sources as one line, each level said once.
fn error_text(e: &dyn std::error::Error) -> String {
    let mut levels = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        levels.push(s.to_string());
        src = s.source();
    }
    let mut kept: Vec<&str> = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        let said = kept.iter().any(|k| k.contains(l.as_str()))
            || levels[i + 1..].iter().any(|x| x.contains(l.as_str()));
        if !said && !l.is_empty() {
            kept.push(l);
        }
    }
    kept.join(": ")
}

/// The targets named on the command line followed by those of `--from` (a file, or `-` for
/// standard input).
pub fn gather(targets: &[PathBuf], from: Option<&Path>) -> io::Result<Vec<String>> {
    let mut all: Vec<String> = targets.iter().map(|t| t.display().to_string()).collect();
    match from {
        None => {}
        Some(p) if p == Path::new("-") => all.extend(read_list(io::stdin().lock())?),
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            all.extend(read_list(io::BufReader::new(f))?);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }

    #[test]
    fn one_record_per_target_in_sorted_order() {
        let dir = std::env::temp_dir().join(format!("guestwall-scan-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = write(
            &dir,
            "b-good",
            &guestwall_samples::healthy_rdp_system().unwrap(),
        );
        let bad = write(
            &dir,
            "a-bad",
            &guestwall_samples::broken_rdp_system().unwrap(),
        );
        let junk = write(&dir, "c-junk", b"not a hive at all");
        let missing = dir.join("d-missing").display().to_string();
        let targets = vec![missing.clone(), junk.clone(), good.clone(), bad.clone()];
        for jobs in [1, 3] {
            let opts = ScanOptions {
                jobs,
                sort: true,
                ..ScanOptions::default()
            };
            let mut out = Vec::new();
            let mut seen = 0;
            let sum = scan(&targets, &opts, &mut out, &mut |_| seen += 1).unwrap();
            assert_eq!(seen, 4);
            let text = String::from_utf8(out).unwrap();
            let recs: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let names: Vec<&str> = recs.iter().map(|r| r["target"].as_str().unwrap()).collect();
            assert_eq!(names, [&bad, &good, &junk, &missing]);
            assert_eq!(recs[0]["reachable"], false);
            assert_eq!(recs[1]["reachable"], true);
            assert!(recs[2]["error"]["message"].is_string());
            assert_eq!(recs[3]["exit_code"], 2);
            assert!(recs.iter().all(|r| r["elapsed_ms"].is_number()));
            assert_eq!(
                (sum.reachable, sum.blocked, sum.unreadable, sum.exit_code()),
                (1, 1, 2, 2)
            );
            assert_eq!(sum.by_cause.get("rdp-rule-disabled"), Some(&1));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lists_skip_blanks_and_comments() {
        let v = read_list(&b"a\n\n  # no\n b \r\n"[..]).unwrap();
        assert_eq!(v, ["a", "b"]);
    }
}
