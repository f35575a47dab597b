//! Control groups for the commands tools start, where the server may create them:
//! every process a command starts (including ones that called `setsid` or
//! double-forked, which leave its process group) stays in the command's group, so the
//! whole of it is killed on cancel, timeout or exit, and a process-count cap (the
//! `pids` controller) contains a fork bomb even for root, whom `RLIMIT_NPROC` does not
//! bind.
//!
//! - **Where**: beside the server's own cgroup, in the cgroup v2 hierarchy (membership
//!   and `cgroup.kill`, plus `pids.max` when the parent delegates the `pids` controller)
//!   and in a cgroup v1 `pids` hierarchy when one is mounted (hybrid hosts). Whatever is
//!   not writable is reported by [`Cgroups::describe`] and simply not used.
//! - **Joining**: the command's first process writes `0` (itself) to each group's
//!   `cgroup.procs` between fork and exec, before it can start anything, so nothing
//!   escapes by racing the server.
//! - **Killing**: `cgroup.kill` where the kernel has it (5.14+, v2), else SIGKILL to every
//!   member, repeated until the group is empty (the `pids` cap bounds a fork bomb's
//!   head start).
//! - A group is removed once empty; groups a crashed server left are removed at start.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Name prefix of the groups this server creates (then its pid and a counter).
/// Process-wide: servers in one process (tests) share the pid.
const PREFIX: &str = "octo-tool-";
/// Sweeps of SIGKILL over a group without `cgroup.kill` before giving up.
const KILL_SWEEPS: usize = 200;

/// The hierarchies commands' groups are made in.
#[derive(Debug, Default)]
pub struct Cgroups {
    /// cgroup v2: the directory our groups are made in (the server's own cgroup's parent
    /// would need more rights; its own cgroup is where we are allowed to write).
    v2: Option<PathBuf>,
    /// A cgroup v1 `pids` hierarchy directory, on hybrid hosts.
    v1_pids: Option<PathBuf>,
    /// Whether `pids.max` is available in v2 groups (the controller is delegated).
    v2_pids: bool,
}

/// Numbers groups within this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// One command's groups (v2 and/or v1 pids).
#[derive(Debug)]
pub struct Group {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each dir, for the child to join (prepared before fork).
    procs: Vec<CString>,
    has_kill: bool,
}

impl Cgroups {
    /// Finds the hierarchies the server may create groups in (none when it may not).
    pub fn probe() -> Cgroups {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut found = Cgroups::default();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let path = path.trim_start_matches('/');
            if controllers.is_empty() {
                if let Some(mount) = mount_point(&mounts, "cgroup2", None) {
                    let dir = mount.join(path);
                    if writable_dir(&dir) {
                        found.v2_pids = std::fs::read_to_string(dir.join("cgroup.subtree_control"))
                            .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
                        found.v2 = Some(dir);
                    }
                }
            } else if controllers.split(',').any(|c| c == "pids")
                && let Some(mount) = mount_point(&mounts, "cgroup", Some("pids"))
            {
                let dir = mount.join(path);
                if writable_dir(&dir) {
                    found.v1_pids = Some(dir);
                }
            }
        }
        for dir in found.v2.iter().chain(&found.v1_pids) {
            remove_stale_groups(dir);
        }
        found
    }

    /// Whether every process of a command can be killed (some group exists).
    pub fn kills_descendants(&self) -> bool {
        self.v2.is_some() || self.v1_pids.is_some()
    }

    /// Whether a process-count cap can be set.
    pub fn caps_processes(&self) -> bool {
        self.v1_pids.is_some() || (self.v2.is_some() && self.v2_pids)
    }

    pub fn describe(&self) -> String {
        match (&self.v2, &self.v1_pids) {
            (None, None) => "no writable cgroup: processes that leave the command's process \
                             group (setsid, double fork) are not killed with it, and the \
                             process cap is RLIMIT_NPROC (not enforced for root)"
                .into(),
            (v2, v1) => {
                let mut parts = Vec::new();
                if let Some(dir) = v2 {
                    parts.push(format!(
                        "cgroup v2 groups in {}{}",
                        dir.display(),
                        if self.v2_pids { " with pids.max" } else { "" }
                    ));
                }
                if let Some(dir) = v1 {
                    parts.push(format!("cgroup v1 pids groups in {}", dir.display()));
                }
                parts.join(", ")
            }
        }
    }

    /// Creates a command's groups, with `max_processes` (0: no cap) where `pids` is
    /// available.
    pub fn create(&self, max_processes: u64) -> std::io::Result<Group> {
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut group = Group {
            dirs: Vec::new(),
            procs: Vec::new(),
            has_kill: false,
        };
        let mut make = |parent: &Path, pids: bool| -> std::io::Result<()> {
            let dir = parent.join(&name);
            std::fs::create_dir(&dir)?;
            group.dirs.push(dir.clone());
            if pids && max_processes > 0 {
                std::fs::write(dir.join("pids.max"), max_processes.to_string())?;
            }
            group.has_kill |= dir.join("cgroup.kill").exists();
            let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
                .map_err(std::io::Error::other)?;
            group.procs.push(procs);
            Ok(())
        };
        if let Some(dir) = &self.v2 {
            make(dir, self.v2_pids)?;
        }
        if let Some(dir) = &self.v1_pids {
            make(dir, true)?;
        }
        Ok(group)
    }
}

impl Group {
    /// The `cgroup.procs` files the command's first process writes itself into.
    pub fn procs_files(&self) -> Vec<CString> {
        self.procs.clone()
    }

    /// Kills every process in the group.
    pub fn kill(&self) {
        if self.has_kill
            && let Some(dir) = self.dirs.iter().find(|d| d.join("cgroup.kill").exists())
            && std::fs::write(dir.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for _ in 0..KILL_SWEEPS {
            let members = self.members();
            if members.is_empty() {
                return;
            }
            for pid in members {
                // SAFETY: kill(2) with plain integers; pids come from the group's own
                // member list and are > 1.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        tracing::warn!(group = ?self.dirs, "processes of a tool command survived repeated SIGKILL");
    }

    /// Kills what is left, waits (bounded) for the group to empty, and removes it.
    pub async fn remove(self) {
        self.kill();
        for _ in 0..100 {
            if self.members().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for dir in &self.dirs {
            if let Err(err) = std::fs::remove_dir(dir) {
                tracing::warn!(group = %dir.display(), %err, "cannot remove a tool command's cgroup");
            }
        }
    }

    /// Removes the group's directories if they are empty already (no waiting).
    pub fn forget(self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }

    fn members(&self) -> Vec<libc::pid_t> {
        let mut pids = Vec::new();
        for dir in &self.dirs {
            if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(
                    text.lines()
                        .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
                        .filter(|pid| *pid > 1),
                );
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

/// The mount point of a `fstype` filesystem (with `option` among its super options, for
/// v1 controllers), from /proc/self/mountinfo.
fn mount_point(mountinfo: &str, fstype: &str, option: Option<&str>) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        if right.next()? != fstype {
            return None;
        }
        let _source = right.next();
        let options = right.next().unwrap_or("");
        if let Some(option) = option
            && !options.split(',').any(|o| o == option)
        {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// Whether the server can create groups in `dir`.
fn writable_dir(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads the NUL-terminated path only.
    dir.is_dir() && unsafe { libc::access(path.as_ptr(), libc::W_OK) } == 0
}

/// Removes the groups server processes that are gone left behind (rmdir fails on busy
/// ones; a live server's, this process's included, are left alone).
fn remove_stale_groups(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_found_by_type_and_controller() {
        let mountinfo = "\
35 24 0:30 / /sys/fs/cgroup/pids rw,relatime shared:15 - cgroup cgroup rw,pids
36 24 0:31 / /sys/fs/cgroup/memory rw,relatime shared:16 - cgroup cgroup rw,memory
40 24 0:35 / /sys/fs/cgroup/unified rw,relatime shared:20 - cgroup2 cgroup2 rw";
        assert_eq!(
            mount_point(mountinfo, "cgroup2", None),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            mount_point(mountinfo, "cgroup", Some("pids")),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(mount_point(mountinfo, "cgroup", Some("cpu")), None);
    }
}
