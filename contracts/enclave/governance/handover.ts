import { genesisHash, sha256Hex, type Genesis, type JsonValue } from '../../../consensus/index.js';
import { evaluationTime } from '../../../attestation/index.js';
import { evaluateAdmission, type AdmissionClaim } from '../peer-evidence.js';
import type { StateOverlay } from '../state.js';
import { govError } from './errors.js';
import { readConfig, writeConfig } from './records.js';
import type { GovernanceOutcome } from './proposals.js';

/**
 * A validator hands its place over to its successor: the same node running a
 * new enclave program (a rolling upgrade). The vote key is sealed to the
 * program that made it, so the new program's enclave has a new one; the old
 * enclave signs this transaction with its vote key, naming the successor's
 * claim (its keys and evidence binding them to this node, this chain and
 * `handoverFreshness`). Every enclave executing it checks that claim as it
 * checks a peer at admission, against the policy in force at the block's
 * time, so the new program must be one the members allowed. From the next
 * height the node's vote key is the successor's; nothing secret passed
 * through any host: the successor made its own key, and gets the
 * consortium secret by attested release like any validator.
 */
export const HANDOVER_METHOD = 'handover';

/**
 * The freshness a successor's evidence binds: this genesis, the node, and the
 * vote key it takes over from (hashed, to fit the 128 characters evidence
 * freshness may have).
 */
export function handoverFreshness(genesisHashHex: string, nodeId: string, fromVoteKey: string): string {
  return `cloister/handover/v1:${sha256Hex(`${genesisHashHex}:${nodeId}:${fromVoteKey}`)}`;
}

export interface HandoverContext {
  genesis: Genesis;
  height: number;
  /** The block's time, ms: the time the successor's evidence is judged at (the same on every node). */
  time: number;
}

/**
 * Checks a successor's claim for `nodeId`, which holds `fromVoteKey` now:
 * the refusal's message, or null when it may take the place. (The old
 * enclave runs the same check before it signs.)
 */
export function successorProblem(claim: unknown, ctx: { genesis: Genesis; policy: JsonValue; nodeId: string; fromVoteKey: string; now: Date }): string | null {
  const vote = (claim as { publicKeys?: { vote?: unknown } } | null)?.publicKeys?.vote;
  if (typeof vote !== 'string') return 'the successor claim names no vote key';
  if (vote === ctx.fromVoteKey) return 'the successor has the same vote key: nothing to hand over';
  const decision = evaluateAdmission(claim, {
    // The claim must bind this node; its vote key is the one it will have.
    genesis: { ...ctx.genesis, policy: ctx.policy, validators: [{ nodeId: ctx.nodeId, voteKey: vote }] },
    authenticatedNodeId: ctx.nodeId,
    freshness: handoverFreshness(genesisHash(ctx.genesis), ctx.nodeId, ctx.fromVoteKey),
    now: ctx.now,
  });
  return decision.admitted ? null : `the successor is refused: ${decision.reason!.code}: ${decision.reason!.message}`;
}

/** `handover(claim)`, sent by a validator's enclave with its vote key. */
export function handover(state: StateOverlay, ctx: HandoverContext, from: string, args: JsonValue[]): GovernanceOutcome {
  if (args.length !== 1) throw govError('GOV_HANDOVER_INVALID', 'handover takes (successor claim)');
  const claim = args[0] as unknown as AdmissionClaim;
  const config = readConfig(state, ctx.genesis);
  // 1. Only a validator's enclave, with the key its place holds now, hands that place over.
  const place = config.validators.find((v) => v.voteKey === from);
  if (!place) throw govError('GOV_HANDOVER_INVALID', 'only a validator\'s enclave hands its place over, signing with its vote key');
  if (typeof claim !== 'object' || claim === null || claim.nodeId !== place.nodeId) {
    throw govError('GOV_HANDOVER_INVALID', `the successor claim must be for node ${place.nodeId}`);
  }
  // 2. The successor's evidence: genuine, binding its keys to this node and this handover, and allowed by the policy in force.
  const problem = successorProblem(claim, { genesis: ctx.genesis, policy: config.policy, nodeId: place.nodeId, fromVoteKey: from, now: evaluationTime(ctx.time) });
  if (problem !== null) throw govError('GOV_HANDOVER_INVALID', problem);
  const voteKey = claim.publicKeys['vote']!;
  // 3. A key no other validator holds.
  if (config.validators.some((v) => v.voteKey === voteKey)) throw govError('GOV_HANDOVER_INVALID', 'the successor\'s vote key belongs to a validator already');
  const after = { ...config, validators: config.validators.map((v) => (v.nodeId === place.nodeId ? { nodeId: v.nodeId, voteKey } : v)) };
  writeConfig(state, config, after, ctx.height + 1);
  return {
    result: { nodeId: place.nodeId, voteKey, fromHeight: ctx.height + 1 },
    events: [{ name: 'NodeHandedOver', data: { nodeId: place.nodeId, from, to: voteKey, fromHeight: ctx.height + 1 } }],
  };
}
