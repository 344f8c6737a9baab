import { ChainError } from '../../consensus/index.js';
import type { AdmissionClaim, SealedRelease, SecretStatus } from '../../contracts/index.js';
import type { Clock } from '../chain/clock.js';
import type { Logger } from '../log/logger.js';

/** The enclave calls attested key release needs (node/enclave/enclave-host.ts). */
export interface SecretEnclave {
  secretChallenge(): Promise<{ nonce: string }>;
  secretRequest(nonce: string): Promise<AdmissionClaim>;
  releaseSecret(request: { nonce: string; peerNodeId: string; claim: AdmissionClaim; now: number }): Promise<SealedRelease>;
  acceptSecret(release: SealedRelease): Promise<SecretStatus>;
}

/** The secret-release protocol of the network service (admitted peers only). */
export interface SecretTransport {
  requestSecret(peerId: string, request: Uint8Array, options?: { timeoutMs?: number }): Promise<Uint8Array>;
  handleSecret(handler: ((peerId: string, request: Uint8Array) => Promise<Uint8Array>) | undefined): void;
}

export interface SecretServiceOptions {
  enclave: SecretEnclave;
  transport: SecretTransport;
  /** The peers whose enclaves this node admitted now (the ones to ask). */
  admittedPeers(): string[];
  clock: Clock;
  log: Logger;
  /** First wait between rounds of asking while the secret is missing (doubles up to maxRetryMs). Default 500 ms. */
  retryMs?: number;
  maxRetryMs?: number;
  timeoutMs?: number;
}

type WireRequest = { type: 'challenge' } | { type: 'release'; nonce: string; claim: AdmissionClaim };
type WireAnswer = { ok: true; value: unknown } | { ok: false; code: string; message: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Gets the consortium secret into this node's enclave, and serves it to
 * peers' enclaves, by attested key release (contracts/enclave/secret-release.ts).
 * The host only carries bytes: the challenge, evidence and the sealed secret.
 * Both decisions (release, accept) are the enclaves'.
 *
 * While the enclave reports committed generations it does not hold, the
 * service asks the admitted peers in turn, again after a growing pause (a
 * peer may not hold it yet either, or may not be admitted yet).
 */
export class SecretService {
  readonly #o: Required<Omit<SecretServiceOptions, 'retryMs' | 'maxRetryMs' | 'timeoutMs'>> & { retryMs: number; maxRetryMs: number; timeoutMs: number };
  #missing: number[] = [];
  #running = false;
  #fetching: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #delay: number;
  #nextPeer = 0;

  constructor(options: SecretServiceOptions) {
    this.#o = { retryMs: 500, maxRetryMs: 10_000, timeoutMs: 10_000, ...options };
    this.#delay = this.#o.retryMs;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#o.transport.handleSecret((peer, bytes) => this.#serve(peer, bytes));
    this.#kick();
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#timer);
    this.#o.transport.handleSecret(undefined);
  }

  /** What the enclave holds now (after init, a commit, or a release it took). */
  update(status: SecretStatus): void {
    const before = this.#missing.length;
    this.#missing = status.missing;
    if (status.missing.length === 0) {
      if (before > 0) this.#o.log.info('the enclave holds the consortium secret', { generations: status.held });
      this.#delay = this.#o.retryMs;
      return;
    }
    this.#kick();
  }

  /** Something needed the secret and this enclave lacked it (a block it could not execute): ask now. */
  needed(): void {
    this.#delay = this.#o.retryMs;
    // Ask now rather than after the pause already scheduled (a new peer was admitted, or a block waits).
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#kick();
  }

  get missing(): readonly number[] {
    return this.#missing;
  }

  #kick(): void {
    if (!this.#running || this.#missing.length === 0 || this.#fetching || this.#timer) return;
    this.#fetching = this.#fetchRound().finally(() => {
      this.#fetching = undefined;
      if (this.#running && this.#missing.length > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#kick();
        }, this.#delay);
        this.#delay = Math.min(this.#delay * 2, this.#o.maxRetryMs);
      }
    });
  }

  /**
   * Asks each admitted peer in turn until this enclave holds every committed
   * generation. A peer releases what it holds, which may not be all: just
   * after a rotation only the proposer that made the new generation holds it,
   * so the round goes on to the next peer, and the next round starts from
   * another one.
   */
  async #fetchRound(): Promise<void> {
    const peers = this.#o.admittedPeers();
    if (peers.length === 0) return;
    const first = this.#nextPeer++;
    for (let i = 0; i < peers.length && this.#running && this.#missing.length > 0; i++) {
      const peer = peers[(first + i) % peers.length]!;
      try {
        const { nonce } = (await this.#ask(peer, { type: 'challenge' })) as { nonce: string };
        const claim = await this.#o.enclave.secretRequest(nonce);
        const release = (await this.#ask(peer, { type: 'release', nonce, claim })) as SealedRelease;
        const status = await this.#o.enclave.acceptSecret(release);
        this.#o.log.info('consortium secret received by attested release', { from: peer, generations: status.held, missing: status.missing });
        this.update(status);
        if (status.missing.length === 0) return;
      } catch (err) {
        const code = err instanceof ChainError || err instanceof SecretRefused ? err.code : 'NETWORK';
        this.#o.log.debug('a peer did not release the consortium secret', { peer, code, error: (err as Error).message });
      }
    }
    if (this.#missing.length === 0) return;
    this.#o.log.info('waiting for the consortium secret', { missing: this.#missing, peersAsked: peers.length });
  }

  async #ask(peer: string, request: WireRequest): Promise<unknown> {
    const bytes = await this.#o.transport.requestSecret(peer, encoder.encode(JSON.stringify(request)), { timeoutMs: this.#o.timeoutMs });
    let answer: WireAnswer;
    try {
      answer = JSON.parse(decoder.decode(bytes)) as WireAnswer;
    } catch {
      throw new SecretRefused('MALFORMED', 'the peer answered with something that is not JSON');
    }
    if (typeof answer !== 'object' || answer === null) throw new SecretRefused('MALFORMED', 'the peer answered with something that is not an answer');
    if (!answer.ok) throw new SecretRefused(String(answer.code).slice(0, 64), String(answer.message).slice(0, 512));
    return answer.value;
  }

  /** A peer's request: the challenge and the release decision are its enclave's business and this node's enclave's. */
  async #serve(peer: string, bytes: Uint8Array): Promise<Uint8Array> {
    let answer: WireAnswer;
    try {
      const request = parseRequest(bytes);
      const value =
        request.type === 'challenge'
          ? await this.#o.enclave.secretChallenge()
          : await this.#o.enclave.releaseSecret({ nonce: request.nonce, peerNodeId: peer, claim: request.claim, now: this.#o.clock.now() });
      if (request.type === 'release') this.#o.log.info('consortium secret released to a peer\'s attested enclave', { peer });
      answer = { ok: true, value };
    } catch (err) {
      const code = err instanceof ChainError || err instanceof SecretRefused ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      // A peer asking while this enclave does not hold the secret either is expected at start; the rest is worth a warning.
      if (code === 'SECRET_UNAVAILABLE') this.#o.log.debug('no consortium secret to release yet', { peer });
      else this.#o.log.warn('refused to release the consortium secret', { peer, code, error: message });
      answer = { ok: false, code, message };
    }
    return encoder.encode(JSON.stringify(answer));
  }
}

class SecretRefused extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function parseRequest(bytes: Uint8Array): WireRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new SecretRefused('MALFORMED', 'the request is not UTF-8 JSON');
  }
  const r = raw as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null) throw new SecretRefused('MALFORMED', 'the request is not an object');
  if (r['type'] === 'challenge' && Object.keys(r).length === 1) return { type: 'challenge' };
  if (r['type'] === 'release' && typeof r['nonce'] === 'string' && typeof r['claim'] === 'object' && r['claim'] !== null) {
    return { type: 'release', nonce: r['nonce'], claim: r['claim'] as AdmissionClaim };
  }
  throw new SecretRefused('MALFORMED', 'the request is neither {type:"challenge"} nor {type:"release", nonce, claim}');
}
