import {
  isHexOfLength,
  verifyEquivocation,
  type EquivocationEvidence,
  proposalMessage,
  verifyEd25519,
  voteMessage,
  type BlockHeader,
  type Proposal,
  type SignedProposal,
  type SignedVote,
  type Vote,
} from '../../consensus/index.js';
import { parseJsonBytes, type ValidationOutcome } from '../network/index.js';

/**
 * A proposal as gossiped: its block's transactions by hash only. Peers have
 * them from transaction gossip (and fetch the few they miss), so a block's
 * transactions do not cross the network a second time. The proposer's
 * signature covers the header, whose txRoot commits to these hashes.
 */
export interface CompactProposal {
  proposal: Omit<Proposal, 'block'> & { block: { header: BlockHeader; txHashes: string[] } };
  proposer: string;
  signature: string;
}

/**
 * Consensus gossip messages. `seq` makes each publish distinct: gossipsub ids
 * messages by content, so re-gossiping a vote a peer missed would otherwise be
 * dropped as already seen.
 */
export type ConsensusMessage =
  | { type: 'proposal'; chainId: string; seq: number; proposal: CompactProposal }
  | { type: 'vote'; chainId: string; seq: number; vote: SignedVote }
  /** Proof that a validator signed two different things for one slot; anyone may relay it, it checks itself. */
  | { type: 'evidence'; chainId: string; seq: number; evidence: EquivocationEvidence };

/** A full proposal in its compact form; `txHashes` are the hashes of `sp.proposal.block.txs`, in order. */
export function compactProposal(sp: SignedProposal, txHashes: string[]): CompactProposal {
  const { block, ...rest } = sp.proposal;
  return { proposal: { ...rest, block: { header: block.header, txHashes } }, proposer: sp.proposer, signature: sp.signature };
}

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
  /** Most transactions a block holds (a longer hash list is malformed). */
  maxBlockTxs?: number;
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

  if (m.type === 'evidence') {
    return verifyEquivocation(m.evidence, ctx.chainId, ctx.validators)
      ? { verdict: 'accept', reason: 'ok', value: m as ConsensusMessage }
      : { verdict: 'reject', reason: 'bad_evidence' };
  }

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
    const sp = m.proposal as Partial<CompactProposal> | undefined;
    const p = sp?.proposal;
    if (!sp || !p || typeof sp.proposer !== 'string' || typeof sp.signature !== 'string') return { verdict: 'reject', reason: 'bad_proposal' };
    if (p.chainId !== ctx.chainId || !Number.isSafeInteger(p.height) || !Number.isSafeInteger(p.round) || !Number.isSafeInteger(p.polRound)) {
      return { verdict: 'reject', reason: 'bad_proposal' };
    }
    const block = p.block as Partial<CompactProposal['proposal']['block']> | undefined;
    if (typeof block !== 'object' || block === null || typeof block.header !== 'object' || block.header === null || !Array.isArray(block.txHashes)) {
      return { verdict: 'reject', reason: 'bad_proposal' };
    }
    if (block.txHashes.length > (ctx.maxBlockTxs ?? Infinity) || !block.txHashes.every((h) => isHexOfLength(h, 32))) {
      return { verdict: 'reject', reason: 'bad_proposal' };
    }
    signer = sp.proposer;
    height = p.height;
    signature = sp.signature;
    // The signed message needs only the header (its hash): the transactions are not part of it.
    message = () => proposalMessage({ ...p, block: { header: block.header!, txs: [] } } as Proposal);
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
