/**
 * The genesis is an identity (#10 part 6), on real processes: a 4-node
 * consortium whose fourth operator started from another genesis file (the same
 * validators, members and policy, another time: two members who ran
 * `cloister genesis` apart). Both sides refuse each other at admission with
 * GENESIS_MISMATCH naming both hashes, nothing of the other chain is taken, and
 * the three nodes on the real genesis (a quorum) keep committing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genesisHash, parseGenesis } from '../../consensus/index.js';
import { readNodeConfig, writeNodeConfig } from '../../node/config/read-config.js';
import { Consortium, cleanupConsortia, waitUntil, type NetNode } from '../helpers/consortium.js';
import { execute, newSigner } from '../helpers/tx.js';

let c: Consortium;
let failed = false;
let ours: string;
let theirs: string;
let strangerVoteKey: string;
const STRANGER = 4;
const HONEST = [1, 2, 3];

beforeAll(async () => {
  c = await Consortium.create({ nodes: 4 });
  const genesis = parseGenesis(JSON.parse(readFileSync(c.genesisFile, 'utf8')));
  ours = genesisHash(genesis);
  strangerVoteKey = genesis.validators.find((v) => v.nodeId === c.node(STRANGER).nodeId)!.voteKey;
  const other = { ...genesis, time: genesis.time + 1 };
  theirs = genesisHash(other);
  const otherFile = join(c.dir, 'genesis-other.json');
  writeFileSync(otherFile, JSON.stringify(other, null, 2));
  const config = readNodeConfig(c.node(STRANGER).configFile);
  writeNodeConfig(c.node(STRANGER).configFile, { ...config, genesisFile: otherFile });
  await c.startAll();
}, 90_000);

afterAll(async () => {
  await cleanupConsortia({ printLogs: failed });
}, 30_000);

async function reasonFor(i: number, of: number): Promise<NetNode> {
  let seen: NetNode | undefined;
  await waitUntil(
    async () => (seen = await c.netNode(i, of))?.reason?.code === 'GENESIS_MISMATCH',
    60_000,
    `node ${i} to refuse node ${of} for its genesis (last: ${JSON.stringify(seen)})`,
  );
  return seen!;
}

describe('peers on another genesis', () => {
  it('are refused at admission both ways with GENESIS_MISMATCH naming both hashes, and the quorum on the real genesis commits', async () => {
    try {
      expect((await c.client(STRANGER).status()).genesisHash).toBe(theirs);
      for (const i of HONEST) {
        expect((await c.client(i).status()).genesisHash).toBe(ours);
        const refused = await reasonFor(i, STRANGER);
        expect(refused.admitted).toBe(false);
        expect(refused.reason!.message).toContain(ours);
        expect(refused.reason!.message).toContain(theirs);
        const seenByStranger = await reasonFor(STRANGER, i);
        expect(seenByStranger.admitted).toBe(false);
      }
      // The three on the real genesis still admit each other and commit a transaction.
      for (const i of HONEST) {
        for (const j of HONEST) {
          if (i !== j) await waitUntil(async () => (await c.netNode(i, j))?.admitted === true, 60_000, `node ${i} to admit node ${j}`);
        }
      }
      const receipt = await execute(c.client(1), newSigner(), 'counter', 'increment');
      expect(receipt.status).toBe('success');
      await c.waitForHeights(HONEST, receipt.blockHeight);
      // The stranger took nothing from the other chain: no block by sync, no vote counted.
      expect(await c.height(STRANGER)).toBe(0);
      const block = await c.client(1).getBlockByNumber(receipt.blockHeight);
      const signers = block!.certificate!.signatures.map((s) => s.validator);
      expect(signers.length).toBeGreaterThanOrEqual(3);
      expect(signers).not.toContain(strangerVoteKey);
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 120_000);
});
