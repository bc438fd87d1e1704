// A learner takes an imported cmi5 course in Debian's headless chromium:
// node cmi5.mjs BASE_URL ARTIFACT_DIR USER PASSWORD CONTENT_URL COACH COACH_PASSWORD SCORM_COURSE UPLOAD_ZIP UPLOADED_COURSE
// The catalog lists the imported course; its page (zh-CN and en: axe-core,
// reflow at 320 px, weight, screenshot) shows each AU with a launch button;
// the button opens the AU on the content origin under the pages' real CSP
// (no bypass: the launch form's redirect and the AU's sandbox are part of
// what is tested); the AU authored in the repository fetches its token,
// reads LMS.LaunchData, answers, and sends completed, passed, terminated,
// then returns to the course page, which now shows the AU done. The AU's
// page cannot reach the node's cookies or pages. The learner's coach sees
// the AU on the learner's page with a form to mark it done (waived; checked
// with axe-core, not sent) and adds a package on the upload page. Then a SCORM 1.2 SCO runs in the node's
// player page (scorm-again) and its result shows on the course page; the SCORM 2004 package the coach
// uploaded (UPLOADED_COURSE) gets its course and player pages checked (zh-CN and en: axe-core, the
// player's language), then its SCO runs through window.API_1484_11 under the real CSPs, and the course
// and progress pages show it done.
// Exit 1 listing failures.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { launch, fail, run, weigh, checker, signIn, PLAYER_LOAD_LIMIT } from './common.mjs';

const [base, out, user, password, content, coach, coachPassword, scormCourse, uploadFile, uploaded] =
  process.argv.slice(2);
const COURSE = `${base}/courses/water-safety`;

const browser = await launch(out);
const check = checker(out);

async function coursePage(locale, lang) {
  const ctx = await browser.newContext({ locale, bypassCSP: true, viewport: { width: 320, height: 640 } });
  ctx.setDefaultTimeout(15000);
  const page = await ctx.newPage();
  const weight = weigh(page);
  await signIn(page, base, user, password);
  weight();
  await page.click('nav a[href="/courses"]');
  await page.waitForURL(`${base}/courses`);
  if (!(await page.isVisible('a[href="/courses/water-safety"]'))) fail(`catalog ${lang}: the imported course is not listed`);
  await page.click('a[href="/courses/water-safety"]');
  await page.waitForURL(COURSE);
  const button = await page.textContent('form.launch button');
  const want = lang === 'en' ? 'Start:' : '开始：';
  if (!button.includes(want)) fail(`course ${lang}: launch button ${JSON.stringify(button)} lacks ${want}`);
  await check(page, 'course-cmi5', lang, weight);
  await ctx.close();
}

async function coachView(locale, lang) {
  const ctx = await browser.newContext({ locale, bypassCSP: true, viewport: { width: 320, height: 640 } });
  ctx.setDefaultTimeout(15000);
  const page = await ctx.newPage();
  const weight = weigh(page);
  await signIn(page, base, coach, coachPassword);
  weight();
  await page.goto(`${base}/coach/learners/${user}`);
  const forms = await page.locator(`form[action="/coach/learners/${user}/waive"]`).count();
  if (forms !== 1) fail(`coach ${lang}: ${forms} waive forms, want 1 (the AU not yet done)`);
  await check(page, 'coach-waive', lang, weight);
  // The upload page (the coach's page links it), then, once, a real upload.
  await page.goto(`${base}/coach`);
  await page.click('a[href="/content/packages"]');
  await page.waitForURL(`${base}/content/packages`);
  await check(page, 'content-upload', lang, weight);
  if (lang === 'en') {
    const buffer = readFileSync(uploadFile);
    await page.setInputFiles('#package', { name: basename(uploadFile), mimeType: 'application/zip', buffer });
    await page.click('main button[type=submit]');
    await page.waitForSelector('[role=status], [role=alert]');
    const said = await page.textContent('main');
    if (!said.includes('Added')) fail(`upload: the page says ${JSON.stringify(said)}`);
    await check(page, 'content-added', lang, weight);
  }
  await ctx.close();
}

/// The uploaded SCORM 2004 course and its player as the learner sees them
/// (axe needs the CSP bypassed; the SCO starts but is left unfinished).
async function scorm2004Pages(locale, lang) {
  const ctx = await browser.newContext({ locale, bypassCSP: true, viewport: { width: 320, height: 640 } });
  ctx.setDefaultTimeout(15000);
  const page = await ctx.newPage();
  const weight = weigh(page);
  await signIn(page, base, user, password);
  await page.goto(`${base}/courses/${uploaded}`);
  await check(page, 'course-scorm2004', lang, weight);
  await page.click('form.launch button');
  await page.waitForURL((u) => u.href.startsWith(`${content}/scorm/play/`), { timeout: 20000 });
  await page.frameLocator('#sco').locator('#finish').waitFor();
  await check(page, 'scorm2004-player', lang, weight, PLAYER_LOAD_LIMIT);
  await ctx.close();
}

/// Launches the first SCO of `course` in the player, answers it with
/// `answer(frame)`, finishes it, and waits for the course page: its first
/// outline line.
async function takeSco(page, course, answer) {
  const url = `${base}/courses/${course}`;
  await page.goto(url);
  await page.click('form.launch button');
  await page.waitForURL((u) => u.href.startsWith(`${content}/scorm/play/`), { timeout: 20000 });
  const sco = page.frameLocator('#sco');
  await answer(sco);
  await sco.locator('#finish').click();
  await page.waitForURL(url, { timeout: 20000 });
  return page.textContent('ol.outline li');
}

await run(browser, async () => {
  await coursePage('zh-CN', 'zh-CN');
  await coursePage('en-GB', 'en');
  await coachView('zh-CN', 'zh-CN');
  await coachView('en-GB', 'en');
  await scorm2004Pages('zh-CN', 'zh-CN');
  await scorm2004Pages('en-GB', 'en');

  // The launch, with every CSP in force.
  const ctx = await browser.newContext({ locale: 'en-GB' });
  ctx.setDefaultTimeout(20000);
  const page = await ctx.newPage();
  const csp = [];
  page.on('console', (m) => m.type() === 'error' && /Content Security Policy/i.test(m.text()) && csp.push(m.text()));
  await signIn(page, base, user, password);
  await page.goto(COURSE);
  const before = await page.textContent('#au-0');
  if (before.includes('Completed')) fail(`course: the AU shows done before it was taken: ${before}`);
  await page.click('#au-0 form.launch button');
  await page.waitForURL((u) => u.href.startsWith(`${content}/p/water-safety/`), { timeout: 20000 });
  const url = new URL(page.url());
  for (const p of ['endpoint', 'fetch', 'actor', 'registration', 'activityId']) {
    if (!url.searchParams.get(p)) fail(`launch URL lacks ${p}: ${url}`);
  }
  if (url.searchParams.get('lesson') !== 'currents') fail(`launch URL lost the AU's own query: ${url}`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'Ready', null, { timeout: 20000 })
    .catch(async () => fail(`AU did not start: ${await page.textContent('#status')}`));
  // The AU runs without the node's origin: no cookies of the node, no access to its pages.
  const reach = await page.evaluate(async (b) => {
    let cookies = 'none';
    try { cookies = document.cookie; } catch (e) { cookies = 'blocked'; }
    let read = 'blocked';
    try { read = String((await fetch(`${b}/`, { credentials: 'include' })).status); } catch (e) { read = 'blocked'; }
    return { origin: self.origin, cookies, read };
  }, base);
  if (reach.origin !== 'null') fail(`the AU runs with origin ${reach.origin}, not an opaque one`);
  if (reach.cookies !== 'blocked' && reach.cookies !== '') fail(`the AU sees cookies: ${reach.cookies}`);
  if (reach.read !== 'blocked') fail(`the AU read the node's page across origins: ${reach.read}`);
  await page.selectOption('#answer', 'knees');
  await page.click('#finish');
  await page.waitForURL(COURSE, { timeout: 20000 });
  const after = await page.textContent('#au-0');
  if (!after.includes('Completed')) fail(`course: after the AU it shows ${JSON.stringify(after)}, want Completed`);
  await page.goto(`${base}/progress`);
  const row = await page.textContent('tbody tr:has(a[href="/courses/water-safety"])');
  if (!row.includes('1/1') || !row.includes('100%')) fail(`progress: the AU is not counted: ${row}`);
  if (csp.length) fail(`CSP refusals on the way: ${csp.join('; ')}`);
  console.log('cmi5 launch: ok');
  await page.screenshot({ path: `${out}/course-cmi5-done-en.png`, fullPage: true });

  // A SCORM 1.2 SCO in the node's player (scorm-again), same page, real CSPs.
  const scoLine = await takeSco(page, scormCourse, (sco) => sco.locator('#answer').selectOption('sun'));
  if (!scoLine.includes('Completed')) fail(`SCORM course: after the SCO it shows ${JSON.stringify(scoLine)}, want Completed`);
  if (csp.length) fail(`CSP refusals in the SCORM player: ${csp.join('; ')}`);
  console.log('SCORM launch: ok');

  // The uploaded SCORM 2004 SCO, through window.API_1484_11, real CSPs.
  const line2004 = await takeSco(page, uploaded, (sco) => sco.locator('#answer').fill('2'));
  if (!line2004.includes('Completed')) fail(`SCORM 2004 course: after the SCO it shows ${JSON.stringify(line2004)}`);
  await page.goto(`${base}/progress`);
  const row2004 = await page.textContent(`tbody tr:has(a[href="/courses/${uploaded}"])`);
  if (!row2004.includes('1/1') || !row2004.includes('100%')) fail(`progress: the SCORM 2004 SCO is not counted: ${row2004}`);
  if (csp.length) fail(`CSP refusals in the SCORM 2004 player: ${csp.join('; ')}`);
  console.log('SCORM 2004 launch: ok');
  await ctx.close();
});
