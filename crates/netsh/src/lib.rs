//! `netsh advfirewall`, as text: the command lines the article uses, parsed
//! ([`command::parse`]); the rule-string edits they stand for ([`edit`]); and output written
//! the way netsh writes it ([`render`]).
//!
//! This crate knows nothing of hives: the caller reads the firewall model, selects rules with
//! [`edit::matches`], turns `add`/`set` into rule strings with [`edit::new_rule`] and
//! [`edit::apply_spec`], and writes the result. Output follows the real captures described in
//! `docs/netsh-output.md`: a blank first line, 70-dash separators, values at column 38, and
//! `Ok.` at the end.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod command;
pub mod edit;
pub mod render;

pub use command::{
    parse, Command, Filter, Inbound, Outbound, ProfileSel, ProfileSetting, RuleSpec, UsageError,
};
