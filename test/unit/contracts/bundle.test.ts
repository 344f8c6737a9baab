import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bundleMeasurement,
  ContractError,
  loadBundleFromDir,
  MAX_CODE_BYTES,
  parseBundle,
  parseManifest,
  validateCode,
  type ContractErrorCode,
} from '../../../contracts/bundle/index.js';

const EXAMPLES = join(import.meta.dirname, '../../../contracts/examples');

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cloister-bundle-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeBundle(name: string, manifest: string | Buffer, code: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await mkdir(path, { recursive: true });
  await writeFile(join(path, 'manifest.json'), manifest);
  await writeFile(join(path, 'contract.js'), code);
  return path;
}

function errorCode(fn: () => unknown): ContractErrorCode | 'no error' {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ContractError);
    return (err as ContractError).code;
  }
  return 'no error';
}

async function asyncErrorCode(promise: Promise<unknown>): Promise<ContractErrorCode | 'no error'> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ContractError);
    return (err as ContractError).code;
  }
  return 'no error';
}

const MANIFEST = {
  name: 'counter',
  version: '1.0.0',
  description: 'counts',
  methods: { increment: { readonly: false, description: 'adds one' }, get: { readonly: true } },
};

describe('loading bundles from disk', () => {
  it('loads the example bundles', async () => {
    for (const name of ['counter', 'token', 'analytics']) {
      const bundle = await loadBundleFromDir(join(EXAMPLES, name));
      expect(bundle.manifest.name).toBe(name);
      expect(bundle.code).toBe(await readFile(join(EXAMPLES, name, 'contract.js'), 'utf8'));
      expect(Object.isFrozen(bundle)).toBe(true);
      expect(Object.isFrozen(bundle.manifest.methods)).toBe(true);
    }
  });

  it('measures the canonical bundle bytes, recomputable from the two files', async () => {
    const path = join(EXAMPLES, 'token');
    const bundle = await loadBundleFromDir(path);
    // Independent recomputation: canonical JSON is sorted keys, no whitespace.
    const manifest = JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8')) as unknown;
    const sortKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(sortKeys)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]))
          : v;
    const text = JSON.stringify({ code: await readFile(join(path, 'contract.js'), 'utf8'), manifest: sortKeys(manifest) });
    const expected = createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
    expect(bundleMeasurement(bundle)).toBe(expected);
    expect(bundleMeasurement(bundle)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives a stable measurement that changes with any byte of code or manifest', async () => {
    const code = 'export function get() { return 1; }\nexport function increment() { return 2; }\n';
    const a = await writeBundle('a', JSON.stringify(MANIFEST, null, 2), code);
    const b = await writeBundle('b', JSON.stringify(MANIFEST), code); // formatting of manifest.json does not matter
    const c = await writeBundle('c', JSON.stringify(MANIFEST), code.replace('return 1', 'return 3'));
    const d = await writeBundle('d', JSON.stringify(MANIFEST), code + ' ');
    const e = await writeBundle('e', JSON.stringify({ ...MANIFEST, version: '1.0.1' }), code);
    const f = await writeBundle('f', JSON.stringify(MANIFEST), code.replace(/\n/g, '\r\n')); // no newline normalisation
    const m = async (p: string): Promise<string> => bundleMeasurement(await loadBundleFromDir(p));
    expect(await m(a)).toBe(await m(a));
    expect(await m(b)).toBe(await m(a));
    const all = [await m(a), await m(c), await m(d), await m(e), await m(f)];
    expect(new Set(all).size).toBe(5);
  });

  it('rejects a byte order mark, invalid UTF-8, NUL and oversized code', async () => {
    const manifest = JSON.stringify(MANIFEST);
    const good = 'export function get() {} export function increment() {}';
    const bom = await writeBundle('bom', manifest, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good)]));
    expect(await asyncErrorCode(loadBundleFromDir(bom))).toBe('CODE_INVALID');
    const latin1 = await writeBundle('latin1', manifest, Buffer.from([...Buffer.from(good), 0x2f, 0x2f, 0xe9, 0x0a]));
    expect(await asyncErrorCode(loadBundleFromDir(latin1))).toBe('CODE_INVALID');
    const nul = await writeBundle('nul', manifest, `${good}\u0000`);
    expect(await asyncErrorCode(loadBundleFromDir(nul))).toBe('CODE_INVALID');
    const big = await writeBundle('big', manifest, `${good}//${'x'.repeat(MAX_CODE_BYTES)}`);
    expect(await asyncErrorCode(loadBundleFromDir(big))).toBe('CODE_INVALID');
    const utf8 = await writeBundle('utf8', manifest, `${good} // é 😀`);
    expect((await loadBundleFromDir(utf8)).code).toBe(`${good} // é 😀`);
  });

  it('reports missing directories and files, and bad manifest JSON', async () => {
    expect(await asyncErrorCode(loadBundleFromDir(join(dir, 'does-not-exist')))).toBe('BUNDLE_NOT_FOUND');
    const noCode = join(dir, 'no-code');
    await mkdir(noCode);
    await writeFile(join(noCode, 'manifest.json'), JSON.stringify(MANIFEST));
    expect(await asyncErrorCode(loadBundleFromDir(noCode))).toBe('BUNDLE_NOT_FOUND');
    const noManifest = join(dir, 'no-manifest');
    await mkdir(noManifest);
    await writeFile(join(noManifest, 'contract.js'), 'export function get() {}');
    expect(await asyncErrorCode(loadBundleFromDir(noManifest))).toBe('BUNDLE_NOT_FOUND');
    expect(await asyncErrorCode(loadBundleFromDir(join(noManifest, 'contract.js')))).toBe('BUNDLE_NOT_FOUND');
    const badJson = await writeBundle('bad-json', '{"name": "counter",', 'export function get() {}');
    expect(await asyncErrorCode(loadBundleFromDir(badJson))).toBe('MANIFEST_INVALID');
  });
});

describe('manifest validation', () => {
  it('accepts a valid manifest and normalises it', () => {
    const parsed = parseManifest(JSON.parse(JSON.stringify(MANIFEST)));
    expect(parsed).toEqual(MANIFEST);
    const minimal = parseManifest({ name: 'x', version: '0.1.0-rc.1+build.5', methods: { f: { readonly: true } } });
    expect(minimal).toEqual({ name: 'x', version: '0.1.0-rc.1+build.5', methods: { f: { readonly: true } } });
    expect('description' in minimal).toBe(false);
  });

  it('rejects everything outside the schema with MANIFEST_INVALID', () => {
    const bad: unknown[] = [
      null,
      [],
      'counter',
      { ...MANIFEST, extra: 1 },
      { ...MANIFEST, name: 'Counter' },
      { ...MANIFEST, name: '1counter' },
      { ...MANIFEST, name: 'x'.repeat(65) },
      { ...MANIFEST, name: undefined },
      { ...MANIFEST, version: '1.0' },
      { ...MANIFEST, version: 'v1.0.0' },
      { ...MANIFEST, version: 1 },
      { ...MANIFEST, description: 7 },
      { ...MANIFEST, description: 'x'.repeat(1025) },
      { ...MANIFEST, description: 'lone \ud800' },
      { ...MANIFEST, methods: [] },
      { ...MANIFEST, methods: {} },
      { ...MANIFEST, methods: { init: { readonly: false } } },
      { ...MANIFEST, methods: { 'bad-name': { readonly: true } } },
      { ...MANIFEST, methods: { '9lives': { readonly: true } } },
      { ...MANIFEST, methods: { get: { readonly: 'yes' } } },
      { ...MANIFEST, methods: { get: {} } },
      { ...MANIFEST, methods: { get: { readonly: true, payable: true } } },
      { ...MANIFEST, methods: { get: true } },
      { ...MANIFEST, methods: { init: { readonly: true }, get: { readonly: true } } },
      { ...MANIFEST, methods: JSON.parse('{"__proto__": {"readonly": true}}') as unknown },
      { ...MANIFEST, methods: { constructor: { readonly: true } } },
    ];
    for (const manifest of bad) {
      expect(errorCode(() => parseManifest(manifest)), JSON.stringify(manifest)).toBe('MANIFEST_INVALID');
    }
  });

  it('accepts init as a non-readonly method next to others', () => {
    const m = parseManifest({ ...MANIFEST, methods: { init: { readonly: false }, get: { readonly: true } } });
    expect(Object.keys(m.methods)).toEqual(['init', 'get']);
  });
});

describe('bundle objects', () => {
  it('validates { manifest, code } and freezes the result', () => {
    const bundle = parseBundle({ manifest: MANIFEST, code: 'export function get() {}' });
    expect(Object.isFrozen(bundle.manifest)).toBe(true);
    expect(errorCode(() => parseBundle({ manifest: MANIFEST, code: 'x', extra: 1 }))).toBe('BUNDLE_INVALID');
    expect(errorCode(() => parseBundle(null))).toBe('BUNDLE_INVALID');
    expect(errorCode(() => parseBundle({ manifest: MANIFEST, code: 5 }))).toBe('CODE_INVALID');
    expect(errorCode(() => parseBundle({ manifest: { name: 'x' }, code: 'x' }))).toBe('MANIFEST_INVALID');
  });

  it('checks code text', () => {
    expect(validateCode('export function f() {}')).toBe('export function f() {}');
    for (const code of ['', '\ufeffexport {}', 'a\u0000b', 'lone \udc00']) {
      expect(errorCode(() => validateCode(code))).toBe('CODE_INVALID');
    }
  });

  it('measures programmatic and loaded bundles the same way', async () => {
    const path = join(EXAMPLES, 'counter');
    const loaded = await loadBundleFromDir(path);
    const manual = parseBundle({
      manifest: JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8')) as unknown,
      code: await readFile(join(path, 'contract.js'), 'utf8'),
    });
    expect(bundleMeasurement(manual)).toBe(bundleMeasurement(loaded));
  });
});
