// The HTTP API under /v1: one method per route of docs/protocol.md.

import {
  HarkError,
  type AdminChat,
  type AdminUser,
  type AdminUserPage,
  type AuditChain,
  type AuditPage,
  type AuditQuery,
  type Bot,
  type BotAction,
  type BotToken,
  type BotTokenCreated,
  type Chat,
  type ChatId,
  type ChatSettings,
  type ChatSummary,
  type DataExport,
  type Device,
  type DeviceApproval,
  type DeviceId,
  type ErrorBody,
  type History,
  type Inbox,
  type KeysClaim,
  type KeysClaimed,
  type KeysQuery,
  type KeysQueryResult,
  type KeysUpload,
  type KeysUploaded,
  type ToDeviceSend,
  type LoginResponse,
  type Me,
  type MediaRef,
  type MediaUrl,
  type MessageInfo,
  type MyProfile,
  type NewPushSubscription,
  type NewUpload,
  type NotificationSettings,
  type PasswordChanged,
  type PhotoSize,
  type Profile,
  type ProfileUpdate,
  type PushSubscriptionInfo,
  type RecoveryCodes,
  type SearchResults,
  type PrivacySettings,
  type Role,
  type SendAck,
  type SsoInfo,
  type SsoRedeem,
  type Seq,
  type ServerStats,
  type TwoFactorEnrolment,
  type TwoFactorStatus,
  type User,
  type UploadStatus,
  type UserId,
  type VapidKey,
  type Webhook,
  type WebhookCreated,
  type WebhookDelivery,
  type WebhookKind,
} from './types';
import { cancelled, uploadFile, type UploadOptions } from './upload';

export class HarkApi {
  /**
   * `baseUrl` is the server's origin ("" for the page's own origin);
   * `token` is the device's bearer token, set after login.
   */
  constructor(
    readonly baseUrl: string = '',
    public token: string | null = null,
  ) {}

  register(username: string, password: string, displayName?: string): Promise<User> {
    return this.request('POST', '/v1/register', {
      username,
      password,
      display_name: displayName || null,
    });
  }

  /**
   * Log in as a new device. An account with two-factor authentication on
   * answers `401 two_factor_required` until `twoFactorCode` (an
   * authenticator app's code or an unused recovery code) comes along, and
   * `401 invalid_two_factor_code` for a wrong, expired or used one.
   */
  async login(username: string, password: string, deviceName: string, twoFactorCode?: string): Promise<LoginResponse> {
    const body: Record<string, unknown> = { username, password, device_name: deviceName };
    if (twoFactorCode !== undefined) body.two_factor_code = twoFactorCode;
    const res = await this.request<LoginResponse>('POST', '/v1/login', body);
    this.token = res.token;
    return res;
  }

  /** Whether this server offers single sign-on (no token needed): for the login screen. */
  ssoInfo(): Promise<SsoInfo> {
    return this.request('GET', '/v1/sso');
  }

  /**
   * Where to send the browser (a navigation, not `fetch`) to sign in
   * through the server's OpenID provider; it comes back to `returnTo` (a
   * path of this server) with `?sso_ticket=…` or `?sso_error=…`.
   */
  ssoStartUrl(returnTo: string): string {
    return `${this.baseUrl}/v1/sso/start?return_to=${encodeURIComponent(returnTo)}`;
  }

  /**
   * Log in as a new device with a finished sign-in's one-time ticket (within
   * 2 minutes, once): answers as `login` does. An unknown, used or expired
   * ticket is `401 invalid_credentials`; a disabled account `403 account_disabled`.
   */
  async redeemSso(ticket: string, deviceName: string): Promise<LoginResponse> {
    const body: SsoRedeem = { ticket, device_name: deviceName };
    const res = await this.request<LoginResponse>('POST', '/v1/sso/redeem', body);
    this.token = res.token;
    return res;
  }

  /** Revokes this device: its token stops working and its sockets close. */
  logout(): Promise<void> {
    return this.request('POST', '/v1/logout');
  }

  me(): Promise<Me> {
    return this.request('GET', '/v1/me');
  }

  updateMe(displayName: string): Promise<User> {
    return this.request('PATCH', '/v1/me', { display_name: displayName });
  }

  /**
   * Change the account's password: `401 invalid_credentials` for a wrong
   * current one, `400 invalid_field` for a new one outside 8–1024 bytes.
   * `logOutOtherDevices` revokes every other device (this one stays).
   */
  changePassword(currentPassword: string, newPassword: string, logOutOtherDevices: boolean): Promise<PasswordChanged> {
    return this.request('POST', '/v1/me/password', {
      current_password: currentPassword,
      new_password: newPassword,
      log_out_other_devices: logOutOtherDevices,
    });
  }

  /** Whether logins need a second factor, and how many recovery codes are left. */
  twoFactor(): Promise<TwoFactorStatus> {
    return this.request('GET', '/v1/me/two-factor');
  }

  /**
   * Start (or restart) turning two-factor authentication on: the secret for
   * the authenticator app. Nothing changes for logins until `confirmTwoFactor`.
   */
  startTwoFactor(password: string): Promise<TwoFactorEnrolment> {
    return this.request('POST', '/v1/me/two-factor', { password });
  }

  /** Finish turning it on with a code the app shows: the recovery codes, this once. */
  confirmTwoFactor(code: string): Promise<RecoveryCodes> {
    return this.request('POST', '/v1/me/two-factor/confirm', { code });
  }

  /** Turn it off: the password and a current code (or an unused recovery code). */
  disableTwoFactor(password: string, code: string): Promise<void> {
    return this.request('POST', '/v1/me/two-factor/disable', { password, code });
  }

  /**
   * Delete the account for good: every device logged out (this one too),
   * every message it sent erased for everyone, its groups left; others see
   * "Deleted account". `code`: with two-factor authentication on, a current
   * code or an unused recovery code. A wrong password is `401
   * invalid_credentials`, a wrong or missing code `401
   * invalid_two_factor_code`, and then nothing is done.
   */
  deleteAccount(password: string, code?: string): Promise<void> {
    return this.request('POST', '/v1/me/delete', code ? { password, code } : { password });
  }

  /** Your about line and photo, and who sees each. */
  myProfile(): Promise<MyProfile> {
    return this.request('GET', '/v1/me/profile');
  }

  /** Change any of the about line (at most 140 characters, one line) and who sees it or the photo: `400 invalid_field` otherwise. */
  updateProfile(update: ProfileUpdate): Promise<MyProfile> {
    return this.request('PATCH', '/v1/me/profile', update);
  }

  /**
   * An image you uploaded (`upload`, kind "image") becomes your photo, cut
   * to its centre square: `404 not_found` when it is not your upload, `400
   * invalid_field` when it is not an image.
   */
  setPhoto(mediaId: string): Promise<MyProfile> {
    return this.request('PUT', '/v1/me/photo', { media_id: mediaId });
  }

  removePhoto(): Promise<MyProfile> {
    return this.request('DELETE', '/v1/me/photo');
  }

  /** What you may see of someone's profile (null fields: unset, or hidden from you). */
  profile(id: UserId): Promise<Profile> {
    return this.request('GET', `/v1/users/${id}/profile`);
  }

  /**
   * Someone's photo (`small`: 128 px, `large`: 640 px), with the token like
   * `mediaBlob`: `404 not_found` without one, or when it is hidden from you.
   */
  photoBlob(id: UserId, size: PhotoSize, signal?: AbortSignal): Promise<Blob> {
    return this.blob(`/v1/users/${id}/photo?size=${size}`, signal);
  }

  /** Ask for an export of your data (202); one already being prepared is answered instead of a new one. */
  requestExport(): Promise<DataExport> {
    return this.request('POST', '/v1/me/export');
  }

  /** Your latest export, or null when there is none (`204`: never asked for, or all expired). */
  async latestExport(): Promise<DataExport | null> {
    return (await this.request<DataExport | undefined>('GET', '/v1/me/export')) ?? null;
  }

  /** A ready export's zip archive, and the file name the server gives it (if any). */
  async exportArchive(id: string, signal?: AbortSignal): Promise<{ blob: Blob; name: string | null }> {
    const res = await this.fetchOk(`/v1/me/export/${encodeURIComponent(id)}/archive`, signal);
    return { blob: await res.blob(), name: attachmentName(res.headers.get('Content-Disposition')) };
  }

  // ---- bots and webhooks ----

  /** Make a bot owned by you: `409 username_taken`, `403 forbidden` when this server lets only admins (or you own the most allowed). */
  createBot(username: string, displayName?: string): Promise<Bot> {
    const body: Record<string, unknown> = { username };
    if (displayName) body.display_name = displayName;
    return this.request('POST', '/v1/bots', body);
  }

  /** Your bots, oldest first (an admin: every bot). */
  bots(): Promise<Bot[]> {
    return this.request('GET', '/v1/bots');
  }

  bot(id: UserId): Promise<Bot> {
    return this.request('GET', `/v1/bots/${id}`);
  }

  /** Delete a bot: its tokens stop working, its webhooks go; its messages stay. */
  deleteBot(id: UserId): Promise<void> {
    return this.request('DELETE', `/v1/bots/${id}`);
  }

  /** A token for a bot, limited to `actions` (and `chats`, if given); the token is shown this once. */
  createBotToken(id: UserId, name: string, actions: BotAction[], chats?: ChatId[]): Promise<BotTokenCreated> {
    const body: Record<string, unknown> = { name, actions };
    if (chats && chats.length > 0) body.chats = chats;
    return this.request('POST', `/v1/bots/${id}/tokens`, body);
  }

  /** A bot's tokens (not the secrets), oldest first. */
  botTokens(id: UserId): Promise<BotToken[]> {
    return this.request('GET', `/v1/bots/${id}/tokens`);
  }

  revokeBotToken(id: UserId, device: DeviceId): Promise<void> {
    return this.request('DELETE', `/v1/bots/${id}/tokens/${device}`);
  }

  /** Call `url` for a bot's events (absent `events`: every kind); the secret is shown this once. `400 url_not_allowed` for a URL not https on a public address. */
  createBotWebhook(id: UserId, url: string, events?: WebhookKind[]): Promise<WebhookCreated> {
    return this.request('POST', `/v1/bots/${id}/webhooks`, events ? { url, events } : { url });
  }

  botWebhooks(id: UserId): Promise<Webhook[]> {
    return this.request('GET', `/v1/bots/${id}/webhooks`);
  }

  /** Call `url` for one chat's events as you see them (a member; in a group, its admin). */
  createChatWebhook(chat: ChatId, url: string, events?: WebhookKind[]): Promise<WebhookCreated> {
    return this.request('POST', `/v1/chats/${chat}/webhooks`, events ? { url, events } : { url });
  }

  chatWebhooks(chat: ChatId): Promise<Webhook[]> {
    return this.request('GET', `/v1/chats/${chat}/webhooks`);
  }

  webhook(id: string): Promise<Webhook> {
    return this.request('GET', `/v1/webhooks/${encodeURIComponent(id)}`);
  }

  deleteWebhook(id: string): Promise<void> {
    return this.request('DELETE', `/v1/webhooks/${encodeURIComponent(id)}`);
  }

  /** On again after failures turned it off: calls go on from the first event not delivered. */
  enableWebhook(id: string): Promise<Webhook> {
    return this.request('POST', `/v1/webhooks/${encodeURIComponent(id)}/enable`);
  }

  /** A webhook's newest calls, newest first (`limit` 1 to 100). */
  webhookDeliveries(id: string, limit = 50): Promise<WebhookDelivery[]> {
    return this.request('GET', `/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=${limit}`);
  }

  /** The caller's contacts (an address book of their own; nobody is told), by display name. */
  contacts(): Promise<User[]> {
    return this.request('GET', '/v1/contacts');
  }

  /** Add a contact (again: no change); `400 invalid_field` for yourself, `404 not_found` for nobody. */
  addContact(id: UserId): Promise<void> {
    return this.request('PUT', `/v1/contacts/${id}`);
  }

  removeContact(id: UserId): Promise<void> {
    return this.request('DELETE', `/v1/contacts/${id}`);
  }

  /** The users the caller blocked. */
  blocks(): Promise<User[]> {
    return this.request('GET', '/v1/blocks');
  }

  /**
   * Block a user: no messages, reactions, typing or presence between the
   * two of you (refused with `403 blocked`), and neither can add the other
   * to a group. They are not told.
   */
  block(id: UserId): Promise<void> {
    return this.request('PUT', `/v1/blocks/${id}`);
  }

  unblock(id: UserId): Promise<void> {
    return this.request('DELETE', `/v1/blocks/${id}`);
  }

  privacy(): Promise<PrivacySettings> {
    return this.request('GET', '/v1/me/privacy');
  }

  setPrivacy(settings: PrivacySettings): Promise<PrivacySettings> {
    return this.request('PUT', '/v1/me/privacy', settings);
  }

  /** The account's notification settings (what push notifications show), for all its devices. */
  notificationSettings(): Promise<NotificationSettings> {
    return this.request('GET', '/v1/me/notifications');
  }

  setNotificationSettings(settings: NotificationSettings): Promise<NotificationSettings> {
    return this.request('PUT', '/v1/me/notifications', settings);
  }

  /** The server's VAPID public key (`applicationServerKey` for `pushManager.subscribe`). */
  vapidKey(): Promise<VapidKey> {
    return this.request('GET', '/v1/push/vapid');
  }

  /**
   * Register this device's push subscription (201); the same endpoint
   * again answers the existing one (200). `422 url_not_allowed` for an
   * endpoint the server will not post to, `409 too_many_subscriptions`.
   */
  addPushSubscription(sub: NewPushSubscription): Promise<PushSubscriptionInfo> {
    return this.request('POST', '/v1/push/subscriptions', sub);
  }

  /** This device's push subscriptions. */
  pushSubscriptions(): Promise<PushSubscriptionInfo[]> {
    return this.request('GET', '/v1/push/subscriptions');
  }

  removePushSubscription(id: string): Promise<void> {
    return this.request('DELETE', `/v1/push/subscriptions/${encodeURIComponent(id)}`);
  }

  devices(): Promise<Device[]> {
    return this.request('GET', '/v1/devices');
  }

  revokeDevice(id: DeviceId): Promise<void> {
    return this.request('DELETE', `/v1/devices/${id}`);
  }

  /** Let a waiting login in (`404 not_found` when it is not this account's, not waiting, or logged out). */
  approveDevice(id: DeviceId): Promise<void> {
    return this.request('POST', `/v1/devices/${id}/approve`);
  }

  /** Whether new logins of this account wait for one of its devices to approve them. */
  deviceApproval(): Promise<DeviceApproval> {
    return this.request('GET', '/v1/me/device-approval');
  }

  setDeviceApproval(required: boolean): Promise<DeviceApproval> {
    return this.request('PUT', '/v1/me/device-approval', { required });
  }

  /** Users whose username starts with `prefix` (at most 50). */
  searchUsers(prefix: string): Promise<User[]> {
    return this.request('GET', `/v1/users?q=${encodeURIComponent(prefix)}`);
  }

  user(id: UserId): Promise<User> {
    return this.request('GET', `/v1/users/${id}`);
  }

  /**
   * The one-to-one chat with `userId`, created on first call (end-to-end
   * encrypted when `encrypted`; a chat that exists stays as it was made).
   */
  createDirect(userId: UserId, encrypted = false): Promise<Chat> {
    return this.request('POST', '/v1/chats/direct', encrypted ? { user_id: userId, encrypted } : { user_id: userId });
  }

  createGroup(title: string, members: UserId[], encrypted = false): Promise<Chat> {
    return this.request('POST', '/v1/chats/groups', encrypted ? { title, members, encrypted } : { title, members });
  }

  /** Every chat of the caller, most recent activity first. */
  chats(): Promise<ChatSummary[]> {
    return this.request('GET', '/v1/chats');
  }

  chat(id: ChatId): Promise<ChatSummary> {
    return this.request('GET', `/v1/chats/${id}`);
  }

  renameChat(id: ChatId, title: string): Promise<Chat> {
    return this.request('PATCH', `/v1/chats/${id}`, { title });
  }

  addMember(id: ChatId, userId: UserId): Promise<Chat> {
    return this.request('POST', `/v1/chats/${id}/members`, { user_id: userId });
  }

  /** Removes a member (admins), or leaves when `userId` is the caller. */
  removeMember(id: ChatId, userId: UserId): Promise<void> {
    return this.request('DELETE', `/v1/chats/${id}/members/${userId}`);
  }

  setAdmin(id: ChatId, userId: UserId, admin: boolean): Promise<Chat> {
    return this.request('PATCH', `/v1/chats/${id}/members/${userId}`, { admin });
  }

  /**
   * Set the chat's disappearing-messages timer (`seconds`: one of
   * `DISAPPEARING_SECS`, 0 turns it off); it applies to messages sent from
   * now on. Either member of a one-to-one chat may; in a group, admins
   * (`403 forbidden` otherwise); any other value is `400 invalid_field`.
   * Every member gets a `disappearing_changed` event.
   */
  setDisappearing(id: ChatId, seconds: number): Promise<Chat> {
    return this.request('PUT', `/v1/chats/${id}/disappearing`, { seconds });
  }

  /** A page of messages, ascending: below `before`, above `after`, or the newest. */
  history(id: ChatId, page: { before?: Seq; after?: Seq; limit?: number } = {}): Promise<History> {
    const q = new URLSearchParams();
    if (page.before !== undefined) q.set('before', String(page.before));
    if (page.after !== undefined) q.set('after', String(page.after));
    if (page.limit !== undefined) q.set('limit', String(page.limit));
    const qs = q.toString();
    return this.request('GET', `/v1/chats/${id}/messages${qs ? `?${qs}` : ''}`);
  }

  /** Send over HTTP (bots, scripts); the WebSocket `Connection.send` is the usual path. */
  send(id: ChatId, clientId: string, text: string, replyTo?: Seq, mediaId?: string): Promise<SendAck> {
    const body: Record<string, unknown> = { client_id: clientId, text, reply_to: replyTo ?? null };
    if (mediaId !== undefined) body.media_id = mediaId;
    return this.request('POST', `/v1/chats/${id}/messages`, body);
  }

  /**
   * Upload a file: up to `PIECE_BYTES` in one `POST /v1/media`, larger ones
   * through a resumable upload that survives a breaking connection (see
   * `uploadFile`). `onProgress(sent, total)` as the bytes go out; `signal`
   * cancels it (the promise then rejects with a HarkError of code
   * `network`).
   */
  upload(file: Blob, opts: UploadOptions): Promise<MediaRef> {
    return uploadFile(this, file, opts);
  }

  /** `POST /v1/media`: the whole file as the body, in one request. */
  async uploadWhole(file: Blob, opts: UploadOptions): Promise<MediaRef> {
    const q = new URLSearchParams({ kind: opts.kind });
    if (opts.name) q.set('name', opts.name);
    const res = await sendBytes('POST', `${this.baseUrl}/v1/media?${q}`, file, {
      headers: { Accept: 'application/json', ...this.authHeaders() },
      onProgress: (sent) => opts.onProgress?.(sent, file.size),
      signal: opts.signal,
      // The server may answer a refused upload (too large) before reading
      // the body and close the connection: the browser then sees no answer.
      unreachable: 'the upload did not reach the server (the file may be too large)',
    });
    return answer<MediaRef>(res);
  }

  /** `POST /v1/media/uploads`: starts a resumable upload (size, rate and quota are checked here). */
  startUpload(upload: NewUpload, signal?: AbortSignal): Promise<UploadStatus> {
    return this.request('POST', '/v1/media/uploads', upload, signal);
  }

  /** `GET /v1/media/uploads/{id}`: where the upload stands (its `received` is where the next piece starts). */
  uploadStatus(id: string, signal?: AbortSignal): Promise<UploadStatus> {
    return this.request('GET', uploadPath(id), undefined, signal);
  }

  /**
   * `PATCH /v1/media/uploads/{id}`: one piece, starting at byte `offset` of
   * the file, which must be the upload's `received` (else `409
   * offset_mismatch`). `onProgress(sent)` counts this piece's bytes.
   */
  async sendPiece(
    id: string,
    offset: number,
    piece: Blob,
    opts: { onProgress?: (sent: number) => void; signal?: AbortSignal } = {},
  ): Promise<UploadStatus> {
    const res = await sendBytes('PATCH', this.baseUrl + uploadPath(id), piece, {
      headers: { Accept: 'application/json', ...this.authHeaders(), 'Upload-Offset': String(offset) },
      onProgress: opts.onProgress,
      signal: opts.signal,
      unreachable: 'the connection to the server broke during the upload',
    });
    return answer<UploadStatus>(res);
  }

  /**
   * A direct upload's bytes: one `PUT` of the whole file to the bucket's
   * `put_url`, with exactly its `put_headers` and no token. The browser
   * sets Content-Length itself (a script may not).
   */
  async putToBucket(
    status: UploadStatus,
    file: Blob,
    opts: { onProgress?: (sent: number) => void; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (!status.put_url) throw new HarkError(0, 'internal', 'the server offered a direct upload without a URL');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(status.put_headers ?? {})) {
      if (name.toLowerCase() !== 'content-length') headers[name] = value;
    }
    // A Blob without a type, so that the browser adds no Content-Type of its own.
    const res = await sendBytes('PUT', status.put_url, file.slice(0, file.size), {
      headers,
      onProgress: opts.onProgress,
      signal: opts.signal,
      unreachable: 'the upload did not reach the file store',
    });
    if (res.status < 200 || res.status >= 300) {
      throw new HarkError(res.status, res.status >= 500 ? 'unavailable' : 'internal', `the file store refused the upload (HTTP ${res.status})`);
    }
  }

  /**
   * `POST /v1/media/uploads/{id}/complete`, once every byte is in: the
   * file, checked like a `POST /v1/media` body. Completing again answers
   * the same file.
   */
  completeUpload(id: string, signal?: AbortSignal): Promise<MediaRef> {
    return this.request('POST', `${uploadPath(id)}/complete`, undefined, signal);
  }

  /** `DELETE /v1/media/uploads/{id}`: the upload and its pieces are removed. */
  cancelUpload(id: string): Promise<void> {
    return this.request('DELETE', uploadPath(id));
  }

  /**
   * `GET /v1/media/{id}/url`: a presigned URL that serves the file without
   * a token for a while (ranges included), when the server keeps files in a
   * bucket that allows it; `404 not_found` when the server serves them itself.
   */
  mediaUrl(id: string): Promise<MediaUrl> {
    return this.request('GET', `/v1/media/${encodeURIComponent(id)}/url`);
  }

  /**
   * A file's bytes (`GET /v1/media/{id}`), for a `blob:` URL: the route needs
   * the bearer token, which an `<img src>` cannot send.
   */
  mediaBlob(id: string, signal?: AbortSignal): Promise<Blob> {
    return this.blob(`/v1/media/${encodeURIComponent(id)}`, signal);
  }

  /**
   * An image's thumbnail (`GET /v1/media/{id}/thumbnail`: at most 480 px on
   * its longer side, see `MediaRef.thumbnail`), with the token in a header
   * like `mediaBlob`. A file without one is `404 not_found`.
   */
  mediaThumbnailBlob(id: string, signal?: AbortSignal): Promise<Blob> {
    return this.blob(`/v1/media/${encodeURIComponent(id)}/thumbnail`, signal);
  }

  /** A GET answered with bytes; the bearer token goes in the Authorization header, never in the URL. */
  private async blob(path: string, signal?: AbortSignal): Promise<Blob> {
    return (await this.fetchOk(path, signal)).blob();
  }

  /** A GET with the token in a header: the response when 2xx, else the server's error as a HarkError. */
  private async fetchOk(path: string, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, { headers, signal });
    } catch (e) {
      throw new HarkError(0, 'network', `cannot reach the server: ${String(e)}`);
    }
    if (!res.ok) {
      let err: ErrorBody['error'] | undefined;
      try {
        err = ((await res.json()) as ErrorBody).error;
      } catch {
        // No JSON body.
      }
      throw new HarkError(res.status, err?.code ?? 'internal', err?.message ?? `HTTP ${res.status}`);
    }
    return res;
  }

  /** For the sender: who received and read message `seq`, and when. */
  messageInfo(id: ChatId, seq: Seq): Promise<MessageInfo> {
    return this.request('GET', `/v1/chats/${id}/messages/${seq}/info`);
  }

  /** The caller's own settings for a chat (mute, archive, pin); any subset. */
  chatSettings(id: ChatId, patch: { muted_until?: number | null; archived?: boolean; pinned?: boolean }): Promise<ChatSettings> {
    return this.request('PATCH', `/v1/chats/${id}/settings`, patch);
  }

  /** Full-text search over the caller's chats, newest first. */
  search(q: string, opts: { chatId?: ChatId; limit?: number } = {}): Promise<SearchResults> {
    const p = new URLSearchParams({ q });
    if (opts.chatId !== undefined) p.set('chat_id', String(opts.chatId));
    if (opts.limit !== undefined) p.set('limit', String(opts.limit));
    return this.request('GET', `/v1/search?${p}`);
  }

  // ---- Administration: every route needs a server admin's token (else 403 forbidden) ----

  /**
   * Users by id, a page at a time: those whose username starts with `q`
   * (any case) when given; `after` is the previous page's `next`; `limit`
   * 1–200 (the server's default is 50).
   */
  adminUsers(q?: string, after?: UserId | null, limit?: number): Promise<AdminUserPage> {
    const p = new URLSearchParams();
    if (q) p.set('q', q);
    if (after !== undefined && after !== null) p.set('after', String(after));
    if (limit !== undefined) p.set('limit', String(limit));
    const qs = p.toString();
    return this.request('GET', `/v1/admin/users${qs ? `?${qs}` : ''}`);
  }

  adminUser(id: UserId): Promise<AdminUser> {
    return this.request('GET', `/v1/admin/users/${id}`);
  }

  /** The user's tokens stop working (`account_disabled`) and their sockets close; `403 forbidden` for yourself. */
  disableUser(id: UserId): Promise<AdminUser> {
    return this.request('POST', `/v1/admin/users/${id}/disable`);
  }

  /** The user's devices (and their tokens) work again. */
  enableUser(id: UserId): Promise<AdminUser> {
    return this.request('POST', `/v1/admin/users/${id}/enable`);
  }

  /** Make a server admin, or take it back (`403 forbidden` for your own). */
  setRole(id: UserId, role: Role): Promise<AdminUser> {
    return this.request('PUT', `/v1/admin/users/${id}/role`, { role });
  }

  /** Set a user's password (8–1024 bytes); `revokeDevices` logs every device of theirs out. */
  resetPassword(id: UserId, password: string, revokeDevices = true): Promise<void> {
    return this.request('POST', `/v1/admin/users/${id}/password`, { password, revoke_devices: revokeDevices });
  }

  /** A user's live devices (`current` is always false). */
  adminDevices(id: UserId): Promise<Device[]> {
    return this.request('GET', `/v1/admin/users/${id}/devices`);
  }

  /** Log one of a user's devices out (`404` if not that user's live device). */
  adminRevokeDevice(userId: UserId, deviceId: DeviceId): Promise<void> {
    return this.request('DELETE', `/v1/admin/users/${userId}/devices/${deviceId}`);
  }

  /** A chat's kind, title, message count and members: never its messages. */
  adminChat(id: ChatId): Promise<AdminChat> {
    return this.request('GET', `/v1/admin/chats/${id}`);
  }

  adminStats(): Promise<ServerStats> {
    return this.request('GET', '/v1/admin/stats');
  }

  /**
   * A page of the audit log: newest first (from the newest, or below
   * `before`), or oldest first with `after` (0: from the start); `next` is
   * the next page's `before` or `after`.
   */
  adminAudit(query: AuditQuery = {}): Promise<AuditPage> {
    const p = new URLSearchParams();
    for (const key of ['before', 'after', 'user', 'action', 'chat', 'since', 'until', 'limit'] as const) {
      const v = query[key];
      if (v !== undefined && v !== null && v !== '') p.set(key, String(v));
    }
    const qs = p.toString();
    return this.request('GET', `/v1/admin/audit${qs ? `?${qs}` : ''}`);
  }

  /** Where the audit log's hash chain starts (after retention) and ends. */
  adminAuditChain(): Promise<AuditChain> {
    return this.request('GET', '/v1/admin/audit/chain');
  }

  // ---- End-to-end encryption: the key directory and this device's inbox ----

  /** Publish this device's keys; answers the one-time keys the server holds for it. */
  uploadKeys(body: KeysUpload): Promise<KeysUploaded> {
    return this.request('POST', '/v1/e2e/keys/upload', body);
  }

  /** The device keys of users (those you share no chat with are left out);
   * more users than one request may name go in several. */
  async queryKeys(body: KeysQuery): Promise<KeysQueryResult> {
    const all: KeysQueryResult = { device_keys: {}, failures: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {} };
    for (const part of chunks(body.device_keys, () => 1)) {
      const answer: KeysQueryResult = await this.request('POST', '/v1/e2e/keys/query', { ...body, device_keys: part });
      Object.assign(all.device_keys, answer.device_keys);
      Object.assign(all.failures, answer.failures);
    }
    return all;
  }

  /** One one-time key (or the fallback key) of each named device; more
   * devices than one request may name go in several. */
  async claimKeys(body: KeysClaim): Promise<KeysClaimed> {
    const all: KeysClaimed = { one_time_keys: {}, failures: {} };
    for (const part of chunks(body.one_time_keys, (devices) => Object.keys(devices).length)) {
      const answer: KeysClaimed = await this.request('POST', '/v1/e2e/keys/claim', { ...body, one_time_keys: part });
      for (const [user, devices] of Object.entries(answer.one_time_keys)) {
        all.one_time_keys[user] = { ...all.one_time_keys[user], ...devices };
      }
      Object.assign(all.failures, answer.failures);
    }
    return all;
  }

  /** Put contents into devices' inboxes; the same `txnId` again stores nothing (safe to retry). */
  sendToDevice(eventType: string, txnId: string, body: ToDeviceSend): Promise<void> {
    return this.request('PUT', `/v1/e2e/to_device/${encodeURIComponent(eventType)}/${encodeURIComponent(txnId)}`, body).then(() => undefined);
  }

  /** Remove this device's inbox messages up to `ack`, then answer the next `limit` (1–500). */
  inbox(ack: number, limit?: number): Promise<Inbox> {
    return this.request('POST', '/v1/e2e/inbox', limit === undefined ? { ack } : { ack, limit });
  }

  /** The bearer token as a header, when logged in. */
  private authHeaders(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  private async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (signal?.aborted) throw cancelled();
      throw new HarkError(0, 'network', `cannot reach the server: ${String(e)}`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: reported below with the status.
    }
    if (!res.ok) {
      const err = (json as ErrorBody | undefined)?.error;
      throw new HarkError(res.status, err?.code ?? 'internal', err?.message ?? `HTTP ${res.status}`);
    }
    return json as T;
  }
}

/** The file name of a `Content-Disposition: attachment; filename="…"` header (RFC 6266's `filename*` first), if any. */
export function attachmentName(header: string | null): string | null {
  if (!header) return null;
  let name: string | null = null;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (star) {
    try {
      name = decodeURIComponent(star[1].trim());
    } catch {
      // Not percent-encoded as promised: the plain name below.
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"([^"]*)"|([^;\s]+))/.exec(header);
    name = plain ? (plain[1] ?? plain[2] ?? null) : null;
  }
  // Only a name, never a path.
  return name ? name.replace(/[\\/]/g, '_') : null;
}

/** The path of resumable upload `id`. */
function uploadPath(id: string): string {
  return `/v1/media/uploads/${encodeURIComponent(id)}`;
}

/** What an XMLHttpRequest got back: its status and body (parsed when JSON). */
interface XhrAnswer {
  status: number;
  json: unknown;
}

/**
 * Bytes sent through XMLHttpRequest, the one browser API that reports
 * upload progress. Any HTTP answer resolves; no answer at all rejects with
 * a HarkError of code `network` (`unreachable` says what it means), and so
 * does `signal` (then "cancelled").
 */
function sendBytes(
  method: string,
  url: string,
  body: Blob,
  opts: { headers: Record<string, string>; onProgress?: (sent: number) => void; signal?: AbortSignal; unreachable: string },
): Promise<XhrAnswer> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(cancelled());
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(opts.headers)) xhr.setRequestHeader(name, value);
    if (opts.onProgress) xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded);
    const abort = () => xhr.abort();
    opts.signal?.addEventListener('abort', abort, { once: true });
    xhr.onloadend = () => opts.signal?.removeEventListener('abort', abort);
    xhr.onload = () => {
      let json: unknown = undefined;
      try {
        json = xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
      } catch {
        // Not JSON (a bucket answers XML): the status says enough.
      }
      resolve({ status: xhr.status, json });
    };
    xhr.onerror = () => reject(new HarkError(0, 'network', opts.unreachable));
    xhr.onabort = () => reject(cancelled());
    xhr.send(body);
  });
}

/** The JSON body of a 2xx answer; otherwise the server's error as a HarkError. */
function answer<T>(res: XhrAnswer): T {
  if (res.status >= 200 && res.status < 300 && res.json) return res.json as T;
  const err = (res.json as ErrorBody | undefined)?.error;
  throw new HarkError(res.status, err?.code ?? 'internal', err?.message ?? `HTTP ${res.status}`);
}

/** The most users one key query, or devices one claim, may name (docs/protocol.md). */
const MAX_KEYS_PER_REQUEST = 1000;

/** `map` (per user) cut into maps weighing at most MAX_KEYS_PER_REQUEST each
 * (a user's weight is `weight(value)`; a heavier user goes alone). */
export function chunks<V>(map: Record<string, V>, weight: (value: V) => number): Record<string, V>[] {
  const out: Record<string, V>[] = [{}];
  let load = 0;
  for (const [user, value] of Object.entries(map)) {
    const w = weight(value);
    if (load + w > MAX_KEYS_PER_REQUEST && load > 0) {
      out.push({});
      load = 0;
    }
    load += w;
    out[out.length - 1][user] = value;
  }
  return out;
}
