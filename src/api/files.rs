//! FileService: a session's working dir over the API (list, stat, download, upload).
//! Validates the names, calls `runtime::Files`, converts the answer; downloads are a
//! stream of `google.api.HttpBody` chunks, which the JSON gateway serves as a raw body.

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert::{parse_name, timestamp};
use crate::{
    domain::file::{FileChange, FileChangeKind, FileEntry, FileKind},
    pb::{self, file_service_server::FileService, google_api::HttpBody},
    runtime::Files,
};

pub struct FileApi {
    files: Arc<Files>,
}

impl FileApi {
    pub fn new(files: Arc<Files>) -> Self {
        Self { files }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub fn file_kind_pb(kind: FileKind) -> pb::FileKind {
    match kind {
        FileKind::File => pb::FileKind::File,
        FileKind::Directory => pb::FileKind::Directory,
        FileKind::Symlink => pb::FileKind::Symlink,
        FileKind::Other => pb::FileKind::Other,
    }
}

pub fn file_entry_pb(entry: &FileEntry) -> pb::FileEntry {
    pb::FileEntry {
        path: entry.path.clone(),
        kind: file_kind_pb(entry.kind).into(),
        size: i64::try_from(entry.size).unwrap_or(i64::MAX),
        modify_time: entry.modify_time.and_then(timestamp),
        content_type: entry.content_type.clone(),
    }
}

/// The `file_changed` event of a tool call.
pub fn file_changed_pb(tool_call_id: &str, change: &FileChange) -> pb::FileChanged {
    pb::FileChanged {
        tool_call_id: tool_call_id.to_owned(),
        path: change.path.clone(),
        kind: match change.kind {
            FileChangeKind::Created => pb::FileChangeKind::Created,
            FileChangeKind::Modified => pb::FileChangeKind::Modified,
            FileChangeKind::Deleted => pb::FileChangeKind::Deleted,
        }
        .into(),
        size: i64::try_from(change.size).unwrap_or(i64::MAX),
        diff: change.diff.clone(),
        diff_truncated: change.diff_truncated,
    }
}

#[tonic::async_trait]
impl FileService for FileApi {
    async fn list_files(
        &self,
        request: Request<pb::ListFilesRequest>,
    ) -> Result<Response<pb::ListFilesResponse>, Status> {
        let req = request.into_inner();
        let session = parse_name(&req.session, "sessions", "session")?;
        let page = self
            .files
            .list(
                session,
                &req.path,
                &req.glob,
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListFilesResponse {
            files: page.entries.iter().map(file_entry_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_file(
        &self,
        request: Request<pb::GetFileRequest>,
    ) -> Result<Response<pb::FileEntry>, Status> {
        let req = request.into_inner();
        let session = parse_name(&req.session, "sessions", "session")?;
        let entry = self.files.stat(session, &req.path).await?;
        Ok(Response::new(file_entry_pb(&entry)))
    }

    type DownloadFileStream = ResponseStream<HttpBody>;

    async fn download_file(
        &self,
        request: Request<pb::DownloadFileRequest>,
    ) -> Result<Response<Self::DownloadFileStream>, Status> {
        let req = request.into_inner();
        let session = parse_name(&req.session, "sessions", "session")?;
        let download = self.files.download(session, &req.path).await?;
        // The content type goes first, alone, so an empty file still answers it.
        let head = HttpBody {
            content_type: download.entry.content_type,
            data: bytes::Bytes::new(),
            extensions: Vec::new(),
        };
        let chunks = download.chunks.map(|chunk| {
            chunk
                .map(|data| HttpBody {
                    content_type: String::new(),
                    data,
                    extensions: Vec::new(),
                })
                .map_err(Status::from)
        });
        let stream = futures::stream::once(async move { Ok(head) }).chain(chunks);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn upload_file(
        &self,
        request: Request<pb::UploadFileRequest>,
    ) -> Result<Response<pb::FileEntry>, Status> {
        let req = request.into_inner();
        let session = parse_name(&req.session, "sessions", "session")?;
        let entry = self
            .files
            .upload(session, &req.path, req.offset, req.data.into())
            .await?;
        Ok(Response::new(file_entry_pb(&entry)))
    }
}
