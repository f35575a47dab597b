// 1,000 stored sessions: the first paint of the session list is measured (reported, not
// asserted: timings depend on the machine), then paging and server-side search.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { SCREENSHOTS, api, assertServesCurrentDist, launch, screenshot, startOcto } from "./helpers.mjs";

const COUNT = 1000;
let octo, browser;

before(async () => {
  octo = await startOcto();
  await assertServesCurrentDist(octo.baseUrl);
  browser = await launch();
  const octoApi = api(octo.baseUrl);
  for (let i = 0; i < COUNT; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, j) =>
        octoApi.createSession({ displayName: `perf ${String(i + j).padStart(4, "0")}` }),
      ),
    );
  }
});

after(async () => {
  await browser?.close();
  await octo?.stop();
});

test(`first paint of the session list with ${COUNT} stored sessions`, async (t) => {
  const page = await browser.page();
  // Records when the list first holds sessions, and the frame after (its paint).
  await page.addInitScript(() => {
    const observer = new MutationObserver(() => {
      if (document.querySelector(".session-list[data-loaded=true] li")) {
        observer.disconnect();
        const rendered = performance.now();
        requestAnimationFrame(() => {
          window.__listTimes = { rendered, painted: performance.now() };
        });
      }
    });
    observer.observe(document, { childList: true, subtree: true, attributes: true });
  });
  const samples = [];
  for (let run = 0; run < 3; run++) {
    await page.goto(`${octo.baseUrl}/?run=${run}`);
    await page.waitForFunction(() => window.__listTimes);
    samples.push(await page.evaluate(() => window.__listTimes));
  }
  const painted = samples.map((s) => Math.round(s.painted));
  t.diagnostic(`session list first paint after navigation start, ${COUNT} sessions: ${painted.join(", ")} ms`);
  writeFileSync(
    join(SCREENSHOTS, "first-paint.json"),
    JSON.stringify({ sessions: COUNT, firstPaintMs: painted, measured: "navigation start to the frame after the list rendered" }),
  );
  // The first page is shown (100, most recent first), the rest on demand.
  assert.equal(await page.locator(".session-item").count(), 100);
  // Created 50 at a time: the newest batch comes first.
  assert.match(await page.locator(".session-item .title").first().textContent(), /^perf 09[5-9]\d$/);
  await page.getByRole("button", { name: "Load more sessions" }).click();
  await page.waitForFunction(() => document.querySelectorAll(".session-item").length === 200);
  await screenshot(page, "many-sessions");

  // Search asks the server.
  await page.getByLabel("Search sessions").fill("perf 0042");
  await page.waitForFunction(() => document.querySelectorAll(".session-item").length === 1);
  assert.equal(await page.locator(".session-item .title").textContent(), "perf 0042");
  await page.getByLabel("Search sessions").fill("");
  await page.waitForFunction(() => document.querySelectorAll(".session-item").length === 100);
  await page.close();
});
