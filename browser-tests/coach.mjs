// A coach's look at their class, as they see it, in Debian's headless chromium:
// node coach.mjs BASE_URL ARTIFACT_DIR COACH PASSWORD LEARNER LEARNER_PASSWORD LEARNER_NAME OTHER_CLASS ADMIN ADMIN_PASSWORD
// The learner first reads a lesson and fails the quiz twice. Then, in zh-CN
// and en, the coach opens the coach view from the navigation, the class,
// sees the learner's percent and the needs-help entry, opens the learner's
// detail, and downloads the class CSV (checked: BOM, the learner's row).
// Another class by URL answers 403 with an error page. Every page: axe-core, reflow at 320 px,
// page weight and a screenshot in ARTIFACT_DIR. Then an admin opens the
// roster page from the navigation. Exit 1 with every failure.
import { readFileSync } from 'node:fs';
import { launch, fail, run, weigh, checker, signIn } from './common.mjs';

const [base, out, coach, password, learner, learnerPassword, learnerName, otherClass, admin, adminPassword] =
  process.argv.slice(2);
const browser = await launch(out);
const check = checker(out);

async function context(locale) {
  // axe is injected as a script, which the pages' CSP forbids: bypass it here.
  const ctx = await browser.newContext({
    locale, bypassCSP: true, acceptDownloads: true, viewport: { width: 320, height: 640 },
  });
  ctx.setDefaultTimeout(15000);
  return ctx;
}

/// The learner reads a lesson and fails the arithmetic quiz twice.
async function learnerStruggles() {
  const ctx = await context('en-GB');
  const page = await ctx.newPage();
  await signIn(page, base, learner, learnerPassword);
  await page.goto(`${base}/courses/arithmetic/lessons/place-value`);
  for (let i = 0; i < 2; i++) {
    await page.goto(`${base}/quizzes/arithmetic-check`);
    for (const f of await page.$$('fieldset')) await (await f.$$('input[type=radio]'))[0].check();
    await page.click('form[action="/quizzes/arithmetic-check"] button[type=submit]');
    await page.waitForLoadState();
  }
  await ctx.close();
}

async function coachDay(locale, lang) {
  const ctx = await context(locale);
  const page = await ctx.newPage();
  const weight = weigh(page);
  await signIn(page, base, coach, password);
  weight();
  await page.click('nav a[href="/coach"]');
  await page.waitForURL(`${base}/coach`);
  await check(page, 'coach', lang, weight);

  await page.click('main a[href^="/coach/classes/"]');
  await page.waitForURL(/\/coach\/classes\/[^/]+$/);
  const row = await page.textContent(`tbody tr:has(a[href="/coach/learners/${learner}"])`);
  if (!row || !row.includes('12.5%')) fail(`class ${lang}: ${learnerName}'s row lacks 12.5%: ${JSON.stringify(row)}`);
  const help = await page.textContent('ul.help');
  const failed = lang === 'en' ? 'failed “Arithmetic check” 2 times' : '“Arithmetic check”失败 2 次';
  if (!help || !help.includes(learnerName) || !help.includes(failed)) {
    fail(`class ${lang}: needs help lacks ${learnerName} / ${failed}: ${JSON.stringify(help)}`);
  }
  // The wide table scrolls inside its own region, which the keyboard can reach.
  const region = await page.getAttribute('.table-wrap', 'tabindex');
  if (region !== '0') fail(`class ${lang}: the table's scroll region is not focusable`);
  await check(page, 'coach-class', lang, weight);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('main a[download]')]);
  const csv = readFileSync(await download.path(), 'utf8');
  if (!csv.startsWith('\uFEFF')) fail(`csv ${lang}: no byte order mark`);
  if (!download.suggestedFilename().endsWith('.csv')) fail(`csv ${lang}: file name ${download.suggestedFilename()}`);
  const line = csv.split(/\r?\n/).find((l) => l.startsWith(`${learner},`));
  if (!line || !line.includes(learnerName) || !line.includes(',12.5,0,')) {
    fail(`csv ${lang}: no row for ${learner} with 12.5% and 0 quizzes passed: ${JSON.stringify(csv)}`);
  }
  console.log(`csv ${lang}: ok (${csv.length} characters)`);

  await page.click(`tbody a[href="/coach/learners/${learner}"]`);
  await page.waitForURL(`${base}/coach/learners/${learner}`);
  if ((await page.textContent('h1')).trim() !== learnerName) fail(`learner ${lang}: heading is not ${learnerName}`);
  if (!(await page.isVisible('.alert'))) fail(`learner ${lang}: the needs-help box is missing`);
  await check(page, 'coach-learner', lang, weight);

  const refused = await page.goto(`${base}/coach/classes/${encodeURIComponent(otherClass)}`);
  if (refused.status() !== 403) fail(`${lang}: another coach's class answered ${refused.status()}`);
  // A person gets a page, not JSON, for what they may not see.
  const title = lang === 'en' ? 'You may not see this page' : '你无权查看此页面';
  if ((await page.textContent('h1')).trim() !== title) fail(`refused ${lang}: heading is not ${title}`);
  await check(page, 'coach-refused', lang, weight);
  await ctx.close();
}

/// The admin's roster page: everyone, the learner linked to their detail.
async function adminRoster(locale, lang) {
  const ctx = await context(locale);
  const page = await ctx.newPage();
  const weight = weigh(page);
  await signIn(page, base, admin, adminPassword);
  weight();
  await page.click('nav a[href="/roster"]');
  await page.waitForURL(`${base}/roster`);
  if (!(await page.isVisible(`tbody a[href="/coach/learners/${learner}"]`))) fail(`roster ${lang}: ${learner} not linked`);
  await check(page, 'roster', lang, weight);
  await ctx.close();
}

await run(browser, async () => {
  await learnerStruggles();
  await coachDay('zh-CN', 'zh-CN');
  await coachDay('en-GB', 'en');
  await adminRoster('zh-CN', 'zh-CN');
  await adminRoster('en-GB', 'en');
});
