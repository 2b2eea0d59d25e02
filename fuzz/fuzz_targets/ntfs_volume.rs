//! Any bytes as an NTFS volume: open it, read its state, find Windows, read every file found
//! (the first MiB of each) and a few fixed paths. Must never panic, hang or allocate without
//! bound.
//!
//! The `ntfs` crate may panic on damage that guestwall-ntfsvol's own checks do not catch; the
//! crate catches those at its boundary and returns `Error::CratePanic`. libFuzzer's panic hook
//! would abort on them before the unwind reaches that boundary, so the hook is replaced: a
//! panic raised inside the `ntfs` crate's sources unwinds (and is reported as an error), any
//! other panic aborts and is a finding.
#![no_main]

use guestwall_ntfsvol::{Volume, ReadAt};
use libfuzzer_sys::fuzz_target;
use std::sync::Once;

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

fuzz_target!(|data: &[u8]| {
    install_hook();
    let Ok(vol) = Volume::open(data.to_vec()) else { return };
    let _ = vol.state().reasons();
    let mut buf = vec![0u8; 1 << 20];
    if let Ok(wins) = vol.find_windows() {
        for w in wins {
            for f in w.files.keys() {
                let Some(path) = w.path_of(*f) else { continue };
                if let Ok(view) = vol.file(&path) {
                    let n = view.size().min(buf.len() as u64) as usize;
                    let _ = view.read_exact_at(0, &mut buf[..n]);
                    let _ = view.write_blockers();
                }
            }
        }
    }
    for p in ["hiberfil.sys", "$LogFile", "$MFT", "Windows/System32/config/SYSTEM", "a/b/c"] {
        if let Ok(view) = vol.file(p) {
            let n = view.size().min(4096) as usize;
            let _ = view.read_exact_at(view.size() - n as u64, &mut buf[..n]);
        }
    }
});
