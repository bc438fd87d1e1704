// The sign-in page as people see it, in Debian's headless chromium:
// node login.mjs BASE_URL ARTIFACT_DIR USER PASSWORD DISPLAY_NAME
// Checks both languages, axe-core (no serious or critical WCAG 2.1 A/AA
// violation), reflow at 320 px, a keyboard-only sign-in under the page's
// real CSP, and a refused one. Screenshots go to ARTIFACT_DIR. Exit 1 with
// every failure listed.
import { launch, axe, fail, run } from './common.mjs';

const [base, out, user, password, name] = process.argv.slice(2);
const browser = await launch(out);

const newContext = async (options) => {
  const ctx = await browser.newContext(options);
  ctx.setDefaultTimeout(15000);
  return ctx;
};

await run(browser, async () => {
  for (const [locale, lang, text] of [['zh-CN', 'zh-CN', '登录'], ['en-GB', 'en', 'Sign in']]) {
    // axe is injected as a script, which the page's CSP forbids: bypass it here only.
    const ctx = await newContext({ locale, bypassCSP: true, viewport: { width: 320, height: 640 } });
    const page = await ctx.newPage();
    const resp = await page.goto(`${base}/login`);
    if (resp.status() !== 200) fail(`login ${locale}: status ${resp.status()}`);
    const got = await page.getAttribute('html', 'lang');
    if (got !== lang) fail(`login ${locale}: html lang ${got}, want ${lang}`);
    if (!(await page.textContent('h1')).includes(text)) fail(`login ${locale}: heading lacks ${text}`);
    const passes = await axe(page, `login ${locale}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 320) fail(`login ${locale}: ${wide} px wide at a 320 px viewport (no reflow)`);
    await page.screenshot({ path: `${out}/login-${lang}.png`, fullPage: true });
    console.log(`login ${locale}: ok (axe rules passed: ${passes})`);
    // Signed in: the home page, checked the same way.
    await page.fill('#username', user);
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/`);
    if ((await page.getAttribute('html', 'lang')) !== lang) fail(`home ${locale}: wrong language`);
    const homePasses = await axe(page, `home ${locale}`);
    const homeWide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (homeWide > 320) fail(`home ${locale}: ${homeWide} px wide at a 320 px viewport`);
    await page.screenshot({ path: `${out}/home-${lang}.png`, fullPage: true });
    console.log(`home ${locale}: ok (axe rules passed: ${homePasses})`);
    await ctx.close();
  }

  // Keyboard only, under the page's own CSP.
  const ctx = await newContext({ locale: 'en-GB' });
  const page = await ctx.newPage();
  const csp = [];
  page.on('console', (m) => m.type() === 'error' && /Content Security Policy/i.test(m.text()) && csp.push(m.text()));
  await page.goto(`${base}/login`);
  // The first Tab reaches the skip link; following it, the next Tab is the form.
  await page.keyboard.press('Tab');
  const skip = await page.evaluate(() => document.activeElement && document.activeElement.className);
  if (skip !== 'skip') fail(`keyboard: first Tab focuses .${skip}, want the skip link`);
  else if (!(await page.isVisible('.skip'))) fail('keyboard: the focused skip link is not visible');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  if (focused !== 'username') fail(`keyboard: Tab after the skip link focuses ${focused}, want username`);
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  if (outline === 'none') fail('keyboard: the focused field shows no focus outline');
  await page.keyboard.type(user);
  await page.keyboard.press('Tab');
  await page.keyboard.type('not-the-password');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/login\?error=signin/);
  if (!(await page.isVisible('[role=alert]'))) fail('refused sign-in: no alert shown');
  await page.screenshot({ path: `${out}/login-refused-en.png`, fullPage: true });
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.focus('#password');
  await page.keyboard.press('Enter');
  await page.waitForURL(`${base}/`);
  const session = (await ctx.cookies()).find((c) => c.name === 'lms_session');
  if (!session) fail('keyboard sign-in: no session cookie');
  else if (!session.httpOnly || session.sameSite !== 'Lax') fail(`session cookie flags: ${JSON.stringify(session)}`);
  const h1 = await page.textContent('h1');
  if (!h1.includes(name)) fail(`home: heading ${JSON.stringify(h1)} lacks the person's name ${name}`);
  const me = await page.evaluate(async (u) => (await fetch(`/v1/learners/${u}/progress`)).status, user);
  if (me !== 200) fail(`signed in: own progress answered ${me}`);
  const other = await page.evaluate(async () => (await fetch('/v1/learners/someone-else/progress')).status);
  if (other !== 403) fail(`signed in: another learner's progress answered ${other}, want 403`);
  // Sign out with the keyboard: Tab to the button, Enter.
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => document.activeElement?.textContent?.trim()) === 'Sign out') break;
  }
  await page.keyboard.press('Enter');
  await page.waitForURL(`${base}/login`);
  if ((await ctx.cookies()).some((c) => c.name === 'lms_session' && c.value)) fail('signed out: the session cookie stayed');
  const after = await page.evaluate(async (u) => (await fetch(`/v1/learners/${u}/progress`)).status, user);
  if (after !== 401) fail(`signed out: own progress answered ${after}, want 401`);
  if (csp.length) fail(`the page broke its own CSP: ${csp.join('; ')}`);
  console.log('keyboard sign-in and sign-out: ok');
  await ctx.close();
});
