//! guestwall's collectors (the scripts the admin runs on the VM) and the decoder of what the
//! PowerShell one prints.
//!
//! # The PowerShell collector's output, format v1
//!
//! ```text
//! -----BEGIN GUESTWALL CAPTURE v1-----
//! bytes=<length of the gzip data> sha256=<lower-case hex of the gzip data>
//! <base64 of the gzip data, 76 characters a line>
//! -----END GUESTWALL CAPTURE v1-----
//! GUESTWALL: ... (only when the block is longer than 3,500 bytes: where the full copy is)
//! ```
//!
//! The gzip data inflates to UTF-8 text, one record a line (LF), fields separated by TAB, text
//! fields escaped (`\\`, `\t`, `\r`, `\n`, `\0`): `guestwall-capture 1`, `host`, `time`,
//! `port`, `ps`, then registry records (`key PATH [s]`, `part PATH`, `val NAME KIND DATA`,
//! `noval NAME`, `absent PATH`, `skipped N`), runtime records (`svc`, `net`, `fw`, `listen`,
//! `netstat`, `checked`, `unavailable`) and `end N` (the number of records). The layout of
//! each record is in `docs/capture-formats.md`.

use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::regquery::{self, Fidelity, RegValue};
use crate::transcript::{clip, Line};
use crate::{ActiveProfile, Capture, CaptureError, Field, Note, NoteKind, Origin};

/// The BEGIN marker.
pub const BEGIN: &str = "-----BEGIN GUESTWALL CAPTURE v1-----";
/// The END marker.
pub const END: &str = "-----END GUESTWALL CAPTURE v1-----";
/// The first line of the cmd collector's output and the prefix of its section markers.
pub const CMD_MARK: &str = "##### guestwall-cmd:";
/// The most a block may inflate to (a gzip bomb must not allocate without bound).
pub const MAX_PAYLOAD: usize = 16 << 20;
/// A block longer than this is also written to a file on the VM (Run Command keeps 4,096
/// bytes of output; the margin leaves room for the notice line and stray output).
pub const RUN_COMMAND_BUDGET: usize = 3500;
/// Where the PowerShell collector writes a capture too long for Run Command.
pub const OVERFLOW_FILE: &str = r"$env:SystemRoot\Temp\guestwall-capture.txt";

/// One registry step of the collectors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// Every value of `path`, and with `recurse` every subkey's, except subkeys named in
    /// `skip`. Rule keys are filtered (see `rule_matters`).
    Walk {
        path: &'static str,
        recurse: bool,
        skip: &'static [&'static str],
    },
    /// The named values of `path`.
    Values {
        path: &'static str,
        names: &'static [&'static str],
    },
}

const FW: &str = r"SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy";

/// What both collectors read from the registry (HKLM-relative), in order.
pub(crate) const STEPS: &[Step] = &[
    Step::Walk {
        path: r"SYSTEM\Select",
        recurse: false,
        skip: &[],
    },
    // The local store: profiles, FirewallRules, RestrictedServices, Mdm, ConSecRules. Its
    // `Defaults` subtree is the restore copy, not enforced.
    Step::Walk {
        path: FW,
        recurse: true,
        skip: &["Defaults"],
    },
    // The Group Policy store.
    Step::Walk {
        path: r"SOFTWARE\Policies\Microsoft\WindowsFirewall",
        recurse: true,
        skip: &[],
    },
    Step::Values {
        path: r"SYSTEM\CurrentControlSet\Control\Terminal Server",
        names: &["fDenyTSConnections"],
    },
    Step::Values {
        path: r"SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp",
        names: &["PortNumber"],
    },
    Step::Walk {
        path: r"SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services",
        recurse: false,
        skip: &[],
    },
    Step::Values {
        path: r"SYSTEM\CurrentControlSet\Services\MpsSvc",
        names: &["Start"],
    },
    Step::Values {
        path: r"SYSTEM\CurrentControlSet\Services\BFE",
        names: &["Start"],
    },
    Step::Values {
        path: r"SYSTEM\CurrentControlSet\Services\TermService",
        names: &["Start"],
    },
    // The UI language, so that the console script names rules as that Windows does.
    Step::Values {
        path: r"SYSTEM\CurrentControlSet\Control\Nls\Language",
        names: &["InstallLanguage", "Default"],
    },
    Step::Values {
        path: r"SYSTEM\CurrentControlSet\Control\MUI\Settings",
        names: &["PreferredUILanguages"],
    },
    Step::Values {
        path: r"SOFTWARE\Microsoft\Windows NT\CurrentVersion",
        names: &[
            "ProductName",
            "CurrentBuildNumber",
            "CurrentMajorVersionNumber",
            "CurrentMinorVersionNumber",
            "CurrentVersion",
            "UBR",
        ],
    },
];

/// The services whose state both collectors report.
pub(crate) const SERVICES: &[&str] = &["MpsSvc", "BFE", "TermService"];

/// The depth below a walked key that the walk goes (a cap against cycles or odd trees).
pub(crate) const MAX_DEPTH: usize = 8;

const PS_HEAD: &str = r#"# guestwall collector v1 for Windows PowerShell 5.1 and PowerShell 7 (Run Command, or a
# PowerShell prompt as administrator). Read-only: it changes nothing, except that a capture
# too long for Run Command's 4,096-byte output window is also written to
# $env:SystemRoot\Temp\guestwall-capture.txt. Its output is one block (gzip + base64 of a
# tab-separated text, with its length and SHA-256) between marker lines; guestwall decodes
# it ("collector format v1" in guestwall's docs/capture-formats.md).
$ErrorActionPreference = 'SilentlyContinue'
$Port = __PORT__
$HKLM = [Microsoft.Win32.Registry]::LocalMachine
# Rules and the listener are checked for the port RDP listens on (RDP-Tcp's PortNumber); the
# port above only when that cannot be read.
$k = $HKLM.OpenSubKey('SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp')
if ($null -ne $k) {
  $v = $k.GetValue('PortNumber', $null)
  if ($v -is [int] -and $v -gt 0 -and $v -le 65535) { $Port = $v }
  $k.Close()
}
$out = New-Object System.Collections.Generic.List[string]

# One record: the fields joined by TAB (text fields are escaped by E first).
function L { $out.Add(($args -join "`t")) }

# Escapes a text field: backslash, TAB, CR, LF and NUL become \\ \t \r \n \0.
function E([string]$s) {
  $s.Replace('\', '\\').Replace("`t", '\t').Replace("`r", '\r').Replace("`n", '\n').Replace([string][char]0, '\0')
}

# A value's data by its kind: strings escaped; DWORD and QWORD in hex; REG_MULTI_SZ as
# <count>:<items joined by \0>; anything else (binary, unknown) as hex bytes.
function D([int]$t, $v) {
  if ($t -eq 1 -or $t -eq 2) { return (E $v) }
  if ($t -eq 4) { return ('{0:x8}' -f $v) }
  if ($t -eq 11) { return ('{0:x16}' -f $v) }
  if ($t -eq 7) { return ('' + @($v).Count + ':' + ((@($v) | ForEach-Object { E $_ }) -join '\0')) }
  if ($v -is [byte[]]) { return [BitConverter]::ToString($v).Replace('-', '') }
  return ''
}

# Can this rule string matter for inbound TCP to port $P? A rule is left out only when that is
# certain: Dir=Out; Protocol tokens none of which is 6 (TCP), 256 (any) or unusual; an app
# package (AppPkgId); a program other than svchost.exe or System; a service other than TermService (or *); LPort tokens that
# are all numbers or ranges and miss $P. When in doubt, the rule is kept.
function M([string]$s, [int]$P) {
  if ($s -cmatch '\|Dir=Out(\||$)') { return $false }
  $pr = @([regex]::Matches($s, '\|Protocol=([^|]*)') | ForEach-Object { $_.Groups[1].Value })
  if ($pr.Count -gt 0) {
    $tcp = $false
    foreach ($x in $pr) { if ($x -ceq '6' -or $x -ceq '256' -or $x -cnotmatch '^[0-9]+$') { $tcp = $true } }
    if (-not $tcp) { return $false }
  }
  # RDP is served by TermService in svchost.exe (System on Windows 7), not by a packaged app:
  # a rule bound to an app package, another program or another service cannot match it.
  if ($s -cmatch '\|AppPkgId=') { return $false }
  foreach ($a in @([regex]::Matches($s, '\|App=([^|]*)') | ForEach-Object { $_.Groups[1].Value })) {
    if ($a -notmatch '(^|\\)svchost\.exe$' -and $a -ne 'System') { return $false }
  }
  foreach ($v in @([regex]::Matches($s, '\|Svc=([^|]*)') | ForEach-Object { $_.Groups[1].Value })) {
    if ($v -ne 'termservice' -and $v -ne '*') { return $false }
  }
  $lp = @([regex]::Matches($s, '\|LPort(2_10|2_20)?=([^|]*)') | ForEach-Object { $_.Groups[2].Value })
  if ($lp.Count -eq 0) { return $true }
  foreach ($x in $lp) {
    if ($x -cmatch '^([0-9]{1,5})-([0-9]{1,5})$') {
      if ([int]$Matches[1] -le $P -and $P -le [int]$Matches[2]) { return $true }
    } elseif ($x -cmatch '^[0-9]{1,5}$') {
      if ([int]$x -eq $P) { return $true }
    } else { return $true }
  }
  return $false
}

# Every value of HKLM\$p, then (with $r) its subkeys but those named in $skip, down to depth 8.
# Rule keys keep only the rules M keeps for $Port or for 3389 (the rules of RDP's usual port
# show that RDP was moved away from them), without their display-only Desc= token.
function W([string]$p, [bool]$r, [string[]]$skip, [int]$d) {
  $k = $HKLM.OpenSubKey($p)
  if ($null -eq $k) { L 'absent' (E "HKLM\$p"); return }
  $subs = @($k.GetSubKeyNames())
  $all = $r -and $d -lt 8
  foreach ($s in $subs) { if ($skip -contains $s) { $all = $false } }
  if ($all) { L 'key' (E "HKLM\$p") 's' } else { L 'key' (E "HKLM\$p") }
  $rules = $p -cmatch '\\FirewallRules$|\\RestrictedServices\\(Static|Configurable)\\System$'
  $n = 0
  foreach ($name in $k.GetValueNames()) {
    $t = [int]$k.GetValueKind($name)
    $v = $k.GetValue($name, $null, 'DoNotExpandEnvironmentNames')
    if ($rules -and $t -eq 1) {
      if (-not ((M $v $Port) -or (M $v 3389))) { $n++; continue }
      $v = $v -creplace '\|Desc=[^|]*', ''
    }
    L 'val' (E $name) $t (D $t $v)
  }
  if ($n -gt 0) { L 'skipped' $n }
  if ($r -and $d -lt 8) {
    foreach ($s in $subs) { if (-not ($skip -contains $s)) { W "$p\$s" $r $skip ($d + 1) } }
  }
  $k.Close()
}

# The named values of HKLM\$p ('noval' for each one that does not exist).
function V([string]$p, [string[]]$names) {
  $k = $HKLM.OpenSubKey($p)
  if ($null -eq $k) { L 'absent' (E "HKLM\$p"); return }
  L 'part' (E "HKLM\$p")
  $have = @($k.GetValueNames())
  foreach ($name in $names) {
    if ($have -contains $name) {
      $t = [int]$k.GetValueKind($name)
      L 'val' (E $name) $t (D $t ($k.GetValue($name, $null, 'DoNotExpandEnvironmentNames')))
    } else { L 'noval' (E $name) }
  }
  $k.Close()
}

L 'guestwall-capture' 1
L 'host' (E $env:COMPUTERNAME)
L 'time' ((Get-Date).ToUniversalTime().ToString('o'))
L 'port' $Port
L 'ps' (E ([string]$PSVersionTable.PSVersion))
"#;

const PS_TAIL: &str = r#"
# What only the running machine knows: service states, the networks and their profiles,
# the effective firewall profiles, and who listens on $Port.
foreach ($s in 'MpsSvc', 'BFE', 'TermService') {
  $g = Get-Service -Name $s
  if ($null -eq $g) { L 'svc' $s 'Missing' } else { L 'svc' $s ([string]$g.Status) }
}
if (Get-Command Get-NetConnectionProfile) {
  L 'checked' 'networks'
  foreach ($c in @(Get-NetConnectionProfile)) { L 'net' (E $c.Name) (E $c.InterfaceAlias) ([int]$c.NetworkCategory) }
} else { L 'unavailable' 'Get-NetConnectionProfile' }
if (Get-Command Get-NetFirewallProfile) {
  foreach ($f in @(Get-NetFirewallProfile -PolicyStore ActiveStore)) {
    L 'fw' (E $f.Name) ([string]$f.Enabled) ([string]$f.DefaultInboundAction) ([string]$f.AllowLocalFirewallRules)
  }
} else { L 'unavailable' 'Get-NetFirewallProfile' }
L 'checked' 'listeners'
if (Get-Command Get-NetTCPConnection) {
  foreach ($c in @(Get-NetTCPConnection -State Listen -LocalPort $Port)) {
    $id = $c.OwningProcess
    $pn = (Get-Process -Id $id).ProcessName
    $sv = @(Get-CimInstance Win32_Service -Filter "ProcessId=$id" | ForEach-Object { $_.Name }) -join ','
    L 'listen' 'TCP' (E $c.LocalAddress) $c.LocalPort $id (E $pn) (E $sv)
  }
} else {
  foreach ($x in @(netstat -ano -p TCP)) { if ($x -match (':' + $Port + '\s')) { L 'netstat' (E $x.Trim()) } }
}
L 'end' ($out.Count + 1)

# gzip, SHA-256 and base64, between the marker lines.
$raw = [Text.Encoding]::UTF8.GetBytes(($out -join "`n") + "`n")
$ms = New-Object IO.MemoryStream
$gz = New-Object IO.Compression.GZipStream($ms, [IO.Compression.CompressionMode]::Compress)
$gz.Write($raw, 0, $raw.Length)
$gz.Close()
$z = $ms.ToArray()
$sha = [BitConverter]::ToString([Security.Cryptography.SHA256]::Create().ComputeHash($z)).Replace('-', '').ToLower()
$b64 = [Convert]::ToBase64String($z, [Base64FormattingOptions]::InsertLineBreaks)
$block = "-----BEGIN GUESTWALL CAPTURE v1-----`r`nbytes=$($z.Length) sha256=$sha`r`n$b64`r`n-----END GUESTWALL CAPTURE v1-----"
Write-Output $block
# Run Command returns only the last 4,096 bytes: say where the whole capture is, last, so
# that this line survives the cut.
if ($block.Length -gt 3500) {
  $file = Join-Path $env:SystemRoot 'Temp\guestwall-capture.txt'
  Set-Content -LiteralPath $file -Value $block -Encoding Ascii
  Write-Output "GUESTWALL: the capture is $($block.Length) bytes, more than Run Command returns (4096): the full capture is in $file (az vm run-command create --output-blob-uri can return it)"
}
"#;

fn ps_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The PowerShell collector for RDP on `port` (see the module documentation for its output).
pub fn collector_powershell(port: u16) -> String {
    let mut s = PS_HEAD.replace("__PORT__", &port.to_string());
    s.push_str("\n# The registry, read raw (language-independent).\n");
    for step in STEPS {
        match step {
            Step::Walk {
                path,
                recurse,
                skip,
            } => {
                let skip: Vec<String> = skip.iter().map(|x| ps_quote(x)).collect();
                s.push_str(&format!(
                    "W {} ${} @({}) 0\n",
                    ps_quote(path),
                    recurse,
                    skip.join(", ")
                ));
            }
            Step::Values { path, names } => {
                let names: Vec<String> = names.iter().map(|x| ps_quote(x)).collect();
                s.push_str(&format!("V {} @({})\n", ps_quote(path), names.join(", ")));
            }
        }
    }
    s.push_str(PS_TAIL);
    s
}

/// The cmd collector for RDP on `port`: only `reg query`, `sc`, `netsh` and `netstat`, each
/// section after a marker line naming its command, so that [`crate::parse_capture`] knows
/// what each part is. Rule keys are piped through `findstr` (inbound rules only): those keys
/// are then read as partial.
pub fn collector_cmd(port: u16) -> String {
    let mut s = String::new();
    s.push_str(
        "@echo off\r\n\
         rem guestwall collector v1 for cmd.exe (the serial console's cmd channel). Read-only.\r\n\
         rem Each section starts with a marker line naming its command; guestwall parses the\r\n\
         rem output (docs/capture-formats.md). Not for Run Command: it runs PowerShell, where\r\n\
         rem sc is Set-Content; use `guestwall collect` (the PowerShell collector) there.\r\n",
    );
    s.push_str(&format!("echo {CMD_MARK} guestwall-cmd v1 port={port}\r\n"));
    s.push_str(&format!("echo {CMD_MARK} hostname\r\nhostname\r\n"));
    let mark = |cmd: &str| format!("echo {CMD_MARK} {}\r\n{cmd}\r\n", cmd.replace('|', "^|"));
    for step in STEPS {
        match step {
            Step::Walk {
                path,
                recurse,
                skip,
            } => {
                if !recurse {
                    s.push_str(&mark(&format!("reg query \"HKLM\\{path}\"")));
                } else if skip.is_empty() {
                    s.push_str(&mark(&format!("reg query \"HKLM\\{path}\" /s")));
                } else {
                    // The local store: its profile keys whole, its rule keys filtered to
                    // inbound rules (Defaults, the restore copy, is left out).
                    for sub in [
                        "DomainProfile",
                        "StandardProfile",
                        "PublicProfile",
                        "ConSecRules",
                    ] {
                        s.push_str(&mark(&format!("reg query \"HKLM\\{path}\\{sub}\" /s")));
                    }
                    for sub in [
                        "FirewallRules",
                        "Mdm\\FirewallRules",
                        "RestrictedServices\\AppIso\\FirewallRules",
                        "RestrictedServices\\Static\\System",
                        "RestrictedServices\\Configurable\\System",
                    ] {
                        s.push_str(&mark(&format!(
                            "reg query \"HKLM\\{path}\\{sub}\" | findstr /c:\"HKEY_\" /c:\"Dir=In\""
                        )));
                    }
                }
            }
            Step::Values { path, names } => {
                for n in *names {
                    s.push_str(&mark(&format!("reg query \"HKLM\\{path}\" /v {n}")));
                }
            }
        }
    }
    for svc in SERVICES {
        s.push_str(&mark(&format!("sc qc {svc}")));
        s.push_str(&mark(&format!("sc queryex {svc}")));
    }
    s.push_str(&mark("netsh advfirewall show currentprofile"));
    s.push_str(&mark("netsh advfirewall show allprofiles"));
    // Every TCP endpoint: RDP may listen on another port than `port` (PortNumber decides).
    s.push_str(&mark("netstat -ano -p TCP"));
    s.push_str(&format!("echo {CMD_MARK} end\r\n"));
    s
}

/// Writes a collector for RDP on `port`: the PowerShell one, or with `cmd` the cmd one.
pub fn write_collector(out: &mut dyn std::io::Write, cmd: bool, port: u16) -> std::io::Result<()> {
    let text = if cmd {
        collector_cmd(port)
    } else {
        collector_powershell(port)
    };
    out.write_all(text.as_bytes())
}

/// What a decoded collector block said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorInfo {
    /// The BEGIN line.
    pub origin: Origin,
    /// The format version (1).
    pub version: u32,
    /// The RDP port it checked.
    pub port: Option<u16>,
    /// PowerShell's version.
    pub ps_version: Option<String>,
    /// Length of the gzip data.
    pub compressed_bytes: usize,
    /// Length of the payload text.
    pub payload_bytes: usize,
    /// Number of records.
    pub records: usize,
    /// Rule values left out as unable to match inbound TCP to the port.
    pub filtered_rules: usize,
}

fn is_b64(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

/// Decodes the block whose BEGIN line is `lines[start]`: the payload text and the lines used.
pub(crate) fn decode_block(
    lines: &[Line],
    start: usize,
) -> (Result<(String, usize), CaptureError>, usize) {
    let begin = lines.get(start).map_or(0, |l| l.number);
    let Some(first) = lines.get(start) else {
        return (Err(CaptureError::NoBlock), 1);
    };
    let t = first.text.trim();
    if t != BEGIN {
        let version = t
            .strip_prefix("-----BEGIN GUESTWALL CAPTURE ")
            .and_then(|r| r.strip_suffix("-----"))
            .unwrap_or(t)
            .to_string();
        return (
            Err(CaptureError::Version {
                line: begin,
                version,
            }),
            1,
        );
    }
    // The END line: everything up to it belongs to the block.
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, l)| l.text.trim() == END || l.text.trim() == BEGIN)
        .map(|(k, l)| (k, l.text.trim() == END));
    let (end, used) = match end {
        Some((k, true)) => (k, k + 1 - start),
        _ => {
            // No END: the rest is the block's, as far as base64 goes.
            let k = lines
                .iter()
                .enumerate()
                .skip(start + 1)
                .find(|(_, l)| {
                    let x = l.text.trim();
                    !x.is_empty() && !is_b64(x) && !x.starts_with("bytes=")
                })
                .map_or(lines.len(), |(k, _)| k);
            return (Err(CaptureError::NoEnd { line: begin }), (k - start).max(1));
        }
    };
    let body = lines.get(start + 1..end).unwrap_or(&[]);
    let mut it = body.iter().filter(|l| !l.text.trim().is_empty());
    let Some(header) = it.next() else {
        return (
            Err(CaptureError::Header {
                line: begin + 1,
                text: String::new(),
            }),
            used,
        );
    };
    let mut expect_len: Option<usize> = None;
    let mut expect_sha: Option<String> = None;
    for part in header.text.split_whitespace() {
        if let Some(v) = part.strip_prefix("bytes=") {
            expect_len = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("sha256=") {
            expect_sha = Some(v.to_ascii_lowercase());
        }
    }
    let (Some(expect_len), Some(expect_sha)) = (expect_len, expect_sha) else {
        return (
            Err(CaptureError::Header {
                line: header.number,
                text: clip(&header.text, 80),
            }),
            used,
        );
    };
    let mut b64 = String::new();
    for l in it {
        let x = l.text.trim();
        if !is_b64(x) {
            return (
                Err(CaptureError::Base64 {
                    line: l.number,
                    text: clip(x, 40),
                }),
                used,
            );
        }
        b64.push_str(x);
    }
    let data = match base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) {
        Ok(d) => d,
        Err(e) => {
            return (
                Err(CaptureError::Base64 {
                    line: begin,
                    text: e.to_string(),
                }),
                used,
            )
        }
    };
    if data.len() != expect_len {
        return (
            Err(CaptureError::Length {
                line: begin,
                expected: expect_len,
                actual: data.len(),
            }),
            used,
        );
    }
    let actual: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if actual != expect_sha {
        return (
            Err(CaptureError::Checksum {
                line: begin,
                expected: expect_sha,
                actual,
            }),
            used,
        );
    }
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_PAYLOAD).unwrap_or(u64::MAX);
    let mut dec = flate2::read::GzDecoder::new(data.as_slice()).take(limit + 1);
    if let Err(e) = dec.read_to_end(&mut out) {
        return (
            Err(CaptureError::Gzip {
                line: begin,
                reason: e.to_string(),
            }),
            used,
        );
    }
    if out.len() > MAX_PAYLOAD {
        return (
            Err(CaptureError::TooLarge {
                line: begin,
                limit: MAX_PAYLOAD,
            }),
            used,
        );
    }
    (
        Ok((String::from_utf8_lossy(&out).into_owned(), data.len())),
        used,
    )
}

/// Undoes [`escape`]. Unknown escapes are kept as they are.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(x) => {
                out.push('\\');
                out.push(x);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The escaping of the collector's text fields (what its `E` function does).
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
        .replace('\0', "\\0")
}

/// The bytes of a `val` record's data, and how exact they are.
fn value_data(kind: i64, data: &str) -> Option<(u32, Vec<u8>, Fidelity)> {
    Some(match kind {
        1 | 2 => (
            u32::try_from(kind).ok()?,
            regquery::utf16z(&unescape(data)),
            Fidelity::Reencoded,
        ),
        4 if data.len() <= 8 => {
            let n = u32::from_str_radix(data, 16).ok()?;
            (4, n.to_le_bytes().to_vec(), Fidelity::Exact)
        }
        4 | 11 if data.len() <= 16 => {
            let n = u64::from_str_radix(data, 16).ok()?;
            (
                u32::try_from(kind).ok()?,
                n.to_le_bytes().to_vec(),
                Fidelity::Exact,
            )
        }
        7 => {
            let (count, items) = data.split_once(':')?;
            let count: usize = count.parse().ok()?;
            let list: Vec<String> = if count == 0 {
                Vec::new()
            } else {
                items.split("\\0").map(unescape).collect()
            };
            if list.len() != count {
                return None;
            }
            (7, regquery::multi_sz(&list), Fidelity::Reencoded)
        }
        3 => (3, regquery::hex_bytes(data)?, Fidelity::Exact),
        0 | -1 => (0, regquery::hex_bytes(data)?, Fidelity::TypeUnknown),
        _ => return None,
    })
}

/// Applies a decoded payload to the capture. `origin` is the block's BEGIN line.
pub(crate) fn apply(payload: &str, compressed: usize, origin: &Origin, cap: &mut Capture) {
    let mut info = CollectorInfo {
        origin: origin.clone(),
        version: 0,
        port: None,
        ps_version: None,
        compressed_bytes: compressed,
        payload_bytes: payload.len(),
        records: 0,
        filtered_rules: 0,
    };
    let at = |n: usize| Origin {
        payload_line: Some(n),
        ..origin.clone()
    };
    let mut key: Option<String> = None;
    let mut end_seen: Option<usize> = None;
    let lines: Vec<&str> = payload.split('\n').filter(|l| !l.is_empty()).collect();
    let damaged = |cap: &mut Capture, n: usize, what: &str| {
        cap.notes.push(Note::new(
            Some(origin.line),
            NoteKind::Damaged,
            format!("collector payload line {n}: {what}"),
        ));
    };
    for (idx, line) in lines.iter().enumerate() {
        let n = idx + 1;
        info.records = n;
        let f: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        match get(0) {
            "guestwall-capture" => info.version = get(1).parse().unwrap_or(0),
            "host" => cap.machine = Some(unescape(get(1))),
            "time" => cap.time = Some(get(1).to_string()),
            "port" => info.port = get(1).parse().ok(),
            "ps" => info.ps_version = Some(unescape(get(1))),
            "key" | "part" => {
                let path = unescape(get(1));
                let k = cap.registry.insert_key(&path, at(n));
                if get(0) == "key" {
                    k.values_complete = true;
                    k.subkeys_complete |= get(2) == "s";
                }
                key = Some(path);
            }
            "val" => {
                let Some(k) = key.clone() else {
                    damaged(cap, n, "a value before any key");
                    continue;
                };
                let name = unescape(get(1));
                let kind: i64 = get(2).parse().unwrap_or(i64::MIN);
                match value_data(kind, get(3)) {
                    Some((t, data, fidelity)) => cap.registry.insert_value(
                        &k,
                        RegValue {
                            name,
                            reg_type: t,
                            data,
                            shown: unescape(get(3)),
                            fidelity,
                            origin: at(n),
                        },
                    ),
                    None => damaged(
                        cap,
                        n,
                        &format!("value {name:?} of kind {} not understood", get(2)),
                    ),
                }
            }
            "noval" => {
                if let Some(k) = &key {
                    cap.registry.absent.push(regquery::Absent {
                        key: k.clone(),
                        value: Some(unescape(get(1))),
                        origin: at(n),
                    });
                }
            }
            "absent" => {
                cap.registry.absent.push(regquery::Absent {
                    key: regquery::normalize_path(&unescape(get(1))),
                    value: None,
                    origin: at(n),
                });
                key = None;
            }
            "skipped" => {
                let count: usize = get(1).parse().unwrap_or(0);
                info.filtered_rules += count;
                if let Some(k) = &key {
                    if let Some(rk) = cap.registry.key(k).map(|x| x.path.clone()) {
                        let kk = cap.registry.insert_key(&rk, at(n));
                        kk.filtered += count;
                        kk.values_complete = false;
                    }
                }
            }
            "svc" => {
                let mut s = crate::Service::new(get(1), at(n));
                if get(2) == "Missing" {
                    s.exists = Some(false);
                } else {
                    s.exists = Some(true);
                    s.state = Some(Field::new(
                        get(2),
                        crate::pwsh::status_code(get(2)),
                        origin.line,
                    ));
                }
                cap.merge_service(s);
            }
            "checked" => match get(1) {
                "listeners" => {
                    cap.listeners_checked = true;
                    cap.listener_ports.extend(info.port);
                }
                "networks" => {
                    cap.active_profiles.get_or_insert_with(Vec::new);
                }
                _ => {}
            },
            "net" => {
                let c = crate::PsConnectionProfile {
                    name: Some(unescape(get(1))).filter(|x| !x.is_empty()),
                    interface: Some(unescape(get(2))).filter(|x| !x.is_empty()),
                    profile: crate::pwsh::category(get(3)),
                    origin: at(n),
                };
                cap.add_active(ActiveProfile {
                    profile: c.profile,
                    network: c.name.clone(),
                    interface: c.interface.clone(),
                    origin: at(n),
                });
                cap.connection_profiles.push(c);
            }
            "fw" => cap.ps_profiles.push(crate::PsFirewallProfile {
                profile: guestwall_firewall::Profile::parse(&unescape(get(1))),
                enabled: Some(get(2).to_string()),
                default_inbound: Some(get(3).to_string()),
                allow_local_rules: Some(get(4).to_string()),
                active_store: true,
                origin: at(n),
            }),
            "listen" => {
                if let Ok(port) = get(3).parse() {
                    cap.listeners.push(crate::Listener {
                        protocol: get(1).to_string(),
                        address: unescape(get(2)),
                        port,
                        listening: true,
                        state: "Listen".into(),
                        pid: get(4).parse().ok(),
                        process: Some(unescape(get(5))).filter(|x| !x.is_empty()),
                        services: unescape(get(6))
                            .split(',')
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect(),
                        origin: at(n),
                    });
                } else {
                    damaged(cap, n, "listener without a port");
                }
            }
            "netstat" => {
                if let Some(l) = crate::netstat::netstat_row(&unescape(get(1)), at(n)) {
                    cap.listeners.push(l);
                }
            }
            "unavailable" => cap.notes.push(Note::new(
                Some(origin.line),
                NoteKind::Info,
                format!(
                    "collector: {} is not available on this Windows; what it tells is unknown",
                    unescape(get(1))
                ),
            )),
            "end" => end_seen = get(1).parse().ok(),
            other => cap.notes.push(Note::new(
                Some(origin.line),
                NoteKind::Unparsed,
                format!(
                    "collector payload line {n}: unknown record {:?}",
                    clip(other, 40)
                ),
            )),
        }
    }
    match end_seen {
        Some(e) if e == lines.len() => {}
        Some(e) => cap.notes.push(Note::new(
            Some(origin.line),
            NoteKind::Damaged,
            format!(
                "collector payload has {} records, its end record says {e}",
                lines.len()
            ),
        )),
        None => {
            cap.truncated = true;
            cap.notes.push(Note::new(
                Some(origin.line),
                NoteKind::Truncated,
                "collector payload without its end record: it was cut",
            ));
        }
    }
    if info.filtered_rules > 0 {
        cap.notes.push(Note::new(
            Some(origin.line),
            NoteKind::Info,
            format!(
                "collector left out {} rule(s) that cannot match inbound TCP to port {}: their keys are partial",
                info.filtered_rules,
                match info.port {
                    None => "?".to_string(),
                    Some(3389) => "3389".to_string(),
                    Some(p) => format!("{p} (or 3389)"),
                }
            ),
        ));
    }
    if info.version != 1 {
        cap.notes.push(Note::new(
            Some(origin.line),
            NoteKind::Damaged,
            "collector payload does not start with `guestwall-capture 1`",
        ));
    }
    cap.collectors.push(info);
}

/// Decodes the first collector block in `bytes` (a whole transcript) into a [`Capture`].
pub fn decode_collector(bytes: &[u8], origin_name: &str) -> Result<Capture, CaptureError> {
    let t = crate::transcript::normalise(bytes);
    let mut cap = Capture::empty(origin_name, t.encoding);
    let file: Arc<str> = Arc::clone(&cap.origin_name);
    let lines: Vec<Line> = t.segments.into_iter().flat_map(|s| s.lines).collect();
    let start = lines
        .iter()
        .position(|l| l.text.trim().starts_with("-----BEGIN GUESTWALL CAPTURE"))
        .ok_or(CaptureError::NoBlock)?;
    let (res, _) = decode_block(&lines, start);
    let (payload, compressed) = res?;
    let origin = Origin::new(&file, lines.get(start).map_or(0, |l| l.number));
    if !payload.starts_with("guestwall-capture\t") {
        return Err(CaptureError::Payload {
            line: origin.line,
            text: clip(payload.lines().next().unwrap_or(""), 40),
        });
    }
    apply(&payload, compressed, &origin, &mut cap);
    Ok(cap)
}

#[doc(hidden)]
pub mod encode;
