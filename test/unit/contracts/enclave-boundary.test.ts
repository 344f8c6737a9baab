/**
 * The enclave trusts nothing from its host it cannot check: every ecall is
 * parsed inside, a proposed header is checked field by field before the enclave
 * may vote for it, and state loaded at start must match a certified state root.
 * (In-process Enclave over a fake platform: the same code the worker runs.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_CONSENSUS_PARAMS,
  headerHash,
  signTx,
  type BlockHeader,
  type CommitCertificate,
  type Genesis,
  type SignedTx,
  type Vote,
} from '../../../consensus/index.js';
import { Enclave, genesisChainView, parseEcall, type BlockResult, type EnclavePlatform, type InitResponse, type SignResult, type UnsealResponse } from '../../../contracts/index.js';
import { newSigner } from '../../helpers/tx.js';

const EXAMPLES = join(import.meta.dirname, '../../../contracts/examples');
const platform: EnclavePlatform = {
  getReport: async () => ({ platform: 'virtual', measurement: 'ab'.repeat(48), evidence: new Uint8Array([1, 2, 3]) }),
  getSealingKey: async () => new Uint8Array(32).fill(7),
};
const enclaves: Enclave[] = [];

async function newEnclave(): Promise<Enclave> {
  const e = await Enclave.create(platform);
  enclaves.push(e);
  return e;
}

afterAll(async () => {
  await Promise.all(enclaves.map((e) => e.dispose()));
});

/** A single-validator genesis whose validator is the enclave that `sealed` opens to. */
function genesisFor(voteKey: string): Genesis {
  const counter = {
    name: 'counter',
    manifest: JSON.parse(readFileSync(join(EXAMPLES, 'counter/manifest.json'), 'utf8')) as Genesis['contracts'][number]['manifest'],
    code: readFileSync(join(EXAMPLES, 'counter/contract.js'), 'utf8'),
    initArgs: [],
  };
  return {
    chainId: 'boundary',
    time: 1_700_000_000_000,
    members: [],
    validators: [{ nodeId: 'node-1', voteKey }],
    contracts: [counter],
    enclave: { measurements: { virtual: ['ab'.repeat(48)] }, virtualRoots: [] },
    policy: { allowedPlatforms: ['virtual'], measurements: { virtual: ['ab'.repeat(48)] }, allowVirtual: true },
    consensus: { ...DEFAULT_CONSENSUS_PARAMS },
  };
}

let sealed: string;
/** The identity sealed before it signed anything (an old backup of it). */
let sealedBeforeSigning: string;
let genesis: Genesis;
let genesisHeader: BlockHeader;
/** Block 1 (one counter increment), its certificate, and the state after it, as a store would hold them. */
let block1: { result: BlockResult; txs: SignedTx[]; certificate: CommitCertificate; state: [string, string][] };

async function opened(): Promise<{ enclave: Enclave; keys: UnsealResponse }> {
  const enclave = await newEnclave();
  const keys = (await enclave.handle({ type: 'unseal', sealed: sealed ? [sealed] : [] })) as UnsealResponse;
  return { enclave, keys };
}

beforeAll(async () => {
  sealed = '';
  const { enclave, keys } = await opened();
  sealed = keys.sealed;
  sealedBeforeSigning = keys.sealed;
  genesis = genesisFor(keys.publicKeys.vote!);
  const init = (await enclave.handle({ type: 'init', genesis, nodeId: 'node-1', freshness: 'f', resume: null })) as InitResponse;
  genesisHeader = init.genesisBlock!.header;
  const user = newSigner();
  const tx = signTx({ chainId: genesis.chainId, from: user.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 1_000_000 }, user);
  const result = (await enclave.handle({ type: 'proposeBlock', time: genesis.time + 1000, txs: [tx] })) as BlockResult;
  const prevote: Vote = { chainId: genesis.chainId, type: 'prevote', height: 1, round: 0, blockHash: result.blockHash };
  const pv = (await enclave.handle({ type: 'signVote', vote: prevote, justification: [] })) as SignResult;
  const precommit: Vote = { ...prevote, type: 'precommit' };
  const pc = (await enclave.handle({
    type: 'signVote',
    vote: precommit,
    justification: [{ vote: prevote, validator: pv.validator, signature: pv.signature }],
  })) as SignResult;
  sealed = pc.sealed;
  const certificate: CommitCertificate = { height: 1, round: 0, blockHash: result.blockHash, signatures: [{ validator: pc.validator, signature: pc.signature }] };
  await enclave.handle({ type: 'commitBlock', blockHash: result.blockHash, certificate });
  const state = new Map<string, string>();
  for (const [k, v] of [...init.genesisBlock!.writeSet, ...result.writeSet]) {
    if (v === null) state.delete(k);
    else state.set(k, v);
  }
  // The first block also carries the proposer's commitment of its consortium-secret candidate, first.
  // (No attestation for the ledger: this test platform's evidence is not genuine, so the enclave does not offer it.)
  expect(result.added).toHaveLength(1);
  expect(result.added[0]).toMatchObject({ contract: 'consortium', method: 'commitSecret' });
  block1 = {
    result,
    txs: [...result.added, tx],
    certificate,
    state: [...state],
  };
});

describe('every ecall is parsed inside the enclave', () => {
  it('refuses what is not exactly one of the ecalls, with a typed error and no effect', () => {
    const refused = (raw: unknown, code = 'ECALL_INVALID'): void => {
      expect(() => parseEcall(raw), JSON.stringify(raw)?.slice(0, 80)).toThrow(expect.objectContaining({ code }));
    };
    refused(null);
    refused('unseal');
    refused({ type: 'nonsense' });
    refused({ type: 'unseal' });
    refused({ type: 'unseal', sealed: ['x'], extra: 1 });
    refused({ type: 'unseal', sealed: 'not a list' });
    refused({ type: 'commitBlock', blockHash: 'ZZ' });
    refused({ type: 'proposeBlock', time: -1, txs: [] });
    refused({ type: 'proposeBlock', time: 1.5, txs: [] });
    refused({ type: 'proposeBlock', time: 1, txs: {} });
    refused({ type: 'executeBlock', header: { ...genesisHeader, extra: 1 }, txs: [] }, 'BLOCK_INVALID');
    refused({ type: 'executeBlock', header: { ...genesisHeader, proposer: 'nothex' }, txs: [] }, 'BLOCK_INVALID');
    refused({ type: 'signVote', vote: { chainId: 'c', type: 'maybe', height: 1, round: 0, blockHash: null }, justification: [] }, 'BLOCK_INVALID');
    refused({ type: 'signVote', vote: { chainId: 'c', type: 'prevote', height: 1, round: 0, blockHash: null }, justification: [{}] });
    refused({ type: 'signProposal', proposal: { chainId: 'c', height: 1, round: 0, polRound: -2, blockHash: 'ab'.repeat(32) } });
    refused({ type: 'call', contract: 'counter', method: 'get', args: [1.5], auth: null });
    refused({ type: 'call', contract: 'counter', method: 'get', args: [], auth: { caller: 'me', expiresAt: 1, signature: 'ab'.repeat(64) } });
    refused({ type: 'init', genesis: { chainId: 'x' }, nodeId: 'n', freshness: 'f', resume: null }, 'ENCODING_INVALID');
    refused({ type: 'admitTxs', txs: new Array(20_001).fill(0) });
  });

  it('refuses a genesis whose policy or contracts are invalid', async () => {
    const { enclave } = await opened();
    const badPolicy = { ...genesis, policy: { allowedPlatforms: ['nowhere'] } };
    await expect(enclave.handle({ type: 'init', genesis: badPolicy, nodeId: 'node-1', freshness: 'f', resume: null })).rejects.toMatchObject({
      code: 'ECALL_INVALID',
    });
    const badCode = { ...genesis, contracts: [{ ...genesis.contracts[0]!, code: 'this is not javascript (' }] };
    await expect(enclave.handle({ type: 'init', genesis: badCode, nodeId: 'node-1', freshness: 'f', resume: null })).rejects.toMatchObject({
      code: 'ECALL_INVALID',
    });
    // Still not initialised: nothing took effect.
    await expect(enclave.handle({ type: 'proposeBlock', time: 1, txs: [] })).rejects.toMatchObject({ code: 'ECALL_INVALID' });
  });
});

describe('a proposed block is checked field by field before the enclave may vote for it', () => {
  it('refuses forged proposer, validator set, policy, parent and time, and then signs no vote for them', async () => {
    const { enclave } = await opened();
    await enclave.handle({ type: 'init', genesis, nodeId: 'node-1', freshness: 'f', resume: null });
    const { header } = block1.result;
    const view = genesisChainView(genesis);
    expect(header.validatorSetHash).toBe(view.validatorSetHash);
    expect(header.policyHash).toBe(view.policyHash);
    const forgeries: [string, Partial<BlockHeader>][] = [
      ['proposer', { proposer: 'ff'.repeat(32) }],
      ['validatorSetHash', { validatorSetHash: 'ee'.repeat(32) }],
      ['policyHash', { policyHash: 'dd'.repeat(32) }],
      ['parentHash', { parentHash: 'cc'.repeat(32) }],
      ['time', { time: genesis.time - 1 }],
      ['stateRoot', { stateRoot: 'bb'.repeat(32) }],
      ['height', { height: 2 }],
      ['chainId', { chainId: 'other' }],
    ];
    for (const [field, change] of forgeries) {
      const forged = { ...header, ...change };
      await expect(enclave.handle({ type: 'executeBlock', header: forged, txs: block1.txs }), field).rejects.toMatchObject({ code: 'BLOCK_INVALID' });
      const vote: Vote = { chainId: genesis.chainId, type: 'prevote', height: 1, round: 7, blockHash: headerHash(forged) };
      await expect(enclave.handle({ type: 'signVote', vote, justification: [] }), field).rejects.toMatchObject({ code: 'BLOCK_NOT_VALIDATED' });
    }
    // The block as proposed passes, with the same transactions.
    const accepted = (await enclave.handle({ type: 'executeBlock', header, txs: block1.txs })) as BlockResult;
    expect(accepted.blockHash).toBe(block1.result.blockHash);
  });
});

describe('state loaded at start must match the last certified block', () => {
  const resume = (over: Partial<{ header: BlockHeader; certificate: CommitCertificate | null; state: [string, string][] }> = {}) => ({
    type: 'init',
    genesis,
    nodeId: 'node-1',
    freshness: 'f',
    resume: { header: block1.result.header, certificate: block1.certificate, state: block1.state, ...over },
  });

  it('resumes from the stored head and state when they are right', async () => {
    const { enclave } = await opened();
    await enclave.handle(resume());
    const out = (await enclave.handle({ type: 'call', contract: 'counter', method: 'get', args: [], auth: null })) as { result: unknown };
    expect(out.result).toBe(1);
  });

  it('refuses a state with one value edited, one key added or removed', async () => {
    const edited = block1.state.map(([k, v]): [string, string] => (k.startsWith('c:counter:') ? [k, '999'] : [k, v]));
    expect(edited).not.toEqual(block1.state);
    for (const state of [edited, [...block1.state, ['c:counter:extra', '1']] as [string, string][], block1.state.slice(1)]) {
      const { enclave } = await opened();
      await expect(enclave.handle(resume({ state }))).rejects.toMatchObject({ code: 'STATE_INVALID' });
      await expect(enclave.handle({ type: 'call', contract: 'counter', method: 'get', args: [], auth: null })).rejects.toMatchObject({
        code: 'ECALL_INVALID',
      });
    }
  });

  it('refuses a head without its certificate, with a forged one, or a genesis block of another genesis', async () => {
    const { enclave } = await opened();
    await expect(enclave.handle(resume({ certificate: null }))).rejects.toMatchObject({ code: 'STATE_INVALID' });
    const forged = { ...block1.certificate, signatures: [{ ...block1.certificate.signatures[0]!, signature: 'ab'.repeat(64) }] };
    await expect((await opened()).enclave.handle(resume({ certificate: forged }))).rejects.toMatchObject({ code: 'STATE_INVALID' });
    // A header whose state root matches a doctored state is still refused: it is not certified.
    const otherGenesisHead = { ...genesisHeader, time: genesisHeader.time + 1 };
    await expect((await opened()).enclave.handle(resume({ header: otherGenesisHead, certificate: null, state: [] }))).rejects.toMatchObject({
      code: 'STATE_INVALID',
    });
  });
});

describe('blocks are committed only on a certificate the enclave checks', () => {
  it('refuses to commit an executed block without a valid certificate for exactly it', async () => {
    const { enclave } = await opened();
    await enclave.handle({ type: 'init', genesis, nodeId: 'node-1', freshness: 'f', resume: null });
    await enclave.handle({ type: 'executeBlock', header: block1.result.header, txs: block1.txs });
    const forged = { ...block1.certificate, signatures: [{ ...block1.certificate.signatures[0]!, signature: 'ab'.repeat(64) }] };
    await expect(enclave.handle({ type: 'commitBlock', blockHash: block1.result.blockHash, certificate: forged })).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    });
    const otherBlock = { ...block1.certificate, blockHash: 'cd'.repeat(32) };
    await expect(enclave.handle({ type: 'commitBlock', blockHash: block1.result.blockHash, certificate: otherBlock })).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    });
    await expect(enclave.handle({ type: 'commitBlock', blockHash: block1.result.blockHash, certificate: block1.certificate })).resolves.toMatchObject({
      height: 1,
    });
  });

  it('moves its sealed record past its own signature found in a certificate (a backup restored over newer work)', async () => {
    const enclave = await newEnclave();
    const keys = (await enclave.handle({ type: 'unseal', sealed: [sealedBeforeSigning] })) as UnsealResponse;
    expect(keys.lastSign).toBeNull();
    const init = (await enclave.handle(resumeAtBlock1())) as InitResponse;
    expect(init.signer.lastSign).toMatchObject({ height: 1, round: 0, step: 3 });
    expect(init.sealed).not.toBeNull();
  });
});

function resumeAtBlock1() {
  return { type: 'init', genesis, nodeId: 'node-1', freshness: 'f', resume: { header: block1.result.header, certificate: block1.certificate, state: block1.state } };
}

describe('what may be a transaction', () => {
  it('refuses at admission, and never puts in a block, a transaction calling a read-only method or no contract, or with a gas limit below its base cost', async () => {
    const { enclave } = await opened();
    await enclave.handle({ type: 'init', genesis, nodeId: 'node-1', freshness: 'f', resume: null });
    const user = newSigner();
    const tx = (method: string, contract = 'counter', nonce = 0): SignedTx =>
      signTx({ chainId: genesis.chainId, from: user.publicKey, nonce, contract, method, args: [], gasLimit: 1_000_000 }, user);
    const cheap = signTx({ chainId: genesis.chainId, from: user.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 4_999 }, user);
    const verdicts = (await enclave.handle({ type: 'admitTxs', txs: [tx('get'), tx('increment', 'nowhere'), tx('nothing'), cheap, tx('increment')] })) as {
      ok: boolean;
      code?: string;
    }[];
    expect(verdicts.map((v) => (v.ok ? 'ok' : v.code))).toEqual(['TX_READONLY_METHOD', 'TX_UNKNOWN_CONTRACT', 'TX_UNKNOWN_METHOD', 'TX_GAS_LIMIT', 'ok']);
    // A proposer leaves it out of its block; a block that holds it is refused by every validator.
    const built = (await enclave.handle({ type: 'proposeBlock', time: genesis.time + 1, txs: [tx('get'), tx('increment')] })) as BlockResult;
    expect(built.included).toEqual([1]);
    expect(built.excluded).toMatchObject([{ code: 'TX_READONLY_METHOD' }]);
  });
});

describe('a block may name transactions this enclave admitted by their hash', () => {
  it('executes its own admitted copy, refuses a hash it does not hold, and forgets what it committed', async () => {
    // The identity as sealed before it signed block 1: this enclave signs height 1 afresh.
    const enclave = await newEnclave();
    await enclave.handle({ type: 'unseal', sealed: [sealedBeforeSigning] });
    await enclave.handle({ type: 'init', genesis, nodeId: 'node-1', freshness: 'f', resume: null });
    const user = newSigner();
    const tx = signTx({ chainId: genesis.chainId, from: user.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 1_000_000 }, user);
    const [verdict] = (await enclave.handle({ type: 'admitTxs', txs: [tx] })) as { ok: true; hash: string }[];
    expect(verdict!.ok).toBe(true);
    const hash = verdict!.hash;

    // A hash that was never admitted here, and a string that is no hash: refused before anything runs.
    await expect(enclave.handle({ type: 'proposeBlock', time: genesis.time + 1, txs: [hash, 'ab'.repeat(32)] })).rejects.toMatchObject({
      code: 'TX_REF_UNKNOWN',
      details: { hashes: ['ab'.repeat(32)] },
    });
    await expect(enclave.handle({ type: 'proposeBlock', time: genesis.time + 1, txs: ['not a hash'] })).rejects.toMatchObject({ code: 'ECALL_INVALID' });

    // By hash, the block is the one the full transaction makes.
    const byHash = (await enclave.handle({ type: 'proposeBlock', time: genesis.time + 1, txs: [hash] })) as BlockResult;
    const inFull = (await enclave.handle({ type: 'proposeBlock', time: genesis.time + 1, txs: [tx] })) as BlockResult;
    expect(byHash.txHashes).toContain(hash);
    expect(byHash.blockHash).toBe(inFull.blockHash);
    expect(byHash.included).toEqual([0]);
    // A validator's re-execution takes it by hash too.
    const again = (await enclave.handle({ type: 'executeBlock', header: byHash.header, txs: [...byHash.added, hash] })) as BlockResult;
    expect(again.blockHash).toBe(byHash.blockHash);

    // Committed: forgotten (a later block cannot name it), and the full transaction is now a used nonce.
    const prevote: Vote = { chainId: genesis.chainId, type: 'prevote', height: 1, round: 0, blockHash: byHash.blockHash };
    const pv = (await enclave.handle({ type: 'signVote', vote: prevote, justification: [] })) as SignResult;
    const precommit: Vote = { ...prevote, type: 'precommit' };
    const pc = (await enclave.handle({ type: 'signVote', vote: precommit, justification: [{ vote: prevote, validator: pv.validator, signature: pv.signature }] })) as SignResult;
    await enclave.handle({ type: 'commitBlock', blockHash: byHash.blockHash, certificate: { height: 1, round: 0, blockHash: byHash.blockHash, signatures: [{ validator: pc.validator, signature: pc.signature }] } });
    await expect(enclave.handle({ type: 'proposeBlock', time: genesis.time + 2, txs: [hash] })).rejects.toMatchObject({ code: 'TX_REF_UNKNOWN' });
    const later = (await enclave.handle({ type: 'proposeBlock', time: genesis.time + 2, txs: [tx] })) as BlockResult;
    expect(later.included).toEqual([]);
    expect(later.excluded).toMatchObject([{ txHash: hash, code: 'TX_NONCE_TOO_LOW' }]);
  });
});
