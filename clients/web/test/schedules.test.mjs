// The schedules page: create one with a cron and a time zone (a bad cron is a clear
// error), see its next run, run it now and follow its history to the session it made,
// disable it, delete it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { api, assertServesCurrentDist, launch, screenshot, startOcto } from "./helpers.mjs";

let octo, browser, octoApi;

before(async () => {
  octo = await startOcto();
  await assertServesCurrentDist(octo.baseUrl);
  octoApi = api(octo.baseUrl);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await octo?.stop();
  assert.deepEqual(browser?.errors ?? [], [], "no uncaught errors in the page");
});

async function fillSchedule(page, { title, prompt, cron, zone }) {
  await page.getByLabel("Title").fill(title);
  await page.getByLabel(/^Prompt/).fill(prompt);
  await page.getByLabel(/^Cron/).fill(cron);
  await page.getByLabel("Time zone").fill(zone);
  await page.getByRole("button", { name: "Create" }).click();
}

test("create, see the next run in its time zone, run now, open the run's session, disable, delete", async () => {
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/#/schedules`);
  await page.locator(".schedules .hint", { hasText: "No schedules yet." }).waitFor();
  await page.getByRole("button", { name: "New schedule" }).click();

  await fillSchedule(page, { title: "bad", prompt: "x", cron: "61 * * * *", zone: "Asia/Tokyo" });
  const problem = page.locator("form[aria-label='New schedule'] [role=alert]");
  await problem.waitFor();
  assert.match(await problem.textContent(), /cron/i);

  await fillSchedule(page, { title: "weekday digest", prompt: "summarise the day", cron: "30 9 * * 1-5", zone: "Asia/Tokyo" });
  const row = page.locator("tr[data-schedule]", { hasText: "weekday digest" });
  await row.waitFor();
  assert.match(await row.textContent(), /30 9 \* \* 1-5/);
  assert.match(await row.textContent(), /Asia\/Tokyo/);
  const [stored] = (await octoApi.call("GET", "/v1/schedules")).schedules;
  assert.equal(stored.timeZone, "Asia/Tokyo");
  // The next run is shown in the schedule's time zone: 09:30 there.
  assert.match(await row.locator(".next-run").textContent(), /9:30/);

  await row.getByRole("button", { name: "Run now" }).click();
  const run = page.locator("table.runs tr[data-run]").first();
  await run.locator(".run-status", { hasText: "succeeded" }).waitFor();
  assert.match(await run.textContent(), /manual/);
  await screenshot(page, "schedules");
  await run.getByRole("link", { name: "open session" }).click();
  await page.locator(".message.assistant .text", { hasText: "Echo: summarise the day" }).waitFor();

  // Edit: a new cron and zone; the form starts from the stored values.
  await page.goto(`${octo.baseUrl}/#/schedules`);
  await row.getByRole("button", { name: "Edit" }).click();
  const edit = page.locator("form[aria-label='Edit weekday digest']");
  assert.equal(await edit.getByLabel(/^Cron/).inputValue(), "30 9 * * 1-5");
  assert.equal(await edit.getByLabel("Time zone").inputValue(), "Asia/Tokyo");
  assert.equal(await edit.getByLabel(/^Permissions/).inputValue(), "2", "auto-approve, as stored");
  await edit.getByLabel(/^Cron/).fill("15 18 * * *");
  await edit.getByLabel("Time zone").fill("Europe/Paris");
  await edit.getByRole("button", { name: "Save" }).click();
  await row.locator("code", { hasText: "15 18 * * *" }).waitFor();
  assert.match(await row.textContent(), /Europe\/Paris/);
  assert.match(await row.locator(".next-run").textContent(), /6:15|18:15/);
  const edited = await octoApi.call("GET", `/v1/${stored.name}`);
  assert.equal(edited.cron, "15 18 * * *");
  assert.equal(edited.timeZone, "Europe/Paris");
  assert.equal(edited.prompt, "summarise the day", "unchanged fields kept");

  await row.getByLabel("Enabled").uncheck();
  await row.locator(".next-run", { hasText: "disabled" }).waitFor();
  assert.equal((await octoApi.call("GET", `/v1/${stored.name}`)).enabled, false);

  await row.getByRole("button", { name: "Delete" }).click();
  await row.getByRole("button", { name: "Yes, delete" }).click();
  await row.waitFor({ state: "detached" });
  assert.deepEqual((await octoApi.call("GET", "/v1/schedules")).schedules ?? [], []);
  await page.close();
});

test("the form previews the next five runs in the chosen zone before saving", async () => {
  const page = await browser.page();
  await page.goto(`${octo.baseUrl}/#/schedules`);
  await page.getByRole("button", { name: "New schedule" }).click();
  const form = page.locator("form[aria-label='New schedule']");
  await form.getByLabel(/^Cron/).fill("30 9 * * 1-5");
  await form.getByLabel("Time zone").fill("Asia/Tokyo");
  const next = form.getByRole("list", { name: "Next runs" }).locator("li");
  await page.waitForFunction(
    () => [...document.querySelectorAll("form[aria-label='New schedule'] ol.next-runs li")].length === 5
      && [...document.querySelectorAll("form[aria-label='New schedule'] ol.next-runs li")].every((li) => /9:30/.test(li.textContent)),
    null,
    { timeout: 60_000 },
  );
  // The same times the API gives, shown in Tokyo time (09:30 there, weekdays).
  const fromApi = await octoApi.call("POST", "/v1/schedules:preview", { cron: "30 9 * * 1-5", timeZone: "Asia/Tokyo" });
  assert.equal(fromApi.fireTimes.length, 5);
  assert.equal(await next.count(), 5);
  for (const t of fromApi.fireTimes) {
    const tokyo = new Date(t).toLocaleString("en-GB", { timeZone: "Asia/Tokyo", weekday: "short", hour: "2-digit", minute: "2-digit" });
    assert.match(tokyo, /^(Mon|Tue|Wed|Thu|Fri) 09:30$/, tokyo);
  }
  // A bad cron: the server's reason instead of times, and nothing was saved.
  await form.getByLabel(/^Cron/).fill("61 * * * *");
  await form.locator(".preview [role=status]", { hasText: /cron/i }).waitFor();
  assert.equal(await next.count(), 0);
  assert.deepEqual((await octoApi.call("GET", "/v1/schedules")).schedules ?? [], []);
  await screenshot(page, "schedule-preview");
});
