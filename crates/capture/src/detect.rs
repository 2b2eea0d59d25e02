//! The entry point: recognise what each part of a transcript is and hand it to its parser.

use std::sync::Arc;

use crate::transcript::{self, clip, Line};
use crate::{
    collector, netsh, netstat, pwsh, regquery, sc, Block, BlockKind, Capture, Note, NoteKind,
    Origin, OsInfo,
};

/// Splits a command line into words: double quotes group (and are removed), `|` is a word of
/// its own.
pub(crate) fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmd.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '|' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
                out.push("|".into());
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn is_b64_line(s: &str) -> bool {
    let t = s.trim();
    t.len() >= 40
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

fn is_b64_chars(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

/// `Microsoft Windows [Version 10.0.17763.1879]` (from `ver` or a cmd banner).
fn version_line(s: &str) -> Option<(u32, u32, u32)> {
    let start = s.find("[Version ").map(|p| p + 9).or_else(|| {
        // Localized banners keep the bracketed number: `[Versión 10.0...]`, `[Версия ...]`.
        let p = s.find('[')?;
        let rest = s.get(p + 1..)?;
        rest.find(' ').map(|q| p + 1 + q + 1)
    })?;
    let rest = s.get(start..)?;
    let end = rest.find(']')?;
    let mut it = rest.get(..end)?.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let c = it.next()?.parse().ok()?;
    s.starts_with("Microsoft Windows").then_some((a, b, c))
}

struct Unparsed {
    first: usize,
    last: usize,
    count: usize,
    sample: String,
}

fn flush_unparsed(u: &mut Option<Unparsed>, cap: &mut Capture) {
    if let Some(u) = u.take() {
        let range = if u.first == u.last {
            format!("line {}", u.first)
        } else {
            format!("lines {}-{}", u.first, u.last)
        };
        cap.notes.push(Note::new(
            Some(u.first),
            NoteKind::Unparsed,
            format!(
                "{range}: {} line(s) not recognised, starting with {:?}",
                u.count,
                clip(&u.sample, 80)
            ),
        ));
    }
}

fn lower_words(cmd: Option<&str>) -> Vec<String> {
    cmd.map(|c| words(c).iter().map(|w| w.to_ascii_lowercase()).collect())
        .unwrap_or_default()
}

/// The ports a listing of sockets was filtered to: `:3389` after `findstr`/`Select-String`
/// (or `find`), or `-LocalPort 3389`. Empty when nothing filters by port.
fn listing_ports(lw: &[String]) -> Vec<u16> {
    let mut ports = Vec::new();
    let mut filtering = false;
    let mut local_port = false;
    for w in lw {
        let w = w.trim_matches(|c| c == '"' || c == '\'');
        if local_port {
            ports.extend(w.split(',').filter_map(|p| p.trim().parse::<u16>().ok()));
            local_port = false;
        }
        match w {
            "findstr" | "findstr.exe" | "find" | "find.exe" | "select-string" | "sls" => {
                filtering = true
            }
            "-localport" => local_port = true,
            _ if filtering => {
                // `/c:":3389 "`, `:3389`, `":3389"`: the number after a colon.
                if let Some((_, n)) = w.rsplit_once(':') {
                    let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(p) = digits.parse::<u16>() {
                        ports.push(p);
                    }
                }
            }
            _ => {}
        }
    }
    ports
}

fn parse_segment(lines: &[Line], cmd: Option<&str>, cap: &mut Capture, first: &mut bool) {
    let reg_hint = cmd.and_then(regquery::hint);
    let sc_hint = cmd.and_then(sc::hint);
    let lw = lower_words(cmd);
    let netsh_show_profiles = lw.iter().any(|w| w == "netsh" || w == "netsh.exe")
        && lw
            .iter()
            .any(|w| w.ends_with("profile") || w.ends_with("profiles"));
    if lw
        .first()
        .is_some_and(|w| w == "netstat" || w == "netstat.exe")
        || lw
            .iter()
            .any(|w| w.eq_ignore_ascii_case("get-nettcpconnection"))
    {
        cap.listeners_checked = true;
        cap.listener_ports.extend(listing_ports(&lw));
    }
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let mut unparsed: Option<Unparsed> = None;
    let mut i = 0;
    let mut hostname = lw.first().is_some_and(|w| w == "hostname");
    while let Some(line) = lines.get(i) {
        let text = line.text.as_str();
        let t = text.trim();
        if t.is_empty() {
            i += 1;
            continue;
        }
        // The first block of the capture (a cut line before it does not count).
        let at_first = *first;
        if hostname {
            hostname = false;
            cap.machine = Some(t.to_string());
            i += 1;
            continue;
        }
        let kind: Option<BlockKind>;
        let used: usize;
        let mut mid = false;
        if t.starts_with("-----BEGIN GUESTWALL CAPTURE") {
            kind = Some(BlockKind::Collector);
            let (res, n) = collector::decode_block(lines, i);
            used = n;
            let origin = Origin::new(&file, line.number);
            match res {
                Ok((payload, compressed)) if payload.starts_with("guestwall-capture\t") => {
                    collector::apply(&payload, compressed, &origin, cap)
                }
                Ok(_) => cap.notes.push(Note::new(
                    Some(line.number),
                    NoteKind::Damaged,
                    "collector block decoded, but it is not a guestwall capture",
                )),
                Err(e) => {
                    if matches!(e, crate::CaptureError::NoEnd { .. }) {
                        cap.truncated = true;
                    }
                    cap.notes.push(Note::new(
                        Some(line.number),
                        if matches!(e, crate::CaptureError::NoEnd { .. }) {
                            NoteKind::Truncated
                        } else {
                            NoteKind::Damaged
                        },
                        format!("collector block not used: {e}"),
                    ));
                }
            }
        } else if t == collector::END
            || t.starts_with("bytes=") && t.contains("sha256=")
            || is_b64_chars(t)
                && (at_first || t.len() >= 60)
                && lines.get(i + 1).is_some_and(|n| {
                    let x = n.text.trim();
                    is_b64_line(x) || x == collector::END
                })
        {
            // The end of a collector block whose start is missing.
            kind = Some(BlockKind::Collector);
            mid = true;
            let mut j = i;
            while lines.get(j).is_some_and(|l| {
                let x = l.text.trim();
                x.is_empty()
                    || is_b64_line(x)
                    || x == collector::END
                    || x.starts_with("bytes=")
                    || x.len() < 80
                        && x.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
            }) {
                j += 1;
                if lines
                    .get(j - 1)
                    .is_some_and(|l| l.text.trim() == collector::END)
                {
                    break;
                }
            }
            used = (j - i).max(1);
            cap.notes.push(Note::new(
                Some(line.number),
                NoteKind::Truncated,
                "the end of a collector block without its BEGIN line: the output was cut at the start (Run Command keeps the last 4,096 bytes); run the collector with --output-blob-uri or read the file it names",
            ));
        } else if t.starts_with("GUESTWALL:") {
            kind = None;
            used = 1;
            cap.notes.push(Note::new(
                Some(line.number),
                NoteKind::Info,
                format!(
                    "collector says: {}",
                    clip(t.trim_start_matches("GUESTWALL:").trim(), 200)
                ),
            ));
        } else if (t.starts_with('{') || t.starts_with('[')) && !t.starts_with("[SC]") {
            kind = Some(BlockKind::Json);
            let (n, m) = pwsh::parse_json(lines, i, cap);
            used = n;
            mid = m;
        } else if regquery::is_key_line(text)
            || regquery::split_value_line(text).is_some()
            || regquery::languages_of_errors(text).is_some()
        {
            kind = Some(BlockKind::RegQuery);
            let (n, m) = regquery::parse(lines, i, reg_hint.as_ref(), cap);
            used = n;
            mid = m;
        } else if netsh::profile_header(text).is_some() || netsh::is_profile_key(text) {
            kind = Some(BlockKind::NetshProfiles);
            let c = if netsh_show_profiles { cmd } else { None };
            let (n, m) = netsh::parse_profiles(lines, i, c, cap);
            used = n;
            mid = m;
        } else if netsh::is_rule_start(text)
            || netsh::is_rule_field(text)
            || netsh::is_no_rules(text).is_some()
        {
            kind = Some(BlockKind::NetshRules);
            let (n, m) = netsh::parse_rules(lines, i, cap);
            used = n;
            mid = m;
        } else if sc::is_sc_start(text) {
            kind = Some(BlockKind::Sc);
            let (n, m) = sc::parse(lines, i, sc_hint.as_deref(), cap);
            used = n;
            mid = m;
        } else if pwsh::list_line(text).is_some() {
            kind = Some(BlockKind::FormatList);
            used = pwsh::parse_list(lines, i, cap);
        } else if netstat::is_netstat(text) {
            kind = Some(BlockKind::Netstat);
            used = netstat::parse(lines, i, cap);
        } else if let Some(l) = netsh::is_ok_line(text) {
            cap.saw(l);
            kind = None;
            used = 1;
        } else if let Some((a, b, c)) = version_line(t) {
            kind = Some(BlockKind::Version);
            used = 1;
            let os = cap.os.get_or_insert_with(OsInfo::default);
            os.nt = Some((a, b));
            os.build = Some(c);
            os.origin = Some(Origin::new(&file, line.number));
        } else {
            let u = unparsed.get_or_insert_with(|| Unparsed {
                first: line.number,
                last: line.number,
                count: 0,
                sample: t.to_string(),
            });
            u.last = line.number;
            u.count += 1;
            i += 1;
            continue;
        }
        flush_unparsed(&mut unparsed, cap);
        *first = false;
        let used = used.max(1);
        if let Some(kind) = kind {
            let last = lines.get(i + used - 1).map_or(line.number, |l| l.number);
            cap.blocks.push(Block {
                kind,
                first_line: line.number,
                last_line: last,
                command: cmd.map(str::to_string),
            });
        }
        if mid && at_first && !cap.truncated {
            cap.truncated = true;
            cap.notes.push(Note::new(
                Some(line.number),
                NoteKind::Truncated,
                "the capture starts in the middle of a block: it was cut at the start; what is there is parsed, what is missing is unknown",
            ));
        }
        i += used;
    }
    flush_unparsed(&mut unparsed, cap);
}

fn os_from_registry(cap: &mut Capture) {
    let key = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion";
    let Some(k) = cap.registry.key(key) else {
        return;
    };
    let s = |n: &str| k.value(n).and_then(|v| v.string());
    let d = |n: &str| k.value(n).and_then(|v| v.dword());
    let build = s("CurrentBuildNumber")
        .or_else(|| s("CurrentBuild"))
        .and_then(|b| b.trim().parse().ok());
    let nt = match (
        d("CurrentMajorVersionNumber"),
        d("CurrentMinorVersionNumber"),
    ) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => s("CurrentVersion").and_then(|v| {
            let (a, b) = v.trim().split_once('.')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        }),
    };
    let product = s("ProductName");
    if build.is_none() && nt.is_none() && product.is_none() {
        return;
    }
    let origin = k.values.first().map(|v| v.origin.clone());
    let os = cap.os.get_or_insert_with(OsInfo::default);
    os.nt = nt.or(os.nt);
    os.build = build.or(os.build);
    os.product = product.or(os.product.take());
    if os.origin.is_none() {
        os.origin = origin;
    }
}

/// Parses a whole capture: `bytes` as saved (any encoding of [`transcript`]), `origin_name`
/// the name facts are attributed to. Never fails: what cannot be read becomes a [`Note`].
pub fn parse_capture(bytes: &[u8], origin_name: &str) -> Capture {
    let t = transcript::normalise(bytes);
    let name = if t.run_command.is_some() {
        format!("{origin_name} (stdout)")
    } else {
        origin_name.to_string()
    };
    let mut cap = Capture::empty(&name, t.encoding);
    cap.run_command = t.run_command.clone();
    cap.notes.extend(t.notes.iter().cloned());
    cap.truncated = t.at_size_limit;
    let mut first = true;
    for seg in &t.segments {
        let cmd = seg
            .prompt
            .as_ref()
            .map(|p| p.command.as_str())
            .filter(|c| !c.is_empty());
        parse_segment(&seg.lines, cmd, &mut cap, &mut first);
    }
    os_from_registry(&mut cap);
    // Listeners: name the services of their process when `sc queryex` gave the PIDs.
    let pids: Vec<(u32, String)> = cap
        .services
        .iter()
        .filter_map(|s| Some((s.pid.as_ref()?.value?, s.name.clone())))
        .collect();
    for l in &mut cap.listeners {
        if l.services.is_empty() {
            if let Some(pid) = l.pid {
                l.services = pids
                    .iter()
                    .filter(|(p, _)| *p == pid && pid != 0)
                    .map(|(_, n)| n.clone())
                    .collect();
            }
        }
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words() {
        assert_eq!(
            words(r#"reg query "HKLM\a b" /v x|findstr y"#),
            ["reg", "query", "HKLM\\a b", "/v", "x", "|", "findstr", "y"]
        );
    }

    #[test]
    fn version_banner() {
        assert_eq!(
            version_line("Microsoft Windows [Version 10.0.17763.1879]"),
            Some((10, 0, 17763))
        );
        assert_eq!(version_line("Windows [Version 10.0.1.1]"), None);
    }
}
