//! A throwaway Postgres for tests: Debian's `postgresql` binaries (`.ci/setup` installs
//! them), one cluster per test binary in a temp dir on a free loopback port, started on
//! first use and gone when the binary exits; each test gets a database of its own.
//!
//! The server runs as a child of the test process with `PR_SET_PDEATHSIG`, so it dies
//! with the test binary even on a crash; as root (CI) it runs as the `postgres` user,
//! since Postgres refuses to run as root. Readiness is its own "ready to accept
//! connections" log line, not a sleep. Durability is switched off (`fsync=off`): the
//! data is thrown away anyway, and it makes each test's database ~5x faster to create.
//! Without the binaries the tests that need it fail, saying what to install: a test
//! suite that skips its Postgres half silently would hide exactly what it checks.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

struct Cluster {
    port: u16,
    dir: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
/// The server process, killed (and the dir removed) at exit.
static CHILD: Mutex<Option<Child>> = Mutex::new(None);
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The directory of `initdb` and `postgres`: the newest under /usr/lib/postgresql, or
/// `$OCTO_TEST_PG_BIN`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OCTO_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().unwrap_or_else(|| {
        panic!(
            "no Postgres server binaries (initdb) under /usr/lib/postgresql: install Debian's \
             `postgresql` package (bash .ci/setup does), or point OCTO_TEST_PG_BIN at their \
             directory"
        )
    })
}

/// The uid and gid to run Postgres as: ours, or the `postgres` user's when we are root.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: a valid C string; the result is read before any other getpw* call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !entry.is_null(),
        "running as root, but there is no `postgres` user to run Postgres as (Debian's \
         postgresql package creates it)"
    );
    // SAFETY: checked non-null just above.
    let entry = unsafe { &*entry };
    Some((entry.pw_uid, entry.pw_gid))
}

/// `program` run as `user`, from the cluster's own `dir`, so nothing depends on the
/// test's working directory (a checkout under a root-only /root, say) being readable by
/// the postgres user (Postgres 15 copes with an unreadable one; others may not).
fn command(program: PathBuf, user: Option<(u32, u32)>, dir: &Path) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(program);
    command.current_dir(dir);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // Drop root's supplementary groups, then its group, then its user.
            if let Some((uid, gid)) = user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            // Die with the test binary, however it ends.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

extern "C" fn stop_cluster() {
    if let Ok(mut child) = CHILD.lock()
        && let Some(mut child) = child.take()
    {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(cluster) = CLUSTER.get() {
        let _ = std::fs::remove_dir_all(&cluster.dir);
    }
}

fn start() -> Cluster {
    let bin = bin_dir();
    let user = run_as();
    let dir = tempfile::Builder::new()
        .prefix("octo-pg-")
        .tempdir()
        .expect("tempdir")
        .keep();
    let data = dir.join("data");
    std::fs::create_dir(&data).expect("mkdir data");
    if let Some((uid, gid)) = user {
        for path in [&dir, &data] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to postgres");
        }
    }
    let output = command(bin.join("initdb"), user, &dir)
        .args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
        ])
        .arg("--pgdata")
        .arg(&data)
        .output()
        .expect("run initdb");
    assert!(
        output.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let port = free_port();
    let mut child = command(bin.join("postgres"), user, &dir)
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
        .spawn()
        .expect("start postgres");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut log = Vec::new();
    let ready = loop {
        match lines.next() {
            Some(Ok(line)) => {
                let ready = line.contains("ready to accept connections");
                log.push(line);
                if ready {
                    break true;
                }
            }
            _ => break false,
        }
    };
    assert!(ready, "postgres did not start:\n{}", log.join("\n"));
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    *CHILD.lock().expect("lock") = Some(child);
    // SAFETY: registering a plain extern "C" function.
    unsafe { libc::atexit(stop_cluster) };
    Cluster { port, dir }
}

/// Starts the cluster from a thread that lives as long as the process: the death signal
/// follows the thread that forked, and a blocking-pool thread retires when idle.
fn start_on_own_thread() -> Cluster {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || {
            let started = std::panic::catch_unwind(start).map_err(|panic| {
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            });
            let _ = sender.send(started);
            loop {
                std::thread::park();
            }
        })
        .expect("spawn the postgres thread");
    match receiver.recv() {
        Ok(Ok(cluster)) => cluster,
        Ok(Err(message)) => panic!("{message}"),
        Err(_) => panic!("the postgres thread ended without a word"),
    }
}

/// A new, empty database on this binary's cluster: its `postgres://` URL.
pub async fn database() -> String {
    let cluster = match CLUSTER.get() {
        Some(cluster) => cluster,
        None => {
            // Started on a blocking thread: initdb takes a second or two.
            tokio::task::spawn_blocking(|| {
                CLUSTER.get_or_init(start_on_own_thread);
            })
            .await
            .expect("start the cluster");
            CLUSTER.get().expect("started")
        }
    };
    let name = format!(
        "octo_test_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    let admin = url(cluster.port, "postgres");
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the test database");
    drop(client);
    let _ = connection.await;
    url(cluster.port, &name)
}

fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

/// Where the cluster keeps its files (for tests that want its log or socket).
pub fn cluster_dir() -> Option<&'static Path> {
    CLUSTER.get().map(|c| c.dir.as_path())
}
