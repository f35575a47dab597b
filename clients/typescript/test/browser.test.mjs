// The TypeScript client in a real browser: headless Chromium (playwright-core, the
// system's /usr/bin/chromium or $CHROMIUM) opens a page served here, on another origin than
// Octo, so CORS is real. The page streams a chat over gRPC-Web, shows an error's status and
// details, and uses the JSON mapping with fetch and EventSource, resuming with
// Last-Event-ID after the test drops its connection.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { buildPage } from "../browser/build.mjs";
import { CHROMIUM_ARGS, repoRoot, servePage, startOcto } from "./server.mjs";

const TOKEN = "browser-test-token";
const MISSING = "sessions/019a0000-0000-7000-8000-000000000000";
// 24 words: the slow mock model streams one every 60 ms.
const PROMPT = Array.from({ length: 23 }, (_, i) => `word${i}`).join(" ");
const EXPECTED = `Echo: ${PROMPT}`;
const SAFETY = 60_000; // a safety net for waits, never a synchronisation device

const listen = (server) =>
  new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server.address().port)));

let octo, pageServer, proxy, context, page, profile;
const pageOrigin = { value: "" };
const proxied = { requests: [], sockets: new Set() };

before(async () => {
  const dir = await buildPage();

  // The page's origin, served here.
  pageServer = await servePage(dir);
  pageOrigin.value = pageServer.origin;

  // Octo allows exactly the page's origin; `slow` is the mock model with a token delay.
  octo = await startOcto({
    token: TOKEN,
    configToml: [
      `cors_allowed_origins = ["${pageOrigin.value}"]`,
      "[models.slow]",
      'provider = "mock"',
      "options = { token_delay_ms = 60 }",
      "",
    ].join("\n"),
  });

  // A TCP proxy in front of Octo for the EventSource, so the test can drop its connection.
  proxy = createTcpServer((client) => {
    const upstream = connect(Number(octo.address.split(":")[1]), "127.0.0.1");
    proxied.sockets.add(client);
    let head = "";
    client.on("data", (chunk) => {
      if (head !== null) {
        head += chunk.toString("latin1");
        if (head.includes("\r\n\r\n")) {
          proxied.requests.push(head.split("\r\n\r\n")[0]);
          head = null;
        }
      }
    });
    client.pipe(upstream).pipe(client);
    const close = () => {
      proxied.sockets.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  const proxyPort = await listen(proxy);

  profile = mkdtempSync(join(tmpdir(), "octo-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: SAFETY,
  });
  context.setDefaultTimeout(SAFETY);
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => console.log(`[page] ${msg.text()}`));
  page.on("pageerror", (err) => console.log(`[page error] ${err}`));
  const query = new URLSearchParams({
    server: octo.baseUrl,
    token: TOKEN,
    sse: `http://127.0.0.1:${proxyPort}`,
  });
  await page.goto(`${pageOrigin.value}/?${query}`);
  await page.waitForSelector("html[data-ready=true]");
});

after(async () => {
  if (page) {
    const shots = join(repoRoot, "target/clients");
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, "browser.png"), fullPage: true }).catch(() => {});
  }
  await context?.close();
  for (const socket of proxied.sockets) socket.destroy();
  proxy?.close();
  pageServer?.close();
  await octo?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("gRPC-Web chat renders tokens as they arrive", async () => {
  const done = page.evaluate(([prompt]) => window.octoPage.runChat(prompt, "models/slow"), [PROMPT]);
  // Seen from outside the page: some text is rendered while the stream is still open.
  const seen = await page.waitForFunction(() => {
    const text = document.getElementById("output").textContent;
    return document.getElementById("status").textContent === "streaming" && text.length > 0 && text;
  });
  const partial = await seen.jsonValue();
  const result = await done;

  assert.equal(result.text, EXPECTED);
  assert.equal(await page.textContent("#output"), EXPECTED);
  assert.equal(await page.textContent("#status"), "done");
  assert.ok(partial.length < EXPECTED.length && EXPECTED.startsWith(partial), `partial ${partial}`);
  assert.equal(result.updates.length, 24, "one render per token");
  assert.ok(result.updates.length > 1);
  result.updates.forEach((u, i) => i && assert.ok(u.startsWith(result.updates[i - 1]) && u.length > result.updates[i - 1].length));
});

test("an error's status and details reach the page", async () => {
  const shown = await page.evaluate(() => window.octoPage.runError());
  assert.equal(shown.codeName, "NotFound");
  assert.equal(shown.code, 5);
  assert.equal(shown.reason, "SESSION_NOT_FOUND");
  assert.equal(shown.domain, "octo.v1");
  assert.equal(shown.resourceType, "octo.v1.Session");
  assert.equal(shown.resourceName, MISSING);
  assert.match(await page.textContent("#error"), /NotFound \(5\) SESSION_NOT_FOUND: octo\.v1\.Session sessions\//);
});

test("JSON mapping: fetch, EventSource and a resume with Last-Event-ID", async () => {
  const done = page.evaluate(([prompt]) => window.octoPage.runJson(prompt, "models/slow"), [PROMPT]);
  // Drop the EventSource's connection once a few tokens arrived, mid-turn.
  await page.waitForFunction(() => window.octoPage.sse.deltas >= 2);
  const before = proxied.requests.length;
  for (const socket of proxied.sockets) socket.destroy();
  const result = await done;

  // fetch: a unary call and an error as google.rpc.Status JSON.
  assert.ok(result.session.startsWith("sessions/"));
  assert.equal(result.errorStatus, 404);
  assert.equal(result.errorBody.code, 5);
  assert.deepEqual(
    result.errorBody.details.map((d) => d["@type"]),
    ["type.googleapis.com/google.rpc.ErrorInfo", "type.googleapis.com/google.rpc.ResourceInfo"],
  );

  // EventSource: reconnected by itself, sending the last id it saw; nothing lost or repeated.
  assert.equal(result.opens, 2);
  assert.ok(result.errors >= 1);
  assert.equal(before, 1);
  assert.equal(proxied.requests.length, 2);
  const lastEventId = /^last-event-id:\s*(\S+)/im.exec(proxied.requests[1]);
  assert.ok(lastEventId, `no Last-Event-ID in\n${proxied.requests[1]}`);
  assert.equal(lastEventId[1], result.lastIdAtError);
  assert.ok(result.deltasPerConnection[0] >= 2 && result.deltasPerConnection[1] >= 1, String(result.deltasPerConnection));
  assert.equal(result.text, EXPECTED);
  assert.equal(await page.textContent("#sse-output"), EXPECTED);
  for (let i = 1; i < result.ids.length; i++) assert.ok(result.ids[i] > result.ids[i - 1], `ids ${result.ids}`);
});
