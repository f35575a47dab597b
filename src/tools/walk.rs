//! The directory walk shared by glob and grep: ripgrep's walker, honouring `.gitignore`
//! (also outside a git repository), `.ignore` and `.git/info/exclude`; hidden files are
//! included, `.git` itself is skipped, symlinks are not followed (so a walk never leaves
//! the working dir), and the order is sorted by name.

use std::path::Path;

use ignore::{Walk, WalkBuilder};

pub(crate) fn walk(base: &Path) -> Walk {
    WalkBuilder::new(base)
        .hidden(false)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(std::cmp::Ord::cmp)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build()
}
