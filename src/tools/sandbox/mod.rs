//! The sandbox of the processes tools start (the shell tool's commands): what they may
//! read and write, how much they may use, and that all of them die with the command.
//! Linux only; what is missing on this host is said once at start ([`Sandbox::describe`])
//! and never pretended.
//!
//! | what | how | where it is missing |
//! |---|---|---|
//! | writes only in the working dir, a private temp dir and configured paths; the data dir and config unreadable; optionally no TCP | Landlock ([`landlock`]) | kernels before 5.13 or without Landlock enabled: nothing is confined |
//! | CPU seconds, file size, address space, process count | `setrlimit` in the child | root ignores `RLIMIT_NPROC`: the cgroup cap below is what holds |
//! | every descendant killed on cancel, timeout and exit, `setsid` and double forks included; a process cap even for root | a cgroup per command ([`cgroup`]) | no writable cgroup: only the process group is killed |
//!
//! **Concurrency**: [`Sandbox`] is built once and shared; [`Sandbox::prepare`] makes one
//! command's [`Confinement`] (ruleset, temp dir, cgroup), which installs a `pre_exec`
//! hook doing only syscalls (join the cgroup, setrlimit, Landlock) between fork and exec.

pub mod cgroup;
pub mod landlock;

use std::{
    ffi::CString,
    path::{Path, PathBuf},
    sync::Arc,
};

/// What the operator asks of the sandbox (config `[sandbox]`).
#[derive(Clone, Debug, Default)]
pub struct SandboxSettings {
    /// Confine files with Landlock where the kernel has it.
    pub confine_files: bool,
    /// Writable besides the working dir and the private temp dir.
    pub writable: Vec<PathBuf>,
    /// Never readable (the data dir and the config file are added by the server).
    pub hidden: Vec<PathBuf>,
    /// TCP allowed (false: bind and connect refused, Landlock ABI 4+).
    pub network: bool,
    /// 0: no limit, for each.
    pub cpu_seconds: u64,
    pub file_size_bytes: u64,
    pub address_space_bytes: u64,
    pub processes: u64,
    /// Where commands' private temp dirs are made.
    pub temp_root: PathBuf,
}

/// The sandbox as this host supports it; cheap to clone.
#[derive(Clone, Debug)]
pub struct Sandbox(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    settings: SandboxSettings,
    /// Landlock ABI in use; 0 when files are not confined.
    abi: i32,
    /// `settings.hidden`, canonical.
    hidden: Vec<PathBuf>,
    cgroups: cgroup::Cgroups,
    /// None: no sandbox at all (unit tests of tools).
    enabled: bool,
}

/// One command's confinement, made before it starts.
pub struct Confinement {
    ruleset: Option<::landlock::RulesetCreated>,
    limits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)>,
    group: Option<cgroup::Group>,
    temp_dir: Option<PathBuf>,
}

impl Sandbox {
    /// Probes the host (Landlock ABI, writable cgroups) once.
    pub fn new(settings: SandboxSettings) -> Sandbox {
        let abi = if settings.confine_files {
            landlock::kernel_abi()
        } else {
            0
        };
        let hidden: Vec<PathBuf> = settings
            .hidden
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        Sandbox(Arc::new(Inner {
            settings,
            abi,
            hidden,
            cgroups: cgroup::Cgroups::probe(),
            enabled: true,
        }))
    }

    /// No confinement at all: for tools' own unit tests.
    pub fn disabled() -> Sandbox {
        Sandbox(Arc::new(Inner {
            settings: SandboxSettings::default(),
            abi: 0,
            hidden: Vec::new(),
            cgroups: cgroup::Cgroups::default(),
            enabled: false,
        }))
    }

    /// One line for the start log: what is enforced here and what is not.
    pub fn describe(&self) -> String {
        let inner = &self.0;
        if !inner.enabled {
            return "disabled".into();
        }
        let files = match (inner.settings.confine_files, inner.abi) {
            (false, _) => "files not confined (sandbox.confine_files = false)".to_owned(),
            (true, 0) => "files NOT confined: this kernel has no Landlock (5.13+, enabled at boot)"
                .to_owned(),
            (true, abi) => format!(
                "files confined by Landlock ABI {abi}{}",
                match (inner.settings.network, abi >= 4) {
                    (true, _) => "",
                    (false, true) => ", TCP refused",
                    (false, false) => ", network NOT refused (Landlock ABI 4+ needed)",
                }
            ),
        };
        format!("{files}; {}", inner.cgroups.describe())
    }

    /// Whether every process of a command is killed with it.
    pub fn kills_descendants(&self) -> bool {
        self.0.cgroups.kills_descendants()
    }

    /// Whether Landlock confines files.
    pub fn confines_files(&self) -> bool {
        self.0.abi > 0
    }

    /// Makes a command's confinement for `working_dir`.
    pub fn prepare(&self, working_dir: &Path) -> std::io::Result<Confinement> {
        let inner = &self.0;
        let mut confinement = Confinement {
            ruleset: None,
            limits: Vec::new(),
            group: None,
            temp_dir: None,
        };
        if !inner.enabled {
            return Ok(confinement);
        }
        let s = &inner.settings;
        for (resource, value) in [
            (libc::RLIMIT_CPU, s.cpu_seconds),
            (libc::RLIMIT_FSIZE, s.file_size_bytes),
            (libc::RLIMIT_AS, s.address_space_bytes),
            (libc::RLIMIT_NPROC, s.processes),
        ] {
            if value > 0 {
                confinement.limits.push((resource, value as libc::rlim_t));
            }
        }
        std::fs::create_dir_all(&s.temp_root)?;
        let temp_dir = s
            .temp_root
            .join(format!("cmd-{}", uuid::Uuid::now_v7().simple()));
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&temp_dir)?;
        confinement.temp_dir = Some(temp_dir.clone());
        if inner.abi > 0 {
            let mut writable = vec![working_dir.to_path_buf(), temp_dir];
            writable.extend(s.writable.iter().cloned());
            // Listed now, not at start: what appeared beside the hidden paths' ancestors
            // since (a new file in the home dir) is readable too. A few small dirs.
            let readable = landlock::readable_roots(&inner.hidden, &landlock::list_dir);
            let rules = landlock::Rules {
                abi: inner.abi,
                readable: &readable,
                writable: &writable,
                network: s.network,
            };
            confinement.ruleset = Some(landlock::ruleset(&rules).map_err(std::io::Error::other)?);
        }
        if inner.cgroups.kills_descendants() {
            confinement.group = Some(inner.cgroups.create(s.processes)?);
        }
        Ok(confinement)
    }
}

impl Confinement {
    /// The private temp dir (`TMPDIR`), if any.
    pub fn temp_dir(&self) -> Option<&Path> {
        self.temp_dir.as_deref()
    }

    /// Installs the confinement on `command`: it is applied in the child between fork
    /// and exec, by syscalls only; a failure fails the spawn (never a silent half
    /// sandbox).
    pub fn apply(&mut self, command: &mut tokio::process::Command) {
        if let Some(dir) = &self.temp_dir {
            command.env("TMPDIR", dir);
        }
        let procs: Vec<CString> = self
            .group
            .as_ref()
            .map(cgroup::Group::procs_files)
            .unwrap_or_default();
        let limits = self.limits.clone();
        let mut ruleset = self.ruleset.take();
        if procs.is_empty() && limits.is_empty() && ruleset.is_none() {
            return;
        }
        // SAFETY: the hook runs in the forked child before exec; it only makes syscalls
        // (open, write, close, setrlimit, prctl, landlock_restrict_self) on data prepared
        // before the fork, and builds errors from errno without allocating.
        unsafe {
            command.pre_exec(move || {
                for path in &procs {
                    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                    if written != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (resource, value) in &limits {
                    let limit = libc::rlimit {
                        rlim_cur: *value,
                        rlim_max: *value,
                    };
                    if libc::setrlimit(*resource, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(ruleset) = ruleset.take()
                    && ruleset.restrict_self().is_err()
                {
                    return Err(std::io::Error::from_raw_os_error(libc::EPERM));
                }
                Ok(())
            });
        }
    }

    /// Kills every process of the command (its cgroup), where a cgroup exists.
    pub fn kill_all(&self) {
        if let Some(group) = &self.group {
            group.kill();
        }
    }

    /// After the command: kills what is left, removes its cgroup and temp dir.
    pub async fn finish(mut self) {
        if let Some(group) = self.group.take() {
            group.remove().await;
        }
        if let Some(dir) = self.temp_dir.take()
            && let Err(err) = tokio::fs::remove_dir_all(&dir).await
        {
            tracing::debug!(dir = %dir.display(), %err, "cannot remove a command's temp dir");
        }
    }
}

impl Drop for Confinement {
    /// A dropped command (its tool future was dropped): kill and clean up now, as far
    /// as can be done without waiting; an empty group left behind is removed at the
    /// next start.
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            group.kill();
            group.forget();
        }
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
