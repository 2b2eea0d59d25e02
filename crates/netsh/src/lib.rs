//! netsh advfirewall.
#![forbid(unsafe_code)]
