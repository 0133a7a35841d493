// What a logged-in browser shows before the messenger when the server holds
// its device back (docs/protocol.md): a login waiting for another device of
// the account to approve it ("Approving new devices"), or an account that
// must turn on two-factor authentication first on a server that requires it
// ("A server that requires it"). Either way the token works only for
// `GET /v1/me`, logging out (and enrolling), so nothing else is asked of the
// server until it is dealt with.

import { useEffect, useRef, useState } from 'preact/hooks';
import { HarkApi, HarkError, isFinal, type Me, type Session } from '../hark-client';
import { TwoFactorEnrolment } from './Account';
import { AppStore, type LogoutReason } from './store';
import { HarkLogo } from './ui';

/** How often a waiting login asks whether it was approved. */
const POLL_MS = 2_000;

/** Where a session stands: being asked about, held back for one reason or the other, or in. */
export type GateState = 'checking' | 'pending' | 'two_factor' | 'open';

/** What `GET /v1/me` says of the device: held back, or free to use the app. */
export function gateOf(me: Me): GateState {
  if (me.device.pending) return 'pending';
  if (me.two_factor_setup_required) return 'two_factor';
  return 'open';
}

/**
 * Log the session out from a screen without the messenger: the server
 * revokes the token, and this browser forgets what it kept for the device,
 * as the messenger's own logout does.
 */
export async function logOutSession(session: Session, onLoggedOut: (code: LogoutReason | null) => void): Promise<void> {
  await new AppStore('', session, onLoggedOut).logout();
}

/** The card the login screen uses, for the screens in front of the app. */
function GateCard(props: { testid: string; wide?: boolean; children: preact.ComponentChildren }) {
  return (
    <div class="auth gate" data-testid={props.testid}>
      <div class="auth-band" />
      <main class={`auth-card${props.wide ? ' gate-wide' : ''}`}>
        <div class="auth-brand">
          <HarkLogo size={40} />
          <span>Hark</span>
        </div>
        {props.children}
      </main>
    </div>
  );
}

/**
 * This login waits for approval: says where to approve it, asks `GET
 * /v1/me` every 2 s, and hands its answer on (`onMe`) once it is no longer
 * pending. "Cancel" logs this login out. A token that stopped working (the
 * login was logged out from another device: "It wasn't me") ends at the
 * login screen.
 */
export function WaitingForApproval(props: {
  session: Session;
  onMe: (me: Me) => void;
  onLoggedOut: (code: LogoutReason | null) => void;
}) {
  const { session } = props;
  const [leaving, setLeaving] = useState(false);
  const [offline, setOffline] = useState(false);
  const latest = useRef(props);
  latest.current = props;
  useEffect(() => {
    const api = new HarkApi('', session.token);
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const me = await api.me();
        if (stopped) return;
        setOffline(false);
        if (!me.device.pending) {
          stopped = true;
          latest.current.onMe(me);
          return;
        }
      } catch (e) {
        if (stopped) return;
        if (e instanceof HarkError && e.code !== 'network' && isFinal(e.code)) {
          stopped = true;
          // Logged out while waiting: from another device of the account, most likely.
          await logOutSession(session, () => {});
          latest.current.onLoggedOut(e.code === 'account_disabled' || e.code === 'token_expired' ? e.code : 'login_refused');
          return;
        }
        setOffline(e instanceof HarkError && e.code === 'network');
      }
      timer = setTimeout(() => void poll(), POLL_MS);
    };
    // At once (a reload after it was approved need not wait), then every 2 s.
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [session.token]);

  const cancel = () => {
    setLeaving(true);
    void logOutSession(session, props.onLoggedOut);
  };

  return (
    <GateCard testid="waiting-approval">
      <h1>Waiting for approval</h1>
      <p class="auth-sub">
        Open Hark on one of your other devices and approve this login. Your account asks for that before a new device can read your
        messages.
      </p>
      <div class="gate-wait" role="status" aria-live="polite" data-testid="waiting-status">
        <span class="gate-spinner" aria-hidden="true" />
        <span>
          {offline ? 'Cannot reach the server. Still trying…' : `Waiting for approval of “${session.device.name}” (${session.user.username})…`}
        </span>
      </div>
      <p class="gate-hint">If you did not expect this, cancel: nothing of your account was shown here.</p>
      <div class="gate-actions">
        <button class="secondary" type="button" data-testid="waiting-cancel" disabled={leaving} onClick={cancel}>
          {leaving ? 'Logging out…' : 'Cancel'}
        </button>
      </div>
    </GateCard>
  );
}

/**
 * The server requires two-factor authentication and this account has not
 * turned it on: the enrolment from Settings (`TwoFactorEnrolment`), before
 * anything else. `onDone` once it is on and the recovery codes were saved;
 * the same token then works for everything.
 */
export function ForcedTwoFactor(props: {
  session: Session;
  onDone: () => void;
  onLoggedOut: (code: LogoutReason | null) => void;
}) {
  const { session } = props;
  const api = useRef(new HarkApi('', session.token)).current;
  const [leaving, setLeaving] = useState(false);
  const refused = (e: unknown) => {
    if (!(e instanceof HarkError) || e.code === 'network' || !isFinal(e.code)) return false;
    void logOutSession(session, () => {}).then(() => props.onLoggedOut(e.code as LogoutReason));
    return true;
  };
  const logOut = () => {
    setLeaving(true);
    void logOutSession(session, props.onLoggedOut);
  };
  return (
    <GateCard testid="forced-two-factor" wide>
      <h1>Turn on two-step verification</h1>
      <p class="auth-sub">
        This server requires two-step verification for every account. Set it up now to use Hark ({session.user.username}): from then
        on, logging in on a new device asks for a 6-digit code from an authenticator app on your phone, as well as your password.
      </p>
      <div class="gate-enrol" data-testid="two-factor">
        <TwoFactorEnrolment
          api={api}
          refused={refused}
          onDone={props.onDone}
          // Turned on meanwhile (another device): nothing holds this one back any more.
          onAlreadyOn={() => props.onDone()}
        />
      </div>
      <p class="auth-switch">
        <button type="button" class="link" data-testid="forced-two-factor-logout" disabled={leaving} onClick={logOut}>
          {leaving ? 'Logging out…' : 'Log out'}
        </button>
      </p>
    </GateCard>
  );
}

/** While `GET /v1/me` is asked whether anything holds this device back (a moment). */
export function Checking() {
  return <div class="auth gate-checking" aria-busy="true" data-testid="gate-checking" />;
}
