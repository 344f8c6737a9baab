import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../node/log/logger.js';
import { loadOrCreateNodeKey, NetworkService, peerIdOf } from '../../../../node/network/index.js';
import { CHAIN, clustersStoppedAfterEach, connectAll, startCluster } from './helpers.js';

const cluster = clustersStoppedAfterEach();

describe('request/response', () => {
  it('round trip, timeout on a silent handler, oversized response refused, admission both ways', async () => {
    const c = await cluster(2, { requestTimeoutMs: 2000 });
    await connectAll(c.nodes);
    const [a, b] = c.nodes as [NetworkService, NetworkService];
    b.handle(async (peer, req) => {
      const text = new TextDecoder().decode(req);
      if (text === 'silent') return new Promise<Uint8Array>(() => {});
      if (text === 'big') return new Uint8Array(10_000);
      return new TextEncoder().encode(`${peer === a.peerId ? 'from-a' : '?'}:${text}`);
    });
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(new TextDecoder().decode(await a.request(b.peerId, enc('block 7')))).toBe('from-a:block 7');
    const t0 = Date.now();
    await expect(a.request(b.peerId, enc('silent'), { timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(1500);
    await expect(a.request(b.peerId, enc('big'), { maxResponseBytes: 1024 })).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' });
    // the connection survives all of that
    expect(new TextDecoder().decode(await a.request(b.peerId, enc('again')))).toBe('from-a:again');
    // no handler on a: the request fails, it does not hang
    await expect(b.request(a.peerId, enc('x'), { timeoutMs: 1000 })).rejects.toBeTruthy();

    a.handleAdmission(async (_peer, evidence) => enc(`a-evidence-for:${new TextDecoder().decode(evidence)}`));
    b.handleAdmission(async () => enc('b-evidence'));
    expect(new TextDecoder().decode(await a.exchangeAdmission(b.peerId, enc('a-evidence')))).toBe('b-evidence');
    expect(new TextDecoder().decode(await b.exchangeAdmission(a.peerId, enc('b-evidence')))).toBe('a-evidence-for:b-evidence');
    await expect(a.request('12D3KooWnotallowed', enc('x'))).rejects.toMatchObject({ code: 'PEER_NOT_ALLOWED' });
  });
});

describe('identity and lifecycle', () => {
  it('the node key persists (mode 0600) and gives the same peer id after a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cloister-net-'));
    try {
      const file = join(dir, 'sub', 'node.key');
      const k1 = await loadOrCreateNodeKey(file);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const s1 = new NetworkService({ chainId: CHAIN, privateKey: k1, listen: ['/ip4/127.0.0.1/tcp/0'], peers: [], allowedPeerIds: [], log: silentLogger });
      await s1.start();
      const id1 = s1.peerId;
      await s1.stop();
      const k2 = await loadOrCreateNodeKey(file);
      const s2 = new NetworkService({ chainId: CHAIN, privateKey: k2, listen: ['/ip4/127.0.0.1/tcp/0'], peers: [], allowedPeerIds: [], log: silentLogger });
      await s2.start();
      expect(s2.peerId).toBe(id1);
      expect(peerIdOf(k2)).toBe(id1);
      expect(s2.addresses()[0]).toContain(`/p2p/${id1}`);
      await s2.stop();
      await writeFile(join(dir, 'bad.key'), 'garbage');
      await expect(loadOrCreateNodeKey(join(dir, 'bad.key'))).rejects.toThrow(/does not hold/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stop() is idempotent, prompt, and rejects later use', async () => {
    const c = await startCluster(2);
    await connectAll(c.nodes);
    const [a, b] = c.nodes as [NetworkService, NetworkService];
    b.handle(() => new Promise<Uint8Array>(() => {}));
    const pending = a.request(b.peerId, new Uint8Array([1]), { timeoutMs: 10_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    const t0 = Date.now();
    await Promise.all([a.stop(), a.stop(), b.stop()]);
    await a.stop();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await pending).toMatchObject({ code: 'STOPPED' });
    expect(() => a.addPeer(b.addresses()[0] ?? '/ip4/127.0.0.1/tcp/1')).toThrow();
    await expect(a.publishTxBatch([])).rejects.toMatchObject({ code: 'STOPPED' });
    expect(a.peers()).toEqual([]);
    // a stopped-before-start service stops cleanly too
    await new NetworkService({ chainId: CHAIN, privateKey: c.keys[0]!, listen: [], peers: [], allowedPeerIds: [], log: silentLogger }).stop();
  });
});
