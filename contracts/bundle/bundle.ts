import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalBytes, sha256Hex } from '../../consensus/index.js';
import { ContractError } from './errors.js';
import { LONE_SURROGATE_RE, parseManifest, type ContractManifest } from './manifest.js';

/**
 * A contract as it is deployed, approved and measured: the validated manifest
 * and the exact text of contract.js (an ES module, see contracts/sandbox/README.md).
 * Bundles returned by parseBundle / loadBundleFromDir are deeply frozen; the
 * sandbox caches compiled bundles by object identity and assumes they never change.
 */
export interface ContractBundle {
  readonly manifest: ContractManifest;
  readonly code: string;
}

export const MANIFEST_FILE = 'manifest.json';
export const CODE_FILE = 'contract.js';
/** Largest contract.js accepted, in UTF-8 bytes. */
export const MAX_CODE_BYTES = 512 * 1024;
/** Largest manifest.json accepted, in bytes. */
export const MAX_MANIFEST_BYTES = 64 * 1024;

const BUNDLE_KEYS = new Set(['manifest', 'code']);

/**
 * Checks contract source text. The text is hashed exactly as given; nothing is
 * normalised (no line-ending or Unicode normalisation, no trimming). Rejected:
 * - a leading byte order mark (U+FEFF): editors and decoders strip it silently, so
 *   the same file could otherwise hash differently depending on how it was read;
 * - U+0000 (the engine's C API would truncate there);
 * - lone surrogates (not encodable as UTF-8, so no file could contain them);
 * - empty text, or more than MAX_CODE_BYTES bytes of UTF-8.
 */
export function validateCode(code: unknown): string {
  if (typeof code !== 'string') throw new ContractError('CODE_INVALID', 'contract code must be a string');
  if (code.length === 0) throw new ContractError('CODE_INVALID', 'contract code is empty');
  if (code.charCodeAt(0) === 0xfeff) {
    throw new ContractError('CODE_INVALID', 'contract code starts with a byte order mark (U+FEFF); save contract.js as UTF-8 without BOM');
  }
  if (code.includes('\u0000')) throw new ContractError('CODE_INVALID', 'contract code contains a NUL character');
  if (LONE_SURROGATE_RE.test(code)) throw new ContractError('CODE_INVALID', 'contract code contains a lone surrogate');
  const bytes = Buffer.byteLength(code, 'utf8');
  if (bytes > MAX_CODE_BYTES) throw new ContractError('CODE_INVALID', `contract code is ${bytes} bytes; the limit is ${MAX_CODE_BYTES}`);
  return code;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

/**
 * Validates `{ manifest, code }` (manifest as parsed JSON, code as text) and
 * returns a frozen ContractBundle. Throws ContractError.
 */
export function parseBundle(input: unknown): ContractBundle {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ContractError('BUNDLE_INVALID', 'a bundle must be an object { manifest, code }');
  }
  for (const key of Object.keys(input)) {
    if (!BUNDLE_KEYS.has(key)) throw new ContractError('BUNDLE_INVALID', `unknown bundle field "${key}"`);
  }
  const { manifest, code } = input as { manifest?: unknown; code?: unknown };
  return deepFreeze({ manifest: parseManifest(manifest), code: validateCode(code) });
}

/**
 * The bundle's measurement: lowercase hex SHA-256 of canonicalBytes({ code, manifest }),
 * i.e. of the canonical JSON `{"code":"<contract.js text>","manifest":{...}}` in UTF-8.
 * Anyone can recompute it from the two files (see contracts/sandbox/README.md).
 */
export function bundleMeasurement(bundle: ContractBundle): string {
  return sha256Hex(canonicalBytes({ code: bundle.code, manifest: bundle.manifest }));
}

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function readBundleFile(dir: string, file: string, maxBytes: number): Promise<Buffer> {
  const path = join(dir, file);
  let bytes: Buffer;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ContractError('BUNDLE_INVALID', `${path} is not a regular file`);
    if (info.size > maxBytes) {
      throw new ContractError(file === CODE_FILE ? 'CODE_INVALID' : 'MANIFEST_INVALID', `${path} is ${info.size} bytes; the limit is ${maxBytes}`);
    }
    bytes = await readFile(path);
  } catch (err) {
    if (err instanceof ContractError) throw err;
    if (isNotFound(err)) throw new ContractError('BUNDLE_NOT_FOUND', `${path} does not exist`, { cause: err });
    throw err;
  }
  return bytes;
}

/**
 * Reads a bundle directory: `manifest.json` and `contract.js` (other files are
 * not part of the bundle and are ignored). contract.js must be valid UTF-8
 * without a byte order mark; its text is used exactly as stored.
 */
export async function loadBundleFromDir(dir: string): Promise<ContractBundle> {
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    if (isNotFound(err)) throw new ContractError('BUNDLE_NOT_FOUND', `bundle directory ${dir} does not exist`, { cause: err });
    throw err;
  }
  if (!info.isDirectory()) throw new ContractError('BUNDLE_NOT_FOUND', `${dir} is not a directory`);

  const manifestBytes = await readBundleFile(dir, MANIFEST_FILE, MAX_MANIFEST_BYTES);
  let manifestJson: unknown;
  try {
    manifestJson = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(manifestBytes));
  } catch (err) {
    throw new ContractError('MANIFEST_INVALID', `${join(dir, MANIFEST_FILE)} is not valid UTF-8 JSON: ${(err as Error).message}`, { cause: err });
  }

  const codeBytes = await readBundleFile(dir, CODE_FILE, MAX_CODE_BYTES);
  let code: string;
  try {
    // ignoreBOM keeps a byte order mark in the text so that validateCode can reject it.
    code = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(codeBytes);
  } catch (err) {
    throw new ContractError('CODE_INVALID', `${join(dir, CODE_FILE)} is not valid UTF-8`, { cause: err });
  }
  return parseBundle({ manifest: manifestJson, code });
}
