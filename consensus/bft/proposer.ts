import { signingMessage } from '../crypto/signing.js';
import { headerHash } from '../chain/block.js';
import type { Proposal } from './types.js';

/** Deterministic round-robin proposer: validators[(height + round) % n]. */
export function proposerFor(validators: readonly string[], height: number, round: number): string {
  const n = validators.length;
  if (n === 0) throw new TypeError('empty validator set');
  return validators[(height + round) % n]!;
}

/** f = floor((n - 1) / 3): the number of Byzantine validators tolerated. */
export function faultTolerance(n: number): number {
  return Math.floor((n - 1) / 3);
}

/** The block id a proposal stands for: the hash of its header. */
export function proposalBlockHash(proposal: Proposal): string {
  return headerHash(proposal.block.header);
}

/**
 * What a proposer signs, under its own 'proposal' signing domain, so a proposal
 * signature can never pass for a vote signature.
 */
export function proposalMessage(proposal: Proposal): Uint8Array {
  return signingMessage('proposal', {
    chainId: proposal.chainId,
    height: proposal.height,
    round: proposal.round,
    polRound: proposal.polRound,
    blockHash: proposalBlockHash(proposal),
  });
}
