import { afterEach } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import type { SignedTx } from '../../../../consensus/index.js';
import { silentLogger } from '../../../../node/log/logger.js';
import { NetworkService, peerIdOf, type NetworkServiceOptions } from '../../../../node/network/index.js';

export const CHAIN = 'test-chain';

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function fakeTx(nonce: number, from = 'ab'.repeat(32)): SignedTx {
  return {
    chainId: CHAIN,
    from,
    nonce,
    contract: 'counter',
    method: 'inc',
    args: [nonce],
    gasLimit: 1000,
    signature: (nonce.toString(16).padStart(8, '0') + 'cd'.repeat(60)).slice(0, 128),
  };
}

export interface Cluster {
  nodes: NetworkService[];
  keys: PrivateKey[];
  ids: string[];
  stop(): Promise<void>;
}

/**
 * Starts `n` services on 127.0.0.1:0, all allowed to each other (plus `extraAllowed`),
 * then gives each the others' addresses and waits until every node sees every
 * other as a subscriber of both topics.
 */
export async function startCluster(
  n: number,
  opts: Partial<NetworkServiceOptions> = {},
  perNode: (i: number) => Partial<NetworkServiceOptions> = () => ({}),
): Promise<Cluster> {
  const keys = await Promise.all(Array.from({ length: n }, () => generateKeyPair('Ed25519')));
  const ids = keys.map(peerIdOf);
  const nodes = keys.map(
    (privateKey, i) =>
      new NetworkService({
        chainId: CHAIN,
        privateKey,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        peers: [],
        allowedPeerIds: ids,
        log: silentLogger,
        dialGraceMs: 1000,
        redialBaseMs: 50,
        ...opts,
        ...perNode(i),
      }),
  );
  const cluster: Cluster = { nodes, keys, ids, stop: () => Promise.all(nodes.map((s) => s.stop())).then(() => undefined) };
  try {
    await Promise.all(nodes.map((s) => s.start()));
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** Full mesh from configured peers. */
export async function connectAll(nodes: NetworkService[]): Promise<void> {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.addPeer(b.addresses()[0]!);
  await waitFor(
    () => nodes.every((a) => a.subscribers('tx').length === nodes.length - 1 && a.subscribers('consensus').length === nodes.length - 1),
    5000,
    'mesh',
  );
}

/**
 * For a test file's top level: returns startCluster, and stops every cluster it started after
 * each test of the file.
 */
export function clustersStoppedAfterEach(): (...args: Parameters<typeof startCluster>) => Promise<Cluster> {
  let clusters: Cluster[] = [];
  afterEach(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
    clusters = [];
  });
  return async (...args) => {
    const c = await startCluster(...args);
    clusters.push(c);
    return c;
  };
}
