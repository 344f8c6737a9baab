/**
 * Fault tests with real processes: a 4-node consortium (n = 3f+1, f = 1), each
 * node its own `cloister node start` process, each scenario with a fresh
 * consortium. After every scenario the honest nodes hold identical committed
 * blocks and every acknowledged transaction has a receipt on each of them.
 *
 * On a failure the tail of every node's log is printed (CLOISTER_KEEP_TEST_DIRS=1
 * keeps the whole directory).
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createVirtualEvidence, generateVirtualRoot, reportDataFor } from '../../attestation/index.js';
import { nodePaths } from '../../node/config/node-config.js';
import { silentLogger } from '../../node/log/logger.js';
import { runCli } from '../helpers/dev-node.js';
import { NetworkService, loadOrCreateNodeKey, peerIdOf } from '../../node/network/index.js';
import {
  Consortium,
  ROOT,
  cleanupConsortia,
  makeModifiedProgram,
  measurementOf,
  sleep,
  waitUntil,
  type NetNode,
} from '../helpers/consortium.js';

afterEach((ctx) => cleanupConsortia({ printLogs: ctx.task.result?.state === 'fail' }), 30_000);

const TEST_TIMEOUT = 90_000;

async function started(indices?: number[]): Promise<Consortium> {
  const c = await Consortium.create({ nodes: 4 });
  await c.startAll(indices);
  return c;
}

describe('consortium faults (4 real node processes)', () => {
  it(
    'kill -9 one of four under load: the other three keep committing; the killed node restarts and catches up to the same blocks',
    async () => {
      const c = await started();
      await c.waitForHeights([1, 2, 3, 4], 1);
      const load = c.load().start();
      await load.waitForMoreAcked(100); // about 25 of them by node 4
      await c.waitForHeights([1, 2, 3, 4], 3);

      // kill -9 the moment node 4 acknowledged a transaction: that one must not be lost either.
      const lastOf4 = await c.killRightAfterAck(4);
      const atKill = await c.maxHeight([1, 2, 3]);
      await c.waitForHeights([1, 2, 3], atKill + 5);
      await load.waitForMoreAcked(30); // nodes 1-3 keep accepting while node 4 is down

      await c.start(4); // the same `node start --config`, on the same data
      const others = await c.maxHeight([1, 2, 3]);
      await c.waitForHeight(4, others, 45_000);
      await load.waitForMoreAcked(40); // node 4 takes transactions again
      const acked = [...(await load.stop()), lastOf4];

      console.info(`kill -9: ${acked.length} txs acknowledged (${acked.filter((t) => t.node === 4).length} by node 4), errors ${JSON.stringify(load.errors)}, height ${others}`);
      expect(acked.some((t) => t.node === 4)).toBe(true);
      await c.assertNoLostTxs(acked, [1, 2, 3, 4]);
      expect(await c.assertSameBlocks([1, 2, 3, 4])).toBeGreaterThanOrEqual(others);
    },
    TEST_TIMEOUT,
  );

  it(
    'two of four down: nothing commits and nothing forks; commits resume when one returns',
    async () => {
      const c = await started();
      await c.waitForHeights([1, 2, 3, 4], 1);
      // Load only on the nodes that stay up: everything they acknowledge must commit later.
      const load = c.load({ nodes: [1, 2] }).start();
      await load.waitForMoreAcked(20);
      await c.waitForHeights([1, 2, 3, 4], 3);

      await Promise.all([c.kill(3), c.kill(4)]);
      const atKill = await c.maxHeight([1, 2]);
      // Checking that nothing happens: a bounded wait is the check. A block whose
      // precommits were already on the wire may still land (at most one).
      await sleep(3000);
      const stalled = await c.maxHeight([1, 2]);
      expect(stalled).toBeLessThanOrEqual(atKill + 1);
      await c.assertSameBlocks([1, 2]);
      await load.waitForMoreAcked(5, 10_000); // the mempools still take transactions

      await c.start(3);
      await c.waitForHeights([1, 2, 3], stalled + 3, 60_000);
      const acked = await load.stop();
      console.info(`two down: height ${atKill} at the kill, ${stalled} after 3 s; ${acked.length} txs acknowledged, errors ${JSON.stringify(load.errors)}`);
      await c.assertNoLostTxs(acked, [1, 2, 3]);
      await c.assertSameBlocks([1, 2, 3]);
    },
    TEST_TIMEOUT,
  );

  it(
    'a node whose enclave program differs is refused with MEASUREMENT_NOT_ALLOWED; the chain goes on without it',
    async () => {
      const program = makeModifiedProgram();
      const [honest, modified] = await Promise.all([measurementOf(ROOT), measurementOf(program)]);
      expect(modified).not.toBe(honest);

      const c = await Consortium.create({ nodes: 4 });
      // Node 4's enclave identity is made by the modified program; the genesis lists its vote key
      // but allows only the honest measurement.
      const provisioned = await c.reprovision(4, program);
      expect(provisioned.measurement).toBe(modified);
      const genesis = JSON.parse(readFileSync(c.genesisFile, 'utf8')) as {
        enclave: { measurements: Record<string, string[]> };
      };
      expect(genesis.enclave.measurements.virtual).toEqual([honest]);

      await c.startAll([1, 2, 3]);
      await c.start(4, { programRoot: program });
      const load = c.load({ nodes: [1, 2, 3] }).start();

      let seen: NetNode | undefined;
      await waitUntil(
        async () => (seen = await c.netNode(1, 4))?.reason?.code === 'MEASUREMENT_NOT_ALLOWED',
        30_000,
        `node 1 to refuse node 4 with MEASUREMENT_NOT_ALLOWED (net_nodes says ${JSON.stringify(seen)})`,
      );
      expect(seen!.admitted).toBe(false);
      expect(seen!.reason!.message).toContain(modified);
      if (seen!.measurement !== undefined) expect(seen!.measurement).toBe(modified);
      // `cloister status` shows the same refusal.
      const status = await runCli(['status', '--json', '--rpc', c.client(1).url]);
      expect(status.code).toBe(0);
      const shown = (JSON.parse(status.stdout) as { nodes: NetNode[] }).nodes.find((n) => n.id === c.node(4).nodeId);
      expect(shown).toMatchObject({ admitted: false, reason: { code: 'MEASUREMENT_NOT_ALLOWED' } });
      // The honest nodes admitted each other.
      const view = await c.netNodes(1);
      for (const k of [2, 3]) expect(view.find((n) => n.id === c.node(k).nodeId)?.admitted).toBe(true);
      // The honest nodes share the consortium secret; node 4's enclave never receives it.
      await waitUntil(async () => (await c.client(1).status()).secrets?.held.includes(1) === true, 30_000, 'node 1 to hold the secret');
      await waitUntil(async () => (await c.client(3).status()).secrets?.held.includes(1) === true, 30_000, 'node 3 to hold the secret');

      const before = await c.maxHeight([1, 2, 3]);
      await c.waitForHeights([1, 2, 3], before + 5);
      await load.waitForMoreAcked(20);
      expect((await c.client(4).status()).secrets?.held ?? []).toEqual([]);
      await expect(c.client(4).getEncryptionKey()).rejects.toMatchObject({ chainCode: 'SECRET_UNAVAILABLE' });
      expect(readFileSync(c.node(4).logFile, 'utf8')).not.toContain('consortium secret received');
      const acked = await load.stop();
      await c.assertNoLostTxs(acked, [1, 2, 3]);
      await c.assertSameBlocks([1, 2, 3]);
      // Nothing forks: whatever node 4 holds is a prefix of the honest chain.
      const h4 = await c.height(4);
      if (h4 > 0) {
        const own = await c.blockHashes(4, 0, h4);
        expect(own).toEqual(await c.blockHashes(1, 0, h4));
      }
    },
    TEST_TIMEOUT,
  );

  it(
    "a host with node 4's network key: relayed and forged evidence are refused, malformed and oversized messages rejected; node 1 keeps working",
    async () => {
      // Nodes 1-3 run (a quorum); node 4's process never does: the attacker holds its network key.
      const c = await started([1, 2, 3]);
      await c.waitForHeights([1, 2, 3], 1);
      const load = c.load({ nodes: [1, 2, 3] }).start();

      const key = await loadOrCreateNodeKey(nodePaths(c.config(4).dataDir).nodeKey);
      expect(peerIdOf(key)).toBe(c.node(4).nodeId);
      const [id1, id2, id4] = [c.node(1).nodeId, c.node(2).nodeId, c.node(4).nodeId];
      // Node 4's vote key as the genesis lists it: the attacker claims it, so only the evidence can give it away.
      const voteKey4 = (JSON.parse(readFileSync(c.genesisFile, 'utf8')) as { validators: { nodeId: string; voteKey: string }[] }).validators.find(
        (v) => v.nodeId === id4,
      )!.voteKey;
      const addr = (i: number): string => `/ip4/127.0.0.1/tcp/${c.node(i).p2pPort}/p2p/${c.node(i).nodeId}`;
      const encode = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
      const decode = (b: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(b));

      const attack = async (
        answer: (attacker: NetworkService, peerId: string, request: Uint8Array) => Promise<Uint8Array>,
      ): Promise<NetworkService> => {
        const attacker = new NetworkService({
          chainId: c.chainId,
          privateKey: key,
          listen: ['/ip4/127.0.0.1/tcp/0'],
          peers: [addr(1), addr(2)],
          allowedPeerIds: c.nodes.map((n) => n.nodeId),
          log: silentLogger,
          dialGraceMs: 0,
          // Lets it publish what honest nodes would never send (the receivers keep their own caps).
          maxTxBatchBytes: 4 * 1024 * 1024,
          maxConsensusBytes: 4 * 1024 * 1024,
          maxRequestBytes: 4 * 1024 * 1024,
        });
        attacker.handleAdmission((peerId, request) => answer(attacker, peerId, request));
        await attacker.start();
        return attacker;
      };
      const refusalOf4 = async (code: string): Promise<NetNode> => {
        let view: NetNode[] = [];
        let seen: NetNode | undefined;
        try {
          await waitUntil(
            async () => {
              view = await c.netNodes(1);
              return (seen = view.find((n) => n.id === id4))?.reason?.code === code;
            },
            20_000,
            `node 1 to refuse node 4 with ${code}`,
          );
        } catch (err) {
          throw new Error(`${(err as Error).message}; node 1's net_nodes: ${JSON.stringify(view)}`);
        }
        expect(seen!.admitted).toBe(false);
        return seen!;
      };

      // 1. Evidence bound to another node: relay node 1's challenge to node 2 and pass off its answer as ours.
      const relay = await attack(async (attacker, peerId, request) => {
        if (peerId !== id1) return encode({ error: 'no' });
        const claim = decode(await attacker.exchangeAdmission(id2, request)) as Record<string, unknown>;
        return encode({ ...claim, nodeId: id4, publicKeys: { ...(claim.publicKeys as object), vote: voteKey4 } });
      });
      await refusalOf4('REPORT_DATA_MISMATCH');
      await relay.stop();
      // The same, passed on unchanged (a claim for node 2 over node 4's connection): refused, and
      // reported under node 4, the node the connection authenticated, never under node 2.
      const replay = await attack(async (attacker, peerId, request) =>
        peerId === id1 ? attacker.exchangeAdmission(id2, request) : encode({ error: 'no' }),
      );
      await refusalOf4('NODE_MISMATCH');
      const view = await c.netNodes(1);
      expect(new Set(view.map((n) => n.id)).size, JSON.stringify(view)).toBe(view.length);
      expect(view.find((n) => n.id === id2)?.admitted).toBe(true);
      await replay.stop();

      // 2. Forged evidence: the allowed measurement, bound properly, signed by a root the genesis does not declare.
      const forgedRoot = generateVirtualRoot();
      const measurement = (await c.client(1).getEvidence()).measurement;
      const forger = await attack(async (_attacker, _peerId, request) => {
        const { challenge } = decode(request) as { challenge: string };
        const publicKeys = { vote: voteKey4 };
        const reportData = reportDataFor({ publicKeys, chainId: c.chainId, nodeId: id4, freshness: challenge });
        const evidence = createVirtualEvidence({ rootPrivateKeyPem: forgedRoot.privateKeyPem, measurement: Buffer.from(measurement, 'hex'), reportData });
        return encode({ nodeId: id4, publicKeys, evidence: Buffer.from(evidence).toString('base64') });
      });
      await refusalOf4('UNTRUSTED_ROOT');

      // 3. Malformed and oversized messages on every channel node 1 listens to.
      await waitUntil(() => forger.subscribers('consensus').includes(id1), 20_000, 'node 1 subscribed, seen from the attacker');
      const heightBefore = await c.height(1);
      const garbage: [topic: 'tx' | 'consensus', data: Uint8Array][] = [
        ['consensus', encode('not json at all')],
        ['consensus', new Uint8Array([0xff, 0xfe, 0x00, 0x01])],
        ['consensus', encode({ type: 'prevote', height: 'x', round: -1, block: null })],
        ['consensus', encode({ type: 'proposal', chainId: c.chainId, block: { header: 42 } })],
        ['consensus', encode([1, 2, 3])],
        ['tx', encode('not json')],
        ['tx', encode({ chainId: c.chainId, txs: [{ nonsense: true }] })],
        ['tx', encode({ chainId: c.chainId, txs: 'no' })],
      ];
      const recipients: (number | string)[] = [];
      for (const [topic, data] of garbage) recipients.push(await forger.publishRaw(topic, data).catch((err: Error) => err.message));
      // Every message reached node 1 or node 2 (node 1 may already graylist the sender for the last ones).
      expect(recipients.every((r) => typeof r === 'number' && r > 0), `recipients: ${JSON.stringify(recipients)}`).toBe(true);
      // 2 MiB blobs (over the 1 MiB tx gossip cap). gossipsub's per-peer outbound buffer holds 4 MiB and
      // drops what does not fit on the sender's side, so each is sent again (with other bytes, hence
      // another message id) until it left for a peer.
      const BIG = 2 * 1024 * 1024;
      for (const topic of ['consensus', 'tx'] as const) {
        let attempt = 0;
        let last: number | string = 0;
        await waitUntil(
          async () => {
            const blob = new Uint8Array(BIG).fill(0x7b);
            blob[BIG - 1] = attempt++ & 0xff;
            last = await forger.publishRaw(topic, blob).catch((err: Error) => err.message);
            return typeof last === 'number' && last > 0;
          },
          15_000,
          `a 2 MiB ${topic} message to leave the attacker`,
          250,
        ).catch((err: Error) => {
          throw new Error(`${err.message} (last result: ${last})`);
        });
      }
      // Request/response: a malformed and an oversized admission challenge and sync request.
      const requests = await Promise.allSettled([
        forger.exchangeAdmission(id1, encode('{"challenge":')),
        forger.exchangeAdmission(id1, new Uint8Array(2 * 1024 * 1024).fill(0x7b)),
        forger.request(id1, encode('garbage'), { timeoutMs: 5000 }),
        forger.request(id1, new Uint8Array(2 * 1024 * 1024).fill(0x7b), { timeoutMs: 5000 }),
      ]);
      for (const r of requests) {
        // Either an error answer or a refused stream, never a claim or blocks for garbage.
        if (r.status === 'fulfilled') expect(new TextDecoder().decode(r.value.slice(0, 200))).toMatch(/error/i);
      }

      // Node 1 keeps committing and answering.
      await c.waitForHeights([1, 2, 3], heightBefore + 3);
      expect((await c.client(1).status()).chainId).toBe(c.chainId);
      await load.waitForMoreAcked(20);
      await forger.stop();
      expect((await c.netNode(1, 4))?.admitted).toBe(false);

      const acked = await load.stop();
      await c.assertNoLostTxs(acked, [1, 2, 3]);
      await c.assertSameBlocks([1, 2, 3]);
    },
    TEST_TIMEOUT,
  );
});
