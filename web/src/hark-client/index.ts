// The Hark browser client library: wire types, the HTTP API, and the
// WebSocket Connection (catch-up, outbox, reconnect). No UI code lives here,
// so any TypeScript app can reuse it. Mirrors docs/protocol.md.

export * from './types';
export { HarkApi } from './api';
export {
  AUDIT_GENESIS,
  auditDetailJson,
  auditHashText,
  canHash,
  chainHash,
  describeAuditBreak,
  verifyAuditLog,
  verifyEnd,
  verifyRun,
  type AuditBreak,
  type AuditSource,
  type AuditVerdict,
} from './audit';
export { hasDisappeared } from './expiry';
export { mediaKindOf } from './media';
export { base64UrlBytes, chatNotificationTag, sameKey, subscriptionBody } from './push';
export { PIECE_BYTES, uploadFile, type UploadOptions } from './upload';
export { CatchUp, type Step } from './catchup';
export { Outbox, newClientId, type OutboxEntry, type OutboxRequest, type PendingMessage } from './outbox';
export {
  Connection,
  isFinal,
  isRestriction,
  websocketUrl,
  type ConnectionEvent,
  type ConnectionOptions,
  type ConnectionState,
  type ConnectionStatus,
  type PendingSend,
} from './connection';
export {
  deviceStore,
  loadSession,
  memoryStore,
  saveSession,
  type DeviceStore,
  type KeyValue,
  type Session,
} from './storage';
