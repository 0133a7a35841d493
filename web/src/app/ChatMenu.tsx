// A chat's own settings (mute, archive, pin) as menu items, shared by the
// chat list's row menu and the chat header's menu. Changes go through
// `PATCH /v1/chats/{id}/settings`; the user's other devices follow by event.

import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { MUTED_FOREVER, type AppStore, type ChatModel, type SettingsPatch } from './store';
import { ArchiveIcon, MutedIcon, PinIcon } from './ui';

const MUTE_CHOICES: [string, string, () => number][] = [
  ['For 8 hours', 'mute-8h', () => Date.now() + 8 * 3_600_000],
  ['For 1 week', 'mute-week', () => Date.now() + 7 * 86_400_000],
  ['Always', 'mute-always', () => MUTED_FOREVER],
];

/** The settings items for one chat; `onClose` runs after a choice. */
export function ChatSettingsItems(props: { store: AppStore; model: ChatModel; onClose: () => void }) {
  const { store, model } = props;
  const [choosingMute, setChoosingMute] = useState(false);
  const apply = (patch: SettingsPatch) => {
    props.onClose();
    store.setSettings(model.chat.id, patch).catch((e) => store.flash(`Could not change the chat: ${e instanceof Error ? e.message : e}`));
  };
  const item = (label: string, testid: string, icon: preact.ComponentChildren, f: () => void) => (
    <button role="menuitem" data-testid={testid} onClick={(e) => { e.stopPropagation(); f(); }}>
      {icon} {label}
    </button>
  );
  if (choosingMute) {
    return (
      <>
        <div class="menu-who" role="presentation">Mute notifications for…</div>
        {MUTE_CHOICES.map(([label, testid, until]) => item(label, testid, <MutedIcon />, () => apply({ muted_until: until() })))}
      </>
    );
  }
  const archived = store.isArchived(model);
  return (
    <>
      {archived
        ? item('Unarchive chat', 'chat-unarchive', <ArchiveIcon />, () => apply({ archived: false }))
        : // Archiving unpins, as WhatsApp does: the archived list has no pinned section.
          item('Archive chat', 'chat-archive', <ArchiveIcon />, () => apply(store.isPinned(model) ? { archived: true, pinned: false } : { archived: true }))}
      {store.isMuted(model)
        ? item('Unmute notifications', 'chat-unmute', <MutedIcon />, () => apply({ muted_until: null }))
        : item('Mute notifications', 'chat-mute', <MutedIcon />, () => setChoosingMute(true))}
      {!archived &&
        (store.isPinned(model)
          ? item('Unpin chat', 'chat-unpin', <PinIcon />, () => apply({ pinned: false }))
          : item('Pin chat', 'chat-pin', <PinIcon />, () => apply({ pinned: true })))}
    </>
  );
}

/**
 * Close a menu on the next click anywhere else (or Escape). A layout effect:
 * the keys work from the moment the menu is in the page, not a frame later.
 */
export function useDismiss(open: boolean, close: () => void): void {
  useLayoutEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && close();
    // Registered after the click that opened the menu has finished bubbling.
    const t = setTimeout(() => {
      document.addEventListener('click', close);
      document.addEventListener('contextmenu', close);
    });
    document.addEventListener('keydown', onKey);
    return () => {
      clearTimeout(t);
      document.removeEventListener('click', close);
      document.removeEventListener('contextmenu', close);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);
}

/** A chat row's menu, at a point on screen (the chevron, or where the right click was). */
export function ChatRowMenu(props: { store: AppStore; model: ChatModel; x: number; y: number; onClose: () => void }) {
  useDismiss(true, props.onClose);
  const ref = useRef<HTMLDivElement>(null);
  useMenuKeys(ref, true, props.onClose);
  // Keep it on screen: it is about 200 px wide and at most 190 px tall.
  const left = Math.max(8, Math.min(props.x, window.innerWidth - 240));
  const top = Math.max(8, Math.min(props.y, window.innerHeight - 200));
  return (
    <div ref={ref} class="menu chat-menu" role="menu" aria-label="Chat options" data-testid="chat-menu" style={{ left: `${left}px`, top: `${top}px` }} onClick={(e) => e.stopPropagation()}>
      <ChatSettingsItems store={props.store} model={props.model} onClose={props.onClose} />
    </div>
  );
}

/**
 * Keyboard for an open menu: focus its first item, move with the arrow keys
 * (Home / End too), close with Escape or Tab, and give focus back to where
 * it was (the button or message that opened it).
 */
export function useMenuKeys(ref: { current: HTMLElement | null }, open: boolean, close: () => void): void {
  useLayoutEffect(() => {
    if (!open) return;
    const before = document.activeElement as HTMLElement | null;
    const items = () => [...(ref.current?.querySelectorAll<HTMLElement>('[role=menuitem]:not([disabled])') ?? [])];
    items()[0]?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        // At once, not after the menu's removal is painted.
        if (before?.isConnected && ref.current?.contains(document.activeElement)) before.focus();
        close();
        return;
      }
      if (!ref.current?.contains(document.activeElement)) return;
      const list = items();
      const i = list.indexOf(document.activeElement as HTMLElement);
      const go = (j: number) => {
        e.preventDefault();
        list[(j + list.length) % list.length]?.focus();
      };
      if (e.key === 'ArrowDown' || e.key === 'ArrowRight') go(i + 1);
      else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') go(i - 1);
      else if (e.key === 'Home') go(0);
      else if (e.key === 'End') go(list.length - 1);
      else if (e.key === 'Tab') close();
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      // Only when focus is still in the menu (or lost with it), not when a choice moved it on.
      const now = document.activeElement as HTMLElement | null;
      if (before && before.isConnected && (!now || now === document.body || !now.isConnected || now.closest('[role=menu]'))) before.focus();
    };
  }, [open]);
}
