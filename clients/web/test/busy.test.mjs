// While a turn runs: queue (with the visible queue), stop (CancelTurn), interrupt and
// steer from the composer; and a resume point the server no longer retains, which must
// make the page reload history (stream_reset) and still end with the exact text.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  api,
  assertServesCurrentDist,
  launch,
  screenshot,
  sessionHash,
  startOcto,
  startProxy,
  until,
} from "./helpers.mjs";

// A slow mock model, and the smallest event log a server keeps (16 events per session).
const CONFIG = [
  "event_log_capacity = 16",
  "[models.slow]",
  'provider = "mock"',
  "options = { token_delay_ms = 40 }",
  "",
].join("\n");

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

const words = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(" ");

async function openSession(page, title, origin = octo.baseUrl) {
  const { name } = await octoApi.createSession({ displayName: title, model: "models/slow" });
  await page.goto(`${origin}/${sessionHash(name)}`);
  await page.locator(".chat-title", { hasText: title }).waitFor();
  await page.locator(".messages[data-resets]").waitFor();
  return name;
}

async function send(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByLabel("Message", { exact: true }).press("Enter");
}

async function turns(session) {
  const { turns = [] } = await octoApi.call("GET", `/v1/${session}/turns?pageSize=50`);
  return turns.map((t) => t.status).reverse();
}

test("queue while a turn runs, see the queue, stop the running turn: the queued one runs", async () => {
  const page = await browser.page();
  const session = await openSession(page, "queue and stop");
  await send(page, words("a", 200));
  await page.locator(".message.assistant .text", { hasText: "a3" }).waitFor();

  const policy = page.getByLabel("While a turn runs");
  assert.equal(await policy.inputValue(), "1", "queue is the default");
  await send(page, "queued one");
  await page.locator(".queue", { hasText: "1 queued" }).waitFor();
  await screenshot(page, "busy-queue");

  await page.getByRole("button", { name: "Stop" }).click();
  await page.locator(".message.assistant .text", { hasText: "Echo: queued one" }).waitFor();
  await page.locator(".queue").waitFor({ state: "detached" });
  await until(async () => (await octoApi.call("GET", `/v1/${session}`)).status === "SESSION_STATUS_IDLE");
  const statuses = await turns(session);
  assert.deepEqual(statuses.slice(-2), ["TURN_STATUS_CANCELLED", "TURN_STATUS_SUCCEEDED"], statuses.join());
  await page.close();
});

test("clear queue cancels the waiting turns, the running one goes on", async () => {
  const page = await browser.page();
  const session = await openSession(page, "clear queue");
  await send(page, words("c", 60));
  await page.locator(".message.assistant .text", { hasText: "c3" }).waitFor();
  await send(page, "waiting 1");
  await page.locator(".queue", { hasText: "1 queued" }).waitFor();
  await page.getByRole("button", { name: "Clear queue" }).click();
  await page.locator(".queue").waitFor({ state: "detached" });
  await page.locator(".message.assistant[data-streaming=false] .text", { hasText: "c59" }).waitFor();
  await until(async () => (await octoApi.call("GET", `/v1/${session}`)).status === "SESSION_STATUS_IDLE");
  const statuses = await turns(session);
  assert.deepEqual(statuses.slice(-2), ["TURN_STATUS_SUCCEEDED", "TURN_STATUS_CANCELLED"], statuses.join());
  await page.close();
});

test("interrupt cancels the running turn and runs the new message at once", async () => {
  const page = await browser.page();
  const session = await openSession(page, "interrupt");
  await send(page, words("i", 200));
  await page.locator(".message.assistant .text", { hasText: "i3" }).waitFor();
  await page.getByLabel("While a turn runs").selectOption({ label: "Interrupt" });
  await send(page, "right now");
  await page.locator(".message.assistant .text", { hasText: "Echo: right now" }).waitFor();
  await until(async () => (await octoApi.call("GET", `/v1/${session}`)).status === "SESSION_STATUS_IDLE");
  const statuses = await turns(session);
  assert.deepEqual(statuses.slice(-2), ["TURN_STATUS_CANCELLED", "TURN_STATUS_SUCCEEDED"], statuses.join());
  await page.close();
});

test("steer adds the message to the running turn (no new turn)", async () => {
  const page = await browser.page();
  const session = await openSession(page, "steer");
  await send(page, words("s", 60));
  await page.locator(".message.assistant .text", { hasText: "s3" }).waitFor();
  await page.getByLabel("While a turn runs").selectOption({ label: "Steer" });
  await send(page, "steered in");
  await page.locator(".message.user", { hasText: "steered in" }).waitFor();
  await until(async () => (await octoApi.call("GET", `/v1/${session}`)).status === "SESSION_STATUS_IDLE");
  assert.deepEqual(await turns(session), ["TURN_STATUS_SUCCEEDED"], "one turn only");
  const messages = await octoApi.messages(session);
  const steered = messages.find((m) => m.parts?.[0]?.text === "steered in");
  assert.ok(steered, "the steered message is stored");
  assert.equal(steered.turn, messages.find((m) => m.role === "ROLE_ASSISTANT").turn);
  await page.close();
});

test("a resume point no longer retained makes the page reload history: exact text, no gap", async () => {
  const proxy = await startProxy(octo.address);
  const page = await browser.page();
  const session = await openSession(page, "reset", proxy.origin);
  const text = words("r", 80);
  await send(page, text);
  await page.locator(".message.assistant .text", { hasText: "r3" }).waitFor();
  proxy.hold();
  proxy.drop();
  await page.locator(".conn[data-state=reconnecting]").waitFor();
  // Far more than 16 events pass while the page is away.
  await until(async () => (await octoApi.call("GET", `/v1/${session}`)).status === "SESSION_STATUS_IDLE");
  proxy.release();
  await page.locator(".messages[data-resets='1']").waitFor();
  await page.locator(".message.assistant[data-streaming=false] .text", { hasText: "r79" }).waitFor();
  const shown = (await page.locator(".message.assistant .text").last().textContent()).trim();
  assert.equal(shown, `Echo: ${text}`);
  assert.equal(await octoApi.lastReply(session), `Echo: ${text}`);
  assert.equal(await page.locator(".message.assistant").count(), 1, "one reply, not two");
  assert.equal(await page.locator(".message.user").count(), 1);
  await page.close();
  proxy.close();
});

test("a model for one message only: the turn runs on it, the session keeps its own", async () => {
  const page = await browser.page();
  const { name: session } = await octoApi.createSession({ displayName: "override" });
  await page.goto(`${octo.baseUrl}/${sessionHash(session)}`);
  await page.locator(".chat-title", { hasText: "override" }).waitFor();
  await page.getByLabel("Model for this turn").selectOption("models/slow");
  await send(page, "on the slow one");
  await page.locator(".message.assistant[data-streaming=false] .text", { hasText: "Echo: on the slow one" }).waitFor();
  const { turns: [turn] } = await octoApi.call("GET", `/v1/${session}/turns`);
  assert.equal(turn.model, "models/slow");
  assert.equal((await octoApi.call("GET", `/v1/${session}`)).model ?? "", "");
  await page.close();
});

test("history pages upward: scrolling to the top loads older messages, in order, once each", async () => {
  const { name: session } = await octoApi.createSession({ displayName: "long history" });
  for (let i = 0; i < 35; i++) {
    // The :chat stream ends with its turn, so turns run one after another.
    const response = await fetch(`${octo.baseUrl}/v1/${session}:chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ parts: [{ text: `m${i}` }] }),
    });
    assert.match(await response.text(), /turnFinished/);
  }
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/${sessionHash(session)}`);
  await page.locator(".message.assistant .text", { hasText: "Echo: m34" }).waitFor();
  assert.equal(await page.locator(".message").count(), 50, "one page of 50 first");
  await page.getByRole("button", { name: "Load older messages" }).waitFor();

  await page.locator(".messages").evaluate((el) => (el.scrollTop = 0));
  await page.waitForFunction(() => document.querySelectorAll(".message").length === 70);
  const users = await page.locator(".message.user").allTextContents();
  assert.deepEqual(
    users,
    Array.from({ length: 35 }, (_, i) => `m${i}`),
    "every message once, oldest first",
  );
  assert.ok(
    (await page.locator(".messages").evaluate((el) => el.scrollTop)) > 100,
    "the view stays on what was on screen instead of jumping to the new top",
  );
  assert.equal(await page.getByRole("button", { name: "Load older messages" }).count(), 0);
  await page.close();
});

test("moving between sessions ends the streams left behind (no leak of connections)", async () => {
  /** The server's open streams of one method (octo_open_streams). */
  const open = async (method) => {
    const text = await (await fetch(`${octo.baseUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`octo_open_streams{method="octo.v1.${method}"}`));
    return line ? Number(line.split(" ").pop()) : 0;
  };
  const names = [];
  for (const title of ["hop 1", "hop 2", "hop 3"]) names.push((await octoApi.createSession({ displayName: title })).name);
  const page = await browser.page();
  for (const [i, name] of names.entries()) {
    await page.goto(`${octo.baseUrl}/${sessionHash(name)}`);
    await page.locator(".chat-title", { hasText: `hop ${i + 1}` }).waitFor();
    await page.locator(".conn[data-state=online]").waitFor();
  }
  // In-page navigation (hash routes) too: each chat view ends its stream on leaving.
  for (const name of [...names, names[0]]) {
    await page.locator(`.session-item a[data-name="${name}"]`).click();
    await page.locator(".messages[data-resets]").waitFor();
  }
  await until(async () => (await open("ChatService/StreamEvents")) === 1);
  await until(async () => (await open("SessionService/WatchSessions")) === 1);
  await page.close();
  await until(async () => (await open("ChatService/StreamEvents")) === 0);
  await until(async () => (await open("SessionService/WatchSessions")) === 0);
});
