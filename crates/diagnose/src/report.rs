//! The diagnosis report: text for people, JSON for programs (schema in `docs/json.md`).
//!
//! Text: per control set a header (OS, where the port comes from), one line per profile with
//! its verdict, then each cause **once** with the profiles it affects, the findings, and a
//! result line that names the causes and the next command. Long lines are wrapped at 100
//! columns with a hanging indent.

use std::io::{self, Write};

use serde::Serialize;

use crate::{Cause, Code, Diagnosis, PortSource};

/// Version of the JSON documents guestwall writes (`"schema"`); raised when a field changes
/// meaning or goes away, not when one is added.
pub const JSON_SCHEMA: u32 = 1;

/// Width text output is wrapped at.
const WIDTH: usize = 100;

/// Writes `text` with `first` before the first line and `rest` before the others, wrapped at
/// [`WIDTH`] columns on spaces (a word longer than a line stays whole).
pub fn write_wrapped(out: &mut dyn Write, first: &str, rest: &str, text: &str) -> io::Result<()> {
    let mut line = String::from(first);
    // A prefix such as "Fix:" is followed by a space; an indent already ends in one.
    let mut empty = first.is_empty() || first.ends_with(' ');
    for word in text.split(' ') {
        if !empty && visible_len(&line) + 1 + visible_len(word) > WIDTH {
            writeln!(out, "{line}")?;
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    writeln!(out, "{line}")
}

/// The columns `s` takes on a terminal: its characters less ANSI escape sequences (a
/// coloured verdict wraps as the plain one does).
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

/// One cause and the profiles it applies to (profile causes grouped; findings have none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupedCause<'a> {
    /// The profiles (`domain`, `private`, `public`), empty for a machine-wide finding.
    pub profiles: Vec<&'static str>,
    /// The cause.
    #[serde(flatten)]
    pub cause: &'a Cause,
}

/// The causes of every profile, each once, in the order first met (the article's order),
/// with the profiles it affects.
pub fn grouped_causes(d: &Diagnosis) -> Vec<GroupedCause<'_>> {
    let mut out: Vec<GroupedCause<'_>> = Vec::new();
    for p in &d.profiles {
        for c in &p.causes {
            match out.iter_mut().find(|g| g.cause == c) {
                Some(g) => g.profiles.push(p.profile.key()),
                None => out.push(GroupedCause {
                    profiles: vec![p.profile.key()],
                    cause: c,
                }),
            }
        }
    }
    out
}

fn profile_names(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| {
            let mut c = k.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The codes that keep RDP from working, in order, each once.
pub fn blocking_codes(d: &Diagnosis) -> Vec<Code> {
    let mut codes: Vec<Code> = Vec::new();
    let from_profiles = d.profiles.iter().flat_map(|p| p.causes.iter());
    let from_findings = d.findings.iter().filter(|f| f.blocks);
    for c in from_profiles.chain(from_findings) {
        if c.blocks && !codes.contains(&c.code) {
            codes.push(c.code);
        }
    }
    codes
}

/// Writes the diagnoses for people (see the module documentation). `target_args` are the
/// target's arguments as the user gave them, quoted for a shell (see [`target_args`]), for the
/// next command.
pub fn write_text(diags: &[Diagnosis], target_args: &str, out: &mut dyn Write) -> io::Result<()> {
    write_text_with(diags, target_args, false, &Palette::plain(), out)
}

/// [`write_text`] for a capture of a running machine (`online`): the next commands are the
/// console script and the plan, never a write (guestwall cannot write to a capture).
pub fn write_text_for(
    diags: &[Diagnosis],
    target_args: &str,
    online: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_text_with(diags, target_args, online, &Palette::plain(), out)
}

/// [`write_text`] with the verdicts painted by `palette` (a terminal's colours); with
/// [`Palette::plain`] the bytes are exactly those of [`write_text`].
pub fn write_text_styled(
    diags: &[Diagnosis],
    target_args: &str,
    palette: &Palette,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_text_with(diags, target_args, false, palette, out)
}

/// [`write_text_for`] with the verdicts painted by `palette`.
pub fn write_text_with(
    diags: &[Diagnosis],
    target_args: &str,
    online: bool,
    palette: &Palette,
    out: &mut dyn Write,
) -> io::Result<()> {
    for (n, d) in diags.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}", d.label)?;
        if let Some(os) = &d.os.name {
            writeln!(out, "  OS: {os}")?;
        }
        if let (Some(tag), Some(from)) = (&d.language.tag, &d.language.names_from) {
            writeln!(
                out,
                "  Language: {tag}; rule names as its console shows them, from {from}"
            )?;
        }
        let from = match &d.port_source {
            PortSource::Hive { origin } if origin.capture.is_some() => {
                format!("PortNumber, as captured: {origin}")
            }
            PortSource::Hive { origin } => format!("PortNumber in the hive: {origin}"),
            PortSource::CommandLine => {
                "from --port; the hive has no valid PortNumber (Windows' default is 3389)".into()
            }
            PortSource::Default => "Windows' default: the hive has no PortNumber".into(),
            PortSource::Unknown => {
                "Windows' default; the capture does not show PortNumber (--port names another)"
                    .into()
            }
        };
        let invalid = d
            .findings
            .iter()
            .any(|f| f.code == crate::codes::RDP_PORT_INVALID);
        let listens = if invalid {
            format!(
                "RDP cannot listen: its PortNumber is no valid port (see the findings); TCP {} is examined instead",
                d.port
            )
        } else {
            format!("RDP listens on TCP {} ({from})", d.port)
        };
        write_wrapped(out, "  ", "    ", &listens)?;
        writeln!(
            out,
            "  Inbound TCP {} (Remote Desktop), per profile:",
            d.port
        )?;
        for p in &d.profiles {
            let by: Vec<String> = p.allowed_by.iter().map(|r| r.label()).collect();
            let head = format!(
                "    {:<8} {}",
                p.profile.to_string(),
                palette.verdict(p.verdict, &p.verdict.key().to_uppercase())
            );
            if by.is_empty() {
                writeln!(out, "{head}")?;
            } else {
                write_wrapped(
                    out,
                    &format!("{head}, by"),
                    "                      ",
                    &by.join("; "),
                )?;
            }
        }
        let grouped = grouped_causes(d);
        if !grouped.is_empty() {
            writeln!(out, "  Causes:")?;
            for (i, g) in grouped.iter().enumerate() {
                let c = g.cause;
                writeln!(
                    out,
                    "  {}. [{}] {}",
                    i + 1,
                    c.code,
                    profile_names(&g.profiles)
                )?;
                write_wrapped(out, "     ", "     ", &c.detail)?;
                for cond in &c.conditions {
                    write_wrapped(out, "     - only when ", "       ", cond)?;
                }
                if let Some(ic) = &c.internet_client {
                    write_wrapped(out, "     A client from the internet:", "       ", ic)?;
                }
                if let Some(f) = &c.fix {
                    write_wrapped(out, "     Fix:", "       ", f)?;
                }
            }
        }
        if !d.findings.is_empty() {
            writeln!(out, "  Findings:")?;
            for c in &d.findings {
                write_wrapped(out, &format!("  - [{}]", c.code), "      ", &c.detail)?;
                if let Some(f) = &c.fix {
                    write_wrapped(out, "      Fix:", "        ", f)?;
                }
            }
        }
    }
    write_result(diags, target_args, online, out)
}

/// How text output paints verdicts: green for allowed, red for blocked, yellow for
/// conditional, or nothing at all ([`Palette::plain`], the default, for files, pipes and
/// `NO_COLOR`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Palette {
    colour: bool,
}

impl Palette {
    /// No escape codes: the text is byte for byte what an uncoloured report writes.
    pub fn plain() -> Palette {
        Palette { colour: false }
    }

    /// ANSI colours, for a terminal.
    pub fn ansi() -> Palette {
        Palette { colour: true }
    }

    /// [`Palette::ansi`] when `colour`, else [`Palette::plain`].
    pub fn new(colour: bool) -> Palette {
        Palette { colour }
    }

    /// Whether this palette writes escape codes.
    pub fn is_colour(&self) -> bool {
        self.colour
    }

    /// The style of a verdict: allowed green, blocked red, conditional yellow (bold).
    pub fn verdict_style(v: guestwall_firewall::Verdict) -> anstyle::Style {
        use anstyle::AnsiColor;
        let c = match v {
            guestwall_firewall::Verdict::Allowed => AnsiColor::Green,
            guestwall_firewall::Verdict::Blocked => AnsiColor::Red,
            guestwall_firewall::Verdict::Conditional => AnsiColor::Yellow,
        };
        anstyle::Style::new().fg_color(Some(c.into())).bold()
    }

    /// `text` painted as the verdict `v` (unchanged with a plain palette).
    pub fn verdict(&self, v: guestwall_firewall::Verdict, text: &str) -> String {
        self.paint(Self::verdict_style(v), text)
    }

    /// `text` in `style` (unchanged with a plain palette).
    pub fn paint(&self, style: anstyle::Style, text: &str) -> String {
        if self.colour {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

/// The target's arguments, quoted for a shell: the target, and `--software FILE` when it was
/// given, so that a suggested command reads the same hives.
pub fn target_args(target: &str, software: Option<&str>) -> String {
    match software {
        Some(s) => format!("{} --software {}", shell_quote(target), shell_quote(s)),
        None => shell_quote(target),
    }
}

/// The closing line: reachable or not, the causes by code, and the next command.
fn write_result(
    diags: &[Diagnosis],
    target: &str,
    online: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    // A hive that cannot be written as it is (dirty without logs, logs partly applied) needs
    // --allow-dirty for the fix, which the next commands then say.
    let dirty = diags.iter().flat_map(|d| &d.findings).any(|f| {
        f.code == crate::codes::LOGS_PARTLY_APPLIED
            || (f.code == crate::codes::INPUT_NOTE && f.detail.contains("hive is dirty"))
    });
    let fix_flag = if dirty { " --allow-dirty" } else { "" };
    let reachable = !diags.is_empty() && diags.iter().all(|d| d.reachable);
    if reachable {
        return writeln!(out, "Result: RDP is reachable on every profile.");
    }
    let mut codes: Vec<Code> = Vec::new();
    for d in diags {
        for c in blocking_codes(d) {
            if !codes.contains(&c) {
                codes.push(c);
            }
        }
    }
    let conditional = diags
        .iter()
        .flat_map(|d| &d.profiles)
        .any(|p| p.verdict == guestwall_firewall::Verdict::Conditional);
    let what = if codes.is_empty() && conditional {
        "only for some clients".to_string()
    } else {
        format!(
            "NOT reachable ({})",
            codes
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let t = target;
    writeln!(out, "Result: RDP is {what}.")?;
    writeln!(out, "Next:")?;
    if online {
        writeln!(
            out,
            "  guestwall script {t}   # commands that fix it, for the VM's serial console (--powershell: PowerShell)"
        )?;
        return writeln!(
            out,
            "  guestwall fix --dry-run {t}   # the changes, one by one, with those commands"
        );
    }
    writeln!(out, "  guestwall fix --dry-run {t}   # shows the changes")?;
    if dirty {
        writeln!(
            out,
            "  # the hive's last changes are lost (see the findings): --allow-dirty writes it anyway"
        )?;
    }
    writeln!(
        out,
        "  guestwall fix{fix_flag} {t}   # makes them, backup first (`guestwall undo {t}` reverts)"
    )?;
    writeln!(
        out,
        "  guestwall script {t}   # the same as commands for the serial console"
    )
}

/// `s` quoted for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The JSON of one control set's diagnosis (an element of `control_sets`).
#[derive(Serialize)]
struct ControlSetJson<'a> {
    control_set: &'a crate::ControlSetRef,
    port: u16,
    port_source: &'a PortSource,
    reachable: bool,
    profiles: serde_json::Map<String, serde_json::Value>,
    causes: Vec<GroupedCause<'a>>,
    findings: &'a [Cause],
}

fn control_set_json(d: &Diagnosis) -> ControlSetJson<'_> {
    let mut profiles = serde_json::Map::new();
    for p in &d.profiles {
        profiles.insert(
            p.profile.key().into(),
            serde_json::to_value(p).unwrap_or(serde_json::Value::Null),
        );
    }
    ControlSetJson {
        control_set: &d.control_set,
        port: d.port,
        port_source: &d.port_source,
        reachable: d.reachable,
        profiles,
        causes: grouped_causes(d),
        findings: &d.findings,
    }
}

/// The JSON document of a diagnosis (schema [`JSON_SCHEMA`], see `docs/json.md`): the
/// current control set's fields at the top level, `reachable` over every control set, and
/// `control_sets` with each one (always present).
pub fn to_json(diags: &[Diagnosis], target: &str) -> serde_json::Value {
    let mut top = serde_json::Map::new();
    top.insert("schema".into(), JSON_SCHEMA.into());
    top.insert("target".into(), target.into());
    top.insert(
        "os".into(),
        diags
            .first()
            .map(|d| serde_json::to_value(&d.os).unwrap_or_default())
            .unwrap_or_default(),
    );
    top.insert(
        "language".into(),
        diags
            .first()
            .map(|d| serde_json::to_value(&d.language).unwrap_or_default())
            .unwrap_or_default(),
    );
    top.insert(
        "reachable".into(),
        (!diags.is_empty() && diags.iter().all(|d| d.reachable)).into(),
    );
    if let Some(serde_json::Value::Object(first)) = diags
        .first()
        .map(|d| serde_json::to_value(control_set_json(d)).unwrap_or_default())
    {
        for (k, v) in first {
            if k != "reachable" {
                top.insert(k, v);
            }
        }
    }
    top.insert(
        "control_sets".into(),
        diags
            .iter()
            .map(|d| serde_json::to_value(control_set_json(d)).unwrap_or_default())
            .collect::<Vec<_>>()
            .into(),
    );
    serde_json::Value::Object(top)
}

/// Writes [`to_json`], pretty-printed, with a final newline.
pub fn write_json(diags: &[Diagnosis], target: &str, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_json(diags, target))?;
    writeln!(out)
}

/// The JSON document of an error (`--json`): `{"schema", "error": {"message"}, "exit_code"}`.
pub fn error_json(message: &str, exit_code: u8) -> serde_json::Value {
    serde_json::json!({
        "schema": JSON_SCHEMA,
        "error": { "message": message },
        "exit_code": exit_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_and_the_width() {
        let text = "word ".repeat(60);
        let mut out = Vec::new();
        write_wrapped(&mut out, "  - ", "    ", text.trim()).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.lines().all(|l| l.chars().count() <= WIDTH), "{s}");
        assert_eq!(s.split_whitespace().filter(|w| *w == "word").count(), 60);
        assert!(s.lines().skip(1).all(|l| l.starts_with("    word")));
    }

    #[test]
    fn colour_does_not_change_wrapping() {
        let plain = Palette::plain().verdict(guestwall_firewall::Verdict::Blocked, "BLOCKED");
        assert_eq!(plain, "BLOCKED");
        let red = Palette::ansi().verdict(guestwall_firewall::Verdict::Blocked, "BLOCKED");
        assert!(
            red.starts_with('\u{1b}') && red.contains("BLOCKED"),
            "{red:?}"
        );
        assert_eq!(visible_len(&red), 7);
        let text = "word ".repeat(40);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_wrapped(&mut a, &format!("  {plain}, by"), "    ", text.trim()).unwrap();
        write_wrapped(&mut b, &format!("  {red}, by"), "    ", text.trim()).unwrap();
        let strip = String::from_utf8(b).unwrap().replace(&red, "BLOCKED");
        assert_eq!(String::from_utf8(a).unwrap(), strip);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/mnt/win/SYSTEM"), "/mnt/win/SYSTEM");
        assert_eq!(shell_quote("/mnt/my disk"), "'/mnt/my disk'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
