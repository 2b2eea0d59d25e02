//! Issue 11: `fix`, `undo` and `netsh --system` write in place inside disk images. Every image
//! is built here with real tools (mkntfs, wimlib-imagex, sfdisk, mkfs.vfat, qemu-img) from the
//! Windows 7 corpus SYSTEM hive, broken three ways: (a) as it is (its Public RDP rule is
//! disabled), (b) DoNotAllowExceptions=1 on every profile, (c) RDP on TCP 3390. What guestwall
//! wrote is checked independently: qemu-img converts the image to raw, dd cuts the partition
//! out, ntfscat takes the hive out, hivex reads the value, and every byte that changed must lie
//! in the hive's clusters as ntfsinfo lists them. Refusals leave the image byte-identical and
//! no journal; SIGKILL at random moments leaves the original, the repair, or a journal whose
//! undo gives the original back. Nothing binary is checked in; the corpus and the tools are
//! required under CI=true.

mod common;
#[path = "common/images_build.rs"]
mod images_build;
#[path = "../../ntfsvol/tests/common/mod.rs"]
mod ntfs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{corpus, gw, in_ci, notice, stderr, stdout};
use images_build::{
    dd_into, gwp, listing, ntfs_volume, ntfscp, read_at, run, run_stdin, s, write_at,
};
use ntfs::Content;
use serde_json::Value;

const MIB: u64 = 1 << 20;
const HIVE_IN_VOLUME: &str = "/Windows/System32/config/SYSTEM";
const POLICY: &str = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy";

const TOOLS: &[&str] = &[
    "mkntfs",
    "ntfscp",
    "ntfscat",
    "ntfsinfo",
    "ntfsfix",
    "wimlib-imagex",
    "sfdisk",
    "mkfs.vfat",
    "qemu-img",
    "flock",
    "dd",
    "cp",
];

/// The corpus, every tool and python3-hivex, or `None` with a notice (a failure under CI=true).
fn ready() -> Option<PathBuf> {
    let c = corpus()?;
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !Command::new("/usr/bin/python3")
        .args(["-c", "import hivex"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        missing.push("python3-hivex");
    }
    if missing.is_empty() {
        return Some(c);
    }
    assert!(
        !in_ci(),
        "CI=true but these tools are missing: {missing:?} (apt-get install ntfs-3g wimtools fdisk dosfstools qemu-utils python3-hivex util-linux)"
    );
    notice(&format!("missing {missing:?}; skipping this test"));
    None
}

/// This process's scratch folder under target/tmp (folders of finished runs are removed).
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-inplace");
        if let Ok(rd) = std::fs::read_dir(&base) {
            for e in rd.flatten() {
                let pid = e.file_name().to_string_lossy().parse::<u32>().ok();
                if !pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let d = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// A fresh folder for one test.
fn case_dir(name: &str) -> PathBuf {
    let d = workdir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Builds what `key` names once per process; concurrent callers of other keys do not wait.
fn cached(key: &str, build: impl FnOnce() -> PathBuf) -> PathBuf {
    static MAP: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = {
        let mut m = MAP
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(m.entry(key.to_string()).or_default())
    };
    cell.get_or_init(build).clone()
}

// ---- Broken hives ------------------------------------------------------------------------------

/// How the hive in the image is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// (a) The corpus hive as it is: the Public RDP rule (RemoteDesktop-In-TCP_1) is disabled.
    Rule,
    /// (b) DoNotAllowExceptions=1 on the Domain, Standard and Public profiles.
    NoExceptions,
    /// (c) RDP listens on TCP 3390, which no rule allows.
    Port,
}

impl Broken {
    fn name(self) -> &'static str {
        match self {
            Broken::Rule => "rule",
            Broken::NoExceptions => "noexc",
            Broken::Port => "port",
        }
    }

    /// What hivex must read in the repaired hive: (key, value, expected text; `None`: absent).
    fn repaired_value(self) -> (String, &'static str, Option<&'static str>) {
        match self {
            Broken::Rule => (
                format!("{POLICY}\\FirewallRules"),
                "RemoteDesktop-In-TCP_1",
                Some("|Active=TRUE|"),
            ),
            Broken::NoExceptions => (
                format!("{POLICY}\\PublicProfile"),
                "DoNotAllowExceptions",
                None,
            ),
            Broken::Port => (
                format!("{POLICY}\\FirewallRules"),
                "guestwall-RemoteDesktop-In-TCP-3390",
                Some("|LPort=3390|"),
            ),
        }
    }
}

/// The broken SYSTEM hive: the corpus hive, edited with `guestwall reg --hive FILE add`; the
/// backups guestwall leaves beside it are removed.
fn hive(b: Broken) -> PathBuf {
    cached(&format!("hive-{}", b.name()), || {
        let dir = workdir().join(format!("hive-{}", b.name()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = PathBuf::from(common::copy_into(
            &dir,
            &corpus().unwrap().join("regipy/SYSTEM"),
            "SYSTEM",
        ));
        let adds: Vec<(String, &str, &str)> = match b {
            Broken::Rule => vec![],
            Broken::NoExceptions => ["DomainProfile", "StandardProfile", "PublicProfile"]
                .iter()
                .map(|p| (format!("{POLICY}\\{p}"), "DoNotAllowExceptions", "1"))
                .collect(),
            Broken::Port => vec![(
                "ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp".to_string(),
                "PortNumber",
                "3390",
            )],
        };
        for (key, value, data) in &adds {
            let o = gw(&[
                "reg",
                "--hive",
                s(&file),
                "add",
                key,
                "/v",
                value,
                "/t",
                "REG_DWORD",
                "/d",
                data,
                "/f",
            ]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name() != "SYSTEM" {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let o = gw(&["diagnose", s(&file)]);
        assert_eq!(o.status.code(), Some(1), "{b:?} is broken: {}", stdout(&o));
        file
    })
}

/// A WIM of `Windows/System32/config/SYSTEM` holding the broken hive.
fn wim(b: Broken) -> PathBuf {
    cached(&format!("wim-{}", b.name()), || {
        let tree = workdir().join(format!("tree-{}", b.name()));
        ntfs::write_tree(
            &tree,
            &[("Windows/System32/config/SYSTEM", Content::Copy(hive(b)))],
        );
        let w = workdir().join(format!("{}.wim", b.name()));
        run("wimlib-imagex", &["capture", s(&tree), s(&w), "--no-acls"]);
        w
    })
}

// ---- Images ------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// MBR: "System Reserved" (NTFS, 8 MiB), then Windows (NTFS): partition 2.
    Gen1,
    /// GPT: ESP (FAT32, 34 MiB), MSR (16 MiB), Windows (NTFS, 60 MiB), Recovery (NTFS).
    Gen2,
    /// A bare NTFS volume image (40 MiB), no partition table.
    Volume,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Gen1 => "gen1",
            Layout::Gen2 => "gen2",
            Layout::Volume => "volume",
        }
    }
}

const GEN1: &str = "label: dos\nstart=2048, size=16384, type=7, bootable\nstart=18432, type=7\n";
const GEN2: &str = "label: gpt\n\
    start=2048, size=34MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI system partition\"\n\
    size=16MiB, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE, name=\"Microsoft reserved partition\"\n\
    size=60MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"Basic data partition\"\n\
    type=DE94BBA4-06D1-4D40-A16A-BFD50179D6AC, name=\"Recovery\"\n";

/// The Windows partition of a raw disk: (start byte, length), from `sfdisk -J`.
fn windows_partition(raw: &Path, layout: Layout) -> (u64, u64) {
    if layout == Layout::Volume {
        return (0, std::fs::metadata(raw).unwrap().len());
    }
    let j: Value = serde_json::from_slice(&run("sfdisk", &["--json", s(raw)])).unwrap();
    let p = &j["partitiontable"]["partitions"][if layout == Layout::Gen1 { 1 } else { 2 }];
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    )
}

/// The raw disk (or volume) of a layout with the broken hive in its Windows volume.
fn raw(layout: Layout, b: Broken) -> PathBuf {
    cached(&format!("raw-{}-{}", layout.name(), b.name()), || {
        let out = workdir().join(format!("{}-{}.raw", layout.name(), b.name()));
        let (mib, script) = match layout {
            Layout::Volume => {
                ntfs_volume(&out, 40 * MIB, 0, "Windows", Some(&wim(b)));
                return out;
            }
            Layout::Gen1 => (64, GEN1),
            Layout::Gen2 => (128, GEN2),
        };
        std::fs::File::create(&out)
            .unwrap()
            .set_len(mib * MIB)
            .unwrap();
        run_stdin("sfdisk", &["-q", s(&out)], script);
        let j: Value = serde_json::from_slice(&run("sfdisk", &["--json", s(&out)])).unwrap();
        let parts: Vec<(u64, u64)> = j["partitiontable"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap()))
            .collect();
        let windows = if layout == Layout::Gen1 { 1 } else { 2 };
        for (i, &(start, size)) in parts.iter().enumerate() {
            if layout == Layout::Gen2 && i == 0 {
                run(
                    "mkfs.vfat",
                    &[
                        "-F",
                        "32",
                        "-s",
                        "1",
                        "-n",
                        "SYSTEM",
                        "--offset",
                        &start.to_string(),
                        s(&out),
                        &(size / 2).to_string(),
                    ],
                );
                continue;
            }
            if layout == Layout::Gen2 && i == 1 {
                continue; // MSR: nothing
            }
            let vol = out.with_extension(format!("p{}", i + 1));
            let (label, w) = if i == windows {
                ("Windows", Some(wim(b)))
            } else if layout == Layout::Gen1 {
                ("System Reserved", None)
            } else {
                ("Recovery", None)
            };
            ntfs_volume(&vol, size * 512, start, label, w.as_deref());
            dd_into(&vol, &out, start);
            std::fs::remove_file(&vol).unwrap();
        }
        out
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    Raw,
    VhdFixed,
    VhdDynamic,
    VhdxFixed,
    VhdxDynamic,
}

impl Container {
    fn ext(self) -> &'static str {
        match self {
            Container::Raw => "raw",
            Container::VhdFixed => "fixed.vhd",
            Container::VhdDynamic => "dynamic.vhd",
            Container::VhdxFixed => "fixed.vhdx",
            Container::VhdxDynamic => "dynamic.vhdx",
        }
    }
    fn qemu_format(self) -> Option<&'static str> {
        match self {
            Container::Raw => None,
            Container::VhdFixed | Container::VhdDynamic => Some("vpc"),
            Container::VhdxFixed | Container::VhdxDynamic => Some("vhdx"),
        }
    }
    fn is_vhdx(self) -> bool {
        matches!(self, Container::VhdxFixed | Container::VhdxDynamic)
    }
}

/// The image of a layout with a broken hive in container `c` (built once; copy before writing).
fn image(layout: Layout, b: Broken, c: Container) -> PathBuf {
    let name = format!("{}-{}.{}", layout.name(), b.name(), c.ext());
    cached(&name.clone(), || {
        let r = raw(layout, b);
        let out = workdir().join(format!("img-{name}"));
        let opts = match c {
            Container::Raw => {
                run("cp", &["--sparse=always", s(&r), s(&out)]);
                return out;
            }
            Container::VhdFixed => "subformat=fixed,force_size=on",
            Container::VhdDynamic => "subformat=dynamic,force_size=on",
            Container::VhdxFixed => "subformat=fixed",
            Container::VhdxDynamic => "subformat=dynamic",
        };
        run(
            "qemu-img",
            &[
                "convert",
                "-q",
                "-f",
                "raw",
                "-O",
                c.qemu_format().unwrap(),
                "-o",
                opts,
                s(&r),
                s(&out),
            ],
        );
        out
    })
}

/// A writable copy of a cached image in `dir`.
fn copy_image(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    run("cp", &["--sparse=always", s(src), s(&to)]);
    to
}

/// The image as raw bytes of the virtual disk (qemu-img convert for VHD/VHDX).
fn to_raw(img: &Path, c: Container, out: &Path) -> PathBuf {
    match c.qemu_format() {
        None => img.to_path_buf(),
        Some(f) => {
            run(
                "qemu-img",
                &["convert", "-q", "-f", f, "-O", "raw", s(img), s(out)],
            );
            out.to_path_buf()
        }
    }
}

// ---- Checks ------------------------------------------------------------------------------------

fn journal_of(img: &Path) -> PathBuf {
    let mut n = img.file_name().unwrap().to_os_string();
    n.push(".guestwall-journal");
    img.with_file_name(n)
}

/// A journal's ranges, read independently of guestwall-inplace (docs/design-disk.md, "Writing
/// in place"): magic GWJOURN1, u64 image size, u32 name length + name, u32 count, then per
/// range u64 offset, u32 length, the original bytes, a 16-byte digest of the new bytes; last a
/// 16-byte checksum. Returns (image size, [(offset, original bytes)]).
fn read_journal(p: &Path) -> (u64, Vec<(u64, Vec<u8>)>) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..8], b"GWJOURN1");
    let u64_ = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let u32_ = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let size = u64_(8);
    let mut at = 16 + 4 + u32_(16);
    let count = u32_(at);
    at += 4;
    let mut ranges = Vec::new();
    for _ in 0..count {
        let off = u64_(at);
        let len = u32_(at + 8);
        ranges.push((off, b[at + 12..at + 12 + len].to_vec()));
        at += 12 + len + 16;
    }
    assert_eq!(at + 16, b.len(), "the journal ends with its checksum");
    (size, ranges)
}

/// The byte ranges where two equally long files differ, as (start, end), 4 KiB chunks first.
fn diff_ranges(a: &Path, b: &Path) -> Vec<(u64, u64)> {
    use std::io::Read;
    let (la, lb) = (
        std::fs::metadata(a).unwrap().len(),
        std::fs::metadata(b).unwrap().len(),
    );
    assert_eq!(la, lb, "{} and {} differ in size", a.display(), b.display());
    let (mut fa, mut fb) = (
        std::io::BufReader::with_capacity(MIB as usize, std::fs::File::open(a).unwrap()),
        std::io::BufReader::with_capacity(MIB as usize, std::fs::File::open(b).unwrap()),
    );
    let (mut x, mut y) = (vec![0u8; 4096], vec![0u8; 4096]);
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut at = 0u64;
    while at < la {
        let n = (la - at).min(4096) as usize;
        fa.read_exact(&mut x[..n]).unwrap();
        fb.read_exact(&mut y[..n]).unwrap();
        if x[..n] != y[..n] {
            for i in 0..n {
                if x[i] != y[i] {
                    let o = at + i as u64;
                    match out.last_mut() {
                        Some((_, e)) if *e == o => *e = o + 1,
                        _ => out.push((o, o + 1)),
                    }
                }
            }
        }
        at += n as u64;
    }
    out
}

fn inside(r: (u64, u64), ranges: &[(u64, u64)]) -> bool {
    ranges.iter().any(|&(s, e)| s <= r.0 && r.1 <= e)
}

/// A value read with python3-hivex: its text (REG_SZ/REG_DWORD) or `None` when absent.
fn hivex_value(hive: &Path, key: &str, value: &str) -> Option<String> {
    const PY: &str = r#"
import sys, hivex
h = hivex.Hivex(sys.argv[1])
n = h.root()
for part in sys.argv[2].split('\\'):
    n = h.node_get_child(n, part)
    assert n, part
v = None
for x in h.node_values(n):
    if h.value_key(x).lower() == sys.argv[3].lower():
        v = x
if v is None:
    print('<absent>')
elif h.value_type(v)[0] == 4:
    print(h.value_dword(v))
else:
    print(h.value_string(v))
"#;
    let out = run("/usr/bin/python3", &["-c", PY, s(hive), key, value]);
    let t = String::from_utf8(out).unwrap().trim().to_string();
    (t != "<absent>").then_some(t)
}

/// Sector size × sectors per cluster from an NTFS boot sector.
fn cluster_size(vol: &Path) -> u64 {
    let b = read_at(vol, 0, 512);
    u64::from(u16::from_le_bytes([b[11], b[12]])) * u64::from(b[13])
}

/// `undo IMAGE`: the journal renamed to `.undone-<secs>`, the image equal to `orig`; exit 0, or
/// exit 1 ("Nothing to undo") when the image already held the original bytes (a journal
/// written, then the process killed before its first image write).
#[track_caller]
fn undo_to(img: &Path, orig: &[u8]) {
    let was_orig = std::fs::read(img).unwrap() == orig;
    let o = gwp(&["undo"], img);
    assert_eq!(
        o.status.code(),
        Some(if was_orig { 1 } else { 0 }),
        "undo: {}{}",
        stdout(&o),
        stderr(&o)
    );
    if was_orig {
        assert!(stdout(&o).contains("Nothing to undo"), "{}", stdout(&o));
    }
    assert!(!journal_of(img).exists(), "the journal is renamed by undo");
    assert!(
        std::fs::read(img).unwrap() == orig,
        "undo gives back the original image byte for byte"
    );
}

// ---- 1. Every container and layout -------------------------------------------------------------

/// What one repair measured.
struct Figures {
    bytes_written: u64,
    ranges: usize,
    header_ranges: usize,
    raw_bytes_changed: u64,
}

/// The full round on one image: dry run, fix, the independent read, a second fix, undo,
/// `fix --json`, undo.
fn fix_round_trip(layout: Layout, b: Broken, c: Container) {
    if ready().is_none() {
        return;
    }
    let t0 = Instant::now();
    let name = format!("{}-{}-{}", layout.name(), b.name(), c.ext());
    let dir = case_dir(&format!("case-{name}"));
    let src = image(layout, b, c);
    let img = copy_image(&src, &dir, &format!("disk.{}", c.ext()));
    let orig = std::fs::read(&img).unwrap();
    let journal = journal_of(&img);
    let files = listing(&dir);

    // Broken before.
    let o = gwp(&["diagnose"], &img);
    assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));

    // --dry-run writes nothing and makes no journal.
    let o = gwp(&["fix", "--dry-run"], &img);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    assert!(
        std::fs::read(&img).unwrap() == orig,
        "{name}: dry run wrote"
    );
    assert_eq!(listing(&dir), files, "{name}: dry run left files");

    // fix.
    let o = gwp(&["fix"], &img);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{name}: {out}{}", stderr(&o));
    assert!(
        out.contains(&format!("Wrote SYSTEM ({})", s(&img)))
            && out.contains("re-read and verified"),
        "{name}: {out}"
    );
    assert!(
        out.contains(&format!("  backup: {}", s(&journal))),
        "{name}: {out}"
    );
    let after_line = out.lines().find(|l| l.starts_with("After:")).unwrap();
    assert!(
        after_line.contains("RDP reachable") && !after_line.contains("NOT"),
        "{name}: {after_line}"
    );
    let repaired = std::fs::read(&img).unwrap();
    assert_eq!(repaired.len(), orig.len(), "{name}: the file size changed");
    assert!(repaired != orig, "{name}: nothing was written");

    // The journal: only ranges holding the original bytes; for VHDX also the header region.
    let (jsize, ranges) = read_journal(&journal);
    assert_eq!(jsize, orig.len() as u64);
    let mut header_ranges = 0;
    let mut bytes_written = 0u64;
    let mut jr: Vec<(u64, u64)> = Vec::new();
    for (off, bytes) in &ranges {
        let (a, e) = (*off as usize, *off as usize + bytes.len());
        assert!(orig[a..e] == bytes[..], "{name}: journal at {off:#x}");
        bytes_written += bytes.len() as u64;
        jr.push((*off, e as u64));
        if c.is_vhdx() && (0x10000..0x30000).contains(off) {
            header_ranges += 1;
        }
    }
    assert!(bytes_written < MIB, "{name}: {bytes_written} bytes written");
    assert_eq!(header_ranges > 0, c.is_vhdx(), "{name}: {jr:x?}");
    // Every byte that changed in the container file lies in a journaled range.
    std::fs::write(dir.join("orig.img"), &orig).unwrap();
    for d in diff_ranges(&dir.join("orig.img"), &img) {
        assert!(
            inside(d, &jr),
            "{name}: byte {:#x} changed unjournaled",
            d.0
        );
    }

    // qemu-img check where qemu supports it (vhdx; vpc has no check: exit 63).
    if let Some(f) = c.qemu_format() {
        let o = Command::new("qemu-img")
            .args(["check", "-q", "-f", f, s(&img)])
            .output()
            .unwrap();
        assert!(
            matches!(o.status.code(), Some(0 | 63)),
            "{name}: qemu-img check: {:?} {}",
            o.status,
            stderr(&o)
        );
        if f == "vhdx" {
            assert_eq!(o.status.code(), Some(0), "{name}");
        }
    }

    // The independent read: raw conversion, the partition cut out, ntfscat, hivex, diagnose.
    let raw_before = to_raw(&dir.join("orig.img"), c, &dir.join("before.raw"));
    let raw_after = to_raw(&img, c, &dir.join("after.raw"));
    let (start, len) = windows_partition(&raw_after, layout);
    let part = dir.join("windows.part");
    run(
        "dd",
        &[
            &format!("if={}", s(&raw_after)),
            &format!("of={}", s(&part)),
            "bs=512",
            &format!("skip={}", start / 512),
            &format!("count={}", len / 512),
            "conv=sparse",
            "status=none",
        ],
    );
    let cs = cluster_size(&part);
    let info = ntfs::ntfsinfo_runs(&part, HIVE_IN_VOLUME, cs);
    assert!(!info.resident && !info.runs.is_empty(), "{name}");
    let clusters: Vec<(u64, u64)> = info
        .runs
        .iter()
        .filter_map(|&(_, v, l)| v.map(|v| (start + v, start + v + l)))
        .collect();
    let changed = diff_ranges(&raw_before, &raw_after);
    assert!(!changed.is_empty(), "{name}");
    for d in &changed {
        assert!(
            inside(*d, &clusters),
            "{name}: virtual-disk byte {:#x} changed outside the hive's clusters {clusters:x?}",
            d.0
        );
    }
    let raw_bytes_changed: u64 = changed.iter().map(|(a, e)| e - a).sum();
    let hive_out = dir.join("SYSTEM.extracted");
    std::fs::write(&hive_out, ntfs::ntfscat(&part, HIVE_IN_VOLUME)).unwrap();
    let (key, value, want) = b.repaired_value();
    let got = hivex_value(&hive_out, &key, value);
    match want {
        Some(w) => assert!(
            got.as_deref().is_some_and(|g| g.contains(w)),
            "{name}: hivex reads {key}\\{value} = {got:?}"
        ),
        None => assert_eq!(got, None, "{name}: {key}\\{value}"),
    }
    if b == Broken::NoExceptions {
        for p in ["DomainProfile", "StandardProfile"] {
            let k = format!("{POLICY}\\{p}");
            assert_eq!(hivex_value(&hive_out, &k, "DoNotAllowExceptions"), None);
        }
    }
    let o = gwp(&["diagnose"], &hive_out);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{name}: the extracted hive: {}",
        stdout(&o)
    );
    for f in [
        &part,
        &hive_out,
        &dir.join("before.raw"),
        &dir.join("after.raw"),
    ] {
        let _ = std::fs::remove_file(f);
    }

    // A second fix right away: nothing to change, nothing written, the journal as it was.
    let jbytes = std::fs::read(&journal).unwrap();
    let o = gwp(&["fix"], &img);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    assert!(stdout(&o).contains("No change needed"), "{}", stdout(&o));
    assert!(
        std::fs::read(&img).unwrap() == repaired,
        "{name}: 2nd fix wrote"
    );
    assert_eq!(std::fs::read(&journal).unwrap(), jbytes);

    // undo: the original, byte for byte.
    undo_to(&img, &orig);

    // fix --json: reachable true; undo again.
    let o = gwp(&["fix", "--json"], &img);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["reachable"], Value::Bool(true), "{j:#}");
    assert_eq!(j["dry_run"], Value::Bool(false));
    // (Not the same bytes as the first repair: the hive's timestamps and, for VHDX, the new
    // header's GUIDs differ; the same size and the same ranges.)
    let again = read_journal(&journal).1;
    assert_eq!(
        again.iter().map(|(o, b)| (*o, b.len())).collect::<Vec<_>>(),
        ranges
            .iter()
            .map(|(o, b)| (*o, b.len()))
            .collect::<Vec<_>>(),
        "{name}: the same ranges"
    );
    undo_to(&img, &orig);

    let f = Figures {
        bytes_written,
        ranges: ranges.len(),
        header_ranges,
        raw_bytes_changed,
    };
    notice(&format!(
        "inplace {name}: {} bytes written in {} ranges ({} VHDX header), {} virtual-disk bytes changed, {:.1} s",
        f.bytes_written,
        f.ranges,
        f.header_ranges,
        f.raw_bytes_changed,
        t0.elapsed().as_secs_f64()
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! round_trips {
    ($($name:ident: $layout:ident, $broken:ident, $container:ident;)*) => {
        $(
            #[test]
            fn $name() {
                fix_round_trip(Layout::$layout, Broken::$broken, Container::$container);
            }
        )*
    };
}

round_trips! {
    fix_gen1_raw: Gen1, Rule, Raw;
    fix_gen1_vhd_fixed: Gen1, Rule, VhdFixed;
    fix_gen1_vhd_dynamic: Gen1, Rule, VhdDynamic;
    fix_gen1_vhdx_fixed: Gen1, Rule, VhdxFixed;
    fix_gen1_vhdx_dynamic: Gen1, Rule, VhdxDynamic;
    fix_gen2_raw: Gen2, Rule, Raw;
    fix_gen2_vhd_fixed: Gen2, Rule, VhdFixed;
    fix_gen2_vhd_dynamic: Gen2, Rule, VhdDynamic;
    fix_gen2_vhdx_fixed: Gen2, Rule, VhdxFixed;
    fix_gen2_vhdx_dynamic: Gen2, Rule, VhdxDynamic;
    fix_volume_image: Volume, Rule, Raw;
    fix_no_exceptions_gen2_vhdx_dynamic: Gen2, NoExceptions, VhdxDynamic;
    fix_no_exceptions_gen1_vhd_fixed: Gen1, NoExceptions, VhdFixed;
    fix_custom_port_gen1_vhd_dynamic: Gen1, Port, VhdDynamic;
    fix_custom_port_volume_image: Volume, Port, Raw;
}

// ---- 2. Refusals -------------------------------------------------------------------------------

/// `fix IMAGE` exits 2 with a message containing every one of `says`, the image byte-identical
/// and no file added beside it (no journal, no temporary file).
fn assert_refused(img: &Path, what: &str, says: &[&str]) -> String {
    let dir = img.parent().unwrap();
    let (before, files) = (std::fs::read(img).unwrap(), listing(dir));
    let o = gwp(&["fix"], img);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{what}: {}{err}", stdout(&o));
    for w in says {
        assert!(err.contains(w), "{what}: {w:?} not in {err}");
    }
    assert!(
        std::fs::read(img).unwrap() == before,
        "{what}: the image changed"
    );
    assert_eq!(listing(dir), files, "{what}: files added");
    err
}

/// A copy of the volume image with the broken hive (a), for one refusal.
fn volume_copy(dir: &Path, name: &str) -> PathBuf {
    copy_image(
        &image(Layout::Volume, Broken::Rule, Container::Raw),
        dir,
        name,
    )
}

#[test]
fn unclean_windows_volumes_are_refused() {
    if ready().is_none() {
        return;
    }
    let dir = case_dir("refuse-volume");
    // Hibernated ("hibr") and resumed-from-hybrid-sleep ("wake") hiberfil.sys at the root.
    for magic in [b"hibr", b"wake"] {
        let m = String::from_utf8_lossy(magic).into_owned();
        let vol = volume_copy(&dir, &format!("{m}.img"));
        ntfscp(
            &vol,
            "hiberfil.sys",
            &[magic.as_slice(), &ntfs::noise(5, 100_000)].concat(),
        );
        let err = assert_refused(&vol, &m, &["not clean", "hiberfil.sys"]);
        notice(&format!("inplace refusal {m}: {}", err.trim()));
        std::fs::remove_file(&vol).unwrap();
    }
    // The dirty flag in $Volume's VOLUME_INFORMATION (ntfsfix sets it, emptying $LogFile).
    let vol = volume_copy(&dir, "dirty.img");
    run("ntfsfix", &[s(&vol)]);
    assert_refused(&vol, "dirty", &["not clean", "dirty"]);
    std::fs::remove_file(&vol).unwrap();
    // $LogFile restart pages: clients in use without RESTART_VOLUME_IS_CLEAN (unclean), and
    // version 2.0 (fast startup); a clean 1.1 page is written for contrast.
    let base = volume_copy(&dir, "base.img");
    let info = ntfs::ntfsinfo_runs(&base, "/$LogFile", cluster_size(&base));
    let at = info.runs[0].1.unwrap();
    for (major, minor, in_use, clean, what, says) in [
        (1, 1, true, false, "unclean-log", "RESTART_VOLUME_IS_CLEAN"),
        (2, 0, false, true, "fast-startup", "fast startup"),
        (1, 1, false, false, "clean-log", ""),
    ] {
        let vol = copy_image(&base, &dir, &format!("{what}.img"));
        let page = guestwall_ntfsvol::build_restart_page(4096, major, minor, in_use, clean, 0x1234);
        write_at(&vol, at, &page);
        write_at(&vol, at + 4096, &page);
        if says.is_empty() {
            let orig = std::fs::read(&vol).unwrap();
            let o = gwp(&["fix"], &vol);
            assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
            undo_to(&vol, &orig);
        } else {
            assert_refused(&vol, what, &["not clean", says]);
        }
        std::fs::remove_file(&vol).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_earlier_journal_or_a_lock_is_refused() {
    if ready().is_none() {
        return;
    }
    let dir = case_dir("refuse-journal-lock");
    let img = copy_image(
        &image(Layout::Gen1, Broken::Rule, Container::VhdxDynamic),
        &dir,
        "disk.vhdx",
    );
    let orig = std::fs::read(&img).unwrap();
    let journal = journal_of(&img);
    // An existing journal (a repair not undone) whose repair was then reverted by other means:
    // fix has edits to make and refuses, leaving the journal as it is.
    let o = gwp(&["fix"], &img);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let kept = std::fs::read(&journal).unwrap();
    undo_to(&img, &orig);
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().contains(".undone-") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    std::fs::write(&journal, &kept).unwrap();
    assert_refused(&img, "journal", &["exists", "undo"]);
    assert_eq!(std::fs::read(&journal).unwrap(), kept);
    undo_to(&img, &orig);
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().contains(".undone-") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    // Another process holds flock(LOCK_EX) on the image.
    // (`flock IMAGE cat`: cat holds the lock until its input closes; a `sleep` would keep the
    // lock after flock itself were killed.)
    let mut holder = Command::new("flock")
        .args(["-x", s(&img), "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while Command::new("flock")
        .args(["-n", "-s", s(&img), "true"])
        .status()
        .unwrap()
        .success()
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "flock never held");
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = assert_refused(&img, "locked", &["lock"]);
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    notice(&format!("inplace refusal lock: {}", err.trim()));
    // Once released, fix goes through.
    let o = gwp(&["fix"], &img);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    undo_to(&img, &orig);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vhdx_differencing_child_without_the_blocks_is_refused() {
    if ready().is_none() {
        return;
    }
    let dir = case_dir("refuse-differencing");
    let parent_raw = raw(Layout::Gen1, Broken::Rule);
    let parent = dir.join("parent.vhdx");
    run(
        "qemu-img",
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=1M",
            s(&parent_raw),
            s(&parent),
        ],
    );
    // qemu-img cannot make a differencing VHDX (`create -f vhdx -b` is refused: "Backing file
    // not supported"): a child with every block in the parent is made by hand.
    let child = dir.join("child.avhdx");
    assert_eq!(
        images_build::make_vhdx_child(&parent, &parent_raw, &parent_raw, &child),
        0
    );
    let o = gwp(&["diagnose"], &child);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let p = std::fs::read(&parent).unwrap();
    let err = assert_refused(&child, "differencing child", &["parent", "merge"]);
    assert!(std::fs::read(&parent).unwrap() == p, "the parent changed");
    notice(&format!("inplace refusal differencing: {}", err.trim()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write that needs more room than the hive file has: `netsh --system` adding a rule with a
/// 120 KB description makes the hive grow (a new hbin), which needs new clusters and NTFS
/// metadata: refused, nothing written.
#[test]
fn a_hive_that_would_grow_is_refused() {
    if ready().is_none() {
        return;
    }
    let dir = case_dir("refuse-grow");
    let vol = volume_copy(&dir, "grow.img");
    let (before, files) = (std::fs::read(&vol).unwrap(), listing(&dir));
    let desc = format!("description={}", "x".repeat(120_000));
    let o = gw(&[
        "netsh",
        "--system",
        s(&vol),
        "advfirewall",
        "firewall",
        "add",
        "rule",
        "name=big",
        "dir=in",
        "action=allow",
        "protocol=TCP",
        "localport=4000",
        &desc,
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{}{err}", stdout(&o));
    assert!(
        err.contains("would have to grow") && err.contains("the file holds"),
        "{err}"
    );
    assert!(std::fs::read(&vol).unwrap() == before, "the image changed");
    assert_eq!(listing(&dir), files);
    notice(&format!("inplace refusal growth: {}", err.trim()));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- 3. Kills ----------------------------------------------------------------------------------

/// xorshift64*: the test's random delays (the seed is printed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn seed() -> u64 {
    std::env::var("GUESTWALL_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// `rounds` SIGKILLs at random moments of `fix` on one image file, reused: after each, the
/// image is the original, or the repaired image, or there is a journal and `undo` gives the
/// original back.
fn kills(c: Container, rounds: usize) {
    if ready().is_none() {
        return;
    }
    let t0 = Instant::now();
    let dir = case_dir(&format!("kill-{}", c.ext()));
    let img = copy_image(
        &image(Layout::Gen1, Broken::Rule, c),
        &dir,
        &format!("disk.{}", c.ext()),
    );
    let journal = journal_of(&img);
    let orig = std::fs::read(&img).unwrap();
    // A clean run first: its duration, and when its journal appears (polled), so that half of
    // the kills fall after the journal, where the writes are.
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_guestwall"))
        .args(["fix", s(&img)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut journal_ms = None;
    let st = loop {
        if journal_ms.is_none() && journal.exists() {
            journal_ms = Some(t.elapsed().as_millis() as u64);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let clean_ms = t.elapsed().as_millis() as u64;
    assert!(st.success());
    let journal_ms = journal_ms.expect("the journal appeared during the clean run");
    let (_, ranges) = read_journal(&journal);
    undo_to(&img, &orig);
    let new_of = |b: &[u8]| -> Vec<(u64, Vec<u8>)> {
        ranges
            .iter()
            .map(|(o, r)| (*o, b[*o as usize..*o as usize + r.len()].to_vec()))
            .collect()
    };
    let max_ms = clean_ms;
    let late_ms = journal_ms * 4 / 5;
    let seed = seed();
    let mut rng = Rng(seed);
    let (mut original, mut repaired, mut undone, mut journal_only, mut finished) = (0, 0, 0, 0, 0);
    let mut temp_left = 0;
    for round in 0..rounds {
        let delay = if round % 2 == 0 {
            rng.next() % (max_ms + 1)
        } else {
            late_ms + rng.next() % (max_ms.saturating_sub(late_ms) + 1)
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_guestwall"))
            .args(["fix", s(&img)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        let st = child.wait().unwrap();
        let what = format!("round {round} (seed {seed}, delay {delay} ms, {st:?})");
        if st.success() {
            finished += 1;
        }
        // A journal cut short before its rename is only a temporary file: not a journal.
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.contains(".tmp-") || n.contains(".undone-") {
                temp_left += usize::from(n.contains(".tmp-"));
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let now = std::fs::read(&img).unwrap();
        if !journal.exists() {
            assert!(now == orig, "{what}: no journal, yet the image changed");
            original += 1;
            continue;
        }
        let (size, jr) = read_journal(&journal);
        assert_eq!(size, orig.len() as u64, "{what}");
        if now == orig {
            journal_only += 1;
        } else if jr.len() == ranges.len()
            && new_of(&now).iter().zip(&jr).all(|((_, n), (_, o))| n != o)
            && now.len() == orig.len()
        {
            // Every range holds new bytes, and outside the ranges nothing changed.
            let mut back = now.clone();
            for (o, b) in &jr {
                back[*o as usize..*o as usize + b.len()].copy_from_slice(b);
            }
            assert!(back == orig, "{what}: bytes changed outside the journal");
            repaired += 1;
        } else {
            undone += 1;
        }
        undo_to(&img, &orig);
    }
    let total = t0.elapsed().as_secs_f64();
    notice(&format!(
        "inplace kills {}: {rounds} SIGKILLs at 0-{max_ms} ms, every other one at {late_ms}-{max_ms} ms (clean fix {clean_ms} ms, its journal at {journal_ms} ms, seed {seed}): {original} original, {repaired} repaired then undone, {undone} partly written then undone, {journal_only} journal only (undo a no-op), {finished} finished before the kill; {temp_left} journal temporary files left behind; {total:.1} s",
        c.ext()
    ));
    assert_eq!(original + repaired + undone + journal_only, rounds);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kills_during_fix_on_a_vhdx() {
    kills(Container::VhdxDynamic, 100);
}

#[test]
fn kills_during_fix_on_a_vhd() {
    kills(Container::VhdDynamic, 100);
}

// ---- 4. netsh --system -------------------------------------------------------------------------

#[test]
fn netsh_set_rule_writes_in_place_and_undo_restores() {
    if ready().is_none() {
        return;
    }
    let dir = case_dir("netsh");
    let img = copy_image(
        &image(Layout::Gen2, Broken::Rule, Container::VhdxFixed),
        &dir,
        "disk.vhdx",
    );
    let orig = std::fs::read(&img).unwrap();
    let o = gw(&[
        "netsh",
        "--system",
        s(&img),
        "advfirewall",
        "firewall",
        "set",
        "rule",
        "group=Remote Desktop",
        "new",
        "enable=yes",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(journal_of(&img).exists(), "{}", stdout(&o));
    let (_, ranges) = read_journal(&journal_of(&img));
    let bytes: usize = ranges.iter().map(|(_, b)| b.len()).sum();
    assert!((bytes as u64) < MIB);
    let o = gwp(&["diagnose"], &img);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    undo_to(&img, &orig);
    notice(&format!(
        "inplace netsh: {bytes} bytes written in {} ranges",
        ranges.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Findings of the user trial of in-place repairs ------------------------------------------

fn gw_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guestwall"));
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn trial_dir(name: &str) -> PathBuf {
    let d = workdir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A write that fails part-way (a full disk, an I/O error) puts back what it wrote: the image
/// is as it was, no journal is left, and the message says so (it used to say "not written"
/// over a half-written hive).
#[test]
fn trial3_01_a_failed_write_is_put_back() {
    if ready().is_none() {
        return;
    }
    let dir = trial_dir("trial3-01");
    let src = image(Layout::Gen1, Broken::Rule, Container::VhdxDynamic);
    let img = copy_image(&src, &dir, "disk.vhdx");
    let before = std::fs::read(&img).unwrap();
    let o = gw_env(&["fix", s(&img)], &[("GUESTWALL_INPLACE_FAULT", "fail:3")]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("put back"), "{}", stderr(&o));
    assert!(std::fs::read(&img).unwrap() == before, "the image changed");
    assert!(!journal_of(&img).exists(), "a journal was left");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A crash between two writes leaves a torn image: every command that reads it says so and
/// points to undo (it used to diagnose it, as a clean hive, and `fix` called it an earlier
/// repair); undo gives back the original bytes.
#[test]
fn trial3_01_a_crash_mid_write_is_named_and_undone() {
    if ready().is_none() {
        return;
    }
    let dir = trial_dir("trial3-01b");
    let src = image(Layout::Gen2, Broken::Rule, Container::VhdFixed);
    let img = copy_image(&src, &dir, "disk.vhd");
    let before = std::fs::read(&img).unwrap();
    let o = gw_env(&["fix", s(&img)], &[("GUESTWALL_INPLACE_FAULT", "abort:2")]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        std::fs::read(&img).unwrap() != before,
        "nothing was written before the crash"
    );
    for args in [vec!["diagnose"], vec!["fix"], vec!["script"]] {
        let o = gwp(&args, &img);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("interrupted") && stderr(&o).contains("guestwall undo"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = gwp(&["undo"], &img);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        std::fs::read(&img).unwrap() == before,
        "undo is not byte-identical"
    );
    let o = gwp(&["diagnose"], &img);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The journal belongs to the real file: a repair through a symbolic link is undone through
/// the real path, and two images of the same name sharing a --journal-dir keep their own
/// journals.
#[test]
fn trial3_03_journals_follow_the_real_image() {
    if ready().is_none() {
        return;
    }
    let dir = trial_dir("trial3-03");
    let src = image(Layout::Volume, Broken::Rule, Container::Raw);
    let real = dir.join("real");
    let links = dir.join("links");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&links).unwrap();
    let img = copy_image(&src, &real, "d.raw");
    let before = std::fs::read(&img).unwrap();
    std::os::unix::fs::symlink(&img, links.join("d.raw")).unwrap();
    let o = gwp(&["fix"], &links.join("d.raw"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        journal_of(&img).exists(),
        "the journal is not beside the real file"
    );
    let o = gwp(&["undo"], &img);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read(&img).unwrap() == before);

    let (a, b, jd) = (dir.join("a"), dir.join("b"), dir.join("journals"));
    for d in [&a, &b, &jd] {
        std::fs::create_dir_all(d).unwrap();
    }
    let ia = copy_image(&src, &a, "disk.raw");
    let ib = copy_image(&src, &b, "disk.raw");
    let jd_s = s(&jd).to_string();
    let o = gw(&["fix", "--journal-dir", &jd_s, s(&ia)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // b has no repair: nothing to undo, and a's journal stays.
    let o = gw(&["undo", "--journal-dir", &jd_s, s(&ib)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = gw(&["fix", "--journal-dir", &jd_s, s(&ib)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "b's repair was refused: {}",
        stderr(&o)
    );
    for img in [&ia, &ib] {
        let o = gw(&["undo", "--journal-dir", &jd_s, s(img)]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(std::fs::read(img).unwrap() == before);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An image a running VM holds (QEMU takes open-file-description locks on it) is refused,
/// not written under it.
#[test]
fn trial3_04_an_image_a_running_vm_holds_is_refused() {
    if ready().is_none() {
        return;
    }
    let dir = trial_dir("trial3-04");
    let src = image(Layout::Gen1, Broken::Rule, Container::Raw);
    let img = copy_image(&src, &dir, "disk.raw");
    let before = std::fs::read(&img).unwrap();
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl,os,struct,sys,time\nfd=os.open(sys.argv[1],os.O_RDWR)\nfcntl.fcntl(fd,37,struct.pack('hhqqi',fcntl.F_RDLCK,0,100,1,0))\nprint('locked',flush=True)\ntime.sleep(30)",
            s(&img),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let o = gwp(&["fix"], &img);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    assert!(
        std::fs::read(&img).unwrap() == before,
        "written under the VM"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A journal damaged after it was written is not called "never complete" (the image may hold
/// the repair).
#[test]
fn trial3_06_a_damaged_journal_is_not_waved_away() {
    if ready().is_none() {
        return;
    }
    let dir = trial_dir("trial3-06");
    let src = image(Layout::Volume, Broken::Rule, Container::Raw);
    let img = copy_image(&src, &dir, "d.raw");
    let o = gwp(&["fix"], &img);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = journal_of(&img);
    let len = std::fs::metadata(&j).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&j)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let o = gwp(&["undo"], &img);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        !e.contains("never complete") && e.contains("damaged after it was written"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hive torn between two versions (some pages new, some old, the header clean) is never
/// diagnosed as if it were whole: whenever the hive cannot be read completely where the
/// diagnosis looks, diagnose exits 2 naming the key (it used to leave the damaged rule out and
/// give a sure, wrong verdict).
#[test]
fn trial3_02_a_torn_hive_gets_no_verdict() {
    let Some(c) = ready() else {
        return;
    };
    let dir = trial_dir("trial3-02");
    let old = std::fs::read(c.join("regipy/SYSTEM")).unwrap();
    let fixed = dir.join("SYSTEM");
    std::fs::write(&fixed, &old).unwrap();
    let o = gwp(&["fix"], &fixed);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let new = std::fs::read(&fixed).unwrap();
    let page = 4096;
    let differ: Vec<usize> = (0..new.len().div_ceil(page))
        .filter(|&i| new.get(i * page..(i + 1) * page) != old.get(i * page..(i + 1) * page))
        .collect();
    assert!(differ.len() >= 3, "{differ:?}");
    let mut damaged_seen = 0;
    for keep_new in 1..differ.len() {
        let mut torn = old.clone();
        torn.resize(new.len(), 0);
        for &i in &differ[..keep_new] {
            let end = ((i + 1) * page).min(new.len());
            torn[i * page..end].copy_from_slice(&new[i * page..end]);
        }
        let t = dir.join(format!("torn{keep_new}"));
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("SYSTEM"), &torn).unwrap();
        let dump = gw(&["hive", "dump", s(&t.join("SYSTEM"))]);
        let d = gwp(&["diagnose"], &t.join("SYSTEM"));
        if d.status.code() == Some(2) {
            damaged_seen += 1;
            assert!(stderr(&d).contains("damaged at"), "{}", stderr(&d));
        } else if dump.status.code() == Some(2) {
            // The damage lies outside what the diagnosis reads: then the verdict must be
            // the old or the new one, never a third.
            let o = gwp(&["diagnose", "--json"], &t.join("SYSTEM"));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert!(v["reachable"].is_boolean());
        }
    }
    // Some splits leave the rule's value list pointing at a cell of the other version: those
    // must be refused (before, all were diagnosed).
    assert!(damaged_seen > 0, "no torn split was refused");
    notice(&format!(
        "torn hives: {} splits, {damaged_seen} refused as damaged",
        differ.len() - 1
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
