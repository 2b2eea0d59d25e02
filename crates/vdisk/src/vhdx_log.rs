//! The VHDX log (MS-VHDX §2.3): finding the active sequence and replaying it into patches.
//!
//! The log is a circular buffer of 4 KiB sectors at the header's LogOffset. An entry is a
//! 64-byte header (`loge`, CRC-32C over the whole entry with the checksum field zeroed,
//! EntryLength, Tail, SequenceNumber, DescriptorCount, LogGuid, FlushedFileOffset,
//! LastFileOffset), its descriptors (32 bytes each, `zero` or `desc`) padded to 4 KiB, then
//! one 4 KiB data sector (`data`) per data descriptor. The active sequence is the run of
//! entries with consecutive sequence numbers, from the entry its head's Tail points to up to
//! that head, whose head has the highest sequence number.

use crate::bytes::{le32, le64};
use crate::error::{Error, Result};
use crate::file::Src;
use crate::guid::Guid;
use crate::overlay::Patch;
use crate::vhdx::crc_with_zeroed;

const SECTOR: u64 = 4096;
/// Logs larger than this are refused rather than read into memory.
pub const MAX_LOG: u64 = 256 << 20;
/// Work cap for the sequence search (entries visited).
const MAX_STEPS: u64 = 1 << 22;

/// The outcome of a replay.
pub(crate) struct Replay {
    pub patches: Vec<Patch>,
    pub last_file_offset: u64,
    pub entries: usize,
    pub first_sequence: u64,
    pub head_sequence: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    at: u64,
    len: u64,
    tail: u64,
    seq: u64,
    count: u32,
    flushed: u64,
    last: u64,
}

/// Reads `len` bytes of the circular log starting at `at` (wrapping at the end).
fn circ(log: &[u8], at: u64, len: u64) -> Option<Vec<u8>> {
    let n = log.len() as u64;
    if len > n || at >= n {
        return None;
    }
    let mut v = Vec::with_capacity(len as usize);
    let first = (n - at).min(len);
    v.extend_from_slice(log.get(at as usize..(at + first) as usize)?);
    v.extend_from_slice(log.get(..(len - first) as usize)?);
    Some(v)
}

/// Parses the entry header at `at` and checks its CRC and GUID (not its descriptors).
fn entry_at(log: &[u8], at: u64, guid: Guid, budget: &mut u64) -> Option<Entry> {
    let h = circ(log, at, 64)?;
    if h.get(..4) != Some(b"loge") {
        return None;
    }
    let len = u64::from(le32(&h, 8));
    let tail = u64::from(le32(&h, 12));
    let seq = le64(&h, 16);
    if len == 0
        || len % SECTOR != 0
        || len > log.len() as u64
        || tail % SECTOR != 0
        || tail >= log.len() as u64
        || seq == 0
    {
        return None;
    }
    if Guid::read(&h, 32) != guid {
        return None;
    }
    if *budget < len {
        *budget = 0;
        return None;
    }
    *budget -= len;
    let whole = circ(log, at, len)?;
    if le32(&whole, 4) != crc_with_zeroed(&whole, 4) {
        return None;
    }
    Some(Entry {
        at,
        len,
        tail,
        seq,
        count: le32(&h, 24),
        flushed: le64(&h, 48),
        last: le64(&h, 56),
    })
}

/// Finds the active sequence and turns it into patches. `Ok(None)`: no entry carries the
/// LogGuid, so the log is empty (clean).
pub(crate) fn replay(src: &Src, offset: u64, len: u64, guid: Guid) -> Result<Option<Replay>> {
    let err = |at: u64, detail: String| Error::LogReplay {
        path: src.path.clone(),
        offset: at,
        detail,
    };
    if len == 0 {
        return Err(err(
            offset,
            "the header has a LogGuid but a log length of 0".into(),
        ));
    }
    if len > MAX_LOG {
        return Err(err(
            offset,
            format!("log length {len:#x} exceeds the supported {MAX_LOG:#x}"),
        ));
    }
    let log = src.read_vec(offset, len, "VHDX log")?;
    let mut entries: Vec<Entry> = Vec::new();
    // Checksumming is bounded: a damaged log full of long fake entries is refused, not searched
    // for ever.
    let mut budget = len.saturating_mul(16).max(64 << 20);
    let mut p = 0;
    while p < len {
        if let Some(e) = entry_at(&log, p, guid, &mut budget) {
            entries.push(e);
        }
        if budget == 0 {
            return Err(err(
                offset,
                "the log holds too many overlapping entry candidates to search".into(),
            ));
        }
        p += SECTOR;
    }
    if entries.is_empty() {
        return Ok(None);
    }
    // Heads by descending sequence number; the first whose sequence is complete is active.
    let mut heads: Vec<usize> = (0..entries.len()).collect();
    heads.sort_by(|&a, &b| entries[b].seq.cmp(&entries[a].seq));
    let index: std::collections::HashMap<u64, Entry> = entries.iter().map(|e| (e.at, *e)).collect();
    let by_at = |at: u64| index.get(&at).copied();
    let mut steps = 0u64;
    let mut active: Option<Vec<Entry>> = None;
    for &h in &heads {
        let head = entries[h];
        let mut seq_list = Vec::new();
        let mut cur = by_at(head.tail);
        while let Some(e) = cur {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(err(offset, "too many log entries to search".into()));
            }
            if let Some(prev) = seq_list.last() {
                let prev: &Entry = prev;
                if e.seq != prev.seq.wrapping_add(1) {
                    break;
                }
            }
            seq_list.push(e);
            if e.at == head.at {
                break;
            }
            if seq_list.len() > entries.len() {
                break;
            }
            cur = by_at((e.at + e.len) % len);
        }
        if seq_list
            .last()
            .is_some_and(|e| e.at == head.at && e.seq == head.seq)
        {
            active = Some(seq_list);
            break;
        }
    }
    let Some(active) = active else {
        let best = entries[heads[0]];
        return Err(err(
            offset + best.at,
            format!(
                "{} entries carry the LogGuid but none forms a complete sequence (the newest, sequence {}, has tail {:#x})",
                entries.len(),
                best.seq,
                best.tail
            ),
        ));
    };
    let head = active
        .last()
        .copied()
        .ok_or_else(|| err(offset, "empty sequence".into()))?;
    if head.flushed > src.size() {
        return Err(err(
            offset + head.at,
            format!(
                "the file ({:#x} bytes) is shorter than the log's FlushedFileOffset {:#x}: it was truncated",
                src.size(),
                head.flushed
            ),
        ));
    }
    let mut patches = Vec::new();
    for e in &active {
        let whole = circ(&log, e.at, e.len)
            .ok_or_else(|| err(offset + e.at, "entry out of the log".into()))?;
        let eat = offset + e.at;
        let desc_area = (64 + 32 * u64::from(e.count)).next_multiple_of(SECTOR);
        if desc_area > e.len {
            return Err(err(
                eat,
                format!(
                    "{} descriptors do not fit in the entry ({:#x} bytes)",
                    e.count, e.len
                ),
            ));
        }
        let mut data_index = 0u64;
        for i in 0..u64::from(e.count) {
            let d = (64 + 32 * i) as usize;
            let sig = whole.get(d..d + 4);
            let file_offset = le64(&whole, d + 16);
            let dseq = le64(&whole, d + 24);
            if dseq != e.seq {
                return Err(err(
                    eat,
                    format!("descriptor {i} has sequence {dseq}, the entry {}", e.seq),
                ));
            }
            if !file_offset.is_multiple_of(SECTOR) {
                return Err(err(
                    eat,
                    format!("descriptor {i} targets unaligned file offset {file_offset:#x}"),
                ));
            }
            match sig {
                Some(b"zero") => {
                    let zl = le64(&whole, d + 8);
                    if !zl.is_multiple_of(SECTOR) || file_offset.checked_add(zl).is_none() {
                        return Err(err(eat, format!("zero descriptor {i} has length {zl:#x}")));
                    }
                    patches.push(Patch {
                        offset: file_offset,
                        len: zl,
                        data: None,
                    });
                }
                Some(b"desc") => {
                    let s = (desc_area + data_index * SECTOR) as usize;
                    data_index += 1;
                    let Some(sec) = whole.get(s..s + SECTOR as usize) else {
                        return Err(err(
                            eat,
                            format!("data sector of descriptor {i} lies past the entry's end"),
                        ));
                    };
                    if sec.get(..4) != Some(b"data") {
                        return Err(err(
                            eat,
                            format!("data sector of descriptor {i} lacks its \"data\" signature"),
                        ));
                    }
                    let sseq = (u64::from(le32(sec, 4)) << 32) | u64::from(le32(sec, 4092));
                    if sseq != e.seq {
                        return Err(err(
                            eat,
                            format!(
                                "data sector of descriptor {i} has sequence {sseq}, the entry {}",
                                e.seq
                            ),
                        ));
                    }
                    let mut bytes = Vec::with_capacity(SECTOR as usize);
                    bytes.extend_from_slice(whole.get(d + 8..d + 16).unwrap_or(&[0; 8])); // LeadingBytes
                    bytes.extend_from_slice(sec.get(8..4092).unwrap_or(&[]));
                    bytes.extend_from_slice(whole.get(d + 4..d + 8).unwrap_or(&[0; 4])); // TrailingBytes
                    if bytes.len() as u64 != SECTOR {
                        return Err(err(eat, format!("data sector of descriptor {i} is short")));
                    }
                    patches.push(Patch {
                        offset: file_offset,
                        len: SECTOR,
                        data: Some(bytes),
                    });
                }
                _ => {
                    return Err(err(eat, format!("descriptor {i} has an unknown signature")));
                }
            }
        }
        if desc_area + data_index * SECTOR > e.len {
            return Err(err(eat, "data sectors run past the entry".into()));
        }
    }
    let first = active.first().map_or(0, |e| e.seq);
    Ok(Some(Replay {
        patches,
        last_file_offset: head.last,
        entries: active.len(),
        first_sequence: first,
        head_sequence: head.seq,
    }))
}
