// The HTTP API under /v1: one method per route of docs/protocol.md.

import {
  HarkError,
  type Chat,
  type ChatId,
  type ChatSettings,
  type ChatSummary,
  type Device,
  type DeviceId,
  type ErrorBody,
  type History,
  type LoginResponse,
  type Me,
  type MediaKind,
  type MediaRef,
  type MessageInfo,
  type SearchResults,
  type PrivacySettings,
  type SendAck,
  type Seq,
  type User,
  type UserId,
} from './types';

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

  async login(username: string, password: string, deviceName: string): Promise<LoginResponse> {
    const res = await this.request<LoginResponse>('POST', '/v1/login', {
      username,
      password,
      device_name: deviceName,
    });
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

  privacy(): Promise<PrivacySettings> {
    return this.request('GET', '/v1/me/privacy');
  }

  setPrivacy(settings: PrivacySettings): Promise<PrivacySettings> {
    return this.request('PUT', '/v1/me/privacy', settings);
  }

  devices(): Promise<Device[]> {
    return this.request('GET', '/v1/devices');
  }

  revokeDevice(id: DeviceId): Promise<void> {
    return this.request('DELETE', `/v1/devices/${id}`);
  }

  /** Users whose username starts with `prefix` (at most 50). */
  searchUsers(prefix: string): Promise<User[]> {
    return this.request('GET', `/v1/users?q=${encodeURIComponent(prefix)}`);
  }

  user(id: UserId): Promise<User> {
    return this.request('GET', `/v1/users/${id}`);
  }

  /** The one-to-one chat with `userId`, created on first call. */
  createDirect(userId: UserId): Promise<Chat> {
    return this.request('POST', '/v1/chats/direct', { user_id: userId });
  }

  createGroup(title: string, members: UserId[]): Promise<Chat> {
    return this.request('POST', '/v1/chats/groups', { title, members });
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
   * Upload a file (`POST /v1/media`), the raw bytes as the body. Through
   * XMLHttpRequest, the one browser API that reports upload progress:
   * `onProgress(sent, total)` as the bytes go out. `signal` cancels it
   * (the promise then rejects with a HarkError of code `network`).
   */
  upload(
    file: Blob,
    opts: { kind: MediaKind; name?: string; onProgress?: (sent: number, total: number) => void; signal?: AbortSignal },
  ): Promise<MediaRef> {
    const q = new URLSearchParams({ kind: opts.kind });
    if (opts.name) q.set('name', opts.name);
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new HarkError(0, 'network', 'the upload was cancelled'));
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${this.baseUrl}/v1/media?${q}`);
      xhr.setRequestHeader('Accept', 'application/json');
      if (this.token) xhr.setRequestHeader('Authorization', `Bearer ${this.token}`);
      xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onload = () => {
        let json: unknown = undefined;
        try {
          json = xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
        } catch {
          // Not JSON: reported below with the status.
        }
        if (xhr.status >= 200 && xhr.status < 300 && json) return resolve(json as MediaRef);
        const err = (json as ErrorBody | undefined)?.error;
        reject(new HarkError(xhr.status, err?.code ?? 'internal', err?.message ?? `HTTP ${xhr.status}`));
      };
      // The server may answer a refused upload (too large) before reading
      // the body and close the connection: the browser then sees no answer.
      xhr.onerror = () => reject(new HarkError(0, 'network', 'the upload did not reach the server (the file may be too large)'));
      xhr.onabort = () => reject(new HarkError(0, 'network', 'the upload was cancelled'));
      opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(file);
    });
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
    return res.blob();
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

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
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
