// The widget in Debian's Chromium against a real node: the demo shop, real
// sockets, a real sled directory, and an OpenAI-compatible server where a
// test needs to choose the model's words.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import {
  ask, fakeOpenAi, foreignHost, launchBrowser, modelEnv, proxy, screenshotPath,
  settledReply, sleep, startNode, until, widget,
} from './helpers.mjs';

let browser;
// Whatever a test opened, closed even when the test fails half-way.
const leftovers = [];
before(async () => { browser = await launchBrowser(); });
after(async () => {
  for (const close of leftovers.reverse()) await close().catch(() => {});
  await browser.close();
});

function closeLater(thing, close) {
  leftovers.push(close);
  return thing;
}

/** A page of a fresh browser context (no cookies, no storage). */
async function freshPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB', ...options });
  closeLater(context, () => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  return page;
}

function words(n) {
  return Array.from({ length: n }, (_, i) => `w${i} `);
}

describe('the demo shop with the offline responder', () => {
  let node;
  before(async () => { node = await startNode(); });
  after(async () => { await node.stop(); });

  test('a full conversation: typing, streamed reply, product cards, announcement', async () => {
    const page = await freshPage();
    await page.goto(`${node.url}/demo/`);
    const w = widget(page);
    await w.launcher.click();
    await assert.doesNotReject(w.panel.waitFor({ state: 'visible' }));
    assert.equal(await w.launcher.getAttribute('aria-expanded'), 'true');
    await ask(page, 'I need a waterproof rain jacket under 100 euro');
    const text = await settledReply(page);
    assert.match(text, /Rain Jacket/);
    const cards = page.locator('mikabot-widget .cards a');
    assert.ok((await cards.count()) >= 1, 'product cards are shown');
    const first = cards.first();
    assert.match(await first.getAttribute('href'), /\/demo\/products\//);
    const price = await first.locator('.price').textContent();
    assert.match(price, /^€\d+\.\d{2}$/, `en-GB formats euros as €49.95, got ${price}`);
    assert.ok(await first.locator('img').evaluate((img) => img.complete && img.naturalWidth > 0), 'the card image loaded');
    await until(async () => (await w.announcer.textContent()).includes('Rain Jacket'), 'the polite announcement');
    assert.deepEqual(page.errors, []);
    await page.screenshot({ path: screenshotPath('desktop-open.png') });
    await page.context().close();
  });

  test('no cookies and no storage before the shopper opens the chat; then a session id only', async () => {
    const page = await freshPage();
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`${node.url}/demo/`);
    await widget(page).launcher.waitFor();
    await sleep(500);
    const before = await page.evaluate(() => ({
      cookie: document.cookie, local: localStorage.length, session: sessionStorage.length,
    }));
    assert.deepEqual(before, { cookie: '', local: 0, session: 0 });
    assert.deepEqual(await page.context().cookies(), []);
    assert.deepEqual(sockets, [], 'no socket before interaction');

    await ask(page, 'a tent for two');
    await settledReply(page);
    const afterOpen = await page.evaluate(() => ({
      cookie: document.cookie,
      local: Object.fromEntries(Object.entries(localStorage)),
    }));
    assert.equal(afterOpen.cookie, '');
    assert.deepEqual(Object.keys(afterOpen.local), ['mikabot.demo.session']);
    assert.match(afterOpen.local['mikabot.demo.session'], /^[0-9a-f-]{36}$/);
    assert.deepEqual(await page.context().cookies(), []);
    await page.context().close();
  });

  test('the interface follows the browser language, falling back to the store default', async () => {
    for (const [locale, placeholder] of [
      ['nl-NL', 'Vraag iets over onze producten…'],
      ['de-AT', 'Fragen Sie nach unseren Produkten…'],
      ['fr-BE', 'Posez une question sur nos produits…'],
      ['pt-BR', 'Ask about our products…'],
    ]) {
      const page = await freshPage({ locale });
      await page.goto(`${node.url}/demo/`);
      await widget(page).launcher.click();
      assert.equal(await widget(page).input.getAttribute('placeholder'), placeholder, locale);
      await page.context().close();
    }
  });

  test('the session and its history come back after a page navigation', async () => {
    const page = await freshPage();
    await page.goto(`${node.url}/demo/`);
    await ask(page, 'warm winter parka');
    const first = await settledReply(page);
    const href = await page.locator('mikabot-widget .cards a').first().getAttribute('href');
    await page.goto(new URL(href, node.url).href);
    const w = widget(page);
    await w.panel.waitFor({ state: 'visible' });
    await until(async () => (await w.shopper.count()) === 1, 'the shopper message restored');
    assert.equal((await w.shopper.first().textContent()).trim(), 'warm winter parka');
    assert.equal(await settledReply(page), first);
    await ask(page, 'and gloves?');
    await settledReply(page, 2);
    await page.context().close();
  });

  test('the shopper downloads their conversation, then deletes it for good', async () => {
    const page = await freshPage({ acceptDownloads: true });
    await page.goto(`${node.url}/demo/`);
    await ask(page, 'a tent for two');
    await settledReply(page);
    const w = widget(page);
    const session = await page.evaluate(() => localStorage.getItem('mikabot.demo.session'));
    assert.ok(session, 'a session id is kept');
    const more = page.locator('mikabot-widget .more');
    assert.equal(await more.getAttribute('aria-expanded'), 'false');
    await more.click();
    assert.equal(await more.getAttribute('aria-expanded'), 'true');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('mikabot-widget .tools button', { hasText: 'Download conversation' }).click(),
    ]);
    const saved = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    assert.equal(saved.schema, 'mikabot.conversation-export/1');
    assert.equal(saved.conversation.session_id, session);
    assert.deepEqual(saved.conversation.messages.map((m) => m.role), ['shopper', 'assistant']);
    assert.equal(saved.conversation.messages[0].text, 'a tent for two');

    await more.click();
    await page.locator('mikabot-widget .tools button', { hasText: 'Delete conversation' }).click();
    await w.status.locator('button', { hasText: 'Delete' }).click();
    await until(async () => /deleted/.test(await w.status.textContent()), 'the deletion is confirmed');
    assert.equal(await w.shopper.count(), 0, 'the history is gone from the page');
    await until(async () => {
      const now = await page.evaluate(() => localStorage.getItem('mikabot.demo.session'));
      return now !== session;
    }, 'the old session id is forgotten');
    // The node has nothing of it: the old session id exports nothing.
    const gone = await page.evaluate(async ([url, id]) => {
      const r = await fetch(`${url}/v1/stores/demo/shopper/export`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_id: id }),
      });
      return r.status;
    }, [node.url, session]);
    assert.equal(gone, 404);
    // The chat goes on, as a new conversation.
    await ask(page, 'a stove');
    await settledReply(page);
    assert.equal(await w.shopper.count(), 1);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('keyboard only: open, send, close, with focus handled and visible', async () => {
    const page = await freshPage();
    await page.goto(`${node.url}/demo/`);
    const w = widget(page);
    await w.launcher.waitFor();
    // The widget comes last in the page: one Shift+Tab from the top reaches it.
    await page.keyboard.press('Shift+Tab');
    const focused = () => page.evaluate(() => {
      const root = document.querySelector('mikabot-widget').shadowRoot;
      const el = root.activeElement;
      return el ? { cls: el.className, tag: el.tagName, outline: getComputedStyle(el).outlineStyle } : null;
    });
    assert.equal((await focused()).cls, 'launcher');
    assert.notEqual((await focused()).outline, 'none', 'focus is visible');
    await page.keyboard.press('Enter');
    await w.panel.waitFor({ state: 'visible' });
    assert.equal((await focused()).tag, 'TEXTAREA', 'opening moves focus to the message field');
    await page.keyboard.type('sleeping bag');
    await page.keyboard.press('Enter');
    await settledReply(page);
    await page.keyboard.press('Escape');
    await w.panel.waitFor({ state: 'hidden' });
    assert.equal((await focused()).cls, 'launcher', 'closing returns focus to the launcher');
    assert.equal(await w.launcher.getAttribute('aria-expanded'), 'false');
    await page.context().close();
  });

  test('a narrow screen gets the whole viewport', async () => {
    const page = await freshPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    await page.goto(`${node.url}/demo/`);
    await ask(page, 'hiking boots');
    await settledReply(page);
    const box = await widget(page).panel.boundingBox();
    assert.deepEqual(
      [box.x, box.y, Math.round(box.width), Math.round(box.height)],
      [0, 0, 375, 740],
    );
    await page.screenshot({ path: screenshotPath('mobile-open.png') });
    await page.context().close();
  });

  test('reduced motion turns the animations off', async () => {
    const page = await freshPage({ reducedMotion: 'reduce' });
    await page.goto(`${node.url}/demo/`);
    await widget(page).launcher.click();
    const animation = await widget(page).panel.evaluate((el) => getComputedStyle(el).animationName);
    assert.equal(animation, 'none');
    await page.context().close();
  });

  test('a site the store does not allow gets no widget and no socket', async () => {
    const page = await freshPage();
    const warnings = [];
    page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
    // Another origin on this machine.
    const other = await foreignHost(
      `<!doctype html><title>Other</title><p>Another shop</p><script src="${node.url}/widget.js" data-store="demo" async></script>`,
    );
    closeLater(other, () => other.stop());
    await page.goto(`${other.origin}/shop`);
    await until(() => warnings.some((w) => w.includes('does not allow this site')), 'the console warning');
    assert.equal(await page.locator('mikabot-widget').count(), 0);
    // A hand-made socket from that page is refused too.
    const close = await page.evaluate((url) => new Promise((resolve) => {
      const ws = new WebSocket(url);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', v: 1 }));
      ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
    }), `${node.url.replace('http', 'ws')}/v1/widget/ws?store=demo`);
    assert.deepEqual(close, { code: 4403, reason: 'origin_not_allowed' });
    await page.context().close();
  });

  test('the shop cannot break the widget and the widget leaves the shop alone', async () => {
    const page = await freshPage();
    await page.addInitScript(() => {
      // Globals and styles a busy shop page might have.
      window.t = 'shop'; window.ui = 1; window.ws = null; window.open = () => {};
      document.addEventListener('DOMContentLoaded', () => {
        const style = document.createElement('style');
        style.id = 'hostile';
        style.textContent = '* { font-size: 40px !important; color: red !important; } '
          + 'button, section, textarea, ol, li { all: unset !important; display: none !important; } '
          + 'mikabot-widget { display: none !important; }';
        document.head.append(style);
      });
    });
    await page.goto(`${node.url}/demo/`);
    const sheetsBefore = await page.evaluate(() => document.styleSheets.length);
    const w = widget(page);
    await w.launcher.waitFor({ state: 'visible' });
    const look = await w.launcher.evaluate((el) => {
      const s = getComputedStyle(el);
      return { w: el.offsetWidth, h: el.offsetHeight, bg: s.backgroundColor };
    });
    assert.deepEqual(look, { w: 60, h: 60, bg: 'rgb(31, 95, 191)' });
    await ask(page, 'a lantern');
    await settledReply(page);
    const size = await w.input.evaluate((el) => getComputedStyle(el).fontSize);
    assert.equal(size, '15px');
    assert.equal(await page.evaluate(() => document.styleSheets.length), sheetsBefore, 'no styles added to the shop');
    assert.equal(await page.evaluate(() => window.t), 'shop', 'shop globals untouched');
    await page.context().close();
  });
});

describe('replies that must survive the network', () => {
  let node;
  let fake;
  before(async () => {
    fake = await fakeOpenAi();
    node = await startNode(modelEnv(fake));
  });
  after(async () => { await node.stop(); await fake.stop(); });

  test('a socket cut mid-reply loses nothing and doubles nothing', async () => {
    const front = await proxy(node.port);
    closeLater(front, () => front.stop());
    fake.always({ tokens: words(60), delayMs: 40, firstDelayMs: 600 });
    const page = await freshPage();
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws));
    await page.goto(`${front.url}/demo/`);
    await ask(page, 'tell me about tents');
    const w = widget(page);
    const typing = page.locator('mikabot-widget .typing');
    await typing.waitFor({ state: 'visible' });
    assert.equal(await typing.getAttribute('aria-label'), 'The assistant is typing');
    await until(async () => (await w.replies.last().textContent()).includes('w10 '), 'ten tokens');
    front.cut();
    const requestsBefore = fake.requests.length;
    const text = await settledReply(page);
    assert.equal(text, words(60).join('').trim());
    assert.ok(sockets.length >= 2, `the widget reconnected (${sockets.length} sockets)`);
    assert.equal(fake.requests.length, requestsBefore, 'the reply was not generated again');
    assert.equal(await page.locator('mikabot-widget .msg.assistant[data-state=done]').count(), 1);
    await page.context().close();
  });

  test('a reply still streaming when the shopper changes page finishes on the next page', async () => {
    fake.always({ tokens: words(50), delayMs: 40 });
    const page = await freshPage();
    await page.goto(`${node.url}/demo/`);
    await ask(page, 'tell me about stoves');
    const w = widget(page);
    await until(async () => (await w.replies.last().textContent()).includes('w5 '), 'some tokens');
    await page.goto(`${node.url}/demo/products/rain-jacket-01`);
    const text = await settledReply(page);
    assert.equal(text, words(50).join('').trim());
    assert.equal(await w.replies.count(), 1, 'the reply is shown once');
    await page.context().close();
  });

  test('the node unreachable: an offline notice, background retries, queued message sent', async () => {
    const front = await proxy(node.port);
    closeLater(front, () => front.stop());
    fake.always({ tokens: ['Back ', 'online.'] });
    const page = await freshPage();
    await page.goto(`${front.url}/demo/`);
    await ask(page, 'hello');
    await settledReply(page);
    const w = widget(page);
    await front.stop();
    await until(async () => /Reconnecting/.test(await w.status.textContent()), 'the offline notice');
    assert.equal(await w.status.getAttribute('role'), 'status');
    await ask(page, 'are you there?');
    assert.match(await page.locator('mikabot-widget .msg.shopper .meta').last().textContent(), /Sending/);
    await front.start();
    assert.equal(await settledReply(page, 2, 60000), 'Back online.');
    assert.equal((await w.status.textContent()).trim(), '');
    await page.context().close();
  });

  test('a model failure shows an apology and a retry button that works', async () => {
    fake.always({ status: 500 });
    const page = await freshPage();
    await page.goto(`${node.url}/demo/`);
    await ask(page, 'a kettle');
    const note = page.locator('mikabot-widget .note');
    await note.waitFor({ timeout: 15000 });
    assert.match(await note.textContent(), /could not answer/);
    fake.always({ tokens: ['Here ', 'is ', 'a kettle.'] });
    await note.getByRole('button', { name: 'Try again' }).click();
    assert.equal(await settledReply(page), 'Here is a kettle.');
    assert.equal(await note.count(), 0);
    await page.context().close();
  });

  test('model text cannot run script, load images or link off the store', async () => {
    const foreign = await foreignHost();
    closeLater(foreign, () => foreign.stop());
    const text = 'Here <img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script>\n'
      + `[Click me](javascript:window.__pwned=3) **bold** and *soft* <a href="${foreign.origin}/a">a</a>\n`
      + `![tracker](${foreign.origin}/pixel.png)\n`
      + `[Foreign](${foreign.origin}/page) and [Ours](/demo/)\n\n- one\n- two`;
    const tokens = text.match(/[\s\S]{1,7}/g);
    fake.always({ tokens });
    const page = await freshPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${node.url}/demo/`);
    await ask(page, 'show me');
    await settledReply(page);
    await sleep(300);
    const bubble = page.locator('mikabot-widget .msg.assistant[data-state=done] .bubble').last();
    const shape = await bubble.evaluate((el) => ({
      imgs: el.querySelectorAll('img').length,
      scripts: el.querySelectorAll('script').length,
      links: [...el.querySelectorAll('a')].map((a) => a.getAttribute('href')),
      strong: [...el.querySelectorAll('strong')].map((s) => s.textContent),
      em: [...el.querySelectorAll('em')].map((s) => s.textContent),
      items: el.querySelectorAll('li').length,
      text: el.textContent,
    }));
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(shape.imgs, 0);
    assert.equal(shape.scripts, 0);
    assert.deepEqual(shape.links, [new URL('/demo/', node.url).href]);
    assert.deepEqual(shape.strong, ['bold']);
    assert.deepEqual(shape.em, ['soft']);
    assert.equal(shape.items, 2);
    assert.ok(shape.text.includes('<img src=x onerror='), 'markup is shown as text');
    assert.deepEqual(foreign.hits, [], 'nothing reached the foreign host');
    assert.deepEqual(requests.filter((u) => u.startsWith(foreign.origin)), []);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
});

describe('limits the shopper can meet', () => {
  test('rate limited: the widget says when it will send again and keeps the message', async () => {
    const node = await startNode({ MIKABOT__WIDGET__MESSAGES_PER_MINUTE: '1' });
    try {
      const page = await freshPage();
      await page.goto(`${node.url}/demo/`);
      await ask(page, 'tent');
      await settledReply(page);
      await ask(page, 'and a stove');
      const w = widget(page);
      const notice = await until(async () => {
        const text = await w.status.textContent();
        return /Sending again in \d+ s/.test(text) && text;
      }, 'the rate-limit notice');
      const seconds = Number(/in (\d+) s/.exec(notice)[1]);
      assert.ok(seconds > 0 && seconds <= 60, notice);
      const meta = page.locator('mikabot-widget .msg.shopper .meta').last();
      assert.match(await meta.textContent(), /Sending/, 'the message waits to be sent');
      await page.context().close();
    } finally {
      await node.stop();
    }
  });
});

describe('a store with its own branding', () => {
  const TOKEN = 'browser-test-operator-token-4f1e9a0b';
  let node;
  before(async () => {
    node = await startNode({ MIKABOT__OPERATOR__API_TOKEN: TOKEN });
    const response = await fetch(`${node.url}/v1/stores/demo/widget`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        color: '#ffd000', title: 'Ask Anna', greeting: 'Hallo! **Waarmee** kan ik helpen?', position: 'left', language: 'nl',
      }),
    });
    assert.equal(response.status, 200, await response.text());
  });
  after(async () => { await node.stop(); });

  test('colour, title, greeting, corner and language come from the store; text stays readable', async () => {
    const page = await freshPage({ locale: 'pt-BR' });
    await page.goto(`${node.url}/demo/`);
    const w = widget(page);
    await w.launcher.click();
    const box = await w.launcher.boundingBox();
    assert.ok(box.x < 100, `the launcher sits bottom left (x=${box.x})`);
    assert.equal(await page.locator('mikabot-widget h2').textContent(), 'Ask Anna');
    assert.equal(await w.panel.getAttribute('aria-label'), 'Ask Anna');
    const greeting = page.locator('mikabot-widget .msg[data-state=greeting] .bubble');
    assert.equal(await greeting.textContent(), 'Hallo! Waarmee kan ik helpen?');
    assert.equal(await greeting.locator('strong').textContent(), 'Waarmee');
    // pt-BR is not offered: the store's default language, Dutch.
    assert.equal(await w.input.getAttribute('placeholder'), 'Vraag iets over onze producten…');
    await ask(page, 'regenjas');
    await settledReply(page);
    const ratios = await page.evaluate(() => {
      const root = document.querySelector('mikabot-widget').shadowRoot;
      const rgb = (c) => c.match(/[\d.]+/g).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement || e.getRootNode().host) {
          const c = getComputedStyle(e).backgroundColor;
          if (rgb(c)[3] !== 0 && c !== 'transparent') return c;
        }
        return 'rgb(255, 255, 255)';
      };
      const ratio = (el) => {
        const a = lum(rgb(getComputedStyle(el).color));
        const b = lum(rgb(background(el)));
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      };
      return Object.fromEntries(['h2', '.x', '.launcher', '.send', '.shopper .bubble', '.assistant .bubble',
        '.cards .name', '.cards .price', 'textarea'].map((sel) => [sel, ratio(root.querySelector(sel))]));
    });
    for (const [selector, ratio] of Object.entries(ratios)) {
      assert.ok(ratio >= 4.5, `${selector}: contrast ${ratio.toFixed(2)}:1`);
    }
    await page.context().close();
  });
});

describe('the script a shop loads', () => {
  let node;
  before(async () => { node = await startNode(); });
  after(async () => { await node.stop(); });

  test('weighs at most 15 KB gzipped and is served cacheable', async () => {
    const response = await fetch(`${node.url}/widget.js`, { headers: { 'accept-encoding': 'identity' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(response.headers.get('cache-control'), /max-age=\d+/);
    const etag = response.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    const body = Buffer.from(await response.arrayBuffer());
    const gzipped = zlib.gzipSync(body, { level: 9 }).length;
    console.log(`widget.js: ${body.length} bytes, ${gzipped} bytes gzipped`);
    assert.ok(gzipped <= 15 * 1024, `${gzipped} bytes gzipped`);
    const again = await fetch(`${node.url}/widget.js`, { headers: { 'if-none-match': etag, 'accept-encoding': 'identity' } });
    assert.equal(again.status, 304);
    const wire = await new Promise((resolve, reject) => {
      import('node:http').then(({ get }) => get(`${node.url}/widget.js`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], bytes: Buffer.concat(chunks).length }));
      }).on('error', reject));
    });
    assert.equal(wire.encoding, 'gzip');
    assert.ok(wire.bytes <= 15 * 1024, `${wire.bytes} bytes on the wire`);
  });
});
