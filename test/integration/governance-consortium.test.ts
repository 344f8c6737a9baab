/**
 * Governance on a running 4-node consortium (real processes, libp2p on
 * 127.0.0.1): four members, three of whom are a majority, change the chain
 * while it commits under load, and every node applies the change at the same
 * height. An auditor's replay of the ledger's governance transactions gives
 * the chain view the nodes use.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ed25519Signer, isSealedTx, type SignedTx } from '../../consensus/index.js';
import { loadBundleFromDir, type ContractBundle } from '../../contracts/index.js';
import { RpcError, type CloisterClient, type GovernanceActionInput, type TransactionView } from '../../node/client/index.js';
import { readGenesisFile } from '../../node/dev/dev-chain.js';
import { readKeyFile } from '../../node/keys/key-file.js';
import { Consortium, cleanupConsortia, waitUntil } from '../helpers/consortium.js';
import { tempDir } from '../helpers/dev-node.js';
import { GovernanceChain } from '../helpers/governance-chain.js';
import { noteBoard } from '../helpers/note-board.js';
import { execute, executeSealed, newSigner } from '../helpers/tx.js';

const WAIT = { timeoutMs: 60_000, pollMs: 50 };
const scratch = tempDir();
let c: Consortium;
let members: Ed25519Signer[];
let v1: ContractBundle;
let v2: ContractBundle;

beforeAll(async () => {
  v1 = await loadBundleFromDir(noteBoard(scratch, 1));
  v2 = await loadBundleFromDir(noteBoard(scratch, 2));
  c = await Consortium.create({ nodes: 4 });
  members = [1, 2, 3, 4].map((i) => new Ed25519Signer(readKeyFile(join(c.dir, `member-${i}.json`)).privateKey));
  await c.startAll();
  await c.waitForHeights(c.all, 2, 60_000);
}, 120_000);

afterAll(async () => {
  await cleanupConsortia();
  rmSync(scratch, { recursive: true, force: true });
});

/** Member 1 proposes on node 1 (approving); members 2 and 3 approve on nodes 2 and 3: the third approval decides. */
async function pass(actions: GovernanceActionInput[]): Promise<{ id: number; height: number }> {
  const made = await c.client(1).propose(members[0]!, actions, { ...WAIT, approve: true });
  expect(made.proposal.state).toBe('open');
  const second = await c.client(2).vote(members[1]!, made.proposal.id, true, WAIT);
  expect(second.proposal).toEqual({ id: made.proposal.id, state: 'open' });
  const third = await c.client(3).vote(members[2]!, made.proposal.id, true, WAIT);
  expect(third.proposal).toEqual({ id: made.proposal.id, state: 'accepted' });
  return { id: made.proposal.id, height: third.receipt.blockHeight };
}

/** Waits until every node has committed `height`. */
async function allAt(height: number): Promise<void> {
  await c.waitForHeights(c.all, height, 60_000);
}

describe('a 4-node consortium governed by its members', () => {
  it('deploys, upgrades (keeping the state) and retires a contract while the chain commits under load', async () => {
    const load = c.load({ senders: 4 }).start();
    try {
      const deployed = await pass([{ type: 'deployContract', name: 'notes', bundle: v1 }]);
      await allAt(deployed.height);
      for (const i of c.all) expect((await c.client(i).listContracts()).map((x) => x.name), `node ${i}`).toContain('notes');
      const writer = newSigner();
      expect((await execute(c.client(4), writer, 'notes', 'post', ['x'])).result).toBe(1);
      expect((await execute(c.client(2), writer, 'notes', 'post', ['y'])).result).toBe(2);

      const upgraded = await pass([{ type: 'upgradeContract', name: 'notes', bundle: v2 }]);
      await allAt(upgraded.height);
      for (const i of c.all) expect((await c.client(i).call('notes', 'doubled', [])).result, `node ${i}`).toBe(4);

      const retired = await pass([{ type: 'retireContract', name: 'notes' }]);
      await allAt(retired.height);
      for (const i of c.all) {
        const err = await c.client(i).call('notes', 'count', []).catch((e: unknown) => e);
        expect(err, `node ${i}`).toBeInstanceOf(RpcError);
        expect((err as RpcError).chainCode).toBe('TX_UNKNOWN_CONTRACT');
      }
    } finally {
      await load.stop();
    }
    expect(load.acked.length).toBeGreaterThan(0);
    await c.assertNoLostTxs(load.acked, c.all, 60_000);
    await c.assertSameBlocks(c.all);
  }, 180_000);

  it('a policy change takes effect at the next height on every node: its header commits to the new policy, and the nodes still admit each other', async () => {
    const before = await c.client(1).chainView();
    const allowed = 'cd'.repeat(48);
    const { height } = await pass([{ type: 'allowMeasurement', platform: 'virtual', measurement: allowed }]);
    await allAt(height + 1);
    const after = await c.client(1).chainView();
    expect(after.policyHash).not.toBe(before.policyHash);
    expect(after.policy.measurements.virtual).toContain(allowed);
    for (const i of c.all) {
      expect((await c.client(i).getBlockByNumber(height))!.header.policyHash, `node ${i}`).toBe(before.policyHash);
      expect((await c.client(i).getBlockByNumber(height + 1))!.header.policyHash, `node ${i}`).toBe(after.policyHash);
      expect(await c.client(i).chainView(), `node ${i}`).toEqual(after);
    }
    const tip = await c.maxHeight(c.all);
    await allAt(tip + 2);
    for (const i of c.all) {
      const others = (await c.netNodes(i)).filter((n) => !n.self);
      expect(others.every((n) => n.admitted), `node ${i}: ${JSON.stringify(others)}`).toBe(true);
    }
  }, 180_000);

  it('rotates the consortium secret: every node takes the new generation by attested release, and what was sealed to the old one still opens', async () => {
    const genesis = readGenesisFile(c.genesisFile);
    const first = await c.client(1).encryptionKey(genesis);
    expect(first.generation).toBe(1);
    const hospital = newSigner();
    expect((await executeSealed(c.client(1), genesis, hospital, 'analytics', 'submit', ['cardiology', 5])).status).toBe('success');
    const { height } = await pass([{ type: 'rotateSecret' }]);
    // A proposer makes generation 2 and commits its public key; the others receive it from a peer.
    for (const i of c.all) {
      await waitUntil(async () => (await c.client(i).getEncryptionKey()).generation === 2, 60_000, `node ${i} to hold generation 2`);
      // The status follows once the enclave's identity, now holding it, is sealed to disk.
      await waitUntil(async () => JSON.stringify((await c.client(i).status()).secrets) === JSON.stringify({ held: [1, 2], missing: [] }), 10_000, `node ${i}'s status to show generation 2 held`);
    }
    const second = await c.client(2).encryptionKey(genesis);
    expect(second.generation).toBe(2);
    expect(second.publicKey).not.toBe(first.publicKey);
    expect(await c.height(1)).toBeGreaterThan(height);
    // New transactions seal to generation 2; a call sealed to generation 1 still opens, and the state (keyed by generation 1) reads on.
    expect((await executeSealed(c.client(3), genesis, hospital, 'analytics', 'submit', ['cardiology', 7])).opened.error).toBeNull();
    const stats = (await c.client(4).sealedCall('analytics', 'stats', ['cardiology'], first)).result as { count: number; sum: number };
    expect(stats).toMatchObject({ count: 2, sum: 12 });
    expect(((await c.client(1).sealedCall('analytics', 'stats', ['cardiology'], second)).result as { count: number }).count).toBe(2);
  }, 180_000);

  it('membership and threshold change by vote: a new member votes, a removed one no longer can', async () => {
    const newcomer = newSigner();
    await pass([{ type: 'addMember', id: 'member-5', publicKey: newcomer.publicKey }, { type: 'setThreshold', threshold: 2 }]);
    expect(await c.client(4).members()).toMatchObject({ threshold: 2, members: expect.arrayContaining([{ id: 'member-5', publicKey: newcomer.publicKey }]) });
    const made = await c.client(4).propose(newcomer, [{ type: 'removeMember', id: 'member-4' }], { ...WAIT, approve: true });
    const decided = await c.client(1).vote(members[0]!, made.proposal.id, true, WAIT);
    expect(decided.proposal.state).toBe('accepted');
    const refused = await c.client(2).propose(members[3]!, [{ type: 'setThreshold', threshold: 1 }]).catch((e: unknown) => e);
    expect((refused as RpcError).chainCode).toBe('GOV_NOT_MEMBER');
  }, 180_000);

  it('refuses malformed and unauthorised governance transactions at the node, with their codes', async () => {
    const client: CloisterClient = c.client(2);
    const before = await client.listProposals();
    const refusal = async (p: Promise<unknown>): Promise<string | undefined> => ((await p.catch((e: unknown) => e)) as RpcError).chainCode;
    expect(await refusal(client.propose(newSigner(), [{ type: 'setThreshold', threshold: 1 }]))).toBe('GOV_NOT_MEMBER');
    expect(await refusal(client.propose(members[0]!, [{ type: 'deployContract', name: 'bad', bundle: { manifest: { name: 'bad' }, code: '' } as unknown as ContractBundle }]))).toBe('GOV_ACTION_INVALID');
    expect(await refusal(client.propose(members[0]!, [{ type: 'launchMissiles' } as unknown as GovernanceActionInput]))).toBe('GOV_ACTION_INVALID');
    expect(await refusal(client.vote(members[0]!, 1, true))).toBe('GOV_PROPOSAL_CLOSED');
    expect(await refusal(client.vote(members[0]!, 10_000, true))).toBe('GOV_PROPOSAL_NOT_FOUND');
    const open = await client.propose(members[0]!, [{ type: 'setThreshold', threshold: 3 }], WAIT);
    expect(await refusal(client.withdraw(members[1]!, open.proposal.id))).toBe('GOV_NOT_PROPOSER');
    await client.vote(members[1]!, open.proposal.id, false, WAIT);
    expect(await refusal(client.vote(members[1]!, open.proposal.id, true))).toBe('GOV_ALREADY_VOTED');
    expect((await client.withdraw(members[0]!, open.proposal.id, WAIT)).proposal.state).toBe('withdrawn');
    expect((await client.listProposals()).length).toBe(before.length + 1);
  }, 180_000);

  it("replaying the ledger's governance transactions (the system contract's) rebuilds exactly the chain view the nodes use", async () => {
    const genesis = readGenesisFile(c.genesisFile);
    const head = await c.maxHeight(c.all);
    await allAt(head);
    const client = c.client(3);
    const replay = await GovernanceChain.create(genesis);
    try {
      let replayed = 0;
      for (let h = 1; h <= head; h++) {
        const block = await client.getBlockByNumber(h, true);
        const governance = (block!.transactions as TransactionView[]).filter((tx) => tx.contract === 'consortium');
        if (governance.length === 0) continue;
        const txs = governance.map(({ hash: _hash, blockHeight: _height, blockHash: _block, index: _index, ...tx }): SignedTx => tx);
        const { receipts } = replay.block(txs, 'validate', h, block!.header);
        replayed += txs.length;
        // Each receipt is the one the nodes committed.
        for (const [k, tx] of governance.entries()) {
          const committed = await client.getTransactionReceipt(tx.hash);
          expect(receipts[k], `${isSealedTx(tx) ? 'a sealed transaction' : tx.method} at height ${h}`).toMatchObject({ status: committed!.status, result: committed!.result, gasUsed: committed!.gasUsed });
        }
      }
      expect(replayed).toBeGreaterThanOrEqual(12);
      const view = replay.view();
      for (const i of c.all) expect(await c.client(i).chainView(), `node ${i}`).toEqual(JSON.parse(JSON.stringify(view)));
    } finally {
      replay.runtime.dispose();
    }
  }, 180_000);
});
