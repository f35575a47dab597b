//! What a file tool changed, as a `file_changed` event tells it: the path, whether the
//! file was created or modified, its size, and a unified diff (by `similar`) for UTF-8
//! text, bounded so one big rewrite cannot flood every subscriber.
//!
//! The writer reads the old content ([`Before::read`]) before writing; the diff is then
//! computed from the bytes it had in hand, never by reading the file again (which a
//! concurrent writer could have changed). Files over [`MAX_DIFFED_BYTES`] on either side
//! are not diffed (`diff_truncated` says so); the diff itself stops at a line boundary
//! within [`MAX_DIFF_BYTES`]; the diff algorithm gets [`DIFF_TIMEOUT`] at most (past it
//! `similar` gives a coarser but still correct diff).

use std::{io::Read, path::Path, time::Duration};

use similar::TextDiff;

use crate::domain::file::{FileChange, FileChangeKind};

/// The largest diff an event carries.
pub(crate) const MAX_DIFF_BYTES: usize = 16 * 1024;
/// Larger contents are not diffed.
pub(crate) const MAX_DIFFED_BYTES: u64 = 1024 * 1024;
/// Bound on the diff algorithm's time.
const DIFF_TIMEOUT: Duration = Duration::from_millis(200);

/// A file's content before a tool writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Before {
    /// The file did not exist.
    Missing,
    Content(Vec<u8>),
    /// It existed but is too large to diff (or could not be read).
    Undiffable,
}

impl Before {
    /// The content of `path` (resolved, inside the working dir) before a write.
    pub(crate) fn read(path: &Path) -> Before {
        match std::fs::symlink_metadata(path) {
            Err(_) => Before::Missing,
            Ok(metadata) if !metadata.is_file() || metadata.len() > MAX_DIFFED_BYTES => {
                Before::Undiffable
            }
            Ok(_) => {
                let mut bytes = Vec::new();
                match std::fs::File::open(path)
                    .and_then(|file| file.take(MAX_DIFFED_BYTES + 1).read_to_end(&mut bytes))
                {
                    Ok(_) => Before::Content(bytes),
                    Err(_) => Before::Undiffable,
                }
            }
        }
    }
}

/// The change from `before` to `after` of the file `shown` (relative to the working dir).
pub(crate) fn describe(shown: &str, before: &Before, after: &[u8]) -> FileChange {
    let kind = match before {
        Before::Missing => FileChangeKind::Created,
        Before::Content(_) | Before::Undiffable => FileChangeKind::Modified,
    };
    let old: Option<&[u8]> = match before {
        Before::Missing => Some(&[]),
        Before::Content(bytes) => Some(bytes),
        Before::Undiffable => None,
    };
    let too_large = after.len() as u64 > MAX_DIFFED_BYTES;
    let (diff, diff_truncated) = match old {
        _ if too_large => (String::new(), true),
        None => (String::new(), true),
        Some(old) => match (std::str::from_utf8(old), std::str::from_utf8(after)) {
            (Ok(old), Ok(new)) => unified(shown, kind, old, new),
            // Binary content: no diff, nothing cut.
            _ => (String::new(), false),
        },
    };
    FileChange {
        path: shown.to_owned(),
        kind,
        size: after.len() as u64,
        diff,
        diff_truncated,
    }
}

/// The unified diff, cut at a line boundary within [`MAX_DIFF_BYTES`].
fn unified(shown: &str, kind: FileChangeKind, old: &str, new: &str) -> (String, bool) {
    let diff = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(old, new);
    let from = match kind {
        FileChangeKind::Created => "/dev/null".to_owned(),
        _ => format!("a/{shown}"),
    };
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&from, &format!("b/{shown}"))
        .to_string();
    if text.len() <= MAX_DIFF_BYTES {
        return (text, false);
    }
    let cut = text[..MAX_DIFF_BYTES].rfind('\n').map_or(0, |at| at + 1);
    (text[..cut].to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_files_diff_from_dev_null() {
        let change = describe("a/b.txt", &Before::Missing, b"one\ntwo\n");
        assert_eq!(change.kind, FileChangeKind::Created);
        assert_eq!(change.size, 8);
        assert_eq!(
            change.diff,
            "--- /dev/null\n+++ b/a/b.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n"
        );
        assert!(!change.diff_truncated);
    }

    #[test]
    fn edits_have_context_and_binary_has_no_diff() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n";
        let change = describe("x.txt", &Before::Content(old.into()), new.as_bytes());
        assert_eq!(change.kind, FileChangeKind::Modified);
        assert_eq!(
            change.diff,
            "--- a/x.txt\n+++ b/x.txt\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
        let change = describe("x.bin", &Before::Content(vec![0xff, 0, 1]), b"text\n");
        assert_eq!((change.diff.as_str(), change.diff_truncated), ("", false));
    }

    #[test]
    fn big_diffs_are_cut_at_a_line_and_huge_files_not_diffed() {
        let new: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        let change = describe("big.txt", &Before::Missing, new.as_bytes());
        assert!(change.diff_truncated);
        assert!(change.diff.len() <= MAX_DIFF_BYTES);
        assert!(change.diff.ends_with('\n'));
        assert!(new.len() > MAX_DIFF_BYTES);

        let change = describe("big.txt", &Before::Undiffable, b"x");
        assert_eq!((change.diff.as_str(), change.diff_truncated), ("", true));
        assert_eq!(change.kind, FileChangeKind::Modified);
    }

    #[test]
    fn before_reads_what_is_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        assert_eq!(Before::read(&path), Before::Missing);
        std::fs::write(&path, "hi").expect("write");
        assert_eq!(Before::read(&path), Before::Content(b"hi".to_vec()));
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        assert_eq!(Before::read(&dir.path().join("d")), Before::Undiffable);
    }
}
