//! Any bytes as a PE language file (`FirewallAPI.dll.mui`): parse its string tables, read every
//! string in every language, resolve indirect strings against it. Must never panic, hang or
//! allocate without bound.
#![no_main]

use guestwall_mui::{resolve_indirect, StringTable, StringTables};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut table) = StringTable::parse(data) else { return };
    let mut total = 0usize;
    for (_, _, text) in table.iter() {
        total += text.len();
    }
    // Decoded text is bounded by the input: at most 3 UTF-8 bytes per 2-byte UTF-16 unit.
    assert!(total <= data.len() * 3 / 2 + 16, "{total} bytes of text from {} bytes", data.len());
    for note in table.notes() {
        let _ = note.to_string();
    }
    if let Some(&first) = table.languages().first() {
        table.prefer_language(first);
    }
    let ids = [0u32, 28752, 28753, 28775, 28776, 28778, 65535];
    for id in ids {
        let _ = table.get(id);
    }
    let mut tables = StringTables::new();
    tables.insert("FirewallAPI.dll.mui", table);
    for id in ids {
        let _ = resolve_indirect(&format!("@%SystemRoot%\\system32\\FirewallAPI.dll,-{id}"), &tables);
    }
});
