//! `guestwall probe`: the article's symptom measured from the client. Does a TCP connection
//! to the RDP port get through, and does an RDP server answer on it?
//!
//! 1. TCP connect, bounded by the timeout: **no answer** (the SYN is dropped: a firewall, an
//!    NSG, a VM that is off), **refused** (a reset: nothing listens there), **unreachable**
//!    (an ICMP error), or connected.
//! 2. The X.224 Connection Request with an RDP Negotiation Request ([`x224`], written by
//!    hand), and the server's Connection Confirm: the **negotiated protocol** (standard RDP,
//!    TLS, CredSSP/NLA, RDSTLS), a **negotiation failure** code, **silence**, a **closed**
//!    connection, or an answer that is **not RDP**.
//! 3. When TLS, CredSSP or RDSTLS was selected, the TLS handshake ([`tls`], rustls): it
//!    completes (version, cipher suite, certificate fingerprint) or **fails**. CredSSP itself
//!    (NLA) needs credentials and is not attempted.
//!
//! Each outcome comes with its likely causes and the next command ([`Report::advice`]); text
//! and JSON reports write to an `impl Write`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod tls;
pub mod x224;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use guestwall_diagnose::{Palette, Verdict};
use serde::Serialize;

/// The RDP port Windows listens on unless `PortNumber` says otherwise.
pub const DEFAULT_PORT: u16 = 3389;
/// The protocols requested by default: TLS and CredSSP, as mstsc does.
pub const DEFAULT_REQUEST: u32 = x224::PROTOCOL_SSL | x224::PROTOCOL_HYBRID;

/// Exit code: an RDP server answered (and the TLS handshake, when checked, completed).
pub const EXIT_ANSWERED: u8 = 0;
/// Exit code: no RDP server could be reached or it refused the connection's security.
pub const EXIT_NOT_ANSWERED: u8 = 1;
/// Exit code: bad input (an address that does not resolve, a bad port).
pub const EXIT_BAD_INPUT: u8 = 2;

/// What the probe does.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Bound of each step: the TCP connect, the X.224 answer, the TLS handshake.
    pub timeout: Duration,
    /// The PROTOCOL_* flags of the Negotiation Request.
    pub request: u32,
    /// Run the TLS handshake when the server selects a protocol that starts with TLS.
    pub tls: bool,
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions {
            timeout: Duration::from_secs(5),
            request: DEFAULT_REQUEST,
            tls: true,
        }
    }
}

/// Where to probe: a host (name or address) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host as given (brackets of an IPv6 address removed).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `HOST`, `HOST:PORT`, `[IPv6]`, `[IPv6]:PORT` or a bare IPv6 address.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let bad_port = |p: &str| format!("{s:?}: {p:?} is no TCP port (1-65535)");
        let port_of = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad_port(p)),
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: an IPv6 address needs its closing ']'"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, port_of(p)?),
                None if after.is_empty() => (h, DEFAULT_PORT),
                None => return Err(format!("{s:?}: expected HOST[:PORT]")),
            }
        } else if s.matches(':').count() > 1 {
            (s, DEFAULT_PORT) // a bare IPv6 address
        } else if let Some((h, p)) = s.rsplit_once(':') {
            (h, port_of(p)?)
        } else {
            (s, DEFAULT_PORT)
        };
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Endpoint {
    /// `host:port` (`[v6]:port`), or the host alone for port 3389.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == DEFAULT_PORT {
            write!(f, "{host}")
        } else {
            write!(f, "{host}:{}", self.port)
        }
    }
}

/// What happened, step by step; the last step reached decides the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The TCP connection got no answer within the timeout: the SYN was dropped.
    NoAnswer,
    /// The TCP connection was refused (a reset): nothing listens on the port.
    Refused,
    /// An ICMP error: no route to the host or network.
    Unreachable {
        /// The system's message.
        message: String,
    },
    /// Connected, but no answer to the X.224 Connection Request within the timeout.
    NoRdpAnswer,
    /// Connected, and the peer closed the connection without answering.
    Closed,
    /// Connected, and the answer is not an X.224 Connection Confirm.
    NotRdp {
        /// Why it is not one.
        reason: String,
        /// The first bytes received, hex.
        first_bytes: String,
    },
    /// The server refused the requested security protocols.
    NegotiationFailure {
        /// The failure code, its name and meaning.
        failure: x224::FailureInfo,
    },
    /// An RDP server answered and chose a protocol; the TLS handshake, if checked, follows.
    Rdp {
        /// The selected protocol's key (`rdp`, `tls`, `nla`, `nla-ex`, `rdstls`, `aad`).
        protocol: &'static str,
        /// Its name.
        protocol_name: &'static str,
        /// The server's negotiation flags (none for a server that predates negotiation).
        server_flags: Vec<&'static str>,
        /// The server predates protocol negotiation (a Confirm without a response).
        legacy: bool,
        /// The TLS handshake: `None` when not checked (standard RDP, or `--no-tls`).
        tls: Option<TlsCheck>,
    },
}

/// The TLS handshake's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum TlsCheck {
    /// It completed.
    Completed(tls::TlsInfo),
    /// It failed.
    Failed {
        /// Why.
        message: String,
    },
}

/// The probe's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Version of the JSON document (`docs/json.md`).
    pub schema: u32,
    /// The host as given.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address connected to (or last tried).
    pub address: Option<String>,
    /// The protocols requested.
    pub requested: Vec<&'static str>,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// True when an RDP server answered and nothing that was checked failed.
    pub rdp_answers: bool,
    /// Time to connect, in milliseconds (when connected).
    pub connect_ms: Option<f64>,
    /// Time from the request to the confirm, in milliseconds.
    pub answer_ms: Option<f64>,
    /// The timeout of each step, in seconds.
    pub timeout_s: f64,
    /// Likely causes, most likely first.
    pub likely_causes: Vec<String>,
    /// What to run next.
    pub next: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Probes `ep`; an error only for an address that does not resolve.
pub fn probe(ep: &Endpoint, opts: &ProbeOptions) -> Result<Report, String> {
    let addrs: Vec<SocketAddr> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: cannot resolve: {e}", ep.host))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{}: resolves to no address", ep.host));
    }
    let timeout = opts.timeout.max(Duration::from_millis(1));
    let mut report = Report {
        schema: guestwall_diagnose::JSON_SCHEMA,
        host: ep.host.clone(),
        port: ep.port,
        address: None,
        requested: x224::requested_keys(opts.request),
        outcome: Outcome::NoAnswer,
        rdp_answers: false,
        connect_ms: None,
        answer_ms: None,
        timeout_s: timeout.as_secs_f64(),
        likely_causes: Vec::new(),
        next: Vec::new(),
    };
    // The first address that connects; otherwise the outcome of the last one tried.
    let mut stream = None;
    for a in &addrs {
        report.address = Some(a.to_string());
        let start = Instant::now();
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                report.connect_ms = Some(ms(start.elapsed()));
                stream = Some(s);
                break;
            }
            Err(e) => {
                report.outcome = match e.kind() {
                    io::ErrorKind::ConnectionRefused => Outcome::Refused,
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Outcome::NoAnswer,
                    _ => Outcome::Unreachable {
                        message: e.to_string(),
                    },
                }
            }
        }
    }
    if let Some(mut s) = stream {
        report.outcome = converse(&mut s, ep, opts, timeout, &mut report.answer_ms);
    }
    report.rdp_answers = matches!(
        &report.outcome,
        Outcome::Rdp { tls, .. } if !matches!(tls, Some(TlsCheck::Failed { .. }))
    );
    let (causes, next) = advice(&report.outcome, ep.port);
    let shown = ep.to_string();
    report.likely_causes = causes;
    report.next = next
        .into_iter()
        .map(|n| {
            n.replace("mstsc /v:HOST", &format!("mstsc /v:{shown}"))
                .replace("probe HOST", &format!("probe {shown}"))
        })
        .collect();
    Ok(report)
}

/// The X.224 exchange and the TLS handshake on a connected socket.
fn converse(
    s: &mut TcpStream,
    ep: &Endpoint,
    opts: &ProbeOptions,
    timeout: Duration,
    answer_ms: &mut Option<f64>,
) -> Outcome {
    let _ = s.set_nodelay(true);
    if s.set_read_timeout(Some(timeout)).is_err() || s.set_write_timeout(Some(timeout)).is_err() {
        return Outcome::Closed;
    }
    let start = Instant::now();
    if s.write_all(&x224::connection_request(opts.request))
        .is_err()
    {
        return Outcome::Closed;
    }
    // The TPKT header, then the rest of the packet it announces.
    let mut buf = vec![0u8; 4];
    match read_full(s, &mut buf, start + timeout) {
        Ok(4) => {}
        Ok(0) => return Outcome::Closed,
        Ok(n) => {
            buf.truncate(n);
            return not_rdp(&buf, "a truncated answer".into());
        }
        Err(_) => return Outcome::NoRdpAnswer,
    }
    let Some(len) = x224::tpkt_length(&buf).filter(|&l| (11..=4096).contains(&l)) else {
        // Another protocol: keep what else came at once, for the report.
        let mut more = [0u8; 28];
        if let Ok(n) = read_full(s, &mut more, Instant::now() + Duration::from_millis(200)) {
            buf.extend_from_slice(&more[..n]);
        }
        return not_rdp(&buf, x224::ParseError::NotTpkt.to_string());
    };
    buf.resize(len, 0);
    let got = read_full(s, &mut buf[4..], start + timeout).unwrap_or(0);
    buf.truncate(4 + got);
    *answer_ms = Some(ms(start.elapsed()));
    let confirm = match x224::parse_confirm(&buf) {
        Ok(c) => c,
        Err(e) => return not_rdp(&buf, e.to_string()),
    };
    let (protocol, flags, legacy) = match confirm {
        x224::Confirm::Failure { code } => {
            return Outcome::NegotiationFailure {
                failure: x224::failure_name(code),
            }
        }
        x224::Confirm::Selected { protocol, flags } => (protocol, flags, false),
        x224::Confirm::Legacy => (x224::PROTOCOL_RDP, 0, true),
    };
    let tls =
        (opts.tls && protocol != x224::PROTOCOL_RDP).then(|| match tls::handshake(s, &ep.host) {
            Ok(info) => TlsCheck::Completed(info),
            Err(message) => TlsCheck::Failed { message },
        });
    Outcome::Rdp {
        protocol: x224::protocol_key(protocol),
        protocol_name: x224::protocol_name(protocol),
        server_flags: x224::response_flags(flags),
        legacy,
        tls,
    }
}

fn not_rdp(bytes: &[u8], reason: String) -> Outcome {
    Outcome::NotRdp {
        reason,
        first_bytes: bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Reads until `buf` is full, the peer closes, or `deadline` passes (an error only when
/// nothing came at all before it).
fn read_full(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A peer that closes without reading what was sent resets the connection.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                break
            }
            Err(e) if n == 0 => return Err(e),
            Err(_) => break,
        }
    }
    if n == 0 && deadline.saturating_duration_since(Instant::now()).is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(n) // 0: closed
}

/// The likely causes of an outcome and the next commands (`DISK` stands for the VM's OS
/// disk, a mounted Windows folder or its SYSTEM hive on a rescue host).
pub fn advice(o: &Outcome, port: u16) -> (Vec<String>, Vec<String>) {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let diagnose = "guestwall diagnose DISK   # offline, from the OS disk attached to a rescue VM: the guest firewall, RDP and its services".to_string();
    let listen = format!("serial console: netstat -ano | findstr :{port}   # what listens on TCP {port}, and its PID");
    match o {
        Outcome::NoAnswer => (
            vec![
                format!("the guest firewall drops inbound TCP {port} (a profile blocks it: RDP rule disabled or missing, block all inbound, a block rule)"),
                format!("a network security group or cloud firewall drops TCP {port} before it reaches the VM"),
                "the VM is stopped, still booting, or not at this address".into(),
            ],
            vec![
                "guestwall collect   # while the VM runs: a collector for its serial console or Run Command; then guestwall diagnose CAPTURE".into(),
                diagnose,
                "guestwall script DISK   # the netsh commands to paste into the serial console".into(),
                format!("check the NSG / firewall rules in front of the VM for inbound TCP {port}"),
            ],
        ),
        Outcome::Refused => (
            vec![
                format!("nothing listens on TCP {port}: Remote Desktop is disabled (fDenyTSConnections=1)"),
                "the Remote Desktop Services service (TermService) is disabled or stopped".into(),
                format!("RDP listens on another port (RDP-Tcp\\PortNumber is not {port})"),
            ],
            vec![
                diagnose,
                "serial console: reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\" /v PortNumber".into(),
                "serial console: sc query TermService".into(),
            ],
        ),
        Outcome::Unreachable { .. } => (
            s(&[
                "no route to the host: a wrong address, or the VM's network is down",
                "a router or firewall on the way answers with an ICMP error",
            ]),
            s(&[
                "check the address, and that the VM runs",
                "guestwall diagnose DISK   # when the VM runs but cannot be reached",
            ]),
        ),
        Outcome::NoRdpAnswer => (
            vec![
                "the port is open but no RDP server answers: TermService is hung or still starting".to_string(),
                format!("another program listens on TCP {port}"),
                "something between intercepts the connection (a proxy, a load balancer without a healthy backend)".into(),
            ],
            vec![
                listen,
                "serial console: sc query TermService   # then: net stop TermService && net start TermService".into(),
            ],
        ),
        Outcome::Closed => (
            vec![
                "the listener closed the connection at once: RDP's connection limit, or a security layer that refuses this client".into(),
                format!("another program listens on TCP {port}"),
                "a load balancer without a healthy backend".into(),
            ],
            vec![
                listen,
                "serial console: sc query TermService".into(),
            ],
        ),
        Outcome::NotRdp { .. } => (
            vec![format!("another program answers on TCP {port}, not Remote Desktop")],
            vec![
                listen,
                diagnose,
            ],
        ),
        Outcome::NegotiationFailure { failure } => {
            let cause = match failure.code {
                3 => "the RDP certificate is missing or its private key cannot be read (MachineKeys permissions)".to_string(),
                2 => "the RDP-Tcp listener is set to the standard RDP security layer only (SecurityLayer=0)".into(),
                5 => "Network Level Authentication is required (UserAuthentication=1) and the client did not offer CredSSP".into(),
                _ => format!("the server refused the requested security ({})", failure.name),
            };
            let next = match failure.code {
                3 => vec![
                    "serial console: reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\" /v SSLCertificateSHA1Hash".into(),
                    "serial console: delete the certificate from the Remote Desktop certificate store, then restart TermService (it makes a new one)".into(),
                ],
                2 => vec!["guestwall probe HOST --request rdp   # standard RDP security".into()],
                5 => vec!["guestwall probe HOST --request tls,nla   # offer CredSSP".into()],
                _ => vec!["guestwall probe HOST --request tls,nla".into()],
            };
            (
                vec![
                    "the firewall path is open: an RDP server answered".into(),
                    cause,
                ],
                next,
            )
        }
        Outcome::Rdp { tls: Some(TlsCheck::Failed { .. }), .. } => (
            s(&[
                "the firewall path is open: an RDP server answered",
                "the TLS handshake failed: an unusable RDP certificate, or TLS versions or ciphers the client and server do not share (SCHANNEL settings)",
            ]),
            s(&[
                "serial console: reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\" /s",
                "serial console: reg query \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\" /v SSLCertificateSHA1Hash",
            ]),
        ),
        Outcome::Rdp { protocol, .. } => {
            let mut causes = vec![
                "the firewall path is open: the guest firewall and any NSG let RDP through".to_string(),
                "if a client still cannot log on, the cause is past the firewall: credentials, NLA (CredSSP, its encryption-oracle policy), licensing or the user's rights".to_string(),
            ];
            if *protocol == "rdp" {
                causes.push("the server chose standard RDP security: the connection is not protected by TLS".into());
            }
            (causes, s(&["mstsc /v:HOST   # connect"]))
        }
    }
}

impl Report {
    /// The exit code: 0 an RDP server answered, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.rdp_answers {
            EXIT_ANSWERED
        } else {
            EXIT_NOT_ANSWERED
        }
    }

    /// The causes and next commands, as [`advice`] gives them.
    pub fn advice(&self) -> (&[String], &[String]) {
        (&self.likely_causes, &self.next)
    }

    /// The one-line result.
    pub fn result_line(&self) -> String {
        let port = self.port;
        match &self.outcome {
            Outcome::NoAnswer => format!("no answer on TCP {port}: the connection is dropped"),
            Outcome::Refused => format!("refused on TCP {port}: nothing listens there"),
            Outcome::Unreachable { message } => format!("unreachable: {message}"),
            Outcome::NoRdpAnswer => {
                "RDP did not answer: connected, but no reply to the X.224 Connection Request".into()
            }
            Outcome::Closed => {
                "RDP did not answer: the connection was closed without a reply".into()
            }
            Outcome::NotRdp { reason, .. } => format!("not RDP: the answer is {reason}"),
            Outcome::NegotiationFailure { failure } => format!(
                "RDP answered but refused the security requested: {} (0x{:08x})",
                failure.name, failure.code
            ),
            Outcome::Rdp {
                protocol_name, tls, ..
            } => match tls {
                Some(TlsCheck::Failed { message }) => format!(
                    "RDP answered ({protocol_name}) but the TLS handshake failed: {message}"
                ),
                _ => format!("RDP answers ({protocol_name})"),
            },
        }
    }

    /// Writes the report for people; the result line painted by `palette`.
    pub fn write_text(&self, palette: &Palette, out: &mut dyn Write) -> io::Result<()> {
        let addr = self.address.as_deref().unwrap_or("?");
        writeln!(out, "Probing {}:{} ({addr})", self.host, self.port)?;
        match self.connect_ms {
            Some(t) => writeln!(out, "  TCP: connected in {t:.1} ms")?,
            None => {
                let what = match &self.outcome {
                    Outcome::Refused => "refused (reset)".to_string(),
                    Outcome::Unreachable { message } => format!("unreachable ({message})"),
                    _ => format!("no answer within {} s", self.timeout_s),
                };
                writeln!(out, "  TCP: {what}")?;
            }
        }
        if self.connect_ms.is_some() {
            let asked = self
                .requested
                .iter()
                .map(|k| x224::protocol_of_key(k).map_or(*k, x224::protocol_name))
                .collect::<Vec<_>>()
                .join(", ");
            let got = match &self.outcome {
                Outcome::Rdp { legacy: true, .. } => {
                    "Connection Confirm without negotiation (a server older than RDP 5.2): standard RDP security".to_string()
                }
                Outcome::Rdp { protocol_name, server_flags, .. } => {
                    let flags = if server_flags.is_empty() {
                        String::new()
                    } else {
                        format!("; server flags {}", server_flags.join(", "))
                    };
                    format!("Connection Confirm: {protocol_name} selected{flags}")
                }
                Outcome::NegotiationFailure { failure } => format!(
                    "Negotiation Failure {} (0x{:08x}): {}",
                    failure.name, failure.code, failure.meaning
                ),
                Outcome::NoRdpAnswer => format!("no answer within {} s", self.timeout_s),
                Outcome::Closed => "the connection was closed without an answer".into(),
                Outcome::NotRdp { reason, first_bytes } => {
                    format!("{reason}; first bytes {first_bytes}")
                }
                _ => String::new(),
            };
            let t = self
                .answer_ms
                .map(|t| format!(", answer in {t:.1} ms"))
                .unwrap_or_default();
            guestwall_diagnose::write_wrapped(
                out,
                &format!("  X.224 request ({asked}){t}:"),
                "    ",
                &got,
            )?;
        }
        if let Outcome::Rdp { tls: Some(t), .. } = &self.outcome {
            match t {
                TlsCheck::Completed(i) => {
                    writeln!(
                        out,
                        "  TLS: handshake completed, {}, {}",
                        i.version, i.cipher_suite
                    )?;
                    if let Some(fp) = &i.certificate_sha256 {
                        writeln!(out, "  Certificate SHA-256: {fp}")?;
                    }
                }
                TlsCheck::Failed { message } => {
                    writeln!(out, "  TLS: handshake failed: {message}")?
                }
            }
        }
        if matches!(&self.outcome, Outcome::Rdp { protocol, .. } if *protocol == "nla" || *protocol == "nla-ex")
        {
            writeln!(
                out,
                "  NLA: CredSSP follows the TLS handshake and needs credentials; not attempted"
            )?;
        }
        let verdict = if self.rdp_answers {
            Verdict::Allowed
        } else if matches!(
            self.outcome,
            Outcome::NegotiationFailure { .. } | Outcome::Rdp { .. }
        ) {
            Verdict::Conditional
        } else {
            Verdict::Blocked
        };
        writeln!(
            out,
            "Result: {}.",
            palette.verdict(verdict, &self.result_line())
        )?;
        writeln!(out, "Likely:")?;
        for c in &self.likely_causes {
            guestwall_diagnose::write_wrapped(out, "  - ", "    ", c)?;
        }
        writeln!(out, "Next:")?;
        for n in &self.next {
            writeln!(out, "  {n}")?;
        }
        Ok(())
    }

    /// The JSON document (`docs/json.md`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The PROTOCOL_* flags of a list such as `tls,nla` (`rdp` alone: none).
pub fn parse_request(list: &str) -> Result<u32, String> {
    let mut flags = 0;
    for k in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        flags |= x224::protocol_of_key(k).ok_or_else(|| {
            format!("{k:?} is not a protocol: rdp, tls, nla, nla-ex, rdstls, aad")
        })?;
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = |s: &str| Endpoint::parse(s).map(|e| (e.host, e.port));
        assert_eq!(e("vm1"), Ok(("vm1".into(), 3389)));
        assert_eq!(e("10.0.0.4:3390"), Ok(("10.0.0.4".into(), 3390)));
        assert_eq!(e("[::1]:3391"), Ok(("::1".into(), 3391)));
        assert_eq!(e("[::1]"), Ok(("::1".into(), 3389)));
        assert_eq!(e("fe80::1"), Ok(("fe80::1".into(), 3389)));
        assert!(e("vm1:0").is_err());
        assert!(e("vm1:99999").is_err());
        assert!(e(":3389").is_err());
        assert!(e("[::1").is_err());
    }

    #[test]
    fn requests() {
        assert_eq!(parse_request("tls,nla"), Ok(3));
        assert_eq!(parse_request("rdp"), Ok(0));
        assert_eq!(parse_request("NLA-EX, rdstls"), Ok(12));
        assert!(parse_request("ssh").is_err());
    }

    #[test]
    fn every_outcome_has_causes_and_a_next_step() {
        let outcomes = [
            Outcome::NoAnswer,
            Outcome::Refused,
            Outcome::Unreachable {
                message: "x".into(),
            },
            Outcome::NoRdpAnswer,
            Outcome::Closed,
            Outcome::NotRdp {
                reason: "x".into(),
                first_bytes: String::new(),
            },
            Outcome::NegotiationFailure {
                failure: x224::failure_name(3),
            },
        ];
        for o in outcomes {
            let (c, n) = advice(&o, 3389);
            assert!(!c.is_empty() && !n.is_empty(), "{o:?}");
        }
    }
}
