// Shared by the web UI's browser tests: a live `octo serve --demo` (the helpers of
// clients/typescript/test/server.mjs), headless Chromium through playwright-core, the
// JSON API for setting up and checking from outside the page, and screenshots.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

import { CHROMIUM_ARGS, repoRoot, startOcto } from "../../typescript/test/server.mjs";

export { repoRoot, startOcto };

/** A safety net for waits, never a synchronisation device. */
export const SAFETY = 60_000;

export const SCREENSHOTS = join(repoRoot, "target/ui-screenshots");

/** Launches Chromium with a fresh profile; `close()` removes it. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), "octo-web-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(SAFETY);
  const errors = [];
  context.on("weberror", (e) => errors.push(String(e.error())));
  return {
    context,
    errors,
    async page() {
      const page = await context.newPage();
      page.on("pageerror", (e) => errors.push(String(e)));
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Fails when the running binary embeds another UI than clients/web/dist (rebuild it). */
export async function assertServesCurrentDist(baseUrl) {
  const served = await (await fetch(`${baseUrl}/`)).text();
  const built = readFileSync(join(repoRoot, "clients/web/dist/index.html"), "utf8");
  assert.equal(served, built, "octo serves another UI than clients/web/dist: rebuild octo (cargo build)");
}

/** The JSON/HTTP API of Octo, from outside the browser. */
export function api(baseUrl, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const call = async (method, path, body) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    createSession: (session) => call("POST", "/v1/sessions", session),
    messages: async (session) => (await call("GET", `/v1/${session}/messages?pageSize=500`)).messages ?? [],
    /** The text of the newest assistant message. */
    async lastReply(session) {
      const reply = (await this.messages(session)).find((m) => m.role === "ROLE_ASSISTANT");
      return (reply?.parts ?? []).map((p) => p.text ?? "").join("");
    },
    call,
  };
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** `#/s/<id>` of a session name. */
export const sessionHash = (name) => `#/s/${name.split("/").pop()}`;

/**
 * A TCP proxy in front of Octo that the test controls: `drop()` closes every open
 * connection, `hold()` makes new ones wait until `release()`. Serve the page through it
 * (its origin is `origin`) and every call of the page goes through it too.
 */
export async function startProxy(octoAddress) {
  const { connect, createServer } = await import("node:net");
  const port = Number(octoAddress.split(":").pop());
  const pairs = new Set();
  let held = null;
  const server = createServer(async (client) => {
    client.pause();
    if (held) await held.promise;
    const upstream = connect(port, "127.0.0.1");
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    client.resume();
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  const proxyPort = await new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server.address().port)));
  return {
    origin: `http://127.0.0.1:${proxyPort}`,
    hold() {
      let release;
      const promise = new Promise((ok) => (release = ok));
      held = { promise, release };
    },
    release() {
      held?.release();
      held = null;
    },
    drop() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
    },
    close() {
      this.release();
      this.drop();
      server.close();
    },
  };
}

/** Re-checks a condition on the server every 50 ms until it holds (SAFETY at most). */
export async function until(condition) {
  const deadline = Date.now() + SAFETY;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((ok) => setTimeout(ok, 50));
  }
}
