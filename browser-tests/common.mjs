// What the browser tests share: Debian's chromium, axe-core, and the list
// of failures a script reports at the end (exit 1 with every one of them).
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';

const axeSource = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
export const failures = [];
export const fail = (m) => failures.push(m);

export async function launch(out) {
  mkdirSync(out, { recursive: true });
  return chromium.launch({
    executablePath: process.env.LMS_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
  });
}

/// axe-core over the page: every serious or critical WCAG 2.1 A/AA violation
/// is a failure named `name`. The number of rules that passed.
export async function axe(page, name) {
  await page.addScriptTag({ content: axeSource });
  const r = await page.evaluate(() =>
    window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }),
  );
  for (const v of r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')) {
    fail(`${name}: axe ${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }
  return r.passes.length;
}

/// Runs `body`, closes the browser, and exits 1 listing every failure.
export async function run(browser, body) {
  try {
    await body();
  } catch (e) {
    fail(`error: ${e.stack || e}`);
  } finally {
    await browser.close();
  }
  if (failures.length) {
    console.error(failures.join('\n'));
    process.exit(1);
  }
}
