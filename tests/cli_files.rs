//! `octo files ls|stat|get|put` as a user runs them against a live server: a chunked
//! upload, a listing that shows it, a download that equals it (to a file and to stdout),
//! and a refused path explained.

use crate::common;

use common::TestServer;

use common::cli::Run;

async fn octo(server: &TestServer, cwd: &std::path::Path, args: &[&str]) -> Run {
    common::cli::octo_with(server, args, |command| {
        command.current_dir(cwd);
    })
    .await
}

fn text(run: &Run) -> String {
    run.stdout.clone()
}

#[tokio::test]
async fn put_ls_get_round_trip() {
    let server = TestServer::start().await;
    let session = common::create(&mut server.sessions().await, "cli files").await;
    let local = tempfile::tempdir().expect("tempdir");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(local.path().join("data.bin"), &content).expect("write");
    let id = session.name.trim_start_matches("sessions/");

    // Three chunks of 128 KiB: the server checks every offset.
    let put = octo(
        &server,
        local.path(),
        &[
            "files",
            "put",
            id,
            "data.bin",
            "in/data.bin",
            "--chunk-bytes",
            "131072",
        ],
    )
    .await;
    assert_eq!(put.code, Some(0), "{}", put.stderr);
    assert_eq!(text(&put), "uploaded 300000 bytes to in/data.bin\n");
    let working_dir = std::path::Path::new(&session.working_dir);
    assert!(std::fs::read(working_dir.join("in/data.bin")).expect("uploaded") == content);

    let ls = octo(&server, local.path(), &["files", "ls", id]).await;
    assert_eq!(ls.code, Some(0), "{}", ls.stderr);
    let listing = text(&ls);
    assert!(listing.starts_with("KIND"), "{listing}");
    assert!(
        listing.contains("directory") && listing.contains("in/"),
        "{listing}"
    );
    let ls = octo(
        &server,
        local.path(),
        &["files", "ls", id, "--glob", "**/*.bin"],
    )
    .await;
    let listing = text(&ls);
    assert!(
        listing.contains("300000") && listing.contains("in/data.bin"),
        "{listing}"
    );
    let ls = octo(&server, local.path(), &["--json", "files", "ls", id, "in"]).await;
    let json: serde_json::Value = serde_json::from_slice(&ls.stdout_bytes).expect("json");
    assert_eq!(json["files"][0]["path"], "in/data.bin");

    let get = octo(
        &server,
        local.path(),
        &["files", "get", id, "in/data.bin", "-o", "copy.bin"],
    )
    .await;
    assert_eq!(get.code, Some(0), "{}", get.stderr);
    assert_eq!(text(&get), "wrote 300000 bytes to copy.bin\n");
    assert!(std::fs::read(local.path().join("copy.bin")).expect("downloaded") == content);
    assert!(!local.path().join("copy.bin.part").exists());
    // Default: the file's own name, here; `-o -`: standard output.
    let get = octo(
        &server,
        local.path(),
        &["files", "get", &session.name, "in/data.bin"],
    )
    .await;
    assert_eq!(get.code, Some(0), "{}", get.stderr);
    assert!(std::fs::read(local.path().join("data.bin")).expect("downloaded") == content);
    let get = octo(
        &server,
        local.path(),
        &["files", "get", id, "in/data.bin", "-o", "-"],
    )
    .await;
    assert!(get.stdout_bytes == content, "stdout holds the file");

    let stat = octo(&server, local.path(), &["files", "stat", id, "in/data.bin"]).await;
    assert!(
        text(&stat).contains("application/octet-stream"),
        "{}",
        text(&stat)
    );

    let refused = octo(
        &server,
        local.path(),
        &["files", "get", id, "../escape", "-o", "x"],
    )
    .await;
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("path"), "{}", refused.stderr);
    assert!(!local.path().join("x").exists() && !local.path().join("x.part").exists());
}
