import {
  AttestationError,
  checkReportData,
  evaluatePolicy,
  reportDataFor,
  verifyEvidence,
  type AttestationPolicy,
  type VerificationCache,
} from '../../attestation/index.js';
import { isHexOfLength, type Genesis } from '../../consensus/index.js';

/** What a node sends to be admitted: its identity, its enclave's public keys and evidence binding them. */
export interface AdmissionClaim {
  nodeId: string;
  publicKeys: Record<string, string>;
  /** The enclave's evidence, base64. */
  evidence: string;
}

/**
 * Why a node is not admitted. UNREACHABLE: no verified answer to our challenges (none yet, or none
 * for longer than the admission lasts); DISCONNECTED: the peer has no connection to us.
 */
export type AdmissionRefusalCode =
  | 'CLAIM_MALFORMED'
  | 'NODE_MISMATCH'
  | 'NOT_A_VALIDATOR'
  | 'KEY_MISMATCH'
  | 'GENESIS_MISMATCH'
  | 'UNREACHABLE'
  | 'DISCONNECTED'
  | AttestationError['code'];

export interface AdmissionDecision {
  nodeId: string;
  admitted: boolean;
  platform?: string;
  measurement?: string;
  /** The enclave keys whose votes count once admitted. */
  publicKeys?: Record<string, string>;
  reason?: { code: AdmissionRefusalCode; message: string };
}

export interface AdmissionContext {
  genesis: Genesis;
  /** The identity the transport authenticated (the libp2p peer id): the claim must be for it. */
  authenticatedNodeId: string;
  /** The challenge this node sent: the evidence must bind it, so old evidence cannot be replayed. */
  freshness: string;
  now: Date;
  cache?: VerificationCache;
}

const MAX_EVIDENCE_BASE64 = 1_500_000;

/**
 * The freshness value an admission answer's evidence binds: the genesis the
 * answering enclave runs (it puts its own) and the challenger's challenge. A
 * peer on another genesis cannot answer a challenge bound to ours.
 */
export function admissionFreshness(genesisHash: string, challenge: string): string {
  return `cloister/admission/v1:${genesisHash}:${challenge}`;
}

/**
 * Decides whether a peer's enclave may take part: cheapest checks first, and
 * every refusal names what failed. The peer is to blame for every refusal here.
 *  1. the claim's shape;  2. it speaks for the authenticated node, a genesis validator;
 *  3. the evidence verifies to a pinned root (a declared virtual root, or AMD/Intel);
 *  4. its report_data binds these keys, this chain, this node and our challenge;
 *  5. the genesis attestation policy accepts it (platform, measurement, debug, TCB, …);
 *  6. its vote key is the one the genesis lists for the node (votes verify against it).
 */
export function evaluateAdmission(raw: unknown, ctx: AdmissionContext): AdmissionDecision {
  // A decision is always about the peer the transport authenticated, never the id a claim asserts:
  // otherwise a peer could have its refusal listed under another validator's name.
  const refuse = (code: AdmissionRefusalCode, message: string, extra: Partial<AdmissionDecision> = {}): AdmissionDecision => ({
    nodeId: ctx.authenticatedNodeId,
    admitted: false,
    ...extra,
    reason: { code, message },
  });
  const claim = raw as Partial<AdmissionClaim> | null;
  if (typeof claim !== 'object' || claim === null || Array.isArray(claim)) return refuse('CLAIM_MALFORMED', 'the admission claim is not an object');
  const { nodeId, publicKeys, evidence } = claim;
  if (typeof nodeId !== 'string' || nodeId.length === 0 || nodeId.length > 128) {
    return refuse('CLAIM_MALFORMED', 'nodeId must be a non-empty string');
  }
  if (typeof publicKeys !== 'object' || publicKeys === null || Array.isArray(publicKeys)) {
    return refuse('CLAIM_MALFORMED', 'publicKeys must be an object of name → key');
  }
  const keys = Object.entries(publicKeys);
  if (keys.length === 0 || keys.length > 8 || keys.some(([name, key]) => !/^[a-z][a-z0-9-]{0,31}$/.test(name) || !isHexOfLength(key, 32))) {
    return refuse('CLAIM_MALFORMED', 'publicKeys must name 1 to 8 keys of 32 bytes in lowercase hex');
  }
  if (typeof evidence !== 'string' || evidence.length === 0 || evidence.length > MAX_EVIDENCE_BASE64) {
    return refuse('CLAIM_MALFORMED', 'evidence must be base64 text of at most about 1 MiB');
  }
  if (nodeId !== ctx.authenticatedNodeId) {
    return refuse('NODE_MISMATCH', `the claim is for node "${nodeId}" but the connection is from "${ctx.authenticatedNodeId}"`);
  }
  const validator = ctx.genesis.validators.find((v) => v.nodeId === nodeId);
  if (!validator) {
    return refuse('NOT_A_VALIDATOR', `node "${nodeId}" is not in the genesis`);
  }
  const keysCopy = Object.fromEntries(keys) as Record<string, string>;
  try {
    const result = verifyEvidence(new Uint8Array(Buffer.from(evidence, 'base64')), {
      now: ctx.now,
      trustedRoots: { virtual: ctx.genesis.enclave.virtualRoots },
      ...(ctx.cache ? { cache: ctx.cache } : {}),
    });
    const facts = { platform: result.platform, measurement: result.measurement };
    try {
      checkReportData(result, reportDataFor({ publicKeys: keysCopy, chainId: ctx.genesis.chainId, nodeId, freshness: ctx.freshness }));
    } catch (err) {
      const e = err as AttestationError;
      return refuse(e.code, 'the evidence does not bind these keys to this node, this chain and our challenge', facts);
    }
    const decision = evaluatePolicy(result, ctx.genesis.policy as unknown as AttestationPolicy, { now: ctx.now });
    if (!decision.accepted) {
      const first = decision.reasons[0]!;
      return refuse(first.code, decision.reasons.map((r) => r.message).join('; '), facts);
    }
    if (keysCopy.vote !== validator.voteKey) {
      return refuse('KEY_MISMATCH', `the enclave's vote key ${String(keysCopy.vote)} is not the one the genesis lists for this node (${validator.voteKey})`, facts);
    }
    return { nodeId, admitted: true, ...facts, publicKeys: keysCopy };
  } catch (err) {
    if (err instanceof AttestationError) return refuse(err.code, err.message);
    throw err;
  }
}
