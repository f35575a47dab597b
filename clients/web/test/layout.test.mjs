// Rendering and layout: markdown and collapsible reasoning; every control has an
// accessible name; at phone width (dark scheme) the chat replaces the list, with a way
// back, and nothing overflows sideways.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { api, assertServesCurrentDist, launch, screenshot, sessionHash, startOcto } from "./helpers.mjs";

const CONFIG = [
  "max_attachment_bytes = 2048",
  "[models.thinker]",
  'provider = "mock"',
  'options = { reasoning = "First look at the files, then answer in a list." }',
  "",
].join("\n");

const MARKDOWN = [
  "Here is the plan:",
  "",
  "1. read `Cargo.toml`",
  "2. list the **tests**",
  "",
  "```sh",
  "cargo test --test ui",
  "```",
  "",
  "| file | lines |",
  "| --- | --- |",
  "| ui.rs | 190 |",
].join("\n");

let octo, browser, octoApi, session;

before(async () => {
  octo = await startOcto({ configToml: CONFIG });
  await assertServesCurrentDist(octo.baseUrl);
  octoApi = api(octo.baseUrl);
  browser = await launch();
  ({ name: session } = await octoApi.createSession({
    displayName: "Tidy the test suite",
    model: "models/thinker",
    permissionMode: "PERMISSION_MODE_AUTO_APPROVE",
  }));
  await octoApi.call("POST", `/v1/${session}/messages`, { parts: [{ text: MARKDOWN }] }).catch(async () => {
    throw new Error("SendMessage over JSON failed");
  });
  await octoApi.createSession({ displayName: "Release notes", permissionMode: "PERMISSION_MODE_ASK" });
});

after(async () => {
  await browser?.close();
  await octo?.stop();
  assert.deepEqual(browser?.errors ?? [], [], "no uncaught errors in the page");
});

/** Controls without an accessible name (label, aria-label or text). */
function unlabelled(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("button, input, select, textarea, a[href]")]
      .filter((el) => el.getClientRects().length > 0)
      .filter((el) => {
        const aria = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
        const labels = "labels" in el && el.labels ? el.labels.length : 0;
        const text = el.tagName === "BUTTON" || el.tagName === "A" ? el.textContent.trim() : "";
        return !aria && !labels && !text;
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

test("markdown renders, reasoning is collapsed until opened, controls are labelled", async () => {
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/${sessionHash(session)}`);
  const reply = page.locator(".message.assistant").last();
  await reply.locator(".markdown table td", { hasText: "ui.rs" }).waitFor();
  assert.equal(await reply.locator(".markdown ol li").count(), 2);
  assert.equal(await reply.locator(".markdown pre code").textContent(), "cargo test --test ui\n");
  assert.equal(await reply.locator(".markdown strong").textContent(), "tests");

  // The code block's Copy button puts exactly its code on the clipboard.
  await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: octo.baseUrl });
  await reply.locator(".markdown .code").getByRole("button", { name: "Copy" }).click();
  await reply.locator(".markdown .code button", { hasText: "Copied" }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "cargo test --test ui\n");

  const reasoning = reply.locator("details.reasoning");
  assert.equal(await reasoning.getAttribute("open"), null, "collapsed at first");
  assert.equal(await reasoning.locator(".plain").isVisible(), false);
  await reasoning.locator("summary").click();
  assert.equal(await reasoning.locator(".plain").textContent(), "First look at the files, then answer in a list.");
  await screenshot(page, "markdown-reasoning");

  await page.getByRole("button", { name: "New session" }).click();
  assert.deepEqual(await unlabelled(page), []);
  await page.goto(`${octo.baseUrl}/#/models`);
  await page.locator("tr[data-model]").first().waitFor();
  await page.getByRole("button", { name: "Add model" }).click();
  assert.deepEqual(await unlabelled(page), []);
  await page.close();
});

test("phone width, dark scheme: the chat replaces the list, with a way back; no sideways overflow", async () => {
  const page = await browser.page();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.goto(octo.baseUrl);
  const item = page.locator(`.session-item a[data-name="${session}"]`);
  await item.waitFor();
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, "rgb(21, 23, 26)", "dark colours");
  await item.click();
  await page.locator(".message.assistant .markdown table").waitFor();
  assert.equal(await page.locator(".sidebar").isVisible(), false, "the list gives way to the chat");
  assert.equal(await page.getByLabel("Message", { exact: true }).isVisible(), true);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, "no horizontal scrolling");
  await screenshot(page, "phone-dark");
  await page.getByRole("link", { name: "Back to sessions" }).click();
  await item.waitFor();
  assert.equal(await page.locator(".sidebar").isVisible(), true);
  await page.close();
});

const PIXEL = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);

test("attachments: an image shows inline, a file as a chip, both stored; too big is a clear error", async () => {
  const { name } = await octoApi.createSession({ displayName: "attachments" });
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/${sessionHash(name)}`);
  await page.locator(".chat-title", { hasText: "attachments" }).waitFor();
  const picker = page.locator("#attach-files");
  await picker.setInputFiles([
    { name: "pixel.png", mimeType: "image/png", buffer: PIXEL },
    { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("remember the milk\n") },
  ]);
  await page.locator(".files li", { hasText: "notes.txt" }).waitFor();
  await page.getByLabel("Message", { exact: true }).fill("see attached");
  await page.getByLabel("Message", { exact: true }).press("Enter");
  const sent = page.locator(".message.user", { hasText: "see attached" });
  await sent.locator("img.attachment-image[alt='pixel.png']").waitFor();
  assert.equal(await sent.locator("img").evaluate((img) => img.naturalWidth), 1, "the image decodes under the CSP");
  assert.match(await sent.locator(".attachment").textContent(), /notes\.txt \(18 B\)/);
  assert.equal(await page.locator(".files").count(), 0, "the composer is cleared");
  const [stored] = (await octoApi.messages(name)).filter((m) => m.role === "ROLE_USER");
  const attachments = stored.parts.filter((p) => p.attachment).map((p) => [p.attachment.filename, p.attachment.mimeType]);
  assert.deepEqual(attachments, [
    ["pixel.png", "image/png"],
    ["notes.txt", "text/plain"],
  ]);

  await picker.setInputFiles([{ name: "big.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(4096) }]);
  await page.getByRole("button", { name: "Send" }).click();
  const problem = page.locator(".composer [role=alert]");
  await problem.waitFor();
  assert.match(await problem.textContent(), /4096 bytes; the limit is 2048/);
  await page.getByRole("button", { name: "Remove big.bin" }).click();
  await page.close();
});

test("a failed turn's error shows in place, also after a reload", async () => {
  const { name } = await octoApi.createSession({ displayName: "errors" });
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/${sessionHash(name)}`);
  await page.locator(".chat-title", { hasText: "errors" }).waitFor();
  await page.getByLabel("Message", { exact: true }).fill("/error the provider exploded");
  await page.getByLabel("Message", { exact: true }).press("Enter");
  const inPlace = page.locator(".message.user [role=alert]", { hasText: "the provider exploded" });
  await inPlace.waitFor();
  await page.reload();
  await inPlace.waitFor();
  await page.close();
});

test("code in a known language is highlighted; unknown languages and raw text stay plain", async () => {
  const { name } = await octoApi.createSession({ displayName: "highlight" });
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/${sessionHash(name)}`);
  await page.locator(".chat-title", { hasText: "highlight" }).waitFor();
  const message = [
    "Code:",
    "",
    "```rust",
    'fn main() { println!("<b>hi</b>"); }',
    "```",
    "",
    "```klingon",
    "Qapla'",
    "```",
  ].join("\n");
  await page.getByLabel("Message", { exact: true }).fill(message);
  await page.getByLabel("Message", { exact: true }).press("Enter");
  const reply = page.locator(".message.assistant .markdown").last();
  const rust = reply.locator("pre code.language-rust");
  await rust.waitFor();
  assert.equal(await rust.locator(".hljs-keyword", { hasText: "fn" }).count(), 1);
  assert.equal(await rust.textContent(), 'fn main() { println!("<b>hi</b>"); }\n', "the code is intact");
  assert.equal(await rust.locator("b").count(), 0, "markup in code stays text");
  const plain = reply.locator("pre code.language-klingon");
  assert.equal(await plain.locator("span").count(), 0);
  assert.equal(await plain.textContent(), "Qapla'\n");
  await page.close();
});
