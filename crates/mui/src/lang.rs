//! Windows language identifiers: LANGIDs (16 bits: primary language in bits 0–9, sublanguage
//! in bits 10–15), LCIDs (a LANGID plus a sort ID in bits 16–19) and language tags, both
//! ways.
//!
//! The registry says which UI language Windows was installed with in
//! `SYSTEM\ControlSet00x\Control\Nls\Language\InstallLanguage`, a hexadecimal LANGID as a
//! string (`0413`); [`parse_install_language`] reads it and [`by_langid`] names it.
//!
//! Source of the table: Microsoft's *[MS-LCID]: Windows Language Code Identifier (LCID)
//! Reference*, section 2.2 "LCID Structure" (the language ID / language tag table), checked
//! against Microsoft's *Locale ID (LCID) Chart* and the *[MS-OE376]* LCID table (BCP 47 codes).
//! The tags are MS-LCID's; a suffix after `_` (`es-ES_tradnl`) names an alternate sort order
//! of the same language.

/// One Windows language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Language {
    /// The LANGID (`0x0413`).
    pub langid: u16,
    /// The language tag, as MS-LCID writes it (`nl-NL`, `es-ES_tradnl`).
    pub tag: &'static str,
    /// English name, for messages.
    pub name: &'static str,
}

const fn l(langid: u16, tag: &'static str, name: &'static str) -> Language {
    Language { langid, tag, name }
}

/// The languages known here: those of the localization notes (nl, de, fr, es, it, pt-BR, ru,
/// ja, zh-CN, ko, pl, sv, tr, en) and the other Windows display languages of the same era, so
/// that a VM in one of them is named even though no built-in names exist for it. Values from
/// [MS-LCID] §2.2.
const LANGUAGES: &[Language] = &[
    l(0x0409, "en-US", "English (United States)"),
    l(0x0809, "en-GB", "English (United Kingdom)"),
    l(0x0413, "nl-NL", "Dutch (Netherlands)"),
    l(0x0407, "de-DE", "German (Germany)"),
    l(0x040C, "fr-FR", "French (France)"),
    l(0x0C0A, "es-ES", "Spanish (Spain, international sort)"),
    l(0x040A, "es-ES_tradnl", "Spanish (Spain, traditional sort)"),
    l(0x0410, "it-IT", "Italian (Italy)"),
    l(0x0416, "pt-BR", "Portuguese (Brazil)"),
    l(0x0419, "ru-RU", "Russian (Russia)"),
    l(0x0411, "ja-JP", "Japanese (Japan)"),
    l(0x0804, "zh-CN", "Chinese (Simplified, PRC)"),
    l(0x0412, "ko-KR", "Korean (Korea)"),
    l(0x0415, "pl-PL", "Polish (Poland)"),
    l(0x041D, "sv-SE", "Swedish (Sweden)"),
    l(0x041F, "tr-TR", "Turkish (Turkey)"),
    // Other Windows display languages: named, no built-in rule names.
    l(0x0401, "ar-SA", "Arabic (Saudi Arabia)"),
    l(0x0402, "bg-BG", "Bulgarian (Bulgaria)"),
    l(0x0404, "zh-TW", "Chinese (Traditional, Taiwan)"),
    l(0x0C04, "zh-HK", "Chinese (Traditional, Hong Kong SAR)"),
    l(0x0405, "cs-CZ", "Czech (Czech Republic)"),
    l(0x0406, "da-DK", "Danish (Denmark)"),
    l(0x0408, "el-GR", "Greek (Greece)"),
    l(0x080A, "es-MX", "Spanish (Mexico)"),
    l(0x0425, "et-EE", "Estonian (Estonia)"),
    l(0x040B, "fi-FI", "Finnish (Finland)"),
    l(0x0C0C, "fr-CA", "French (Canada)"),
    l(0x040D, "he-IL", "Hebrew (Israel)"),
    l(0x041A, "hr-HR", "Croatian (Croatia)"),
    l(0x040E, "hu-HU", "Hungarian (Hungary)"),
    l(0x0427, "lt-LT", "Lithuanian (Lithuania)"),
    l(0x0426, "lv-LV", "Latvian (Latvia)"),
    l(0x0414, "nb-NO", "Norwegian Bokmål (Norway)"),
    l(0x0816, "pt-PT", "Portuguese (Portugal)"),
    l(0x0418, "ro-RO", "Romanian (Romania)"),
    l(0x041B, "sk-SK", "Slovak (Slovakia)"),
    l(0x0424, "sl-SI", "Slovenian (Slovenia)"),
    l(0x241A, "sr-Latn-RS", "Serbian (Latin, Serbia)"),
    l(0x041E, "th-TH", "Thai (Thailand)"),
    l(0x0422, "uk-UA", "Ukrainian (Ukraine)"),
];

/// Every language known here.
pub fn languages() -> &'static [Language] {
    LANGUAGES
}

/// The language of a LANGID (or of an LCID's low 16 bits: pass [`langid_of_lcid`]).
pub fn by_langid(langid: u16) -> Option<&'static Language> {
    LANGUAGES.iter().find(|l| l.langid == langid)
}

/// The language of a tag, case-insensitively, `_` or `-` between the parts before a sort
/// suffix (`nl-NL`, `NL_nl`, `es-ES_tradnl`). A bare language (`nl`) is not a Windows UI
/// language and is not matched here; see [`crate::builtin`] for the names' lookup.
pub fn by_tag(tag: &str) -> Option<&'static Language> {
    let tag = tag.trim();
    LANGUAGES
        .iter()
        .find(|l| l.tag.eq_ignore_ascii_case(tag))
        .or_else(|| {
            let norm = tag.replace('_', "-");
            LANGUAGES.iter().find(|l| l.tag.eq_ignore_ascii_case(&norm))
        })
}

/// The LANGID of an LCID (its low 16 bits; the sort ID above them is dropped).
pub fn langid_of_lcid(lcid: u32) -> u16 {
    (lcid & 0xFFFF) as u16
}

/// The primary language of a LANGID (bits 0–9): `0x13` (Dutch) for `0x0413` and `0x0813`.
pub fn primary_language(langid: u16) -> u16 {
    langid & 0x3FF
}

/// Reads the registry's `InstallLanguage` (or `Default`) value: a hexadecimal LANGID written
/// as a string, `0413`; a `0x` prefix and surrounding spaces are accepted. `None` for anything
/// that is not 1 to 4 hex digits, or is 0.
pub fn parse_install_language(s: &str) -> Option<u16> {
    let s = s.trim().trim_end_matches('\0');
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok().filter(|&v| v != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localization_languages_both_ways() {
        for (id, tag) in [
            (0x0413, "nl-NL"),
            (0x0407, "de-DE"),
            (0x040C, "fr-FR"),
            (0x0C0A, "es-ES"),
            (0x040A, "es-ES_tradnl"),
            (0x0410, "it-IT"),
            (0x0416, "pt-BR"),
            (0x0419, "ru-RU"),
            (0x0411, "ja-JP"),
            (0x0804, "zh-CN"),
            (0x0412, "ko-KR"),
            (0x0415, "pl-PL"),
            (0x041D, "sv-SE"),
            (0x041F, "tr-TR"),
            (0x0409, "en-US"),
            (0x0809, "en-GB"),
        ] {
            assert_eq!(by_langid(id).map(|l| l.tag), Some(tag), "{id:#06x}");
            assert_eq!(by_tag(tag).map(|l| l.langid), Some(id), "{tag}");
        }
    }

    #[test]
    fn table_is_consistent() {
        for (i, a) in LANGUAGES.iter().enumerate() {
            for b in &LANGUAGES[i + 1..] {
                assert_ne!(a.langid, b.langid, "{} / {}", a.tag, b.tag);
                assert!(!a.tag.eq_ignore_ascii_case(b.tag), "{}", a.tag);
            }
            // A sublanguage is never 0 for a specific language.
            assert_ne!(a.langid >> 10, 0, "{}", a.tag);
        }
    }

    #[test]
    fn tags_and_registry_values() {
        assert_eq!(by_tag("NL-nl").map(|l| l.langid), Some(0x0413));
        assert_eq!(by_tag("es_ES").map(|l| l.langid), Some(0x0C0A));
        assert_eq!(by_tag("ES-es_TRADNL").map(|l| l.langid), Some(0x040A));
        assert_eq!(by_tag("nl"), None);
        assert_eq!(by_tag("xx-YY"), None);
        assert_eq!(parse_install_language("0413"), Some(0x0413));
        assert_eq!(parse_install_language(" 0x0c0a\0"), Some(0x0C0A));
        assert_eq!(parse_install_language("409"), Some(0x0409));
        for bad in ["", "0000", "04130", "04g3", "-413", "0x"] {
            assert_eq!(parse_install_language(bad), None, "{bad:?}");
        }
        assert_eq!(langid_of_lcid(0x0001_0407), 0x0407);
        assert_eq!(primary_language(0x0813), primary_language(0x0413));
        assert_eq!(by_langid(0x0813), None);
    }
}
