//! The one text rendering of a [`SaveReport`], used by every command that saves a hive
//! (`fix`, `netsh`, `reg`).

use std::io::{self, Write};
use std::path::Path;

use super::SaveReport;

impl SaveReport {
    /// Describes the save of `path` for people: what was written and verified, the backup,
    /// the log replay and the logs moved aside; or that nothing was written. `what` names the
    /// hive (`SYSTEM`), or is empty; `changes` is the number of edits; `dry_run`: the result
    /// was only built and verified in memory.
    pub fn write_text(
        &self,
        what: &str,
        path: &Path,
        changes: usize,
        dry_run: bool,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let shown = match &self.real_path {
            Some(real) => format!("{} -> {}", path.display(), real.display()),
            None => path.display().to_string(),
        };
        let name = if what.is_empty() {
            shown
        } else {
            format!("{what} ({shown})")
        };
        if self.unchanged {
            return writeln!(out, "{name} already holds these values; not written");
        }
        if dry_run {
            return writeln!(
                out,
                "{name}: dry run; {changes} changes built and verified in memory ({} keys, {} values), nothing written",
                self.verified_keys, self.verified_values
            );
        }
        writeln!(
            out,
            "Wrote {name}: {changes} changes, re-read and verified ({} keys, {} values)",
            self.verified_keys, self.verified_values
        )?;
        if let Some(b) = &self.backup {
            writeln!(out, "  backup: {}", b.display())?;
        }
        if self.recovered_from_logs {
            writeln!(out, "  the hive was dirty: its logs were replayed first")?;
        }
        for (from, to) in &self.logs_moved {
            writeln!(
                out,
                "  log moved aside: {} -> {}",
                from.display(),
                to.display()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn text(r: &SaveReport, what: &str, dry: bool) -> String {
        let mut v = Vec::new();
        r.write_text(what, Path::new("/h/SYSTEM"), 2, dry, &mut v)
            .unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn every_case_says_what_happened() {
        let mut r = SaveReport {
            unchanged: false,
            real_path: Some(PathBuf::from("/real/SYSTEM")),
            backup: Some(PathBuf::from("/real/SYSTEM.guestwall-backup-1")),
            logs_moved: vec![(PathBuf::from("/real/SYSTEM.LOG1"), PathBuf::from("/real/x"))],
            sequence: 9,
            bytes: 8192,
            verified_keys: 5,
            verified_values: 7,
            recovered_from_logs: true,
            warnings: Vec::new(),
        };
        assert_eq!(
            text(&r, "SYSTEM", false),
            "Wrote SYSTEM (/h/SYSTEM -> /real/SYSTEM): 2 changes, re-read and verified (5 keys, 7 values)\n  backup: /real/SYSTEM.guestwall-backup-1\n  the hive was dirty: its logs were replayed first\n  log moved aside: /real/SYSTEM.LOG1 -> /real/x\n"
        );
        assert!(text(&r, "", true).starts_with("/h/SYSTEM -> /real/SYSTEM: dry run; 2 changes"));
        r.unchanged = true;
        r.real_path = None;
        assert_eq!(
            text(&r, "", false),
            "/h/SYSTEM already holds these values; not written\n"
        );
    }
}
