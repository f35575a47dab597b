// The README's Node.js example exactly as written (only its server address is this
// test's server), run as a program of its own: it must print the reply and exit. And
// leaving a `for await` loop with `break` must end the call: the server stops counting
// the stream open (octo_open_streams), over gRPC and gRPC-Web.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import { createNodeClient, isTerminal, streamEvents } from "../dist/node.js";
import { startOcto } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const SAFETY = 60_000;
let server, project;

before(async () => {
  server = await startOcto();
  // A project that installed the client: node_modules/@octo-agents/octo-client.
  project = mkdtempSync(join(tmpdir(), "octo-readme-"));
  mkdirSync(join(project, "node_modules/@octo-agents"), { recursive: true });
  symlinkSync(resolve(here, ".."), join(project, "node_modules/@octo-agents/octo-client"), "dir");
});
after(async () => {
  await server?.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

/** The code block under `heading` in the README. */
function readmeExample(heading) {
  const readme = readFileSync(resolve(here, "../README.md"), "utf8");
  const section = readme.slice(readme.indexOf(heading));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(match, `no ts block under ${heading}`);
  return match[1];
}

test("the README's Node.js example prints the reply and exits", async () => {
  const code = readmeExample("## Connect, create a session, stream a chat (Node.js)");
  assert.ok(code.includes('baseUrl: "http://127.0.0.1:50051"'));
  assert.ok(code.includes("if (isTerminal(event)) break;"));
  writeFileSync(join(project, "example.mjs"), code.replace("http://127.0.0.1:50051", server.baseUrl));
  const child = spawn(process.execPath, ["example.mjs"], { cwd: project, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), SAFETY);
  const [exitCode, signal] = await new Promise((ok) => child.once("exit", (c, s) => ok([c, s])));
  clearTimeout(timer);
  assert.equal(signal, null, `the example did not exit by itself (killed after ${SAFETY} ms); stderr: ${stderr}`);
  assert.equal(exitCode, 0, stderr);
  assert.equal(stdout, "Echo: What is in this directory?");
});

/** The server's count of open StreamEvents streams. */
async function openStreams() {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith('octo_open_streams{method="octo.v1.ChatService/StreamEvents"}'));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** Re-reads the metric every 20 ms until it equals `want` (SAFETY at most). */
async function waitForOpenStreams(want) {
  const deadline = Date.now() + SAFETY;
  let got;
  while ((got = await openStreams()) !== want) {
    if (Date.now() > deadline) throw new Error(`open streams stayed ${got}, want ${want}`);
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

for (const protocol of ["grpc", "grpc-web"]) {
  test(`break out of streamEvents ends the call (${protocol})`, async () => {
    const octo = createNodeClient({ baseUrl: server.baseUrl, protocol });
    const session = await octo.sessions.createSession({ session: { displayName: "break" } });
    await waitForOpenStreams(0);
    let seen = 0;
    for await (const event of streamEvents(octo, session.name)) {
      seen++;
      assert.equal(event.kind.case, "snapshot");
      assert.equal(await openStreams(), 1, "the stream is open while read");
      if (!isTerminal(event)) break;
    }
    assert.equal(seen, 1);
    await waitForOpenStreams(0);
  });
}
