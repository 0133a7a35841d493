// Small shared pieces: avatars, ticks, icons, time formatting.

import { useLayoutEffect, useRef } from 'preact/hooks';
import { HarkError } from '../hark-client';
import type { AppStore } from './store';
import type { JSX } from 'preact';
import type { Tick } from './store';

// Avatar colours, each dark enough for white initials (4.5:1 or more).
const COLORS = ['#0b7a5b', '#1a6fbf', '#b3261e', '#7b3fa0', '#9a4b14', '#b0144f', '#00707a', '#5b45b8'];

export function initials(name: string): string {
  // Letters and digits only, so "<img …>" does not become "<I".
  const parts = name
    .split(/\s+/)
    .map((p) => p.replace(/[^\p{L}\p{N}]/gu, ''))
    .filter(Boolean);
  if (parts.length === 0) return '?';
  const first = Array.from(parts[0])[0] ?? '';
  const second = parts.length > 1 ? Array.from(parts[parts.length - 1])[0] ?? '' : '';
  return (first + second).toUpperCase();
}

export function colorFor(id: number): string {
  return COLORS[Math.abs(id) % COLORS.length];
}

/** A sender's name colour in a group: the theme's readable variant of their avatar colour. */
export function nameColorFor(id: number): string {
  return `var(--name-${Math.abs(id) % COLORS.length})`;
}

export function Avatar(props: { name: string; id: number; size?: number; group?: boolean; testid?: string }) {
  const size = props.size ?? 49;
  return (
    <div
      class="avatar"
      aria-hidden="true"
      data-testid={props.testid}
      style={{ width: `${size}px`, height: `${size}px`, background: colorFor(props.id), fontSize: `${Math.round(size * 0.38)}px` }}
    >
      {props.group ? <GroupIcon size={Math.round(size * 0.55)} /> : initials(props.name)}
    </div>
  );
}

/**
 * The small "bot" label after a bot's name (an account run by a program,
 * docs/protocol.md "Bots"), wherever a person's name is shown: chat rows,
 * the chat header, members, contact info, search results, senders in
 * groups. Nothing for a person.
 */
export function BotBadge(props: { user: { bot?: boolean } | null | undefined }) {
  if (!props.user?.bot) return null;
  return (
    <span class="bot-badge" data-testid="bot-badge" title="A bot: an account run by a program">
      bot
    </span>
  );
}

export function Ticks(props: { tick: Tick }) {
  const { tick } = props;
  const label = { pending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent' }[tick];
  if (tick === 'pending') {
    return (
      <span class="ticks pending" data-status="pending" title={label} role="img" aria-label={label}>
        <svg viewBox="0 0 16 15" width="16" height="15">
          <path fill="currentColor" d="M9.75 7.713H8.244V5.359a.5.5 0 0 0-.5-.5H7.65a.5.5 0 0 0-.5.5v2.947a.5.5 0 0 0 .5.5h2.1a.5.5 0 0 0 .5-.5v-.094a.5.5 0 0 0-.5-.5zm-1.2-5.783A5.6 5.6 0 1 0 14.15 7.53a5.607 5.607 0 0 0-5.6-5.6zm0 10.147a4.546 4.546 0 1 1 4.546-4.546 4.552 4.552 0 0 1-4.546 4.546z" />
        </svg>
      </span>
    );
  }
  if (tick === 'failed') {
    return (
      <span class="ticks failed" data-status="failed" title={label} role="img" aria-label={label}>
        !
      </span>
    );
  }
  return (
    <span class={`ticks ${tick}`} data-status={tick} title={label} role="img" aria-label={label}>
      {tick === 'sent' ? (
        <svg viewBox="0 0 12 11" width="12" height="11">
          <path fill="currentColor" d="M11.1549 0.652832C11.0745 0.585124 10.9729 0.55127 10.8502 0.55127C10.7021 0.55127 10.5751 0.610514 10.4693 0.729004L4.28038 8.36523L1.87461 6.09277C1.8323 6.04622 1.78151 6.01025 1.72227 5.98486C1.66303 5.95947 1.60166 5.94678 1.53819 5.94678C1.407 5.94678 1.29275 5.99544 1.19541 6.09277L0.884379 6.40381C0.79128 6.49268 0.744731 6.60482 0.744731 6.74023C0.744731 6.87565 0.79128 6.98991 0.884379 7.08301L3.88047 10.0791C4.02859 10.2145 4.19574 10.2822 4.38194 10.2822C4.48773 10.2822 4.58929 10.259 4.68663 10.2124C4.78396 10.1659 4.86436 10.1003 4.92784 10.0156L11.5738 1.59863C11.6458 1.5013 11.6817 1.40186 11.6817 1.30029C11.6817 1.19027 11.6394 1.09294 11.5548 1.0083L11.1549 0.652832Z" />
        </svg>
      ) : (
        <svg viewBox="0 0 16 11" width="16" height="11">
          <path fill="currentColor" d="M11.0714 0.652832C10.991 0.585124 10.8894 0.55127 10.7667 0.55127C10.6186 0.55127 10.4916 0.610514 10.3858 0.729004L4.19688 8.36523L1.79112 6.09277C1.7488 6.04622 1.69802 6.01025 1.63877 5.98486C1.57953 5.95947 1.51817 5.94678 1.45469 5.94678C1.32351 5.94678 1.20925 5.99544 1.11192 6.09277L0.800883 6.40381C0.707784 6.49268 0.661235 6.60482 0.661235 6.74023C0.661235 6.87565 0.707784 6.98991 0.800883 7.08301L3.79698 10.0791C3.94509 10.2145 4.11224 10.2822 4.29844 10.2822C4.40424 10.2822 4.5058 10.259 4.60313 10.2124C4.70046 10.1659 4.78086 10.1003 4.84434 10.0156L11.4903 1.59863C11.5623 1.5013 11.5982 1.40186 11.5982 1.30029C11.5982 1.19027 11.5559 1.09294 11.4713 1.0083L11.0714 0.652832ZM8.6212 8.32715C8.43077 8.20866 8.2488 8.09017 8.0753 7.97168C7.99489 7.89128 7.8891 7.85107 7.75791 7.85107C7.6098 7.85107 7.4892 7.90397 7.3961 8.00977L7.10411 8.33984C7.01947 8.43717 6.97715 8.54508 6.97715 8.66357C6.97715 8.79476 7.0237 8.90902 7.1168 9.00635L8.1959 10.0791C8.33132 10.2145 8.49636 10.2822 8.69102 10.2822C8.79681 10.2822 8.89838 10.259 8.99571 10.2124C9.09304 10.1659 9.17556 10.1003 9.24327 10.0156L15.8639 1.62402C15.9358 1.53939 15.9718 1.43994 15.9718 1.32568C15.9718 1.20719 15.9231 1.10775 15.8258 1.02734L15.4954 0.652832C15.4108 0.585124 15.3071 0.55127 15.1844 0.55127C15.0405 0.55127 14.9178 0.610514 14.8162 0.729004L8.6212 8.32715Z" />
        </svg>
      )}
    </span>
  );
}

function Svg(props: { size?: number; d: string; title?: string }) {
  const s = props.size ?? 24;
  return (
    <svg viewBox="0 0 24 24" width={s} height={s} aria-hidden="true">
      <path fill="currentColor" d={props.d} />
    </svg>
  );
}

export const GroupIcon = (p: { size?: number }) => (
  <Svg size={p.size} d="M16 11c1.66 0 2.99-1.34 2.99-3S17.66 5 16 5c-1.66 0-3 1.34-3 3s1.34 3 3 3zm-8 0c1.66 0 2.99-1.34 2.99-3S9.66 5 8 5C6.34 5 5 6.34 5 8s1.34 3 3 3zm0 2c-2.33 0-7 1.17-7 3.5V19h14v-2.5c0-2.33-4.67-3.5-7-3.5zm8 0c-.29 0-.62.02-.97.05 1.16.84 1.97 1.97 1.97 3.45V19h6v-2.5c0-2.33-4.67-3.5-7-3.5z" />
);
export const NewChatIcon = () => (
  <Svg d="M19.005 3.175H4.674C3.642 3.175 3 3.789 3 4.821V21.02l3.544-3.514h12.461c1.033 0 2.064-1.06 2.064-2.093V4.821c-.001-1.032-1.032-1.646-2.064-1.646zm-4.989 9.869H7.041V11.1h6.975v1.944zm3-4H7.041V7.1h9.975v1.944z" />
);
export const SendIcon = () => (
  <Svg d="M1.101 21.757 23.8 12.028 1.101 2.3l.011 7.912 13.623 1.816-13.623 1.817-.011 7.912z" />
);
export const SearchIcon = (p: { size?: number }) => (
  <Svg size={p.size ?? 18} d="M15.009 13.805h-.636l-.22-.219a5.184 5.184 0 0 0 1.256-3.386 5.207 5.207 0 1 0-5.207 5.208 5.183 5.183 0 0 0 3.385-1.255l.221.22v.635l4.004 3.999 1.194-1.195-3.997-4.007zm-4.808 0a3.605 3.605 0 1 1 0-7.21 3.605 3.605 0 0 1 0 7.21z" />
);
export const BackIcon = () => <Svg d="M12 4l1.4 1.4L7.8 11H20v2H7.8l5.6 5.6L12 20l-8-8 8-8z" />;
export const CloseIcon = () => (
  <Svg d="M19.1 17.2l-5.3-5.3 5.3-5.3-1.8-1.8-5.3 5.4-5.3-5.3-1.8 1.7 5.3 5.3-5.3 5.3L6.7 19l5.3-5.3 5.3 5.3 1.8-1.8z" />
);
export const LogoutIcon = () => (
  <Svg d="M16 17v-3H9v-4h7V7l5 5-5 5M14 2a2 2 0 0 1 2 2v2h-2V4H5v16h9v-2h2v2a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9z" />
);
export const SettingsIcon = () => (
  <Svg d="M19.4 13a7.5 7.5 0 0 0 0-2l2.1-1.6-2-3.5-2.5 1a7.3 7.3 0 0 0-1.7-1L15 3.3h-4l-.4 2.6a7.3 7.3 0 0 0-1.7 1l-2.5-1-2 3.5L6.6 11a7.5 7.5 0 0 0 0 2l-2.1 1.6 2 3.5 2.5-1c.5.4 1.1.7 1.7 1l.4 2.6h4l.4-2.6c.6-.3 1.2-.6 1.7-1l2.5 1 2-3.5L19.4 13zM13 15.5a3.5 3.5 0 1 1 0-7 3.5 3.5 0 0 1 0 7z" />
);
export const LaptopIcon = () => (
  <Svg size={20} d="M20 18c1.1 0 2-.9 2-2V6c0-1.1-.9-2-2-2H4c-1.1 0-2 .9-2 2v10c0 1.1.9 2 2 2H0v2h24v-2h-4zM4 6h16v10H4V6z" />
);
export const CheckIcon = () => <Svg d="M9 16.2L4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4L9 16.2z" />;
export const PencilIcon = () => (
  <Svg size={20} d="M3.95 16.7v3.4h3.4l9.8-9.9-3.4-3.4-9.8 9.9zm15.8-9.1c.4-.4.4-.9 0-1.3l-2.1-2.1c-.4-.4-.9-.4-1.3 0l-1.6 1.6 3.4 3.4 1.6-1.6z" />
);
export const PinIcon = (p: { size?: number }) => (
  <Svg size={p.size ?? 18} d="M16 9V4h1c.55 0 1-.45 1-1s-.45-1-1-1H7c-.55 0-1 .45-1 1s.45 1 1 1h1v5c0 1.66-1.34 3-3 3v2h5.97v7l1 1 1-1v-7H19v-2c-1.66 0-3-1.34-3-3z" />
);
export const MutedIcon = (p: { size?: number }) => (
  <Svg size={p.size ?? 18} d="M16.5 12c0-1.77-1.02-3.29-2.5-4.03v2.21l2.45 2.45c.03-.2.05-.41.05-.63zm2.5 0c0 .94-.2 1.82-.54 2.64l1.51 1.51A8.8 8.8 0 0 0 21 12c0-4.28-2.99-7.86-7-8.77v2.06c2.89.86 5 3.54 5 6.71zM4.27 3 3 4.27 7.73 9H3v6h4l5 5v-6.73l4.25 4.25c-.67.52-1.42.93-2.25 1.18v2.06a8.99 8.99 0 0 0 3.69-1.81L19.73 21 21 19.73l-9-9L4.27 3zM12 4 9.91 6.09 12 8.18V4z" />
);
export const ArchiveIcon = (p: { size?: number }) => (
  <Svg size={p.size ?? 20} d="M20.54 5.23l-1.39-1.68C18.88 3.21 18.47 3 18 3H6c-.47 0-.88.21-1.16.55L3.46 5.23C3.17 5.57 3 6.02 3 6.5V19c0 1.1.9 2 2 2h14c1.1 0 2-.9 2-2V6.5c0-.48-.17-.93-.46-1.27zM12 17.5 6.5 12H10v-2h4v2h3.5L12 17.5zM5.12 5l.81-1h12l.94 1H5.12z" />
);
export const ForwardIcon = (p: { size?: number }) => (
  <Svg size={p.size ?? 16} d="M21 11l-6-6v5H8c-2.76 0-5 2.24-5 5v4h2v-4c0-1.65 1.35-3 3-3h7v5l6-6z" />
);
export const ChevronIcon = () => (
  <svg viewBox="0 0 18 18" width="18" height="18" aria-hidden="true">
    <path fill="currentColor" d="M3.3 4.6 9 10.3l5.7-5.7 1.6 1.6L9 13.4 1.7 6.2l1.6-1.6z" />
  </svg>
);
export const DotsIcon = () => (
  <Svg d="M12 7a2 2 0 1 0-.001-4.001A2 2 0 0 0 12 7zm0 2a2 2 0 1 0-.001 3.999A2 2 0 0 0 12 9zm0 6a2 2 0 1 0-.001 3.999A2 2 0 0 0 12 15z" />
);
export const PaperclipIcon = () => (
  <Svg d="M16.5 6v11.5c0 2.21-1.79 4-4 4s-4-1.79-4-4V5a2.5 2.5 0 0 1 5 0v10.5c0 .55-.45 1-1 1s-1-.45-1-1V6H10v9.5a2.5 2.5 0 0 0 5 0V5c0-2.21-1.79-4-4-4S7 2.79 7 5v12.5c0 3.04 2.46 5.5 5.5 5.5s5.5-2.46 5.5-5.5V6h-1.5z" />
);
export const FileIcon = (p: { size?: number }) => (
  <Svg size={p.size} d="M14 2H6c-1.1 0-1.99.9-1.99 2L4 20c0 1.1.89 2 1.99 2H18c1.1 0 2-.9 2-2V8l-6-6zm2 16H8v-2h8v2zm0-4H8v-2h8v2zm-3-5V3.5L18.5 9H13z" />
);
export const DownloadIcon = (p: { size?: number }) => <Svg size={p.size} d="M19 9h-4V3H9v6H5l7 7 7-7zM5 18v2h14v-2H5z" />;
export const PlayIcon = (p: { size?: number }) => <Svg size={p.size} d="M8 5v14l11-7z" />;
export const PauseIcon = (p: { size?: number }) => <Svg size={p.size} d="M6 19h4V5H6v14zm8-14v14h4V5h-4z" />;
export const MicIcon = (p: { size?: number }) => (
  <Svg size={p.size} d="M12 14c1.66 0 2.99-1.34 2.99-3L15 5c0-1.66-1.34-3-3-3S9 3.34 9 5v6c0 1.66 1.34 3 3 3zm5.3-3c0 3-2.54 5.1-5.3 5.1S6.7 14 6.7 11H5c0 3.41 2.72 6.23 6 6.72V21h2v-3.28c3.28-.48 6-3.3 6-6.72h-1.7z" />
);
export const TrashIcon = (p: { size?: number }) => (
  <Svg size={p.size} d="M6 19c0 1.1.9 2 2 2h8c1.1 0 2-.9 2-2V7H6v12zM19 4h-3.5l-1-1h-5l-1 1H5v2h14V4z" />
);
export const MusicIcon = (p: { size?: number }) => (
  <Svg size={p.size} d="M12 3v10.55c-.59-.34-1.27-.55-2-.55-2.21 0-4 1.79-4 4s1.79 4 4 4 4-1.79 4-4V7h4V3h-6z" />
);
export const BellIcon = (p: { size?: number }) => (
  <Svg size={p.size} d="M12 22c1.1 0 2-.9 2-2h-4c0 1.1.89 2 2 2zm6-6v-5c0-3.07-1.64-5.64-4.5-6.32V4c0-.83-.67-1.5-1.5-1.5s-1.5.67-1.5 1.5v.68C7.63 5.36 6 7.92 6 11v5l-2 2v1h16v-1l-2-2z" />
);
export const ShieldIcon = (p: { size?: number }) => (
  <Svg size={p.size} d="M12 1 3 5v6c0 5.55 3.84 10.74 9 12 5.16-1.26 9-6.45 9-12V5l-9-4zm0 10.99h7c-.53 4.12-3.28 7.79-7 8.94V12H5V6.3l7-3.11v8.8z" />
);
export const RefreshIcon = (p: { size?: number }) => (
  <Svg size={p.size} d="M17.65 6.35A7.958 7.958 0 0 0 12 4c-4.42 0-7.99 3.58-7.99 8s3.57 8 7.99 8c3.73 0 6.84-2.55 7.73-6h-2.08A5.99 5.99 0 0 1 12 18c-3.31 0-6-2.69-6-6s2.69-6 6-6c1.66 0 3.14.69 4.22 1.78L13 11h7V4l-2.35 2.35z" />
);
/** The disappearing-messages timer: a clock whose rim is dashed for its last quarter. */
export const TimerIcon = (p: { size?: number; title?: string }) => {
  const s = p.size ?? 18;
  return (
    <svg
      class="timer-icon"
      viewBox="0 0 24 24"
      width={s}
      height={s}
      fill="none"
      stroke="currentColor"
      stroke-width="2"
      stroke-linecap="round"
      aria-hidden={p.title ? undefined : 'true'}
      role={p.title ? 'img' : undefined}
      aria-label={p.title}
    >
      {p.title && <title>{p.title}</title>}
      <path d="M12 3a9 9 0 1 1-9 9" />
      <path d="M3 12a9 9 0 0 1 9-9" stroke-dasharray="1.6 2.6" />
      <path d="M12 7.5V12l3 2" />
    </svg>
  );
};
export const InfoIcon = () => (
  <Svg d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 15h-2v-6h2v6zm0-8h-2V7h2v2z" />
);

export const HarkLogo = (p: { size?: number }) => (
  <svg viewBox="0 0 48 48" width={p.size ?? 48} height={p.size ?? 48} aria-hidden="true">
    <circle cx="24" cy="24" r="22" fill="#00a884" />
    <path fill="#fff" d="M14 13h5v9h10v-9h5v22h-5v-8.5H19V35h-5z" />
  </svg>
);

// ---- time ----

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** A search field with a clear button once something is typed. */
export function SearchBox(props: { label: string; value: string; testId: string; onInput: (q: string) => void }) {
  return (
    <div class="search">
      <div class="search-box">
        <SearchIcon />
        <input
          aria-label={props.label}
          placeholder={props.label}
          value={props.value}
          data-testid={props.testId}
          onInput={(e) => props.onInput(e.currentTarget.value)}
        />
        {props.value && (
          <button class="icon-btn small" aria-label="Clear search" onClick={() => props.onInput('')}>
            <CloseIcon />
          </button>
        )}
      </div>
    </div>
  );
}

export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
}

/** The chat list's time column: time today, "Yesterday", weekday this week, else the date. */
export function listTime(ms: number): string {
  const d = new Date(ms);
  const now = new Date();
  if (sameDay(d, now)) return clock(ms);
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(d, yesterday)) return 'Yesterday';
  if (now.getTime() - ms < 6 * 86_400_000) return d.toLocaleDateString([], { weekday: 'long' });
  return d.toLocaleDateString();
}

/** A day separator in a chat: "Today", "Yesterday" or the date. */
export function dayLabel(ms: number): string {
  const d = new Date(ms);
  const now = new Date();
  if (sameDay(d, now)) return 'Today';
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(d, yesterday)) return 'Yesterday';
  return d.toLocaleDateString([], { day: 'numeric', month: 'long', year: 'numeric' });
}

export function dayKey(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** "3", "1,204": counts as people read them. */
export function count(n: number): string {
  return n.toLocaleString();
}

/** "5 May 2026, 14:03": when an account, a device or a membership began. */
export function when(ms: number): string {
  return `${new Date(ms).toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' })}, ${clock(ms)}`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

/** A disappearing-messages timer in words: "Off", "24 hours", "7 days", "90 days" (another length as hours or days). */
export function disappearingLabel(seconds: number): string {
  if (seconds <= 0) return 'Off';
  if (seconds === 86_400) return '24 hours';
  if (seconds % 86_400 === 0) return plural(seconds / 86_400, 'day');
  if (seconds % 3_600 === 0) return plural(seconds / 3_600, 'hour');
  if (seconds % 60 === 0) return plural(seconds / 60, 'minute');
  return plural(seconds, 'second');
}

/**
 * What was being tried when a request failed, for the words of a refusal:
 * a message search, a new group, adding a member, another change to a
 * group (rename, admins, removing, leaving), a server admin's request
 * (Administration), a change to one's contacts or blocked users, or to
 * one's sign-in (password, two-factor authentication), one's profile
 * (about line, photo), or an export of one's data.
 */
export type Attempt = 'search' | 'new-group' | 'add-member' | 'group-change' | 'disappearing' | 'admin' | 'people' | 'account' | 'profile' | 'export' | 'bots' | 'webhooks';

/** A `429 rate_limited` in words, by what was tried (the server's own message names its number and "wait a little"). */
const TOO_MANY: Record<Attempt, string> = {
  search: 'Too many searches — wait a moment and try again.',
  'new-group': 'Too many new groups — wait a moment and try again.',
  'add-member': 'Too many members added — wait a moment and try again.',
  'group-change': 'Too many changes — wait a moment and try again.',
  disappearing: 'Too many changes — wait a moment and try again.',
  admin: 'Too many requests — wait a moment and try again.',
  people: 'Too many changes — wait a moment and try again.',
  account: 'Too many tries — wait a minute and try again.',
  profile: 'Too many changes — wait a moment and try again.',
  export: 'Too many exports asked for — wait a while and try again.',
  bots: 'Too many changes — wait a moment and try again.',
  webhooks: 'Too many changes — wait a moment and try again.',
};

/**
 * What a person reads when a request failed: a refusal worth explaining in
 * our words (too many at once, no connection, not a group admin, a full
 * group), otherwise the server's own message, which says why.
 */
export function errorText(e: unknown, attempt: Attempt): string {
  if (!(e instanceof HarkError)) return 'Something went wrong. Please try again.';
  switch (e.code) {
    case 'rate_limited':
      return TOO_MANY[attempt];
    case 'network':
      return 'Cannot reach the server. Check your connection.';
    case 'forbidden':
      if (attempt === 'add-member' || attempt === 'group-change') return 'Only group admins can do that.';
      if (attempt === 'disappearing') return "You can't change this chat's disappearing messages.";
      break;
    case 'group_full':
      return 'The group is full.';
    case 'blocked':
      if (attempt === 'add-member') return "You can't add this person: one of you blocked the other.";
      if (attempt === 'new-group') return "You can't create this group: you blocked one of the people you chose, or they blocked you.";
      break;
  }
  const text = e.message || `The server refused (HTTP ${e.status}).`;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export type Children = JSX.Element | JSX.Element[] | string | null | false;

/** WhatsApp's header line: "online", "last seen today at 8:40 AM", …; null when hidden. */
export function presenceLabel(p: { online: boolean | null; last_seen: number | null } | undefined): string | null {
  if (!p) return null;
  if (p.online) return 'online';
  if (p.last_seen === null) return null;
  const d = new Date(p.last_seen);
  const now = new Date();
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(d, now)) return `last seen today at ${clock(p.last_seen)}`;
  if (sameDay(d, yesterday)) return `last seen yesterday at ${clock(p.last_seen)}`;
  return `last seen ${d.toLocaleDateString()} at ${clock(p.last_seen)}`;
}

// ---- dialogs, focus, announcements ----

/**
 * The app's confirmation dialog (never the browser's confirm()): focus goes
 * to the confirm button, Tab stays inside, Escape cancels, and focus returns
 * to where it was.
 */
export function ConfirmDialog(props: { store: AppStore }) {
  const c = props.store.confirmation;
  const box = useRef<HTMLDivElement>(null);
  // A layout effect, listening on the document: Escape and Tab work from the
  // moment the dialog is in the page, even before focus has moved into it.
  useLayoutEffect(() => {
    if (!c) return;
    const before = document.activeElement as HTMLElement | null;
    box.current?.querySelector<HTMLElement>('[data-testid=confirm-ok]')?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        c.resolve(false);
      } else if (e.key === 'Tab') {
        const buttons = [...(box.current?.querySelectorAll<HTMLElement>('button') ?? [])];
        const i = buttons.indexOf(document.activeElement as HTMLElement);
        e.preventDefault();
        buttons[(i + (e.shiftKey ? buttons.length - 1 : 1)) % buttons.length]?.focus();
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      before?.focus?.();
    };
  }, [c]);
  if (!c) return null;
  return (
    <div class="modal-backdrop" onClick={() => c.resolve(false)}>
      <div
        class="modal confirm"
        role="alertdialog"
        aria-modal="true"
        aria-labelledby="confirm-title"
        aria-describedby={c.body ? 'confirm-body' : undefined}
        data-testid="confirm-dialog"
        ref={box}
        onClick={(e) => e.stopPropagation()}
      >
        <h2 id="confirm-title" dir="auto">{c.title}</h2>
        {c.body && <p id="confirm-body">{c.body}</p>}
        <div class="confirm-actions">
          <button class="secondary" data-testid="confirm-cancel" onClick={() => c.resolve(false)}>
            Cancel
          </button>
          <button class={c.danger ? 'primary danger' : 'primary'} data-testid="confirm-ok" onClick={() => c.resolve(true)}>
            {c.confirm}
          </button>
        </div>
      </div>
    </div>
  );
}

/** A polite live region: screen readers announce incoming messages without moving focus. */
export function Announcer(props: { store: AppStore }) {
  return (
    <div class="sr-only" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">
      {props.store.announcement}
    </div>
  );
}
