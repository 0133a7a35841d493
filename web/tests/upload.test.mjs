// Large files in the browser: a file over 8 MiB goes up as a resumable
// upload (`/v1/media/uploads`) in 8 MiB pieces. When the network breaks
// mid-piece, the client asks the server where the upload stands and goes on
// from there instead of sending the file again from its start; the other
// side gets the file, byte for byte. An upload that cannot get through
// gives up with a clear reason and keeps the draft; a cancelled one is
// removed from the server. With a bucket that takes uploads directly
// (`[media.s3] direct`, the SeaweedFS of scripts/s3.sh), the bytes go to
// the bucket in one PUT and never through the server; when the page cannot
// reach the bucket, they go through the server in pieces instead.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiRegister, eventually, launchBrowser, login, openChat, openPage, screenshotPath, startDirect, startServer } from './helpers.mjs';

const MiB = 1024 * 1024;

let server;
let browser;
let dir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), 'hark-upload-test-'));
});

after(async () => {
  await browser?.close();
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** A file of `size` random bytes (nothing a server could shorten) in the test's folder. */
function randomFile(name, size) {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

/** Every request `page` makes under /v1/media, as "METHOD /path". */
function mediaRequests(page) {
  const seen = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/v1/media')) seen.push(`${r.method()} ${u.pathname.replace(/[0-9a-f]{32}/, '{id}')}`);
  });
  return seen;
}

test('a 20 MiB file whose connection breaks mid-upload goes on from where the server stands and arrives intact', async () => {
  const { path, bytes } = randomFile('site-backup.tar', 20 * MiB);
  await apiRegister(server.url, 'alice', 'Alice');
  const bobApi = await apiRegister(server.url, 'bob', 'Bob');
  const alice = await openPage(browser, server.url);
  const bob = await openPage(browser, server.url);
  await login(alice.page, 'alice');
  await login(bob.page, 'bob');
  await startDirect(alice.page, 'bob', { encrypted: false });
  const seen = mediaRequests(alice.page);

  // The network between Alice and the server: the second piece is cut off;
  // the piece after it waits until the progress bar has been looked at.
  const steps = [];
  let patches = 0;
  let releaseHeld;
  const held = new Promise((r) => (releaseHeld = r));
  let reachedHeld;
  const atHeld = new Promise((r) => (reachedHeld = r));
  await alice.page.route('**/v1/media/uploads/*', async (route) => {
    const req = route.request();
    if (req.method() === 'GET') {
      const res = await route.fetch();
      const status = await res.json();
      steps.push({ method: 'GET', received: status.received });
      return route.fulfill({ response: res, json: status });
    }
    if (req.method() !== 'PATCH') return route.continue();
    patches += 1;
    steps.push({ method: 'PATCH', offset: Number(req.headers()['upload-offset']), cut: patches === 2 });
    if (patches === 2) return route.abort('connectionreset');
    if (patches === 3) {
      reachedHeld();
      await held;
    }
    return route.continue();
  });

  await alice.page.getByTestId('file-input').setInputFiles(path);
  await alice.page.getByTestId('attachment-name').filter({ hasText: 'site-backup.tar' }).waitFor();
  await alice.page.getByTestId('send').click();

  // Mid-upload, after the break: the bar shows the 8 of 20 MiB the server holds (or more, as the next piece goes out).
  await atHeld;
  const bar = alice.page.getByTestId('upload-progress');
  const percent = Number(await bar.getAttribute('aria-valuenow'));
  assert.ok(percent >= 40 && percent < 100, `the progress bar mid-upload: ${percent}%`);
  assert.equal(await alice.page.getByTestId('send').isDisabled(), true, 'no second send while uploading');
  await alice.page.screenshot({ path: screenshotPath('upload-progress.png') });
  copyFileSync(screenshotPath('upload-progress.png'), join(tmpdir(), 'hark-upload-progress.png'));
  releaseHeld();

  await alice.page.getByTestId('attachment').waitFor({ state: 'detached', timeout: 60_000 });
  await alice.page.locator('[data-testid=msg-out] [data-testid=media-file-name]', { hasText: 'site-backup.tar' }).waitFor();

  // Resumed, not started again: after the cut, the status was read and the next piece began at its `received`.
  const piece = 8 * MiB;
  assert.deepEqual(steps, [
    { method: 'PATCH', offset: 0, cut: false },
    { method: 'PATCH', offset: piece, cut: true },
    { method: 'GET', received: piece },
    { method: 'PATCH', offset: piece, cut: false },
    { method: 'PATCH', offset: 2 * piece, cut: false },
  ]);
  assert.deepEqual(seen, [
    'POST /v1/media/uploads',
    'PATCH /v1/media/uploads/{id}',
    'PATCH /v1/media/uploads/{id}',
    'GET /v1/media/uploads/{id}',
    'PATCH /v1/media/uploads/{id}',
    'PATCH /v1/media/uploads/{id}',
    'POST /v1/media/uploads/{id}/complete',
  ]);

  // Bob sees its name and size, and downloads the same bytes.
  const ref = await eventually(async () => (await bobApi.get('/v1/chats'))[0]?.last_message?.media, { message: 'the message on the server' });
  assert.equal(ref.kind, 'file');
  assert.equal(ref.size, bytes.length);
  assert.equal(ref.sha256, sha256(bytes));
  await openChat(bob.page, 'Alice');
  const card = bob.page.locator('[data-testid=msg-in] [data-testid=media-file]', { hasText: 'site-backup.tar' });
  await card.waitFor();
  assert.equal(await card.getByTestId('media-file-size').textContent(), '20 MB · TAR');
  const [download] = await Promise.all([bob.page.waitForEvent('download'), card.getByTestId('media-download').click()]);
  assert.equal(download.suggestedFilename(), 'site-backup.tar');
  assert.equal(sha256(readFileSync(await download.path())), sha256(bytes), 'the downloaded bytes are the original');

  assert.deepEqual(alice.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
  await alice.context.close();
  await bob.context.close();
});

test('an upload that cannot get through fails with a clear reason; a cancelled one is removed from the server', async () => {
  const { path } = randomFile('holiday.mkv.part', 12 * MiB);
  const carolApi = await apiRegister(server.url, 'carol', 'Carol');
  await apiRegister(server.url, 'dave', 'Dave');
  const carol = await openPage(browser, server.url);
  await login(carol.page, 'carol');
  await startDirect(carol.page, 'dave', { encrypted: false });
  const seen = mediaRequests(carol.page);

  // Every piece is cut off: after its tries (0.5 + 1 + 2 + 4 + 8 s of waiting) the upload gives up.
  const uploads = [];
  carol.page.on('response', async (res) => {
    if (res.request().method() === 'POST' && new URL(res.url()).pathname === '/v1/media/uploads') uploads.push((await res.json()).id);
  });
  const cutAll = (route) => (route.request().method() === 'PATCH' ? route.abort('connectionreset') : route.continue());
  await carol.page.route('**/v1/media/uploads/*', cutAll);
  await carol.page.getByTestId('file-input').setInputFiles(path);
  await carol.page.getByTestId('composer').fill('The video, finally');
  await carol.page.getByTestId('send').click();
  const error = carol.page.getByTestId('upload-error');
  await error.waitFor({ timeout: 40_000 });
  assert.match(await error.textContent(), /^Couldn't send it: the upload gave up after 6 tries \(.+\)$/);
  assert.equal(await carol.page.getByTestId('composer').inputValue(), 'The video, finally', 'the caption stays');
  assert.equal(seen.filter((s) => s === 'PATCH /v1/media/uploads/{id}').length, 6);
  assert.equal(seen.filter((s) => s === 'GET /v1/media/uploads/{id}').length, 5, 'the status is read before each new try');
  // The failed upload does not hold the quota until it expires.
  await eventually(() => seen.includes('DELETE /v1/media/uploads/{id}'), { message: 'the failed upload removed' });
  await eventually(async () => (await fetch(`${server.url}/v1/media/uploads/${uploads[0]}`, { headers: { authorization: `Bearer ${carolApi.token}` } })).status === 404, {
    message: 'the failed upload gone from the server',
  });

  // Tried again, and cancelled while the first piece is on its way: removed from the server too.
  await carol.page.unroute('**/v1/media/uploads/*', cutAll);
  let reached;
  const atPiece = new Promise((r) => (reached = r));
  await carol.page.route('**/v1/media/uploads/*', async (route) => {
    if (route.request().method() === 'PATCH') {
      reached();
      return; // held: the request never completes until cancelled
    }
    return route.continue();
  });
  await carol.page.getByTestId('send').click();
  await atPiece;
  await carol.page.getByTestId('attachment-remove').click();
  await carol.page.getByTestId('attachment').waitFor({ state: 'detached' });
  await eventually(() => uploads.length === 2 && seen.filter((s) => s === 'DELETE /v1/media/uploads/{id}').length === 2, { message: 'the cancelled upload removed' });
  await eventually(async () => (await fetch(`${server.url}/v1/media/uploads/${uploads[1]}`, { headers: { authorization: `Bearer ${carolApi.token}` } })).status === 404, {
    message: 'the cancelled upload gone from the server',
  });
  assert.equal(await carol.page.locator('[data-testid=msg-out]').count(), 0, 'nothing was sent');

  assert.deepEqual(carol.page.errors, []);
  await carol.context.close();
});

/** The bucket scripts/s3.sh runs (scripts/test.sh exports its settings). */
const S3 = {
  endpoint: process.env.HARK_TEST_S3_ENDPOINT ?? `http://127.0.0.1:${process.env.HARK_S3_PORT ?? 17304}`,
  bucket: process.env.HARK_TEST_S3_BUCKET ?? 'hark-test',
  accessKey: process.env.HARK_TEST_S3_ACCESS_KEY ?? 'hark-test',
  secretKey: process.env.HARK_TEST_S3_SECRET_KEY ?? 'hark-test-secret',
};

test('with a direct bucket, a 12 MiB file goes to the bucket in one PUT and is saved from it, a video streams from it; an unreachable bucket falls back to pieces', async () => {
  try {
    await fetch(S3.endpoint, { signal: AbortSignal.timeout(5_000) });
  } catch (e) {
    throw new Error(`this test needs the S3 server at ${S3.endpoint} (${e.cause?.code ?? e.message}): run scripts/s3.sh up`);
  }
  const config = join(dir, 'direct.toml');
  writeFileSync(
    config,
    [
      '[media.s3]',
      `bucket = "${S3.bucket}"`,
      `endpoint = "${S3.endpoint}"`,
      'region = "us-east-1"',
      `access_key_id = "${S3.accessKey}"`,
      `secret_access_key = "${S3.secretKey}"`,
      `prefix = "web-test-${randomBytes(6).toString('hex')}"`,
      'path_style = true',
      'direct = true',
      '',
    ].join('\n'),
  );
  const direct = await startServer({ config });
  try {
    const { path, bytes } = randomFile('drone-footage.raw', 12 * MiB);
    await apiRegister(direct.url, 'erin', 'Erin');
    const frankApi = await apiRegister(direct.url, 'frank', 'Frank');
    // The page's Content-Security-Policy names the bucket's origin (and no
    // other), so the browser may PUT there.
    const erin = await openPage(browser, direct.url);
    const frank = await openPage(browser, direct.url);
    await login(erin.page, 'erin');
    await login(frank.page, 'frank');
    await startDirect(erin.page, 'frank', { encrypted: false });

    // Every request Erin's page makes for the upload, to the server or to the bucket.
    const bucketOrigin = new URL(S3.endpoint).origin;
    const seen = [];
    erin.page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.origin === bucketOrigin) seen.push({ to: 'bucket', method: r.method(), path: u.pathname, signed: u.searchParams.has('X-Amz-Signature'), auth: r.headers().authorization ?? null });
      else if (u.pathname.startsWith('/v1/media')) seen.push({ to: 'server', method: r.method(), path: u.pathname.replace(/[0-9a-f]{32}/, '{id}') });
    });
    // What the client says when it falls back, and what Chromium says when a CSP refuses a request.
    const refusals = [];
    erin.page.on('console', (m) => /bucket|Content Security Policy/.test(m.text()) && refusals.push(m.text()));

    await erin.page.getByTestId('file-input').setInputFiles(path);
    await erin.page.getByTestId('attachment-name').filter({ hasText: 'drone-footage.raw' }).waitFor();
    await erin.page.getByTestId('send').click();
    await erin.page.getByTestId('attachment').waitFor({ state: 'detached', timeout: 60_000 });
    await erin.page.locator('[data-testid=msg-out] [data-testid=media-file-name]', { hasText: 'drone-footage.raw' }).waitFor();

    assert.deepEqual(refusals, [], 'the bucket was reachable from the page');
    const puts = seen.filter((r) => r.to === 'bucket' && r.method === 'PUT');
    assert.equal(puts.length, 1, `one PUT to the bucket: ${JSON.stringify(seen)}`);
    assert.ok(puts[0].path.startsWith(`/${S3.bucket}/`), `into the bucket: ${puts[0].path}`);
    assert.equal(puts[0].signed, true, 'a presigned URL');
    assert.equal(puts[0].auth, null, 'no token goes to the bucket');
    assert.deepEqual(
      seen.filter((r) => r.to === 'server'),
      [
        { to: 'server', method: 'POST', path: '/v1/media/uploads' },
        { to: 'server', method: 'POST', path: '/v1/media/uploads/{id}/complete' },
      ],
      'no bytes through the server (no PATCH, no POST /v1/media)',
    );

    const ref = await eventually(async () => (await frankApi.get('/v1/chats'))[0]?.last_message?.media, { message: 'the message on the server' });
    assert.equal(ref.size, bytes.length);
    assert.equal(ref.sha256, sha256(bytes));
    await openChat(frank.page, 'Erin');
    const card = frank.page.locator('[data-testid=msg-in] [data-testid=media-file]', { hasText: 'drone-footage.raw' });
    await card.waitFor();
    assert.equal(await card.getByTestId('media-file-size').textContent(), '12 MB · RAW');
    const [download] = await Promise.all([frank.page.waitForEvent('download'), card.getByTestId('media-download').click()]);
    assert.equal(sha256(readFileSync(await download.path())), sha256(bytes), 'the downloaded bytes are the original');
    // Saved straight from the bucket, under its name.
    assert.ok(download.url().startsWith(`${S3.endpoint}/${S3.bucket}/`), `from the bucket: ${download.url()}`);
    assert.equal(download.suggestedFilename(), 'drone-footage.raw');

    // A video streams from the bucket: the player gets a presigned URL as
    // its source (the page's CSP allows the bucket for media) instead of
    // the whole file as a blob.
    const clip = await erin.page.evaluate(async () => {
      const canvas = Object.assign(document.createElement('canvas'), { width: 160, height: 120 });
      const g = canvas.getContext('2d');
      const recorder = new MediaRecorder(canvas.captureStream(15), { mimeType: 'video/webm' });
      const parts = [];
      recorder.ondataavailable = (e) => parts.push(e.data);
      const done = new Promise((resolve) => (recorder.onstop = resolve));
      recorder.start(100);
      for (let frame = 0; frame < 20; frame++) {
        g.fillStyle = `hsl(${frame * 18}, 80%, 50%)`;
        g.fillRect(0, 0, 160, 120);
        await new Promise((r) => setTimeout(r, 60));
      }
      recorder.stop();
      await done;
      return Array.from(new Uint8Array(await new Blob(parts).arrayBuffer()));
    });
    const clipPath = join(dir, 'clip.webm');
    writeFileSync(clipPath, Buffer.from(clip));
    await erin.page.getByTestId('file-input').setInputFiles(clipPath);
    await erin.page.getByTestId('send').click();
    await erin.page.getByTestId('attachment').waitFor({ state: 'detached', timeout: 60_000 });
    const video = frank.page.locator('[data-testid=msg-in] [data-testid=media-video]');
    await video.waitFor();
    const src = await video.getAttribute('src');
    assert.ok(src.startsWith(`${S3.endpoint}/${S3.bucket}/`), `streams from the bucket: ${src}`);
    await eventually(async () => (await video.evaluate((v) => v.readyState)) >= 1, { message: 'the player read the video from the bucket' });

    // A bucket the page cannot reach at all (CORS, or a CSP, refuses it at
    // once): the upload is dropped and sent in pieces through the server.
    const { path: second, bytes: secondBytes } = randomFile('drone-footage-2.raw', 9 * MiB);
    const isBucket = (url) => url.origin === bucketOrigin;
    await erin.page.route(isBucket, (route) => route.abort('accessdenied'));
    seen.length = 0;
    refusals.length = 0;
    await erin.page.getByTestId('file-input').setInputFiles(second);
    await erin.page.getByTestId('send').click();
    await erin.page.getByTestId('attachment').waitFor({ state: 'detached', timeout: 60_000 });
    assert.deepEqual(
      seen.map((r) => `${r.method} ${r.to === 'bucket' ? 'bucket' : r.path}`),
      [
        'POST /v1/media/uploads',
        'PUT bucket',
        'DELETE /v1/media/uploads/{id}',
        'POST /v1/media/uploads',
        'PATCH /v1/media/uploads/{id}',
        'PATCH /v1/media/uploads/{id}',
        'POST /v1/media/uploads/{id}/complete',
      ],
    );
    assert.match(refusals.join('\n'), /the bucket cannot be reached from this page/);
    const secondRef = await eventually(
      async () => {
        const m = (await frankApi.get('/v1/chats'))[0]?.last_message?.media;
        return m?.name === 'drone-footage-2.raw' && m;
      },
      { message: 'the second file on the server' },
    );
    assert.equal(secondRef.sha256, sha256(secondBytes));

    assert.deepEqual(erin.page.errors, []);
    assert.deepEqual(frank.page.errors, []);
    await erin.context.close();
    await frank.context.close();
  } finally {
    await direct.destroy();
  }
});
