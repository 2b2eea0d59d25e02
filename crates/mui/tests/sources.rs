//! The built-in names against the project's sourced facts (`shared/docs/localization.md`):
//! each one appears there verbatim, in the row of its language, and with the mark (✔ or ~)
//! that its `Sourcing` says; nothing from a ✗ cell or from the inferred pt-BR rule name.

mod common;

use common::{in_ci, notice};
use guestwall_mui::{builtin_names, Sourcing};
use std::path::PathBuf;

fn localization_md() -> Option<String> {
    let path = std::env::var_os("GUESTWALL_SHARED_DOCS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/docs"))
        .join("localization.md");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            assert!(
                !in_ci(),
                "CI=true but {} is unreadable: {e}",
                path.display()
            );
            notice(&format!(
                "{} not found ({e}); skipping this test",
                path.display()
            ));
            None
        }
    }
}

/// localization.md's row label for a UI language.
fn row_label(tag: &str) -> &str {
    match tag {
        "pt-BR" | "zh-CN" => tag,
        "ko-KR" => "ko (bonus)",
        _ => tag.split('-').next().unwrap_or(tag),
    }
}

/// The cells of a row of the §1 table: [group, user mode TCP / UDP, shadow, Windows 7].
fn row<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
    let label = row_label(tag);
    let line = doc
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row for {label}"));
    line.split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .skip(1)
        .collect()
}

#[test]
fn every_builtin_name_is_in_its_row_with_its_mark() {
    let Some(doc) = localization_md() else { return };
    for b in builtin_names() {
        let cells = row(&doc, b.lang);
        let col = match b.id {
            28752 => 0,
            28775 | 28776 => 1,
            28778 => 2,
            28753 => 3,
            other => panic!("unexpected id {other}"),
        };
        let cell = cells[col];
        let mark = match b.sourcing {
            Sourcing::Corroborated => '✔',
            Sourcing::SingleSource => '~',
        };
        assert!(!cell.contains('✗'), "{b:?} from a ✗ cell: {cell}");
        assert!(
            !cell.contains("probably") && !cell.contains("inferred"),
            "{b:?}: {cell}"
        );
        assert!(
            cell.trim_end().ends_with(mark) || cell.contains(&format!("{mark},")),
            "{b:?}: mark {mark} not in {cell}"
        );
        if b.id == 28776 {
            // Written as `<TCP name>` / `(UDP …)`: the UDP name is the TCP one with the
            // protocol's parenthesis replaced.
            let tcp = builtin_names()
                .iter()
                .find(|t| t.lang == b.lang && t.id == 28775)
                .expect("TCP twin");
            let udp_tail = &b.text[b.text.rfind('(').unwrap()..];
            assert!(
                cell.contains(&format!("`{}` / `{udp_tail}`", tcp.text)),
                "{b:?}: {cell}"
            );
        } else {
            assert!(
                cell.contains(&format!("`{}`", b.text)),
                "{b:?} not verbatim in: {cell}"
            );
        }
    }
}

#[test]
fn every_sourced_cell_is_in_the_table() {
    let Some(doc) = localization_md() else { return };
    let mut expected = 0;
    for tag in [
        "nl-NL", "de-DE", "fr-FR", "es-ES", "it-IT", "pt-BR", "ru-RU", "ja-JP", "zh-CN", "ko-KR",
        "pl-PL", "sv-SE", "tr-TR",
    ] {
        for (col, cell) in row(&doc, tag).iter().enumerate() {
            if cell.contains('✗') || cell.contains("probably") {
                continue;
            }
            let ids: &[u16] = match col {
                0 => &[28752],
                1 if cell.contains(" / ") => &[28775, 28776],
                1 => &[28775],
                2 => &[28778],
                _ => &[28753],
            };
            for id in ids {
                expected += 1;
                assert!(
                    builtin_names().iter().any(|b| b.lang == tag && b.id == *id),
                    "{tag} {id} is sourced ({cell}) but not built in"
                );
            }
        }
    }
    assert_eq!(expected, builtin_names().len());
}
