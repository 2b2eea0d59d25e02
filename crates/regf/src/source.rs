//! Where a hive's bytes come from: a file mapped from this machine's file system, bytes in
//! memory, or any positional reader (a file inside a disk image), each with the transaction
//! logs that belong to it. Errors and reports name the source's [`Location`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use guestwall_mmap::FileBytes;
use guestwall_source::{Location, ReadAt};

use crate::error::{Error, Result};
use crate::log::{find_logs, LogInput};

/// A hive's primary file and its logs, wherever they are.
pub trait HiveSource {
    /// Where the primary file is.
    fn location(&self) -> Location;

    /// The primary file's bytes.
    fn primary(&self) -> Result<FileBytes>;

    /// The transaction logs that belong to the hive, in the order they are tried
    /// (`.LOG1`, `.LOG2`, `.LOG`). Only asked for when the primary file is dirty.
    fn logs(&self) -> Result<Vec<LogInput>>;

    /// The file on this machine, when the source is one (reports show it).
    fn file_path(&self) -> Option<&Path> {
        None
    }

    /// A positional reader over the primary file, when reading parts of it is cheaper than
    /// reading it whole (a file inside a disk image): [`crate::Hive::open_lazy`] then reads
    /// only the bins a walk touches.
    fn primary_reader(&self) -> Option<Box<dyn ReadAt>> {
        None
    }
}

/// A hive file on this machine, mapped zero-copy; its logs are the `.LOG1`, `.LOG2` and
/// `.LOG` files beside it ([`find_logs`]).
#[derive(Debug, Clone)]
pub struct HiveFile {
    path: PathBuf,
}

impl HiveFile {
    /// The hive file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> HiveFile {
        HiveFile { path: path.into() }
    }
}

/// Maps a file, naming it in the error.
pub(crate) fn map_file(path: &Path) -> Result<FileBytes> {
    guestwall_mmap::read(path).map_err(|source| Error::Io {
        path: Location::File(path.to_path_buf()),
        source,
    })
}

impl HiveSource for HiveFile {
    fn location(&self) -> Location {
        Location::File(self.path.clone())
    }

    fn primary(&self) -> Result<FileBytes> {
        map_file(&self.path)
    }

    fn logs(&self) -> Result<Vec<LogInput>> {
        find_logs(&self.path)
            .into_iter()
            .map(|p| {
                map_file(&p).map(|bytes| LogInput {
                    location: Location::File(p),
                    bytes,
                })
            })
            .collect()
    }

    fn file_path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// A hive held in memory, with a label for messages, and the logs given with it.
#[derive(Debug)]
pub struct InMemory {
    label: String,
    bytes: Vec<u8>,
    logs: Vec<(Location, Vec<u8>)>,
}

impl InMemory {
    /// A hive from bytes; `label` says what they are ("sample hive").
    pub fn new(label: impl Into<String>, bytes: Vec<u8>) -> InMemory {
        InMemory {
            label: label.into(),
            bytes,
            logs: Vec::new(),
        }
    }

    /// Adds a log that belongs to the hive.
    pub fn with_log(mut self, location: Location, bytes: Vec<u8>) -> InMemory {
        self.logs.push((location, bytes));
        self
    }
}

impl HiveSource for InMemory {
    fn location(&self) -> Location {
        Location::Memory(self.label.clone())
    }

    fn primary(&self) -> Result<FileBytes> {
        Ok(FileBytes::Owned(self.bytes.clone()))
    }

    fn logs(&self) -> Result<Vec<LogInput>> {
        Ok(self
            .logs
            .iter()
            .map(|(l, b)| LogInput::new(l.clone(), b.clone()))
            .collect())
    }
}

/// A hive read through a positional reader (a file inside a disk image), with readers for
/// its logs. The bytes are read into memory once.
pub struct ReaderSource<R> {
    location: Location,
    primary: Arc<R>,
    logs: Vec<(Location, R)>,
}

impl<R> std::fmt::Debug for ReaderSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderSource")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl<R: ReadAt> ReaderSource<R> {
    /// The hive read from `primary`, found at `location`; `logs` are its transaction logs
    /// (in the order `.LOG1`, `.LOG2`, `.LOG`).
    pub fn new(location: Location, primary: R, logs: Vec<(Location, R)>) -> ReaderSource<R> {
        ReaderSource {
            location,
            primary: Arc::new(primary),
            logs,
        }
    }
}

fn read_all<R: ReadAt>(r: &R, at: &Location) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: at.clone(),
        source,
    };
    let len = usize::try_from(r.size()).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "too large for this machine's memory",
        ))
    })?;
    let mut buf = vec![0u8; len];
    r.read_exact_at(0, &mut buf).map_err(io)?;
    Ok(buf)
}

impl<R: ReadAt + 'static> HiveSource for ReaderSource<R> {
    fn location(&self) -> Location {
        self.location.clone()
    }

    fn primary(&self) -> Result<FileBytes> {
        read_all(&*self.primary, &self.location).map(FileBytes::Owned)
    }

    fn logs(&self) -> Result<Vec<LogInput>> {
        self.logs
            .iter()
            .map(|(l, r)| read_all(r, l).map(|b| LogInput::new(l.clone(), b)))
            .collect()
    }

    fn primary_reader(&self) -> Option<Box<dyn ReadAt>> {
        Some(Box::new(Arc::clone(&self.primary)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{build_hive, BuildOptions, KeySpec};
    use crate::hive::{Hive, OpenOptions};

    fn bytes() -> Vec<u8> {
        let spec = KeySpec::new("").subkey(KeySpec::new("A"));
        build_hive(&spec, &BuildOptions::default()).unwrap()
    }

    #[test]
    fn hives_open_from_every_source_and_say_where_they_are() {
        let opts = OpenOptions::default();
        let m = Hive::open_source(&InMemory::new("sample hive", bytes()), &opts).unwrap();
        assert_eq!(m.location().to_string(), "(sample hive)");
        assert!(m.path().is_none());
        assert!(m.find_key("A").unwrap().is_some());

        let at = Location::InImage {
            image: "disk.vhdx".into(),
            partition: Some(2),
            path: "Windows/System32/config/SYSTEM".into(),
        };
        let r =
            Hive::open_source(&ReaderSource::new(at.clone(), bytes(), Vec::new()), &opts).unwrap();
        assert_eq!(r.location(), &at);
        assert!(r.find_key("A").unwrap().is_some());

        // A file's errors name the path itself, as before.
        let e = Hive::open("/nonexistent-guestwall/SYSTEM").unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent-guestwall/SYSTEM"),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("gw-source-hive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("SYSTEM");
        std::fs::write(&p, bytes()).unwrap();
        let f = Hive::open_source(&HiveFile::new(&p), &opts).unwrap();
        assert_eq!(f.location(), &Location::File(p.clone()));
        assert_eq!(f.path(), Some(p.as_path()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
