//! `octo files ...`: a session's working dir through the generated FileService client:
//! `ls SESSION [PATH] [--glob G]`, `stat SESSION PATH`, `get SESSION PATH [-o FILE|-]`
//! (streamed to a `.part` file renamed when complete, so an interrupted download never
//! looks finished) and `put SESSION LOCAL [REMOTE]` (in chunks, each at the size the
//! file has reached; `-` reads stdin).

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::{
    GlobalArgs,
    client::Client,
    names::session_name,
    output::{self, Column, Table, enum_label, long_time, now_unix, short_time, write_fields},
};
use crate::pb;

/// Bytes per upload chunk by default: well under the servers' default message limit.
const DEFAULT_CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Args, Debug, PartialEq)]
pub struct FilesArgs {
    #[command(subcommand)]
    pub command: FilesCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum FilesCommand {
    /// List a directory of a session's working dir (or, with --glob, the files under it)
    Ls(LsArgs),
    /// Show one entry: kind, size, time, content type
    Stat {
        /// Session id or `sessions/{id}`
        session: String,
        /// Path relative to the working dir
        path: String,
    },
    /// Download a file
    Get(GetArgs),
    /// Upload a file (in chunks)
    Put(PutArgs),
}

#[derive(Args, Debug, PartialEq)]
pub struct LsArgs {
    /// Session id or `sessions/{id}`
    pub session: String,
    /// Directory relative to the working dir (default: the working dir)
    #[arg(default_value = "")]
    pub path: String,
    /// Entries under PATH whose path relative to it matches, e.g. `**/*.rs`
    /// (.gitignore'd files skipped)
    #[arg(long, short = 'g', value_name = "GLOB")]
    pub glob: Option<String>,
    /// Entries per page (server default 50, at most 500)
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub limit: Option<i32>,
    /// Follow next_page_token and list every entry
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, PartialEq)]
pub struct GetArgs {
    /// Session id or `sessions/{id}`
    pub session: String,
    /// File path relative to the working dir
    pub path: String,
    /// Where to write it (`-`: standard output); default: its name, in this directory
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<String>,
}

#[derive(Args, Debug, PartialEq)]
pub struct PutArgs {
    /// Session id or `sessions/{id}`
    pub session: String,
    /// Local file (`-`: standard input)
    pub local: String,
    /// Path in the working dir (default: the local file's name)
    pub remote: Option<String>,
    /// Bytes per chunk (each chunk is one UploadFile call)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_CHUNK_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64 * 1024 * 1024))]
    pub chunk_bytes: usize,
}

pub async fn run(
    args: FilesArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate before connecting, so mistakes fail fast even without a server.
    let session = match &args.command {
        FilesCommand::Ls(a) => &a.session,
        FilesCommand::Stat { session, .. } => session,
        FilesCommand::Get(a) => &a.session,
        FilesCommand::Put(a) => &a.session,
    };
    let session = session_name(session)?;
    if let FilesCommand::Put(put) = &args.command
        && put.local == "-"
        && put.remote.is_none()
    {
        anyhow::bail!("uploading standard input needs the REMOTE path");
    }
    let client = global.connect().await?;
    match args.command {
        FilesCommand::Ls(ls) => list(&client, &session, &ls, global.json, out).await,
        FilesCommand::Stat { path, .. } => {
            let entry = client
                .files()
                .get_file(pb::GetFileRequest { session, path })
                .await?
                .into_inner();
            if global.json {
                return output::write_json(out, &entry);
            }
            write_entry(out, &entry)?;
            Ok(())
        }
        FilesCommand::Get(get) => download(&client, &session, &get, out).await,
        FilesCommand::Put(put) => upload(&client, &session, &put, global.json, out).await,
    }
}

async fn list(
    client: &Client,
    session: &str,
    args: &LsArgs,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let files = client.files();
    let request = pb::ListFilesRequest {
        session: session.to_owned(),
        path: args.path.clone(),
        glob: args.glob.clone().unwrap_or_default(),
        page_size: args.limit.unwrap_or(0),
        page_token: String::new(),
    };
    let (entries, next_page_token) = super::client::collect_pages(args.all, |page_token| {
        let mut files = files.clone();
        let request = pb::ListFilesRequest {
            page_token,
            ..request.clone()
        };
        async move {
            let page = files.list_files(request).await?.into_inner();
            Ok((page.files, page.next_page_token))
        }
    })
    .await?;
    let all = pb::ListFilesResponse {
        files: entries,
        next_page_token,
    };
    if json {
        return output::write_json(out, &all);
    }
    if all.files.is_empty() {
        writeln!(out, "No files.")?;
        return Ok(());
    }
    file_table(&all.files, now_unix()).render(out)?;
    if !all.next_page_token.is_empty() {
        writeln!(out, "(more entries: use --all or a larger --limit)")?;
    }
    Ok(())
}

fn kind_label(kind: i32) -> String {
    pb::FileKind::try_from(kind).map_or_else(
        |_| kind.to_string(),
        |k| enum_label(k.as_str_name(), "FILE_KIND_"),
    )
}

/// The `files ls` table: directories end in `/`, symlinks in `@`.
pub fn file_table(entries: &[pb::FileEntry], now: i64) -> Table {
    let mut table = Table::new([
        Column::left("KIND"),
        Column::right("SIZE"),
        Column::left("MODIFIED"),
        Column::left("PATH"),
    ]);
    for entry in entries {
        let suffix = match entry.kind() {
            pb::FileKind::Directory => "/",
            pb::FileKind::Symlink => "@",
            _ => "",
        };
        table.push_row([
            kind_label(entry.kind),
            if entry.kind() == pb::FileKind::File {
                entry.size.to_string()
            } else {
                "-".into()
            },
            short_time(entry.modify_time.as_ref(), now),
            format!("{}{suffix}", entry.path),
        ]);
    }
    table
}

fn write_entry(out: &mut dyn Write, entry: &pb::FileEntry) -> std::io::Result<()> {
    write_fields(
        out,
        &[
            ("path", entry.path.clone()),
            ("kind", kind_label(entry.kind)),
            ("size", entry.size.to_string()),
            (
                "modified",
                long_time(entry.modify_time.as_ref(), now_unix()),
            ),
            ("content type", entry.content_type.clone()),
        ],
    )
}

async fn download(
    client: &Client,
    session: &str,
    args: &GetArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut stream = client
        .files()
        .download_file(pb::DownloadFileRequest {
            session: session.to_owned(),
            path: args.path.clone(),
        })
        .await?
        .into_inner();
    let target = match args.output.as_deref() {
        Some("-") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => Some(PathBuf::from(
            Path::new(&args.path)
                .file_name()
                .context("the remote path names no file; give -o FILE")?,
        )),
    };
    let Some(target) = target else {
        while let Some(chunk) = stream.message().await? {
            out.write_all(&chunk.data)?;
        }
        return Ok(());
    };
    let mut partial = target.clone().into_os_string();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut written: u64 = 0;
    let received = async {
        while let Some(chunk) = stream.message().await? {
            file.write_all(&chunk.data)
                .with_context(|| format!("writing {}", partial.display()))?;
            written += chunk.data.len() as u64;
        }
        file.flush()?;
        anyhow::Ok(())
    }
    .await;
    if let Err(err) = received {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    std::fs::rename(&partial, &target)
        .with_context(|| format!("renaming {} to {}", partial.display(), target.display()))?;
    writeln!(out, "wrote {written} bytes to {}", target.display())?;
    Ok(())
}

async fn upload(
    client: &Client,
    session: &str,
    args: &PutArgs,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let remote = match &args.remote {
        Some(remote) => remote.clone(),
        None => Path::new(&args.local)
            .file_name()
            .context("the local path names no file; give the REMOTE path")?
            .to_string_lossy()
            .into_owned(),
    };
    let mut input: Box<dyn Read + Send> = if args.local == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&args.local).with_context(|| format!("opening {}", args.local))?,
        )
    };
    let mut files = client.files();
    let mut offset: i64 = 0;
    let mut entry = None;
    loop {
        let mut chunk = Vec::with_capacity(args.chunk_bytes);
        (&mut input)
            .take(args.chunk_bytes as u64)
            .read_to_end(&mut chunk)
            .with_context(|| format!("reading {}", args.local))?;
        // The first chunk is sent even when empty: it creates (or empties) the file.
        if chunk.is_empty() && entry.is_some() {
            break;
        }
        let sent = chunk.len() as i64;
        let written = files
            .upload_file(pb::UploadFileRequest {
                session: session.to_owned(),
                path: remote.clone(),
                offset,
                data: chunk,
            })
            .await?
            .into_inner();
        offset += sent;
        entry = Some(written);
        if sent < args.chunk_bytes as i64 {
            break;
        }
    }
    let entry = entry.unwrap_or_default();
    if json {
        return output::write_json(out, &entry);
    }
    writeln!(out, "uploaded {} bytes to {}", entry.size, entry.path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> FilesCommand {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Files(files) => files.command,
            other => panic!("not files: {other:?}"),
        }
    }

    #[test]
    fn subcommands_parse() {
        assert_eq!(
            parse(&[
                "octo", "files", "ls", "s1", "src", "--glob", "**/*.rs", "--all"
            ]),
            FilesCommand::Ls(LsArgs {
                session: "s1".into(),
                path: "src".into(),
                glob: Some("**/*.rs".into()),
                limit: None,
                all: true,
            })
        );
        assert_eq!(
            parse(&["octo", "files", "get", "s1", "a/b.txt", "-o", "-"]),
            FilesCommand::Get(GetArgs {
                session: "s1".into(),
                path: "a/b.txt".into(),
                output: Some("-".into()),
            })
        );
        assert_eq!(
            parse(&["octo", "files", "put", "s1", "local.bin"]),
            FilesCommand::Put(PutArgs {
                session: "s1".into(),
                local: "local.bin".into(),
                remote: None,
                chunk_bytes: DEFAULT_CHUNK_BYTES,
            })
        );
        assert!(
            Cli::try_parse_from(["octo", "files", "put", "s1", "x", "--chunk-bytes", "0"]).is_err()
        );
    }

    #[test]
    fn the_table_marks_directories_and_symlinks() {
        let entry = |path: &str, kind: pb::FileKind, size| pb::FileEntry {
            path: path.into(),
            kind: kind.into(),
            size,
            ..Default::default()
        };
        let mut text = Vec::new();
        file_table(
            &[
                entry("src", pb::FileKind::Directory, 0),
                entry("a.txt", pb::FileKind::File, 12),
                entry("l", pb::FileKind::Symlink, 0),
            ],
            0,
        )
        .render(&mut text)
        .expect("render");
        let text = String::from_utf8(text).expect("utf8");
        assert!(text.contains("directory     -  -         src/"), "{text}");
        assert!(text.contains("file         12  -         a.txt"), "{text}");
        assert!(text.contains("l@"), "{text}");
    }
}
