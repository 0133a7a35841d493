// Single sign-on (OpenID Connect) in the browser, against a real OpenID
// provider on loopback (tools/oidc: panva's oidc-provider, its development
// login form): the login screen's button sends the browser to the
// provider's form; signing in there as "alice" comes back to Hark logged
// in as Alice, the one-time ticket gone from the address bar, and a reload
// keeps the session. A sign-in that comes back with an error (or a ticket
// that no longer works) says why on the login screen. With `only`, the
// button is the only way in: no password form, no register link.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import {
  launchBrowser,
  openPage,
  overflowingElements,
  PHONE,
  repo,
  screenshotPath,
  smallTargets,
  startServer,
  waitLive,
} from './helpers.mjs';

const LABEL = 'Sign in with Example Corp';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Serious and critical axe-core violations on the page, as "rule: target" strings. */
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')}`));
}

/** A port free right now (the provider needs Hark's exact redirect URI, and Hark the provider's issuer, before either starts). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Start tools/oidc/provider.mjs on `port`, its stdin a pipe (it exits when
 * the pipe closes: `stop()`, or this process dying); resolves once it
 * printed its issuer line.
 */
async function startProvider(port, redirectUri) {
  const dir = join(repo, 'tools', 'oidc');
  assert.ok(existsSync(join(dir, 'node_modules', 'oidc-provider')), 'the OpenID provider is not installed: run scripts/oidc.sh setup');
  const proc = spawn(process.execPath, [join(dir, 'provider.mjs'), '--port', String(port), '--redirect-uri', redirectUri], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stderr.on('data', (c) => (log += c.toString()));
  const killOnExit = () => proc.kill('SIGKILL');
  process.on('exit', killOnExit);
  const exited = new Promise((r) => proc.on('exit', r));
  exited.then(() => process.off('exit', killOnExit));
  const issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the provider did not start in 20 s:\n${log}`)), 20_000);
    createInterface({ input: proc.stdout }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line).issuer);
      } catch (e) {
        reject(new Error(`the provider's first line is not its issuer (${e}): ${line}\n${log}`));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the provider exited (${code}) before starting:\n${log}`));
    });
  });
  return {
    issuer,
    log: () => log,
    /** Close its stdin (it exits at once); SIGKILL if it has not after 5 s. */
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.stdin.end();
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** A Hark server and a provider that know each other (both ports chosen first). */
async function ssoPair({ only = false } = {}) {
  const [harkPort, providerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${harkPort}`;
  const issuer = `http://127.0.0.1:${providerPort}`;
  const server = await startServer({
    port: harkPort,
    env: {
      HARK_SSO__ISSUER: issuer,
      HARK_SSO__CLIENT_ID: 'hark',
      HARK_SSO__CLIENT_SECRET: 'hark-secret',
      HARK_SSO__PUBLIC_URL: url,
      HARK_SSO__LABEL: LABEL,
      HARK_SSO__ONLY: String(only),
    },
  });
  // Stopped even when the provider cannot start (the test's process would wait for it).
  cleanups.push(() => server.destroy());
  const provider = await startProvider(providerPort, `${url}/v1/sso/callback`);
  cleanups.unshift(() => provider.stop());
  assert.equal(provider.issuer, issuer);
  return { server, provider };
}

const cleanups = [];
let browser;

after(async () => {
  await browser?.close();
  for (const done of cleanups) await done().catch(() => {});
});

/** At the provider's login form: sign in as `login` (any password). */
async function signInAtProvider(page, issuer, login) {
  await page.waitForURL((u) => u.href.startsWith(`${issuer}/interaction/`), { timeout: 20_000 });
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('anything at all');
  await page.locator('button[type=submit]').click();
}

test('sign in through the organisation: its button, its login form, back in Hark as Alice; a reload keeps the session; errors are said', async () => {
  const { server, provider } = await ssoPair();
  browser ??= await launchBrowser();
  const { context, page } = await openPage(browser, server.url);

  // The login screen offers the organisation's sign-in next to the password form.
  const button = page.getByTestId('sso-button');
  await button.waitFor();
  assert.equal((await button.textContent()).trim(), LABEL);
  assert.equal(await page.getByTestId('auth-form').isVisible(), true);
  assert.equal(await page.getByTestId('auth-switch').isVisible(), true);
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: screenshotPath('sso-login.png') });

  // To the provider's login form, and back.
  await button.click();
  await signInAtProvider(page, provider.issuer, 'alice');
  await page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  await waitLive(page);
  assert.equal((await page.getByTestId('me-name').textContent()).trim(), 'Alice');
  const back = new URL(page.url());
  assert.equal(back.origin, server.url);
  assert.equal(back.pathname, '/');
  assert.equal(back.search, '', `the ticket is gone from the address bar: ${page.url()}`);
  // Kept as a password login keeps it: the device's token in this browser.
  const device = await page.evaluate(async () => {
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i) ?? '';
      if (key.endsWith(':session')) {
        const { token } = JSON.parse(localStorage.getItem(key) ?? '{}');
        const res = await fetch('/v1/devices', { headers: { authorization: `Bearer ${token}` } });
        return (await res.json()).map((d) => d.name);
      }
    }
    return null;
  });
  assert.equal(device?.length, 1);
  assert.match(device[0], /^Web · /);
  await page.screenshot({ path: screenshotPath('sso-signed-in.png') });

  await page.reload();
  await page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  await waitLive(page);
  assert.equal((await page.getByTestId('me-name').textContent()).trim(), 'Alice');
  await context.close();

  // Back from the provider with an error: said on the login screen, and gone from the address bar.
  const failed = await openPage(browser, `${server.url}/?sso_error=provider_error`);
  const said = failed.page.getByTestId('sso-error');
  await said.waitFor();
  assert.match(await said.textContent(), /cancelled, or your organisation's sign-in page refused it/);
  assert.equal(new URL(failed.page.url()).search, '');
  assert.equal(await failed.page.getByTestId('sso-button').isVisible(), true);
  assert.deepEqual(await axe(failed.page), []);
  await failed.page.screenshot({ path: screenshotPath('sso-error.png') });
  // A ticket that does not work (used, expired, made up): sign in again.
  await failed.page.goto(`${server.url}/?sso_ticket=not-a-ticket`);
  await said.filter({ hasText: 'The sign-in expired before it could finish. Sign in again.' }).waitFor();
  assert.equal(new URL(failed.page.url()).search, '');
  await failed.context.close();
});

test('with only single sign-on, the login screen has just its button; signing in makes the account', async () => {
  const { server, provider } = await ssoPair({ only: true });
  browser ??= await launchBrowser();
  const { context, page } = await openPage(browser, server.url);
  await page.getByTestId('sso-button').waitFor();
  assert.match(await page.getByTestId('sso-only').textContent(), /signs people in through their organisation/);
  assert.equal(await page.getByTestId('auth-form').count(), 0);
  assert.equal(await page.locator('input[name=password]').count(), 0);
  assert.equal(await page.getByTestId('auth-switch').count(), 0);
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: screenshotPath('sso-only.png') });
  // On a phone too: nothing sticks out, the button is big enough to tap.
  const phone = await openPage(browser, server.url, PHONE);
  await phone.page.getByTestId('sso-button').waitFor();
  assert.deepEqual(await overflowingElements(phone.page), []);
  assert.deepEqual(await smallTargets(phone.page), []);
  await phone.page.screenshot({ path: screenshotPath('sso-only-phone.png') });
  await phone.context.close();

  await page.getByTestId('sso-button').click();
  await signInAtProvider(page, provider.issuer, 'bob');
  await page.getByTestId('chat-list').waitFor({ timeout: 30_000 });
  assert.equal((await page.getByTestId('me-name').textContent()).trim(), 'Bob');
  assert.equal(new URL(page.url()).search, '');
  await context.close();
});
