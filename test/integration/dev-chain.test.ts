import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ed25519Signer, type SignedTx } from '../../consensus/index.js';
import { checkReportData, reportDataFor, verifyAttestationToken, verifyEvidence, verifyVirtualEvidence } from '../../attestation/index.js';
import { importJWK, jwtVerify } from 'jose';
import { CloisterClient, RpcError } from '../../node/client/index.js';
import { ROOT, cleanupNodes, runCli, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { buildTx, execute, executeSealed, newSigner } from '../helpers/tx.js';
import { readGenesisFile } from '../../node/dev/dev-chain.js';
import { readKeyFile } from '../../node/keys/key-file.js';

const HOSTILE = join(ROOT, 'test/fixtures/contracts/hostile');

let node: TestNode;
let client: CloisterClient;
let owner: Ed25519Signer;

beforeAll(async () => {
  node = await startNode(tempDir(), ['--contract', HOSTILE]);
  client = new CloisterClient(node.rpcUrl);
  const member = JSON.parse(readFileSync(join(node.dataDir, 'member.json'), 'utf8')) as { privateKey: string };
  owner = new Ed25519Signer(member.privateKey);
});

afterAll(cleanupNodes);

async function rpcErrorOf(promise: Promise<unknown>): Promise<RpcError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError);
    return err as RpcError;
  }
  throw new Error('expected an RPC error');
}

describe('the quick start through the CLI', () => {
  it('creates a key, sends counter.increment with --wait, and reads the counter', async () => {
    const dir = tempDir();
    const keyFile = join(dir, 'alice.json');
    const created = await runCli(['keys', 'new', '--out', keyFile]);
    expect(created.code).toBe(0);
    const before = await runCli(['call', '--rpc', node.rpcUrl, '--contract', 'counter', '--method', 'get', '--args', '[]']);
    expect(before.code).toBe(0);
    const sent = await runCli([
      'tx', 'send', '--rpc', node.rpcUrl, '--key', keyFile, '--contract', 'counter', '--method', 'increment', '--args', '[]', '--wait',
    ]);
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(0);
    const receipt = JSON.parse(sent.stdout) as { status: string; txHash: string; blockHeight: number; gasUsed: number; events: unknown[] };
    expect(receipt.status).toBe('success');
    expect(receipt.blockHeight).toBeGreaterThan(0);
    expect(receipt.gasUsed).toBeGreaterThan(0);
    expect(receipt.events).toHaveLength(1);
    const after = await runCli(['call', '--rpc', node.rpcUrl, '--contract', 'counter', '--method', 'get', '--args', '[]']);
    expect(Number(after.stdout.trim())).toBe(Number(before.stdout.trim()) + 1);
  });

  it('seals for a confidential contract only against a trusted genesis: a file, or the served one pinned by its hash', async () => {
    const dir = tempDir();
    const keyFile = join(dir, 'hospital.json');
    expect((await runCli(['keys', 'new', '--out', keyFile])).code).toBe(0);
    const submit = ['tx', 'send', '--rpc', node.rpcUrl, '--key', keyFile, '--contract', 'analytics', '--method', 'submit', '--args', '["neurology", 3]', '--wait'];
    // No trust anchor: refused before anything is sealed or sent.
    const untrusted = await runCli(submit);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/confidential: give --genesis FILE/);
    const genesisFile = join(node.dataDir, 'genesis.json');
    const hash = (await client.status()).genesisHash;
    const wrongPin = await runCli([...submit, '--genesis-hash', 'ab'.repeat(32)]);
    expect(wrongPin.code).toBe(1);
    expect(wrongPin.stderr).toMatch(/not the pinned/);
    const me = readKeyFile(keyFile).publicKey;
    expect(await client.getNonce(me)).toBe(0);
    // Pinned by hash, said so on stderr; the receipt's sealed answer is opened for the sender.
    const pinned = await runCli([...submit, '--genesis-hash', hash]);
    expect(pinned.code).toBe(0);
    expect(pinned.stderr).toContain(`pinned by its hash ${hash}`);
    const receipt = JSON.parse(pinned.stdout) as { events: unknown[]; sealed: string; opened: { events: { name: string }[] } };
    expect(receipt.events).toEqual([]);
    expect(receipt.sealed.length).toBeGreaterThan(0);
    expect(receipt.opened.events.map((e) => e.name)).toEqual(['Submitted']);
    const fromFile = await runCli([...submit, '--genesis', genesisFile]);
    expect(fromFile.code).toBe(0);
    const stats = await runCli(['call', '--rpc', node.rpcUrl, '--contract', 'analytics', '--method', 'stats', '--args', '["neurology"]', '--genesis', genesisFile, '--key', keyFile]);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ category: 'neurology', count: 2, sum: 6 });
  });

  it('prints one clear line and exits non-zero on errors', async () => {
    const bad = await runCli(['call', '--rpc', node.rpcUrl, '--contract', 'nope', '--method', 'get', '--args', '[]']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/nope/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const badArgs = await runCli(['call', '--rpc', node.rpcUrl, '--contract', 'counter', '--method', 'get', '--args', '{oops']);
    expect(badArgs.code).not.toBe(0);
    expect(badArgs.stderr).toMatch(/--args/);
    const missingKey = await runCli(['tx', 'send', '--rpc', node.rpcUrl, '--key', '/nonexistent.json', '--contract', 'counter', '--method', 'increment']);
    expect(missingKey.code).not.toBe(0);
    expect(missingKey.stderr).toMatch(/key file/);
  });

  it('status shows the chain, height and enclave measurement', async () => {
    const out = await runCli(['status', '--json', '--rpc', node.rpcUrl]);
    expect(out.code).toBe(0);
    const status = JSON.parse(out.stdout) as { chainId: string; platform: string; measurement: string };
    expect(status.chainId).toBe('cloister-dev');
    expect(status.platform).toBe('virtual');
    const measured = await runCli(['enclave', 'measure']);
    expect(status.measurement).toBe(measured.stdout.trim());
    const listed = JSON.parse((await runCli(['enclave', 'measure', '--json'])).stdout) as { measurement: string; files: string[] };
    expect(listed.measurement).toBe(status.measurement);
    expect(listed.files).toContain('dist/contracts/enclave/worker.js');
    expect(listed.files.some((f) => f.endsWith('.wasm'))).toBe(true);
    expect(listed.files.every((f) => !f.startsWith('/'))).toBe(true);
  });
});

describe('example contracts', () => {
  it('token: only the owner mints; transfers move balances; overdrafts fail', async () => {
    const alice = newSigner();
    const bob = newSigner();
    expect((await execute(client, owner, 'token', 'mint', [alice.publicKey, 100])).status).toBe('success');
    const forged = await execute(client, alice, 'token', 'mint', [alice.publicKey, 1_000_000]);
    expect(forged.status).toBe('failed');
    expect(forged.error?.code).toBeTruthy();
    expect((await execute(client, alice, 'token', 'transfer', [bob.publicKey, 30])).status).toBe('success');
    const overdraft = await execute(client, bob, 'token', 'transfer', [alice.publicKey, 31]);
    expect(overdraft.status).toBe('failed');
    expect((await client.call('token', 'balanceOf', [alice.publicKey])).result).toBe(70);
    expect((await client.call('token', 'balanceOf', [bob.publicKey])).result).toBe(30);
  });

  it('analytics (confidential): several parties submit sealed records, anyone reads only aggregates, sealed', async () => {
    const genesis = readGenesisFile(join(node.dataDir, 'genesis.json'));
    const hospitals = [newSigner(), newSigner(), newSigner()];
    const stays = [4, 6, 11];
    for (let i = 0; i < hospitals.length; i++) {
      const receipt = await executeSealed(client, genesis, hospitals[i]!, 'analytics', 'submit', ['cardiology', stays[i]!]);
      expect(receipt.status).toBe('success');
      // The event is the sender's alone: sealed in the receipt, opened here.
      expect(receipt.events).toEqual([]);
      expect(receipt.opened.events).toEqual([{ contract: 'analytics', name: 'Submitted', data: { category: 'cardiology' } }]);
    }
    const key = await client.encryptionKey(genesis);
    const stats = (await client.sealedCall('analytics', 'stats', ['cardiology'], key)).result as { count: number; sum: number; mean: string };
    expect(stats.count).toBe(3);
    expect(stats.sum).toBe(21);
    expect(stats.mean).toBe('7.00');
    const contracts = await client.listContracts();
    const analytics = contracts.find((c) => c.name === 'analytics')!;
    expect((analytics.manifest as { confidential?: boolean }).confidential).toBe(true);
    const methods = Object.keys((analytics.manifest as { methods: Record<string, unknown> }).methods);
    expect(methods.some((m) => /record|raw|get_?records/i.test(m))).toBe(false);
    // In the clear, a confidential contract takes nothing.
    expect((await rpcErrorOf(execute(client, hospitals[0]!, 'analytics', 'submit', ['cardiology', 1]))).chainCode).toBe('TX_NOT_ENCRYPTED');
    expect((await rpcErrorOf(client.call('analytics', 'stats', ['cardiology']))).chainCode).toBe('TX_NOT_ENCRYPTED');
  });
});

describe('hostile contracts fail their transaction, never the node', () => {
  it.each([
    ['an infinite loop', 'spin', [], 'OUT_OF_GAS'],
    ['a huge allocation', 'allocate', [], undefined],
    ['a throw', 'fail', ['boom'], 'CONTRACT_ERROR'],
  ])('%s gives a failed receipt', async (_, method, args, code) => {
    const sender = newSigner();
    const receipt = await execute(client, sender, 'hostile', method as string, args as [], { gasLimit: 2_000_000 });
    expect(receipt.status).toBe('failed');
    expect(receipt.error?.message).toBeTruthy();
    if (code) expect(receipt.error?.code).toBe(code);
    // The node goes on: the sender's nonce was consumed and a later transaction commits.
    expect(await client.getNonce(sender.publicKey)).toBe(1);
    expect((await execute(client, sender, 'counter', 'increment')).status).toBe('success');
  });

  it("discards a failed transaction's state writes", async () => {
    const receipt = await execute(client, newSigner(), 'hostile', 'fail', ['after a write']);
    expect(receipt.status).toBe('failed');
    expect(receipt.events).toEqual([]);
    expect((await client.call('hostile', 'peek', [])).result).toBeNull();
  });

  it('out of gas happens at the same point every time', async () => {
    const a = await execute(client, newSigner(), 'hostile', 'spin', [], { gasLimit: 300_000 });
    const b = await execute(client, newSigner(), 'hostile', 'spin', [], { gasLimit: 300_000 });
    expect(a.error?.code).toBe('OUT_OF_GAS');
    expect(a.gasUsed).toBe(b.gasUsed);
  });
});

describe('bad input gets its documented error and changes nothing', () => {
  async function expectRefused(tx: unknown, chainCode: string): Promise<void> {
    const height = await client.blockNumber();
    const err = await rpcErrorOf(client.sendTransaction(tx as SignedTx));
    expect((err.data as { code: string }).code).toBe(chainCode);
    expect(err.code).toBeLessThanOrEqual(-32000);
    expect(await client.blockNumber()).toBe(height);
  }

  it('refuses a bad signature', async () => {
    const s = newSigner();
    const tx = await buildTx(client, s, 'counter', 'increment');
    await expectRefused({ ...tx, signature: tx.signature.replace(/^../, tx.signature.startsWith('00') ? '11' : '00') }, 'TX_BAD_SIGNATURE');
    expect(await client.getNonce(s.publicKey)).toBe(0);
  });

  it('refuses another chain id', async () => {
    await expectRefused(await buildTx(client, newSigner(), 'counter', 'increment', [], { chainId: 'other-chain' }), 'TX_WRONG_CHAIN');
  });

  it('refuses a replayed nonce and one too far ahead, and holds one a little ahead until the gap fills', async () => {
    const s = newSigner();
    const first = await buildTx(client, s, 'counter', 'increment');
    const hash = await client.sendTransaction(first);
    await client.waitForReceipt(hash, { timeoutMs: 20_000, pollMs: 20 });
    const err = await rpcErrorOf(client.sendTransaction(first));
    expect(['TX_NONCE_TOO_LOW', 'TX_DUPLICATE']).toContain((err.data as { code: string }).code);
    await expectRefused(await buildTx(client, s, 'counter', 'increment', [1], { nonce: 0 }), 'TX_NONCE_TOO_LOW');
    await expectRefused(await buildTx(client, s, 'counter', 'increment', [], { nonce: 100 }), 'TX_NONCE_GAP');
    expect(await client.getNonce(s.publicKey)).toBe(1);
    // Nonce 2 waits for 1; once 1 arrives both commit, in nonce order.
    const ahead = await client.sendTransaction(await buildTx(client, s, 'counter', 'increment', [], { nonce: 2 }));
    expect(await client.getTransaction(ahead)).toMatchObject({ nonce: 2, blockHeight: null });
    const gap = await client.sendTransaction(await buildTx(client, s, 'counter', 'increment', [], { nonce: 1 }));
    const [r1, r2] = await Promise.all([gap, ahead].map((h) => client.waitForReceipt(h, { timeoutMs: 20_000, pollMs: 20 })));
    expect(r1!.status).toBe('success');
    expect(r2!.status).toBe('success');
    expect([r1!.blockHeight, r1!.index]).not.toEqual([r2!.blockHeight, r2!.index]);
    expect(r1!.blockHeight * 1e6 + r1!.index).toBeLessThan(r2!.blockHeight * 1e6 + r2!.index);
    expect(await client.getNonce(s.publicKey)).toBe(3);
  });

  it('refuses an oversized transaction', async () => {
    await expectRefused(await buildTx(client, newSigner(), 'counter', 'increment', ['x'.repeat(40_000)]), 'TX_TOO_LARGE');
  });

  it('refuses an unknown contract or method', async () => {
    await expectRefused(await buildTx(client, newSigner(), 'nosuch', 'increment'), 'TX_UNKNOWN_CONTRACT');
    await expectRefused(await buildTx(client, newSigner(), 'counter', 'nosuch'), 'TX_UNKNOWN_METHOD');
  });

  it('refuses a malformed transaction as invalid params', async () => {
    const tx = await buildTx(client, newSigner(), 'counter', 'increment');
    const height = await client.blockNumber();
    for (const bad of [{ ...tx, nonce: 'one' }, { ...tx, from: 'zz' }, { ...tx, extra: 1 }, 'a string']) {
      const err = await rpcErrorOf(client.sendTransaction(bad as unknown as SignedTx));
      expect(err.code).toBe(-32602);
    }
    expect(await client.blockNumber()).toBe(height);
  });

  it('answers malformed JSON-RPC with the specification codes', async () => {
    const post = async (body: string): Promise<{ status: number; json: unknown }> => {
      const res = await fetch(node.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : null };
    };
    expect(((await post('{not json')).json as { error: { code: number } }).error.code).toBe(-32700);
    expect(((await post('{"jsonrpc":"2.0","id":1}')).json as { error: { code: number } }).error.code).toBe(-32600);
    expect(((await post('{"jsonrpc":"2.0","id":1,"method":"nope"}')).json as { error: { code: number } }).error.code).toBe(-32601);
    expect(
      ((await post('{"jsonrpc":"2.0","id":1,"method":"chain_getBlockByNumber","params":["abc"]}')).json as { error: { code: number } }).error.code,
    ).toBe(-32602);
    expect(((await post('{"jsonrpc":"2.0","id":1,"method":"chain_call","params":[1,2,3]}')).json as { error: { code: number } }).error.code).toBe(-32602);
    expect(((await post('[]')).json as { error: { code: number } }).error.code).toBe(-32600);
    // The node is still serving.
    expect(await client.blockNumber()).toBeGreaterThan(0);
  });
});

describe('blocks, transactions and evidence', () => {
  it('serves blocks by number and hash with their header fields and certificate', async () => {
    const receipt = await execute(client, newSigner(), 'counter', 'increment');
    const block = (await client.getBlockByNumber(receipt.blockHeight, true))!;
    for (const field of ['hash', 'height', 'parentHash', 'time', 'txRoot', 'receiptsRoot', 'stateRoot', 'transactions'] as const) {
      expect(block).toHaveProperty(field);
    }
    expect(block.height).toBe(receipt.blockHeight);
    expect((block.transactions as { hash: string }[]).map((t) => t.hash)).toContain(receipt.txHash);
    expect(block.certificate?.signatures).toHaveLength(1);
    const byHash = (await client.getBlockByHash(block.hash))!;
    expect(byHash.stateRoot).toBe(block.stateRoot);
    const parent = (await client.getBlockByNumber(block.height - 1))!;
    expect(block.parentHash).toBe(parent.hash);
    const tx = (await client.getTransaction(receipt.txHash))!;
    expect(tx.blockHeight).toBe(block.height);
    expect(await client.getBlockByNumber(10_000_000)).toBeNull();
    expect(await client.getTransactionReceipt('0'.repeat(64))).toBeNull();
  });

  it('returns a receipt only once the transaction is committed', async () => {
    const tx = await buildTx(client, newSigner(), 'counter', 'increment');
    const hash = await client.sendTransaction(tx);
    const early = await client.getTransactionReceipt(hash);
    const later = (await client.getTransaction(hash))!;
    // A receipt exists only for a committed transaction.
    if (early !== null) expect(later.blockHeight).toBe(early.blockHeight);
    expect(later.hash).toBe(hash);
    const receipt = await client.waitForReceipt(hash, { timeoutMs: 20_000, pollMs: 20 });
    expect(receipt.txHash).toBe(hash);
    expect((await client.getTransaction(hash))!.blockHeight).toBe(receipt.blockHeight);
  });

  it("serves the enclave's evidence, which verifies against the declared virtual root", async () => {
    const ev = await client.getEvidence();
    expect(ev.platform).toBe('virtual');
    expect(ev.measurement).toMatch(/^[0-9a-f]{96}$/);
    const result = verifyVirtualEvidence(Buffer.from(ev.evidence, 'base64'), { trustedRoots: [ev.virtualRoot!], now: new Date() });
    expect(result.measurement).toBe(ev.measurement);
    expect(result.reportData).toBe(ev.reportData);
  });

  it('serves an attestation token: a standard EdDSA JWT by the enclave\'s token key (not its vote key), over fresh evidence bound to the nonce', async () => {
    const genesis = readGenesisFile(join(node.dataDir, 'genesis.json'));
    const nonce = 'ab'.repeat(32);
    const { token, evidence } = await client.getAttestationToken(nonce, 'https://vault.example');
    expect(evidence.freshness).toBe(nonce);
    expect(evidence.publicKeys.token).toMatch(/^[0-9a-f]{64}$/);
    expect(evidence.publicKeys.token).not.toBe(evidence.publicKeys.vote);
    // The relying party: the evidence first (root from the genesis, binding to the nonce), then the token.
    const result = verifyEvidence(new Uint8Array(Buffer.from(evidence.evidence, 'base64')), { now: new Date(), trustedRoots: { virtual: genesis.enclave.virtualRoots } });
    checkReportData(result, reportDataFor({ publicKeys: evidence.publicKeys, chainId: genesis.chainId, nodeId: evidence.nodeId, freshness: nonce }));
    const claims = await verifyAttestationToken(token, {
      evidenceResult: result,
      publicKey: evidence.publicKeys.token!,
      now: new Date(),
      audience: 'https://vault.example',
      binding: { chainId: genesis.chainId, nodeId: evidence.nodeId, freshness: nonce },
    });
    expect(claims).toMatchObject({ measurement: evidence.measurement, audience: 'https://vault.example', issuer: evidence.nodeId, keyId: evidence.publicKeys.token });
    // Standard JWT tooling verifies it with the token key alone; the vote key does not.
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(evidence.publicKeys.token!, 'hex').toString('base64url') };
    const verified = await jwtVerify(token, await importJWK(jwk, 'EdDSA'), { audience: 'https://vault.example' });
    expect(verified.payload['measurement']).toBe(evidence.measurement);
    const voteJwk = { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(evidence.publicKeys.vote!, 'hex').toString('base64url') };
    await expect(jwtVerify(token, await importJWK(voteJwk, 'EdDSA'))).rejects.toThrow();
    // A malformed nonce is refused at the edge.
    expect((await rpcErrorOf(client.getAttestationToken('xyz'))).code).toBe(-32602);
  });

  it('lists the approved contracts with their measurements', async () => {
    const contracts = await client.listContracts();
    expect(contracts.map((c) => c.name)).toEqual(expect.arrayContaining(['counter', 'token', 'analytics']));
    const measured = await runCli(['contract', 'measure', join(ROOT, 'contracts/examples/counter')]);
    expect(contracts.find((c) => c.name === 'counter')!.measurement).toBe(measured.stdout.trim());
  });

  it('refuses a state-changing method in chain_call', async () => {
    const err = await rpcErrorOf(client.call('counter', 'increment', []));
    expect((err.data as { code: string }).code).toBe('TX_READONLY_METHOD');
  });

});
