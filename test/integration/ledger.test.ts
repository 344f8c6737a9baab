/**
 * `cloister ledger verify` and `ledger export` on a real node's ledger: over
 * RPC while it runs, from its data directory once stopped, from an exported
 * file; a ledger with one altered transaction or receipt is refused, naming
 * the height.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloisterClient } from '../../node/client/index.js';
import { EXIT } from '../../node/cli/exit-codes.js';
import { nodePaths } from '../../node/config/node-config.js';
import { ChainStore } from '../../node/storage/chain-store.js';
import { cleanupNodes, runCli, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

let node: TestNode;
let genesisFile: string;
let committedAt: number[] = [];

beforeAll(async () => {
  node = await startNode(tempDir());
  genesisFile = join(node.dataDir, 'genesis.json');
  const client = new CloisterClient(node.rpcUrl);
  const signer = newSigner();
  for (let i = 0; i < 3; i++) committedAt.push((await execute(client, signer, 'counter', 'increment')).blockHeight);
}, 60_000);
afterAll(cleanupNodes);

describe('ledger verify', () => {
  it('verifies a running node over RPC, then its data directory once stopped, then an exported file', async () => {
    const live = await runCli(['ledger', 'verify', '--rpc', node.rpcUrl, '--genesis', genesisFile, '--json']);
    expect(live.code, live.stderr).toBe(0);
    const summary = JSON.parse(live.stdout) as { transactions: number; head: number; viewChanges: number[]; attestations: number; signaturesBeforeAttestation: number; attested: { platform: string }[] };
    expect(summary.transactions).toBeGreaterThanOrEqual(3);
    // The validator's evidence is on the ledger (its first block as proposer), verified again by the tool; it signed nothing before.
    expect(summary.attestations).toBeGreaterThanOrEqual(1);
    expect(summary.attested.map((a) => a.platform)).toEqual(['virtual']);
    expect(summary.signaturesBeforeAttestation).toBe(0);
    expect(summary.head).toBeGreaterThanOrEqual(Math.max(...committedAt));

    // A running node's directory is locked: the command says so.
    const locked = await runCli(['ledger', 'verify', '--data', node.dataDir, '--genesis', genesisFile]);
    expect(locked.code).toBe(EXIT.ERROR);
    expect(locked.stderr).toContain('is running');

    await node.stop();
    const stopped = await runCli(['ledger', 'verify', '--data', node.dataDir, '--genesis', genesisFile, '--require-attested']);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/^verified: \d+ blocks .* and \d+ transactions/);

    // Every block executed again by an enclave of this program here: every root as committed.
    const replayed = await runCli(['ledger', 'verify', '--data', node.dataDir, '--genesis', genesisFile, '--reexecute', '--json']);
    expect(replayed.code, replayed.stderr).toBe(0);
    const reexecution = (JSON.parse(replayed.stdout) as { head: number; reexecution: { blocks: number; stoppedAt: unknown } }).reexecution;
    expect(reexecution).toEqual({ blocks: summary.head >= 1 ? expect.any(Number) : 0, stoppedAt: null });
    expect(reexecution.blocks).toBeGreaterThanOrEqual(summary.head);

    const file = join(tempDir(), 'ledger.jsonl');
    const exported = await runCli(['ledger', 'export', '--data', node.dataDir, '--genesis', genesisFile, '--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    expect((await runCli(['ledger', 'verify', '--file', file, '--genesis', genesisFile])).code).toBe(0);

    // One altered transaction in the file: refused, naming its height.
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const at = committedAt[1]!;
    const block = JSON.parse(lines[at + 1]!) as { txs: { args: unknown[] }[]; receipts: { gasUsed: number }[] };
    block.txs[0]!.args = [7];
    writeFileSync(file, [...lines.slice(0, at + 1), JSON.stringify(block), ...lines.slice(at + 2)].join('\n') + '\n');
    const altered = await runCli(['ledger', 'verify', '--file', file, '--genesis', genesisFile]);
    expect(altered.code).toBe(EXIT.PROOF_INVALID);
    expect(altered.stderr).toContain(`invalid at height ${at}:`);

    // Another genesis's ledger is not this one.
    const otherGenesis = JSON.parse(readFileSync(genesisFile, 'utf8')) as { chainId: string };
    otherGenesis.chainId = `${otherGenesis.chainId}-other`;
    const otherFile = join(tempDir(), 'genesis.json');
    writeFileSync(otherFile, JSON.stringify(otherGenesis));
    expect((await runCli(['ledger', 'verify', '--data', node.dataDir, '--genesis', otherFile])).code).not.toBe(0);
  }, 120_000);

  it('a stored receipt altered on disk is found, naming the height', async () => {
    const at = committedAt[2]!;
    const store = new ChainStore(nodePaths(node.dataDir).db);
    await store.open();
    const stored = (await store.getBlock(at))!;
    const receipt = (await store.getReceipt(stored.txHashes[0]!))!;
    const { blockHeight: _h, blockHash: _b, ...plain } = receipt;
    await store.commitBlock(stored, (await store.getTxs(stored.txHashes)).map((t) => t!.tx), [{ ...plain, gasUsed: plain.gasUsed + 1 }], []);
    await store.close();
    const out = await runCli(['ledger', 'verify', '--data', node.dataDir, '--genesis', genesisFile]);
    expect(out.code).toBe(EXIT.PROOF_INVALID);
    expect(out.stderr).toContain(`invalid at height ${at}:`);
    expect(out.stderr).toContain('RECEIPTS_ROOT');
  });
});
