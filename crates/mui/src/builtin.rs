//! Built-in display names of the Remote Desktop group and rules in the languages that public
//! sources document, for when only the hive is at hand (no `FirewallAPI.dll.mui`).
//!
//! Every entry is copied exactly from `shared/docs/localization.md` §1 (the project's sourced
//! facts), with its mark there: ✔ = two or more independent public sources, ~ = one source.
//! The sources behind that table are of four kinds: public scripts, translated Microsoft
//! articles, test fixtures of other projects, and real captured output. Names marked ✗ there
//! are absent here, as is the pt-BR rule name that was only inferred from a renamed copy. No
//! name is guessed or completed: a language or string not listed gives `None`, and the caller
//! shows the indirect string or the English name.
//!
//! English is not repeated here: the English names are `guestwall-firewall`'s `names` table.

use crate::indirect::parse_indirect;
use crate::lang;

/// How well a built-in name is sourced (the marks of `localization.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sourcing {
    /// ✔: two or more independent public sources agree.
    Corroborated,
    /// ~: one public source.
    SingleSource,
}

/// One built-in name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinName {
    /// The Windows UI language (`nl-NL`).
    pub lang: &'static str,
    /// The string ID in FirewallAPI.dll (`28752` for `@FirewallAPI.dll,-28752`).
    pub id: u16,
    /// The display text, exactly as sourced.
    pub text: &'static str,
    /// How well it is sourced.
    pub sourcing: Sourcing,
}

/// The Remote Desktop group.
const GROUP: u16 = 28752;
/// Windows 7's "Remote Desktop (TCP-In)".
const WIN7_TCP: u16 = 28753;
/// "Remote Desktop - User Mode (TCP-In)".
const USER_TCP: u16 = 28775;
/// "Remote Desktop - User Mode (UDP-In)".
const USER_UDP: u16 = 28776;
/// "Remote Desktop - Shadow (TCP-In)".
const SHADOW: u16 = 28778;

use Sourcing::{Corroborated as OK2, SingleSource as ONE};

const fn n(lang: &'static str, id: u16, text: &'static str, sourcing: Sourcing) -> BuiltinName {
    BuiltinName {
        lang,
        id,
        text,
        sourcing,
    }
}

const NAMES: &[BuiltinName] = &[
    // Dutch.
    n("nl-NL", GROUP, "Extern bureaublad", OK2), // ✔ two or more independent sources
    n(
        "nl-NL",
        USER_TCP,
        "Extern bureaublad - Gebruikersmodus (TCP-In)",
        OK2,
    ), // ✔ two or more
    n(
        "nl-NL",
        USER_UDP,
        "Extern bureaublad - Gebruikersmodus (UDP-In)",
        OK2,
    ), // ✔ same sources as TCP
    n("nl-NL", SHADOW, "Extern bureaublad - Schaduw (TCP-In)", OK2), // ✔ two or more
    n("nl-NL", WIN7_TCP, "Extern bureaublad (TCP-In)", ONE), // ~ one source (Windows 7)
    // German.
    n("de-DE", GROUP, "Remotedesktop", ONE), // ~ one source
    n(
        "de-DE",
        USER_TCP,
        "Remotedesktop - Benutzermodus (TCP eingehend)",
        OK2,
    ), // ✔ two or more
    n(
        "de-DE",
        USER_UDP,
        "Remotedesktop - Benutzermodus (UDP eingehend)",
        OK2,
    ), // ✔ same sources as TCP
    n("de-DE", WIN7_TCP, "Remotedesktop (TCP eingehend)", ONE), // ~ one source (Windows 7)
    // French (only the TCP user-mode rule is sourced, not its UDP twin).
    n("fr-FR", GROUP, "Bureau à distance", OK2), // ✔ two or more
    n(
        "fr-FR",
        USER_TCP,
        "Bureau à distance - Mode utilisateur (TCP-Entrée)",
        ONE,
    ), // ~ one source
    // Spanish.
    n("es-ES", GROUP, "Escritorio remoto", OK2), // ✔ two or more
    n(
        "es-ES",
        USER_TCP,
        "Escritorio remoto - Modo de usuario (TCP de entrada)",
        ONE,
    ), // ~ one source
    n("es-ES", WIN7_TCP, "Escritorio remoto (TCP de entrada)", OK2), // ✔ two or more (Windows 7)
    // Italian.
    n("it-IT", GROUP, "Desktop remoto", ONE), // ~ one source
    // Portuguese (Brazil): the group only; the rule name was inferred, not sourced.
    n("pt-BR", GROUP, "Área de Trabalho Remota", OK2), // ✔ two or more
    // Russian: the group and the Windows 7 rule say "Дистанционное управление…", the newer
    // rule names "Удаленный рабочий стол…" (with an em dash).
    n(
        "ru-RU",
        GROUP,
        "Дистанционное управление рабочим столом",
        OK2,
    ), // ✔ two or more
    n(
        "ru-RU",
        USER_TCP,
        "Удаленный рабочий стол — пользовательский режим (входящий трафик TCP)",
        ONE,
    ), // ~ one source
    n(
        "ru-RU",
        WIN7_TCP,
        "Дистанционное управление рабочим столом (TCP - входящий)",
        OK2,
    ), // ✔ two or more (Windows 7)
    // Japanese.
    n("ja-JP", GROUP, "リモート デスクトップ", OK2), // ✔ two or more
    n(
        "ja-JP",
        USER_TCP,
        "リモート デスクトップ - ユーザー モード (TCP 受信)",
        OK2,
    ), // ✔ two or more
    n(
        "ja-JP",
        USER_UDP,
        "リモート デスクトップ - ユーザー モード (UDP 受信)",
        OK2,
    ), // ✔ same sources as TCP
    n(
        "ja-JP",
        SHADOW,
        "リモート デスクトップ - シャドウ (TCP 受信)",
        OK2,
    ), // ✔ two or more
    n("ja-JP", WIN7_TCP, "リモート デスクトップ (TCP 受信)", OK2), // ✔ two or more (Windows 7)
    // Chinese (Simplified): no space before "(".
    n("zh-CN", GROUP, "远程桌面", OK2), // ✔ two or more
    n("zh-CN", USER_TCP, "远程桌面 - 用户模式(TCP-In)", OK2), // ✔ two or more
    n("zh-CN", USER_UDP, "远程桌面 - 用户模式(UDP-In)", OK2), // ✔ same sources as TCP
    n("zh-CN", SHADOW, "远程桌面 - 远程监控(TCP-In)", ONE), // ~ one source
    // Korean (no sourced group name).
    n(
        "ko-KR",
        USER_TCP,
        "원격 데스크톱 - 사용자 모드(TCP-In)",
        OK2,
    ), // ✔ two or more
    n(
        "ko-KR",
        USER_UDP,
        "원격 데스크톱 - 사용자 모드(UDP-In)",
        OK2,
    ), // ✔ same sources as TCP
    n("ko-KR", SHADOW, "원격 데스크톱 - 섀도(TCP-In)", ONE), // ~ one source
    // Polish.
    n("pl-PL", GROUP, "Pulpit zdalny", OK2), // ✔ two or more
    // Swedish.
    n("sv-SE", GROUP, "Fjärrskrivbord", ONE), // ~ one source
    n(
        "sv-SE",
        USER_TCP,
        "Fjärrskrivbord - användarläge (TCP-In)",
        ONE,
    ), // ~ one source
    // Turkish.
    n("tr-TR", GROUP, "Uzak Masaüstü", ONE), // ~ one source
];

/// Languages that localization.md names without a region: a bare tag (`nl`) means the one
/// Windows UI language listed here. Portuguese and Chinese are not among them: pt-PT and
/// zh-TW are other Windows languages with other translations.
const BARE: &[(&str, &str)] = &[
    ("nl", "nl-NL"),
    ("de", "de-DE"),
    ("fr", "fr-FR"),
    ("es", "es-ES"),
    ("it", "it-IT"),
    ("ru", "ru-RU"),
    ("ja", "ja-JP"),
    ("ko", "ko-KR"),
    ("pl", "pl-PL"),
    ("sv", "sv-SE"),
    ("tr", "tr-TR"),
];

/// Every built-in name.
pub fn builtin_names() -> &'static [BuiltinName] {
    NAMES
}

/// The sourced display text of a FirewallAPI.dll indirect string (`@FirewallAPI.dll,-28752`,
/// also with a `%SystemRoot%\system32\` path) in a Windows UI language (`nl-NL`; `nl` and
/// `nl_NL` also work; `es-ES_tradnl` is Spanish). `None` when it is not sourced.
///
/// Only the Windows UI languages themselves are matched: `fr-CA` or `es-MX` are separate
/// Windows languages whose translations are not sourced, and give `None`.
pub fn builtin(lang_tag: &str, indirect: &str) -> Option<&'static str> {
    builtin_entry(lang_tag, indirect).map(|b| b.text)
}

/// The entry [`builtin`] returns the text of, with how well it is sourced.
pub fn builtin_entry(lang_tag: &str, indirect: &str) -> Option<&'static BuiltinName> {
    let parsed = parse_indirect(indirect)?;
    if parsed.file_name != "firewallapi.dll" {
        return None;
    }
    let lang = ui_language(lang_tag)?;
    NAMES
        .iter()
        .find(|b| b.id == parsed.id && b.lang.eq_ignore_ascii_case(lang))
}

/// [`builtin`] for a LANGID (the registry's `InstallLanguage`, see
/// [`lang::parse_install_language`]).
pub fn builtin_for_langid(langid: u16, indirect: &str) -> Option<&'static str> {
    builtin(lang::by_langid(langid)?.tag, indirect)
}

/// The UI language a tag stands for, as written in `NAMES`.
fn ui_language(tag: &str) -> Option<&'static str> {
    let tag = tag.trim();
    // `es-ES_tradnl`: a sort order after `_`; `nl_NL`: `_` as the separator.
    let tag = match tag.split_once('-') {
        Some(_) => tag.split('_').next().unwrap_or(tag).to_string(),
        None => tag.replace('_', "-"),
    };
    if let Some((_, full)) = BARE.iter().find(|(b, _)| b.eq_ignore_ascii_case(&tag)) {
        return Some(full);
    }
    NAMES
        .iter()
        .map(|b| b.lang)
        .find(|l| l.eq_ignore_ascii_case(&tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(
            builtin("nl-NL", "@FirewallAPI.dll,-28752"),
            Some("Extern bureaublad")
        );
        assert_eq!(
            builtin("NL_nl", "@%SystemRoot%\\system32\\firewallapi.dll,-28775"),
            Some("Extern bureaublad - Gebruikersmodus (TCP-In)")
        );
        assert_eq!(
            builtin("nl", "@FirewallAPI.dll,-28753"),
            Some("Extern bureaublad (TCP-In)")
        );
        assert_eq!(
            builtin("es-ES_tradnl", "@FirewallAPI.dll,-28753"),
            Some("Escritorio remoto (TCP de entrada)")
        );
        assert_eq!(
            builtin_for_langid(0x040A, "@FirewallAPI.dll,-28752"),
            Some("Escritorio remoto")
        );
        assert_eq!(
            builtin_for_langid(0x0C0A, "@FirewallAPI.dll,-28752"),
            Some("Escritorio remoto")
        );
        assert_eq!(
            builtin_for_langid(0x0411, "@FirewallAPI.dll,-28778"),
            Some("リモート デスクトップ - シャドウ (TCP 受信)")
        );
        assert_eq!(
            builtin_entry("ru-RU", "@FirewallAPI.dll,-28775").map(|b| b.sourcing),
            Some(Sourcing::SingleSource)
        );
        // Not sourced: ✗ cells, the inferred pt-BR rule, other languages, other modules.
        assert_eq!(builtin("de-DE", "@FirewallAPI.dll,-28778"), None);
        assert_eq!(builtin("fr-FR", "@FirewallAPI.dll,-28776"), None);
        assert_eq!(builtin("pt-BR", "@FirewallAPI.dll,-28775"), None);
        assert_eq!(builtin("ko-KR", "@FirewallAPI.dll,-28752"), None);
        assert_eq!(builtin("pt", "@FirewallAPI.dll,-28752"), None);
        assert_eq!(builtin("pt-PT", "@FirewallAPI.dll,-28752"), None);
        assert_eq!(builtin("zh-TW", "@FirewallAPI.dll,-28752"), None);
        assert_eq!(builtin("fr-CA", "@FirewallAPI.dll,-28752"), None);
        assert_eq!(builtin("en-US", "@FirewallAPI.dll,-28752"), None);
        assert_eq!(builtin("nl-NL", "@FirewallAPI.dll,-28756"), None);
        assert_eq!(builtin("nl-NL", "@netfw.dll,-28752"), None);
        assert_eq!(builtin("nl-NL", "Remote Desktop"), None);
        assert_eq!(builtin_for_langid(0x0422, "@FirewallAPI.dll,-28752"), None);
    }

    #[test]
    fn table_shape() {
        let keys = [GROUP, WIN7_TCP, USER_TCP, USER_UDP, SHADOW];
        for (i, a) in NAMES.iter().enumerate() {
            assert!(keys.contains(&a.id), "{a:?}");
            assert!(lang::by_tag(a.lang).is_some(), "{a:?}");
            assert_eq!(a.text.trim(), a.text);
            for b in &NAMES[i + 1..] {
                assert!(!(a.lang == b.lang && a.id == b.id), "duplicate {a:?}");
            }
        }
        for (bare, full) in BARE {
            assert!(full.starts_with(bare), "{bare}");
            assert!(NAMES.iter().any(|b| b.lang == *full), "{full}");
        }
        // Every language of localization.md's table has at least one entry.
        for tag in [
            "nl-NL", "de-DE", "fr-FR", "es-ES", "it-IT", "pt-BR", "ru-RU", "ja-JP", "zh-CN",
            "ko-KR", "pl-PL", "sv-SE", "tr-TR",
        ] {
            assert!(NAMES.iter().any(|b| b.lang == tag), "{tag}");
        }
    }
}
