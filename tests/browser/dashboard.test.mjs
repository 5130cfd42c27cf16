// The owners' dashboard in Debian's Chromium against a real node and a real
// SMTP sink: sign-up to a store whose assistant answers on the shop's own
// page, cookie consent, and an invited agent's limits. Screenshots of the
// dashboard (desktop and phone) go to results/browser/.

import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, screenshotPath, settledReply, startNode, startSmtpSink, until, ask } from './helpers.mjs';

const PASSWORD = 'correct horse battery';
const BAD_FEED = 'id,title,price,currency,link,image_link\n'
  + 'k-1,Gooseneck Kettle,49.00,EUR,{shop}/k-1,{shop}/k-1.jpg\n'
  + 'k-2,Burr Grinder,,EUR,{shop}/k-2,{shop}/k-2.jpg\n';
const GOOD_FEED = BAD_FEED.replace('Burr Grinder,,', 'Burr Grinder,89.00,');

let browser;
let node;
let sink;
const leftovers = [];

before(async () => {
  browser = await launchBrowser();
  sink = await startSmtpSink();
  node = await startNode({
    MIKABOT__EMAIL__SMTP_HOST: '127.0.0.1',
    MIKABOT__EMAIL__SMTP_PORT: String(sink.port),
    MIKABOT__EMAIL__SMTP_SECURITY: 'none',
  });
});
after(async () => {
  for (const close of leftovers.reverse()) await close().catch(() => {});
  await node.stop();
  await sink.stop();
  await browser.close();
});

async function freshPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB', ...options });
  leftovers.push(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  return page;
}

/** A shop on another origin whose page is whatever `html` is set to. */
async function shopHost() {
  let html = '<!doctype html><title>Shop</title><h1>Shop</h1>';
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  leftovers.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    setPage: (body) => { html = `<!doctype html><html lang="en"><head><title>Koffie shop</title></head><body><h1>Koffie shop</h1>${body}</body></html>`; },
  };
}

async function decline(page) {
  const reject = page.getByRole('button', { name: 'Reject all' });
  if (await reject.isVisible()) await reject.click();
}

/** Signs up through the form, follows the mailed link, signs in. */
async function signUp(page, name, email) {
  await page.goto(`${node.url}/dashboard/signup`);
  await decline(page);
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password (at least 10 characters)').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('heading', { name: 'Check your email' }).waitFor();
  const mail = await sink.waitFor(email);
  const link = sink.link(mail, '/dashboard/verify/');
  assert.ok(link, 'the mail has a verification link');
  await page.goto(link);
  await page.getByRole('heading', { name: 'Email confirmed' }).waitFor();
  await page.goto(`${node.url}/dashboard/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Stores' }).waitFor();
}

describe('an owner, from sign-up to a shop whose assistant answers', () => {
  test('sign up, verify, create a store, upload a catalog with a bad row, fix it, embed the tag, chat', async () => {
    const shop = await shopHost();
    const page = await freshPage();
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: node.url });
    await signUp(page, 'Ada Koffie', 'ada@koffie.example');

    await page.getByRole('link', { name: 'Create a store' }).click();
    await page.getByLabel('Store name').fill('Koffie Co');
    await page.getByLabel('Shop address').fill(`${shop.origin}/shop`);
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Koffie Co' }).waitFor();

    const feed = (text) => ({ name: 'feed.csv', mimeType: 'text/csv', buffer: Buffer.from(text.replaceAll('{shop}', shop.origin)) });
    await page.getByLabel('Choose a feed file or drop it here').setInputFiles(feed(BAD_FEED));
    await page.getByRole('button', { name: 'Upload' }).click();
    const report = page.locator('#import-report');
    await until(async () => (await report.textContent()).includes('Rejected rows'), 'the import report');
    const row = report.locator('tbody tr').first();
    assert.deepEqual(await row.locator('td').allTextContents().then((cells) => cells.slice(0, 3)), ['2', 'k-2', 'price']);
    assert.ok((await row.locator('td').nth(3).textContent()).length > 0, 'the row has its reason');
    await page.screenshot({ path: screenshotPath('dashboard-import-report.png'), fullPage: true });

    await page.getByLabel('Choose a feed file or drop it here').setInputFiles(feed(GOOD_FEED));
    await page.getByRole('button', { name: 'Upload' }).click();
    await until(async () => (await report.textContent()).includes('Imported 2 products'), 'the second import');

    await page.getByRole('button', { name: 'Copy the tag' }).click();
    await until(async () => (await page.locator('[data-copied-for="embed-tag"]').textContent()).length > 0, 'the copy');
    const tag = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(tag, /^<script src="http:\/\/127\.0\.0\.1:\d+\/widget\.js" data-store="koffie-co" async><\/script>$/);
    await page.screenshot({ path: screenshotPath('dashboard-desktop.png'), fullPage: true });
    assert.deepEqual(page.errors, []);

    // The tag on the shop's own page, on the origin the store allows.
    shop.setPage(tag);
    const shopper = await freshPage();
    await shopper.goto(`${shop.origin}/shop`);
    await ask(shopper, 'I want a burr grinder');
    const text = await settledReply(shopper);
    assert.match(text, /Burr Grinder/);
    assert.ok(await shopper.locator('mikabot-widget .cards a').count() >= 1, 'a product card');
    assert.deepEqual(shopper.errors, []);
  });

  test('the dashboard on a phone', async () => {
    const page = await freshPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await signUp(page, 'Phone Owner', 'phone@koffie.example');
    await page.getByRole('link', { name: 'Create a store' }).click();
    await page.getByLabel('Store name').fill('Pocket Shop');
    await page.getByLabel('Shop address').fill('https://pocket.example');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Pocket Shop' }).waitFor();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scrolling on a phone (page is ${width}px wide)`);
    await page.screenshot({ path: screenshotPath('dashboard-phone.png'), fullPage: true });
  });
});

describe('store settings', () => {
  test('the preview draws unsaved settings as they are typed, and saving keeps them', async () => {
    const page = await freshPage();
    await signUp(page, 'Preview', 'preview@settings.example');
    await page.getByRole('link', { name: 'Create a store' }).click();
    await page.getByLabel('Store name').fill('Preview Shop');
    await page.getByLabel('Shop address').fill('https://preview.example');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('link', { name: 'Settings', exact: true }).click();
    const frame = page.frameLocator('iframe[data-preview]');
    const launcher = frame.locator('mikabot-widget .launcher');
    await launcher.waitFor();
    await page.getByLabel('Colour (#rrggbb)').fill('#aa3300');
    await page.getByLabel('Title').fill('Ask Preview');
    await page.getByLabel('Corner').selectOption('left');
    await until(async () => {
      const l = page.frameLocator('iframe[data-preview]').locator('mikabot-widget .launcher');
      try {
        return (await l.evaluate((el) => getComputedStyle(el).backgroundColor, null, { timeout: 500 })) === 'rgb(170, 51, 0)';
      } catch { return false; }
    }, 'the preview in the new colour');
    const moved = page.frameLocator('iframe[data-preview]').locator('mikabot-widget .launcher');
    const box = await moved.boundingBox();
    const frameBox = await page.locator('iframe[data-preview]').boundingBox();
    assert.ok(box.x - frameBox.x < frameBox.width / 2, 'the launcher moved to the left corner');
    assert.equal(await moved.getAttribute('aria-label'), 'Open chat: Ask Preview');
    // A refused value is refused by the save, with its field named.
    await page.getByLabel('Colour (#rrggbb)').fill('blue');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('expected #rrggbb').waitFor();
    await page.getByLabel('Colour (#rrggbb)').fill('#aa3300');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Settings saved.').waitFor();
    const settings = await (await fetch(`${node.url}/v1/stores/preview-shop/widget`)).json();
    assert.equal(settings.color, '#aa3300');
    assert.equal(settings.title, 'Ask Preview');
    assert.equal(settings.position, 'left');
    assert.deepEqual(page.errors, []);
  });
});

describe('cookie consent', () => {
  test('nothing optional before a choice; functional keeps the theme; withdrawing removes it', async () => {
    const page = await freshPage({ colorScheme: 'light' });
    await page.goto(`${node.url}/dashboard/login`);
    const names = async () => (await page.context().cookies()).map((c) => c.name).sort();
    assert.deepEqual(await names(), ['mikabot_csrf'], 'only the strictly necessary cookie');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'no storage before a choice');
    // Without consent the theme can be switched, but it is not kept.
    await page.getByRole('button', { name: 'Dark theme' }).click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    await page.reload();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme ?? null), null);

    await page.getByRole('link', { name: 'Customise' }).click();
    await page.getByLabel(/Functional/).check();
    await page.getByRole('button', { name: 'Save my choice' }).click();
    await page.waitForURL(/\/dashboard\/login/);
    assert.equal(await page.getByRole('button', { name: 'Reject all' }).count(), 0, 'the banner is gone');
    await page.getByRole('button', { name: 'Dark theme' }).click();
    await page.reload();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'the theme survives a reload');
    const consent = (await page.context().cookies()).find((c) => c.name === 'mikabot_consent');
    assert.ok(consent && consent.expires * 1000 > Date.now() + 360 * 86400 * 1000, 'consent lasts 12 months');
    await page.screenshot({ path: screenshotPath('dashboard-dark.png') });

    await page.getByRole('link', { name: 'Cookie settings' }).click();
    await page.getByLabel(/Functional/).uncheck();
    await page.getByRole('button', { name: 'Save my choice' }).click();
    await page.goto(`${node.url}/dashboard/login`);
    assert.equal(await page.evaluate(() => localStorage.getItem('mikabot-theme')), null, 'the stored theme is gone');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme ?? null), null);
    assert.ok(!(await names()).includes('mikabot_lang'));
    assert.deepEqual(page.errors, []);
  });
});

describe('roles', () => {
  test('an invited agent sees the store but cannot open its settings', async () => {
    const owner = await freshPage();
    await signUp(owner, 'Owner', 'owner@roles.example');
    await owner.getByRole('link', { name: 'Create a store' }).click();
    await owner.getByLabel('Store name').fill('Role Shop');
    await owner.getByLabel('Shop address').fill('https://roles.example');
    await owner.getByRole('button', { name: 'Create' }).click();
    await owner.getByRole('link', { name: 'Members' }).click();
    await owner.getByLabel('Email').fill('agent@roles.example');
    await owner.getByLabel('Role', { exact: true }).selectOption('agent');
    await owner.getByRole('button', { name: 'Send the invitation' }).click();
    await owner.getByText('Invitation sent to agent@roles.example.').waitFor();
    const invite = sink.link(await sink.waitFor('agent@roles.example'), '/dashboard/invites/');

    const agent = await freshPage();
    await signUp(agent, 'Agent', 'agent@roles.example');
    await agent.goto(invite);
    await agent.getByRole('button', { name: 'Accept the invitation' }).click();
    await agent.getByRole('heading', { name: 'Role Shop' }).waitFor();
    assert.equal(await agent.getByRole('link', { name: 'Settings', exact: true }).count(), 0, 'no settings link for an agent');
    const response = await agent.goto(agent.url().replace(/\/?$/, '/settings'));
    assert.equal(response.status(), 403);
    await agent.getByRole('heading', { name: 'Not allowed' }).waitFor();
  });
});

describe('accessibility', () => {
  // axe-core is injected as a script, which the dashboard's CSP forbids:
  // this context alone bypasses the CSP to run the audit.
  const AXE = path.join(import.meta.dirname, 'node_modules', 'axe-core', 'axe.min.js');

  async function audit(page, what) {
    await page.addScriptTag({ path: AXE });
    const result = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    }));
    const found = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    assert.deepEqual(found, [], `${what} has WCAG 2.1 AA violations`);
  }

  for (const scheme of ['light', 'dark']) {
    test(`every kind of dashboard page passes an axe WCAG 2.1 AA audit (${scheme} theme)`, async () => {
      const page = await freshPage({ bypassCSP: true, colorScheme: scheme });
      await page.goto(`${node.url}/dashboard/login`);
      await audit(page, 'sign-in with the consent banner');
      await signUp(page, 'Audit', `audit-${scheme}@a11y.example`);
      await page.getByRole('link', { name: 'Create a store' }).click();
      await audit(page, 'the new store form');
      await page.getByLabel('Store name').fill(`Audit Shop ${scheme}`);
      await page.getByLabel('Shop address').fill('https://audit.example');
      await page.getByRole('button', { name: 'Create' }).click();
      await page.getByRole('heading', { name: `Audit Shop ${scheme}` }).waitFor();
      const store = page.url();
      for (const [where, title] of [
        ['', 'the store overview'], ['/settings', 'the settings'], ['/members', 'the members'], ['/tokens', 'the tokens'],
        ['/conversations', 'the conversations'], ['/privacy', 'the privacy page'],
      ]) {
        await page.goto(`${store}${where}`);
        await audit(page, title);
      }
      for (const where of ['/dashboard/stores', '/dashboard/account', '/dashboard/consent', '/dashboard/signup']) {
        await page.goto(`${node.url}${where}`);
        await audit(page, where);
      }
      // An erasure's count, before anything is erased.
      await page.goto(`${store}/privacy`);
      await page.getByLabel('Email address or phone number').fill('someone@example.com');
      await page.getByRole('button', { name: 'Find conversations' }).click();
      await page.getByText('conversations with 0 messages match').waitFor();
      await audit(page, 'an erasure count');
      // A form with refused fields.
      await page.goto(`${store}/settings`);
      await page.getByLabel('Colour (#rrggbb)').fill('blue');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('expected #rrggbb').waitFor();
      await audit(page, 'the settings with a refused field');
    });
  }

  test('signing in and creating a store work with the keyboard alone', async () => {
    const page = await freshPage();
    await signUp(page, 'Keys', 'keys@a11y.example');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/dashboard\/login/);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content', 'the skip link comes first');
    await page.keyboard.press('Enter');
    // From the main content: the email field, then the password, then submit.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'f-email');
    await page.keyboard.type('keys@a11y.example');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'f-password');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Stores' }).waitFor();
    const focusRing = await page.evaluate(() => {
      const link = [...document.querySelectorAll('a')].find((a) => a.textContent === 'Create a store');
      link.focus();
      return getComputedStyle(link).outlineStyle;
    });
    assert.notEqual(focusRing, 'none', 'focus is visible');
    await page.keyboard.press('Enter');
    await page.getByLabel('Store name').focus();
    await page.keyboard.type('Keyboard Shop');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.type('https://keys.example');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Keyboard Shop' }).waitFor();
    assert.deepEqual(page.errors, []);
  });
});
