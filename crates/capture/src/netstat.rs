//! Who listens on which port: `netstat -ano` rows and `Get-NetTCPConnection` tables.
//!
//! `netstat -ano`: `  TCP    0.0.0.0:3389    0.0.0.0:0    LISTENING    1234` (the state word is
//! localized, so a TCP row whose remote end is port 0 counts as listening too);
//! `  UDP    0.0.0.0:3389    *:*    1234`. `Get-NetTCPConnection` (default table):
//! `LocalAddress LocalPort RemoteAddress RemotePort State AppliedSetting OwningProcess`, then
//! dashes, then rows.

use std::sync::Arc;

use crate::transcript::Line;
use crate::{Capture, Origin};

/// A socket from the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// The local address (`0.0.0.0`, `::`, `[::]` as shown).
    pub address: String,
    /// The local port.
    pub port: u16,
    /// True when listening (TCP `LISTENING`/`Listen`, or a remote port of 0; every UDP row).
    pub listening: bool,
    /// The state text as shown.
    pub state: String,
    /// The owning process.
    pub pid: Option<u32>,
    /// Its process name, when known.
    pub process: Option<String>,
    /// The services in that process, when known.
    pub services: Vec<String>,
    /// Where it was read.
    pub origin: Origin,
}

fn split_endpoint(s: &str) -> Option<(&str, &str)> {
    let pos = s.rfind(':')?;
    Some((s.get(..pos)?, s.get(pos + 1..)?))
}

/// Parses one `netstat -ano` row.
pub(crate) fn netstat_row(s: &str, origin: Origin) -> Option<Listener> {
    let cols: Vec<&str> = s.split_whitespace().collect();
    let proto = cols.first()?.to_ascii_uppercase();
    let proto = proto.trim_end_matches("V6").to_string();
    if proto != "TCP" && proto != "UDP" {
        return None;
    }
    let (addr, port) = split_endpoint(cols.get(1)?)?;
    let port: u16 = port.parse().ok()?;
    let (_, rport) = split_endpoint(cols.get(2)?)?;
    let (state, pid) = match (proto.as_str(), cols.len()) {
        ("TCP", 5) => (cols.get(3)?.to_string(), cols.get(4)?.parse().ok()),
        ("TCP", 4) => (cols.get(3)?.to_string(), None),
        ("UDP", 4) => (String::new(), cols.get(3)?.parse().ok()),
        ("UDP", 3) => (String::new(), None),
        _ => return None,
    };
    let listening = proto == "UDP" || state.eq_ignore_ascii_case("LISTENING") || rport == "0";
    Some(Listener {
        protocol: proto,
        address: addr.to_string(),
        port,
        listening,
        state,
        pid,
        process: None,
        services: Vec::new(),
        origin,
    })
}

/// True when the line is a netstat row or header.
pub(crate) fn is_netstat(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with("Proto ")
        || netstat_row(s, Origin::new(&Arc::from(""), 0)).is_some()
        || is_table_header(s)
}

fn is_table_header(s: &str) -> bool {
    let c: Vec<&str> = s.split_whitespace().collect();
    c.first() == Some(&"LocalAddress") && c.get(1) == Some(&"LocalPort")
}

/// Parses netstat rows or a Get-NetTCPConnection table from `lines[start]`.
pub(crate) fn parse(lines: &[Line], start: usize, cap: &mut Capture) -> usize {
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let mut i = start;
    let mut table = false;
    while let Some(line) = lines.get(i) {
        let text = line.text.as_str();
        let t = text.trim();
        if t.is_empty() {
            i += 1;
            if lines.get(i).is_some_and(|l| is_netstat(&l.text)) {
                continue;
            }
            break;
        }
        let origin = Origin::new(&file, line.number);
        if t.starts_with("Proto ") || t.starts_with("Active Connections") {
            i += 1;
            continue;
        }
        if is_table_header(text) {
            table = true;
            i += 1;
            continue;
        }
        if table && t.bytes().all(|b| b == b'-' || b == b' ') {
            i += 1;
            continue;
        }
        if table {
            let c: Vec<&str> = t.split_whitespace().collect();
            let port = c.get(1).and_then(|p| p.parse::<u16>().ok());
            match (c.first(), port, c.len()) {
                (Some(a), Some(p), n) if n >= 5 => {
                    let state = c.get(4).copied().unwrap_or("").to_string();
                    cap.listeners.push(Listener {
                        protocol: "TCP".into(),
                        address: a.to_string(),
                        port: p,
                        listening: state.eq_ignore_ascii_case("Listen"),
                        state,
                        pid: c.last().and_then(|x| x.parse().ok()),
                        process: None,
                        services: Vec::new(),
                        origin,
                    });
                    i += 1;
                    continue;
                }
                _ => break,
            }
        }
        // `netstat -b` puts the process and services on the lines after a row.
        if let Some(name) = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            if let Some(l) = cap.listeners.last_mut() {
                l.process = Some(name.to_string());
            }
            i += 1;
            continue;
        }
        match netstat_row(text, origin) {
            Some(l) => cap.listeners.push(l),
            None => break,
        }
        i += 1;
    }
    i.saturating_sub(start).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows() {
        let o = Origin::new(&Arc::from("t"), 1);
        let l = netstat_row(
            "  TCP    0.0.0.0:3389           0.0.0.0:0              LISTENING       1044",
            o.clone(),
        )
        .unwrap();
        assert_eq!((l.port, l.pid, l.listening), (3389, Some(1044), true));
        let l = netstat_row(
            "  TCP    [::]:3389              [::]:0                 ABH\u{D6}REN         1044",
            o.clone(),
        )
        .unwrap();
        assert_eq!((l.address.as_str(), l.listening), ("[::]", true));
        let l = netstat_row(
            "  TCP    10.0.0.4:3389          10.0.0.9:50000         ESTABLISHED     1044",
            o.clone(),
        )
        .unwrap();
        assert!(!l.listening);
        let l = netstat_row(
            "  UDP    0.0.0.0:3389           *:*                    1044",
            o,
        )
        .unwrap();
        assert_eq!((l.protocol.as_str(), l.pid), ("UDP", Some(1044)));
    }
}
