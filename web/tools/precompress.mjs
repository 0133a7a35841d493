// Precompress the built assets after `vite build`: `x.js.br` (brotli,
// quality 11) and `x.js.gz` (gzip -9) beside `x.js`, so `hark serve` (web.rs)
// sends them as they are, doing no compression work per request. Text files
// and WebAssembly (the encryption library's 7.8 MB `.wasm` is 1.4 MB as
// brotli); only files over 1 KiB, and only when compressing saves space.
// Brotli 11 takes seconds per megabyte, so the variants of files named by
// content hash (`assets/`) are kept in node_modules/.cache and reused while
// the content, hence the name, stays the same.

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dist = process.argv[2] ?? 'dist';
const cache = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.cache', 'precompress');
const walk = (dir) => readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [join(dir, name)]));
const compressors = {
  br: (raw) => brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } }),
  gz: (raw) => gzipSync(raw, { level: 9 }),
};
for (const file of walk(dist)) {
  if (!/\.(js|css|html|svg|json|txt|map|wasm)$/.test(file)) continue;
  const raw = readFileSync(file);
  if (raw.length < 1024) continue;
  const hashed = relative(dist, file).startsWith('assets');
  const sizes = [];
  for (const [suffix, compress] of Object.entries(compressors)) {
    const cached = join(cache, `${basename(file)}.${suffix}`);
    let packed;
    if (hashed && existsSync(cached)) packed = readFileSync(cached);
    else {
      packed = compress(raw);
      if (hashed) {
        mkdirSync(cache, { recursive: true });
        writeFileSync(cached, packed);
      }
    }
    if (packed.length < raw.length) writeFileSync(`${file}.${suffix}`, packed);
    sizes.push(`${suffix === 'br' ? 'brotli' : 'gzip'} ${packed.length} B`);
  }
  console.log(`${file}: ${raw.length} B, ${sizes.join(', ')}`);
}
