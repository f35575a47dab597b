// Builds the web UI into dist/: one hashed script and stylesheet under dist/assets/, an
// unhashed index.html that names them, and a gzip twin (.gz) of each file that `octo
// serve` sends when the browser accepts gzip. Deterministic: the same sources and
// lockfiles give the same bytes (esbuild's content hashes; gzip by fflate, pure JS,
// fixed level, no timestamp), so CI rebuilds it and fails when the committed dist
// differs. The client (clients/typescript/src) and its runtime come from that folder's
// own node_modules, pinned by its package-lock.json.
import { build } from "esbuild";
import { gzipSync } from "fflate";
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");

export async function buildUi({ outdir = dist } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    // Hashes depend on paths relative to the working dir: fix it, whoever runs this.
    absWorkingDir: here,
    entryPoints: { app: join(here, "src/main.tsx") },
    outdir: join(outdir, "assets"),
    entryNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome110", "firefox115", "safari16"],
    minify: true,
    sourcemap: false,
    legalComments: "none",
    jsx: "automatic",
    jsxImportSource: "preact",
    define: { "process.env.NODE_ENV": '"production"' },
    metafile: true,
    logLevel: "warning",
    charset: "utf8",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => "/" + relative(outdir, join(here, p)));
  const script = outputs.find((p) => p.endsWith(".js"));
  const style = outputs.find((p) => p.endsWith(".css"));
  if (!script || !style) throw new Error(`unexpected outputs: ${outputs.join(", ")}`);
  const html = readFileSync(join(here, "src/index.html"), "utf8")
    .replace("%SCRIPT%", script)
    .replace("%STYLE%", style);
  writeFileSync(join(outdir, "index.html"), html);
  let gzipped = 0;
  for (const file of files(outdir)) {
    const data = gzipSync(readFileSync(file), { level: 9, mtime: 0 });
    writeFileSync(`${file}.gz`, data);
    gzipped += data.length;
  }
  return { outdir, script, style, gzippedBytes: gzipped };
}

function files(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { script, style, gzippedBytes } = await buildUi();
  console.log(`web UI: ${script}, ${style}; ${(gzippedBytes / 1024).toFixed(1)} KiB gzipped in all`);
}
