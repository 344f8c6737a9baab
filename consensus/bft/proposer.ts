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
 * What a proposer signs. It uses the 'vote' signing domain with a payload that
 * carries `kind` and `polRound`, keys a Vote never has, so a proposal signature
 * can never be mistaken for a vote signature (canonical encodings differ).
 */
export function proposalMessage(proposal: Proposal): Uint8Array {
  return signingMessage('vote', {
    kind: 'proposal',
    chainId: proposal.chainId,
    height: proposal.height,
    round: proposal.round,
    polRound: proposal.polRound,
    blockHash: proposalBlockHash(proposal),
  });
}
