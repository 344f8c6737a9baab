import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signTx, type SignedTx } from '../../consensus/index.js';
import { CloisterClient, RpcError, RpcErrorCodes } from '../../node/client/index.js';
import { DEFAULT_RPC_LIMITS } from '../../node/rpc/index.js';
import { cleanupNodes, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

// Each address in 127.0.0.0/8 is this host; the node counts each as another client.
const ATTACKER = '127.0.0.2';
const BYSTANDER = '127.0.0.3';
const GiB = 1024 * 1024 * 1024;

let node: TestNode;
let client: CloisterClient;
let pid: number;

/** A contract with read-only methods: `echo` returns its arguments (what chain_call delivers, exactly); `spin` runs out of gas. */
function echoContract(): string {
  const dir = join(tempDir('cloister-echo-'), 'echo');
  mkdirSync(dir);
  const methods = {
    echo: { readonly: true, description: 'Returns its arguments.' },
    spin: { readonly: true, description: 'Loops until it runs out of gas.' },
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ name: 'echo', version: '1.0.0', description: 'Test calls.', methods }));
  writeFileSync(join(dir, 'contract.js'), 'export function echo(...args) { return args; }\nexport function spin() { let i = 0; for (;;) i++; }\n');
  return dir;
}

beforeAll(async () => {
  node = await startNode(tempDir(), ['--contract', echoContract()]);
  client = new CloisterClient(node.rpcUrl);
  pid = node.process.pid!;
});

afterAll(cleanupNodes);

/** Peak and current resident memory of the node process, in bytes. */
function memoryOf(processId: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${processId}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  return { hwm: kib('VmHWM'), rss: kib('VmRSS') };
}

function openFds(processId: number): number {
  return readdirSync(`/proc/${processId}/fd`).length;
}

async function postRaw(body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(node.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, text: await res.text() };
}

/** A JSON-RPC call over a fresh connection from `localAddress`. */
function callFrom(localAddress: string, method: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(node.rpcUrl, { method: 'POST', localAddress, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method }));
  });
}

/**
 * Sends `senders × perSender` signed counter.increment transactions as
 * several batches at once (one sender's nonces in order within one batch), so
 * that the enclave admits thousands in one turn and blocks fill up.
 */
async function fillBlocks(senders: number, perSender: number): Promise<string[]> {
  const { chainId } = await client.status();
  const batches: SignedTx[][] = Array.from({ length: 8 }, () => []);
  for (let s = 0; s < senders; s++) {
    const signer = newSigner();
    for (let nonce = 0; nonce < perSender; nonce++) {
      batches[s % batches.length]!.push(
        signTx({ chainId, from: signer.publicKey, nonce, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, signer),
      );
    }
  }
  const sent = await Promise.all(batches.map((txs) => new CloisterClient(node.rpcUrl).sendTransactions(txs)));
  return sent.flat().map((settled) => {
    if (!settled.ok) throw settled.error;
    return settled.value;
  });
}

describe('a batch of 2000 × chain_getBlockByNumber(h, true) on a full block', () => {
  it('is answered within the byte budget with errors past it, and the node stays up, keeps committing and stays small', async () => {
    const start = await client.blockNumber();
    const hashes = await fillBlocks(40, 100);
    await Promise.all(hashes.slice(-8).map((hash) => client.waitForReceipt(hash, { timeoutMs: 60_000, pollMs: 50 })));
    const head = await client.blockNumber();
    const headers = client.batch();
    const handles = [];
    for (let height = start + 1; height <= head; height++) handles.push(headers.add('chain_getBlockByNumber', height, false));
    const blocks = await headers.send();
    const fullest = handles.map((handle) => blocks.value(handle)!).sort((a, b) => b.transactions.length - a.transactions.length)[0]!;
    // How full the fullest block is depends on timing (about 250 to 2000 transactions under load); what the test
    // needs is that 2000 copies of it are several times the batch budget, so that some are refused.
    const oneBlockBytes = Buffer.byteLength(JSON.stringify(await client.getBlockByNumber(fullest.height, true)));
    expect(oneBlockBytes * 2000).toBeGreaterThan(4 * DEFAULT_RPC_LIMITS.maxBatchResponseBytes);

    const body = JSON.stringify(
      Array.from({ length: 2000 }, (_, id) => ({ jsonrpc: '2.0', id, method: 'chain_getBlockByNumber', params: [fullest.height, true] })),
    );
    const reply = await postRaw(body);
    expect(reply.status).toBe(200);
    expect(Buffer.byteLength(reply.text)).toBeLessThanOrEqual(DEFAULT_RPC_LIMITS.maxBatchResponseBytes + 2000 * 200);
    const answers = JSON.parse(reply.text) as { id: number; result?: { hash: string; transactions: { hash: string }[] }; error?: { code: number } }[];
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: 2000 }, (_, id) => id));
    const served = answers.filter((a) => a.result);
    const refused = answers.filter((a) => a.error);
    expect(served.length).toBeGreaterThan(0);
    expect(served.length + refused.length).toBe(2000);
    for (const a of served) {
      expect(a.result!.hash).toBe(fullest.hash);
      expect(a.result!.transactions).toHaveLength(fullest.transactions.length);
    }
    expect(new Set(refused.map((a) => a.error!.code))).toEqual(new Set([RpcErrorCodes.BATCH_BUDGET_EXCEEDED]));

    // The old code built all 2000 (gigabytes) and died; now the node never holds much more than the budget.
    expect(memoryOf(pid).hwm).toBeLessThan(GiB);
    expect(node.process.exitCode).toBeNull();
    const height = await client.blockNumber();
    expect((await execute(client, newSigner(), 'counter', 'increment')).status).toBe('success');
    expect(await client.blockNumber()).toBeGreaterThan(height);
    // A smaller request for the same block is served in full.
    expect((await client.getBlockByNumber(fullest.height, true))!.transactions).toHaveLength(fullest.transactions.length);
  }, 180_000);
});

describe('hundreds of connections from one client', () => {
  const sockets: Socket[] = [];
  afterAll(() => sockets.forEach((s) => s.destroy()));

  /** Opens a connection from the attacker; `slowBody` sends headers and part of a body, then nothing. */
  async function attack(slowBody: boolean): Promise<Socket> {
    const socket = connect({ port: Number(new URL(node.rpcUrl).port), host: '127.0.0.1', localAddress: ATTACKER });
    sockets.push(socket);
    socket.on('error', () => {});
    socket.on('data', () => {});
    await once(socket, 'connect').catch(() => {});
    if (slowBody && !socket.destroyed) {
      socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":');
    }
    return socket;
  }

  it('are refused past the per-client cap, another client is served, and the node’s file descriptors stay bounded', async () => {
    const before = openFds(pid);
    const { maxConnectionsPerClient } = DEFAULT_RPC_LIMITS;
    await Promise.all(Array.from({ length: 100 }, () => attack(true)));
    await Promise.all(Array.from({ length: 300 }, () => attack(false)));
    // The server closes what is over the cap (at once, or after answering 429).
    await vi.waitFor(() => expect(sockets.filter((s) => !s.destroyed && !s.readableEnded).length).toBeLessThanOrEqual(maxConnectionsPerClient), {
      timeout: 10_000,
    });
    expect(openFds(pid)).toBeLessThanOrEqual(before + maxConnectionsPerClient + 16);
    const other = await callFrom(BYSTANDER, 'chain_blockNumber');
    expect(other.status).toBe(200);
    expect(other.json).toMatchObject({ result: expect.any(Number) });
    expect((await execute(client, newSigner(), 'counter', 'increment')).status).toBe('success');

    // Once its connections are gone, the attacker's address is served again.
    sockets.forEach((s) => s.destroy());
    await vi.waitFor(async () => expect((await callFrom(ATTACKER, 'chain_blockNumber')).status).toBe(200), { timeout: 10_000 });
    expect(openFds(pid)).toBeLessThanOrEqual(before + 16);
  }, 60_000);
});

describe('chain_call with numbers JSON cannot carry exactly', () => {
  const call = (argsText: string) => postRaw(`{"jsonrpc":"2.0","id":7,"method":"chain_call","params":["echo","echo",${argsText}]}`);

  it.each([['1e309'], ['1.5'], ['9007199254740993']])('[%s] is refused with INVALID_ARGS', async (literal) => {
    const reply = await call(`[${literal}]`);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text)).toMatchObject({
      id: 7,
      error: { code: RpcErrorCodes.INVALID_ARGS, data: { code: 'INVALID_ARGS', param: 'args', path: '/0' } },
    });
  });

  it('the same call with values carried exactly works and returns them unchanged', async () => {
    const reply = await call('[9007199254740991, -9007199254740991, 1, 1e3]');
    expect(JSON.parse(reply.text)).toMatchObject({ id: 7, result: { result: [9007199254740991, -9007199254740991, 1, 1000] } });
    expect((await client.call('echo', 'echo', [2, 'x', { a: [3] }])).result).toEqual([2, 'x', { a: [3] }]);
  });

  it('the typed client gets an RpcError with chainCode INVALID_ARGS', async () => {
    const err = await client.call('echo', 'echo', [0.5]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).chainCode).toBe('INVALID_ARGS');
    expect((err as RpcError).is('INVALID_ARGS')).toBe(true);
  });
});

describe('read-only calls that run out of gas', () => {
  it('do not stop the chain from committing while a batch of them runs', async () => {
    const before = await client.blockNumber();
    const batch = client.batch();
    const calls = Array.from({ length: 200 }, () => batch.add('chain_call', 'echo', 'spin', []));
    let answered = false;
    const sent = batch.send().finally(() => (answered = true));
    // Each call takes the enclave tens of milliseconds; before, the batch held it for all of them and no block committed.
    let height = before;
    while (!answered && height < before + 2) {
      height = await client.blockNumber();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(answered).toBe(false);
    expect(height).toBeGreaterThanOrEqual(before + 2);
    const results = await sent;
    for (const call of calls) expect(results.get(call)).toMatchObject({ ok: false, error: { chainCode: 'CALL_FAILED' } });
  }, 120_000);
});
