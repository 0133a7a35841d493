// The login / register screen. Logging in makes this browser a device of the
// account. An account with two-step verification on is asked, once its
// password was right, for a code from its authenticator app (or a recovery
// code), and logs in again with it.

import { useEffect, useRef, useState } from 'preact/hooks';
import { HarkApi, HarkError, type Session } from '../hark-client';
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

/** Shown on the login screen when an admin disabled the account (a refused login, or a session ended by it). */
export const ACCOUNT_DISABLED = 'Your account has been disabled by an administrator.';
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

  return (
    <div class="auth">
      <div class="auth-band" />
      <div class="auth-card">
        <div class="auth-brand">
          <HarkLogo size={40} />
          <span>Hark</span>
        </div>
        <h1>{mode === 'login' ? 'Log in to Hark' : 'Create your account'}</h1>
        <p class="auth-sub">
          {mode === 'login'
            ? 'Use your Hark account on this browser. It becomes one of your devices.'
            : 'Pick a username people can find you by.'}
        </p>
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
      </div>
    </div>
  );
}
