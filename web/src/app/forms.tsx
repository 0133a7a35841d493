// Pieces of the settings cards that add something: a form behind its
// "New …" button, a checklist of choices, and a secret or token shown this
// once with a copy button. Used by Settings → Bots (tokens, webhooks) and a
// group's webhooks (./Webhooks).

import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

/**
 * A "New …" button that opens into a form. The test ids follow `testid`:
 * `<testid>-new` (the button), `-form`, `-save` and `-error` (a refusal, in
 * the form while it is open, under the button once it is closed).
 */
export function AddForm(props: {
  testid: string;
  open: boolean;
  onOpen: () => void;
  onCancel: () => void;
  onSubmit: (e: Event) => void;
  busy: boolean;
  /** The button's words, and the submit button's (idle, busy). */
  button: string;
  submit: string;
  busyLabel: string;
  error: string | null;
  children: ComponentChildren;
}) {
  const error = props.error && (
    <p class="form-error settings-error" role="alert" data-testid={`${props.testid}-error`}>
      {props.error}
    </p>
  );
  if (!props.open) {
    return (
      <>
        <div class="settings-row">
          <span />
          <button class="secondary small" data-testid={`${props.testid}-new`} onClick={props.onOpen}>
            {props.button}
          </button>
        </div>
        {error}
      </>
    );
  }
  return (
    <form class="settings-form" onSubmit={props.onSubmit} data-testid={`${props.testid}-form`}>
      {props.children}
      {error}
      <div class="settings-actions">
        <button class="primary" type="submit" disabled={props.busy} data-testid={`${props.testid}-save`}>
          {props.busy ? props.busyLabel : props.submit}
        </button>
        <button class="secondary" type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** Checkboxes for a set of choices (`<testid>-<choice>` each), in `options`' order. */
export function Checklist<T extends string>(props: {
  legend: string;
  options: readonly T[];
  labels: Record<T, string>;
  chosen: Set<T>;
  onChange: (chosen: Set<T>) => void;
  testid: string;
}) {
  const toggle = (value: T, on: boolean) => {
    const next = new Set(props.chosen);
    if (on) next.add(value);
    else next.delete(value);
    props.onChange(next);
  };
  return (
    <fieldset class="settings-fieldset">
      <legend>{props.legend}</legend>
      {props.options.map((o) => (
        <label class="settings-check" key={o}>
          <input type="checkbox" checked={props.chosen.has(o)} data-testid={`${props.testid}-${o}`} onChange={(e) => toggle(o, e.currentTarget.checked)} />
          <span>{props.labels[o]}</span>
        </label>
      ))}
    </fieldset>
  );
}

/** The secret or token shown this once, with a copy button and "I saved it". */
export function ShownOnce(props: { label: string; value: string; testid: string; note: string; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="shown-once" data-testid={`${props.testid}-once`} role="status">
      <span class="shown-once-label">{props.label}</span>
      <code class="shown-once-value" data-testid={props.testid}>
        {props.value}
      </code>
      <p class="two-factor-save">{props.note}</p>
      <div class="settings-actions">
        {typeof navigator !== 'undefined' && navigator.clipboard && (
          <button
            class="secondary small"
            type="button"
            data-testid={`${props.testid}-copy`}
            onClick={() =>
              void navigator.clipboard
                .writeText(props.value)
                .then(() => setCopied(true))
                .catch(() => setCopied(false))
            }
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
        )}
        <button class="secondary small" type="button" data-testid={`${props.testid}-done`} onClick={props.onDone}>
          I saved it
        </button>
      </div>
    </div>
  );
}
