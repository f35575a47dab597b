//! The files of a session's working directory as the API shows them (entries listed,
//! stat'ed, uploaded) and the file changes tools report. Plain data: the file system work
//! is `tools::workdir` (confined like every tool) and `runtime::files` (sessions, limits).

use super::Timestamp;

/// What an entry of a working dir is. Symlinks are reported as such where a listing does
/// not follow them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    /// A socket, FIFO or device.
    Other,
}

/// One entry of a working dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the working dir, `/`-separated; `.` for the dir itself.
    pub path: String,
    pub kind: FileKind,
    /// Bytes for files, 0 otherwise.
    pub size: u64,
    pub modify_time: Option<Timestamp>,
    /// A guessed MIME type, where the answer gives one (stat, upload); else empty.
    pub content_type: String,
}

/// How a tool changed a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileChangeKind {
    Created,
    Modified,
    Deleted,
}

/// A file a tool created, changed or deleted, with a bounded unified diff for text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    /// Relative to the working dir.
    pub path: String,
    pub kind: FileChangeKind,
    /// Bytes after the change (0 when deleted).
    pub size: u64,
    /// A unified diff for UTF-8 text, empty for binary content.
    pub diff: String,
    /// `diff` is only the start of the diff (or none was computed: too large).
    pub diff_truncated: bool,
}
