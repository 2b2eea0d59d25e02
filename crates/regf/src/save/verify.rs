//! The verification engine: what the saved hive must hold (the original's digest of every
//! untouched key, and the full expected content of every key the edits touch), and the check
//! of a hive read back against it.

use crate::error::{Error, Result};
use crate::hive::Hive;
use crate::name::upcase;
use crate::write::Edit;

/// A 128-bit digest of a key's content: its name as stored and, in order, each value's name,
/// type and data. Two independent 64-bit lanes; not cryptographic, but a change that keeps
/// both lanes equal by accident has odds of about 2^-128.
#[derive(Clone, Copy)]
pub(super) struct Digest {
    a: u64,
    b: u64,
}

impl Digest {
    pub(super) fn new() -> Digest {
        Digest {
            a: 0x243F_6A88_85A3_08D3,
            b: 0x1319_8A2E_0370_7344,
        }
    }

    fn word(&mut self, w: u64) {
        self.a = (self.a ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31);
        self.b = (self.b ^ w.rotate_left(23))
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .rotate_left(29);
    }

    pub(super) fn bytes(&mut self, data: &[u8]) {
        self.word(data.len() as u64);
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(last));
    }

    /// UTF-16 units, four to a word, then their count.
    fn units(&mut self, units: impl Iterator<Item = u16>) {
        let mut n = 0u64;
        let mut w = 0u64;
        for u in units {
            w = (w << 16) | u64::from(u);
            n += 1;
            if n.is_multiple_of(4) {
                self.word(w);
                w = 0;
            }
        }
        if !n.is_multiple_of(4) {
            self.word(w);
        }
        self.word(n);
    }

    pub(super) fn finish(self) -> u128 {
        let mut a = self.a ^ (self.b >> 17);
        a = a.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        let mut b = self.b ^ (self.a >> 13);
        b = b.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        (u128::from(a) << 64) | u128::from(b)
    }
}

fn key_digest(key: &crate::key::Key<'_>) -> Result<(u128, u64)> {
    let mut d = Digest::new();
    d.units(key.name().units());
    let mut n = 0;
    for v in key.values()? {
        d.units(v.name().units());
        d.word(u64::from(v.data_type()));
        d.bytes(&v.data()?);
        n += 1;
    }
    Ok((d.finish(), n))
}

fn full_digest(path: &str, values: &[ValueContent]) -> u128 {
    let mut d = Digest::new();
    let name = path.rsplit('\\').next().unwrap_or("");
    d.units(name.encode_utf16());
    for v in values {
        d.units(v.name.encode_utf16());
        d.word(u64::from(v.data_type));
        d.bytes(&v.data);
    }
    d.finish()
}

/// The 128-bit hash of an upper-cased key path, built one component at a time as a walk goes
/// down, so that no path string is made for the keys a save does not touch.
#[derive(Clone, Copy)]
struct PathHash {
    d: Digest,
    empty: bool,
}

impl PathHash {
    fn root() -> PathHash {
        PathHash {
            d: Digest::new(),
            empty: true,
        }
    }

    fn child(&self, name: impl Iterator<Item = u16>) -> PathHash {
        let mut d = self.d;
        if !self.empty {
            d.word(u64::from(b'\\'));
        }
        d.units(name.map(upcase));
        PathHash { d, empty: false }
    }

    fn value(&self) -> u128 {
        self.d.finish()
    }
}

/// The path hash of a `\`-separated path (empty parts ignored).
fn path_hash(path: &str) -> u128 {
    crate::hive::split_path(path)
        .fold(PathHash::root(), |h, part| h.child(part.encode_utf16()))
        .value()
}

/// Walks every key of the hive with its path hash, on two threads: the root and its children
/// here, then the subtrees below them shared out as they come. One atomic visited set covers
/// all of it, so a key reached twice is still an error. `visit` gets a per-thread state.
fn hashed_walk<T: Send + Default>(
    hive: &Hive,
    visit: impl Fn(&mut T, u128, &crate::key::Key<'_>) -> Result<()> + Sync,
) -> Result<Vec<T>> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let seen: Vec<AtomicU64> = (0..(hive.base_block().hbins_size as usize / 8).div_ceil(64))
        .map(|_| AtomicU64::new(0))
        .collect();
    let mark = |cell: u32| -> bool {
        let i = (cell / 8) as usize;
        seen.get(i / 64)
            .is_some_and(|w| w.fetch_or(1 << (i % 64), Ordering::Relaxed) & (1 << (i % 64)) == 0)
    };
    let descend = |parent: &PathHash, key: &crate::key::Key<'_>| parent.child(key.name().units());
    let mut here = T::default();
    let root = hive.root()?;
    let mut tasks = Vec::new();
    let top = PathHash::root();
    mark(root.cell());
    visit(&mut here, top.value(), &root)?;
    for c in root.subkey_cells()? {
        let key = crate::key::Key::new(hive, c)?;
        if !mark(c) {
            return Err(Error::Cycle {
                cell: crate::error::CellPos(c),
            });
        }
        let h = top.child(key.name().units());
        visit(&mut here, h.value(), &key).map_err(|e| e.at_key(&hive.path_of(c)))?;
        for g in key.subkey_cells().map_err(|e| e.at_key(&hive.path_of(c)))? {
            tasks.push((g, h));
        }
    }
    let next = AtomicUsize::new(0);
    let work = || -> Result<T> {
        let mut state = T::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(cell, parent)) = tasks.get(i) else {
                return Ok(state);
            };
            let key = crate::key::Key::new(hive, cell)?;
            let init = parent.child(key.name().units());
            hive.walk_marked(key, init, &mut |c| mark(c), descend, |h, k| {
                visit(&mut state, h.value(), k)
            })?;
        }
    };
    let mut out = vec![here];
    std::thread::scope(|s| -> Result<()> {
        let other = s.spawn(work);
        let mine = work();
        let theirs = other.join().map_err(|_| Error::Verify {
            path: String::new(),
            detail: "internal: a worker thread panicked".into(),
        })?;
        out.push(mine?);
        out.push(theirs?);
        Ok(())
    })?;
    Ok(out)
}

/// A hasher for keys that are already good hashes.
#[derive(Default)]
struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

type HashMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<PreHashed>>;

/// Every key of the original hive: path hash -> digest of its content.
pub(super) struct Baseline {
    keys: HashMap<u128, u128>,
}

/// What the saved hive must hold: the original digests of untouched keys, and the full
/// expected content of the keys the edits touch (`None`: deleted).
pub(super) struct Expected {
    same: HashMap<u128, u128>,
    touched: HashMap<u128, Option<KeyContent>>,
    count: usize,
    pub(super) unchanged: bool,
}

impl Baseline {
    /// Walks the whole hive, reading every value's data: it also proves the hive reads
    /// completely before anything is written.
    pub(super) fn of(hive: &Hive) -> Result<Baseline> {
        let mut keys = HashMap::default();
        hive.cell_stats()?;
        hive.walk(hive.root()?, "", |path, key| {
            keys.insert(path_hash(path), key_digest(key)?.0);
            Ok(())
        })?;
        Ok(Baseline { keys })
    }

    /// Applies the edits: the keys they touch get their full expected content.
    pub(super) fn expect(self, hive: &Hive, edits: &[Edit]) -> Result<Expected> {
        let mut same = self.keys;
        let mut touched: HashMap<u128, Option<KeyContent>> = HashMap::default();
        // Deleted subtrees of the original, to take out of `same` at the end.
        let mut deleted_original: Vec<u128> = Vec::new();
        let exists =
            |touched: &HashMap<u128, Option<KeyContent>>, same: &HashMap<u128, u128>, h: u128| {
                match touched.get(&h) {
                    Some(t) => t.is_some(),
                    None => same.contains_key(&h),
                }
            };
        for e in edits {
            match e {
                Edit::CreateKey { key } => {
                    let mut path = String::new();
                    for part in crate::hive::split_path(key) {
                        let child = if path.is_empty() {
                            part.to_string()
                        } else {
                            format!("{path}\\{part}")
                        };
                        let h = path_hash(&child);
                        path = match touched.get(&h) {
                            Some(Some(t)) => t.path.clone(),
                            _ if !touched.contains_key(&h) && same.contains_key(&h) => {
                                hive.resolve(&child)?.1
                            }
                            _ => {
                                touched.insert(
                                    h,
                                    Some(KeyContent {
                                        path: child.clone(),
                                        values: Vec::new(),
                                    }),
                                );
                                child
                            }
                        };
                    }
                }
                Edit::DeleteKey { key } => {
                    let h = path_hash(key);
                    if !exists(&touched, &same, h) {
                        return Err(Error::KeyNotFound { path: key.clone() });
                    }
                    // Every key now under it: touched ones by path, original ones by walking
                    // the original subtree (minus what was already deleted).
                    let prefix: Vec<u16> = upper_path(key)
                        .into_iter()
                        .chain([u16::from(b'\\')])
                        .collect();
                    let k = upper_path(key);
                    let gone: Vec<u128> = touched
                        .iter()
                        .filter(|(_, t)| {
                            t.as_ref().is_some_and(|t| {
                                let u = upper(&t.path);
                                u == k || u.starts_with(&prefix)
                            })
                        })
                        .map(|(h, _)| *h)
                        .collect();
                    for g in gone {
                        touched.insert(g, None);
                    }
                    if let Some(start) = hive.find_key(key)? {
                        let init = crate::hive::split_path(key)
                            .fold(PathHash::root(), |h, part| h.child(part.encode_utf16()));
                        hive.walk_with(
                            start,
                            init,
                            |p, k| p.child(k.name().units()),
                            |ph, _| {
                                deleted_original.push(ph.value());
                                touched.insert(ph.value(), None);
                                Ok(())
                            },
                        )?;
                    }
                }
                Edit::SetValue {
                    key,
                    name,
                    data_type,
                    data,
                } => {
                    let f = Self::full(&mut touched, &same, hive, key)?;
                    set_value_in(&mut f.values, name, *data_type, data);
                }
                Edit::DeleteValue { key, name } => {
                    let f = Self::full(&mut touched, &same, hive, key)?;
                    delete_value_in(&mut f.values, key, name)?;
                }
            }
        }
        let mut unchanged = true;
        for (h, t) in &touched {
            let orig = same.get(h);
            match (t, orig) {
                (Some(t), Some(d)) if full_digest(&t.path, &t.values) == *d => {}
                (None, None) => {}
                _ => unchanged = false,
            }
        }
        for h in deleted_original {
            same.remove(&h);
        }
        for h in touched.keys() {
            same.remove(h);
        }
        let count = same.len() + touched.values().filter(|t| t.is_some()).count();
        Ok(Expected {
            same,
            touched,
            count,
            unchanged,
        })
    }

    /// The touched entry for `path`, made from the original key when first touched.
    fn full<'a>(
        touched: &'a mut HashMap<u128, Option<KeyContent>>,
        same: &HashMap<u128, u128>,
        hive: &Hive,
        path: &str,
    ) -> Result<&'a mut KeyContent> {
        let h = path_hash(path);
        let entry = match touched.entry(h) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                if !same.contains_key(&h) {
                    return Err(Error::KeyNotFound {
                        path: path.to_string(),
                    });
                }
                let (key, canonical) = hive.resolve(path)?;
                let mut values = Vec::new();
                for val in key.values()? {
                    values.push(ValueContent {
                        name: val.name().to_string_lossy(),
                        data_type: val.data_type(),
                        data: val.data()?.into_owned(),
                    });
                }
                v.insert(Some(KeyContent {
                    path: canonical,
                    values,
                }))
            }
        };
        entry.as_mut().ok_or_else(|| Error::KeyNotFound {
            path: path.to_string(),
        })
    }
}

impl Expected {
    /// Checks the written hive: every untouched key reads exactly as before (same digest),
    /// every touched key holds exactly its expected content, and no key is missing or extra.
    pub(super) fn verify(&self, hive: &Hive) -> Result<(u64, u64)> {
        let mismatch = |path: &str, detail: String| Error::Verify {
            path: path.to_string(),
            detail,
        };
        let parts = hashed_walk(hive, |(keys, values): &mut (u64, u64), h, key| {
            *keys += 1;
            let here = || hive.path_of(key.cell());
            match (self.touched.get(&h), self.same.get(&h)) {
                (Some(Some(f)), _) => {
                    let expected_name = f.path.rsplit('\\').next().unwrap_or("");
                    let name = key.name().to_string_lossy();
                    if name != expected_name && key.cell() != hive.base_block().root_cell {
                        return Err(mismatch(
                            &here(),
                            format!("key is named {name:?}, expected {expected_name:?}"),
                        ));
                    }
                    let got = key.values()?;
                    if got.len() != f.values.len() {
                        return Err(mismatch(
                            &here(),
                            format!("{} values, expected {}", got.len(), f.values.len()),
                        ));
                    }
                    for (v, e) in got.iter().zip(&f.values) {
                        *values += 1;
                        let name = v.name().to_string_lossy();
                        if name != e.name || v.data_type() != e.data_type || *v.data()? != *e.data {
                            return Err(mismatch(
                                &here(),
                                format!("value {:?} is not as intended", e.name),
                            ));
                        }
                    }
                    Ok(())
                }
                (Some(None), _) | (None, None) => {
                    Err(mismatch(&here(), "a key that should not be there".into()))
                }
                (None, Some(d)) => {
                    let (got, n) = key_digest(key)?;
                    *values += n;
                    if got != *d {
                        return Err(mismatch(
                            &here(),
                            "an untouched key reads differently after the save".into(),
                        ));
                    }
                    Ok(())
                }
            }
        })?;
        let keys: u64 = parts.iter().map(|p| p.0).sum();
        let values: u64 = parts.iter().map(|p| p.1).sum();
        if keys != self.count as u64 {
            return Err(mismatch(
                "",
                format!("{keys} keys found, expected {}", self.count),
            ));
        }
        Ok((keys, values))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyContent {
    path: String,
    values: Vec<ValueContent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ValueContent {
    name: String,
    data_type: u32,
    data: Vec<u8>,
}

/// Sets a value in a key's value list (names compared as Windows does), appending it when new.
fn set_value_in(values: &mut Vec<ValueContent>, name: &str, data_type: u32, data: &[u8]) {
    let n = upper(name);
    match values.iter_mut().find(|v| upper(&v.name) == n) {
        Some(v) => {
            v.data_type = data_type;
            v.data = data.to_vec();
        }
        None => values.push(ValueContent {
            name: name.to_string(),
            data_type,
            data: data.to_vec(),
        }),
    }
}

/// Removes a value from a key's value list; an absent value is an error, as in the writer.
fn delete_value_in(values: &mut Vec<ValueContent>, key: &str, name: &str) -> Result<()> {
    let n = upper(name);
    let before = values.len();
    values.retain(|v| upper(&v.name) != n);
    if values.len() == before {
        return Err(Error::ValueNotFound {
            key: key.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

fn upper(s: &str) -> Vec<u16> {
    s.encode_utf16().map(upcase).collect()
}

/// Upper-cased path with `\` separators and no empty parts.
fn upper_path(path: &str) -> Vec<u16> {
    upper(&crate::hive::split_path(path).collect::<Vec<_>>().join("\\"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{build_hive, reg_sz, BuildOptions, KeySpec};

    fn hive(spec: &KeySpec) -> Hive {
        Hive::from_bytes(build_hive(spec, &BuildOptions::default()).unwrap()).unwrap()
    }

    fn spec() -> KeySpec {
        KeySpec::new("")
            .subkey(
                KeySpec::new("A")
                    .value("x", 1, reg_sz("one"))
                    .subkey(KeySpec::new("B")),
            )
            .subkey(KeySpec::new("C").value("y", 4, 7u32.to_le_bytes()))
    }

    fn expected(edits: &[Edit]) -> Expected {
        let h = hive(&spec());
        Baseline::of(&h).unwrap().expect(&h, edits).unwrap()
    }

    #[test]
    fn verification_accepts_exactly_the_intended_result() {
        let edits = [
            Edit::SetValue {
                key: "A".into(),
                name: "x".into(),
                data_type: 1,
                data: reg_sz("two"),
            },
            Edit::CreateKey {
                key: "C\\New".into(),
            },
            Edit::DeleteKey { key: "A\\B".into() },
        ];
        let e = expected(&edits);
        assert!(!e.unchanged);
        let mut ok = spec();
        ok.subkeys[0].values[0].data = reg_sz("two");
        ok.subkeys[0].subkeys.clear();
        ok.subkeys[1].subkeys.push(KeySpec::new("New"));
        assert_eq!(e.verify(&hive(&ok)).unwrap(), (4, 2));

        // Anything else is caught: an untouched value changed, a key missing, a key too many,
        // the edited value wrong, a new key with another name case.
        let mut bad = ok.clone();
        bad.subkeys[1].values[0].data = 8u32.to_le_bytes().to_vec();
        assert!(e
            .verify(&hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("untouched key"));
        let mut bad = ok.clone();
        bad.subkeys[1].subkeys.clear();
        assert!(e.verify(&hive(&bad)).is_err());
        let mut bad = ok.clone();
        bad.subkeys[0].subkeys.push(KeySpec::new("B"));
        assert!(e
            .verify(&hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("should not be there"));
        let mut bad = ok.clone();
        bad.subkeys[0].values[0].data = reg_sz("three");
        assert!(e
            .verify(&hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("not as intended"));
        let mut bad = ok;
        bad.subkeys[1].subkeys[0].name = "NEW".into();
        assert!(e
            .verify(&hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("named"));
    }

    #[test]
    fn edits_that_change_nothing_are_recognised() {
        assert!(expected(&[Edit::CreateKey { key: "a\\b".into() }]).unchanged);
        assert!(
            expected(&[Edit::SetValue {
                key: "C".into(),
                name: "Y".into(),
                data_type: 4,
                data: 7u32.to_le_bytes().to_vec()
            }])
            .unchanged
        );
        assert!(
            !expected(&[Edit::SetValue {
                key: "C".into(),
                name: "y".into(),
                data_type: 3,
                data: 7u32.to_le_bytes().to_vec()
            }])
            .unchanged
        );
    }
}
