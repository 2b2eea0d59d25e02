//! The virtual disk: a chain of containers (the file opened, then its parents), read as one.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use guestwall_source::{FileSource, ReadAt};

use crate::container::{
    BlockState, Container, ParentCheck, ParentId, ParentRequest, Piece, Reason,
};
use crate::error::{Error, Result};
use crate::file::Src;
use crate::guid::Guid;
use crate::vhd::{looks_like_vhd, Vhd, VhdType};
use crate::vhdx::{Vhdx, VhdxHeaderInfo, VhdxParams};

/// How deep a parent chain may go (the file opened plus this many parents at most).
pub const MAX_CHAIN_DEPTH: usize = 16;

/// The container format of one file, found by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// A raw image or block device.
    Raw,
    /// A fixed VHD (data + 512-byte footer).
    VhdFixed,
    /// A dynamic VHD.
    VhdDynamic,
    /// A differencing VHD.
    VhdDifferencing,
    /// A fixed VHDX: the file parameters' LeaveBlockAllocated flag is set (Hyper-V and qemu set
    /// it for fixed disks; VHDX has no type field).
    VhdxFixed,
    /// A dynamic VHDX.
    VhdxDynamic,
    /// A differencing VHDX (`.avhdx`).
    VhdxDifferencing,
}

impl Format {
    /// A short name ("raw", "VHD fixed", ...).
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::VhdFixed => "VHD fixed",
            Format::VhdDynamic => "VHD dynamic",
            Format::VhdDifferencing => "VHD differencing",
            Format::VhdxFixed => "VHDX fixed",
            Format::VhdxDynamic => "VHDX dynamic",
            Format::VhdxDifferencing => "VHDX differencing",
        }
    }
}

/// The kind of container a source holds, by content only: `vhdxfile` at 0 is VHDX, a
/// `conectix` footer at the end (or at 0, for a dynamic VHD with a damaged trailing footer)
/// is VHD, anything else is raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// Raw.
    Raw,
    /// VHD.
    Vhd,
    /// VHDX.
    Vhdx,
}

/// Detects the container of `source` by content.
pub fn detect(source: &dyn ReadAt) -> Detected {
    let mut sig = [0u8; 8];
    if source.size() >= 8 && source.read_exact_at(0, &mut sig).is_ok() && &sig == b"vhdxfile" {
        return Detected::Vhdx;
    }
    if looks_like_vhd(source) {
        return Detected::Vhd;
    }
    Detected::Raw
}

/// Opens the parents of differencing disks.
pub trait ParentOpener {
    /// Opens `path` for reading.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn ReadAt>>;
    /// A key that is equal for two paths naming the same file (for loop detection).
    fn identity(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }
}

/// Opens parents from the file system ([`FileSource`]); identity by canonical path.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsOpener;

impl ParentOpener for FsOpener {
    fn open(&self, path: &Path) -> io::Result<Arc<dyn ReadAt>> {
        Ok(Arc::new(FileSource::open(path)?))
    }
    fn identity(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Refuses to open any parent: differencing disks give [`Error::ParentsDisabled`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoParents;

impl ParentOpener for NoParents {
    fn open(&self, path: &Path) -> io::Result<Arc<dyn ReadAt>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("opening parent {} is disabled", path.display()),
        ))
    }
}

/// One file of the chain.
pub struct Layer {
    path: PathBuf,
    format: Format,
    inner: Inner,
}

enum Inner {
    Raw(Src),
    Vhd(Vhd),
    Vhdx(Box<Vhdx>),
}

impl Layer {
    /// The file's path (as opened or as found from the child's locators).
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Its container format.
    pub fn format(&self) -> Format {
        self.format
    }
    fn container(&self) -> &dyn Container {
        match &self.inner {
            Inner::Raw(s) => s,
            Inner::Vhd(v) => v,
            Inner::Vhdx(v) => &**v,
        }
    }
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish()
    }
}

impl Container for Src {
    fn virtual_size(&self) -> u64 {
        self.size()
    }
    fn resolve(&self, offset: u64, len: u64) -> Result<(u64, Piece)> {
        Ok((
            len.min(self.size().saturating_sub(offset)),
            Piece::Data {
                file_offset: offset,
                state: BlockState::Raw,
            },
        ))
    }
    fn read_data(&self, file_offset: u64, buf: &mut [u8]) -> Result<()> {
        self.read(file_offset, buf, "raw image data")
    }
    fn parent_id(&self) -> ParentId {
        ParentId::None
    }
}

/// Where a virtual range lives, for in-place writes ([`Disk::map`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// Start on the virtual disk.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the range is.
    pub kind: ExtentKind,
    /// When the top file (layer 0) does not hold the range itself: why it defers to its parent.
    pub deferred: Option<Reason>,
}

/// What an [`Extent`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtentKind {
    /// Bytes stored in file `layer` of the chain (0 = the file opened) at `file_offset`.
    File {
        /// Index in [`Disk::layers`].
        layer: usize,
        /// Offset in that file.
        file_offset: u64,
        /// The block state that put them there.
        state: BlockState,
    },
    /// Reads as zeros, decided by file `layer` for `reason`; not stored anywhere.
    Zeros {
        /// Index in [`Disk::layers`].
        layer: usize,
        /// Why.
        reason: Reason,
    },
}

impl Extent {
    /// True when the range can be overwritten in place: stored in the top file (layer 0) and
    /// not through a parent. Anything else needs allocation or metadata changes.
    pub fn writable_in_place(&self) -> bool {
        matches!(self.kind, ExtentKind::File { layer: 0, .. }) && self.deferred.is_none()
    }
    /// How deep in the chain the bytes are (0 = the top file); `None` for zeros.
    pub fn in_layer(&self) -> Option<usize> {
        match self.kind {
            ExtentKind::File { layer, .. } => Some(layer),
            ExtentKind::Zeros { .. } => None,
        }
    }
}

/// Options for [`Disk::open_with`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Open the parents of differencing disks (default true).
    pub parents: bool,
    /// The longest chain accepted, counting the file opened (default [`MAX_CHAIN_DEPTH`]).
    pub max_depth: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            parents: true,
            max_depth: MAX_CHAIN_DEPTH,
        }
    }
}

/// A virtual disk: a raw image, a VHD or a VHDX, with its parents when differencing.
/// Implements [`ReadAt`] over the virtual disk's bytes.
pub struct Disk {
    layers: Vec<Layer>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("layers", &self.layers)
            .field("size", &self.size())
            .finish()
    }
}

impl Disk {
    /// Opens a file or block device, detecting its container by content, and its parents.
    pub fn open(path: impl AsRef<Path>) -> Result<Disk> {
        Disk::open_with(path, &OpenOptions::default())
    }

    /// [`Disk::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Disk> {
        let path = path.as_ref();
        let f = FileSource::open(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if opts.parents {
            Disk::from_source(Arc::new(f), path, &FsOpener, opts.max_depth)
        } else {
            Disk::from_source(Arc::new(f), path, &NoParents, opts.max_depth)
        }
    }

    /// Opens a disk from any source; `path` names it in messages and anchors relative parent
    /// paths; `opener` opens parents; the chain is at most `max_depth` files long.
    pub fn from_source(
        source: Arc<dyn ReadAt>,
        path: &Path,
        opener: &dyn ParentOpener,
        max_depth: usize,
    ) -> Result<Disk> {
        let mut layers = Vec::new();
        let mut warnings = Vec::new();
        let mut seen = HashSet::new();
        seen.insert(opener.identity(path));
        let (first, mut req) = open_layer(Src::new(path, source), &mut warnings)?;
        layers.push(first);
        while let Some(r) = req.take() {
            let child = layers.last().map(|l| l.path.clone()).unwrap_or_default();
            if layers.len() >= max_depth.max(1) {
                return Err(Error::ChainTooDeep {
                    child,
                    max: max_depth,
                });
            }
            let mut opened = None;
            let mut tried = Vec::new();
            for c in &r.candidates {
                tried.push(c.clone());
                match opener.open(c) {
                    Ok(s) => {
                        opened = Some((c.clone(), s));
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                        return Err(Error::ParentsDisabled { child })
                    }
                    Err(_) => continue,
                }
            }
            let Some((ppath, psrc)) = opened else {
                return Err(Error::ParentNotFound { child, tried });
            };
            if !seen.insert(opener.identity(&ppath)) {
                return Err(Error::ParentLoop {
                    child,
                    parent: ppath,
                });
            }
            let (layer, next) = open_layer(Src::new(&ppath, psrc), &mut warnings)?;
            check_parent(&child, &ppath, &r.check, layer.container().parent_id())?;
            let csize = layers.last().map_or(0, |l| l.container().virtual_size());
            let psize = layer.container().virtual_size();
            if psize != csize {
                warnings.push(format!(
                    "{}: virtual size {psize:#x} differs from its child's {csize:#x}; bytes past the parent's end read as zeros",
                    ppath.display()
                ));
            }
            layers.push(layer);
            req = next;
        }
        Ok(Disk { layers, warnings })
    }

    /// The files of the chain: `[0]` is the file opened, `[i + 1]` the parent of `[i]`.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The format of the file opened.
    pub fn format(&self) -> Format {
        self.layers.first().map_or(Format::Raw, |l| l.format)
    }

    /// Warnings from opening (a replayed log, a damaged copy used, a size mismatch...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The logical sector size: the VHDX's, else 512.
    pub fn logical_sector_size(&self) -> u32 {
        self.vhdx_params().map_or(512, |p| p.logical_sector_size)
    }

    /// The physical sector size: the VHDX's, else 512.
    pub fn physical_sector_size(&self) -> u32 {
        self.vhdx_params().map_or(512, |p| p.physical_sector_size)
    }

    /// The top file's VHDX metadata, when it is a VHDX.
    pub fn vhdx_params(&self) -> Option<&VhdxParams> {
        match &self.layers.first()?.inner {
            Inner::Vhdx(v) => Some(&v.params),
            _ => None,
        }
    }

    /// The top file's current VHDX header (index, sequence, GUIDs), when it is a VHDX. Use
    /// [`VhdxHeaderInfo::next_header`] to build the header a writer writes first.
    pub fn vhdx_header(&self) -> Option<&VhdxHeaderInfo> {
        match &self.layers.first()?.inner {
            Inner::Vhdx(v) => Some(&v.header),
            _ => None,
        }
    }

    /// The top file's VHD footer, when it is a VHD.
    pub fn vhd_footer(&self) -> Option<&crate::vhd::Footer> {
        match &self.layers.first()?.inner {
            Inner::Vhd(v) => Some(&v.footer),
            _ => None,
        }
    }

    /// True when the top file is a VHDX whose log held entries to replay (it was replayed in
    /// memory; a writer must refuse).
    pub fn log_dirty(&self) -> bool {
        matches!(self.layers.first().map(|l| &l.inner), Some(Inner::Vhdx(v)) if v.log_dirty)
    }

    /// True when any file of the chain is a VHDX with a dirty log.
    pub fn any_log_dirty(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(&l.inner, Inner::Vhdx(v) if v.log_dirty))
    }

    /// Where each part of `offset..offset+len` of the virtual disk lives (adjacent parts of
    /// the same kind merged). A writer may overwrite only [`Extent::writable_in_place`] ones.
    pub fn map(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let size = self.size();
        if offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::OutOfRange { offset, len, size });
        }
        let mut out: Vec<Extent> = Vec::new();
        self.map_layer(0, offset, len, None, &mut out)?;
        Ok(out)
    }

    fn map_layer(
        &self,
        layer: usize,
        offset: u64,
        len: u64,
        deferred: Option<Reason>,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        let Some(l) = self.layers.get(layer) else {
            return Ok(());
        };
        let c = l.container();
        let mut done = 0;
        while done < len {
            let off = offset + done;
            let want = len - done;
            let (n, piece) = if off >= c.virtual_size() {
                (want, Piece::Zero(Reason::PastParentEnd))
            } else {
                c.resolve(off, want)?
            };
            let n = n.clamp(1, want);
            let kind = match piece {
                Piece::Data { file_offset, state } => Some(ExtentKind::File {
                    layer,
                    file_offset,
                    state,
                }),
                Piece::Zero(reason) => Some(ExtentKind::Zeros { layer, reason }),
                Piece::Parent(reason) => {
                    if layer + 1 < self.layers.len() {
                        self.map_layer(layer + 1, off, n, deferred.or(Some(reason)), out)?;
                        None
                    } else {
                        Some(ExtentKind::Zeros { layer, reason })
                    }
                }
            };
            if let Some(kind) = kind {
                push_extent(
                    out,
                    Extent {
                        offset: off,
                        len: n,
                        kind,
                        deferred,
                    },
                );
            }
            done += n;
        }
        Ok(())
    }

    fn read_layer(&self, layer: usize, offset: u64, buf: &mut [u8]) -> Result<()> {
        let Some(l) = self.layers.get(layer) else {
            buf.fill(0);
            return Ok(());
        };
        let c = l.container();
        let mut done = 0usize;
        while done < buf.len() {
            let off = offset + done as u64;
            let want = (buf.len() - done) as u64;
            let (n, piece) = if off >= c.virtual_size() {
                (want, Piece::Zero(Reason::PastParentEnd))
            } else {
                c.resolve(off, want)?
            };
            let n = n.clamp(1, want) as usize;
            let Some(chunk) = buf.get_mut(done..done + n) else {
                break;
            };
            match piece {
                Piece::Data { file_offset, .. } => c.read_data(file_offset, chunk)?,
                Piece::Zero(_) => chunk.fill(0),
                Piece::Parent(_) => self.read_layer(layer + 1, off, chunk)?,
            }
            done += n;
        }
        Ok(())
    }
}

fn push_extent(out: &mut Vec<Extent>, e: Extent) {
    if let Some(last) = out.last_mut() {
        let contiguous = last.offset + last.len == e.offset && last.deferred == e.deferred;
        let merged = match (&last.kind, &e.kind) {
            (
                ExtentKind::File {
                    layer: a,
                    file_offset: fa,
                    state: sa,
                },
                ExtentKind::File {
                    layer: b,
                    file_offset: fb,
                    state: sb,
                },
            ) => a == b && sa == sb && fa + last.len == *fb,
            (x, y) => x == y && matches!(x, ExtentKind::Zeros { .. }),
        };
        if contiguous && merged {
            last.len += e.len;
            return;
        }
    }
    out.push(e);
}

fn open_layer(src: Src, warnings: &mut Vec<String>) -> Result<(Layer, Option<ParentRequest>)> {
    let path = src.path.clone();
    let mut sig = [0u8; 8];
    let is_vhdx =
        src.size() >= 8 && src.read(0, &mut sig, "file identifier").is_ok() && &sig == b"vhdxfile";
    if is_vhdx {
        let (v, req, w) = Vhdx::open(src)?;
        warnings.extend(w);
        let format = if v.params.has_parent {
            Format::VhdxDifferencing
        } else if v.params.leave_blocks_allocated {
            Format::VhdxFixed
        } else {
            Format::VhdxDynamic
        };
        return Ok((
            Layer {
                path,
                format,
                inner: Inner::Vhdx(Box::new(v)),
            },
            req,
        ));
    }
    if looks_like_vhd(&*src.r) {
        let (v, req, w) = Vhd::open(src)?;
        warnings.extend(w);
        let format = match v.vhd_type() {
            VhdType::Fixed => Format::VhdFixed,
            VhdType::Dynamic => Format::VhdDynamic,
            VhdType::Differencing => Format::VhdDifferencing,
        };
        return Ok((
            Layer {
                path,
                format,
                inner: Inner::Vhd(v),
            },
            req,
        ));
    }
    Ok((
        Layer {
            path,
            format: Format::Raw,
            inner: Inner::Raw(src),
        },
        None,
    ))
}

fn check_parent(child: &Path, parent: &Path, check: &ParentCheck, id: ParentId) -> Result<()> {
    let mismatch = |expected: String, found: String| Error::ParentMismatch {
        child: child.to_path_buf(),
        parent: parent.to_path_buf(),
        expected,
        found,
    };
    let show = |gs: &[Guid]| {
        gs.iter()
            .map(Guid::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match (check, id) {
        (ParentCheck::VhdUniqueId(want), ParentId::Vhd(got)) => {
            if *want == got {
                Ok(())
            } else {
                Err(mismatch(
                    format!("VHD unique id {want}"),
                    format!("VHD unique id {got}"),
                ))
            }
        }
        (ParentCheck::VhdxDataWriteGuid(want), ParentId::Vhdx(got)) => {
            if want.contains(&got) {
                Ok(())
            } else {
                Err(mismatch(
                    format!("DataWriteGuid {}", show(want)),
                    format!("DataWriteGuid {got}"),
                ))
            }
        }
        (ParentCheck::VhdUniqueId(_), _) => Err(mismatch("a VHD".into(), "another format".into())),
        (ParentCheck::VhdxDataWriteGuid(_), _) => {
            Err(mismatch("a VHDX".into(), "another format".into()))
        }
    }
}

impl ReadAt for Disk {
    fn size(&self) -> u64 {
        self.layers
            .first()
            .map_or(0, |l| l.container().virtual_size())
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let size = self.size();
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > size)
        {
            return Err(guestwall_source::out_of_range(offset, buf.len(), size));
        }
        self.read_layer(0, offset, buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}
