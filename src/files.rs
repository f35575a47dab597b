//! Files only this user may read: the data dir (0700) and the database files (0600),
//! which hold every conversation and any `api_key` stored in the database.
//!
//! New ones are created with these modes (not created and then narrowed, so there is no
//! moment another user could open them); existing ones that are looser, from an older
//! install or a hand-made directory, are narrowed with a warning saying what changed.
//! Only group and other bits are removed; the owner's bits are kept. On platforms
//! without Unix modes these are no-ops.

use std::{io, path::Path};

/// Group and other permission bits.
#[cfg(unix)]
const NOT_OWNER: u32 = 0o077;

/// Creates `dir` (and its missing parents) with mode 0700 for `dir` itself, or narrows
/// an existing `dir` to its owner.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => narrow(dir),
            Err(err) => Err(err),
        }
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates `file` empty with mode 0600 when it does not exist, or narrows it to its
/// owner when it does. `create: false` only narrows an existing file.
pub fn private_file(file: &Path, create: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        if create {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(file);
            match created {
                Ok(_) => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
        }
        match narrow(file) {
            Err(err) if !create && err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        if create {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(file)?;
        }
        Ok(())
    }
}

/// Removes group and other bits from `path`, logging when there were any.
#[cfg(unix)]
fn narrow(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if mode & NOT_OWNER == 0 {
        return Ok(());
    }
    let narrowed = mode & !NOT_OWNER;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(narrowed))?;
    tracing::warn!(
        path = %path.display(),
        was = format!("{mode:o}"),
        now = format!("{narrowed:o}"),
        "other users could read Octo's data (conversations, stored API keys): \
         removed their access"
    );
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn new_dirs_and_files_are_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b/octo");
        private_dir(&dir).expect("dir");
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("octo.db");
        private_file(&file, true).expect("file");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).expect("read").len(), 0);
        // Absent and not to be created: nothing happens.
        private_file(&dir.join("octo.db-wal"), false).expect("absent");
        assert!(!dir.join("octo.db-wal").exists());
    }

    #[test]
    fn loose_existing_ones_are_narrowed_keeping_content_and_owner_bits() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("octo");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let file = dir.join("octo.db");
        std::fs::write(&file, b"data").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        private_dir(&dir).expect("dir");
        private_file(&file, true).expect("file");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).expect("read"), b"data");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        private_file(&file, false).expect("file");
        assert_eq!(mode(&file), 0o400);
    }
}
