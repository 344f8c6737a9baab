import { mkdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';

/**
 * The few file operations the providers perform. The default is node:fs; tests
 * pass a wrapper around node:fs on a temporary directory that adds what the
 * kernel (configfs-tsm) or Gramine (/dev/attestation) does on each operation.
 */
export interface ProviderFs {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  /** One write of the whole buffer (configfs commits a binary attribute on close). */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  stat(path: string): Promise<{ isDirectory(): boolean }>;
}

export const nodeProviderFs: ProviderFs = {
  mkdir: async (path) => {
    await mkdir(path);
  },
  rmdir: (path) => rmdir(path),
  readFile: async (path) => new Uint8Array(await readFile(path)),
  writeFile: (path, data) => writeFile(path, data),
  stat: (path) => stat(path),
};

/** 64 bytes from 128 hex characters, or undefined. */
export function reportDataBytes(hex: unknown): Uint8Array | undefined {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{128}$/.test(hex)) return undefined;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

/** Serialises async sections (for interfaces whose state is process-global). */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}
