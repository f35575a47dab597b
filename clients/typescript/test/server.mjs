// Starts a live `octo serve --demo` (mock model) on an ephemeral loopback port for a test
// file: $OCTO_BIN, else target/debug/octo of this repository.
import { spawn } from "node:child_process";
import { createReadStream, mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Flags every test launch of the system's Chromium uses (no network of its own). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Serves the demo page (browser/index.html and its bundle in `dir`) on an ephemeral
 * loopback port: a page origin of its own.
 * @returns {Promise<{origin: string, port: number, close: () => void}>}
 */
export async function servePage(dir) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = path === "/" ? "index.html" : path.slice(1);
    if (!["index.html", "dist/page.js", "dist/page.js.map"].includes(file)) {
      res.writeHead(404).end();
      return;
    }
    const type = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" }[extname(file)];
    res.writeHead(200, { "content-type": type });
    createReadStream(join(dir, file)).pipe(res);
  });
  const port = await new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server.address().port)));
  return { origin: `http://127.0.0.1:${port}`, port, close: () => server.close() };
}

/**
 * @param {{token?: string, configToml?: string}} options
 * @returns {Promise<{address: string, baseUrl: string, log: string[], stop: () => Promise<void>}>}
 */
export async function startOcto({ token, configToml = "" } = {}) {
  const binary = process.env.OCTO_BIN || join(repoRoot, "target/debug/octo");
  if (!existsSync(binary)) throw new Error(`octo not found at ${binary}: run cargo build or set OCTO_BIN`);
  const home = mkdtempSync(join(tmpdir(), "octo-ts-"));
  mkdirSync(join(home, "config/octo"), { recursive: true });
  writeFileSync(join(home, "config/octo/config.toml"), configToml);
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, "config"),
    XDG_DATA_HOME: join(home, "data"),
    RUST_LOG: "info",
  };
  // Octo reads every OCTO_* variable as config and refuses unknown keys.
  delete env.OCTO_BIN;
  if (token) env.OCTO_TOKEN = token;
  const child = spawn(binary, ["serve", "--demo", "--listen", "127.0.0.1:0"], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log = [];
  const exited = new Promise((done) => child.once("exit", done));
  const address = await new Promise((ok, fail) => {
    // A safety net only: the address arrives as soon as the server logs it.
    const timer = setTimeout(() => fail(new Error(`octo did not start:\n${log.join("")}`)), 120_000);
    let buffered = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log.push(chunk);
      buffered += chunk;
      const match = /octo listening address=(\S+)/.exec(buffered);
      if (match) {
        clearTimeout(timer);
        ok(match[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`octo exited (${code}):\n${log.join("")}`));
    });
  });
  return {
    address,
    baseUrl: `http://${address}`,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
