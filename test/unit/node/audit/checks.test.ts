import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createVirtualEvidence, generateVirtualRoot, policyHash, reportDataFor, type AttestationPolicy } from '../../../../attestation/index.js';
import { generateEd25519KeyPair } from '../../../../consensus/index.js';
import {
  checkContracts,
  checkEvidence,
  checkGenesis,
  checkHeads,
  checkPolicyInForce,
  checkSourceMeasurement,
  findingsOf,
  measureSource,
  summarizeProposal,
  type EvidenceContext,
} from '../../../../node/audit/index.js';
import type { EvidenceView } from '../../../../node/client/index.js';
import { buildGenesis } from '../../../../node/genesis/build-genesis.js';
import { cleanupNodes, tempDir } from '../../../helpers/dev-node.js';

afterAll(cleanupNodes);

const root = generateVirtualRoot();
const M = '5a'.repeat(48);
const OTHER = '6b'.repeat(48);
const now = new Date('2026-11-01T00:00:00Z');
const vote = generateEd25519KeyPair().publicKey;
const NONCE = 'ab'.repeat(32);
const genesis = buildGenesis({
  chainId: 'consortium-1',
  time: 0,
  members: [{ id: 'hospital-a', publicKey: generateEd25519KeyPair().publicKey }],
  nodes: [{ nodeId: 'node-a', voteKey: vote }],
  measurements: { virtual: [M] },
  virtualRoots: [root.publicKeyPem],
  contracts: [],
});
const view = { policy: genesis.policy as unknown as AttestationPolicy, validators: genesis.validators };

/** The node's tee_getEvidence answer; `bound` is what its report_data really binds, `stated` what the node says it binds. */
function evidenceView(
  bound: { chainId?: string; nodeId?: string; freshness?: string; measurement?: string; rootKey?: string } = {},
  stated: Partial<Pick<EvidenceView, 'chainId' | 'nodeId' | 'freshness'>> = {},
): EvidenceView {
  const publicKeys = { vote };
  const binding = { publicKeys, chainId: bound.chainId ?? genesis.chainId, nodeId: bound.nodeId ?? 'node-a', freshness: bound.freshness ?? NONCE };
  const evidence = createVirtualEvidence({
    rootPrivateKeyPem: bound.rootKey ?? root.privateKeyPem,
    measurement: Buffer.from(bound.measurement ?? M, 'hex'),
    reportData: reportDataFor(binding),
  });
  return {
    platform: 'virtual',
    measurement: bound.measurement ?? M,
    publicKeys,
    nodeId: stated.nodeId ?? binding.nodeId,
    chainId: stated.chainId ?? binding.chainId,
    freshness: stated.freshness ?? binding.freshness,
    reportData: Buffer.from(reportDataFor(binding)).toString('hex'),
    evidence: Buffer.from(evidence).toString('base64'),
  };
}

const ctx = (evidence: EvidenceView, over: Partial<EvidenceContext> = {}): EvidenceContext => ({ evidence, nonce: NONCE, nodeId: 'node-a', genesis, view, now, ...over });
const failed = (checks: { ok: boolean; code?: string }[]): (string | undefined)[] => checks.filter((c) => !c.ok).map((c) => c.code);

describe('the evidence checks', () => {
  it('pass for fresh evidence bound to the nonce, chain and node, under the policy in force', () => {
    const { result, checks } = checkEvidence(ctx(evidenceView()));
    expect(result?.measurement).toBe(M);
    expect(checks.map((c) => c.name)).toEqual([
      'evidence verifies',
      'binds the nonce',
      'binds the chain id',
      'binds the node id',
      'validator in force',
      'policy in force accepts it',
    ]);
    expect(failed(checks)).toEqual([]);
  });

  it('find evidence that does not bind the nonce: replayed (the node states its old nonce) or lying (it states ours)', () => {
    const replayed = checkEvidence(ctx(evidenceView({ freshness: 'cd'.repeat(32) })));
    expect(failed(replayed.checks)).toEqual(['NONCE_NOT_BOUND']);
    expect(replayed.checks.find((c) => !c.ok)?.detail).toBe(`the evidence binds nonce ${'cd'.repeat(32)}, expected ${NONCE}`);
    const lying = checkEvidence(ctx(evidenceView({ freshness: 'cd'.repeat(32) }, { freshness: NONCE })));
    // The report_data binds neither our tuple nor the one the node states: nothing it binds can be trusted.
    expect(failed(lying.checks)).toEqual(['NONCE_NOT_BOUND', 'WRONG_CHAIN', 'NODE_ID_MISMATCH']);
    expect(lying.checks[1]!.detail).toMatch(/binds neither nonce/);
  });

  it("find evidence for another chain than the genesis's, or another node than the one answering", () => {
    const chain = checkEvidence(ctx(evidenceView({ chainId: 'another-chain' })));
    expect(failed(chain.checks)).toEqual(['WRONG_CHAIN']);
    expect(chain.checks.find((c) => !c.ok)?.detail).toBe('the evidence binds chain id another-chain, expected consortium-1');
    const node = checkEvidence(ctx(evidenceView({ nodeId: 'node-b' })));
    expect(failed(node.checks)).toEqual(['NODE_ID_MISMATCH']);
    // The evidence is node-a's, but node-a is not a validator in force.
    const removed = checkEvidence(ctx(evidenceView(), { view: { ...view, validators: [] } }));
    expect(failed(removed.checks)).toEqual(['NODE_ID_MISMATCH']);
    expect(removed.checks.find((c) => !c.ok)?.name).toBe('validator in force');
  });

  it('find a measurement the policy in force refuses (retired by governance since the genesis)', () => {
    const { checks } = checkEvidence(ctx(evidenceView({ measurement: OTHER })));
    expect(failed(checks)).toEqual(['POLICY_REFUSED']);
    expect(checks.find((c) => !c.ok)?.detail).toMatch(/MEASUREMENT_NOT_ALLOWED/);
    const retired = { ...view, policy: { ...view.policy, measurements: { virtual: [OTHER] } } };
    expect(failed(checkEvidence(ctx(evidenceView(), { view: retired })).checks)).toEqual(['POLICY_REFUSED']);
  });

  it("find evidence that does not verify against the genesis's roots, and check nothing else", () => {
    const { result, checks } = checkEvidence(ctx(evidenceView({ rootKey: generateVirtualRoot().privateKeyPem })));
    expect(result).toBeUndefined();
    expect(checks).toEqual([{ name: 'evidence verifies', ok: false, code: 'EVIDENCE_INVALID', detail: expect.stringMatching(/^UNTRUSTED_ROOT/) }]);
  });
});

describe('the chain checks', () => {
  const hash = policyHash(view.policy);

  it("the policy in force hashes to the view's policyHash, which a committed header carries", () => {
    expect(checkPolicyInForce({ policy: view.policy, policyHash: hash }, [{ height: 7, policyHash: hash }]).ok).toBe(true);
    // Changed in the head block: the next header carries it.
    expect(checkPolicyInForce({ policy: view.policy, policyHash: hash }, [{ height: 7, policyHash: '00'.repeat(32) }, { height: 8, policyHash: hash }])).toMatchObject({ ok: true, detail: expect.stringMatching(/block 8/) });
    // A view whose policy is not the one its hash (and the headers) name: a node showing a laxer policy than the chain's.
    const lax = { ...view.policy, measurements: { virtual: [M, OTHER] } };
    expect(checkPolicyInForce({ policy: lax, policyHash: hash }, [{ height: 7, policyHash: hash }])).toMatchObject({ ok: false, code: 'POLICY_HASH_MISMATCH' });
    expect(checkPolicyInForce({ policy: lax, policyHash: policyHash(lax) }, [{ height: 7, policyHash: hash }])).toMatchObject({ ok: false, code: 'POLICY_HASH_MISMATCH' });
  });

  it('the node runs the genesis file', () => {
    expect(checkGenesis({ chainId: 'c', genesisHash: 'h' }, { chainId: 'c', hash: 'h' }).ok).toBe(true);
    expect(checkGenesis({ chainId: 'c', genesisHash: 'x' }, { chainId: 'c', hash: 'h' })).toMatchObject({ ok: false, code: 'GENESIS_MISMATCH', detail: 'genesis hash x, the file\'s is h' });
    expect(checkGenesis({ chainId: 'd', genesisHash: 'h' }, { chainId: 'c', hash: 'h' }).code).toBe('GENESIS_MISMATCH');
  });

  it('the heads agree at the lowest common height', () => {
    expect(checkHeads(5, [{ url: 'a', hash: 'h' }, { url: 'b', hash: 'h' }]).ok).toBe(true);
    expect(checkHeads(5, [{ url: 'a', hash: 'h' }, { url: 'b', hash: 'x' }])).toMatchObject({ ok: false, code: 'HEADS_DIVERGE', detail: 'a has h, b has x' });
    expect(checkHeads(5, [{ url: 'a', hash: 'h' }, { url: 'b', hash: null }]).detail).toBe('no block 5 from b');
  });

  it("the node's measurement is the source's", () => {
    const source = { dir: '/src', measurement: M, detail: '' };
    expect(checkSourceMeasurement(M, source).ok).toBe(true);
    expect(checkSourceMeasurement(OTHER, source)).toMatchObject({ ok: false, code: 'SOURCE_MISMATCH', detail: `the node runs ${OTHER}, the source /src measures ${M}` });
  });
});

describe('the contract checks', () => {
  const bundles = new Map([
    ['notes', { dir: '/src/notes', measurement: 'n1' }],
    ['tally', { dir: '/src/tally', measurement: 't1' }],
  ]);

  it('find a deployed contract without a bundle, or differing from it; the system contract is the enclave program', () => {
    const contracts = checkContracts(
      [{ url: 'a', contracts: [{ name: 'notes', measurement: 'n1' }, { name: 'tally', measurement: 't2' }, { name: 'secret', measurement: 's' }, { name: 'consortium', measurement: 'c' }] }],
      bundles,
    );
    expect(contracts.map((c) => [c.name, c.ok, c.code])).toEqual([
      ['notes', true, undefined],
      ['secret', false, 'CONTRACT_NO_BUNDLE'],
      ['tally', false, 'CONTRACT_MISMATCH'],
    ]);
    expect(contracts[2]!.detail).toBe('the chain runs t2, the bundle /src/tally measures t1');
  });

  it('find nodes that disagree on a contract; without sources only the agreement is checked', () => {
    const differ = checkContracts(
      [
        { url: 'a', contracts: [{ name: 'notes', measurement: 'n1' }] },
        { url: 'b', contracts: [{ name: 'notes', measurement: 'n2' }] },
      ],
      null,
    );
    expect(differ).toMatchObject([{ ok: false, code: 'CONTRACTS_DIFFER', detail: 'a runs n1, b runs n2' }]);
    const missing = checkContracts([{ url: 'a', contracts: [{ name: 'notes', measurement: 'n1' }] }, { url: 'b', contracts: [] }], null);
    expect(missing[0]!.detail).toBe('deployed on a but not on b');
    expect(checkContracts([{ url: 'a', contracts: [{ name: 'notes', measurement: 'n1' }] }], null)[0]!.ok).toBe(true);
  });
});

describe('the report', () => {
  it('makes a finding of every failed check, naming the node', () => {
    const findings = findingsOf(
      [{ url: 'http://a', nodeId: 'n', platform: 'virtual', measurement: M, checks: [{ name: 'x', ok: false, code: 'SOURCE_MISMATCH', detail: 'd' }, { name: 'y', ok: true, detail: '' }] }],
      [{ name: 'heads', ok: false, code: 'HEADS_DIVERGE', detail: 'e' }],
      [{ name: 'tally', measurement: 't2', nodes: ['http://a'], bundle: null, bundleMeasurement: null, ok: false, code: 'CONTRACT_NO_BUNDLE', detail: 'f' }],
      { dir: '/src', measurement: null, detail: 'not built' },
    );
    expect(findings).toEqual([
      { code: 'SOURCE_UNMEASURED', message: 'source /src: not built' },
      { code: 'SOURCE_MISMATCH', node: 'http://a', message: 'http://a: x: d' },
      { code: 'HEADS_DIVERGE', message: 'heads: e' },
      { code: 'CONTRACT_NO_BUNDLE', message: 'contract tally: f' },
    ]);
  });

  it('sums a proposal up: its action kinds and votes', () => {
    const p: Parameters<typeof summarizeProposal>[0] = { id: 3, state: 'accepted', proposer: 'dev', actions: [{ type: 'deployContract', name: 'x' }, { type: 'setThreshold', threshold: 1 }], votes: { dev: true, ops: false }, approvals: 1, rejections: 1 };
    expect(summarizeProposal(p)).toEqual({ id: 3, state: 'accepted', proposer: 'dev', actions: ['deployContract', 'setThreshold'], votes: 2, approvals: 1, rejections: 1 });
  });

  it('says a source tree must be built rather than guessing its measurement', () => {
    const dir = tempDir('cloister-audit-src-');
    writeFileSync(join(dir, 'package.json'), '{"name":"cloister"}');
    mkdirSync(join(dir, 'contracts'));
    const source = measureSource(dir);
    expect(source.measurement).toBeNull();
    expect(source.detail).toMatch(/dist\/attestation is missing: run "npm run build" first .*npm ci && npm run build/);
  });
});
