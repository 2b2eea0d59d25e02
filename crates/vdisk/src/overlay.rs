//! A byte source with some ranges replaced in memory (the replayed VHDX log).

use std::io;
use std::sync::Arc;

use guestwall_source::{out_of_range, ReadAt};

/// One replaced range: bytes, or zeros when `data` is `None`.
#[derive(Debug, Clone)]
pub(crate) struct Patch {
    pub offset: u64,
    pub len: u64,
    pub data: Option<Vec<u8>>,
}

/// `base` with `patches` applied in order (later patches win), and a size that may exceed the
/// base's (bytes past the base's end read as zeros unless patched).
pub(crate) struct Overlay {
    base: Arc<dyn ReadAt>,
    size: u64,
    patches: Vec<Patch>,
    lo: u64,
    hi: u64,
}

impl Overlay {
    pub fn new(base: Arc<dyn ReadAt>, size: u64, patches: Vec<Patch>) -> Overlay {
        let lo = patches.iter().map(|p| p.offset).min().unwrap_or(0);
        let hi = patches
            .iter()
            .map(|p| p.offset.saturating_add(p.len))
            .max()
            .unwrap_or(0);
        Overlay {
            base,
            size,
            patches,
            lo,
            hi,
        }
    }
}

impl ReadAt for Overlay {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let len = buf.len() as u64;
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| out_of_range(offset, buf.len(), self.size))?;
        let base_size = self.base.size();
        // From the base, as far as it goes; zeros after.
        let from_base = base_size.saturating_sub(offset).min(len) as usize;
        if let Some(head) = buf.get_mut(..from_base) {
            if !head.is_empty() {
                self.base.read_exact_at(offset, head)?;
            }
        }
        if let Some(tail) = buf.get_mut(from_base..) {
            tail.fill(0);
        }
        if end <= self.lo || offset >= self.hi {
            return Ok(());
        }
        for p in &self.patches {
            let p_end = p.offset.saturating_add(p.len);
            let s = p.offset.max(offset);
            let e = p_end.min(end);
            if s >= e {
                continue;
            }
            let (bs, be) = ((s - offset) as usize, (e - offset) as usize);
            let Some(dst) = buf.get_mut(bs..be) else {
                continue;
            };
            match &p.data {
                None => dst.fill(0),
                Some(d) => {
                    let ds = (s - p.offset) as usize;
                    if let Some(src) = d.get(ds..ds + dst.len()) {
                        dst.copy_from_slice(src);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_apply_in_order_and_extend() {
        let base: Arc<dyn ReadAt> = Arc::new(vec![1u8; 16]);
        let o = Overlay::new(
            base,
            24,
            vec![
                Patch {
                    offset: 4,
                    len: 4,
                    data: Some(vec![9; 4]),
                },
                Patch {
                    offset: 6,
                    len: 4,
                    data: None,
                },
                Patch {
                    offset: 20,
                    len: 2,
                    data: Some(vec![5, 6]),
                },
            ],
        );
        let mut b = vec![0u8; 24];
        o.read_exact_at(0, &mut b).unwrap();
        assert_eq!(
            b,
            [1, 1, 1, 1, 9, 9, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 5, 6, 0, 0]
        );
        assert!(o.read_exact_at(20, &mut [0u8; 5]).is_err());
    }
}
