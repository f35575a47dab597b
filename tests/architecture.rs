//! The import boundaries of ARCHITECTURE.md, checked on the source: dependencies point
//! inward. The wire (`pb`, `tonic`, `hyper`, `prost_reflect`) stops at the adapters and
//! the server's transport glue; the databases (`rusqlite`, `tokio_postgres`,
//! `deadpool_postgres`) stop at `store/`. Domain, runtime, providers, tools, scheduler,
//! webhooks and the outbox never name them. OpenTelemetry's crates stop at `telemetry/`.

use std::path::{Path, PathBuf};

/// The inner layers: no wire, no database.
const INNER: [&str; 8] = [
    "src/domain",
    "src/runtime",
    "src/providers",
    "src/tools",
    "src/scheduler",
    "src/webhooks",
    "src/outbox.rs",
    "src/config.rs",
];

const WIRE: [&str; 5] = ["tonic", "crate::pb", "pb::", "hyper", "prost_reflect"];
const DATABASE: [&str; 3] = ["rusqlite", "tokio_postgres", "deadpool_postgres"];
/// OpenTelemetry's types stay in `telemetry/`: everything else names only `tracing`.
const TELEMETRY: [&str; 5] = [
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
    "tracing_opentelemetry",
];

/// Files allowed past a boundary, and why.
const EXCEPTIONS: [(&str, &str, &str); 3] = [
    (
        "src/providers/fake.rs",
        "hyper",
        "the fake provider servers serve the providers' real HTTP wire formats",
    ),
    (
        "src/bin/octo-bench/pg.rs",
        "tokio_postgres",
        "the benchmark starts and measures a throwaway Postgres itself",
    ),
    (
        "src/bin/octo-bench/store.rs",
        "rusqlite",
        "the store benchmark compares against raw SQLite",
    ),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_owned());
        }
        return;
    }
    for entry in std::fs::read_dir(path).expect("read_dir") {
        rust_files(&entry.expect("entry").path(), out);
    }
}

/// The crate paths `file` names in code (comments left out), among `names`.
fn names_used(file: &Path, names: &[&str]) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).expect("read");
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for name in names {
            let hit = code.match_indices(name).any(|(at, _)| {
                let before = code[..at].chars().next_back();
                let after = code[at + name.len()..].chars().next();
                let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                // A whole path segment: `tonic::`, not `tonic_health` or `my_hyper`.
                !ident(before) && (name.ends_with("::") || !ident(after))
            });
            if hit {
                found.push((number + 1, name.to_string()));
            }
        }
    }
    found
}

fn excepted(file: &Path, root: &Path, name: &str) -> bool {
    let relative = file
        .strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");
    EXCEPTIONS
        .iter()
        .any(|(path, allowed, _)| relative == *path && name.starts_with(allowed))
}

#[test]
fn dependencies_point_inward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();

    let mut inner = Vec::new();
    for dir in INNER {
        rust_files(&root.join(dir), &mut inner);
    }
    assert!(inner.len() > 50, "found only {} files", inner.len());
    let banned: Vec<&str> = WIRE.iter().chain(&DATABASE).copied().collect();
    for file in &inner {
        for (line, name) in names_used(file, &banned) {
            if !excepted(file, root, &name) {
                violations.push(format!("{}:{line}: {name}", file.display()));
            }
        }
    }

    let mut everything = Vec::new();
    rust_files(&root.join("src"), &mut everything);
    for file in everything
        .iter()
        .filter(|f| !f.starts_with(root.join("src/store")))
    {
        for (line, name) in names_used(file, &DATABASE) {
            if !excepted(file, root, &name) {
                violations.push(format!("{}:{line}: {name}", file.display()));
            }
        }
    }
    for file in everything
        .iter()
        .filter(|f| !f.starts_with(root.join("src/telemetry")))
    {
        for (line, name) in names_used(file, &TELEMETRY) {
            violations.push(format!("{}:{line}: {name}", file.display()));
        }
    }
    assert!(
        violations.is_empty(),
        "imports across the architecture's boundaries (ARCHITECTURE.md; add an exception \
         here only with a reason):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_sees_a_crossing() {
    // The matcher itself: a path segment counts, a longer identifier does not.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(
        &file,
        "use tonic::Status;\nuse tonic_health as h; // tonic in a comment\nlet x = my_hyper;\nuse crate::pb::Session;\n",
    )
    .unwrap();
    let found = names_used(&file, &WIRE);
    assert_eq!(
        found,
        [
            (1, "tonic".to_owned()),
            (4, "crate::pb".to_owned()),
            (4, "pb::".to_owned())
        ]
    );
}
