/**
 * Attacks on the admission handshake over real libp2p connections (in one
 * process): what test/unit/node/network/admission-handshake.test.ts does not
 * cover. A is the verifier, B an honest validator, C a validator whose host is
 * the attacker (it holds C's network key, so the connection authenticates as C).
 *  - a live relay: C passes A's challenge to B and returns B's fresh answer as its own;
 *  - forged evidence: an undeclared root, a changed byte, evidence for other keys;
 *  - malformed and oversized answers.
 * Every attempt is refused with a coded reason that A records, and A goes on
 * admitting B.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVirtualEvidence, encodeEnvelope, generateVirtualRoot, reportDataFor } from '../../attestation/index.js';
import { generateEd25519KeyPair, genesisHash, type Genesis } from '../../consensus/index.js';
import { AdmissionService, admissionFreshness, type AdmissionDecision } from '../../node/admission/index.js';
import { systemClock } from '../../node/chain/clock.js';
import { buildGenesis } from '../../node/genesis/build-genesis.js';
import { silentLogger } from '../../node/log/logger.js';
import type { NetworkService } from '../../node/network/index.js';
import { CHAIN, connectAll, startCluster, type Cluster } from '../unit/node/network/helpers.js';

const root = generateVirtualRoot();
const ALLOWED = '5a'.repeat(48);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let cluster: Cluster;
let genesis: Genesis;
/** Each node's enclave vote key, as the genesis lists it. */
const voteKeys = [0, 1, 2].map(() => generateEd25519KeyPair().publicKey);
let C: NetworkService;
let idB: string;
let idC: string;

/** An honest enclave: evidence binding its genesis vote key to its node, the chain and the challenge. */
function honestEvidence(i: number) {
  return async (challenge: string) => {
    const publicKeys = { vote: voteKeys[i]! };
    const reportData = reportDataFor({ publicKeys, chainId: CHAIN, nodeId: cluster.ids[i]!, freshness: admissionFreshness(genesisHash(genesis), challenge) });
    const evidence = createVirtualEvidence({ rootPrivateKeyPem: root.privateKeyPem, measurement: Buffer.from(ALLOWED, 'hex'), reportData });
    return { publicKeys, evidence: Buffer.from(evidence).toString('base64') };
  };
}

function admission(i: number): AdmissionService {
  const s = new AdmissionService({
    transport: cluster.nodes[i]!,
    genesis,
    genesisHash: genesisHash(genesis),
    selfNodeId: cluster.ids[i]!,
    evidenceFor: honestEvidence(i),
    clock: systemClock,
    log: silentLogger,
  });
  s.start();
  return s;
}

/** Makes C's host answer challenges with `answer` (raw bytes), bypassing any AdmissionService. */
function attackerAnswers(answer: (challenge: string, request: Uint8Array) => Promise<Uint8Array | string | object>): void {
  C.handleAdmission(async (_peer, request) => {
    const { challenge } = JSON.parse(decoder.decode(request)) as { challenge: string };
    const out = await answer(challenge, request);
    if (out instanceof Uint8Array) return out;
    return encoder.encode(typeof out === 'string' ? out : JSON.stringify(out));
  });
}

function forge(challenge: string, opts: { rootKey?: string; keys?: Record<string, string>; bindKeys?: Record<string, string> } = {}) {
  const publicKeys = opts.keys ?? { vote: voteKeys[2]! };
  const reportData = reportDataFor({ publicKeys: opts.bindKeys ?? publicKeys, chainId: CHAIN, nodeId: idC, freshness: admissionFreshness(genesisHash(genesis), challenge) });
  const evidence = createVirtualEvidence({
    rootPrivateKeyPem: opts.rootKey ?? root.privateKeyPem,
    measurement: Buffer.from(ALLOWED, 'hex'),
    reportData,
  });
  return { nodeId: idC, publicKeys, evidence: Buffer.from(evidence).toString('base64') };
}

let verifier: AdmissionService;
let honest: AdmissionService;

beforeAll(async () => {
  cluster = await startCluster(3, { maxRequestBytes: 4 * 1024 * 1024 });
  await connectAll(cluster.nodes);
  [, , C] = cluster.nodes as [NetworkService, NetworkService, NetworkService];
  [, idB, idC] = cluster.ids as [string, string, string];
  genesis = buildGenesis({
    chainId: CHAIN,
    time: 0,
    members: [{ id: 'm', publicKey: generateEd25519KeyPair().publicKey }],
    nodes: cluster.ids.map((nodeId, i) => ({ nodeId, voteKey: voteKeys[i]! })),
    measurements: { virtual: [ALLOWED] },
    virtualRoots: [root.publicKeyPem],
    contracts: [],
  });
  verifier = admission(0);
  honest = admission(1);
}, 30_000);

afterAll(async () => {
  verifier?.stop();
  honest?.stop();
  await cluster?.stop();
});

async function expectRefused(codes: string[]): Promise<AdmissionDecision> {
  const decision = await verifier.admit(idC);
  expect(decision.admitted, JSON.stringify(decision)).toBe(false);
  expect(codes, JSON.stringify(decision)).toContain(decision.reason?.code);
  expect(decision.reason?.message.length).toBeGreaterThan(0);
  // The decision is about the peer the connection authenticated, whatever name its claim gives.
  expect(decision.nodeId, JSON.stringify(decision)).toBe(idC);
  // The refusal is what A reports about C (the basis of net_nodes)…
  expect(verifier.nodes().find((d) => d.nodeId === idC)).toMatchObject(decision);
  // …and A still admits the honest validator.
  expect((await verifier.admit(idB)).admitted).toBe(true);
  return decision;
}

describe('admission attacks over libp2p', () => {
  it("refuses a live relay: A's challenge answered with B's fresh evidence, under C's or B's name", async () => {
    const relayed = async (_challenge: string, request: Uint8Array) =>
      JSON.parse(decoder.decode(await C.exchangeAdmission(idB, request))) as Record<string, unknown>;
    // As C, with C's genesis vote key: the evidence binds B's keys and B's node id.
    attackerAnswers(async (ch, req) => ({ ...(await relayed(ch, req)), nodeId: idC, publicKeys: { vote: voteKeys[2]! } }));
    await expectRefused(['REPORT_DATA_MISMATCH']);
    // As C, with B's keys (what the evidence binds): still bound to B's node id.
    attackerAnswers(async (ch, req) => ({ ...(await relayed(ch, req)), nodeId: idC }));
    await expectRefused(['REPORT_DATA_MISMATCH']);
    // Unchanged (claiming to be B over C's connection).
    attackerAnswers(relayed);
    await expectRefused(['NODE_MISMATCH']);
  });

  it('refuses forged evidence: an undeclared root, a changed byte, keys other than those bound', async () => {
    attackerAnswers(async (ch) => forge(ch, { rootKey: generateVirtualRoot().privateKeyPem }));
    await expectRefused(['UNTRUSTED_ROOT']);

    // A signed report changed afterwards: the measurement, the report data, the signature.
    const SNP = { reportData: 0x50, measurement: 0x90, signature: 0x2a0 };
    for (const [field, offset] of Object.entries(SNP)) {
      attackerAnswers(async (ch) => {
        const claim = forge(ch);
        const envelope = JSON.parse(Buffer.from(claim.evidence, 'base64').toString('utf8')) as Record<string, string>;
        const report = Buffer.from(envelope.report!, 'base64');
        report[offset + 3] = report[offset + 3]! ^ 0x01;
        const evidence = encodeEnvelope({ ...envelope, report: report.toString('base64') });
        return { ...claim, evidence: Buffer.from(evidence).toString('base64') };
      });
      const decision = await expectRefused(['SIGNATURE_INVALID']);
      expect(decision.reason?.message, field).toBeTruthy();
    }
    // Signed by an undeclared root but carrying the declared root's public key.
    attackerAnswers(async (ch) => {
      const claim = forge(ch, { rootKey: generateVirtualRoot().privateKeyPem });
      const envelope = JSON.parse(Buffer.from(claim.evidence, 'base64').toString('utf8')) as Record<string, string>;
      const declared = JSON.parse(Buffer.from(forge(ch).evidence, 'base64').toString('utf8')) as Record<string, string>;
      const evidence = encodeEnvelope({ ...envelope, root: declared.root! });
      return { ...claim, evidence: Buffer.from(evidence).toString('base64') };
    });
    await expectRefused(['SIGNATURE_INVALID']);

    // Valid evidence for one key, a claim naming another (the genesis one).
    const mine = { vote: generateEd25519KeyPair().publicKey };
    attackerAnswers(async (ch) => forge(ch, { keys: { vote: voteKeys[2]! }, bindKeys: mine }));
    await expectRefused(['REPORT_DATA_MISMATCH']);
    // A genuine enclave (allowed program, declared root, proper binding) that is not the one the genesis lists:
    // someone with C's network key running their own enclave.
    attackerAnswers(async (ch) => forge(ch, { keys: mine }));
    await expectRefused(['KEY_MISMATCH']);
    // An extra key slipped in beside the bound ones.
    attackerAnswers(async (ch) => forge(ch, { keys: { vote: voteKeys[2]!, extra: mine.vote }, bindKeys: { vote: voteKeys[2]! } }));
    await expectRefused(['REPORT_DATA_MISMATCH']);
  });

  it('refuses malformed and oversized answers without harm', async () => {
    const answers: (Uint8Array | string | object)[] = [
      'not json',
      new Uint8Array([0xff, 0xfe, 0x00]),
      '[]',
      'null',
      { nodeId: idC },
      { nodeId: idB, publicKeys: { vote: 'zz' }, evidence: 'QUFBQQ==' },
      { nodeId: idC, publicKeys: { vote: voteKeys[2] }, evidence: 42 },
      { nodeId: idC, publicKeys: { vote: voteKeys[2] }, evidence: '!!!not base64!!!' },
      { nodeId: idC, publicKeys: { vote: voteKeys[2] }, evidence: 'QUFBQQ==' },
      { nodeId: idC, publicKeys: { vote: voteKeys[2] }, evidence: 'A'.repeat(2 * 1024 * 1024) },
      new Uint8Array(2 * 1024 * 1024).fill(0x20),
    ];
    for (const answer of answers) {
      attackerAnswers(async () => answer);
      await expectRefused([
        'CLAIM_MALFORMED',
        'EVIDENCE_MALFORMED',
        'UNSUPPORTED_FORMAT',
        'SIGNATURE_INVALID',
      ]);
    }
  });

  it('after all that, an honest answer from C is admitted (refusals are per attempt, not sticky by mistake)', async () => {
    C.handleAdmission(undefined);
    const real = admission(2);
    try {
      const decision = await verifier.admit(idC);
      expect(decision).toMatchObject({ nodeId: idC, admitted: true, measurement: ALLOWED, publicKeys: { vote: voteKeys[2] } });
      expect(verifier.nodes().filter((d) => d.admitted).map((d) => d.nodeId).sort()).toEqual([idB, idC].sort());
    } finally {
      real.stop();
    }
  });
});
