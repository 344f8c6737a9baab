import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SealedStore } from '../../../../node/enclave/sealed-store.js';
import { ROOT } from '../../../helpers/dev-node.js';

const dir = mkdtempSync(join(tmpdir(), 'cloister-sealed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the sealed identity store', () => {
  it('writes the two slots in turn, never the one the enclave opened first, and hands back what it holds', async () => {
    const file = join(dir, 'a', 'sealed-identity.json');
    const store = new SealedStore(file);
    expect(await store.open()).toEqual([]);
    store.startAfter(null);
    await store.write('one');
    await store.write('two');
    await store.write('three');
    await store.close();
    const [first, second] = store.paths;
    expect(readFileSync(first!, 'utf8')).toBe('three');
    expect(readFileSync(second!, 'utf8')).toBe('two');

    // Reopened, the enclave took slot 0 ("three"): the next seal goes to slot 1, and a shorter blob leaves no tail.
    const again = new SealedStore(file);
    expect(await again.open()).toEqual([
      { slot: 0, text: 'three' },
      { slot: 1, text: 'two' },
    ]);
    again.startAfter(0);
    await again.write('4');
    await again.close();
    expect(readFileSync(first!, 'utf8')).toBe('three');
    expect(readFileSync(second!, 'utf8')).toBe('4');
  });

  it('keeps recording seals when the process has run out of file descriptors (EMFILE)', () => {
    // A child process with a small descriptor limit opens the store, then takes every descriptor left.
    const script = join(dir, 'emfile.mjs');
    writeFileSync(
      script,
      `import { openSync } from 'node:fs';
       import { SealedStore } from ${JSON.stringify(join(ROOT, 'dist/node/enclave/sealed-store.js'))};
       const store = new SealedStore(${JSON.stringify(join(dir, 'b', 'sealed-identity.json'))});
       await store.open();
       store.startAfter(null);
       let held = 0, exhausted = false;
       try { for (;;) { openSync('/dev/null', 'r'); held++; } } catch (err) { exhausted = err.code === 'EMFILE'; }
       for (let i = 0; i < 10; i++) await store.write('seal ' + i);
       console.log(JSON.stringify({ exhausted, held }));`,
    );
    const out = spawnSync('sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${script}"`], { encoding: 'utf8' });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toMatchObject({ exhausted: true });
    expect(readFileSync(join(dir, 'b', 'sealed-identity.2.json'), 'utf8')).toBe('seal 9');
  });
});
