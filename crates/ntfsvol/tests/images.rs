//! Volumes built by mkntfs and wimlib: every file read through `FileView` equals ntfscat's
//! output, every run list equals ntfsinfo's, and `find_windows` finds exactly what was laid out.

mod common;

use common::*;
use guestwall_ntfsvol::{Error, HiveFile, LogState, Volume};
use guestwall_source::{FileSource, ReadAt};
use std::path::Path;

fn open(img: &Path) -> Volume<FileSource> {
    Volume::open(FileSource::open(img).unwrap()).unwrap()
}

/// The file equals ntfscat's bytes (read whole, and in odd-sized pieces across run
/// boundaries), and its runs equal ntfsinfo's.
fn check_file(
    img: &Path,
    vol: &Volume<FileSource>,
    path: &str,
) -> guestwall_ntfsvol::FileView<FileSource> {
    let f = vol.file(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let want = ntfscat(img, f.path());
    assert_eq!(f.size(), want.len() as u64, "{path}: size");
    let mut got = vec![0u8; want.len()];
    f.read_exact_at(0, &mut got).unwrap();
    assert!(got == want, "{path}: content differs from ntfscat");
    let mut pos = 0usize;
    let mut step = 1usize;
    while pos < want.len() {
        let n = step.min(want.len() - pos);
        let mut b = vec![0u8; n];
        f.read_exact_at(pos as u64, &mut b).unwrap();
        assert!(b == want[pos..pos + n], "{path}: piece at {pos}+{n}");
        pos += n;
        step = step * 3 + 4093;
    }
    let mut one = [0u8; 1];
    assert!(
        f.read_exact_at(f.size(), &mut one).is_err(),
        "{path}: read past the end"
    );
    let cs = u64::from(vol.geometry().cluster_size);
    let info = ntfsinfo_runs(img, f.path(), cs);
    let ours: Vec<_> = f
        .runs()
        .iter()
        .map(|r| (r.file_offset, r.volume_offset, r.len))
        .collect();
    assert_eq!(ours, info.runs, "{path}: runs vs ntfsinfo");
    assert_eq!(f.is_resident(), info.resident, "{path}: resident");
    if !f.is_resident() {
        assert_eq!(Some(f.data_size()), info.data_size, "{path}: data size");
        assert_eq!(
            Some(f.initialized_size()),
            info.initialized_size,
            "{path}: initialized size"
        );
        assert_eq!(
            Some(f.allocated_size()),
            info.allocated_size,
            "{path}: allocated size"
        );
    }
    assert_eq!(Some(f.flags()), info.flags.or(Some(0)), "{path}: flags");
    f
}

#[test]
fn main_volume_files_and_state() {
    let Some(corpus) = ready() else { return };
    let img = image("main");
    let vol = open(&img);
    assert!(vol.state().is_clean(), "{:?}", vol.state());
    assert_eq!(vol.state().log, LogState::Empty);
    assert!(vol.state().reasons().is_empty());
    assert_eq!(vol.state().version, (3, 1));

    let sys = check_file(&img, &vol, "Windows/System32/config/SYSTEM");
    let hive = std::fs::read(corpus.join("regipy/SYSTEM")).unwrap();
    let mut all = vec![0u8; hive.len()];
    sys.read_exact_at(0, &mut all).unwrap();
    assert!(all == hive, "SYSTEM equals the corpus hive");
    assert!(
        sys.write_blockers().is_empty(),
        "{:?}",
        sys.write_blockers()
    );
    check_file(&img, &vol, "Windows/System32/config/SOFTWARE");

    // Mixed case and backslashes find the same file.
    let again = vol.file(r"\windows\SYSTEM32\Config\system").unwrap();
    assert_eq!(again.record(), sys.record());
    assert_eq!(again.path(), "Windows/System32/config/SYSTEM");

    let tiny = check_file(&img, &vol, "tiny.txt");
    assert!(tiny.is_resident());
    assert!(tiny.runs().is_empty());
    assert!(!tiny.write_blockers().is_empty());
    let empty = check_file(&img, &vol, "empty");
    assert_eq!(empty.size(), 0);

    let holey = check_file(&img, &vol, "holey");
    assert_eq!(
        holey.flags() & guestwall_ntfsvol::ATTR_SPARSE,
        guestwall_ntfsvol::ATTR_SPARSE
    );
    assert!(holey.initialized_size() < holey.data_size());
    assert!(holey.runs().iter().any(|r| r.volume_offset.is_none()));
    let blockers = holey.write_blockers().join("; ");
    assert!(
        blockers.contains("sparse") && blockers.contains("InitializedSize"),
        "{blockers}"
    );
    let mut mid = [0u8; 28];
    holey.read_exact_at(2_000_000, &mut mid).unwrap();
    assert_eq!(&mid, b"data in the middle of a hole");

    let wins = vol.find_windows().unwrap();
    assert_eq!(wins.len(), 1, "{wins:?}");
    assert_eq!(wins[0].dir, "Windows");
    assert_eq!(wins[0].config, "Windows/System32/config");
    let found: Vec<HiveFile> = wins[0].files.keys().copied().collect();
    assert_eq!(found, vec![HiveFile::System, HiveFile::Software]);

    // Errors name what is missing or wrong.
    match vol.file("Windows/System32/config/NOPE") {
        Err(Error::NotFound { component, .. }) => {
            assert_eq!(component, "Windows/System32/config/NOPE")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        vol.file("Windows/System32"),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        vol.file("tiny.txt/x"),
        Err(Error::WrongKind { .. })
    ));
    let deep = "a/".repeat(100);
    assert!(matches!(vol.file(&deep), Err(Error::BadPath { .. })));
}

#[test]
fn two_installations_mixed_case_logs_and_hibernation() {
    let Some(corpus) = ready() else { return };
    let img = image("two");
    let vol = open(&img);
    let st = vol.state();
    let h = st
        .hibernation
        .as_ref()
        .expect("HIBERFIL.SYS starts with HIBR");
    assert_eq!(
        (h.name.as_str(), h.signature.as_str()),
        ("HIBERFIL.SYS", "HIBR")
    );
    assert!(!st.is_clean());
    assert!(
        st.reasons().iter().any(|r| r.contains("hibernated")),
        "{:?}",
        st.reasons()
    );

    let wins = vol.find_windows().unwrap();
    assert_eq!(wins.len(), 2, "{wins:?}");
    assert_eq!(wins[0].dir, "WINDOWS");
    assert_eq!(wins[0].config, "WINDOWS/system32/Config");
    assert_eq!(
        wins[0]
            .files
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (HiveFile::System, "system"),
            (HiveFile::SystemLog1, "system.LOG1"),
            (HiveFile::SystemLog2, "SYSTEM.log2"),
            (HiveFile::Software, "software"),
            (HiveFile::SoftwareLog1, "SOFTWARE.LOG1"),
        ]
    );
    assert_eq!(wins[1].dir, "Win2");
    assert_eq!(
        wins[1].files.keys().copied().collect::<Vec<_>>(),
        vec![HiveFile::System, HiveFile::SoftwareLog2]
    );
    for w in &wins {
        for f in w.files.keys() {
            check_file(&img, &vol, &w.path_of(*f).unwrap());
        }
    }
    let sys = vol
        .file(&wins[0].path_of(HiveFile::System).unwrap())
        .unwrap();
    let mut all = vec![0u8; sys.size() as usize];
    sys.read_exact_at(0, &mut all).unwrap();
    assert!(all == std::fs::read(corpus.join("regipy/SYSTEM_B")).unwrap());
    check_file(&img, &vol, "hiberfil.sys");

    // The other signatures, written over the first bytes of HIBERFIL.SYS.
    let at = vol.file("hiberfil.sys").unwrap().runs()[0]
        .volume_offset
        .unwrap() as usize;
    let base = load(&img);
    for (sig, hibernated) in [
        (b"wake", true),
        (b"WAKE", true),
        (b"hibr", true),
        (b"HIBX", false),
        (b"\0\0\0\0", false),
    ] {
        let mut bytes = base.clone();
        bytes[at..at + 4].copy_from_slice(sig);
        let v = Volume::open(bytes).unwrap();
        assert_eq!(
            v.state().hibernation.is_some(),
            hibernated,
            "{:?}",
            String::from_utf8_lossy(sig)
        );
    }
}

#[test]
fn no_windows() {
    if ready().is_none() {
        return;
    }
    let img = image("none");
    let vol = open(&img);
    assert!(vol.find_windows().unwrap().is_empty());
    // hiberfil.sys full of zeros is not hibernation.
    assert!(vol.state().hibernation.is_none());
    assert!(vol.state().is_clean());
    check_file(&img, &vol, "Program Files/app/app.exe");
    check_file(&img, &vol, "users/ME/NOTES.TXT");
}

#[test]
fn fragmented_hive_through_an_attribute_list() {
    let Some(corpus) = ready() else { return };
    let img = image("frag");
    let vol = open(&img);
    let f = check_file(&img, &vol, "Windows/System32/config/SYSTEM");
    let real = f
        .runs()
        .iter()
        .filter(|r| r.volume_offset.is_some())
        .count();
    notice(&format!(
        "fragmented SYSTEM: {} runs, attribute list: {}",
        f.runs().len(),
        f.uses_attribute_list()
    ));
    assert!(real >= 100, "only {real} runs");
    assert!(
        f.uses_attribute_list(),
        "expected the runs to spill into an extension record"
    );
    let mut all = vec![0u8; f.size() as usize];
    f.read_exact_at(0, &mut all).unwrap();
    assert!(all == std::fs::read(corpus.join("regipy/SYSTEM")).unwrap());
    assert!(f.write_blockers().is_empty(), "{:?}", f.write_blockers());
    let wins = vol.find_windows().unwrap();
    assert_eq!(wins.len(), 1);
    assert_eq!(
        wins[0].files.keys().copied().collect::<Vec<_>>(),
        vec![HiveFile::System, HiveFile::Software]
    );
    // The root directory is a real B-tree here (400 entries): look some up.
    for n in [1u64, 2, 77, 150, 399, 400] {
        let name = format!("O{n:03}");
        let p = vol.file(&name).unwrap();
        assert_eq!(p.path(), format!("o{n:03}"));
        assert_eq!(p.size(), 4096);
    }
    assert!(matches!(vol.file("o401"), Err(Error::NotFound { .. })));
}

#[test]
fn dirty_volume_from_ntfsfix() {
    if ready().is_none() {
        return;
    }
    let src = image("none");
    let img = workdir().join("dirty.img");
    std::fs::copy(&src, &img).unwrap();
    // ntfsfix empties $LogFile and sets VOLUME_IS_DIRTY so that chkdsk runs.
    run(std::process::Command::new("ntfsfix").arg(&img));
    let vol = open(&img);
    assert!(vol.state().dirty);
    assert!(!vol.state().is_clean());
    assert!(
        vol.state().reasons()[0].contains("VOLUME_IS_DIRTY"),
        "{:?}",
        vol.state().reasons()
    );
    // Reading goes on.
    check_file(&img, &vol, "Users/me/notes.txt");
    run(std::process::Command::new("ntfsfix").arg("-d").arg(&img));
    assert!(!open(&img).state().dirty);
}

/// The $LogFile restart pages, written per the layout into the log's first clusters (found
/// through our runs, checked against ntfsinfo's): clean 1.1, unclean 1.1, fast startup 2.0.
#[test]
fn logfile_restart_states() {
    if ready().is_none() {
        return;
    }
    let src = image("none");
    let base = load(&src);
    let vol = open(&src);
    let log = vol.file("$LogFile").unwrap();
    let cs = u64::from(vol.geometry().cluster_size);
    let info = ntfsinfo_runs(&src, "/$LogFile", cs);
    let ours: Vec<_> = log
        .runs()
        .iter()
        .map(|r| (r.file_offset, r.volume_offset, r.len))
        .collect();
    assert_eq!(ours, info.runs);
    let at = log.runs()[0].volume_offset.unwrap() as usize;
    for (major, minor, in_use, clean, want) in [
        (1, 1, false, false, "clean"),
        (1, 1, true, true, "clean"),
        (1, 1, true, false, "unclean"),
        (2, 0, false, true, "fast"),
    ] {
        let mut img = base.clone();
        let page = guestwall_ntfsvol::build_restart_page(4096, major, minor, in_use, clean, 0x1234);
        img[at..at + 4096].copy_from_slice(&page);
        img[at + 4096..at + 8192].copy_from_slice(&page);
        let vol = Volume::open(img).unwrap();
        let st = vol.state();
        match want {
            "clean" => assert!(st.log.is_clean() && st.is_clean(), "{st:?}"),
            "unclean" => {
                assert!(
                    matches!(
                        st.log,
                        LogState::Unclean {
                            current_lsn: 0x1234,
                            ..
                        }
                    ),
                    "{st:?}"
                );
                assert!(st.reasons()[0].contains("RESTART_VOLUME_IS_CLEAN"));
            }
            _ => {
                assert_eq!(st.log, LogState::FastStartup);
                assert!(
                    st.reasons()[0].contains("Windows kept metadata in its cache (fast startup)")
                );
            }
        }
        // Reading goes on regardless.
        assert!(vol.file("Users/me/notes.txt").is_ok());
    }
}

/// A compressed file, made through an ntfs-3g FUSE mount with compression on: its flags and
/// runs are reported, and reading it is refused clearly (LZNT1 is not decompressed).
#[test]
fn compressed_file_is_reported_and_refused() {
    if ready().is_none() {
        return;
    }
    if !Path::new("/dev/fuse").exists() {
        notice("no /dev/fuse: cannot make an NTFS-compressed file; skipping");
        return;
    }
    let img = workdir().join("compressed.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    run(std::process::Command::new("mkntfs")
        .args(["-F", "-f", "-Q", "-q"])
        .arg(&img));
    let mnt = workdir().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("ntfs-3g")
        .args(["-o", "compression"])
        .arg(&img)
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            !in_ci(),
            "CI=true, /dev/fuse exists, but ntfs-3g cannot mount"
        );
        notice("ntfs-3g cannot mount here; skipping the compressed-file test");
        return;
    }
    let dir = mnt.join("cdir");
    std::fs::create_dir_all(&dir).unwrap();
    // FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_COMPRESSED, big-endian, through ntfs-3g's xattr.
    let set = std::process::Command::new("python3")
        .args([
            "-c",
            "import os,sys; os.setxattr(sys.argv[1], 'system.ntfs_attrib_be', (0x810).to_bytes(4, 'big'))",
        ])
        .arg(&dir)
        .status()
        .unwrap();
    std::fs::write(dir.join("c.txt"), b"compressible ".repeat(20_000)).unwrap();
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert!(set.success());
    let vol = open(&img);
    let f = vol.file("cdir/c.txt").unwrap();
    assert_eq!(
        f.flags() & guestwall_ntfsvol::ATTR_COMPRESSED,
        guestwall_ntfsvol::ATTR_COMPRESSED
    );
    let info = ntfsinfo_runs(&img, "/cdir/c.txt", 4096);
    let ours: Vec<_> = f
        .runs()
        .iter()
        .map(|r| (r.file_offset, r.volume_offset, r.len))
        .collect();
    assert_eq!(ours, info.runs);
    let mut b = [0u8; 16];
    let e = f.read_exact_at(0, &mut b).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    assert!(e.to_string().contains("LZNT1"), "{e}");
    assert!(f.write_blockers().iter().any(|b| b.contains("compressed")));
}
