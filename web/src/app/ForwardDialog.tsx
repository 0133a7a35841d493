// "Forward message to": pick up to five of my chats (searchable by name);
// the copies go out through the outbox as `forward` frames.

import { useLayoutEffect, useState } from 'preact/hooks';
import type { Message } from '../hark-client';
import { summaryOf } from './media';
import { MAX_FORWARD, type AppStore } from './store';
import { Avatar, CheckIcon, CloseIcon, SearchIcon, SendIcon } from './ui';

export function ForwardDialog(props: { store: AppStore; message: Message; onClose: () => void }) {
  const { store, message } = props;
  const [q, setQ] = useState('');
  const [picked, setPicked] = useState<number[]>([]);
  useLayoutEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && props.onClose();
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);
  const needle = q.trim().toLowerCase();
  const chats = store
    .sortedChats()
    // Forwards into encrypted chats are not carried yet (the server refuses them).
    .filter((c) => !c.left && !store.isEncrypted(c) && (!needle || store.title(c).toLowerCase().includes(needle)));
  const toggle = (id: number) =>
    setPicked(picked.includes(id) ? picked.filter((x) => x !== id) : picked.length < MAX_FORWARD ? [...picked, id] : picked);
  const names = picked.map((id) => store.chats.get(id)).filter((c) => c !== undefined).map((c) => store.title(c));

  function send() {
    store.forward(message.chat_id, message.seq, picked);
    props.onClose();
    // Show where it went when it went to one chat, as WhatsApp does.
    if (picked.length === 1) void store.openChat(picked[0]);
  }

  return (
    <div class="modal-backdrop" onClick={props.onClose}>
      <div class="modal forward" role="dialog" aria-label="Forward message to" data-testid="forward-dialog" onClick={(e) => e.stopPropagation()}>
        <header class="modal-header">
          <button class="icon-btn" aria-label="Close" data-testid="forward-close" onClick={props.onClose}>
            <CloseIcon />
          </button>
          <h2>Forward message to</h2>
        </header>
        <div class="search">
          <div class="search-box">
            <SearchIcon />
            <input aria-label="Search chats" autoFocus placeholder="Search chats" value={q} data-testid="forward-search" onInput={(e) => setQ(e.currentTarget.value)} />
          </div>
        </div>
        <div class="forward-quote">
          <span class="quote-text" dir="auto">{summaryOf(message)}</span>
        </div>
        <div class="list">
          <div class="list-section">Chats</div>
          {chats.map((c) => {
            const selected = picked.includes(c.chat.id);
            const title = store.title(c);
            return (
              <button
                key={c.chat.id}
                class={`row user-row ${selected ? 'selected' : ''}`}
                data-testid="forward-target"
                data-chat-id={c.chat.id}
                aria-pressed={selected}
                disabled={!selected && picked.length >= MAX_FORWARD}
                onClick={() => toggle(c.chat.id)}
              >
                <span class={`checkbox ${selected ? 'on' : ''}`} aria-hidden="true">
                  {selected && <CheckIcon />}
                </span>
                <Avatar name={title} id={store.peer(c)?.id ?? c.chat.id * 7} size={40} group={c.chat.kind === 'group'} />
                <div class="row-body">
                  <div class="row-top">
                    <span class="row-title" dir="auto">{title}</span>
                  </div>
                  <div class="row-bottom">
                    <span class="row-preview">{c.chat.kind === 'group' ? `${c.chat.members.length} members` : `@${store.peer(c)?.username ?? ''}`}</span>
                  </div>
                </div>
              </button>
            );
          })}
          {chats.length === 0 && <div class="list-empty">No chats found for “{q}”.</div>}
        </div>
        {picked.length > 0 && (
          <footer class="forward-footer">
            <span class="forward-names" data-testid="forward-picked">{names.join(', ')}</span>
            <button class="fab" aria-label="Forward" data-testid="forward-send" onClick={send}>
              <SendIcon />
            </button>
          </footer>
        )}
      </div>
    </div>
  );
}
