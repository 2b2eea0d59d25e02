//! The first bytes of an RDP connection, written and read by hand ([MS-RDPBCGR] 2.2.1.1 and
//! 2.2.1.2): the client's X.224 Connection Request carrying an RDP Negotiation Request, and
//! the server's X.224 Connection Confirm carrying an RDP Negotiation Response or Failure.
//!
//! Both travel in a TPKT (RFC 1006: version 3, a reserved byte, the big-endian length of the
//! whole packet) around an X.224 TPDU (ISO 8073 class 0: length indicator, code, DST-REF,
//! SRC-REF, class option).

use serde::Serialize;

/// PROTOCOL_RDP: standard RDP security (no flag set).
pub const PROTOCOL_RDP: u32 = 0;
/// PROTOCOL_SSL: TLS.
pub const PROTOCOL_SSL: u32 = 0x1;
/// PROTOCOL_HYBRID: CredSSP (Network Level Authentication), over TLS.
pub const PROTOCOL_HYBRID: u32 = 0x2;
/// PROTOCOL_RDSTLS: RDSTLS (credentials over TLS, used by redirection and Remote Credential
/// Guard).
pub const PROTOCOL_RDSTLS: u32 = 0x4;
/// PROTOCOL_HYBRID_EX: CredSSP with the Early User Authorization Result PDU.
pub const PROTOCOL_HYBRID_EX: u32 = 0x8;
/// PROTOCOL_RDSAAD: RDS AAD authentication (Microsoft Entra ID).
pub const PROTOCOL_RDSAAD: u32 = 0x10;

/// TPDU code of a Connection Request (CR, credit 0).
const X224_CR: u8 = 0xe0;
/// TPDU code of a Connection Confirm (CC).
const X224_CC: u8 = 0xd0;
/// TYPE_RDP_NEG_REQ.
const NEG_REQ: u8 = 0x01;
/// TYPE_RDP_NEG_RSP.
const NEG_RSP: u8 = 0x02;
/// TYPE_RDP_NEG_FAILURE.
const NEG_FAILURE: u8 = 0x03;

/// The Connection Request with an RDP Negotiation Request for `requested` (PROTOCOL_* flags):
/// 19 bytes, no cookie or routing token.
// TPKT lengths are big-endian (RFC 1006), the rest of RDP little-endian.
#[allow(clippy::big_endian_bytes)]
pub fn connection_request(requested: u32) -> [u8; 19] {
    let mut b = [0u8; 19];
    // TPKT: version 3, reserved, length 19.
    b[0] = 3;
    b[2..4].copy_from_slice(&19u16.to_be_bytes());
    // X.224: length indicator (the 6 fixed bytes after it + the 8 of the negotiation
    // request), CR, DST-REF 0, SRC-REF 0, class 0.
    b[4] = 14;
    b[5] = X224_CR;
    // rdpNegReq: type, flags 0, length 8 (little-endian), requestedProtocols.
    b[11] = NEG_REQ;
    b[13..15].copy_from_slice(&8u16.to_le_bytes());
    b[15..19].copy_from_slice(&requested.to_le_bytes());
    b
}

/// What the server's Connection Confirm says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// An RDP Negotiation Response: the protocol the server chose, and its flags.
    Selected {
        /// PROTOCOL_* value.
        protocol: u32,
        /// EXTENDED_CLIENT_DATA_SUPPORTED etc.
        flags: u8,
    },
    /// An RDP Negotiation Failure and its failureCode.
    Failure {
        /// The failure code (see [`failure_name`]).
        code: u32,
    },
    /// A Connection Confirm without a negotiation structure: a server that predates
    /// negotiation (Windows 2000/XP/2003 before SP1), standard RDP security.
    Legacy,
}

/// Why the answer is not a Connection Confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than the TPKT header says (or than a header).
    Short,
    /// Not a TPKT (version 3): another protocol answered.
    NotTpkt,
    /// A TPKT, but no X.224 Connection Confirm in it (TPDU code given).
    NotConfirm(u8),
    /// A negotiation structure with a type or length that is not in the specification.
    BadNegotiation,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Short => write!(f, "a truncated TPKT packet"),
            ParseError::NotTpkt => write!(f, "not a TPKT packet (not RDP)"),
            ParseError::NotConfirm(c) => {
                write!(
                    f,
                    "an X.224 TPDU of code 0x{c:02x}, not a Connection Confirm"
                )
            }
            ParseError::BadNegotiation => write!(f, "a malformed RDP negotiation structure"),
        }
    }
}

/// How many bytes the packet starting with `head` (at least 4 bytes) has, when it is a TPKT.
#[allow(clippy::big_endian_bytes)] // RFC 1006: the TPKT length is big-endian
pub fn tpkt_length(head: &[u8]) -> Option<usize> {
    if head.len() < 4 || head[0] != 3 {
        return None;
    }
    Some(u16::from_be_bytes([head[2], head[3]]) as usize)
}

/// Parses the Connection Confirm (a whole TPKT packet).
pub fn parse_confirm(b: &[u8]) -> Result<Confirm, ParseError> {
    if b.len() < 4 {
        return Err(ParseError::Short);
    }
    let len = tpkt_length(b).ok_or(ParseError::NotTpkt)?;
    if len < 11 || b.len() < len {
        return Err(ParseError::Short);
    }
    let li = b[4] as usize;
    if li < 6 || 5 + li > len {
        return Err(ParseError::Short);
    }
    if b[5] & 0xf0 != X224_CC {
        return Err(ParseError::NotConfirm(b[5]));
    }
    // The negotiation structure follows the 7 fixed bytes of the TPDU header, inside it.
    let neg = &b[11..5 + li];
    if neg.is_empty() {
        return Ok(Confirm::Legacy);
    }
    if neg.len() < 8 || u16::from_le_bytes([neg[2], neg[3]]) != 8 {
        return Err(ParseError::BadNegotiation);
    }
    let value = u32::from_le_bytes([neg[4], neg[5], neg[6], neg[7]]);
    match neg[0] {
        NEG_RSP => Ok(Confirm::Selected {
            protocol: value,
            flags: neg[1],
        }),
        NEG_FAILURE => Ok(Confirm::Failure { code: value }),
        _ => Err(ParseError::BadNegotiation),
    }
}

/// A protocol's name as people know it.
pub fn protocol_name(p: u32) -> &'static str {
    match p {
        PROTOCOL_RDP => "standard RDP security",
        PROTOCOL_SSL => "TLS",
        PROTOCOL_HYBRID => "CredSSP (NLA)",
        PROTOCOL_RDSTLS => "RDSTLS",
        PROTOCOL_HYBRID_EX => "CredSSP with early user authorization (NLA)",
        PROTOCOL_RDSAAD => "RDS AAD (Microsoft Entra ID)",
        _ => "an unknown protocol",
    }
}

/// A protocol's key in JSON and on the command line.
pub fn protocol_key(p: u32) -> &'static str {
    match p {
        PROTOCOL_RDP => "rdp",
        PROTOCOL_SSL => "tls",
        PROTOCOL_HYBRID => "nla",
        PROTOCOL_RDSTLS => "rdstls",
        PROTOCOL_HYBRID_EX => "nla-ex",
        PROTOCOL_RDSAAD => "aad",
        _ => "unknown",
    }
}

/// The protocol of a key (`rdp`, `tls`, `nla`, `nla-ex`, `rdstls`, `aad`).
pub fn protocol_of_key(k: &str) -> Option<u32> {
    [
        PROTOCOL_RDP,
        PROTOCOL_SSL,
        PROTOCOL_HYBRID,
        PROTOCOL_RDSTLS,
        PROTOCOL_HYBRID_EX,
        PROTOCOL_RDSAAD,
    ]
    .into_iter()
    .find(|&p| protocol_key(p).eq_ignore_ascii_case(k))
}

/// The keys of the flags set in `requested` (`rdp` when none).
pub fn requested_keys(requested: u32) -> Vec<&'static str> {
    let v: Vec<&'static str> = (0..5)
        .map(|i| 1u32 << i)
        .filter(|f| requested & f != 0)
        .map(protocol_key)
        .collect();
    if v.is_empty() {
        vec![protocol_key(PROTOCOL_RDP)]
    } else {
        v
    }
}

/// The failure code's name and meaning ([MS-RDPBCGR] 2.2.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FailureInfo {
    /// The code.
    pub code: u32,
    /// Its name in the specification.
    pub name: &'static str,
    /// What it means.
    pub meaning: &'static str,
}

/// Names a negotiation failure code.
pub fn failure_name(code: u32) -> FailureInfo {
    let (name, meaning) = match code {
        1 => ("SSL_REQUIRED_BY_SERVER", "the server requires TLS or CredSSP, and the client offered neither (or only CredSSP where the server does TLS alone)"),
        2 => ("SSL_NOT_ALLOWED_BY_SERVER", "the server is set to standard RDP security only (SecurityLayer 0) and refuses TLS"),
        3 => ("SSL_CERT_NOT_ON_SERVER", "the server has no usable certificate for TLS (the RDP certificate is missing, expired or its private key unreadable)"),
        4 => ("INCONSISTENT_FLAGS", "the server found the requested protocols inconsistent"),
        5 => ("HYBRID_REQUIRED_BY_SERVER", "the server requires Network Level Authentication (CredSSP), which the client did not offer"),
        6 => ("SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER", "the server requires TLS with user authentication"),
        _ => ("unknown", "a failure code the specification does not define"),
    };
    FailureInfo {
        code,
        name,
        meaning,
    }
}

/// The names of the flags of a Negotiation Response.
pub fn response_flags(flags: u8) -> Vec<&'static str> {
    [
        (0x01, "EXTENDED_CLIENT_DATA_SUPPORTED"),
        (0x02, "DYNVC_GFX_PROTOCOL_SUPPORTED"),
        (0x04, "NEGRSP_FLAG_RESERVED"),
        (0x08, "RESTRICTED_ADMIN_MODE_SUPPORTED"),
        (0x10, "REDIRECTED_AUTHENTICATION_MODE_SUPPORTED"),
    ]
    .into_iter()
    .filter(|(f, _)| flags & f != 0)
    .map(|(_, n)| n)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_are_the_specifications() {
        // [MS-RDPBCGR] 4.1.1 shows the same TPKT, X.224 and rdpNegReq fields.
        let r = connection_request(PROTOCOL_SSL | PROTOCOL_HYBRID);
        assert_eq!(
            r,
            [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 3, 0, 0, 0]
        );
        assert_eq!(tpkt_length(&r), Some(19));
    }

    #[test]
    fn confirms_are_read() {
        // xrdp 0.9's answer to TLS|CredSSP as captured on loopback: TLS selected, flags 0x01.
        let cc = [
            3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 1, 8, 0, 1, 0, 0, 0,
        ];
        assert_eq!(
            parse_confirm(&cc),
            Ok(Confirm::Selected {
                protocol: PROTOCOL_SSL,
                flags: 1
            })
        );
        let fail = [3, 0, 0, 19, 14, 0xd0, 0, 0, 0, 0, 0, 3, 0, 8, 0, 5, 0, 0, 0];
        assert_eq!(parse_confirm(&fail), Ok(Confirm::Failure { code: 5 }));
        assert_eq!(failure_name(5).name, "HYBRID_REQUIRED_BY_SERVER");
        let legacy = [3, 0, 0, 11, 6, 0xd0, 0, 0, 0, 0, 0];
        assert_eq!(parse_confirm(&legacy), Ok(Confirm::Legacy));
    }

    #[test]
    fn other_answers_are_refused() {
        assert_eq!(
            parse_confirm(b"SSH-2.0-OpenSSH_9.2\r\n"),
            Err(ParseError::NotTpkt)
        );
        assert_eq!(
            parse_confirm(&[3, 0, 0, 19, 14, 0xd0]),
            Err(ParseError::Short)
        );
        let dt = [3, 0, 0, 11, 6, 0xf0, 0, 0, 0, 0, 0];
        assert_eq!(parse_confirm(&dt), Err(ParseError::NotConfirm(0xf0)));
        let bad = [3, 0, 0, 19, 14, 0xd0, 0, 0, 0, 0, 0, 9, 0, 8, 0, 5, 0, 0, 0];
        assert_eq!(parse_confirm(&bad), Err(ParseError::BadNegotiation));
        // A length indicator past the packet.
        let li = [3, 0, 0, 11, 60, 0xd0, 0, 0, 0, 0, 0];
        assert_eq!(parse_confirm(&li), Err(ParseError::Short));
    }

    #[test]
    fn protocol_keys_round_trip() {
        for p in [0, 1, 2, 4, 8, 16] {
            assert_eq!(protocol_of_key(protocol_key(p)), Some(p));
        }
        assert_eq!(requested_keys(0), ["rdp"]);
        assert_eq!(requested_keys(3), ["tls", "nla"]);
    }
}
