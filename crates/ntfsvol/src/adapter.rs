//! `ReadAt` → `Read + Seek` for the `ntfs` crate, with a read budget.
//!
//! The crate walks directory B-trees and attribute lists by following offsets found on the
//! volume, with no depth cap or cycle check of its own. Every crate call made by this crate goes
//! through a fresh adapter whose budget of read calls bounds that walk: a loop in an index runs
//! the budget out and the call fails with [`Error::Budget`](crate::Error::Budget) instead of
//! hanging.

use std::io::{self, Read, Seek, SeekFrom};

use guestwall_source::ReadAt;

/// A cursor over a [`ReadAt`] source.
pub(crate) struct Adapter<'a> {
    src: &'a dyn ReadAt,
    pos: u64,
    reads_left: u64,
    /// Set when the budget ran out (the crate's error then wraps our io error).
    pub(crate) exhausted: bool,
}

impl<'a> Adapter<'a> {
    pub(crate) fn new(src: &'a dyn ReadAt, budget: u64) -> Adapter<'a> {
        Adapter {
            src,
            pos: 0,
            reads_left: budget,
            exhausted: false,
        }
    }
}

impl Read for Adapter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reads_left == 0 {
            self.exhausted = true;
            return Err(io::Error::other("read budget exhausted"));
        }
        self.reads_left -= 1;
        let size = self.src.size();
        if self.pos >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = usize::try_from((size - self.pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let dst = buf.get_mut(..n).unwrap_or_default();
        self.src.read_exact_at(self.pos, dst)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Adapter<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.src.size().checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before 0 or past 2^64")
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seeks_and_runs_out() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut a = Adapter::new(&data, 3);
        let mut b = [0u8; 4];
        a.seek(SeekFrom::Start(98)).unwrap();
        assert_eq!(a.read(&mut b).unwrap(), 2);
        assert_eq!(&b[..2], &[98, 99]);
        assert_eq!(a.read(&mut b).unwrap(), 0);
        assert!(a.seek(SeekFrom::Current(-200)).is_err());
        a.seek(SeekFrom::Start(0)).unwrap();
        assert_eq!(a.read(&mut b).unwrap(), 4);
        assert!(a.read(&mut b).is_err());
        assert!(a.exhausted);
    }
}
