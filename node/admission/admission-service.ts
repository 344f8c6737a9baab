import { randomBytes } from 'node:crypto';
import type { VerificationCache } from '../../attestation/index.js';
import type { Genesis } from '../../consensus/index.js';
import type { Clock } from '../chain/clock.js';
import type { Logger } from '../log/logger.js';
import { evaluateAdmission, type AdmissionClaim, type AdmissionDecision } from './evaluate-admission.js';

/** The admission transport (the network service's admission protocol). */
export interface AdmissionTransport {
  exchangeAdmission(peerId: string, request: Uint8Array): Promise<Uint8Array>;
  handleAdmission(handler: ((peerId: string, request: Uint8Array) => Promise<Uint8Array>) | undefined): void;
}

export interface AdmissionServiceOptions {
  transport: AdmissionTransport;
  genesis: Genesis;
  /** This node's identity (its libp2p peer id). */
  selfNodeId: string;
  /** This node's enclave: public keys and evidence binding them to the given freshness value. */
  evidenceFor(freshness: string): Promise<{ publicKeys: Record<string, string>; evidence: string }>;
  clock: Clock;
  log: Logger;
  cache?: VerificationCache;
  /** How often a connected peer is challenged again, so its evidence never goes stale (default 60 s). */
  refreshMs?: number;
  /** Called after every successful admission (first or refresh): e.g. check whether the peer is ahead. */
  onAdmitted?: (peerId: string) => void;
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

const MAX_CHALLENGE = 128;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The admission handshake. To admit a peer, a node sends a fresh random
 * challenge; the peer answers with its claim (node id, enclave public keys, and
 * evidence whose report_data binds them to the node, the chain and that
 * challenge); the node decides with evaluateAdmission. Each side admits the
 * other on its own. Until a peer is admitted its votes and blocks do not count.
 */
export class AdmissionService {
  readonly #o: AdmissionServiceOptions;
  readonly #decisions = new Map<string, AdmissionDecision>();
  readonly #connected = new Set<string>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #events: PeerEvents | undefined;
  #started = false;
  readonly #onConnect = (peer: { id: string }): void => {
    this.#connected.add(peer.id);
    this.#schedule(peer.id, 0, 0);
  };
  readonly #onDisconnect = (peer: { id: string }): void => {
    this.#connected.delete(peer.id);
    const timer = this.#timers.get(peer.id);
    if (timer) clearTimeout(timer);
    this.#timers.delete(peer.id);
  };

  constructor(options: AdmissionServiceOptions) {
    this.#o = options;
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
   * while connected, and retries (with backoff) a peer that did not answer.
   */
  follow(events: PeerEvents): void {
    this.#events = events;
    events.on('peer:connect', this.#onConnect);
    events.on('peer:disconnect', this.#onDisconnect);
  }

  #schedule(peerId: string, delayMs: number, failures: number): void {
    const old = this.#timers.get(peerId);
    if (old) clearTimeout(old);
    const timer = setTimeout(() => {
      this.#timers.delete(peerId);
      if (!this.#started || !this.#connected.has(peerId)) return;
      void this.admit(peerId).then((decision) => {
        if (!this.#started || !this.#connected.has(peerId)) return;
        const unreachable = decision.reason?.code === 'UNREACHABLE';
        const next = unreachable ? Math.min(250 * 2 ** failures, 10_000) : (this.#o.refreshMs ?? 60_000);
        this.#schedule(peerId, next, unreachable ? failures + 1 : 0);
      });
    }, delayMs);
    timer.unref();
    this.#timers.set(peerId, timer);
  }

  /** Answers a peer's challenge with our claim. A malformed challenge gets an error, never a crash. */
  async #answer(peerId: string, request: Uint8Array): Promise<Uint8Array> {
    let challenge: unknown;
    try {
      challenge = (JSON.parse(decoder.decode(request)) as { challenge?: unknown }).challenge;
    } catch {
      challenge = undefined;
    }
    if (typeof challenge !== 'string' || challenge.length === 0 || challenge.length > MAX_CHALLENGE) {
      this.#o.log.warn('malformed admission challenge', { peer: peerId });
      return encoder.encode(JSON.stringify({ error: 'the request must be {"challenge": "<1-128 characters>"}' }));
    }
    const { publicKeys, evidence } = await this.#o.evidenceFor(challenge);
    const claim: AdmissionClaim = { nodeId: this.#o.selfNodeId, publicKeys, evidence };
    return encoder.encode(JSON.stringify(claim));
  }

  /** Challenges a peer and records the decision (also when refused, with the reason). */
  async admit(peerId: string): Promise<AdmissionDecision> {
    const challenge = randomBytes(16).toString('hex');
    let response: Uint8Array;
    try {
      response = await this.#o.transport.exchangeAdmission(peerId, encoder.encode(JSON.stringify({ challenge })));
    } catch (err) {
      // Not the peer's fault (yet): keep what we decided before, or record it as unreachable.
      this.#o.log.debug('admission exchange failed', { peer: peerId, error: (err as Error).message });
      const previous = this.#decisions.get(peerId);
      if (previous?.admitted) return previous;
      const unreachable: AdmissionDecision = {
        nodeId: peerId,
        admitted: false,
        reason: { code: 'UNREACHABLE', message: `no answer to the admission challenge: ${(err as Error).message}` },
      };
      this.#decisions.set(peerId, unreachable);
      return unreachable;
    }
    let claim: unknown;
    try {
      claim = JSON.parse(decoder.decode(response));
    } catch {
      claim = undefined;
    }
    const decision = evaluateAdmission(claim, {
      genesis: this.#o.genesis,
      authenticatedNodeId: peerId,
      freshness: challenge,
      now: new Date(this.#o.clock.now()),
      ...(this.#o.cache ? { cache: this.#o.cache } : {}),
    });
    const previous = this.#decisions.get(peerId);
    this.#decisions.set(peerId, decision);
    if (decision.admitted) {
      if (!previous?.admitted) this.#o.log.info('admitted peer', { peer: peerId, platform: decision.platform, measurement: decision.measurement });
      this.#o.onAdmitted?.(peerId);
    } else {
      this.#o.log.warn('refused peer', { peer: peerId, code: decision.reason?.code, reason: decision.reason?.message });
    }
    return decision;
  }

  isAdmitted(peerId: string): boolean {
    return this.#decisions.get(peerId)?.admitted === true;
  }

  /** Is the enclave with this vote key admitted? (Votes and proposals count only then.) */
  isVoteKeyAdmitted(voteKey: string): boolean {
    const node = this.#o.genesis.validators.find((v) => v.voteKey === voteKey);
    return node !== undefined && this.isAdmitted(node.nodeId);
  }

  decision(peerId: string): AdmissionDecision | undefined {
    return this.#decisions.get(peerId);
  }

  /** One entry per validator in genesis (other than this node): admitted, refused with a reason, or not yet seen. */
  nodes(): NodeEntry[] {
    return this.#o.genesis.validators
      .filter((v) => v.nodeId !== this.#o.selfNodeId)
      .map((v) => ({ ...(this.#decisions.get(v.nodeId) ?? { nodeId: v.nodeId, admitted: false }), connected: this.#connected.has(v.nodeId) }));
  }
}
