import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The sealed identity blob, or null when the node has none yet. */
export async function readSealedIdentity(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Replaces the sealed identity atomically and durably (write, fsync, rename):
 * a crash leaves either the old blob or the new one, never a torn file. The
 * enclave's signature is released only after this resolves, so a restarted
 * node never forgets what it signed.
 */
export async function writeSealedIdentity(file: string, sealed: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(sealed);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}
