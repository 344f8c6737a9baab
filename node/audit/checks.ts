/**
 * The audit's checks, as functions over what was fetched from the nodes and
 * read from the auditor's own files (the genesis, the source tree): no I/O
 * here, so each can be tested on made-up answers.
 */
import {
  AttestationError,
  checkReportData,
  evaluatePolicy,
  policyHash,
  reportDataFor,
  verifyEvidence,
  type AttestationPolicy,
  type AttestationResult,
  type ReportDataInput,
} from '../../attestation/index.js';
import type { Genesis } from '../../consensus/index.js';
import { ProofError, verifyStateValueProof } from '../proofs/index.js';
import type { ChainView, ContractView, EvidenceView, ProposalView, StatusView } from '../client/index.js';
import type { Check, ContractAudit, FindingCode, ProposalSummary } from './report.js';

const pass = (name: string, detail: string): Check => ({ name, ok: true, detail });
const fail = (name: string, code: FindingCode, detail: string): Check => ({ name, ok: false, detail, code });

/** The node runs the auditor's genesis: the same hash and chain id. */
export function checkGenesis(status: Pick<StatusView, 'chainId' | 'genesisHash'>, genesis: { chainId: string; hash: string }): Check {
  const name = 'runs the genesis';
  if (status.genesisHash !== genesis.hash) return fail(name, 'GENESIS_MISMATCH', `genesis hash ${status.genesisHash}, the file's is ${genesis.hash}`);
  if (status.chainId !== genesis.chainId) return fail(name, 'GENESIS_MISMATCH', `chain id "${status.chainId}", the file's is "${genesis.chainId}"`);
  return pass(name, `genesis ${genesis.hash}, chain "${genesis.chainId}"`);
}

/**
 * The node's head is a block of this consortium: its header, proved with a
 * state proof, verifies from the genesis alone (node/proofs): a quorum of the
 * validators of its height, following governance's changes, each signer's
 * evidence accepted by the policy of that height (from the ledger where it
 * records it).
 */
export function checkHeadCertified(proof: unknown, genesis: Genesis, now: Date): Check {
  const name = 'head certified from the genesis';
  try {
    const verified = verifyStateValueProof(proof, genesis, { now });
    const onLedger = verified.signers.filter((s) => s.attestedAt !== null).length;
    return pass(name, `block ${verified.height} (${verified.blockHash}): ${verified.signers.length} signers, each attested (${onLedger} by evidence on the ledger)`);
  } catch (err) {
    if (err instanceof ProofError) return fail(name, 'HEAD_NOT_CERTIFIED', `${err.code}: ${err.message}`);
    throw err;
  }
}

/**
 * The policy in force is the one the chain commits to: the view's policy
 * hashes to its policyHash, and a committed header carries that hash. The
 * headers are the head's and, when governance changed the policy in the head
 * block (so the head still commits to the old one), the next block's.
 */
export function checkPolicyInForce(view: Pick<ChainView, 'policy' | 'policyHash'>, headers: readonly { height: number; policyHash: string }[]): Check {
  const name = 'policy in force is committed';
  let recomputed: string;
  try {
    recomputed = policyHash(view.policy);
  } catch (err) {
    return fail(name, 'POLICY_HASH_MISMATCH', `the chain view's policy is not a policy: ${(err as Error).message}`);
  }
  if (recomputed !== view.policyHash) {
    return fail(name, 'POLICY_HASH_MISMATCH', `the chain view's policy hashes to ${recomputed}, the view states ${view.policyHash}`);
  }
  const header = headers.find((h) => h.policyHash === view.policyHash);
  if (!header) {
    const seen = headers.map((h) => `block ${h.height}: ${h.policyHash}`).join(', ');
    return fail(name, 'POLICY_HASH_MISMATCH', `no committed header carries the view's policyHash ${view.policyHash} (${seen || 'no header'})`);
  }
  return pass(name, `policyHash ${view.policyHash}, in the header of block ${header.height}`);
}

/** What the evidence is checked against: the auditor's genesis (roots, chain id), the challenge, and the chain view in force. */
export interface EvidenceContext {
  evidence: EvidenceView;
  /** The auditor's random challenge. */
  nonce: string;
  /** The node id the node states (node_status). */
  nodeId: string;
  genesis: Pick<Genesis, 'chainId' | 'enclave'>;
  view: Pick<ChainView, 'policy' | 'validators'>;
  now: Date;
}

/**
 * The node's fresh evidence: it verifies against the genesis's vendor roots,
 * binds the auditor's nonce, the genesis's chain id and the node's id, the
 * node is a validator in force with the vote key the evidence binds, and the
 * policy in force accepts it. Returns the verified result (undefined when the
 * evidence did not verify: the other checks then are not made).
 */
export function checkEvidence(ctx: EvidenceContext): { result?: AttestationResult; checks: Check[] } {
  const { evidence, nonce, genesis, view, now } = ctx;
  let result: AttestationResult;
  try {
    result = verifyEvidence(new Uint8Array(Buffer.from(evidence.evidence, 'base64')), { now, trustedRoots: { virtual: genesis.enclave.virtualRoots } });
  } catch (err) {
    const why = err instanceof AttestationError ? `${err.code}: ${err.message}` : String(err);
    return { checks: [fail('evidence verifies', 'EVIDENCE_INVALID', why)] };
  }
  const checks: Check[] = [pass('evidence verifies', `${result.platform} evidence, measurement ${result.measurement}`)];

  // The report_data is a hash: it binds the whole tuple or nothing. To name what is wrong, see whether it
  // binds what the node states (its evidence view's fields): then the field that differs from ours is the one.
  const binds = (input: ReportDataInput): boolean => {
    try {
      checkReportData(result, reportDataFor(input));
      return true;
    } catch {
      return false;
    }
  };
  const expected = { publicKeys: evidence.publicKeys, chainId: genesis.chainId, nodeId: ctx.nodeId, freshness: nonce };
  const stated = { publicKeys: evidence.publicKeys, chainId: evidence.chainId, nodeId: evidence.nodeId, freshness: evidence.freshness };
  const bindsExpected = binds(expected);
  const bindsStated = !bindsExpected && binds(stated);
  const field = (name: string, code: FindingCode, key: 'freshness' | 'chainId' | 'nodeId', what: string): Check => {
    if (bindsExpected || (bindsStated && stated[key] === expected[key])) return pass(name, `${what} ${expected[key]}`);
    if (bindsStated) return fail(name, code, `the evidence binds ${what} ${stated[key]}, expected ${expected[key]}`);
    return fail(name, code, `report_data ${result.reportData} binds neither ${what} ${expected[key]} nor what the node states with it`);
  };
  checks.push(field('binds the nonce', 'NONCE_NOT_BOUND', 'freshness', 'nonce'));
  checks.push(field('binds the chain id', 'WRONG_CHAIN', 'chainId', 'chain id'));
  checks.push(field('binds the node id', 'NODE_ID_MISMATCH', 'nodeId', 'node id'));

  const validator = view.validators.find((v) => v.nodeId === ctx.nodeId);
  if (!validator) checks.push(fail('validator in force', 'NODE_ID_MISMATCH', `node ${ctx.nodeId} is not a validator of the chain view in force`));
  else if (validator.voteKey !== evidence.publicKeys['vote']) {
    checks.push(fail('validator in force', 'NODE_ID_MISMATCH', `the evidence binds vote key ${String(evidence.publicKeys['vote'])}, the chain lists ${validator.voteKey}`));
  } else checks.push(pass('validator in force', `vote key ${validator.voteKey}`));

  let decision;
  try {
    decision = evaluatePolicy(result, view.policy as AttestationPolicy, { now });
  } catch (err) {
    checks.push(fail('policy in force accepts it', 'POLICY_REFUSED', `the policy cannot be evaluated: ${(err as Error).message}`));
    return { result, checks };
  }
  checks.push(
    decision.accepted
      ? pass('policy in force accepts it', `measurement ${result.measurement} allowed`)
      : fail('policy in force accepts it', 'POLICY_REFUSED', decision.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')),
  );
  return { result, checks };
}

/** The node's measurement is the one the source tree's enclave program gives. */
export function checkSourceMeasurement(nodeMeasurement: string, source: { dir: string; measurement: string | null; detail: string }): Check {
  const name = 'measurement matches the source';
  if (source.measurement === null) return fail(name, 'SOURCE_UNMEASURED', `source ${source.dir} not measured: ${source.detail}`);
  if (source.measurement !== nodeMeasurement) {
    return fail(name, 'SOURCE_MISMATCH', `the node runs ${nodeMeasurement}, the source ${source.dir} measures ${source.measurement}`);
  }
  return pass(name, `${source.dir} measures ${source.measurement}`);
}

/** Contracts the consortium's own program provides (covered by the enclave measurement), not bundles. */
const SYSTEM_CONTRACTS = new Set(['consortium']);

/**
 * Every deployed contract, compared across the nodes and, when `bundles` is
 * given (name → bundle directory and measurement), with the bundle of that
 * name.
 */
export function checkContracts(
  perNode: readonly { url: string; contracts: readonly Pick<ContractView, 'name' | 'measurement'>[] }[],
  bundles: ReadonlyMap<string, { dir: string; measurement: string }> | null,
): ContractAudit[] {
  const names = [...new Set(perNode.flatMap((n) => n.contracts.map((c) => c.name)))].filter((n) => !SYSTEM_CONTRACTS.has(n)).sort();
  return names.map((name) => {
    const listed = perNode.map((n) => ({ url: n.url, measurement: n.contracts.find((c) => c.name === name)?.measurement }));
    const present = listed.filter((l): l is { url: string; measurement: string } => l.measurement !== undefined);
    const measurement = present[0]!.measurement;
    const bundle = bundles?.get(name);
    const base = { name, measurement, nodes: present.map((p) => p.url), bundle: bundle?.dir ?? null, bundleMeasurement: bundle?.measurement ?? null };
    const missing = listed.filter((l) => l.measurement === undefined).map((l) => l.url);
    if (missing.length > 0) return { ...base, ok: false, code: 'CONTRACTS_DIFFER' as const, detail: `deployed on ${base.nodes.join(', ')} but not on ${missing.join(', ')}` };
    const other = present.find((p) => p.measurement !== measurement);
    if (other) {
      return { ...base, ok: false, code: 'CONTRACTS_DIFFER' as const, detail: `${present[0]!.url} runs ${measurement}, ${other.url} runs ${other.measurement}` };
    }
    if (bundles === null) return { ...base, ok: true, detail: `measurement ${measurement} (no sources given to compare with)` };
    if (!bundle) return { ...base, ok: false, code: 'CONTRACT_NO_BUNDLE' as const, detail: `deployed with measurement ${measurement}, but no bundle named "${name}" in the sources` };
    if (bundle.measurement !== measurement) {
      return { ...base, ok: false, code: 'CONTRACT_MISMATCH' as const, detail: `the chain runs ${measurement}, the bundle ${bundle.dir} measures ${bundle.measurement}` };
    }
    return { ...base, ok: true, detail: `measurement ${measurement} = ${bundle.dir}` };
  });
}

/** The nodes' blocks at the lowest common height are one block. `blocks`: each node's hash at `height`, or null when it gave none. */
export function checkHeads(height: number, blocks: readonly { url: string; hash: string | null }[]): Check {
  const name = `heads agree at height ${height}`;
  const none = blocks.filter((b) => b.hash === null);
  if (none.length > 0) return fail(name, 'HEADS_DIVERGE', `no block ${height} from ${none.map((b) => b.url).join(', ')}`);
  const first = blocks[0];
  const other = blocks.find((b) => b.hash !== first?.hash);
  if (first && other) return fail(name, 'HEADS_DIVERGE', `${first.url} has ${first.hash}, ${other.url} has ${other.hash}`);
  return pass(name, `block ${height} is ${first?.hash ?? '(no node answered)'} on ${blocks.length} node(s)`);
}

/** A proposal in brief: what it does and how it was voted. */
export function summarizeProposal(p: Pick<ProposalView, 'id' | 'state' | 'proposer' | 'actions' | 'votes' | 'approvals' | 'rejections'>): ProposalSummary {
  const kind = (a: unknown): string => (typeof a === 'object' && a !== null && typeof (a as { type?: unknown }).type === 'string' ? (a as { type: string }).type : 'unknown');
  return {
    id: p.id,
    state: p.state,
    proposer: p.proposer,
    actions: p.actions.map(kind),
    votes: Object.keys(p.votes).length,
    approvals: p.approvals,
    rejections: p.rejections,
  };
}
