// A server that requires a token: the UI asks for it, says clearly when it is wrong,
// keeps the right one in localStorage (this origin only) and uses it after a reload.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { api, assertServesCurrentDist, launch, screenshot, startOcto } from "./helpers.mjs";

const TOKEN = "web-ui-test-token";
let octo, browser;

before(async () => {
  octo = await startOcto({ token: TOKEN });
  await assertServesCurrentDist(octo.baseUrl).catch(async () => {
    // The page itself needs no token (it holds no data); only the API does.
    throw new Error("index.html should be served without a token");
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await octo?.stop();
});

test("the UI asks for the token, refuses a wrong one clearly, keeps the right one", async () => {
  await api(octo.baseUrl, TOKEN).createSession({ displayName: "behind a token" });
  const page = await browser.page();
  await page.goto(octo.baseUrl);
  const input = page.getByLabel("Access token");
  await input.waitFor();
  assert.match(await page.locator("#token-message").textContent(), /requires a token/);

  await input.fill("not-the-token");
  await page.getByRole("button", { name: "Connect" }).click();
  const message = page.locator("#token-message", { hasText: "refused this token" });
  await message.waitFor();
  assert.equal(await message.getAttribute("role"), "alert");
  await screenshot(page, "token");
  assert.equal(await page.locator(".session-item").count(), 0, "no data without the right token");

  await page.getByLabel("Access token").fill(TOKEN);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.locator(".session-item", { hasText: "behind a token" }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem("octo.token")), TOKEN);

  await page.reload();
  await page.locator(".session-item", { hasText: "behind a token" }).waitFor();
  assert.equal(await page.getByLabel("Access token").count(), 0);

  // Signing out forgets it.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Access token").waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem("octo.token")), null);
  await page.close();
});
