//! The TLS handshake RDP starts after a Negotiation Response that selects TLS, CredSSP or
//! RDSTLS (rustls, ring provider). RDP servers present self-signed certificates, so the
//! certificate is not judged: the handshake must complete, and its SHA-256 fingerprint is
//! reported for the user to compare with the VM's.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Serialize;

/// What the handshake established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The cipher suite.
    pub cipher_suite: String,
    /// SHA-256 of the server's certificate, hex pairs separated by colons.
    pub certificate_sha256: Option<String>,
}

/// Accepts any certificate (its signature over the handshake is still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Runs the client side of the handshake over `sock` (whose timeouts bound each read and
/// write); `host` is the name or address the user gave.
pub fn handshake<S: Read + Write>(sock: &mut S, host: &str) -> Result<TlsInfo, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string())
            .unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())),
    };
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        match conn.complete_io(sock) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err("the server closed the connection during the handshake".into())
            }
            Ok(_) => {}
            Err(e) => return Err(describe(&e)),
        }
    }
    let version = conn
        .protocol_version()
        .map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
            other => format!("{other:?}"),
        })
        .unwrap_or_default();
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let certificate_sha256 = conn.peer_certificates().and_then(|c| c.first()).map(|c| {
        ring::digest::digest(&ring::digest::SHA256, c.as_ref())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    });
    // Close politely; the server may already have gone.
    conn.send_close_notify();
    let _ = conn.complete_io(sock);
    Ok(TlsInfo {
        version,
        cipher_suite,
        certificate_sha256,
    })
}

/// The handshake error for people: a timeout says so, a version mismatch says what this
/// check speaks.
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "no TLS answer within the timeout".into()
        }
        _ => {
            let s = e.to_string();
            if s.contains("ProtocolVersion")
                || s.contains("protocol_version")
                || s.contains("Incompatible")
            {
                format!("{s} (this check speaks TLS 1.2 and 1.3; a server offering only TLS 1.0/1.1 fails it)")
            } else {
                s
            }
        }
    }
}
