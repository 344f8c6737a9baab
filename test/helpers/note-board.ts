import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A contract bundle directory for governance tests: a note board whose `post`
 * keeps a count in state and `count` reads it; version 2 adds `doubled`
 * (twice the count), so an upgrade that kept the state shows. Made in
 * `parent` (the caller removes it).
 */
export function noteBoard(parent: string, version: 1 | 2, name = 'notes'): string {
  const dir = join(parent, `${name}-v${version}`);
  mkdirSync(dir, { recursive: true });
  const methods: Record<string, { readonly: boolean }> = { post: { readonly: false }, count: { readonly: true } };
  if (version === 2) methods['doubled'] = { readonly: true };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ name, version: `${version}.0.0`, methods }));
  const code = [
    "export function post(text) { const n = (cloister.state.get('n') ?? 0) + 1; cloister.state.set('n', n); return n; }",
    "export function count() { return cloister.state.get('n') ?? 0; }",
    version === 2 ? 'export function doubled() { return 2 * count(); }' : '',
  ].join('\n');
  writeFileSync(join(dir, 'contract.js'), code + '\n');
  return dir;
}
