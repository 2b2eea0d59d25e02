//! `guestwall probe`: does RDP answer from the client side (the work is `guestwall_probe`).

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::Args;

/// Examples and exit codes shown by `guestwall probe --help`.
pub const AFTER_HELP: &str = "\
Examples:
  guestwall probe 20.50.1.2                 TCP 3389, then the RDP negotiation and TLS
  guestwall probe vm1.example.com:3390 --timeout 3 --json
  guestwall probe '[2001:db8::4]' --request rdp

Outcomes: no answer (the SYN is dropped: guest firewall, NSG, VM off), refused (nothing listens:
RDP disabled, TermService stopped, another port), RDP did not answer (connected, silence),
not RDP (another program answers), a negotiation failure (the server refuses the requested
security: its code and meaning), RDP answers (the protocol chosen: standard RDP, TLS,
CredSSP/NLA, RDSTLS), and the TLS handshake after it. Each with the likely causes and the next
command. CredSSP (NLA) itself needs credentials and is not attempted.

Exit codes: 0 an RDP server answered (and the TLS handshake completed), 1 it did not, or it
refused the security requested, or TLS failed, 2 bad input (a host that does not resolve).";

/// Arguments of `guestwall probe`.
#[derive(Args)]
pub struct ProbeArgs {
    /// The VM's address or name, with the port when it is not 3389 (`HOST:PORT`,
    /// `[IPv6]:PORT`).
    target: String,
    /// Seconds each step may take: the TCP connect, the RDP answer, the TLS handshake.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = timeout_secs)]
    timeout: f64,
    /// The security protocols to offer, comma-separated: rdp (standard RDP security alone),
    /// tls, nla (CredSSP), nla-ex, rdstls, aad.
    #[arg(long, value_name = "LIST", default_value = "tls,nla")]
    request: String,
    /// Do not run the TLS handshake after the negotiation.
    #[arg(long)]
    no_tls: bool,
    /// Print JSON (schema in docs/json.md); errors are JSON too.
    #[arg(long)]
    pub json: bool,
}

fn timeout_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 600.0 => Ok(t),
        _ => Err(format!(
            "{s:?} is not a number of seconds above 0 and at most 600"
        )),
    }
}

/// Runs `guestwall probe`.
pub fn run(a: ProbeArgs, colour: crate::colour::When, out: &mut dyn Write) -> Result<u8> {
    let ep = guestwall_probe::Endpoint::parse(&a.target).map_err(|e| anyhow!(e))?;
    let opts = guestwall_probe::ProbeOptions {
        timeout: Duration::from_secs_f64(a.timeout),
        request: guestwall_probe::parse_request(&a.request).map_err(|e| anyhow!(e))?,
        tls: !a.no_tls,
    };
    let report = guestwall_probe::probe(&ep, &opts).map_err(|e| anyhow!(e))?;
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &report.to_json())?;
        writeln!(out)?;
    } else {
        report.write_text(&colour.stdout(), out)?;
    }
    Ok(report.exit_code())
}
