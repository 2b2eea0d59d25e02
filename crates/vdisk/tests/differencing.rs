//! Differencing disks. qemu cannot create them (its vpc and vhdx drivers refuse backing files),
//! so each child is a dynamic disk that qemu-img creates and qemu-io writes to, then turned
//! into a differencing disk by setting the fields the specifications name (VHD: disk type 4,
//! parent unique id, name and a W2ru locator; VHDX: HasParent and a parent locator item, and
//! one PARTIALLY_PRESENT block with its sector bitmap). The result is checked against the
//! content the construction implies and against libvhdi (an independent reader).
#![allow(clippy::big_endian_bytes)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use guestwall_vdisk::{
    BlockState, Disk, Error, ExtentKind, Format, OpenOptions, PartitionTable, Reason,
};

const MIB: u64 = 1 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn vhd_checksum(b: &[u8], field: usize) -> u32 {
    let sum: u32 = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |a, (_, &x)| a.wrapping_add(u32::from(x)));
    !sum
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A dynamic VHD child of 96 MiB written by qemu-io: 0xab at 60 MiB (64 KiB), 0xcd at 52 MiB
/// (4 KiB); then made a differencing disk of `parent_uid` named `parent_name` with a W2ru
/// locator `rel_path`; sectors 4..8 of the 52 MiB block get their bitmap bits cleared.
fn make_vhd_child(child: &Path, parent_uid: &[u8], parent_name: &str, rel_path: &str) {
    make_vhd_child_with(child, parent_uid, parent_name, rel_path, true);
}

fn make_vhd_child_with(
    child: &Path,
    parent_uid: &[u8],
    parent_name: &str,
    rel_path: &str,
    clear: bool,
) {
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            s(child),
            "96M",
        ],
    );
    run(
        "qemu-io",
        &[
            "-f",
            "vpc",
            "-c",
            "write -q -P 0xab 60M 64k",
            "-c",
            "write -q -P 0xcd 52M 4k",
            s(child),
        ],
    );
    let mut b = std::fs::read(child).unwrap();
    let n = b.len();
    let mut footer = b[n - 512..].to_vec();
    footer[60..64].copy_from_slice(&4u32.to_be_bytes());
    let c = vhd_checksum(&footer, 64);
    footer[64..68].copy_from_slice(&c.to_be_bytes());
    let h = be64(&footer, 16) as usize;
    // Parent fields of the dynamic header.
    b[h + 40..h + 56].copy_from_slice(parent_uid);
    let name: Vec<u8> = parent_name
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    b[h + 64..h + 576].fill(0);
    b[h + 64..h + 64 + name.len()].copy_from_slice(&name);
    let loc = utf16le(rel_path);
    let loc_at = (n - 512) as u64;
    let e = h + 576;
    b[e..e + 4].copy_from_slice(b"W2ru");
    b[e + 4..e + 8].copy_from_slice(&512u32.to_be_bytes());
    b[e + 8..e + 12].copy_from_slice(&(loc.len() as u32).to_be_bytes());
    b[e + 16..e + 24].copy_from_slice(&loc_at.to_be_bytes());
    let c = vhd_checksum(&b[h..h + 1024], 36);
    b[h + 36..h + 40].copy_from_slice(&c.to_be_bytes());
    // Bitmap of the block at 52 MiB (2 MiB blocks): clear sectors 4..8.
    let table = be64(&b, h + 16) as usize;
    let entry = be32(&b, table + 4 * 26);
    assert_ne!(entry, u32::MAX, "qemu-io allocated the block");
    let bm = entry as usize * 512;
    assert_eq!(b[bm], 0xff, "qemu sets every bit of a block it allocates");
    if clear {
        b[bm] = 0xf0;
    }
    // Footer copy at 0, data, locator sector, footer.
    b[..512].copy_from_slice(&footer);
    b.truncate(n - 512);
    let mut sector = vec![0u8; 512];
    sector[..loc.len()].copy_from_slice(&loc);
    b.extend_from_slice(&sector);
    b.extend_from_slice(&footer);
    std::fs::write(child, b).unwrap();
}

fn vhd_unique_id(p: &Path) -> Vec<u8> {
    let b = std::fs::read(p).unwrap();
    b[b.len() - 512 + 68..b.len() - 512 + 84].to_vec()
}

/// The parent's raw view with the child's blocks applied: what the VHD child must read as.
fn vhd_expected(parent_raw: &Path, out: &Path) {
    let mut v = std::fs::read(parent_raw).unwrap();
    let m = MIB as usize;
    // Block 30 (60..62 MiB): all from the child: 0xab then zeros.
    v[60 * m..62 * m].fill(0);
    v[60 * m..60 * m + 65536].fill(0xab);
    // Block 26 (52..54 MiB): sectors 0..4 0xcd, 4..8 from the parent, the rest zeros.
    let keep = v[52 * m + 2048..52 * m + 4096].to_vec();
    v[52 * m..54 * m].fill(0);
    v[52 * m..52 * m + 2048].fill(0xcd);
    v[52 * m + 2048..52 * m + 4096].copy_from_slice(&keep);
    std::fs::write(out, v).unwrap();
}

fn libvhdi_read(out: &Path, chain: &[&Path]) -> bool {
    let Some(py) = pyvhdi() else { return false };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/vhdi_read.py");
    let mut args = vec![s(&script), s(out)];
    args.extend(chain.iter().map(|p| s(p)));
    run(py.to_str().unwrap(), &args);
    true
}

fn tools() -> bool {
    have_tools(&[
        "qemu-img", "qemu-io", "sfdisk", "mkfs.fat", "mkntfs", "truncate", "dd",
    ])
}

#[test]
fn vhd_differencing_reads_child_blocks_bitmap_and_parent() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("vhd-diff");
    let raw = build_gpt_raw(&dir);
    // Parent data under the child's 52 MiB block, so that "read the parent" shows.
    write_at(&raw, 52 * MIB, &pattern(9, 8192));
    let parent = dir.path("parent.vhd");
    qemu_convert(&raw, "vpc", "subformat=dynamic,force_size=on", &parent);
    let child = dir.path("child.vhd");
    make_vhd_child(
        &child,
        &vhd_unique_id(&parent),
        "parent.vhd",
        ".\\parent.vhd",
    );
    let d = Disk::open(&child).unwrap();
    assert_eq!(d.format(), Format::VhdDifferencing);
    assert_eq!(d.layers().len(), 2);
    assert_eq!(d.layers()[1].format(), Format::VhdDynamic);
    let parent_raw = dir.path("parent.raw");
    qemu_raw(&parent, "vpc", &parent_raw);
    let expected = dir.path("expected.raw");
    vhd_expected(&parent_raw, &expected);
    assert_same_bytes(&d, &expected, "VHD child vs construction");
    // libvhdi 20210425 reads an allocated block of a differencing VHD whole, ignoring clear
    // bitmap bits (the specification says: read the parent), so it is compared on a child
    // whose bitmaps are all set.
    let full = dir.path("full.vhd");
    make_vhd_child_with(
        &full,
        &vhd_unique_id(&parent),
        "parent.vhd",
        ".\\parent.vhd",
        false,
    );
    let peer = dir.path("libvhdi.raw");
    if libvhdi_read(&peer, &[&full, &parent]) {
        assert_same_bytes(&Disk::open(&full).unwrap(), &peer, "VHD child vs libvhdi");
    }
    // The partition table comes from the parent.
    let t = PartitionTable::read(&d, 512).unwrap();
    assert_eq!(t.partitions.len(), 4);
    // The offset map.
    let e = d.map(60 * MIB, 64 * 1024).unwrap();
    assert_eq!(e.len(), 1);
    assert!(e[0].writable_in_place());
    assert!(matches!(
        e[0].kind,
        ExtentKind::File {
            layer: 0,
            state: BlockState::VhdBitmapSet,
            ..
        }
    ));
    let e = d.map(52 * MIB, 4096).unwrap();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].writable_in_place() && e[0].len == 2048);
    assert_eq!(e[1].deferred, Some(Reason::BitmapClear));
    assert!(!e[1].writable_in_place());
    let e = d.map(83 * MIB + MIB / 2, 4096).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].deferred, Some(Reason::NotAllocated));
    assert_eq!(e[0].in_layer(), Some(1));
    assert!(!e[0].writable_in_place());
}

#[test]
fn vhd_parent_missing_mismatched_looping_or_too_deep() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("vhd-chain");
    let parent = dir.path("parent.vhd");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            s(&parent),
            "96M",
        ],
    );
    let child = dir.path("child.vhd");
    make_vhd_child(
        &child,
        &vhd_unique_id(&parent),
        "parent.vhd",
        ".\\sub\\parent.vhd",
    );
    // Found by its name beside the child when the relative path does not exist.
    Disk::open(&child).unwrap();
    // Missing: both paths tried are named.
    std::fs::rename(&parent, dir.path("elsewhere.vhd")).unwrap();
    let e = Disk::open(&child).unwrap_err();
    let Error::ParentNotFound { tried, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(
        tried,
        &vec![dir.path("sub/parent.vhd"), dir.path("parent.vhd")]
    );
    assert!(e.to_string().contains("sub/parent.vhd"), "{e}");
    // A different disk under the parent's name: its unique id does not match.
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            s(&parent),
            "96M",
        ],
    );
    let e = Disk::open(&child).unwrap_err();
    assert!(matches!(e, Error::ParentMismatch { .. }), "{e}");
    assert!(e.to_string().contains("unique id"), "{e}");
    // Opening parents disabled.
    let e = Disk::open_with(
        &child,
        &OpenOptions {
            parents: false,
            ..OpenOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::ParentsDisabled { .. }), "{e}");
    // A loop: a -> b -> a.
    let (a, b) = (dir.path("a.vhd"), dir.path("b.vhd"));
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            s(&b),
            "96M",
        ],
    );
    make_vhd_child(&a, &vhd_unique_id(&b), "b.vhd", ".\\b.vhd");
    let a_uid = vhd_unique_id(&a);
    std::fs::remove_file(&b).unwrap();
    make_vhd_child(&b, &a_uid, "a.vhd", ".\\a.vhd");
    // a's recorded id of b is stale now; give it b's new one.
    let a2 = dir.path("a2.vhd");
    make_vhd_child(&a2, &vhd_unique_id(&b), "b.vhd", ".\\b.vhd");
    std::fs::remove_file(&b).unwrap();
    make_vhd_child(&b, &vhd_unique_id(&a2), "a2.vhd", ".\\a2.vhd");
    // b -> a2 -> b: b's id changed again, so a2's record of it is stale; the loop is found
    // before the identity check fails, because the path repeats first.
    let e = Disk::open(&b).unwrap_err();
    assert!(
        matches!(e, Error::ParentLoop { .. } | Error::ParentMismatch { .. }),
        "{e}"
    );
    // A loop where every identity matches: c points to itself.
    let c = dir.path("c.vhd");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            s(&c),
            "96M",
        ],
    );
    let uid = vhd_unique_id(&c);
    std::fs::remove_file(&c).unwrap();
    make_vhd_child(&c, &uid, "c.vhd", ".\\c.vhd");
    // make_vhd_child keeps qemu's fresh unique id; set it to the recorded one.
    set_vhd_unique_id(&c, &uid);
    let e = Disk::open(&c).unwrap_err();
    assert!(matches!(e, Error::ParentLoop { .. }), "{e}");
    // Too deep: base <- d1 <- d2 <- d3 <- d4, opened with a cap of 4 files.
    let mut prev = dir.path("d0.vhd");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            s(&prev),
            "96M",
        ],
    );
    for i in 1..=4 {
        let next = dir.path(&format!("d{i}.vhd"));
        let pname = prev.file_name().unwrap().to_str().unwrap().to_string();
        make_vhd_child(&next, &vhd_unique_id(&prev), &pname, &format!(".\\{pname}"));
        prev = next;
    }
    let d = Disk::open(&prev).unwrap();
    assert_eq!(d.layers().len(), 5);
    let e = Disk::open_with(
        &prev,
        &OpenOptions {
            max_depth: 4,
            ..OpenOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::ChainTooDeep { max: 4, .. }), "{e}");
}

fn set_vhd_unique_id(p: &Path, uid: &[u8]) {
    let mut b = std::fs::read(p).unwrap();
    let n = b.len();
    for at in [0, n - 512] {
        b[at + 68..at + 84].copy_from_slice(uid);
        let c = vhd_checksum(&b[at..at + 512], 64);
        b[at + 64..at + 68].copy_from_slice(&c.to_be_bytes());
    }
    std::fs::write(p, b).unwrap();
}

// ---- VHDX ----

fn vhdx_current_header(b: &[u8]) -> usize {
    let seq = |at: usize| (&b[at..at + 4] == b"head").then(|| le64(b, at + 8));
    match (seq(0x10000), seq(0x20000)) {
        (Some(x), Some(y)) if y > x => 0x20000,
        (Some(_), _) => 0x10000,
        _ => 0x20000,
    }
}

fn guid_text(g: &[u8]) -> String {
    format!(
        "{{{:08x}-{:04x}-{:04x}-{}-{}}}",
        le32(g, 0),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8..10]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>(),
        g[10..16]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

const PARENT_LOCATOR: [u8; 16] = [
    0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c,
];
const FILE_PARAMS: [u8; 16] = [
    0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b,
];
const LOCATOR_TYPE: [u8; 16] = [
    0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13,
];
const BAT_GUID: [u8; 16] = [
    0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08,
];

/// A dynamic VHDX child (1 MiB blocks) written by qemu-io: 0xab at 60 MiB (64 KiB), 0xcd at
/// 52 MiB (8 KiB); made a differencing disk with a parent locator (`parent_linkage` =
/// `linkage`, `relative_path`, `absolute_win32_path`), and the 52 MiB block made
/// PARTIALLY_PRESENT with only its first 8 sectors present.
fn make_vhdx_child(child: &Path, linkage: &str, rel: &str, abs: &str) {
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=1M,block_state_zero=off",
            s(child),
            "96M",
        ],
    );
    run(
        "qemu-io",
        &[
            "-f",
            "vhdx",
            "-c",
            "write -q -P 0xab 60M 64k",
            "-c",
            "write -q -P 0xcd 52M 8k",
            s(child),
        ],
    );
    let mut b = std::fs::read(child).unwrap();
    b.resize((b.len() as u64).next_multiple_of(MIB) as usize, 0);
    let rt = 0x30000;
    let mut bat_at = 0;
    let mut meta_at = 0;
    for i in 0..le32(&b, rt + 8) as usize {
        let e = rt + 16 + 32 * i;
        if b[e..e + 16] == BAT_GUID {
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
        if b[e..e + 16] == FILE_PARAMS {
            b[meta_at + off + 4] |= 2; // HasParent
        }
    }
    let free = free.next_multiple_of(4096);
    // The locator item.
    let pairs = [
        ("parent_linkage", linkage),
        ("relative_path", rel),
        ("absolute_win32_path", abs),
    ];
    let mut item = LOCATOR_TYPE.to_vec();
    item.extend_from_slice(&0u16.to_le_bytes());
    item.extend_from_slice(&(pairs.len() as u16).to_le_bytes());
    let mut strings = Vec::new();
    let base = 20 + 12 * pairs.len();
    for (k, v) in pairs {
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
    b[e..e + 16].copy_from_slice(&PARENT_LOCATOR);
    b[e + 16..e + 20].copy_from_slice(&(free as u32).to_le_bytes());
    b[e + 20..e + 24].copy_from_slice(&(item.len() as u32).to_le_bytes());
    b[e + 24..e + 28].copy_from_slice(&4u32.to_le_bytes()); // IsRequired
    b[meta_at + 10..meta_at + 12].copy_from_slice(&((count + 1) as u16).to_le_bytes());
    // A sector bitmap block for chunk 0 (BAT index = chunk ratio 4096), at the end.
    let sb = b.len();
    b.resize(sb + MIB as usize, 0);
    let put = |b: &mut Vec<u8>, idx: usize, v: u64| {
        b[bat_at + 8 * idx..bat_at + 8 * idx + 8].copy_from_slice(&v.to_le_bytes())
    };
    put(&mut b, 4096, ((sb as u64 / MIB) << 20) | 6);
    let blk = le64(&b, bat_at + 8 * 52);
    assert_eq!(blk & 7, 6, "qemu-io allocated the block at 52 MiB");
    put(&mut b, 52, (blk & !7) | 7);
    b[sb + 52 * 2048 / 8] = 0xff; // sectors 0..8 of block 52
    std::fs::write(child, b).unwrap();
}

fn vhdx_expected(parent_raw: &Path, out: &Path) {
    let mut v = std::fs::read(parent_raw).unwrap();
    let m = MIB as usize;
    v[60 * m..61 * m].fill(0);
    v[60 * m..60 * m + 65536].fill(0xab);
    v[52 * m..52 * m + 4096].fill(0xcd);
    std::fs::write(out, v).unwrap();
}

fn data_write_guid(p: &Path) -> String {
    let b = std::fs::read(p).unwrap();
    let h = vhdx_current_header(&b);
    guid_text(&b[h + 32..h + 48])
}

#[test]
fn vhdx_differencing_reads_partially_present_blocks_and_parent() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("vhdx-diff");
    let raw = build_gpt_raw(&dir);
    write_at(&raw, 52 * MIB, &pattern(9, 8192));
    let parent = dir.path("parent.vhdx");
    qemu_convert(&raw, "vhdx", "subformat=dynamic", &parent);
    let child = dir.path("child.avhdx");
    make_vhdx_child(
        &child,
        &data_write_guid(&parent),
        ".\\parent.vhdx",
        "C:\\VMs\\parent.vhdx",
    );
    let d = Disk::open(&child).unwrap();
    assert_eq!(d.format(), Format::VhdxDifferencing);
    assert_eq!(d.layers()[1].format(), Format::VhdxDynamic);
    assert!(d.vhdx_params().unwrap().has_parent);
    let parent_raw = dir.path("parent.raw");
    qemu_raw(&parent, "vhdx", &parent_raw);
    let expected = dir.path("expected.raw");
    vhdx_expected(&parent_raw, &expected);
    assert_same_bytes(&d, &expected, "VHDX child vs construction");
    let peer = dir.path("libvhdi.raw");
    if libvhdi_read(&peer, &[&child, &parent]) {
        assert_same_bytes(&d, &peer, "VHDX child vs libvhdi");
    }
    let e = d.map(52 * MIB, 8192).unwrap();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(matches!(
        e[0].kind,
        ExtentKind::File {
            layer: 0,
            state: BlockState::VhdxPartiallyPresent,
            ..
        }
    ));
    assert_eq!(e[0].len, 4096);
    assert!(e[0].writable_in_place());
    assert_eq!(e[1].deferred, Some(Reason::PartiallyPresent));
    assert!(!e[1].writable_in_place());
    let e = d.map(83 * MIB + MIB / 2, 4096).unwrap();
    assert_eq!(e[0].deferred, Some(Reason::NotPresent));
    assert_eq!(e[0].in_layer(), Some(1));
}

#[test]
fn vhdx_parent_by_name_mismatch_and_missing() {
    if !tools() {
        return;
    }
    let dir = TempDir::new("vhdx-chain");
    let parent = dir.path("base.vhdx");
    run(
        "qemu-img",
        &["create", "-q", "-f", "vhdx", s(&parent), "96M"],
    );
    let child = dir.path("child.avhdx");
    // The relative path is wrong; the absolute Windows path's file name is found beside the child.
    make_vhdx_child(
        &child,
        &data_write_guid(&parent),
        "..\\gone\\base.vhdx",
        "D:\\Hyper-V\\base.vhdx",
    );
    let d = Disk::open(&child).unwrap();
    assert_eq!(d.layers()[1].path(), dir.path("base.vhdx"));
    // Another disk under the parent's name: DataWriteGuid differs from parent_linkage.
    std::fs::remove_file(&parent).unwrap();
    run(
        "qemu-img",
        &["create", "-q", "-f", "vhdx", s(&parent), "96M"],
    );
    let e = Disk::open(&child).unwrap_err();
    assert!(
        matches!(e, Error::ParentMismatch { .. }) && e.to_string().contains("DataWriteGuid"),
        "{e}"
    );
    std::fs::remove_file(&parent).unwrap();
    let e = Disk::open(&child).unwrap_err();
    let Error::ParentNotFound { tried, .. } = &e else {
        panic!("{e}")
    };
    let want: Vec<PathBuf> = vec![dir.0.join("../gone/base.vhdx"), dir.path("base.vhdx")];
    assert_eq!(tried, &want, "{e}");
}
