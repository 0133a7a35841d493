// Wire types of the Hark protocol, version 1: a mirror of crates/hark-proto
// (ids.rs, http.rs, event.rs, ws.rs, error.rs) as documented in docs/protocol.md.
// Ids are plain numbers on the wire; the aliases only document intent.

export const PROTOCOL_VERSION = 1;

export type UserId = number;
export type DeviceId = number;
export type ChatId = number;
/** A message's place in its chat: 1, 2, 3, … without gaps. */
export type Seq = number;
/** A position in the user's event stream: 1, 2, 3, … without gaps. */
export type Pos = number;
/** 1 to 64 printable ASCII characters, unique per sending device forever. */
export type ClientMsgId = string;

export type ErrorCode =
  | 'malformed_json'
  | 'unknown_type'
  | 'invalid_field'
  | 'too_large'
  | 'rate_limited'
  | 'unauthorized'
  | 'invalid_credentials'
  | 'forbidden'
  | 'not_found'
  | 'username_taken'
  | 'group_full'
  | 'auth_timeout'
  | 'already_authenticated'
  | 'slow_consumer'
  | 'revoked'
  | 'too_many_connections'
  | 'origin_not_allowed'
  | 'shutting_down'
  | 'internal';

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

// ---- HTTP bodies (http.rs) ----

export interface RegisterRequest {
  username: string;
  password: string;
  display_name?: string | null;
}

export interface User {
  id: UserId;
  username: string;
  display_name: string;
}

export interface LoginRequest {
  username: string;
  password: string;
  device_name: string;
}

export interface Device {
  id: DeviceId;
  name: string;
  created_at: number;
  current: boolean;
}

export interface LoginResponse {
  token: string;
  user: User;
  device: Device;
}

export interface Me {
  user: User;
  device: Device;
}

export type ChatKind = 'direct' | 'group';

export interface Member {
  user: User;
  admin: boolean;
  delivered_up_to: Seq;
  read_up_to: Seq;
}

export interface Chat {
  id: ChatId;
  kind: ChatKind;
  /** The group's title; null for one-to-one chats. */
  title: string | null;
  created_at: number;
  /** The highest message seq in the chat (0 when empty). */
  last_seq: Seq;
  members: Member[];
}

export interface ChatSummary {
  chat: Chat;
  last_message: Message | null;
  unread: number;
}

export interface History {
  messages: Message[];
  has_more: boolean;
}

export interface SendAck {
  chat_id: ChatId;
  seq: Seq;
  client_id: ClientMsgId;
  sent_at: number;
  duplicate: boolean;
}

// ---- Events (event.rs) ----

export interface Message {
  chat_id: ChatId;
  seq: Seq;
  sender_id: UserId;
  sender_device: DeviceId;
  client_id: ClientMsgId;
  text: string;
  /** Commit time, milliseconds since the Unix epoch. */
  sent_at: number;
}

export interface Receipt {
  chat_id: ChatId;
  user_id: UserId;
  delivered_up_to: Seq;
  read_up_to: Seq;
}

export type Event =
  | ({ kind: 'message' } & Message)
  | ({ kind: 'receipt' } & Receipt)
  | { kind: 'chat_created'; chat_id: ChatId; chat_kind: ChatKind; title: string | null; by: UserId }
  | { kind: 'chat_renamed'; chat_id: ChatId; title: string; by: UserId }
  | { kind: 'member_added'; chat_id: ChatId; user_id: UserId; by: UserId }
  | { kind: 'member_removed'; chat_id: ChatId; user_id: UserId; by: UserId }
  | { kind: 'admin_changed'; chat_id: ChatId; user_id: UserId; admin: boolean; by: UserId };

export interface EventFrame {
  pos: Pos;
  event: Event;
}

// ---- WebSocket frames (ws.rs) ----

export type ClientFrame =
  | { type: 'auth'; id: number; token: string }
  | { type: 'send'; id: number; chat_id: ChatId; client_id: ClientMsgId; text: string }
  | {
      type: 'mark';
      id: number;
      chat_id: ChatId;
      delivered_up_to?: Seq;
      read_up_to?: Seq;
    }
  | { type: 'sync'; id: number; after: Pos; limit?: number }
  | { type: 'ping'; id: number };

export interface Limits {
  max_frame_bytes: number;
  max_text_bytes: number;
  frames_per_second: number;
  max_sync_page: number;
}

export interface Hello {
  id?: number;
  protocol: number;
  user: User;
  device_id: DeviceId;
  /** The newest position in the user's stream when the connection opened. */
  head: Pos;
  limits: Limits;
}

export type ServerFrame =
  | ({ type: 'hello' } & Hello)
  | ({ type: 'ack'; id: number } & SendAck)
  | { type: 'ok'; id: number }
  | { type: 'synced'; id: number; events: EventFrame[]; head: Pos; more: boolean }
  | { type: 'pong'; id: number }
  | { type: 'error'; id?: number; code: ErrorCode; message: string }
  | ({ type: 'event' } & EventFrame);

/** An error answer from the server, over HTTP (status set) or WebSocket (status 0). */
export class HarkError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'network',
    message: string,
  ) {
    super(message);
    this.name = 'HarkError';
  }
}
