import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerHash, proposalMessage, signTx, verifyEd25519, voteMessage, type Genesis, type SignedTx } from '../../consensus/index.js';
import type { BlockResult } from '../../contracts/index.js';
import { prepareDevChain, readGenesisFile } from '../../node/dev/dev-chain.js';
import { EnclaveHost } from '../../node/enclave/enclave-host.js';
import { measureEnclaveProgram } from '../../node/enclave/measurement.js';
import { VirtualPlatform, loadOrCreatePlatformSecret, loadOrCreateVirtualRoot } from '../../node/enclave/virtual-platform.js';
import { silentLogger, type Logger } from '../../node/log/logger.js';
import { ROOT, cleanupNodes, tempDir } from '../helpers/dev-node.js';
import { newSigner } from '../helpers/tx.js';

const HOSTILE = join(ROOT, 'test/fixtures/contracts/hostile');

let genesis: Genesis;
let platform: VirtualPlatform;
let dir: string;
let sealedFiles = 0;
const hosts: EnclaveHost[] = [];
/** Enclave identities made before the genesis, which lists them as validators (only validators propose and sign). */
const VALIDATORS = 10;

function newHost(sealedFile = join(dir, `sealed-${sealedFiles++}.json`), on = platform, log: Logger = silentLogger): EnclaveHost {
  const host = new EnclaveHost(on, log, sealedFile);
  hosts.push(host);
  host.start();
  return host;
}

async function freshEnclave(sealedFile?: string, log?: Logger): Promise<{ host: EnclaveHost; genesisHeader: import('../../consensus/index.js').BlockHeader }> {
  if (sealedFile === undefined && sealedFiles >= VALIDATORS) throw new Error('more enclaves than validators: raise VALIDATORS');
  const host = newHost(sealedFile, platform, log);
  await host.openIdentity();
  const init = await host.init({ genesis, nodeId: 'node-1', freshness: 'f', resume: null });
  return { host, genesisHeader: init.genesisBlock!.header };
}

beforeAll(async () => {
  dir = tempDir();
  const { config } = await prepareDevChain({ dataDir: dir, rpcPort: 0, now: 1_700_000_000_000, extraContracts: [HOSTILE], log: silentLogger });
  const devGenesis = readGenesisFile(config.genesisFile);
  const secret = loadOrCreatePlatformSecret(join(dir, 'platform-secret'));
  platform = new VirtualPlatform(loadOrCreateVirtualRoot(config.enclave.virtualRootFile), measureEnclaveProgram().measurement, secret);
  const validators: Genesis['validators'] = [];
  for (let i = 0; i < VALIDATORS; i++) {
    const host = new EnclaveHost(platform, silentLogger, join(dir, `sealed-${i}.json`));
    host.start();
    const opened = await host.openIdentity();
    await host.stop();
    validators.push({ nodeId: `node-${i}`, voteKey: opened.publicKeys.vote! });
  }
  genesis = { ...devGenesis, validators };
});

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await cleanupNodes();
});

function comparable(result: BlockResult) {
  const { header } = result;
  return {
    txRoot: header.txRoot,
    receiptsRoot: header.receiptsRoot,
    stateRoot: header.stateRoot,
    receipts: result.receipts,
    writeSet: result.writeSet,
    txHashes: result.txHashes,
  };
}

describe('deterministic execution', () => {
  it('gives the same genesis, state root, gas and receipts in two fresh enclaves when one executes the block the other proposed', async () => {
    const a = await freshEnclave();
    const b = await freshEnclave();
    expect(headerHash(a.genesisHeader)).toBe(headerHash(b.genesisHeader));

    const owner = newSigner();
    const users = [newSigner(), newSigner(), newSigner()];
    const tx = (s: ReturnType<typeof newSigner>, nonce: number, contract: string, method: string, args: unknown[], gasLimit = 500_000): SignedTx =>
      signTx({ chainId: genesis.chainId, from: s.publicKey, nonce, contract, method, args: args as never, gasLimit }, s);
    const txs: SignedTx[] = [
      tx(users[0]!, 0, 'counter', 'increment', []),
      tx(users[1]!, 0, 'counter', 'increment', []),
      tx(users[0]!, 1, 'counter', 'increment', []),
      tx(users[1]!, 1, 'counter', 'increment', []),
      tx(owner, 0, 'token', 'mint', [users[2]!.publicKey, 5]), // not the owner: fails the same way everywhere
      tx(users[2]!, 0, 'hostile', 'spin', [], 250_000),
      tx(users[2]!, 1, 'hostile', 'fail', ['no']),
      tx(users[2]!, 2, 'hostile', 'allocate', []),
      tx(users[2]!, 3, 'counter', 'increment', []),
    ];
    const time = genesis.time + 1000;
    const ra = await a.host.proposeBlock({ time, txs });
    // The first block also commits the proposer's consortium-secret candidate (a system transaction, first).
    // (No attestation for the ledger: these enclaves run as node-1, which the genesis does not list, so their claim would be refused.)
    expect(ra.added.map((t) => (t as { method?: string }).method)).toEqual(['commitSecret']);
    const blockTxs = [...ra.added, ...txs];
    const rb = await b.host.executeBlock({ header: ra.header, txs: blockTxs });
    expect(ra.txHashes).toHaveLength(blockTxs.length);
    expect(comparable(ra)).toEqual(comparable(rb));
    expect(ra.receipts.map((r) => r.status)).toEqual([
      'success', 'success', 'success', 'success', 'success', 'failed', 'failed', 'failed', 'failed', 'success',
    ]);
    expect(ra.receipts[6]!.error?.code).toBe('OUT_OF_GAS');
    expect(ra.receipts[6]!.gasUsed).toBe(250_000);

    // A third enclave re-executes a's block (validate mode) and reaches the same roots.
    const c = await freshEnclave();
    const rc = await c.host.executeBlock({ header: ra.header, txs: blockTxs });
    expect(rc.blockHash).toBe(ra.blockHash);
    // A block whose state root was tampered with is refused.
    const d = await freshEnclave();
    await expect(
      d.host.executeBlock({ header: { ...ra.header, stateRoot: 'f'.repeat(64) }, txs: blockTxs }),
    ).rejects.toMatchObject({ code: 'BLOCK_INVALID' });
  });

  it('leaves out transactions with a bad nonce or signature when proposing', async () => {
    const a = await freshEnclave();
    const s = newSigner();
    const good = signTx({ chainId: genesis.chainId, from: s.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, s);
    const gap = signTx({ chainId: genesis.chainId, from: s.publicKey, nonce: 5, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, s);
    const forged = { ...good, nonce: 1 };
    const r = await a.host.proposeBlock({ time: genesis.time + 1, txs: [good, gap, forged] });
    expect(r.included).toEqual([0]);
    expect(r.added.map((t) => t.contract)).toEqual(['consortium']);
    expect(r.excluded.map((e) => e.code).sort()).toEqual(['TX_BAD_SIGNATURE', 'TX_NONCE_GAP']);
  });

  it('names the transactions its enclave admitted by hash, and sends them in full once the enclave no longer holds them', async () => {
    const debug: string[] = [];
    const log: Logger = { ...silentLogger, debug: (msg: string) => void debug.push(msg), child: () => log };
    const a = await freshEnclave(undefined, log);
    const s = newSigner();
    const first = signTx({ chainId: genesis.chainId, from: s.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, s);
    const [verdict] = await a.host.admitTxs([first]);
    expect(verdict).toMatchObject({ ok: true });
    const hash = (verdict as { hash: string }).hash;
    const byHash = await a.host.proposeBlock({ time: genesis.time + 1, txs: [first] });
    expect(byHash.included).toEqual([0]);
    expect(byHash.txHashes).toContain(hash);
    expect(debug.filter((m) => m.includes('no longer holds'))).toEqual([]);

    // More than the enclave keeps (64 MiB of admitted transactions): the oldest, `first`, is forgotten.
    const big = 'x'.repeat(30_000);
    for (let chunk = 0; chunk < 12; chunk++) {
      const txs = Array.from({ length: 200 }, () => {
        const u = newSigner();
        return signTx({ chainId: genesis.chainId, from: u.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [big], gasLimit: 1_000_000 }, u);
      });
      expect((await a.host.admitTxs(txs)).every((r) => r.ok)).toBe(true);
    }
    const again = await a.host.proposeBlock({ time: genesis.time + 1, txs: [first] });
    expect(debug.filter((m) => m.includes('no longer holds'))).toHaveLength(1);
    expect(again.included).toEqual([0]);
    expect(again.txHashes).toContain(hash);
  });

  it('never hands out a private key: the enclave answers only with public data', async () => {
    const host = newHost();
    const keys = await host.openIdentity();
    const init = await host.init({ genesis, nodeId: 'node-1', freshness: 'x', resume: null });
    expect(init.identity.publicKeys).toEqual(keys.publicKeys);
    const text = JSON.stringify(init);
    expect(Object.keys(init.identity.publicKeys)).toEqual(['vote', 'encryption', 'token']);
    expect(text).not.toMatch(/privateKey|PRIVATE KEY/);
  });
});

describe('enclave voting rules', () => {
  it('signs votes only for blocks it validated, and never two conflicting ones for one slot', async () => {
    const a = await freshEnclave();
    const s = newSigner();
    const tx = signTx({ chainId: genesis.chainId, from: s.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, s);
    const block = await a.host.proposeBlock({ time: genesis.time + 5, txs: [tx] });
    const vote = { chainId: genesis.chainId, type: 'prevote' as const, height: 1, round: 1, blockHash: block.blockHash };
    const signed = await a.host.signVote(vote);
    expect(verifyEd25519(signed.validator, voteMessage(vote), signed.signature)).toBe(true);
    // Asking again for the same vote is fine; for another block in the same slot is not.
    await expect(a.host.signVote(vote)).resolves.toEqual(signed);
    await expect(a.host.signVote({ ...vote, blockHash: null })).rejects.toMatchObject({ code: 'VOTE_CONFLICT' });
    // A block this enclave never executed gets no vote; a nil vote in a fresh slot is fine.
    await expect(a.host.signVote({ ...vote, round: 2, blockHash: 'ab'.repeat(32) })).rejects.toMatchObject({ code: 'BLOCK_NOT_VALIDATED' });
    await expect(a.host.signVote({ ...vote, round: 3, blockHash: null })).resolves.toMatchObject({ validator: signed.validator });
    // Votes are for the next height only.
    await expect(a.host.signVote({ ...vote, height: 5 })).rejects.toMatchObject({ code: 'BLOCK_INVALID' });
    // Proposals: one per slot, and signed under their own domain.
    const proposal = { chainId: genesis.chainId, height: 1, round: 4, polRound: -1, blockHash: block.blockHash };
    const p = await a.host.signProposal(proposal);
    expect(verifyEd25519(p.validator, proposalMessage({ chainId: genesis.chainId, height: 1, round: 4, polRound: -1, block: { header: block.header, txs: [tx] } }), p.signature)).toBe(true);
    expect(verifyEd25519(p.validator, voteMessage({ ...vote, round: 4 }), p.signature)).toBe(false);
    await expect(a.host.signProposal({ ...proposal, polRound: 7 })).rejects.toMatchObject({ code: 'BLOCK_INVALID' });
    // Nothing below the last signed slot, not even a fresh one (Tendermint's last-sign state).
    await expect(a.host.signVote({ ...vote, type: 'precommit', round: 2, blockHash: null })).rejects.toMatchObject({ code: 'VOTE_CONFLICT' });
  });

  it('keeps its vote key and what it signed across a restart, sealed to its program', async () => {
    const sealedFile = join(dir, `sealed-${sealedFiles++}.json`);
    const a = await freshEnclave(sealedFile);
    const s = newSigner();
    const tx = signTx({ chainId: genesis.chainId, from: s.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, s);
    const block = await a.host.proposeBlock({ time: genesis.time + 5, txs: [tx] });
    const vote = { chainId: genesis.chainId, type: 'prevote' as const, height: 1, round: 0, blockHash: block.blockHash };
    const signed = await a.host.signVote(vote);
    await a.host.stop();

    // The same program on the same platform opens the same identity, and refuses to sign nil where it voted for a block.
    const b = await freshEnclave(sealedFile);
    // It validates the block it proposed before (a new proposal would differ: its attestation's evidence is fresh).
    await b.host.executeBlock({ header: block.header, txs: [...block.added, tx] });
    await expect(b.host.signVote({ ...vote, blockHash: null })).rejects.toMatchObject({ code: 'VOTE_CONFLICT' });
    await expect(b.host.signVote(vote)).resolves.toEqual(signed);

    // Another program (another measurement) cannot open it: its sealing key differs.
    const other = new VirtualPlatform(
      loadOrCreateVirtualRoot(join(dir, 'virtual-root.json')),
      'ab'.repeat(48),
      loadOrCreatePlatformSecret(join(dir, 'platform-secret')),
    );
    await expect(newHost(sealedFile, other).openIdentity()).rejects.toMatchObject({ code: 'SEAL_INVALID' });
  });
});
