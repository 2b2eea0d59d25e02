//! Test helpers: NTFS images built with real tools (mkntfs, wimlib-imagex, ntfs-3g's
//! utilities), the corpus, and parsers for ntfsinfo's output. Nothing binary is checked in.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// True when running under CI, where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Prints a notice on the real stderr.
pub fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTICE: {msg}");
}

/// The shared corpus, or `None` (with a notice; a failure under CI).
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

const TOOLS: &[&str] = &[
    "mkntfs",
    "wimlib-imagex",
    "ntfscat",
    "ntfsinfo",
    "ntfsfix",
    "ntfscp",
    "ntfstruncate",
    "ntfsls",
    "mkfs.vfat",
];

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether ntfs-3g's tools, wimlib and dosfstools are installed (a failure under CI when not).
pub fn tools() -> bool {
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !in_ci(),
        "CI=true but these tools are missing: {missing:?} (apt-get install ntfs-3g wimtools dosfstools)"
    );
    notice(&format!("missing {missing:?}; skipping this test"));
    false
}

/// Corpus and tools both present.
pub fn ready() -> Option<PathBuf> {
    let c = corpus()?;
    tools().then_some(c)
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// This process's scratch directory (older runs' directories are removed).
pub fn workdir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ntfsvol");
        let me = format!("{}-{}", std::process::id(), module_tag());
        if let Ok(rd) = std::fs::read_dir(&base) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
                let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
                if !alive {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let d = base.join(me);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
    .clone()
}

fn module_tag() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// What goes into a file of an image.
pub enum Content {
    /// These bytes.
    Bytes(Vec<u8>),
    /// A copy of this host file.
    Copy(PathBuf),
    /// A sparse file of this size with `data` written at `at`.
    Sparse { size: u64, at: u64, data: Vec<u8> },
}

/// Writes a directory tree.
pub fn write_tree(root: &Path, files: &[(&str, Content)]) {
    for (rel, c) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        match c {
            Content::Bytes(b) => std::fs::write(&p, b).unwrap(),
            Content::Copy(src) => {
                std::fs::copy(src, &p).unwrap();
            }
            Content::Sparse { size, at, data } => {
                use std::os::unix::fs::FileExt;
                let f = std::fs::File::create(&p).unwrap();
                f.set_len(*size).unwrap();
                f.write_all_at(data, *at).unwrap();
            }
        }
    }
}

/// mkntfs on a sparse file of `mib` MiB, then the tree applied with wimlib (which writes into
/// the unmounted volume through libntfs-3g).
pub fn make_volume(name: &str, mib: u64, files: &[(&str, Content)]) -> PathBuf {
    let dir = workdir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    write_tree(&tree, files);
    let img = dir.join("volume.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    run(Command::new("mkntfs")
        .args(["-F", "-f", "-Q", "-q", "-L", name])
        .arg(&img));
    let wim = dir.join("tree.wim");
    run(Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&tree)
        .arg(&wim)
        .arg("--no-acls"));
    run(Command::new("wimlib-imagex")
        .arg("apply")
        .arg(&wim)
        .arg("1")
        .arg(&img));
    img
}

/// The images, built once per test process.
pub fn image(kind: &str) -> PathBuf {
    static IMAGES: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let map = IMAGES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = m.get(kind) {
        return p.clone();
    }
    let corpus = corpus().expect("corpus checked by the caller");
    let reg = corpus.join("regipy");
    let p = match kind {
        "main" => make_volume(
            "main",
            64,
            &[
                (
                    "Windows/System32/config/SYSTEM",
                    Content::Copy(reg.join("SYSTEM")),
                ),
                (
                    "Windows/System32/config/SOFTWARE",
                    Content::Bytes(noise(1, 3 << 20)),
                ),
                (
                    "Windows/System32/drivers/etc/hosts",
                    Content::Bytes(b"127.0.0.1 localhost\n".to_vec()),
                ),
                (
                    "tiny.txt",
                    Content::Bytes(b"a tiny resident file\n".to_vec()),
                ),
                ("empty", Content::Bytes(Vec::new())),
                (
                    "holey",
                    Content::Sparse {
                        size: 3 << 20,
                        at: 2_000_000,
                        data: b"data in the middle of a hole".to_vec(),
                    },
                ),
                (
                    "Users/x/Windows/System32/config/SYSTEM",
                    Content::Bytes(b"regf, but not root-level".to_vec()),
                ),
                (
                    "Data/System32/config/SOFTWARE",
                    Content::Bytes(noise(2, 5000)),
                ),
            ],
        ),
        "two" => make_volume(
            "two",
            64,
            &[
                (
                    "WINDOWS/system32/Config/system",
                    Content::Copy(reg.join("SYSTEM_B")),
                ),
                (
                    "WINDOWS/system32/Config/system.LOG1",
                    Content::Copy(reg.join("SYSTEM_B.LOG1")),
                ),
                (
                    "WINDOWS/system32/Config/SYSTEM.log2",
                    Content::Copy(reg.join("SYSTEM_B.LOG2")),
                ),
                (
                    "WINDOWS/system32/Config/software",
                    Content::Bytes(noise(3, 1 << 20)),
                ),
                (
                    "WINDOWS/system32/Config/SOFTWARE.LOG1",
                    Content::Bytes(noise(4, 8192)),
                ),
                (
                    "Win2/System32/config/SYSTEM",
                    Content::Copy(reg.join("SYSTEM_2")),
                ),
                (
                    "Win2/System32/config/SOFTWARE.LOG2",
                    Content::Bytes(noise(5, 512)),
                ),
                (
                    "HIBERFIL.SYS",
                    Content::Bytes([b"HIBR".as_slice(), &noise(6, 70_000)].concat()),
                ),
            ],
        ),
        "none" => make_volume(
            "none",
            16,
            &[
                (
                    "Program Files/app/app.exe",
                    Content::Bytes(noise(7, 30_000)),
                ),
                (
                    "Users/me/notes.txt",
                    Content::Bytes(b"nothing to see".to_vec()),
                ),
                ("hiberfil.sys", Content::Bytes(vec![0u8; 8192])),
            ],
        ),
        "frag" => make_fragmented(&reg.join("SYSTEM")),
        other => panic!("unknown image {other}"),
    };
    m.insert(kind.to_string(), p.clone());
    p
}

/// A volume whose SYSTEM hive is fragmented: ntfscp writes ever longer prefixes of it (one
/// cluster more each time), and after each a one-cluster file takes the cluster right after
/// it, 400 times; then the whole hive. ntfs-3g extends the file where it can, so the hive ends
/// up in hundreds of runs, which spill into an extension record through an $ATTRIBUTE_LIST.
/// The root directory gets 400 entries, so its index is a real B-tree.
fn make_fragmented(hive: &Path) -> PathBuf {
    let img = make_volume(
        "frag",
        40,
        &[(
            "Windows/System32/config/SOFTWARE",
            Content::Bytes(noise(8, 100_000)),
        )],
    );
    let dir = workdir().join("frag");
    let full = std::fs::read(hive).unwrap();
    let (prefix, one) = (dir.join("prefix"), dir.join("one"));
    std::fs::write(&one, noise(9, 4096)).unwrap();
    for i in 1..=400usize {
        std::fs::write(&prefix, &full[..(i * 4096).min(full.len())]).unwrap();
        run(Command::new("ntfscp")
            .arg(&img)
            .arg(&prefix)
            .arg("/Windows/System32/config/SYSTEM"));
        run(Command::new("ntfscp")
            .arg(&img)
            .arg(&one)
            .arg(format!("/o{i:03}")));
    }
    run(Command::new("ntfscp")
        .arg(&img)
        .arg(hive)
        .arg("/Windows/System32/config/SYSTEM"));
    img
}

/// `ntfscat` of a file.
pub fn ntfscat(img: &Path, path: &str) -> Vec<u8> {
    run(Command::new("ntfscat").arg("-f").arg(img).arg(path))
}

/// The unnamed $DATA runs as `ntfsinfo -v` lists them (every extent), in bytes:
/// `(file offset, volume offset or None, length)`, sorted by file offset; plus the header
/// fields of the first extent (data, allocated, initialized size) and the attribute flags.
pub struct InfoRuns {
    pub runs: Vec<(u64, Option<u64>, u64)>,
    pub data_size: Option<u64>,
    pub initialized_size: Option<u64>,
    pub allocated_size: Option<u64>,
    pub flags: Option<u16>,
    pub resident: bool,
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().strip_prefix("0x")?, 16).ok()
}

fn field(line: &str, name: &str) -> Option<u64> {
    let rest = line.trim().strip_prefix(name)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Parses `ntfsinfo -F path -v img`.
pub fn ntfsinfo_runs(img: &Path, path: &str, cluster: u64) -> InfoRuns {
    let out = String::from_utf8(run(Command::new("ntfsinfo")
        .arg("-f")
        .arg("-F")
        .arg(path)
        .arg("-v")
        .arg(img)))
    .unwrap();
    let mut r = InfoRuns {
        runs: Vec::new(),
        data_size: None,
        initialized_size: None,
        allocated_size: None,
        flags: None,
        resident: false,
    };
    let mut in_data = false;
    let mut named = false;
    let mut first = true;
    for line in out.lines() {
        if line.starts_with("Dumping attribute") {
            if in_data && !named {
                first = false;
            }
            in_data = line.contains("$DATA");
            named = false;
            continue;
        }
        if !in_data {
            continue;
        }
        let t = line.trim();
        if let Some(n) = field(t, "Name length:") {
            named = n != 0;
        }
        if named {
            continue;
        }
        if t.starts_with("Resident:") && t.contains("Yes") {
            r.resident = true;
        }
        if first {
            if let Some(v) = field(t, "Data size:") {
                r.data_size.get_or_insert(v);
            }
            if let Some(v) = field(t, "Initialized size:") {
                r.initialized_size = Some(v);
            }
            if let Some(v) = field(t, "Allocated size:") {
                r.allocated_size = Some(v);
            }
            if let Some(v) = t.strip_prefix("Attribute flags:").and_then(hex) {
                r.flags = Some(v as u16);
            }
        }
        let cols: Vec<&str> = t.split_whitespace().collect();
        // Each extent lists the VCNs of the others as <RL_NOT_MAPPED>.
        if cols.len() == 3
            && cols[0].starts_with("0x")
            && cols[2].starts_with("0x")
            && cols[1] != "<RL_NOT_MAPPED>"
        {
            let vcn = hex(cols[0]).unwrap();
            let len = hex(cols[2]).unwrap();
            let lcn = if cols[1] == "<HOLE>" {
                None
            } else {
                Some(hex(cols[1]).unwrap() * cluster)
            };
            r.runs.push((vcn * cluster, lcn, len * cluster));
        }
    }
    r.runs.sort();
    r
}

/// A copy of an image in memory.
pub fn load(img: &Path) -> Vec<u8> {
    std::fs::read(img).unwrap()
}
