//! What the PowerShell collector prints, produced in Rust from given registry content: the
//! same walk, the same .NET value rendering, the same filter and escaping, the same text
//! layout, gzip, SHA-256, base64 and marker lines. For tests (round trips, output sizes); not
//! part of the API. The gzip bytes differ from .NET's (another deflate implementation), which
//! the format allows: the decoder only needs valid gzip.

use std::io::Write;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::{escape, Step, BEGIN, END, MAX_DEPTH, RUN_COMMAND_BUDGET, STEPS};

/// A registry key in memory.
#[derive(Debug, Clone, Default)]
pub struct MemKey {
    /// Its name.
    pub name: String,
    /// Its values, in the order Windows enumerates them.
    pub values: Vec<MemValue>,
    /// Its subkeys, in the order Windows enumerates them.
    pub subkeys: Vec<MemKey>,
}

/// A registry value in memory.
#[derive(Debug, Clone)]
pub struct MemValue {
    /// The name.
    pub name: String,
    /// The REG type number.
    pub reg_type: u32,
    /// The stored bytes.
    pub data: Vec<u8>,
}

impl MemKey {
    /// The key at `path` below this one (case-insensitive).
    pub fn find(&self, path: &str) -> Option<&MemKey> {
        let mut k = self;
        for part in path.split('\\').filter(|p| !p.is_empty()) {
            k = k
                .subkeys
                .iter()
                .find(|s| s.name.to_uppercase() == part.to_uppercase())?;
        }
        Some(k)
    }

    /// The key at `path` below this one, to change (case-insensitive).
    pub fn find_mut(&mut self, path: &str) -> Option<&mut MemKey> {
        let mut k = self;
        for part in path.split('\\').filter(|p| !p.is_empty()) {
            k = k
                .subkeys
                .iter_mut()
                .find(|s| s.name.to_uppercase() == part.to_uppercase())?;
        }
        Some(k)
    }
}

/// The port the collector checks: RDP-Tcp's PortNumber when it is a DWORD from 1 to 65535,
/// else `port` (as `$Port` in the PowerShell collector).
pub fn checked_port(m: &Machine, port: u16) -> u16 {
    m.hklm
        .find("SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp")
        .and_then(|k| {
            k.values
                .iter()
                .find(|v| v.name.eq_ignore_ascii_case("PortNumber"))
        })
        .filter(|v| v.reg_type == 4 && v.data.len() >= 4)
        .and_then(|v| {
            u16::try_from(u32::from_le_bytes([
                v.data[0], v.data[1], v.data[2], v.data[3],
            ]))
            .ok()
        })
        .filter(|&p| p != 0)
        .unwrap_or(port)
}

/// A machine as the collector sees it.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// HKLM, with `SYSTEM` (holding `CurrentControlSet`) and `SOFTWARE` below it.
    pub hklm: MemKey,
    /// `$env:COMPUTERNAME`.
    pub host: String,
    /// The UTC time.
    pub time: String,
    /// `$PSVersionTable.PSVersion`.
    pub ps_version: String,
    /// (service, `Some(status)` or `None` when missing).
    pub services: Vec<(String, Option<String>)>,
    /// (name, interface alias, category number); `None` when the cmdlet is unavailable.
    pub networks: Option<Vec<(String, String, i32)>>,
    /// (profile, Enabled, DefaultInboundAction, AllowLocalFirewallRules).
    pub firewall: Vec<(String, String, String, String)>,
    /// (address, port, pid, process, services).
    pub listeners: Vec<(String, u16, u32, String, String)>,
}

/// .NET's RegistryValueKind for a type: the six it names, `Unknown` (0) for the rest.
pub fn kind(t: u32) -> u32 {
    match t {
        1 | 2 | 3 | 4 | 7 | 11 => t,
        _ => 0,
    }
}

fn units(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn lossy(u: &[u16]) -> String {
    char::decode_utf16(u.iter().copied())
        .map(|r| r.unwrap_or('\u{FFFD}'))
        .collect()
}

/// `RegistryKey.GetValue` of a REG_SZ / REG_EXPAND_SZ: the UTF-16 units (an odd last byte
/// dropped), less one trailing NUL.
pub fn dotnet_string(data: &[u8]) -> String {
    let mut u = units(data);
    if u.last() == Some(&0) {
        u.pop();
    }
    lossy(&u)
}

/// `RegistryKey.GetValue` of a REG_MULTI_SZ.
pub fn dotnet_multi(data: &[u8]) -> Vec<String> {
    let mut blob = units(data);
    if blob.last().is_some_and(|&c| c != 0) {
        blob.push(0);
    }
    let len = blob.len();
    let mut out = Vec::new();
    let mut cur = 0;
    while cur < len {
        let mut next = cur;
        while next < len && blob.get(next) != Some(&0) {
            next += 1;
        }
        if next < len {
            if next > cur {
                out.push(lossy(blob.get(cur..next).unwrap_or(&[])));
            } else if next != len - 1 {
                out.push(String::new());
            }
        } else {
            out.push(lossy(blob.get(cur..len).unwrap_or(&[])));
        }
        cur = next + 1;
    }
    out
}

fn le_u64(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in data.iter().take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

/// The collector's `D` function: a value's data field.
pub fn data_field(t: u32, data: &[u8]) -> String {
    match kind(t) {
        1 | 2 => escape(&dotnet_string(data)),
        // .NET reads a DWORD of up to 4 bytes as an int, up to 8 as a long, more as bytes;
        // PowerShell's -f then formats the first element of a byte array.
        4 if data.len() <= 8 => format!("{:08x}", le_u64(data)),
        11 if data.len() <= 8 => format!("{:016x}", le_u64(data)),
        4 => format!("{:08x}", data.first().copied().unwrap_or(0)),
        11 => format!("{:016x}", data.first().copied().unwrap_or(0)),
        7 => {
            let items = dotnet_multi(data);
            let joined: Vec<String> = items.iter().map(|s| escape(s)).collect();
            format!("{}:{}", items.len(), joined.join("\\0"))
        }
        _ => data.iter().map(|b| format!("{b:02X}")).collect(),
    }
}

fn token_values<'a>(s: &'a str, token: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = s.get(from..).and_then(|r| r.find(token)) {
        let start = from + pos + token.len();
        let rest = s.get(start..).unwrap_or("");
        let end = rest.find('|').unwrap_or(rest.len());
        out.push(rest.get(..end).unwrap_or(""));
        from = start;
    }
    out
}

fn digits(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
}

/// The collector's `M` function: can the rule string matter for inbound TCP to `port`?
pub fn rule_matters(s: &str, port: u16) -> bool {
    if s.contains("|Dir=Out|") || s.ends_with("|Dir=Out") {
        return false;
    }
    let pr = token_values(s, "|Protocol=");
    if !pr.is_empty()
        && !pr
            .iter()
            .any(|x| *x == "6" || *x == "256" || !digits(x, usize::MAX))
    {
        return false;
    }
    // RDP is served by TermService in svchost.exe (System on Windows 7), not by an app package.
    if s.contains("|AppPkgId=") {
        return false;
    }
    for a in token_values(s, "|App=") {
        let l = a.to_ascii_lowercase();
        if !(l == "svchost.exe" || l.ends_with("\\svchost.exe") || l == "system") {
            return false;
        }
    }
    for v in token_values(s, "|Svc=") {
        if !(v.eq_ignore_ascii_case("termservice") || v == "*") {
            return false;
        }
    }
    let mut lp = Vec::new();
    let mut from = 0;
    while let Some(pos) = s.get(from..).and_then(|r| r.find("|LPort")) {
        let at = from + pos + "|LPort".len();
        let rest = s.get(at..).unwrap_or("");
        let skip = ["2_10=", "2_20=", "="]
            .iter()
            .find(|p| rest.starts_with(**p))
            .map(|p| p.len());
        if let Some(n) = skip {
            let v = rest.get(n..).unwrap_or("");
            lp.push(v.get(..v.find('|').unwrap_or(v.len())).unwrap_or(""));
        }
        from = at;
    }
    if lp.is_empty() {
        return true;
    }
    for x in lp {
        if let Some((a, b)) = x
            .split_once('-')
            .filter(|(a, b)| digits(a, 5) && digits(b, 5))
        {
            let (a, b): (u32, u32) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
            if a <= u32::from(port) && u32::from(port) <= b {
                return true;
            }
        } else if digits(x, 5) {
            if x.parse::<u32>().ok() == Some(u32::from(port)) {
                return true;
            }
        } else {
            return true;
        }
    }
    false
}

/// `-creplace '\|Desc=[^|]*', ''`.
pub fn strip_desc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("|Desc=") {
        out.push_str(rest.get(..pos).unwrap_or(""));
        let after = rest.get(pos + "|Desc=".len()..).unwrap_or("");
        rest = after
            .get(after.find('|').unwrap_or(after.len())..)
            .unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn is_rule_key(path: &str) -> bool {
    path.ends_with("\\FirewallRules")
        || path.ends_with("\\RestrictedServices\\Static\\System")
        || path.ends_with("\\RestrictedServices\\Configurable\\System")
}

fn walk(
    root: &MemKey,
    path: &str,
    recurse: bool,
    skip: &[&str],
    depth: usize,
    port: u16,
    out: &mut Vec<String>,
) {
    let Some(k) = root.find(path) else {
        out.push(format!("absent\t{}", escape(&format!("HKLM\\{path}"))));
        return;
    };
    let skipped = |n: &str| skip.iter().any(|x| x.eq_ignore_ascii_case(n));
    let all = recurse && depth < MAX_DEPTH && !k.subkeys.iter().any(|s| skipped(&s.name));
    let p = escape(&format!("HKLM\\{path}"));
    out.push(if all {
        format!("key\t{p}\ts")
    } else {
        format!("key\t{p}")
    });
    let rules = is_rule_key(path);
    let mut n = 0;
    for v in &k.values {
        let t = kind(v.reg_type);
        let data = if rules && t == 1 {
            let s = dotnet_string(&v.data);
            if !rule_matters(&s, port) && !rule_matters(&s, 3389) {
                n += 1;
                continue;
            }
            escape(&strip_desc(&s))
        } else {
            data_field(v.reg_type, &v.data)
        };
        out.push(format!("val\t{}\t{t}\t{data}", escape(&v.name)));
    }
    if n > 0 {
        out.push(format!("skipped\t{n}"));
    }
    if recurse && depth < MAX_DEPTH {
        for s in &k.subkeys {
            if !skipped(&s.name) {
                walk(
                    root,
                    &format!("{path}\\{}", s.name),
                    recurse,
                    skip,
                    depth + 1,
                    port,
                    out,
                );
            }
        }
    }
}

/// The payload text the collector would build, given `port` (`guestwall collect --port`):
/// it checks the port RDP listens on ([`checked_port`]).
pub fn payload(m: &Machine, port: u16) -> String {
    payload_at(m, checked_port(m, port))
}

/// The payload text of a collector that checks `port` whatever PortNumber says (a collector
/// from before it read PortNumber, or one that could not read it).
pub fn payload_at(m: &Machine, port: u16) -> String {
    let mut out = vec![
        "guestwall-capture\t1".to_string(),
        format!("host\t{}", escape(&m.host)),
        format!("time\t{}", m.time),
        format!("port\t{port}"),
        format!("ps\t{}", escape(&m.ps_version)),
    ];
    for step in STEPS {
        match *step {
            Step::Walk {
                path,
                recurse,
                skip,
            } => walk(&m.hklm, path, recurse, skip, 0, port, &mut out),
            Step::Values { path, names } => match m.hklm.find(path) {
                None => out.push(format!("absent\t{}", escape(&format!("HKLM\\{path}")))),
                Some(k) => {
                    out.push(format!("part\t{}", escape(&format!("HKLM\\{path}"))));
                    for name in names {
                        match k.values.iter().find(|v| v.name.eq_ignore_ascii_case(name)) {
                            Some(v) => out.push(format!(
                                "val\t{}\t{}\t{}",
                                escape(name),
                                kind(v.reg_type),
                                data_field(v.reg_type, &v.data)
                            )),
                            None => out.push(format!("noval\t{}", escape(name))),
                        }
                    }
                }
            },
        }
    }
    for (s, status) in &m.services {
        out.push(format!(
            "svc\t{s}\t{}",
            status.as_deref().unwrap_or("Missing")
        ));
    }
    match &m.networks {
        Some(list) => {
            out.push("checked\tnetworks".into());
            for (n, a, c) in list {
                out.push(format!("net\t{}\t{}\t{c}", escape(n), escape(a)));
            }
        }
        None => out.push("unavailable\tGet-NetConnectionProfile".into()),
    }
    for (p, e, d, a) in &m.firewall {
        out.push(format!("fw\t{}\t{e}\t{d}\t{a}", escape(p)));
    }
    out.push("checked\tlisteners".into());
    for (a, p, id, pn, sv) in &m.listeners {
        out.push(format!(
            "listen\tTCP\t{}\t{p}\t{id}\t{}\t{}",
            escape(a),
            escape(pn),
            escape(sv)
        ));
    }
    let n = out.len() + 1;
    out.push(format!("end\t{n}"));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The marker block for a payload (gzip, SHA-256, base64 at 76 characters a line, CRLF), as
/// `$block` holds it.
pub fn block(payload: &str) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(payload.as_bytes());
    let z = gz.finish().unwrap_or_default();
    let sha: String = Sha256::digest(&z)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&z);
    let lines: Vec<&str> = (0..b64.len().div_ceil(76))
        .filter_map(|i| b64.get(i * 76..((i + 1) * 76).min(b64.len())))
        .collect();
    format!(
        "{BEGIN}\r\nbytes={} sha256={sha}\r\n{}\r\n{END}",
        z.len(),
        lines.join("\r\n")
    )
}

/// Everything the collector prints: the block, and the notice when it is too long for Run
/// Command.
pub fn output(m: &Machine, port: u16) -> String {
    let b = block(&payload(m, port));
    let mut s = format!("{b}\r\n");
    if b.len() > RUN_COMMAND_BUDGET {
        s.push_str(&format!(
            "GUESTWALL: the capture is {} bytes, more than Run Command returns (4096): the full capture is in C:\\Windows\\Temp\\guestwall-capture.txt (az vm run-command create --output-blob-uri can return it)\r\n",
            b.len()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_filter_keeps_what_it_cannot_rule_out() {
        let p = 3389;
        assert!(rule_matters(
            "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|",
            p
        ));
        assert!(!rule_matters("v2.10|Action=Allow|Dir=Out|Protocol=6|", p));
        assert!(!rule_matters(
            "v2.10|Action=Allow|Dir=In|Protocol=17|LPort=3389|",
            p
        ));
        assert!(!rule_matters(
            "v2.10|Action=Allow|Dir=In|Protocol=6|LPort=80|LPort=443|",
            p
        ));
        assert!(rule_matters(
            "v2.10|Action=Allow|Dir=In|Protocol=6|LPort=80|LPort=3000-4000|",
            p
        ));
        assert!(rule_matters(
            "v2.10|Action=Allow|Dir=In|Protocol=6|LPort=RPC|",
            p
        ));
        assert!(!rule_matters("v2.10|Action=Block|Dir=In|App=x.exe|", p));
        assert!(rule_matters(
            "v2.10|Action=Block|Dir=In|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|",
            p
        ));
        assert!(rule_matters(
            "v2.10|Action=Allow|Dir=In|App=System|Protocol=6|LPort=3389|",
            p
        ));
        assert!(!rule_matters(
            "v2.10|Action=Block|Dir=In|App=C:\\Windows\\svchost.exe|Svc=dnscache|",
            p
        ));
        assert!(rule_matters("v2.10|Action=Allow|Dir=In|Protocol=256|", p));
        assert!(rule_matters(
            "v2.10|Action=Allow|Dir=In|LPort2_10=3389|Protocol=6|",
            p
        ));
        assert!(!rule_matters("v2.10|Dir=In|LPort2_20=1|", p));
    }

    #[test]
    fn desc_is_removed_and_nothing_else() {
        assert_eq!(
            strip_desc("v2.10|Name=a|Desc=b c|EmbedCtxt=d|Desc=e|"),
            "v2.10|Name=a|EmbedCtxt=d|"
        );
        assert_eq!(strip_desc("v2.10|Desc=x"), "v2.10");
    }

    #[test]
    fn dotnet_rendering() {
        assert_eq!(dotnet_string(&[97, 0, 0, 0]), "a");
        assert_eq!(dotnet_string(&[97, 0, 0, 0, 0, 0]), "a\0");
        assert_eq!(dotnet_multi(&[97, 0, 0, 0, 0, 0, 0, 0]), vec!["a", ""]);
        assert_eq!(
            dotnet_multi(&[97, 0, 0, 0, 98, 0, 0, 0, 0, 0]),
            vec!["a", "b"]
        );
        assert!(dotnet_multi(&[0, 0]).is_empty());
        assert_eq!(data_field(4, &[0x3d, 0x0d, 0, 0]), "00000d3d");
        assert_eq!(data_field(3, &[0xab, 1]), "AB01");
        assert_eq!(data_field(7, &[97, 0, 0, 0, 0, 0]), "1:a");
    }
}
