//! Helpers shared by the integration tests: where the corpus is, and whether peers exist.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when running under CI, where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared corpus (`../shared/corpus` beside the repository, or `$GUESTWALL_CORPUS`).
/// Prints a notice and returns `None` when it is missing; under CI a missing corpus fails.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("GUESTWALL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !in_ci(),
        "CI=true but the corpus is missing at {}",
        dir.display()
    );
    notice(&format!(
        "corpus not found at {}; skipping this test",
        dir.display()
    ));
    None
}

/// Debian's python3 with the hivex module, if installed. Under CI it must be.
pub fn hivex_python() -> Option<PathBuf> {
    let py = PathBuf::from("/usr/bin/python3");
    let ok = Command::new(&py)
        .args(["-c", "import hivex"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(!in_ci(), "CI=true but /usr/bin/python3 cannot import hivex");
    notice("python3-hivex not installed; skipping this peer test");
    None
}

/// Prints a skip notice on the real stderr, past the test harness's output capture (which
/// only intercepts the `print!` family), so that a skipped test is visible in a normal run.
/// Each distinct notice is printed once per test binary (not once per test that skips).
/// Returns true when it was printed now.
pub fn notice(msg: &str) -> bool {
    use std::io::Write;
    use std::sync::Mutex;
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.iter().any(|m| m == msg) {
        return false;
    }
    said.push(msg.to_string());
    let _ = writeln!(std::io::stderr(), "NOTICE: {msg}");
    true
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The Python of the venv that has regipy (`target/peer-venv`, made by `.ci/run`), or
/// `$GUESTWALL_REGIPY_PYTHON`. Under CI it must exist.
pub fn regipy_python() -> Option<PathBuf> {
    let py = std::env::var_os("GUESTWALL_REGIPY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/peer-venv/bin/python"));
    let ok = Command::new(&py)
        .args(["-c", "import regipy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(
        !in_ci(),
        "CI=true but regipy is not installed for {}",
        py.display()
    );
    notice("regipy not installed (python3 -m venv target/peer-venv && target/peer-venv/bin/pip install regipy); skipping");
    None
}

fn run_json_lines(py: &Path, script: &str, hive: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(py)
        .arg(repo_root().join("tests/peer").join(script))
        .arg(hive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed on {}: {}",
        hive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Our dump of a hive file read primary-only, as JSON values.
pub fn our_records(hive: &Path) -> Vec<serde_json::Value> {
    let h =
        guestwall_regf::Hive::open_with(hive, &guestwall_regf::OpenOptions { replay_logs: false })
            .unwrap();
    let mut out = Vec::new();
    guestwall_regf::dump_jsonl(&h, "", &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Our dump, decoded the way `tests/peer/regipy_dump.py` normalises regipy's values.
fn our_regipy_records(hive: &Path) -> Vec<serde_json::Value> {
    use guestwall_regf::data::*;
    use serde_json::{json, Value};
    our_records(hive)
        .into_iter()
        .map(|r| {
            let Some(name) = r.get("value") else { return r };
            let t = r["type"].as_u64().unwrap() as u32;
            let hex = r["data"].as_str().unwrap();
            let data: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let norm = match t {
                REG_DWORD if data.len() == 4 => {
                    json!(u32::from_le_bytes(data[..4].try_into().unwrap()))
                }
                REG_QWORD if data.len() == 8 => {
                    json!(u64::from_le_bytes(data[..8].try_into().unwrap()))
                }
                REG_SZ | REG_EXPAND_SZ if data.len().is_multiple_of(2) => {
                    match String::from_utf16(&units) {
                        Ok(s) => json!(s.trim_end_matches('\0')),
                        Err(_) => Value::Null,
                    }
                }
                REG_MULTI_SZ => json!(units
                    .split(|&u| u == 0)
                    .filter(|p| !p.is_empty())
                    .map(String::from_utf16_lossy)
                    .collect::<Vec<_>>()),
                REG_BINARY | REG_NONE => json!(hex),
                _ => Value::Null,
            };
            let type_name =
                guestwall_regf::type_name(t).map_or_else(|| format!("{t}"), str::to_string);
            json!({"key": r["key"], "value": name, "type": type_name, "norm": norm})
        })
        .collect()
}

/// Checks that hivex (exactly) and regipy (as far as it decodes) read `hive` as we do.
pub fn assert_peers_agree(hive: &Path) {
    let ours = our_records(hive);
    if let Some(py) = hivex_python() {
        let theirs = run_json_lines(&py, "hivex_dump.py", hive);
        assert_eq!(
            ours.len(),
            theirs.len(),
            "hivex: record count for {}",
            hive.display()
        );
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "hivex disagrees on {}", hive.display());
        }
    }
    if let Some(py) = regipy_python() {
        let ours = our_regipy_records(hive);
        let theirs = run_json_lines(&py, "regipy_dump.py", hive);
        assert_eq!(
            ours.len(),
            theirs.len(),
            "regipy: record count for {}",
            hive.display()
        );
        for (a, b) in ours.iter().zip(&theirs) {
            if a.get("norm").is_some_and(serde_json::Value::is_null) {
                // Types regipy does not decode: compare everything but the data.
                assert_eq!(a["key"], b["key"]);
                assert_eq!(a["value"], b["value"]);
                continue;
            }
            assert_eq!(a, b, "regipy disagrees on {}", hive.display());
        }
    }
}

use std::collections::BTreeMap;

/// The test oracle: an independent model of a hive's logical content (every key, and every
/// value's name, type and data, in order), with the edit semantics of `HiveMut` restated.
/// The logical content of a hive: every key, and every value's name, type and data, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    keys: BTreeMap<Vec<u16>, SnapKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SnapKey {
    path: String,
    values: Vec<SnapValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SnapValue {
    name: String,
    data_type: u32,
    data: Vec<u8>,
}

/// Sets a value in a key's value list (names compared as Windows does), appending it when new.
fn set_snap_value(values: &mut Vec<SnapValue>, name: &str, data_type: u32, data: &[u8]) {
    let n = upper(name);
    match values.iter_mut().find(|v| upper(&v.name) == n) {
        Some(v) => {
            v.data_type = data_type;
            v.data = data.to_vec();
        }
        None => values.push(SnapValue {
            name: name.to_string(),
            data_type,
            data: data.to_vec(),
        }),
    }
}

/// Removes a value from a key's value list; an absent value is an error, as in the writer.
fn delete_snap_value(
    values: &mut Vec<SnapValue>,
    key: &str,
    name: &str,
) -> guestwall_regf::Result<()> {
    let n = upper(name);
    let before = values.len();
    values.retain(|v| upper(&v.name) != n);
    if values.len() == before {
        return Err(guestwall_regf::Error::ValueNotFound {
            key: key.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

fn upper(s: &str) -> Vec<u16> {
    s.encode_utf16().map(guestwall_regf::upcase).collect()
}

/// Upper-cased path with `\` separators and no empty parts.
fn upper_path(path: &str) -> Vec<u16> {
    upper(
        &guestwall_regf::split_path(path)
            .collect::<Vec<_>>()
            .join("\\"),
    )
}

impl Snapshot {
    /// Reads every key and value of `hive`.
    pub fn of(hive: &guestwall_regf::Hive) -> guestwall_regf::Result<Snapshot> {
        let mut keys = BTreeMap::new();
        hive.walk(hive.root()?, "", |path, key| {
            let mut values = Vec::with_capacity(key.value_count() as usize);
            for v in key.values()? {
                values.push(SnapValue {
                    name: v.name().to_string_lossy(),
                    data_type: v.data_type(),
                    data: v.data()?.into_owned(),
                });
            }
            keys.insert(
                upper(path),
                SnapKey {
                    path: path.to_string(),
                    values,
                },
            );
            Ok(())
        })?;
        Ok(Snapshot { keys })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no keys (never for a real hive: the root is always there).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when the key exists.
    pub fn has_key(&self, path: &str) -> bool {
        self.keys.contains_key(&upper_path(path))
    }

    /// True when the key exists and has this value.
    pub fn has_value(&self, path: &str, name: &str) -> bool {
        let n = upper(name);
        self.keys
            .get(&upper_path(path))
            .is_some_and(|k| k.values.iter().any(|v| upper(&v.name) == n))
    }

    /// Applies an edit the way `HiveMut::apply` does, at the logical level.
    pub fn apply(&mut self, edit: &guestwall_regf::write::Edit) -> guestwall_regf::Result<()> {
        match edit {
            guestwall_regf::write::Edit::CreateKey { key } => {
                let mut path = String::new();
                for part in guestwall_regf::split_path(key) {
                    let child = if path.is_empty() {
                        part.to_string()
                    } else {
                        format!("{path}\\{part}")
                    };
                    let entry = self.keys.entry(upper(&child)).or_insert_with(|| SnapKey {
                        path: child.clone(),
                        values: Vec::new(),
                    });
                    path = entry.path.clone();
                }
            }
            guestwall_regf::write::Edit::DeleteKey { key } => {
                let k = upper_path(key);
                if !self.keys.contains_key(&k) {
                    return Err(guestwall_regf::Error::KeyNotFound { path: key.clone() });
                }
                let mut prefix = k.clone();
                prefix.push(u16::from(b'\\'));
                self.keys.retain(|p, _| *p != k && !p.starts_with(&prefix));
            }
            guestwall_regf::write::Edit::SetValue {
                key,
                name,
                data_type,
                data,
            } => {
                let k = self
                    .keys
                    .get_mut(&upper_path(key))
                    .ok_or_else(|| guestwall_regf::Error::KeyNotFound { path: key.clone() })?;
                set_snap_value(&mut k.values, name, *data_type, data);
            }
            guestwall_regf::write::Edit::DeleteValue { key, name } => {
                let k = self
                    .keys
                    .get_mut(&upper_path(key))
                    .ok_or_else(|| guestwall_regf::Error::KeyNotFound { path: key.clone() })?;
                delete_snap_value(&mut k.values, key, name)?;
            }
        }
        Ok(())
    }

    /// Checks that `hive` holds exactly this content. Returns the keys and values compared.
    pub fn verify(&self, hive: &guestwall_regf::Hive) -> guestwall_regf::Result<(u64, u64)> {
        let mut keys = 0u64;
        let mut values = 0u64;
        let mismatch = |path: &str, detail: String| guestwall_regf::Error::Verify {
            path: path.to_string(),
            detail,
        };
        hive.walk(hive.root()?, "", |path, key| {
            keys += 1;
            let Some(exp) = self.keys.get(&upper(path)) else {
                return Err(mismatch(path, "a key that should not be there".into()));
            };
            if exp.path != path {
                return Err(mismatch(
                    path,
                    format!("key is named {path:?}, expected {:?}", exp.path),
                ));
            }
            let got = key.values()?;
            if got.len() != exp.values.len() {
                return Err(mismatch(
                    path,
                    format!("{} values, expected {}", got.len(), exp.values.len()),
                ));
            }
            for (v, e) in got.iter().zip(&exp.values) {
                values += 1;
                let name = v.name().to_string_lossy();
                if name != e.name || v.data_type() != e.data_type || *v.data()? != *e.data {
                    return Err(mismatch(
                        path,
                        format!(
                            "value {name:?} (type {}) differs from the expected {:?} (type {})",
                            v.data_type(),
                            e.name,
                            e.data_type
                        ),
                    ));
                }
            }
            Ok(())
        })?;
        if keys != self.keys.len() as u64 {
            return Err(mismatch(
                "",
                format!("{keys} keys found, expected {}", self.keys.len()),
            ));
        }
        Ok((keys, values))
    }
}
