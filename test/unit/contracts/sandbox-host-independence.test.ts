/**
 * Gas is consensus: the same call must cost the same on every node, whatever
 * the machine. The engine must therefore not see its host: not the program's
 * path, its time zone, its language or its clock (the Emscripten glue would
 * otherwise copy them into the engine's memory, shifting every allocation).
 * Each run below is a separate process with another path, time zone and
 * language; every gas figure and outcome must be identical.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/dev-node.js';

const dir = mkdtempSync(join(tmpdir(), 'cloister-host-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCRIPT = `
import { ContractRuntime } from ${JSON.stringify(join(ROOT, 'dist/contracts/sandbox/index.js'))};
import { loadBundleFromDir } from ${JSON.stringify(join(ROOT, 'dist/contracts/bundle/index.js'))};
const runtime = await ContractRuntime.create();
const state = new Map();
const access = { get: (k) => (state.has(k) ? JSON.parse(state.get(k)) : null), set: (k, v) => void state.set(k, JSON.stringify(v)), delete: (k) => void state.delete(k) };
const ctx = (readonly = false) => ({ contract: 'c', caller: 'ab'.repeat(32), blockHeight: 1, blockTime: 1_700_000_000_000, readonly });
const out = [];
const token = await loadBundleFromDir(${JSON.stringify(join(ROOT, 'contracts/examples/token'))});
out.push(runtime.deploy(token, ['ab'.repeat(32)], ctx(), 1_000_000, access));
out.push(runtime.call(token, 'mint', ['cd'.repeat(32), 100], ctx(), 1_000_000, access));
out.push(runtime.call(token, 'transfer', ['ef'.repeat(32), 1], ctx(), 1_000_000, access));
const hostile = await loadBundleFromDir(${JSON.stringify(join(ROOT, 'test/fixtures/contracts/hostile'))});
out.push(runtime.call(hostile, 'allocate', [], ctx(), 50_000_000, access));
out.push(runtime.call(hostile, 'spin', [], ctx(), 300_000, access));
console.log(JSON.stringify(out.map((o) => ({ status: o.status, gasUsed: o.gasUsed, code: o.error?.code ?? null }))));
`;

function runIn(subdir: string, env: Record<string, string>): string {
  const where = join(dir, subdir);
  mkdirSync(where, { recursive: true });
  const script = join(where, 'run.mjs');
  writeFileSync(script, SCRIPT);
  const out = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, ...env } });
  expect(out.stderr).toBe('');
  return out.stdout.trim();
}

describe('the contract engine does not see its host', () => {
  it('costs the same gas and fails at the same point under another path, time zone and language', () => {
    const a = runIn('a', { TZ: 'UTC', LANG: 'C' });
    const b = runIn('a-much-longer-directory-name/with/several/levels/below/it', { TZ: 'Asia/Kolkata', LANG: 'fr_FR.UTF-8', LC_ALL: 'fr_FR.UTF-8' });
    const c = runIn('c', { TZ: 'America/St_Johns', LANG: 'ja_JP.UTF-8' });
    expect(JSON.parse(a)).toHaveLength(5);
    expect(b).toBe(a);
    expect(c).toBe(a);
  }, 60_000);
});
