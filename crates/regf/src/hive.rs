//! Opening a hive: base block checks, log replay, the bin map, path lookup and tree walks.

use std::path::{Path, PathBuf};

use guestwall_mmap::{AnonBuf, FileBytes};

use crate::base_block::{BaseBlock, BASE_BLOCK_LEN};
use crate::bins::{BinMap, CellInfo};
use crate::error::{CellPos, Error, Result};
use crate::key::Key;
use crate::lazy::{LazyBins, Replayed};
use crate::log::{recover, LogInput, Recovery};
use crate::source::{HiveFile, HiveSource};
use guestwall_source::Location;
use guestwall_source::ReadAt;

/// Deepest key nesting we follow. Windows limits a key path to 512 levels.
pub const MAX_KEY_DEPTH: usize = 512;

/// How to open a hive.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Replay transaction logs found beside a dirty primary file.
    pub replay_logs: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { replay_logs: true }
    }
}

/// An open hive: the file's bytes (after any log replay), its base block and bin map.
#[derive(Debug)]
pub struct Hive {
    /// The file's bytes (mapped when read from a clean file) or the recovered copy.
    buf: FileBytes,
    /// How much of `buf` is the hive: base block plus the declared hive bins data.
    len: usize,
    base: BaseBlock,
    primary: BaseBlock,
    bins: BinMap,
    recovery: Recovery,
    warnings: Vec<String>,
    path: Option<PathBuf>,
    location: Location,
    /// The bins, read on first use, when the hive was opened with [`Hive::open_lazy`]
    /// (`buf` then holds the base block only and `bins` is empty).
    lazy: Option<LazyBins>,
}

impl Hive {
    /// Opens a hive file, replaying its logs if it is dirty.
    pub fn open(path: impl AsRef<Path>) -> Result<Hive> {
        Hive::open_with(path, &OpenOptions::default())
    }

    /// Opens a hive file with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Hive> {
        Hive::open_source(&HiveFile::new(path.as_ref()), opts)
    }

    /// Opens a hive from a source (a file, memory, a file inside a disk image), replaying
    /// the logs the source supplies if the hive is dirty and `opts.replay_logs`.
    pub fn open_source(source: &dyn HiveSource, opts: &OpenOptions) -> Result<Hive> {
        let buf = source.primary()?;
        let logs = if opts.replay_logs {
            // Only look for logs when the primary says it needs them.
            match BaseBlock::parse(&buf) {
                Ok(b) if b.is_dirty() => source.logs()?,
                _ => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let mut hive = Hive::from_parts(buf, &logs, opts.replay_logs)?;
        hive.path = source.file_path().map(Path::to_path_buf);
        hive.location = source.location();
        Ok(hive)
    }

    /// Opens a hive from a source, reading only the bins that are used when the source can
    /// read parts of its file ([`HiveSource::primary_reader`], a file inside a disk image) and
    /// the hive needs no log replay; otherwise as [`Hive::open_source`] with the default
    /// options. A lazily read hive can be read but not edited, and has no bin map
    /// ([`Hive::bins`] is empty, [`Hive::bytes`] is the base block only); see the `lazy`
    /// module for what a lazy read does not check.
    pub fn open_lazy(source: &dyn HiveSource) -> Result<Hive> {
        let Some(reader) = source.primary_reader() else {
            return Hive::open_source(source, &OpenOptions::default());
        };
        let location = source.location();
        let io = |source| Error::Io {
            path: location.clone(),
            source,
        };
        let size = reader.size();
        let mut head = vec![0u8; BASE_BLOCK_LEN.min(usize::try_from(size).unwrap_or(usize::MAX))];
        reader.read_exact_at(0, &mut head).map_err(io)?;
        let primary = BaseBlock::parse(&head)?;
        if primary.checksum_ok() {
            primary.validate_primary()?;
        }
        let logs = if primary.is_dirty() {
            source.logs()?
        } else {
            Vec::new()
        };
        let (reader, base, recovery): (Box<dyn ReadAt>, BaseBlock, Recovery) = if logs.is_empty() {
            let recovery = Recovery {
                was_dirty: primary.is_dirty(),
                ..Recovery::default()
            };
            (reader, primary.clone(), recovery)
        } else {
            // The logs are replayed over a buffer that keeps only the pages they write; the
            // rest of the file is read when a walk needs it.
            let mut buf = Replayed::start(&*reader, &location)?;
            let recovery = recover(&mut buf, &logs)?;
            let replayed = Replayed::finish(reader, buf);
            let base = BaseBlock::parse(replayed.base_block())?;
            (Box::new(replayed), base, recovery)
        };
        let warnings = open_warnings(&primary, &recovery, true, logs.is_empty());
        base.validate_primary()?;
        let size = reader.size();
        let need = BASE_BLOCK_LEN as u64 + u64::from(base.hbins_size);
        if size < need {
            return Err(Error::Truncated {
                what: "hive bins data (per the base block's size field)",
                expected: need,
                actual: size,
            });
        }
        let mut head = vec![0u8; BASE_BLOCK_LEN];
        reader.read_exact_at(0, &mut head).map_err(io)?;
        let lazy = LazyBins::new(reader, location.clone(), base.hbins_size);
        let hive = Hive {
            buf: FileBytes::Owned(head),
            len: BASE_BLOCK_LEN,
            base,
            primary,
            bins: BinMap::default(),
            recovery,
            warnings,
            path: source.file_path().map(Path::to_path_buf),
            location,
            lazy: Some(lazy),
        };
        hive.root()?;
        Ok(hive)
    }

    /// True when the hive was opened with [`Hive::open_lazy`] and reads its bins on use.
    pub fn is_lazy(&self) -> bool {
        self.lazy.is_some()
    }

    /// For a lazily read hive: how many bins, and bytes of bins, have been read so far.
    pub fn lazy_read(&self) -> Option<(usize, u64)> {
        self.lazy.as_ref().map(LazyBins::read_so_far)
    }

    /// Reads a hive from bytes, without logs.
    pub fn from_bytes(buf: Vec<u8>) -> Result<Hive> {
        Hive::from_parts(FileBytes::Owned(buf), &[], false)
    }

    /// Reads a hive from bytes, replaying the given logs if it is dirty.
    pub fn from_bytes_with_logs(buf: Vec<u8>, logs: &[LogInput]) -> Result<Hive> {
        Hive::from_parts(FileBytes::Owned(buf), logs, true)
    }

    fn from_parts(mut buf: FileBytes, logs: &[LogInput], replay: bool) -> Result<Hive> {
        let primary = BaseBlock::parse(&buf)?;
        // Refuse logs and foreign files before doing anything else with them.
        if primary.checksum_ok() {
            primary.validate_primary()?;
        }
        let recovery = if primary.is_dirty() && replay && !logs.is_empty() {
            // Replay works on a private copy; the file itself is never touched. (The copy
            // grows when a log grows the hive, which is rare.)
            let mut copy = AnonBuf::copy_of(&buf, buf.len()).map_err(|source| Error::Io {
                path: Location::Memory("memory for log replay".into()),
                source,
            })?;
            let rec = recover(&mut copy, logs)?;
            buf = FileBytes::Anon(copy);
            rec
        } else {
            Recovery {
                was_dirty: primary.is_dirty(),
                ..Recovery::default()
            }
        };
        let warnings = open_warnings(&primary, &recovery, replay, logs.is_empty());
        let base = BaseBlock::parse(&buf)?;
        base.validate_primary()?;
        let bins = BinMap::scan(&buf, base.hbins_size)?;
        // Data past the declared hive bins is ignored; nothing can reach it.
        let len = BASE_BLOCK_LEN + base.hbins_size as usize;
        if let FileBytes::Owned(v) = &mut buf {
            v.truncate(len);
        }
        let hive = Hive {
            buf,
            len,
            base,
            primary,
            bins,
            recovery,
            warnings,
            path: None,
            location: Location::Memory("hive in memory".into()),
            lazy: None,
        };
        // The root must be a key node.
        hive.root()?;
        Ok(hive)
    }

    /// Where this hive was read from.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The file this hive was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The effective base block (after log replay).
    pub fn base_block(&self) -> &BaseBlock {
        &self.base
    }

    /// The primary file's base block as it was on disk, before any replay.
    pub fn primary_base_block(&self) -> &BaseBlock {
        &self.primary
    }

    /// What happened with transaction logs on open.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Warnings raised while opening (a dirty hive read without logs, for example).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The hive file's bytes after replay (base block and hive bins data).
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&self.buf)
    }

    /// The bin map.
    pub fn bins(&self) -> &BinMap {
        &self.bins
    }

    /// A hive over bytes already in memory or mapped.
    pub(crate) fn from_file_bytes(buf: FileBytes) -> Result<Hive> {
        Hive::from_parts(buf, &[], false)
    }

    /// A hive over a private, growable copy of a hive file, for the writer.
    pub(crate) fn from_anon(buf: AnonBuf) -> Result<Hive> {
        Hive::from_parts(FileBytes::Anon(buf), &[], false)
    }

    /// True when the hive's bytes are the file it was opened from, mapped as they are on disk
    /// (not a copy recovered from logs).
    pub(crate) fn is_mapped_file(&self) -> bool {
        self.path.is_some() && matches!(self.buf, FileBytes::Mapped(_))
    }

    /// A hive over a private copy of `like`'s bytes, for the writer: the base block and bin
    /// map are taken from `like` instead of being read again from the copy.
    pub(crate) fn from_anon_like(buf: AnonBuf, like: &Hive) -> Result<Hive> {
        if buf.len() != like.len {
            return Hive::from_anon(buf);
        }
        let hive = Hive {
            buf: FileBytes::Anon(buf),
            len: like.len,
            base: like.base.clone(),
            primary: like.base.clone(),
            bins: like.bins.clone(),
            recovery: Recovery::default(),
            warnings: Vec::new(),
            path: None,
            location: Location::Memory("hive in memory".into()),
            lazy: None,
        };
        hive.root()?;
        Ok(hive)
    }

    /// The writer's buffer (hives made with [`Hive::from_anon`]).
    pub(crate) fn anon_mut(&mut self) -> Option<&mut AnonBuf> {
        match &mut self.buf {
            FileBytes::Anon(a) => Some(a),
            _ => None,
        }
    }

    /// The hive's bytes, given up (base block and hive bins, nothing after).
    pub(crate) fn into_file_bytes(self) -> FileBytes {
        let len = self.len;
        match self.buf {
            FileBytes::Anon(mut a) if a.len() > len => {
                let _ = a.resize(len);
                FileBytes::Anon(a)
            }
            other => other,
        }
    }

    /// Records a bin the writer appended to the buffer.
    pub(crate) fn push_bin(&mut self, bin: crate::bins::Bin) {
        self.bins.push_bin(bin);
        self.len = BASE_BLOCK_LEN + self.bins.data_size() as usize;
        self.base.hbins_size = self.bins.data_size();
    }

    /// The data of the allocated cell at `offset`.
    pub fn cell(&self, offset: u32) -> Result<&[u8]> {
        match &self.lazy {
            Some(lazy) => lazy.cell(offset),
            None => self.bins.cell(self.bytes(), offset),
        }
    }

    /// Counts allocated and free cells by a linear scan of every bin.
    pub fn cell_stats(&self) -> Result<CellStats> {
        if self.lazy.is_some() {
            return Err(Error::cell(
                0,
                "internal: cell statistics need the whole hive, and this one is read lazily",
            ));
        }
        let mut s = CellStats::default();
        for c in self.bins.cells(self.bytes()) {
            let CellInfo {
                size, allocated, ..
            } = c?;
            if allocated {
                s.allocated += 1;
                s.allocated_bytes += u64::from(size);
            } else {
                s.free += 1;
                s.free_bytes += u64::from(size);
            }
        }
        Ok(s)
    }

    /// The root key.
    pub fn root(&self) -> Result<Key<'_>> {
        Key::new(self, self.base.root_cell).map_err(|e| e.at_key(""))
    }

    /// The key at `path` (components separated by `\`, relative to the root key; a leading
    /// `\` is allowed), or `None`.
    pub fn find_key(&self, path: &str) -> Result<Option<Key<'_>>> {
        let mut key = self.root()?;
        let mut so_far = String::new();
        for part in split_path(path) {
            match key.subkey(part).map_err(|e| e.at_key(&so_far))? {
                Some(k) => key = k,
                None => return Ok(None),
            }
            if !so_far.is_empty() {
                so_far.push('\\');
            }
            so_far.push_str(part);
        }
        Ok(Some(key))
    }

    /// The key at `path` and its path spelled as stored (the case of the file's names).
    pub fn resolve(&self, path: &str) -> Result<(Key<'_>, String)> {
        let mut key = self.root()?;
        let mut canonical = String::new();
        for part in split_path(path) {
            key = key
                .subkey(part)
                .map_err(|e| e.at_key(&canonical))?
                .ok_or_else(|| Error::KeyNotFound {
                    path: path.to_string(),
                })?;
            if !canonical.is_empty() {
                canonical.push('\\');
            }
            canonical.push_str(&key.name().to_string_lossy());
        }
        Ok((key, canonical))
    }

    /// The key at `path`, or [`Error::KeyNotFound`].
    pub fn key(&self, path: &str) -> Result<Key<'_>> {
        self.find_key(path)?.ok_or_else(|| Error::KeyNotFound {
            path: path.to_string(),
        })
    }

    /// Walks the tree under `start` depth-first (pre-order, subkeys in stored order) with an
    /// explicit stack. `visit` gets each key's path relative to `start_path` and the key.
    ///
    /// A key reached twice is an error ([`Error::Cycle`]), and so is nesting deeper than
    /// [`MAX_KEY_DEPTH`].
    pub fn walk<'h, F>(&'h self, start: Key<'h>, start_path: &str, mut visit: F) -> Result<()>
    where
        F: FnMut(&str, &Key<'h>) -> Result<()>,
    {
        self.walk_with(
            start,
            start_path.to_string(),
            |parent: &String, key| {
                let name = key.name().to_string_lossy();
                if parent.is_empty() {
                    name
                } else {
                    let mut p = String::with_capacity(parent.len() + 1 + name.len());
                    p.push_str(parent);
                    p.push('\\');
                    p.push_str(&name);
                    p
                }
            },
            |path, key| visit(path, key).map_err(|e| e.at_key(path)),
        )
    }

    /// The walk behind [`Hive::walk`], with a state of the caller's choosing carried down the
    /// tree: `descend` makes a child's state from its parent's, `visit` sees each key with its
    /// state. Same order, depth limit and cycle detection as `walk`; errors the walk itself
    /// finds name the key's path.
    pub fn walk_with<'h, S, D, F>(
        &'h self,
        start: Key<'h>,
        init: S,
        descend: D,
        visit: F,
    ) -> Result<()>
    where
        D: Fn(&S, &Key<'h>) -> S,
        F: FnMut(&S, &Key<'h>) -> Result<()>,
    {
        let mut seen = vec![0u64; (self.base.hbins_size as usize / 8).div_ceil(64)];
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
        self.walk_marked(start, init, &mut mark, descend, visit)
    }

    /// [`Hive::walk_with`] with the visited set supplied by the caller: `mark(cell)` records a
    /// key node and says whether it was new. Walks of several subtrees that share one set (for
    /// example on several threads) then still find a key reached twice.
    pub fn walk_marked<'h, S, D, F>(
        &'h self,
        start: Key<'h>,
        init: S,
        mark: &mut dyn FnMut(u32) -> bool,
        descend: D,
        mut visit: F,
    ) -> Result<()>
    where
        D: Fn(&S, &Key<'h>) -> S,
        F: FnMut(&S, &Key<'h>) -> Result<()>,
    {
        struct Frame<S> {
            /// The key whose subkeys these are.
            cell: u32,
            subkeys: Vec<u32>,
            next: usize,
            state: S,
        }
        // Paths for error messages are found only when an error happens.
        let at = |cell: u32, e: Error| e.at_key(&self.path_of(cell));
        if !mark(start.cell()) {
            return Err(at(
                start.cell(),
                Error::Cycle {
                    cell: CellPos(start.cell()),
                },
            ));
        }
        visit(&init, &start)?;
        let mut stack = vec![Frame {
            cell: start.cell(),
            subkeys: start.subkey_cells().map_err(|e| at(start.cell(), e))?,
            next: 0,
            state: init,
        }];
        loop {
            let depth = stack.len();
            let Some(top) = stack.last_mut() else { break };
            let Some(&cell) = top.subkeys.get(top.next) else {
                stack.pop();
                continue;
            };
            top.next += 1;
            let parent = top.cell;
            let key = Key::new(self, cell).map_err(|e| at(parent, e))?;
            if !mark(cell) {
                return Err(at(
                    parent,
                    Error::Cycle {
                        cell: CellPos(cell),
                    },
                ));
            }
            if depth >= MAX_KEY_DEPTH {
                return Err(at(
                    parent,
                    Error::TooDeep {
                        max: MAX_KEY_DEPTH,
                        cell: CellPos(cell),
                    },
                ));
            }
            let state = descend(&top.state, &key);
            visit(&state, &key)?;
            let subkeys = key.subkey_cells().map_err(|e| at(cell, e))?;
            stack.push(Frame {
                cell,
                subkeys,
                next: 0,
                state,
            });
        }
        Ok(())
    }

    /// The path of the key node at `cell`, found by following parent links up to the root
    /// (at most [`MAX_KEY_DEPTH`] steps; for error messages).
    pub fn path_of(&self, cell: u32) -> String {
        let root = self.base.root_cell;
        let mut names = Vec::new();
        let mut c = cell;
        for _ in 0..MAX_KEY_DEPTH {
            if c == root {
                names.reverse();
                return names.join("\\");
            }
            match Key::new(self, c) {
                Ok(k) => {
                    names.push(k.name().to_string_lossy());
                    c = k.parent_cell();
                }
                Err(_) => break,
            }
        }
        format!("(key at {})", CellPos(cell))
    }

    /// Reads every key, value and data cell of the hive, as a check that it is fully readable.
    /// Returns the number of keys and values.
    pub fn check_all(&self) -> Result<(u64, u64)> {
        let mut keys = 0u64;
        let mut values = 0u64;
        self.walk(self.root()?, "", |_, key| {
            keys += 1;
            key.class_name()?;
            for v in key.values()? {
                v.data()?;
                values += 1;
            }
            Ok(())
        })?;
        Ok((keys, values))
    }
}

/// What opening a hive has to say: logs applied only in part, or a dirty hive read as it is.
fn open_warnings(
    primary: &BaseBlock,
    recovery: &Recovery,
    replay: bool,
    no_logs: bool,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(why) = &recovery.partial {
        warnings.push(format!(
            "hive is dirty and its transaction logs could be applied only in part: {why}. Windows stops at the same place when it loads the hive, so this is what it would load, but the changes logged after that point are lost"
        ));
    }
    if primary.is_dirty() && !recovery.applied() {
        let why = if !primary.checksum_ok() {
            format!(
                "base block checksum is wrong (stored {:#010x}, computed {:#010x})",
                primary.stored_checksum, primary.computed_checksum
            )
        } else {
            format!(
                "sequence numbers differ ({} != {})",
                primary.primary_seq, primary.secondary_seq
            )
        };
        let what = if !replay {
            "logs were not used (--no-logs)"
        } else if no_logs {
            "no transaction logs were found beside it"
        } else {
            "no log applied to it"
        };
        warnings.push(format!(
            "hive is dirty: {why}; {what}, so it is read as it is and may lack its last changes"
        ));
    }
    warnings
}

/// Allocated and free cell counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellStats {
    /// Allocated cells.
    pub allocated: u64,
    /// Bytes in allocated cells.
    pub allocated_bytes: u64,
    /// Free cells.
    pub free: u64,
    /// Bytes in free cells.
    pub free_bytes: u64,
}

/// Splits a key path on `\`, ignoring empty components (leading, trailing or doubled `\`).
pub fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('\\').filter(|p| !p.is_empty())
}
