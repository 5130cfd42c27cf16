// The live desk in Debian's Chromium, two browser contexts against a real
// node and an OpenAI-compatible server: a shopper chats on the demo shop
// while the demo owner watches the reply's tokens arrive on the live page,
// takes over mid-reply, writes to the shopper, and hands back; the
// assistant answers the next message.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { ask, fakeOpenAi, launchBrowser, modelEnv, screenshotPath, settledReply, startNode, until, widget } from './helpers.mjs';

let browser;
let node;
let fake;

before(async () => {
  browser = await launchBrowser();
  fake = await fakeOpenAi();
  node = await startNode({ ...modelEnv(fake), MIKABOT__DASHBOARD__DEMO_OWNER: 'true' });
});
after(async () => {
  await node.stop();
  await fake.stop();
  await browser.close();
});

async function context() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return { ctx, page };
}

test('an owner watches a reply stream, takes over mid-reply, writes, and hands back', async () => {
  const password = fs.readFileSync(path.join(node.dir, 'db', 'demo-owner-password'), 'utf8').trim();
  const owner = await context();
  const shopper = await context();
  try {
    // The owner signs in and opens the live desk.
    await owner.page.goto(`${node.url}/dashboard/login`);
    const reject = owner.page.getByRole('button', { name: 'Reject all' });
    if (await reject.isVisible()) await reject.click();
    await owner.page.getByLabel('Email').fill('demo@mikabot.localhost');
    await owner.page.getByLabel('Password').fill(password);
    await owner.page.getByRole('button', { name: 'Sign in' }).click();
    await owner.page.waitForURL(/\/dashboard/);
    await owner.page.goto(`${node.url}/dashboard/stores/demo/live`);

    // The shopper asks; the model streams slowly.
    const words = Array.from({ length: 60 }, (_, i) => `word${i} `);
    fake.script({ tokens: words, delayMs: 150 });
    await shopper.page.goto(`${node.url}/demo/`);
    await ask(shopper.page, 'a tent for two');

    // The conversation appears on the desk without reload; the owner opens
    // it and sees the reply arrive token by token.
    const row = owner.page.locator('#desk-list [data-conversation]').first();
    await row.waitFor({ timeout: 20000 });
    await row.click();
    const streaming = owner.page.locator('#desk-messages .reply-streaming');
    await until(async () => ((await streaming.textContent().catch(() => '')) || '').includes('word3 '), 'tokens on the desk', 20000);
    const seenEarly = await streaming.textContent();
    await until(async () => ((await streaming.textContent().catch(() => '')) || '').length > seenEarly.length, 'more tokens on the desk');

    // Take over mid-reply: the shopper sees who joined, the reply stops.
    await owner.page.locator('#take-over').click();
    const w = widget(shopper.page);
    const joined = shopper.page.locator('mikabot-widget li.msg.system[data-event=agent_joined]');
    await joined.waitFor({ timeout: 15000 });
    assert.match(await joined.textContent(), /Demo owner/);
    const cut = shopper.page.locator('mikabot-widget .msg.assistant[data-finish=taken_over] .bubble');
    await cut.waitFor({ timeout: 15000 });
    const partial = (await cut.textContent()).trim();
    assert.ok(partial.startsWith('word0') && !partial.includes('word59'), `the reply stopped part-way: ${partial}`);

    // The owner writes; the shopper sees the person's message with a badge.
    await owner.page.locator('#agent-text').fill('Hi, this is the shop. The Ridge 2 is our best two-person tent.');
    await owner.page.locator('#agent-form button[type=submit]').click();
    const fromPerson = shopper.page.locator('mikabot-widget li.msg.agent .bubble');
    await fromPerson.waitFor({ timeout: 15000 });
    assert.match(await fromPerson.textContent(), /Ridge 2/);
    assert.equal(await shopper.page.locator('mikabot-widget li.msg.agent .badge').count(), 1);
    await shopper.page.screenshot({ path: screenshotPath('desk-shopper-taken-over.png') });
    await owner.page.screenshot({ path: screenshotPath('desk-owner-live.png') });

    // Hand back: the assistant answers the next message.
    await owner.page.locator('#hand-back').click();
    await shopper.page.locator('mikabot-widget li.msg.system[data-event=handed_back]').waitFor({ timeout: 15000 });
    fake.script({ tokens: ['Happy ', 'camping!'] });
    await ask(shopper.page, 'thanks!');
    const answer = await settledReply(shopper.page, 2);
    assert.equal(answer, 'Happy camping!');
    const lastRequest = JSON.stringify(fake.requests.at(-1));
    assert.ok(lastRequest.includes('Ridge 2'), 'the assistant sees what the person wrote');
    assert.deepEqual(owner.page.errors, []);
    assert.deepEqual(shopper.page.errors, []);
    assert.ok(await w.log.isVisible());
  } finally {
    await owner.ctx.close();
    await shopper.ctx.close();
  }
});
