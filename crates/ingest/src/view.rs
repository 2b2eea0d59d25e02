//! *View*: one registry hive as the reading code sees it, wherever its keys come from: a regf
//! [`Hive`] (a file, bytes in memory, a file inside a disk image) or the registry part of a
//! capture (`reg query` text, the collector's records). `read` is written once against these
//! two traits, so that a capture and a hive of the same machine go through the same code and
//! give the same model.

use std::borrow::Cow;
use std::collections::BTreeMap;

use guestwall_capture::{RegKey, RegTree};
use guestwall_firewall::{CaptureLine, Origin};
use guestwall_regf::{Hive, Key};

/// A registry hive: keys found by their path below its root (`ControlSet001\Services`),
/// matched case-insensitively.
pub(crate) trait RegView {
    /// A key of this view.
    type Key<'a>: KeyView
    where
        Self: 'a;
    /// The key at `path` below the root; `None` when absent or unknown.
    fn find_key(&self, path: &str) -> Option<Self::Key<'_>>;
}

/// A key of a [`RegView`].
pub(crate) trait KeyView: Sized {
    /// Its name.
    fn name(&self) -> String;
    /// The subkey `name`.
    fn subkey(&self, name: &str) -> Option<Self>;
    /// Its subkeys (as far as known).
    fn subkeys(&self) -> Vec<Self>;
    /// The value `name` (`""` for the default): its REG type and the bytes Windows stores.
    fn raw_value(&self, name: &str) -> Option<(u32, Cow<'_, [u8]>)>;
    /// Every value: name, REG type, bytes.
    fn raw_values(&self) -> Vec<(String, u32, Cow<'_, [u8]>)>;
    /// The capture line the value `name` (or, with `None`, the key) was read from; `None` for
    /// a hive.
    fn line(&self, name: Option<&str>) -> Option<CaptureLine>;

    /// `origin` (this key's origin) for the value `name`, with its capture line.
    fn value_origin(&self, origin: &Origin, name: &str) -> Origin {
        let mut o = origin.value(name);
        if let Some(l) = self.line(Some(name)) {
            o.capture = Some(l);
        }
        o
    }
}

impl RegView for Hive {
    type Key<'a> = Key<'a>;
    fn find_key(&self, path: &str) -> Option<Key<'_>> {
        Hive::find_key(self, path).ok().flatten()
    }
}

impl KeyView for Key<'_> {
    fn name(&self) -> String {
        Key::name(self).to_string_lossy()
    }
    fn subkey(&self, name: &str) -> Option<Self> {
        Key::subkey(self, name).ok().flatten()
    }
    fn subkeys(&self) -> Vec<Self> {
        Key::subkeys(self).unwrap_or_default()
    }
    fn raw_value(&self, name: &str) -> Option<(u32, Cow<'_, [u8]>)> {
        let v = self.value(name).ok()??;
        let data = v.data().ok()?.into_owned();
        Some((v.data_type(), Cow::Owned(data)))
    }
    fn raw_values(&self) -> Vec<(String, u32, Cow<'_, [u8]>)> {
        let Ok(values) = self.values() else {
            return Vec::new();
        };
        values
            .iter()
            .filter_map(|v| {
                let data = v.data().ok()?.into_owned();
                Some((v.name().to_string_lossy(), v.data_type(), Cow::Owned(data)))
            })
            .collect()
    }
    fn line(&self, _name: Option<&str>) -> Option<CaptureLine> {
        None
    }
}

/// One hive of a capture's registry tree (`HKEY_LOCAL_MACHINE\SYSTEM`), with every key the
/// capture shows and the keys above them (which a capture of a subkey implies), each with its
/// children.
pub(crate) struct CaptureHive<'t> {
    /// Folded (upper-case) path below the root → node.
    nodes: BTreeMap<String, Node<'t>>,
}

struct Node<'t> {
    name: String,
    key: Option<&'t RegKey>,
    children: Vec<String>,
}

/// The capture line of a capture origin.
pub(crate) fn capture_line(o: &guestwall_capture::Origin) -> CaptureLine {
    CaptureLine {
        file: o.file.clone(),
        line: o.line,
        payload_line: o.payload_line,
        shown_as: None,
    }
}

impl<'t> CaptureHive<'t> {
    /// The hive at `root` (`HKEY_LOCAL_MACHINE\SYSTEM`) of `tree`; `None` when the capture
    /// shows nothing below it.
    pub(crate) fn new(tree: &'t RegTree, root: &str) -> Option<CaptureHive<'t>> {
        let root: Vec<String> = root.split('\\').map(str::to_uppercase).collect();
        let mut nodes: BTreeMap<String, Node<'t>> = BTreeMap::new();
        for k in tree.keys() {
            let parts: Vec<&str> = k.path.split('\\').collect();
            let under = parts.len() > root.len()
                && parts.iter().zip(&root).all(|(a, b)| a.to_uppercase() == *b);
            if !under {
                continue;
            }
            let names = parts.get(root.len()..).unwrap_or(&[]);
            let folded: Vec<String> = names.iter().map(|n| n.to_uppercase()).collect();
            // The key, and each ancestor the capture implies.
            for depth in 0..folded.len() {
                let path = folded[..=depth].join("\\");
                let node = nodes.entry(path.clone()).or_insert_with(|| Node {
                    name: names.get(depth).copied().unwrap_or("").to_string(),
                    key: None,
                    children: Vec::new(),
                });
                if depth + 1 == folded.len() {
                    node.key = Some(k);
                }
                if depth > 0 {
                    let parent = folded[..depth].join("\\");
                    if let Some(p) = nodes.get_mut(&parent) {
                        if !p.children.contains(&path) {
                            p.children.push(path);
                        }
                    }
                }
            }
        }
        // The root's own values (`reg query HKLM\SYSTEM`) are not needed by any reading.
        (!nodes.is_empty()).then_some(CaptureHive { nodes })
    }

    /// True when the capture shows the key at `path` or something below it.
    pub(crate) fn has(&self, path: &str) -> bool {
        self.nodes.contains_key(&path.to_uppercase())
    }

    /// The names of the root's subkeys the capture shows.
    pub(crate) fn top_keys(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(p, _)| !p.contains('\\'))
            .map(|(_, n)| n.name.clone())
            .collect()
    }
}

/// A key of a [`CaptureHive`].
#[derive(Clone, Copy)]
pub(crate) struct CaptureKey<'v, 't> {
    hive: &'v CaptureHive<'t>,
    path: &'v str,
    node: &'v Node<'t>,
}

impl RegView for CaptureHive<'_> {
    type Key<'a>
        = CaptureKey<'a, 'a>
    where
        Self: 'a;
    fn find_key(&self, path: &str) -> Option<CaptureKey<'_, '_>> {
        let (p, node) = self.nodes.get_key_value(&path.to_uppercase())?;
        Some(CaptureKey {
            hive: self,
            path: p,
            node,
        })
    }
}

impl KeyView for CaptureKey<'_, '_> {
    fn name(&self) -> String {
        self.node.name.clone()
    }
    fn subkey(&self, name: &str) -> Option<Self> {
        let want = format!("{}\\{}", self.path, name.to_uppercase());
        let (p, node) = self.hive.nodes.get_key_value(&want)?;
        Some(CaptureKey {
            hive: self.hive,
            path: p,
            node,
        })
    }
    fn subkeys(&self) -> Vec<Self> {
        self.node
            .children
            .iter()
            .filter_map(|c| {
                let (p, node) = self.hive.nodes.get_key_value(c)?;
                Some(CaptureKey {
                    hive: self.hive,
                    path: p,
                    node,
                })
            })
            .collect()
    }
    fn raw_value(&self, name: &str) -> Option<(u32, Cow<'_, [u8]>)> {
        let v = self.node.key?.value(name)?;
        Some((v.reg_type, Cow::Borrowed(v.data.as_slice())))
    }
    fn raw_values(&self) -> Vec<(String, u32, Cow<'_, [u8]>)> {
        self.node.key.map_or_else(Vec::new, |k| {
            k.values
                .iter()
                .map(|v| (v.name.clone(), v.reg_type, Cow::Borrowed(v.data.as_slice())))
                .collect()
        })
    }
    fn line(&self, name: Option<&str>) -> Option<CaptureLine> {
        let k = self.node.key?;
        match name {
            Some(n) => k.value(n).map(|v| capture_line(&v.origin)),
            None => Some(capture_line(&k.origin)),
        }
    }
}
