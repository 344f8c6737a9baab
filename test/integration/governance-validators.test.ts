/**
 * Validators join and leave by governance on a running consortium (real
 * processes, libp2p on 127.0.0.1): a fifth node made with `node init` and
 * `node config` is added under load, syncs, receives the consortium secret by
 * attested release and signs commit certificates; a validator that was down
 * across the change catches up; the fifth is removed and its signatures stop.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ed25519Signer } from '../../consensus/index.js';
import type { CloisterClient } from '../../node/client/index.js';
import { readGenesisFile } from '../../node/dev/dev-chain.js';
import { readKeyFile } from '../../node/keys/key-file.js';
import { Consortium, cleanupConsortia, waitUntil } from '../helpers/consortium.js';
import { execute, newSigner } from '../helpers/tx.js';
import { verifyReceiptProof } from '../../node/proofs/index.js';
import { runCli } from '../helpers/dev-node.js';

const WAIT = { timeoutMs: 60_000, pollMs: 50 };
let c: Consortium;
let members: Ed25519Signer[];
let fifth: { index: number; nodeId: string; voteKey: string };

beforeAll(async () => {
  c = await Consortium.create({ nodes: 4 });
  members = [1, 2, 3, 4].map((i) => new Ed25519Signer(readKeyFile(join(c.dir, `member-${i}.json`)).privateKey));
  await c.startAll();
  await c.waitForHeights(c.all, 2, 60_000);
}, 120_000);

afterAll(() => cleanupConsortia({ printLogs: false }));

/** Member 1 proposes on `via` (approving); members 2 and 3 approve: the third approval decides. Returns the deciding height. */
async function pass(via: CloisterClient, actions: Parameters<CloisterClient['propose']>[1]): Promise<number> {
  const made = await via.propose(members[0]!, actions, { ...WAIT, approve: true });
  await via.vote(members[1]!, made.proposal.id, true, WAIT);
  const decided = await via.vote(members[2]!, made.proposal.id, true, WAIT);
  expect(decided.proposal.state).toBe('accepted');
  return decided.receipt.blockHeight;
}

/** The validators (vote keys) whose signatures are in the certificate of block `height`, as node `i` serves it. */
async function signersOf(i: number, height: number): Promise<string[]> {
  const block = await c.client(i).getBlockByNumber(height);
  return block!.certificate!.signatures.map((s) => s.validator);
}

describe('validators join and leave by governance', () => {
  it('a fifth node is added under load: it syncs, gets the secret by attested release, signs certificates and runs confidential transactions', async () => {
    const provisioned = await c.provisionNode();
    fifth = provisioned;
    // Started before it is a validator: it is refused by the others until the members add it.
    await c.start(fifth.index);
    const load = c.load({ nodes: [1, 2, 3, 4], senders: 4 }).start();
    let added: number;
    try {
      added = await pass(c.client(1), [{ type: 'addNode', nodeId: fifth.nodeId, voteKey: fifth.voteKey }]);
      // Node 1 answered with the receipt; node 2 may commit that block a moment later.
      await c.waitForHeight(2, added);
      const view = await c.client(2).chainView();
      expect(view.validators.map((v) => v.nodeId)).toContain(fifth.nodeId);
      expect(view.quorum).toBe(4);
      // The block that added it was certified by the four; from the next height on the fifth is a validator.
      await c.waitForHeight(fifth.index, added + 1, 90_000);
      await waitUntil(async () => ((await c.client(fifth.index).status()).secrets?.held ?? []).includes(1), 60_000, 'the fifth node to hold the consortium secret');
      await waitUntil(
        async () => {
          const h = await c.height(1);
          return (await signersOf(1, h)).includes(fifth.voteKey);
        },
        60_000,
        "the fifth node's signature in a commit certificate",
      );
      for (const i of [1, 2, 3, 4]) {
        const entry = (await c.netNodes(i)).find((n) => n.id === fifth.nodeId);
        expect(entry, `node ${i}`).toMatchObject({ admitted: true });
      }
    } finally {
      await load.stop();
    }
    await c.assertNoLostTxs(load.acked, [1, 2, 3, 4, fifth.index], 60_000);

    // Confidential transactions through the fifth node: it opens them, executes them and answers sealed calls.
    const genesis = readGenesisFile(c.genesisFile);
    const key = await c.client(1).encryptionKey(genesis);
    const hospital = newSigner();
    const nonce = await c.client(fifth.index).getNonce(hospital.publicKey);
    const sent = await c.client(fifth.index).sendSealedTransaction(
      { chainId: genesis.chainId, from: hospital.publicKey, nonce, contract: 'analytics', method: 'submit', args: ['oncology', 7], gasLimit: 1_000_000 },
      hospital,
      key,
    );
    const receipt = sent.open(await c.client(fifth.index).waitForReceipt(sent.hash, WAIT));
    expect(receipt.status).toBe('success');
    const stats = (await c.client(fifth.index).sealedCall('analytics', 'stats', ['oncology'], key)).result as { count: number };
    expect(stats.count).toBeGreaterThanOrEqual(1);
    // Its receipt verifies offline from the genesis alone, across the validator-set change (the proof carries
    // the block that added the fifth, certified by the four, and the new set proved under its state root);
    // the sender opens the sealed answer the receipt commits to and finds what the node told it.
    const proof = (await c.client(1).getReceiptProof(sent.hash))!;
    expect(proof.block.transitions.map((t) => t.proof.height)).toEqual([added!]);
    const verified = verifyReceiptProof(proof, genesis, { now: new Date() });
    expect(verified.signers.length).toBeGreaterThanOrEqual(4);
    expect(sent.open({ ...receipt, sealed: proof.receipt.sealed! }).opened).toEqual(receipt.opened);
    if (verified.height > added!) {
      const withoutChange = { ...proof, block: { ...proof.block, transitions: [] } };
      expect(() => verifyReceiptProof(withoutChange, genesis, { now: new Date() })).toThrow(expect.objectContaining({ code: 'VALIDATOR_SET' }));
    }
    await c.assertSameBlocks([1, 2, 3, 4, fifth.index]);
  }, 180_000);

  it('a validator down across a validator-set change catches up; a removed validator signs no more', async () => {
    await c.stop(4);
    const removed = await pass(c.client(2), [{ type: 'removeNode', nodeId: fifth.nodeId }]);
    await c.waitForHeight(1, removed);
    expect((await c.client(1).chainView()).validators.map((v) => v.nodeId)).not.toContain(fifth.nodeId);
    // Three of the four remaining commit; node 4 then syncs across both changes (certificates of four, then five, then four).
    const tip = await c.height(1);
    await c.waitForHeights([1, 2, 3], tip + 3, 60_000);
    for (let h = removed + 1; h <= tip + 3; h++) expect(await signersOf(1, h), `height ${h}`).not.toContain(fifth.voteKey);
    expect(await signersOf(1, removed)).toContain(fifth.voteKey);

    await c.start(4);
    const head = await c.height(1);
    await c.waitForHeight(4, head, 90_000);
    await c.assertSameBlocks([1, 2, 3, 4]);
    // Node 4 votes again: its signature shows up in new certificates.
    await waitUntil(async () => (await signersOf(1, await c.height(1))).includes((await c.client(4).chainView()).validators[3]!.voteKey), 60_000, 'node 4 to sign again');
    // A receipt after both changes, from the node that synced across them, verifies from the genesis alone.
    const after = await execute(c.client(4), newSigner(), 'counter', 'increment');
    const proof = (await c.client(4).getReceiptProof(after.txHash))!;
    expect(proof.block.transitions).toHaveLength(2);
    expect(verifyReceiptProof(proof, readGenesisFile(c.genesisFile), { now: new Date() }).receipt.status).toBe('success');
    // The whole ledger verifies from the genesis, each certificate against the validators of its height.
    const ledger = await runCli(['ledger', 'verify', '--rpc', c.rpcUrl(4), '--genesis', c.genesisFile, '--json']);
    expect(ledger.code, ledger.stderr).toBe(0);
    expect((JSON.parse(ledger.stdout) as { viewChanges: number[] }).viewChanges).toHaveLength(2);
    // The removed node is no longer admitted by the others.
    await waitUntil(async () => !(await c.netNodes(1)).some((n) => n.id === fifth.nodeId), 30_000, 'node 1 to forget the removed node');
  }, 180_000);
});
