// Drives the Vigil console in Debian's headless Chromium for TestMCPApprovalInChromium
// (cmd/vigil/browser_mcp_test.go), where a real MCP client's tools/call is held by
// policy. The Go test and this script take turns over a line protocol:
//
//   stdout (script → test)              stdin (test → script)
//   SIGNED_IN                           (the test makes the first held MCP call)
//   SEEN {"id", "text", "navigations"}  APPROVE <id> <note>
//   APPROVED {"id", "text"}             (the test checks the client's result, makes the
//                                        second held call and waits until it is pending)
//                                       RAISED
//   SEEN {…}                            DENY <id> <reason>
//   DENIED {"id", "text"}               END
//   DONE
//
// SEEN reports the first pending card to appear and the page navigations since the
// page was last loaded: a card that arrives live needs none. APPROVED and DENIED
// report the decided card's text.
//
// The page reloaded after the approval opens its live stream late: this script holds
// its /events request until the test says RAISED, so the second call is raised while
// nothing listens, and must appear all the same when the stream opens. Until then
// the live badge must say "connecting…", not "live".
//
// Environment: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, SHOTS (a directory for
// screenshots), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const base = process.env.VIGIL_URL;
const shots = process.env.SHOTS;
const problems = [];
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function say(line, data) {
  process.stdout.write(line + (data === undefined ? "" : " " + JSON.stringify(data)) + "\n");
}

// hear waits for the test's next instruction, which must start with verb, and
// returns its words.
async function hear(verb) {
  const { value, done } = await stdin.next();
  if (done) throw new Error("the test closed stdin while the script waited for " + verb);
  const [got, ...rest] = value.split(" ");
  if (got !== verb) throw new Error(`the test said ${JSON.stringify(value)}, want ${verb}`);
  return rest;
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
  let navigations = 0;
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations++; });

  // pending waits for a held call to appear, takes a screenshot and shows the card to
  // the test.
  async function pending(n) {
    const id = await (await page.waitForSelector("#pending .card.status-pending", { timeout: 30000 })).getAttribute("data-id");
    // A live update may swap the card for a fresh copy at any time: find it by id.
    const card = page.locator(`#pending [data-id="${id}"]`);
    await page.waitForTimeout(1200); // let the countdown tick before the screenshot
    await page.screenshot({ path: join(shots, `mcp-pending-${n}.png`), fullPage: true });
    say("SEEN", { id, text: await card.innerText(), navigations });
    return { card, id };
  }

  // decided reports the card of a decided request and takes a screenshot.
  async function decided(n, verb, id) {
    const card = await page.waitForSelector(`#recent [data-id="${id}"]`);
    await page.screenshot({ path: join(shots, `mcp-decided-${n}.png`), fullPage: true });
    say(verb, { id, text: await card.innerText() });
  }

  await page.goto(base + "/approvals");
  await page.fill("input[name=name]", process.env.VIGIL_USER);
  await page.fill("input[name=password]", process.env.VIGIL_PASSWORD);
  await Promise.all([page.waitForURL("**/approvals"), page.click("button[type=submit]")]);
  await page.waitForSelector("#live[data-state=open]", { timeout: 20000 });
  navigations = 0;
  say("SIGNED_IN");

  // 1. The first held call appears live; the reviewer approves it with a note.
  let { card, id } = await pending(1);
  let [target, ...note] = await hear("APPROVE");
  expect(target === id, `the test approves ${target}, the page shows ${id}`);
  let release;
  const gate = new Promise((r) => { release = r; });
  await page.route("**/events", async (route) => { await gate; await route.continue(); }, { times: 1 });
  await card.locator("form.approve input[name=reason]").fill(note.join(" "));
  await Promise.all([page.waitForURL("**/approvals?ok=approved"), card.locator("button.approve").click()]);
  navigations = 0;
  await decided(1, "APPROVED", id);

  // 2. The second call is raised while the reloaded page's stream is held back; it
  // must appear when the stream opens. The reviewer denies it, with the reason the
  // form requires.
  await hear("RAISED");
  expect((await page.$$("#pending .card")).length === 0, "no pending card before the stream opens");
  const badge = await page.innerText("#live");
  expect(badge === "connecting…", `the live badge says ${JSON.stringify(badge)} before the stream opens, want "connecting…"`);
  await page.screenshot({ path: join(shots, "mcp-connecting.png") });
  release();
  await page.waitForSelector("#live[data-state=open]", { timeout: 20000 });
  ({ card, id } = await pending(2));
  let reason;
  [target, ...reason] = await hear("DENY");
  expect(target === id, `the test denies ${target}, the page shows ${id}`);
  await card.locator("button.deny").click();
  expect(await card.locator("form.deny input[name=reason]").evaluate((el) => el.validity.valueMissing), "a denial without a reason is not sent");
  await card.locator("form.deny input[name=reason]").fill(reason.join(" "));
  await Promise.all([page.waitForURL("**/approvals?ok=denied"), card.locator("button.deny").click()]);
  await page.waitForSelector("#live[data-state=open]", { timeout: 20000 });
  await decided(2, "DENIED", id);

  await hear("END");
  expect(problems.length === 0, "no console errors: " + problems.join(" | "));
  say("DONE");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
