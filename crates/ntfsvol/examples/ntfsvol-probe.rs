//! Prints what guestwall-ntfsvol sees in a volume image: state, Windows installations, and
//! (with a path) one file's runs. `cargo run -p guestwall-ntfsvol --example ntfsvol-probe -- IMG [PATH]`

use guestwall_ntfsvol::Volume;
use guestwall_source::{FileSource, ReadAt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let img = args.get(1).ok_or("usage: ntfsvol-probe IMG [PATH]")?;
    let vol = Volume::open(FileSource::open(img)?)?;
    println!("{:?}", vol.geometry());
    println!("state: {:?}", vol.state());
    for r in vol.state().reasons() {
        println!("  reason: {r}");
    }
    for w in vol.find_windows()? {
        println!("windows: {w:?}");
    }
    if let Some(p) = args.get(2) {
        let f = vol.file(p)?;
        println!(
            "{}: size {} init {} alloc {} resident {} flags {:#06x} list {} reparse {}",
            f.path(),
            f.data_size(),
            f.initialized_size(),
            f.allocated_size(),
            f.is_resident(),
            f.flags(),
            f.uses_attribute_list(),
            f.has_reparse_point()
        );
        for r in f.runs() {
            println!("  {:#x} {:?} {:#x}", r.file_offset, r.volume_offset, r.len);
        }
        let mut b = vec![0u8; f.size().min(16) as usize];
        f.read_exact_at(0, &mut b)?;
        println!("  head {b:02x?}");
    }
    Ok(())
}
