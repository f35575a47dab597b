//! Compiles proto/ with protox (pure Rust, no protoc on the machine), generates the
//! prost/tonic code for `octo.v1`, and writes one descriptor set (with imports and source
//! info) that reflection and the JSON/HTTP transcoder load at run time.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // tonic-prost-build 0.14 does not emit these itself.
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");
    embed_web_ui()?;

    let mut files = Vec::new();
    collect_protos(&PathBuf::from("proto"), &mut files)?;
    files.sort();

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    for file in &files {
        let relative = file.strip_prefix("proto")?;
        compiler.open_file(relative)?;
    }
    // Encoded by protox itself: going through prost_types would drop the options'
    // extensions (google.api.http), which the JSON gateway reads at run time.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("octo_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let descriptor_set = compiler.file_descriptor_set();

    // Type names (`prost::Name`) let generic code find a message's descriptor.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    // google.api's messages live in their own module (`crate::pb::google_api`, generated
    // below): octo.v1's generated code would otherwise look for them two modules up.
    config.extern_path(".google.api", "crate::pb::google_api");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(descriptor_set, config)?;

    // google.api.HttpBody (the chunks of file downloads), on its own: google.api.rs.
    let mut google_api = protox::Compiler::new(["proto"])?;
    google_api.include_imports(false);
    google_api.open_file("google/api/httpbody.proto")?;
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    config.bytes([".google.api.HttpBody.data"]);
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .compile_fds_with_config(google_api.file_descriptor_set(), config)?;

    // The server-to-server service of a cluster: internal, so it stays out of proto/,
    // the descriptor set above (reflection, JSON mapping) and the generated clients. Its
    // messages are the public ones (`crate::pb`).
    println!("cargo:rerun-if-changed=src/api/peer/peer.proto");
    let mut peer = protox::Compiler::new(["src/api/peer", "proto"])?;
    peer.include_imports(false);
    peer.open_file("peer.proto")?;
    let mut config = prost_build::Config::new();
    config.extern_path(".octo.v1", "crate::pb");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(peer.file_descriptor_set(), config)?;
    Ok(())
}

fn collect_protos(dir: &PathBuf, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// Lists the built web UI (clients/web/dist, committed, so no Node is needed here) as
/// `include_bytes!` entries in `$OUT_DIR/web_ui.rs`: `(path, body, gzipped body, ETag)`,
/// the `.gz` twin of a file being its precompressed form. No dist: an empty list.
fn embed_web_ui() -> Result<(), Box<dyn std::error::Error>> {
    let dist = PathBuf::from("clients/web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    if dist.is_dir() {
        for entry in walk(&dist)? {
            let relative = entry
                .strip_prefix(&dist)?
                .to_string_lossy()
                .replace('\\', "/");
            if !relative.ends_with(".gz") {
                println!("cargo:rerun-if-changed={}", entry.display());
                files.push((relative, fs::canonicalize(&entry)?));
            }
        }
    }
    files.sort();
    let mut code = String::from("&[\n");
    for (relative, path) in &files {
        let gz = PathBuf::from(format!("{}.gz", path.display()));
        let gz = if gz.is_file() {
            format!(
                "Some(include_bytes!({:?}) as &[u8])",
                gz.display().to_string()
            )
        } else {
            "None".to_owned()
        };
        // FNV-1a of the bytes: the file's ETag.
        let hash = fs::read(path)?
            .iter()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
        code.push_str(&format!(
            "    ({:?}, include_bytes!({:?}) as &[u8], {gz}, \"\\\"{hash:016x}\\\"\"),\n",
            format!("/{relative}"),
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    fs::write(PathBuf::from(env::var("OUT_DIR")?).join("web_ui.rs"), code)?;
    Ok(())
}

fn walk(dir: &PathBuf) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}
