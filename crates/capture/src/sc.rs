//! `sc query NAME`, `sc queryex NAME` and `sc qc NAME` output.
//!
//! The labels are localized (German `DIENSTNAME`, `STATUS`, `STARTTYP`; Russian
//! `Имя_службы:`, `Состояние`), the numeric codes and their tokens are not (`4  RUNNING`,
//! `2   AUTO_START`, `20  WIN32_SHARE_PROCESS`): the parser anchors on code and token, and uses
//! labels only for the values that have no token (display name, binary path, PID).

use std::sync::Arc;

use crate::lang;
use crate::transcript::{full_width, Line};
use crate::{Capture, Field, Note, NoteKind, Origin};

/// A service, as far as the capture tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service's short name (`MpsSvc`, `BFE`, `TermService`).
    pub name: String,
    /// Where it was first read.
    pub origin: Origin,
    /// `Some(false)` when the capture says the service does not exist (sc error 1060, the
    /// collector's `Missing`).
    pub exists: Option<bool>,
    /// The display name.
    pub display_name: Option<Field<String>>,
    /// The service type (`0x10` own process, `0x20` shared, ...).
    pub service_type: Option<Field<u32>>,
    /// The state: 1 stopped, 2 start pending, 3 stop pending, 4 running, 5 continue pending,
    /// 6 pause pending, 7 paused (SERVICE_STATUS; PowerShell's ServiceControllerStatus uses
    /// the same numbers).
    pub state: Option<Field<u32>>,
    /// The start type: 0 boot, 1 system, 2 automatic, 3 manual, 4 disabled (the registry's
    /// `Start`).
    pub start: Option<Field<u32>>,
    /// Delayed automatic start.
    pub delayed: Option<bool>,
    /// The process ID (`sc queryex`, the collector).
    pub pid: Option<Field<u32>>,
    /// `BINARY_PATH_NAME`.
    pub binary_path: Option<Field<String>>,
}

impl Service {
    /// A service known by name only.
    pub fn new(name: &str, origin: Origin) -> Service {
        Service {
            name: name.to_string(),
            origin,
            exists: None,
            display_name: None,
            service_type: None,
            state: None,
            start: None,
            delayed: None,
            pid: None,
            binary_path: None,
        }
    }

    /// `Some(true)` when running, `Some(false)` when in another known state.
    pub fn running(&self) -> Option<bool> {
        if self.exists == Some(false) {
            return Some(false);
        }
        self.state.as_ref().and_then(|s| s.value).map(|s| s == 4)
    }

    /// Takes every field `other` has.
    pub(crate) fn merge(&mut self, other: Service) {
        if other.exists.is_some() {
            self.exists = other.exists;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            display_name,
            service_type,
            state,
            start,
            delayed,
            pid,
            binary_path
        );
    }
}

const STATES: &[(&str, u32)] = &[
    ("STOPPED", 1),
    ("START_PENDING", 2),
    ("STOP_PENDING", 3),
    ("RUNNING", 4),
    ("CONTINUE_PENDING", 5),
    ("PAUSE_PENDING", 6),
    ("PAUSED", 7),
];
const STARTS: &[(&str, u32)] = &[
    ("BOOT_START", 0),
    ("SYSTEM_START", 1),
    ("AUTO_START", 2),
    ("DEMAND_START", 3),
    ("DISABLED", 4),
];
const TYPES: &[&str] = &[
    "KERNEL_DRIVER",
    "FILE_SYSTEM_DRIVER",
    "WIN32_OWN_PROCESS",
    "WIN32_SHARE_PROCESS",
    "WIN32",
    "INTERACTIVE_PROCESS",
    "USER_OWN_PROCESS",
    "USER_SHARE_PROCESS",
    "WIN32_PACKAGED_PROCESS",
];
const ERROR_CONTROL: &[&str] = &["IGNORE", "NORMAL", "SEVERE", "CRITICAL"];

/// An indented `LABEL : value` line.
fn field_line(s: &str) -> Option<(&str, &str)> {
    if !s.starts_with("    ") {
        return None;
    }
    let t = s.trim_start();
    let pos = t.find(':')?;
    let label = t.get(..pos)?.trim_end();
    if label.is_empty() || label.contains("  ") && !label.ends_with(' ') && label.len() > 40 {
        return None;
    }
    Some((label, t.get(pos + 1..)?.trim()))
}

/// `4  RUNNING` → (4, "RUNNING", rest).
fn code_token(v: &str) -> Option<(&str, &str, &str)> {
    let mut it = v.splitn(2, char::is_whitespace);
    let code = it.next()?;
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let rest = it.next()?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()))
        .unwrap_or(rest.len());
    let token = rest.get(..end)?;
    if token.is_empty() {
        return None;
    }
    Some((code, token, rest.get(end..)?.trim()))
}

/// A non-indented `SERVICE_NAME: x` line (any language), or `None`.
fn name_line(s: &str) -> Option<&str> {
    if s.starts_with(' ') {
        return None;
    }
    let (label, value) = s.split_once(':')?;
    lang::SC_NAME_LABELS
        .iter()
        .any(|(w, _)| lang::same(label.trim(), w))
        .then(|| value.trim())
}

fn display_line(s: &str) -> Option<&str> {
    let t = s.trim_start();
    let (label, value) = t.split_once(':')?;
    lang::SC_DISPLAY_LABELS
        .iter()
        .any(|(w, _)| lang::same(label.trim(), w))
        .then(|| value.trim())
}

/// True when a line is sc's (a name line, an anchored code line or an `[SC]` line).
pub(crate) fn is_sc_start(s: &str) -> bool {
    name_line(s).is_some()
        || s.starts_with("[SC]")
        || field_line(s).is_some_and(|(_, v)| {
            code_token(v).is_some_and(|(_, t, _)| {
                STATES.iter().any(|x| x.0 == t) || STARTS.iter().any(|x| x.0 == t)
            })
        })
}

/// The service named by an `sc` command line.
pub(crate) fn hint(command: &str) -> Option<String> {
    let w = crate::detect::words(command);
    let first = w.first()?;
    let first = first.rsplit(['\\', '/']).next().unwrap_or(first);
    if !(first.eq_ignore_ascii_case("sc") || first.eq_ignore_ascii_case("sc.exe")) {
        return None;
    }
    let verb = w.get(1)?.to_ascii_lowercase();
    if !matches!(verb.as_str(), "query" | "queryex" | "qc") {
        return None;
    }
    w.get(2).filter(|n| !n.contains('=')).cloned()
}

/// Parses sc output from `lines[start]`.
pub(crate) fn parse(
    lines: &[Line],
    start: usize,
    hint: Option<&str>,
    cap: &mut Capture,
) -> (usize, bool) {
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let mut i = start;
    let mut cur: Option<Service> = None;
    let mut started_mid = false;
    let mut last_text_field: Option<u8> = None; // 1 display, 2 binary path
    let finish = |cur: &mut Option<Service>, cap: &mut Capture| {
        if let Some(s) = cur.take() {
            cap.merge_service(s);
        }
    };
    while let Some(line) = lines.get(i) {
        let text = line.text.as_str();
        let n = line.number;
        if text.trim().is_empty() {
            i += 1;
            let next = lines.get(i).map(|l| l.text.as_str()).unwrap_or("");
            if next.trim().is_empty() || is_sc_start(next) || field_line(next).is_some() {
                continue;
            }
            break;
        }
        if let Some(rest) = text.strip_prefix("[SC]") {
            let r = rest.trim();
            // "[SC] OpenService FAILED 1060:" — the service does not exist.
            if r.contains("1060") {
                let name = hint.unwrap_or("(unnamed)");
                let mut s = Service::new(name, Origin::new(&file, n));
                s.exists = Some(false);
                finish(&mut cur, cap);
                cap.merge_service(s);
                cap.notes.push(Note::new(
                    Some(n),
                    NoteKind::Info,
                    format!("sc: service {name} does not exist (error 1060)"),
                ));
                i += 1;
                // Skip the message that follows (after a blank line, as sc prints it).
                while lines.get(i).is_some_and(|l| l.text.trim().is_empty()) {
                    i += 1;
                }
                while lines
                    .get(i)
                    .is_some_and(|l| !l.text.trim().is_empty() && !is_sc_start(&l.text))
                {
                    i += 1;
                }
                continue;
            }
            i += 1;
            continue;
        }
        if let Some(name) = name_line(text) {
            finish(&mut cur, cap);
            for (w, l) in lang::SC_NAME_LABELS {
                if text.starts_with(w) {
                    cap.saw(*l);
                }
            }
            cur = Some(Service::new(name, Origin::new(&file, n)));
            last_text_field = None;
            i += 1;
            continue;
        }
        let s = match cur.as_mut() {
            Some(s) => s,
            None => {
                if field_line(text).is_none() {
                    break;
                }
                let name = match hint {
                    Some(h) => h,
                    None => {
                        started_mid = true;
                        cap.notes.push(Note::new(
                            Some(n),
                            NoteKind::Truncated,
                            "sc output without its SERVICE_NAME line or command: the service is unknown",
                        ));
                        ""
                    }
                };
                cur.insert(Service::new(name, Origin::new(&file, n)))
            }
        };
        if let Some(v) = display_line(text) {
            s.display_name = Some(Field::new(v, Some(v.to_string()), n));
            last_text_field = Some(1);
            i += 1;
            continue;
        }
        if text.trim_start().starts_with('(') {
            // The flags line under STATE.
            i += 1;
            continue;
        }
        let Some((label, value)) = field_line(text) else {
            // A wrapped display name or binary path.
            let prev = i.checked_sub(1).and_then(|p| lines.get(p));
            if prev.is_some_and(|p| full_width(&p.text)) {
                let f = match last_text_field {
                    Some(1) => s.display_name.as_mut(),
                    Some(2) => s.binary_path.as_mut(),
                    _ => None,
                };
                if let Some(f) = f {
                    f.text.push_str(text);
                    if let Some(v) = f.value.as_mut() {
                        v.push_str(text);
                    }
                    i += 1;
                    continue;
                }
            }
            break;
        };
        last_text_field = None;
        if let Some((code, token, rest)) = code_token(value) {
            if let Some((_, st)) = STATES.iter().find(|x| x.0 == token) {
                s.state = Some(Field::new(value, Some(*st), n));
            } else if let Some((_, st)) = STARTS.iter().find(|x| x.0 == token) {
                s.start = Some(Field::new(value, Some(*st), n));
                s.delayed = Some(rest.contains("DELAYED"));
            } else if TYPES.contains(&token) {
                s.service_type = Some(Field::new(value, u32::from_str_radix(code, 16).ok(), n));
            } else if ERROR_CONTROL.contains(&token) {
                // Not needed.
            }
            i += 1;
            continue;
        }
        match label.to_ascii_uppercase().as_str() {
            "PID" => s.pid = Some(Field::new(value, value.parse().ok(), n)),
            "BINARY_PATH_NAME" => {
                s.binary_path = Some(Field::new(value, Some(value.to_string()), n));
                last_text_field = Some(2);
            }
            _ => {}
        }
        i += 1;
    }
    finish(&mut cur, cap);
    (i.saturating_sub(start).max(1), started_mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors() {
        assert_eq!(code_token("4  RUNNING"), Some(("4", "RUNNING", "")));
        assert_eq!(
            code_token("2   AUTO_START  (DELAYED)"),
            Some(("2", "AUTO_START", "(DELAYED)"))
        );
        assert_eq!(code_token("0  (0x0)"), None);
        assert!(is_sc_start("        STATUS             : 4  RUNNING"));
        assert!(is_sc_start("DIENSTNAME: MpsSvc"));
        assert_eq!(
            hint("sc queryex TermService").as_deref(),
            Some("TermService")
        );
        assert_eq!(hint("sc query type= service"), None);
    }
}
