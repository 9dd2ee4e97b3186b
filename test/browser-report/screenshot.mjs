// Opens an evidence bundle's report.html from a file:// URL in headless Chromium and
// takes a full-page screenshot at 1280 px wide. Prints what rendered as JSON on
// stdout (title, h2 headings, rows of the SoA table, sections too wide to read) for
// the Go test to check.
//
// Usage: node screenshot.mjs REPORT.html OUT.png
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [page, out] = process.argv.slice(2);
if (!page || !out) {
  console.error('usage: node screenshot.mjs REPORT.html OUT.png');
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), 'vigil-report-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 1000 }, // a common laptop width
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const tab = await context.newPage();
  // The report is self-contained: any request other than the file itself is a bug.
  const external = [];
  tab.on('request', (r) => { if (!r.url().startsWith('file://')) external.push(r.url()); });
  await tab.goto(pathToFileURL(resolve(page)).href, { waitUntil: 'load' });
  await tab.screenshot({ path: out, fullPage: true });
  const result = await tab.evaluate(() => ({
    title: document.title,
    headings: [...document.querySelectorAll('h2')].map((h) => h.textContent.trim()),
    soaRows: document.querySelectorAll('#soa tr').length - 1,
    // Sections whose content is wider than they are: cut off or scrolled sideways.
    overflowing: [...document.querySelectorAll('section')]
      .filter((s) => s.scrollWidth > s.clientWidth + 1)
      .map((s) => s.id || s.querySelector('h2')?.textContent.trim()),
    pageOverflows: document.documentElement.scrollWidth > window.innerWidth,
  }));
  result.external = external;
  if (external.length) {
    console.error('report loaded external resources: ' + external.join(', '));
    process.exitCode = 1;
  }
  console.log(JSON.stringify(result));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
