//! Writes a SOFTWARE hive of a realistic size for benchmarks: the keys guestwall reads (the
//! OS version, a Group Policy firewall store, the network list) plus filler keys shaped like
//! `Classes` (many small keys, each with a few string values) up to the size asked for.
//! Real SOFTWARE hives are 60–150 MB; the shared corpus has none.
//!
//!     cargo run --release -p guestwall-samples --example software_hive -- OUT [MEGABYTES]

use guestwall_regf::build::{build_hive, BuildOptions, KeySpec};
use guestwall_regf::reg_sz;

const REG_SZ: u32 = 1;
const REG_DWORD: u32 = 4;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: software_hive OUT [MEGABYTES]");
        std::process::exit(2);
    };
    let megabytes: usize = args.next().and_then(|m| m.parse().ok()).unwrap_or(80);
    let mut root = KeySpec::new("");
    root.path_mut("Microsoft\\Windows NT\\CurrentVersion")
        .push_value(
            "ProductName",
            REG_SZ,
            reg_sz("Windows Server 2019 Datacenter"),
        )
        .push_value("CurrentVersion", REG_SZ, reg_sz("6.3"))
        .push_value("CurrentBuildNumber", REG_SZ, reg_sz("17763"));
    root.path_mut("Policies\\Microsoft\\WindowsFirewall\\DomainProfile")
        .push_value("EnableFirewall", REG_DWORD, 1u32.to_le_bytes().to_vec());
    root.path_mut("Microsoft\\Windows NT\\CurrentVersion\\NetworkList\\Profiles\\{6C2A1B5E-0B8B-4C55-9A33-2D5B1E1F4C11}")
        .push_value("ProfileName", REG_SZ, reg_sz("Network"))
        .push_value("Category", REG_DWORD, 1u32.to_le_bytes().to_vec());
    // Filler: about 400 bytes of cells per key (a key node, its list entry, three values).
    let keys = megabytes * 1024 * 1024 / 400;
    let classes = root.path_mut("Classes");
    for i in 0..keys {
        if i % 500 == 0 {
            classes
                .subkeys
                .push(KeySpec::new(&format!("guestwall.group.{:05}", i / 500)));
        }
        let mut k = KeySpec::new(&format!("guestwall.filler.{i:08}"));
        k.push_value("", REG_SZ, reg_sz(&format!("Filler class {i}")))
            .push_value(
                "FriendlyTypeName",
                REG_SZ,
                reg_sz("@%SystemRoot%\\system32\\shell32.dll,-12345"),
            )
            .push_value("EditFlags", REG_DWORD, (i as u32).to_le_bytes().to_vec());
        if let Some(group) = classes.subkeys.last_mut() {
            group.subkeys.push(k);
        }
    }
    let bytes = match build_hive(&root, &BuildOptions::default()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("software_hive: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = std::fs::write(&out, &bytes) {
        eprintln!("software_hive: {out}: {e}");
        std::process::exit(2);
    }
    eprintln!("{out}: {} bytes, {} filler keys", bytes.len(), keys);
}
