import type { BlockHeader, CommitCertificate, Vote, VoteType } from '../chain/block.js';
import type { SignedTx } from '../chain/transaction.js';

/** What a proposal carries: a header (with the proposer's state and receipts roots) and its transactions. */
export interface ProposalBlock {
  header: BlockHeader;
  txs: SignedTx[];
}

/**
 * A proposal for (height, round). polRound is the Tendermint "valid round":
 * -1 for a fresh value, or the round r < round in which 2f+1 prevotes for this
 * block were seen (the proof-of-lock round).
 */
export interface Proposal {
  chainId: string;
  height: number;
  round: number;
  polRound: number;
  block: ProposalBlock;
}

export interface SignedProposal {
  proposal: Proposal;
  /** The proposer's enclave public key (must be proposerFor(height, round)). */
  proposer: string;
  signature: string;
}

export interface SignedVote {
  vote: Vote;
  validator: string;
  signature: string;
}

export type Step = 'propose' | 'prevote' | 'precommit';
export type TimeoutKind = Step;

/** Timeout for a round: baseMs + round * incrementMs. */
export interface TimeoutParams {
  baseMs: number;
  incrementMs: number;
}

export interface BftConfig {
  chainId: string;
  /** Ordered validator ids (enclave ed25519 public keys, lowercase hex). */
  validators: readonly string[];
  /** This node's validator id; a node that is not in `validators` only follows (never proposes or votes). */
  self: string;
  /** First height to decide (the height after the last committed block). */
  height: number;
  timeouts?: Partial<Record<TimeoutKind, TimeoutParams>>;
  /** Votes/proposals for rounds above round + maxFutureRounds are dropped (memory bound). Default 32. */
  maxFutureRounds?: number;
  /** Resuming `height` after a restart: what this validator's signer already did at it. */
  resume?: ResumeState;
}

/**
 * Where a restarted validator picks a height up again: in the round of its
 * signer's last signature there, sending its own votes of the height again
 * and signing exactly its last message again (the signer allows it: same
 * bytes, same signature), going on from the step after it (CometBFT does the
 * same by replaying its WAL).
 * Not in a later round: the others may be waiting in that round for this very
 * message (it may have died with the process), and with only 2f+1 validators
 * up none of them can leave the round without it. The machine keeps the lock
 * its signer holds (forgetting a lock could let a restarted majority decide a
 * second block at the height); with the locked block's proposal and its 2f+1
 * prevotes (kept by the host), it can also re-propose that block with its
 * proof of lock.
 */
export interface ResumeState {
  /** The round of the signer's last signature at this height. */
  round: number;
  /**
   * What the signer signed last in that round. A prevote or precommit is signed
   * again; a proposal is not rebuilt (a new block would be a second proposal,
   * which the signer refuses): the machine waits for it from peers or lets the
   * propose timeout pass.
   */
  last: { step: 'proposal' | 'prevote' | 'precommit'; blockHash: string | null };
  /**
   * Its own signed votes at this height, kept by the host before each was sent
   * (the last one may be missing: it is signed again): sent again, since the
   * others may still wait for them.
   */
  votes?: SignedVote[];
  lock?: {
    round: number;
    blockHash: string;
    /** The signed proposal of the locked block and the prevotes that locked it, if the host kept them. */
    proposal?: SignedProposal;
    prevotes?: SignedVote[];
  };
}

export const DEFAULT_TIMEOUTS: Record<TimeoutKind, TimeoutParams> = {
  propose: { baseMs: 1000, incrementMs: 500 },
  prevote: { baseMs: 500, incrementMs: 250 },
  precommit: { baseMs: 500, incrementMs: 250 },
};

/** Two signed, different votes from one validator for one (height, round, type). */
export interface VoteEquivocation {
  kind: 'vote';
  validator: string;
  height: number;
  round: number;
  voteType: VoteType;
  first: SignedVote;
  second: SignedVote;
}

/** Two signed, different proposals from one proposer for one (height, round). */
export interface ProposalEquivocation {
  kind: 'proposal';
  validator: string;
  height: number;
  round: number;
  first: SignedProposal;
  second: SignedProposal;
}

export type Evidence = VoteEquivocation | ProposalEquivocation;

// ---------------------------------------------------------------- inputs

export type BftInput =
  /** Start deciding `config.height` at round 0. */
  | { type: 'start' }
  /** Answer to buildProposal: the block the host's enclave built and executed. */
  | {
      type: 'proposalBuilt';
      height: number;
      round: number;
      block: ProposalBlock;
      /** The validator set of the next height when this block changes it (governance); else absent. */
      nextValidators?: readonly string[];
    }
  /** Answer to signProposal: the enclave's signature over proposalMessage(proposal). */
  | { type: 'proposalSigned'; proposal: Proposal; signature: string }
  /** A proposal from the network (signature checked by the machine). */
  | { type: 'proposalReceived'; proposal: SignedProposal }
  /** Answer to validateProposal: did re-execution in this node's enclave reproduce the roots? */
  | { type: 'proposalValidated'; height: number; blockHash: string; valid: boolean; nextValidators?: readonly string[] }
  /** Answer to signVote: the enclave's signature over voteMessage(vote). */
  | { type: 'voteSigned'; vote: Vote; signature: string }
  /**
   * The signer refused to sign for (height, round) (it already signed a later
   * slot, e.g. before a restart, or the request was not justified): this
   * validator cannot take part in the round, so it schedules the round's
   * precommit timeout and moves on to the next round when it fires, rather
   * than wait for votes that may never come (with fewer than 2f+1 votes no
   * other timeout is ever scheduled).
   */
  | { type: 'signRefused'; height: number; round: number }
  /** A vote from the network (signature checked by the machine). */
  | { type: 'voteReceived'; vote: SignedVote }
  /** A timeout the host scheduled from a scheduleTimeout action has expired. */
  | { type: 'timeout'; kind: TimeoutKind; height: number; round: number }
  /** The host synced (and executed) this block with a certificate: jump to height + 1. */
  | { type: 'blockCommittedBySync'; block: ProposalBlock; certificate: CommitCertificate; nextValidators?: readonly string[] }
  /** Periodic gossip: re-emit the messages peers may have missed (Tendermint assumes gossip). */
  | { type: 'gossipTick' };

// ---------------------------------------------------------------- actions

export type BftAction =
  | { type: 'buildProposal'; height: number; round: number }
  | { type: 'signProposal'; proposal: Proposal }
  | { type: 'broadcastProposal'; proposal: SignedProposal }
  | { type: 'validateProposal'; height: number; round: number; blockHash: string; block: ProposalBlock }
  /**
   * `justification`: the prevotes the signer needs to see (2f+1 prevotes for the
   * block in this round for a precommit; the proof of lock for a prevote under
   * line 28). Safety rules in the signer check them.
   */
  | { type: 'signVote'; vote: Vote; justification?: SignedVote[] }
  /**
   * The machine is about to precommit (and lock on) this block: the host keeps
   * the proposal and its 2f+1 prevotes durably before the precommit is signed,
   * so that after a restart the lock can be resumed with its block (ResumeState).
   */
  | { type: 'lock'; height: number; round: number; proposal: SignedProposal; prevotes: SignedVote[] }
  | { type: 'broadcastVote'; vote: SignedVote }
  | { type: 'scheduleTimeout'; kind: TimeoutKind; height: number; round: number; durationMs: number }
  | { type: 'commit'; height: number; block: ProposalBlock; certificate: CommitCertificate }
  | { type: 'equivocation'; evidence: Evidence };

/** A read-only view of the machine for hosts, RPC and tests. */
/** One round of the current height, summarised for logs (block hashes shortened to 12 hex digits). */
export interface RoundSummary {
  round: number;
  proposals: { block: string; polRound: number }[];
  prevotes: Record<string, number>;
  precommits: Record<string, number>;
  /** Validators (by index in the validator list) that sent any message of this round. */
  senders: number[];
}

export interface BftSnapshot {
  height: number;
  round: number;
  step: Step;
  lockedValue: string | null;
  lockedRound: number;
  validValue: string | null;
  validRound: number;
}
