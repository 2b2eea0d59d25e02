//! The pure half of a save: from an open hive and a list of [`Edit`]s to the new hive's bytes
//! and what it must hold. Nothing here touches a file; a [`super::Store`] commits the result.

use std::path::PathBuf;

use guestwall_mmap::FileBytes;

use crate::bins::PAGE;
use crate::error::{Error, Result};
use crate::hive::Hive;
use crate::write::{Edit, HiveMut};

use super::verify::{Expected, SurveyJob};
use super::{join, SaveReport};

/// What [`prepare`] needs besides the hive and the edits.
#[derive(Debug, Clone, Default)]
pub struct PrepareOptions {
    /// The hive as the user named it (for messages).
    pub target: PathBuf,
    /// Prepare a dirty hive even when its logs could not be applied, or were applied only in
    /// part (see [`super::SaveOptions::allow_dirty`]).
    pub allow_dirty: bool,
    /// Only a dry run: a refusal of a dirty hive becomes a warning of the result.
    pub dry_run: bool,
    /// The highest sequence number found in the logs that belong to the hive (0 without
    /// logs): the new file's sequence number is set above it.
    pub log_sequence: u32,
}

/// A prepared save: the hive as read (after any log replay), the new hive's bytes, the
/// 4 KiB pages in which they differ, and what the new hive must hold (for the verification of
/// the file read back). Made by [`prepare`]; written by a [`super::Store`].
pub struct Prepared<'h> {
    original: &'h Hive,
    /// The new file; `None` when the edits change nothing.
    image: Option<FileBytes>,
    /// Indexes of the pages of `image` that differ from the original's bytes (or lie beyond
    /// its end), ascending.
    changed: Vec<u32>,
    expected: Expected,
    sequence: u32,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("len", &self.len())
            .field("changed_pages", &self.changed.len())
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

/// Applies `edits` to a copy of `hive` and prepares the new file (see [`Prepared`]).
///
/// Refuses, unless `allow_dirty`, a dirty hive whose logs could not be applied or were applied
/// only in part, and always a hive that cannot be read completely (every key, value, data
/// cell and free cell): writing either would make a loss permanent.
pub fn prepare<'h>(hive: &'h Hive, edits: &[Edit], opts: &PrepareOptions) -> Result<Prepared<'h>> {
    prepare_staged(hive, edits, opts, &mut |_| Ok(()))
}

/// [`prepare`], handing the new file's bytes to `stage` as soon as they are made, while the
/// original is still being surveyed, so that a store can start writing them. What a store
/// stages must be discarded unless the result is committed (an error, or edits that change
/// nothing, are found only later). `stage` is not called when the edits fail.
pub fn prepare_staged<'h>(
    hive: &'h Hive,
    edits: &[Edit],
    opts: &PrepareOptions,
    stage: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Prepared<'h>> {
    let path = &opts.target;
    let recovered = hive.recovery().applied();
    // Why writing this hive would lose changes (a dry run only says so).
    let mut refusal = None;
    if let Some(why) = &hive.recovery().partial {
        refusal = Some(format!(
            "its logs were applied only in part ({why}); writing would make that loss permanent. Pass --allow-dirty to write it anyway"
        ));
    } else if hive.primary_base_block().is_dirty() && !recovered {
        refusal = Some(format!(
            "the hive is dirty and its logs could not be applied ({}); writing would lose its last changes. Pass --allow-dirty to write it anyway",
            hive.warnings().join("; ")
        ));
    }
    let mut dry_run_note = None;
    if let Some(reason) = refusal.filter(|_| !opts.allow_dirty) {
        if !opts.dry_run {
            return Err(Error::Refused {
                path: path.clone(),
                reason,
            });
        }
        dry_run_note = Some(format!("a real write would be refused: {reason}"));
    }
    let refuse = |e: Error| Error::Refused {
        path: path.clone(),
        reason: format!(
            "it cannot be read completely, so it is not safe to write: {}",
            crate::error::error_chain(&e)
        ),
    };

    // Above the primary's numbers and above every number in the logs (`None`: no number is
    // left, which matters only if there is something to write).
    let p = hive.primary_base_block();
    let seq = p
        .primary_seq
        .max(p.secondary_seq)
        .max(hive.base_block().primary_seq)
        .max(opts.log_sequence)
        .checked_add(1);
    let survey = SurveyJob::new(hive).map_err(&refuse)?;
    // The survey of the original (every key and the pages it reads, which also proves the
    // hive reads completely) is made on a second core while the edits are made, and the new
    // file staged, on the first, which then helps with what is left of it.
    let drafted = std::thread::scope(|scope| -> Result<_> {
        let shared = &survey;
        let helper = scope.spawn(move || shared.work());
        let edited = HiveMut::new(hive).map_err(&refuse).and_then(|mut m| {
            for e in edits {
                m.apply(e)?;
            }
            Ok(m)
        });
        let drafted = match (edited, seq) {
            (Ok(m), Some(seq)) => m.finish(seq).and_then(|image| {
                let changed = changed_pages(hive.bytes(), &image);
                stage(&image)?;
                Ok(Some((image, changed, seq)))
            }),
            (Ok(_), None) => Ok(None),
            (Err(e), _) => Err(e),
        };
        survey.work();
        join(helper)?;
        Ok(drafted)
    })?;
    let baseline = survey.finish().map_err(&refuse)?;
    let drafted = drafted?;
    let expected = baseline.expect(hive, edits)?;
    if expected.unchanged {
        return Ok(Prepared {
            original: hive,
            image: None,
            changed: Vec::new(),
            expected,
            sequence: hive.base_block().secondary_seq,
            warnings: hive.warnings().to_vec(),
        });
    }
    let (image, changed, seq) = drafted.ok_or_else(|| Error::Refused {
        path: path.clone(),
        reason: "its sequence number cannot be raised any further".into(),
    })?;
    Ok(Prepared {
        original: hive,
        image: Some(image),
        changed,
        expected,
        sequence: seq,
        warnings: hive
            .warnings()
            .iter()
            .cloned()
            .chain(dry_run_note)
            .collect(),
    })
}

/// The pages of `new` that differ from `old` or lie beyond its end.
fn changed_pages(old: &[u8], new: &[u8]) -> Vec<u32> {
    let page = PAGE as usize;
    new.chunks(page)
        .enumerate()
        .filter(|(i, p)| old.get(i * page..i * page + p.len()) != Some(*p))
        .map(|(i, _)| i as u32)
        .collect()
}

impl<'h> Prepared<'h> {
    /// True when the edits change nothing: there is nothing to write.
    pub fn is_unchanged(&self) -> bool {
        self.image.is_none()
    }

    /// The hive the edits were applied to (after any log replay).
    pub fn original(&self) -> &'h Hive {
        self.original
    }

    /// The whole new file (empty when unchanged).
    pub fn bytes(&self) -> &[u8] {
        self.image.as_deref().unwrap_or_default()
    }

    /// Length of the new file.
    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// True when there is no new file (the edits change nothing).
    pub fn is_empty(&self) -> bool {
        self.image.is_none()
    }

    /// The 4 KiB pages of the new file that differ from the original's bytes or lie beyond
    /// its end, ascending: (file offset, bytes). The last page may be short. Every byte of
    /// the new file outside them equals the original's byte at the same offset.
    pub fn changed_pages(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let page = PAGE as usize;
        let bytes = self.bytes();
        self.changed.iter().filter_map(move |&i| {
            let at = i as usize * page;
            bytes
                .get(at..(at + page).min(bytes.len()))
                .map(|p| (at as u64, p))
        })
    }

    /// Number of changed pages.
    pub fn changed_page_count(&self) -> usize {
        self.changed.len()
    }

    /// The sequence number of the new file (both copies); the hive's own when unchanged.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// What reading the hive warned about, and the refusal a dry run would have met.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Checks a hive read back from where the new file was written: its bytes are exactly
    /// the prepared ones (so every byte outside the changed pages is the original's), and its
    /// content is exactly the intended one, read where it can differ (see
    /// `docs/design-regf.md`, "Verifying a save"). Returns the keys and values of the hive.
    pub fn verify(&self, written: &Hive) -> Result<(u64, u64)> {
        if written.bytes() != self.bytes() {
            return Err(Error::Verify {
                path: String::new(),
                detail: "the file read back differs from what was written".into(),
            });
        }
        self.verify_content(written)
    }

    fn verify_content(&self, written: &Hive) -> Result<(u64, u64)> {
        let page = PAGE as usize;
        let mut changed = vec![false; self.bytes().len().div_ceil(page)];
        for &i in &self.changed {
            if let Some(c) = changed.get_mut(i as usize) {
                *c = true;
            }
        }
        self.expected.verify_pages(self.original, written, &changed)
    }

    /// Checks the new file in memory (a dry run). Returns the keys and values of the hive.
    pub fn verify_in_memory(&self) -> Result<(u64, u64)> {
        let h = Hive::from_file_bytes(FileBytes::Owned(self.bytes().to_vec()))?;
        self.verify_content(&h)
    }

    /// The report of this save before a store has written it: unchanged, or the sequence,
    /// size, whether the hive was recovered from its logs, and the warnings.
    pub fn report(&self) -> SaveReport {
        if self.is_unchanged() {
            return SaveReport {
                unchanged: true,
                sequence: self.sequence,
                warnings: self.warnings.clone(),
                ..SaveReport::default()
            };
        }
        SaveReport {
            sequence: self.sequence,
            bytes: self.len(),
            recovered_from_logs: self.original.recovery().applied(),
            warnings: self.warnings.clone(),
            ..SaveReport::default()
        }
    }
}
