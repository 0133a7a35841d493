// Precompress the built text assets after `vite build`: `x.js.br` (brotli,
// quality 11) and `x.js.gz` (gzip -9) beside `x.js`, so `hark serve` (web.rs)
// sends them as they are, doing no compression work per request. Only files
// over 1 KiB, and only when compressing saves space.

import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dist = process.argv[2] ?? 'dist';
const walk = (dir) => readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [join(dir, name)]));
for (const file of walk(dist)) {
  if (!/\.(js|css|html|svg|json|txt|map)$/.test(file)) continue;
  const raw = readFileSync(file);
  if (raw.length < 1024) continue;
  const br = brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } });
  const gz = gzipSync(raw, { level: 9 });
  if (br.length < raw.length) writeFileSync(`${file}.br`, br);
  if (gz.length < raw.length) writeFileSync(`${file}.gz`, gz);
  console.log(`${file}: ${raw.length} B, brotli ${br.length} B, gzip ${gz.length} B`);
}
