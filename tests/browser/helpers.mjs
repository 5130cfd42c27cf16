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
      MIKABOT__STORAGE__DATA_DIR: path.join(dir, 'db'),
      MIKABOT__STORAGE__KEYRING_FILE: path.join(dir, 'keyring'),
      MIKABOT__STORAGE__MASTER_KEY_FILE: path.join(dir, 'master.key'),
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
    dir,
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

/**
 * A local SMTP sink on 127.0.0.1, as `tests/support/src/smtp.rs` is for the
 * Rust tests: enough RFC 5321 for a plain, unauthenticated client (EHLO/HELO,
 * MAIL, RCPT, DATA with dot-stuffing undone, RSET, NOOP, QUIT), command lines
 * up to 512 bytes, text lines up to 1000 and messages up to 1 MiB (`552`).
 * Each accepted message is kept as `{ from, to, raw, subject, body }`: the
 * subject with RFC 2047 encoded words decoded, the body the decoded text
 * (quoted-printable or base64 undone; for multipart, the first text/plain
 * part, else the first part) with `\n` line endings.
 */
export async function startSmtpSink() {
  const MAX_COMMAND_BYTES = 512;
  const MAX_LINE_BYTES = 1000;
  const MAX_MESSAGE_BYTES = 1024 * 1024;
  const MAX_RECIPIENTS = 100;
  const mails = [];
  // Called after each new mail, so that waiters need not poll.
  const listeners = new Set();
  // Per recipient (lower-cased), the index after the last mail waitFor returned.
  const cursors = new Map();
  const sockets = new Set();

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const session = smtpSession((text) => socket.write(`${text}\r\n`), () => socket.end(), (mail) => {
      mails.push(mail);
      for (const listener of [...listeners]) listener();
      return mails.length - 1;
    }, { MAX_COMMAND_BYTES, MAX_LINE_BYTES, MAX_MESSAGE_BYTES, MAX_RECIPIENTS });
    socket.on('data', session);
    socket.write('220 localhost Mikabot test SMTP sink ready\r\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

  const next = (address) => {
    const from = cursors.get(address) ?? 0;
    for (let index = from; index < mails.length; index += 1) {
      if (mails[index].to.some((to) => to.toLowerCase() === address)) return index;
    }
    return -1;
  };
  return {
    port: server.address().port,
    messages: () => mails.slice(),
    /** The next mail to `to` not returned before; fails after `ms`. */
    waitFor(to, ms = 15000) {
      const address = to.toLowerCase();
      return new Promise((resolve, reject) => {
        const settle = () => {
          const index = next(address);
          if (index === -1) return false;
          cursors.set(address, Math.max(cursors.get(address) ?? 0, index + 1));
          resolve(mails[index]);
          return true;
        };
        if (settle()) return;
        const listener = () => {
          if (!settle()) return;
          listeners.delete(listener);
          clearTimeout(timer);
        };
        const timer = setTimeout(() => {
          listeners.delete(listener);
          const seen = mails.map((mail) => `to ${mail.to.join(', ')}: ${mail.subject}`);
          reject(new Error(`no new mail to ${to} within ${ms} ms; the sink received ${JSON.stringify(seen)}`));
        }, ms);
        listeners.add(listener);
      });
    },
    /** The first http(s) URL in `mail`'s body containing `contains`, or null. */
    link: (mail, contains) => (mail.body.match(/https?:\/\/[^\s<>"]*/g) ?? []).find((url) => url.includes(contains)) ?? null,
    stop: () => new Promise((resolve) => {
      server.close(resolve);
      for (const socket of sockets) socket.destroy();
    }),
  };
}

/**
 * One SMTP conversation: returns the handler for the socket's data. Lines
 * are handled in order as they arrive, so pipelined commands work.
 */
function smtpSession(reply, close, store, limits) {
  let buffer = Buffer.alloc(0);
  let closed = false;
  let greeted = false;
  let envelope = { from: null, to: [] };
  // While reading DATA: the message's lines so far, or null.
  let data = null;
  let size = 0;
  let tooBig = false;

  const end = (text) => {
    reply(text);
    close();
    closed = true;
  };
  const parsePath = (argument, keyword) => {
    if (argument.slice(0, keyword.length).toUpperCase() !== keyword) return null;
    const found = /^\s*<([^>]*)>(.*)$/.exec(argument.slice(keyword.length));
    if (!found) return null;
    let [, address, parameters] = found;
    // A source route (`<@relay:user@host>`) is to be ignored (RFC 5321 4.1.2).
    if (address.startsWith('@')) {
      const colon = address.indexOf(':');
      if (colon === -1) return null;
      address = address.slice(colon + 1);
    }
    return { address, parameters };
  };
  const checkMailParameters = (parameters) => {
    for (const parameter of parameters.split(/\s+/).filter(Boolean)) {
      const eq = parameter.indexOf('=');
      const keyword = (eq === -1 ? parameter : parameter.slice(0, eq)).toUpperCase();
      const value = eq === -1 ? '' : parameter.slice(eq + 1);
      if (keyword === 'SIZE') {
        if (!/^\d+$/.test(value)) return '501 Syntax: SIZE=<number>';
        if (Number(value) > limits.MAX_MESSAGE_BYTES) return '552 Message size exceeds fixed maximum message size';
      } else if (keyword === 'BODY' && ['7BIT', '8BITMIME'].includes(value.toUpperCase())) {
        // Advertised; nothing to do.
      } else if (!(keyword === 'SMTPUTF8' && value === '')) {
        return '555 MAIL FROM parameters not recognized';
      }
    }
    return null;
  };
  const command = (line) => {
    const space = line.indexOf(' ');
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    const argument = space === -1 ? '' : line.slice(space + 1).trim();
    switch (verb) {
      case 'EHLO':
      case 'HELO':
        if (!argument) return reply(`501 Syntax: ${verb} hostname`);
        greeted = true;
        envelope = { from: null, to: [] };
        if (verb === 'HELO') return reply('250 localhost');
        return reply([
          `250-localhost greets ${argument}`, '250-8BITMIME', '250-SMTPUTF8',
          `250-SIZE ${limits.MAX_MESSAGE_BYTES}`, '250 PIPELINING',
        ].join('\r\n'));
      case 'MAIL': {
        if (!greeted) return reply('503 Send EHLO first');
        if (envelope.from !== null) return reply('503 Nested MAIL command');
        const path = parsePath(argument, 'FROM:');
        if (!path) return reply('501 Syntax: MAIL FROM:<address>');
        const refusal = checkMailParameters(path.parameters);
        if (refusal) return reply(refusal);
        envelope.from = path.address;
        return reply('250 OK');
      }
      case 'RCPT': {
        if (envelope.from === null) return reply('503 Need MAIL before RCPT');
        const path = parsePath(argument, 'TO:');
        if (!path || !path.address) return reply('501 Syntax: RCPT TO:<address>');
        if (path.parameters.trim()) return reply('555 RCPT TO parameters not recognized');
        if (envelope.to.length >= limits.MAX_RECIPIENTS) return reply('452 Too many recipients');
        envelope.to.push(path.address);
        return reply('250 OK');
      }
      case 'DATA':
        if (argument) return reply('501 Syntax: DATA');
        if (envelope.from === null) return reply('503 Need MAIL before DATA');
        if (!envelope.to.length) return reply('503 Need RCPT before DATA');
        data = [];
        size = 0;
        tooBig = false;
        return reply('354 End data with <CR><LF>.<CR><LF>');
      case 'RSET':
        envelope = { from: null, to: [] };
        return reply('250 OK');
      case 'NOOP':
        return reply('250 OK');
      case 'QUIT':
        return end('221 Bye');
      case 'VRFY': case 'EXPN': case 'HELP': case 'TURN':
      case 'STARTTLS': case 'AUTH': case 'BDAT': case 'ETRN':
        return reply('502 Command not implemented');
      default:
        return reply('500 Command unrecognized');
    }
  };
  // Reads message text up to the lone `.` line, undoing dot-stuffing (RFC
  // 5321 4.5.2); a message over the limit is read to its end and dropped.
  const dataLine = (line) => {
    if (stripLineEnding(line).equals(Buffer.from('.'))) {
      const message = Buffer.concat(data);
      data = null;
      const { from, to } = envelope;
      envelope = { from: null, to: [] };
      if (tooBig) return reply('552 Message exceeds fixed maximum message size');
      const queued = store(parseMail(from, to, message));
      return reply(`250 OK queued as ${queued}`);
    }
    const text = line[0] === 0x2e ? line.subarray(1) : line;
    if (size + text.length > limits.MAX_MESSAGE_BYTES) {
      tooBig = true;
      data = [];
    }
    if (!tooBig) {
      data.push(text);
      size += text.length;
    }
  };

  return (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (!closed) {
      const limit = data ? limits.MAX_LINE_BYTES : limits.MAX_COMMAND_BYTES;
      const newline = buffer.indexOf(0x0a);
      if (newline === -1 ? buffer.length >= limit : newline + 1 > limit) {
        // The rest of the line cannot be told from what follows it.
        end('500 Line too long');
        return;
      }
      if (newline === -1) return;
      const line = buffer.subarray(0, newline + 1);
      buffer = buffer.subarray(newline + 1);
      if (data) dataLine(line);
      else command(stripLineEnding(line).toString('utf8'));
    }
  };
}

/** `line` without its `\n` or `\r\n`. */
function stripLineEnding(line) {
  let end = line.length;
  if (line[end - 1] === 0x0a) end -= 1;
  if (line[end - 1] === 0x0d) end -= 1;
  return line.subarray(0, end);
}

// MIME decoding works on "binary" strings (one char per byte, latin1), so
// that byte offsets and string offsets agree; text is decoded from bytes last.

function parseMail(from, to, message) {
  const binary = message.toString('latin1');
  const entity = parseEntity(binary);
  const subject = entity.headers.get('subject');
  return {
    from,
    to,
    raw: message.toString('utf8'),
    subject: subject === undefined ? '' : decodeEncodedWords(subject),
    body: entityText(entity, 0, true) ?? entityText(entity, 0, false) ?? '',
  };
}

/** Headers (first of each name, unfolded) and body, split at the first empty line. */
function parseEntity(binary) {
  const headers = [];
  let offset = 0;
  while (offset < binary.length) {
    const newline = binary.indexOf('\n', offset);
    const end = newline === -1 ? binary.length : newline + 1;
    const line = binary.slice(offset, end).replace(/\r?\n$/, '');
    offset = end;
    if (line === '') break;
    if (/^[ \t]/.test(line)) {
      if (headers.length) headers[headers.length - 1][1] += line;
    } else {
      const colon = line.indexOf(':');
      if (colon !== -1) headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1)]);
    }
  }
  const map = new Map();
  for (const [name, value] of headers) if (!map.has(name)) map.set(name, value.trim());
  return { headers: map, body: binary.slice(offset) };
}

/** The decoded text of the first leaf, depth first, that is text/plain (or any). */
function entityText(entity, depth, plainOnly) {
  const { type, parameters } = parseContentType(entity.headers.get('content-type'));
  if (type.startsWith('multipart/')) {
    if (!parameters.boundary || depth >= 8) return null;
    for (const part of splitMultipart(entity.body, parameters.boundary)) {
      const text = entityText(parseEntity(part), depth + 1, plainOnly);
      if (text !== null) return text;
    }
    return null;
  }
  if (plainOnly && type !== 'text/plain') return null;
  const encoding = (entity.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  let bytes = entity.body;
  if (encoding === 'quoted-printable') bytes = decodeQuotedPrintable(bytes);
  else if (encoding === 'base64') bytes = Buffer.from(bytes.replace(/\s+/g, ''), 'base64').toString('latin1');
  return decodeCharset(bytes, parameters.charset ?? 'utf-8').replaceAll('\r\n', '\n');
}

/** Media type (lower case) and parameters; no header means text/plain. */
function parseContentType(value) {
  if (value === undefined) return { type: 'text/plain', parameters: {} };
  const fields = [];
  let field = '';
  let quoted = false;
  let escaped = false;
  for (const c of value) {
    if (escaped) { field += c; escaped = false; }
    else if (c === '\\' && quoted) escaped = true;
    else if (c === '"') quoted = !quoted;
    else if (c === ';' && !quoted) { fields.push(field); field = ''; }
    else field += c;
  }
  fields.push(field);
  const parameters = {};
  for (const f of fields.slice(1)) {
    const eq = f.indexOf('=');
    if (eq !== -1) parameters[f.slice(0, eq).trim().toLowerCase()] = f.slice(eq + 1).trim();
  }
  return { type: fields[0].trim().toLowerCase(), parameters };
}

/** The parts between `--boundary` lines; the line break before one belongs to it. */
function splitMultipart(body, boundary) {
  const delimiter = `--${boundary}`;
  const parts = [];
  let start = null;
  let offset = 0;
  while (offset < body.length) {
    const newline = body.indexOf('\n', offset);
    const end = newline === -1 ? body.length : newline + 1;
    const lineStart = offset;
    const line = body.slice(offset, end);
    offset = end;
    if (!line.startsWith(delimiter)) continue;
    const rest = line.slice(delimiter.length).trimEnd();
    const closing = rest === '--';
    if (!closing && rest !== '') continue;
    if (start !== null) parts.push(body.slice(start, lineStart).replace(/\r?\n$/, ''));
    if (closing) break;
    start = offset;
  }
  return parts;
}

/** `=XX` escapes, soft line breaks and trailing padding undone (RFC 2045 6.7). */
function decodeQuotedPrintable(binary) {
  return binary.split(/(?<=\n)/).map((line) => {
    const newline = line.endsWith('\n');
    let content = line.replace(/\r?\n$/, '').replace(/[ \t\r\n\f]+$/, '');
    const soft = content.endsWith('=');
    if (soft) content = content.slice(0, -1);
    return decodeHexEscapes(content, false) + (newline && !soft ? '\r\n' : '');
  }).join('');
}

/** `=XX` replaced by its byte, and `_` by a space if `underscoreIsSpace` (RFC 2047 "Q"). */
function decodeHexEscapes(binary, underscoreIsSpace) {
  return binary.replace(/=([0-9A-Fa-f]{2})|_/g, (match, hex) => {
    if (hex) return String.fromCharCode(parseInt(hex, 16));
    return underscoreIsSpace ? ' ' : match;
  });
}

/** ISO-8859-1 byte for byte; anything else read as UTF-8. */
function decodeCharset(binary, charset) {
  const bytes = Buffer.from(binary, 'latin1');
  return ['iso-8859-1', 'latin1', 'l1'].includes(charset.toLowerCase()) ? bytes.toString('latin1') : bytes.toString('utf8');
}

/**
 * RFC 2047 encoded words decoded; whitespace between adjacent words dropped
 * and their bytes joined, so a character split across two words survives.
 */
function decodeEncodedWords(binary) {
  let out = '';
  let pending = null;
  let last = 0;
  const flush = () => {
    if (pending) out += decodeCharset(pending.bytes, pending.charset);
    pending = null;
  };
  for (const word of binary.matchAll(/=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g)) {
    const before = binary.slice(last, word.index);
    const adjacent = pending !== null && before.trim() === '';
    const charset = word[1].split('*')[0];
    const text = word[3];
    const bytes = /[bB]/.test(word[2])
      ? Buffer.from(text, 'base64').toString('latin1')
      : decodeHexEscapes(text, true);
    if (adjacent && pending.charset.toLowerCase() === charset.toLowerCase()) {
      pending.bytes += bytes;
    } else {
      flush();
      if (!adjacent) out += decodeCharset(before, 'utf-8');
      pending = { charset, bytes };
    }
    last = word.index + word[0].length;
  }
  flush();
  return out + decodeCharset(binary.slice(last), 'utf-8');
}
