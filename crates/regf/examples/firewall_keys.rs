//! Opens a SYSTEM hive, reads `Select\Current` and every key and value under the current
//! control set's `Services\SharedAccess\Parameters\FirewallPolicy`, and prints what it read
//! and how long it took. `scripts/bench` times this end to end as a process.
//!
//! Usage: cargo run --release --example firewall_keys -- SYSTEM

use std::time::Instant;

use guestwall_regf::{Hive, RegData};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: firewall_keys SYSTEM")?;
    let t = Instant::now();
    let hive = Hive::open(&path)?;
    let select = hive.key("Select")?;
    let current = match select.value("Current")? {
        Some(v) => match RegData::decode(v.data_type(), &v.data()?) {
            RegData::Dword(n) => n,
            other => return Err(format!("Select\\Current is {other:?}").into()),
        },
        None => return Err("no Select\\Current".into()),
    };
    let policy =
        format!("ControlSet{current:03}\\Services\\SharedAccess\\Parameters\\FirewallPolicy");
    let (start, canonical) = hive.resolve(&policy)?;
    let (mut keys, mut values, mut bytes) = (0u64, 0u64, 0u64);
    hive.walk(start, &canonical, |_, key| {
        keys += 1;
        for v in key.values()? {
            values += 1;
            bytes += v.data()?.len() as u64;
        }
        Ok(())
    })?;
    let took = t.elapsed();
    println!(
        "Select\\Current={current}; {policy}: {keys} keys, {values} values, {bytes} bytes of data; {:.2} ms in process",
        took.as_secs_f64() * 1e3
    );
    Ok(())
}
