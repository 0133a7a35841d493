// The built assets travel compressed: brotli when the browser takes it,
// gzip otherwise, as they are without when neither is accepted, always with
// `Vary: Accept-Encoding`; and a real page load gets them compressed.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { launchBrowser, startServer } from './helpers.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.destroy();
});

/** GET with exactly these headers (fetch would add and undo its own Accept-Encoding). */
function get(path, headers) {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('assets are sent with brotli or gzip, Vary: Accept-Encoding, and decode to the same bytes', async () => {
  const index = (await get('/', {})).body.toString();
  const assets = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), index);
  for (const path of assets) {
    const plain = await get(path, {});
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers.vary, 'accept-encoding');
    const br = await get(path, { 'accept-encoding': 'gzip, deflate, br, zstd' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers.vary, 'accept-encoding');
    assert.equal(br.headers['content-type'], plain.headers['content-type']);
    assert.deepEqual(brotliDecompressSync(br.body), plain.body);
    const gz = await get(path, { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(gunzipSync(gz.body), plain.body);
    const refused = await get(path, { 'accept-encoding': 'br;q=0, gzip;q=0' });
    assert.equal(refused.headers['content-encoding'], undefined);
    console.log(`# ${path}: ${plain.body.length} B, brotli ${br.body.length} B, gzip ${gz.body.length} B`);
    assert.ok(br.body.length < plain.body.length / 2.5, 'brotli saves most of it');
  }

  // What Chromium actually receives.
  const page = await browser.newPage();
  const encodings = new Map();
  page.on('response', async (r) => {
    if (r.url().includes('/assets/')) encodings.set(new URL(r.url()).pathname, (await r.allHeaders())['content-encoding']);
  });
  await page.goto(server.url);
  await page.getByTestId('auth-form').waitFor();
  assert.ok(encodings.size >= 2);
  for (const [path, enc] of encodings) assert.equal(enc, 'br', `${path} arrived as ${enc}`);
  await page.close();
});
