import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChainError,
  DEFAULT_CONSENSUS_PARAMS,
  generateEd25519KeyPair,
  parseGenesis,
  signTx,
  type JsonValue,
  type SignedTx,
} from '../../../consensus/index.js';
import { Enclave, type AdmissionResult, type EnclavePlatform } from '../../../contracts/index.js';
import { TxAdmission } from '../../../node/mempool/admission.js';
import { Mempool } from '../../../node/mempool/mempool.js';
import { newSigner } from '../../helpers/tx.js';

/**
 * The reproduction, over the real admission path: the host's
 * TxAdmission in front of a real mempool, and the enclave's own admission
 * check (the same code its verifier threads run) behind it.
 */

const CHAIN = 'test-chain';
const EXAMPLES = join(import.meta.dirname, '../../../contracts/examples');
const IDENTITY = '01' + '00'.repeat(31);

/** A transaction "from" the identity point: R = identity and S = 0 verify under OpenSSL alone for any message. */
const forged: SignedTx = {
  chainId: CHAIN,
  from: IDENTITY,
  nonce: 0,
  contract: 'counter',
  method: 'increment',
  args: [],
  gasLimit: 100_000,
  signature: IDENTITY + '00'.repeat(32),
};

/** The enclave needs a platform only for its sealing key and evidence, which this test does not look at. */
const platform: EnclavePlatform = {
  getSealingKey: async () => new Uint8Array(32).fill(7),
  getReport: async () => ({ platform: 'test', measurement: '00'.repeat(48), evidence: new Uint8Array(0) }),
};

let enclave: Enclave;
let mempool: Mempool;
let admission: TxAdmission;
const sentToEnclave: SignedTx[][] = [];

beforeAll(async () => {
  enclave = await Enclave.create(platform);
  await enclave.handle({ type: 'unseal', sealed: [] });
  const genesis = parseGenesis({
    chainId: CHAIN,
    time: 0,
    members: [{ id: 'member', publicKey: generateEd25519KeyPair().publicKey }],
    validators: [{ nodeId: 'node-1', voteKey: generateEd25519KeyPair().publicKey }],
    contracts: [
      {
        name: 'counter',
        manifest: JSON.parse(readFileSync(join(EXAMPLES, 'counter/manifest.json'), 'utf8')) as JsonValue,
        code: readFileSync(join(EXAMPLES, 'counter/contract.js'), 'utf8'),
        initArgs: [],
      },
    ],
    enclave: { measurements: {}, virtualRoots: [] },
    policy: { allowedPlatforms: ['virtual'], measurements: { virtual: ['ab'.repeat(48)] }, allowVirtual: true },
    consensus: { ...DEFAULT_CONSENSUS_PARAMS },
  });
  await enclave.handle({ type: 'init', genesis, nodeId: 'node-1', freshness: 'f', resume: null });
  mempool = new Mempool();
  admission = new TxAdmission({
    chainId: CHAIN,
    maxGasLimit: DEFAULT_CONSENSUS_PARAMS.maxGasLimit,
    mempool,
    verify: (txs) => {
      sentToEnclave.push(txs);
      return enclave.handle({ type: 'admitTxs', txs }) as Promise<AdmissionResult[]>;
    },
    checkTarget: () => {},
    committedNonce: () => 0,
    learnNonce: () => {},
  });
});

afterAll(() => enclave.dispose());

describe('admission of a transaction from a key that signs without a private key', () => {
  it('admits a well-signed transaction (the path works)', async () => {
    const signer = newSigner();
    const tx = signTx({ chainId: CHAIN, from: signer.publicKey, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000 }, signer);
    const hash = await admission.submit(tx);
    expect(mempool.has(hash)).toBe(true);
  });

  it('the host refuses "from" 0100…00 with S = 0 as TX_MALFORMED before the enclave is asked', () => {
    const before = sentToEnclave.length;
    const sizeBefore = mempool.size;
    let error: unknown;
    try {
      void admission.submit(forged);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ChainError);
    expect((error as ChainError).code).toBe('TX_MALFORMED');
    expect((error as ChainError).message).toMatch(/small order/);
    expect(sentToEnclave.length).toBe(before);
    expect(mempool.size).toBe(sizeBefore);
  });

  it('the enclave refuses it too, whoever offers it', async () => {
    const [result] = (await enclave.handle({ type: 'admitTxs', txs: [forged] })) as AdmissionResult[];
    expect(result).toMatchObject({ ok: false, code: 'TX_MALFORMED' });
  });
});
