//! Opening a volume, its state, path lookup, finding Windows, mapping a file.

use std::collections::{BTreeMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use guestwall_source::ReadAt;
use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{
    NtfsAttributeList, NtfsFileName, NtfsFileNamespace, NtfsIndexAllocation, NtfsIndexRoot,
    NtfsVolumeFlags,
};
use ntfs::UpcaseOrd;
use ntfs::{
    Ntfs, NtfsAttributeType, NtfsError, NtfsFile, NtfsIndexEntryFlags, NtfsIndexNodeEntries,
};

use crate::adapter::Adapter;
use crate::boot::{read_geometry, Geometry};
use crate::logfile::{restart_state, LogState};
use crate::record::{
    decode_runs, parse_attribute_list, AttrBody, NonResident, RawAttr, RawRecord,
    AT_ATTRIBUTE_LIST, AT_DATA, AT_INDEX_ALLOCATION, AT_INDEX_ROOT, AT_REPARSE_POINT,
};
use crate::view::{FileView, Run};
use crate::Error;

/// Deepest path accepted (components).
const MAX_PATH_DEPTH: usize = 64;
/// Deepest directory B-tree descended.
const MAX_INDEX_DEPTH: usize = 32;
/// Index entries visited in one lookup or listing.
const MAX_INDEX_ENTRIES: u64 = 1 << 20;
/// Read calls the `ntfs` crate may make in one operation.
const READ_BUDGET: u64 = 1 << 16;
/// Extension records followed from one attribute list.
const MAX_LIST_RECORDS: usize = 4096;
/// Largest attribute list read (a real one is a few KiB; 256 KiB is the format's limit).
const MAX_ATTRIBUTE_LIST: u64 = 256 * 1024;
/// Root-level directories probed for `System32\config`.
const MAX_ROOT_DIRS: usize = 65536;

/// The record numbers of the files NTFS keeps at fixed places.
const REC_MFT: u64 = 0;
const REC_LOGFILE: u64 = 2;
const REC_VOLUME: u64 = 3;
const REC_ROOT: u64 = 5;
const REC_UPCASE: u64 = 10;

/// Hibernation evidence: `hiberfil.sys` in the root and what it starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hibernation {
    /// The name as stored (`hiberfil.sys`, any case).
    pub name: String,
    /// Its first four bytes as text (`hibr`, `HIBR`, `wake`, `WAKE`).
    pub signature: String,
}

/// What the volume says about how Windows left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeState {
    /// `$Volume`'s VOLUME_IS_DIRTY flag (set while mounted, or to ask for chkdsk).
    pub dirty: bool,
    /// The `$LogFile` restart area.
    pub log: LogState,
    /// `hiberfil.sys` starting with a hibernation signature.
    pub hibernation: Option<Hibernation>,
    /// NTFS version from `$Volume` (major, minor).
    pub version: (u8, u8),
}

impl VolumeState {
    /// Whether Windows left the volume cleanly: not dirty, nothing in the log to replay, not
    /// hibernated. Writes must be refused otherwise.
    pub fn is_clean(&self) -> bool {
        !self.dirty && self.log.is_clean() && self.hibernation.is_none()
    }

    /// Why the volume is not clean, one human-readable sentence each (empty when clean).
    pub fn reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.dirty {
            out.push("the volume is marked dirty ($Volume VOLUME_IS_DIRTY): Windows did not shut down cleanly, or chkdsk is scheduled".to_string());
        }
        match &self.log {
            LogState::Empty | LogState::Clean { .. } => {}
            LogState::Unclean { major, minor, current_lsn } => out.push(format!(
                "$LogFile is not clean (restart area version {major}.{minor}, LSN {current_lsn:#x}: clients active without RESTART_VOLUME_IS_CLEAN): Windows did not shut down cleanly and metadata changes may be waiting for replay"
            )),
            LogState::FastStartup => out.push(
                "Windows kept metadata in its cache (fast startup): $LogFile restart page version 2.0; what is on disk may be older than what Windows will see when it resumes".to_string(),
            ),
            LogState::Unreadable(why) => out.push(format!(
                "$LogFile restart area cannot be read ({why}); the volume may not be clean"
            )),
        }
        if let Some(h) = &self.hibernation {
            out.push(format!(
                "Windows is hibernated: {} starts with {:?}; the hibernated kernel will resume with its own cached copy of the hives",
                h.name, h.signature
            ));
        }
        out
    }
}

/// One of the hive files looked for in `System32\config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HiveFile {
    /// `SYSTEM`.
    System,
    /// `SYSTEM.LOG1`.
    SystemLog1,
    /// `SYSTEM.LOG2`.
    SystemLog2,
    /// `SOFTWARE`.
    Software,
    /// `SOFTWARE.LOG1`.
    SoftwareLog1,
    /// `SOFTWARE.LOG2`.
    SoftwareLog2,
}

impl HiveFile {
    /// All of them, in this order.
    pub const ALL: [HiveFile; 6] = [
        HiveFile::System,
        HiveFile::SystemLog1,
        HiveFile::SystemLog2,
        HiveFile::Software,
        HiveFile::SoftwareLog1,
        HiveFile::SoftwareLog2,
    ];

    /// The canonical file name.
    pub fn name(self) -> &'static str {
        match self {
            HiveFile::System => "SYSTEM",
            HiveFile::SystemLog1 => "SYSTEM.LOG1",
            HiveFile::SystemLog2 => "SYSTEM.LOG2",
            HiveFile::Software => "SOFTWARE",
            HiveFile::SoftwareLog1 => "SOFTWARE.LOG1",
            HiveFile::SoftwareLog2 => "SOFTWARE.LOG2",
        }
    }
}

/// A Windows installation: a root-level directory with `System32\config\SYSTEM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsInstall {
    /// The directory as stored on the volume (`Windows`, `WINDOWS`, ...).
    pub dir: String,
    /// The config directory's path as stored, `/`-separated (`Windows/System32/config`).
    pub config: String,
    /// The hive files found, with their names as stored.
    pub files: BTreeMap<HiveFile, String>,
}

impl WindowsInstall {
    /// Whether a hive file exists.
    pub fn has(&self, f: HiveFile) -> bool {
        self.files.contains_key(&f)
    }

    /// The path of a hive file as stored (`Windows/System32/config/SYSTEM`), for [`Volume::file`].
    pub fn path_of(&self, f: HiveFile) -> Option<String> {
        self.files.get(&f).map(|n| format!("{}/{n}", self.config))
    }
}

/// What a directory lookup found.
#[derive(Debug, Clone)]
struct Found {
    record: u64,
    sequence: u16,
    name: String,
    is_dir: bool,
}

/// An open NTFS volume.
pub struct Volume<R> {
    src: Arc<R>,
    geo: Geometry,
    ntfs: Ntfs,
    mft: FileView<R>,
    state: VolumeState,
}

impl<R> std::fmt::Debug for Volume<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("geometry", &self.geo)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// An error inside a guarded call: the crate's or ours.
enum Inner {
    Ntfs(NtfsError),
    Ours(Error),
}

impl From<NtfsError> for Inner {
    fn from(e: NtfsError) -> Inner {
        Inner::Ntfs(e)
    }
}

impl From<Error> for Inner {
    fn from(e: Error) -> Inner {
        Inner::Ours(e)
    }
}

/// Runs a call into the `ntfs` crate with a fresh budgeted adapter. Its errors get `context`;
/// a budget run out becomes [`Error::Budget`]. A panic inside the crate (on damage our own
/// checks did not catch) is caught and reported as [`Error::CratePanic`]: the crate indexes
/// record bytes with unchecked slices in places, and this is the last line of defence, not
/// the first (see docs/design-disk.md).
fn guarded<T>(
    src: &dyn ReadAt,
    context: &dyn Fn() -> String,
    f: impl FnOnce(&mut Adapter<'_>) -> Result<T, Inner>,
) -> Result<T, Error> {
    let mut fs = Adapter::new(src, READ_BUDGET);
    let r = catch_unwind(AssertUnwindSafe(|| f(&mut fs)));
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(Inner::Ours(e))) => Err(e),
        Ok(Err(Inner::Ntfs(e))) => {
            if fs.exhausted {
                Err(Error::Budget {
                    context: context(),
                    limit: READ_BUDGET,
                    what: "reads",
                })
            } else if let NtfsError::Io(io) = e {
                Err(Error::Corrupt {
                    detail: format!("{}: {io}", context()),
                })
            } else {
                Err(Error::Ntfs {
                    context: context(),
                    source: e,
                })
            }
        }
        Err(p) => Err(Error::CratePanic {
            context: context(),
            message: panic_message(p.as_ref()),
        }),
    }
}

/// Bytes covered by a run list (whose ends are checked to fit in a u64 by [`build_runs`]).
fn covered_bytes(runs: &[Run]) -> u64 {
    runs.last().map_or(0, |r| r.file_offset + r.len)
}

/// Builds a checked run list from decoded extents: contiguous VCNs from 0, LCNs inside the
/// volume, no two real runs sharing a cluster.
fn build_runs(extents: &[(u64, Option<u64>, u64)], geo: &Geometry) -> Result<Vec<Run>, String> {
    let cs = u64::from(geo.cluster_size);
    let mut runs = Vec::with_capacity(extents.len());
    let mut next_vcn = 0u64;
    let mut real: Vec<(u64, u64)> = Vec::new();
    for &(vcn, lcn, len) in extents {
        if vcn != next_vcn {
            return Err(format!(
                "VCN {vcn} follows VCN {next_vcn}: extents leave a gap or overlap"
            ));
        }
        let bytes = len
            .checked_mul(cs)
            .ok_or_else(|| format!("run at VCN {vcn} of {len} clusters overflows"))?;
        let volume_offset = match lcn {
            None => None,
            Some(l) => {
                let end = l.checked_add(len).filter(|&e| e <= geo.total_clusters).ok_or_else(|| {
                    format!(
                        "run at VCN {vcn} (clusters {l}+{len}) lies past the end of the volume ({} clusters)",
                        geo.total_clusters
                    )
                })?;
                real.push((l, end));
                Some(l * cs)
            }
        };
        next_vcn = vcn
            .checked_add(len)
            .filter(|v| v.checked_mul(cs).is_some())
            .ok_or_else(|| format!("run at VCN {vcn} of {len} clusters ends past 2^64 bytes"))?;
        runs.push(Run {
            file_offset: vcn * cs,
            volume_offset,
            len: bytes,
        });
    }
    real.sort_unstable();
    for w in real.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(format!(
                "runs overlap: clusters {}..{} and {}..{} (a looping or cross-linked run list)",
                w[0].0, w[0].1, w[1].0, w[1].1
            ));
        }
    }
    Ok(runs)
}

impl<R: ReadAt> Volume<R> {
    /// Opens the NTFS volume covering `source`: checks the boot sector (BitLocker, not NTFS,
    /// out-of-range geometry), reads and checks the MFT's own record, lets the `ntfs` crate
    /// read `$UpCase`, then reads the volume state (`$Volume`, `$LogFile`, `hiberfil.sys`).
    pub fn open(source: R) -> Result<Volume<R>, Error> {
        let src = Arc::new(source);
        let geo = read_geometry(&*src)?;
        let rs = u64::from(geo.file_record_size);
        let mft_offset = geo.mft_lcn * u64::from(geo.cluster_size);
        let mut buf = vec![0u8; geo.file_record_size as usize];
        src.read_exact_at(mft_offset, &mut buf)
            .map_err(|e| Error::Io {
                offset: mft_offset,
                len: buf.len(),
                source: e,
            })?;
        let rec0 = RawRecord::parse(REC_MFT, mft_offset, buf)?;
        let bad0 = |detail: String| Error::Record {
            record: REC_MFT,
            offset: mft_offset,
            detail,
        };
        if !rec0.in_use() {
            return Err(bad0("the MFT's own record is not marked in use".into()));
        }
        let data = rec0
            .attrs
            .iter()
            .find(|a| a.ty == AT_DATA && a.name.is_empty())
            .ok_or_else(|| bad0("the MFT has no $DATA attribute".into()))?;
        let AttrBody::NonResident(nr) = &data.body else {
            return Err(bad0("the MFT's $DATA is resident".into()));
        };
        if nr.lowest_vcn != 0 {
            return Err(bad0(format!(
                "the MFT's $DATA starts at VCN {}",
                nr.lowest_vcn
            )));
        }
        let runs_bytes = rec0.runs_bytes(data).unwrap_or_default();
        let extent = decode_runs(runs_bytes, nr.lowest_vcn, nr.highest_vcn)
            .map_err(|d| bad0(format!("$DATA mapping pairs: {d}")))?;
        let runs = build_runs(&extent, &geo).map_err(|d| bad0(format!("$DATA runs: {d}")))?;
        if runs.iter().any(|r| r.volume_offset.is_none()) {
            return Err(bad0("the MFT's $DATA has a hole".into()));
        }
        // The `ntfs` crate reads MFT records through the MFT's first extent only (record 0's
        // own $DATA): records past it are out of reach, for it and for us.
        let covered = covered_bytes(&runs);
        if covered < rs * 16 {
            return Err(bad0(format!(
                "$DATA covers {covered} bytes, fewer than the 16 system records"
            )));
        }
        let mft_size = nr.data_size.min(covered);
        let mft = FileView {
            src: Arc::clone(&src),
            path: "$MFT".into(),
            record: REC_MFT,
            data_size: mft_size,
            initialized_size: nr.initialized_size.min(mft_size),
            allocated_size: nr.allocated_size,
            resident: None,
            flags: data.flags,
            reparse_point: false,
            attribute_list: false,
            runs,
        };
        if mft.flags != 0 {
            return Err(bad0(format!(
                "the MFT's $DATA has flags {:#06x}",
                mft.flags
            )));
        }
        let ntfs = guarded(&*src, &|| "reading the boot sector".into(), |fs| {
            Ok(Ntfs::new(fs)?)
        })?;
        let mut vol = Volume {
            src,
            geo,
            ntfs,
            mft,
            state: VolumeState {
                dirty: false,
                log: LogState::Empty,
                hibernation: None,
                version: (0, 0),
            },
        };
        let upcase = vol.load(REC_UPCASE)?;
        vol.check_for_crate(&upcase)?;
        let Volume { src, ntfs, .. } = &mut vol;
        guarded(&**src, &|| "reading $UpCase".into(), |fs| {
            Ok(ntfs.read_upcase_table(fs)?)
        })?;
        vol.state = vol.read_state()?;
        Ok(vol)
    }

    /// The boot sector geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// How Windows left the volume.
    pub fn state(&self) -> &VolumeState {
        &self.state
    }

    /// The volume source.
    pub fn source(&self) -> &Arc<R> {
        &self.src
    }

    /// Number of MFT records reachable.
    pub fn mft_records(&self) -> u64 {
        self.mft.data_size / u64::from(self.geo.file_record_size)
    }

    /// The volume offset of MFT record `n`'s first byte, if the MFT reaches it.
    pub fn record_offset(&self, n: u64) -> Option<u64> {
        let rs = u64::from(self.geo.file_record_size);
        let at = n.checked_mul(rs)?;
        (at.checked_add(rs)? <= self.mft.data_size).then(|| self.volume_offset_of_mft(at))
    }

    /// Reads and checks MFT record `n` (ours, before the crate sees it); it must be in use.
    fn load(&self, n: u64) -> Result<RawRecord, Error> {
        let rs = u64::from(self.geo.file_record_size);
        let Some(at) = n
            .checked_mul(rs)
            .filter(|&o| o.checked_add(rs).is_some_and(|e| e <= self.mft.data_size))
        else {
            return Err(Error::Record {
                record: n,
                offset: 0,
                detail: format!(
                    "lies past the end of the MFT ({} records reachable)",
                    self.mft_records()
                ),
            });
        };
        let offset = self.volume_offset_of_mft(at);
        let mut buf = vec![0u8; rs as usize];
        self.mft
            .read_exact_at(at, &mut buf)
            .map_err(|e| Error::Io {
                offset,
                len: buf.len(),
                source: e,
            })?;
        let rec = RawRecord::parse(n, offset, buf)?;
        if !rec.in_use() {
            return Err(Error::Record {
                record: n,
                offset,
                detail: "is not in use (a deleted file, or a stale index entry)".into(),
            });
        }
        Ok(rec)
    }

    fn volume_offset_of_mft(&self, at: u64) -> u64 {
        self.mft
            .runs
            .iter()
            .find(|r| r.file_offset <= at && at < r.file_offset + r.len)
            .and_then(|r| r.volume_offset.map(|v| v + (at - r.file_offset)))
            .unwrap_or(0)
    }

    /// The `$ATTRIBUTE_LIST` entries of a base record, if it has one.
    fn attribute_list(
        &self,
        rec: &RawRecord,
    ) -> Result<Option<Vec<crate::record::ListEntry>>, Error> {
        let mut lists = rec.attrs.iter().filter(|a| a.ty == AT_ATTRIBUTE_LIST);
        let Some(attr) = lists.next() else {
            return Ok(None);
        };
        let bad = |detail: String| Error::Record {
            record: rec.number,
            offset: rec.offset,
            detail: format!("$ATTRIBUTE_LIST: {detail}"),
        };
        if lists.next().is_some() {
            return Err(bad("the record has two".into()));
        }
        let value = match &attr.body {
            AttrBody::Resident { .. } => rec.resident_value(attr).unwrap_or_default().to_vec(),
            AttrBody::NonResident(nr) => {
                if nr.data_size > MAX_ATTRIBUTE_LIST || nr.lowest_vcn != 0 {
                    return Err(bad(format!(
                        "{} bytes from VCN {} (at most {MAX_ATTRIBUTE_LIST} from VCN 0)",
                        nr.data_size, nr.lowest_vcn
                    )));
                }
                let ext = decode_runs(
                    rec.runs_bytes(attr).unwrap_or_default(),
                    nr.lowest_vcn,
                    nr.highest_vcn,
                )
                .map_err(&bad)?;
                let runs = build_runs(&ext, &self.geo).map_err(&bad)?;
                let view = self
                    .make_view("$ATTRIBUTE_LIST", rec.number, nr, 0, runs)
                    .map_err(|e| bad(e.to_string()))?;
                let mut v = vec![0u8; nr.data_size as usize];
                view.read_exact_at(0, &mut v)
                    .map_err(|e| bad(e.to_string()))?;
                v
            }
        };
        parse_attribute_list(&value).map(Some).map_err(bad)
    }

    /// Loads the extension records an attribute list names, checking that each belongs to
    /// `rec`.
    fn extension_records(
        &self,
        rec: &RawRecord,
        entries: &[crate::record::ListEntry],
    ) -> Result<Vec<RawRecord>, Error> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for e in entries {
            if e.record == rec.number || !seen.insert(e.record) {
                continue;
            }
            if out.len() >= MAX_LIST_RECORDS {
                return Err(Error::Budget {
                    context: format!("following the attribute list of MFT record {}", rec.number),
                    limit: MAX_LIST_RECORDS as u64,
                    what: "extension records",
                });
            }
            let ext = self.load(e.record)?;
            if ext.base != rec.number {
                return Err(Error::Record {
                    record: ext.number,
                    offset: ext.offset,
                    detail: format!(
                        "is named by the attribute list of record {} but belongs to record {}",
                        rec.number, ext.base
                    ),
                });
            }
            if e.sequence != 0 && e.sequence != ext.sequence {
                return Err(Error::Record {
                    record: ext.number,
                    offset: ext.offset,
                    detail: format!(
                        "sequence number {} does not match {} in the attribute list of record {} (stale entry)",
                        ext.sequence, e.sequence, rec.number
                    ),
                });
            }
            out.push(ext);
        }
        Ok(out)
    }

    /// Checks what the `ntfs` crate will read of this record beyond our own parse: the
    /// records its attribute list names, and a directory's index root.
    fn check_for_crate(&self, rec: &RawRecord) -> Result<(), Error> {
        if rec.base != 0 {
            return Err(Error::Record {
                record: rec.number,
                offset: rec.offset,
                detail: format!("is an extension record of record {}, not a file", rec.base),
            });
        }
        let mut all = vec![];
        if let Some(entries) = self.attribute_list(rec)? {
            all = self.extension_records(rec, &entries)?;
        }
        for r in std::iter::once(rec).chain(all.iter()) {
            for a in r.attrs.iter().filter(|a| a.ty == AT_INDEX_ROOT) {
                check_index_root(r, a)?;
            }
        }
        Ok(())
    }

    fn make_view(
        &self,
        path: &str,
        record: u64,
        head: &NonResident,
        flags: u16,
        runs: Vec<Run>,
    ) -> Result<FileView<R>, String> {
        let (data_size, initialized_size, allocated_size) =
            (head.data_size, head.initialized_size, head.allocated_size);
        let covered = covered_bytes(&runs);
        if data_size > covered {
            return Err(format!(
                "DataSize {data_size} exceeds the {covered} bytes its runs cover"
            ));
        }
        if initialized_size > data_size {
            return Err(format!(
                "InitializedSize {initialized_size} exceeds DataSize {data_size}"
            ));
        }
        Ok(FileView {
            src: Arc::clone(&self.src),
            path: path.to_string(),
            record,
            data_size,
            initialized_size,
            allocated_size,
            resident: None,
            flags,
            reparse_point: false,
            attribute_list: false,
            runs,
        })
    }

    fn read_state(&self) -> Result<VolumeState, Error> {
        let vrec = self.load(REC_VOLUME)?;
        self.check_for_crate(&vrec)?;
        let (flags, version) = guarded(&*self.src, &|| "reading $Volume".into(), |fs| {
            let info = self.ntfs.volume_info(fs)?;
            Ok((info.flags(), (info.major_version(), info.minor_version())))
        })?;
        // A damaged $LogFile does not stop reading: the state says it cannot be trusted.
        let log = match self.log_head() {
            Ok(head) => restart_state(&head),
            Err(e) => LogState::Unreadable(format!("reading $LogFile: {e}")),
        };
        let hibernation = match self.find_in_dir(REC_ROOT, "hiberfil.sys", "hiberfil.sys")? {
            Some(f) if !f.is_dir => {
                let view = self.file_by_record(f.record, &f.name)?;
                let mut sig = [0u8; 4];
                if view.data_size >= 4 && view.read_exact_at(0, &mut sig).is_ok() {
                    let lower = sig.to_ascii_lowercase();
                    (&lower == b"hibr" || &lower == b"wake").then(|| Hibernation {
                        name: f.name.clone(),
                        signature: String::from_utf8_lossy(&sig).into_owned(),
                    })
                } else {
                    None
                }
            }
            _ => None,
        };
        Ok(VolumeState {
            dirty: flags.contains(NtfsVolumeFlags::IS_DIRTY),
            log,
            hibernation,
            version,
        })
    }

    /// The first two system pages of `$LogFile` (8 KiB, or two larger pages).
    fn log_head(&self) -> Result<Vec<u8>, Error> {
        let rec = self.load(REC_LOGFILE)?;
        let view = self.view_of(&rec, "$LogFile")?;
        let mut head = vec![0u8; view.data_size.min(8192) as usize];
        view.read_exact_at(0, &mut head)?;
        let page = head
            .get(16..20)
            .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .filter(|&p| {
                head.starts_with(b"RSTR") && p > 4096 && p <= 65536 && p.is_power_of_two()
            });
        if let Some(p) = page {
            head = vec![0u8; view.data_size.min(2 * p) as usize];
            view.read_exact_at(0, &mut head)?;
        }
        Ok(head)
    }

    /// Splits a path into components (`/` or `\`), refusing empty and too deep paths.
    fn components(path: &str) -> Result<Vec<&str>, Error> {
        let parts: Vec<&str> = path.split(['/', '\\']).filter(|c| !c.is_empty()).collect();
        if parts.len() > MAX_PATH_DEPTH {
            return Err(Error::BadPath {
                path: path.to_string(),
                detail: format!("{} components (at most {MAX_PATH_DEPTH})", parts.len()),
            });
        }
        Ok(parts)
    }

    /// Resolves a path to its record, case-insensitively. Returns the record, the path as
    /// stored, and whether it is a directory.
    fn resolve(&self, path: &str) -> Result<(u64, String, bool), Error> {
        let parts = Self::components(path)?;
        let mut cur = REC_ROOT;
        let mut stored = Vec::new();
        let mut is_dir = true;
        for (i, part) in parts.iter().enumerate() {
            if !is_dir {
                return Err(Error::WrongKind {
                    path: stored.join("/"),
                    detail: "is a file, not a directory".into(),
                });
            }
            let so_far = || {
                let mut v: Vec<&str> = stored.iter().map(String::as_str).collect();
                v.push(part);
                v.join("/")
            };
            let found = self
                .find_in_dir(cur, part, &so_far())?
                .ok_or_else(|| Error::NotFound {
                    path: path.to_string(),
                    component: parts[..=i].join("/"),
                })?;
            cur = found.record;
            is_dir = found.is_dir;
            stored.push(found.name);
        }
        Ok((cur, stored.join("/"), is_dir))
    }

    /// Looks `name` up in directory record `dir` through its `$I30` B-tree: our own bounded
    /// descent (depth cap, visited nodes, entry count) over the `ntfs` crate's index records
    /// and entries, comparing names with the crate's `$UpCase` order.
    fn find_in_dir(&self, dir: u64, name: &str, ctx: &str) -> Result<Option<Found>, Error> {
        let rec = self.load(dir)?;
        if !rec.is_directory() {
            return Err(Error::WrongKind {
                path: ctx.to_string(),
                detail: format!("the parent (MFT record {dir}) is not a directory"),
            });
        }
        self.check_for_crate(&rec)?;
        let context = || format!("looking up {ctx:?} in the index of MFT record {dir}");
        let found = guarded(&*self.src, &context, |fs| {
            let file = self.ntfs.file(fs, dir)?;
            let (root_item, alloc_item) = index_items(&file, fs)?;
            let root_attr = root_item.to_attribute()?;
            let root = root_attr.resident_structured_value::<NtfsIndexRoot>()?;
            let record_size = root.index_record_size();
            let alloc = match &alloc_item {
                Some(item) => {
                    let attr = item.to_attribute()?;
                    Some(attr.structured_value::<_, NtfsIndexAllocation>(fs)?)
                }
                None => None,
            };
            let mut count = 0u64;
            let mut node =
                node_entries(root.entries::<NtfsFileNameIndex>()?, &mut count, &context)?;
            let mut visited = HashSet::new();
            for _depth in 0..MAX_INDEX_DEPTH {
                let mut descend = None;
                let mut ended = false;
                for e in &node {
                    if e.last {
                        descend = e.subnode;
                        ended = true;
                        break;
                    }
                    let Some(key) = &e.key else { continue };
                    match name.upcase_cmp(&self.ntfs, &key.name()) {
                        std::cmp::Ordering::Equal => {
                            return Ok(Some(Found {
                                record: e.record,
                                sequence: e.sequence,
                                name: key.name().to_string_lossy(),
                                is_dir: key.is_directory(),
                            }));
                        }
                        std::cmp::Ordering::Less => {
                            descend = e.subnode;
                            ended = true;
                            break;
                        }
                        std::cmp::Ordering::Greater => {}
                    }
                }
                if !ended {
                    return Err(Error::Corrupt {
                        detail: format!("{}: an index node has no last entry", context()),
                    }
                    .into());
                }
                let Some(vcn) = descend else {
                    return Ok(None);
                };
                if !visited.insert(vcn) {
                    return Err(Error::Corrupt {
                        detail: format!(
                            "{}: index node VCN {vcn} points back into itself (a loop)",
                            context()
                        ),
                    }
                    .into());
                }
                let alloc = alloc.as_ref().ok_or_else(|| Error::Corrupt {
                    detail: format!(
                        "{}: an entry points to a subnode but there is no $INDEX_ALLOCATION",
                        context()
                    ),
                })?;
                let irec = alloc.record_from_vcn(fs, record_size, ntfs::types::Vcn::from(vcn))?;
                node = node_entries(irec.entries::<NtfsFileNameIndex>()?, &mut count, &context)?;
            }
            Err(Error::Budget {
                context: context(),
                limit: MAX_INDEX_DEPTH as u64,
                what: "index levels",
            }
            .into())
        })?;
        if let Some(f) = &found {
            self.check_reference(f, ctx)?;
        }
        Ok(found)
    }

    /// Checks that an index entry's file reference matches the record it names.
    fn check_reference(&self, f: &Found, ctx: &str) -> Result<(), Error> {
        let rec = self.load(f.record)?;
        if f.sequence != 0 && rec.sequence != f.sequence {
            return Err(Error::Record {
                record: rec.number,
                offset: rec.offset,
                detail: format!(
                    "{ctx}: the directory entry expects sequence number {}, the record has {} (a stale entry)",
                    f.sequence, rec.sequence
                ),
            });
        }
        if rec.is_directory() != f.is_dir {
            return Err(Error::Record {
                record: rec.number,
                offset: rec.offset,
                detail: format!("{ctx}: the directory entry and the record disagree on whether it is a directory"),
            });
        }
        Ok(())
    }

    /// Every entry of directory record `dir` (Win32/POSIX names; DOS aliases skipped), by a
    /// bounded in-order walk of its B-tree.
    fn list_dir(&self, dir: u64, ctx: &str) -> Result<Vec<Found>, Error> {
        let rec = self.load(dir)?;
        if !rec.is_directory() {
            return Err(Error::WrongKind {
                path: ctx.to_string(),
                detail: "is not a directory".into(),
            });
        }
        self.check_for_crate(&rec)?;
        let context = || format!("listing {ctx:?} (MFT record {dir})");
        guarded(&*self.src, &context, |fs| {
            let file = self.ntfs.file(fs, dir)?;
            let (root_item, alloc_item) = index_items(&file, fs)?;
            let root_attr = root_item.to_attribute()?;
            let root = root_attr.resident_structured_value::<NtfsIndexRoot>()?;
            let record_size = root.index_record_size();
            let alloc = match &alloc_item {
                Some(item) => {
                    let attr = item.to_attribute()?;
                    Some(attr.structured_value::<_, NtfsIndexAllocation>(fs)?)
                }
                None => None,
            };
            let mut count = 0u64;
            let mut out = Vec::new();
            let mut visited = HashSet::new();
            // Explicit stack of (node entries, next index) instead of recursion.
            let first = node_entries(root.entries::<NtfsFileNameIndex>()?, &mut count, &context)?;
            let mut stack = vec![(first, 0usize)];
            while let Some((node, i)) = stack.last_mut() {
                let Some(e) = node.get(*i) else {
                    stack.pop();
                    continue;
                };
                *i += 1;
                let e = e.clone();
                if let Some(key) = &e.key {
                    if key.namespace() != NtfsFileNamespace::Dos {
                        out.push(Found {
                            record: e.record,
                            sequence: e.sequence,
                            name: key.name().to_string_lossy(),
                            is_dir: key.is_directory(),
                        });
                    }
                }
                if let Some(vcn) = e.subnode {
                    // Subnode entries sort before this entry; order does not matter here.
                    if stack.len() >= MAX_INDEX_DEPTH {
                        return Err(Error::Budget {
                            context: context(),
                            limit: MAX_INDEX_DEPTH as u64,
                            what: "index levels",
                        }
                        .into());
                    }
                    if !visited.insert(vcn) {
                        return Err(Error::Corrupt {
                            detail: format!(
                                "{}: index node VCN {vcn} is reached twice (a loop)",
                                context()
                            ),
                        }
                        .into());
                    }
                    let alloc = alloc.as_ref().ok_or_else(|| Error::Corrupt {
                        detail: format!(
                            "{}: an entry points to a subnode but there is no $INDEX_ALLOCATION",
                            context()
                        ),
                    })?;
                    let irec =
                        alloc.record_from_vcn(fs, record_size, ntfs::types::Vcn::from(vcn))?;
                    let child =
                        node_entries(irec.entries::<NtfsFileNameIndex>()?, &mut count, &context)?;
                    stack.push((child, 0));
                }
            }
            Ok(out)
        })
    }

    /// Every root-level directory that has `System32\config\SYSTEM`, with the hive files
    /// found beside it (names matched case-insensitively, reported as stored).
    pub fn find_windows(&self) -> Result<Vec<WindowsInstall>, Error> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut dirs: Vec<Found> = self
            .list_dir(REC_ROOT, "/")?
            .into_iter()
            .filter(|f| f.is_dir && f.record != REC_ROOT && seen.insert(f.record))
            .collect();
        if dirs.len() > MAX_ROOT_DIRS {
            return Err(Error::Budget {
                context: "listing the root directory".into(),
                limit: MAX_ROOT_DIRS as u64,
                what: "directories",
            });
        }
        dirs.sort_by(|a, b| a.name.cmp(&b.name));
        for d in dirs {
            let ctx = format!("{}/System32", d.name);
            let Some(sys32) = self.find_in_dir(d.record, "System32", &ctx)? else {
                continue;
            };
            if !sys32.is_dir {
                continue;
            }
            let ctx = format!("{}/{}/config", d.name, sys32.name);
            let Some(config) = self.find_in_dir(sys32.record, "config", &ctx)? else {
                continue;
            };
            if !config.is_dir {
                continue;
            }
            let config_path = format!("{}/{}/{}", d.name, sys32.name, config.name);
            let mut files = BTreeMap::new();
            for h in HiveFile::ALL {
                let ctx = format!("{config_path}/{}", h.name());
                if let Some(f) = self.find_in_dir(config.record, h.name(), &ctx)? {
                    if !f.is_dir {
                        files.insert(h, f.name);
                    }
                }
            }
            if files.contains_key(&HiveFile::System) {
                out.push(WindowsInstall {
                    dir: d.name,
                    config: config_path,
                    files,
                });
            }
        }
        Ok(out)
    }

    /// The unnamed `$DATA` of the file at `path` (`/` or `\` separators, case-insensitive).
    pub fn file(&self, path: &str) -> Result<FileView<R>, Error> {
        let (record, stored, is_dir) = self.resolve(path)?;
        if is_dir {
            return Err(Error::WrongKind {
                path: stored,
                detail: "is a directory, not a file".into(),
            });
        }
        self.file_by_record(record, &stored)
    }

    /// The unnamed `$DATA` of MFT record `record`; `path` is used in messages.
    pub fn file_by_record(&self, record: u64, path: &str) -> Result<FileView<R>, Error> {
        let rec = self.load(record)?;
        self.check_for_crate(&rec)?;
        let view = self.view_of(&rec, path)?;
        self.cross_check(&view)?;
        Ok(view)
    }

    /// Builds the view of a base record's unnamed `$DATA` from our own parse: the base record
    /// and, through `$ATTRIBUTE_LIST`, its extension records.
    fn view_of(&self, rec: &RawRecord, path: &str) -> Result<FileView<R>, Error> {
        let bad = |detail: String| Error::Runs {
            path: path.to_string(),
            detail,
        };
        let list = self.attribute_list(rec)?;
        let exts = match &list {
            Some(entries) => self.extension_records(rec, entries)?,
            None => Vec::new(),
        };
        let reparse_point = rec.attrs.iter().any(|a| a.ty == AT_REPARSE_POINT)
            || exts
                .iter()
                .any(|r| r.attrs.iter().any(|a| a.ty == AT_REPARSE_POINT));
        // Every unnamed $DATA extent, from the base record and the extension records.
        let mut pieces: Vec<(&RawRecord, &RawAttr)> = Vec::new();
        for r in std::iter::once(rec).chain(exts.iter()) {
            for a in r
                .attrs
                .iter()
                .filter(|a| a.ty == AT_DATA && a.name.is_empty())
            {
                pieces.push((r, a));
            }
        }
        if let Some(entries) = &list {
            // Only the extents the list names (by record and instance) count.
            pieces.retain(|(r, a)| {
                let lowest = match &a.body {
                    AttrBody::NonResident(nr) => nr.lowest_vcn as u64,
                    AttrBody::Resident { .. } => 0,
                };
                entries.iter().any(|e| {
                    e.ty == AT_DATA
                        && e.name.is_empty()
                        && e.record == r.number
                        && e.instance == a.instance
                        && e.lowest_vcn == lowest
                })
            });
            let listed = entries
                .iter()
                .filter(|e| e.ty == AT_DATA && e.name.is_empty())
                .count();
            if listed != pieces.len() {
                return Err(bad(format!(
                    "the attribute list names {listed} unnamed $DATA extents, {} were found",
                    pieces.len()
                )));
            }
        }
        let Some(&(first_rec, first)) = pieces.first() else {
            return Err(Error::WrongKind {
                path: path.to_string(),
                detail: "has no unnamed $DATA attribute".into(),
            });
        };
        if let AttrBody::Resident { .. } = first.body {
            if pieces.len() != 1 {
                return Err(bad("a resident $DATA with other extents".into()));
            }
            let data = first_rec.resident_value(first).unwrap_or_default().to_vec();
            let len = data.len() as u64;
            return Ok(FileView {
                src: Arc::clone(&self.src),
                path: path.to_string(),
                record: rec.number,
                data_size: len,
                initialized_size: len,
                allocated_size: len,
                resident: Some(data),
                flags: first.flags,
                reparse_point,
                attribute_list: list.is_some(),
                runs: Vec::new(),
            });
        }
        // Non-resident: order extents by lowest VCN; the one at VCN 0 carries the sizes.
        let mut nrs = Vec::with_capacity(pieces.len());
        for (r, a) in &pieces {
            let AttrBody::NonResident(nr) = &a.body else {
                return Err(bad("a resident extent among non-resident ones".into()));
            };
            nrs.push((nr, r.runs_bytes(a).unwrap_or_default(), r.number));
        }
        nrs.sort_by_key(|(nr, _, _)| nr.lowest_vcn);
        let head = nrs[0].0;
        if head.lowest_vcn != 0 {
            return Err(bad(format!(
                "the first extent starts at VCN {}",
                head.lowest_vcn
            )));
        }
        let mut extents = Vec::new();
        for (nr, bytes, number) in &nrs {
            let e = decode_runs(bytes, nr.lowest_vcn, nr.highest_vcn)
                .map_err(|d| bad(format!("extent in MFT record {number}: {d}")))?;
            extents.extend(e);
        }
        let runs = build_runs(&extents, &self.geo).map_err(&bad)?;
        let covered = covered_bytes(&runs);
        if head.allocated_size != covered && first.flags & crate::view::ATTR_COMPRESSED == 0 {
            return Err(bad(format!(
                "AllocatedSize {} but the runs cover {covered} bytes",
                head.allocated_size
            )));
        }
        let mut view = self
            .make_view(path, rec.number, head, first.flags, runs)
            .map_err(bad)?;
        view.reparse_point = reparse_point;
        view.attribute_list = list.is_some();
        Ok(view)
    }

    /// Asks the `ntfs` crate for the same `$DATA` and checks that it agrees with our map. A
    /// disagreement is an error, never a guess.
    ///
    /// Plain files: the crate's `data_runs()` must equal our runs. Files with an attribute
    /// list: the crate's own view of such a value (`file.data()`) starts at whichever extent
    /// its attribute iteration meets first, which is not the VCN-0 extent when that one sits
    /// in the base record (the common case), so it cannot be compared whole; instead each
    /// `$DATA` extent named by the crate's parse of `$ATTRIBUTE_LIST` is opened on its own
    /// (`NtfsAttributeListEntry::to_attribute`) and its `data_runs()` compared, in VCN order.
    fn cross_check(&self, view: &FileView<R>) -> Result<(), Error> {
        let record = view.record;
        let context = || {
            format!(
                "{}: reading $DATA of MFT record {record} with the ntfs crate",
                view.path
            )
        };
        let disagree = |what: String| -> Inner {
            Error::Runs {
                path: view.path.clone(),
                detail: format!("the ntfs crate disagrees: {what}"),
            }
            .into()
        };
        let ours: Vec<_> = view.runs.iter().map(|r| (r.volume_offset, r.len)).collect();
        guarded(&*self.src, &context, |fs| {
            let file = self.ntfs.file(fs, record)?;
            if !view.attribute_list {
                let Some(item) = file.data(fs, "") else {
                    return Err(disagree("it finds no unnamed $DATA".into()));
                };
                let item = item?;
                let attr = item.to_attribute()?;
                if attr.value_length() != view.data_size {
                    return Err(disagree(format!(
                        "DataSize {} vs {}",
                        attr.value_length(),
                        view.data_size
                    )));
                }
                return match attr.value(fs)? {
                    NtfsAttributeValue::Resident(_) if view.is_resident() => Ok(()),
                    NtfsAttributeValue::NonResident(v) if !view.is_resident() => {
                        let theirs = crate_runs(&v, ours.len())?;
                        if theirs != ours {
                            return Err(disagree(format!(
                                "{} runs vs our {}",
                                theirs.len(),
                                ours.len()
                            )));
                        }
                        Ok(())
                    }
                    _ => Err(disagree("resident or not".into())),
                };
            }
            // Attribute list: every unnamed $DATA extent the crate's list parse names.
            let mut list = None;
            for attr in file.attributes_raw() {
                let attr = attr?;
                if attr.ty()? == NtfsAttributeType::AttributeList {
                    list = Some(attr.structured_value::<_, NtfsAttributeList>(fs)?);
                    break;
                }
            }
            let Some(list) = list else {
                return Err(disagree("it finds no $ATTRIBUTE_LIST".into()));
            };
            let mut extents = Vec::new();
            let mut entries = list.entries();
            let mut n = 0usize;
            while let Some(entry) = entries.next(fs) {
                let entry = entry?;
                n += 1;
                if n > MAX_LIST_RECORDS * 4 {
                    return Err(Error::Budget {
                        context: context(),
                        limit: (MAX_LIST_RECORDS * 4) as u64,
                        what: "attribute list entries",
                    }
                    .into());
                }
                if entry.ty()? != NtfsAttributeType::Data || entry.name_length() != 0 {
                    continue;
                }
                let efile = entry.to_file(&self.ntfs, fs)?;
                let eattr = entry.to_attribute(&efile)?;
                let NtfsAttributeValue::NonResident(v) = eattr.value(fs)? else {
                    return Err(disagree("an extent is not non-resident".into()));
                };
                extents.push((entry.lowest_vcn().value(), crate_runs(&v, ours.len())?));
            }
            extents.sort_by_key(|(vcn, _)| *vcn);
            let theirs: Vec<_> = extents.into_iter().flat_map(|(_, r)| r).collect();
            if theirs != ours {
                return Err(disagree(format!(
                    "{} runs over the extents vs our {}",
                    theirs.len(),
                    ours.len()
                )));
            }
            Ok(())
        })
    }
}

/// The crate's runs of one non-resident value, as (volume offset, length); stops early past
/// `cap` (the lists then differ anyway).
fn crate_runs(
    v: &ntfs::attribute_value::NtfsNonResidentAttributeValue<'_, '_>,
    cap: usize,
) -> Result<Vec<(Option<u64>, u64)>, Inner> {
    let mut out = Vec::new();
    for run in v.data_runs() {
        let run = run?;
        out.push((
            run.data_position().value().map(|p| p.get()),
            run.allocated_size(),
        ));
        if out.len() > cap {
            break;
        }
    }
    Ok(out)
}

/// The `$I30` index root and allocation items of a directory, found through the crate's
/// attribute iteration (which follows attribute lists).
fn index_items<'n, 'f>(
    file: &'f NtfsFile<'n>,
    fs: &mut Adapter<'_>,
) -> Result<
    (
        ntfs::NtfsAttributeItem<'n, 'f>,
        Option<ntfs::NtfsAttributeItem<'n, 'f>>,
    ),
    Inner,
> {
    let mut root = None;
    let mut alloc = None;
    let mut iter = file.attributes();
    let mut n = 0;
    while let Some(item) = iter.next(fs) {
        n += 1;
        if n > 4096 {
            return Err(Error::Corrupt {
                detail: format!(
                    "MFT record {}: more than 4096 attributes",
                    file.file_record_number()
                ),
            }
            .into());
        }
        let item = item?;
        let attr = item.to_attribute()?;
        let ty = attr.ty()?;
        if attr.name()?.to_string_lossy() != "$I30" {
            continue;
        }
        match ty {
            NtfsAttributeType::IndexRoot if root.is_none() => root = Some(item),
            NtfsAttributeType::IndexAllocation if alloc.is_none() => alloc = Some(item),
            _ => {}
        }
    }
    let root = root.ok_or_else(|| Error::Corrupt {
        detail: format!(
            "directory record {} has no $I30 index root",
            file.file_record_number()
        ),
    })?;
    Ok((root, alloc))
}

/// One index entry, copied out of its node.
#[derive(Debug, Clone)]
struct Entry {
    last: bool,
    key: Option<NtfsFileName>,
    subnode: Option<i64>,
    record: u64,
    sequence: u16,
}

/// Copies a node's entries out, checking each entry's length before the crate reads its
/// fields, and counting them against [`MAX_INDEX_ENTRIES`].
fn node_entries(
    iter: NtfsIndexNodeEntries<'_, NtfsFileNameIndex>,
    count: &mut u64,
    context: &dyn Fn() -> String,
) -> Result<Vec<Entry>, Inner> {
    let mut out = Vec::new();
    for e in iter {
        let e = e?;
        *count += 1;
        if *count > MAX_INDEX_ENTRIES {
            return Err(Error::Budget {
                context: context(),
                limit: MAX_INDEX_ENTRIES,
                what: "index entries",
            }
            .into());
        }
        let len = e.index_entry_length();
        let flags = e.flags();
        let has_sub = flags.contains(NtfsIndexEntryFlags::HAS_SUBNODE);
        let last = flags.contains(NtfsIndexEntryFlags::LAST_ENTRY);
        if len < 16 || len % 8 != 0 || (has_sub && len < 24) {
            return Err(Error::Corrupt {
                detail: format!(
                    "{}: index entry at {:#x} has length {len}",
                    context(),
                    e.position().value().map_or(0, |p| p.get())
                ),
            }
            .into());
        }
        let subnode = match e.subnode_vcn() {
            Some(v) => Some(v?.value()),
            None => None,
        };
        let key = if last { None } else { e.key().transpose()? };
        if !last && key.is_none() {
            return Err(Error::Corrupt {
                detail: format!(
                    "{}: an index entry that is not the last has no key",
                    context()
                ),
            }
            .into());
        }
        let fr = e.file_reference();
        out.push(Entry {
            last,
            key,
            subnode,
            record: fr.file_record_number(),
            sequence: fr.sequence_number(),
        });
        if last {
            break;
        }
    }
    Ok(out)
}

/// Checks a directory's `$INDEX_ROOT` before the crate uses it: resident, its index record
/// size a power of two in 512..=65536 (the crate allocates that much per node), its node
/// header and entries inside the value.
fn check_index_root(rec: &RawRecord, a: &RawAttr) -> Result<(), Error> {
    let bad = |detail: String| Error::Record {
        record: rec.number,
        offset: rec.offset,
        detail: format!("$INDEX_ROOT {:?}: {detail}", a.name),
    };
    let v = rec
        .resident_value(a)
        .ok_or_else(|| bad("is not resident".into()))?;
    if v.len() < 32 {
        return Err(bad(format!(
            "value of {} bytes is shorter than its 32-byte header",
            v.len()
        )));
    }
    let le = |o: usize| u32::from_le_bytes([v[o], v[o + 1], v[o + 2], v[o + 3]]) as usize;
    let irs = le(8);
    if !(512..=65536).contains(&irs) || !irs.is_power_of_two() {
        return Err(bad(format!(
            "index record size {irs} is not a power of two in 512..=65536"
        )));
    }
    let (eo, used, alloc) = (le(16), le(20), le(24));
    if eo < 16 || eo % 8 != 0 || used < eo || used > alloc || 16 + alloc > v.len() {
        return Err(bad(format!(
            "node header (entries at {eo}, used {used}, allocated {alloc}) does not fit the {}-byte value",
            v.len()
        )));
    }
    // Walk the entries: each at least 16 bytes, 8-aligned, inside, the last one flagged.
    let mut off = 16 + eo;
    let end = 16 + used;
    loop {
        let Some(h) = v.get(off..off + 16).filter(|_| off + 16 <= end) else {
            return Err(bad(format!(
                "entries run past the used size without a last entry at {off}"
            )));
        };
        let len = usize::from(u16::from_le_bytes([h[8], h[9]]));
        let key_len = usize::from(u16::from_le_bytes([h[10], h[11]]));
        let flags = h[12];
        let min = if flags & 1 != 0 { 24 } else { 16 };
        if len < min || len % 8 != 0 || off + len > end || 16 + key_len > len {
            return Err(bad(format!(
                "entry at {off} has length {len}, key {key_len}"
            )));
        }
        if flags & 2 != 0 {
            break;
        }
        off += len;
    }
    let _ = AT_INDEX_ALLOCATION;
    Ok(())
}
