// A stand-in push service for the browser tests, in place of the one a
// browser vendor runs (headless Chromium has none): it takes what the Hark
// server posts to a subscription's endpoint and decrypts it with the keys a
// browser would hold (RFC 8291, aes128gcm), so the test can hand the very
// payload to the service worker.

import { createECDH, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import { eventually } from './helpers.mjs';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Start the push service on 127.0.0.1 (a free port); `received` lists each POST. */
export async function startPushService() {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201).end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${server.address().port}`;
  return {
    host,
    received,
    /** An endpoint URL of this service. */
    endpoint: (name) => `http://${host}/push/${name}`,
    /** The next POST to `endpoint` after the first `after` ones. */
    next(endpoint, after) {
      const path = new URL(endpoint).pathname;
      return eventually(() => received.slice(after).find((r) => r.path === path), { timeout: 30_000, message: `a push posted to ${path}` });
    },
    stop: () => new Promise((r) => server.close(r)),
  };
}

/** A browser's side of a subscription: its P-256 key pair and auth secret. */
export function browserKeys() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16);
  return {
    p256dh: b64url(ecdh.getPublicKey()),
    auth: b64url(auth),
    /** The plaintext of an aes128gcm body encrypted to these keys (one record). */
    decrypt(body) {
      const salt = body.subarray(0, 16);
      const idlen = body[20];
      const serverKey = body.subarray(21, 21 + idlen);
      const sealed = body.subarray(21 + idlen);
      const secret = ecdh.computeSecret(serverKey);
      const info = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), serverKey]);
      const ikm = Buffer.from(hkdfSync('sha256', secret, auth, info, 32));
      const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
      const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
      const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      const padded = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
      // The last record ends with the delimiter 2, then zero padding.
      let end = padded.length - 1;
      while (end >= 0 && padded[end] === 0) end--;
      if (padded[end] !== 2) throw new Error('no last-record delimiter');
      return padded.subarray(0, end).toString('utf8');
    },
  };
}
