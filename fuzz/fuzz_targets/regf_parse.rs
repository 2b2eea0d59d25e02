//! Any bytes as a hive file: open, walk everything, dump and export. Must never panic.
#![no_main]

use guestwall_regf::{dump_jsonl, export_reg, ExportOptions, Hive, RegEncoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
