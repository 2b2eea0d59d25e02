//! Any bytes as a hive file: open (whole, and lazily through a reader as for a hive inside a
//! disk image), walk everything, dump and export. Must never panic.
#![no_main]

use guestwall_regf::{dump_jsonl, export_reg, ExportOptions, Hive, Location, ReaderSource, RegEncoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = ReaderSource::new(Location::Memory("fuzz".into()), data.to_vec(), Vec::new());
    if let Ok(lazy) = Hive::open_lazy(&src) {
        let _ = lazy.check_all();
        let _ = dump_jsonl(&lazy, "", std::io::sink());
    }
    let Ok(hive) = Hive::from_bytes(data.to_vec()) else { return };
    let _ = hive.check_all();
    let _ = hive.cell_stats();
    let _ = dump_jsonl(&hive, "", std::io::sink());
    let opts = ExportOptions { root_prefix: "HKEY_LOCAL_MACHINE\\F".into(), encoding: RegEncoding::Utf16 };
    let _ = export_reg(&hive, "", &opts, std::io::sink());
    let _ = hive.find_key("ControlSet001\\Services\\SharedAccess");
    if let Ok(root) = hive.root() {
        let _ = root.security();
        let _ = root.class_name();
    }
});
