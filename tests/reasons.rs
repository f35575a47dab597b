//! The error-reason registry (`src/domain/reason.rs`) against the contract and the code:
//! every reason the server can give is documented in `octo.v1.ErrorReason` and the other
//! way round, and no reason-shaped string literal in `src/` bypasses the registry.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use octo::domain::{Resource, reason};
use prost_reflect::DescriptorPool;

const PREFIX: &str = "ERROR_REASON_";

/// Every reason the server gives: the registry plus what `Error::reason` derives.
fn server_reasons() -> BTreeSet<String> {
    let mut all: BTreeSet<String> = reason::ALL.iter().map(|r| (*r).to_owned()).collect();
    for resource in Resource::ALL {
        for err in [
            octo::domain::Error::not_found(resource, "x"),
            octo::domain::Error::AlreadyExists {
                resource,
                name: "x".into(),
            },
        ] {
            all.insert(err.reason());
        }
    }
    all
}

#[test]
fn every_reason_is_in_the_contract_and_every_documented_one_is_given() {
    let pool = DescriptorPool::decode(octo::pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let documented: BTreeSet<String> = pool
        .get_enum_by_name("octo.v1.ErrorReason")
        .expect("octo.v1.ErrorReason")
        .values()
        .filter(|v| v.number() != 0)
        .map(|v| v.name().strip_prefix(PREFIX).expect("prefixed").to_owned())
        .collect();
    let given = server_reasons();
    let undocumented: Vec<_> = given.difference(&documented).collect();
    let unused: Vec<_> = documented.difference(&given).collect();
    assert!(
        undocumented.is_empty(),
        "reasons missing from proto/octo/v1/error_reason.proto: {undocumented:?}"
    );
    assert!(
        unused.is_empty(),
        "proto/octo/v1/error_reason.proto documents reasons the server never gives: {unused:?}"
    );
}

/// Upper-case string literals in `src/` that are not error reasons.
const NOT_REASONS: &[&str] = &[
    // gRPC code names (metrics labels, the HTTP mapping).
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
    // A CLI placeholder.
    "PROVIDER_MODEL",
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

/// `"SOME_REASON"`-shaped literals of a file's code before its tests.
fn reason_like_literals(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        for literal in code.split('"').skip(1).step_by(2) {
            let shaped = literal.contains('_')
                && literal
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && !literal.starts_with('_')
                && !literal.ends_with('_');
            if shaped {
                found.push((number + 1, literal.to_owned()));
            }
        }
    }
    found
}

#[test]
fn no_reason_literal_bypasses_the_registry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let registry = root.join("src/domain/reason.rs");
    let given = server_reasons();
    // Proto enum value names (written into JSON, matched on) are not reasons either.
    let pool = DescriptorPool::decode(octo::pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let enum_values: BTreeSet<String> = pool
        .all_enums()
        .flat_map(|e| e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>())
        .collect();
    let mut problems = Vec::new();
    // Test files under src/ (`tests.rs`, `tests/`) assert reasons as clients see them.
    let is_test = |f: &Path| {
        f.file_name().is_some_and(|n| n == "tests.rs")
            || f.components().any(|c| c.as_os_str() == "tests")
    };
    for file in files
        .iter()
        .filter(|f| **f != registry && !is_test(f.strip_prefix(root).unwrap()))
    {
        let text = std::fs::read_to_string(file).expect("read");
        for (line, literal) in reason_like_literals(&text) {
            // Environment variable names and proto enum value names are not reasons.
            let environment = literal.starts_with("OCTO_")
                || literal.starts_with("OTEL_")
                || literal.starts_with("CARGO_")
                || literal.ends_with("_KEY")
                || literal.ends_with("_HOME")
                || literal.starts_with("LC_")
                || matches!(literal.as_str(), "RUST_LOG" | "NO_COLOR" | "OUT_DIR");
            // A resource's prefix of `<RESOURCE>_NOT_FOUND`.
            let resource = given.contains(&format!("{literal}_NOT_FOUND"));
            if environment
                || resource
                || enum_values.contains(&literal)
                || NOT_REASONS.contains(&literal.as_str())
            {
                continue;
            }
            let place = format!("{}:{line}", file.strip_prefix(root).unwrap().display());
            if given.contains(&literal) {
                problems.push(format!("{place}: use octo::domain::reason::{literal}"));
            } else {
                problems.push(format!(
                    "{place}: {literal:?} looks like an error reason: add it to src/domain/reason.rs \
                     and proto/octo/v1/error_reason.proto (or, if it is not one, to NOT_REASONS here)"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scan_sees_a_literal_and_stops_at_the_tests() {
    let found = reason_like_literals(
        "let a = \"SESSION_BUSY\"; // \"IN_COMMENT\"\nlet b = \"lower_case\";\n#[cfg(test)]\nlet c = \"QUEUE_FULL\";",
    );
    assert_eq!(found, [(1, "SESSION_BUSY".to_owned())]);
}
