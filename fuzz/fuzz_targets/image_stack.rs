//! Any bytes as a disk image, through the whole read path the CLI uses: ingest's locate
//! (sniffs the container by content), then load, which opens the container (raw, VHD, VHDX,
//! with parents refused by name only), the partition table, each NTFS volume, finds Windows
//! and reads SYSTEM, SOFTWARE and their logs through the data runs into the firewall model.
//! Must never panic, hang or allocate without bound.
//!
//! ingest reads images by path, so each input is written to one file of this process (on
//! /dev/shm when there is one). As in `ntfs_volume`, a panic raised inside the `ntfs` crate's
//! sources unwinds to guestwall-ntfsvol's boundary (which turns it into an error); any other
//! panic aborts and is a finding.
#![no_main]

use std::path::PathBuf;
use std::sync::{Once, OnceLock};

use libfuzzer_sys::fuzz_target;

static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let in_ntfs_crate = info
                .location()
                .is_some_and(|l| l.file().contains("/ntfs-0.") || l.file().contains("\\ntfs-0."));
            if !in_ntfs_crate {
                eprintln!("{info}");
                std::process::abort();
            }
        }));
    });
}

/// This process's input file.
fn input_path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        // libFuzzer exits without cleaning up: remove the files of processes that are gone.
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix("guestwall-fuzz-image-stack-")
                    .and_then(|r| r.strip_suffix(".img"))
                    .and_then(|p| p.parse::<u32>().ok());
                if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        dir.join(format!(
            "guestwall-fuzz-image-stack-{}.img",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    install_hook();
    let path = input_path();
    if std::fs::write(path, data).is_err() {
        return;
    }
    // What the CLI does for `guestwall diagnose IMAGE` (and with --partition).
    for partition in [None, Some(1), Some(2)] {
        let Ok(target) = guestwall_ingest::locate_with(path, None, partition) else {
            continue;
        };
        if let Ok(configs) = guestwall_ingest::load(&target) {
            for c in &configs {
                let _ = guestwall_diagnose::diagnose(c, None);
            }
        }
        if target.image.is_none() {
            break;
        }
    }
    // The lower level directly: the installation found and its hive sources.
    if let Ok(Some(img)) = guestwall_ingest::locate(path, None).map(|t| t.image) {
        if let Ok(win) = guestwall_ingest::image::open_windows(&img) {
            let _ = guestwall_ingest::load_sources(&guestwall_ingest::Sources {
                system: &win.system,
                software: win
                    .software
                    .as_ref()
                    .map(|s| s as &dyn guestwall_regf::HiveSource),
                software_given: false,
                in_image: true,
                files: None,
            });
        }
        let _ = guestwall_ingest::image::open_file(&img, "Windows/System32/config/SYSTEM");
    }
});
