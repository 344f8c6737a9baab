/**
 * Gossip and sync reach only admitted peers. A admits peers by a set the test
 * controls; B and X use the default (every allowed peer), so they send and take
 * anything — X plays a connected validator identity whose enclave A does not
 * (or no longer) admit. Topology B — A — X: what X gets, A sent to it.
 *
 * The gossip rule is enforced by hooks on gossipsub 17.1.1 internals
 * (node/network/admitted-only-gossip.ts). These tests put X where gossipsub
 * itself would send to it (in the mesh, with a high score) and record every RPC
 * X receives, so they fail if a hook stops being on gossipsub's path.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../../../consensus/index.js';
import { NetworkError, encodeTxBatch, restrictGossipToAdmitted, type NetworkService } from '../../../../node/network/index.js';
import { CHAIN, fakeTx, startCluster, waitFor, type Cluster } from './helpers.js';

interface Rpc {
  subscriptions?: unknown[];
  messages?: { data?: Uint8Array }[];
  control?: Record<string, unknown[] | undefined>;
}
interface Gossipsub {
  score: { score(id: string): number };
  mesh: Map<string, Set<string>>;
  gossip: Map<string, unknown>;
  handleReceivedRpc(from: { toString(): string }, rpc: Rpc): Promise<void>;
  handleControlMessage(id: string, control: Rpc['control']): Promise<void>;
  sendRpc(id: string, rpc: Rpc): boolean;
}

/** The service's gossipsub instance (internals, on purpose: this is what the hooks rely on). */
function gossipsubOf(s: NetworkService): Gossipsub {
  return (s as unknown as { node: { services: { pubsub: Gossipsub } } }).node.services.pubsub;
}

let cluster: Cluster;
let A: NetworkService;
let B: NetworkService;
let X: NetworkService;
let idA: string;
let idB: string;
let idX: string;
const admittedAtA = new Set<string>();
/** Every RPC X received from A, and the messages A, B and X delivered to their handlers. */
const toX: Rpc[] = [];
const delivered = { A: [] as string[], B: [] as string[], X: [] as string[] };

function vote(n: number): Uint8Array {
  return canonicalBytes({ type: 'vote', chainId: CHAIN, n });
}
const label = (data: Uint8Array): string => Buffer.from(data).toString('utf8');
const messageIdsIn = (rpc: Rpc): number =>
  ['ihave', 'iwant', 'idontwant'].reduce((n, k) => n + (rpc.control?.[k] ?? []).length, 0);

beforeAll(async () => {
  cluster = await startCluster(3, {}, (i) => (i === 0 ? { isAdmitted: (id: string) => admittedAtA.has(id) } : {}));
  [A, B, X] = cluster.nodes as [NetworkService, NetworkService, NetworkService];
  [idA, idB, idX] = cluster.ids as [string, string, string];
  admittedAtA.add(idB).add(idX);
  for (const [s, name] of [[A, 'A'], [B, 'B'], [X, 'X']] as const) {
    s.onTxBatch((e) => void delivered[name].push(...e.txs.map((t) => `tx ${t.nonce}`)));
    s.onConsensus((e) => void delivered[name].push(label(e.data)));
  }
  const xps = gossipsubOf(X);
  const receive = xps.handleReceivedRpc.bind(xps);
  xps.handleReceivedRpc = (from, rpc) => {
    if (from.toString() === idA) toX.push(rpc);
    return receive(from, rpc);
  };
  A.addPeer(B.addresses()[0]!);
  A.addPeer(X.addresses()[0]!);
  B.addPeer(A.addresses()[0]!);
  X.addPeer(A.addresses()[0]!);
  await waitFor(
    () => A.subscribers('consensus').length === 2 && B.subscribers('consensus').length === 1 && X.subscribers('consensus').length === 1,
    5000,
    'B — A — X subscribed',
  );
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('gossip with admitted peers only', () => {
  it('sends a peer that is not admitted no message and no message id on any path, even where gossipsub would', async () => {
    // While admitted, X gets what A publishes.
    await A.publishConsensus(vote(1));
    await waitFor(() => delivered.X.includes(label(vote(1))), 5000, 'X gets gossip while admitted');

    admittedAtA.delete(idX);
    A.admissionChanged(idX);
    // Where gossipsub alone would still send to X: in the mesh of both topics, with a high score.
    const aps = gossipsubOf(A);
    const score = aps.score.score.bind(aps.score);
    aps.score.score = (id) => (id === idX ? 100 : score(id));
    for (const topic of [A.txTopic, A.consensusTopic]) aps.mesh.get(topic)!.add(idX);
    const before = toX.length;
    const withheld = A.admittedOnlyStats().withheld;

    // 1. Publish (flood publish to every topic peer above the publish threshold).
    await A.publishTxBatch([fakeTx(2)]);
    await A.publishConsensus(vote(2));
    // 2. Forwarding (to mesh peers, no score check): B's messages, relayed by A. The batch is over
    //    512 bytes, so A also sends IDONTWANT (its message id) to its other mesh peers, in a batch send.
    await B.publishTxBatch([fakeTx(3), fakeTx(4), fakeTx(5)]);
    await B.publishConsensus(vote(3));
    await waitFor(() => delivered.B.includes('tx 2') && delivered.A.includes(label(vote(3))) && delivered.A.includes('tx 3'), 5000, 'gossip between A and B');
    // 3. An IWANT answer (a message from A's cache, asked for by id).
    const id = createHash('sha256').update(vote(2)).digest();
    await aps.handleControlMessage(idX, { iwant: [{ messageIDs: [id] }] } as unknown as Rpc['control']);
    // 4. IHAVE gossip queued for X (message ids), piggybacked on the next RPC to it (here a subscription).
    aps.gossip.set(idX, [{ topicID: A.consensusTopic, messageIDs: [id] }]);
    expect(aps.sendRpc(idX, { subscriptions: [{ subscribe: true, topic: A.consensusTopic }], messages: [] })).toBe(true);
    await A.publishConsensus(vote(4));
    await waitFor(() => delivered.B.includes(label(vote(4))), 5000, 'B gets vote 4');

    expect(A.admittedOnlyStats().withheld - withheld).toBeGreaterThanOrEqual(5);
    const sent = toX.slice(before);
    expect(sent.flatMap((rpc) => rpc.messages ?? [])).toEqual([]);
    expect(sent.map(messageIdsIn).reduce((a, b) => a + b, 0)).toBe(0);
    expect(delivered.X.filter((m) => m !== label(vote(1)))).toEqual([]);
    aps.score.score = score;

    // Admitted again: gossip to X resumes (nothing sticks).
    admittedAtA.add(idX);
    A.admissionChanged(idX);
    await A.publishConsensus(vote(5));
    await waitFor(() => delivered.X.includes(label(vote(5))), 5000, 'X gets gossip once admitted again');
  });

  it('takes nothing from a peer that is not admitted: not delivered, not relayed, not even marked seen', async () => {
    admittedAtA.delete(idX);
    A.admissionChanged(idX);
    const dropped = A.admittedOnlyStats().dropped;
    const batch = encodeTxBatch(CHAIN, [fakeTx(10)]);
    expect(await X.publishRaw('tx', batch)).toBe(1);
    expect(await X.publishConsensus(vote(10))).toBe(1);
    await waitFor(() => A.admittedOnlyStats().dropped - dropped === 2, 5000, 'A drops X messages');
    // Dropped before validation: the topic validators never saw them.
    const stats = A.stats();
    expect(stats.tx.reasons.relayer_not_admitted ?? 0).toBe(0);
    expect(stats.consensus.reasons.relayer_not_admitted ?? 0).toBe(0);
    // The same bytes from an admitted peer are taken: A did not mark them as seen.
    await B.publishRaw('tx', batch);
    await B.publishConsensus(vote(10));
    await waitFor(() => delivered.A.includes('tx 10') && delivered.A.includes(label(vote(10))), 5000, 'A takes them from B');
    expect(delivered.B.filter((m) => m === 'tx 10' || m === label(vote(10)))).toEqual([]); // B published them itself
    admittedAtA.add(idX);
    A.admissionChanged(idX);
  });

  it('serves and sends sync requests to admitted peers only; admission is open to every connected peer', async () => {
    let served = 0;
    A.handle(async () => {
      served++;
      return new TextEncoder().encode('{"height":7}');
    });
    A.handleAdmission(async () => new TextEncoder().encode('{"claim":true}'));
    admittedAtA.delete(idX);
    await expect(A.request(idX, new TextEncoder().encode('{"type":"status"}'))).rejects.toMatchObject({ code: 'PEER_NOT_ADMITTED' });
    await expect(X.request(idA, new TextEncoder().encode('{"type":"status"}'), { timeoutMs: 3000 })).rejects.toBeInstanceOf(NetworkError);
    expect(served).toBe(0);
    expect(new TextDecoder().decode(await X.exchangeAdmission(idA, new TextEncoder().encode('{"challenge":"c"}')))).toBe('{"claim":true}');
    expect(new TextDecoder().decode(await B.request(idA, new TextEncoder().encode('{"type":"status"}')))).toBe('{"height":7}');
    expect(served).toBe(1);
    admittedAtA.add(idX);
    A.handle(undefined);
    A.handleAdmission(undefined);
  });

  it('refuses to install on a gossipsub without the hooked internals', () => {
    expect(() => restrictGossipToAdmitted({ sendRpc() {} }, () => true)).toThrow(expect.objectContaining({ code: 'INTERNALS_CHANGED' }));
  });
});
