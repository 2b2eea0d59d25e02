//! Human-readable reports on a hive: `info`, `ls` and `get`.

use std::io::Write;

use crate::base_block::{filetime_to_string, BaseBlock, FileType};
use crate::data::{type_label, RegData};
use crate::error::{Error, Result};
use crate::hive::Hive;
use crate::key::Key;
use crate::log::LogFormat;
use crate::value::Value;
use guestwall_source::Location;

fn io(e: std::io::Error) -> Error {
    Error::Output(e)
}

/// Writes header facts, dirty state, logs found and applied, and cell and key counts.
pub fn write_info<W: Write>(hive: &Hive, mut w: W) -> Result<()> {
    let p = hive.primary_base_block();
    let b = hive.base_block();
    if let Some(path) = hive.path() {
        writeln!(w, "file:              {}", path.display()).map_err(io)?;
    }
    writeln!(
        w,
        "format:            regf {}.{}, {}, file format {}",
        p.major,
        p.minor,
        match p.file_type {
            FileType::Primary => "primary file".to_string(),
            other => format!("{other:?}"),
        },
        p.file_format
    )
    .map_err(io)?;
    writeln!(w, "file name field:   {}", p.file_name).map_err(io)?;
    write_seq(&mut w, "sequence numbers:  ", p)?;
    writeln!(
        w,
        "checksum:          {:#010x} ({})",
        p.stored_checksum,
        if p.checksum_ok() {
            "ok".to_string()
        } else {
            format!("WRONG, computed {:#010x}", p.computed_checksum)
        }
    )
    .map_err(io)?;
    writeln!(w, "last written:      {}", filetime_to_string(p.timestamp)).map_err(io)?;
    writeln!(
        w,
        "last reorganized:  {}",
        filetime_to_string(p.last_reorganized)
    )
    .map_err(io)?;
    writeln!(w, "root cell:         {:#x}", p.root_cell).map_err(io)?;
    writeln!(
        w,
        "hive bins size:    {:#x} ({} bytes)",
        p.hbins_size, p.hbins_size
    )
    .map_err(io)?;
    writeln!(w, "clustering factor: {}", p.clustering).map_err(io)?;
    writeln!(
        w,
        "state:             {}",
        if !p.is_dirty() {
            "clean"
        } else if !p.checksum_ok() {
            "dirty (base block checksum is wrong)"
        } else {
            "dirty (sequence numbers differ: a write did not finish)"
        }
    )
    .map_err(io)?;
    let rec = hive.recovery();
    if rec.logs.is_empty() {
        writeln!(
            w,
            "logs:              {}",
            if p.is_dirty() {
                "none found"
            } else {
                "not needed (clean hive)"
            }
        )
        .map_err(io)?;
    }
    for (i, l) in rec.logs.iter().enumerate() {
        let label = if i == 0 {
            "logs:              "
        } else {
            "                   "
        };
        let name = match &l.location {
            Location::File(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            other => other.to_string(),
        };
        let fmt = match l.format {
            Some(LogFormat::New) => "new format (HvLE)",
            Some(LogFormat::Old) => "old format (dirty vector)",
            None => "unusable",
        };
        let mut line = format!("{label}{name}: {fmt}");
        if l.format.is_some() {
            line.push_str(&format!(
                ", {} entries found, {} applied",
                l.entries_found, l.entries_applied
            ));
            if let Some((a, z)) = l.applied_seq {
                line.push_str(&format!(" (sequence {a}..={z}, {} pages)", l.pages_applied));
            }
        }
        if let Some(note) = &l.note {
            line.push_str(&format!("; {note}"));
        }
        writeln!(w, "{line}").map_err(io)?;
    }
    if rec.applied() {
        write_seq(&mut w, "after replay:      ", b)?;
        writeln!(w, "                   hive bins size {:#x}", b.hbins_size).map_err(io)?;
    }
    for warning in hive.warnings() {
        writeln!(w, "warning:           {warning}").map_err(io)?;
    }
    writeln!(w, "hive bins:         {}", hive.bins().bins().len()).map_err(io)?;
    let stats = hive.cell_stats()?;
    writeln!(
        w,
        "cells:             {} allocated ({} bytes), {} free ({} bytes)",
        stats.allocated, stats.allocated_bytes, stats.free, stats.free_bytes
    )
    .map_err(io)?;
    let (keys, values) = hive.check_all()?;
    writeln!(w, "keys:              {keys}").map_err(io)?;
    writeln!(w, "values:            {values}").map_err(io)?;
    let root = hive.root()?;
    writeln!(
        w,
        "root key:          {:?}, {} subkeys, {} values",
        root.name().to_string_lossy(),
        root.subkey_count(),
        root.value_count()
    )
    .map_err(io)?;
    Ok(())
}

fn write_seq<W: Write>(w: &mut W, label: &str, b: &BaseBlock) -> Result<()> {
    writeln!(
        w,
        "{label}{} / {}{}",
        b.primary_seq,
        b.secondary_seq,
        if b.sequence_mismatch() {
            " (differ)"
        } else {
            ""
        }
    )
    .map_err(io)
}

/// Lists a key's subkeys (each ending in `\`) and values (name, type, size).
pub fn write_ls<W: Write>(hive: &Hive, key_path: &str, mut w: W) -> Result<()> {
    let (key, _) = hive.resolve(key_path)?;
    for k in key.subkeys().map_err(|e| e.at_key(key_path))? {
        writeln!(w, "{}\\", k.name()).map_err(io)?;
    }
    for v in key.values().map_err(|e| e.at_key(key_path))? {
        writeln!(
            w,
            "{}  {}  {} bytes",
            display_name(&v),
            type_label(v.data_type()),
            v.data_len()
        )
        .map_err(io)?;
    }
    Ok(())
}

/// Prints one value's data (`value = Some(name)`), the way `hivexget` does: strings as text,
/// numbers in decimal, REG_MULTI_SZ one string a line, anything else as hex bytes. With
/// `value = None`, prints every value of the key as `name  TYPE  data`, like `reg query`.
pub fn write_get<W: Write>(
    hive: &Hive,
    key_path: &str,
    value: Option<&str>,
    mut w: W,
) -> Result<()> {
    let (key, canonical) = hive.resolve(key_path)?;
    match value {
        Some(name) => {
            let v = find_value(&key, &canonical, name)?;
            let data = v.data().map_err(|e| e.at_key(&canonical))?;
            match RegData::decode(v.data_type(), &data) {
                RegData::String(s) => writeln!(w, "{s}"),
                RegData::MultiString(list) => list.iter().try_for_each(|s| writeln!(w, "{s}")),
                RegData::Dword(d) => writeln!(w, "{d}"),
                RegData::Qword(q) => writeln!(w, "{q}"),
                RegData::Bytes(b) => writeln!(w, "{}", crate::data::hex(&b, " ")),
            }
            .map_err(io)
        }
        None => {
            for v in key.values().map_err(|e| e.at_key(&canonical))? {
                let data = v.data().map_err(|e| e.at_key(&canonical))?;
                writeln!(
                    w,
                    "    {}    {}    {}",
                    display_name(&v),
                    type_label(v.data_type()),
                    RegData::decode(v.data_type(), &data)
                )
                .map_err(io)?;
            }
            Ok(())
        }
    }
}

/// The value named `name` of `key`, or [`Error::ValueNotFound`]. `@` and `""` both mean the
/// default value (unless a value is really named `@`).
pub fn find_value<'h>(key: &Key<'h>, key_path: &str, name: &str) -> Result<Value<'h>> {
    let mut found = key.value(name).map_err(|e| e.at_key(key_path))?;
    if found.is_none() && name == "@" {
        found = key.value("").map_err(|e| e.at_key(key_path))?;
    }
    found.ok_or_else(|| Error::ValueNotFound {
        key: key_path.to_string(),
        name: name.to_string(),
    })
}

fn display_name(v: &Value<'_>) -> String {
    if v.name().is_empty() {
        "(Default)".to_string()
    } else {
        v.name().to_string_lossy()
    }
}

/// Shorthand used by reports and tools: the data of `key_path`'s value `name` decoded.
pub fn get_decoded(hive: &Hive, key_path: &str, name: &str) -> Result<RegData> {
    let (key, canonical) = hive.resolve(key_path)?;
    let v = find_value(&key, &canonical, name)?;
    Ok(RegData::decode(v.data_type(), &v.data()?))
}
