//! Issue 10: disk images as targets, end to end through the `guestwall` binary. Every image is
//! built here with real tools (sfdisk, mkntfs, wimlib-imagex, ntfscp, mkfs.vfat, qemu-img):
//! Azure Gen1 (MBR: System Reserved, Windows) and Gen2 (GPT: ESP, MSR, Windows, Recovery)
//! layouts, as raw, VHD fixed/dynamic, VHDX fixed/dynamic and a VHDX differencing child, plus
//! bare NTFS volume images. What guestwall reads from inside an image must be what it reads
//! from the same hive files on the host; what it must refuse, it refuses without writing.
//! Nothing binary is checked in; the corpus and the tools are required under CI=true.

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
use guestwall_regf::build::{build_hive, reg_sz, BuildOptions, KeySpec};
use guestwall_regf::data::REG_SZ;
use images_build::{
    dd_into, gwp, le32, le64, listing, make_vhdx_child, ntfs_volume, ntfscp, read_at, run,
    run_stdin, s, write_at,
};
use ntfs::Content;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// The OS name the built SOFTWARE hive gives.
const OS_NAME: &str = "Windows Server 2008 R2 Datacenter, build 7601";

const TOOLS: &[&str] = &[
    "mkntfs",
    "ntfscp",
    "ntfscat",
    "wimlib-imagex",
    "sfdisk",
    "mkfs.vfat",
    "qemu-img",
    "ntfsinfo",
    "truncate",
    "dd",
    "cp",
];

/// The corpus and every tool, or `None` with a notice (a failure under CI=true).
fn ready() -> Option<PathBuf> {
    let c = corpus()?;
    let missing: Vec<&str> = TOOLS
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
    if missing.is_empty() {
        return Some(c);
    }
    assert!(
        !in_ci(),
        "CI=true but these tools are missing: {missing:?} (apt-get install ntfs-3g wimtools fdisk dosfstools qemu-utils)"
    );
    notice(&format!("missing {missing:?}; skipping this test"));
    None
}

/// This process's scratch folder under target/tmp (folders of finished runs are removed).
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-images");
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

// ---- Hives ---------------------------------------------------------------------------------

/// The hive files put in an image's `Windows/System32/config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hives {
    /// regipy's Windows 7 SYSTEM and a built SOFTWARE (Windows Server 2008 R2, build 7601).
    Win7,
    /// regipy's SYSTEM_B with its logs as SYSTEM.LOG1/.LOG2: dirty, replayed from the image.
    Dirty,
    /// The sample healthy SYSTEM (RDP reachable), without SOFTWARE.
    Healthy,
}

impl Hives {
    fn name(self) -> &'static str {
        match self {
            Hives::Win7 => "win7",
            Hives::Dirty => "dirty",
            Hives::Healthy => "healthy",
        }
    }
}

fn software_hive() -> Vec<u8> {
    let mut root = KeySpec::new("");
    root.path_mut("Microsoft\\Windows NT\\CurrentVersion")
        .push_value(
            "ProductName",
            REG_SZ,
            reg_sz("Windows Server 2008 R2 Datacenter"),
        )
        .push_value("CurrentVersion", REG_SZ, reg_sz("6.1"))
        .push_value("CurrentBuildNumber", REG_SZ, reg_sz("7601"));
    build_hive(&root, &BuildOptions::default()).unwrap()
}

/// A host folder holding `Windows/System32/config/<hives>`: the reference the images are
/// compared with, and the tree wimlib lays into them.
fn hive_tree(h: Hives) -> PathBuf {
    cached(&format!("tree-{}", h.name()), || {
        let corpus = corpus().expect("checked by the caller");
        let reg = corpus.join("regipy");
        let root = workdir().join(format!("tree-{}", h.name()));
        let files: Vec<(&str, Content)> = match h {
            Hives::Win7 => vec![
                (
                    "Windows/System32/config/SYSTEM",
                    Content::Copy(reg.join("SYSTEM")),
                ),
                (
                    "Windows/System32/config/SOFTWARE",
                    Content::Bytes(software_hive()),
                ),
            ],
            Hives::Dirty => vec![
                (
                    "Windows/System32/config/SYSTEM",
                    Content::Copy(reg.join("SYSTEM_B")),
                ),
                (
                    "Windows/System32/config/SYSTEM.LOG1",
                    Content::Copy(reg.join("SYSTEM_B.LOG1")),
                ),
                (
                    "Windows/System32/config/SYSTEM.LOG2",
                    Content::Copy(reg.join("SYSTEM_B.LOG2")),
                ),
            ],
            Hives::Healthy => vec![(
                "Windows/System32/config/SYSTEM",
                Content::Bytes(guestwall_samples::healthy_rdp_system().unwrap()),
            )],
        };
        ntfs::write_tree(&root, &files);
        root
    })
}

fn hive_path(h: Hives) -> PathBuf {
    hive_tree(h).join("Windows/System32/config/SYSTEM")
}

/// A WIM of a host folder, captured once.
fn wim_of(key: &str, tree: &Path) -> PathBuf {
    cached(&format!("wim-{key}"), || {
        let wim = workdir().join(format!("{key}.wim"));
        run("wimlib-imagex", &["capture", s(tree), s(&wim), "--no-acls"]);
        wim
    })
}

fn hives_wim(h: Hives) -> PathBuf {
    wim_of(h.name(), &hive_tree(h))
}

/// A WIM of other trees (System Reserved's boot files, Recovery, a volume without Windows).
fn files_wim(key: &str, files: &[(&str, Content)]) -> PathBuf {
    let tree = workdir().join(format!("tree-{key}"));
    if !tree.exists() {
        ntfs::write_tree(&tree, files);
    }
    wim_of(key, &tree)
}

fn system_reserved_wim() -> PathBuf {
    let bcd = corpus().unwrap().join("regipy/BCD");
    files_wim(
        "sysres",
        &[
            ("Boot/BCD", Content::Copy(bcd)),
            ("bootmgr", Content::Bytes(ntfs::noise(1, 40_000))),
        ],
    )
}

fn recovery_wim() -> PathBuf {
    files_wim(
        "recovery",
        &[
            (
                "Recovery/WindowsRE/ReAgent.xml",
                Content::Bytes(b"<?xml version='1.0'?><WindowsRE/>".to_vec()),
            ),
            (
                "Recovery/WindowsRE/Winre.wim",
                Content::Bytes(ntfs::noise(2, 300_000)),
            ),
        ],
    )
}

// ---- Volumes and disks ---------------------------------------------------------------------

/// What goes on a partition.
enum Fill {
    Ntfs {
        label: &'static str,
        wim: Option<PathBuf>,
        bitlocker: bool,
    },
    Fat32,
    Nothing,
}

/// A sparse raw disk of `mib` MiB partitioned by sfdisk with `script`, its partitions
/// filled in order. Returns the partitions' (start sector, sector count) as sfdisk put them.
fn build_raw(out: &Path, mib: u64, script: &str, fills: Vec<Fill>) -> Vec<(u64, u64)> {
    std::fs::File::create(out)
        .unwrap()
        .set_len(mib * MIB)
        .unwrap();
    run_stdin("sfdisk", &["-q", s(out)], script);
    let j: Value = serde_json::from_slice(&run("sfdisk", &["--json", s(out)])).unwrap();
    let parts: Vec<(u64, u64)> = j["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(parts.len(), fills.len(), "{script}");
    for (i, (fill, &(start, size))) in fills.into_iter().zip(&parts).enumerate() {
        match fill {
            Fill::Ntfs {
                label,
                wim,
                bitlocker,
            } => {
                let vol = out.with_extension(format!("p{}", i + 1));
                ntfs_volume(&vol, size * 512, start, label, wim.as_deref());
                if bitlocker {
                    write_at(&vol, 3, b"-FVE-FS-");
                }
                dd_into(&vol, out, start);
                std::fs::remove_file(&vol).unwrap();
            }
            Fill::Fat32 => {
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
                        s(out),
                        &(size / 2).to_string(),
                    ],
                );
            }
            Fill::Nothing => {}
        }
    }
    parts
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// MBR: "System Reserved" (NTFS, 8 MiB), then Windows (NTFS): partition 2.
    Gen1,
    /// GPT: ESP (FAT32, 34 MiB), MSR (16 MiB), Windows (NTFS, 60 MiB): partition 3, Recovery
    /// (NTFS) after it.
    Gen2,
}

impl Layout {
    fn windows_partition(self) -> u32 {
        match self {
            Layout::Gen1 => 2,
            Layout::Gen2 => 3,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Layout::Gen1 => "gen1",
            Layout::Gen2 => "gen2",
        }
    }
}

const GEN1: &str = "label: dos\nstart=2048, size=16384, type=7, bootable\nstart=18432, type=7\n";
const GEN2: &str = "label: gpt\n\
    start=2048, size=34MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI system partition\"\n\
    size=16MiB, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE, name=\"Microsoft reserved partition\"\n\
    size=60MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"Basic data partition\"\n\
    type=DE94BBA4-06D1-4D40-A16A-BFD50179D6AC, name=\"Recovery\"\n";

/// The raw disk of a layout with `h` in its Windows partition (built once).
fn raw(layout: Layout, h: Hives) -> PathBuf {
    cached(&format!("raw-{}-{}", layout.name(), h.name()), || {
        let out = workdir().join(format!("{}-{}.raw", layout.name(), h.name()));
        let windows = Fill::Ntfs {
            label: "Windows",
            wim: Some(hives_wim(h)),
            bitlocker: false,
        };
        match layout {
            Layout::Gen1 => build_raw(
                &out,
                64,
                GEN1,
                vec![
                    Fill::Ntfs {
                        label: "System Reserved",
                        wim: Some(system_reserved_wim()),
                        bitlocker: false,
                    },
                    windows,
                ],
            ),
            Layout::Gen2 => build_raw(
                &out,
                128,
                GEN2,
                vec![
                    Fill::Fat32,
                    Fill::Nothing,
                    windows,
                    Fill::Ntfs {
                        label: "Recovery",
                        wim: Some(recovery_wim()),
                        bitlocker: false,
                    },
                ],
            ),
        };
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

const CONTAINERS: [Container; 5] = [
    Container::Raw,
    Container::VhdFixed,
    Container::VhdDynamic,
    Container::VhdxFixed,
    Container::VhdxDynamic,
];

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
}

/// `raw` converted by qemu-img into `c`, at `out`.
fn convert(raw: &Path, c: Container, out: &Path) {
    let (fmt, opts) = match c {
        Container::Raw => {
            run("cp", &["--sparse=always", s(raw), s(out)]);
            return;
        }
        Container::VhdFixed => ("vpc", "subformat=fixed,force_size=on"),
        Container::VhdDynamic => ("vpc", "subformat=dynamic,force_size=on"),
        Container::VhdxFixed => ("vhdx", "subformat=fixed"),
        Container::VhdxDynamic => ("vhdx", "subformat=dynamic"),
    };
    run(
        "qemu-img",
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            fmt,
            "-o",
            opts,
            s(raw),
            s(out),
        ],
    );
}

/// A layout with `h`, in container `c` (built once).
fn image(layout: Layout, h: Hives, c: Container) -> PathBuf {
    let name = format!("{}-{}.{}", layout.name(), h.name(), c.ext());
    cached(&name.clone(), || {
        let out = workdir().join(format!("img-{name}"));
        convert(&raw(layout, h), c, &out);
        out
    })
}

/// A bare NTFS volume image (no partition table) with `h`, and `root` files copied in.
fn volume_image(key: &str, h: Option<Hives>, root: &[(&str, Vec<u8>)]) -> PathBuf {
    cached(&format!("vol-{key}"), || {
        let out = workdir().join(format!("vol-{key}.img"));
        let wim = match h {
            Some(h) => hives_wim(h),
            None => files_wim(
                "nowin",
                &[
                    (
                        "Program Files/app/app.exe",
                        Content::Bytes(ntfs::noise(3, 20_000)),
                    ),
                    (
                        "Users/me/Documents/notes.txt",
                        Content::Bytes(b"no Windows here".to_vec()),
                    ),
                    ("Windows/Fonts/x.ttf", Content::Bytes(ntfs::noise(4, 900))),
                ],
            ),
        };
        ntfs_volume(&out, 40 * MIB, 0, "Windows", Some(&wim));
        for (name, data) in root {
            ntfscp(&out, name, data);
        }
        out
    })
}

// ---- Running guestwall -----------------------------------------------------------------------

/// Runs guestwall with a 20 s limit (a hang fails the test); output goes to files, so that a
/// full pipe cannot look like a hang.
fn gw_timeout(args: &[&str]) -> Output {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, e) = (
        workdir().join(format!("out-{n}")),
        workdir().join(format!("err-{n}")),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_guestwall"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("guestwall {args:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

/// Replaces `from` by `to` in every string of `v`.
fn replace_all(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(x) if x.contains(from) => *x = x.replace(from, to),
        Value::Array(a) => a.iter_mut().for_each(|x| replace_all(x, from, to)),
        Value::Object(m) => m.values_mut().for_each(|x| replace_all(x, from, to)),
        _ => {}
    }
}

/// Removes, everywhere in `v`, the findings whose text starts with `start`; returns how many.
fn drop_findings(v: &mut Value, start: &str) -> usize {
    match v {
        Value::Array(a) => {
            let before = a.len();
            a.retain(|x| !x["detail"].as_str().is_some_and(|t| t.starts_with(start)));
            before - a.len() + a.iter_mut().map(|x| drop_findings(x, start)).sum::<usize>()
        }
        Value::Object(m) => m.values_mut().map(|x| drop_findings(x, start)).sum(),
        _ => 0,
    }
}

fn contains_str(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(x) => x.contains(needle),
        Value::Array(a) => a.iter().any(|x| contains_str(x, needle)),
        Value::Object(m) => m.values().any(|x| contains_str(x, needle)),
        _ => false,
    }
}

/// How guestwall names a file inside `img`: `IMG::partition N::` or `IMG::`.
fn prefix(img: &Path, partition: Option<u32>) -> String {
    match partition {
        Some(n) => format!("{}::partition {n}::", img.display()),
        None => format!("{}::", img.display()),
    }
}

/// The one note that is worded differently, by design, for a hive file and for an image.
const NO_SOFTWARE_FILE: &str = "no SOFTWARE hive beside SYSTEM: the Group Policy store and the OS version are unknown (pass --software FILE)";
const NO_SOFTWARE_IMAGE: &str = "no SOFTWARE hive in the image's System32\\config: the Group Policy store and the OS version are unknown";

/// Asserts that `diagnose IMG --json` equals `diagnose HIVE --json` apart from `target` and
/// the paths of the hive files (`IMG::partition N::Windows/...` against
/// `TREE/Windows/...`), and that the text output names the hive inside the image. Returns
/// the exit code.
fn assert_diagnoses_like_hive(img: &Path, partition: Option<u32>, h: Hives) -> i32 {
    let os = (h == Hives::Win7).then_some(OS_NAME);
    assert_diagnoses_like_tree(img, partition, &hive_tree(h), h == Hives::Dirty, os)
}

/// [`assert_diagnoses_like_hive`] against the hives in `tree/Windows/System32/config`;
/// `dirty`: a note must name the hive in the image; `os`: the OS name SOFTWARE gives.
fn assert_diagnoses_like_tree(
    img: &Path,
    partition: Option<u32>,
    tree: &Path,
    dirty: bool,
    os: Option<&str>,
) -> i32 {
    let what = img.display().to_string();
    let a = gw(&["diagnose", &what, "--json"]);
    let b = gwp(
        &["diagnose", "--json"],
        &tree.join("Windows/System32/config/SYSTEM"),
    );
    let code = a.status.code().unwrap();
    assert!(code == 0 || code == 1, "{what}: {}", stderr(&a));
    assert_eq!(a.status.code(), b.status.code(), "{what}: exit code");
    let (mut ja, mut jb) = (json(&a), json(&b));
    assert_eq!(ja["target"], Value::String(what.clone()));
    ja.as_object_mut().unwrap().remove("target");
    jb.as_object_mut().unwrap().remove("target");
    let pre = prefix(img, partition);
    // A dirty hive's note names it: the image's location must be what the note says.
    if dirty {
        assert!(
            contains_str(&ja, &format!("{pre}Windows/System32/config/SYSTEM")),
            "{what}: no note names the hive inside the image:\n{ja:#}"
        );
    }
    // Hives inside an image are read lazily, and a note says how much of them was read.
    assert!(
        drop_findings(
            &mut ja,
            "read lazily, only what the diagnosis needs: SYSTEM "
        ) > 0,
        "{what}: no note says the hives were read lazily:\n{ja:#}"
    );
    replace_all(&mut ja, &pre, "<ROOT>/");
    replace_all(&mut jb, &format!("{}/", tree.display()), "<ROOT>/");
    replace_all(&mut ja, NO_SOFTWARE_IMAGE, "<NO SOFTWARE>");
    replace_all(&mut jb, NO_SOFTWARE_FILE, "<NO SOFTWARE>");
    assert!(
        ja == jb,
        "{what}: diagnose differs from the hive file's\n--- image ---\n{ja:#}\n--- file ---\n{jb:#}"
    );
    if let Some(os) = os {
        assert_eq!(ja["os"]["name"], os, "{what}: the OS from SOFTWARE");
        assert_eq!(ja["os"]["inferred"], false, "{what}");
    }
    let t = gw(&["diagnose", &what]);
    assert_eq!(t.status.code(), Some(code), "{what}: {}", stderr(&t));
    let first = format!("{pre}Windows/System32/config/SYSTEM: ControlSet001");
    assert!(
        stdout(&t).starts_with(&first),
        "{what}: text output should start with {first:?}:\n{}",
        stdout(&t)
    );
    code
}

fn every_container_diagnoses_like_the_hive_file(layout: Layout, h: Hives) {
    if ready().is_none() {
        return;
    }
    let t0 = Instant::now();
    let raw = raw(layout, h);
    let dir = workdir().join(format!("containers-{}-{}", layout.name(), h.name()));
    std::fs::create_dir_all(&dir).unwrap();
    for c in CONTAINERS {
        let img = dir.join(format!("disk.{}", c.ext()));
        convert(&raw, c, &img);
        let code = assert_diagnoses_like_hive(&img, Some(layout.windows_partition()), h);
        assert_eq!(code, 1, "{c:?}: these hives block RDP");
        std::fs::remove_file(&img).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    notice(&format!(
        "{layout:?} {h:?}: 5 containers in {:.1} s",
        t0.elapsed().as_secs_f64()
    ));
}

// ---- 1. Every container and layout reads like the hive files -------------------------------

#[test]
fn gen1_win7_every_container_diagnoses_like_the_hive_file() {
    every_container_diagnoses_like_the_hive_file(Layout::Gen1, Hives::Win7);
}

#[test]
fn gen1_dirty_hive_every_container_diagnoses_like_the_hive_file() {
    every_container_diagnoses_like_the_hive_file(Layout::Gen1, Hives::Dirty);
}

#[test]
fn gen2_win7_every_container_diagnoses_like_the_hive_file() {
    every_container_diagnoses_like_the_hive_file(Layout::Gen2, Hives::Win7);
}

#[test]
fn gen2_dirty_hive_every_container_diagnoses_like_the_hive_file() {
    every_container_diagnoses_like_the_hive_file(Layout::Gen2, Hives::Dirty);
}

#[test]
fn volume_image_diagnoses_like_the_hive_file() {
    if ready().is_none() {
        return;
    }
    for h in [Hives::Win7, Hives::Dirty, Hives::Healthy] {
        let img = volume_image(h.name(), Some(h), &[]);
        let code = assert_diagnoses_like_hive(&img, None, h);
        assert_eq!(code, if h == Hives::Healthy { 0 } else { 1 }, "{h:?}");
    }
}

// ---- 2, 3. script and netsh show ------------------------------------------------------------

#[test]
fn script_from_an_image_is_the_script_from_the_hive_file() {
    if ready().is_none() {
        return;
    }
    for (layout, h, c) in [
        (Layout::Gen2, Hives::Win7, Container::VhdxDynamic),
        (Layout::Gen1, Hives::Dirty, Container::VhdFixed),
    ] {
        let img = image(layout, h, c);
        let hive = hive_path(h);
        for flags in [
            &[][..],
            &["--powershell"][..],
            &["--offline-cmd", "--drive", "F"][..],
        ] {
            let mut a = vec!["script"];
            a.extend_from_slice(flags);
            let x = gwp(&a, &img);
            let y = gwp(&a, &hive);
            assert_eq!(x.status.code(), Some(0), "{}", stderr(&x));
            assert_eq!(y.status.code(), Some(0), "{}", stderr(&y));
            let pre = prefix(&img, Some(layout.windows_partition()));
            let root = format!("{}/", hive_tree(h).display());
            let (sx, sy) = (stdout(&x), stdout(&y));
            assert!(
                sx.contains(&pre),
                "{img:?} {flags:?}: the script names the image:\n{sx}"
            );
            let nx: Vec<String> = sx.lines().map(|l| l.replace(&pre, "<ROOT>/")).collect();
            let ny: Vec<String> = sy.lines().map(|l| l.replace(&root, "<ROOT>/")).collect();
            assert_eq!(nx, ny, "{img:?} {flags:?}");
            // Only the lines naming the target differ.
            let differing = sx.lines().zip(sy.lines()).filter(|(p, q)| p != q).count();
            let naming = sx.lines().filter(|l| l.contains(&pre)).count();
            assert_eq!(differing, naming, "{img:?} {flags:?}");
        }
    }
}

#[test]
fn netsh_show_from_an_image_is_netsh_show_from_the_hive_file() {
    if ready().is_none() {
        return;
    }
    for (layout, h, c) in [
        (Layout::Gen2, Hives::Win7, Container::VhdxDynamic),
        (Layout::Gen1, Hives::Dirty, Container::VhdDynamic),
    ] {
        let img = image(layout, h, c);
        let hive = hive_path(h);
        for cmd in [
            &[
                "advfirewall",
                "firewall",
                "show",
                "rule",
                "name=all",
                "dir=in",
            ][..],
            &["advfirewall", "show", "allprofiles"][..],
        ] {
            let run = |target: &Path| {
                let mut a = vec!["netsh", "--system", s(target)];
                a.extend_from_slice(cmd);
                gw(&a)
            };
            let (x, y) = (run(&img), run(&hive));
            assert_eq!(x.status.code(), Some(0), "{img:?} {cmd:?}: {}", stderr(&x));
            assert_eq!(y.status.code(), Some(0), "{cmd:?}: {}", stderr(&y));
            assert!(x.stdout.len() > 200, "{cmd:?}: {}", stdout(&x));
            assert!(
                x.stdout == y.stdout,
                "{img:?} {cmd:?}: netsh output differs\n--- image ---\n{}\n--- file ---\n{}",
                stdout(&x),
                stdout(&y)
            );
        }
    }
}

// ---- 4. Refusals ---------------------------------------------------------------------------

fn file_hash(p: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    use std::io::Read;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut f = std::fs::File::open(p).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        buf[..n].hash(&mut h);
    }
    h.finish()
}

/// The image, its modification time, and the folder's listing, before and after.
struct Untouched {
    img: PathBuf,
    hash: u64,
    mtime: std::time::SystemTime,
    files: Vec<String>,
}

impl Untouched {
    fn new(img: &Path) -> Untouched {
        Untouched {
            img: img.to_path_buf(),
            hash: file_hash(img),
            mtime: std::fs::metadata(img).unwrap().modified().unwrap(),
            files: listing(img.parent().unwrap()),
        }
    }
    fn check(&self, what: &str) {
        assert_eq!(file_hash(&self.img), self.hash, "{what}: the image changed");
        assert_eq!(
            std::fs::metadata(&self.img).unwrap().modified().unwrap(),
            self.mtime,
            "{what}: the image was written"
        );
        assert_eq!(
            listing(self.img.parent().unwrap()),
            self.files,
            "{what}: files appeared beside the image"
        );
    }
}

/// Reading commands and dry runs never write: the image stays byte-identical and nothing is
/// created beside it. (Issue 10 refused every writing command on an image; issue 11 writes
/// in place, so only the outcome that holds for both is asserted for the dry runs.)
#[test]
fn reads_and_dry_runs_leave_an_image_byte_identical() {
    if ready().is_none() {
        return;
    }
    for (layout, c) in [
        (Layout::Gen1, Container::VhdFixed),
        (Layout::Gen2, Container::VhdxDynamic),
        (Layout::Gen2, Container::Raw),
    ] {
        let dir = workdir().join(format!("untouched-{}-{}", layout.name(), c.ext()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join(format!("os-disk.{}", c.ext()));
        convert(&raw(layout, Hives::Win7), c, &img);
        let before = Untouched::new(&img);
        let i = s(&img);
        let set = [
            "advfirewall",
            "firewall",
            "set",
            "rule",
            "group=Remote Desktop",
            "new",
            "enable=yes",
        ];
        let mut netsh_dry = vec!["netsh", "--dry-run", "--system", i];
        netsh_dry.extend_from_slice(&set);
        for args in [
            vec!["diagnose", i],
            vec!["diagnose", "--json", i],
            vec!["script", i],
            vec!["netsh", "--system", i, "advfirewall", "show", "allprofiles"],
            vec!["fix", "--dry-run", i],
            vec!["fix", "--dry-run", "--json", i],
            vec!["undo", "--dry-run", i],
            vec!["undo", "--list", i],
            netsh_dry,
        ] {
            let o = gw_timeout(&args);
            assert_handled(&o, &format!("{args:?}"));
            before.check(&format!("{args:?}"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `undo --dry-run` after an in-place repair only says what it would restore: the image keeps
/// the repair and the journal stays; the real undo then gives back the original bytes, and a
/// second undo has nothing to do (exit 1, as for hive files).
#[test]
fn an_undo_dry_run_after_an_in_place_repair_writes_nothing() {
    if ready().is_none() {
        return;
    }
    for (layout, c) in [
        (Layout::Gen1, Container::VhdFixed),
        (Layout::Gen2, Container::VhdxDynamic),
    ] {
        let dir = workdir().join(format!("undo-dry-{}-{}", layout.name(), c.ext()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join(format!("os-disk.{}", c.ext()));
        convert(&raw(layout, Hives::Win7), c, &img);
        let original = file_hash(&img);
        let i = s(&img);
        let o = gw(&["undo", i]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "nothing to undo yet: {}",
            stderr(&o)
        );
        let o = gw(&["fix", i]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let repaired = file_hash(&img);
        assert_ne!(repaired, original);
        let journal = dir.join(format!("os-disk.{}.guestwall-journal", c.ext()));
        assert!(journal.exists());
        let o = gw(&["undo", "--list", i]);
        assert!(
            stdout(&o).contains(".guestwall-journal") && stdout(&o).contains("next to undo"),
            "undo --list does not show the journal: {}",
            stdout(&o)
        );
        let o = gw(&["undo", "--dry-run", i]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("would restore"), "{}", stdout(&o));
        assert_eq!(file_hash(&img), repaired, "{c:?}: the dry run wrote");
        assert!(journal.exists(), "{c:?}: the dry run moved the journal");
        let o = gw(&["undo", i]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            file_hash(&img),
            original,
            "{c:?}: undo is not byte-identical"
        );
        let o = gw(&["undo", i]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A dirty Windows 10 hive copied in as a plain (not sparse) file, with its logs and the slack
/// Windows leaves after the last bin: `fix` replays the logs, writes the hive clean with a
/// sequence number above every log entry into the file's own clusters (the tail kept), and
/// `undo` gives back the image byte for byte.
#[test]
fn a_dirty_hive_with_slack_is_repaired_in_place_and_undone() {
    let Some(c) = ready() else {
        return;
    };
    let dir = workdir().join("dirty-slack");
    std::fs::create_dir_all(&dir).unwrap();
    let wim = files_wim(
        "dirty-slack",
        &[("Windows/System32/config/.keep", Content::Bytes(Vec::new()))],
    );
    let vol = dir.join("c.img");
    ntfs_volume(&vol, 80 * MIB, 0, "Windows", Some(&wim));
    for ext in ["", ".LOG1", ".LOG2"] {
        let data = std::fs::read(c.join(format!("regipy/SYSTEM_B{ext}"))).unwrap();
        ntfscp(&vol, &format!("Windows/System32/config/SYSTEM{ext}"), &data);
    }
    let img = dir.join("os-disk.vhdx");
    convert(&vol, Container::VhdxDynamic, &img);
    let original = file_hash(&img);
    let i = s(&img);
    let o = gw(&["fix", i]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("its logs were replayed first"),
        "{}",
        stdout(&o)
    );
    let inner = format!("{i}::Windows/System32/config/SYSTEM");
    let o = gw(&["hive", "info", "--no-logs", &inner]);
    let info = stdout(&o);
    assert!(
        info.contains("2131 / 2131") && info.contains("clean"),
        "{info}"
    );
    let o = gw(&["diagnose", i]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = gw(&["undo", i]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(file_hash(&img), original, "undo is not byte-identical");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write guestwall must refuse (a hibernated Windows resumes with the registry it holds in
/// memory, and with issue 10 every image is refused): exit 2, the image named, nothing written.
#[test]
fn refused_writes_name_the_image_and_leave_it_byte_identical() {
    if ready().is_none() {
        return;
    }
    let hiber = [b"hibr".as_slice(), &ntfs::noise(5, 200_000)].concat();
    let src = volume_image("hibernated", Some(Hives::Win7), &[("hiberfil.sys", hiber)]);
    let dir = workdir().join("refused");
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("hibernated.img");
    run("cp", &["--sparse=always", s(&src), s(&img)]);
    let before = Untouched::new(&img);
    let i = s(&img);
    for args in [
        vec!["fix", i],
        vec!["fix", "--json", i],
        vec!["fix", "--firewall-off", i],
        vec![
            "netsh",
            "--system",
            i,
            "advfirewall",
            "firewall",
            "set",
            "rule",
            "group=Remote Desktop",
            "new",
            "enable=yes",
        ],
        vec![
            "netsh",
            "--system",
            i,
            "advfirewall",
            "set",
            "allprofiles",
            "state",
            "off",
        ],
    ] {
        let o = gw(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with("guestwall: error: ") && e.contains(i),
            "{args:?}: {e}"
        );
        before.check(&format!("{args:?}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn qcow2_is_refused_with_a_hint_to_convert() {
    if ready().is_none() {
        return;
    }
    let q = workdir().join("disk.qcow2");
    run(
        "qemu-img",
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "qcow2",
            s(&raw(Layout::Gen1, Hives::Win7)),
            s(&q),
        ],
    );
    for cmd in ["diagnose", "script", "fix"] {
        let o = gwp(&[cmd], &q);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let e = stderr(&o);
        assert!(
            e.contains("QCOW2") && e.contains("convert") && e.contains(s(&q)),
            "{cmd}: {e}"
        );
    }
    std::fs::remove_file(&q).unwrap();
}

#[test]
fn partition_option_is_checked() {
    if ready().is_none() {
        return;
    }
    let img = image(Layout::Gen1, Hives::Win7, Container::VhdDynamic);
    let i = s(&img);
    let o = gw(&["diagnose", "--partition", "9", i]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no Windows installation on partition 9"),
        "{}",
        stderr(&o)
    );
    // Partition 1 is System Reserved: NTFS, but no Windows.
    let o = gw(&["diagnose", "--partition", "1", i]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no Windows installation on partition 1"),
        "{}",
        stderr(&o)
    );
    let o = gw(&["diagnose", "--partition", "2", i]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(&prefix(&img, Some(2))));
    // --partition 0 is not a partition number.
    let o = gw(&["diagnose", "--partition", "0", i]);
    assert_eq!(o.status.code(), Some(2));
    // --software does not apply to an image: its SOFTWARE is read from inside it.
    let o = gw(&[
        "diagnose",
        "--software",
        s(&hive_tree(Hives::Win7).join("Windows/System32/config/SOFTWARE")),
        i,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--software does not apply to a disk image"),
        "{}",
        stderr(&o)
    );
    // On a hive file it does not apply.
    let hive = hive_path(Hives::Win7);
    for cmd in ["diagnose", "script"] {
        let o = gwp(&[cmd, "--partition", "1"], &hive);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(
            stderr(&o).contains("--partition applies to a disk image"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
}

// ---- 5. Hostile and odd images ---------------------------------------------------------------

#[test]
fn bitlocker_volume_is_named() {
    if ready().is_none() {
        return;
    }
    // One partition, encrypted (the BitLocker signature at offset 3 of its boot sector).
    let disk = cached("bitlocker-mbr", || {
        let out = workdir().join("bitlocker.raw");
        build_raw(
            &out,
            48,
            "label: dos\nstart=2048, type=7\n",
            vec![Fill::Ntfs {
                label: "Windows",
                wim: Some(hives_wim(Hives::Win7)),
                bitlocker: true,
            }],
        );
        out
    });
    for c in [Container::Raw, Container::VhdxDynamic] {
        let img = workdir().join(format!("bitlocker.{}", c.ext()));
        if c != Container::Raw {
            convert(&disk, c, &img);
        }
        let img = if c == Container::Raw {
            disk.clone()
        } else {
            img
        };
        let o = gwp(&["diagnose"], &img);
        assert_eq!(o.status.code(), Some(2), "{c:?}");
        let e = stderr(&o);
        assert!(
            e.contains("BitLocker") && e.contains("partition 1") && e.contains("no Windows"),
            "{c:?}: {e}"
        );
    }
    // A bare volume image.
    let vol = workdir().join("bitlocker-vol.img");
    run(
        "cp",
        &[
            "--sparse=always",
            s(&volume_image("win7", Some(Hives::Win7), &[])),
            s(&vol),
        ],
    );
    write_at(&vol, 3, b"-FVE-FS-");
    let o = gwp(&["diagnose"], &vol);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("BitLocker"), "{}", stderr(&o));
}

#[test]
fn no_windows_installation_is_said() {
    if ready().is_none() {
        return;
    }
    let vol = volume_image("nowin", None, &[]);
    let o = gwp(&["diagnose"], &vol);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no Windows installation"),
        "{}",
        stderr(&o)
    );
    // A Gen2 disk whose only NTFS volumes are System Reserved-like and Recovery.
    let disk = cached("gen2-nowin", || {
        let out = workdir().join("gen2-nowin.raw");
        build_raw(
            &out,
            128,
            GEN2,
            vec![
                Fill::Fat32,
                Fill::Nothing,
                Fill::Ntfs {
                    label: "Data",
                    wim: Some(system_reserved_wim()),
                    bitlocker: false,
                },
                Fill::Ntfs {
                    label: "Recovery",
                    wim: Some(recovery_wim()),
                    bitlocker: false,
                },
            ],
        );
        out
    });
    let o = gwp(&["diagnose", "--json"], &disk);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no Windows installation on any partition"),
        "{}",
        stderr(&o)
    );
    assert!(json(&o).to_string().contains("no Windows installation"));
}

#[test]
fn two_windows_installations_need_partition() {
    if ready().is_none() {
        return;
    }
    // Gen1, with a (healthy) Windows on partition 1 as well as the Win7 one on partition 2.
    let raw = cached("two-windows", || {
        let out = workdir().join("two-windows.raw");
        build_raw(
            &out,
            80,
            "label: dos\nstart=2048, size=40960, type=7, bootable\nstart=43008, type=7\n",
            vec![
                Fill::Ntfs {
                    label: "Old",
                    wim: Some(hives_wim(Hives::Healthy)),
                    bitlocker: false,
                },
                Fill::Ntfs {
                    label: "Windows",
                    wim: Some(hives_wim(Hives::Win7)),
                    bitlocker: false,
                },
            ],
        );
        out
    });
    let img = workdir().join("two-windows.vhdx");
    convert(&raw, Container::VhdxDynamic, &img);
    for cmd in ["diagnose", "script"] {
        let o = gwp(&[cmd], &img);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let e = stderr(&o);
        assert!(
            e.contains("several Windows installations")
                && e.contains("partition 1")
                && e.contains("partition 2")
                && e.contains("--partition"),
            "{cmd}: {e}"
        );
    }
    let code = {
        let o = gwp(&["diagnose", "--partition", "1"], &img);
        assert!(stdout(&o).starts_with(&prefix(&img, Some(1))));
        o.status.code()
    };
    assert_eq!(code, Some(0), "the healthy one");
    let o = gwp(&["diagnose", "--partition", "2"], &img);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(&prefix(&img, Some(2))));
    let o = gw(&[
        "netsh",
        "--system",
        s(&img),
        "--partition",
        "2",
        "advfirewall",
        "show",
        "allprofiles",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::remove_file(&img).unwrap();
}

/// A one-partition MBR disk whose NTFS volume has the given folders, each with
/// `System32/config/SYSTEM` (`healthy`: the sample healthy hive, else the Windows 7 one).
fn folders_disk(key: &str, folders: &[(&'static str, bool)]) -> PathBuf {
    let corpus = corpus().unwrap();
    let paths: Vec<String> = folders
        .iter()
        .map(|(f, _)| format!("{f}/System32/config/SYSTEM"))
        .collect();
    let files: Vec<(&str, Content)> = folders
        .iter()
        .zip(&paths)
        .map(|((_, healthy), p)| {
            let c = if *healthy {
                Content::Bytes(guestwall_samples::healthy_rdp_system().unwrap())
            } else {
                Content::Copy(corpus.join("regipy/SYSTEM"))
            };
            (p.as_str(), c)
        })
        .collect();
    let wim = files_wim(key, &files);
    cached(key, || {
        let out = workdir().join(format!("{key}.raw"));
        build_raw(
            &out,
            40,
            "label: dos\nstart=2048, type=7\n",
            vec![Fill::Ntfs {
                label: "Windows",
                wim: Some(wim),
                bitlocker: false,
            }],
        );
        out
    })
}

/// Two Windows folders on one volume. `Windows` and `Win2` (an in-place reinstall, or
/// Windows.old): the folder named Windows is read and the other noted. `WinA` and `WinB`:
/// an error listing both that does not send the user to `--partition`, which cannot choose.
/// (The error used to say "choose one with --partition N" in both cases.)
#[test]
fn two_windows_folders_on_one_partition() {
    if ready().is_none() {
        return;
    }
    let raw = folders_disk("folders-win2", &[("Windows", true), ("Win2", false)]);
    for args in [&["diagnose"][..], &["diagnose", "--partition", "1"][..]] {
        let o = gwp(args, &raw);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.starts_with(&format!(
                "{}Windows/System32/config/SYSTEM",
                prefix(&raw, Some(1))
            )),
            "{out}"
        );
        let mut a = args.to_vec();
        a.push("--json");
        let j = json(&gwp(&a, &raw));
        assert!(
            contains_str(&j["findings"], "Win2 also holds a Windows installation"),
            "{args:?}: {j:#}"
        );
    }
    let raw = folders_disk("folders-ab", &[("WinA", true), ("WinB", false)]);
    for args in [&["diagnose"][..], &["diagnose", "--partition", "1"][..]] {
        let o = gwp(args, &raw);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains("(WinA)") && e.contains("(WinB)"),
            "{args:?}: {e}"
        );
        assert!(
            !e.contains("choose one with --partition"),
            "{args:?}: --partition cannot choose between folders of one partition: {e}"
        );
    }
}

#[test]
fn hibernated_windows_is_diagnosed_with_a_note() {
    if ready().is_none() {
        return;
    }
    let hiber = [b"hibr".as_slice(), &ntfs::noise(5, 200_000)].concat();
    let vol = volume_image("hibernated", Some(Hives::Win7), &[("hiberfil.sys", hiber)]);
    assert_eq!(
        run("ntfscat", &["-f", s(&vol), "/hiberfil.sys"])[..4],
        *b"hibr",
        "the image holds a hibernation file"
    );
    let o = gwp(&["diagnose", "--json"], &vol);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j = json(&o);
    let notes: Vec<&Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["detail"].as_str().unwrap_or("").contains("hibernated"))
        .collect();
    assert_eq!(notes.len(), 1, "{j:#}");
    assert!(notes[0]["detail"].as_str().unwrap().contains(s(&vol)));
    let o = gwp(&["diagnose"], &vol);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("hibernated"), "{}", stdout(&o));
    // Writing is refused anyway.
    let o = gwp(&["fix"], &vol);
    assert_eq!(o.status.code(), Some(2));
}

/// Exit 0, 1 or 2 (with guestwall's error line), never a panic (101) or a signal.
fn assert_handled(o: &Output, what: &str) {
    match o.status.code() {
        Some(0 | 1) => {}
        Some(2) => assert!(
            stderr(o).starts_with("guestwall: error: "),
            "{what}: {}",
            stderr(o)
        ),
        other => panic!(
            "{what}: exit {other:?} (a crash):\n{}\n{}",
            stdout(o),
            stderr(o)
        ),
    }
}

#[test]
fn truncated_and_damaged_images_never_crash_or_hang() {
    if ready().is_none() {
        return;
    }
    let t0 = Instant::now();
    let mut runs = 0;
    let dir = workdir().join("damaged");
    std::fs::create_dir_all(&dir).unwrap();
    for (layout, c) in [
        (Layout::Gen1, Container::Raw),
        (Layout::Gen2, Container::Raw),
        (Layout::Gen1, Container::VhdFixed),
        (Layout::Gen1, Container::VhdDynamic),
        (Layout::Gen2, Container::VhdxDynamic),
        (Layout::Gen2, Container::VhdxFixed),
    ] {
        let good = image(layout, Hives::Win7, c);
        let len = std::fs::metadata(&good).unwrap().len();
        let bad = dir.join(format!("bad.{}", c.ext()));
        let win = match layout {
            Layout::Gen1 => 18432 * 512,
            Layout::Gen2 => 51 * MIB,
        };
        // Truncations.
        let mut cuts = vec![
            0,
            1,
            511,
            512,
            1024,
            4096,
            65536,
            128 << 10,
            192 << 10,
            MIB,
            MIB + 512,
            4 * MIB,
            win,
            win + 4096,
            win + 5 * MIB,
            len / 2,
            len - 512,
            len - 1,
        ];
        cuts.retain(|&c| c < len);
        for cut in cuts {
            run("cp", &["--sparse=always", s(&good), s(&bad)]);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&bad)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let o = gw_timeout(&["diagnose", s(&bad)]);
            assert_handled(&o, &format!("{c:?} {layout:?} cut at {cut}"));
            runs += 1;
        }
        // Byte flips in the headers: the container's, the partition table's, and the
        // Windows volume's boot sector (for raw and fixed VHD, where it is at its offset).
        run("cp", &["--sparse=always", s(&good), s(&bad)]);
        let mut spots: Vec<u64> = match c {
            Container::VhdxDynamic | Container::VhdxFixed => vec![
                0, 8, 0x10000, 0x10008, 0x10010, 0x10040, 0x20000, 0x20008, 0x30000, 0x30010,
                0x30020, 0x40010,
            ],
            Container::VhdDynamic => vec![0, 0x28, 0x30, 0x3c, 0x40, 0x200, 0x210, 0x21c, 0x600],
            _ => vec![],
        };
        if matches!(c, Container::Raw | Container::VhdFixed) {
            spots.extend([
                0x1be, 0x1c6, 0x1ca, 0x1ce, 0x1d6, 0x1fe, 0x200, 0x248, 0x250,
            ]);
            spots.extend([
                win + 3,
                win + 0x0b,
                win + 0x0d,
                win + 0x30,
                win + 0x40,
                win + 0x44,
            ]);
        }
        if c == Container::VhdFixed {
            spots.extend([len - 512, len - 512 + 0x30, len - 512 + 0x3c]);
        }
        for at in spots {
            let orig = read_at(&bad, at, 8);
            for pattern in [[0xffu8; 8], [0u8; 8]] {
                let flipped: Vec<u8> = if pattern[0] == 0xff {
                    orig.iter().map(|b| !b).collect()
                } else {
                    pattern.to_vec()
                };
                write_at(&bad, at, &flipped);
                let o = gw_timeout(&["diagnose", s(&bad)]);
                assert_handled(
                    &o,
                    &format!("{c:?} {layout:?} bytes at {at:#x} = {flipped:02x?}"),
                );
                runs += 1;
            }
            write_at(&bad, at, &orig);
        }
        std::fs::remove_file(&bad).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    notice(&format!(
        "{runs} damaged images in {:.1} s",
        t0.elapsed().as_secs_f64()
    ));
}

// ---- VHDX differencing -----------------------------------------------------------------------

#[test]
fn vhdx_differencing_child_reads_through_its_parent() {
    if ready().is_none() {
        return;
    }
    let dir = workdir().join("differencing");
    std::fs::create_dir_all(&dir).unwrap();
    let parent_raw = raw(Layout::Gen2, Hives::Win7);
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
    // A child with no changes reads like its parent.
    let same = dir.join("same.avhdx");
    assert_eq!(make_vhdx_child(&parent, &parent_raw, &parent_raw, &same), 0);
    assert_diagnoses_like_hive(&same, Some(3), Hives::Win7);
    // A child where SYSTEM was replaced (ntfscp into the Windows volume): the changed clusters
    // and MFT records come from the child, everything else from the parent.
    let child_raw = dir.join("child.raw");
    run("cp", &["--sparse=always", s(&parent_raw), s(&child_raw)]);
    let vol = dir.join("windows.vol");
    let (start, sectors) = (51 * MIB / 512, 60 * MIB / 512);
    run(
        "dd",
        &[
            &format!("if={}", s(&child_raw)),
            &format!("of={}", s(&vol)),
            "bs=512",
            &format!("skip={start}"),
            &format!("count={sectors}"),
            "conv=sparse",
            "status=none",
        ],
    );
    let healthy = guestwall_samples::healthy_rdp_system().unwrap();
    ntfscp(&vol, "Windows/System32/config/SYSTEM", &healthy);
    assert_eq!(
        run(
            "ntfscat",
            &["-f", s(&vol), "/Windows/System32/config/SYSTEM"]
        ),
        healthy
    );
    dd_into(&vol, &child_raw, start);
    let child = dir.join("child.avhdx");
    let kept = make_vhdx_child(&parent, &parent_raw, &child_raw, &child);
    assert!(
        kept > 0 && kept < 20,
        "the child keeps {kept} of 128 blocks"
    );
    let tree = dir.join("tree");
    ntfs::write_tree(
        &tree,
        &[
            (
                "Windows/System32/config/SYSTEM",
                Content::Bytes(healthy.clone()),
            ),
            (
                "Windows/System32/config/SOFTWARE",
                Content::Bytes(software_hive()),
            ),
        ],
    );
    assert_diagnoses_like_tree(&child, Some(3), &tree, false, Some(OS_NAME));
    // The parent still reads as before, and without its parent the child is an error that
    // names it.
    assert_eq!(gwp(&["diagnose"], &parent).status.code(), Some(1));
    std::fs::rename(&parent, dir.join("moved.vhdx")).unwrap();
    let o = gwp(&["diagnose"], &child);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("parent.vhdx"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An Azure-sized OS disk: 127 GiB, downloaded as a fixed VHD (sparse here), Gen1 layout with
/// a 500 MiB System Reserved partition. Only the structures and the hives are read.
#[test]
fn azure_sized_fixed_vhd_reads_like_the_hive_file() {
    if ready().is_none() {
        return;
    }
    let dir = workdir().join("azure-127g");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("osdisk.raw");
    build_raw(
        &raw,
        127 * 1024,
        "label: dos\nstart=2048, size=1024000, type=7, bootable\nstart=1026048, size=122880, type=7\n",
        vec![
            Fill::Ntfs {
                label: "System Reserved",
                wim: Some(system_reserved_wim()),
                bitlocker: false,
            },
            Fill::Ntfs {
                label: "Windows",
                wim: Some(hives_wim(Hives::Win7)),
                bitlocker: false,
            },
        ],
    );
    let vhd = dir.join("osdisk.vhd");
    convert(&raw, Container::VhdFixed, &vhd);
    std::fs::remove_file(&raw).unwrap();
    assert_eq!(
        std::fs::metadata(&vhd).unwrap().len(),
        127 * 1024 * MIB + 512,
        "Azure's fixed VHD: N MiB + a 512-byte footer"
    );
    let t0 = Instant::now();
    assert_diagnoses_like_hive(&vhd, Some(2), Hives::Win7);
    notice(&format!(
        "127 GiB fixed VHD: diagnose (JSON and text) in {:.2} s",
        t0.elapsed().as_secs_f64()
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The SYSTEM hive's MFT record in a Gen1 raw disk, damaged inside its `$DATA` attribute
/// (the mapping pairs, sizes, flags) 300 times: exit 0, 1 or 2 with an error line, never a
/// crash or a hang.
#[test]
fn damaged_hive_record_in_an_image_never_crashes_or_hangs() {
    if ready().is_none() {
        return;
    }
    let dir = workdir().join("hive-record");
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("disk.raw");
    run(
        "cp",
        &[
            "--sparse=always",
            s(&raw(Layout::Gen1, Hives::Win7)),
            s(&img),
        ],
    );
    let win = 18432 * 512;
    // Which record: ntfsinfo on the partition, copied out.
    let part = dir.join("windows.vol");
    run(
        "dd",
        &[
            &format!("if={}", s(&img)),
            &format!("of={}", s(&part)),
            "bs=512",
            "skip=18432",
            "conv=sparse",
            "status=none",
        ],
    );
    let info = String::from_utf8(run(
        "ntfsinfo",
        &["-f", "-F", "/Windows/System32/config/SYSTEM", s(&part)],
    ))
    .unwrap();
    std::fs::remove_file(&part).unwrap();
    let record: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("Dumping Inode "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no inode in ntfsinfo's output:\n{info}"));
    let boot = read_at(&img, win, 512);
    let cluster = u64::from(u16::from_le_bytes([boot[0x0b], boot[0x0c]])) * u64::from(boot[0x0d]);
    let rec = win + le64(&boot, 0x30) * cluster + record * 1024;
    let r = read_at(&img, rec, 1024);
    assert_eq!(&r[..4], b"FILE");
    // The attributes, to the unnamed $DATA.
    let mut at = usize::from(u16::from_le_bytes([r[0x14], r[0x15]]));
    let data = loop {
        let (ty, len) = (le32(&r, at), le32(&r, at + 4) as usize);
        assert_ne!(ty, u32::MAX, "no $DATA in record {record}");
        if ty == 0x80 {
            break (at, len);
        }
        at += len;
    };
    let noise = ntfs::noise(42, 4 * 300);
    let mut handled = [0usize; 3];
    for i in 0..300 {
        let x = &noise[4 * i..4 * i + 4];
        let off = data.0 + usize::from(u16::from_le_bytes([x[0], x[1]])) % data.1;
        let n = [1usize, 1, 2, 4][usize::from(x[2]) % 4].min(1024 - off);
        // Keep the update sequence's sector ends: a torn record is a simpler case.
        if (510..512).contains(&off) || off + n > 510 && off < 512 {
            continue;
        }
        let orig = read_at(&img, rec + off as u64, n);
        let new: Vec<u8> = orig.iter().map(|b| b ^ x[3].max(1)).collect();
        write_at(&img, rec + off as u64, &new);
        let o = gw_timeout(&["diagnose", s(&img)]);
        let what = format!("record {record} +{off:#x} = {new:02x?}");
        assert_handled(&o, &what);
        if o.status.code() == Some(2) {
            assert!(stderr(&o).contains("partition 2"), "{what}: {}", stderr(&o));
        }
        handled[o.status.code().unwrap() as usize] += 1;
        write_at(&img, rec + off as u64, &orig);
    }
    notice(&format!(
        "SYSTEM's MFT record damaged: exit 0/1/2 = {handled:?}"
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
