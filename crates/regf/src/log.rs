//! Transaction logs (`.LOG`, `.LOG1`, `.LOG2`) and their replay over a dirty primary file.
//!
//! A hive is dirty when its base block checksum is wrong or its two sequence numbers differ:
//! Windows began a write and did not finish it. The changes are then in the logs. Both log
//! formats start with a copy of the first 512 bytes of the base block (file type 1 or 2 for the
//! old format, 6 for the new one).
//!
//! **Old format** (up to Windows 8): at offset 512 the signature `DIRT` and a bitmap with one
//! bit per 512-byte page of hive bins data (per the log's own hive bins size). The dirty pages
//! follow, starting at the next 512-byte boundary, in bitmap order. A log applies when it is
//! valid (checksum right, both sequence numbers equal) and its timestamp equals the primary's.
//!
//! **New format** (Windows 8.1+): from offset 512 a run of `HvLE` entries, each a multiple of 512
//! bytes: signature, size, flags, sequence number, hive bins size, dirty page count, Marvin32
//! hashes of the body and of the header, page references (offset, size) and the pages. Entries
//! from both logs are applied in sequence order, starting at the primary's secondary sequence
//! number and stopping at the first gap or bad entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use guestwall_source::Location;

use guestwall_mmap::{AnonBuf, FileBytes};

use crate::base_block::{checksum, BaseBlock, FileType, BASE_BLOCK_LEN, HEADER_SECTOR};
use crate::error::{Error, Result};

/// Seed of the Marvin32 hashes in new-format log entries.
pub const MARVIN_SEED: u64 = 0x82EF_4D88_7A4E_55C5;

/// Marvin32 hash, as used by new-format log entries.
pub fn marvin32(seed: u64, data: &[u8]) -> u64 {
    let mut lo = seed as u32;
    let mut hi = (seed >> 32) as u32;
    let step = |w: u32, lo: &mut u32, hi: &mut u32| {
        *lo = lo.wrapping_add(w);
        *hi ^= *lo;
        *lo = lo.rotate_left(20).wrapping_add(*hi);
        *hi = hi.rotate_left(9) ^ *lo;
        *lo = lo.rotate_left(27).wrapping_add(*hi);
        *hi = hi.rotate_left(19);
    };
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        step(
            u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            &mut lo,
            &mut hi,
        );
    }
    let rest = chunks.remainder();
    let mut last = 0x80u32 << (8 * rest.len());
    for (i, &b) in rest.iter().enumerate() {
        last |= u32::from(b) << (8 * i);
    }
    step(last, &mut lo, &mut hi);
    step(0, &mut lo, &mut hi);
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The format of a transaction log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Dirty vector (`DIRT`), Windows XP to 8.
    Old,
    /// Log entries (`HvLE`), Windows 8.1 and later.
    New,
}

/// A log file to consider, by where it is and its contents.
#[derive(Debug)]
pub struct LogInput {
    /// Where it came from (shown in reports and errors).
    pub location: Location,
    /// Its bytes.
    pub bytes: FileBytes,
}

impl LogInput {
    /// A log from bytes in memory.
    pub fn new(location: Location, bytes: Vec<u8>) -> LogInput {
        LogInput {
            location,
            bytes: FileBytes::Owned(bytes),
        }
    }
}

/// A buffer the replay can write into and grow: a `Vec` or an anonymous mapping.
pub trait GrowBuf: std::ops::DerefMut<Target = [u8]> {
    /// Sets the length, zero-filling new bytes.
    fn set_len(&mut self, len: usize) -> Result<()>;

    /// Told after the replay wrote `len` bytes at `start` past the base block (a buffer that
    /// keeps only what the logs wrote records it; the base block is always its own).
    fn wrote(&mut self, _start: usize, _len: usize) {}
}

impl GrowBuf for Vec<u8> {
    fn set_len(&mut self, len: usize) -> Result<()> {
        self.resize(len, 0);
        Ok(())
    }
}

impl GrowBuf for AnonBuf {
    fn set_len(&mut self, len: usize) -> Result<()> {
        self.resize(len).map_err(|source| Error::Io {
            path: Location::Memory("memory for log replay".into()),
            source,
        })
    }
}

/// What was found in one log file and what of it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Where the log is.
    pub location: Location,
    /// Its format, if it has a usable base block.
    pub format: Option<LogFormat>,
    /// Valid entries found (new format), or 1 for a valid old-format log.
    pub entries_found: u32,
    /// Entries applied from this log.
    pub entries_applied: u32,
    /// Sequence numbers of the first and last applied entries.
    pub applied_seq: Option<(u32, u32)>,
    /// Pages written from this log.
    pub pages_applied: u32,
    /// Bytes written from this log.
    pub bytes_applied: u64,
    /// Why nothing or not everything was used, when that is the case.
    pub note: Option<String>,
}

/// The outcome of opening a hive with regard to its logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The primary file was dirty.
    pub was_dirty: bool,
    /// The primary's base block was replaced from a log because its checksum was wrong.
    pub base_block_from_log: bool,
    /// Every log file considered.
    pub logs: Vec<LogReport>,
    /// Why replay stopped before the end of the log data, when it did: a damaged entry that
    /// would have continued the replay, or entries past a missing one. Windows stops at the
    /// same place, so the hive reads as Windows would load it, but the later changes are
    /// lost; writing such a hive would make that loss permanent.
    pub partial: Option<String>,
}

impl Recovery {
    /// True when any log data was applied.
    pub fn applied(&self) -> bool {
        self.base_block_from_log || self.logs.iter().any(|l| l.entries_applied > 0)
    }
}

/// The log files beside `primary`: `<name>.LOG1`, `<name>.LOG2` and `<name>.LOG`, matched
/// case-insensitively, in that order. Empty files are included (reported, never applied).
pub fn find_logs(primary: &Path) -> Vec<PathBuf> {
    let Some(name) = primary.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let dir = match primary.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let lower = name.to_lowercase();
    let mut found: Vec<(usize, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let Some(n) = e.file_name().to_str().map(str::to_lowercase) else {
            continue;
        };
        let Some(ext) = n.strip_prefix(&lower) else {
            continue;
        };
        let rank = match ext {
            ".log1" => 0,
            ".log2" => 1,
            ".log" => 2,
            _ => continue,
        };
        if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            found.push((rank, e.path()));
        }
    }
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// The highest sequence number in a log file: its base block's and its entries' (valid or
/// not: any number Windows might read counts).
pub fn max_sequence(bytes: &[u8]) -> Option<u32> {
    let base = BaseBlock::parse(bytes).ok()?;
    let mut max = base.primary_seq.max(base.secondary_seq);
    let mut pos = HEADER_SECTOR;
    while let Some(h) = bytes.get(pos..pos + 40) {
        if &h[..4] != b"HvLE" {
            break;
        }
        let size = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        max = max.max(u32::from_le_bytes([h[12], h[13], h[14], h[15]]));
        if size < 512 || !size.is_multiple_of(512) {
            break;
        }
        pos += size;
    }
    Some(max)
}

/// A valid new-format log entry.
struct Entry {
    log: usize,
    offset: usize,
    size: usize,
    seq: u32,
    flags: u32,
    hbins_size: u32,
    pages: usize,
}

/// Replays `logs` over the dirty hive file in `file`, in memory.
///
/// Returns what was applied. The caller checks the result as it checks any hive.
pub fn recover<B: GrowBuf>(file: &mut B, logs: &[LogInput]) -> Result<Recovery> {
    let primary = BaseBlock::parse(&file[..])?;
    let mut rec = Recovery {
        was_dirty: primary.is_dirty(),
        ..Recovery::default()
    };
    if !rec.was_dirty {
        return Ok(rec);
    }
    let mut bases: Vec<Option<BaseBlock>> = Vec::new();
    for log in logs {
        let mut report = LogReport {
            location: log.location.clone(),
            format: None,
            entries_found: 0,
            entries_applied: 0,
            applied_seq: None,
            pages_applied: 0,
            bytes_applied: 0,
            note: None,
        };
        let base = match BaseBlock::parse(&log.bytes) {
            Ok(b) if !b.checksum_ok() => {
                report.note = Some("base block checksum is wrong; log ignored".into());
                None
            }
            Ok(b) => match b.file_type {
                FileType::OldLog(_) => {
                    report.format = Some(LogFormat::Old);
                    Some(b)
                }
                FileType::NewLog => {
                    report.format = Some(LogFormat::New);
                    Some(b)
                }
                _ => {
                    report.note = Some(format!("not a log (file type {:?}); ignored", b.file_type));
                    None
                }
            },
            Err(_) if log.bytes.is_empty() => {
                report.note = Some("empty file".into());
                None
            }
            Err(e) => {
                report.note = Some(format!(
                    "unreadable base block: {}",
                    crate::error::error_chain(&e)
                ));
                None
            }
        };
        bases.push(base);
        rec.logs.push(report);
    }

    let any_new = rec.logs.iter().any(|l| l.format == Some(LogFormat::New));
    if any_new {
        recover_new(file, &primary, logs, &bases, &mut rec)?;
    } else {
        recover_old(file, &primary, logs, &bases, &mut rec)?;
    }
    Ok(rec)
}

fn recover_new<B: GrowBuf>(
    file: &mut B,
    primary: &BaseBlock,
    logs: &[LogInput],
    bases: &[Option<BaseBlock>],
    rec: &mut Recovery,
) -> Result<()> {
    // A primary base block with a wrong checksum is replaced by the newest valid log base block.
    let mut start_seq = primary.secondary_seq;
    if !primary.checksum_ok() {
        let best = bases
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (i, b)))
            .filter(|(_, b)| b.file_type == FileType::NewLog)
            .max_by_key(|(_, b)| b.primary_seq);
        let Some((i, b)) = best else {
            return Ok(());
        };
        replace_base_block(file, &logs[i].bytes)?;
        rec.base_block_from_log = true;
        start_seq = b.secondary_seq;
    }

    // Collect each log's run of valid entries: in file order, each continuing the previous
    // one's sequence number. What follows a break is stale (an older generation of the log).
    let mut by_seq: BTreeMap<u32, Entry> = BTreeMap::new();
    // Damaged entries: (log, the sequence number their header claims, why).
    let mut damaged: Vec<(usize, Option<u32>, String)> = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        let Some(base) = &bases[i] else { continue };
        if base.file_type != FileType::NewLog {
            rec.logs[i].note = Some("old-format log beside new-format logs; ignored".into());
            continue;
        }
        let (mut entries, stop) = scan_entries(i, &log.bytes);
        if let Some(st) = &stop {
            damaged.push((i, st.seq, st.why.clone()));
        }
        let run = entries
            .windows(2)
            .position(|w| w[1].seq != w[0].seq.wrapping_add(1))
            .map_or(entries.len(), |p| p + 1);
        let stale = entries.len() - run;
        entries.truncate(run);
        rec.logs[i].entries_found = entries.len() as u32;
        rec.logs[i].note = match (stop, stale) {
            (Some(stop), _) => Some(stop.why),
            (None, 0) => None,
            (None, n) => Some(format!(
                "{n} stale entries from an older generation ignored"
            )),
        };
        for e in entries {
            // When both logs hold the same sequence number, the log with the newer base
            // block wins.
            let newer = match by_seq.get(&e.seq) {
                None => true,
                Some(old) => {
                    let ob = bases[old.log].as_ref().map_or(0, |b| b.primary_seq);
                    base.primary_seq > ob
                }
            };
            if newer {
                by_seq.insert(e.seq, e);
            }
        }
    }

    // Entries older than the primary's last complete write are already in it. Replay starts at
    // the first newer entry (Windows 10 flushes lazily, so there may be a gap before it) and
    // stops at the first gap after it.
    let Some(&first) = by_seq.range(start_seq..).next().map(|(s, _)| s) else {
        for r in rec
            .logs
            .iter_mut()
            .filter(|r| r.format == Some(LogFormat::New))
        {
            r.note.get_or_insert_with(|| {
                format!("no entry at or after the primary's sequence number {start_seq}")
            });
        }
        return Ok(());
    };
    let expected = start_seq;
    let start_seq = first;
    let mut seq = start_seq;
    let mut last: Option<&Entry> = None;
    while let Some(e) = by_seq.get(&seq) {
        // A hive grows only by bins the entry carries, so its new size cannot exceed the old
        // one plus the entry's pages. This also bounds what a hostile log makes us allocate.
        let current = file.len().saturating_sub(BASE_BLOCK_LEN);
        let carried = e.size - 40 - 8 * e.pages;
        if e.hbins_size as usize > current + carried {
            let why = format!(
                "entry {seq} grows the hive to {:#x} bytes, beyond the {carried:#x} bytes of pages it carries; replay stops there",
                e.hbins_size
            );
            rec.logs[e.log].note = Some(why.clone());
            rec.partial = Some(format!("{}: {why}", logs[e.log].location));
            break;
        }
        apply_entry(file, &logs[e.log], e)?;
        let r = &mut rec.logs[e.log];
        r.entries_applied += 1;
        r.pages_applied += e.pages as u32;
        r.applied_seq = Some(match r.applied_seq {
            None => (seq, seq),
            Some((a, _)) => (a, seq),
        });
        last = Some(e);
        seq = seq.wrapping_add(1);
    }
    // Did replay end where the log data ends, or short of it?
    if rec.partial.is_none() {
        // The entry that would have come next is damaged, or missing while later ones exist,
        // or a damaged entry could have continued the replay.
        let damaged_next = damaged
            .iter()
            .find(|(_, s, _)| *s == Some(seq))
            .or_else(|| damaged.iter().find(|(_, s, _)| s.is_none_or(|s| s >= seq)));
        let later = by_seq.range(seq..).next().map(|(&l, _)| l);
        if let Some((log, _, why)) = damaged_next {
            rec.partial = Some(format!("{}: {why}", logs[*log].location));
        } else if let Some(later) = later {
            rec.partial = Some(format!(
                "log entry {seq} is missing while entries from {later} on exist, so replay stopped after entry {}",
                seq.wrapping_sub(1)
            ));
        }
    }
    // A gap before the first entry is normal when every log was read (Windows 10 flushes
    // lazily); when a log could not be read, or has damaged entries before the first one
    // applied, the missing entries may have been there, and the result cannot be vouched for.
    if rec.partial.is_none() && first != expected {
        let unreadable = rec
            .logs
            .iter()
            .enumerate()
            .find(|(i, r)| r.format.is_none() && !logs[*i].bytes.is_empty())
            .map(|(i, r)| {
                (
                    i,
                    r.note.clone().unwrap_or_else(|| "unreadable".to_string()),
                )
            });
        let damaged_before = damaged
            .iter()
            .find(|(_, s, _)| s.is_none_or(|s| s < first))
            .map(|(i, _, why)| (*i, why.clone()));
        if let Some((i, why)) = unreadable.or(damaged_before) {
            rec.partial = Some(format!(
                "{}: {why}; the primary expects entry {expected} first but the readable entries start at {first}, so the entries between may have been lost with it",
                logs[i].location
            ));
        }
    }
    // A log that is there but cannot be read may have held entries after the last one
    // applied: the hive may lack them.
    if rec.partial.is_none() {
        if let Some((i, r)) = rec
            .logs
            .iter()
            .enumerate()
            .find(|(i, r)| r.format.is_none() && !logs[*i].bytes.is_empty())
        {
            rec.partial = Some(format!(
                "{}: {}; changes it may hold after entry {} are lost",
                logs[i].location,
                r.note.as_deref().unwrap_or("unreadable"),
                seq.wrapping_sub(1)
            ));
        }
    }
    // Entries found but not applied because replay stopped before them.
    if rec.partial.is_some() {
        for (i, r) in rec.logs.iter_mut().enumerate() {
            let n = by_seq.range(seq..).filter(|(_, e)| e.log == i).count();
            if n > 0 {
                let note =
                    format!("{n} later entries not applied: replay stopped before entry {seq}");
                r.note = Some(match r.note.take() {
                    Some(old) => format!("{old}; {note}"),
                    None => note,
                });
            }
        }
    }
    for r in rec.logs.iter_mut() {
        if r.format == Some(LogFormat::New) && r.entries_applied == 0 && r.note.is_none() {
            r.note = Some("its entries are older than the primary's last write".into());
        }
    }
    if let Some(e) = last {
        // The entry's sequence number becomes both sequence numbers; its flags and hive bins
        // size become the base block's.
        let flags = e.flags;
        let size = e.hbins_size;
        let seq = e.seq;
        set_u32(file, 4, seq);
        set_u32(file, 8, seq);
        set_u32(file, 40, size);
        set_u32(file, 144, flags);
        fix_checksum(file);
    }
    Ok(())
}

/// Why a log's run of entries ended early: the message, and the sequence number the bad
/// entry's header claims (when its header could be read).
struct Stop {
    why: String,
    seq: Option<u32>,
}

fn scan_entries(log: usize, bytes: &[u8]) -> (Vec<Entry>, Option<Stop>) {
    let mut out = Vec::new();
    let mut pos = HEADER_SECTOR;
    loop {
        let Some(h) = bytes.get(pos..pos + 40) else {
            return (out, None);
        };
        if &h[..4] != b"HvLE" {
            return (out, None);
        }
        let rd = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let size = rd(4) as usize;
        let flags = rd(8);
        let seq = rd(12);
        let hbins_size = rd(16);
        let pages = rd(20) as usize;
        let h1 = u64::from_le_bytes(h[24..32].try_into().unwrap_or([0; 8]));
        let h2 = u64::from_le_bytes(h[32..40].try_into().unwrap_or([0; 8]));
        let stop = |why: String| {
            Some(Stop {
                why: format!(
                    "log entry at offset {pos:#x} (sequence {seq}): {why}; later entries ignored"
                ),
                seq: Some(seq),
            })
        };
        if size < 40 || !size.is_multiple_of(512) {
            return (
                out,
                stop(format!("size {size:#x} is not a multiple of 512")),
            );
        }
        let Some(entry) = bytes.get(pos..pos + size) else {
            return (
                out,
                stop(format!("size {size:#x} runs past the end of the file")),
            );
        };
        if hbins_size == 0 || hbins_size % 4096 != 0 {
            return (
                out,
                stop(format!(
                    "hive bins size {hbins_size:#x} is not a multiple of 4096"
                )),
            );
        }
        if marvin32(MARVIN_SEED, &entry[40..]) != h1 || marvin32(MARVIN_SEED, &entry[..32]) != h2 {
            return (out, stop("hash mismatch".into()));
        }
        // Page references and pages must fit in the entry and in the hive bins size.
        let refs_end = pages.checked_mul(8).and_then(|n| n.checked_add(40));
        let Some(refs) = refs_end.and_then(|end| entry.get(40..end)) else {
            return (out, stop(format!("{pages} page references do not fit")));
        };
        let mut total = 40 + pages * 8;
        for r in refs.chunks_exact(8) {
            let off = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
            let len = u32::from_le_bytes([r[4], r[5], r[6], r[7]]) as usize;
            if len == 0 || off.checked_add(len).is_none_or(|e| e > hbins_size as usize) {
                return (
                    out,
                    stop(format!(
                        "page {off:#x}+{len:#x} lies outside the hive bins data"
                    )),
                );
            }
            total = match total.checked_add(len) {
                Some(t) if t <= size => t,
                _ => return (out, stop("pages run past the entry's end".into())),
            };
        }
        out.push(Entry {
            log,
            offset: pos,
            size,
            seq,
            flags,
            hbins_size,
            pages,
        });
        pos += size;
    }
}

fn apply_entry<B: GrowBuf>(file: &mut B, log: &LogInput, e: &Entry) -> Result<()> {
    let entry = &log.bytes[e.offset..e.offset + e.size];
    file.set_len(BASE_BLOCK_LEN + e.hbins_size as usize)?;
    let mut data = 40 + e.pages * 8;
    for i in 0..e.pages {
        let r = &entry[40 + i * 8..48 + i * 8];
        let off = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
        let len = u32::from_le_bytes([r[4], r[5], r[6], r[7]]) as usize;
        let src = entry
            .get(data..data + len)
            .ok_or_else(|| Error::InvalidLog {
                path: log.location.clone(),
                offset: (e.offset + data) as u64,
                reason: "page data past the entry".into(),
            })?;
        let dst = BASE_BLOCK_LEN + off;
        file.get_mut(dst..dst + len)
            .ok_or_else(|| Error::InvalidLog {
                path: log.location.clone(),
                offset: (e.offset + 40 + i * 8) as u64,
                reason: format!("page {off:#x} lies outside the hive"),
            })?
            .copy_from_slice(src);
        file.wrote(dst, len);
        data += len;
    }
    Ok(())
}

fn recover_old<B: GrowBuf>(
    file: &mut B,
    primary: &BaseBlock,
    logs: &[LogInput],
    bases: &[Option<BaseBlock>],
    rec: &mut Recovery,
) -> Result<()> {
    // The log applies when it is valid and was written for this very state of the primary.
    let primary_ts = if primary.checksum_ok() {
        primary.timestamp
    } else {
        // The first bin's timestamp backs up the base block's.
        file.get(BASE_BLOCK_LEN + 20..BASE_BLOCK_LEN + 28)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    let mut best: Option<usize> = None;
    for (i, base) in bases.iter().enumerate() {
        let Some(b) = base else { continue };
        if b.primary_seq != b.secondary_seq {
            rec.logs[i].note = Some("log itself is incomplete (sequence numbers differ)".into());
            continue;
        }
        if b.timestamp != primary_ts {
            rec.logs[i].note =
                Some("written for another state of the hive (timestamp differs)".into());
            continue;
        }
        if best.is_none_or(|j| {
            bases[j]
                .as_ref()
                .is_some_and(|o| b.primary_seq > o.primary_seq)
        }) {
            best = Some(i);
        }
    }
    let Some(i) = best else { return Ok(()) };
    let Some(base) = &bases[i] else { return Ok(()) };
    let log = &logs[i];
    let bytes = &log.bytes;
    let bad = |offset: usize, reason: String| Error::InvalidLog {
        path: log.location.clone(),
        offset: offset as u64,
        reason,
    };
    if bytes.get(512..516) != Some(b"DIRT") {
        rec.logs[i].note = Some("no dirty vector (\"DIRT\") at offset 0x200".into());
        return Ok(());
    }
    let size = base.hbins_size as usize;
    if size == 0 || !size.is_multiple_of(4096) {
        return Err(bad(
            40,
            format!("hive bins size {size:#x} is not a multiple of 4096"),
        ));
    }
    let bits = size / 512;
    let bitmap = bytes.get(516..516 + bits.div_ceil(8)).ok_or_else(|| {
        bad(
            516,
            format!("dirty vector of {bits} bits runs past the end"),
        )
    })?;
    let pages_start = (516 + bits.div_ceil(8)).div_ceil(512) * 512;
    // Check that every dirty page is present before touching the primary.
    let dirty = (0..bits)
        .filter(|&b| bitmap[b / 8] & (1 << (b % 8)) != 0)
        .count();
    let current = file.len().saturating_sub(BASE_BLOCK_LEN);
    if size > current + dirty * 512 {
        return Err(bad(
            40,
            format!(
                "hive bins size {size:#x} grows the hive beyond the {dirty} pages the log carries"
            ),
        ));
    }
    if bytes.len() < pages_start + dirty * 512 {
        return Err(bad(
            pages_start,
            format!(
                "{dirty} dirty pages announced but the log ends at {:#x}",
                bytes.len()
            ),
        ));
    }
    file.set_len(BASE_BLOCK_LEN + size)?;
    let dirty_bits = (0..bits).filter(|&b| bitmap[b / 8] & (1 << (b % 8)) != 0);
    for (k, b) in dirty_bits.enumerate() {
        let at = pages_start + k * 512;
        let src = bytes
            .get(at..at + 512)
            .ok_or_else(|| bad(at, "dirty page past the end of the log".into()))?;
        let dst = BASE_BLOCK_LEN + b * 512;
        file.get_mut(dst..dst + 512)
            .ok_or_else(|| bad(at, format!("dirty page {b} lies outside the hive")))?
            .copy_from_slice(src);
        file.wrote(dst, 512);
    }
    replace_base_block(file, bytes)?;
    rec.base_block_from_log = !primary.checksum_ok();
    let r = &mut rec.logs[i];
    r.entries_found = 1;
    r.entries_applied = 1;
    r.pages_applied = dirty as u32;
    r.bytes_applied = dirty as u64 * 512;
    r.applied_seq = Some((base.secondary_seq, base.secondary_seq));
    Ok(())
}

/// Copies a log's base block over the primary's, as a primary file (type 0) with equal
/// sequence numbers and a fresh checksum.
fn replace_base_block(file: &mut [u8], log: &[u8]) -> Result<()> {
    let src = log.get(..HEADER_SECTOR).ok_or(Error::Truncated {
        what: "log base block",
        expected: HEADER_SECTOR as u64,
        actual: log.len() as u64,
    })?;
    let dst = file.get_mut(..HEADER_SECTOR).ok_or(Error::Truncated {
        what: "base block",
        expected: HEADER_SECTOR as u64,
        actual: 0,
    })?;
    dst.copy_from_slice(src);
    set_u32(file, 28, 0);
    let seq = u32::from_le_bytes([file[8], file[9], file[10], file[11]]);
    set_u32(file, 4, seq);
    fix_checksum(file);
    Ok(())
}

fn set_u32(file: &mut [u8], off: usize, v: u32) {
    if let Some(d) = file.get_mut(off..off + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

fn fix_checksum(file: &mut [u8]) {
    if let Some(head) = file.get(..508) {
        let c = checksum(head);
        set_u32(file, 508, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marvin_is_sensitive_to_every_byte_and_length() {
        let a = marvin32(MARVIN_SEED, b"abcd");
        assert_ne!(a, marvin32(MARVIN_SEED, b"abce"));
        assert_ne!(a, marvin32(MARVIN_SEED, b"abcd\0"));
        assert_ne!(marvin32(MARVIN_SEED, b""), marvin32(MARVIN_SEED, b"\0"));
        assert_ne!(a, marvin32(MARVIN_SEED ^ 1, b"abcd"));
    }
}
