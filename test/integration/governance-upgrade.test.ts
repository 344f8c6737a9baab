/**
 * A rolling enclave upgrade on a running 4-node consortium (real processes):
 * the members allow a new program's measurement; each node in turn makes its
 * successor identity with the new program, hands its validator place over
 * from its old enclave, and restarts on the new program, while the chain
 * commits under load and loses nothing. The members then retire the old
 * measurement: a node still on the old program is refused by its peers.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ed25519Signer, type ChainError } from '../../consensus/index.js';
import { readGenesisFile } from '../../node/dev/dev-chain.js';
import type { CloisterClient } from '../../node/client/index.js';
import { readKeyFile } from '../../node/keys/key-file.js';
import { Consortium, ROOT, cleanupConsortia, makeModifiedProgram, measurementOf, runProgram, waitUntil } from '../helpers/consortium.js';

const WAIT = { timeoutMs: 60_000, pollMs: 50 };
let c: Consortium;
let members: Ed25519Signer[];
let program: string;
let oldMeasurement: string;
let newMeasurement: string;

beforeAll(async () => {
  program = makeModifiedProgram();
  [oldMeasurement, newMeasurement] = await Promise.all([measurementOf(ROOT), measurementOf(program)]);
  c = await Consortium.create({ nodes: 4 });
  members = [1, 2, 3, 4].map((i) => new Ed25519Signer(readKeyFile(join(c.dir, `member-${i}.json`)).privateKey));
  await c.startAll();
  await c.waitForHeights(c.all, 2, 60_000);
}, 120_000);

afterAll(() => cleanupConsortia());

async function pass(via: CloisterClient, actions: Parameters<CloisterClient['propose']>[1]): Promise<void> {
  const made = await via.propose(members[0]!, actions, { ...WAIT, approve: true });
  await via.vote(members[1]!, made.proposal.id, true, WAIT);
  expect((await via.vote(members[2]!, made.proposal.id, true, WAIT)).proposal.state).toBe('accepted');
}

/** Node i: successor identity by the new program, handover by the old one (node stopped), restart on the new program. */
async function upgrade(i: number, via: number): Promise<string> {
  const config = c.node(i).configFile;
  const rpc = c.client(via).url;
  const successorFile = join(c.dir, `successor-${i}.json`);
  const made = await runProgram(program, ['node', 'successor', '--config', config, '--rpc', rpc, '--out', successorFile]);
  expect(made.code, made.stderr).toBe(0);
  await c.stop(i);
  const handed = await runProgram(ROOT, ['node', 'handover', '--config', config, '--successor', successorFile, '--rpc', rpc]);
  expect(handed.code, handed.stderr).toBe(0);
  const result = JSON.parse(handed.stdout) as { nodeId: string; voteKey: string; fromHeight: number };
  expect(result.nodeId).toBe(c.node(i).nodeId);
  await c.start(i, { programRoot: program });
  expect((await c.client(i).status()).measurement).toBe(newMeasurement);
  // Its new enclave signs again: the key shows up in a commit certificate.
  await waitUntil(async () => {
    const block = await c.client(via).getBlockByNumber(await c.height(via));
    return block!.certificate!.signatures.some((s) => s.validator === result.voteKey);
  }, 60_000, `node ${i}'s successor enclave to sign`);
  return result.voteKey;
}

describe('a rolling enclave upgrade', () => {
  it('upgrades the nodes one by one under load, committing throughout and losing nothing; the old measurement retired, a node still on it is refused', async () => {
    expect(newMeasurement).not.toBe(oldMeasurement);
    await pass(c.client(1), [{ type: 'allowMeasurement', platform: 'virtual', measurement: newMeasurement }]);
    // Clients use nodes 1-3 (node 4 is refused for a while below: a node its peers refuse has no one to pass a transaction on to).
    const load = c.load({ nodes: [1, 2, 3], senders: 4 }).start();
    const heights: number[] = [];
    try {
      for (const i of [1, 2, 3]) {
        const before = await c.height(i === 1 ? 2 : 1);
        await upgrade(i, i === 1 ? 2 : 1);
        heights.push(await c.height(i === 1 ? 2 : 1));
        expect(heights.at(-1)!, `the chain committed while node ${i} was upgraded`).toBeGreaterThan(before);
      }
      // The old program is retired while node 4 still runs it: its peers refuse it at its next admission check.
      await pass(c.client(1), [{ type: 'retireMeasurement', platform: 'virtual', measurement: oldMeasurement }]);
      await c.restart(4);
      await waitUntil(async () => {
        const entry = (await c.netNodes(1)).find((n) => n.id === c.node(4).nodeId);
        return entry?.admitted === false && entry.reason?.code === 'MEASUREMENT_NOT_ALLOWED';
      }, 60_000, 'node 1 to refuse node 4 on the retired program');
      // Nodes 1-3 (a quorum) go on committing without it; then node 4 is upgraded too.
      const without = await c.height(1);
      await c.waitForHeights([1, 2, 3], without + 2, 60_000);
      await upgrade(4, 1);
    } finally {
      await load.stop();
    }
    for (const i of c.all) expect((await c.client(i).status()).measurement, `node ${i}`).toBe(newMeasurement);
    for (const i of c.all) expect((await c.netNodes(i)).filter((n) => !n.self).every((n) => n.admitted), `node ${i}`).toBe(true);
    await c.assertNoLostTxs(load.acked, c.all, 60_000);
    await c.assertSameBlocks(c.all);
    // Every validator now votes with its successor key: the chain view lists four new keys.
    const view = await c.client(2).chainView();
    expect(view.policy.measurements.virtual).toEqual([newMeasurement]);
    expect(new Set(view.validators.map((v) => v.voteKey)).size).toBe(4);

    // A client trusting the genesis alone no longer accepts any node's network key (new program, new vote keys);
    // with a chain view it trusts (saved from its own node) it does, and its sealed transactions run.
    const genesis = readGenesisFile(c.genesisFile);
    const refused = await c.client(1).encryptionKey(genesis).catch((e: unknown) => e);
    expect((refused as ChainError).code).toBe('KEY_UNVERIFIED');
    const viewFile = join(c.dir, 'chain-view.json');
    const saved = await runProgram(ROOT, ['gov', 'view', '--rpc', c.client(3).url]);
    writeFileSync(viewFile, saved.stdout);
    const sent = await runProgram(ROOT, [
      'tx', 'send', '--rpc', c.client(1).url, '--key', join(c.dir, 'member-2.json'), '--contract', 'analytics', '--method', 'submit',
      '--args', '["radiology", 3]', '--genesis', c.genesisFile, '--chain-view', viewFile, '--wait',
    ]);
    expect(sent.code, sent.stderr).toBe(0);
    expect((JSON.parse(sent.stdout) as { opened: { error: unknown } }).opened.error).toBeNull();
  }, 400_000);
});
