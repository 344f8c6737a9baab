/**
 * Read-only calls, against a real node: they run as the anonymous caller
 * unless the caller signed the call (checked inside the enclave), and they run
 * beside block execution, bounded in number, so that no flood of long calls
 * delays a block.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZERO_HASH, signCall } from '../../consensus/index.js';
import { CloisterClient, RpcError, RpcErrorCodes } from '../../node/client/index.js';
import { DEFAULT_RPC_LIMITS } from '../../node/rpc/index.js';
import { ROOT, cleanupNodes, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

const HOSTILE = join(ROOT, 'test/fixtures/contracts/hostile');
let node: TestNode;
let client: CloisterClient;
let chainId: string;

beforeAll(async () => {
  node = await startNode(tempDir(), ['--contract', HOSTILE]);
  client = new CloisterClient(node.rpcUrl, { timeoutMs: 60_000 });
  chainId = (await client.status()).chainId;
});
afterAll(cleanupNodes);

const codeOf = async (p: Promise<unknown>): Promise<string | undefined> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return err instanceof RpcError ? (err.chainCode ?? `rpc ${err.code}`) : String(err);
};

describe('who a read-only call runs as', () => {
  it('an unsigned call is anonymous; a signed one runs as its signer', async () => {
    expect((await client.call('hostile', 'whoami', [])).result).toBe(ZERO_HASH);
    const alice = newSigner();
    expect((await client.call('hostile', 'whoami', [], { signer: alice })).result).toBe(alice.publicKey);
  });

  it('refuses a forged, replayed-for-another-call, expired or far-future signature', async () => {
    const alice = newSigner();
    const call = { contract: 'hostile', method: 'whoami', args: [] };
    const good = signCall(chainId, call, alice, Date.now());
    const raw = (auth: unknown): Promise<unknown> => client.request('chain_call', 'hostile', 'whoami', [], auth as never);
    await expect(raw(good)).resolves.toMatchObject({ result: alice.publicKey });
    // Someone else's key with Alice's signature.
    expect(await codeOf(raw({ ...good, caller: newSigner().publicKey }))).toBe('CALL_UNAUTHORIZED');
    // Alice's signature of another call.
    const other = signCall(chainId, { ...call, method: 'peek' }, alice, Date.now());
    expect(await codeOf(raw(other))).toBe('CALL_UNAUTHORIZED');
    // Expired long before the last block, or valid too far ahead.
    expect(await codeOf(raw(signCall(chainId, call, alice, Date.now() - 3_600_000)))).toBe('CALL_UNAUTHORIZED');
    const farAhead = signCall(chainId, call, alice, Date.now() + 3_600_000);
    expect(await codeOf(raw(farAhead))).toBe('CALL_UNAUTHORIZED');
    // The old form, a bare caller key, is refused: a caller must sign.
    expect(await codeOf(raw(alice.publicKey))).toBe('rpc -32602');
  });
});

describe('read-only calls never delay a block', () => {
  it('a flood of calls that each burn their whole gas: blocks and transactions go on, and calls past the bound are refused at once', async () => {
    // 28 calls kept in flight (each one that ends is replaced) until the transaction
    // has committed: under one client's limit of requests in flight, so this client can
    // still send its transaction, and the flood lasts however slow the machine is.
    const FLOOD = 28;
    let flooding = true;
    const outcomes: (string | undefined)[] = [];
    const pump = async (): Promise<void> => {
      while (flooding) {
        const outcome = await codeOf(client.call('hostile', 'burn', []));
        outcomes.push(outcome);
        // Refused at the bound (the extra calls below hold the slot): this pump is done.
        if (outcome !== 'CALL_FAILED') return;
      }
    };
    const flood = Array.from({ length: FLOOD }, pump);
    // While they run on the enclave's call thread, a transaction is committed.
    const receipt = await execute(new CloisterClient(node.rpcUrl), newSigner(), 'counter', 'increment');
    expect(receipt.status).toBe('success');
    // More calls while this client's slots are taken are refused at once, not queued
    // without end: 12 more pass the bound unless 8 of the flood end in the same instant.
    const { maxRequestsPerClient } = DEFAULT_RPC_LIMITS;
    const extraCount = maxRequestsPerClient - FLOOD + 8;
    const extra = await Promise.all(Array.from({ length: extraCount }, () => codeOf(client.call('hostile', 'burn', []))));
    flooding = false;
    expect(extra).toContain(`rpc ${RpcErrorCodes.TOO_MANY_REQUESTS}`);
    await Promise.all(flood);
    // Each call ran out of its gas; none stalled the node. A replacement the flood sent
    // while the extra calls held this client's slots is refused at the bound like them.
    const tally: Record<string, number> = {};
    for (const c of outcomes) tally[String(c)] = (tally[String(c)] ?? 0) + 1;
    expect(Object.keys(tally).filter((c) => c !== 'CALL_FAILED' && c !== `rpc ${RpcErrorCodes.TOO_MANY_REQUESTS}`)).toEqual([]);
    expect(tally['CALL_FAILED'] ?? 0).toBeGreaterThanOrEqual(FLOOD);
    expect((await client.call('hostile', 'whoami', [])).result).toBe(ZERO_HASH);
  }, 120_000);
});
