//! The Files API's logic: a session's working dir listed, stat'ed, downloaded and
//! uploaded to, within the server's size limits. The file system work is
//! `tools::workdir` (the tools' own confinement), run on the blocking pool.
//!
//! Which server answers: any. The working dir is read from the session's stored record
//! and served from this server's file system, with no hop to the session's owner: tools
//! run on the owner, which may change at any time, so a cluster already needs working
//! dirs on storage every server mounts at the same path (README, "Run a cluster"). On a
//! server without that storage the working dir is missing and the answer says so
//! (FAILED_PRECONDITION, WORKING_DIR_UNAVAILABLE) rather than showing a stale copy.

use std::{io::Read, path::PathBuf, sync::Arc};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};

use super::Sessions;
use crate::{
    domain::{
        Error, Result,
        file::FileEntry,
        page::{decode_token, encode_token, fingerprint, page_size},
    },
    tools::workdir,
};

/// Chunks of a download.
pub const DOWNLOAD_CHUNK_BYTES: usize = 64 * 1024;

/// Size limits of the Files API (`[files]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// Larger files are not downloaded (FAILED_PRECONDITION, FILE_TOO_LARGE).
    pub max_download_bytes: u64,
    /// An upload may not make a file larger.
    pub max_upload_bytes: u64,
}

/// A page of entries and the token of the next (empty at the end).
pub struct FilePage {
    pub entries: Vec<FileEntry>,
    pub next_page_token: String,
}

/// A download: the file's entry (size, content type) and its content in chunks of
/// [`DOWNLOAD_CHUNK_BYTES`]. A read error ends the stream with an error.
pub struct Download {
    pub entry: FileEntry,
    pub chunks: BoxStream<'static, Result<Bytes>>,
}

pub struct Files {
    sessions: Arc<Sessions>,
    limits: FileLimits,
}

impl Files {
    pub fn new(sessions: Arc<Sessions>, limits: FileLimits) -> Self {
        Self { sessions, limits }
    }

    pub fn limits(&self) -> FileLimits {
        self.limits
    }

    /// Lists `dir` (or the entries under it matching `glob`), keyset-paged by path.
    pub async fn list(
        &self,
        session: &str,
        dir: &str,
        glob: &str,
        requested_page_size: i32,
        page_token: &str,
    ) -> Result<FilePage> {
        let limit = page_size(requested_page_size)?;
        let filters = fingerprint(&[session, dir, glob]);
        let after: Option<String> = decode_token(page_token, filters)?;
        let root = self.root(session).await?;
        let dir = dir.to_owned();
        let glob = Some(glob.to_owned()).filter(|g| !g.is_empty());
        let listing =
            blocking(move || workdir::list(&root, &dir, glob.as_deref(), after.as_deref(), limit))
                .await?;
        let next_page_token = match listing.entries.last() {
            Some(last) if listing.more => encode_token(&last.path, filters),
            _ => String::new(),
        };
        Ok(FilePage {
            entries: listing.entries,
            next_page_token,
        })
    }

    /// One entry, with its content type.
    pub async fn stat(&self, session: &str, path: &str) -> Result<FileEntry> {
        let root = self.root(session).await?;
        let path = path.to_owned();
        blocking(move || workdir::stat(&root, &path)).await
    }

    /// Opens a file for download; its chunks are read as the stream is polled.
    pub async fn download(&self, session: &str, path: &str) -> Result<Download> {
        let root = self.root(session).await?;
        let path = path.to_owned();
        let max = self.limits.max_download_bytes;
        let (file, entry) = blocking(move || workdir::open(&root, &path, max)).await?;
        let shown = entry.path.clone();
        // Read to the end, but never past the limit: a file growing during the download
        // fails it instead of streaming without bound.
        let reader = Reader {
            file: Some(file),
            read: 0,
            max,
            shown,
        };
        let chunks = futures::stream::unfold(reader, |mut reader| async move {
            let file = reader.file.take()?;
            let outcome = tokio::task::spawn_blocking(move || {
                let mut chunk = Vec::with_capacity(DOWNLOAD_CHUNK_BYTES);
                let read = (&file)
                    .take(DOWNLOAD_CHUNK_BYTES as u64)
                    .read_to_end(&mut chunk);
                (file, read.map(|_| chunk))
            })
            .await;
            let (file, read) = match outcome {
                Ok(done) => done,
                Err(err) => return Some((Err(Error::internal(err)), reader)),
            };
            match read {
                Ok(chunk) if chunk.is_empty() => None,
                Ok(chunk) => {
                    reader.read += chunk.len() as u64;
                    if reader.read > reader.max {
                        let err =
                            workdir::too_large(&reader.shown, reader.read, reader.max, "download");
                        return Some((Err(err), reader));
                    }
                    reader.file = Some(file);
                    Some((Ok(Bytes::from(chunk)), reader))
                }
                Err(err) => Some((
                    Err(Error::internal(format!(
                        "reading `{}`: {err}",
                        reader.shown
                    ))),
                    reader,
                )),
            }
        })
        .boxed();
        Ok(Download { entry, chunks })
    }

    /// Writes one chunk of an upload at `offset` (see `workdir::write_chunk`).
    pub async fn upload(
        &self,
        session: &str,
        path: &str,
        offset: i64,
        data: Bytes,
    ) -> Result<FileEntry> {
        let offset =
            u64::try_from(offset).map_err(|_| Error::invalid("offset", "must not be negative"))?;
        if path.is_empty() {
            return Err(Error::invalid("path", "is required"));
        }
        let root = self.root(session).await?;
        let path = path.to_owned();
        let max = self.limits.max_upload_bytes;
        blocking(move || workdir::write_chunk(&root, &path, offset, &data, max)).await
    }

    /// The session's canonical working dir on this server.
    async fn root(&self, session: &str) -> Result<PathBuf> {
        let working_dir = self.sessions.get(session).await?.working_dir;
        blocking(move || workdir::root(std::path::Path::new(&working_dir))).await
    }
}

/// The state of a download: the file until it ends, and how much was read.
struct Reader {
    file: Option<std::fs::File>,
    read: u64,
    max: u64,
    shown: String,
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::internal)?
}
