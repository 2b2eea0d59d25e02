//! A 127 GiB Azure-style fixed VHD (sparse: truncate + sfdisk + qemu-img's footer): opening it
//! and reading its partition table touches a few KiB and takes well under a millisecond's
//! worth of I/O. Prints the figures.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use guestwall_source::{Counting, FileSource};
use guestwall_vdisk::{Disk, Format, FsOpener, PartitionTable, ReadAt, Scheme};

#[test]
fn open_a_127_gib_fixed_vhd_and_read_its_partition_table() {
    if !have_tools(&["qemu-img", "sfdisk", "truncate", "du"]) {
        return;
    }
    let dir = TempDir::new("big");
    let raw = dir.path("os.raw");
    let vhd = dir.path("os.vhd");
    run("truncate", &["-s", "127G", raw.to_str().unwrap()]);
    run_stdin(
        "sfdisk",
        &["-q", raw.to_str().unwrap()],
        Some(
            "label: gpt\n\
             size=100MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n\
             size=16MiB, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\n\
             size=126300MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n\
             type=DE94BBA4-06D1-4D40-A16A-BFD50179D6AC\n",
        ),
    );
    qemu_convert(&raw, "vpc", "subformat=fixed,force_size=on", &vhd);
    // The same disk as a dynamic VHDX and a dynamic VHD: what opening costs there.
    for (name, fmt, opts) in [
        ("os.vhdx", "vhdx", "subformat=dynamic"),
        ("os-dyn.vhd", "vpc", "subformat=dynamic,force_size=on"),
    ] {
        let img = dir.path(name);
        qemu_convert(&raw, fmt, opts, &img);
        let t0 = std::time::Instant::now();
        let c = Arc::new(Counting::new(FileSource::open(&img).unwrap()));
        let d = Disk::from_source(c.clone(), &img, &FsOpener, 16).unwrap();
        let t = PartitionTable::read(&d, d.logical_sector_size()).unwrap();
        let el = t0.elapsed();
        assert_eq!(t.partitions.len(), 4);
        assert_eq!(d.size(), 127 << 30);
        eprintln!(
            "127 GiB {} ({} bytes): open + partition table {} bytes in {} reads; {el:?}",
            d.format().name(),
            std::fs::metadata(&img).unwrap().len(),
            c.bytes_read(),
            c.reads()
        );
        std::fs::remove_file(&img).unwrap();
    }
    std::fs::remove_file(&raw).unwrap();
    let len = std::fs::metadata(&vhd).unwrap().len();
    assert_eq!(len, (127u64 << 30) + 512);
    let du_kib: u64 = run("du", &["-k", vhd.to_str().unwrap()])
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        du_kib < 1024,
        "the fixed VHD stays sparse: {du_kib} KiB used"
    );
    let t0 = std::time::Instant::now();
    let counting = Arc::new(Counting::new(FileSource::open(&vhd).unwrap()));
    let d = Disk::from_source(counting.clone(), Path::new(&vhd), &FsOpener, 16).unwrap();
    let opened = (counting.bytes_read(), counting.reads());
    let t = PartitionTable::read(&d, d.logical_sector_size()).unwrap();
    let elapsed = t0.elapsed();
    let total = (counting.bytes_read(), counting.reads());
    assert_eq!(d.format(), Format::VhdFixed);
    assert_eq!(d.size(), 127 << 30);
    assert_eq!(t.scheme, Scheme::Gpt);
    assert_eq!(
        t.partitions
            .iter()
            .map(|p| p.kind.name())
            .collect::<Vec<_>>(),
        [
            "EFI system",
            "Microsoft reserved",
            "Microsoft basic data",
            "Windows recovery"
        ]
    );
    assert_table_matches_sfdisk(&t, &{
        // sfdisk reads the same table from the VHD file itself (the footer is past the
        // backup GPT, which sfdisk finds at the end of the virtual disk it assumes).
        let r = dir.path("view.raw");
        run("truncate", &["-s", "127G", r.to_str().unwrap()]);
        let mut head = vec![0u8; 1 << 20];
        d.read_exact_at(0, &mut head).unwrap();
        write_at(&r, 0, &head);
        let mut tail = vec![0u8; 1 << 20];
        d.read_exact_at(d.size() - (1 << 20), &mut tail).unwrap();
        write_at(&r, d.size() - (1 << 20), &tail);
        r
    });
    eprintln!(
        "127 GiB fixed VHD ({du_kib} KiB on disk): open {} bytes in {} reads; open + partition table {} bytes in {} reads; {elapsed:?}",
        opened.0, opened.1, total.0, total.1
    );
    assert!(total.0 < 64 * 1024, "{total:?}");
}
