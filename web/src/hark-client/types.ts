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
  | 'account_disabled'
  | 'token_expired'
  | 'too_many_connections'
  | 'origin_not_allowed'
  | 'shutting_down'
  | 'range_not_satisfiable'
  | 'offset_mismatch'
  | 'url_not_allowed'
  | 'too_many_subscriptions'
  | 'encryption_required'
  | 'key_conflict'
  | 'inbox_full'
  | 'method_not_allowed'
  | 'unavailable'
  | 'two_factor_required'
  | 'invalid_two_factor_code'
  | 'blocked'
  | 'sso_required'
  | 'device_not_approved'
  | 'two_factor_setup_required'
  | 'not_for_bots'
  | 'scope_denied'
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
  /** An account run by a program (docs/protocol.md "Bots"); absent for a person. */
  bot?: boolean;
}

export interface LoginRequest {
  username: string;
  password: string;
  device_name: string;
  /**
   * With two-factor authentication on: a code from the authenticator app,
   * or an unused recovery code. Without it such an account's login answers
   * `401 two_factor_required`.
   */
  two_factor_code?: string;
}

export interface Device {
  id: DeviceId;
  name: string;
  created_at: number;
  /** When the device last used its token (ms), to the hour; one idle past the server's limit is logged out. */
  last_used_at: number;
  current: boolean;
  /**
   * A login waiting for another device of the account to approve it (see
   * "Approving new devices"): its token works only for `GET /v1/me` and
   * `POST /v1/logout` meanwhile. Absent from servers older than approvals.
   */
  pending?: boolean;
}

/** `GET`/`PUT /v1/me/device-approval`: whether new logins of the account wait for approval. */
export interface DeviceApproval {
  required: boolean;
}

export interface LoginResponse {
  token: string;
  user: User;
  device: Device;
}

// ---- Single sign-on (OpenID Connect) ----

/** `GET /v1/sso`: what a login screen offers. */
export interface SsoInfo {
  enabled: boolean;
  /** What the sign-in button says. */
  label: string;
  /** Single sign-on is the only way in: password logins and registering answer `403 sso_required`. */
  only: boolean;
}

/** `POST /v1/sso/redeem`: a finished sign-in's one-time ticket, for a device. */
export interface SsoRedeem {
  ticket: string;
  device_name: string;
}

/** Why a sign-in came back without a ticket (`?sso_error=`). */
export type SsoFailure = 'provider_error' | 'invalid_state' | 'invalid_id_token' | 'unavailable';

// ---- Your account (account.rs): password, two-factor authentication ----

/** `POST /v1/me/password`. */
export interface ChangePasswordRequest {
  current_password: string;
  /** 8–1024 bytes. */
  new_password: string;
  /** Also log out every other device of the account (this one stays). */
  log_out_other_devices: boolean;
}

export interface PasswordChanged {
  /** How many other devices were logged out (0 unless asked). */
  devices_logged_out: number;
}

/** `GET /v1/me/two-factor`. */
export interface TwoFactorStatus {
  /** A login needs a code. */
  enabled: boolean;
  /** Recovery codes not used yet (0 when off). */
  recovery_codes_left: number;
}

/** An enrolment not confirmed yet: the secret for the authenticator app. */
export interface TwoFactorEnrolment {
  /** Base32 without padding. */
  secret: string;
  /** `otpauth://totp/…`: the same, as a URL. */
  otpauth_url: string;
  /** That URL as a QR code: a PNG, base64 without a `data:` prefix. */
  qr_png: string;
}

/** Two-factor authentication is on: each code works once in place of an app's code (shown this once). */
export interface RecoveryCodes {
  recovery_codes: string[];
}

/** What a user may do on the server: `admin`s run it (see Administration), not to be confused with a group's admins. */
export type Role = 'admin' | 'user';

export interface Me {
  user: User;
  device: Device;
  /** Absent from servers older than administration: treat as `user`. */
  role?: Role;
  /**
   * The server requires two-factor authentication and this account has not
   * turned it on: the token works only for enrolling (and `GET /v1/me`,
   * logging out) until it does.
   */
  two_factor_setup_required?: boolean;
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
  /** End-to-end encrypted (decided at creation, never changed); absent from older servers: not. */
  encrypted?: boolean;
  /**
   * The disappearing-messages timer in seconds (0: off; else one of
   * `DISAPPEARING_SECS`): messages sent while it is on disappear this long
   * after they were sent. Absent from older servers: off.
   */
  disappearing_secs?: number;
}

/** The timers a chat may have (`PUT /v1/chats/{id}/disappearing`): off, 24 hours, 7 days, 90 days. */
export const DISAPPEARING_SECS = [0, 86_400, 604_800, 7_776_000] as const;

export type DisappearingSecs = (typeof DISAPPEARING_SECS)[number];

/** The caller's own settings for a chat. */
export interface ChatSettings {
  muted_until: number | null;
  archived: boolean;
  pinned_at: number | null;
}

export interface ChatSummary {
  chat: Chat;
  last_message: Message | null;
  unread: number;
  /** Absent from servers older than chat settings. */
  settings?: ChatSettings;
}

/** `GET /v1/chats/{chat_id}/messages/{seq}/info`: for the sender, who got and read it, when. */
export interface MessageInfo {
  chat_id: ChatId;
  seq: Seq;
  recipients: { user_id: UserId; delivered_at: number | null; read_at: number | null }[];
}

export interface SearchResults {
  messages: Message[];
}

export interface History {
  messages: Message[];
  has_more: boolean;
  /** Membership and title events within the page (absent from older servers). */
  lines?: HistoryLine[];
}

/** A membership or title event placed among a page's messages. */
export interface HistoryLine {
  /** The seq of the last message before the event (0: before every message). */
  after: Seq;
  /** Its position in the reader's stream, as its live event frame carried. */
  pos: Pos;
  event: Event;
}

// ---- Media (media.rs) ----

/** What a file is: the uploader declares it and the server checks it against the bytes. */
export type MediaKind = 'image' | 'video' | 'audio' | 'file';

/** An uploaded file, as `POST /v1/media` answers it and a message carries it. */
export interface MediaRef {
  /** 32 lowercase hex characters, chosen by the server. */
  id: string;
  kind: MediaKind;
  /** What the bytes say (`application/octet-stream` for a file they say nothing of). */
  mime: string;
  /** Bytes. */
  size: number;
  /** SHA-256 of the bytes, lowercase hex (also the download's ETag). */
  sha256: string;
  /** The file name to show, cleaned by the server; absent when none was given. */
  name?: string | null;
  /** Images only: pixels, as a browser shows the image (upright by its EXIF orientation). */
  width?: number | null;
  height?: number | null;
  /** Images only: a small copy (`GET /v1/media/{id}/thumbnail`); absent or null for other kinds and older uploads. */
  thumbnail?: Thumbnail | null;
  /**
   * Audio and video only: the length in whole milliseconds, read by the
   * server from the container (Ogg, WebM / Matroska, MP4); null or absent
   * when it could not (MP3, WAV, FLAC, AAC, older uploads).
   */
  duration_ms?: number | null;
}

/** An image's thumbnail: at most 480 px on its longer side, upright, without the original's metadata. */
export interface Thumbnail {
  /** `image/jpeg`, or `image/png` for an image with an alpha channel. */
  mime: string;
  /** Pixels. */
  width: number;
  height: number;
  /** Bytes. */
  size: number;
}

/** `POST /v1/media/uploads`: starts a resumable upload. */
export interface NewUpload {
  kind: MediaKind;
  /** The bytes the whole file has. */
  size: number;
  name?: string | null;
  /** Ask to put the bytes straight into the bucket; the answer's `direct` says whether the server offers it. */
  direct?: boolean;
}

/** A resumable upload as it stands (`/v1/media/uploads/{id}`). */
export interface UploadStatus {
  /** 32 lowercase hex characters, chosen by the server. */
  id: string;
  kind: MediaKind;
  size: number;
  /** The bytes stored so far: the next piece starts here. */
  received: number;
  /** Milliseconds since the Unix epoch after which the upload is gone, finished or not. */
  expires_at: number;
  /** Whether the bytes go straight to the bucket: one `PUT` to `put_url` with `put_headers`, then complete. */
  direct: boolean;
  put_url?: string | null;
  /** Headers the `PUT` to `put_url` must carry, exactly as given (and no others). */
  put_headers?: Record<string, string> | null;
  /** The file it became, once completed. */
  media?: MediaRef | null;
}

/** `GET /v1/media/{id}/url`: a presigned URL that serves the file without a token until `expires_at`. */
export interface MediaUrl {
  url: string;
  expires_at: number;
}

export interface SendAck {
  chat_id: ChatId;
  seq: Seq;
  client_id: ClientMsgId;
  sent_at: number;
  duplicate: boolean;
  /** When the message disappears (ms since the epoch; see `Message.expires_at`); absent: it stays. */
  expires_at?: number | null;
}

// ---- Events (event.rs) ----

export interface Message {
  chat_id: ChatId;
  seq: Seq;
  sender_id: UserId;
  sender_device: DeviceId;
  client_id: ClientMsgId;
  /** Empty when the message was deleted for everyone. */
  text: string;
  /** Commit time, milliseconds since the Unix epoch. */
  sent_at: number;
  /** The earlier message of the same chat this one answers. */
  reply_to?: Quote | null;
  /** Copied from another chat by its sender. */
  forwarded?: boolean;
  /** When the text was last edited. */
  edited_at?: number | null;
  /** Deleted for everyone: the text and reactions are gone. */
  deleted?: boolean;
  /** One per member who reacted. */
  reactions?: MessageReaction[];
  /** The file it carries (the text is then its caption, maybe empty); gone when deleted for everyone. */
  media?: MediaRef | null;
  /**
   * In an end-to-end encrypted chat: the Megolm `m.room.encrypted` content,
   * the message's only content (`text` is empty); gone when deleted for everyone.
   */
  encrypted?: EncryptedContent | null;
  /**
   * When the message disappears (ms since the epoch): sent while its chat
   * had a disappearing-messages timer (`sent_at` + the timer), or under the
   * server's retention. Absent: it stays.
   */
  expires_at?: number | null;
  /**
   * It has disappeared: `deleted` is true too and its content is gone.
   * Clients show nothing for it, not even a "deleted" line.
   */
  expired?: boolean;
}

/** A Megolm `m.room.encrypted` content (`algorithm`, `sender_key`, `ciphertext`, `session_id`, `device_id`): opaque to the server. */
export type EncryptedContent = Record<string, unknown>;

/** The message a reply quotes, as it is now. */
export interface Quote {
  seq: Seq;
  sender_id: UserId;
  /** The start of its text; null when it was deleted. */
  snippet: string | null;
}

export interface MessageReaction {
  user_id: UserId;
  emoji: string;
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
  | { kind: 'chat_created'; chat_id: ChatId; chat_kind: ChatKind; title: string | null; by: UserId; encrypted?: boolean }
  | { kind: 'chat_renamed'; chat_id: ChatId; title: string; by: UserId }
  | { kind: 'member_added'; chat_id: ChatId; user_id: UserId; by: UserId }
  | { kind: 'member_removed'; chat_id: ChatId; user_id: UserId; by: UserId }
  | { kind: 'admin_changed'; chat_id: ChatId; user_id: UserId; admin: boolean; by: UserId }
  /** In an encrypted chat `text` is empty and `encrypted` the new content's ciphertext. */
  | { kind: 'message_edited'; chat_id: ChatId; seq: Seq; text: string; edited_at: number; encrypted?: EncryptedContent | null }
  | { kind: 'message_deleted'; chat_id: ChatId; seq: Seq; by: UserId }
  | { kind: 'message_hidden'; chat_id: ChatId; seq: Seq }
  /** The message disappeared (its chat's timer or the server's retention ran out): show nothing for it. */
  | { kind: 'message_expired'; chat_id: ChatId; seq: Seq }
  /** A member set the chat's disappearing-messages timer (0: off); it applies to messages sent from now on. */
  | { kind: 'disappearing_changed'; chat_id: ChatId; seconds: number; by: UserId }
  | { kind: 'reaction'; chat_id: ChatId; seq: Seq; user_id: UserId; emoji: string | null }
  | { kind: 'chat_settings_changed'; chat_id: ChatId; settings: ChatSettings }
  /** A device of `user_id` published its keys for the first time or logged out (`chat_id` is 0): fetch their keys again. */
  | { kind: 'devices_changed'; chat_id: ChatId; user_id: UserId }
  /** A new login of this user waits for approval (`chat_id` is 0): ask on an approved device. */
  | { kind: 'device_approval_requested'; chat_id: ChatId; device: Device }
  /** One of this user's devices approved the waiting login `device_id` (`chat_id` is 0). */
  | { kind: 'device_approved'; chat_id: ChatId; device_id: DeviceId; by: DeviceId }
  /** The waiting login `device_id` was logged out before anyone approved it (`chat_id` is 0). */
  | { kind: 'device_approval_withdrawn'; chat_id: ChatId; device_id: DeviceId };

export interface EventFrame {
  pos: Pos;
  event: Event;
}

// ---- WebSocket frames (ws.rs) ----

export type ClientFrame =
  | { type: 'auth'; id: number; token: string }
  | {
      type: 'send';
      id: number;
      chat_id: ChatId;
      client_id: ClientMsgId;
      text: string;
      reply_to?: Seq;
      media_id?: string;
      /** In an encrypted chat: the ciphertext (and `text` empty). */
      encrypted?: EncryptedContent;
    }
  | { type: 'edit'; id: number; chat_id: ChatId; seq: Seq; text: string; encrypted?: EncryptedContent }
  | { type: 'delete'; id: number; chat_id: ChatId; seq: Seq; for_everyone: boolean }
  | { type: 'react'; id: number; chat_id: ChatId; seq: Seq; emoji: string | null }
  | { type: 'forward'; id: number; from_chat_id: ChatId; seq: Seq; to_chat_id: ChatId; client_id: ClientMsgId }
  | {
      type: 'mark';
      id: number;
      chat_id: ChatId;
      delivered_up_to?: Seq;
      read_up_to?: Seq;
    }
  | { type: 'sync'; id: number; after: Pos; limit?: number }
  | { type: 'ping'; id: number }
  | { type: 'watch'; id: number; users: UserId[]; chats: ChatId[] }
  | { type: 'typing'; id: number; chat_id: ChatId; activity: Activity };

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
  | ({ type: 'event' } & EventFrame)
  | { type: 'watching'; id: number; presence: PresenceState[] }
  | ({ type: 'presence' } & PresenceState)
  | ({ type: 'typing' } & TypingState)
  | { type: 'presence_reset' }
  /** This device's inbox got to-device messages: read it (`POST /v1/e2e/inbox`). Never replayed. */
  | { type: 'to_device' };

// ---- Presence and typing (presence.rs): ephemeral, never in the event stream ----

export type Visibility = 'everyone' | 'contacts' | 'nobody';

/** `GET` / `PUT /v1/me/privacy`. */
export interface PrivacySettings {
  last_seen: Visibility;
  online: Visibility;
}

/** What a watcher may know of a user; null fields are hidden by privacy settings. */
export interface PresenceState {
  user_id: UserId;
  online: boolean | null;
  /** When the user was last online (ms since the epoch). */
  last_seen: number | null;
}

export type Activity = 'typing' | 'recording' | 'stopped';

export interface TypingState {
  chat_id: ChatId;
  user_id: UserId;
  activity: Activity;
  /** Show it for at most this long unless refreshed; 0 with `stopped`. */
  expires_in_ms: number;
}

// ---- Profile and data export (profile.rs) ----

/** `GET /v1/me/profile`: your own about line and photo, and who sees them. */
export interface MyProfile {
  /** The about line ("" when unset). */
  about: string;
  /** The photo's version (changes with every new photo), null without one. */
  photo: string | null;
  about_visibility: Visibility;
  photo_visibility: Visibility;
}

/** `PATCH /v1/me/profile`: any of these, at least one. `about`: at most 140 characters, one line ("" clears it). */
export interface ProfileUpdate {
  about?: string;
  about_visibility?: Visibility;
  photo_visibility?: Visibility;
}

/** `GET /v1/users/{id}/profile`: what the caller may see of someone's profile (null: unset or hidden). */
export interface Profile {
  user_id: UserId;
  about: string | null;
  /** The photo's version: `GET /v1/users/{id}/photo` serves it. */
  photo: string | null;
}

/** The sizes a profile photo is kept in: 128 px ("small") and 640 px ("large") squares. */
export type PhotoSize = 'small' | 'large';

/** The longest about line, in characters. */
export const ABOUT_MAX_CHARS = 140;

export type ExportStatus = 'pending' | 'ready' | 'failed';

/** `POST` / `GET /v1/me/export`: your latest export of your data. */
export interface DataExport {
  id: string;
  status: ExportStatus;
  /** When it was asked for (ms since the epoch). */
  requested_at: number;
  /** When it was ready or failed. */
  finished_at: number | null;
  /** The archive's size in bytes, once ready. */
  size: number | null;
  /** When a ready archive is removed from the server. */
  expires_at: number | null;
}

// ---- End-to-end encryption (e2e.rs): the key directory and device inboxes ----
// Users are `@<user id>:hark`, devices their decimal id. Keys, signatures and
// to-device contents are the encryption library's JSON, opaque here.

/** `POST /v1/e2e/keys/upload`: this device's identity keys (once), one-time and fallback keys. */
export interface KeysUpload {
  device_keys?: Record<string, unknown>;
  one_time_keys?: Record<string, unknown>;
  fallback_keys?: Record<string, unknown>;
}

/** The one-time keys the server holds for this device, per algorithm. */
export interface KeysUploaded {
  one_time_key_counts: Record<string, number>;
}

/** `POST /v1/e2e/keys/query`: per user, the devices wanted (empty: all). */
export interface KeysQuery {
  device_keys: Record<string, string[]>;
  timeout?: number;
}

/** Per user, per device, the signed device keys (users you share no chat with left out). */
export interface KeysQueryResult {
  device_keys: Record<string, Record<string, unknown>>;
  failures: Record<string, unknown>;
  master_keys: Record<string, unknown>;
  self_signing_keys: Record<string, unknown>;
  user_signing_keys: Record<string, unknown>;
}

/** `POST /v1/e2e/keys/claim`: per user, per device, the algorithm of the one-time key wanted. */
export interface KeysClaim {
  one_time_keys: Record<string, Record<string, string>>;
  timeout?: number;
}

/** Per user, per device, `{"<algorithm>:<key id>": key}`. */
export interface KeysClaimed {
  one_time_keys: Record<string, Record<string, Record<string, unknown>>>;
  failures: Record<string, unknown>;
}

/** `PUT /v1/e2e/to_device/{type}/{txn}`: per user, per device (`*`: all of them), a content. */
export interface ToDeviceSend {
  messages: Record<string, Record<string, unknown>>;
}

/** A to-device message waiting in this device's inbox. */
export interface ToDeviceMessage {
  /** Acknowledge with it (`ack`): ids only grow. */
  id: number;
  sender: string;
  sender_device: string;
  type: string;
  content: Record<string, unknown>;
}

/** `POST /v1/e2e/inbox`'s answer. */
export interface Inbox {
  messages: ToDeviceMessage[];
  /** More wait after these: acknowledge these and ask again. */
  more: boolean;
  one_time_key_counts: Record<string, number>;
  unused_fallback_key_types: string[];
}

// ---- Push notifications (push.rs) ----

/** `GET /v1/push/vapid`: the server's VAPID public key, for `pushManager.subscribe`. */
export interface VapidKey {
  /** Base64url without padding of the 65-byte uncompressed P-256 point. */
  public_key: string;
}

/** How a subscription is reached: a browser's push service, or an integrator's HTTPS webhook. */
export type PushKind = 'web_push' | 'webhook';

/** A browser's push subscription (`PushSubscription.toJSON()` without `expirationTime`). */
export interface WebPushSubscriptionBody {
  kind: 'web_push';
  /** The push service's https URL for this browser. */
  endpoint: string;
  /** Base64url: the browser's P-256 key and the 16-byte auth secret. */
  keys: { p256dh: string; auth: string };
}

/** An integrator's endpoint, sent JSON signed with HMAC-SHA256 by `secret` (16 to 256 characters). */
export interface WebhookSubscriptionBody {
  kind: 'webhook';
  url: string;
  secret: string;
}

/** `POST /v1/push/subscriptions`. */
export type NewPushSubscription = WebPushSubscriptionBody | WebhookSubscriptionBody;

/** A push subscription of this device, as the server shows it (never its keys or secret). */
export interface PushSubscriptionInfo {
  id: string;
  kind: PushKind;
  /** The push service's endpoint, or the webhook's URL. */
  endpoint: string;
  created_at: number;
}

/** How much a notification shows: sender and text, only the sender, or only "New message". */
export type PreviewLevel = 'full' | 'sender' | 'none';

/** `GET` / `PUT /v1/me/notifications`: the account's notification settings (all its devices). */
export interface NotificationSettings {
  previews: PreviewLevel;
}

/** What a push message carries (the service worker's `event.data.json()`). */
export interface PushPayload {
  v: 1;
  kind: 'message' | 'reaction' | 'added';
  chat_id: ChatId;
  chat_kind: ChatKind;
  /** A group's title; null for a one-to-one chat, or when previews are "none". */
  chat_title: string | null;
  /** The newest message (or the one reacted to). */
  seq: Seq;
  /** The chat's unread messages for the receiver. */
  unread: number;
  /** Who wrote, reacted or added you (display name); null when previews are "none". */
  sender: string | null;
  /** The preview ("reacted 👍 to: …" for a reaction); null unless previews are "full", and for "added". */
  body: string | null;
  /** Update state only, show nothing (e.g. a muted chat). */
  silent: boolean;
}

// ---- Administration (admin.rs): accounts, devices, membership and counts, never a message ----

/** A user as an admin sees them (`GET /v1/admin/users`, and every admin action's answer). */
export interface AdminUser {
  id: UserId;
  username: string;
  display_name: string;
  role: Role;
  /** Disabled accounts cannot log in, and their tokens are refused (`account_disabled`). */
  disabled: boolean;
  created_at: number;
  /** How many live devices (logins not logged out). */
  devices: number;
  /** A bot (absent for a person). */
  bot?: boolean;
}

/** A page of `GET /v1/admin/users`, by id; `next` is the `after` of the next page, null at the end. */
export interface AdminUserPage {
  users: AdminUser[];
  next: UserId | null;
}

export interface AdminChatMember {
  user: User;
  /** A group admin (of this chat), not a server admin. */
  admin: boolean;
  joined_at: number;
}

/** `GET /v1/admin/chats/{chat_id}`: who is in a chat, not what was said. */
export interface AdminChat {
  id: ChatId;
  kind: ChatKind;
  /** null for a one-to-one chat. */
  title: string | null;
  created_at: number;
  /** The chat's last seq. */
  messages: number;
  /** Oldest first. */
  members: AdminChatMember[];
}

/** One UTC day of `ServerStats.messages_per_day`. */
export interface DayCount {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  messages: number;
}

/** `GET /v1/admin/stats`. */
export interface ServerStats {
  users: number;
  disabled_users: number;
  admins: number;
  /** Live devices. */
  devices: number;
  /** Users with a socket open on any node. */
  users_online: number;
  chats: number;
  /** Every message ever sent, deleted ones included. */
  messages: number;
  /** The last 7 days (UTC), oldest first, today included. */
  messages_per_day: DayCount[];
  storage: {
    /** The SQLite files, or the PostgreSQL database. */
    database_bytes: number;
    /** Uploaded files (thumbnails not counted). */
    media_bytes: number;
    media_files: number;
  };
  /** The job queue: waiting, and given up. */
  jobs: { pending: number; dead: number };
}

// ---- The audit log (`/v1/admin/audit`, docs/protocol.md "The audit log") ----

/** The actions the server writes (docs/protocol.md's table); a newer server may write others. */
export const AUDIT_ACTIONS = [
  'register',
  'login',
  'login_failed',
  'logout',
  'device_revoked',
  'device_expired',
  'group_created',
  'member_added',
  'member_removed',
  'member_left',
  'member_made_admin',
  'member_admin_removed',
  'message_deleted_for_everyone',
  'admin_disable_user',
  'admin_enable_user',
  'admin_grant_admin',
  'admin_revoke_admin',
  'admin_reset_password',
  'admin_revoke_device',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** One row of the audit log; never message content. */
export interface AuditEntry {
  /** 1, 2, 3, … with no gap from the first row kept. */
  id: number;
  /** ms since the epoch. */
  at: number;
  /** An `AuditAction`, or one this client does not know yet. */
  action: string;
  /** Who did it (null for a failed login of an unknown user). */
  actor: UserId | null;
  actor_device: DeviceId | null;
  target_user: UserId | null;
  target_device: DeviceId | null;
  chat: ChatId | null;
  /** The HTTP request's TCP peer (behind a proxy, the proxy's); null over the WebSocket. */
  address: string | null;
  /** String values only. */
  detail: Record<string, string>;
  /** Lowercase hex SHA-256, chained to the row before (`chainHash`). */
  hash: string;
}

/** `GET /v1/admin/audit`: `next` is the `before` (newest first) or `after` (oldest first) of the next page. */
export interface AuditPage {
  entries: AuditEntry[];
  next: number | null;
}

/** The filters and cursor of `GET /v1/admin/audit`; every filter set must match. */
export interface AuditQuery {
  /** Newest first, rows below this id (not with `after`). */
  before?: number | null;
  /** Oldest first, rows above this id (0: from the start). */
  after?: number | null;
  /** Rows this user did or had done to them. */
  user?: UserId | null;
  action?: string | null;
  chat?: ChatId | null;
  /** ms: `since` ≤ `at` < `until`. */
  since?: number | null;
  until?: number | null;
  /** 1–1000 (the server's default is 100). */
  limit?: number;
}

/** `GET /v1/admin/audit/chain`: where the hash chain starts and ends. */
export interface AuditChain {
  /** Rows up to this id were removed by retention (0: none). */
  pruned_through: number;
  /** The hash of row `pruned_through` (64 zeros when 0): what the first row kept builds on. */
  pruned_hash: string;
  /** The newest row's id (0: none yet). */
  last_id: number;
  last_hash: string;
}

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

// ---- Bots and webhooks (bots.rs) ----

/** What a bot's token may do. */
export type BotAction = 'read' | 'send' | 'react' | 'mark' | 'typing';

export const BOT_ACTIONS: readonly BotAction[] = ['read', 'send', 'react', 'mark', 'typing'];

/** One token's reach: these actions, in these chats (absent: every chat the bot is in). */
export interface BotScope {
  actions: BotAction[];
  chats?: ChatId[];
}

/** A bot and who answers for it (`POST /v1/bots`, `GET /v1/bots`). */
export interface Bot {
  /** The bot's account (`bot` is true). */
  user: User;
  /** The person who made it. */
  owner: UserId;
  created_at: number;
}

/** One of a bot's tokens: a device of the bot's account, with its scope. */
export interface BotToken {
  device: Device;
  scope: BotScope;
}

/** The answer to making a token: the token is shown this once. */
export interface BotTokenCreated extends BotToken {
  token: string;
}

/** What a webhook is called for. */
export type WebhookKind = 'message_created' | 'message_edited' | 'message_deleted' | 'member_joined' | 'member_left' | 'reaction' | 'chat_created';

export const WEBHOOK_KINDS: readonly WebhookKind[] = [
  'message_created',
  'message_edited',
  'message_deleted',
  'member_joined',
  'member_left',
  'reaction',
  'chat_created',
];

/** A registered webhook (never its secret). */
export interface Webhook {
  id: string;
  url: string;
  events: WebhookKind[];
  /** Whose events: the bot's, or for a chat's webhook the person who added it. */
  user_id: UserId;
  chat_id?: ChatId;
  created_at: number;
  /** Calls failed in a row (a delivered one resets it). */
  failures: number;
  /** Turned off (after too many failures in a row): why. */
  disabled?: string;
}

/** The answer to adding a webhook: its signing secret is shown this once. */
export interface WebhookCreated extends Webhook {
  secret: string;
}

/** One call to a webhook, as its delivery log keeps it. */
export interface WebhookDelivery {
  event_id: string;
  kind: WebhookKind;
  attempted_at: number;
  /** The HTTP status answered, if any. */
  status?: number;
  delivered: boolean;
  error?: string;
  duration_ms: number;
}
