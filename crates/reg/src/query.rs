//! `reg query` output, in reg.exe's layout.

use std::io::Write;

use guestwall_regf::data::*;
use guestwall_regf::{Hive, Key, Value};

use crate::{io, reg_type_name, RegError, Result};

/// How reg.exe prints a value's data.
fn show(v: &Value<'_>) -> Result<String> {
    let data = v.data()?;
    let t = v.data_type();
    Ok(match (t, RegData::decode(t, &data)) {
        (REG_SZ | REG_EXPAND_SZ | REG_LINK, RegData::String(s)) => s,
        (_, RegData::MultiString(list)) => list.join("\\0"),
        (_, RegData::Dword(d)) => format!("{d:#x}"),
        (_, RegData::Qword(q)) => format!("{q:#x}"),
        _ => data.iter().map(|b| format!("{b:02X}")).collect(),
    })
}

fn value_line(v: &Value<'_>) -> Result<String> {
    let name = if v.name().is_empty() {
        "(Default)".to_string()
    } else {
        v.name().to_string_lossy()
    };
    Ok(format!(
        "    {name}    {}    {}",
        reg_type_name(v.data_type()),
        show(v)?
    ))
}

fn full(display: &str, rel: &str) -> String {
    if rel.is_empty() {
        display.to_string()
    } else {
        format!("{display}\\{rel}")
    }
}

/// Prints a key the way `reg query` does: a blank line, the key's full path, its values; then
/// its subkeys (their paths, or whole blocks with `/s`). `value` selects one value (`""` for
/// `/ve`).
pub fn query(
    hive: &Hive,
    rel: &str,
    display: &str,
    value: Option<&str>,
    recurse: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let (key, canonical) = hive.resolve(rel).map_err(|e| match e {
        guestwall_regf::Error::KeyNotFound { .. } => RegError::NotFound(full(display, rel)),
        e => e.into(),
    })?;
    if let Some(name) = value {
        let v = key
            .value(name)?
            .ok_or_else(|| RegError::NotFound(format!("{} /v {name}", full(display, rel))))?;
        writeln!(out, "\n{}", full(display, &canonical)).map_err(io)?;
        writeln!(out, "{}\n", value_line(&v)?).map_err(io)?;
        return Ok(());
    }
    if recurse {
        hive.walk(key, &canonical, |path, k| {
            block(k, &full(display, path), out).map_err(|e| match e {
                RegError::Hive(h) => h,
                // Keep the I/O error itself, so that a closed pipe is recognised as one.
                RegError::Io { source, .. } | RegError::Output(source) => {
                    guestwall_regf::Error::Output(source)
                }
                other => guestwall_regf::Error::Output(std::io::Error::other(other.to_string())),
            })
        })?;
        return Ok(());
    }
    block(&key, &full(display, &canonical), out)?;
    let subkeys = key.subkeys()?;
    for k in &subkeys {
        writeln!(out, "{}\\{}", full(display, &canonical), k.name()).map_err(io)?;
    }
    if !subkeys.is_empty() {
        writeln!(out).map_err(io)?;
    }
    Ok(())
}

fn block(key: &Key<'_>, path: &str, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "\n{path}").map_err(io)?;
    let values = key.values()?;
    for v in &values {
        writeln!(out, "{}", value_line(v)?).map_err(io)?;
    }
    if !values.is_empty() {
        writeln!(out).map_err(io)?;
    }
    Ok(())
}
