//! Localized labels and values of netsh and sc, with the kind of source for each entry.
//!
//! Sources (see `../shared/docs/localization.md` §2–3 and `../shared/corpus/netsh/FORMAT.md`
//! §3; the kinds are theirs): **[R]** a real capture, **[S]** a semi-real paste (real
//! labels, some values redacted), **[F]** another project's test fixture (probably
//! hand-written), **[T]** a translated Microsoft article or help text. French is
//! **unverified** (two fixtures disagree); nothing is invented: a label not in these tables is
//! reported, not guessed.

/// A UI language whose labels were recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Language {
    /// English.
    English,
    /// German.
    German,
    /// Spanish.
    Spanish,
    /// Russian.
    Russian,
    /// French (unverified tables).
    French,
}

/// A field of a `show rule` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleLabel {
    /// `Rule Name:`
    RuleName,
    /// `Description:`
    Description,
    /// `Enabled:`
    Enabled,
    /// `Direction:`
    Direction,
    /// `Profiles:`
    Profiles,
    /// `Grouping:`
    Grouping,
    /// `LocalIP:`
    LocalIp,
    /// `RemoteIP:`
    RemoteIp,
    /// `Protocol:`
    Protocol,
    /// `LocalPort:`
    LocalPort,
    /// `RemotePort:`
    RemotePort,
    /// `Edge traversal:`
    Edge,
    /// `Program:`
    Program,
    /// `Service:`
    Service,
    /// `InterfaceTypes:`
    InterfaceTypes,
    /// `Security:`
    Security,
    /// `Rule source:`
    RuleSource,
    /// `Action:`
    Action,
}

use Language::*;
use RuleLabel as L;

/// `show rule` labels (without the colon), in netsh's field order.
pub const RULE_LABELS: &[(RuleLabel, Language, &str)] = &[
    (L::RuleName, English, "Rule Name"),                // [R]
    (L::RuleName, German, "Regelname"),                 // [S] dayz paste
    (L::RuleName, Spanish, "Nombre de regla"),          // [F] localization.md §2
    (L::RuleName, Russian, "Имя правила"),              // [R] ansible PR 27381
    (L::RuleName, French, "Nom de la règle"),           // [F] unverified
    (L::Description, English, "Description"),           // [R]
    (L::Description, German, "Beschreibung"),           // [S]
    (L::Enabled, English, "Enabled"),                   // [R]
    (L::Enabled, German, "Aktiviert"),                  // [S]
    (L::Enabled, Spanish, "Habilitada"),                // [F]
    (L::Enabled, Russian, "Включен"),                   // [R]
    (L::Enabled, Russian, "Включено"),                  // [F] localization.md §2
    (L::Enabled, French, "Activé"),                     // [F] unverified
    (L::Direction, English, "Direction"),               // [R]; also the French fixture [F]
    (L::Direction, German, "Richtung"),                 // [S]
    (L::Direction, Spanish, "Dirección"),               // [F]
    (L::Direction, Russian, "Направление"),             // [R]
    (L::Direction, French, "Sens"),                     // [F] unverified
    (L::Profiles, English, "Profiles"),                 // [R]; also kept by the Russian build [R]
    (L::Profiles, German, "Profile"),                   // [S]
    (L::Profiles, Spanish, "Perfiles"),                 // [F]
    (L::Profiles, Russian, "Профили"),                  // [F]
    (L::Profiles, French, "Profils"),                   // [F] unverified
    (L::Grouping, English, "Grouping"),                 // [R]
    (L::Grouping, German, "Gruppierung"),               // [S]
    (L::Grouping, Spanish, "Agrupamiento"),             // [F]
    (L::Grouping, Russian, "Группировка"),              // [R]
    (L::Grouping, French, "Groupement"),                // [F] unverified
    (L::LocalIp, English, "LocalIP"), // [R]; kept by Russian [R], Spanish [F], French [F]
    (L::LocalIp, German, "Lokales IP"), // [S]
    (L::LocalIp, German, "LokaleIP"), // [F]
    (L::LocalIp, French, "IP locale"), // [F] unverified
    (L::RemoteIp, English, "RemoteIP"), // [R]; also a German fixture [F]
    (L::RemoteIp, German, "Remote-IP"), // [S]
    (L::RemoteIp, Russian, "Удаленный IP-адрес"), // [R]
    (L::RemoteIp, French, "IP distante"), // [F] unverified
    (L::Protocol, English, "Protocol"), // [R]
    (L::Protocol, German, "Protokoll"), // [S]
    (L::Protocol, Spanish, "Protocolo"), // [F]
    (L::Protocol, Russian, "Протокол"), // [R]
    (L::LocalPort, English, "LocalPort"), // [R]; kept by Spanish [F] and French [F]
    (L::LocalPort, German, "Lokaler Port"), // [S]
    (L::LocalPort, Russian, "Локальный порт"), // [R]
    (L::RemotePort, English, "RemotePort"), // [R]
    (L::RemotePort, German, "Remoteport"), // [S]
    (L::RemotePort, Russian, "Удаленный порт"), // [R]
    (L::Edge, English, "Edge traversal"), // [R]
    (L::Edge, German, "Edgeausnahme"), // [S]
    (L::Edge, Spanish, "Cruce seguro del perímetro"), // [F]
    (L::Edge, Russian, "Обход узлов"), // [R]
    (L::Program, English, "Program"), // [R]
    (L::Program, German, "Programm"), // [S]
    (L::Service, English, "Service"), // [R]
    (L::Service, German, "Dienst"),   // [S]
    (L::InterfaceTypes, English, "InterfaceTypes"), // [R]
    (L::InterfaceTypes, German, "Schnittstellentypen"), // [S]
    (L::Security, English, "Security"), // [R]
    (L::Security, German, "Sicherheit"), // [S]
    (L::RuleSource, English, "Rule source"), // [R]
    (L::RuleSource, German, "Regelquelle"), // [S]
    (L::Action, English, "Action"),   // [R]; also the French fixture [F]
    (L::Action, German, "Aktion"),    // [S]
    (L::Action, Spanish, "Acción"),   // [F]
    (L::Action, Russian, "Действие"), // [R]
];

/// `Yes` (true) and `No` (false).
pub const YES_NO: &[(&str, bool, Language)] = &[
    ("Yes", true, English),  // [R]
    ("No", false, English),  // [R]
    ("Ja", true, German),    // [S]
    ("Nein", false, German), // [F]
    ("Sí", true, Spanish),   // [F]
    ("Да", true, Russian),   // [R]
    ("Нет", false, Russian), // [R]
    ("Oui", true, French),   // [F] unverified
];

/// Directions. German `Aus` (Out) is semi-real; `Eingehend` is a fixture only.
pub const DIRECTIONS: &[(&str, guestwall_firewall::Direction, Language)] = &[
    ("In", guestwall_firewall::Direction::In, English), // [R]
    ("Out", guestwall_firewall::Direction::Out, English), // [R]
    ("Eingehend", guestwall_firewall::Direction::In, German), // [F]
    ("Aus", guestwall_firewall::Direction::Out, German), // [S]
    ("Dentro", guestwall_firewall::Direction::In, Spanish), // [F]
    ("Fuera", guestwall_firewall::Direction::Out, Spanish), // [F]
    ("Вход", guestwall_firewall::Direction::In, Russian), // [R]
    ("Входящие", guestwall_firewall::Direction::In, Russian), // [F]
];

/// Actions.
pub const ACTIONS: &[(&str, guestwall_firewall::Action, Language)] = &[
    ("Allow", guestwall_firewall::Action::Allow, English), // [R]
    ("Block", guestwall_firewall::Action::Block, English), // [K] netsh help
    ("Bypass", guestwall_firewall::Action::Bypass, English), // [K] netsh help
    ("Zulassen", guestwall_firewall::Action::Allow, German), // [S]
    ("Blockieren", guestwall_firewall::Action::Block, German), // [F]
    ("Bloquear", guestwall_firewall::Action::Block, Spanish), // [F]
    ("Разрешить", guestwall_firewall::Action::Allow, Russian), // [R]
    ("Блокировать", guestwall_firewall::Action::Block, Russian), // [F]
    ("Autoriser", guestwall_firewall::Action::Allow, French), // [F] unverified
];

/// Profile names in a `Profiles:` list.
pub const PROFILES: &[(&str, guestwall_firewall::Profile, Language)] = &[
    ("Domain", guestwall_firewall::Profile::Domain, English), // [R]
    ("Private", guestwall_firewall::Profile::Private, English), // [R]
    ("Public", guestwall_firewall::Profile::Public, English), // [R]; French too [F]
    ("Domäne", guestwall_firewall::Profile::Domain, German),  // [S]
    ("Privat", guestwall_firewall::Profile::Private, German), // [S]
    ("Öffentlich", guestwall_firewall::Profile::Public, German), // [S]
    ("Dominio", guestwall_firewall::Profile::Domain, Spanish), // [F]
    ("Privada", guestwall_firewall::Profile::Private, Spanish), // [F]
    ("Pública", guestwall_firewall::Profile::Public, Spanish), // [F]
    ("Домен", guestwall_firewall::Profile::Domain, Russian),  // [R]
    ("Частный", guestwall_firewall::Profile::Private, Russian), // [R]
    ("Публичный", guestwall_firewall::Profile::Public, Russian), // [R]
    ("Domaine", guestwall_firewall::Profile::Domain, French), // [F] unverified
    ("Privé", guestwall_firewall::Profile::Private, French),  // [F] unverified
];

/// The word for "any" (addresses, ports, protocol).
pub const ANY: &[(&str, Language)] = &[
    ("Any", English),        // [R]
    ("Beliebig", German),    // [S]
    ("Cualquiera", Spanish), // [F]
    ("Любой", Russian),      // [R]
    ("Tout", French),        // [F] unverified
];

/// `Edge traversal` values besides yes/no.
pub const EDGE: &[(&str, crate::netsh::Edge, Language)] = &[
    (
        "Defer to application",
        crate::netsh::Edge::DeferToApp,
        English,
    ), // [F]
    ("Defer to user", crate::netsh::Edge::DeferToUser, English), // [F]
    (
        "Benutzer zurückstellen",
        crate::netsh::Edge::DeferToUser,
        German,
    ), // [F]
];

/// The line that ends a successful listing.
pub const OK_LINES: &[(&str, Language)] = &[
    ("Ok.", English),     // [R]
    ("OK.", German),      // [F]
    ("ОК.", Russian),     // [R] Cyrillic О and К
    ("Aceptar", Spanish), // [F]
];

/// What netsh prints when no rule matches.
pub const NO_RULES: &[(&str, Language)] = &[
    ("No rules match the specified criteria.", English), // [F] + netbird issue 1249
    (
        "Keine Regeln stimmen mit den angegebenen Kriterien überein.",
        German,
    ), // [F]
];

/// `show allprofiles` keys. Only `State` and `Firewall Policy` are known translated
/// (German [F]); the others stayed English on a real Russian machine [R].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKey {
    /// `State`
    State,
    /// `Firewall Policy`
    FirewallPolicy,
    /// `LocalFirewallRules`
    LocalFirewallRules,
    /// `LocalConSecRules`
    LocalConSecRules,
    /// `InboundUserNotification`
    InboundUserNotification,
    /// `RemoteManagement`
    RemoteManagement,
    /// `UnicastResponseToMulticast`
    UnicastResponseToMulticast,
    /// `LogAllowedConnections`
    LogAllowed,
    /// `LogDroppedConnections`
    LogDropped,
    /// `FileName`
    FileName,
    /// `MaxFileSize`
    MaxFileSize,
}

/// Profile keys by language.
pub const PROFILE_KEYS: &[(ProfileKey, Language, &str)] = &[
    (ProfileKey::State, English, "State"),                    // [R]
    (ProfileKey::State, German, "Status"),                    // [F]
    (ProfileKey::FirewallPolicy, English, "Firewall Policy"), // [R]
    (ProfileKey::FirewallPolicy, German, "Firewallrichtlinie"), // [F]
    (
        ProfileKey::LocalFirewallRules,
        English,
        "LocalFirewallRules",
    ), // [R]
    (ProfileKey::LocalConSecRules, English, "LocalConSecRules"), // [R]
    (
        ProfileKey::InboundUserNotification,
        English,
        "InboundUserNotification",
    ), // [R]
    (ProfileKey::RemoteManagement, English, "RemoteManagement"), // [R]
    (
        ProfileKey::UnicastResponseToMulticast,
        English,
        "UnicastResponseToMulticast",
    ), // [R]
    (ProfileKey::LogAllowed, English, "LogAllowedConnections"), // [R]
    (ProfileKey::LogDropped, English, "LogDroppedConnections"), // [R]
    (ProfileKey::FileName, English, "FileName"),              // [R]
    (ProfileKey::MaxFileSize, English, "MaxFileSize"),        // [R]
];

/// `State` values.
pub const ON_OFF: &[(&str, bool, Language)] = &[
    ("ON", true, English),   // [R]
    ("OFF", false, English), // [R]
    ("EIN", true, German),   // [F]
    ("AUS", false, German),  // [F]
];

/// Profile headers: English `<Name> Profile Settings:` [R]; German in two spellings [F]
/// (`Domänenprofil-Einstellungen:`, `Einstellungen für Privates Profil:`): recognised by the
/// word `Einstellungen` and a profile word.
pub const PROFILE_HEADER_WORDS_DE: &[(&str, guestwall_firewall::Profile)] = &[
    ("Domäne", guestwall_firewall::Profile::Domain),
    ("Privat", guestwall_firewall::Profile::Private),
    ("Öffentlich", guestwall_firewall::Profile::Public),
];

/// `sc` labels of the service-name line and the display-name line.
pub const SC_NAME_LABELS: &[(&str, Language)] = &[
    ("SERVICE_NAME", English), // [R]
    ("DIENSTNAME", German),    // [T] localization.md §3
    ("Имя_службы", Russian),   // [T]
];

/// `sc` display-name labels.
pub const SC_DISPLAY_LABELS: &[(&str, Language)] = &[
    ("DISPLAY_NAME", English),  // [R]
    ("ANZEIGENAME", German),    // [T]
    ("Выводимое_имя", Russian), // [T]
];

/// `reg` error prefixes (the message after them is localized too).
pub const REG_ERRORS: &[(&str, Language)] = &[
    ("ERROR:", English), // [R]
    ("FEHLER:", German), // [T] localization.md §3
];

/// Compares captured text with a table entry: case-insensitive, and a U+FFFD in the capture
/// (a byte of an OEM code page read as UTF-8) stands for any one non-ASCII character.
pub fn same(captured: &str, table: &str) -> bool {
    let mut a = captured.chars();
    let mut b = table.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x == '\u{FFFD}' && !y.is_ascii() {
                    continue;
                }
                if x == y {
                    continue;
                }
                let mut xl = x.to_lowercase();
                let mut yl = y.to_lowercase();
                if !(xl.next() == yl.next() && xl.next() == yl.next()) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// True when `hay` contains `needle` in the sense of [`same`].
pub fn contains(hay: &str, needle: &str) -> bool {
    let h: Vec<char> = hay.chars().collect();
    let n = needle.chars().count();
    if n == 0 {
        return true;
    }
    h.windows(n)
        .any(|w| same(&w.iter().collect::<String>(), needle))
}

/// Looks `text` up in a `(word, value, language)` table.
pub fn lookup<T: Copy>(table: &[(&str, T, Language)], text: &str) -> Option<(T, Language)> {
    let t = text.trim();
    table
        .iter()
        .find(|(w, _, _)| same(t, w))
        .map(|(_, v, l)| (*v, *l))
}

/// True when `text` is the word for "any" in a known language.
pub fn is_any(text: &str) -> Option<Language> {
    let t = text.trim();
    ANY.iter().find(|(w, _)| same(t, w)).map(|(_, l)| *l)
}

/// The rule labels `label` can be, in field order.
pub fn rule_labels(label: &str) -> Vec<(RuleLabel, Language)> {
    let t = label.trim();
    let mut v: Vec<(RuleLabel, Language)> = RULE_LABELS
        .iter()
        .filter(|(_, _, w)| same(t, w))
        .map(|(k, l, _)| (*k, *l))
        .collect();
    v.sort();
    v.dedup_by_key(|(k, _)| *k);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_characters_match_non_ascii_only() {
        assert!(same("Dom\u{FFFD}ne", "Domäne"));
        assert!(same("DOMÄNE", "domäne"));
        assert!(!same("Dom\u{FFFD}ne", "Domane"));
        assert!(!same("Dom", "Domäne"));
        // A Russian label read through CP866 as UTF-8 is all U+FFFD: ambiguous, both match.
        assert_eq!(
            rule_labels("\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}")
                .len(),
            2
        );
    }
}
