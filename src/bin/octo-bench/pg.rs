//! A throwaway Postgres for the `cluster` scenario (modelled on the tests' support in
//! `tests/common/postgres.rs`, which a binary cannot import): Debian's `postgresql`
//! server binaries (`.ci/setup` installs them), one cluster in a temp dir on a free
//! loopback port, stopped and removed when the bench is done with it.
//!
//! - As root it runs as the `postgres` user (Postgres refuses to run as root).
//! - `postgres` is started directly (not through `pg_ctl`), as a child of a thread that
//!   lives until the stop, with `PR_SET_PDEATHSIG`: it dies with the bench however the
//!   bench ends, and its pid is known, so its CPU (the postmaster and its backends) is
//!   measured like the servers'.
//! - Durability is off (`fsync=off`, `synchronous_commit=off`): the bench measures Octo
//!   and its protocol, not this machine's disk; a real Postgres adds its commit latency
//!   to every durable write.
//! - Without the binaries `start` fails saying what to install, or to pass
//!   `--database-url`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};

/// A running throwaway Postgres; stopped and removed by `stop` or on drop.
pub struct Postgres {
    pub port: u16,
    /// The postmaster.
    pub pid: u32,
    dir: PathBuf,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The directory of `initdb` and `postgres`: `$OCTO_TEST_PG_BIN` (as the tests), or
/// the newest version under /usr/lib/postgresql.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("OCTO_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        if !dir.join("initdb").exists() {
            bail!(
                "OCTO_TEST_PG_BIN={} has no initdb: point it at the Postgres server binaries",
                dir.display()
            );
        }
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        anyhow!(
            "the cluster scenario needs Postgres: no server binaries (initdb) under \
             /usr/lib/postgresql. Install Debian's `postgresql` package (bash .ci/setup does), \
             point OCTO_TEST_PG_BIN at their directory, pass --database-url postgres://... \
             to use a running Postgres, or choose another --scenario"
        )
    })
}

/// The uid and gid to run Postgres as: ours, or the `postgres` user's when we are root.
fn run_as() -> anyhow::Result<Option<(u32, u32)>> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres")?;
    // SAFETY: a valid C string; the result is read before any other getpw* call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!(
            "running as root, but there is no `postgres` user to run Postgres as (Debian's \
             postgresql package creates it)"
        );
    }
    // SAFETY: checked non-null just above.
    let entry = unsafe { &*entry };
    Ok(Some((entry.pw_uid, entry.pw_gid)))
}

/// `program` run as `user` from `dir`, dying with the thread that starts it.
fn command(program: PathBuf, user: Option<(u32, u32)>, dir: &Path) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(program);
    command.current_dir(dir);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if let Some((uid, gid)) = user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Postgres {
    /// initdb + postgres in a fresh temp dir; returns once it accepts connections.
    pub async fn start() -> anyhow::Result<Postgres> {
        let bin = bin_dir()?;
        let user = run_as()?;
        let dir = std::env::temp_dir().join(format!("octo-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        if let Some((uid, gid)) = user {
            for path in [&dir, &data] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .context("chown the Postgres dir to postgres")?;
            }
        }
        let (started_tx, started_rx) = mpsc::channel::<anyhow::Result<(u16, u32)>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread_dir = dir.clone();
        // The death signal follows the thread that forked: this one lives until the stop.
        let thread = std::thread::Builder::new()
            .name("bench-postgres".into())
            .spawn(move || serve(bin, user, thread_dir, started_tx, stop_rx))?;
        let started = tokio::task::spawn_blocking(move || started_rx.recv()).await?;
        let mut pg = Postgres {
            port: 0,
            pid: 0,
            dir,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        match started {
            Ok(Ok((port, pid))) => {
                pg.port = port;
                pg.pid = pid;
                Ok(pg)
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(anyhow!("the Postgres thread ended without a word")),
        }
    }

    /// The `postgres://` URL of a database on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// CPU time of the postmaster and its live backends, plus the backends it reaped.
    pub fn cpu(&self) -> Duration {
        tree_cpu(self.pid)
    }

    /// Fast shutdown, then the temp dir removed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs on its own thread: initdb, postgres until told to stop, then a fast shutdown.
fn serve(
    bin: PathBuf,
    user: Option<(u32, u32)>,
    dir: PathBuf,
    started: mpsc::Sender<anyhow::Result<(u16, u32)>>,
    stop: mpsc::Receiver<()>,
) {
    let data = dir.join("data");
    let output = command(bin.join("initdb"), user, &dir)
        .args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
        ])
        .arg("--pgdata")
        .arg(&data)
        .output();
    match output {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let _ = started.send(Err(anyhow!(
                "initdb failed: {}",
                String::from_utf8_lossy(&o.stderr)
            )));
            return;
        }
        Err(err) => {
            let _ = started.send(Err(anyhow!("cannot run initdb: {err}")));
            return;
        }
    }
    let port = match free_port() {
        Ok(port) => port,
        Err(err) => {
            let _ = started.send(Err(err));
            return;
        }
    };
    let child = command(bin.join("postgres"), user, &dir)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            let _ = started.send(Err(anyhow!("cannot start postgres: {err}")));
            return;
        }
    };
    let mut lines = child.stderr.take().map(|e| BufReader::new(e).lines());
    let mut log = Vec::new();
    let mut ready = false;
    if let Some(lines) = lines.as_mut() {
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            ready = line.contains("ready to accept connections");
            log.push(line);
            if ready {
                break;
            }
        }
    }
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        let _ = started.send(Err(anyhow!("postgres did not start:\n{}", log.join("\n"))));
        return;
    }
    // Keep draining its log so it never blocks on a full pipe.
    if let Some(lines) = lines {
        std::thread::spawn(move || for _ in lines {});
    }
    let _ = started.send(Ok((port, child.id())));
    // Until told to stop, or the bench is gone.
    let _ = stop.recv();
    // SIGINT: fast shutdown (disconnects clients, no checkpoint wait on a throwaway).
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A new, empty database named `name` on the server `admin_url` points at; returns the
/// URL of the new database.
pub async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", redact(admin_url)))?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    drop(client);
    let _ = connection.await;
    with_database(admin_url, name)
}

/// Drops a database made by `create_database` (its servers stopped); errors ignored.
pub async fn drop_database(admin_url: &str, name: &str) {
    if let Ok((client, connection)) =
        tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await
    {
        let connection = tokio::spawn(connection);
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await;
        drop(client);
        let _ = connection.await;
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| anyhow!("{} is not a postgres:// URL", redact(url)))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (auth, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let user = auth.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// utime+stime of `pid`'s direct children and of `pid` itself, with the time of the
/// children it reaped (cutime+cstime).
fn tree_cpu(pid: u32) -> Duration {
    let mut ticks = 0u64;
    if let Some(f) = stat(pid) {
        ticks += f.utime + f.stime + f.cutime + f.cstime;
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(f) = stat(child)
                && f.ppid == pid
            {
                ticks += f.utime + f.stime;
            }
        }
    }
    Duration::from_secs_f64(ticks as f64 / crate::proc::clock_ticks() as f64)
}

struct Stat {
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    // rest starts at field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        ppid: num(1)? as u32,
        utime: num(11)?,
        stime: num(12)?,
        cutime: num(13)?,
        cstime: num(14)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_their_database_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/octo?sslmode=disable", "b").unwrap(),
            "postgres://u:p@h:5432/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b").unwrap(),
            "postgres://h:5432/b"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
