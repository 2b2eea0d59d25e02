//! The verification engine: what the saved hive must hold, and the check of a hive read back
//! against it.
//!
//! A [`Survey`] of the original hive (one walk, which also proves that it reads completely)
//! records every key's node offset, path hash, parent and the 4 KiB pages its logical content
//! is read from (key node, subkey lists, value list, value records, data cells). [`Expected`]
//! adds the full intended content of the keys the edits touch. A written hive is then checked
//! by page identity (see `docs/design-regf.md`, "Verifying a save"): when every byte outside
//! the changed pages equals the original's, a key at the same offset and path that reads no
//! changed page reads exactly as before, and so does its whole subtree when no key in it
//! reads a changed page; only the other keys are walked and compared logically.

use crate::bins::PAGE;
use crate::data::u32_at;
use crate::error::{CellPos, Error, Result};
use crate::hive::{Hive, MAX_KEY_DEPTH};
use crate::key::{read_list, Key, ListKind};
use crate::name::{upcase, upcase_str};
use crate::value::{DataStorage, Value};
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

    /// [`Digest::bytes`] of two buffers at once, into two digests: the two chains of
    /// multiplications are independent, so the processor overlaps them and both take about
    /// the time of one.
    pub(super) fn bytes2(x: &mut Digest, xs: &[u8], y: &mut Digest, ys: &[u8]) {
        fn le(c: &[u8]) -> u64 {
            u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
        }
        x.word(xs.len() as u64);
        y.word(ys.len() as u64);
        let mut cx = xs.chunks_exact(8);
        let mut cy = ys.chunks_exact(8);
        // Both while both have words (`zip` would drop a word of the longer one).
        for _ in 0..cx.len().min(cy.len()) {
            if let (Some(a), Some(b)) = (cx.next(), cy.next()) {
                x.word(le(a));
                y.word(le(b));
            }
        }
        for a in &mut cx {
            x.word(le(a));
        }
        for b in &mut cy {
            y.word(le(b));
        }
        for (d, rest) in [(x, cx.remainder()), (y, cy.remainder())] {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            d.word(u64::from_le_bytes(last));
        }
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

/// Path hash -> index in the survey: one map per part of the survey, made by the thread that
/// surveyed the part, with the part's first index (no map of every key is made on one core).
#[derive(Default)]
struct PathIndex {
    parts: Vec<(u32, HashMap<u128, u32>)>,
}

impl PathIndex {
    fn get(&self, h: &u128) -> Option<u32> {
        self.parts
            .iter()
            .find_map(|(first, m)| m.get(h).map(|i| first + i))
    }

    fn contains_key(&self, h: &u128) -> bool {
        self.get(h).is_some()
    }
}

const NONE: u32 = u32::MAX;

/// Every key of the original hive, in walk order (parents before their subkeys): where it
/// is, its path hash, its parent, its number of values, and the pages it is read from.
pub(super) struct Survey {
    cell: Vec<u32>,
    parent: Vec<u32>,
    path: Vec<u128>,
    values: Vec<u32>,
    /// Pages read by key `i`: `pages[page_at[i]..page_at[i + 1]]`.
    pages: Vec<u32>,
    page_at: Vec<u32>,
    by_path: PathIndex,
    /// The first `head` keys (the root and its subkeys) were surveyed before the rest, which
    /// was shared out by subtree: their own subtrees are not contiguous in the order above.
    head: u32,
    bins: Vec<crate::bins::Bin>,
}

/// A survey shared out between threads: the root and its subkeys first, then the subtree of
/// each of their subkeys as a task (and the check of every cell header as one more), taken by
/// whichever thread is free. One atomic visited set covers all of it, so a key reached twice
/// is still an error.
pub(super) struct SurveyJob<'h> {
    hive: &'h Hive,
    head: Survey,
    /// (key node, parent's path hash, parent's index in `head`)
    tasks: Vec<(u32, PathHash, u32)>,
    next: std::sync::atomic::AtomicUsize,
    seen: Vec<std::sync::atomic::AtomicU64>,
    done: std::sync::Mutex<Vec<(usize, Result<Survey>)>>,
}

impl<'h> SurveyJob<'h> {
    /// Surveys the root and its subkeys, and lists the rest as tasks.
    pub(super) fn new(hive: &'h Hive) -> Result<SurveyJob<'h>> {
        use std::sync::atomic::AtomicU64;
        let seen: Vec<AtomicU64> = (0..(hive.base_block().hbins_size as usize / 8).div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        let job = SurveyJob {
            hive,
            head: Survey::empty(hive.bins().bins().to_vec()),
            tasks: Vec::new(),
            next: std::sync::atomic::AtomicUsize::new(0),
            seen,
            done: std::sync::Mutex::new(Vec::new()),
        };
        let mut job = job;
        let root = hive.root()?;
        let top = PathHash::root();
        job.mark(root.cell());
        let at = |cell: u32, e: Error| e.at_key(&hive.path_of(cell));
        let n = key_pages(hive, &root, &mut job.head.pages).map_err(|e| at(root.cell(), e))?;
        job.head.push(root.cell(), NONE, top.value(), n);
        for c in root.subkey_cells().map_err(|e| at(root.cell(), e))? {
            let key = Key::new(hive, c).map_err(|e| at(root.cell(), e))?;
            if !job.mark(c) {
                return Err(at(root.cell(), Error::Cycle { cell: CellPos(c) }));
            }
            let h = top.child(key.name().units());
            let n = key_pages(hive, &key, &mut job.head.pages).map_err(|e| at(c, e))?;
            let me = job.head.len() as u32;
            job.head.push(c, 0, h.value(), n);
            for g in key.subkey_cells().map_err(|e| at(c, e))? {
                job.tasks.push((g, h, me));
            }
        }
        job.head.head = job.head.len() as u32;
        Ok(job)
    }

    fn mark(&self, cell: u32) -> bool {
        use std::sync::atomic::Ordering;
        let i = (cell / 8) as usize;
        self.seen
            .get(i / 64)
            .is_some_and(|w| w.fetch_or(1 << (i % 64), Ordering::Relaxed) & (1 << (i % 64)) == 0)
    }

    /// Takes tasks until none is left. Any number of threads may call it.
    pub(super) fn work(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let out = if i == 0 {
                self.hive.cell_stats().map(|_| Survey::empty(Vec::new()))
            } else {
                match self.tasks.get(i - 1) {
                    Some(&(cell, parent, _)) => self.subtree(cell, parent),
                    None => return,
                }
            };
            if let Ok(mut d) = self.done.lock() {
                d.push((i, out));
            }
        }
    }

    /// The survey of one subtree, indexes local to it (its root's parent is `NONE`).
    fn subtree(&self, cell: u32, parent: PathHash) -> Result<Survey> {
        let hive = self.hive;
        let mut s = Survey::empty(Vec::new());
        let key = Key::new(hive, cell)?;
        // The index the next key visited gets (a state is made just before its key's visit).
        let next = std::cell::Cell::new(0u32);
        hive.walk_marked(
            key,
            (parent.child(key.name().units()), NONE, 0u32),
            &mut |c| self.mark(c),
            |(ph, _, me), k| (ph.child(k.name().units()), *me, next.get()),
            |(ph, parent, me), key| {
                let n = key_pages(hive, key, &mut s.pages)
                    .map_err(|e| e.at_key(&hive.path_of(key.cell())))?;
                s.push(key.cell(), *parent, ph.value(), n);
                next.set(*me + 1);
                Ok(())
            },
        )?;
        Ok(s)
    }

    /// Puts the parts together, in task order. The first error of any part is the result.
    pub(super) fn finish(self) -> Result<Survey> {
        let mut done = self.done.into_inner().map_err(|_| Error::Verify {
            path: String::new(),
            detail: "internal: a worker thread panicked".into(),
        })?;
        if done.len() != self.tasks.len() + 1 {
            return Err(Error::Verify {
                path: String::new(),
                detail: "internal: a part of the survey is missing".into(),
            });
        }
        done.sort_by_key(|(i, _)| *i);
        let mut s = self.head;
        for (i, part) in done {
            let part = part?;
            let Some(&(_, _, parent)) = i.checked_sub(1).and_then(|t| self.tasks.get(t)) else {
                continue;
            };
            let off = s.len() as u32;
            let page_off = s.pages.len() as u32;
            s.pages.extend_from_slice(&part.pages);
            s.page_at
                .extend(part.page_at[1..].iter().map(|&p| p + page_off));
            s.cell.extend_from_slice(&part.cell);
            s.path.extend_from_slice(&part.path);
            s.values.extend_from_slice(&part.values);
            s.parent.extend(
                part.parent
                    .iter()
                    .map(|&p| if p == NONE { parent } else { p + off }),
            );
            for (_, m) in part.by_path.parts {
                s.by_path.parts.push((off, m));
            }
        }
        Ok(s)
    }
}

/// What the saved hive must hold: every original key not touched (as it was), and the full
/// expected content of the keys the edits touch (`None`: deleted).
pub(super) struct Expected {
    survey: Survey,
    touched: HashMap<u128, Option<KeyContent>>,
    count: usize,
    pub(super) unchanged: bool,
}

/// Adds the pages of the allocated cell at `off` to `out[from..]` (a page already last there
/// is not added again).
fn cell_pages(hive: &Hive, off: u32, out: &mut Vec<u32>, from: usize) -> Result<()> {
    let (start, size) = hive.bins().cell_range(hive.bytes(), off)?;
    let page = PAGE as usize;
    let first = start / page;
    let last = (start + size.max(1) - 1) / page;
    for p in first..=last {
        if out.len() == from || out.last() != Some(&(p as u32)) {
            out.push(p as u32);
        }
    }
    Ok(())
}

/// Adds the pages a key's logical content is read from: its node, its subkey lists, its value
/// list, its value records and their data cells. Reads every value's data on the way.
fn key_pages(hive: &Hive, key: &Key<'_>, out: &mut Vec<u32>) -> Result<u32> {
    let from = out.len();
    cell_pages(hive, key.cell(), out, from)?;
    if key.subkey_count() > 0 {
        let list = key.subkey_list_cell();
        cell_pages(hive, list, out, from)?;
        let (kind, elems) = read_list(hive, list)?;
        if kind == ListKind::Ri {
            for leaf in elems.iter() {
                cell_pages(hive, leaf, out, from)?;
            }
        }
    }
    let mut n = 0;
    if key.value_count() > 0 {
        cell_pages(hive, key.value_list_cell(), out, from)?;
        for vk in key.value_cells()? {
            cell_pages(hive, vk, out, from)?;
            let v = Value::new(hive, vk)?;
            v.data()?;
            n += 1;
            match v.storage()? {
                DataStorage::Cell(off) => cell_pages(hive, off, out, from)?,
                DataStorage::BigData(off, segments) => {
                    cell_pages(hive, off, out, from)?;
                    let list_off = u32_at(hive.cell(off)?, 4)
                        .ok_or_else(|| Error::cell(off, "big data record too short"))?;
                    cell_pages(hive, list_off, out, from)?;
                    let list = hive.cell(list_off)?;
                    for i in 0..usize::from(segments) {
                        let seg = u32_at(list, 4 * i)
                            .ok_or_else(|| Error::cell(list_off, "segment list too short"))?;
                        cell_pages(hive, seg, out, from)?;
                    }
                }
                DataStorage::Inline | DataStorage::Empty => {}
            }
        }
    }
    Ok(n)
}

impl Survey {
    fn empty(bins: Vec<crate::bins::Bin>) -> Survey {
        Survey {
            cell: Vec::new(),
            parent: Vec::new(),
            path: Vec::new(),
            values: Vec::new(),
            pages: Vec::new(),
            page_at: vec![0],
            by_path: PathIndex::default(),
            head: 0,
            bins,
        }
    }

    /// Records one key (its pages are already at the end of `pages`).
    fn push(&mut self, cell: u32, parent: u32, path: u128, values: u32) {
        if self.by_path.parts.is_empty() {
            self.by_path.parts.push((0, HashMap::default()));
        }
        if let Some((_, m)) = self.by_path.parts.first_mut() {
            m.insert(path, self.cell.len() as u32);
        }
        self.cell.push(cell);
        self.parent.push(parent);
        self.path.push(path);
        self.values.push(values);
        self.page_at.push(self.pages.len() as u32);
    }

    /// Walks the whole hive, reading every value's data: it also proves the hive reads
    /// completely before anything is written.
    #[cfg(test)]
    pub(super) fn of(hive: &Hive) -> Result<Survey> {
        let job = SurveyJob::new(hive)?;
        job.work();
        job.finish()
    }

    fn len(&self) -> usize {
        self.cell.len()
    }

    /// The content digest of original key `i`.
    fn digest(&self, hive: &Hive, i: u32) -> Result<u128> {
        Ok(key_digest(&Key::new(hive, self.cell[i as usize])?)?.0)
    }

    /// Applies the edits: the keys they touch get their full expected content.
    pub(super) fn expect(self, hive: &Hive, edits: &[Edit]) -> Result<Expected> {
        let same = &self.by_path;
        let mut touched: HashMap<u128, Option<KeyContent>> = HashMap::default();
        let exists =
            |touched: &HashMap<u128, Option<KeyContent>>, same: &PathIndex, h: u128| match touched
                .get(&h)
            {
                Some(t) => t.is_some(),
                None => same.contains_key(&h),
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
                    if !exists(&touched, same, h) {
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
                                let u = upcase_str(&t.path);
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
                    let f = Self::full(&mut touched, same, hive, key)?;
                    set_value_in(&mut f.values, name, *data_type, data);
                }
                Edit::DeleteValue { key, name } => {
                    let f = Self::full(&mut touched, same, hive, key)?;
                    delete_value_in(&mut f.values, key, name)?;
                }
            }
        }
        let mut unchanged = true;
        for (h, t) in &touched {
            match (t, same.get(h)) {
                (Some(t), Some(i))
                    if full_digest(&t.path, &t.values) == self.digest(hive, i)? => {}
                (None, None) => {}
                _ => unchanged = false,
            }
        }
        let kept = self.len() - touched.keys().filter(|h| same.contains_key(h)).count();
        let count = kept + touched.values().filter(|t| t.is_some()).count();
        Ok(Expected {
            survey: self,
            touched,
            count,
            unchanged,
        })
    }

    /// The touched entry for `path`, made from the original key when first touched.
    fn full<'a>(
        touched: &'a mut HashMap<u128, Option<KeyContent>>,
        same: &PathIndex,
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
    /// Checks a hive against the expected content, key by key: every untouched key reads
    /// exactly as in `original`, every touched key holds exactly its expected content, and no
    /// key is missing or extra. Returns the keys and values compared.
    #[cfg(test)]
    pub(super) fn verify(&self, original: &Hive, hive: &Hive) -> Result<(u64, u64)> {
        self.check(original, hive, None)
    }

    /// [`Expected::verify`] for a hive whose bytes are known to equal the original's outside
    /// the pages marked in `changed` (one flag per 4 KiB page of the file): the keys, and whole
    /// subtrees, that read no changed page at the same place are known to read as before and
    /// are counted without being read.
    pub(super) fn verify_pages(
        &self,
        original: &Hive,
        hive: &Hive,
        changed: &[bool],
    ) -> Result<(u64, u64)> {
        // Cells are bounded by their bins: the original's bins must all be there unchanged.
        let same_bins =
            hive.bins().bins().get(..self.survey.bins.len()) == Some(&self.survey.bins[..]);
        self.check(original, hive, same_bins.then_some(changed))
    }

    fn check(&self, original: &Hive, hive: &Hive, changed: Option<&[bool]>) -> Result<(u64, u64)> {
        let s = &self.survey;
        let n = s.len();
        let mismatch = |path: &str, detail: String| Error::Verify {
            path: path.to_string(),
            detail,
        };
        // Which original keys must be read (they read a changed page, or an edit touches
        // them), and which subtrees hold such a key. Without page identity, all of them.
        let mut read = vec![changed.is_none(); n];
        let mut dirty = vec![changed.is_none(); n];
        // Keys and values of each subtree, to count what is not read.
        let mut sub_keys = vec![1u64; n];
        let mut sub_values: Vec<u64> = s.values.iter().map(|&v| u64::from(v)).collect();
        if let Some(changed) = changed {
            for i in 0..n {
                let pages = &s.pages[s.page_at[i] as usize..s.page_at[i + 1] as usize];
                read[i] = self.touched.contains_key(&s.path[i])
                    || pages
                        .iter()
                        .any(|&p| changed.get(p as usize).copied().unwrap_or(true));
                dirty[i] = read[i];
            }
        }
        // The subtrees of the first keys are not contiguous in the survey: always walk them.
        for d in dirty.iter_mut().take(s.head as usize) {
            *d = true;
        }
        for i in (1..n).rev() {
            let p = s.parent[i] as usize;
            if p < n {
                sub_keys[p] += sub_keys[i];
                sub_values[p] += sub_values[i];
                if dirty[i] {
                    dirty[p] = true;
                }
            }
        }
        let words = (hive.base_block().hbins_size as usize / 8).div_ceil(64);
        let mut seen = vec![0u64; words];
        let mut mark = |cell: u32| -> bool {
            let i = (cell / 8) as usize;
            match seen.get_mut(i / 64) {
                Some(w) => {
                    let fresh = *w & (1 << (i % 64)) == 0;
                    *w |= 1 << (i % 64);
                    fresh
                }
                None => false,
            }
        };
        let (mut keys, mut values) = (0u64, 0u64);
        let root = hive.base_block().root_cell;
        // (key node, parent's path hash, depth, parent for messages)
        let mut stack: Vec<(u32, Option<PathHash>, usize, u32)> = vec![(root, None, 0, root)];
        while let Some((cell, parent_hash, depth, parent)) = stack.pop() {
            let at = |e: Error| e.at_key(&hive.path_of(parent));
            if !mark(cell) {
                return Err(at(Error::Cycle {
                    cell: CellPos(cell),
                }));
            }
            if depth >= MAX_KEY_DEPTH {
                return Err(at(Error::TooDeep {
                    max: MAX_KEY_DEPTH,
                    cell: CellPos(cell),
                }));
            }
            let key = Key::new(hive, cell).map_err(at)?;
            let ph = match parent_hash {
                Some(p) => p.child(key.name().units()),
                None => PathHash::root(),
            };
            let h = ph.value();
            let here = || hive.path_of(cell);
            // The original key of the same path, when it is at the same place.
            let twin = s.by_path.get(&h).filter(|&o| s.cell[o as usize] == cell);
            if let Some(o) = twin.filter(|&o| !read[o as usize]) {
                let o = o as usize;
                if !dirty[o] {
                    // The whole subtree reads as before.
                    keys += sub_keys[o];
                    values += sub_values[o];
                    // Its keys count as visited: reaching one of them again is an error.
                    for k in o + 1..o + sub_keys[o] as usize {
                        let c = s.cell.get(k).copied().unwrap_or(u32::MAX);
                        if !mark(c) {
                            return Err(mismatch(
                                &here(),
                                format!(
                                    "a key is reached twice (key node {}, inside a subtree that was not changed)",
                                    CellPos(c)
                                ),
                            ));
                        }
                    }
                    continue;
                }
                // This key reads as before; some key below it does not.
                keys += 1;
                values += u64::from(s.values[o]);
            } else {
                keys += 1;
                values += u64::from(self.check_key(original, hive, &key, h, &here)?);
            }
            let subkeys = key.subkey_cells().map_err(|e| e.at_key(&here()))?;
            for c in subkeys.into_iter().rev() {
                stack.push((c, Some(ph), depth + 1, cell));
            }
        }
        if keys != self.count as u64 {
            return Err(mismatch(
                "",
                format!("{keys} keys found, expected {}", self.count),
            ));
        }
        Ok((keys, values))
    }

    /// Compares one key of the written hive with what it must hold. Returns its value count.
    fn check_key(
        &self,
        original: &Hive,
        hive: &Hive,
        key: &Key<'_>,
        h: u128,
        here: &dyn Fn() -> String,
    ) -> Result<u32> {
        let mismatch = |detail: String| Error::Verify {
            path: here(),
            detail,
        };
        match (self.touched.get(&h), self.survey.by_path.get(&h)) {
            (Some(Some(f)), _) => {
                let expected_name = f.path.rsplit('\\').next().unwrap_or("");
                let name = key.name().to_string_lossy();
                if name != expected_name && key.cell() != hive.base_block().root_cell {
                    return Err(mismatch(format!(
                        "key is named {name:?}, expected {expected_name:?}"
                    )));
                }
                let got = key.values()?;
                if got.len() != f.values.len() {
                    return Err(mismatch(format!(
                        "{} values, expected {}",
                        got.len(),
                        f.values.len()
                    )));
                }
                for (v, e) in got.iter().zip(&f.values) {
                    let name = v.name().to_string_lossy();
                    if name != e.name || v.data_type() != e.data_type || *v.data()? != *e.data {
                        return Err(mismatch(format!("value {:?} is not as intended", e.name)));
                    }
                }
                Ok(got.len() as u32)
            }
            (Some(None), _) | (None, None) => {
                Err(mismatch("a key that should not be there".into()))
            }
            (None, Some(o)) => {
                let (got, n) = key_digest(key)?;
                if got != self.survey.digest(original, o)? {
                    return Err(mismatch(
                        "an untouched key reads differently after the save".into(),
                    ));
                }
                Ok(n as u32)
            }
        }
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
    let n = upcase_str(name);
    match values.iter_mut().find(|v| upcase_str(&v.name) == n) {
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
    let n = upcase_str(name);
    let before = values.len();
    values.retain(|v| upcase_str(&v.name) != n);
    if values.len() == before {
        return Err(Error::ValueNotFound {
            key: key.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Upper-cased path with `\` separators and no empty parts.
fn upper_path(path: &str) -> Vec<u16> {
    upcase_str(&crate::hive::split_path(path).collect::<Vec<_>>().join("\\"))
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
        Survey::of(&h).unwrap().expect(&h, edits).unwrap()
    }

    /// Checks `against` with the expectations of `e`, made from the original spec.
    fn verify(e: &Expected, against: &Hive) -> Result<(u64, u64)> {
        e.verify(&hive(&spec()), against)
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
        assert_eq!(verify(&e, &hive(&ok)).unwrap(), (4, 2));

        // Anything else is caught: an untouched value changed, a key missing, a key too many,
        // the edited value wrong, a new key with another name case.
        let mut bad = ok.clone();
        bad.subkeys[1].values[0].data = 8u32.to_le_bytes().to_vec();
        assert!(verify(&e, &hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("untouched key"));
        let mut bad = ok.clone();
        bad.subkeys[1].subkeys.clear();
        assert!(verify(&e, &hive(&bad)).is_err());
        let mut bad = ok.clone();
        bad.subkeys[0].subkeys.push(KeySpec::new("B"));
        assert!(verify(&e, &hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("should not be there"));
        let mut bad = ok.clone();
        bad.subkeys[0].values[0].data = reg_sz("three");
        assert!(verify(&e, &hive(&bad))
            .unwrap_err()
            .to_string()
            .contains("not as intended"));
        let mut bad = ok;
        bad.subkeys[1].subkeys[0].name = "NEW".into();
        assert!(verify(&e, &hive(&bad))
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

#[cfg(test)]
mod digest_tests {
    use super::Digest;

    #[test]
    fn two_digests_at_once_equal_one_at_a_time() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (lx, ly) in [
            (0, 0),
            (1, 9),
            (8, 8),
            (4096, 4100),
            (9_999, 3),
            (10_000, 10_000),
        ] {
            let (xs, ys) = (&data[..lx], &data[data.len() - ly..]);
            let (mut x, mut y) = (Digest::new(), Digest::new());
            Digest::bytes2(&mut x, xs, &mut y, ys);
            assert_eq!(x.finish(), super::super::file_digest(xs), "{lx}");
            assert_eq!(y.finish(), super::super::file_digest(ys), "{ly}");
        }
    }
}

#[cfg(test)]
mod page_tests {
    use super::*;
    use crate::build::{build_hive, reg_sz, BuildOptions, KeySpec};
    use crate::write::HiveMut;

    /// A hive big enough to span several pages: keys `K0`..`K199`, each with a value.
    fn original() -> Hive {
        let mut spec = KeySpec::new("");
        for i in 0..200 {
            spec = spec.subkey(KeySpec::new(&format!("K{i}")).value(
                "v",
                1,
                reg_sz(&format!("value {i:040}")),
            ));
        }
        Hive::from_bytes(build_hive(&spec, &BuildOptions::default()).unwrap()).unwrap()
    }

    #[test]
    fn page_identity_skips_what_cannot_differ_and_catches_what_does() {
        let h = original();
        let edits = [Edit::SetValue {
            key: "K5".into(),
            name: "v".into(),
            data_type: 1,
            data: reg_sz("changed"),
        }];
        let e = Survey::of(&h).unwrap().expect(&h, &edits).unwrap();
        let mut m = HiveMut::new(&h).unwrap();
        m.apply(&edits[0]).unwrap();
        let image = m.finish(9).unwrap().to_vec();
        let page = PAGE as usize;
        let changed: Vec<bool> = image
            .chunks(page)
            .enumerate()
            .map(|(i, p)| h.bytes().get(i * page..i * page + p.len()) != Some(p))
            .collect();
        assert!(changed.iter().filter(|c| **c).count() < changed.len() / 2);
        let written = Hive::from_bytes(image.clone()).unwrap();
        let full = e.verify(&h, &written).unwrap();
        assert_eq!(e.verify_pages(&h, &written, &changed).unwrap(), full);
        assert_eq!(full, (201, 200));

        // An untouched key that reads a changed page is compared: its data altered there is
        // found.
        let victim = changed
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .find_map(|(p, _)| {
                (0..200).find_map(|i| {
                    let name = format!("K{i}");
                    let v = written.key(&name).ok()?.value("v").ok()??;
                    let DataStorage::Cell(off) = v.storage().ok()? else {
                        return None;
                    };
                    let at = off as usize + 4096 + 4;
                    (i != 5 && at / page == p).then_some(at)
                })
            })
            .expect("an untouched key in a changed page");
        let mut bad = image.clone();
        bad[victim] ^= 1;
        let e2 = e
            .verify_pages(&h, &Hive::from_bytes(bad).unwrap(), &changed)
            .unwrap_err();
        assert!(e2.to_string().contains("untouched key"), "{e2}");
    }
}
