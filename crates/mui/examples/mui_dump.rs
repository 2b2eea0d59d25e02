//! Prints the string table of a PE file: `cargo run -p guestwall-mui --example mui_dump -- FILE
//! [LANGID]` (LANGID in hex, as the registry's InstallLanguage writes it).

use guestwall_mui::{lang, StringTable};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: mui_dump FILE [LANGID]")?;
    let bytes = std::fs::read(&path)?;
    let mut table = StringTable::parse(&bytes)?;
    if let Some(l) = args
        .next()
        .as_deref()
        .and_then(lang::parse_install_language)
    {
        table.prefer_language(l);
    }
    for note in table.notes() {
        eprintln!("note: {note}");
    }
    let langs: Vec<String> = table
        .languages()
        .iter()
        .map(|&l| match lang::by_langid(l) {
            Some(x) => format!("{l:#06x} {}", x.tag),
            None => format!("{l:#06x}"),
        })
        .collect();
    println!(
        "{path}: PE32{}, {} strings, languages: {}, MUI resource: {}",
        if table.is_pe32_plus() == Some(true) {
            "+"
        } else {
            ""
        },
        table.len(),
        langs.join(", "),
        table.has_mui_resource()
    );
    for (id, langid, text) in table.iter() {
        println!("{id}\t{langid:#06x}\t{text:?}");
    }
    Ok(())
}
