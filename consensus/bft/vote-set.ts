import type { VoteType } from '../chain/block.js';
import type { SignedProposal, SignedVote } from './types.js';

const NIL = 'nil';

/** The key a vote is tallied under: its block hash, or 'nil'. */
export function tallyKey(blockHash: string | null): string {
  return blockHash ?? NIL;
}

export type AddResult =
  | { kind: 'added' }
  | { kind: 'duplicate' }
  | { kind: 'equivocation'; first: SignedVote };

/**
 * The votes of one type in one round: at most one counted vote per validator
 * (the first one seen); a second, different one is equivocation evidence and is
 * never counted.
 */
export class VoteSet {
  readonly #byValidator = new Map<string, SignedVote>();
  readonly #counts = new Map<string, number>();
  readonly #equivocators = new Set<string>();

  get size(): number {
    return this.#byValidator.size;
  }

  get(validator: string): SignedVote | undefined {
    return this.#byValidator.get(validator);
  }

  /** Is this exact signed vote already held? (Lets callers skip signature checks for re-gossiped votes.) */
  has(v: SignedVote): boolean {
    const held = this.#byValidator.get(v.validator);
    return held !== undefined && held.signature === v.signature && held.vote.blockHash === v.vote.blockHash;
  }

  add(v: SignedVote): AddResult {
    const held = this.#byValidator.get(v.validator);
    if (held) {
      if (held.vote.blockHash === v.vote.blockHash) return { kind: 'duplicate' };
      if (this.#equivocators.has(v.validator)) return { kind: 'duplicate' };
      this.#equivocators.add(v.validator);
      return { kind: 'equivocation', first: held };
    }
    this.#byValidator.set(v.validator, v);
    const key = tallyKey(v.vote.blockHash);
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    return { kind: 'added' };
  }

  count(blockHash: string | null): number {
    return this.#counts.get(tallyKey(blockHash)) ?? 0;
  }

  /** Block hashes (not nil) that reach `threshold` votes. */
  hashesWithAtLeast(threshold: number): string[] {
    const out: string[] = [];
    for (const [key, c] of this.#counts) if (key !== NIL && c >= threshold) out.push(key);
    return out;
  }

  votesFor(blockHash: string | null): SignedVote[] {
    return [...this.#byValidator.values()].filter((v) => v.vote.blockHash === blockHash);
  }

  all(): SignedVote[] {
    return [...this.#byValidator.values()];
  }
}

export class RoundState {
  readonly prevotes = new VoteSet();
  readonly precommits = new VoteSet();
  /** Validators from which some message of this round was seen (the f+1 round-skip rule). */
  readonly senders = new Set<string>();
  /**
   * Proposals from this round's proposer, keyed by block hash. The first is
   * always kept; a further (equivocating) one only while it is bounded by
   * MAX_PROPOSALS_PER_ROUND, so a Byzantine proposer cannot exhaust memory.
   */
  readonly proposals = new Map<string, SignedProposal>();

  votes(type: VoteType): VoteSet {
    return type === 'prevote' ? this.prevotes : this.precommits;
  }

  /** The first proposal received this round (what the propose step acts on). */
  firstProposal(): SignedProposal | undefined {
    return this.proposals.values().next().value;
  }
}

/** All the messages of one height, by round. */
export class HeightState {
  readonly rounds = new Map<number, RoundState>();
  constructor(readonly height: number) {}

  round(r: number): RoundState {
    let rs = this.rounds.get(r);
    if (!rs) {
      rs = new RoundState();
      this.rounds.set(r, rs);
    }
    return rs;
  }

  peek(r: number): RoundState | undefined {
    return this.rounds.get(r);
  }

  /** Any held proposal (any round) whose block has this hash. */
  proposalForHash(blockHash: string): SignedProposal | undefined {
    for (const rs of this.rounds.values()) {
      const p = rs.proposals.get(blockHash);
      if (p) return p;
    }
    return undefined;
  }
}

export const MAX_PROPOSALS_PER_ROUND = 4;
