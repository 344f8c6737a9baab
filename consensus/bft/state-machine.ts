import { headerHash, quorumSize, verifyCertificate, voteMessage, type CommitCertificate, type Vote, type VoteType } from '../chain/block.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { isHexOfLength } from '../encoding/hex.js';
import { faultTolerance, proposalBlockHash, proposalMessage, proposerFor } from './proposer.js';
import { HeightState, MAX_PROPOSALS_PER_ROUND, type RoundState } from './vote-set.js';
import {
  DEFAULT_TIMEOUTS,
  type BftAction,
  type BftConfig,
  type BftInput,
  type BftSnapshot,
  type ResumeState,
  type RoundSummary,
  type Evidence,
  type ProposalBlock,
  type SignedProposal,
  type SignedVote,
  type Step,
  type TimeoutKind,
  type TimeoutParams,
} from './types.js';

type Validity = 'pending' | 'valid' | 'invalid';

const STEP_ORDER: Record<Step, number> = { propose: 0, prevote: 1, precommit: 2 };

/** Extra propose timeouts a round waits for a received proposal still being executed, before it prevotes nil. */
export const MAX_VALIDATION_WAITS = 3;

/**
 * Tendermint consensus (Buchman, Kwon, Milosevic, "The latest gossip on BFT
 * consensus", arXiv 1807.04938, Algorithm 1) as a pure state machine:
 * `step(input)` returns the actions the host must carry out. No I/O, no clock,
 * no randomness, no keys. Line numbers in comments refer to Algorithm 1.
 */
export class TendermintMachine {
  readonly chainId: string;
  /** The validators of the current height (governance may change them from one height to the next). */
  validators: readonly string[];
  readonly self: string;
  #members: Set<string>;
  #quorum: number;
  #f: number;
  /**
   * The next height's validator set, per block hash, for the blocks of this
   * height that change it (the host's enclave says so when it executes one).
   * Deciding such a block moves the machine to the new set.
   */
  #nextSets = new Map<string, readonly string[]>();
  #timeouts: Record<TimeoutKind, TimeoutParams>;
  readonly #maxFutureRounds: number;

  #started = false;
  #height: number;
  #round = 0;
  #step: Step = 'propose';
  /** Propose timeouts of this round spent waiting for a received proposal's execution (see #onTimeout). */
  #validationWaits = 0;
  #lockedValue: string | null = null;
  #lockedRound = -1;
  #validValue: string | null = null;
  #validRound = -1;

  #cur: HeightState;
  #next: HeightState;
  #validity = new Map<string, Validity>();
  /** "for the first time" guards of lines 34, 36 and 47, keyed `${line}/${round}`. */
  #once = new Set<string>();
  /** Votes this machine asked its enclave to sign, keyed `${round}/${type}` (current height). */
  #requested = new Map<string, Vote>();
  /** Own proposal being built or signed for (height, round), so a stale answer is ignored. */
  #proposing: { height: number; round: number; requested: 'build' | 'sign' } | null = null;
  /** The last decision, gossiped so peers one height behind can still commit it. */
  #lastCommit: { proposal: SignedProposal | null; precommits: SignedVote[] } | null = null;
  #evidenceSeen = new Set<string>();
  /** What a restarted validator signed last at this height: `start` begins there (ResumeState). */
  readonly #resume: ResumeState | undefined;

  #out: BftAction[] = [];

  constructor(config: BftConfig) {
    checkValidatorSet(config.validators);
    if (!Number.isSafeInteger(config.height) || config.height < 0) throw new TypeError('height must be a non-negative integer');
    this.chainId = config.chainId;
    this.validators = [...config.validators];
    this.self = config.self;
    this.#members = new Set(this.validators);
    this.#quorum = quorumSize(this.validators.length);
    this.#f = faultTolerance(this.validators.length);
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...(config.timeouts ?? {}) };
    this.#maxFutureRounds = config.maxFutureRounds ?? 32;
    this.#height = config.height;
    this.#cur = new HeightState(config.height);
    this.#next = new HeightState(config.height + 1);
    const resume = config.resume;
    if (resume) {
      if (!Number.isSafeInteger(resume.round) || resume.round < 0) throw new TypeError('resume.round must be a non-negative integer');
      const last = resume.last;
      if (!last || !['proposal', 'prevote', 'precommit'].includes(last.step) || (last.blockHash !== null && !isHexOfLength(last.blockHash, 32))) {
        throw new TypeError('resume.last must be a step and a block hash (or null)');
      }
      // Messages are kept only up to 32 rounds ahead of the current one: the lock's (≤ resume.round) must fit.
      this.#round = resume.round;
      if (resume.lock) this.#restoreLock(resume.lock, resume.round);
    }
    this.#resume = resume;
  }

  /** Takes the signer's lock back, with the locked block's proposal and proof of lock when the host kept them. */
  #restoreLock(lock: NonNullable<ResumeState['lock']>, resumeRound: number): void {
    if (!Number.isSafeInteger(lock.round) || lock.round < 0 || lock.round > resumeRound || !isHexOfLength(lock.blockHash, 32)) {
      throw new TypeError('resume.lock must be a block hash and a round not after resume.round');
    }
    this.#lockedValue = lock.blockHash;
    this.#lockedRound = lock.round;
    const sp = lock.proposal;
    if (!sp || sp.proposal?.height !== this.#height) return;
    let hash: string;
    try {
      hash = proposalBlockHash(sp.proposal);
    } catch {
      return;
    }
    if (hash !== lock.blockHash || !this.#acceptProposal(sp)) return;
    for (const v of lock.prevotes ?? []) if (v?.vote?.round === lock.round) this.#acceptVote(v);
    // With its proof of lock at hand, the locked block is also the valid value this validator re-proposes (line 15).
    if ((this.#cur.peek(lock.round)?.prevotes.count(hash) ?? 0) >= this.#quorum) {
      this.#validValue = hash;
      this.#validRound = lock.round;
    }
  }

  get snapshot(): BftSnapshot {
    return {
      height: this.#height,
      round: this.#round,
      step: this.#step,
      lockedValue: this.#lockedValue,
      lockedRound: this.#lockedRound,
      validValue: this.#validValue,
      validRound: this.#validRound,
    };
  }

  /**
   * What this height holds, round by round (for a node that waits long to say
   * why): the proposals by block hash with their proof-of-lock round, the vote
   * tallies, and which validators (by index) sent anything in the round.
   */
  rounds(): RoundSummary[] {
    const index = new Map(this.validators.map((v, i) => [v, i]));
    const tally = (votes: ReturnType<RoundState['votes']>): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const v of votes.all()) {
        const key = v.vote.blockHash === null ? 'nil' : v.vote.blockHash.slice(0, 12);
        out[key] = (out[key] ?? 0) + 1;
      }
      return out;
    };
    return [...this.#cur.rounds.entries()]
      .sort(([a], [b]) => a - b)
      .map(([round, rs]) => ({
        round,
        proposals: [...rs.proposals.values()].map((sp) => ({ block: proposalBlockHash(sp.proposal).slice(0, 12), polRound: sp.proposal.polRound })),
        prevotes: tally(rs.prevotes),
        precommits: tally(rs.precommits),
        senders: [...rs.senders].map((s) => index.get(s) ?? -1).sort((a, b) => a - b),
      }));
  }

  get quorum(): number {
    return this.#quorum;
  }

  proposer(height: number, round: number): string {
    return proposerFor(this.validators, height, round);
  }

  /** Feeds one input; returns the actions to carry out, in order. */
  step(input: BftInput): BftAction[] {
    this.#out = [];
    switch (input.type) {
      case 'start':
        if (!this.#started) {
          this.#started = true;
          if (this.#resume) this.#resumeRound(this.#resume);
          else this.#startRound(0);
        }
        break;
      case 'proposalBuilt':
        this.#onProposalBuilt(input.height, input.round, input.block, input.nextValidators);
        break;
      case 'proposalSigned':
        this.#onProposalSigned(input.proposal, input.signature);
        break;
      case 'proposalReceived':
        this.#onProposal(input.proposal);
        break;
      case 'proposalValidated':
        if (input.height === this.#height && this.#validity.get(input.blockHash) === 'pending') {
          this.#validity.set(input.blockHash, input.valid ? 'valid' : 'invalid');
          if (input.valid) this.#noteNextSet(input.blockHash, input.nextValidators);
        }
        break;
      case 'voteSigned':
        this.#onVoteSigned(input.vote, input.signature);
        break;
      case 'voteReceived':
        this.#onVote(input.vote);
        break;
      case 'signRefused':
        // As at line 65: the round ends when its precommit timeout fires. (Not at once: a
        // signer that keeps refusing must not spin through rounds; timeouts grow with the round.)
        if (this.#started && input.height === this.#height && input.round === this.#round) this.#schedule('precommit', this.#round);
        break;
      case 'timeout':
        this.#onTimeout(input.kind, input.height, input.round);
        break;
      case 'blockCommittedBySync':
        this.#onSynced(input.block, input.certificate, input.nextValidators);
        break;
      case 'gossipTick':
        this.#gossip();
        break;
    }
    if (this.#started) this.#evaluate();
    const out = this.#out;
    this.#out = [];
    return out;
  }

  // ------------------------------------------------------------ inputs

  #onProposalBuilt(height: number, round: number, block: ProposalBlock, nextValidators: readonly string[] | undefined): void {
    const p = this.#proposing;
    if (!p || p.requested !== 'build' || p.height !== height || p.round !== round) return;
    if (height !== this.#height || round !== this.#round) return;
    if (block.header.height !== height || block.header.chainId !== this.chainId) return;
    // The host's enclave built and executed it: no need to re-execute our own block.
    const hash = headerHash(block.header);
    this.#validity.set(hash, 'valid');
    this.#noteNextSet(hash, nextValidators);
    this.#proposing = { height, round, requested: 'sign' };
    this.#out.push({ type: 'signProposal', proposal: { chainId: this.chainId, height, round, polRound: -1, block } });
  }

  #onProposalSigned(proposal: SignedProposal['proposal'], signature: string): void {
    const p = this.#proposing;
    if (!p || p.requested !== 'sign' || p.height !== proposal.height || p.round !== proposal.round) return;
    this.#proposing = null;
    const signed: SignedProposal = { proposal, proposer: this.self, signature };
    if (this.#acceptProposal(signed)) this.#broadcastProposalWithPol(signed);
  }

  #onProposal(sp: SignedProposal): void {
    this.#acceptProposal(sp);
  }

  /** Checks and stores a proposal; true if it is newly stored. */
  #acceptProposal(sp: SignedProposal): boolean {
    const p = sp?.proposal;
    if (!p || !p.block?.header || typeof sp.signature !== 'string') return false;
    if (p.chainId !== this.chainId || !Number.isSafeInteger(p.round) || p.round < 0) return false;
    if (!Number.isSafeInteger(p.polRound) || p.polRound < -1 || p.polRound >= p.round) return false;
    if (p.block.header.height !== p.height || p.block.header.chainId !== this.chainId || !Array.isArray(p.block.txs)) return false;
    const hs = this.#heightState(p.height, p.round);
    if (!hs) return false;
    if (sp.proposer !== proposerFor(this.validators, p.height, p.round)) return false;
    let hash: string;
    try {
      hash = proposalBlockHash(p);
    } catch {
      return false;
    }
    const rs = hs.peek(p.round);
    const held = rs?.proposals.get(hash);
    if (held && held.signature === sp.signature) return false;
    if (!verifyEd25519(sp.proposer, proposalMessage(p), sp.signature)) return false;
    const round = hs.round(p.round);
    if (round.proposals.has(hash)) return false;
    const first = round.firstProposal();
    if (first) {
      this.#evidence(`p/${p.height}/${p.round}/${sp.proposer}`, {
        kind: 'proposal', validator: sp.proposer, height: p.height, round: p.round, first, second: sp,
      });
      // Keep a further proposal only while bounded, or when some validator voted for it
      // (needed to commit it: lines 36 and 49 look the block up by hash).
      const voted = round.prevotes.count(hash) + round.precommits.count(hash) > 0;
      if (round.proposals.size >= MAX_PROPOSALS_PER_ROUND && !voted) return false;
    }
    round.proposals.set(hash, sp);
    round.senders.add(sp.proposer);
    return true;
  }

  #onVoteSigned(vote: Vote, signature: string): void {
    if (vote.height !== this.#height) return;
    const key = `${vote.round}/${vote.type}`;
    const asked = this.#requested.get(key);
    if (!asked || asked.blockHash !== vote.blockHash || asked.chainId !== vote.chainId) return;
    this.#requested.delete(key);
    const sv: SignedVote = { vote: asked, validator: this.self, signature };
    // Our own enclave's answer: its signature is not re-verified here (peers verify it).
    const res = this.#members.has(this.self) ? this.#cur.round(vote.round).votes(vote.type).add(sv) : { kind: 'duplicate' as const };
    if (res.kind !== 'added') return;
    this.#cur.round(vote.round).senders.add(this.self);
    this.#out.push({ type: 'broadcastVote', vote: sv });
  }

  #onVote(sv: SignedVote): void {
    this.#acceptVote(sv);
  }

  /** Checks and stores a vote; true if newly counted. */
  #acceptVote(sv: SignedVote): boolean {
    const v = sv?.vote;
    if (!v || typeof sv.signature !== 'string' || typeof sv.validator !== 'string') return false;
    if (v.chainId !== this.chainId || (v.type !== 'prevote' && v.type !== 'precommit')) return false;
    if (!Number.isSafeInteger(v.round) || v.round < 0) return false;
    if (v.blockHash !== null && !isHexOfLength(v.blockHash, 32)) return false;
    if (!this.#members.has(sv.validator)) return false;
    const hs = this.#heightState(v.height, v.round);
    if (!hs) return false;
    const existing = hs.peek(v.round)?.votes(v.type);
    if (existing?.has(sv)) return false; // re-gossiped: already verified
    // Sign only the Vote fields: extra properties would change the canonical message.
    const vote: Vote = { chainId: v.chainId, type: v.type, height: v.height, round: v.round, blockHash: v.blockHash };
    if (!verifyEd25519(sv.validator, voteMessage(vote), sv.signature)) return false;
    const clean: SignedVote = { vote, validator: sv.validator, signature: sv.signature };
    const rs = hs.round(v.round);
    const res = rs.votes(v.type).add(clean);
    if (res.kind === 'equivocation') {
      this.#evidence(`v/${v.height}/${v.round}/${v.type}/${sv.validator}`, {
        kind: 'vote', validator: sv.validator, height: v.height, round: v.round, voteType: v.type, first: res.first, second: clean,
      });
      return false;
    }
    if (res.kind !== 'added') return false;
    rs.senders.add(sv.validator);
    return true;
  }

  #onTimeout(kind: TimeoutKind, height: number, round: number): void {
    if (height !== this.#height || round !== this.#round) return;
    if (kind === 'propose' && this.#step === 'propose') {
      // The propose timeout bounds the wait for the proposal, as in the paper, where checking it (valid(v),
      // line 22) takes no time. Here validity is the enclave executing the block (execute-before-vote), which
      // under load takes seconds: a proposal received in time and still being executed is waited for, for a
      // few more propose timeouts at most, rather than refused for the time its execution takes.
      const first = this.#cur.peek(round)?.firstProposal();
      if (first && this.#validity.get(proposalBlockHash(first.proposal)) === 'pending' && this.#validationWaits < MAX_VALIDATION_WAITS) {
        this.#validationWaits++;
        this.#schedule('propose', round);
        return;
      }
      // line 57
      this.#vote('prevote', null);
      this.#step = 'prevote';
    } else if (kind === 'prevote' && this.#step === 'prevote') {
      // line 61
      this.#vote('precommit', null);
      this.#step = 'precommit';
    } else if (kind === 'precommit') {
      // line 65
      this.#startRound(this.#round + 1);
    }
  }

  /** Remembers the validator set a block of this height hands over to the next height (when it changes it). */
  #noteNextSet(blockHash: string, nextValidators: readonly string[] | undefined): void {
    if (nextValidators === undefined) return;
    checkValidatorSet(nextValidators);
    this.#nextSets.set(blockHash, [...nextValidators]);
  }

  #onSynced(block: ProposalBlock, certificate: CommitCertificate, nextValidators: readonly string[] | undefined): void {
    const height = block?.header?.height;
    if (!Number.isSafeInteger(height) || height < this.#height) return;
    const hash = headerHash(block.header);
    if (certificate.height !== height || certificate.blockHash !== hash) return;
    if (!verifyCertificate(this.chainId, certificate, this.validators, this.#quorum)) return;
    const precommits: SignedVote[] = certificate.signatures.map((s) => ({
      vote: { chainId: this.chainId, type: 'precommit', height, round: certificate.round, blockHash: hash },
      validator: s.validator,
      signature: s.signature,
    }));
    this.#lastCommit = { proposal: null, precommits };
    if (nextValidators !== undefined) checkValidatorSet(nextValidators);
    this.#enterHeight(height + 1, nextValidators);
    if (this.#started) this.#startRound(0);
  }

  #gossip(): void {
    if (!this.#started) return;
    const rs = this.#cur.peek(this.#round);
    if (rs) {
      const first = rs.firstProposal();
      if (first) this.#broadcastProposalWithPol(first);
      for (const v of rs.prevotes.all()) this.#out.push({ type: 'broadcastVote', vote: v });
      for (const v of rs.precommits.all()) this.#out.push({ type: 'broadcastVote', vote: v });
    }
    // Own votes of the previous round, for peers still there.
    const prev = this.#cur.peek(this.#round - 1);
    for (const t of ['prevote', 'precommit'] as const) {
      const own = prev?.votes(t).get(this.self);
      if (own) this.#out.push({ type: 'broadcastVote', vote: own });
    }
    if (this.#lastCommit) {
      if (this.#lastCommit.proposal) this.#out.push({ type: 'broadcastProposal', proposal: this.#lastCommit.proposal });
      for (const v of this.#lastCommit.precommits) this.#out.push({ type: 'broadcastVote', vote: v });
    }
  }

  // ------------------------------------------------------------ the rules

  #evaluate(): void {
    for (let guard = 0; guard < 10_000; guard++) {
      if (this.#tryDecide()) continue; // line 49
      if (this.#tryRoundSkip()) continue; // line 55
      if (!this.#stepRules()) return;
    }
    throw new Error('consensus rule evaluation did not converge');
  }

  /** Lines 49-54: a proposal and 2f+1 precommits for it in some round of this height. */
  #tryDecide(): boolean {
    for (const [r, rs] of this.#cur.rounds) {
      for (const hash of rs.precommits.hashesWithAtLeast(this.#quorum)) {
        const sp = rs.proposals.get(hash) ?? this.#cur.proposalForHash(hash);
        if (!sp) continue;
        if (this.#validityOf(hash, sp, r) !== 'valid') continue;
        this.#decide(sp, r, hash, rs);
        return true;
      }
    }
    return false;
  }

  /**
   * Line 55, generalised: when f+1 validators have sent messages from rounds
   * above ours, at least one honest validator is at least as far as the
   * (f+1)-th highest of those rounds, so jump there. The paper counts f+1 in
   * one round; counting each validator's highest round also unites validators
   * that restarted into different rounds (each resumes in its own last
   * signed one): all but at most f of them meet in that round, which is a
   * quorum. Moving to a higher round is always safe (it is what timeouts do).
   */
  #tryRoundSkip(): boolean {
    const highest = new Map<string, number>();
    for (const [r, rs] of this.#cur.rounds) {
      if (r <= this.#round) continue;
      for (const sender of rs.senders) if ((highest.get(sender) ?? -1) < r) highest.set(sender, r);
    }
    if (highest.size < this.#f + 1) return false;
    const rounds = [...highest.values()].sort((a, b) => b - a);
    this.#startRound(rounds[this.#f]!);
    return true;
  }

  #stepRules(): boolean {
    const r = this.#round;
    const rs = this.#cur.peek(r);
    if (!rs) return false;
    const first = rs.firstProposal();

    if (this.#step === 'propose' && first) {
      const p = first.proposal;
      const hash = proposalBlockHash(p);
      if (p.polRound === -1) {
        // line 22
        const validity = this.#validityOf(hash, first, r);
        if (validity !== 'pending') {
          const ok = validity === 'valid' && (this.#lockedRound === -1 || this.#lockedValue === hash);
          this.#vote('prevote', ok ? hash : null);
          this.#step = 'prevote';
          return true;
        }
      } else if (p.polRound < r && (this.#cur.peek(p.polRound)?.prevotes.count(hash) ?? 0) >= this.#quorum) {
        // line 28
        const validity = this.#validityOf(hash, first, r);
        if (validity !== 'pending') {
          const ok = validity === 'valid' && (this.#lockedRound <= p.polRound || this.#lockedValue === hash);
          // The proof of lock goes to the signer, which checks it when the vote goes against its lock.
          this.#vote('prevote', ok ? hash : null, ok ? this.#cur.peek(p.polRound)!.prevotes.votesFor(hash) : undefined);
          this.#step = 'prevote';
          return true;
        }
      }
    }

    if (this.#step === 'prevote' && rs.prevotes.size >= this.#quorum && this.#first(`34/${r}`)) {
      // line 34
      this.#schedule('prevote', r);
      return true;
    }

    if (STEP_ORDER[this.#step] >= STEP_ORDER.prevote && !this.#once.has(`36/${r}`)) {
      // line 36
      for (const hash of rs.prevotes.hashesWithAtLeast(this.#quorum)) {
        const sp = rs.proposals.get(hash);
        if (!sp) continue;
        if (this.#validityOf(hash, sp, r) !== 'valid') continue;
        this.#once.add(`36/${r}`);
        if (this.#step === 'prevote') {
          this.#lockedValue = hash;
          this.#lockedRound = r;
          const prevotes = rs.prevotes.votesFor(hash);
          this.#out.push({ type: 'lock', height: this.#height, round: r, proposal: sp, prevotes });
          this.#vote('precommit', hash, prevotes);
          this.#step = 'precommit';
        }
        this.#validValue = hash;
        this.#validRound = r;
        return true;
      }
    }

    if (this.#step === 'prevote' && rs.prevotes.count(null) >= this.#quorum) {
      // line 44
      this.#vote('precommit', null);
      this.#step = 'precommit';
      return true;
    }

    if (rs.precommits.size >= this.#quorum && this.#first(`47/${r}`)) {
      // line 47
      this.#schedule('precommit', r);
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------ helpers

  #startRound(round: number): void {
    // line 11
    this.#round = round;
    this.#step = 'propose';
    this.#validationWaits = 0;
    this.#proposing = null;
    const h = this.#height;
    if (this.#members.has(this.self) && proposerFor(this.validators, h, round) === this.self) {
      const valid = this.#validValue !== null ? this.#cur.proposalForHash(this.#validValue) : undefined;
      if (valid) {
        // line 15: re-propose validValue with validRound as its proof-of-lock round.
        this.#proposing = { height: h, round, requested: 'sign' };
        this.#out.push({
          type: 'signProposal',
          proposal: { chainId: this.chainId, height: h, round, polRound: this.#validRound, block: valid.proposal.block },
        });
      } else {
        this.#proposing = { height: h, round, requested: 'build' };
        this.#out.push({ type: 'buildProposal', height: h, round });
      }
    }
    // line 21. Also scheduled for the proposer, so that a proposer whose enclave
    // never answers still moves on (it then prevotes nil, like everyone else).
    this.#schedule('propose', round);
  }

  /** Re-enters the round of the signer's last signature, at the step after it, signing that message again (ResumeState). */
  #resumeRound({ round, last, votes }: ResumeState): void {
    this.#round = round;
    this.#proposing = null;
    this.#validationWaits = 0;
    for (const sv of votes ?? []) {
      if (sv?.validator === this.self && sv.vote?.height === this.#height && sv.vote.round <= round && this.#acceptVote(sv)) {
        this.#out.push({ type: 'broadcastVote', vote: sv });
      }
    }
    if (last.step === 'proposal') {
      // line 21, without building: our proposal comes back from peers that got it, or the round times out.
      this.#step = 'propose';
      this.#schedule('propose', round);
      return;
    }
    this.#step = last.step;
    const kept = this.#cur.peek(round)?.votes(last.step).get(this.self);
    if (kept?.vote.blockHash !== last.blockHash) this.#vote(last.step, last.blockHash);
  }

  #decide(sp: SignedProposal, round: number, hash: string, rs: RoundState): void {
    const precommits = rs.precommits.votesFor(hash);
    const certificate: CommitCertificate = {
      height: this.#height,
      round,
      blockHash: hash,
      signatures: precommits.map((v) => ({ validator: v.validator, signature: v.signature })),
    };
    this.#out.push({ type: 'commit', height: this.#height, block: sp.proposal.block, certificate });
    this.#lastCommit = { proposal: sp, precommits };
    this.#enterHeight(this.#height + 1, this.#nextSets.get(hash));
    this.#startRound(0);
  }

  /**
   * Moves to `height`, under `nextValidators` when the decided block changed
   * the validator set. Messages held for that height were checked against the
   * old set, so they are dropped then: gossip brings them again (gossipTick),
   * and a vote of a validator that left must not count.
   */
  #enterHeight(height: number, nextValidators?: readonly string[]): void {
    const changed = nextValidators !== undefined && (nextValidators.length !== this.validators.length || nextValidators.some((v, i) => v !== this.validators[i]));
    if (changed) {
      this.validators = [...nextValidators];
      this.#members = new Set(this.validators);
      this.#quorum = quorumSize(this.validators.length);
      this.#f = faultTolerance(this.validators.length);
      this.#next = new HeightState(height);
    }
    this.#nextSets.clear();
    this.#height = height;
    this.#round = 0;
    this.#step = 'propose';
    this.#lockedValue = null;
    this.#lockedRound = -1;
    this.#validValue = null;
    this.#validRound = -1;
    this.#cur = this.#next.height === height ? this.#next : new HeightState(height);
    this.#next = new HeightState(height + 1);
    this.#validity.clear();
    this.#once.clear();
    this.#requested.clear();
    this.#proposing = null;
    for (const key of this.#evidenceSeen) {
      if (Number(key.split('/')[1]) < height) this.#evidenceSeen.delete(key);
    }
  }

  /** The HeightState a message for (height, round) belongs in, or undefined if it is dropped. */
  #heightState(height: number, round: number): HeightState | undefined {
    if (height === this.#height) return round <= this.#round + this.#maxFutureRounds ? this.#cur : undefined;
    if (height === this.#height + 1) return round <= this.#maxFutureRounds ? this.#next : undefined;
    return undefined;
  }

  #validityOf(hash: string, sp: SignedProposal, round: number): Validity {
    const known = this.#validity.get(hash);
    if (known) return known;
    this.#validity.set(hash, 'pending');
    this.#out.push({ type: 'validateProposal', height: this.#height, round, blockHash: hash, block: sp.proposal.block });
    return 'pending';
  }

  #vote(type: VoteType, blockHash: string | null, justification?: SignedVote[]): void {
    if (!this.#members.has(this.self)) return;
    const vote: Vote = { chainId: this.chainId, type, height: this.#height, round: this.#round, blockHash };
    this.#requested.set(`${this.#round}/${type}`, vote);
    this.#out.push(justification ? { type: 'signVote', vote, justification } : { type: 'signVote', vote });
  }

  /**
   * New timeouts (the members changed the consensus parameters): they apply to
   * the timeouts scheduled from now on. Timeouts bound liveness only, never
   * safety, so changing them mid-height is safe.
   */
  setTimeouts(timeouts: Partial<Record<TimeoutKind, TimeoutParams>>): void {
    this.#timeouts = { ...this.#timeouts, ...timeouts };
  }

  #schedule(kind: TimeoutKind, round: number): void {
    const t = this.#timeouts[kind];
    this.#out.push({ type: 'scheduleTimeout', kind, height: this.#height, round, durationMs: t.baseMs + round * t.incrementMs });
  }

  #first(key: string): boolean {
    if (this.#once.has(key)) return false;
    this.#once.add(key);
    return true;
  }

  #broadcastProposalWithPol(sp: SignedProposal): void {
    this.#out.push({ type: 'broadcastProposal', proposal: sp });
    const { polRound, height } = sp.proposal;
    if (polRound >= 0 && height === this.#height) {
      // The proof of lock: receivers need 2f+1 prevotes of polRound for line 28.
      const hash = proposalBlockHash(sp.proposal);
      for (const v of this.#cur.peek(polRound)?.prevotes.votesFor(hash) ?? []) this.#out.push({ type: 'broadcastVote', vote: v });
    }
  }

  #evidence(key: string, evidence: Evidence): void {
    if (this.#evidenceSeen.has(key)) return;
    this.#evidenceSeen.add(key);
    this.#out.push({ type: 'equivocation', evidence });
  }
}

function checkValidatorSet(validators: readonly string[]): void {
  if (validators.length === 0) throw new TypeError('the validator set is empty');
  if (new Set(validators).size !== validators.length) throw new TypeError('duplicate validator');
}
