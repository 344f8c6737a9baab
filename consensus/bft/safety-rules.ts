import { ChainError } from '../errors.js';
import { voteMessage, type Vote } from '../chain/block.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { SignedVote } from './types.js';

/**
 * The voting rules a validator's signer enforces by itself, whatever its host
 * asks (the role of Diem's SafetyRules, or CometBFT's privval plus the lock
 * its WAL keeps). They hold the two facts Tendermint's safety rests on, and
 * they live in the enclave, sealed, so that neither a restart nor a host that
 * lies can make an honest enclave break them:
 *
 *  1. never sign two different things for one (height, round, step), and never
 *     go back to an earlier one: signing exactly the last thing again is allowed
 *     (ed25519 is deterministic: same bytes, same signature);
 *  2. the lock (Algorithm 1, lines 36-43): a precommit for a block needs 2f+1
 *     prevotes for it in that round, and locks the signer on it; while locked,
 *     a prevote for another block needs a proof of lock for that block (2f+1
 *     prevotes in one round after the lock's round and before this one, line 28).
 *     Nil votes are always allowed.
 *
 * Pure: the state goes in, the new state comes out; the caller seals it before
 * it releases the signature.
 */

/** Proposal, prevote, precommit: the order in which a validator signs within a round. */
export const SIGN_STEP = { proposal: 1, prevote: 2, precommit: 3 } as const;
export type SignStep = keyof typeof SIGN_STEP;
/** The step of a LastSign's number (undefined for a number that is none). */
export function signStepName(step: number): SignStep | undefined {
  return (Object.keys(SIGN_STEP) as SignStep[]).find((name) => SIGN_STEP[name] === step);
}

export interface LastSign {
  height: number;
  round: number;
  step: number;
  /** What was signed at that slot: a block hash, or "nil". */
  value: string;
}

/** The block this signer precommitted last, and when: it may prevote another block only with a later proof of lock. */
export interface SignerLock {
  height: number;
  round: number;
  blockHash: string;
}

export interface SafetyState {
  lastSign: LastSign | null;
  lock: SignerLock | null;
}

export interface SafetyContext {
  chainId: string;
  /** The validator set of the height being signed for. */
  validators: readonly string[];
  quorum: number;
}

export type SignRequest =
  | { step: 'proposal'; height: number; round: number; blockHash: string }
  | {
      step: 'prevote' | 'precommit';
      height: number;
      round: number;
      blockHash: string | null;
      /**
       * Prevotes that justify the vote: for a precommit, 2f+1 prevotes for the
       * block in this round; for a prevote against the lock, the proof of lock.
       */
      justification?: readonly SignedVote[];
    };

export function compareSlots(a: Pick<LastSign, 'height' | 'round' | 'step'>, b: Pick<LastSign, 'height' | 'round' | 'step'>): number {
  if (a.height !== b.height) return a.height < b.height ? -1 : 1;
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  if (a.step !== b.step) return a.step < b.step ? -1 : 1;
  return 0;
}

export function describeSlot(s: Pick<LastSign, 'height' | 'round' | 'step'>): string {
  const step = signStepName(s.step) ?? String(s.step);
  return `a ${step} at height ${s.height} round ${s.round}`;
}

/**
 * The state after signing `request`, or ChainError VOTE_CONFLICT (rule 1) or
 * VOTE_UNJUSTIFIED (rule 2). Does not change `state`.
 */
export function checkSign(state: SafetyState, request: SignRequest, context: SafetyContext): SafetyState {
  const value = request.blockHash ?? 'nil';
  const next: LastSign = { height: request.height, round: request.round, step: SIGN_STEP[request.step], value };
  const last = state.lastSign;
  if (last) {
    const order = compareSlots(next, last);
    if (order === 0 && last.value === value) return state;
    if (order <= 0) {
      throw new ChainError(
        'VOTE_CONFLICT',
        `already signed ${describeSlot(last)}; refusing ${request.step} for ${value === 'nil' ? 'nil' : value.slice(0, 16)} at height ${request.height} round ${request.round}`,
        { lastSign: { ...last } },
      );
    }
  }
  const lock = state.lock !== null && state.lock.height === request.height ? state.lock : null;
  let newLock = state.lock !== null && state.lock.height >= request.height ? state.lock : null;
  if (request.step === 'precommit' && request.blockHash !== null) {
    requireQuorumOfPrevotes(request.justification, request.height, [request.round], request.blockHash, context, 'a precommit');
    newLock = { height: request.height, round: request.round, blockHash: request.blockHash };
  } else if (request.step === 'prevote' && request.blockHash !== null && lock !== null && lock.blockHash !== request.blockHash) {
    // Line 28: a proof of lock from a round after our lock's, before this one.
    const rounds: number[] = [];
    for (let r = lock.round + 1; r < request.round; r++) rounds.push(r);
    requireQuorumOfPrevotes(request.justification, request.height, rounds, request.blockHash, context, 'a prevote against the lock');
  }
  return { lastSign: next, lock: newLock };
}

/** Throws VOTE_UNJUSTIFIED unless `votes` hold 2f+1 valid prevotes by distinct validators for `blockHash` in one of `rounds`. */
function requireQuorumOfPrevotes(
  votes: readonly SignedVote[] | undefined,
  height: number,
  rounds: readonly number[],
  blockHash: string,
  context: SafetyContext,
  what: string,
): void {
  const members = new Set(context.validators);
  const byRound = new Map<number, Set<string>>();
  for (const v of votes ?? []) {
    const vote = v?.vote;
    if (!vote || vote.type !== 'prevote' || vote.chainId !== context.chainId || vote.height !== height || vote.blockHash !== blockHash) continue;
    if (!rounds.includes(vote.round) || !members.has(v.validator)) continue;
    const signers = byRound.get(vote.round) ?? new Set<string>();
    if (signers.has(v.validator)) continue;
    const clean: Vote = { chainId: vote.chainId, type: 'prevote', height, round: vote.round, blockHash };
    if (!verifyEd25519(v.validator, voteMessage(clean), v.signature)) continue;
    signers.add(v.validator);
    byRound.set(vote.round, signers);
    if (signers.size >= context.quorum) return;
  }
  throw new ChainError(
    'VOTE_UNJUSTIFIED',
    `${what} for ${blockHash.slice(0, 16)} at height ${height} needs ${context.quorum} valid prevotes for it in ${rounds.length === 1 ? `round ${rounds[0]}` : 'one round after the lock'}`,
  );
}
