import { randomBytes } from 'node:crypto';
import type { VerificationCache } from '../../attestation/index.js';
import type { Genesis } from '../../consensus/index.js';
import type { Clock } from '../chain/clock.js';
import type { Logger } from '../log/logger.js';
import {
  AdmissionError,
  encodeAnswer,
  encodeAnswerError,
  encodeChallenge,
  parseAnswer,
  parseChallenge,
} from './admission-wire.js';
import { ConcurrencyLimit } from './concurrency-limit.js';
import { admissionFreshness, evaluateAdmission, type AdmissionClaim, type AdmissionDecision } from '../../contracts/index.js';
import { TokenBuckets } from './token-buckets.js';
import type { SignerAttestation } from '../proofs/index.js';

/** The admission transport (the network service's admission protocol). */
export interface AdmissionTransport {
  exchangeAdmission(peerId: string, request: Uint8Array, options?: { timeoutMs?: number }): Promise<Uint8Array>;
  handleAdmission(handler: ((peerId: string, request: Uint8Array) => Promise<Uint8Array>) | undefined): void;
}

export interface AdmissionServiceOptions {
  transport: AdmissionTransport;
  genesis: Genesis;
  /**
   * The attestation policy in force now (governance changes it: a measurement
   * allowed for a rolling upgrade, an old one retired); the genesis policy
   * when absent.
   */
  policy?: () => Genesis['policy'];
  /** The validators in force now (governance adds and removes them); the genesis's when absent. */
  validators?: () => Genesis['validators'];
  /** genesisHash(genesis): sent with every challenge and bound in every answer's evidence. */
  genesisHash: string;
  /** This node's identity (its libp2p peer id). */
  selfNodeId: string;
  /**
   * This node's enclave: public keys and evidence binding them to
   * admissionFreshness(its own genesis hash, challenge) (the enclave puts the hash).
   */
  evidenceFor(challenge: string): Promise<{ publicKeys: Record<string, string>; evidence: string }>;
  clock: Clock;
  log: Logger;
  cache?: VerificationCache;
  /** How often a connected peer is challenged again, so its evidence never goes stale (default 60 s). */
  refreshMs?: number;
  /**
   * How long an admitted peer stays admitted after its re-challenge was due
   * without a verified answer (default 15 s). So a peer is admitted at most
   * refreshMs + unansweredGraceMs after its last verified answer.
   */
  unansweredGraceMs?: number;
  /** How long a challenge waits for the answer (default 5 s). */
  answerTimeoutMs?: number;
  /**
   * Challenges answered per peer (each costs an enclave evidence ecall): a
   * burst of `answerBurst` (default 5), refilled at `answersPerRefresh` per
   * refreshMs (default 3). An honest peer asks once per refresh and once per
   * reconnect. The same budget bounds how often this node verifies a peer's
   * evidence (a peer reconnecting in a loop is otherwise challenged each time).
   */
  answerBurst?: number;
  answersPerRefresh?: number;
  /** Evidence ecalls run at once for peers (default 2); up to maxQueuedAnswers more wait (default 2 per validator), beyond that BUSY. */
  maxConcurrentAnswers?: number;
  maxQueuedAnswers?: number;
  /** Called after every successful admission (first or refresh): e.g. check whether the peer is ahead. */
  onAdmitted?: (peerId: string) => void;
  /** Called when a peer's recorded admission flips (admitted, or no longer: refused, lapsed, disconnected). */
  onChange?: (peerId: string, admitted: boolean) => void;
  /**
   * Where attestations outlive a restart: until when each peer's enclave counts
   * as attested (`initial`, read at start), and each change (`record`, 0 when
   * revoked). Without it a restarted node forgets whose votes count, and could
   * not accept a proof of lock signed by a validator that is down now.
   */
  attestations?: { initial: ReadonlyMap<string, number>; record(nodeId: string, until: number): void };
}

/** The connection events admission follows (the network service). */
export interface PeerEvents {
  on(event: 'peer:connect', listener: (peer: { id: string }) => void): unknown;
  on(event: 'peer:disconnect', listener: (peer: { id: string }) => void): unknown;
  off(event: 'peer:connect' | 'peer:disconnect', listener: (peer: { id: string }) => void): unknown;
}

export interface NodeEntry extends AdmissionDecision {
  connected: boolean;
}

interface PeerRecord {
  decision: AdmissionDecision;
  /** When a decision to admit expires without a newer verified answer (clock ms); unused when not admitted. */
  admittedUntil: number;
}

/** The result of one challenge: a decision on a verified answer, or no usable answer. */
type ChallengeOutcome = { answered: true; decision: AdmissionDecision } | { answered: false; decision: AdmissionDecision; retryAfterMs?: number };

const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 10_000;

/**
 * The admission handshake. To admit a peer, a node sends a fresh random
 * challenge; the peer answers with its claim (node id, enclave public keys, and
 * evidence whose report_data binds them to the node, the chain and that
 * challenge); the node decides with evaluateAdmission. Each side admits the
 * other on its own. Until a peer is admitted its votes and blocks do not count
 * and no gossip or sync data is exchanged with it.
 *
 * An admission lasts while the peer is connected and answers its re-challenges:
 * a disconnect ends it at once (DISCONNECTED), and a peer with no verified
 * answer for refreshMs + unansweredGraceMs is no longer admitted (UNREACHABLE).
 * On reconnect the peer is challenged again at once.
 *
 * Answering costs an enclave ecall, so answers are rate-limited per peer (a
 * token bucket: RATE_LIMITED) and bounded in number overall (BUSY).
 */
/** Reasons a peer is not admitted that say nothing about its enclave. */
const CONNECTIVITY_REASONS = new Set(['UNREACHABLE', 'DISCONNECTED']);

/** How many refresh periods an enclave stays attested for its votes after its admission ran out. */
const ATTESTATION_REFRESHES = 4;

export class AdmissionService {
  readonly #o: AdmissionServiceOptions;
  readonly #refreshMs: number;
  readonly #graceMs: number;
  readonly #answerTimeoutMs: number;
  readonly #records = new Map<string, PeerRecord>();
  /** The evidence that last admitted each peer (only validators are admitted, so bounded by the validator set). */
  readonly #evidence = new Map<string, SignerAttestation>();
  /**
   * Until when each peer's enclave counts as attested: its evidence verified
   * by this node, not refused since, and verified again recently enough
   * (4 refresh periods after its admission ran out). A vote or proposal counts when its signer's enclave
   * is attested, even if that peer is disconnected now: a signed vote does
   * not become false when its signer goes away, and a proof of lock relayed
   * after it went down must still count, or the others could stay stuck on a
   * lock. (Gossip and sync, unlike votes, follow isAdmitted: the connection.)
   */
  readonly #attestedUntil = new Map<string, number>();
  readonly #connected = new Set<string>();
  /** Bumped on every connect and disconnect: an answer to a challenge sent before counts only if unchanged. */
  readonly #epoch = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #answerBudget: TokenBuckets;
  /** Evidence verifications per peer (a peer that reconnects in a loop would make us verify on every connect). */
  readonly #verifyBudget: TokenBuckets;
  readonly #answerWork: ConcurrencyLimit;
  /** Peers we are refusing answers to right now (to log once per episode, not per challenge). */
  readonly #limited = new Set<string>();
  /** Peers whose challenges named another genesis (warned once each). */
  readonly #otherGenesis = new Set<string>();
  #events: PeerEvents | undefined;
  #started = false;
  readonly #onConnect = (peer: { id: string }): void => {
    this.#connected.add(peer.id);
    this.#bumpEpoch(peer.id);
    // Until it answers, say so rather than keep showing the DISCONNECTED of the last connection.
    if (!this.isAdmitted(peer.id)) {
      this.#record(peer.id, { nodeId: peer.id, admitted: false, reason: { code: 'UNREACHABLE', message: 'connected; no verified answer to our challenge yet' } });
    }
    this.#schedule(peer.id, 0, 0);
  };
  readonly #onDisconnect = (peer: { id: string }): void => {
    this.#connected.delete(peer.id);
    this.#bumpEpoch(peer.id);
    clearTimeout(this.#timers.get(peer.id));
    this.#timers.delete(peer.id);
    this.#record(peer.id, {
      nodeId: peer.id,
      admitted: false,
      reason: { code: 'DISCONNECTED', message: 'the peer disconnected; it is challenged again when it reconnects' },
    });
  };

  constructor(options: AdmissionServiceOptions) {
    this.#o = options;
    const validators = new Set((options.validators?.() ?? options.genesis.validators).map((v) => v.nodeId));
    for (const [nodeId, until] of options.attestations?.initial ?? []) if (validators.has(nodeId)) this.#attestedUntil.set(nodeId, until);
    this.#refreshMs = options.refreshMs ?? 60_000;
    this.#graceMs = options.unansweredGraceMs ?? 15_000;
    this.#answerTimeoutMs = options.answerTimeoutMs ?? 5000;
    const limits = { capacity: options.answerBurst ?? 5, refillPerMs: (options.answersPerRefresh ?? 3) / this.#refreshMs };
    this.#answerBudget = new TokenBuckets(limits);
    this.#verifyBudget = new TokenBuckets(limits);
    this.#answerWork = new ConcurrencyLimit(options.maxConcurrentAnswers ?? 2, options.maxQueuedAnswers ?? 2 * options.genesis.validators.length);
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#o.transport.handleAdmission((peerId, request) => this.#answer(peerId, request));
  }

  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    this.#o.transport.handleAdmission(undefined);
    this.#events?.off('peer:connect', this.#onConnect);
    this.#events?.off('peer:disconnect', this.#onDisconnect);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /**
   * Admits every peer that connects, challenges it again every refreshMs
   * while connected, retries (with backoff) a peer that did not answer, and
   * ends a peer's admission when it disconnects.
   */
  follow(events: PeerEvents): void {
    this.#events = events;
    events.on('peer:connect', this.#onConnect);
    events.on('peer:disconnect', this.#onDisconnect);
  }

  #bumpEpoch(peerId: string): void {
    this.#epoch.set(peerId, (this.#epoch.get(peerId) ?? 0) + 1);
  }

  #schedule(peerId: string, delayMs: number, failures: number): void {
    clearTimeout(this.#timers.get(peerId));
    const timer = setTimeout(() => {
      this.#timers.delete(peerId);
      if (!this.#started || !this.#connected.has(peerId)) return;
      const epoch = this.#epoch.get(peerId);
      void this.#challenge(peerId, true).then((outcome) => {
        // Gone, or reconnected meanwhile (the new connection has its own schedule).
        if (!this.#started || this.#epoch.get(peerId) !== epoch) return;
        if (outcome.answered) this.#schedule(peerId, this.#refreshMs, 0);
        else {
          const backoff = Math.min(RETRY_BASE_MS * 2 ** failures, RETRY_MAX_MS);
          const next = outcome.retryAfterMs !== undefined ? Math.min(Math.max(outcome.retryAfterMs, RETRY_BASE_MS), this.#refreshMs) : backoff;
          this.#schedule(peerId, next, failures + 1);
        }
      });
    }, delayMs);
    timer.unref();
    this.#timers.set(peerId, timer);
  }

  /**
   * Answers a peer's challenge with our claim, or a typed refusal: a malformed
   * challenge (BAD_CHALLENGE), a peer over its answer budget (RATE_LIMITED), too
   * much admission work queued (BUSY). Cheapest checks first; never throws.
   */
  async #answer(peerId: string, request: Uint8Array): Promise<Uint8Array> {
    const parsed = parseChallenge(request);
    if (parsed === undefined) {
      // Debug: checked before the answer budget, so a peer could repeat it without end.
      this.#o.log.debug('malformed admission challenge', { peer: peerId });
      return encodeAnswerError(new AdmissionError('BAD_CHALLENGE', 'the request must be {"challenge": "<1-128 characters>", "genesis": "<genesis hash>"}'));
    }
    const { challenge, genesis } = parsed;
    if (genesis !== this.#o.genesisHash) {
      if (!this.#otherGenesis.has(peerId)) this.#o.log.warn('peer runs another genesis; not answering its admission challenge', { peer: peerId, theirs: genesis, ours: this.#o.genesisHash });
      this.#otherGenesis.add(peerId);
      return encodeAnswerError(new AdmissionError('GENESIS_MISMATCH', `this node runs genesis ${this.#o.genesisHash}; the challenge is from a node on genesis ${genesis}`));
    }
    this.#otherGenesis.delete(peerId);
    const budget = this.#answerBudget.take(peerId, this.#o.clock.now());
    if (!budget.ok) {
      if (!this.#limited.has(peerId)) this.#o.log.warn('peer challenges too often; answers are rate-limited', { peer: peerId, retryAfterMs: budget.retryAfterMs });
      this.#limited.add(peerId);
      return encodeAnswerError(new AdmissionError('RATE_LIMITED', 'too many admission challenges from this peer', budget.retryAfterMs));
    }
    this.#limited.delete(peerId);
    const done = await this.#answerWork.run(() => this.#o.evidenceFor(challenge));
    if (!done) {
      // Debug: one per declined challenge, which peers retry; the peer's own log says BUSY.
      this.#o.log.debug('admission work queue full; challenge declined', { peer: peerId });
      return encodeAnswerError(new AdmissionError('BUSY', 'too much admission work queued', 1000));
    }
    const { publicKeys, evidence } = done.value;
    const claim: AdmissionClaim = { nodeId: this.#o.selfNodeId, publicKeys, evidence };
    return encodeAnswer(claim);
  }

  /** Challenges a peer now and records the decision (also when refused, with the reason). */
  async admit(peerId: string): Promise<AdmissionDecision> {
    return (await this.#challenge(peerId, false)).decision;
  }

  /**
   * One challenge. `budgeted`: the challenge was set off by the peer (it connected,
   * or is due for a refresh or a retry), so verifying its evidence takes from the
   * peer's budget; an explicit admit() does not.
   */
  async #challenge(peerId: string, budgeted: boolean): Promise<ChallengeOutcome> {
    const epoch = this.#epoch.get(peerId);
    const challenge = randomBytes(16).toString('hex');
    let response: Uint8Array;
    try {
      response = await this.#o.transport.exchangeAdmission(peerId, encodeChallenge(challenge, this.#o.genesisHash), { timeoutMs: this.#answerTimeoutMs });
    } catch (err) {
      return this.#unanswered(peerId, epoch, `no answer to the admission challenge: ${(err as Error).message}`);
    }
    const answer = parseAnswer(response);
    if ('error' in answer && answer.error.code === 'GENESIS_MISMATCH') {
      // Not a passing condition: the peer is configured for another chain. Refused with that reason, asked again at the refresh.
      if (this.#stale(peerId, epoch)) return { answered: false, decision: this.decision(peerId) ?? decisionOf(peerId, 'UNREACHABLE', answer.error.message) };
      const decision = decisionOf(peerId, 'GENESIS_MISMATCH', `the peer runs another genesis (${answer.error.message})`);
      if (this.decision(peerId)?.reason?.code !== 'GENESIS_MISMATCH') this.#o.log.warn('refused peer', { peer: peerId, code: 'GENESIS_MISMATCH', reason: decision.reason!.message });
      this.#record(peerId, decision);
      return { answered: true, decision };
    }
    if ('error' in answer) {
      const level = answer.error.code === 'RATE_LIMITED' ? 'warn' : 'debug';
      this.#o.log[level]('peer declined our admission challenge', { peer: peerId, code: answer.error.code, retryAfterMs: answer.error.retryAfterMs });
      return this.#unanswered(peerId, epoch, `the peer declined the admission challenge (${answer.error.message})`, answer.error.retryAfterMs);
    }
    const budget = budgeted ? this.#verifyBudget.take(peerId, this.#o.clock.now()) : ({ ok: true } as const);
    if (!budget.ok) {
      // Only a peer that reconnects far more often than an honest one gets here: it waits, so it cannot make us verify evidence in a loop.
      return this.#unanswered(peerId, epoch, 'evidence not verified: the peer asks to be admitted too often', budget.retryAfterMs);
    }
    const decision = evaluateAdmission(answer.claim, {
      genesis: { ...this.#o.genesis, policy: this.#o.policy?.() ?? this.#o.genesis.policy, validators: this.#validators() },
      authenticatedNodeId: peerId,
      freshness: admissionFreshness(this.#o.genesisHash, challenge),
      now: new Date(this.#o.clock.now()),
      ...(this.#o.cache ? { cache: this.#o.cache } : {}),
    });
    // The peer disconnected (and maybe reconnected) while we waited: this answer no longer speaks for the connection.
    if (this.#stale(peerId, epoch)) return { answered: false, decision: this.decision(peerId) ?? decision };
    const wasAdmitted = this.isAdmitted(peerId);
    const previousRefusal = this.decision(peerId)?.reason?.code;
    this.#record(peerId, decision);
    if (decision.admitted) {
      const { nodeId, evidence } = answer.claim as AdmissionClaim;
      this.#evidence.set(peerId, { validator: decision.publicKeys!.vote!, nodeId, publicKeys: decision.publicKeys!, freshness: admissionFreshness(this.#o.genesisHash, challenge), evidence });
    }
    if (decision.admitted) {
      if (!wasAdmitted) this.#o.log.info('admitted peer', { peer: peerId, platform: decision.platform, measurement: decision.measurement });
      this.#o.onAdmitted?.(peerId);
    } else {
      // Warn once per new reason: a refused peer is challenged again and again, and each refusal alike is only debug.
      const level = previousRefusal !== undefined && previousRefusal === decision.reason?.code ? 'debug' : 'warn';
      this.#o.log[level]('refused peer', { peer: peerId, code: decision.reason?.code, reason: decision.reason?.message });
    }
    return { answered: true, decision };
  }

  #stale(peerId: string, epoch: number | undefined): boolean {
    return this.#events !== undefined && (this.#epoch.get(peerId) !== epoch || !this.#connected.has(peerId));
  }

  /**
   * No verified answer (the exchange failed, timed out or was declined). Not
   * the peer's fault yet: an admitted peer stays admitted until its admission
   * runs out (refreshMs + unansweredGraceMs after its last verified answer);
   * otherwise it is recorded as unreachable.
   */
  #unanswered(peerId: string, epoch: number | undefined, message: string, retryAfterMs?: number): ChallengeOutcome {
    this.#o.log.debug('admission exchange failed', { peer: peerId, error: message });
    const retry = retryAfterMs !== undefined ? { retryAfterMs } : {};
    const unreachable: AdmissionDecision = { nodeId: peerId, admitted: false, reason: { code: 'UNREACHABLE', message } };
    if (this.#stale(peerId, epoch)) return { answered: false, decision: this.decision(peerId) ?? unreachable, ...retry };
    if (this.isAdmitted(peerId)) return { answered: false, decision: this.#records.get(peerId)!.decision, ...retry };
    const wasAdmitted = this.#records.get(peerId)?.decision.admitted === true;
    this.#record(peerId, unreachable);
    if (wasAdmitted) this.#o.log.warn('admission lapsed: no verified answer to our challenges', { peer: peerId, error: message });
    return { answered: false, decision: unreachable, ...retry };
  }

  #record(peerId: string, decision: AdmissionDecision): void {
    // Either view may differ from the new decision: the recorded one, or the one in force (a lapsed admission).
    const recorded = this.#records.get(peerId)?.decision.admitted === true;
    const inForce = this.isAdmitted(peerId);
    const admittedUntil = decision.admitted ? this.#o.clock.now() + this.#refreshMs + this.#graceMs : 0;
    this.#records.set(peerId, { decision, admittedUntil });
    // Losing the connection or an answer says nothing about the enclave; a verified refusal does.
    if (decision.admitted) this.#attest(peerId, admittedUntil + ATTESTATION_REFRESHES * this.#refreshMs);
    else if (!CONNECTIVITY_REASONS.has(decision.reason?.code ?? '')) this.#attest(peerId, 0);
    if (recorded !== decision.admitted || inForce !== decision.admitted) this.#o.onChange?.(peerId, decision.admitted);
  }

  #attest(peerId: string, until: number): void {
    if (until > 0) this.#attestedUntil.set(peerId, until);
    else this.#attestedUntil.delete(peerId);
    this.#o.attestations?.record(peerId, until);
  }

  /** Is this peer admitted now (verified, connected, and its last verified answer recent enough)? */
  isAdmitted(peerId: string): boolean {
    const record = this.#records.get(peerId);
    return record !== undefined && record.decision.admitted && this.#o.clock.now() <= record.admittedUntil;
  }

  /**
   * Is the enclave with this vote key attested (its evidence verified by this
   * node, recently enough, and not refused since)? Votes and
   * proposals count only then. Unlike isAdmitted, a disconnect or a missed
   * challenge does not end it at once.
   */
  /**
   * The last evidence that admitted each of these enclaves (by vote key), with
   * the challenge it answered: what a proof carries so that anyone can check
   * the signer was attested, as this node did.
   */
  attestationsFor(voteKeys: readonly string[]): SignerAttestation[] {
    const wanted = new Set(voteKeys);
    return [...this.#evidence.values()].filter((a) => wanted.has(a.validator));
  }

  isVoteKeyAdmitted(voteKey: string): boolean {
    const node = this.#validators().find((v) => v.voteKey === voteKey);
    const until = node === undefined ? undefined : this.#attestedUntil.get(node.nodeId);
    return until !== undefined && this.#o.clock.now() <= until;
  }

  /** The decision in force for a peer: a decision to admit that has run out reads as UNREACHABLE. */
  decision(peerId: string): AdmissionDecision | undefined {
    const record = this.#records.get(peerId);
    if (!record?.decision.admitted || this.isAdmitted(peerId)) return record?.decision;
    const since = new Date(record.admittedUntil - this.#refreshMs - this.#graceMs).toISOString();
    return { nodeId: peerId, admitted: false, reason: { code: 'UNREACHABLE', message: `no verified answer to an admission challenge since ${since}` } };
  }

  #validators(): Genesis['validators'] {
    return this.#o.validators?.() ?? this.#o.genesis.validators;
  }

  /** One entry per validator in force (other than this node): admitted, refused with a reason, or not yet seen. */
  nodes(): NodeEntry[] {
    return this.#validators()
      .filter((v) => v.nodeId !== this.#o.selfNodeId)
      .map((v) => ({ ...(this.decision(v.nodeId) ?? { nodeId: v.nodeId, admitted: false }), connected: this.#connected.has(v.nodeId) }));
  }
}

function decisionOf(nodeId: string, code: 'UNREACHABLE' | 'GENESIS_MISMATCH', message: string): AdmissionDecision {
  return { nodeId, admitted: false, reason: { code, message } };
}
