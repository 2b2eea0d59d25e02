//! The `$LogFile` restart area: was the volume shut down cleanly?
//!
//! Layout (restart page, "RSTR", one per system page, two copies at the start of `$LogFile`):
//! `0 magic[4]`, `4 usa_ofs u16`, `6 usa_count u16`, `8 chkdsk_lsn u64`,
//! `16 system_page_size u32`, `20 log_page_size u32`, `24 restart_area_offset u16`,
//! `26 minor_ver i16`, `28 major_ver i16`. The restart area at `restart_area_offset`:
//! `0 current_lsn u64`, `8 log_clients u16`, `10 client_free_list u16`,
//! `12 client_in_use_list u16`, `14 flags u16` (0x0002 = RESTART_VOLUME_IS_CLEAN), ...
//! A log that is all 0xFF bytes (as mkntfs and ntfs-3g leave it) is empty, hence clean.

use crate::record::{apply_fixups, le16, le32, le64};
use crate::Error;

/// What the restart area says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogState {
    /// The log is empty (no restart page; all 0xFF): nothing to replay.
    Empty,
    /// A restart page (version `major.minor`) says the volume was shut down cleanly.
    Clean {
        /// Restart page major version.
        major: i16,
        /// Restart page minor version.
        minor: i16,
    },
    /// Clients are still active and the clean flag is not set: Windows did not shut down
    /// cleanly, and metadata changes may be waiting for replay.
    Unclean {
        /// Restart page major version.
        major: i16,
        /// Restart page minor version.
        minor: i16,
        /// The restart area's current LSN.
        current_lsn: u64,
    },
    /// Restart page version 2.0: Windows 8+ fast startup kept metadata in its cache.
    FastStartup,
    /// The restart pages cannot be read or make no sense; treated as not clean.
    Unreadable(String),
}

impl LogState {
    /// Whether nothing is waiting for replay.
    pub fn is_clean(&self) -> bool {
        matches!(self, LogState::Empty | LogState::Clean { .. })
    }
}

/// Reads the restart state from the first bytes of `$LogFile` (at least two pages of up to
/// 64 KiB each; `head` may be shorter for tiny logs).
pub(crate) fn restart_state(head: &[u8]) -> LogState {
    if head.is_empty() {
        return LogState::Unreadable("$LogFile is empty (0 bytes)".into());
    }
    let first = head.get(..4096.min(head.len())).unwrap_or(head);
    if first.iter().all(|&b| b == 0xFF) {
        return LogState::Empty;
    }
    // The first page says the system page size; the second copy follows it.
    let page_size = match head.get(0..4) {
        Some(b"RSTR") | Some(b"CHKD") => le32(head, 16).unwrap_or(0) as usize,
        _ => 4096,
    };
    let mut best: Option<(u64, LogState)> = None;
    let mut problems = Vec::new();
    for (i, start) in [0usize, page_size].into_iter().enumerate() {
        match parse_page(head, start) {
            Ok((lsn, st)) => {
                if best.as_ref().is_none_or(|(b, _)| lsn > *b) {
                    best = Some((lsn, st));
                }
            }
            Err(e) => problems.push(format!("restart page {i}: {e}")),
        }
    }
    match best {
        Some((_, st)) => st,
        None => LogState::Unreadable(problems.join("; ")),
    }
}

fn parse_page(head: &[u8], start: usize) -> Result<(u64, LogState), String> {
    let magic = head
        .get(start..start + 4)
        .ok_or_else(|| format!("at {start:#x}: past the bytes read"))?;
    if magic == b"CHKD" {
        return Err("marked CHKD (chkdsk modified the log)".into());
    }
    if magic != b"RSTR" {
        return Err(format!(
            "magic {:?} is not RSTR",
            String::from_utf8_lossy(magic)
        ));
    }
    let page_size = le32(head, start + 16).unwrap_or(0) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!(
            "system page size {page_size} is not a power of two in 512..=65536"
        ));
    }
    let mut page = head
        .get(start..start + page_size)
        .ok_or_else(|| format!("page of {page_size} bytes at {start:#x} is past the bytes read"))?
        .to_vec();
    apply_fixups(&mut page, &|d| Error::Corrupt { detail: d }).map_err(|e| e.to_string())?;
    let ra = usize::from(le16(&page, 24).unwrap_or(0));
    let minor = le16(&page, 26).unwrap_or(0) as i16;
    let major = le16(&page, 28).unwrap_or(0) as i16;
    if ra % 8 != 0 || ra < 30 || ra + 16 > page.len() {
        return Err(format!("restart area offset {ra:#x} lies outside the page"));
    }
    let current_lsn = le64(&page, ra).unwrap_or(0);
    let in_use_list = le16(&page, ra + 12).unwrap_or(0);
    let flags = le16(&page, ra + 14).unwrap_or(0);
    let state = if major == 2 && minor == 0 {
        LogState::FastStartup
    } else if !(major == 1 && minor == 1) {
        return Err(format!(
            "restart page version {major}.{minor} is unknown (1.1 or 2.0 exist)"
        ));
    } else if in_use_list == 0xFFFF || flags & 0x0002 != 0 {
        LogState::Clean { major, minor }
    } else {
        LogState::Unclean {
            major,
            minor,
            current_lsn,
        }
    };
    Ok((current_lsn, state))
}

/// Builds a restart page (for tests): `version` major.minor, clients in use or not, the clean
/// flag or not. Fixups are applied the way they are on disk.
#[doc(hidden)]
pub fn build_restart_page(
    page_size: usize,
    major: i16,
    minor: i16,
    in_use: bool,
    clean_flag: bool,
    lsn: u64,
) -> Vec<u8> {
    let mut p = vec![0u8; page_size];
    p[0..4].copy_from_slice(b"RSTR");
    let usa_count = page_size / 512 + 1;
    p[4..6].copy_from_slice(&30u16.to_le_bytes());
    p[6..8].copy_from_slice(&(usa_count as u16).to_le_bytes());
    p[16..20].copy_from_slice(&(page_size as u32).to_le_bytes());
    p[20..24].copy_from_slice(&4096u32.to_le_bytes());
    let ra = (30 + usa_count * 2).div_ceil(8) * 8;
    p[24..26].copy_from_slice(&(ra as u16).to_le_bytes());
    p[26..28].copy_from_slice(&minor.to_le_bytes());
    p[28..30].copy_from_slice(&major.to_le_bytes());
    p[ra..ra + 8].copy_from_slice(&lsn.to_le_bytes());
    p[ra + 8..ra + 10].copy_from_slice(&1u16.to_le_bytes());
    p[ra + 10..ra + 12].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let list: u16 = if in_use { 0 } else { 0xFFFF };
    p[ra + 12..ra + 14].copy_from_slice(&list.to_le_bytes());
    let flags: u16 = if clean_flag { 2 } else { 0 };
    p[ra + 14..ra + 16].copy_from_slice(&flags.to_le_bytes());
    // Protect each 512-byte stride: move its last two bytes into the array, put the USN there.
    let usn = [0x07u8, 0x00];
    p[30..32].copy_from_slice(&usn);
    for i in 0..page_size / 512 {
        let tail = (i + 1) * 512 - 2;
        let fix = 32 + 2 * i;
        p[fix] = p[tail];
        p[fix + 1] = p[tail + 1];
        p[tail..tail + 2].copy_from_slice(&usn);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two(page: Vec<u8>) -> Vec<u8> {
        let mut v = page.clone();
        v.extend_from_slice(&page);
        v
    }

    #[test]
    fn states() {
        assert_eq!(restart_state(&vec![0xFF; 8192]), LogState::Empty);
        assert_eq!(
            restart_state(&two(build_restart_page(4096, 1, 1, false, false, 5))),
            LogState::Clean { major: 1, minor: 1 }
        );
        assert_eq!(
            restart_state(&two(build_restart_page(4096, 1, 1, true, true, 5))),
            LogState::Clean { major: 1, minor: 1 }
        );
        assert_eq!(
            restart_state(&two(build_restart_page(4096, 1, 1, true, false, 9))),
            LogState::Unclean {
                major: 1,
                minor: 1,
                current_lsn: 9
            }
        );
        assert_eq!(
            restart_state(&two(build_restart_page(4096, 2, 0, false, true, 9))),
            LogState::FastStartup
        );
        // The copy with the higher LSN wins.
        let mut v = build_restart_page(4096, 1, 1, true, false, 3);
        v.extend(build_restart_page(4096, 1, 1, false, true, 4));
        assert!(restart_state(&v).is_clean());
        let mut torn = two(build_restart_page(4096, 1, 1, true, false, 9));
        torn[1023] ^= 1;
        torn[4096 + 2047] ^= 1;
        match restart_state(&torn) {
            LogState::Unreadable(m) => assert!(m.contains("fixup"), "{m}"),
            s => panic!("{s:?}"),
        }
        assert!(matches!(
            restart_state(&[0u8; 8192]),
            LogState::Unreadable(_)
        ));
    }
}
