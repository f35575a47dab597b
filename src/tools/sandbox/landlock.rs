//! Filesystem (and optionally network) confinement with Landlock: what a command may
//! read, write and connect to, enforced by the kernel on it and everything it starts.
//!
//! Landlock rules only grant, so "read everything but the data dir and the config" is
//! built as grants on every hierarchy beside the hidden paths: `/` less the first
//! component leading to a hidden path, recursively (see [`readable_roots`]), listed
//! anew for every command. An entry created beside a hidden path's ancestors while a
//! command runs is not readable by that command; that is the price of an allow-list.
//! Writes are granted beneath the working dir, the command's private
//! temp dir and the operator's extra paths, plus the few device files programs expect
//! to write (`/dev/null`, ...).
//!
//! The ruleset is built in the server (opening paths, allocating) and only enforced in
//! the child between fork and exec, where `restrict_self` makes two syscalls.

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr,
};

/// Device files any program may write: output sinks and terminals.
const WRITABLE_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/random",
    "/dev/urandom",
];

/// The kernel's Landlock ABI version (0: none: not built in, or not enabled at boot).
pub fn kernel_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) reads
    // nothing and returns the ABI version or -1.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    i32::try_from(version).unwrap_or(0).max(0)
}

/// What a command may touch.
pub struct Rules<'a> {
    pub abi: i32,
    pub readable: &'a [PathBuf],
    pub writable: &'a [PathBuf],
    pub network: bool,
}

/// Builds the ruleset (not yet enforced). Paths that do not exist are skipped.
pub fn ruleset(rules: &Rules<'_>) -> Result<RulesetCreated, landlock::RulesetError> {
    let abi = ABI::from(rules.abi);
    let all: BitFlags<AccessFs> = AccessFs::from_all(abi);
    let read: BitFlags<AccessFs> = AccessFs::from_read(abi);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?;
    // TCP only: Landlock (ABI 4+) has no rule for UDP or other families.
    let network_handled = !rules.network && rules.abi >= 4;
    if network_handled {
        ruleset = ruleset.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?;
    }
    let mut created = ruleset.create()?;
    let grant = |created: RulesetCreated, path: &Path, access: BitFlags<AccessFs>| {
        match PathFd::new(path) {
            Ok(fd) => {
                // A file (not a dir) takes file rights only.
                let access = if path.is_dir() {
                    access
                } else {
                    access & AccessFs::from_file(abi)
                };
                created.add_rule(PathBeneath::new(fd, access))
            }
            Err(_) => Ok(created),
        }
    };
    for path in rules.readable {
        created = grant(created, path, read)?;
    }
    for path in rules.writable {
        created = grant(created, path, all)?;
    }
    for device in WRITABLE_DEVICES {
        created = grant(
            created,
            Path::new(device),
            read | AccessFs::WriteFile | AccessFs::Truncate,
        )?;
    }
    Ok(created)
}

/// The hierarchies to grant read on so that everything is readable but `hidden` (and
/// what is beneath them): `/`, split around each hidden path. `list` lists a
/// directory's entries (the file system in production, a table in tests).
pub fn readable_roots(hidden: &[PathBuf], list: &dyn Fn(&Path) -> Vec<PathBuf>) -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/")];
    for hidden in hidden {
        let mut next = Vec::new();
        for root in roots {
            if hidden == &root {
                continue; // the root itself is hidden
            }
            if !hidden.starts_with(&root) {
                next.push(root);
                continue;
            }
            // Descend from `root` towards `hidden`, granting the siblings at each level.
            let mut dir = root;
            for component in hidden
                .strip_prefix(&dir)
                .map(Path::to_path_buf)
                .unwrap_or_default()
                .components()
            {
                let toward = dir.join(component);
                next.extend(list(&dir).into_iter().filter(|entry| *entry != toward));
                if toward == *hidden {
                    break;
                }
                dir = toward;
            }
        }
        roots = next;
    }
    roots.sort();
    roots.dedup();
    roots
}

/// `dir`'s entries on the file system (empty when unreadable).
pub fn list_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<PathBuf> {
        let entries: &[&str] = match dir.to_str() {
            Some("/") => &["/etc", "/home", "/usr"],
            Some("/home") => &["/home/ann", "/home/bob"],
            Some("/home/ann") => &["/home/ann/.local", "/home/ann/code"],
            Some("/home/ann/.local") => &["/home/ann/.local/share", "/home/ann/.local/bin"],
            Some("/etc") => &["/etc/octo", "/etc/passwd"],
            Some("/etc/octo") => &["/etc/octo/octo.toml", "/etc/octo/README"],
            _ => &[],
        };
        entries.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn everything_is_readable_but_the_hidden_paths() {
        let roots = readable_roots(
            &[
                PathBuf::from("/home/ann/.local/share"),
                PathBuf::from("/etc/octo/octo.toml"),
            ],
            &tree,
        );
        let expected: Vec<PathBuf> = [
            "/etc/octo/README",
            "/etc/passwd",
            "/home/ann/.local/bin",
            "/home/ann/code",
            "/home/bob",
            "/usr",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(roots, expected);
    }

    #[test]
    fn nothing_hidden_is_all_of_root() {
        assert_eq!(readable_roots(&[], &tree), [PathBuf::from("/")]);
    }
}
