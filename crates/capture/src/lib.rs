//! What an admin captures on a running Windows VM (serial console, Run Command, a pasted
//! console window), turned into typed facts with their origins (file and line).
//!
//! This is a text-format crate: it knows no firewall policy and evaluates nothing. It reads
//! `reg query`, `netsh advfirewall show ...`, `netsh advfirewall firewall show rule ...`,
//! `sc query|qc|queryex`, `Get-NetFirewall*`/`Get-NetConnectionProfile` (as `Format-List` or
//! `ConvertTo-Json`), `netstat -ano`, `Get-NetTCPConnection`, and the output of guestwall's own
//! collectors, in English, German, Spanish and Russian (French unverified). What the capture
//! does not contain stays unknown (`None`), never guessed.
//!
//! # Getting started
//!
//! 1. Print a collector for the admin to run on the VM: [`collector_powershell`] (compact,
//!    gzip + base64 between marker lines, fits Run Command's 4,096-byte window or writes a file)
//!    or [`collector_cmd`] (plain `reg`/`sc`/`netsh`/`netstat`, for the serial console's cmd).
//! 2. Feed whatever came back, as bytes, to [`parse_capture`]: it decodes the text
//!    ([`transcript`]), splits it at prompts and marker lines, recognises what each part is and
//!    parses it.
//! 3. Read the [`Capture`]: [`Capture::registry`] (a [`RegTree`] of values with the bytes
//!    Windows stores, decoded the way hive values are), netsh profiles and rules (display-level),
//!    PowerShell objects, services, listeners, active profiles, the OS, the languages seen,
//!    [`Capture::truncated`] and the [`Note`]s on what could not be read.
//!
//! The formats, the language tables and their sources are in `docs/capture-formats.md`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;

pub mod collector;
mod detect;
mod error;
pub mod lang;
pub mod netsh;
pub mod netstat;
pub mod pwsh;
pub mod regquery;
pub mod sc;
pub mod transcript;

pub use collector::{
    collector_cmd, collector_powershell, decode_collector, write_collector, CollectorInfo,
};
pub use detect::parse_capture;
pub use error::CaptureError;
pub use guestwall_firewall::{Action, Direction, Profile, ProfileSet};
pub use lang::Language;
pub use netsh::{NetshProfile, NetshRule};
pub use netstat::Listener;
pub use pwsh::{PsConnectionProfile, PsFirewallProfile, PsFirewallRule, PsObject, PsPortFilter};
pub use regquery::{RegKey, RegTree, RegValue};
pub use sc::Service;
pub use transcript::{TextEncoding, Transcript};

/// Where a fact comes from: the capture's name and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The name given to [`parse_capture`] (with ` (stdout)` for Run Command's JSON).
    pub file: Arc<str>,
    /// The line in the transcript (for a collector block: its BEGIN line).
    pub line: usize,
    /// For facts decoded from a collector block: the line inside the decoded payload.
    pub payload_line: Option<usize>,
}

impl Origin {
    /// An origin at a transcript line.
    pub fn new(file: &Arc<str>, line: usize) -> Origin {
        Origin {
            file: Arc::clone(file),
            line,
            payload_line: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(p) = self.payload_line {
            write!(f, " (payload line {p})")?;
        }
        Ok(())
    }
}

/// A value as it was written and as it was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<T> {
    /// The text as captured (trimmed).
    pub text: String,
    /// What it means; `None` when the text was not understood.
    pub value: Option<T>,
    /// Its line.
    pub line: usize,
}

impl<T> Field<T> {
    /// A field.
    pub fn new(text: impl Into<String>, value: Option<T>, line: usize) -> Field<T> {
        Field {
            text: text.into(),
            value,
            line,
        }
    }
}

/// What kind of remark a [`Note`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteKind {
    /// Lines that no parser recognised.
    Unparsed,
    /// A block that was recognised but is damaged (bad checksum, value not understood, ...).
    Damaged,
    /// The capture was cut (at the start, or a block misses its end).
    Truncated,
    /// Decoding: replaced bytes, a guessed encoding.
    Encoding,
    /// Something the consumer must know but that is not an error (a known limitation).
    Info,
}

/// A remark about the capture, with the line it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The first line concerned, when there is one.
    pub line: Option<usize>,
    /// The kind.
    pub kind: NoteKind,
    /// What happened.
    pub text: String,
}

impl Note {
    /// A note.
    pub fn new(line: Option<usize>, kind: NoteKind, text: impl Into<String>) -> Note {
        Note {
            line,
            kind,
            text: text.into(),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// What a part of the transcript was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// A guestwall collector block (`-----BEGIN GUESTWALL CAPTURE v1-----`).
    Collector,
    /// `reg query` output.
    RegQuery,
    /// `netsh advfirewall show ...profile(s)`.
    NetshProfiles,
    /// `netsh advfirewall firewall show rule ...`.
    NetshRules,
    /// `sc query|qc|queryex`.
    Sc,
    /// PowerShell `Format-List` output.
    FormatList,
    /// JSON (`ConvertTo-Json`).
    Json,
    /// `netstat -ano` or a `Get-NetTCPConnection` table.
    Netstat,
    /// `ver` or `systeminfo`-like OS lines.
    Version,
}

/// One recognised part of the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What it is.
    pub kind: BlockKind,
    /// Its first line.
    pub first_line: usize,
    /// Its last line.
    pub last_line: usize,
    /// The command that produced it, when a prompt or marker line said.
    pub command: Option<String>,
}

/// An active (connected) network and its firewall profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveProfile {
    /// The profile; `None` when the capture names one that is not understood.
    pub profile: Option<Profile>,
    /// The network's name, when known.
    pub network: Option<String>,
    /// The interface, when known.
    pub interface: Option<String>,
    /// Where it was read.
    pub origin: Origin,
}

/// The Windows version, as far as the capture tells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsInfo {
    /// `(major, minor)`, e.g. `(10, 0)`.
    pub nt: Option<(u32, u32)>,
    /// The build number.
    pub build: Option<u32>,
    /// The product name.
    pub product: Option<String>,
    /// Where it was read (`None` when only registry values of the tree tell).
    pub origin: Option<Origin>,
}

/// Everything a capture contains.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The name it was given.
    pub origin_name: Arc<str>,
    /// How the bytes were decoded.
    pub encoding: TextEncoding,
    /// Set for Run Command's JSON (with its standard error).
    pub run_command: Option<transcript::RunCommandInfo>,
    /// True when the capture was cut (Run Command's 4,096-byte window at the start, a block
    /// without its end): what is here is parsed, what is missing is unknown.
    pub truncated: bool,
    /// Registry values from `reg query` output and from collector blocks.
    pub registry: RegTree,
    /// `netsh advfirewall show ...` profile blocks (display-level: what netsh shows).
    pub profiles: Vec<NetshProfile>,
    /// `netsh advfirewall firewall show rule` blocks (display-level: no rule IDs, no AppPkgId,
    /// names as displayed in the machine's language).
    pub rules: Vec<NetshRule>,
    /// Every PowerShell object read (Format-List or JSON), typed or not.
    pub ps_objects: Vec<PsObject>,
    /// `Get-NetFirewallRule` objects.
    pub ps_rules: Vec<PsFirewallRule>,
    /// `Get-NetFirewallProfile` objects (and the collector's active-store profiles).
    pub ps_profiles: Vec<PsFirewallProfile>,
    /// `Get-NetFirewallPortFilter` objects.
    pub ps_port_filters: Vec<PsPortFilter>,
    /// `Get-NetConnectionProfile` objects.
    pub connection_profiles: Vec<PsConnectionProfile>,
    /// Services, one per name, merged from `sc`, `Get-Service` and the collector.
    pub services: Vec<Service>,
    /// TCP/UDP endpoints from `netstat -ano`, `Get-NetTCPConnection` and the collector.
    pub listeners: Vec<Listener>,
    /// True when something listed the listening sockets of the RDP port (so that an empty
    /// [`Capture::listeners`] means nothing listens, not "unknown").
    pub listeners_checked: bool,
    /// The ports that listing was limited to (`netstat -ano | findstr :3389`,
    /// `Get-NetTCPConnection -LocalPort 3389`, the collector's port); empty: every port.
    pub listener_ports: Vec<u16>,
    /// The active profiles: from `netsh ... show currentprofile`, `Get-NetConnectionProfile`
    /// or the collector. `None` when the capture does not say.
    pub active_profiles: Option<Vec<ActiveProfile>>,
    /// The OS, when the capture tells.
    pub os: Option<OsInfo>,
    /// The machine's name, when the capture tells.
    pub machine: Option<String>,
    /// When it was captured (the collector's UTC time), when the capture tells.
    pub time: Option<String>,
    /// Collector blocks found.
    pub collectors: Vec<CollectorInfo>,
    /// The label languages seen (netsh, sc, reg messages).
    pub languages: Vec<Language>,
    /// What each part of the transcript was recognised as.
    pub blocks: Vec<Block>,
    /// Remarks: unparsed lines, damaged blocks, truncation, limitations.
    pub notes: Vec<Note>,
}

impl Capture {
    /// An empty capture named `origin_name`.
    pub fn empty(origin_name: &str, encoding: TextEncoding) -> Capture {
        Capture {
            origin_name: Arc::from(origin_name),
            encoding,
            run_command: None,
            truncated: false,
            registry: RegTree::default(),
            profiles: Vec::new(),
            rules: Vec::new(),
            ps_objects: Vec::new(),
            ps_rules: Vec::new(),
            ps_profiles: Vec::new(),
            ps_port_filters: Vec::new(),
            connection_profiles: Vec::new(),
            services: Vec::new(),
            listeners: Vec::new(),
            listeners_checked: false,
            listener_ports: Vec::new(),
            active_profiles: None,
            os: None,
            machine: None,
            time: None,
            collectors: Vec::new(),
            languages: Vec::new(),
            blocks: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The service named `name` (case-insensitive).
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Records that a language's labels were seen.
    pub(crate) fn saw(&mut self, lang: Language) {
        if !self.languages.contains(&lang) {
            self.languages.push(lang);
        }
    }

    /// Adds (or merges into) a service record: fields the new record has win.
    pub(crate) fn merge_service(&mut self, s: Service) {
        match self
            .services
            .iter_mut()
            .find(|x| x.name.eq_ignore_ascii_case(&s.name))
        {
            Some(old) => old.merge(s),
            None => self.services.push(s),
        }
    }

    /// Adds an active profile (making the list known).
    pub(crate) fn add_active(&mut self, a: ActiveProfile) {
        let list = self.active_profiles.get_or_insert_with(Vec::new);
        if !list
            .iter()
            .any(|x| x.profile == a.profile && x.network == a.network)
        {
            list.push(a);
        }
    }
}
