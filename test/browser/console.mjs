// Drives the Vigil console in Debian's headless Chromium for TestConsoleInChromium
// (cmd/vigil/browser_test.go). It prints one line per milestone on stdout; the Go
// test raises held calls when it reads them and checks what the reviewer decided.
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, SHOTS (a directory for
// screenshots), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.VIGIL_URL;
const shots = process.env.SHOTS;
const problems = [];

function say(line) {
  process.stdout.write(line + "\n");
}

function expect(cond, what) {
  if (!cond) throw new Error("expectation failed: " + what);
}

const profile = mkdtempSync(join(tmpdir(), "vigil-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1100, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
});
try {
  const page = context.pages()[0] || (await context.newPage());
  // A CSP violation or a script error is a bug in the console.
  page.on("console", (m) => { if (m.type() === "error" && !/EventSource|ERR_ABORTED|net::ERR/.test(m.text())) problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("response", (r) => { if (r.status() === 404) problems.push("404 for " + r.url()); });

  await page.goto(base + "/approvals");
  expect(page.url().includes("/signin"), "unsigned visit lands on the sign-in page, got " + page.url());
  await page.fill("input[name=name]", process.env.VIGIL_USER);
  await page.fill("input[name=password]", process.env.VIGIL_PASSWORD);
  await Promise.all([page.waitForURL("**/approvals"), page.click("button[type=submit]")]);
  await page.waitForSelector("#live[data-state=open]", { timeout: 20000 });
  say("SIGNED_IN");

  // 1. A held call appears live; the reviewer reads its context and approves it.
  // A card may be swapped for a fresh copy by a live update at any time, so the
  // script finds it by id (a locator) rather than holding on to one element.
  let id = await (await page.waitForSelector("#pending .card.status-pending", { timeout: 30000 })).getAttribute("data-id");
  let card = page.locator(`#pending [data-id="${id}"]`);
  const text = await card.innerText();
  for (const want of ["refund-bot wants to call “Refund an order” (refund) on MCP server payments", "destructive", "open world",
    "refunds-over-100-need-a-human", "Refunds over 100 need a person", "A-1001", "expires in", "MCP session mcp-session-1"]) {
    expect(text.includes(want), "the card shows " + want + ":\n" + text);
  }
  await page.waitForTimeout(1200); // let the countdown tick once before the screenshot
  await page.screenshot({ path: join(shots, "pending.png"), fullPage: true });
  say("SEEN " + id);
  await card.locator("form.approve input[name=reason]").fill("customer verified by phone");
  await Promise.all([page.waitForURL("**/approvals?ok=approved"), card.locator("button.approve").click()]);
  say("APPROVED " + id);

  // 2. The next one is denied; the reason is required.
  await page.waitForSelector("#live[data-state=open]", { timeout: 20000 });
  id = await (await page.waitForSelector("#pending .card.status-pending", { timeout: 30000 })).getAttribute("data-id");
  card = page.locator(`#pending [data-id="${id}"]`);
  await card.locator("button.deny").click();
  const missing = await card.locator("form.deny input[name=reason]").evaluate((el) => el.validity.valueMissing);
  expect(missing && page.url().endsWith("/approvals?ok=approved"), "a denial without a reason is not sent");
  await card.locator("form.deny input[name=reason]").fill("amount too high for this customer");
  await Promise.all([page.waitForURL("**/approvals?ok=denied"), card.locator("button.deny").click()]);
  const recent = await page.innerText("#recent");
  expect(recent.includes("amount too high for this customer") && recent.includes("customer verified by phone"), "decided requests list the reasons");
  await page.screenshot({ path: join(shots, "decided.png"), fullPage: true });
  say("DENIED " + id);

  // 3. The kill switch: suspend the agent from the console.
  await page.click("nav a[href='/kill-switch']");
  const row = await page.waitForSelector("#g-refund-bot");
  await (await row.$("input[name=reason]")).fill("stopped from the console");
  await Promise.all([page.waitForURL("**/kill-switch?ok=suspended"), (await row.$("button.danger")).click()]);
  expect((await page.innerText("#g-refund-bot")).toLowerCase().includes("suspended"), "the agent shows as suspended");
  await page.screenshot({ path: join(shots, "kill-switch.png"), fullPage: true });
  say("SUSPENDED");

  expect(problems.length === 0, "no console errors: " + problems.join(" | "));
  say("DONE");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
