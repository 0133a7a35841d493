// Notifications in the browser tests, as a desktop has them:
//  - a private D-Bus session bus with a stand-in notification daemon
//    (notification-daemon.py): Chromium on Linux shows web notifications
//    through it, and the test clicks one the way the desktop reports a
//    person's click (the ActionInvoked signal), so the service worker gets
//    a real, trusted `notificationclick`;
//  - push messages handed to the service worker through the DevTools
//    protocol (ServiceWorker.deliverPushMessage), as DevTools' "Push"
//    button does: headless Chromium has no push service to send them.

import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// Debian's python3, which has python3-dbus and python3-gi (a pyenv or venv python may not).
const python = process.env.HARK_TEST_PYTHON ?? '/usr/bin/python3';

/**
 * Start a session bus and the stand-in daemon on it. `shown` lists every
 * notification the browser put on the desktop (`replaces` is the id it
 * updated in place, 0 for a new one), `closed` the ids it took down.
 */
export async function startNotificationDaemon() {
  let address;
  let busPid;
  try {
    [address, busPid] = execFileSync('dbus-daemon', ['--session', '--fork', '--print-address=1', '--print-pid=1']).toString().trim().split('\n');
  } catch (e) {
    throw new Error(`cannot start a D-Bus session bus (Debian package dbus-daemon): ${e.message}`);
  }
  const stopBus = () => {
    try {
      process.kill(Number(busPid));
    } catch {}
  };
  process.on('exit', stopBus);
  const proc = spawn(python, [join(here, 'notification-daemon.py')], {
    env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: address },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const daemon = {
    address,
    shown: [],
    closed: [],
    log: '',
    /** Click notification `id` (the default action: the body, not a button). */
    click(id) {
      proc.stdin.write(`${JSON.stringify({ click: id })}\n`);
    },
    /** The latest desktop notification titled `summary`, once there is one. */
    latest(summary) {
      return eventually(() => daemon.shown.findLast((n) => n.summary === summary), { message: `a desktop notification titled "${summary}"` });
    },
    async stop() {
      proc.stdin.end();
      proc.kill();
      stopBus();
      process.off('exit', stopBus);
    },
  };
  let buf = '';
  let ready;
  const started = new Promise((resolve, reject) => {
    ready = resolve;
    proc.on('exit', (code) => reject(new Error(`notification-daemon.py exited (${code}):\n${daemon.log}`)));
  });
  proc.stderr.on('data', (d) => (daemon.log += d));
  proc.stdout.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (line.ready) ready();
      if (line.notify !== undefined) daemon.shown.push({ id: line.notify, replaces: line.replaces, summary: line.summary, body: line.body });
      if (line.close !== undefined) daemon.closed.push(line.close);
    }
  });
  await started;
  return daemon;
}

/**
 * Push messages for the service worker of `origin`, through a DevTools
 * session of `page` (any page of the profile, e.g. its first blank one, so
 * the app's pages can all be closed).
 */
export async function pushChannel(context, page, origin) {
  const cdp = await context.newCDPSession(page);
  const registrations = new Map();
  const active = new Set();
  cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: list }) => {
    for (const r of list) registrations.set(r.registrationId, r);
  });
  cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
    for (const v of versions) if (v.status === 'activated') active.add(v.registrationId);
  });
  await cdp.send('ServiceWorker.enable');
  /** The id of the origin's registration whose worker is active. */
  const registrationId = () =>
    eventually(
      () => [...registrations.values()].find((r) => !r.isDeleted && r.scopeURL === `${origin}/` && active.has(r.registrationId))?.registrationId,
      { message: 'an active service worker for /' },
    );
  return {
    registrationId,
    /** Hand `payload` (JSON) to the service worker as a push message's data. */
    async deliver(payload) {
      await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId: await registrationId(), data: JSON.stringify(payload) });
    },
  };
}

/** The notifications the origin's service worker shows now (from a page of it). */
export function notificationsOf(page, tag) {
  return page.evaluate(async (tag) => {
    const reg = await navigator.serviceWorker.ready;
    const list = await reg.getNotifications(tag ? { tag } : {});
    return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
  }, tag);
}
