//! Lazily read hives (only the bins a walk touches, through a positional reader, as for a
//! hive inside a disk image) read exactly as hives read whole, touch few bytes when a walk
//! reads little, and never panic on damaged input.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use guestwall_regf::{dump_jsonl, error_chain, Hive, Location, OpenOptions, ReaderSource};
use guestwall_source::ReadAt;

/// A reader over bytes in memory that counts what is read.
#[derive(Clone)]
struct Counted {
    bytes: Arc<Vec<u8>>,
    read: Arc<AtomicU64>,
}

impl Counted {
    fn new(bytes: Vec<u8>) -> Counted {
        Counted {
            bytes: Arc::new(bytes),
            read: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl ReadAt for Counted {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.bytes.as_slice().read_exact_at(offset, buf)
    }
}

fn at(name: &str) -> Location {
    Location::InImage {
        image: "disk.vhdx".into(),
        partition: Some(2),
        path: format!("Windows/System32/config/{name}"),
    }
}

fn lazy(bytes: Vec<u8>) -> (Result<Hive, guestwall_regf::Error>, Arc<AtomicU64>) {
    let r = Counted::new(bytes);
    let read = Arc::clone(&r.read);
    (
        Hive::open_lazy(&ReaderSource::new(at("SYSTEM"), r, Vec::new())),
        read,
    )
}

fn dump(hive: &Hive) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    dump_jsonl(hive, "", &mut out).map_err(|e| error_chain(&e))?;
    Ok(out)
}

#[test]
fn every_clean_corpus_hive_reads_the_same_lazily_as_whole() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut compared = 0;
    for path in common::files_under(&corpus) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        // The same source read whole (no logs are given with it).
        let src = ReaderSource::new(at("SYSTEM"), bytes.clone(), Vec::new());
        let Ok(whole) = Hive::open_source(&src, &OpenOptions::default()) else {
            continue;
        };
        let Ok(expected) = dump(&whole) else {
            continue;
        };
        let (opened, _) = lazy(bytes);
        let hive = opened.unwrap_or_else(|e| panic!("{}: {}", path.display(), error_chain(&e)));
        assert!(hive.is_lazy(), "{}", path.display());
        let got = dump(&hive).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(got == expected, "{}: the lazy dump differs", path.display());
        assert_eq!(hive.warnings(), whole.warnings(), "{}", path.display());
        compared += 1;
    }
    eprintln!("{compared} hives compared");
    assert!(compared >= 60, "only {compared} hives compared");
}

#[test]
fn a_walk_of_one_subtree_reads_a_small_part_of_the_hive() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let bytes = std::fs::read(corpus.join("regipy/SYSTEM")).unwrap();
    let total = bytes.len() as u64;
    let (opened, read) = lazy(bytes);
    let hive = opened.unwrap();
    let key = hive
        .key("ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy")
        .unwrap();
    let mut values = 0;
    hive.walk(key, "FirewallPolicy", |_, k| {
        for v in k.values()? {
            v.data()?;
            values += 1;
        }
        Ok(())
    })
    .unwrap();
    assert!(values > 100, "{values}");
    let (bins, bin_bytes) = hive.lazy_read().unwrap();
    let n = read.load(Ordering::Relaxed);
    eprintln!("{values} values; {bins} bins, {bin_bytes} bytes of bins, {n} bytes read of {total}");
    assert!(n < total / 10, "read {n} of {total} bytes");
    assert!(n >= bin_bytes);
    // A lazily read hive is not for editing.
    match guestwall_regf::write::HiveMut::new(&hive) {
        Ok(_) => panic!("a lazily read hive was opened for editing"),
        Err(e) => assert!(e.to_string().contains("lazily"), "{e}"),
    }
}

/// Every corpus hive that has logs beside it, replayed over the pages the logs write (the
/// rest read on use), reads as the hive replayed over the whole file, with the same recovery.
#[test]
fn dirty_hives_replay_their_logs_without_reading_the_file_whole() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut compared = 0;
    let mut dirty_replayed = 0;
    for path in common::files_under(&corpus) {
        let logs = guestwall_regf::find_logs(&path);
        if logs.is_empty() {
            continue;
        }
        let Ok(whole) = Hive::open(&path) else {
            continue;
        };
        let Ok(expected) = dump(&whole) else {
            continue;
        };
        let logs = logs
            .iter()
            .map(|p| {
                (
                    Location::File(p.clone()),
                    Counted::new(std::fs::read(p).unwrap()),
                )
            })
            .collect();
        let r = Counted::new(std::fs::read(&path).unwrap());
        let read = Arc::clone(&r.read);
        let total = r.size();
        let src = ReaderSource::new(Location::File(path.clone()), r, logs);
        let hive = Hive::open_lazy(&src)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), error_chain(&e)));
        assert!(hive.is_lazy(), "{}", path.display());
        assert_eq!(hive.recovery(), whole.recovery(), "{}", path.display());
        assert_eq!(hive.warnings(), whole.warnings(), "{}", path.display());
        assert_eq!(
            hive.base_block().hbins_size,
            whole.base_block().hbins_size,
            "{}",
            path.display()
        );
        // Before the walk, only the base block and the first bin's header were read, plus
        // the bins the root check touched.
        let before = read.load(Ordering::Relaxed);
        assert!(
            before < total.max(64 * 1024),
            "{}: {before} of {total}",
            path.display()
        );
        let got = dump(&hive).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(got == expected, "{}: the lazy dump differs", path.display());
        compared += 1;
        if whole.recovery().applied() {
            dirty_replayed += 1;
        }
    }
    eprintln!("{compared} hives with logs compared, {dirty_replayed} of them replayed");
    assert!(
        dirty_replayed >= 3,
        "only {dirty_replayed} dirty hives replayed"
    );
}

/// Damage anywhere gives an error or a result, never a panic or a hang; what reads is what a
/// whole read gives wherever a whole read succeeds.
#[test]
fn damaged_hives_fail_cleanly_when_read_lazily() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let clean = std::fs::read(corpus.join("regipy/SYSTEM_2"))
        .unwrap_or_else(|_| std::fs::read(corpus.join("regipy/SYSTEM")).unwrap());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut b = clean.clone();
        // Hit bin headers and cells near the firewall keys as well as anywhere.
        for _ in 0..1 + next() % 8 {
            let i = if round % 2 == 0 {
                (next() % (b.len() as u64 / 4096)) as usize * 4096 + 4096 + (next() % 40) as usize
            } else {
                (next() % b.len() as u64) as usize
            };
            if let Some(x) = b.get_mut(i) {
                *x = next() as u8;
            }
        }
        if round % 7 == 0 {
            b.truncate((next() % b.len() as u64) as usize);
        }
        let (opened, _) = lazy(b.clone());
        let Ok(hive) = opened else { continue };
        let got = dump(&hive);
        if let (Ok(got), Ok(whole)) = (&got, Hive::from_bytes(b)) {
            if let Ok(expected) = dump(&whole) {
                assert!(
                    *got == expected,
                    "round {round}: lazy and whole reads differ"
                );
            }
        }
    }
}

/// Damaged logs of a dirty hive: the sparse replay and the replay over the whole file agree
/// (both read the same, or both fail), and nothing panics.
#[test]
fn damaged_logs_replay_the_same_sparse_and_whole() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = corpus.join("regipy");
    let hive = std::fs::read(dir.join("SYSTEM_B")).unwrap();
    let logs: Vec<Vec<u8>> = ["SYSTEM_B.LOG1", "SYSTEM_B.LOG2"]
        .iter()
        .map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut both_read, mut both_failed) = (0, 0);
    for round in 0..60 {
        let mut logs = logs.clone();
        for _ in 0..1 + next() % 4 {
            let l = &mut logs[(next() % 2) as usize];
            let i = (next() % l.len() as u64) as usize;
            l[i] = next() as u8;
        }
        if round % 5 == 0 {
            let l = &mut logs[(next() % 2) as usize];
            l.truncate((next() % l.len() as u64) as usize);
        }
        let with = |logs: &[Vec<u8>]| {
            logs.iter()
                .enumerate()
                .map(|(i, b)| (at(&format!("SYSTEM.LOG{}", i + 1)), b.clone()))
                .collect::<Vec<_>>()
        };
        let whole = Hive::open_source(
            &ReaderSource::new(at("SYSTEM"), hive.clone(), with(&logs)),
            &OpenOptions::default(),
        )
        .map_err(|e| error_chain(&e))
        .and_then(|h| dump(&h).map(|d| (d, h.recovery().clone())));
        let lazy = Hive::open_lazy(&ReaderSource::new(at("SYSTEM"), hive.clone(), with(&logs)))
            .map_err(|e| error_chain(&e))
            .and_then(|h| dump(&h).map(|d| (d, h.recovery().clone())));
        match (whole, lazy) {
            (Ok(w), Ok(l)) => {
                assert!(w == l, "round {round}: sparse and whole replays differ");
                both_read += 1;
            }
            (Err(_), Err(_)) => both_failed += 1,
            (w, l) => panic!(
                "round {round}: whole {:?}, lazy {:?}",
                w.map(|_| "read"),
                l.map(|_| "read")
            ),
        }
    }
    eprintln!("{both_read} read alike, {both_failed} failed alike");
    assert!(both_read > 10);
}
