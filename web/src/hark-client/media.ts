// Which kind a file goes up as (`POST /v1/media?kind=…`). The server checks
// the declared kind against the bytes, so only the formats it reads as images,
// video and audio are declared as such; anything else goes as a plain file.

import type { MediaKind } from './types';

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];
const VIDEO_TYPES = ['video/mp4', 'video/webm', 'video/x-matroska', 'video/quicktime'];
const AUDIO_TYPES = [
  'audio/ogg',
  'audio/opus',
  'audio/webm',
  'audio/mpeg',
  'audio/mp3',
  'audio/mp4',
  'audio/x-m4a',
  'audio/m4a',
  'audio/wav',
  'audio/x-wav',
  'audio/wave',
  'audio/flac',
  'audio/x-flac',
  'audio/aac',
];
/** When the browser gives no type: the file name's extension. */
const BY_EXTENSION: Record<string, MediaKind> = {
  jpg: 'image',
  jpeg: 'image',
  png: 'image',
  gif: 'image',
  webp: 'image',
  mp4: 'video',
  webm: 'video',
  mkv: 'video',
  mov: 'video',
  ogg: 'audio',
  oga: 'audio',
  opus: 'audio',
  mp3: 'audio',
  m4a: 'audio',
  wav: 'audio',
  flac: 'audio',
  aac: 'audio',
};

/** The kind to declare for a file, from its type (or, without one, its name). */
export function mediaKindOf(file: { type: string; name?: string }): MediaKind {
  const type = file.type.toLowerCase().split(';')[0].trim();
  if (IMAGE_TYPES.includes(type)) return 'image';
  if (VIDEO_TYPES.includes(type)) return 'video';
  if (AUDIO_TYPES.includes(type)) return 'audio';
  if (type) return 'file';
  const ext = file.name?.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1];
  return (ext && BY_EXTENSION[ext]) || 'file';
}
