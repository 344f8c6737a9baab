import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterAll, assert, describe, expect, it } from 'vitest';
import { generateHpkeKeyPair, isSealedTx, signTx, toHex, type Genesis, type JsonValue, type SignedTx } from '../../consensus/index.js';
import { nodePaths } from '../../node/config/node-config.js';
import { readGenesisFile } from '../../node/dev/dev-chain.js';
import { CloisterClient, RpcError, sealTransaction, type VerifiedEncryptionKey } from '../../node/client/index.js';
import { readKeyFile } from '../../node/keys/key-file.js';
import { Consortium, cleanupConsortia, waitUntil } from '../helpers/consortium.js';
import { runCli } from '../helpers/dev-node.js';
import { executeSealed, newSigner } from '../helpers/tx.js';

/**
 * Confidentiality on a real 4-node consortium (separate processes, libp2p on
 * 127.0.0.1, level on disk): distinctive records go in sealed through
 * different nodes and must appear nowhere in the clear (databases, logs, RPC
 * answers), while the aggregate reads back right; a swapped network key is
 * refused before anything is sent; replayed ciphertext fails; the consortium
 * secret survives kill -9 and a whole-network restart.
 */

const TEST_TIMEOUT = 240_000;

// Nine-digit values (the contract's bound is 1e9) and a category no other text contains, so a chance match is negligible.
const CATEGORY = 'zq7-oncology';
const VALUE_A = 777_700_123;
const VALUE_B = 888_800_234;

function needles(): string[] {
  const list = [CATEGORY, String(VALUE_A), String(VALUE_B)];
  for (const v of [VALUE_A, VALUE_B]) list.push(v.toString(16), v.toString(16).toUpperCase());
  // The JSON that carried them.
  list.push(JSON.stringify([CATEGORY, VALUE_A]), JSON.stringify([CATEGORY, VALUE_B]), `"args":["${CATEGORY}"`);
  return list;
}

function findNeedles(haystack: string, where: string, found: string[]): void {
  for (const needle of needles()) if (haystack.includes(needle)) found.push(`${where}: ${needle}`);
}

async function scanDatabase(dir: string, where: string, found: string[]): Promise<number> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  let entries = 0;
  try {
    for await (const [key, value] of db.iterator()) {
      entries++;
      findNeedles(key.toString('latin1') + '\u0000' + value.toString('latin1'), `${where} entry ${key.toString('latin1').slice(0, 60)}`, found);
    }
  } finally {
    await db.close();
  }
  return entries;
}

/** Every file under dir, read as bytes (sealed identities, keys, configs, the database's own files). */
function scanFiles(dir: string, where: string, found: string[]): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) scanFiles(path, `${where}/${name}`, found);
    else findNeedles(readFileSync(path).toString('latin1'), `${where}/${name}`, found);
  }
}

/** A man in the middle between a client and node: relays JSON-RPC, rewriting tee_getEncryptionKey's answers. */
async function startInterceptor(target: string, rewrite: (result: Record<string, unknown>) => void): Promise<{ url: string; server: Server; forwarded: string[] }> {
  const forwarded: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const parsed = JSON.parse(body.toString('utf8')) as { method?: string } | { method?: string }[];
      const methods = (Array.isArray(parsed) ? parsed : [parsed]).map((r) => r.method ?? '');
      forwarded.push(...methods);
      const upstream = httpRequest(target, { method: 'POST', headers: { 'content-type': 'application/json' } }, (up) => {
        const out: Buffer[] = [];
        up.on('data', (c: Buffer) => out.push(c));
        up.on('end', () => {
          let text = Buffer.concat(out).toString('utf8');
          if (methods.includes('tee_getEncryptionKey')) {
            const answer = JSON.parse(text) as { result?: Record<string, unknown> };
            if (answer.result) rewrite(answer.result);
            text = JSON.stringify(answer);
          }
          res.writeHead(up.statusCode ?? 200, { 'content-type': 'application/json' });
          res.end(text);
        });
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, server, forwarded };
}

async function waitForSecret(c: Consortium, nodes: number[]): Promise<void> {
  await waitUntil(
    async () => {
      for (const i of nodes) if ((await c.client(i).status()).secrets?.held.includes(1) !== true) return false;
      return true;
    },
    60_000,
    `nodes ${nodes.join(', ')} to hold the consortium secret`,
    200,
  );
}

const servers: Server[] = [];

afterAll(async () => {
  for (const s of servers) s.close();
  await cleanupConsortia();
});

describe('confidential contracts on a 4-node consortium', () => {
  it(
    'sealed records through two nodes leave no plaintext in any database, log or RPC answer; the aggregate is right; a swapped key is refused; replays fail',
    async () => {
      const c = await Consortium.create({ nodes: 4 });
      const genesis: Genesis = readGenesisFile(c.genesisFile);
      expect(genesis.contracts.find((k) => k.name === 'analytics')?.manifest).toMatchObject({ confidential: true });
      await c.startAll();
      await waitForSecret(c, [1, 2, 3, 4]);

      // Every node offers the same network key, and each one's evidence binds it.
      const keys = await Promise.all([1, 2, 3, 4].map((i) => c.client(i).encryptionKey(genesis)));
      expect(new Set(keys.map((k) => toHex(k.publicKey))).size).toBe(1);
      expect(new Set(keys.map((k) => k.nodeId)).size).toBe(4);

      const hospitalA = newSigner();
      const hospitalB = newSigner();
      const rpcAnswers: unknown[] = [];
      const hashes: string[] = [];
      for (let round = 0; round < 2; round++) {
        const a = await executeSealed(c.client(1), genesis, hospitalA, 'analytics', 'submit', [CATEGORY, VALUE_A]);
        const b = await executeSealed(c.client(3), genesis, hospitalB, 'analytics', 'submit', [CATEGORY, VALUE_B]);
        for (const receipt of [a, b]) {
          expect(receipt.status).toBe('success');
          expect(receipt.opened.events).toEqual([{ contract: 'analytics', name: 'Submitted', data: { category: CATEGORY } }]);
          hashes.push(receipt.txHash);
          // What the test opened stays in the test: only what the node answered is kept for the search.
          const { opened: _opened, ...asAnswered } = receipt;
          rpcAnswers.push(asAnswered);
        }
      }
      // The aggregate, read sealed through a third node, is right.
      const stats = (await c.client(2).sealedCall('analytics', 'stats', [CATEGORY], keys[1]!)).result as { count: number; sum: number };
      expect(stats).toMatchObject({ count: 4, sum: 2 * (VALUE_A + VALUE_B) });
      expect((await c.client(4).sealedCall('analytics', 'contributors', [], keys[3]!)).result).toBe(2);

      // A ciphertext replayed under another sender, nonce or contract does not open; a plaintext call is refused.
      await expectReplaysRefused(c.client(2), genesis, keys[1]!);

      // A man in the middle swaps the network key: the client refuses it and sends nothing.
      const attacker = generateHpkeKeyPair();
      const swapKey = await startInterceptor(c.client(1).url, (result) => {
        result['publicKey'] = toHex(attacker.publicKey);
      });
      const swapAll = await startInterceptor(c.client(1).url, (result) => {
        result['publicKey'] = toHex(attacker.publicKey);
        (result['evidence'] as { publicKeys: Record<string, string> }).publicKeys['network'] = toHex(attacker.publicKey);
      });
      servers.push(swapKey.server, swapAll.server);
      const keyFile = join(c.dir, 'victim.json');
      expect((await runCli(['keys', 'new', '--out', keyFile])).code).toBe(0);
      const victim = readKeyFile(keyFile);
      for (const mitm of [swapKey, swapAll]) {
        const client = new CloisterClient(mitm.url);
        await expect(client.encryptionKey(genesis)).rejects.toMatchObject({ code: 'KEY_UNVERIFIED' });
        const sent = await runCli(['tx', 'send', '--rpc', mitm.url, '--key', keyFile, '--contract', 'analytics', '--method', 'submit', '--args', JSON.stringify([CATEGORY, VALUE_A]), '--genesis', c.genesisFile, '--wait']);
        expect(sent.code).not.toBe(0);
        expect(sent.stderr).toMatch(/not accepted.*nothing was sent/s);
        expect(mitm.forwarded).not.toContain('chain_sendTransaction');
      }
      expect(await c.client(1).getNonce(victim.publicKey)).toBe(0);

      // Collect what any RPC client can read: every block with full transactions, every transaction and receipt.
      const head = await c.height(2);
      for (let h = 0; h <= head; h++) rpcAnswers.push(await c.client(2).getBlockByNumber(h, true));
      for (const hash of hashes) {
        for (const i of [1, 2, 3, 4]) {
          rpcAnswers.push(await c.client(i).getTransaction(hash), await c.client(i).getTransactionReceipt(hash));
        }
      }
      rpcAnswers.push(await c.client(1).status(), await c.client(1).nodes(), await c.client(1).getEncryptionKey());
      const found: string[] = [];
      findNeedles(JSON.stringify(rpcAnswers), 'RPC answers', found);
      // A sealed transaction carries its sender, contract and sizes in the clear, never its method or arguments.
      const tx = await c.client(2).getTransaction(hashes[0]!);
      expect(tx).toHaveProperty('sealed');
      expect(tx).not.toHaveProperty('args');
      expect(tx).not.toHaveProperty('method');
      // The client sealed each hospital's transactions in one session: the second is message 1 of the first's context.
      const second = await c.client(2).getTransaction(hashes[2]!);
      assert(tx && isSealedTx(tx) && second && isSealedTx(second), 'both transactions are sealed');
      expect(second.sealed.seq).toBe(1);
      expect(second.sealed.enc).toBe(tx.sealed.enc);

      // After the nodes stop: every key and value of every database, every file of every node, every log line.
      await Promise.all(c.all.map((i) => c.stop(i)));
      for (const i of c.all) {
        const dataDir = c.config(i).dataDir;
        expect(await scanDatabase(nodePaths(dataDir).db, `node ${i} db`, found)).toBeGreaterThan(10);
        scanFiles(dataDir, `node ${i} dir`, found);
        findNeedles(readFileSync(c.node(i).logFile, 'utf8'), `node ${i} log`, found);
      }
      expect(found).toEqual([]);

      // The whole network stopped; started again, it executes confidential transactions (each enclave unsealed its secret).
      await c.startAll();
      await waitForSecret(c, [1, 2, 3, 4]);
      const again = await executeSealed(c.client(4), genesis, hospitalA, 'analytics', 'submit', [CATEGORY, 1]);
      expect(again.status).toBe('success');

      // kill -9 one node: restarted, it executes and validates confidential transactions again.
      await c.kill(2);
      await c.start(2);
      await waitForSecret(c, [2]);
      const afterKill = await executeSealed(c.client(2), genesis, hospitalB, 'analytics', 'submit', [CATEGORY, 2]);
      expect(afterKill.status).toBe('success');
      await c.waitForHeights([1, 2, 3, 4], afterKill.blockHeight);
      const key = await c.client(2).encryptionKey(genesis);
      expect((await c.client(2).sealedCall('analytics', 'stats', [CATEGORY], key)).result).toMatchObject({ count: 7, sum: 2 * (VALUE_A + VALUE_B) + 5 + 1 + 2 });
      await c.assertSameBlocks([1, 2, 3, 4]);
    },
    TEST_TIMEOUT,
  );
});

async function expectReplaysRefused(client: CloisterClient, genesis: Genesis, key: VerifiedEncryptionKey): Promise<void> {
  const alice = newSigner();
  const mallory = newSigner();
  const nonce = await client.getNonce(alice.publicKey);
  const body = { chainId: genesis.chainId, from: alice.publicKey, nonce, contract: 'analytics', method: 'submit', args: [CATEGORY, 5] as JsonValue[], gasLimit: 1_000_000 };
  const { tx } = sealTransaction(body, alice, key);
  const sealed = (tx as Extract<SignedTx, { sealed: unknown }>).sealed;
  const refusedWith = async (forged: SignedTx, code: string): Promise<void> => {
    const err = await client.sendTransaction(forged).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, `a replay expected to fail with ${code}`).toBeInstanceOf(RpcError);
    expect((err as RpcError).chainCode).toBe(code);
  };
  const { method: _m, args: _a, ...envelope } = body;
  // Another sender signs the same ciphertext as its own.
  await refusedWith(signTx({ ...envelope, from: mallory.publicKey, nonce: await client.getNonce(mallory.publicKey), sealed }, mallory), 'DECRYPT_FAILED');
  // The same sender, another nonce.
  await refusedWith(signTx({ ...envelope, nonce: nonce + 1, sealed }, alice), 'DECRYPT_FAILED');
  // Another contract: a public one refuses sealed calls outright; the ciphertext is bound to "analytics" anyway.
  await refusedWith(signTx({ ...envelope, contract: 'counter', sealed }, alice), 'TX_MALFORMED');
  // The original goes through (one more record of 5).
  const hash = await client.sendTransaction(tx);
  expect((await client.waitForReceipt(hash, { timeoutMs: 20_000, pollMs: 20 })).status).toBe('success');
  // A plaintext transaction to the confidential contract is refused.
  await refusedWith(signTx({ ...body, nonce: nonce + 1 }, alice), 'TX_NOT_ENCRYPTED');
}
