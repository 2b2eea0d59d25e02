//! Image-building helpers for the image and in-place tests: a VHDX differencing child made from
//! qemu-img's dynamic VHDX (qemu cannot create differencing VHDX files). The `$LogFile`
//! restart pages come from guestwall-ntfsvol's `build_restart_page`.
#![allow(dead_code)]

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::gw;

const MIB: u64 = 1 << 20;

/// A little-endian u32 at `at`.
pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
/// A little-endian u64 at `at`.
pub fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// `n` bytes of the file `p` at `at`.
pub fn read_at(p: &Path, at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    std::fs::File::open(p)
        .unwrap()
        .read_exact_at(&mut b, at)
        .unwrap();
    b
}

const VHDX_BAT: [u8; 16] = [
    0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08,
];
const VHDX_FILE_PARAMS: [u8; 16] = [
    0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b,
];
const VHDX_PARENT_LOCATOR: [u8; 16] = [
    0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c,
];
const VHDX_LOCATOR_TYPE: [u8; 16] = [
    0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13,
];

/// The current header's DataWriteGuid of a VHDX, as the `{...}` text a parent locator holds.
fn vhdx_data_write_guid(p: &Path) -> String {
    let b = read_at(p, 0, 0x30000);
    let seq = |at: usize| (&b[at..at + 4] == b"head").then(|| le64(&b, at + 8));
    let h = match (seq(0x10000), seq(0x20000)) {
        (Some(x), Some(y)) if y > x => 0x20000,
        (Some(_), _) => 0x10000,
        _ => 0x20000,
    };
    let g = &b[h + 32..h + 48];
    let hex = |r: &[u8]| r.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{{{:08x}-{:04x}-{:04x}-{}-{}}}",
        le32(g, 0),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        hex(&g[8..10]),
        hex(&g[10..16])
    )
}

/// A differencing VHDX child of `parent` (a dynamic VHDX with 1 MiB blocks made from
/// `parent_raw`) whose content is `child_raw`: qemu-img makes a dynamic VHDX of `child_raw`,
/// then HasParent and a parent locator (MS-VHDX 2.6.2.6) are set, and every payload block equal
/// in both raws becomes PAYLOAD_BLOCK_NOT_PRESENT (read from the parent). Returns how many
/// blocks the child keeps.
pub fn make_vhdx_child(parent: &Path, parent_raw: &Path, child_raw: &Path, child: &Path) -> usize {
    let out = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vhdx", "-o"])
        .arg("subformat=dynamic,block_size=1M")
        .arg(child_raw)
        .arg(child)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qemu-img: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut b = std::fs::read(child).unwrap();
    let rt = 0x30000;
    let (mut bat_at, mut meta_at) = (0, 0);
    for i in 0..le32(&b, rt + 8) as usize {
        let e = rt + 16 + 32 * i;
        if b[e..e + 16] == VHDX_BAT {
            bat_at = le64(&b, e + 16) as usize;
        } else {
            meta_at = le64(&b, e + 16) as usize;
        }
    }
    let count = u16::from_le_bytes([b[meta_at + 10], b[meta_at + 11]]) as usize;
    let mut free = 0;
    for i in 0..count {
        let e = meta_at + 32 + 32 * i;
        let (off, len) = (le32(&b, e + 16) as usize, le32(&b, e + 20) as usize);
        free = free.max(off + len);
        if b[e..e + 16] == VHDX_FILE_PARAMS {
            b[meta_at + off + 4] |= 2; // HasParent
        }
    }
    let free = free.next_multiple_of(4096);
    let pairs = [
        ("parent_linkage", vhdx_data_write_guid(parent)),
        ("relative_path", ".\\parent.vhdx".to_string()),
        ("absolute_win32_path", "C:\\VMs\\parent.vhdx".to_string()),
    ];
    let mut item = VHDX_LOCATOR_TYPE.to_vec();
    item.extend_from_slice(&0u16.to_le_bytes());
    item.extend_from_slice(&(pairs.len() as u16).to_le_bytes());
    let base = 20 + 12 * pairs.len();
    let mut strings = Vec::new();
    for (k, v) in &pairs {
        let (k, v) = (utf16le(k), utf16le(v));
        let ko = base + strings.len();
        strings.extend_from_slice(&k);
        let vo = base + strings.len();
        strings.extend_from_slice(&v);
        item.extend_from_slice(&(ko as u32).to_le_bytes());
        item.extend_from_slice(&(vo as u32).to_le_bytes());
        item.extend_from_slice(&(k.len() as u16).to_le_bytes());
        item.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    item.extend_from_slice(&strings);
    b[meta_at + free..meta_at + free + item.len()].copy_from_slice(&item);
    let e = meta_at + 32 + 32 * count;
    b[e..e + 16].copy_from_slice(&VHDX_PARENT_LOCATOR);
    b[e + 16..e + 20].copy_from_slice(&(free as u32).to_le_bytes());
    b[e + 20..e + 24].copy_from_slice(&(item.len() as u32).to_le_bytes());
    b[e + 24..e + 28].copy_from_slice(&4u32.to_le_bytes()); // IsRequired
    b[meta_at + 10..meta_at + 12].copy_from_slice(&((count + 1) as u16).to_le_bytes());
    // Blocks of 1 MiB; chunk ratio 4096, so block n's BAT entry is entry n (n < 4096).
    let blocks = (std::fs::metadata(child_raw).unwrap().len() / MIB) as usize;
    assert!(blocks < 4096);
    let mut kept = 0;
    for n in 0..blocks {
        let at = n as u64 * MIB;
        if read_at(parent_raw, at, MIB as usize) == read_at(child_raw, at, MIB as usize) {
            b[bat_at + 8 * n..bat_at + 8 * n + 8].copy_from_slice(&0u64.to_le_bytes());
        } else {
            kept += 1;
        }
    }
    std::fs::write(child, b).unwrap();
    kept
}

// ---- Shared by the image tests (images.rs, inplace.rs) -------------------------------------

pub fn dd_into(vol: &Path, disk: &Path, start_sector: u64) {
    run(
        "dd",
        &[
            &format!("if={}", s(vol)),
            &format!("of={}", s(disk)),
            "bs=512",
            &format!("seek={start_sector}"),
            "conv=notrunc,sparse",
            "status=none",
        ],
    );
}

pub fn gwp(args: &[&str], path: &Path) -> Output {
    let mut a: Vec<&str> = args.to_vec();
    a.push(s(path));
    gw(&a)
}

pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// An NTFS volume of `bytes` made by mkntfs for a partition starting at `start_sector` (the
/// boot sector's hidden sectors, as Windows has it), with a WIM applied by wimlib, then
/// root-level files copied in by ntfscp (wimlib leaves out hiberfil.sys on capture).
pub fn ntfs_volume(out: &Path, bytes: u64, start_sector: u64, label: &str, wim: Option<&Path>) {
    std::fs::File::create(out).unwrap().set_len(bytes).unwrap();
    run(
        "mkntfs",
        &[
            "-F",
            "-Q",
            "-q",
            "-s",
            "512",
            "-p",
            &start_sector.to_string(),
            "-H",
            "255",
            "-S",
            "63",
            "-L",
            label,
            s(out),
        ],
    );
    if let Some(w) = wim {
        run("wimlib-imagex", &["apply", s(w), "1", s(out)]);
    }
}

pub fn ntfscp(vol: &Path, name: &str, data: &[u8]) {
    let src = vol.with_extension(format!("cp-{}", name.replace('/', "_")));
    std::fs::write(&src, data).unwrap();
    run("ntfscp", &["-f", s(vol), s(&src), &format!("/{name}")]);
    std::fs::remove_file(&src).unwrap();
}

pub fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    crate::ntfs::run(Command::new(cmd).args(args))
}

pub fn run_stdin(cmd: &str, args: &[&str], input: &str) {
    use std::io::Write;
    let mut c = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn write_at(p: &Path, at: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(data, at).unwrap();
}
