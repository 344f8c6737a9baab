/**
 * Idle unauthenticated sockets cannot keep a member out (real libp2p on
 * 127.0.0.1, where the attacker and the member share one address). With
 * libp2p's defaults, 10 idle sockets fill its global pending-inbound limit for
 * 10 s each and a trickle of new ones keeps it full; see inbound-guard.ts.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetworkService } from '../../../../node/network/index.js';
import { startCluster, waitFor, type Cluster } from './helpers.js';

const UPGRADE_TIMEOUT_MS = 1000;

interface IdleSocket {
  socket: Socket;
  openedAt: number;
  closedAt?: number;
}

let cluster: Cluster;
const sockets: IdleSocket[] = [];
let attacking = true;

/** An idle socket; when the node closes it, the attacker opens another 100 ms later (it keeps its 40 open). */
function openIdle(port: number, reopen: boolean): void {
  const entry: IdleSocket = { socket: connect(port, '127.0.0.1'), openedAt: Date.now() };
  entry.socket.on('error', () => undefined);
  entry.socket.on('close', () => {
    entry.closedAt = Date.now();
    if (reopen && attacking) setTimeout(() => attacking && openIdle(port, true), 100);
  });
  sockets.push(entry);
}

beforeAll(async () => {
  cluster = await startCluster(2, { inboundUpgradeTimeoutMs: UPGRADE_TIMEOUT_MS });
}, 30_000);

afterAll(async () => {
  attacking = false;
  for (const s of sockets) s.socket.destroy();
  await cluster?.stop();
});

describe('inbound connections before authentication', () => {
  it('40 idle sockets kept open and a steady trickle: a member still connects at once; the node closes every idle socket within the upgrade timeout', async () => {
    const [member, node] = cluster.nodes as [NetworkService, NetworkService];
    const port = Number(node.addresses()[0]!.split('/')[4]);
    for (let i = 0; i < 40; i++) openIdle(port, true);
    const trickle = setInterval(() => openIdle(port, false), 100);
    try {
      // A second of trickle first: the member arrives while idle sockets keep coming.
      await waitFor(() => sockets.length >= 80, 5000, 'a second of attack');
      // An explicit dial: the connection is inbound at `node`, which is under attack.
      await member.connect(node.addresses()[0]!, 5000);
      await waitFor(() => node.peers().some((p) => p.id === member.peerId), 5000, 'the member to be connected');
      expect(node.connectionCount(member.peerId)).toBe(1);
    } finally {
      attacking = false;
      clearInterval(trickle);
    }
    await waitFor(() => sockets.every((s) => s.closedAt !== undefined), 4 * UPGRADE_TIMEOUT_MS + 5000, 'the node to close every idle socket');
    const longest = Math.max(...sockets.map((s) => s.closedAt! - s.openedAt));
    const stats = node.inboundStats();
    console.info(`inbound: ${sockets.length} idle sockets, longest open ${longest} ms (timeout ${UPGRADE_TIMEOUT_MS} ms), guard ${JSON.stringify(stats)}`);
    // Closed by the timeout, not libp2p's default 10 s (slack for a loaded machine).
    expect(longest).toBeLessThan(UPGRADE_TIMEOUT_MS + 2500);
    expect(stats.displaced).toBeGreaterThan(0);
    expect(stats.pending).toBe(0);
  });
});
