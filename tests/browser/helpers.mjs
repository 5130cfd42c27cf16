// Real parts for the browser tests: the node binary on a fresh sled
// directory, an OpenAI-compatible streaming server, a TCP proxy whose
// connections a test can cut, and Debian's Chromium driven by playwright-core.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const RESULTS = path.join(ROOT, 'results', 'browser');
const BINARY = process.env.MIKABOT_BIN || path.join(ROOT, 'target', 'debug', 'mikabot');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Waits until `check` returns a truthy value, or fails after `ms`. */
export async function until(check, what, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Starts the node binary with its embedded defaults plus `env`. */
export async function startNode(env = {}) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mikabot-browser-'));
  const child = spawn(BINARY, [], {
    env: {
      PATH: process.env.PATH,
      MIKABOT__SERVER__PORT: String(port),
      MIKABOT__SERVER__PUBLIC_URL: `http://127.0.0.1:${port}`,
      MIKABOT__STORAGE__DATA_DIR: dir,
      MIKABOT__LOG__FILTER: 'warn',
      MIKABOT__OFFLINE__TOKEN_DELAY_MS: '5',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`the node exited: ${log}`);
    try { return (await fetch(`${url}/healthz`)).ok; } catch { return false; }
  }, 'the node to listen', 60000);
  return {
    port,
    url,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * An OpenAI-compatible server speaking the streaming chat completions wire
 * format: a role chunk, content chunks, a finish chunk and `data: [DONE]`;
 * or an OpenAI error body with its status. Each request takes the next
 * scripted behaviour, or the fallback.
 */
export async function fakeOpenAi() {
  const queue = [];
  let fallback = { tokens: ['Hello.'] };
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', async () => {
      requests.push(JSON.parse(body || '{}'));
      const b = queue.length ? queue.shift() : fallback;
      if (b.status) {
        res.writeHead(b.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'The server had an error.', type: 'server_error', param: null, code: null } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const chunk = (delta, finish = null) => `data: ${JSON.stringify({
        id: 'chatcmpl-browser', object: 'chat.completion.chunk', created: 1763856000, model: 'fake-model',
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      })}\n\n`;
      res.write(chunk({ role: 'assistant', content: '' }));
      if (b.firstDelayMs) await sleep(b.firstDelayMs);
      for (const token of b.tokens) {
        if (res.destroyed) return;
        if (b.delayMs) await sleep(b.delayMs);
        res.write(chunk({ content: token }));
      }
      res.write(chunk({}, 'stop'));
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${server.address().port}/v1`,
    requests,
    script: (...behaviours) => queue.push(...behaviours),
    always: (behaviour) => { fallback = behaviour; },
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** Settings for a node whose model is `fake`. */
export function modelEnv(fake) {
  return {
    MIKABOT__MODEL__PROVIDER: 'openai',
    MIKABOT__MODEL__BASE_URL: fake.baseUrl,
    MIKABOT__MODEL__RETRY_BUDGET_SECS: '1',
    MIKABOT__MODEL__RETRY_BASE_DELAY_MS: '50',
    // The tests script failures; the breaker would answer offline instead.
    MIKABOT__MODEL__BREAKER_FAILURES: '1000',
  };
}

/**
 * A TCP proxy in front of the node. `cut()` drops every connection through
 * it (as a network failure would); `stop()` also stops listening, so the
 * node is unreachable until `start()`.
 */
export async function proxy(target) {
  const sockets = new Set();
  let connections = 0;
  const port = await freePort();
  let server = null;
  const listen = () => new Promise((resolve) => {
    server = net.createServer((client) => {
      connections += 1;
      const upstream = net.connect(target, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    server.listen(port, '127.0.0.1', resolve);
  });
  await listen();
  const cut = () => { for (const s of sockets) s.destroy(); };
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    cut,
    stop: () => new Promise((resolve) => { server.close(resolve); cut(); }),
    start: listen,
  };
}

/**
 * An HTTP server on another origin that counts what reaches it; `/shop`
 * answers with `page` (HTML), if given.
 */
export async function foreignHost(page = null) {
  const hits = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url);
    if (page && req.url === '/shop') res.writeHead(200, { 'content-type': 'text/html' });
    res.end(page && req.url === '/shop' ? page : 'x');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    hits,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** The widget's parts, found through its open shadow root. */
export function widget(page) {
  return {
    launcher: page.locator('mikabot-widget .launcher'),
    panel: page.locator('mikabot-widget .panel'),
    input: page.locator('mikabot-widget textarea'),
    status: page.locator('mikabot-widget .status'),
    log: page.locator('mikabot-widget .log'),
    replies: page.locator('mikabot-widget .msg.assistant .bubble'),
    shopper: page.locator('mikabot-widget .msg.shopper .bubble'),
    announcer: page.locator('mikabot-widget [aria-live=polite]'),
  };
}

/** Opens the chat and sends `text`. */
export async function ask(page, text) {
  const w = widget(page);
  if (!(await w.panel.isVisible())) await w.launcher.click();
  await w.input.fill(text);
  await w.input.press('Enter');
}

/** Waits until `count` replies have finished; returns the newest's text. */
export async function settledReply(page, count = 1, ms = 20000) {
  const done = page.locator('mikabot-widget .msg.assistant[data-state=done] .bubble');
  await until(async () => (await done.count()) >= count, `${count} finished replies`, ms);
  return (await done.nth(count - 1).textContent()).trim();
}

export function screenshotPath(name) {
  fs.mkdirSync(RESULTS, { recursive: true });
  return path.join(RESULTS, name);
}
