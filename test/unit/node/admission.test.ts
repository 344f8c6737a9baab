import { describe, expect, it } from 'vitest';
import { createVirtualEvidence, generateVirtualRoot, reportDataFor } from '../../../attestation/index.js';
import { generateEd25519KeyPair } from '../../../consensus/index.js';
import { evaluateAdmission, type AdmissionClaim } from '../../../node/admission/index.js';
import { buildGenesis } from '../../../node/genesis/build-genesis.js';

const root = generateVirtualRoot();
const otherRoot = generateVirtualRoot();
const M = '5a'.repeat(48);
const now = new Date('2026-11-01T00:00:00Z');
const vote = generateEd25519KeyPair().publicKey;
const genesis = buildGenesis({
  chainId: 'consortium-1',
  time: 0,
  members: [{ id: 'hospital-a', publicKey: generateEd25519KeyPair().publicKey }],
  nodes: [
    { nodeId: 'node-a', voteKey: vote },
    { nodeId: 'node-b', voteKey: generateEd25519KeyPair().publicKey },
  ],
  measurements: { virtual: [M] },
  virtualRoots: [root.publicKeyPem],
  contracts: [],
});

function claimFor(
  nodeId: string,
  opts: { boundTo?: string; freshness?: string; measurement?: string; rootKey?: string; chainId?: string; voteKey?: string } = {},
): AdmissionClaim {
  const publicKeys = { vote: opts.voteKey ?? vote };
  const reportData = reportDataFor({
    publicKeys,
    chainId: opts.chainId ?? genesis.chainId,
    nodeId: opts.boundTo ?? nodeId,
    freshness: opts.freshness ?? 'challenge-1',
  });
  const evidence = createVirtualEvidence({
    rootPrivateKeyPem: opts.rootKey ?? root.privateKeyPem,
    measurement: Buffer.from(opts.measurement ?? M, 'hex'),
    reportData,
  });
  return { nodeId, publicKeys, evidence: Buffer.from(evidence).toString('base64') };
}

const ctx = { genesis, authenticatedNodeId: 'node-a', freshness: 'challenge-1', now };

describe('admission by attestation', () => {
  it('admits a validator whose evidence verifies, binds its keys and passes the policy', () => {
    const decision = evaluateAdmission(claimFor('node-a'), ctx);
    expect(decision).toMatchObject({ nodeId: 'node-a', admitted: true, platform: 'virtual', measurement: M, publicKeys: { vote } });
  });

  it('refuses a measurement not in the allowed set, naming it', () => {
    const other = '77'.repeat(48);
    const decision = evaluateAdmission(claimFor('node-a', { measurement: other }), ctx);
    expect(decision.admitted).toBe(false);
    expect(decision.reason?.code).toBe('MEASUREMENT_NOT_ALLOWED');
    expect(decision.reason?.message).toContain(other);
    expect(decision.measurement).toBe(other);
  });

  it("refuses evidence bound to another node's identity, another chain or an old challenge", () => {
    expect(evaluateAdmission(claimFor('node-a', { boundTo: 'node-b' }), ctx).reason?.code).toBe('REPORT_DATA_MISMATCH');
    expect(evaluateAdmission(claimFor('node-a', { chainId: 'other-chain' }), ctx).reason?.code).toBe('REPORT_DATA_MISMATCH');
    expect(evaluateAdmission(claimFor('node-a', { freshness: 'challenge-0' }), ctx).reason?.code).toBe('REPORT_DATA_MISMATCH');
  });

  it('refuses an attested enclave whose vote key is not the one the genesis lists for the node', () => {
    const stranger = generateEd25519KeyPair().publicKey;
    const decision = evaluateAdmission(claimFor('node-a', { voteKey: stranger }), ctx);
    expect(decision).toMatchObject({ admitted: false, measurement: M, reason: { code: 'KEY_MISMATCH' } });
    expect(decision.reason!.message).toContain(stranger);
  });

  it('refuses a claim made for another node than the connection, and nodes outside the genesis', () => {
    // The decision is about the authenticated peer, whatever node the claim names.
    expect(evaluateAdmission(claimFor('node-b'), ctx)).toMatchObject({ nodeId: 'node-a', admitted: false, reason: { code: 'NODE_MISMATCH' } });
    expect(evaluateAdmission(claimFor('node-x'), { ...ctx, authenticatedNodeId: 'node-x' }).reason?.code).toBe('NOT_A_VALIDATOR');
  });

  it('refuses forged evidence: an undeclared root, or a changed byte', () => {
    expect(evaluateAdmission(claimFor('node-a', { rootKey: otherRoot.privateKeyPem }), ctx).reason?.code).toBe('UNTRUSTED_ROOT');
    const good = claimFor('node-a');
    const bytes = Buffer.from(good.evidence, 'base64');
    const text = bytes.toString('utf8');
    const at = text.indexOf('"report":"') + 50;
    bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41;
    const tampered = evaluateAdmission({ ...good, evidence: bytes.toString('base64') }, ctx);
    expect(tampered.admitted).toBe(false);
    expect(['SIGNATURE_INVALID', 'EVIDENCE_MALFORMED']).toContain(tampered.reason?.code);
  });

  it('refuses virtual evidence when the policy does not allow it', () => {
    const strict = { ...genesis, policy: { allowedPlatforms: ['sev-snp'], measurements: { 'sev-snp': [M] } } } as typeof genesis;
    const decision = evaluateAdmission(claimFor('node-a'), { ...ctx, genesis: strict });
    expect(decision.admitted).toBe(false);
    expect(['PLATFORM_NOT_ALLOWED', 'VIRTUAL_NOT_ALLOWED']).toContain(decision.reason?.code);
  });

  it.each([
    ['null', null],
    ['a string', 'hello'],
    ['no keys', { nodeId: 'node-a', publicKeys: {}, evidence: 'AAAA' }],
    ['a bad key', { nodeId: 'node-a', publicKeys: { vote: 'xyz' }, evidence: 'AAAA' }],
    ['no evidence', { nodeId: 'node-a', publicKeys: { vote } }],
    ['garbage evidence', { nodeId: 'node-a', publicKeys: { vote }, evidence: Buffer.from('garbage').toString('base64') }],
  ])('refuses %s with a code and never throws', (_, claim) => {
    const decision = evaluateAdmission(claim, ctx);
    expect(decision.admitted).toBe(false);
    expect(decision.reason?.code).toBeTruthy();
  });
});
