// Shared by the browser tests: start the debug `hark serve` on a fresh data
// dir, launch Debian's chromium through playwright-core, and drive the UI the
// way a person does. Waits poll with bounded timeouts; no fixed sleeps.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { deflateSync } from 'node:zlib';
import { createHmac } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '..', '..');
export const artifacts = resolve(here, '..', 'test-artifacts');
const binary = process.env.HARK_BIN ?? join(repo, 'target', 'debug', 'hark');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Start `hark serve` on `addr` (default port 0) with `dataDir` (and the TOML
 * file `config`, if given; `env`: settings as HARK_… variables, added to the
 * environment); resolves once it listens.
 */
export async function startServer({ dataDir, port = 0, config, env = {} } = {}) {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'hark-web-test-'));
  const args = ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dir, ...(config ? ['--config', config] : [])];
  const proc = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
  });
  let log = '';
  const listening = new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`hark did not start in 30 s:\n${log}`)), 30_000);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = log.match(/hark listening on (https?):\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolvePort({ scheme: m[1], port: Number(m[2]) });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (c) => (log += c.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hark exited (${code}) before listening:\n${log}`));
    });
  });
  // If the test process dies (timeout, ^C), do not leave the server behind.
  const killOnExit = () => proc.kill('SIGKILL');
  process.on('exit', killOnExit);
  proc.on('exit', () => process.off('exit', killOnExit));
  const { scheme, port: actualPort } = await listening;
  const exited = new Promise((r) => proc.on('exit', r));
  return {
    port: actualPort,
    url: `${scheme}://127.0.0.1:${actualPort}`,
    dataDir: dir,
    log: () => log,
    /** Stop the server (SIGTERM, then SIGKILL after 5 s); keeps the data dir. */
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
    /** Stop the server and delete its data dir. */
    async destroy() {
      await this.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Launch Chromium. `fakeMedia`: a fake microphone and camera (a beeping tone)
 * granted without asking, for recording voice notes.
 */
export async function launchBrowser({ fakeMedia = false } = {}) {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs(fakeMedia) });
}

function chromiumArgs(fakeMedia = false) {
  return [
    '--headless=new',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    ...(fakeMedia ? ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] : []),
  ];
}

/**
 * Launch Chromium with a browser profile of its own on disk (a persistent
 * context: one context, its first page blank), `env` added to its
 * environment. Unlike `launchBrowser`'s contexts, which are off-the-record
 * profiles, Chromium finds this profile again by its path when a desktop
 * notification it showed is clicked.
 */
export async function launchProfile({ env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hark-web-profile-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: chromiumPath,
    args: chromiumArgs(),
    env: { ...process.env, ...env },
    viewport: { width: 1280, height: 800 },
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  };
  return context;
}

/** A fresh browser context (a separate "browser profile") with one page, errors collected. */
export async function openPage(browser, url, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('dialog', (d) => {
    page.dialogs = [...(page.dialogs ?? []), d.message()];
    // Only the app's own "Exit group?" confirm is expected; anything else fails the XSS test.
    void d.accept();
  });
  await page.goto(url);
  return { context, page };
}

/** Poll `fn` until it returns a truthy value (or stops throwing); fail after `timeout` ms. */
export async function eventually(fn, { timeout = 20_000, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = new Error(`${message}: got ${JSON.stringify(v)}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}: ${last?.message ?? last}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Register through the UI (then it logs in); resolves once the chat list
 * shows, the socket is live and (unless `keys` is false) the device's
 * encryption keys are published, so others can start an encrypted chat
 * with it at once.
 */
export async function register(page, username, displayName, password = 'password-123', { keys = true } = {}) {
  await page.getByTestId('auth-switch').click();
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=display_name]').fill(displayName);
  await page.locator('input[name=password]').fill(password);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  await waitLive(page);
  if (keys) await waitKeys(page);
}

/**
 * Wait until this device's encryption keys are published (the app marks
 * itself `data-e2e-published`). A message encrypted for a user before their
 * new device published its keys never reaches that device (Megolm's rule),
 * so tests that start encrypted chats right after a login wait for this.
 */
export async function waitKeys(page, timeout = 30_000) {
  await page.locator('[data-testid=app][data-e2e-published=true]').waitFor({ state: 'attached', timeout });
}

/** Wait until the connection banner is gone (the socket is live). */
export async function waitLive(page, timeout = 30_000) {
  await page.getByTestId('me-name').waitFor({ timeout });
  await page.getByTestId('conn-banner').waitFor({ state: 'detached', timeout });
}

/**
 * Start a one-to-one chat with `username`: from the sidebar search (a new
 * chat is end-to-end encrypted), or with `{ encrypted: false }` from
 * "New chat" with its "End-to-end encrypted" switch off (for what encrypted
 * chats do not carry yet: files, edits, forwards, search).
 */
export async function startDirect(page, username, { encrypted = true } = {}) {
  if (encrypted) {
    await page.getByTestId('search').fill(username);
    await page.locator(`[data-testid=user-result][data-username="${username}"]`).click();
  } else {
    await page.getByTestId('new-chat').click();
    await page.getByTestId('e2e-toggle').uncheck();
    await page.getByTestId('people-search').fill(username);
    await page.locator(`[data-testid=user-result][data-username="${username}"]`).click();
  }
  await page.getByTestId('chat-pane').waitFor();
  // On a phone the list (and its search) is hidden behind the chat.
  if (await page.getByTestId('search').isVisible()) await page.getByTestId('search').fill('');
}

export async function sendMessage(page, text) {
  const box = page.getByTestId('composer');
  await box.fill(text);
  await box.press('Enter');
}

/** Open the chat whose row title is `title`. */
export async function openChat(page, title) {
  await page.locator('[data-testid=chat-row]', { has: page.locator(`[data-testid=chat-title]`, { hasText: title }) }).first().click();
  await page.getByTestId('chat-header-title').filter({ hasText: title }).waitFor();
}

/** The tick status of my message with exactly this text. */
export function outStatus(page, text) {
  return page
    .locator('[data-testid=msg-out]', { has: page.locator('[data-testid=msg-text]', { hasText: text }) })
    .locator('.ticks')
    .getAttribute('data-status', { timeout: 2_000 });
}

export async function expectStatus(page, text, status, timeout = 20_000) {
  await eventually(async () => (await outStatus(page, text)) === status, {
    timeout,
    message: `"${text}" to show ${status}`,
  });
}

export function screenshotPath(name) {
  mkdirSync(artifacts, { recursive: true });
  return join(artifacts, name);
}

/** Log in over HTTP (for checks the UI cannot make, e.g. counting stored messages). */
export async function apiLogin(url, username, password = 'password-123') {
  const res = await fetch(`${url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, device_name: 'test checker' }),
  });
  if (!res.ok) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  const { token, user } = await res.json();
  return {
    user,
    token,
    async get(path) {
      const r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
      return r.json();
    },
    async post(path, body) {
      const r = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!r.ok) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
      return r.status === 204 ? null : r.json();
    },
    /** Send a message over HTTP; resolves to the ack. */
    send(chatId, text) {
      return this.post(`/v1/chats/${chatId}/messages`, { client_id: `t-${Math.random().toString(36).slice(2)}`, text });
    },
  };
}

/** Register a user over HTTP and log them in (a test-only device): quicker set-up than the UI. */
export async function apiRegister(url, username, displayName, password = 'password-123') {
  const res = await fetch(`${url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password, display_name: displayName }),
  });
  if (!res.ok) throw new Error(`register ${username}: ${res.status} ${await res.text()}`);
  return apiLogin(url, username, password);
}

/** The titles of the chat list's rows, top to bottom. */
export function rowTitles(page) {
  return page.locator('[data-testid=chat-list] [data-testid=chat-row] [data-testid=chat-title]').allTextContents();
}

/**
 * Route the context's Hark WebSockets through a switchable proxy, so one
 * browser can lose its connection while the server and the others stay up.
 * (`context.setOffline` alone does not drop open WebSockets in Chromium.)
 * `ctl.offline = true` via `goOffline()` closes the sockets and refuses new
 * ones; `ctl.dropAcksThenClose` swallows the next ack and drops the socket,
 * like a connection that dies between commit and answer.
 */
export async function switchableSocket(context) {
  const ctl = {
    offline: false,
    dropAcksThenClose: false,
    live: new Set(),
    /** Every ack frame the server sent, as parsed JSON. */
    acks: [],
    /** Every send frame the page wrote. */
    sends: [],
    async goOffline() {
      ctl.offline = true;
      await context.setOffline(true);
      for (const { page, server } of ctl.live) {
        page.close({ code: 4000, reason: 'test: network down' }).catch(() => {});
        server.close().catch(() => {});
      }
      ctl.live.clear();
    },
    async goOnline() {
      ctl.offline = false;
      await context.setOffline(false);
    },
  };
  await context.routeWebSocket(/\/v1\/ws$/, (page) => {
    if (ctl.offline) {
      page.close({ code: 4000, reason: 'test: network down' }).catch(() => {});
      return;
    }
    const server = page.connectToServer();
    const pair = { page, server };
    ctl.live.add(pair);
    page.onMessage((m) => {
      try {
        const f = JSON.parse(String(m));
        if (f.type === 'send') ctl.sends.push(f);
      } catch {}
      server.send(m);
    });
    server.onMessage((m) => {
      let f = null;
      try {
        f = JSON.parse(String(m));
      } catch {}
      if (f?.type === 'ack') {
        ctl.acks.push(f);
        if (ctl.dropAcksThenClose) {
          ctl.dropAcksThenClose = false;
          ctl.live.delete(pair);
          page.close({ code: 4001, reason: 'test: lost before the ack' }).catch(() => {});
          server.close().catch(() => {});
          return;
        }
      }
      page.send(m);
    });
    page.onClose(() => {
      ctl.live.delete(pair);
      server.close().catch(() => {});
    });
    server.onClose((code, reason) => {
      ctl.live.delete(pair);
      page.close({ code: code && code >= 3000 ? code : 4002, reason: reason ?? '' }).catch(() => {});
    });
  });
  return ctl;
}

/** Log in through the UI as an existing user (a new device); like `register`, waits for its keys unless `keys` is false. */
export async function login(page, username, password = 'password-123', { keys = true } = {}) {
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(password);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  await waitLive(page);
  if (keys) await waitKeys(page);
}

/** The chat-list row titled `title`. */
export function chatRow(page, title) {
  return page.locator('[data-testid=chat-row]', { has: page.locator('[data-testid=chat-title]', { hasText: title }) }).first();
}

/** Resolves when the row's unread badge reads `n` (0: no badge). */
export async function expectUnread(page, title, n, timeout = 20_000) {
  const badge = chatRow(page, title).getByTestId('unread-badge');
  if (n === 0) return badge.waitFor({ state: 'detached', timeout });
  await eventually(async () => (await badge.textContent({ timeout: 1_000 })) === String(n), {
    timeout,
    message: `unread badge of "${title}" to be ${n}`,
  });
}

/** A phone: 390 × 844, touch, mobile viewport rules. */
export const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

/** Elements (by a short description) that stick out of the window on the right: horizontal scrolling. */
export function overflowingElements(page) {
  return page.evaluate(() => {
    const out = [];
    const w = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > w) out.push(`document ${document.documentElement.scrollWidth}`);
    for (const el of document.querySelectorAll('#app *')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      if (r.right > w + 1 || r.left < -1) {
        // Clipped by a scroll container or overflow:hidden ancestor inside the window: not visible overflow.
        let clipped = false;
        for (let p = el.parentElement; p && p.id !== 'app'; p = p.parentElement) {
          const cs = getComputedStyle(p);
          if (cs.overflowX !== 'visible') {
            const pr = p.getBoundingClientRect();
            if (pr.right <= w + 1 && pr.left >= -1) clipped = true;
            break;
          }
        }
        if (!clipped) out.push(`${el.tagName.toLowerCase()}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
      }
    }
    return out.slice(0, 10);
  });
}

/** Visible controls smaller than 44 × 44 px (WCAG 2.5.5 target size), by a short description. */
export function smallTargets(page, root = 'body') {
  return page.evaluate((root) => {
    const out = [];
    for (const el of document.querySelector(root).querySelectorAll('button, [role=button], input, textarea, select, a[href]')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
      // Links inside message text are inline and exempt.
      if (el.closest('.text')) continue;
      if (r.width < 43.5 || r.height < 43.5) out.push(`${el.tagName.toLowerCase()}[${el.getAttribute('data-testid') ?? el.className}] ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
    return out;
  }, root);
}

/**
 * A real PNG of `width` × `height`: an evening sky over a sea, with a sun;
 * `grain` adds a camera's noise (deterministic), so it compresses like a photo.
 */
export function png(width, height, { grain = 0 } = {}) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  const horizon = Math.round(height * 0.62);
  let seed = 12345;
  const noise = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return ((seed >>> 16) % (2 * grain + 1)) - grain;
  };
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      const t = y / horizon;
      let rgb =
        y < horizon ? [Math.round(40 + 215 * t), Math.round(60 + 90 * t), Math.round(140 - 60 * t)] : [20, Math.round(70 + (y - horizon) * 0.4), 110];
      const d = Math.hypot(x - width * 0.6, y - horizon);
      if (d < height * 0.18 && y < horizon) rgb = [255, 214, 90];
      if (grain) rgb = rgb.map((c) => Math.max(0, Math.min(255, c + noise())));
      rows.set(rgb, row + 1 + x * 3);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The bytes of an RFC 4648 base32 string (spaces, padding and case ignored). */
export function base32Bytes(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error(`not base32: ${c}`);
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The 30-second step of the TOTP clock now (RFC 6238's counter). */
export function totpStep(ms = Date.now()) {
  return Math.floor(ms / 1000 / 30);
}

/**
 * An authenticator app's code for `secret` (base32) at `step`: RFC 6238
 * with SHA-1 and 6 digits (HMAC over the 8-byte big-endian step, RFC
 * 4226's dynamic truncation).
 */
export function totp(secret, step = totpStep()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Bytes(secret)).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const n = ((mac[at] & 0x7f) << 24) | (mac[at + 1] << 16) | (mac[at + 2] << 8) | mac[at + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

/** Six digits that are no code of `secret` for the steps around now (so the server must refuse them). */
export function wrongTotp(secret) {
  const near = new Set([-3, -2, -1, 0, 1, 2, 3].map((d) => totp(secret, totpStep() + d)));
  for (let n = 123456; ; n++) {
    const code = String(n % 1_000_000).padStart(6, '0');
    if (!near.has(code)) return code;
  }
}

/** Wait, when the 30-second step ends within `margin` ms, until the next one starts (codes made now stay valid). */
export async function awayFromStepEdge(margin = 3_000) {
  const left = 30_000 - (Date.now() % 30_000);
  if (left < margin) await new Promise((r) => setTimeout(r, left + 100));
}
