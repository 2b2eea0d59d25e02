//! The crate's error type. Parsing a transcript never fails (what cannot be read becomes a
//! [`crate::Note`]); decoding a collector block can, and says which line is at fault.

/// Why a collector block could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureError {
    /// No `-----BEGIN GUESTWALL CAPTURE v1-----` line.
    #[error("no collector block (no BEGIN GUESTWALL CAPTURE line)")]
    NoBlock,
    /// A BEGIN line of a version this crate does not read.
    #[error("line {line}: collector block version {version} is not supported (only v1)")]
    Version {
        /// The BEGIN line.
        line: usize,
        /// The version it names.
        version: String,
    },
    /// The BEGIN line is not followed by `bytes=N sha256=HEX`.
    #[error("line {line}: the collector header is missing or damaged: {text:?}")]
    Header {
        /// The line after BEGIN.
        line: usize,
        /// What it holds.
        text: String,
    },
    /// The END line is missing: the output was cut.
    #[error("line {line}: the collector block has no END line (the output was cut)")]
    NoEnd {
        /// The BEGIN line.
        line: usize,
    },
    /// A line between the markers is not base64.
    #[error("line {line}: not base64: {text:?}")]
    Base64 {
        /// The line.
        line: usize,
        /// Its start.
        text: String,
    },
    /// The decoded length differs from the header's.
    #[error("line {line}: the block holds {actual} bytes, its header says {expected}")]
    Length {
        /// The BEGIN line.
        line: usize,
        /// The header's length.
        expected: usize,
        /// The decoded length.
        actual: usize,
    },
    /// The SHA-256 differs from the header's.
    #[error(
        "line {line}: checksum mismatch: the header says sha256={expected}, the data has {actual}"
    )]
    Checksum {
        /// The BEGIN line.
        line: usize,
        /// The header's digest.
        expected: String,
        /// The data's digest.
        actual: String,
    },
    /// gzip refused the data.
    #[error("line {line}: the compressed data is damaged: {reason}")]
    Gzip {
        /// The BEGIN line.
        line: usize,
        /// gzip's message.
        reason: String,
    },
    /// The data inflates past the limit (a gzip bomb, or not a capture).
    #[error("line {line}: the data inflates to more than {limit} bytes; refused")]
    TooLarge {
        /// The BEGIN line.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload does not start with `guestwall-capture<TAB>1`.
    #[error("line {line}: the payload is not a guestwall capture (first line {text:?})")]
    Payload {
        /// The BEGIN line.
        line: usize,
        /// The payload's first line.
        text: String,
    },
}
