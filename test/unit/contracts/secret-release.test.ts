/**
 * Attested release of the consortium secret between validators' enclaves
 * (contracts/enclave/secret-release.ts). The host only carries messages: every
 * decision — which nonce counts, whose evidence is good, which node and key it
 * binds, whether the policy accepts it, whether there is anything to release,
 * and whether a release opens — is made inside the enclave, and a refusal
 * releases nothing.
 *
 * In-process Enclaves over the virtual platform (a pinned virtual root, an
 * enclave measurement): the same code the enclave worker runs.
 */
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateVirtualRoot, type VirtualRoot } from '../../../attestation/index.js';
import {
  DEFAULT_CONSENSUS_PARAMS,
  generateHpkeKeyPair,
  toHex,
  type BlockHeader,
  type CommitCertificate,
  type Genesis,
  type SignedPlainTx,
  type SignedVote,
  type Vote,
} from '../../../consensus/index.js';
import {
  ConsortiumKeys,
  Enclave,
  type AdmissionClaim,
  type BlockResult,
  type CommitResult,
  type EnclavePlatform,
  type EncryptionKeyResponse,
  type InitResponse,
  type SealedRelease,
  type SignResult,
  type UnsealResponse,
} from '../../../contracts/index.js';
import { VirtualPlatform } from '../../../node/enclave/virtual-platform.js';

const MEASUREMENT = 'ab'.repeat(48);
const OTHER_MEASUREMENT = 'cd'.repeat(48);
const CHAIN = 'secret-release';
const GENESIS_TIME = 1_700_000_000_000;

const root = generateVirtualRoot();
const enclaves: Enclave[] = [];

afterAll(async () => {
  await Promise.all(enclaves.map((e) => e.dispose()));
});

/** One enclave with what the test (playing the hardware) knows of it. */
interface Node {
  nodeId: string;
  enclave: Enclave;
  keys: UnsealResponse;
  /** The platform's sealing key for this program: lets the test read what the enclave sealed (the host cannot). */
  sealingKey: Uint8Array;
  /** Every answer this node's host saw, to check none carries a secret. */
  answers: unknown[];
  platform: EnclavePlatform;
}

/** The virtual hardware, as the enclave program sees it (report data as bytes, the sealing key). */
function virtualPlatform(measurement: string, vendorRoot: VirtualRoot = root): EnclavePlatform {
  const vp = new VirtualPlatform({ publicKeyPem: vendorRoot.publicKeyPem, privateKeyPem: vendorRoot.privateKeyPem }, measurement, new Uint8Array(randomBytes(32)));
  return {
    getReport: (reportData) => vp.getReport(toHex(reportData)),
    getSealingKey: () => vp.sealingKey(),
  };
}

async function newNode(nodeId: string, measurement = MEASUREMENT, vendorRoot: VirtualRoot = root): Promise<Node> {
  return openNode(nodeId, virtualPlatform(measurement, vendorRoot), []);
}

/** An enclave on `platform` opening the identity sealed in `sealed` (a new identity when empty). */
async function openNode(nodeId: string, platform: EnclavePlatform, sealed: string[]): Promise<Node> {
  const enclave = await Enclave.create(platform);
  enclaves.push(enclave);
  const keys = (await enclave.handle({ type: 'unseal', sealed })) as UnsealResponse;
  expect(keys.publicKeys).toMatchObject({ vote: expect.stringMatching(/^[0-9a-f]{64}$/), encryption: expect.stringMatching(/^[0-9a-f]{64}$/) });
  return { nodeId, enclave, keys, sealingKey: await platform.getSealingKey(), answers: [keys], platform };
}

/** Test-side only: opens a sealed identity with the platform's sealing key (what only the hardware can do). */
function readSealed(node: Node, sealed: string): { privateKey: string; encryptionKey: string; secrets: Record<string, string> } {
  const outer = JSON.parse(sealed) as { iv: string; ct: string; tag: string };
  const decipher = createDecipheriv('aes-256-gcm', node.sealingKey, Buffer.from(outer.iv, 'base64'));
  decipher.setAAD(Buffer.from('cloister/sealed-identity/v1'));
  decipher.setAuthTag(Buffer.from(outer.tag, 'base64'));
  return JSON.parse(Buffer.concat([decipher.update(Buffer.from(outer.ct, 'base64')), decipher.final()]).toString('utf8')) as ReturnType<typeof readSealed>;
}

async function ecall<T>(node: Node, request: unknown): Promise<T> {
  const answer = (await node.enclave.handle(request)) as T;
  node.answers.push(answer);
  return answer;
}

async function init(node: Node, on: Genesis = genesis): Promise<InitResponse> {
  return ecall<InitResponse>(node, { type: 'init', genesis: on, nodeId: node.nodeId, freshness: 'f', resume: null });
}

/** The releaser's challenge, the requester's claim for it. */
async function claimFor(releaser: Node, requester: Node): Promise<{ nonce: string; claim: AdmissionClaim }> {
  const { nonce } = await ecall<{ nonce: string }>(releaser, { type: 'secretChallenge' });
  expect(nonce).toMatch(/^[0-9a-f]{64}$/);
  const claim = await ecall<AdmissionClaim>(requester, { type: 'secretRequest', nonce });
  return { nonce, claim };
}

function release(releaser: Node, request: { nonce: string; peerNodeId: string; claim: unknown; now?: number }): Promise<SealedRelease> {
  return ecall<SealedRelease>(releaser, { type: 'releaseSecret', now: Date.now(), ...request });
}

/** A refusal: the error code, the admission/attestation code when there is one, and no release in the answer. */
async function expectRefused(answer: Promise<unknown>, code: string, reason?: string): Promise<void> {
  const err = (await answer.then(
    (value) => {
      throw new Error(`expected ${code}${reason ? ` (${reason})` : ''}, got ${JSON.stringify(value).slice(0, 200)}`);
    },
    (e: unknown) => e,
  )) as { code?: string; details?: Record<string, unknown>; message: string };
  expect(err.code, err.message).toBe(code);
  if (reason !== undefined) expect(err.details?.['reason'], err.message).toBe(reason);
  expect(err.message).not.toContain(consortiumSecretHex);
  expect(JSON.stringify(err.details ?? {})).not.toContain(consortiumSecretHex);
}

/** The node still holds no consortium secret: it cannot give clients a network key. */
async function expectStillMissing(node: Node): Promise<void> {
  await expectRefused(node.enclave.handle({ type: 'getEncryptionKey', freshness: 'x' }), 'SECRET_UNAVAILABLE');
}

/** Everything a value's JSON must not contain for these secret bytes (hex either case, base64). */
function forms(hex: string): string[] {
  return [hex, hex.toUpperCase(), Buffer.from(hex, 'hex').toString('base64')];
}

// The chain: validators node-1 (releaser A, proposer of block 1), node-2 (requester B), node-3 (requester X),
// node-4 (requester D: a genuine enclave on the same virtual root, but another program measurement).
let A: Node;
let B: Node;
let X: Node;
let D: Node;
let genesis: Genesis;
/** Generation 1 of the consortium secret: A's candidate, which block 1 committed. */
let consortiumSecretHex = 'not yet known';
let commits: Map<Node, CommitResult>;
/** Generation 1's network public key, as block 1 commits it. */
let committedKey: string;

beforeAll(async () => {
  A = await newNode('node-1');
  B = await newNode('node-2');
  X = await newNode('node-3');
  D = await newNode('node-4', OTHER_MEASUREMENT);
  genesis = {
    chainId: CHAIN,
    time: GENESIS_TIME,
    members: [],
    validators: [A, B, X, D].map((n) => ({ nodeId: n.nodeId, voteKey: n.keys.publicKeys.vote! })),
    contracts: [],
    enclave: { measurements: { virtual: [MEASUREMENT] }, virtualRoots: [root.publicKeyPem] },
    policy: { allowedPlatforms: ['virtual'], measurements: { virtual: [MEASUREMENT] }, allowVirtual: true },
    consensus: { ...DEFAULT_CONSENSUS_PARAMS },
  };
  const inits = await Promise.all([A, B, X, D].map((n) => init(n)));
  for (const i of inits) expect(i.secrets).toEqual({ missing: [], held: [] });

  // Before any block, nothing is committed: nobody has a secret to release or a network key.
  {
    const { nonce, claim } = await claimFor(A, B);
    await expectRefused(release(A, { nonce, peerNodeId: 'node-2', claim }), 'SECRET_UNAVAILABLE');
    await expectRefused(A.enclave.handle({ type: 'getEncryptionKey', freshness: 'x' }), 'SECRET_UNAVAILABLE');
  }

  // Block 1: A proposes (and adds the commitment of its candidate); A, B and X execute, vote and commit it.
  const result = await ecall<BlockResult>(A, { type: 'proposeBlock', time: GENESIS_TIME + 1000, txs: [] });
  // Then its attestation for the ledger: evidence bound to the block's parent (the ledger holds none of it yet).
  expect(result.added).toHaveLength(2);
  expect(result.added[0]).toMatchObject({ contract: 'consortium', method: 'commitSecret' });
  expect(result.added[1]).toMatchObject({ contract: 'consortium', method: 'attest' });
  const header: BlockHeader = result.header;
  for (const n of [B, X]) {
    const executed = await ecall<BlockResult>(n, { type: 'executeBlock', header, txs: [...result.added] });
    expect(executed.blockHash).toBe(result.blockHash);
  }
  const voters = [A, B, X];
  const prevote: Vote = { chainId: CHAIN, type: 'prevote', height: 1, round: 0, blockHash: result.blockHash };
  const prevotes: SignedVote[] = [];
  for (const n of voters) {
    const pv = await ecall<SignResult>(n, { type: 'signVote', vote: prevote, justification: [] });
    prevotes.push({ vote: prevote, validator: pv.validator, signature: pv.signature });
  }
  const precommit: Vote = { ...prevote, type: 'precommit' };
  const signatures: CommitCertificate['signatures'] = [];
  for (const n of voters) {
    const pc = await ecall<SignResult>(n, { type: 'signVote', vote: precommit, justification: prevotes });
    signatures.push({ validator: pc.validator, signature: pc.signature });
  }
  const certificate: CommitCertificate = { height: 1, round: 0, blockHash: result.blockHash, signatures };
  commits = new Map();
  for (const n of voters) commits.set(n, await ecall<CommitResult>(n, { type: 'commitBlock', blockHash: result.blockHash, certificate }));

  // The committed secret is A's candidate (read from A's seal, as only the hardware could).
  const aSecrets = readSealed(A, A.keys.sealed).secrets;
  consortiumSecretHex = aSecrets['1']!;
  expect(consortiumSecretHex).toMatch(/^[0-9a-f]{64}$/);
  committedKey = (result.added[0] as SignedPlainTx).args[1] as string;
  expect((result.added[0] as SignedPlainTx).args).toEqual([1, ConsortiumKeys.generationOf(1, Buffer.from(consortiumSecretHex, 'hex')).publicKey]);
}, 30_000);

describe('the first block commits the proposer\'s candidate', () => {
  it('leaves the proposer holding generation 1 and the other validators missing it (their candidates lost)', async () => {
    expect(commits.get(A)!.secrets).toEqual({ missing: [], held: [1] });
    expect(commits.get(B)!.secrets).toEqual({ missing: [1], held: [] });
    expect(commits.get(X)!.secrets).toEqual({ missing: [1], held: [] });
    // The losers dropped their candidates and resealed without them.
    for (const n of [B, X]) {
      const sealed = commits.get(n)!.sealed;
      expect(sealed).not.toBeNull();
      expect(readSealed(n, sealed!).secrets).toEqual({});
    }
    const key = await ecall<EncryptionKeyResponse>(A, { type: 'getEncryptionKey', freshness: 'x' });
    expect(key).toMatchObject({ generation: 1, publicKey: committedKey });
    expect(key.identity.publicKeys['network']).toBe(key.publicKey);
    // An enclave lacking the secret gives no network key.
    await expectStillMissing(B);
    await expectStillMissing(X);
  });
});

describe('attested release of the consortium secret', () => {
  it('releases to a validator\'s attested enclave, sealed to it: the host sees no secret and no private key', async () => {
    const { nonce, claim } = await claimFor(A, B);
    expect(claim).toEqual({ nodeId: 'node-2', publicKeys: B.keys.publicKeys, evidence: expect.any(String) });
    const sealed = await release(A, { nonce, peerNodeId: 'node-2', claim });
    expect(Object.keys(sealed).sort()).toEqual(['ct', 'enc']);
    // The ciphertext is not the secret in any readable form.
    const ct = Buffer.from(sealed.ct, 'base64');
    expect(ct.includes(Buffer.from(consortiumSecretHex, 'hex'))).toBe(false);
    expect(ct.includes(Buffer.from(consortiumSecretHex, 'utf8'))).toBe(false);
    for (const form of forms(consortiumSecretHex)) expect(JSON.stringify(sealed)).not.toContain(form);

    const accepted = await ecall<{ missing: number[]; held: number[]; sealed: string }>(B, { type: 'acceptSecret', release: sealed });
    expect(accepted).toMatchObject({ missing: [], held: [1] });
    // B keeps it sealed (to its own program's key) and now serves the same network key as A.
    expect(readSealed(B, accepted.sealed).secrets).toEqual({ '1': consortiumSecretHex });
    const [keyA, keyB] = await Promise.all([
      ecall<EncryptionKeyResponse>(A, { type: 'getEncryptionKey', freshness: 'x' }),
      ecall<EncryptionKeyResponse>(B, { type: 'getEncryptionKey', freshness: 'x' }),
    ]);
    expect(keyB.publicKey).toBe(keyA.publicKey);
    expect(keyB.generation).toBe(1);
    expect(keyB.identity.publicKeys).toEqual({ ...B.keys.publicKeys, network: keyA.publicKey });

    // Nothing B's host saw (unseal, init, block, votes, commit, claim, acceptance, key) holds the secret or B's private keys.
    const bPrivate = readSealed(B, accepted.sealed);
    // (The attestation-token key, where the enclave has one, is derived from the vote key.)
    const tokenSeed = Buffer.from(hkdfSync('sha256', Buffer.from(bPrivate.privateKey, 'hex'), new Uint8Array(0), 'cloister/token-key/v1', 32)).toString('hex');
    const visible = JSON.stringify(B.answers);
    for (const hex of [consortiumSecretHex, bPrivate.privateKey, bPrivate.encryptionKey, tokenSeed]) {
      for (const form of forms(hex)) expect(visible).not.toContain(form);
    }
    // Nor did A's host see it.
    const aVisible = JSON.stringify(A.answers);
    for (const form of forms(consortiumSecretHex)) expect(aVisible).not.toContain(form);
  });

  it('refuses a nonce the releaser never issued, and a nonce already used (replay)', async () => {
    // A claim for a nonce the host made up: well-formed evidence, but the releaser never issued the nonce.
    const madeUp = randomBytes(32).toString('hex');
    const claim = await ecall<AdmissionClaim>(X, { type: 'secretRequest', nonce: madeUp });
    await expectRefused(release(A, { nonce: madeUp, peerNodeId: 'node-3', claim }), 'CALL_UNAUTHORIZED');
    // A nonce another enclave issued is not this releaser's either.
    const { nonce: bNonce } = await ecall<{ nonce: string }>(B, { type: 'secretChallenge' });
    const forB = await ecall<AdmissionClaim>(X, { type: 'secretRequest', nonce: bNonce });
    await expectRefused(release(A, { nonce: bNonce, peerNodeId: 'node-3', claim: forB }), 'CALL_UNAUTHORIZED');
    await expectStillMissing(X);

    // A good request answers once; the same request again is refused.
    const first = await claimFor(A, B);
    await expect(release(A, { nonce: first.nonce, peerNodeId: 'node-2', claim: first.claim })).resolves.toMatchObject({ enc: expect.any(String) });
    await expectRefused(release(A, { nonce: first.nonce, peerNodeId: 'node-2', claim: first.claim }), 'CALL_UNAUTHORIZED');
    // A refused request spends its nonce as well: it cannot be retried with a better claim.
    const spent = await claimFor(A, X);
    await expectRefused(release(A, { nonce: spent.nonce, peerNodeId: 'node-2', claim: spent.claim }), 'CALL_UNAUTHORIZED', 'NODE_MISMATCH');
    await expectRefused(release(A, { nonce: spent.nonce, peerNodeId: 'node-3', claim: spent.claim }), 'CALL_UNAUTHORIZED');
    await expectStillMissing(X);
  });

  it('refuses stale evidence: a claim made for an older challenge presented with a newer nonce', async () => {
    const older = await claimFor(A, X);
    const { nonce: newer } = await ecall<{ nonce: string }>(A, { type: 'secretChallenge' });
    await expectRefused(release(A, { nonce: newer, peerNodeId: 'node-3', claim: older.claim }), 'CALL_UNAUTHORIZED', 'REPORT_DATA_MISMATCH');
    await expectStillMissing(X);
  });

  it('refuses evidence made for another genesis of the same chain id (the release freshness binds the genesis hash)', async () => {
    // X's own identity (same keys, same program, same platform), started on a genesis that differs only in its time.
    const xAgain = await openNode('node-3', X.platform, [X.keys.sealed]);
    expect(xAgain.keys.publicKeys).toEqual(X.keys.publicKeys);
    await init(xAgain, { ...genesis, time: GENESIS_TIME + 1 });
    const { nonce, claim } = await claimFor(A, xAgain);
    expect(claim.publicKeys).toEqual(X.keys.publicKeys);
    await expectRefused(release(A, { nonce, peerNodeId: 'node-3', claim }), 'CALL_UNAUTHORIZED', 'REPORT_DATA_MISMATCH');
    // The same identity on this genesis is released to (so the refusal above was the genesis binding alone).
    const good = await claimFor(A, X);
    await expect(release(A, { nonce: good.nonce, peerNodeId: 'node-3', claim: good.claim })).resolves.toMatchObject({ enc: expect.any(String) });
    await expectStillMissing(X);
  });

  it('refuses a claim whose binding was changed: another encryption key, another node, another authenticated peer', async () => {
    const attacker = generateHpkeKeyPair();
    {
      const { nonce, claim } = await claimFor(A, X);
      const forged = { ...claim, publicKeys: { ...claim.publicKeys, encryption: toHex(attacker.publicKey) } };
      await expectRefused(release(A, { nonce, peerNodeId: 'node-3', claim: forged }), 'CALL_UNAUTHORIZED', 'REPORT_DATA_MISMATCH');
    }
    {
      // The vote key of another validator, or an extra key, do not fit the evidence either.
      const { nonce, claim } = await claimFor(A, X);
      const forged = { ...claim, publicKeys: { ...claim.publicKeys, vote: B.keys.publicKeys.vote! } };
      await expectRefused(release(A, { nonce, peerNodeId: 'node-3', claim: forged }), 'CALL_UNAUTHORIZED', 'REPORT_DATA_MISMATCH');
    }
    {
      // The claim renamed to another validator (and the host says that node asked): the evidence binds node-3.
      const { nonce, claim } = await claimFor(A, X);
      await expectRefused(release(A, { nonce, peerNodeId: 'node-2', claim: { ...claim, nodeId: 'node-2' } }), 'CALL_UNAUTHORIZED', 'REPORT_DATA_MISMATCH');
    }
    {
      // The claim as made, but the authenticated peer is another node.
      const { nonce, claim } = await claimFor(A, X);
      await expectRefused(release(A, { nonce, peerNodeId: 'node-2', claim }), 'CALL_UNAUTHORIZED', 'NODE_MISMATCH');
    }
    {
      // Evidence bytes of another claim (another nonce) under this claim's keys.
      const { nonce, claim } = await claimFor(A, X);
      const other = await ecall<AdmissionClaim>(X, { type: 'secretRequest', nonce: randomBytes(32).toString('hex') });
      await expectRefused(release(A, { nonce, peerNodeId: 'node-3', claim: { ...claim, evidence: other.evidence } }), 'CALL_UNAUTHORIZED', 'REPORT_DATA_MISMATCH');
    }
    await expectStillMissing(X);
  });

  it('refuses an enclave the genesis policy does not allow (another program measurement, same virtual root)', async () => {
    const { nonce, claim } = await claimFor(A, D);
    await expectRefused(release(A, { nonce, peerNodeId: 'node-4', claim }), 'CALL_UNAUTHORIZED', 'MEASUREMENT_NOT_ALLOWED');
    await expectStillMissing(D);
  });

  it('refuses evidence that does not verify to a pinned root (a virtual vendor root the genesis does not declare)', async () => {
    const rogue = await newNode('node-3', MEASUREMENT, generateVirtualRoot());
    await init(rogue);
    const { nonce, claim } = await claimFor(A, rogue);
    await expectRefused(release(A, { nonce, peerNodeId: 'node-3', claim }), 'CALL_UNAUTHORIZED', 'UNTRUSTED_ROOT');
  });

  it('refuses a node that is not a validator, and a genuine enclave speaking for a validator whose vote key it does not hold', async () => {
    const outsider = await newNode('node-9');
    await init(outsider);
    {
      const { nonce, claim } = await claimFor(A, outsider);
      await expectRefused(release(A, { nonce, peerNodeId: 'node-9', claim }), 'CALL_UNAUTHORIZED', 'NOT_A_VALIDATOR');
    }
    // A genuine enclave (allowed measurement, pinned root) whose host names it node-2: its vote key is not node-2's.
    const impostor = await newNode('node-2');
    await init(impostor);
    {
      const { nonce, claim } = await claimFor(A, impostor);
      await expectRefused(release(A, { nonce, peerNodeId: 'node-2', claim }), 'CALL_UNAUTHORIZED', 'KEY_MISMATCH');
    }
    await expectStillMissing(outsider);
    await expectStillMissing(impostor);
  });

  it('answers SECRET_UNAVAILABLE from an enclave that holds no committed secret, whatever the claim', async () => {
    // X committed block 1 but lost its candidate: it has nothing to release, even to a good claim.
    const { nonce, claim } = await claimFor(X, D);
    await expectRefused(release(X, { nonce, peerNodeId: 'node-4', claim }), 'SECRET_UNAVAILABLE');
    const good = await claimFor(X, A);
    await expectRefused(release(X, { nonce: good.nonce, peerNodeId: 'node-1', claim: good.claim }), 'SECRET_UNAVAILABLE');
    // D never committed block 1 (nothing committed at all).
    const fromD = await claimFor(D, B);
    await expectRefused(release(D, { nonce: fromD.nonce, peerNodeId: 'node-2', claim: fromD.claim }), 'SECRET_UNAVAILABLE');
    await expectStillMissing(X);
    await expectStillMissing(D);
  });

  it('does not open, in another enclave, a release sealed for one requester', async () => {
    const forB = await claimFor(A, B);
    const sealedForB = await release(A, { nonce: forB.nonce, peerNodeId: 'node-2', claim: forB.claim });
    await expectRefused(X.enclave.handle({ type: 'acceptSecret', release: sealedForB }), 'DECRYPT_FAILED');
    await expectStillMissing(X);
    // Nor a tampered release for X itself.
    const forX = await claimFor(A, X);
    const sealedForX = await release(A, { nonce: forX.nonce, peerNodeId: 'node-3', claim: forX.claim });
    const ct = Buffer.from(sealedForX.ct, 'base64');
    ct[0] = ct[0]! ^ 1;
    await expectRefused(X.enclave.handle({ type: 'acceptSecret', release: { ...sealedForX, ct: ct.toString('base64') } }), 'DECRYPT_FAILED');
    await expectStillMissing(X);
    // Its own release, untouched, opens.
    await expect(ecall(X, { type: 'acceptSecret', release: sealedForX })).resolves.toMatchObject({ missing: [], held: [1] });
    const [keyA, keyX] = await Promise.all([
      ecall<EncryptionKeyResponse>(A, { type: 'getEncryptionKey', freshness: 'x' }),
      ecall<EncryptionKeyResponse>(X, { type: 'getEncryptionKey', freshness: 'x' }),
    ]);
    expect(keyX.publicKey).toBe(keyA.publicKey);
  });
});
