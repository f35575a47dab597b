// The web UI in headless Chromium against a live `octo serve --demo`, served by Octo
// itself (same origin, the real CSP): create a session and stream a reply, tool calls
// under ASK with Allow / Deny in two tabs, the model's questions answered with a choice
// and with text, a dropped connection mid-turn, untrusted
// markdown, rename / pin / delete, and the models page.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { after, before, test } from "node:test";

import {
  SAFETY,
  api,
  assertServesCurrentDist,
  launch,
  screenshot,
  sessionHash,
  startOcto,
  startProxy,
  until,
} from "./helpers.mjs";

// `slow` is the mock model streaming one word every 40 ms: a turn spans many frames.
const CONFIG = ['[models.slow]', 'provider = "mock"', "options = { token_delay_ms = 40 }", ""].join("\n");

let octo, browser, octoApi;

before(async () => {
  octo = await startOcto({ configToml: CONFIG });
  await assertServesCurrentDist(octo.baseUrl);
  octoApi = api(octo.baseUrl);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await octo?.stop();
  assert.deepEqual(browser?.errors ?? [], [], "no uncaught errors in the page");
});

/** Samples the newest assistant message's text on every animation frame until it ends. */
function sampleReply(page) {
  return page.evaluate(
    (safety) =>
      new Promise((resolve, reject) => {
        const samples = [];
        const states = new Set();
        const started = performance.now();
        const tick = () => {
          const replies = document.querySelectorAll(".message.assistant");
          const last = replies[replies.length - 1];
          const text = last?.querySelector(".text")?.textContent ?? "";
          if (text && samples[samples.length - 1] !== text) samples.push(text);
          states.add(document.querySelector(".conn")?.getAttribute("data-state"));
          if (last && last.getAttribute("data-streaming") === "false" && text) {
            resolve({ samples, states: [...states] });
          } else if (performance.now() - started > safety) {
            reject(new Error(`reply did not finish: ${JSON.stringify(samples.slice(-3))}`));
          } else requestAnimationFrame(tick);
        };
        tick();
      }),
    SAFETY,
  );
}

async function newSession(page, { title, model = "", mode = "1" }) {
  await page.getByRole("button", { name: "New session" }).click();
  await page.getByLabel("Title").fill(title);
  if (model) await page.getByLabel("Model").selectOption(model);
  await page.getByLabel("Permissions").selectOption(mode);
  await page.getByRole("button", { name: "Create" }).click();
  await page.waitForFunction(() => location.hash.startsWith("#/s/"));
  const id = await page.evaluate(() => location.hash.slice(4));
  await page.locator(`.session-item a[data-name="sessions/${id}"]`).waitFor();
  return `sessions/${id}`;
}

async function send(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByLabel("Message", { exact: true }).press("Enter");
}

test("create a session, send a message: the reply streams in and matches the stored one", async () => {
  const page = await browser.page();
  await page.goto(octo.baseUrl);
  await page.locator(".session-list[data-loaded=true]").waitFor({ state: "attached" });
  const session = await newSession(page, { title: "streaming", model: "models/slow" });
  await page.locator(".chat-title", { hasText: "streaming" }).waitFor();

  const words = Array.from({ length: 30 }, (_, i) => `w${i}`).join(" ");
  const sampling = page.waitForSelector(".message.assistant").then(() => sampleReply(page));
  await send(page, words);
  const { samples } = await sampling;
  const stored = await octoApi.lastReply(session);
  assert.equal(stored, `Echo: ${words}`);
  assert.equal(samples[samples.length - 1].trim(), stored.trim(), "the finished text is the stored text");
  assert.ok(samples.length >= 5, `several paints before the end, got ${samples.length}`);
  for (let i = 1; i < samples.length; i++) {
    assert.ok(samples[i].startsWith(samples[i - 1].trim()), `text only grows: ${samples[i - 1]} -> ${samples[i]}`);
  }
  // The composer is empty again and the user's message is shown as sent.
  assert.equal(await page.getByLabel("Message", { exact: true }).inputValue(), "");
  await page.locator(".message.user", { hasText: words }).waitFor();
  await screenshot(page, "chat");
  await page.close();
});

test("files a tool writes show on its card with their diff", async () => {
  const page = await browser.page();
  await page.goto(octo.baseUrl);
  await newSession(page, { title: "files", mode: "2" });
  const name = `notes-${Date.now()}.txt`;
  await send(page, `/tool write_file ${JSON.stringify({ path: name, content: "hello\nworld\n" })}`);
  const created = page.locator(".tool-card").last().locator(`.file-change[data-path="${name}"]`);
  await created.waitFor();
  assert.equal(await created.getAttribute("data-kind"), "created");
  await created.locator("summary").click();
  assert.match(await created.locator(".diff").textContent(), /\+hello\n\+world/);
  assert.equal(await created.locator(".diff .add").count() >= 2, true);

  await send(page, `/tool write_file ${JSON.stringify({ path: name, content: "hello\nthere\n" })}`);
  const modified = page.locator(".tool-card").nth(1).locator(`.file-change[data-path="${name}"]`);
  await modified.waitFor();
  assert.equal(await modified.getAttribute("data-kind"), "modified");
  await modified.locator("summary").click();
  const diff = await modified.locator(".diff").textContent();
  assert.match(diff, /-world/);
  assert.match(diff, /\+there/);
  await screenshot(page, "file-changes");
  await page.close();
});

test("tool calls in ASK mode: the card asks, a second tab sees it, Allow streams output, Deny refuses", async () => {
  const page = await browser.page();
  await page.goto(octo.baseUrl);
  const session = await newSession(page, { title: "tools", mode: "1" });
  const command = "for i in 1 2 3; do echo line-$i; sleep 0.3; done";
  await send(page, `/tool shell ${JSON.stringify({ command })}`);
  const card = page.locator(".tool-card").last();
  await card.getByRole("button", { name: "Allow", exact: true }).waitFor();
  assert.match(await card.locator(".tool-args").textContent(), /line-\$i/);
  assert.equal(await card.locator(".tool-status").textContent(), "awaiting approval");

  // A second tab opened now gets the pending confirmation from the snapshot.
  const other = await browser.page();
  await other.goto(`${octo.baseUrl}/${sessionHash(session)}`);
  await other.locator(".tool-card").getByRole("button", { name: "Allow", exact: true }).waitFor();
  await other.locator(".session-item a .badge", { hasText: "needs approval" }).waitFor();
  await screenshot(page, "tool-confirmation");

  // Allow: the output streams in (seen growing), then exit code 0.
  const outputs = card.evaluate(
    (el, safety) =>
      new Promise((resolve, reject) => {
        const seen = [];
        const started = performance.now();
        const tick = () => {
          const text = el.querySelector(".tool-output")?.textContent ?? "";
          if (text && seen[seen.length - 1] !== text) seen.push(text);
          if (el.querySelector(".exit-code")) resolve(seen);
          else if (performance.now() - started > safety) reject(new Error(`no exit code: ${seen}`));
          else requestAnimationFrame(tick);
        };
        tick();
      }),
    SAFETY,
  );
  await card.getByRole("button", { name: "Allow", exact: true }).click();
  const seen = await outputs;
  assert.equal(seen[seen.length - 1], "line-1\nline-2\nline-3\n");
  assert.ok(seen.length >= 2, `output streamed in parts: ${JSON.stringify(seen)}`);
  assert.equal(await card.locator(".exit-code").textContent(), "exit 0");
  // The other tab's buttons go away and it shows the same output.
  await other.locator(".tool-card .tool-output", { hasText: "line-3" }).waitFor();
  assert.equal(await other.locator(".tool-card .confirm").count(), 0);
  await page.locator(".message.assistant .text", { hasText: "Tool shell returned: line-1" }).waitFor();

  // Deny: the call is refused and the model is told so.
  await send(page, `/tool shell ${JSON.stringify({ command: "echo never-run" })}`);
  const denied = page.locator(".tool-card").last();
  await denied.getByRole("button", { name: "Deny" }).click();
  await denied.locator(".tool-status", { hasText: "denied" }).waitFor();
  await page.locator(".message.assistant .text", { hasText: "the user denied this tool call" }).waitFor();
  assert.doesNotMatch(await denied.textContent(), /never-run\n/);
  await other.locator(".tool-card .tool-status", { hasText: "denied" }).waitFor();

  // Always allow: this call runs, and the next shell call asks no more.
  await send(page, `/tool shell ${JSON.stringify({ command: "echo always-1" })}`);
  await page.locator(".tool-card").last().getByRole("button", { name: "Always allow shell" }).click();
  await page.locator(".tool-card .tool-output", { hasText: "always-1" }).waitFor();
  await page.locator(".message.assistant .text", { hasText: "Tool shell returned: always-1" }).waitFor();
  await send(page, `/tool shell ${JSON.stringify({ command: "echo always-2" })}`);
  await page.locator(".message.assistant .text", { hasText: "Tool shell returned: always-2" }).waitFor();
  assert.equal(await page.locator(".tool-card .confirm").count(), 0, "not asked again");
  await other.close();
  await page.close();
});

test("the model asks: choices as buttons, a second tab sees the question, the answer reaches the model", async () => {
  const page = await browser.page();
  await page.goto(octo.baseUrl);
  const session = await newSession(page, { title: "questions", mode: "1" });
  await send(page, "/ask Which language? | Rust | Go");
  const ask = page.locator(".tool-card").last().getByRole("group", { name: "Answer the question" });
  await ask.getByRole("button", { name: "Go", exact: true }).waitFor();
  assert.equal(await ask.locator(".question").textContent(), "Which language?");
  assert.equal(await ask.getByLabel("Your answer").count(), 0, "choices only: no free text");
  assert.equal(await page.locator(".tool-card").last().getByRole("button", { name: "Allow" }).count(), 0);

  // A second tab opened now gets the question from the snapshot.
  const other = await browser.page();
  await other.goto(`${octo.baseUrl}/${sessionHash(session)}`);
  await other.locator(".tool-card").getByRole("button", { name: "Rust", exact: true }).waitFor();
  await other.locator(".session-item a .badge", { hasText: "asks you" }).waitFor();

  await ask.getByRole("button", { name: "Go", exact: true }).click();
  await page.locator(".message.assistant .text", { hasText: "Tool ask_user returned: Go" }).waitFor();
  await other.locator(".message.assistant .text", { hasText: "Tool ask_user returned: Go" }).waitFor();
  assert.equal(await other.locator(".tool-card .ask").count(), 0, "answered: gone in the other tab too");

  // An open question takes typed text.
  await send(page, "/ask Your name?");
  const open = page.locator(".tool-card").last().getByRole("group", { name: "Answer the question" });
  await open.getByLabel("Your answer").fill("Ada Lovelace");
  await open.getByRole("button", { name: "Answer", exact: true }).click();
  await page.locator(".message.assistant .text", { hasText: "Tool ask_user returned: Ada Lovelace" }).waitFor();
  assert.equal(await octoApi.lastReply(session), "Tool ask_user returned: Ada Lovelace");
  await other.close();
  await page.close();
});

test("a connection dropped mid-turn resumes: the text has no duplicate and no gap", async () => {
  const proxy = await startProxy(octo.address);
  const { name: session } = await octoApi.createSession({ displayName: "dropped", model: "models/slow" });
  const page = await browser.page();
  await page.goto(`${proxy.origin}/${sessionHash(session)}`);
  await page.locator(".chat-title", { hasText: "dropped" }).waitFor();
  await page.locator(".conn[data-state=online]").waitFor();

  const words = Array.from({ length: 60 }, (_, i) => `d${i}`).join(" ");
  await send(page, words);
  // Some text has arrived: drop every connection and hold new ones until the turn has
  // finished on the server, so the page must catch up on what it missed.
  await page.locator(".message.assistant .text", { hasText: "d5" }).waitFor();
  proxy.hold();
  proxy.drop();
  await page.locator(".conn[data-state=reconnecting]").waitFor();
  const partial = await page.locator(".message.assistant .text").last().textContent();
  assert.ok(!partial.includes("d59"), "dropped before the end");
  await until(async () => (await octoApi.call("GET", `/v1/${session}`)).status === "SESSION_STATUS_IDLE");
  proxy.release();
  await page.locator(".message.assistant[data-streaming=false] .text", { hasText: "d59" }).waitFor();
  const shown = (await page.locator(".message.assistant .text").last().textContent()).trim();
  const stored = await octoApi.lastReply(session);
  assert.equal(stored, `Echo: ${words}`);
  assert.equal(shown, stored.trim(), "no duplicate, no gap");
  assert.equal(await page.locator(".messages").getAttribute("data-resets"), "0", "resumed, not reloaded");
  await page.locator(".conn[data-state=online]").waitFor();
  await page.close();
  proxy.close();
});

test("untrusted markdown renders inert: raw HTML is text, javascript: links lose their href", async () => {
  const page = await browser.page();
  await page.goto(octo.baseUrl);
  await newSession(page, { title: "hostile" });
  await page.evaluate(() => {
    window.__pwned = 0;
  });
  const hostile = `look <img src=x onerror="window.__pwned=1"> and [click me](javascript:window.__pwned=2) <script>window.__pwned=3</script> **bold**`;
  await send(page, hostile);
  const reply = page.locator(".message.assistant .markdown").last();
  await reply.locator("strong", { hasText: "bold" }).waitFor();
  assert.equal(await page.locator(".messages img").count(), 0, "no <img> element");
  assert.equal(await page.locator(".messages script").count(), 0, "no <script> element");
  assert.match(await reply.textContent(), /<img src=x onerror="window.__pwned=1">/, "the tag shows as text");
  const link = reply.locator("a", { hasText: "click me" });
  assert.equal(await link.getAttribute("href"), null, "javascript: href removed");
  await link.click();
  assert.equal(await page.evaluate(() => window.__pwned), 0);
  assert.equal(await page.locator("[onerror], [onclick], [onload]").count(), 0);
  await page.close();
});

test("rename, pin and delete a session from the chat header; the sidebar follows live", async () => {
  const page = await browser.page();
  await page.goto(octo.baseUrl);
  const session = await newSession(page, { title: "to rename" });
  const item = page.locator(`.session-item a[data-name="${session}"]`);
  await page.getByRole("button", { name: "Rename" }).click();
  await page.getByLabel("Session title").fill("renamed");
  await page.getByRole("button", { name: "Save" }).click();
  await item.locator(".title", { hasText: "renamed" }).waitFor();
  assert.equal((await octoApi.call("GET", `/v1/${session}`)).displayName, "renamed");

  await page.getByRole("button", { name: "Pin" }).click();
  await item.locator(".pin").waitFor();
  assert.equal((await octoApi.call("GET", `/v1/${session}`)).pinned, true);
  assert.equal(
    await page.locator(".session-item a").first().getAttribute("data-name"),
    session,
    "pinned sessions come first",
  );

  // A session created elsewhere appears without a reload (WatchSessions).
  const { name: outside } = await octoApi.createSession({ displayName: "made elsewhere" });
  await page.locator(`.session-item a[data-name="${outside}"]`).waitFor();
  await screenshot(page, "sessions");

  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await item.waitFor({ state: "detached" });
  // Delete moves it to the trash: still readable, with its delete time.
  assert.ok((await octoApi.call("GET", `/v1/${session}`)).deleteTime, "in the trash");
  await page.close();
});

test("models page: list, test (ok and failed), add from a preset; keys never reach the DOM", async () => {
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/#/models`);
  const mock = page.locator('tr[data-model="models/mock"]');
  await mock.waitFor();
  await mock.getByRole("button", { name: "Test" }).click();
  await mock.locator(".test-result .ok").waitFor();

  // A closed port plays a provider that is down.
  const closed = createServer();
  const deadPort = await new Promise((ok) => closed.listen(0, "127.0.0.1", () => ok(closed.address().port)));
  closed.close();
  const secret = "sk-test-DO-NOT-SHOW-0123456789";
  await page.getByRole("button", { name: "Add model" }).click();
  await page.getByLabel("Provider preset").selectOption({ label: "OpenAI" });
  await page.getByLabel("Id", { exact: true }).fill("fake");
  await page.getByLabel("Base URL").fill(`http://127.0.0.1:${deadPort}/v1`);
  await page.getByLabel(/API key environment variable/).fill("");
  await page.getByLabel(/API key \(stored/).fill(secret);
  await page.getByRole("button", { name: "Add", exact: true }).click();
  const fake = page.locator('tr[data-model="models/fake"]');
  await fake.waitFor();
  assert.match(await fake.locator(".key").textContent(), /\*\*\*\*/);
  await fake.getByRole("button", { name: "Test" }).click();
  await fake.locator(".test-result .error").waitFor();
  await screenshot(page, "models");
  const html = await page.content();
  assert.ok(!html.includes(secret) && !html.includes("0123456789"), "the key is not in the DOM");

  // Benchmark all: each model's time to first token streams into its row.
  await page.getByRole("button", { name: "Benchmark all" }).click();
  await mock.locator(".bench-result .ok").waitFor();
  await page.locator('tr[data-model="models/slow"] .bench-result .ok').waitFor();
  await fake.locator(".bench-result .error").waitFor();

  await fake.getByRole("button", { name: "Delete" }).click();
  await fake.getByRole("button", { name: "Yes, delete" }).click();
  await fake.waitFor({ state: "detached" });
  await page.close();
});

test("fork from a message, export to a file and import it back", async () => {
  const { name: session } = await octoApi.createSession({ displayName: "original" });
  await octoApi.call("POST", `/v1/${session}/messages`, { parts: [{ text: "first question" }] });
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/${sessionHash(session)}`);
  await page.locator(".message.assistant .text", { hasText: "Echo: first question" }).waitFor();
  await send(page, "second question");
  await page.locator(".message.assistant[data-streaming=false] .text", { hasText: "Echo: second question" }).waitFor();

  // Fork at the first reply: the new session holds the history up to it only.
  await page.locator(".message.assistant").first().getByRole("button", { name: "Fork from here" }).click();
  await page.locator(".chat-title", { hasText: "original (fork)" }).waitFor();
  await page.locator(".message.assistant .text", { hasText: "Echo: first question" }).waitFor();
  assert.equal(await page.locator(".message").count(), 2);
  const forked = `sessions/${await page.evaluate(() => location.hash.slice(4))}`;
  assert.notEqual(forked, session);
  assert.equal((await octoApi.messages(forked)).length, 2);

  // Export the original: a JSON download holding its four messages.
  await page.goto(`${octo.baseUrl}/${sessionHash(session)}`);
  await page.locator(".message.assistant .text", { hasText: "Echo: second question" }).waitFor();
  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Export" }).click();
  const file = await (await download).path();
  const archive = JSON.parse(readFileSync(file, "utf8"));
  assert.equal(archive.session.displayName, "original");
  assert.equal(archive.messages.length, 4);

  // Import it: a new session with the same history.
  await page.getByLabel("Import a session (.json)").setInputFiles(file);
  await page.waitForFunction((old) => location.hash.startsWith("#/s/") && !location.hash.endsWith(old), session.split("/")[1]);
  const imported = `sessions/${await page.evaluate(() => location.hash.slice(4))}`;
  await page.locator(".message.assistant .text", { hasText: "Echo: second question" }).waitFor();
  assert.equal(await page.locator(".message").count(), 4);
  assert.equal((await octoApi.messages(imported)).length, 4);
  await page.locator(`.session-item a[data-name="${imported}"]`).waitFor();
  await page.close();
});
