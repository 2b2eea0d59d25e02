//! The collector block decoder on arbitrary bytes, and on bytes wrapped into a block with a
//! valid length and checksum (so that gzip and the payload parser are reached).
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sha2::Digest;

fuzz_target!(|data: &[u8]| {
    let _ = guestwall_capture::decode_collector(data, "fuzz");
    let sha: String = sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let block = format!(
        "-----BEGIN GUESTWALL CAPTURE v1-----\nbytes={} sha256={sha}\n{}\n-----END GUESTWALL CAPTURE v1-----\n",
        data.len(),
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    if let Ok(c) = guestwall_capture::decode_collector(block.as_bytes(), "fuzz") {
        let _ = (c.notes.len(), c.registry.len());
    }
});
