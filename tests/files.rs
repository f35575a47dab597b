//! FileService over gRPC (tonic) and JSON (reqwest): listing with globs and pages, stat,
//! downloads larger than one chunk compared byte for byte (a raw body with the file's
//! content type over JSON), chunked uploads, escapes refused naming `path`, the size
//! limits, bad offsets; and the `file_changed` events write_file and edit_file emit
//! when the mock model calls them.

use crate::common;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use common::{TestServer, collect_until, create, create_in_mode, is_turn_finished, text};
use octo::pb::{self, file_service_client::FileServiceClient};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};

const MAX_DOWNLOAD: u64 = 256 * 1024;
const MAX_UPLOAD: u64 = 300 * 1024;

async fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.files.max_download_bytes = MAX_DOWNLOAD;
        config.files.max_upload_bytes = MAX_UPLOAD;
    })
    .await
}

async fn files(server: &TestServer) -> FileServiceClient<Channel> {
    FileServiceClient::new(server.channel().await)
}

/// Bytes that no chunk boundary can hide a shift in.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// A session whose working dir holds a small tree and a 200 KiB binary file.
async fn session_with_files(server: &TestServer) -> (pb::Session, std::path::PathBuf) {
    let session = create(&mut server.sessions().await, "files").await;
    let dir = std::path::PathBuf::from(&session.working_dir);
    std::fs::create_dir_all(dir.join("src/lib")).expect("mkdir");
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").expect("write");
    std::fs::write(dir.join("src/lib/mod.rs"), "pub mod x;\n").expect("write");
    std::fs::write(dir.join("README.md"), "# Hello\n").expect("write");
    std::fs::write(dir.join("big.bin"), pattern(200 * 1024)).expect("write");
    std::os::unix::fs::symlink("/etc", dir.join("etc_link")).expect("symlink");
    (session, dir)
}

async fn download(
    client: &mut FileServiceClient<Channel>,
    session: &str,
    path: &str,
) -> Result<(String, Vec<u8>, usize), tonic::Status> {
    let mut stream = client
        .download_file(pb::DownloadFileRequest {
            session: session.to_owned(),
            path: path.to_owned(),
        })
        .await?
        .into_inner();
    let mut content_type = None;
    let mut bytes = Vec::new();
    let mut messages = 0;
    while let Some(chunk) = stream.message().await? {
        content_type.get_or_insert(chunk.content_type);
        bytes.extend_from_slice(&chunk.data);
        messages += 1;
    }
    Ok((content_type.unwrap_or_default(), bytes, messages))
}

async fn upload(
    client: &mut FileServiceClient<Channel>,
    session: &str,
    path: &str,
    offset: i64,
    data: &[u8],
) -> Result<pb::FileEntry, tonic::Status> {
    client
        .upload_file(pb::UploadFileRequest {
            session: session.to_owned(),
            path: path.to_owned(),
            offset,
            data: data.to_vec(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn paths(entries: &[pb::FileEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

#[track_caller]
fn assert_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(common::violated_fields(&status), [field], "{status:?}");
}

#[tokio::test]
async fn list_stat_and_download_over_grpc() {
    let server = server().await;
    let (session, _dir) = session_with_files(&server).await;
    let mut client = files(&server).await;
    let list = |path: &str, glob: &str, page_size: i32, page_token: &str| pb::ListFilesRequest {
        session: session.name.clone(),
        path: path.into(),
        glob: glob.into(),
        page_size,
        page_token: page_token.into(),
    };

    let root = client
        .list_files(list("", "", 0, ""))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        paths(&root.files),
        ["README.md", "big.bin", "etc_link", "src"]
    );
    let kinds: Vec<pb::FileKind> = root.files.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            pb::FileKind::File,
            pb::FileKind::File,
            pb::FileKind::Symlink,
            pb::FileKind::Directory
        ]
    );
    assert_eq!(root.files[1].size, 200 * 1024);
    assert!(root.files[0].modify_time.is_some());
    assert!(root.next_page_token.is_empty());

    // A glob walks below `path`, never through the symlink to /etc.
    let rust = client
        .list_files(list("", "**/*.rs", 0, ""))
        .await
        .expect("glob")
        .into_inner();
    assert_eq!(paths(&rust.files), ["src/lib/mod.rs", "src/main.rs"]);
    let everything = client
        .list_files(list(".", "**", 0, ""))
        .await
        .expect("glob all")
        .into_inner();
    assert!(
        !everything.files.iter().any(|e| e.path.contains("passwd")),
        "{everything:?}"
    );
    let under_src = client
        .list_files(list("src", "*.rs", 0, ""))
        .await
        .expect("glob in src")
        .into_inner();
    assert_eq!(paths(&under_src.files), ["src/main.rs"]);

    // Pages of two, in path order, end to end.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_files(list("", "**", 2, &token))
            .await
            .expect("page")
            .into_inner();
        assert!(page.files.len() <= 2);
        paged.extend(page.files);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paths(&paged), paths(&everything.files));
    assert_invalid(
        client.list_files(list("src", "**", 2, &token)).await,
        "page_token",
    );
    assert_invalid(client.list_files(list("", "a[", 0, "")).await, "glob");
    assert_invalid(
        client.list_files(list("README.md", "", 0, "")).await,
        "path",
    );

    let stat = client
        .get_file(pb::GetFileRequest {
            session: session.name.clone(),
            path: "./src/../README.md".into(),
        })
        .await
        .expect("stat")
        .into_inner();
    assert_eq!(stat.path, "README.md");
    assert_eq!((stat.kind(), stat.size), (pb::FileKind::File, 8));
    assert_eq!(stat.content_type, "text/markdown; charset=utf-8");
    let missing = client
        .get_file(pb::GetFileRequest {
            session: session.name.clone(),
            path: "nope.txt".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(common::reason(&missing), "FILE_NOT_FOUND");

    let (content_type, bytes, messages) = download(&mut client, &session.name, "big.bin")
        .await
        .expect("download");
    assert_eq!(content_type, "application/octet-stream");
    assert!(messages >= 4, "200 KiB comes in 64 KiB chunks: {messages}");
    assert!(bytes == pattern(200 * 1024), "the bytes differ");
    let (content_type, bytes, _) = download(&mut client, &session.name, "src/main.rs")
        .await
        .expect("download");
    assert_eq!(
        (content_type.as_str(), bytes.as_slice()),
        ("text/x-rust; charset=utf-8", &b"fn main() {}\n"[..])
    );
}

#[tokio::test]
async fn uploads_in_chunks_within_the_limit() {
    let server = server().await;
    let (session, dir) = session_with_files(&server).await;
    let mut client = files(&server).await;
    let content = pattern(150 * 1024 + 17);
    let mut offset = 0;
    for chunk in content.chunks(64 * 1024) {
        let entry = upload(&mut client, &session.name, "up/dir/data.bin", offset, chunk)
            .await
            .expect("chunk");
        offset += chunk.len() as i64;
        assert_eq!(
            (entry.path.as_str(), entry.size),
            ("up/dir/data.bin", offset)
        );
    }
    let (_, bytes, _) = download(&mut client, &session.name, "up/dir/data.bin")
        .await
        .expect("download");
    assert!(bytes == content, "uploaded and downloaded bytes differ");

    // A chunk must continue at the current size: a gap, a repeat, a negative offset, or
    // a continuation of a file that does not exist are refused naming `offset`.
    for bad in [offset + 1, offset - 5, -1] {
        assert_invalid(
            upload(&mut client, &session.name, "up/dir/data.bin", bad, b"x").await,
            "offset",
        );
    }
    assert_invalid(
        upload(&mut client, &session.name, "fresh.bin", 10, b"x").await,
        "offset",
    );
    assert!(!dir.join("fresh.bin").exists());
    assert_eq!(
        std::fs::metadata(dir.join("up/dir/data.bin"))
            .expect("stat")
            .len() as i64,
        offset,
        "refused chunks changed nothing"
    );

    // The whole file is bounded by max_upload_bytes; offset 0 starts the file over.
    let room = MAX_UPLOAD as i64 - offset;
    assert_invalid(
        upload(
            &mut client,
            &session.name,
            "up/dir/data.bin",
            offset,
            &vec![1; room as usize + 1],
        )
        .await,
        "data",
    );
    let entry = upload(&mut client, &session.name, "up/dir/data.bin", 0, b"again")
        .await
        .expect("restart");
    assert_eq!(entry.size, 5);
    assert_eq!(entry.content_type, "application/octet-stream");

    // Downloads are bounded by max_download_bytes.
    std::fs::write(dir.join("huge.bin"), pattern(MAX_DOWNLOAD as usize + 1)).expect("write");
    let status = download(&mut client, &session.name, "huge.bin")
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(common::reason(&status), "FILE_TOO_LARGE");
    assert_invalid(download(&mut client, &session.name, "src").await, "path");
}

#[tokio::test]
async fn escapes_are_refused_naming_the_path() {
    let server = server().await;
    let (session, dir) = session_with_files(&server).await;
    let mut client = files(&server).await;
    let outside = server.dir.path().join("outside.txt");
    std::fs::write(&outside, "secret\n").expect("write");
    let outside = outside.to_string_lossy().into_owned();
    for path in [
        "../x",
        "../../outside.txt",
        "/etc/passwd",
        outside.as_str(),
        "etc_link",
        "etc_link/passwd",
        "src/../../x",
        "a\0b",
    ] {
        let stat = client
            .get_file(pb::GetFileRequest {
                session: session.name.clone(),
                path: path.into(),
            })
            .await;
        assert_invalid(stat, "path");
        assert_invalid(download(&mut client, &session.name, path).await, "path");
        let list = client
            .list_files(pb::ListFilesRequest {
                session: session.name.clone(),
                path: path.into(),
                ..Default::default()
            })
            .await;
        assert_invalid(list, "path");
    }
    for path in [
        "../escaped.txt".to_owned(),
        format!("{}/escaped.txt", server.dir.path().display()),
        "etc_link/octo-files-test-escaped".to_owned(),
        "src/../../escaped.txt".to_owned(),
    ] {
        assert_invalid(
            upload(&mut client, &session.name, &path, 0, b"pwned").await,
            "path",
        );
    }
    assert!(!std::path::Path::new("/etc/octo-files-test-escaped").exists());
    assert!(!server.dir.path().join("escaped.txt").exists());
    assert!(!dir.parent().expect("parent").join("escaped.txt").exists());
    assert_eq!(
        std::fs::read_to_string(server.dir.path().join("outside.txt")).expect("read"),
        "secret\n"
    );

    // The session must exist; its name is checked like every other RPC's.
    let status = client
        .get_file(pb::GetFileRequest {
            session: "sessions/0190aaaa-0000-7000-8000-000000000000".into(),
            path: "README.md".into(),
        })
        .await
        .expect_err("no session");
    assert_eq!(status.code(), Code::NotFound);
    assert_invalid(
        client
            .get_file(pb::GetFileRequest {
                session: "nope".into(),
                path: "README.md".into(),
            })
            .await,
        "session",
    );
}

/// The JSON body of a response (asserting it is JSON).
async fn json_body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.text().await.expect("body");
    let value =
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("JSON body ({err}): {body}"));
    (status, value)
}

fn violations(error: &Value) -> Vec<String> {
    error["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["fieldViolations"].as_array())
        .flatten()
        .filter_map(|v| v["field"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_same_over_json_with_raw_downloads() {
    let server = server().await;
    let (session, _dir) = session_with_files(&server).await;
    let http = reqwest::Client::new();
    let base = format!("{}/v1/{}", server.url(), session.name);

    let (status, listed) = json_body(
        http.get(format!("{base}/files"))
            .query(&[("glob", "**/*.rs")])
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["files"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert_eq!(listed["files"][0]["path"], "src/lib/mod.rs");
    assert_eq!(listed["files"][1]["kind"], "FILE_KIND_FILE");
    assert_eq!(listed["files"][1]["size"], "13");

    let (status, stat) = json_body(
        http.get(format!("{base}/files:stat"))
            .query(&[("path", "README.md")])
            .send()
            .await
            .expect("stat"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stat}");
    assert_eq!(stat["contentType"], "text/markdown; charset=utf-8");

    // A download is the file itself, typed, not an event stream.
    let response = http
        .get(format!("{base}/files:download"))
        .query(&[("path", "big.bin")])
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["content-security-policy"], "sandbox");
    let bytes = response.bytes().await.expect("body");
    assert!(
        bytes.as_ref() == pattern(200 * 1024).as_slice(),
        "bytes differ"
    );
    let response = http
        .get(format!("{base}/files:download"))
        .query(&[("path", "README.md")])
        .send()
        .await
        .expect("download text");
    assert_eq!(
        response.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert_eq!(response.text().await.expect("text"), "# Hello\n");

    // Upload with base64 data, in chunks, then the download equals it.
    let content = pattern(100 * 1024 + 3);
    let mut offset = 0;
    for chunk in content.chunks(40 * 1024) {
        let (status, entry) = json_body(
            http.post(format!("{base}/files:upload"))
                .json(
                    &json!({"path": "json/up.bin", "offset": offset, "data": BASE64.encode(chunk)}),
                )
                .send()
                .await
                .expect("upload"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{entry}");
        offset += chunk.len();
        assert_eq!(entry["size"], offset.to_string());
    }
    let downloaded = http
        .get(format!("{base}/files:download"))
        .query(&[("path", "json/up.bin")])
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("body");
    assert!(downloaded.as_ref() == content.as_slice(), "bytes differ");

    // Errors before the first byte are google.rpc.Status JSON naming the field.
    for (url, path) in [
        (format!("{base}/files:download"), "../x"),
        (format!("{base}/files:download"), "/etc/passwd"),
        (format!("{base}/files:stat"), "etc_link/passwd"),
        (format!("{base}/files"), "etc_link"),
    ] {
        let (status, error) = json_body(
            http.get(&url)
                .query(&[("path", path)])
                .send()
                .await
                .expect("refused"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {error}");
        assert_eq!(violations(&error), ["path"], "{path}: {error}");
    }
    let (status, error) = json_body(
        http.post(format!("{base}/files:upload"))
            .json(&json!({"path": "json/up.bin", "offset": 1, "data": "eA=="}))
            .send()
            .await
            .expect("bad offset"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(violations(&error), ["offset"]);
    std::fs::write(
        std::path::Path::new(&session.working_dir).join("huge.bin"),
        pattern(MAX_DOWNLOAD as usize + 1),
    )
    .expect("write");
    let (status, error) = json_body(
        http.get(format!("{base}/files:download"))
            .query(&[("path", "huge.bin")])
            .send()
            .await
            .expect("too large"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("max_download_bytes"),
        "{error}"
    );
}

/// Runs one turn in which the mock model calls `tool` with `arguments`; its events.
async fn tool_turn(
    chat: &mut common::ChatClient,
    session: &str,
    tool: &str,
    arguments: &Value,
) -> Vec<pb::SessionEvent> {
    let mut stream = chat
        .chat(pb::ChatRequest {
            session: session.to_owned(),
            parts: vec![text(&format!("/tool {tool} {arguments}"))],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    collect_until(&mut stream, is_turn_finished).await
}

/// The file_changed events, each with its event's turn.
fn file_changes(events: &[pb::SessionEvent]) -> Vec<(String, pb::FileChanged)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::session_event::Kind::FileChanged(change)) => {
                Some((e.turn.clone(), change.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn write_and_edit_emit_file_changed_with_a_diff() {
    let server = server().await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "changes",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    let mut chat = server.chat().await;

    let events = tool_turn(
        &mut chat,
        &session.name,
        "write_file",
        &json!({"path": "notes/a.txt", "content": "hello world\nsecond line\n"}),
    )
    .await;
    let turn = common::finished(events.last().expect("events"))
        .expect("turn")
        .name
        .clone();
    let changes = file_changes(&events);
    let [(event_turn, created)] = changes.as_slice() else {
        panic!("one file_changed: {:?}", common::kinds(&events));
    };
    assert_eq!(event_turn, &turn);
    assert_eq!(created.path, "notes/a.txt");
    assert_eq!(created.kind(), pb::FileChangeKind::Created);
    assert_eq!(created.size, 24);
    assert_eq!(
        created.diff,
        "--- /dev/null\n+++ b/notes/a.txt\n@@ -0,0 +1,2 @@\n+hello world\n+second line\n"
    );
    assert!(!created.diff_truncated);
    let call_id = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ToolCallStarted(s)) => s.tool_call.clone(),
            _ => None,
        })
        .expect("tool_call_started")
        .id;
    assert_eq!(created.tool_call_id, call_id);
    // After the call's output, before its end.
    let kinds = common::kinds(&events);
    let at = |kind: &str| kinds.iter().position(|k| *k == kind).expect(kind);
    let changed_at = events
        .iter()
        .position(|e| matches!(e.kind, Some(pb::session_event::Kind::FileChanged(_))))
        .expect("file_changed");
    assert!(at("tool_call_started") < changed_at && changed_at < at("tool_call_finished"));

    let events = tool_turn(
        &mut chat,
        &session.name,
        "edit_file",
        &json!({"path": "notes/a.txt", "old_string": "world", "new_string": "octo"}),
    )
    .await;
    let changes = file_changes(&events);
    let [(_, edited)] = changes.as_slice() else {
        panic!("one file_changed: {:?}", common::kinds(&events));
    };
    assert_eq!(edited.kind(), pb::FileChangeKind::Modified);
    assert_eq!(edited.size, 23);
    assert_eq!(
        edited.diff,
        "--- a/notes/a.txt\n+++ b/notes/a.txt\n@@ -1,2 +1,2 @@\n-hello world\n+hello octo\n second line\n"
    );

    // A big rewrite: the diff stops at 16 KiB, on a line, and says so.
    let long: String = (0..3000).map(|i| format!("line {i}\n")).collect();
    let events = tool_turn(
        &mut chat,
        &session.name,
        "write_file",
        &json!({"path": "notes/a.txt", "content": long}),
    )
    .await;
    let changes = file_changes(&events);
    let [(_, rewritten)] = changes.as_slice() else {
        panic!("one file_changed: {:?}", common::kinds(&events));
    };
    assert_eq!(rewritten.kind(), pb::FileChangeKind::Modified);
    assert!(rewritten.diff_truncated);
    assert!(rewritten.diff.len() <= 16 * 1024 && rewritten.diff.ends_with('\n'));
    assert!(
        rewritten
            .diff
            .starts_with("--- a/notes/a.txt\n+++ b/notes/a.txt\n@@ -1,2 +1,3000 @@\n")
    );

    // Tools that change nothing report nothing; a failed write neither.
    let events = tool_turn(
        &mut chat,
        &session.name,
        "read_file",
        &json!({"path": "notes/a.txt"}),
    )
    .await;
    assert!(file_changes(&events).is_empty());
    let events = tool_turn(
        &mut chat,
        &session.name,
        "write_file",
        &json!({"path": "../escape.txt", "content": "x"}),
    )
    .await;
    assert!(file_changes(&events).is_empty());
}
