//! reg.exe's command-line syntax and its `/d` data conversions.

use std::path::PathBuf;

use guestwall_regf::data::*;

use crate::{RegError, Result};

/// What `reg delete` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteTarget {
    /// The key and its subtree (no `/v`, `/ve` or `/va`).
    Key,
    /// One value (`/v NAME`, or `/ve` for the default value).
    Value(String),
    /// All values of the key (`/va`).
    AllValues,
}

/// One parsed reg.exe operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `reg add KEY [/v NAME | /ve] [/t TYPE] [/s SEP] [/d DATA] [/f]`.
    Add {
        /// Key path as typed.
        key: String,
        /// Value name (`""` for `/ve`); `None` creates only the key.
        value: Option<String>,
        /// Type (default REG_SZ).
        data_type: u32,
        /// REG_MULTI_SZ separator (default `\0`).
        separator: Option<String>,
        /// Data as typed.
        data: Option<String>,
        /// `/f`: no confirmation.
        force: bool,
    },
    /// `reg delete KEY [/v NAME | /ve | /va] [/f]`.
    Delete {
        /// Key path as typed.
        key: String,
        /// What to delete.
        target: DeleteTarget,
        /// `/f`.
        force: bool,
    },
    /// `reg query KEY [/v [NAME] | /ve] [/s]`.
    Query {
        /// Key path as typed.
        key: String,
        /// `Some(Some(name))` for `/v NAME`, `Some(None)` for `/ve`, `None` for all values.
        value: Option<Option<String>>,
        /// `/s`: every subkey too.
        recurse: bool,
    },
    /// `reg import FILE`.
    Import {
        /// The .reg file.
        file: PathBuf,
    },
    /// `reg export KEY FILE [/y]`.
    Export {
        /// Key path as typed.
        key: String,
        /// Output file.
        file: PathBuf,
        /// `/y`: overwrite without asking.
        overwrite: bool,
    },
}

fn usage(msg: impl Into<String>) -> RegError {
    RegError::Usage(msg.into())
}

/// A switch (`/x` or `-x`), lower-cased without its prefix.
fn switch(a: &str) -> Option<String> {
    let s = a.strip_prefix('/').or_else(|| a.strip_prefix('-'))?;
    (!s.is_empty() && s.len() <= 3 && s.chars().all(|c| c.is_ascii_alphabetic()))
        .then(|| s.to_ascii_lowercase())
}

/// True for a path naming the hive's root itself.
pub(crate) fn is_root(rel: &str) -> bool {
    guestwall_regf::split_path(rel).next().is_none()
}

impl Operation {
    /// Parses `args` (the words after `reg`).
    pub fn parse(args: &[String]) -> Result<Operation> {
        let (op, rest) = args
            .split_first()
            .ok_or_else(|| usage("expected an operation: add, delete, query, import or export"))?;
        let op = op.to_ascii_lowercase();
        match op.as_str() {
            "import" => {
                let [file] = rest else {
                    return Err(usage("reg import FILE"));
                };
                Ok(Operation::Import { file: file.into() })
            }
            "export" => {
                let mut pos = Vec::new();
                let mut overwrite = false;
                for a in rest {
                    match switch(a).as_deref() {
                        Some("y") => overwrite = true,
                        Some(s) => return Err(usage(format!("export does not take /{s}"))),
                        None => pos.push(a.clone()),
                    }
                }
                let [key, file] = &pos[..] else {
                    return Err(usage("reg export KEY FILE [/y]"));
                };
                Ok(Operation::Export {
                    key: key.clone(),
                    file: file.into(),
                    overwrite,
                })
            }
            "add" | "delete" | "query" => {
                let (key, rest) = rest
                    .split_first()
                    .ok_or_else(|| usage(format!("reg {op} KEY ...")))?;
                let mut value: Option<Option<String>> = None;
                let mut all_values = false;
                let mut data_type = None;
                let mut separator = None;
                let mut data = None;
                let mut force = false;
                let mut recurse = false;
                let mut i = 0;
                let take = |i: &mut usize, what: &str| -> Result<String> {
                    *i += 1;
                    rest.get(*i)
                        .cloned()
                        .ok_or_else(|| usage(format!("/{what} needs an argument")))
                };
                while i < rest.len() {
                    let a = &rest[i];
                    let Some(s) = switch(a) else {
                        return Err(usage(format!("unexpected argument {a:?}")));
                    };
                    match (op.as_str(), s.as_str()) {
                        (_, "v")
                            if op == "query"
                                && rest.get(i + 1).is_none_or(|n| switch(n).is_some()) =>
                        {
                            return Err(usage(
                                "/v needs a value name (use /ve for the default value)",
                            ));
                        }
                        (_, "v") => value = Some(Some(take(&mut i, "v")?)),
                        (_, "ve") => value = Some(None),
                        ("delete", "va") => all_values = true,
                        ("add", "t") => {
                            let t = take(&mut i, "t")?;
                            data_type = Some(
                                parse_type(&t)
                                    .filter(|_| t.to_ascii_uppercase().starts_with("REG_"))
                                    .ok_or_else(|| usage(format!("unknown type {t:?}")))?,
                            );
                        }
                        ("add", "s") => separator = Some(take(&mut i, "s")?),
                        ("add", "d") => data = Some(take(&mut i, "d")?),
                        ("add" | "delete", "f") => force = true,
                        ("query", "s") => recurse = true,
                        (_, s) => return Err(usage(format!("{op} does not take /{s}"))),
                    }
                    i += 1;
                }
                match op.as_str() {
                    "add" => Ok(Operation::Add {
                        key: key.clone(),
                        value: value.map(Option::unwrap_or_default),
                        data_type: data_type.unwrap_or(REG_SZ),
                        separator,
                        data,
                        force,
                    }),
                    "delete" => Ok(Operation::Delete {
                        key: key.clone(),
                        target: match (value, all_values) {
                            (Some(_), true) => {
                                return Err(usage("/va cannot be combined with /v or /ve"))
                            }
                            (None, true) => DeleteTarget::AllValues,
                            (Some(v), false) => DeleteTarget::Value(v.unwrap_or_default()),
                            (None, false) => DeleteTarget::Key,
                        },
                        force,
                    }),
                    _ => Ok(Operation::Query {
                        key: key.clone(),
                        value,
                        recurse,
                    }),
                }
            }
            other => Err(usage(format!(
                "unknown operation {other:?}: expected add, delete, query, import or export"
            ))),
        }
    }
}

fn parse_u64(s: &str, max: u64) -> Result<u64> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    }
    .map_err(|_| usage(format!("{s:?} is not a number (decimal, or hex with 0x)")))?;
    if v > max {
        return Err(usage(format!("{s:?} is too large for the type")));
    }
    Ok(v)
}

fn utf16(s: &str, nul: bool) -> Vec<u8> {
    if nul {
        guestwall_regf::reg_sz(s)
    } else {
        guestwall_regf::utf16le(s)
    }
}

fn hex_bytes(s: &str) -> Result<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err(usage(format!(
            "binary data {s:?} needs an even number of hex digits"
        )));
    }
    (0..s.len() / 2)
        .map(|i| {
            u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or("x"), 16)
                .map_err(|_| usage(format!("binary data {s:?} is not hex")))
        })
        .collect()
}

/// Converts `/d` data the way reg.exe does for each type: strings become UTF-16LE with a NUL,
/// REG_MULTI_SZ is split on the separator (default the two characters `\0`), numbers are
/// decimal or `0x` hex, REG_BINARY and the other binary types are hex digits.
pub fn parse_data(t: u32, data: &str, separator: Option<&str>) -> Result<Vec<u8>> {
    Ok(match t {
        REG_SZ | REG_EXPAND_SZ => utf16(data, true),
        REG_LINK => utf16(data, false),
        REG_MULTI_SZ => {
            let sep = separator.unwrap_or("\\0");
            if sep.is_empty() {
                return Err(usage("/s needs a separator"));
            }
            let mut v = Vec::new();
            if !data.is_empty() {
                for part in data.split(sep) {
                    if part.is_empty() {
                        return Err(usage("REG_MULTI_SZ data cannot hold an empty string"));
                    }
                    v.extend(utf16(part, true));
                }
            }
            v.extend([0, 0]);
            v
        }
        REG_DWORD => (parse_u64(data, u64::from(u32::MAX))? as u32)
            .to_le_bytes()
            .to_vec(),
        REG_DWORD_BIG_ENDIAN => {
            let v = parse_u64(data, u64::from(u32::MAX))? as u32;
            #[allow(clippy::big_endian_bytes)]
            let b = v.to_be_bytes();
            b.to_vec()
        }
        REG_QWORD => parse_u64(data, u64::MAX)?.to_le_bytes().to_vec(),
        _ => hex_bytes(data)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Operation> {
        Operation::parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_microsofts_offline_lines() {
        let op = p(&["delete", "HKLM\\BROKENSYSTEM\\ControlSet001\\services\\SharedAccess\\Parameters\\FirewallPolicy\\DomainProfile", "/v", "DoNotAllowExceptions", "/f"]).unwrap();
        assert_eq!(
            op,
            Operation::Delete {
                key: "HKLM\\BROKENSYSTEM\\ControlSet001\\services\\SharedAccess\\Parameters\\FirewallPolicy\\DomainProfile".into(),
                target: DeleteTarget::Value("DoNotAllowExceptions".into()),
                force: true
            }
        );
        let op = p(&[
            "ADD",
            "HKLM\\X",
            "/v",
            "fDenyTSConnections",
            "/t",
            "REG_DWORD",
            "/d",
            "0",
            "/f",
        ])
        .unwrap();
        assert!(matches!(
            op,
            Operation::Add {
                data_type: REG_DWORD,
                force: true,
                ..
            }
        ));
        assert!(
            matches!(p(&["add", "K", "-ve", "-d", "x"]).unwrap(), Operation::Add { value: Some(v), .. } if v.is_empty())
        );
        assert!(matches!(
            p(&["query", "K", "/s"]).unwrap(),
            Operation::Query {
                recurse: true,
                value: None,
                ..
            }
        ));
        assert!(p(&["add", "K", "/t", "REG_BOGUS"]).is_err());
        assert!(p(&["add", "K", "/t", "4"]).is_err());
        assert!(p(&["delete", "K", "/v", "x", "/va"]).is_err());
        assert!(p(&["frobnicate"]).is_err());
        assert!(p(&["add", "K", "/d"]).is_err());
    }

    #[test]
    fn converts_data_like_reg_exe() {
        assert_eq!(
            parse_data(REG_DWORD, "0x10", None).unwrap(),
            vec![16, 0, 0, 0]
        );
        assert_eq!(
            parse_data(REG_DWORD, "3389", None).unwrap(),
            3389u32.to_le_bytes()
        );
        assert!(parse_data(REG_DWORD, "4294967296", None).is_err());
        assert_eq!(
            parse_data(REG_QWORD, "0x1", None).unwrap(),
            1u64.to_le_bytes()
        );
        assert_eq!(
            parse_data(REG_DWORD_BIG_ENDIAN, "1", None).unwrap(),
            vec![0, 0, 0, 1]
        );
        assert_eq!(
            parse_data(REG_BINARY, "0aff", None).unwrap(),
            vec![0x0a, 0xff]
        );
        assert!(parse_data(REG_BINARY, "abc", None).is_err());
        assert_eq!(
            parse_data(REG_SZ, "hi", None).unwrap(),
            vec![b'h', 0, b'i', 0, 0, 0]
        );
        assert_eq!(
            parse_data(REG_MULTI_SZ, "a\\0b", None).unwrap(),
            vec![b'a', 0, 0, 0, b'b', 0, 0, 0, 0, 0]
        );
        assert_eq!(
            parse_data(REG_MULTI_SZ, "a#b", Some("#")).unwrap(),
            vec![b'a', 0, 0, 0, b'b', 0, 0, 0, 0, 0]
        );
        assert_eq!(parse_data(REG_MULTI_SZ, "", None).unwrap(), vec![0, 0]);
        assert_eq!(parse_data(REG_NONE, "", None).unwrap(), Vec::<u8>::new());
    }
}
