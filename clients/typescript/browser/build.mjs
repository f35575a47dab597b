// Bundles the demo page (browser/page.ts and the client it imports) with esbuild.
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export async function buildPage() {
  await build({
    entryPoints: [join(here, "page.ts")],
    outfile: join(here, "dist/page.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    logLevel: "warning",
  });
  return here;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildPage();
