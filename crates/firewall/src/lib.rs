//! The Windows Firewall, as a model: rule strings, profile settings, the merge of the local
//! and Group Policy stores, and the decision for an inbound flow. No I/O: callers turn registry
//! contents or command output into these types (the ingest layer does).
//!
//! # Getting started
//!
//! 1. Parse rules with [`Rule::parse`] (lossless: [`RuleString`] keeps every byte) and put
//!    them, with their [`Store`], into a [`Policy`] together with each store's
//!    [`StoreSettings`].
//! 2. Describe the flow with [`Listener`] (for RDP: [`Listener::rdp`]) and the [`Os`].
//! 3. [`Policy::evaluate`] gives one [`ProfileDecision`] per profile: the [`Verdict`], what
//!    decided it, and every rule that bears on it.
//!
//! Semantics and sources: `docs/firewall-model.md` at the root of the repository.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codes;
pub mod consec;
pub mod eval;
pub mod machine;
pub mod names;
pub mod origin;
pub mod rule;
pub mod settings;
pub mod values;

pub use codes::Code;
pub use consec::{ConSecAction, ConSecRule};
pub use eval::{
    match_flow, normalize_path, Decider, Exclusion, FlowMatch, Listener, ListenerProcess, Mismatch,
    Os, Policy, ProfileDecision, RuleOutcome, StoredConSec, StoredRule, Verdict,
};
pub use machine::{ActiveNetwork, MachineConfig, NetworkHint, Note, ServiceStart, FIREWALL_POLICY};
pub use origin::{CaptureLine, HiveKind, Origin};
pub use rule::{parse_version, Rule, RuleString, Segment};
pub use settings::{
    effective_profile, Effective, EffectiveProfile, Logging, Setting, Store, StoreProfile,
    StoreSettings,
};
pub use values::{Action, Address, AddressSet, Direction, PortItem, PortSet, Profile, ProfileSet};
