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
  #started = false;

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
    let claim: unknown;
    try {
      const response = await this.#o.transport.exchangeAdmission(peerId, encoder.encode(JSON.stringify({ challenge })));
      claim = JSON.parse(decoder.decode(response));
    } catch (err) {
      claim = undefined;
      this.#o.log.warn('admission exchange failed', { peer: peerId, error: (err as Error).message });
    }
    const decision = evaluateAdmission(claim, {
      genesis: this.#o.genesis,
      authenticatedNodeId: peerId,
      freshness: challenge,
      now: new Date(this.#o.clock.now()),
      ...(this.#o.cache ? { cache: this.#o.cache } : {}),
    });
    this.#decisions.set(peerId, decision);
    if (decision.admitted) this.#o.log.info('admitted peer', { peer: peerId, platform: decision.platform, measurement: decision.measurement });
    else this.#o.log.warn('refused peer', { peer: peerId, code: decision.reason?.code, reason: decision.reason?.message });
    return decision;
  }

  decision(peerId: string): AdmissionDecision | undefined {
    return this.#decisions.get(peerId);
  }

  /** One entry per validator in genesis (other than this node): admitted, refused with a reason, or not yet seen. */
  nodes(): AdmissionDecision[] {
    return this.#o.genesis.validators
      .filter((v) => v.nodeId !== this.#o.selfNodeId)
      .map((v) => this.#decisions.get(v.nodeId) ?? { nodeId: v.nodeId, admitted: false });
  }
}
