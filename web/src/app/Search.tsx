// Message search: the debounced `GET /v1/search` hook, matched words
// highlighted (as <mark> elements built by JSX, never as HTML), result rows
// for the sidebar, and the in-chat search panel.

import { useEffect, useState } from 'preact/hooks';
import type { ChatId, Message } from '../hark-client';
import type { AppStore, ChatModel } from './store';
import { BotBadge, errorText, listTime, SearchIcon } from './ui';

const DEBOUNCE_MS = 250;

export interface SearchState {
  /** The query the results answer (trimmed); null before the first answer. */
  query: string | null;
  results: Message[];
  loading: boolean;
  /** Why the last search failed, in words (e.g. too many searches at once); null if it did not. */
  error: string | null;
  /** Ask again for the same query (after a failure). */
  retry: () => void;
}

/** Messages matching `q` in my chats (or in `chatId`), newest first; refreshed as `q` changes, or on `retry`. */
export function useMessageSearch(store: AppStore, q: string, chatId?: ChatId): SearchState {
  const [state, setState] = useState<Omit<SearchState, 'retry'>>({ query: null, results: [], loading: false, error: null });
  // Bumped by `retry`: the same query asked again.
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const query = q.trim();
    if (!query) {
      setState({ query: null, results: [], loading: false, error: null });
      return;
    }
    let cancelled = false;
    setState((s) => ({ ...s, loading: true, error: null }));
    const t = setTimeout(() => {
      store
        .searchMessages(query, chatId)
        .then((results) => !cancelled && setState({ query, results, loading: false, error: null }))
        .catch((e) => !cancelled && setState({ query, results: [], loading: false, error: errorText(e, 'search') }));
    }, DEBOUNCE_MS);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [q, chatId, store, attempt]);
  return { ...state, retry: () => setAttempt((n) => n + 1) };
}

/** The words of a query as the server matches them: letters and digits, case and accents ignored. */
function queryWords(q: string): string[] {
  return q
    .split(/[^\p{L}\p{N}]+/u)
    .map(fold)
    .filter(Boolean);
}

function fold(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

const WORD_CHAR = /[\p{L}\p{N}]/u;

/**
 * Where the query's words start words of `text`, as [start, end) offsets into
 * `text` (UTF-16), sorted and merged. Matching runs on a folded copy (lower
 * case, no accents) mapped back to the original characters.
 */
export function matchRanges(text: string, q: string): [number, number][] {
  const words = queryWords(q);
  if (words.length === 0) return [];
  let folded = '';
  const origin: [number, number][] = []; // per folded UTF-16 unit: the original char's [start, end)
  let at = 0;
  for (const ch of text) {
    const f = fold(ch) || ch;
    for (let i = 0; i < f.length; i++) origin.push([at, at + ch.length]);
    folded += f;
    at += ch.length;
  }
  const ranges: [number, number][] = [];
  for (const w of words) {
    let from = 0;
    for (;;) {
      const i = folded.indexOf(w, from);
      if (i < 0) break;
      from = i + 1;
      if (i > 0 && WORD_CHAR.test(folded[i - 1])) continue;
      ranges.push([origin[i][0], origin[i + w.length - 1][1]]);
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/** `text` with the query's words in <mark>; a long text starts shortly before the first match. */
export function Highlighted(props: { text: string; query: string; lead?: number }) {
  const { query } = props;
  let text = props.text;
  let ranges = matchRanges(text, query);
  const lead = props.lead ?? 30;
  if (ranges.length && ranges[0][0] > lead + 10) {
    let cut = ranges[0][0] - lead;
    const space = text.indexOf(' ', cut);
    if (space >= 0 && space < ranges[0][0]) cut = space + 1;
    text = `…${text.slice(cut)}`;
    ranges = ranges.map(([s, e]) => [s - cut + 1, e - cut + 1]);
  }
  const parts: preact.ComponentChildren[] = [];
  let pos = 0;
  for (const [s, e] of ranges) {
    if (s > pos) parts.push(text.slice(pos, s));
    parts.push(<mark key={s}>{text.slice(s, e)}</mark>);
    pos = e;
  }
  if (pos < text.length) parts.push(text.slice(pos));
  return <>{parts}</>;
}

/** One found message: chat title (unless inside the chat), time, sender and the text with matches marked. */
export function SearchResultRow(props: { store: AppStore; message: Message; query: string; showChat: boolean; onOpen: () => void }) {
  const { store, message: m, query } = props;
  const c = store.chats.get(m.chat_id);
  const sender = c ? store.userName(c, m.sender_id) : m.sender_id === store.me.id ? 'You' : '';
  const senderUser = c ? store.userOf(c, m.sender_id) : null;
  return (
    <button class="row search-result" data-testid="search-result" data-chat-id={m.chat_id} data-seq={m.seq} onClick={props.onOpen}>
      <div class="row-body">
        <div class="row-top">
          <span class="row-title" dir="auto" data-testid="search-result-chat">{props.showChat && c ? store.title(c) : sender}</span>
          <BotBadge user={props.showChat && c ? (c.chat.kind === 'direct' ? store.peer(c) : null) : senderUser} />
          <span class="row-time">{listTime(m.sent_at)}</span>
        </div>
        <div class="result-text" dir="auto" data-testid="search-result-text">
          {props.showChat && sender && (
            <span class="preview-sender" data-testid="search-result-sender">
              {sender}
              <BotBadge user={senderUser} />:{' '}
            </span>
          )}
          <Highlighted text={m.text} query={query} />
        </div>
      </div>
    </button>
  );
}

/** The results block under a query: searching…, nothing found, or the rows. */
export function SearchResults(props: { store: AppStore; search: SearchState; showChat: boolean; onOpen: (m: Message) => void }) {
  const { search } = props;
  if (search.error) {
    return (
      <div class="list-empty" role="alert" data-testid="search-error">
        <p>{search.error}</p>
        <button class="text-btn" data-testid="search-retry" onClick={search.retry}>
          Try again
        </button>
      </div>
    );
  }
  if (search.query === null) return search.loading ? <div class="list-empty">Searching messages…</div> : null;
  if (search.results.length === 0) {
    return search.loading ? <div class="list-empty">Searching messages…</div> : <div class="list-empty" data-testid="search-empty">No messages found</div>;
  }
  return (
    <div data-testid="search-results">
      {search.results.map((m) => (
        <SearchResultRow key={`${m.chat_id}-${m.seq}`} store={props.store} message={m} query={search.query!} showChat={props.showChat} onOpen={() => props.onOpen(m)} />
      ))}
    </div>
  );
}

/** The right-hand drawer's "Search messages" in the open chat. */
export function ChatSearch(props: { store: AppStore; model: ChatModel }) {
  const { store, model } = props;
  const [q, setQ] = useState('');
  const search = useMessageSearch(store, q, model.chat.id);
  return (
    <>
      <div class="search">
        <div class="search-box">
          <SearchIcon />
          <input aria-label="Search" autoFocus placeholder="Search…" value={q} data-testid="chat-search-input" onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
      </div>
      {model.chat.encrypted ? (
        <div class="list-empty" data-testid="e2e-no-search">
          Messages of end-to-end encrypted chats are not searchable: the server cannot read them.
        </div>
      ) : (
        !q.trim() && <div class="list-empty">Search for messages in {store.title(model)}.</div>
      )}
      <SearchResults store={store} search={search} showChat={false} onOpen={(m) => void store.openChatAt(m.chat_id, m.seq)} />
    </>
  );
}
