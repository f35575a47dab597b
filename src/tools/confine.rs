//! Path confinement, used by every file tool: a tool path (relative to the working dir, or
//! absolute) must resolve, symlinks included, inside the working dir.
//!
//! The existing part of a path is resolved by the OS (`canonicalize`); the part that does
//! not exist yet cannot contain symlinks, so it is appended lexically. Nothing is created
//! before the deepest existing ancestor has been checked. What remains is the usual
//! check-then-use race against someone swapping in a symlink between the check and the
//! use; writers open the final component with `O_NOFOLLOW` to narrow it.

use std::{
    ffi::OsString,
    io,
    path::{Component, Path, PathBuf},
};

/// A tool path resolved inside the working dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Absolute: the canonical existing part, then the not-yet-existing rest.
    pub path: PathBuf,
    /// Whether the whole path exists (it is then fully canonical).
    pub exists: bool,
}

/// The canonical working dir, or an error saying why it is unusable.
pub(crate) fn root(working_dir: &Path) -> Result<PathBuf, String> {
    working_dir.canonicalize().map_err(|err| {
        format!(
            "the working directory `{}` cannot be resolved: {err}",
            working_dir.display()
        )
    })
}

/// Resolves `raw` inside `root` (canonical) without touching the file system beyond
/// reading it. Errors say why the path is refused.
pub(crate) fn resolve(root: &Path, raw: &str) -> Result<Resolved, String> {
    if raw.is_empty() {
        return Err("the path is empty".into());
    }
    if raw.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    let requested = Path::new(raw);
    let joined = if requested.is_absolute() {
        requested.to_path_buf()
    } else {
        root.join(requested)
    };

    // The longest prefix that exists (as an entry: a dangling symlink counts).
    let components: Vec<Component> = joined.components().collect();
    let mut split = components.len();
    while split > 0 {
        let prefix: PathBuf = components[..split].iter().collect();
        if std::fs::symlink_metadata(&prefix).is_ok() {
            break;
        }
        split -= 1;
    }
    let existing: PathBuf = components[..split].iter().collect();
    let existing_real = match existing.canonicalize() {
        Ok(real) => real,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "`{raw}` cannot be resolved: a symlink in it points to something that does \
                 not exist"
            ));
        }
        Err(err) => return Err(format!("`{raw}` cannot be resolved: {err}")),
    };

    let mut path = existing_real;
    let rest = &components[split..];
    for component in rest {
        match component {
            Component::Normal(name) => path.push(name),
            Component::ParentDir => {
                path.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if !path.starts_with(root) {
        let how = if normalize(&joined).starts_with(root) {
            "a symlink in it points outside"
        } else if requested.is_absolute() {
            "it is an absolute path outside"
        } else {
            "`..` leads out of it"
        };
        return Err(format!(
            "`{raw}` is outside the working directory `{}` ({how}; it resolves to `{}`); \
             only paths inside the working directory can be used",
            root.display(),
            path.display()
        ));
    }
    Ok(Resolved {
        path,
        exists: rest.is_empty(),
    })
}

/// Resolves a path that must exist.
pub(crate) fn existing(root: &Path, raw: &str) -> Result<PathBuf, String> {
    let resolved = resolve(root, raw)?;
    if resolved.exists {
        Ok(resolved.path)
    } else {
        Err(format!("`{raw}` does not exist"))
    }
}

/// Resolves a path to write to: checks the deepest existing ancestor, then creates the
/// missing parent directories (inside the working dir) and checks again.
pub(crate) fn for_write(root: &Path, raw: &str) -> Result<PathBuf, String> {
    let resolved = resolve(root, raw)?;
    if resolved.path == root || resolved.path.is_dir() {
        return Err(format!("`{raw}` is a directory"));
    }
    let Some(parent) = resolved.path.parent() else {
        return Err(format!("`{raw}` has no parent directory"));
    };
    std::fs::create_dir_all(parent)
        .map_err(|err| format!("cannot create the parent directories of `{raw}`: {err}"))?;
    let parent_real = parent
        .canonicalize()
        .map_err(|err| format!("cannot resolve the parent directory of `{raw}`: {err}"))?;
    if !parent_real.starts_with(root) {
        return Err(format!(
            "`{raw}` is outside the working directory `{}` (its directory resolves to `{}`)",
            root.display(),
            parent_real.display()
        ));
    }
    let Some(name) = resolved.path.file_name() else {
        return Err(format!("`{raw}` does not name a file"));
    };
    Ok(parent_real.join(name))
}

/// `path` relative to `root` for messages and results (`.` for the root itself).
pub(crate) fn display(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(relative) if relative.as_os_str().is_empty() => ".".into(),
        Ok(relative) => relative.to_string_lossy().into_owned(),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

/// Lexical `..` removal (no symlinks followed), used only to explain a refusal.
fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<OsString> = Vec::new();
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => out.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(name) => parts.push(name.to_os_string()),
        }
    }
    out.extend(parts);
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical");
        let root = base.join("work");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(root.join("sub/a.txt"), "a").expect("write");
        std::fs::write(outside.join("secret"), "s").expect("write");
        symlink(&outside, root.join("out_link")).expect("symlink");
        symlink(root.join("sub"), root.join("in_link")).expect("symlink");
        symlink(outside.join("missing"), root.join("dangling")).expect("symlink");
        Fixture {
            _dir: dir,
            root,
            outside,
        }
    }

    #[test]
    fn resolves_inside() {
        let f = fixture();
        let root = &f.root;
        assert_eq!(existing(root, "sub/a.txt"), Ok(root.join("sub/a.txt")));
        assert_eq!(
            existing(root, "./sub/../sub/a.txt"),
            Ok(root.join("sub/a.txt"))
        );
        assert_eq!(existing(root, "in_link/a.txt"), Ok(root.join("sub/a.txt")));
        let absolute = root.join("sub/a.txt");
        assert_eq!(
            existing(root, &absolute.to_string_lossy()),
            Ok(absolute.clone())
        );
        assert_eq!(existing(root, "."), Ok(root.clone()));
        assert_eq!(
            resolve(root, "new/dir/../f.txt"),
            Ok(Resolved {
                path: root.join("new/f.txt"),
                exists: false
            })
        );
        assert_eq!(
            existing(root, "nope.txt"),
            Err("`nope.txt` does not exist".into())
        );
    }

    #[test]
    fn refuses_escapes() {
        let f = fixture();
        let root = &f.root;
        let cases = [
            ("../outside/secret", "`..` leads out of it"),
            ("../not-there", "`..` leads out of it"),
            ("sub/../../outside", "`..` leads out of it"),
            ("new/../../x", "`..` leads out of it"),
            ("out_link/secret", "a symlink in it points outside"),
            ("out_link", "a symlink in it points outside"),
            ("out_link/new/file", "a symlink in it points outside"),
        ];
        for (raw, why) in cases {
            let err = resolve(root, raw).expect_err(raw);
            assert!(
                err.contains("is outside the working directory"),
                "{raw}: {err}"
            );
            assert!(err.contains(why), "{raw}: {err}");
        }
        let absolute = f.outside.join("secret");
        let err = resolve(root, &absolute.to_string_lossy()).expect_err("absolute");
        assert!(err.contains("it is an absolute path outside"), "{err}");
        let err = resolve(root, "dangling").expect_err("dangling");
        assert!(
            err.contains("points to something that does not exist"),
            "{err}"
        );
        assert_eq!(resolve(root, ""), Err("the path is empty".into()));
    }

    #[test]
    fn for_write_creates_parents_only_inside() {
        let f = fixture();
        let root = &f.root;
        assert_eq!(for_write(root, "x/y/z.txt"), Ok(root.join("x/y/z.txt")));
        assert!(root.join("x/y").is_dir());
        let err = for_write(root, "out_link/made/z.txt").expect_err("escape");
        assert!(err.contains("outside"), "{err}");
        assert!(!f.outside.join("made").exists());
        let err = for_write(root, "sub").expect_err("dir");
        assert_eq!(err, "`sub` is a directory");
    }

    #[test]
    fn display_is_relative() {
        let root = Path::new("/w");
        assert_eq!(display(root, Path::new("/w")), ".");
        assert_eq!(display(root, Path::new("/w/a/b")), "a/b");
        assert_eq!(display(root, Path::new("/x")), "/x");
    }
}
