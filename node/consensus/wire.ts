import {
  isHexOfLength,
  proposalMessage,
  verifyEd25519,
  voteMessage,
  type SignedProposal,
  type SignedVote,
  type Vote,
} from '../../consensus/index.js';
import { parseJsonBytes, type ValidationOutcome } from '../network/index.js';

/**
 * Consensus gossip messages. `seq` makes each publish distinct: gossipsub ids
 * messages by content, so re-gossiping a vote a peer missed would otherwise be
 * dropped as already seen.
 */
export type ConsensusMessage =
  | { type: 'proposal'; chainId: string; seq: number; proposal: SignedProposal }
  | { type: 'vote'; chainId: string; seq: number; vote: SignedVote };

const encoder = new TextEncoder();

export function encodeConsensusMessage(message: ConsensusMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

export interface ConsensusCheckContext {
  chainId: string;
  /** Genesis vote keys. */
  validators: ReadonlySet<string>;
  /** Vote keys whose enclave evidence this node verified (and its own). */
  admitted(voteKey: string): boolean;
  /** The height consensus decides now. */
  height: number;
  /** A validated message for a later height than we can use: a sync hint. */
  onAhead?(height: number, fromPeer: string): void;
}

/** How far ahead a message may be and still be relayed (consensus holds height and height + 1). */
const MAX_HEIGHT_AHEAD = 1;

/**
 * Checks a consensus gossip message before it is delivered or relayed,
 * cheapest first. Reject: the relaying peer sent something no honest node
 * sends (malformed, not signed by a validator, a bad signature). Ignore:
 * nobody to blame (an old height, a validator not admitted yet, another chain).
 */
export function checkConsensusMessage(data: Uint8Array, from: string, ctx: ConsensusCheckContext): ValidationOutcome<ConsensusMessage> {
  const parsed = parseJsonBytes(data);
  if (!parsed.ok) return { verdict: 'reject', reason: 'not_json' };
  const m = parsed.value as Partial<ConsensusMessage> | null;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return { verdict: 'reject', reason: 'not_object' };
  if (m.chainId !== ctx.chainId) return { verdict: typeof m.chainId === 'string' ? 'ignore' : 'reject', reason: 'wrong_chain' };
  if (typeof m.seq !== 'number' || !Number.isSafeInteger(m.seq)) return { verdict: 'reject', reason: 'bad_seq' };

  let signer: string;
  let height: number;
  let message: () => Uint8Array;
  let signature: string;
  if (m.type === 'vote') {
    const sv = m.vote as Partial<SignedVote> | undefined;
    const v = sv?.vote as Partial<Vote> | undefined;
    if (!sv || !v || typeof sv.validator !== 'string' || typeof sv.signature !== 'string') return { verdict: 'reject', reason: 'bad_vote' };
    if (v.type !== 'prevote' && v.type !== 'precommit') return { verdict: 'reject', reason: 'bad_vote' };
    if (!Number.isSafeInteger(v.height) || !Number.isSafeInteger(v.round) || v.round! < 0) return { verdict: 'reject', reason: 'bad_vote' };
    if (v.blockHash !== null && !isHexOfLength(v.blockHash, 32)) return { verdict: 'reject', reason: 'bad_vote' };
    if (v.chainId !== ctx.chainId) return { verdict: 'reject', reason: 'bad_vote' };
    signer = sv.validator;
    height = v.height!;
    signature = sv.signature;
    const clean: Vote = { chainId: v.chainId, type: v.type, height: v.height!, round: v.round!, blockHash: v.blockHash! };
    message = () => voteMessage(clean);
  } else if (m.type === 'proposal') {
    const sp = m.proposal as Partial<SignedProposal> | undefined;
    const p = sp?.proposal;
    if (!sp || !p || typeof sp.proposer !== 'string' || typeof sp.signature !== 'string') return { verdict: 'reject', reason: 'bad_proposal' };
    if (p.chainId !== ctx.chainId || !Number.isSafeInteger(p.height) || !Number.isSafeInteger(p.round) || !Number.isSafeInteger(p.polRound)) {
      return { verdict: 'reject', reason: 'bad_proposal' };
    }
    if (typeof p.block !== 'object' || p.block === null || typeof p.block.header !== 'object' || !Array.isArray(p.block.txs)) {
      return { verdict: 'reject', reason: 'bad_proposal' };
    }
    signer = sp.proposer;
    height = p.height;
    signature = sp.signature;
    message = () => proposalMessage(p);
  } else {
    return { verdict: 'reject', reason: 'unknown_type' };
  }

  if (!ctx.validators.has(signer)) return { verdict: 'reject', reason: 'not_a_validator' };
  if (height < ctx.height - 1) return { verdict: 'ignore', reason: 'old_height' };
  if (!ctx.admitted(signer)) return { verdict: 'ignore', reason: 'signer_not_admitted' };
  let valid: boolean;
  try {
    valid = verifyEd25519(signer, message(), signature);
  } catch {
    valid = false;
  }
  if (!valid) return { verdict: 'reject', reason: 'bad_signature' };
  if (height > ctx.height + MAX_HEIGHT_AHEAD) {
    // Validly signed but too far ahead for the machine: we are behind. Relay it (others may use it) and sync.
    ctx.onAhead?.(height, from);
  }
  return { verdict: 'accept', reason: 'ok', value: m as ConsensusMessage };
}
