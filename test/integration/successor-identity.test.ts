/**
 * An upgraded node's enclave cannot open the identity the old program sealed;
 * it opens the successor identity the new program made for the handover. The
 * old slots are then left on disk but closed: their descriptors were held
 * until garbage collection ("Closing file descriptor N on garbage collection",
 * which Node says will become an error).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EnclaveHost } from '../../node/enclave/enclave-host.js';
import { measureEnclaveProgram } from '../../node/enclave/measurement.js';
import { VirtualPlatform, loadOrCreatePlatformSecret, loadOrCreateVirtualRoot } from '../../node/enclave/virtual-platform.js';
import { silentLogger } from '../../node/log/logger.js';
import { cleanupNodes, tempDir } from '../helpers/dev-node.js';

const hosts: EnclaveHost[] = [];
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await cleanupNodes();
});

/** The files this process holds open (Linux: /proc/self/fd). */
function openFiles(): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return []; // closed between the listing and the read
    }
  });
}

describe('the successor identity after an enclave upgrade', () => {
  it('is opened when the old program sealed the identity, and the old slots are closed, not left to the garbage collector', async () => {
    const dir = tempDir();
    const root = loadOrCreateVirtualRoot(join(dir, 'virtual-root.json'));
    const secret = loadOrCreatePlatformSecret(join(dir, 'platform-secret'));
    const measurement = measureEnclaveProgram().measurement;
    // The new program: another measurement on the same machine, so the old seal does not open for it.
    const upgraded = measurement.slice(0, -2) + (measurement.endsWith('00') ? '01' : '00');
    const host = (program: string, sealedFile: string): EnclaveHost => {
      const h = new EnclaveHost(new VirtualPlatform(root, program, secret), silentLogger, sealedFile);
      hosts.push(h);
      h.start();
      return h;
    };
    const oldFile = join(dir, 'sealed-identity.json');
    const successorFile = join(dir, 'successor-identity.json');

    const old = host(measurement, oldFile);
    const oldKeys = (await old.openIdentity()).publicKeys;
    await old.stop();
    const made = host(upgraded, successorFile);
    const successorKeys = (await made.openIdentity()).publicKeys;
    await made.stop();

    const restarted = host(upgraded, oldFile);
    const opened = await restarted.openIdentity(successorFile);
    expect(opened.successor).toBe(true);
    expect(opened.publicKeys.vote).toBe(successorKeys.vote);
    expect(opened.publicKeys.vote).not.toBe(oldKeys.vote);
    const held = openFiles();
    expect(held.filter((f) => f.startsWith(join(dir, 'sealed-identity')))).toEqual([]);
    expect(held.filter((f) => f.startsWith(join(dir, 'successor-identity'))).length).toBe(2);
    // The old program's record is untouched.
    expect(readFileSync(oldFile, 'utf8').length).toBeGreaterThan(0);
  });
});
