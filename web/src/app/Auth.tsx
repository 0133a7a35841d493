// The login / register screen. Logging in makes this browser a device of the
// account. An account with two-step verification on is asked, once its
// password was right, for a code from its authenticator app (or a recovery
// code), and logs in again with it.
//
// A server with single sign-on (OpenID Connect) offers a button that sends
// the browser to the organisation's sign-in page; it comes back to the app
// with `?sso_ticket=…` (redeemed for a device, like a password login) or
// `?sso_error=…` (said on this screen). With `only`, that button is the
// only way in.

import { useEffect, useRef, useState } from 'preact/hooks';
import { HarkApi, HarkError, type Session, type SsoInfo } from '../hark-client';
import { HarkLogo } from './ui';

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrome\/|Chromium\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : 'Browser';
  const os = /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Android/.test(ua) ? 'Android' : /Linux/.test(ua) ? 'Linux' : '';
  return `Web · ${browser}${os ? ` on ${os}` : ''}`;
}

/** What the address bar brought back from the organisation's sign-in page. */
type SsoReturn = { ticket: string } | { error: string };

let ssoReturn: SsoReturn | null = null;

/**
 * Take `sso_ticket` and `sso_error` out of the address bar (history, so
 * not even a reload or a bookmark keeps them) and keep them for the login
 * screen. Called first thing at start-up, before anything else can read the
 * URL or send it anywhere: the ticket logs in whoever redeems it first.
 */
export function takeSsoReturn(): void {
  const url = new URL(location.href);
  const ticket = url.searchParams.get('sso_ticket');
  const error = url.searchParams.get('sso_error');
  if (ticket === null && error === null) return;
  url.searchParams.delete('sso_ticket');
  url.searchParams.delete('sso_error');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  ssoReturn = ticket ? { ticket } : { error: error ?? '' };
}

/** The sign-in's result, once: a ticket is redeemed (and an error said) by one login screen only. */
function claimSsoReturn(): SsoReturn | null {
  const back = ssoReturn;
  ssoReturn = null;
  return back;
}

/** Why a sign-in at the organisation came back without a ticket. */
function ssoFailure(reason: string): string {
  switch (reason) {
    case 'provider_error':
      return "The sign-in was cancelled, or your organisation's sign-in page refused it.";
    case 'invalid_state':
      return 'The sign-in took too long, or was started in another browser. Try again.';
    case 'invalid_id_token':
      return 'The sign-in could not be verified. Try again; if it keeps happening, tell whoever runs this server.';
    case 'unavailable':
      return "Your organisation's sign-in service cannot be reached right now. Try again in a few minutes.";
    default:
      return 'Signing in through your organisation did not work. Try again.';
  }
}

/** Said when a sign-in's ticket is refused. */
function explainRedeem(e: unknown): string {
  if (e instanceof HarkError && e.code === 'invalid_credentials') return 'The sign-in expired before it could finish. Sign in again.';
  return explain(e);
}

/** Shown on the login screen when an admin disabled the account (a refused login, or a session ended by it). */
export const ACCOUNT_DISABLED = 'Your account has been disabled by an administrator.';
/** Shown on the login screen once this browser deleted the account. */
export const ACCOUNT_DELETED = 'Your account was deleted.';
/** Shown on the login screen when this login, waiting for approval, was logged out from another device of the account. */
export const LOGIN_REFUSED = 'This login was not approved: it was logged out from one of your other devices.';
export const DEVICE_EXPIRED = 'You were logged out because this browser went unused for a long time. Log in again.';

function explain(e: unknown): string {
  if (!(e instanceof HarkError)) return 'Something went wrong. Please try again.';
  switch (e.code) {
    case 'invalid_credentials':
      return 'Wrong username or password.';
    case 'username_taken':
      return 'That username is taken. Try another one.';
    case 'rate_limited':
      return 'Too many attempts. Wait a minute and try again.';
    case 'account_disabled':
      return ACCOUNT_DISABLED;
    case 'token_expired':
      return DEVICE_EXPIRED;
    case 'invalid_two_factor_code':
      return "That code didn't work. Codes change every 30 seconds and each works once: enter the newest one, or an unused recovery code.";
    case 'sso_required':
      return "This server signs people in through their organisation: use the sign-in button.";
    case 'network':
      return 'Cannot reach the server. Check your connection.';
    default:
      return e.message;
  }
}

/** `notice`: why the previous session ended (e.g. the account was disabled), shown until the next attempt. */
export function AuthScreen(props: { server: string; onSession: (s: Session) => void; notice?: string | null }) {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [error, setError] = useState<string | null>(props.notice ?? null);
  const [busy, setBusy] = useState(false);
  // Single sign-on: what the server offers (undefined while asking, null
  // when it could not say), a sign-in that came back, and the button clicked.
  const [sso, setSso] = useState<SsoInfo | null | undefined>(undefined);
  const [returned] = useState(claimSsoReturn);
  const [redeeming, setRedeeming] = useState(returned !== null && 'ticket' in returned);
  const [ssoError, setSsoError] = useState<string | null>(returned && 'error' in returned ? ssoFailure(returned.error) : null);
  const [leaving, setLeaving] = useState(false);
  useEffect(() => {
    const api = new HarkApi(props.server);
    if (returned && 'ticket' in returned) {
      api.redeemSso(returned.ticket, deviceName()).then(
        (res) => props.onSession({ token: res.token, user: res.user, device: res.device }),
        (err) => {
          setRedeeming(false);
          setError(null);
          setSsoError(explainRedeem(err));
        },
      );
    }
    api.ssoInfo().then(setSso, () => setSso(null));
    // Back from the sign-in page with the browser's back button (the page
    // restored as it was left): the button works again.
    const onShow = (e: PageTransitionEvent) => {
      if (e.persisted) setLeaving(false);
    };
    window.addEventListener('pageshow', onShow);
    return () => window.removeEventListener('pageshow', onShow);
  }, []);
  /** The password was right and the account asks for a second factor: the code step. */
  const [needCode, setNeedCode] = useState(false);
  const [code, setCode] = useState('');
  const codeInput = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (needCode) codeInput.current?.focus();
  }, [needCode]);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSsoError(null);
    const api = new HarkApi(props.server);
    try {
      if (mode === 'register') await api.register(username.trim(), password, displayName.trim() || undefined);
      const res = await api.login(username.trim(), password, deviceName(), needCode ? code.trim() : undefined);
      props.onSession({ token: res.token, user: res.user, device: res.device });
    } catch (err) {
      setBusy(false);
      if (err instanceof HarkError && err.code === 'two_factor_required') {
        setNeedCode(true);
        return;
      }
      if (err instanceof HarkError && err.code === 'invalid_two_factor_code') {
        // The field stays, with what was typed selected to type over.
        setError(explain(err));
        codeInput.current?.select();
        return;
      }
      // Password logins are off here (the sign-in button had not shown): show it.
      if (err instanceof HarkError && err.code === 'sso_required') {
        new HarkApi(props.server).ssoInfo().then(setSso, () => {});
      }
      // Anything else (the password changed meanwhile, too many tries): back to the first step.
      if (needCode) {
        setNeedCode(false);
        setCode('');
      }
      setError(explain(err));
    }
  }

  /** Leave the code step: back to username and password. */
  function back() {
    setNeedCode(false);
    setCode('');
    setError(null);
  }

  /** Off to the organisation's sign-in page; it sends the browser back to this page of the app. */
  function startSso() {
    setLeaving(true);
    location.assign(new HarkApi(props.server).ssoStartUrl(location.pathname || '/'));
  }

  if (redeeming) {
    return (
      <div class="auth">
        <div class="auth-band" />
        <div class="auth-card" aria-busy="true">
          <div class="auth-brand">
            <HarkLogo size={40} />
            <span>Hark</span>
          </div>
          <h1>Signing you in…</h1>
          <p class="auth-sub" role="status" data-testid="sso-redeeming">
            Your organisation confirmed who you are. Hark is setting up this browser as one of your devices.
          </p>
        </div>
      </div>
    );
  }

  if (needCode) {
    return (
      <div class="auth">
        <div class="auth-band" />
        <div class="auth-card">
          <div class="auth-brand">
            <HarkLogo size={40} />
            <span>Hark</span>
          </div>
          <h1>Two-step verification</h1>
          <p class="auth-sub">
            Open the authenticator app on your phone and enter the 6-digit code it shows for Hark ({username.trim()}).
          </p>
          {/* A form of its own (a key): its field must not inherit the username field's pattern and lengths. */}
          <form key="two-factor" onSubmit={submit} data-testid="auth-form" data-step="two-factor">
            <label>
              Code
              <input
                ref={codeInput}
                name="two_factor_code"
                autocomplete="one-time-code"
                autocapitalize="off"
                spellcheck={false}
                value={code}
                onInput={(e) => setCode(e.currentTarget.value)}
                required
                maxLength={32}
                aria-describedby="two-factor-hint"
                aria-invalid={error ? 'true' : undefined}
                data-testid="auth-code"
              />
              <span id="two-factor-hint" class="field-hint">
                Lost your phone? Enter one of your recovery codes instead.
              </span>
            </label>
            {error && (
              <div class="auth-error" role="alert" data-testid="auth-error">
                {error}
              </div>
            )}
            <button class="primary" type="submit" disabled={busy} data-testid="auth-submit">
              {busy ? 'Please wait…' : 'Log in'}
            </button>
          </form>
          <p class="auth-switch">
            <button type="button" class="link" data-testid="auth-back" onClick={back}>
              Use another account
            </button>
          </p>
        </div>
      </div>
    );
  }

  const only = sso?.enabled === true && sso.only;
  const ssoBlock = (
    <>
      {ssoError && (
        <div class="auth-error" role="alert" data-testid="sso-error">
          {ssoError}
        </div>
      )}
      {sso?.enabled && (
        <button type="button" class="primary sso-button" data-testid="sso-button" disabled={leaving} onClick={startSso}>
          {leaving ? 'Opening the sign-in page…' : sso.label}
        </button>
      )}
    </>
  );

  return (
    <div class="auth">
      <div class="auth-band" />
      <div class="auth-card" aria-busy={sso === undefined ? 'true' : undefined} data-testid="auth-card">
        <div class="auth-brand">
          <HarkLogo size={40} />
          <span>Hark</span>
        </div>
        <h1>{mode === 'login' || only ? 'Log in to Hark' : 'Create your account'}</h1>
        {only ? (
          <>
            <p class="auth-sub" data-testid="sso-only">
              This server signs people in through their organisation. Use your organisation's account: the first time, it
              makes your Hark account.
            </p>
            <div class="auth-sso">
              {ssoBlock}
              {error && (
                <div class="auth-error" role="alert" data-testid="auth-error">
                  {error}
                </div>
              )}
            </div>
          </>
        ) : sso === undefined ? (
          // Asking whether the server signs people in through their organisation (a moment): no password form to flash.
          <p class="auth-sub">Please wait…</p>
        ) : (
          <>
            <p class="auth-sub">
              {mode === 'login'
                ? 'Use your Hark account on this browser. It becomes one of your devices.'
                : 'Pick a username people can find you by.'}
            </p>
            {(sso?.enabled || ssoError) && (
              <div class="auth-sso">
                {ssoBlock}
                {sso?.enabled && (
                  <div class="auth-or" aria-hidden="true">
                    <span>{mode === 'login' ? 'or log in with a Hark password' : 'or make an account with a password'}</span>
                  </div>
                )}
              </div>
            )}
            <form key="credentials" onSubmit={submit} data-testid="auth-form">
              <label>
                Username
                <input
                  name="username"
                  autocomplete="username"
                  value={username}
                  onInput={(e) => setUsername(e.currentTarget.value)}
                  required
                  minLength={3}
                  maxLength={32}
                  pattern="[A-Za-z0-9_.\-]+"
                />
              </label>
              {mode === 'register' && (
                <label>
                  Display name <span class="optional">(optional)</span>
                  <input
                    name="display_name"
                    autocomplete="name"
                    value={displayName}
                    maxLength={64}
                    onInput={(e) => setDisplayName(e.currentTarget.value)}
                  />
                </label>
              )}
              <label>
                Password
                <input
                  name="password"
                  type="password"
                  autocomplete={mode === 'login' ? 'current-password' : 'new-password'}
                  value={password}
                  onInput={(e) => setPassword(e.currentTarget.value)}
                  required
                  minLength={8}
                  aria-describedby={mode === 'register' ? 'password-rules' : undefined}
                />
                {mode === 'register' && (
                  <span id="password-rules" class="field-hint">
                    At least 8 characters.
                  </span>
                )}
              </label>
              {error && (
                <div class="auth-error" role="alert" data-testid="auth-error">
                  {error}
                </div>
              )}
              <button class="primary" type="submit" disabled={busy} data-testid="auth-submit">
                {busy ? 'Please wait…' : mode === 'login' ? 'Log in' : 'Create account'}
              </button>
            </form>
            <p class="auth-switch">
              {mode === 'login' ? 'New to Hark? ' : 'Already have an account? '}
              <button
                type="button"
                class="link"
                data-testid="auth-switch"
                onClick={() => {
                  setMode(mode === 'login' ? 'register' : 'login');
                  setError(null);
                }}
              >
                {mode === 'login' ? 'Create an account' : 'Log in'}
              </button>
            </p>
          </>
        )}
      </div>
    </div>
  );
}
