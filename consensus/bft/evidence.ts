import { voteMessage, type Vote } from '../chain/block.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { signingMessage } from '../crypto/signing.js';
import { isHexOfLength } from '../encoding/hex.js';
import { proposalBlockHash } from './proposer.js';
import type { Evidence } from './types.js';

/**
 * Proof that one validator key signed two different things for one slot
 * (height, round, step): what a compromised enclave, or two copies of one
 * node, can do. Self-contained and small (proposals are represented by what
 * their signature covers: the block hash and the proof-of-lock round), so it
 * can be gossiped, stored and checked by anyone with the validator set.
 */
export interface EquivocationEvidence {
  kind: 'proposal' | 'prevote' | 'precommit';
  validator: string;
  height: number;
  round: number;
  first: SignedSlotValue;
  second: SignedSlotValue;
}

export interface SignedSlotValue {
  /** The block signed for (null: a nil vote). */
  blockHash: string | null;
  /** Proposals only: the proof-of-lock round the proposal carried. */
  polRound?: number;
  signature: string;
}

/** The portable form of the machine's evidence, with the two signed values in a fixed order. */
export function portableEvidence(evidence: Evidence): EquivocationEvidence {
  let a: SignedSlotValue;
  let b: SignedSlotValue;
  if (evidence.kind === 'vote') {
    a = { blockHash: evidence.first.vote.blockHash, signature: evidence.first.signature };
    b = { blockHash: evidence.second.vote.blockHash, signature: evidence.second.signature };
  } else {
    const value = (sp: typeof evidence.first): SignedSlotValue => ({
      blockHash: proposalBlockHash(sp.proposal),
      polRound: sp.proposal.polRound,
      signature: sp.signature,
    });
    a = value(evidence.first);
    b = value(evidence.second);
  }
  const [first, second] = a.signature < b.signature ? [a, b] : [b, a];
  const kind = evidence.kind === 'vote' ? evidence.voteType : 'proposal';
  return { kind, validator: evidence.validator, height: evidence.height, round: evidence.round, first, second };
}

/** One key per slot and validator: at most one piece of evidence is kept for it. */
export function evidenceKey(e: Pick<EquivocationEvidence, 'validator' | 'height' | 'round' | 'kind'>): string {
  return `${e.validator}/${e.height}/${e.round}/${e.kind}`;
}

/**
 * Checks evidence from anyone: both signatures by the validator (a member of
 * `validators`) over two different values of the same slot. Never throws.
 */
export function verifyEquivocation(raw: unknown, chainId: string, validators: ReadonlySet<string>): raw is EquivocationEvidence {
  try {
    const e = raw as EquivocationEvidence;
    if (typeof e !== 'object' || e === null) return false;
    if (e.kind !== 'proposal' && e.kind !== 'prevote' && e.kind !== 'precommit') return false;
    if (!isHexOfLength(e.validator, 32) || !validators.has(e.validator)) return false;
    if (!Number.isSafeInteger(e.height) || e.height < 0 || !Number.isSafeInteger(e.round) || e.round < 0) return false;
    const values = [e.first, e.second];
    for (const v of values) {
      if (typeof v !== 'object' || v === null || !isHexOfLength(v.signature, 64)) return false;
      if (v.blockHash !== null && !isHexOfLength(v.blockHash, 32)) return false;
      if (e.kind === 'proposal' && (v.blockHash === null || !Number.isSafeInteger(v.polRound) || v.polRound! < -1 || v.polRound! >= e.round)) return false;
    }
    if (e.first.blockHash === e.second.blockHash && e.first.polRound === e.second.polRound) return false;
    return values.every((v) => verifyEd25519(e.validator, slotMessage(chainId, e, v), v.signature));
  } catch {
    return false;
  }
}

function slotMessage(chainId: string, e: EquivocationEvidence, v: SignedSlotValue): Uint8Array {
  if (e.kind === 'proposal') {
    return signingMessage('proposal', { chainId, height: e.height, round: e.round, polRound: v.polRound!, blockHash: v.blockHash! });
  }
  const vote: Vote = { chainId, type: e.kind, height: e.height, round: e.round, blockHash: v.blockHash };
  return voteMessage(vote);
}
