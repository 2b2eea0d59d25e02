//! Transcript normalisation: the bytes an admin saved (a serial-console log, a pasted console
//! window, the JSON `az vm run-command invoke` prints) turned into numbered lines, split into
//! segments at shell prompts.
//!
//! What is accepted (see `docs/capture-formats.md`, section 1):
//! - UTF-8 with or without a BOM; UTF-16LE or UTF-16BE with a BOM; UTF-16 without a BOM when
//!   every other byte of the start is NUL. Invalid sequences (a Windows-1252 or OEM code page
//!   capture) become U+FFFD: never an error.
//! - Line ends CRLF, LF, CR and CR CR LF (cmd piped through another program).
//! - Prompts: `C:\>`, `C:\Windows\system32>`, `PS C:\>`, `PS C:\Users\x>`,
//!   `*Evil-WinRM* PS C:\x>`, `SAC>`. A prompt line starts a segment and gives its command.
//!   The cmd collector's marker lines (`##### guestwall-cmd: <command>`) do the same.
//! - Run Command's JSON (`{"value":[{"code":"ComponentStatus/StdOut/succeeded","message":...}]}`):
//!   the StdOut message is the transcript, the StdErr message is kept.

use serde_json::Value as Json;

use crate::{Note, NoteKind};

/// Run Command keeps only the last 4,096 bytes of a script's output.
pub const RUN_COMMAND_LIMIT: usize = 4096;

/// How the bytes were decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextEncoding {
    /// UTF-8 without a BOM (also plain ASCII, and anything else read as UTF-8 with
    /// replacements).
    Utf8,
    /// UTF-8 with a BOM.
    Utf8Bom,
    /// UTF-16LE with a BOM.
    Utf16Le,
    /// UTF-16LE without a BOM, recognised by its NUL bytes.
    Utf16LeNoBom,
    /// UTF-16BE with a BOM.
    Utf16Be,
    /// UTF-16BE without a BOM, recognised by its NUL bytes.
    Utf16BeNoBom,
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the decoded text (in the Run Command message for JSON input).
    pub number: usize,
    /// The text, without its line end.
    pub text: String,
}

/// The shell a prompt belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shell {
    /// `C:\Windows\system32>`.
    Cmd,
    /// `PS C:\>`.
    PowerShell,
    /// The Special Administration Console, `SAC>`.
    Sac,
    /// A marker line of guestwall's cmd collector.
    Collector,
}

/// A prompt line: where it was, and the command typed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Which shell.
    pub shell: Shell,
    /// The working directory the prompt shows (empty for `SAC>`).
    pub location: String,
    /// The command after the prompt (may be empty).
    pub command: String,
    /// The prompt's line.
    pub line: usize,
}

/// The lines between two prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The prompt that starts it (`None` for text before the first prompt).
    pub prompt: Option<Prompt>,
    /// Its lines (the prompt line excluded).
    pub lines: Vec<Line>,
}

/// What Run Command's JSON said besides standard output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunCommandInfo {
    /// The StdErr message, when not empty.
    pub stderr: Option<String>,
    /// Bytes of the StdOut message (UTF-8).
    pub stdout_bytes: usize,
    /// The codes of the entries (`ComponentStatus/StdOut/succeeded`, ...).
    pub codes: Vec<String>,
}

/// A normalised transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// How the bytes were decoded.
    pub encoding: TextEncoding,
    /// Characters that could not be decoded and became U+FFFD.
    pub replaced: usize,
    /// Set when the input was Run Command's JSON.
    pub run_command: Option<RunCommandInfo>,
    /// The segments, in order.
    pub segments: Vec<Segment>,
    /// True when the input's size says it was cut at the start (Run Command's output at its
    /// 4,096-byte limit).
    pub at_size_limit: bool,
    /// What was noticed while decoding.
    pub notes: Vec<Note>,
}

fn decode_utf16(bytes: &[u8], le: bool) -> (String, usize) {
    let units = bytes.chunks(2).map(|c| match (c.first(), c.get(1)) {
        (Some(&a), Some(&b)) => {
            if le {
                u16::from_le_bytes([a, b])
            } else {
                // UTF-16BE: the one place where the input itself is big-endian.
                #[allow(clippy::big_endian_bytes)]
                u16::from_be_bytes([a, b])
            }
        }
        // A lone trailing byte: not a character.
        _ => 0xFFFD,
    });
    let mut replaced = usize::from(bytes.len() % 2 == 1);
    let text = char::decode_utf16(units)
        .map(|r| {
            r.unwrap_or_else(|_| {
                replaced += 1;
                '\u{FFFD}'
            })
        })
        .collect();
    (text, replaced)
}

fn decode_utf8(bytes: &[u8]) -> (String, usize) {
    let before = bytes
        .windows(3)
        .filter(|w| *w == [0xEF, 0xBF, 0xBD])
        .count();
    let text = String::from_utf8_lossy(bytes).into_owned();
    let after = text.chars().filter(|&c| c == '\u{FFFD}').count();
    (text, after.saturating_sub(before))
}

/// Guesses BOM-less UTF-16 from the NUL bytes of the first 4 KiB: `Some(true)` for LE.
fn utf16_without_bom(bytes: &[u8]) -> Option<bool> {
    let head = bytes.get(..bytes.len().min(4096))?;
    if head.len() < 4 {
        return None;
    }
    let pairs = head.len() / 2;
    let (mut even0, mut odd0) = (0usize, 0usize);
    for (i, b) in head.iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 {
                even0 += 1;
            } else {
                odd0 += 1;
            }
        }
    }
    // ASCII-range text in UTF-16LE has a NUL in almost every odd byte and almost none in the
    // even ones; Cyrillic (0x04xx) has none, so require a majority, not all.
    if odd0 * 10 >= pairs * 6 && even0 * 10 <= pairs {
        Some(true)
    } else if even0 * 10 >= pairs * 6 && odd0 * 10 <= pairs {
        Some(false)
    } else {
        None
    }
}

/// Decodes bytes to text.
pub fn decode(bytes: &[u8]) -> (String, TextEncoding, usize) {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        let (t, r) = decode_utf8(rest);
        return (t, TextEncoding::Utf8Bom, r);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let (t, r) = decode_utf16(rest, true);
        return (t, TextEncoding::Utf16Le, r);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let (t, r) = decode_utf16(rest, false);
        return (t, TextEncoding::Utf16Be, r);
    }
    match utf16_without_bom(bytes) {
        Some(true) => {
            let (t, r) = decode_utf16(bytes, true);
            (t, TextEncoding::Utf16LeNoBom, r)
        }
        Some(false) => {
            let (t, r) = decode_utf16(bytes, false);
            (t, TextEncoding::Utf16BeNoBom, r)
        }
        None => {
            let (t, r) = decode_utf8(bytes);
            (t, TextEncoding::Utf8, r)
        }
    }
}

/// Splits text into lines: CRLF, LF, CR, and CR CR LF each end one line. NUL characters are
/// dropped (they are what is left of misread UTF-16 or binary noise).
pub fn split_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let push = |cur: &mut String, out: &mut Vec<Line>| {
        let number = out.len() + 1;
        out.push(Line {
            number,
            text: std::mem::take(cur),
        });
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => push(&mut cur, &mut out),
            '\r' => {
                // CR CR ... LF is one line end; a lone CR is one too.
                while chars.peek() == Some(&'\r') {
                    chars.next();
                }
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                push(&mut cur, &mut out);
            }
            '\0' => {}
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        push(&mut cur, &mut out);
    }
    out
}

fn is_path_char(c: char) -> bool {
    !matches!(c, '<' | '>' | '|' | '"' | '*' | '?') && !c.is_control()
}

/// Recognises a prompt at the start of a line.
pub fn prompt(line: &str) -> Option<(Shell, String, String)> {
    const MARK: &str = "##### guestwall-cmd:";
    if let Some(rest) = line.strip_prefix(MARK) {
        return Some((Shell::Collector, String::new(), rest.trim().to_string()));
    }
    if let Some(rest) = line.strip_prefix("SAC>") {
        return Some((Shell::Sac, String::new(), rest.trim().to_string()));
    }
    // `*Evil-WinRM* PS C:\x>` and similar decorations before `PS `.
    let mut s = line;
    if let Some(rest) = s.strip_prefix('*') {
        let end = rest.find("* ")?;
        s = rest.get(end + 2..)?;
    }
    let (shell, body) = match s.strip_prefix("PS ") {
        Some(b) => (Shell::PowerShell, b),
        None => (Shell::Cmd, s),
    };
    let gt = body.find('>')?;
    let location = body.get(..gt)?;
    if location.is_empty() || location.chars().count() > 260 {
        return None;
    }
    let mut cs = location.chars();
    let drive_ok = match (cs.next(), cs.next(), cs.next()) {
        (Some(d), Some(':'), None) => d.is_ascii_alphabetic() && shell == Shell::PowerShell,
        (Some(d), Some(':'), Some('\\')) => d.is_ascii_alphabetic(),
        _ => false,
    };
    let unc = shell == Shell::PowerShell
        && (location.starts_with("\\\\") || location.contains("::") || location.contains(":\\"));
    if !(drive_ok || unc) || !location.chars().all(is_path_char) {
        return None;
    }
    let command = body.get(gt + 1..).unwrap_or("").trim().to_string();
    Some((shell, location.to_string(), command))
}

/// Run Command's JSON: StdOut and StdErr messages, when `text` is that JSON.
fn run_command(text: &str) -> Option<(String, RunCommandInfo)> {
    let t = text.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    let json: Json = serde_json::from_str(t.trim_end()).ok()?;
    let list = json.get("value")?.as_array()?;
    let mut stdout: Option<String> = None;
    let mut info = RunCommandInfo::default();
    for entry in list {
        let code = entry.get("code").and_then(Json::as_str)?;
        let message = entry.get("message").and_then(Json::as_str).unwrap_or("");
        info.codes.push(code.to_string());
        if code.contains("StdOut") {
            stdout = Some(message.to_string());
        } else if code.contains("StdErr") && !message.trim().is_empty() {
            info.stderr = Some(message.to_string());
        }
    }
    let stdout = stdout?;
    info.stdout_bytes = stdout.len();
    Some((stdout, info))
}

/// Normalises a capture: decode, unwrap Run Command's JSON, split into lines and segments.
pub fn normalise(bytes: &[u8]) -> Transcript {
    let (text, encoding, replaced) = decode(bytes);
    let mut notes = Vec::new();
    if replaced > 0 {
        notes.push(Note::new(
            None,
            NoteKind::Encoding,
            format!("{replaced} byte sequence(s) were not valid {encoding:?} and were replaced by U+FFFD (an OEM or Windows-1252 code page?); labels are matched with U+FFFD as a wildcard"),
        ));
    }
    let (text, run) = match run_command(&text) {
        Some((out, info)) => (out, Some(info)),
        None => (text, None),
    };
    let at_size_limit = match &run {
        // The message is what survived of the last 4,096 bytes; a little slack for the
        // line ends the JSON layer may have changed.
        Some(info) => info.stdout_bytes + 16 >= RUN_COMMAND_LIMIT,
        None => false,
    };
    if let Some(info) = &run {
        if let Some(e) = &info.stderr {
            let first = e.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            notes.push(Note::new(
                None,
                NoteKind::Info,
                format!(
                    "Run Command standard error is not empty ({} bytes): {}",
                    e.len(),
                    clip(first, 160)
                ),
            ));
        }
        if at_size_limit {
            notes.push(Note::new(
                None,
                NoteKind::Truncated,
                format!(
                    "Run Command returned {} bytes of standard output, its 4,096-byte limit: the start of the output is probably missing",
                    info.stdout_bytes
                ),
            ));
        }
    }
    let lines = split_lines(&text);
    let mut segments = vec![Segment {
        prompt: None,
        lines: Vec::new(),
    }];
    for line in lines {
        if let Some((shell, location, command)) = prompt(&line.text) {
            segments.push(Segment {
                prompt: Some(Prompt {
                    shell,
                    location,
                    command,
                    line: line.number,
                }),
                lines: Vec::new(),
            });
        } else if let Some(seg) = segments.last_mut() {
            seg.lines.push(line);
        }
    }
    Transcript {
        encoding,
        replaced,
        run_command: run,
        segments,
        at_size_limit,
        notes,
    }
}

/// At most `n` characters of `s`, with `…` when cut.
pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

/// True when a line is exactly as long as a console row (80 or 120 columns): the console may
/// have wrapped it, and the next line may be its continuation.
pub(crate) fn full_width(s: &str) -> bool {
    let n = s.chars().count();
    n == 80 || n == 120
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_recognised() {
        let p = prompt;
        assert_eq!(
            p("C:\\Windows\\system32>netsh advfirewall show allprofiles"),
            Some((
                Shell::Cmd,
                "C:\\Windows\\system32".into(),
                "netsh advfirewall show allprofiles".into()
            ))
        );
        assert_eq!(
            p("C:\\>sc query mpssvc"),
            Some((Shell::Cmd, "C:\\".into(), "sc query mpssvc".into()))
        );
        assert_eq!(
            p("PS C:\\Users\\x> Get-NetFirewallProfile"),
            Some((
                Shell::PowerShell,
                "C:\\Users\\x".into(),
                "Get-NetFirewallProfile".into()
            ))
        );
        assert_eq!(
            p("*Evil-WinRM* PS C:\\Users\\eric\\Documents> reg query x"),
            Some((
                Shell::PowerShell,
                "C:\\Users\\eric\\Documents".into(),
                "reg query x".into()
            ))
        );
        assert_eq!(
            p("SAC>cmd"),
            Some((Shell::Sac, String::new(), "cmd".into()))
        );
        assert_eq!(p("HKEY_LOCAL_MACHINE\\SYSTEM"), None);
        assert_eq!(p("Program:   C:\\x>y"), None);
        assert_eq!(p("    Name    REG_SZ    C:\\a>b"), None);
    }

    #[test]
    fn line_ends_of_every_kind() {
        let l = split_lines("a\r\nb\nc\rd\r\r\ne");
        let t: Vec<&str> = l.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(t, ["a", "b", "c", "d", "e"]);
        assert_eq!(l[4].number, 5);
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let s = "State  ON\r\n";
        let le: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let (t, e, _) = decode(&[&[0xFF, 0xFE][..], &le].concat());
        assert_eq!((t.as_str(), e), (s, TextEncoding::Utf16Le));
        let (t, e, _) = decode(&le);
        assert_eq!((t.as_str(), e), (s, TextEncoding::Utf16LeNoBom));
        let be: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let (t, e, _) = decode(&[&[0xFE, 0xFF][..], &be].concat());
        assert_eq!((t.as_str(), e), (s, TextEncoding::Utf16Be));
    }

    #[test]
    fn legacy_bytes_become_replacement_characters() {
        // "Domäne" in CP850 (0x84).
        let (t, e, r) = decode(b"Dom\x84ne");
        assert_eq!((t.as_str(), e, r), ("Dom\u{FFFD}ne", TextEncoding::Utf8, 1));
    }

    #[test]
    fn run_command_json() {
        let j = r#"{"value":[{"code":"ComponentStatus/StdOut/succeeded","level":"Info","message":"a\nPS C:\\> b\nc"},{"code":"ComponentStatus/StdErr/succeeded","message":"oops"}]}"#;
        let t = normalise(j.as_bytes());
        let info = t.run_command.as_ref().unwrap();
        assert_eq!(info.stderr.as_deref(), Some("oops"));
        assert_eq!(t.segments.len(), 2);
        assert_eq!(t.segments[0].lines[0].text, "a");
        assert_eq!(t.segments[1].prompt.as_ref().unwrap().command, "b");
        assert!(!t.at_size_limit);
    }
}
