// A hostile web page against a default `octo serve` (loopback, no token), in a real
// headless Chromium: the page tries every way a browser sends requests (fetch with JSON,
// fetch text/plain in no-cors mode, gRPC-Web, EventSource, a text/plain form post) and
// then the drive-by itself, an AUTO_APPROVE session whose model runs a shell command.
// From another origin nothing gets through and the server's state is unchanged; from a
// name that is not loopback's (a DNS rebinding) the Host check refuses; the same page
// from an origin in `cors_allowed_origins` does get through and runs the command, which
// shows the attack is real and the origin is what stops it.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { buildPage } from "../browser/build.mjs";
import { CHROMIUM_ARGS, servePage, startOcto } from "./server.mjs";

const SAFETY = 60_000; // a safety net for waits, never a synchronisation device

let octo, hostile, allowed, context, profile, scratch;

before(async () => {
  const dir = await buildPage();
  hostile = await servePage(dir);
  allowed = await servePage(dir);
  scratch = mkdtempSync(join(tmpdir(), "octo-attack-"));
  // The tool sandbox confines commands' writes to their working dir; the markers that
  // prove a command ran live in `scratch`, so the sandbox lets commands write there.
  octo = await startOcto({
    configToml: `cors_allowed_origins = ["${allowed.origin}"]\n\n[sandbox]\nwritable = ["${scratch}"]\n`,
  });
  profile = mkdtempSync(join(tmpdir(), "octo-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // attacker.example resolves to loopback, as a rebound name would.
    args: [...CHROMIUM_ARGS, "--host-resolver-rules=MAP attacker.example 127.0.0.1"],
    timeout: SAFETY,
  });
  context.setDefaultTimeout(SAFETY);
});

after(async () => {
  await context?.close();
  hostile?.close();
  allowed?.close();
  await octo?.stop();
  for (const dir of [profile, scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens the page at `pageOrigin` talking to `server`, runs its attack, returns the outcome. */
async function attackFrom(pageOrigin, server, marker) {
  const page = await context.newPage();
  page.on("console", (msg) => console.log(`[page] ${msg.text()}`));
  try {
    await page.goto(`${pageOrigin}/?${new URLSearchParams({ server })}`);
    await page.waitForSelector("html[data-ready=true]");
    return await page.evaluate((command) => window.octoPage.attack(command), `id > ${marker}`);
  } finally {
    await page.close();
  }
}

/** The sessions the server holds, asked the way the CLI would (no Origin header). */
function sessionCount() {
  return new Promise((resolve, reject) => {
    get(`${octo.baseUrl}/v1/sessions?pageSize=100`, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk) => (body += chunk));
      res.on("end", () => {
        if (res.statusCode !== 200) reject(new Error(`${res.statusCode} ${body}`));
        else resolve((JSON.parse(body).sessions ?? []).length);
      });
    }).on("error", reject);
  });
}

/** The server's "request refused" log lines with `reason`. */
const refusals = (reason) =>
  octo.log.join("").split("\n").filter((line) => line.includes("request refused") && line.includes(reason));

test("a page on another origin cannot reach the API or run a command", async () => {
  const marker = join(scratch, "hostile");
  const outcome = await attackFrom(hostile.origin, octo.baseUrl, marker);
  console.log("hostile origin:", outcome);

  assert.match(outcome.fetchJson, /^blocked/);
  assert.match(outcome.grpcWeb, /^blocked/);
  assert.equal(outcome.eventSource, "blocked: error");
  assert.equal(outcome.chat, undefined, "no session to chat in");
  // Sent without a preflight: the page cannot tell, the server's state must.
  assert.equal(outcome.fetchTextPlain, "sent (opaque)");
  assert.equal(outcome.formPost, "submitted");
  assert.equal(await sessionCount(), 0);
  assert.equal(existsSync(marker), false, "the command did not run");

  // Each attempt reached the server and was refused there: the two preflights, the
  // text/plain fetch, the EventSource and the form post.
  const refused = refusals("ORIGIN_NOT_ALLOWED");
  assert.ok(refused.length >= 5, refused.join("\n"));
  assert.ok(refused.some((l) => l.includes("method=OPTIONS")), refused.join("\n"));
  assert.ok(refused.some((l) => l.includes(`path="/v1/sessions:watch"`)), refused.join("\n"));
});

test("a rebound host name is refused by the Host check", async () => {
  // A real rebinding switches the name's address between the page load and the call;
  // here it maps to loopback throughout, so the page is on another port of the same
  // name. Either way the call carries `Host: attacker.example:<port>`.
  const port = octo.address.split(":")[1];
  const marker = join(scratch, "rebound");
  const outcome = await attackFrom(
    `http://attacker.example:${hostile.port}`,
    `http://attacker.example:${port}`,
    marker,
  );
  console.log("rebound name:", outcome);
  assert.match(outcome.fetchJson, /^blocked/);
  assert.match(outcome.grpcWeb, /^blocked/);
  assert.equal(outcome.eventSource, "blocked: error");
  assert.equal(await sessionCount(), 0);
  assert.equal(existsSync(marker), false);
  const refused = refusals("HOST_NOT_ALLOWED");
  assert.ok(refused.length >= 5, refused.join("\n"));
  assert.ok(refused.every((l) => l.includes("attacker.example")), refused.join("\n"));
});

test("the same page from an allowed origin works (and so would the drive-by)", async () => {
  const marker = join(scratch, "allowed");
  const outcome = await attackFrom(allowed.origin, octo.baseUrl, marker);
  console.log("allowed origin:", outcome);

  assert.match(outcome.fetchJson, /^200 sessions\//);
  assert.match(outcome.grpcWeb, /^created sessions\//);
  assert.equal(outcome.eventSource, "open");
  assert.equal(outcome.chat, "200 succeeded");
  assert.match(readFileSync(marker, "utf8"), /^uid=/, "the command ran: the attack is real");
  // text/plain bodies are not JSON requests, whatever their origin (415).
  assert.equal(await sessionCount(), 2, "the fetch and the gRPC-Web session only");
});
