//! A session's working dir seen from outside a turn (the Files API): list, stat, open
//! for reading, write a chunk. Every path goes through the same confinement as the
//! built-in tools (`confine`: symlinks resolved, nothing outside the working dir) and
//! recursive listings through the same walk and glob rules (`walk`, `glob::matcher`).
//!
//! Blocking file system work: callers run these on the blocking pool. Errors are domain
//! errors naming the request field at fault (`path`, `glob`, `offset`, `data`).
//!
//! Uploads write in place, one chunk per call, under an exclusive `flock` of the file:
//! the offset check and the write are atomic against other uploads of the same file
//! (also from another server on shared storage that honours flock), so two uploads racing
//! for one file cannot interleave chunks; the loser's next chunk is refused. Tools do not
//! take the lock: a tool writing the same file during an upload is not excluded.

use std::{
    fs::{File, Metadata},
    io::Read,
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use super::{confine, glob, text::looks_binary, walk};
use crate::domain::{
    Error, Result, Timestamp,
    file::{FileEntry, FileKind},
};

/// Bytes read to tell text from binary when the name says nothing.
const SNIFF_BYTES: usize = 8192;

/// The canonical working dir; FAILED_PRECONDITION when it is gone (or, in a cluster, not
/// on this server's storage).
pub fn root(working_dir: &Path) -> Result<PathBuf> {
    confine::root(working_dir).map_err(|why| Error::FailedPrecondition {
        reason: crate::domain::reason::WORKING_DIR_UNAVAILABLE,
        message: why,
    })
}

/// `raw` resolved inside `root`; it must exist.
fn existing(root: &Path, raw: &str) -> Result<PathBuf> {
    let resolved = confine::resolve(root, raw).map_err(|why| Error::invalid("path", why))?;
    if !resolved.exists {
        return Err(Error::not_found(crate::domain::Resource::File, raw));
    }
    Ok(resolved.path)
}

/// A page of a listing: the entries, and whether more follow the last one.
#[derive(Debug)]
pub struct Listing {
    pub entries: Vec<FileEntry>,
    pub more: bool,
}

/// The entries of the directory `dir` (or, with `pattern`, every entry under it whose
/// path relative to it matches), in path order (component by component, the order of a
/// sorted depth-first walk), starting after the path `after`, at most `limit`.
/// Symlinks are listed, not followed; names that are not UTF-8 are skipped.
pub fn list(
    root: &Path,
    dir: &str,
    pattern: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<Listing> {
    let matcher = pattern
        .map(|pattern| glob::matcher(pattern).map_err(|why| Error::invalid("glob", why)))
        .transpose()?;
    let base = existing(root, if dir.is_empty() { "." } else { dir })?;
    if !base.is_dir() {
        return Err(Error::invalid(
            "path",
            format!("`{}` is not a directory", confine::display(root, &base)),
        ));
    }
    let after = after.map(Path::new);
    let is_after = |relative: &str| after.is_none_or(|after| Path::new(relative) > after);
    let mut entries = Vec::new();
    let mut more = false;
    let mut take = |relative: String, metadata: &Metadata| -> bool {
        if entries.len() == limit {
            more = true;
            return false;
        }
        entries.push(entry(relative, metadata));
        true
    };
    match matcher {
        None => {
            let mut children = Vec::new();
            for child in std::fs::read_dir(&base).map_err(|err| io_error(err, dir))? {
                let Ok(child) = child else { continue };
                let path = child.path();
                let relative = confine::display(root, &path);
                if child.file_name().to_str().is_none() || !is_after(&relative) {
                    continue;
                }
                children.push((relative, path));
            }
            children.sort_by(|a, b| Path::new(&a.0).cmp(Path::new(&b.0)));
            for (relative, path) in children {
                let Ok(metadata) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if !take(relative, &metadata) {
                    break;
                }
            }
        }
        Some(matcher) => {
            // The walk's order (siblings sorted by name, depth first) is the path order.
            for found in walk::walk(&base) {
                let Ok(found) = found else { continue };
                if found.depth() == 0 || found.path().to_str().is_none() {
                    continue;
                }
                let Ok(below) = found.path().strip_prefix(&base) else {
                    continue;
                };
                if !matcher.is_match(below) {
                    continue;
                }
                let relative = confine::display(root, found.path());
                if !is_after(&relative) {
                    continue;
                }
                let Ok(metadata) = std::fs::symlink_metadata(found.path()) else {
                    continue;
                };
                if !take(relative, &metadata) {
                    break;
                }
            }
        }
    }
    Ok(Listing { entries, more })
}

/// One entry, symlinks inside the working dir followed, with a guessed content type.
pub fn stat(root: &Path, raw: &str) -> Result<FileEntry> {
    let path = existing(root, raw)?;
    let metadata = std::fs::metadata(&path).map_err(|err| io_error(err, raw))?;
    let mut found = entry(confine::display(root, &path), &metadata);
    if found.kind == FileKind::File {
        found.content_type = content_type(&path);
    }
    Ok(found)
}

/// Opens a regular file for a download of at most `max_bytes`; with its entry.
pub fn open(root: &Path, raw: &str, max_bytes: u64) -> Result<(File, FileEntry)> {
    let found = stat(root, raw)?;
    if found.kind != FileKind::File {
        return Err(Error::invalid(
            "path",
            format!("`{}` is not a regular file", found.path),
        ));
    }
    if found.size > max_bytes {
        return Err(too_large(&found.path, found.size, max_bytes, "download"));
    }
    let path = root.join(&found.path);
    // The path was resolved above; O_NOFOLLOW refuses a symlink swapped in since.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|err| io_error(err, raw))?;
    Ok((file, found))
}

/// The error of a file over a size limit.
pub fn too_large(shown: &str, size: u64, max_bytes: u64, what: &str) -> Error {
    Error::FailedPrecondition {
        reason: crate::domain::reason::FILE_TOO_LARGE,
        message: format!(
            "`{shown}` is {size} bytes, over this server's {what} limit of {max_bytes} bytes \
             (files.max_{what}_bytes)"
        ),
    }
}

/// Writes `data` at `offset` of the file `raw` (0: create or truncate it, creating its
/// missing parent dirs; else `offset` must be the file's size), keeping the whole file
/// within `max_bytes`. Returns the file's entry after the write.
pub fn write_chunk(
    root: &Path,
    raw: &str,
    offset: u64,
    data: &[u8],
    max_bytes: u64,
) -> Result<FileEntry> {
    let end = offset.saturating_add(data.len() as u64);
    if end > max_bytes {
        return Err(Error::invalid(
            "data",
            format!(
                "the file would be {end} bytes, over this server's upload limit of {max_bytes} \
                 bytes (files.max_upload_bytes)"
            ),
        ));
    }
    let path = if offset == 0 {
        confine::for_write(root, raw).map_err(|why| Error::invalid("path", why))?
    } else {
        let path = confine::resolve(root, raw).map_err(|why| Error::invalid("path", why))?;
        if !path.exists {
            return Err(Error::invalid(
                "offset",
                format!("`{raw}` does not exist yet: its first chunk has offset 0"),
            ));
        }
        path.path
    };
    let shown = confine::display(root, &path);
    if path.is_dir() {
        return Err(Error::invalid("path", format!("`{shown}` is a directory")));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(offset == 0)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|err| io_error(err, raw))?;
    lock(&file).map_err(|err| io_error(err, raw))?;
    let size = file.metadata().map_err(|err| io_error(err, raw))?.len();
    if offset == 0 {
        file.set_len(0).map_err(|err| io_error(err, raw))?;
    } else if offset != size {
        return Err(Error::invalid(
            "offset",
            format!(
                "is {offset} but `{shown}` is {size} bytes: a chunk continues the file at its \
                 current size (another upload may have changed it; GetFile tells the size)"
            ),
        ));
    }
    file.write_all_at(data, offset)
        .map_err(|err| io_error(err, raw))?;
    let metadata = file.metadata().map_err(|err| io_error(err, raw))?;
    let mut written = entry(shown, &metadata);
    written.content_type = content_type(&path);
    Ok(written)
    // Closing the file releases the lock.
}

/// An exclusive advisory lock on `file`, held until it is closed.
fn lock(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock on a file descriptor this function borrows, open for its duration.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn entry(path: String, metadata: &Metadata) -> FileEntry {
    let kind = metadata.file_type();
    let kind = if kind.is_symlink() {
        FileKind::Symlink
    } else if kind.is_dir() {
        FileKind::Directory
    } else if kind.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    };
    let modify_time = metadata.modified().ok().and_then(|time| {
        let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(Timestamp(crate::domain::time::micros(since)))
    });
    FileEntry {
        path,
        kind,
        size: if kind == FileKind::File {
            metadata.len()
        } else {
            0
        },
        modify_time,
        content_type: String::new(),
    }
}

/// A MIME type from the name, else from the first bytes: UTF-8 text or octet-stream.
fn content_type(path: &Path) -> String {
    if let Some(guess) = mime_guess::from_path(path).first() {
        return if guess.type_() == mime_guess::mime::TEXT {
            format!("{}; charset=utf-8", guess.essence_str())
        } else {
            guess.essence_str().to_owned()
        };
    }
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let read =
        File::open(path).and_then(|file| file.take(SNIFF_BYTES as u64).read_to_end(&mut head));
    let text = read.is_ok()
        && !looks_binary(&head)
        && match std::str::from_utf8(&head) {
            Ok(_) => true,
            // Cut inside a character at the end of the sniffed bytes: still text.
            Err(err) => err.error_len().is_none(),
        };
    if text {
        "text/plain; charset=utf-8".into()
    } else {
        "application/octet-stream".into()
    }
}

/// A file system error on `raw`: not found, permission denied, or internal (logged).
fn io_error(err: std::io::Error, raw: &str) -> Error {
    match err.kind() {
        std::io::ErrorKind::NotFound => Error::not_found(crate::domain::Resource::File, raw),
        std::io::ErrorKind::PermissionDenied => Error::PermissionDenied {
            reason: crate::domain::reason::FILE_NOT_ACCESSIBLE,
            message: format!("the server may not access `{raw}`: {err}"),
        },
        _ if err.raw_os_error() == Some(libc::ELOOP) => Error::invalid(
            "path",
            format!("`{raw}` became a symlink while it was opened; try again"),
        ),
        _ => Error::internal(format!("`{raw}`: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Sandbox;

    fn paths(listing: &Listing) -> Vec<&str> {
        listing.entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn field(err: &Error) -> &str {
        match err {
            Error::InvalidArgument(v) => &v[0].field,
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn lists_a_dir_or_a_glob_in_path_order_and_pages() {
        let sandbox = Sandbox::new();
        sandbox.write("a.txt", "a");
        sandbox.write("a/b.rs", "b");
        sandbox.write("a/c/d.rs", "d");
        sandbox.write(".gitignore", "ignored/\n");
        sandbox.write("ignored/x.rs", "x");
        let root = root(&sandbox.work).expect("root");
        let all = list(&root, "", None, None, 100).expect("list");
        assert_eq!(
            paths(&all),
            [".gitignore", "a", "a.txt", "file_link", "ignored", "link"]
        );
        let kinds: Vec<FileKind> = all.entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds[1], FileKind::Directory);
        assert_eq!(kinds[3], FileKind::Symlink);
        assert_eq!((all.entries[2].size, all.more), (1, false));

        let rust = list(&root, ".", Some("**/*.rs"), None, 100).expect("glob");
        assert_eq!(paths(&rust), ["a/b.rs", "a/c/d.rs"], "gitignored skipped");
        let under = list(&root, "a", Some("*.rs"), None, 100).expect("glob in a");
        assert_eq!(paths(&under), ["a/b.rs"]);

        let first = list(&root, "", Some("**"), None, 2).expect("page 1");
        assert_eq!((paths(&first), first.more), (vec![".gitignore", "a"], true));
        let second = list(&root, "", Some("**"), Some("a"), 2).expect("page 2");
        assert_eq!(paths(&second), ["a/b.rs", "a/c"]);
    }

    #[test]
    fn refuses_escapes_naming_the_field() {
        let sandbox = Sandbox::new();
        let root = root(&sandbox.work).expect("root");
        for raw in ["../outside", "/etc", "link", "link/secret.txt", "a\0b"] {
            let err = stat(&root, raw).expect_err(raw);
            assert_eq!(field(&err), "path", "{raw}: {err}");
            let err = write_chunk(&root, &format!("{raw}/new"), 0, b"x", 10).expect_err(raw);
            assert_eq!(field(&err), "path", "{raw}: {err}");
        }
        let err = list(&root, "", Some("../*"), None, 10).expect_err("glob");
        assert_eq!(field(&err), "glob");
        assert!(matches!(stat(&root, "nope"), Err(Error::NotFound { .. })));
        assert!(!sandbox.outside.join("new").exists());
    }

    #[test]
    fn chunks_append_at_the_size_within_the_limit() {
        let sandbox = Sandbox::new();
        let root = root(&sandbox.work).expect("root");
        let entry = write_chunk(&root, "d/e/f.txt", 0, b"hello ", 16).expect("first");
        assert_eq!((entry.path.as_str(), entry.size), ("d/e/f.txt", 6));
        assert_eq!(entry.content_type, "text/plain; charset=utf-8");
        let err = write_chunk(&root, "d/e/f.txt", 3, b"x", 16).expect_err("gap");
        assert_eq!(field(&err), "offset");
        write_chunk(&root, "d/e/f.txt", 6, b"world", 16).expect("second");
        let err = write_chunk(&root, "d/e/f.txt", 11, b"123456", 16).expect_err("limit");
        assert_eq!(field(&err), "data");
        let err = write_chunk(&root, "g.txt", 5, b"x", 16).expect_err("missing");
        assert_eq!(field(&err), "offset");
        assert!(!sandbox.work.join("g.txt").exists(), "nothing created");
        assert_eq!(
            std::fs::read(sandbox.work.join("d/e/f.txt")).expect("read"),
            b"hello world"
        );
        write_chunk(&root, "d/e/f.txt", 0, b"new", 16).expect("restart");
        assert_eq!(
            std::fs::read(sandbox.work.join("d/e/f.txt")).expect("read"),
            b"new"
        );
        let (_, found) = open(&root, "d/e/f.txt", 16).expect("open");
        assert_eq!(found.size, 3);
        assert!(matches!(
            open(&root, "d/e/f.txt", 2),
            Err(Error::FailedPrecondition {
                reason: crate::domain::reason::FILE_TOO_LARGE,
                ..
            })
        ));
        assert_eq!(field(&open(&root, "d", 16).expect_err("dir")), "path");
    }

    #[test]
    fn content_types_from_names_or_bytes() {
        let sandbox = Sandbox::new();
        sandbox.write("page.html", "<p>");
        sandbox.write("notes", "plain words");
        std::fs::write(sandbox.work.join("blob"), [0u8, 1, 2]).expect("write");
        let root = root(&sandbox.work).expect("root");
        let of = |raw: &str| stat(&root, raw).expect(raw).content_type;
        assert_eq!(of("page.html"), "text/html; charset=utf-8");
        assert_eq!(of("notes"), "text/plain; charset=utf-8");
        assert_eq!(of("blob"), "application/octet-stream");
        assert_eq!(of("."), "");
    }
}
