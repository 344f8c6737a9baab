// Bundles the explorer page (node/explorer/page) for the browser into dist/explorer: one script, one
// stylesheet, one HTML file. The page is typechecked against the DOM with its own tsconfig first.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const page = join(root, 'node/explorer/page');
const out = join(root, 'dist/explorer');

execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(page, 'tsconfig.json')], { stdio: 'inherit' });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(page, 'main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  outfile: join(out, 'explorer.js'),
  logLevel: 'warning',
});
// The receipt verifier (node/proofs), the same code the CLI runs, built for the browser: node:crypto is
// replaced by noble's SHA-2, ed25519 and P-384 (node/explorer/browser/node-crypto.cjs), Buffer by the buffer package.
const browser = join(root, 'node/explorer/browser');
const nodeBuiltins = {
  name: 'node-builtins-for-the-browser',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: join(browser, args.path === 'node:crypto' ? 'node-crypto.cjs' : 'node-unavailable.cjs') }));
  },
};
await build({
  entryPoints: [join(browser, 'verifier-entry.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  outfile: join(out, 'explorer-verifier.js'),
  plugins: [nodeBuiltins],
  inject: [join(browser, 'buffer-global.js')],
  logLevel: 'warning',
});
copyFileSync(join(page, 'index.html'), join(out, 'index.html'));
copyFileSync(join(page, 'explorer.css'), join(out, 'explorer.css'));
