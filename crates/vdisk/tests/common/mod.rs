//! Helpers shared by the vdisk integration tests: tools, temporary folders, test images made
//! with real tools (sfdisk, mkfs.fat, mkntfs, qemu-img), and comparisons.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use guestwall_vdisk::{PartitionKind, PartitionTable, ReadAt};

/// True when running under CI, where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Prints a skip notice on the real stderr.
pub fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTICE: {msg}");
}

/// True when every tool is on PATH; otherwise a notice (and a failure under CI).
pub fn have_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
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
        return true;
    }
    assert!(!in_ci(), "CI=true but these tools are missing: {missing:?}");
    notice(&format!("missing tools {missing:?}; skipping this test"));
    false
}

/// Debian's python3 with the libvhdi bindings (pyvhdi), if installed. Under CI it must be.
pub fn pyvhdi() -> Option<PathBuf> {
    let py = PathBuf::from("/usr/bin/python3");
    let ok = Command::new(&py)
        .args(["-c", "import pyvhdi"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(
        !in_ci(),
        "CI=true but /usr/bin/python3 cannot import pyvhdi (python3-libvhdi)"
    );
    notice("python3-libvhdi not installed; skipping the libvhdi comparison");
    None
}

/// A temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("gw-vdisk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("GW_VDISK_KEEP").is_some() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command, fails the test if it fails, returns stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    run_stdin(cmd, args, None)
}

/// Runs a command with `input` on stdin.
pub fn run_stdin(cmd: &str, args: &[&str], input: Option<&str>) -> String {
    use std::io::Write;
    let mut c = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    if let Some(i) = input {
        c.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
    }
    drop(c.stdin.take());
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The pattern written at known offsets of the test disks.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((i.wrapping_mul(7) ^ (i >> 9) ^ seed) & 0xff) as u8)
        .collect()
}

pub fn write_at(path: &Path, offset: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(data, offset).unwrap();
}

const MIB: u64 = 1 << 20;

/// A 96 MiB sparse raw disk laid out like an Azure Gen2 VM: GPT with an ESP (FAT32, 34 MiB),
/// MSR (16 MiB), basic data (NTFS, 30 MiB) and a Recovery partition at the end, plus a
/// 2 MiB pattern at 83.5 MiB (inside Recovery, across the 84 MiB block boundaries).
pub fn build_gpt_raw(dir: &TempDir) -> PathBuf {
    let raw = dir.path("gpt.raw");
    run("truncate", &["-s", "96M", s(&raw)]);
    run_stdin(
        "sfdisk",
        &["-q", s(&raw)],
        Some(
            "label: gpt\n\
             size=34MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI system partition\"\n\
             size=16MiB, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE, name=\"Microsoft reserved partition\"\n\
             size=30MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"Basic data partition\"\n\
             type=DE94BBA4-06D1-4D40-A16A-BFD50179D6AC, name=\"Recovery\"\n",
        ),
    );
    run(
        "mkfs.fat",
        &[
            "-F",
            "32",
            "-s",
            "1",
            "--offset",
            "2048",
            s(&raw),
            &(34 * 1024).to_string(),
        ],
    );
    let ntfs = dir.path("gpt-ntfs.img");
    run("truncate", &["-s", "30M", s(&ntfs)]);
    run(
        "mkntfs",
        &[
            "-F",
            "-Q",
            "-q",
            "-s",
            "512",
            "-p",
            "104448",
            "-H",
            "255",
            "-S",
            "63",
            "-L",
            "Windows",
            s(&ntfs),
        ],
    );
    run(
        "dd",
        &[
            &format!("if={}", s(&ntfs)),
            &format!("of={}", s(&raw)),
            "bs=1M",
            "seek=51",
            "conv=notrunc,sparse",
            "status=none",
        ],
    );
    std::fs::remove_file(&ntfs).unwrap();
    write_at(&raw, 83 * MIB + MIB / 2, &pattern(1, 2 * MIB as usize));
    raw
}

/// A 96 MiB sparse raw disk laid out like an Azure Gen1 VM: MBR with a bootable "System
/// Reserved" NTFS partition (8 MiB), Windows (NTFS, 40 MiB), and an extended partition with
/// two logical partitions, plus a 2 MiB pattern in the second logical partition.
pub fn build_mbr_raw(dir: &TempDir) -> PathBuf {
    let raw = dir.path("mbr.raw");
    run("truncate", &["-s", "96M", s(&raw)]);
    run_stdin(
        "sfdisk",
        &["-q", s(&raw)],
        Some(
            "label: dos\n\
             size=8MiB, type=7, bootable\n\
             size=40MiB, type=7\n\
             type=5\n\
             size=12MiB, type=83\n\
             type=7\n",
        ),
    );
    for (name, start, mib, label) in [
        ("sr", 2048u64, 8u64, "System Reserved"),
        ("win", 18432, 40, "Windows"),
    ] {
        let img = dir.path(&format!("mbr-{name}.img"));
        run("truncate", &["-s", &format!("{mib}M"), s(&img)]);
        run(
            "mkntfs",
            &[
                "-F",
                "-Q",
                "-q",
                "-s",
                "512",
                "-p",
                &start.to_string(),
                "-H",
                "255",
                "-S",
                "63",
                "-L",
                label,
                s(&img),
            ],
        );
        run(
            "dd",
            &[
                &format!("if={}", s(&img)),
                &format!("of={}", s(&raw)),
                "bs=512",
                &format!("seek={start}"),
                "conv=notrunc,sparse",
                "status=none",
            ],
        );
        std::fs::remove_file(&img).unwrap();
    }
    write_at(&raw, 83 * MIB + MIB / 2, &pattern(2, 2 * MIB as usize));
    raw
}

/// `qemu-img convert -f fmt -O raw` of an image (qemu's view of the virtual disk). The format
/// is named: qemu's probe takes a fixed VHD (no header at 0) for raw.
pub fn qemu_raw(img: &Path, fmt: &str, out: &Path) {
    run(
        "qemu-img",
        &["convert", "-f", fmt, "-O", "raw", s(img), s(out)],
    );
}

/// Converts `raw` with qemu-img to `fmt` with `opts`.
pub fn qemu_convert(raw: &Path, fmt: &str, opts: &str, out: &Path) {
    let mut args = vec!["convert", "-f", "raw", "-O", fmt];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.extend([s(raw), s(out)]);
    run("qemu-img", &args);
}

/// Asserts that `disk` holds exactly the bytes of the file `expected`.
pub fn assert_same_bytes(disk: &dyn ReadAt, expected: &Path, what: &str) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(expected).unwrap();
    let size = f.metadata().unwrap().len();
    assert_eq!(disk.size(), size, "{what}: virtual size");
    let chunk = 4 << 20;
    let mut a = vec![0u8; chunk];
    let mut b = vec![0u8; chunk];
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(chunk as u64) as usize;
        disk.read_exact_at(off, &mut a[..n])
            .unwrap_or_else(|e| panic!("{what}: read at {off:#x}: {e}"));
        f.read_exact_at(&mut b[..n], off).unwrap();
        if a[..n] != b[..n] {
            let i = a[..n]
                .iter()
                .zip(&b[..n])
                .position(|(x, y)| x != y)
                .unwrap();
            panic!(
                "{what}: first difference at virtual offset {:#x}",
                off + i as u64
            );
        }
        off += n as u64;
    }
}

/// Asserts that our partition table equals what `sfdisk --json` says of `raw`.
pub fn assert_table_matches_sfdisk(t: &PartitionTable, raw: &Path) {
    let j: serde_json::Value = serde_json::from_str(&run("sfdisk", &["--json", s(raw)])).unwrap();
    let pt = &j["partitiontable"];
    let ss = pt["sectorsize"].as_u64().unwrap();
    assert_eq!(u64::from(t.sector_size), ss);
    let parts = pt["partitions"].as_array().unwrap();
    assert_eq!(
        t.partitions.len(),
        parts.len(),
        "partition count vs sfdisk: {t:#?}"
    );
    let dev = pt["device"].as_str().unwrap();
    for (p, q) in t.partitions.iter().zip(parts) {
        let node = q["node"].as_str().unwrap();
        let idx: u32 = node.strip_prefix(dev).unwrap().parse().unwrap();
        assert_eq!(p.index, idx, "{node}");
        assert_eq!(p.start, q["start"].as_u64().unwrap() * ss, "{node} start");
        assert_eq!(p.len, q["size"].as_u64().unwrap() * ss, "{node} size");
        let ty = q["type"].as_str().unwrap();
        match p.kind {
            PartitionKind::Gpt(g) => {
                assert_eq!(g.to_string().to_uppercase(), ty, "{node} type");
                assert_eq!(
                    p.unique_guid.unwrap().to_string().to_uppercase(),
                    q["uuid"].as_str().unwrap()
                );
                assert_eq!(p.name, q["name"].as_str().unwrap_or(""), "{node} name");
            }
            PartitionKind::Mbr(b) => {
                assert_eq!(format!("{b:x}"), ty, "{node} type");
                assert_eq!(
                    p.attributes & 0x80 != 0,
                    q["bootable"].as_bool().unwrap_or(false),
                    "{node} boot flag"
                );
            }
            PartitionKind::Volume(_) => panic!("whole-disk volume where sfdisk sees a table"),
        }
    }
    match pt["label"].as_str().unwrap() {
        "gpt" => assert_eq!(
            t.disk_guid.unwrap().to_string().to_uppercase(),
            pt["id"].as_str().unwrap()
        ),
        "dos" => assert_eq!(
            format!("0x{:08x}", t.mbr_signature.unwrap()),
            pt["id"].as_str().unwrap()
        ),
        l => panic!("label {l}"),
    }
}
