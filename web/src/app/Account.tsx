// Settings → the account's sign-in: changing the password (optionally
// logging out every other device) and two-step verification (TOTP, RFC
// 6238: an authenticator app's 6-digit code at each login on a new device,
// with ten single-use recovery codes for a lost phone); and deleting the
// account for good.

import { useEffect, useRef, useState } from 'preact/hooks';
import { HarkError, type HarkApi, type TwoFactorEnrolment as TwoFactorEnrolmentBody, type TwoFactorStatus } from '../hark-client';
import type { AppStore } from './store';
import { errorText, plural } from './ui';

/** A refusal of a sign-in change in words: a wrong password or code said plainly, else `errorText`'s. */
function refusal(e: unknown, words: { password?: string; code?: string } = {}): string {
  if (e instanceof HarkError) {
    if (e.code === 'invalid_credentials') return words.password ?? 'That password is wrong.';
    if (e.code === 'invalid_two_factor_code') return `That code is not right. ${words.code ?? 'Enter the newest code your authenticator app shows.'}`;
  }
  return errorText(e, 'account');
}

/** "Change password": current, new, and whether to log out the other devices. `onChanged` after a change (the device list may have shrunk). */
export function PasswordCard(props: { store: AppStore; onChanged: () => void }) {
  const { store } = props;
  const [open, setOpen] = useState(false);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [logOutOthers, setLogOutOthers] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const res = await store.api.changePassword(current, next, logOutOthers);
      const n = res.devices_logged_out;
      setDone(
        n > 0
          ? `Password changed. ${plural(n, 'other device')} ${n === 1 ? 'was' : 'were'} logged out.`
          : logOutOthers
            ? 'Password changed. No other device was logged in.'
            : 'Password changed. Your other devices stay logged in.',
      );
      setOpen(false);
      setCurrent('');
      setNext('');
      setLogOutOthers(false);
      props.onChanged();
    } catch (err) {
      if (store.refused(err)) return;
      setError(refusal(err, { password: 'Your current password is wrong.' }));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="settings-card" data-testid="password-card">
      <h3>Password</h3>
      {done && (
        <p class="settings-success" role="status" data-testid="password-done">
          {done}
        </p>
      )}
      {!open ? (
        <div class="settings-row">
          <span class="muted">Used with your username to log in on a new device.</span>
          <button
            class="secondary small"
            data-testid="password-change"
            onClick={() => {
              setOpen(true);
              setDone(null);
              setError(null);
            }}
          >
            Change password
          </button>
        </div>
      ) : (
        <form class="settings-form" onSubmit={submit} data-testid="password-form">
          <label class="settings-field">
            <span>Current password</span>
            <input
              type="password"
              name="current_password"
              autocomplete="current-password"
              required
              value={current}
              data-testid="password-current"
              onInput={(e) => setCurrent(e.currentTarget.value)}
              autoFocus
            />
          </label>
          <label class="settings-field">
            <span>New password</span>
            <input
              type="password"
              name="new_password"
              autocomplete="new-password"
              required
              minLength={8}
              maxLength={1024}
              value={next}
              data-testid="password-new"
              aria-describedby="password-new-hint"
              onInput={(e) => setNext(e.currentTarget.value)}
            />
            <span class="field-hint" id="password-new-hint">
              At least 8 characters.
            </span>
          </label>
          <label class="settings-check">
            <input type="checkbox" checked={logOutOthers} data-testid="password-logout-others" onChange={(e) => setLogOutOthers(e.currentTarget.checked)} />
            <span>Log out my other devices</span>
          </label>
          {error && (
            <p class="form-error settings-error" role="alert" data-testid="password-error">
              {error}
            </p>
          )}
          <div class="settings-actions">
            <button class="primary" type="submit" disabled={busy} data-testid="password-save">
              {busy ? 'Changing…' : 'Change password'}
            </button>
            <button
              class="secondary"
              type="button"
              data-testid="password-cancel"
              onClick={() => {
                setOpen(false);
                setError(null);
                setCurrent('');
                setNext('');
              }}
            >
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

type Step =
  | { kind: 'status' }
  /** Turning on: `TwoFactorEnrolment`. */
  | { kind: 'enrol' }
  /** Turning off: the password and a code. */
  | { kind: 'disable' };

/** "Two-step verification": whether it is on, and turning it on (`TwoFactorEnrolment`) or off. */
export function TwoFactorCard(props: { store: AppStore }) {
  const { store } = props;
  const [status, setStatus] = useState<TwoFactorStatus | null>(null);
  const [step, setStep] = useState<Step>({ kind: 'status' });
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const codeInput = useRef<HTMLInputElement>(null);

  const load = () =>
    store.api
      .twoFactor()
      .then(setStatus)
      .catch((e) => {
        if (!store.refused(e)) setError(refusal(e));
      });
  useEffect(() => void load(), [store]);

  const go = (s: Step) => {
    setStep(s);
    setError(null);
    setPassword('');
    setCode('');
  };

  async function disable(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await store.api.disableTwoFactor(password, code.trim());
      go({ kind: 'status' });
      await load();
    } catch (err) {
      if (store.refused(err)) return;
      setError(refusal(err, { code: 'Enter the code your authenticator app shows now, or an unused recovery code.' }));
      if (err instanceof HarkError && err.code === 'invalid_two_factor_code') codeInput.current?.select();
    } finally {
      setBusy(false);
    }
  }

  const on = !!status?.enabled;
  // Each step's form has a key: Preact would otherwise reuse one step's
  // inputs for the next, with what is left of their attributes (an empty
  // `pattern` refuses everything).
  return (
    <section class="settings-card" data-testid="two-factor" data-enabled={status ? String(on) : undefined}>
      <h3>Two-step verification</h3>
      {step.kind === 'status' && (
        <>
          <div class="settings-row">
            <span data-testid="two-factor-status">
              {status === null
                ? 'Loading…'
                : on
                  ? `On · ${plural(status.recovery_codes_left, 'recovery code')} left`
                  : 'Off'}
            </span>
            {status !== null && (
              <button class="secondary small" data-testid={on ? 'two-factor-off' : 'two-factor-on'} onClick={() => go({ kind: on ? 'disable' : 'enrol' })}>
                {on ? 'Turn off' : 'Turn on'}
              </button>
            )}
          </div>
          <p class="settings-note">
            {on
              ? 'Logging in on a new device asks for a code from your authenticator app, as well as your password.'
              : 'When on, logging in on a new device asks for a 6-digit code from an authenticator app on your phone, as well as your password.'}
            {on && status!.recovery_codes_left <= 2 && ' Few recovery codes are left: turn it off and on again for new ones.'}
          </p>
        </>
      )}
      {step.kind === 'enrol' && (
        <TwoFactorEnrolment
          api={store.api}
          refused={(e) => store.refused(e)}
          onEnabled={() => void load()}
          onDone={() => go({ kind: 'status' })}
          onCancel={() => go({ kind: 'status' })}
          onAlreadyOn={(message) => {
            void load();
            go({ kind: 'status' });
            setError(message);
          }}
        />
      )}
      {step.kind === 'disable' && (
        <form class="settings-form" onSubmit={disable} key="two-factor-disable-form" data-testid="two-factor-disable-form">
          <p class="settings-form-note">Logging in will ask only for your password again.</p>
          <label class="settings-field">
            <span>Password</span>
            <input
              type="password"
              autocomplete="current-password"
              required
              value={password}
              data-testid="two-factor-password"
              onInput={(e) => setPassword(e.currentTarget.value)}
              autoFocus
            />
          </label>
          <label class="settings-field">
            <span>Code from your authenticator app, or a recovery code</span>
            <input
              ref={codeInput}
              name="code"
              autocomplete="one-time-code"
              autocapitalize="off"
              spellcheck={false}
              maxLength={32}
              required
              value={code}
              data-testid="two-factor-code"
              onInput={(e) => setCode(e.currentTarget.value)}
            />
          </label>
          <FormError error={error} />
          <div class="settings-actions">
            <button class="primary danger" type="submit" disabled={busy} data-testid="two-factor-disable">
              {busy ? 'Please wait…' : 'Turn off'}
            </button>
            <button class="secondary" type="button" onClick={() => go({ kind: 'status' })}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {step.kind === 'status' && <FormError error={error} />}
    </section>
  );
}

type EnrolStep =
  /** The password first. */
  | { kind: 'password' }
  /** The secret to put in the app, and the field for its first code. */
  | { kind: 'scan'; enrolment: TwoFactorEnrolmentBody }
  /** It is on: the recovery codes, shown this once. */
  | { kind: 'codes'; codes: string[] };

/**
 * Turning two-step verification on: the password, then the QR code and key
 * for an authenticator app and its first code, then the ten recovery codes
 * (shown this once) until "I saved them". Settings shows it in its card; a
 * server that requires two-factor authentication shows it before the app
 * (`ForcedTwoFactor`). Needs only the API, not a running app.
 *
 * `refused(e)`: whether the app took a refusal as the end of the session
 * (then nothing is said here); `onEnabled` once the server turned it on;
 * `onDone` after the recovery codes; `onCancel` (offered when given) leaves
 * without turning it on; `onAlreadyOn(message)` when it was on already
 * (turned on from another device meanwhile).
 */
export function TwoFactorEnrolment(props: {
  api: HarkApi;
  refused: (e: unknown) => boolean;
  onEnabled?: () => void;
  onDone: () => void;
  onCancel?: () => void;
  onAlreadyOn: (message: string) => void;
}) {
  const { api } = props;
  const [step, setStep] = useState<EnrolStep>({ kind: 'password' });
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const codeInput = useRef<HTMLInputElement>(null);

  const go = (s: EnrolStep) => {
    setStep(s);
    setError(null);
    setPassword('');
    setCode('');
    setCopied(false);
  };

  async function run(e: Event, f: () => Promise<void>) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (err) {
      if (props.refused(err)) return;
      // On already (turned on from another device meanwhile): said where it shows so.
      if (err instanceof HarkError && err.code === 'invalid_field' && step.kind === 'password') {
        props.onAlreadyOn(refusal(err));
        return;
      }
      setError(refusal(err));
      if (err instanceof HarkError && err.code === 'invalid_two_factor_code') codeInput.current?.select();
    } finally {
      setBusy(false);
    }
  }

  const start = (e: Event) =>
    run(e, async () => {
      const enrolment = await api.startTwoFactor(password);
      go({ kind: 'scan', enrolment });
    });
  const confirm = (e: Event) =>
    run(e, async () => {
      try {
        const { recovery_codes } = await api.confirmTwoFactor(code.trim());
        go({ kind: 'codes', codes: recovery_codes });
        props.onEnabled?.();
      } catch (err) {
        if (err instanceof HarkError && err.code === 'not_found') {
          go({ kind: 'password' });
          throw new HarkError(404, 'not_found', 'The setup was not finished in time. Enter your password to start again.');
        }
        throw err;
      }
    });

  const cancel = props.onCancel && (
    <button class="secondary" type="button" data-testid="two-factor-cancel" onClick={props.onCancel}>
      Cancel
    </button>
  );
  // Each step's form has a key (see TwoFactorCard).
  return (
    <>
      {step.kind === 'password' && (
        <form class="settings-form" onSubmit={start} key="two-factor-password-form" data-testid="two-factor-password-form">
          <p class="settings-form-note">Enter your password to set up two-step verification.</p>
          <label class="settings-field">
            <span>Password</span>
            <input
              type="password"
              autocomplete="current-password"
              required
              value={password}
              data-testid="two-factor-password"
              onInput={(e) => setPassword(e.currentTarget.value)}
              autoFocus
            />
          </label>
          <FormError error={error} />
          <div class="settings-actions">
            <button class="primary" type="submit" disabled={busy} data-testid="two-factor-continue">
              {busy ? 'Please wait…' : 'Continue'}
            </button>
            {cancel}
          </div>
        </form>
      )}
      {step.kind === 'scan' && (
        <form class="settings-form" onSubmit={confirm} key="two-factor-scan" data-testid="two-factor-scan">
          <p class="settings-form-note">
            1. Scan this QR code with an authenticator app (Google Authenticator, Microsoft Authenticator, 1Password, Aegis…), or type the key into it.
          </p>
          <img class="two-factor-qr" src={`data:image/png;base64,${step.enrolment.qr_png}`} alt="QR code for your authenticator app" width={180} height={180} data-testid="two-factor-qr" />
          <div class="two-factor-secret">
            <span class="muted">Key</span>
            <code data-testid="two-factor-secret" aria-label="Key for your authenticator app">
              {groups(step.enrolment.secret)}
            </code>
          </div>
          <label class="settings-field">
            <span>2. Enter the 6-digit code the app shows</span>
            <input
              ref={codeInput}
              name="code"
              inputMode="numeric"
              autocomplete="one-time-code"
              pattern="\s*[0-9]{3}\s*[0-9]{3}\s*"
              maxLength={9}
              required
              value={code}
              data-testid="two-factor-code"
              onInput={(e) => setCode(e.currentTarget.value)}
              autoFocus
            />
          </label>
          <FormError error={error} />
          <div class="settings-actions">
            <button class="primary" type="submit" disabled={busy} data-testid="two-factor-confirm">
              {busy ? 'Checking…' : 'Turn on'}
            </button>
            {cancel}
          </div>
        </form>
      )}
      {step.kind === 'codes' && (
        <div class="settings-form" key="two-factor-codes" data-testid="two-factor-codes">
          <p class="settings-success" role="status">
            Two-step verification is on.
          </p>
          <p class="two-factor-save" data-testid="two-factor-save-note">
            <strong>Save these recovery codes now,</strong> somewhere safe (a password manager, or on paper). If you lose your phone, each code logs you in once in place of
            the app's code. They are not shown again.
          </p>
          <ol class="recovery-codes" aria-label="Recovery codes">
            {step.codes.map((c) => (
              <li key={c}>
                <code data-testid="recovery-code">{c}</code>
              </li>
            ))}
          </ol>
          <div class="settings-actions">
            <button class="primary" data-testid="two-factor-done" onClick={props.onDone}>
              I saved them
            </button>
            {typeof navigator !== 'undefined' && navigator.clipboard && (
              <button
                class="secondary"
                data-testid="two-factor-copy"
                onClick={() =>
                  void navigator.clipboard
                    .writeText(step.codes.join('\n'))
                    .then(() => setCopied(true))
                    .catch(() => setCopied(false))
                }
              >
                {copied ? 'Copied' : 'Copy codes'}
              </button>
            )}
          </div>
        </div>
      )}
    </>
  );
}

function FormError(props: { error: string | null }) {
  if (!props.error) return null;
  return (
    <p class="form-error settings-error" role="alert" data-testid="two-factor-error">
      {props.error}
    </p>
  );
}

/** A base32 key in groups of four, as authenticator apps show it. */
function groups(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, '$1 ');
}

/** What is typed to confirm a deletion. */
const CONFIRM_WORD = 'DELETE';

/**
 * "Delete account", last in Settings: what it does, then the password (and
 * a two-step code when that is on) and DELETE typed out. Once the server
 * answered the session is gone: the login screen says the account was
 * deleted (`AppStore.deleteAccount`).
 */
export function DeleteAccountCard(props: { store: AppStore }) {
  const { store } = props;
  const [open, setOpen] = useState(false);
  // Whether a code is asked for: null while asking the server.
  const [twoFactor, setTwoFactor] = useState<boolean | null>(null);
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [confirm, setConfirm] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const passwordInput = useRef<HTMLInputElement>(null);
  const codeInput = useRef<HTMLInputElement>(null);

  const start = () => {
    setOpen(true);
    setError(null);
    setTwoFactor(null);
    store.api.twoFactor().then(
      (s) => setTwoFactor(s.enabled),
      (e) => {
        if (store.refused(e)) return;
        // Not known: the field is offered, for the server to say whether it is needed.
        setTwoFactor(true);
      },
    );
  };
  const cancel = () => {
    setOpen(false);
    setError(null);
    setPassword('');
    setCode('');
    setConfirm('');
  };

  const confirmed = confirm.trim().toUpperCase() === CONFIRM_WORD;
  async function submit(e: Event) {
    e.preventDefault();
    if (!confirmed || twoFactor === null) return;
    setBusy(true);
    setError(null);
    try {
      await store.deleteAccount(password, twoFactor && code.trim() ? code.trim() : undefined);
      // The login screen takes over from here.
    } catch (err) {
      if (store.refused(err)) return;
      setError(
        refusal(err, {
          password: 'That password is wrong. Your account was not deleted.',
          code: 'Enter the code your authenticator app shows now, or an unused recovery code. Your account was not deleted.',
        }),
      );
      if (err instanceof HarkError && err.code === 'invalid_credentials') passwordInput.current?.select();
      if (err instanceof HarkError && err.code === 'invalid_two_factor_code') codeInput.current?.select();
      setBusy(false);
    }
  }

  return (
    <section class="settings-card danger-card" data-testid="delete-account">
      <h3>Delete account</h3>
      <ul class="delete-account-facts" data-testid="delete-account-facts">
        <li>Every message you sent is erased for everyone, in every chat.</li>
        <li>You leave your groups, and your contacts and blocked list go.</li>
        <li>Every device you're logged in on is logged out.</li>
        <li>Others see you as “Deleted account”. Your username becomes free for anyone.</li>
      </ul>
      <p class="settings-note delete-account-final">This cannot be undone.</p>
      {!open ? (
        <div class="settings-row">
          <button class="secondary small danger" data-testid="delete-account-start" onClick={start}>
            Delete account…
          </button>
        </div>
      ) : (
        <form class="settings-form" onSubmit={submit} data-testid="delete-account-form">
          <label class="settings-field">
            <span>Password</span>
            <input
              ref={passwordInput}
              type="password"
              name="password"
              autocomplete="current-password"
              required
              value={password}
              data-testid="delete-account-password"
              onInput={(e) => setPassword(e.currentTarget.value)}
              autoFocus
            />
          </label>
          {twoFactor && (
            <label class="settings-field">
              <span>Code from your authenticator app, or a recovery code</span>
              <input
                ref={codeInput}
                name="code"
                autocomplete="one-time-code"
                autocapitalize="off"
                spellcheck={false}
                maxLength={32}
                required
                value={code}
                data-testid="delete-account-code"
                onInput={(e) => setCode(e.currentTarget.value)}
              />
            </label>
          )}
          <label class="settings-field">
            <span>
              Type <strong class="delete-account-word">{CONFIRM_WORD}</strong> to confirm
            </span>
            <input
              name="confirm"
              autocomplete="off"
              autocapitalize="characters"
              spellcheck={false}
              required
              value={confirm}
              data-testid="delete-account-confirm"
              onInput={(e) => setConfirm(e.currentTarget.value)}
            />
          </label>
          {error && (
            <p class="form-error settings-error" role="alert" data-testid="delete-account-error">
              {error}
            </p>
          )}
          <div class="settings-actions">
            <button class="primary danger" type="submit" disabled={busy || !confirmed || twoFactor === null} data-testid="delete-account-submit">
              {busy ? 'Deleting…' : 'Delete my account'}
            </button>
            <button class="secondary" type="button" data-testid="delete-account-cancel" disabled={busy} onClick={cancel}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
