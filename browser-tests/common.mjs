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

/// Most bytes the first load of a page may fetch (issue 11).
export const FIRST_LOAD_LIMIT = 100 * 1024;
/// The SCORM player page carries scorm-again, a third-party runtime: its
/// SCORM 2004 build is 107 KB gzip'd (565 KB plain), loaded once per launch.
export const PLAYER_LOAD_LIMIT = 150 * 1024;

/// Bytes over the wire of everything loaded since the last call, headers
/// included: the returned function reads and resets the count.
export function weigh(page) {
  const sizes = [];
  page.on('requestfinished', async (r) => {
    try {
      const s = await r.sizes();
      sizes.push(s.responseBodySize + s.responseHeadersSize);
    } catch {}
  });
  return () => sizes.splice(0).reduce((a, b) => a + b, 0);
}

/// The checks every page gets: its language, axe, reflow at 320 px, the
/// page weight, and a screenshot `{name}-{lang}.png` in `out`.
export function checker(out) {
  return async (page, name, lang, weight, limit = FIRST_LOAD_LIMIT) => {
    const got = await page.getAttribute('html', 'lang');
    if (got !== lang) fail(`${name} ${lang}: html lang ${got}`);
    const passes = await axe(page, `${name} ${lang}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 320) fail(`${name} ${lang}: ${wide} px wide at a 320 px viewport (no reflow)`);
    const bytes = weight();
    if (bytes > limit) fail(`${name} ${lang}: ${bytes} bytes loaded, over ${limit}`);
    await page.screenshot({ path: `${out}/${name}-${lang}.png`, fullPage: true });
    console.log(`${name} ${lang}: ok (axe rules passed: ${passes}, ${bytes} bytes)`);
  };
}

/// Signs in with the form and waits for the home page.
export async function signIn(page, base, user, password) {
  await page.goto(`${base}/login`);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/`);
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
