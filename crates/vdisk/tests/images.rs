//! Every container qemu-img makes, read through `Disk`, equals qemu's own raw conversion byte
//! for byte, and its partition table equals what sfdisk says.

mod common;

use common::*;
use guestwall_vdisk::{Disk, Format, PartitionTable, ReadAt, Scheme};

const VARIANTS: &[(&str, &str, &str, Format)] = &[
    (
        "fixed.vhd",
        "vpc",
        "subformat=fixed,force_size=on",
        Format::VhdFixed,
    ),
    (
        "dyn.vhd",
        "vpc",
        "subformat=dynamic,force_size=on",
        Format::VhdDynamic,
    ),
    (
        "dyn-chs.vhd",
        "vpc",
        "subformat=dynamic",
        Format::VhdDynamic,
    ),
    ("fixed.vhdx", "vhdx", "subformat=fixed", Format::VhdxFixed),
    (
        "fixed-2m.vhdx",
        "vhdx",
        "subformat=fixed,block_size=2M",
        Format::VhdxFixed,
    ),
    ("dyn.vhdx", "vhdx", "subformat=dynamic", Format::VhdxDynamic),
    (
        "dyn-1m.vhdx",
        "vhdx",
        "subformat=dynamic,block_size=1M",
        Format::VhdxDynamic,
    ),
    (
        "dyn-8m-log4m.vhdx",
        "vhdx",
        "subformat=dynamic,block_size=8M,log_size=4M",
        Format::VhdxDynamic,
    ),
];

fn containers_match(label: &str) {
    if !have_tools(&["qemu-img", "sfdisk", "mkfs.fat", "mkntfs", "truncate", "dd"]) {
        return;
    }
    let dir = TempDir::new(&format!("images-{label}"));
    let raw = if label == "gpt" {
        build_gpt_raw(&dir)
    } else {
        build_mbr_raw(&dir)
    };
    let t0 = std::time::Instant::now();
    let disk = Disk::open(&raw).unwrap();
    assert_eq!(disk.format(), Format::Raw);
    let table = PartitionTable::read(&disk, disk.logical_sector_size()).unwrap();
    assert_eq!(
        table.scheme,
        if label == "gpt" {
            Scheme::Gpt
        } else {
            Scheme::Mbr
        }
    );
    assert!(table.warnings.is_empty(), "{:?}", table.warnings);
    assert_table_matches_sfdisk(&table, &raw);
    assert_same_bytes(&disk, &raw, "raw");
    for &(name, fmt, opts, want) in VARIANTS {
        let img = dir.path(name);
        qemu_convert(&raw, fmt, opts, &img);
        let d = Disk::open(&img).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.format(), want, "{name}");
        assert!(d.warnings().is_empty(), "{name}: {:?}", d.warnings());
        assert!(!d.log_dirty());
        let back = dir.path(&format!("{name}.raw"));
        qemu_raw(&img, fmt, &back);
        assert_same_bytes(&d, &back, name);
        let t = PartitionTable::read(&d, d.logical_sector_size()).unwrap();
        assert_eq!(t.partitions, table.partitions, "{name}");
        // The last partition read through its view equals the same bytes of the raw image.
        let last = t.partitions.last().unwrap();
        let view = last.view(&d).unwrap();
        let mut a = vec![0u8; 4096];
        let mut b = vec![0u8; 4096];
        view.read_exact_at(view.size() - 4096, &mut a).unwrap();
        disk.read_exact_at(last.start + last.len - 4096, &mut b)
            .unwrap();
        assert_eq!(a, b);
        std::fs::remove_file(&back).unwrap();
        if fmt == "vhdx" {
            let h = d.vhdx_header().unwrap();
            assert!(h.header.log_guid.is_zero());
            assert!(h.header.sequence > 0);
        }
    }
    eprintln!(
        "{label}: {} containers checked in {:?}",
        VARIANTS.len() + 1,
        t0.elapsed()
    );
}

#[test]
fn gpt_disk_in_every_container_matches_qemu_and_sfdisk() {
    containers_match("gpt");
}

#[test]
fn mbr_disk_in_every_container_matches_qemu_and_sfdisk() {
    containers_match("mbr");
}

/// The offset map of a fixed and a dynamic container: data extents point at the right file
/// bytes, holes are reported as not allocated.
#[test]
fn offset_map_points_at_the_stored_bytes() {
    if !have_tools(&["qemu-img", "sfdisk", "mkfs.fat", "mkntfs", "truncate", "dd"]) {
        return;
    }
    use guestwall_vdisk::{BlockState, ExtentKind, Reason};
    use std::os::unix::fs::FileExt;
    let dir = TempDir::new("map");
    let raw = build_gpt_raw(&dir);
    let pat_at = 83 * (1 << 20) + (1 << 19);
    for &(name, fmt, opts, _) in VARIANTS {
        let img = dir.path(name);
        qemu_convert(&raw, fmt, opts, &img);
        let d = Disk::open(&img).unwrap();
        let f = std::fs::File::open(&img).unwrap();
        let ext = d.map(pat_at, 2 << 20).unwrap();
        assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), 2 << 20, "{name}");
        for e in &ext {
            assert!(e.writable_in_place(), "{name}: {e:?}");
            let ExtentKind::File {
                layer: 0,
                file_offset,
                state,
            } = e.kind
            else {
                panic!("{name}: {e:?}")
            };
            assert!(
                matches!(
                    state,
                    BlockState::VhdFixed | BlockState::VhdBitmapSet | BlockState::VhdxFullyPresent
                ),
                "{name}: {state:?}"
            );
            let mut a = vec![0u8; e.len as usize];
            let mut b = vec![0u8; e.len as usize];
            f.read_exact_at(&mut a, file_offset).unwrap();
            d.read_exact_at(e.offset, &mut b).unwrap();
            assert_eq!(a, b, "{name}: extent {e:?}");
        }
        // The MSR partition (never written) is a hole in dynamic images.
        let msr = d.map(40 << 20, 1 << 20).unwrap();
        if name.starts_with("dyn") {
            assert!(
                msr.iter().all(|e| !e.writable_in_place()),
                "{name}: {msr:?}"
            );
            assert!(
                msr.iter().all(|e| matches!(
                    e.kind,
                    ExtentKind::Zeros {
                        layer: 0,
                        reason: Reason::NotAllocated | Reason::NotPresent | Reason::Zero
                    }
                )),
                "{name}: {msr:?}"
            );
        }
        assert!(d.map(d.size() - 10, 11).is_err());
    }
}
