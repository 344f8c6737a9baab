import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StaticPage } from '../rpc/static-pages.js';

/** Where `npm run build` puts the bundled page (scripts/build-explorer.mjs): dist/explorer, beside dist/node. */
const ASSET_DIR = join(import.meta.dirname, '../../explorer');

const FILES: [path: string, file: string, contentType: string][] = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/explorer.js', 'explorer.js', 'text/javascript; charset=utf-8'],
  ['/explorer.css', 'explorer.css', 'text/css; charset=utf-8'],
  ['/explorer-verifier.js', 'explorer-verifier.js', 'text/javascript; charset=utf-8'],
];

/** The explorer's files by path, read once; null when the build did not make them. */
export function explorerPages(dir = ASSET_DIR): ReadonlyMap<string, StaticPage> | null {
  if (!FILES.every(([, file]) => existsSync(join(dir, file)))) return null;
  return new Map(FILES.map(([path, file, contentType]) => [path, { contentType, body: readFileSync(join(dir, file)) }]));
}
