//! A hive and a transaction log from one input: the log replay (over the whole file, and over
//! the pages the log writes for a hive read lazily) must never panic, and never allocate more
//! than the inputs justify.
#![no_main]

use guestwall_regf::{Hive, Location, LogInput, ReaderSource};
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
    let src = ReaderSource::new(
        Location::Memory("fuzz".into()),
        primary.to_vec(),
        vec![(Location::Memory("fuzz.LOG1".into()), log.to_vec())],
    );
    if let Ok(lazy) = Hive::open_lazy(&src) {
        let _ = lazy.check_all();
    }
    if let Ok(hive) = Hive::from_bytes_with_logs(primary.to_vec(), &logs) {
        let _ = hive.check_all();
    }
});
