import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ZERO_HASH, headerHash, type BlockHeader, type Receipt, type SignedTx } from '../../../consensus/index.js';
import { ChainStore } from '../../../node/storage/chain-store.js';

const dirs: string[] = [];
function freshStore(): ChainStore {
  const dir = mkdtempSync(join(tmpdir(), 'cloister-store-'));
  dirs.push(dir);
  return new ChainStore(join(dir, 'db'));
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const header = (height: number, parentHash: string): BlockHeader => ({
  chainId: 't',
  height,
  parentHash,
  time: 1000 + height,
  proposer: ZERO_HASH,
  txRoot: ZERO_HASH,
  receiptsRoot: ZERO_HASH,
  stateRoot: ZERO_HASH,
  validatorSetHash: ZERO_HASH,
  policyHash: ZERO_HASH,
});
const tx = (n: number): SignedTx => ({
  chainId: 't',
  from: 'a'.repeat(64),
  nonce: n,
  contract: 'counter',
  method: 'increment',
  args: [],
  gasLimit: 1,
  signature: 'b'.repeat(128),
});
const receipt = (hash: string, index: number): Receipt => ({
  txHash: hash,
  index,
  status: 'success',
  gasUsed: 1,
  result: null,
  events: [],
  error: null,
});

describe('chain store', () => {
  it('writes a block, its transactions, receipts and state in one batch and reads them back after reopening', async () => {
    const store = freshStore();
    await store.open();
    const h0 = header(0, ZERO_HASH);
    await store.commitBlock({ hash: headerHash(h0), header: h0, txHashes: [], certificate: null }, [], [], [['k:x', '"1"']]);
    const h1 = header(1, headerHash(h0));
    const hashes = ['1'.repeat(64), '2'.repeat(64)];
    await store.commitBlock(
      { hash: headerHash(h1), header: h1, txHashes: hashes, certificate: { height: 1, round: 0, blockHash: headerHash(h1), signatures: [] } },
      [tx(0), tx(1)],
      [receipt(hashes[0]!, 0), receipt(hashes[1]!, 1)],
      [
        ['c:counter:value', '2'],
        ['k:x', null],
      ],
    );
    await store.close();

    const again = new ChainStore(store.path);
    await again.open();
    expect(await again.getHead()).toEqual({ height: 1, hash: headerHash(h1) });
    expect((await again.getBlockByHash(headerHash(h1)))?.txHashes).toEqual(hashes);
    expect((await again.getTx(hashes[1]!))?.index).toBe(1);
    expect((await again.getReceipt(hashes[0]!))?.blockHeight).toBe(1);
    const state: [string, string][] = [];
    for await (const entry of again.stateEntries()) state.push(entry);
    expect(state).toEqual([['c:counter:value', '2']]);
    expect(await again.getBlock(2)).toBeUndefined();
    await again.close();
  });

  it('open and close are idempotent', async () => {
    const store = freshStore();
    await store.open();
    await store.open();
    await store.close();
    await store.close();
  });

  it('keeps equivocation evidence once per validator and slot, the lock record and own votes, across a reopen', async () => {
    const store = freshStore();
    await store.open();
    const evidence = {
      kind: 'prevote' as const,
      validator: 'c'.repeat(64),
      height: 3,
      round: 1,
      first: { blockHash: null, signature: 'd'.repeat(128) },
      second: { blockHash: 'e'.repeat(64), signature: 'f'.repeat(128) },
    };
    expect(await store.putEvidence('k1', evidence)).toBe(true);
    expect(await store.putEvidence('k1', { ...evidence, round: 9 })).toBe(false);
    const proposal = { proposal: { chainId: 't', height: 2, round: 0, polRound: -1, block: { header: header(2, ZERO_HASH), txs: [tx(0)] } }, proposer: 'a'.repeat(64), signature: 'b'.repeat(128) };
    await store.putLock({ height: 2, round: 0, proposal, prevotes: [] });
    const ownVote = { vote: { chainId: 't', type: 'prevote' as const, height: 2, round: 0, blockHash: null }, validator: 'a'.repeat(64), signature: 'c'.repeat(128) };
    expect(await store.getOwnVotes()).toBeUndefined();
    await store.putOwnVotes({ height: 2, votes: [ownVote] });
    await store.close();
    await store.open();
    expect(await store.listEvidence()).toEqual([evidence]);
    expect(await store.getLock()).toMatchObject({ height: 2, round: 0, proposal });
    expect(await store.getOwnVotes()).toEqual({ height: 2, votes: [ownVote] });
    await store.close();
  });
});
