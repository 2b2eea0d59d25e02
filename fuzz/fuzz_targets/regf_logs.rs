//! A hive and a transaction log from one input: the log replay must never panic, and never
//! allocate more than the inputs justify.
#![no_main]

use guestwall_regf::{Hive, LogInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    // The first two bytes say where the primary ends (in 512-byte units).
    let split = (usize::from(u16::from_le_bytes([data[0], data[1]])) * 512).min(data.len() - 2);
    let (primary, log) = data[2..].split_at(split);
    let logs = [LogInput::new(
        guestwall_regf::Location::Memory("fuzz.LOG1".into()),
        log.to_vec(),
    )];
    if let Ok(hive) = Hive::from_bytes_with_logs(primary.to_vec(), &logs) {
        let _ = hive.check_all();
    }
});
