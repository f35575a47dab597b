//! Where sessions may work: a working dir must resolve, symlinks included, inside the
//! workspace root, unless the server allows any directory.

use std::path::{Component, Path, PathBuf};

use crate::domain::{Error, Result};

#[derive(Clone, Debug)]
pub struct Workspace {
    /// Canonical (symlink-free) root.
    root: PathBuf,
    allow_any: bool,
}

impl Workspace {
    /// Creates the root if missing and remembers its canonical form.
    pub fn new(root: &Path, allow_any: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.canonicalize()?,
            allow_any,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a client's working dir: empty means the root; relative paths are taken
    /// from the root. The directory is created if missing. Errors name `field`.
    pub fn resolve(&self, requested: &str, field: &str) -> Result<PathBuf> {
        let invalid = |why: String| Error::invalid(field, why);
        if requested.is_empty() {
            return Ok(self.root.clone());
        }
        let requested_path = Path::new(requested);
        if requested_path
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(invalid("must not contain '..' components".into()));
        }
        let joined = if requested_path.is_absolute() {
            requested_path.to_path_buf()
        } else {
            self.root.join(requested_path)
        };

        // Check the deepest existing ancestor *before* creating anything, so a symlink
        // pointing outside the root cannot make us create directories out there.
        let mut existing = joined.as_path();
        while !existing.exists() {
            existing = existing
                .parent()
                .ok_or_else(|| invalid("has no existing ancestor".into()))?;
        }
        let existing_real = existing
            .canonicalize()
            .map_err(|err| invalid(format!("cannot be resolved: {err}")))?;
        self.check_inside(&existing_real, requested, field)?;

        std::fs::create_dir_all(&joined)
            .map_err(|err| invalid(format!("cannot be created: {err}")))?;
        let real = joined
            .canonicalize()
            .map_err(|err| invalid(format!("cannot be resolved: {err}")))?;
        if !real.is_dir() {
            return Err(invalid("is not a directory".into()));
        }
        self.check_inside(&real, requested, field)?;
        Ok(real)
    }

    fn check_inside(&self, real: &Path, requested: &str, field: &str) -> Result<()> {
        if self.allow_any || real.starts_with(&self.root) {
            Ok(())
        } else {
            Err(Error::invalid(
                field,
                format!(
                    "{requested:?} resolves to {} which is outside the workspace root {}",
                    real.display(),
                    self.root.display()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = Workspace::new(&dir.path().join("root"), false).expect("workspace");
        (dir, ws)
    }

    #[test]
    fn relative_dirs_are_created_inside_the_root() {
        let (_dir, ws) = workspace();
        let resolved = ws.resolve("proj/a", "working_dir").expect("resolves");
        assert_eq!(resolved, ws.root().join("proj/a"));
        assert!(resolved.is_dir());
        assert_eq!(ws.resolve("", "working_dir").expect("root"), ws.root());
    }

    #[test]
    fn dot_dot_and_outside_absolute_paths_are_rejected() {
        let (dir, ws) = workspace();
        for bad in ["../x", "a/../../x", "/etc"] {
            let err = ws.resolve(bad, "working_dir").expect_err(bad);
            assert!(
                matches!(&err, Error::InvalidArgument(v) if v[0].field == "working_dir"),
                "{err}"
            );
        }
        let outside = dir.path().join("outside");
        assert!(
            ws.resolve(outside.to_str().expect("utf8"), "working_dir")
                .is_err()
        );
        assert!(!outside.exists(), "nothing is created outside the root");
    }

    #[test]
    fn symlinks_out_of_the_root_are_rejected_before_creating_anything() {
        let (dir, ws) = workspace();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, ws.root().join("link")).expect("symlink");
        assert!(ws.resolve("link", "working_dir").is_err());
        assert!(ws.resolve("link/new", "working_dir").is_err());
        assert!(
            !outside.join("new").exists(),
            "no directory created through the link"
        );
    }

    #[test]
    fn allow_any_accepts_outside_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = Workspace::new(&dir.path().join("root"), true).expect("workspace");
        let outside = dir.path().join("elsewhere");
        let resolved = ws
            .resolve(outside.to_str().expect("utf8"), "working_dir")
            .expect("allowed");
        assert!(resolved.is_dir());
    }
}
