import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { isHexOfLength, publicKeyFromPrivate, type Ed25519KeyPair } from '../../consensus/index.js';

/**
 * A key file is JSON: {"type": "ed25519", "publicKey": "<hex>", "privateKey": "<hex>"},
 * written with mode 0600. The private key is the 32-byte ed25519 seed.
 */
export interface KeyFile extends Ed25519KeyPair {
  type: 'ed25519';
}

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
  constructor(
    readonly code: 'KEY_FILE_MISSING' | 'KEY_FILE_INVALID' | 'KEY_FILE_EXISTS',
    message: string,
  ) {
    super(message);
  }
}

export function writeKeyFile(path: string, pair: Ed25519KeyPair, overwrite = false): void {
  if (!overwrite && existsSync(path)) throw new KeyFileError('KEY_FILE_EXISTS', `${path} already exists; refusing to overwrite a key`);
  const file: KeyFile = { type: 'ed25519', publicKey: pair.publicKey, privateKey: pair.privateKey };
  writeFileSync(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: overwrite ? 'w' : 'wx' });
}

export function readKeyFile(path: string): KeyFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new KeyFileError('KEY_FILE_MISSING', `cannot read key file ${path}`);
  }
  let parsed: Partial<KeyFile>;
  try {
    parsed = JSON.parse(text) as Partial<KeyFile>;
  } catch {
    throw new KeyFileError('KEY_FILE_INVALID', `${path} is not JSON`);
  }
  if (parsed.type !== 'ed25519' || !isHexOfLength(parsed.privateKey, 32) || !isHexOfLength(parsed.publicKey, 32)) {
    throw new KeyFileError('KEY_FILE_INVALID', `${path} is not an ed25519 key file`);
  }
  if (publicKeyFromPrivate(parsed.privateKey) !== parsed.publicKey) {
    throw new KeyFileError('KEY_FILE_INVALID', `${path}: the public key does not match the private key`);
  }
  return parsed as KeyFile;
}
