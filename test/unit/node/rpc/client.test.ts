import { Ed25519Signer, checkCallAuth, generateEd25519KeyPair, type CallAuth } from '../../../../consensus/index.js';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientError, CloisterClient, RpcError, RpcErrorCodes } from '../../../../node/client/index.js';
import {
  CALL_RESULT,
  CONTRACTS,
  ENCRYPTION_KEY,
  EVIDENCE,
  GENESIS,
  RECEIPT,
  SEALED,
  SEALED_CALL_RESULT,
  TOKEN,
  STATUS,
  TX,
  TX_VIEW,
  blockView,
  h,
  startServer,
  type Harness,
} from './fixtures.js';

let t: Harness;
let client: CloisterClient;
beforeAll(async () => {
  t = await startServer({ maxBatchSize: 50, maxBodyBytes: 64 * 1024 });
  client = new CloisterClient(t.url);
});
afterAll(async () => {
  await t.server.stop();
});

describe('CloisterClient typed methods', () => {
  it('returns the views of the ChainApi', async () => {
    expect(await client.blockNumber()).toBe(1);
    expect(await client.getBlockByNumber(1)).toEqual(blockView(false));
    expect(await client.getBlockByNumber('latest', true)).toEqual(blockView(true));
    expect(await client.getBlockByNumber(2)).toBeNull();
    expect(await client.getBlockByHash(h('d'), true)).toEqual(blockView(true));
    expect(await client.sendTransaction({ ...TX, nonce: 5 })).toBe('5'.padStart(64, '0'));
    expect(await client.getTransaction(TX_VIEW.hash)).toEqual(TX_VIEW);
    expect(await client.getTransaction(h('0'))).toBeNull();
    expect(await client.getTransactionReceipt(RECEIPT.txHash)).toEqual(RECEIPT);
    expect(await client.getNonce(h('a'))).toBe(3);
    expect(await client.call('counter', 'get', [1])).toEqual(CALL_RESULT);
    expect(t.api.calls.at(-1)).toEqual({ method: 'call', args: ['counter', 'get', [1], undefined] });
    const signer = new Ed25519Signer(generateEd25519KeyPair().privateKey);
    expect(await client.call('counter', 'get', [], { signer, chainId: 'c' })).toEqual(CALL_RESULT);
    const auth = t.api.calls.at(-1)!.args[3] as CallAuth;
    expect(auth.caller).toBe(signer.publicKey);
    expect(checkCallAuth('c', { contract: 'counter', method: 'get', args: [] }, auth, Date.now())).toBe(signer.publicKey);
    expect(await client.getEvidence()).toEqual(EVIDENCE);
    expect(await client.listContracts()).toEqual(CONTRACTS);
    expect(await client.status()).toEqual(STATUS);
    expect((await client.rpcDiscover()).openrpc).toBe('1.2.6');
  });

  it('reaches the confidential and attestation methods, and a sealed call goes out as chain_call(contract, sealed)', async () => {
    expect(await client.getEncryptionKey('ab'.repeat(16))).toEqual(ENCRYPTION_KEY);
    expect(t.api.calls.at(-1)).toEqual({ method: 'getEncryptionKey', args: ['ab'.repeat(16)] });
    expect(await client.getGenesis()).toEqual(GENESIS);
    expect(await client.getAttestationToken('cd'.repeat(16), 'vault')).toEqual(TOKEN);
    expect(t.api.calls.at(-1)).toEqual({ method: 'getAttestationToken', args: ['cd'.repeat(16), 'vault'] });
    expect(await client.rawRequest('chain_call', ['analytics', SEALED])).toEqual(SEALED_CALL_RESULT);
    expect(t.api.calls.at(-1)).toEqual({ method: 'sealedCall', args: ['analytics', SEALED] });
    // A sealed call carries its args inside the seal: args beside it are refused at the edge.
    await expect(client.rawRequest('chain_call', ['analytics', SEALED, []])).rejects.toMatchObject({ chainCode: 'INVALID_ARGS' });
    await expect(client.rawRequest('chain_call', ['counter', 'get'])).rejects.toMatchObject({ chainCode: 'INVALID_ARGS' });
    // A key this fake node's evidence cannot back is refused before anything is sealed.
    await expect(client.encryptionKey(GENESIS)).rejects.toMatchObject({ code: 'KEY_UNVERIFIED' });
  });

  it('throws RpcError with code, data and chainCode', async () => {
    const err = await client.sendTransaction({ ...TX, nonce: 99 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    const rpcError = err as RpcError;
    expect(rpcError.code).toBe(RpcErrorCodes.TX_NONCE_GAP);
    expect(rpcError.chainCode).toBe('TX_NONCE_GAP');
    expect(rpcError.data).toEqual({ code: 'TX_NONCE_GAP', expected: 0, got: 99 });
    expect(rpcError.message).toBe('nonce 99 skips ahead of 0');
    expect(rpcError.method).toBe('chain_sendTransaction');
    expect(rpcError.is('TX_NONCE_GAP')).toBe(true);

    const invalid = (await client.getNonce('nope').catch((e: unknown) => e)) as RpcError;
    expect(invalid.code).toBe(-32602);
    expect(invalid.chainCode).toBeUndefined();
    expect(invalid.data).toMatchObject({ param: 'address' });

    const missing = (await client.rawRequest('no_such').catch((e: unknown) => e)) as RpcError;
    expect(missing.code).toBe(-32601);
  });

  it('refuses NaN, ±Infinity and -0 before sending (JSON would make them null and 0), as INVALID_ARGS', async () => {
    const before = t.api.calls.length;
    for (const [value, shown] of [[Infinity, 'Infinity'], [-Infinity, '-Infinity'], [NaN, 'NaN'], [-0, '-0']] as const) {
      const err = (await client.call('counter', 'get', [1, { deep: [value] }]).catch((e: unknown) => e)) as RpcError;
      expect(err).toBeInstanceOf(RpcError);
      expect(err.is('INVALID_ARGS')).toBe(true);
      expect(err.chainCode).toBe('INVALID_ARGS');
      expect(err.method).toBe('chain_call');
      expect(err.data).toMatchObject({ code: 'INVALID_ARGS', path: '/2/1/deep/0' });
      expect(err.message).toContain(shown);
    }
    expect(t.api.calls.length).toBe(before);
    // A number JSON carries but the API does not (1.5) is sent, and the node refuses it the same way.
    const fraction = (await client.call('counter', 'get', [1.5]).catch((e: unknown) => e)) as RpcError;
    expect(fraction.chainCode).toBe('INVALID_ARGS');
    expect(fraction.data).toMatchObject({ param: 'args', path: '/0' });
    expect(t.api.calls.length).toBe(before);
  });

  it('in a batch only the entry with an unsendable number is refused; the others are sent', async () => {
    const batch = client.batch();
    const bad = batch.add('chain_call', 'counter', 'get', [Infinity]);
    const good = batch.add('chain_blockNumber');
    const results = await batch.send();
    expect(results.get(bad)).toMatchObject({ ok: false, error: { chainCode: 'INVALID_ARGS' } });
    expect(results.get(good)).toEqual({ ok: true, value: 1 });
    const alone = client.batch();
    const only = alone.add('chain_call', 'counter', 'get', [NaN]);
    expect((await alone.send()).get(only).ok).toBe(false);
  });

  it('turns HTTP-level JSON-RPC errors (413) into RpcError', async () => {
    const err = (await client.call('counter', 'get', ['x'.repeat(70_000)]).catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(RpcError);
    expect(err.code).toBe(RpcErrorCodes.REQUEST_TOO_LARGE);
  });

  it('notify() sends a notification', async () => {
    await client.notify('chain_sendTransaction', [{ ...TX, nonce: 7 }]);
    expect(t.api.calls.at(-1)).toEqual({ method: 'sendTransaction', args: [{ ...TX, nonce: 7 }] });
  });
});

describe('CloisterClient.batch', () => {
  it('sends many requests in one HTTP call and settles each in order', async () => {
    let posts = 0;
    const counting = new CloisterClient(t.url, {
      fetch: (input, init) => {
        posts++;
        return fetch(input, init);
      },
    });
    const batch = counting.batch();
    const txs = Array.from({ length: 40 }, (_, nonce) => ({ ...TX, nonce }));
    const handles = txs.map((tx) => batch.add('chain_sendTransaction', tx));
    const bad = batch.add('chain_sendTransaction', { ...TX, nonce: 99 });
    const nonce = batch.add('chain_getNonce', h('a'));
    const results = await batch.send();
    expect(posts).toBe(1);
    expect(results.length).toBe(42);
    expect(handles.map((handle) => results.value(handle))).toEqual(txs.map((tx) => tx.nonce.toString(16).padStart(64, '0')));
    const failed = results.get(bad);
    expect(failed.ok).toBe(false);
    if (!failed.ok) expect(failed.error.chainCode).toBe('TX_NONCE_GAP');
    expect(() => results.value(bad)).toThrow(RpcError);
    const n: number = results.value(nonce);
    expect(n).toBe(3);
    expect(t.api.calls.filter((c) => c.method === 'sendTransaction').slice(-41).map((c) => (c.args[0] as { nonce: number }).nonce)).toEqual([
      ...txs.map((tx) => tx.nonce),
      99,
    ]);
    await expect(batch.send()).rejects.toThrow(/already sent/);
  });

  it('sendTransactions() is the one-call helper', async () => {
    const results = await client.sendTransactions([{ ...TX, nonce: 1 }, { ...TX, nonce: 99 }]);
    expect(results[0]).toEqual({ ok: true, value: '1'.padStart(64, '0') });
    expect(results[1]?.ok).toBe(false);
  });

  it('an empty batch sends nothing; a batch over the server limit rejects as a whole', async () => {
    expect((await client.batch().send()).length).toBe(0);
    const big = client.batch();
    for (let i = 0; i < 51; i++) big.add('chain_blockNumber');
    const err = (await big.send().catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(RpcError);
    expect(err.code).toBe(RpcErrorCodes.BATCH_TOO_LARGE);
    expect(err.data).toEqual({ limit: 50, size: 51 });
  });
});

describe('CloisterClient.waitForReceipt', () => {
  it('polls until the receipt exists', async () => {
    let polls = 0;
    const original = t.api.getTransactionReceipt.bind(t.api);
    t.api.getTransactionReceipt = async (hash: string) => (++polls < 3 ? null : original(hash));
    try {
      expect(await client.waitForReceipt(RECEIPT.txHash, { pollMs: 1, timeoutMs: 10_000 })).toEqual(RECEIPT);
      expect(polls).toBe(3);
    } finally {
      t.api.getTransactionReceipt = original;
    }
  });

  it('throws ClientError timeout when no receipt appears', async () => {
    const err = (await client.waitForReceipt(h('0'), { pollMs: 5, timeoutMs: 30 }).catch((e: unknown) => e)) as ClientError;
    expect(err).toBeInstanceOf(ClientError);
    expect(err.kind).toBe('timeout');
  });

  it('stops when its signal aborts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop waiting'));
    await expect(client.waitForReceipt(h('0'), { signal: controller.signal })).rejects.toThrow('stop waiting');
  });
});

describe('CloisterClient transport failures', () => {
  let odd: Server;
  let oddUrl: string;
  let hang: (() => void) | undefined;
  beforeAll(async () => {
    odd = createServer((req, res) => {
      if (req.url === '/hang') {
        hang = () => res.end();
        return;
      }
      res.writeHead(req.url === '/500' ? 500 : 200, { 'content-type': 'text/plain' }).end('not json');
    });
    odd.listen(0, '127.0.0.1');
    await once(odd, 'listening');
    oddUrl = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    odd.closeAllConnections();
    odd.close();
    await once(odd, 'close');
  });

  it('reports a non-JSON answer as protocol or http errors', async () => {
    await expect(new CloisterClient(oddUrl).blockNumber()).rejects.toMatchObject({ name: 'ClientError', kind: 'protocol' });
    await expect(new CloisterClient(`${oddUrl}/500`).blockNumber()).rejects.toMatchObject({ kind: 'http', status: 500 });
  });

  it('times out after timeoutMs', async () => {
    const slow = new CloisterClient(`${oddUrl}/hang`, { timeoutMs: 50 });
    await expect(slow.blockNumber()).rejects.toMatchObject({ name: 'ClientError', kind: 'timeout' });
    hang?.();
  });

  it('reports an unreachable server as a network error', async () => {
    const stopped = await startServer();
    const url = stopped.url;
    await stopped.server.stop();
    await expect(new CloisterClient(url).blockNumber()).rejects.toMatchObject({ kind: 'network' });
  });
});
