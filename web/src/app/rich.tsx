// Message text as people write it in WhatsApp: *bold*, _italic_, ~strike~,
// `code` and ```monospace```, links made clickable (http, https and mailto
// only; anything else stays text). Everything is built as Preact elements
// from plain strings, so HTML in a message is never interpreted: "<b>" stays
// the four characters "<b>".

import type { ComponentChildren } from 'preact';

type Node = ComponentChildren;

const LINK = /\b(?:https?:\/\/|mailto:)[^\s<>"]+|\bwww\.[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'"»)\]}]+$/;

/** The href for a link the text shows, or null when it is not a safe web or mail link. */
export function safeHref(shown: string): string | null {
  const candidate = /^www\./i.test(shown) ? `https://${shown}` : shown;
  try {
    const url = new URL(candidate);
    return url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'mailto:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Split off trailing punctuation that ends a sentence rather than the link (keeping a balanced ")"). */
function trimLink(raw: string): string {
  let link = raw;
  for (;;) {
    const m = link.match(TRAILING);
    if (!m) return link;
    let cut = m[0];
    // "https://en.wikipedia.org/wiki/Foo_(bar)" keeps its closing parenthesis.
    if (cut.startsWith(')') && (link.match(/\(/g)?.length ?? 0) >= (link.match(/\)/g)?.length ?? 0)) cut = cut.slice(1);
    if (!cut) return link;
    link = link.slice(0, link.length - cut.length);
    if (!cut.includes(')')) return link;
  }
}

const MARKS: Record<string, (children: Node, key: number) => Node> = {
  '*': (c, k) => <strong key={k}>{c}</strong>,
  _: (c, k) => <em key={k}>{c}</em>,
  '~': (c, k) => <del key={k}>{c}</del>,
  '`': (c, k) => <code key={k}>{c}</code>,
};

const WORD = /[\p{L}\p{N}]/u;

/** Inline formatting of a piece of text with no links in it. */
function format(text: string, key: { n: number }): Node[] {
  const out: Node[] = [];
  let plain = '';
  let i = 0;
  const flush = () => {
    if (plain) out.push(plain);
    plain = '';
  };
  while (i < text.length) {
    // ```monospace```, across lines, nothing inside is formatted.
    if (text.startsWith('```', i)) {
      const end = text.indexOf('```', i + 3);
      if (end > i + 3) {
        flush();
        out.push(<code class="mono-block" key={key.n++}>{text.slice(i + 3, end)}</code>);
        i = end + 3;
        continue;
      }
    }
    const ch = text[i];
    const mark = MARKS[ch];
    const before = i === 0 ? '' : text[i - 1];
    if (mark && !WORD.test(before) && i + 1 < text.length && !/\s/.test(text[i + 1]) && text[i + 1] !== ch) {
      // The closing mark: same character, not after a space, not before a letter, on the same line.
      let j = i + 1;
      let close = -1;
      while (j < text.length && text[j] !== '\n') {
        if (text[j] === ch && !/\s/.test(text[j - 1]) && !WORD.test(text[j + 1] ?? '')) {
          close = j;
          break;
        }
        j++;
      }
      if (close > i + 1) {
        flush();
        const inner = text.slice(i + 1, close);
        out.push(mark(ch === '`' ? inner : format(inner, key), key.n++));
        i = close + 1;
        continue;
      }
    }
    plain += ch;
    i++;
  }
  flush();
  return out;
}

/** A message's text with formatting and safe links, as Preact nodes. */
export function RichText(props: { text: string; tabIndex?: number }) {
  const { text } = props;
  const key = { n: 0 };
  const out: Node[] = [];
  let at = 0;
  for (const m of text.matchAll(LINK)) {
    const start = m.index ?? 0;
    const shown = trimLink(m[0]);
    const href = safeHref(shown);
    if (!href) continue;
    if (start > at) out.push(...format(text.slice(at, start), key));
    out.push(
      <a key={key.n++} href={href} target="_blank" rel="noopener noreferrer" tabIndex={props.tabIndex} data-testid="msg-link">
        {shown}
      </a>,
    );
    at = start + shown.length;
  }
  if (at < text.length) out.push(...format(text.slice(at), key));
  return <>{out}</>;
}

/** A message of one to three emoji and nothing else: shown large, as in WhatsApp. */
export function isEmojiOnly(text: string): boolean {
  const t = text.trim();
  if (!t || t.length > 64) return false;
  const segments = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(t)].map((s) => s.segment).filter((s) => s.trim());
  if (segments.length === 0 || segments.length > 3) return false;
  return segments.every((g) => /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3/u.test(g) && !/[\p{L}]/u.test(g));
}

/** Past this many characters (or lines) a message shows its start and "Read more". */
export const LONG_TEXT = 1_000;
export const LONG_LINES = 20;

/** The start of a long text, cut at a space near `LONG_TEXT * 0.7` characters. */
export function textStart(text: string): string {
  const lines = text.split('\n');
  let start = lines.length > LONG_LINES ? lines.slice(0, Math.floor(LONG_LINES * 0.7)).join('\n') : text;
  const limit = Math.floor(LONG_TEXT * 0.7);
  if (start.length > limit) {
    const chars = Array.from(start).slice(0, limit).join('');
    const space = chars.lastIndexOf(' ');
    start = space > limit * 0.8 ? chars.slice(0, space) : chars;
  }
  return start;
}

export function isLong(text: string): boolean {
  return text.length > LONG_TEXT || text.split('\n').length > LONG_LINES;
}
