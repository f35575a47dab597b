//! Reading files as text: a size bound and a binary check shared by read_file, edit_file
//! and grep.

use std::{io::Read, path::Path};

/// Larger files are refused by read_file and edit_file and skipped by grep.
pub(crate) const MAX_TEXT_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Like git: a NUL byte in the first 8 KiB means binary.
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0)
}

pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Reads a regular text file of at most [`MAX_TEXT_FILE_BYTES`]; `shown` names it in
/// errors.
pub(crate) fn read_text(path: &Path, shown: &str) -> Result<Vec<u8>, String> {
    let metadata =
        std::fs::metadata(path).map_err(|err| format!("cannot read `{shown}`: {err}"))?;
    if metadata.is_dir() {
        return Err(format!("`{shown}` is a directory; use list_dir to see it"));
    }
    if !metadata.is_file() {
        return Err(format!("`{shown}` is not a regular file"));
    }
    if metadata.len() > MAX_TEXT_FILE_BYTES {
        return Err(format!(
            "`{shown}` is {}, over the {} limit; use grep to find the part you need, or \
             shell (e.g. `sed -n 100,200p`) to read part of it",
            megabytes(metadata.len()),
            megabytes(MAX_TEXT_FILE_BYTES)
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_TEXT_FILE_BYTES).read_to_end(&mut bytes))
        .map_err(|err| format!("cannot read `{shown}`: {err}"))?;
    if looks_binary(&bytes) {
        return Err(format!(
            "`{shown}` looks like a binary file (it contains NUL bytes); only text files \
             can be read or edited"
        ));
    }
    Ok(bytes)
}
