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
