import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SealedStore } from './sealed-store.js';
import { noMetrics, type Metrics } from '../metrics/metrics.js';
import { ChainError, type CommitCertificate, type LastSign, type SignedTx, type SignedVote, type SignerLock } from '../../consensus/index.js';
import {
  decodeMessage,
  encodeMessage,
  type AdmissionResult,
  type BlockResult,
  type CommitResult,
  type ContractInfo,
  type StateProofResult,
  type EcallRequest,
  type EcallResponse,
  type InitRequest,
  type InitResponse,
  type OcallRequest,
  type EnclaveIdentity,
  type EncryptionKeyResponse,
  type AdmissionClaim,
  type SealedCallResponse,
  type SealedRelease,
  type SecretStatus,
  type SignResult,
  type UnsealResponse,
} from '../../contracts/index.js';
import type { SealedPayload } from '../../consensus/index.js';
import type { Vote } from '../../consensus/index.js';
import type { Logger } from '../log/logger.js';
import { projectRoot } from '../util/project-root.js';
import type { TeePlatform } from './platform.js';

interface Envelope {
  id: number;
  kind: 'ecall-reply' | 'ocall';
  bytes: Uint8Array;
}

/**
 * The host's handle on one enclave: starts the enclave program in its own
 * worker thread and reaches it only through byte messages (ecalls). The enclave
 * asks its platform for evidence through an ocall.
 */
export class EnclaveHost {
  #worker: Worker | undefined;
  #nextId = 1;
  #calls = new Map<number, { resolve: (bytes: Uint8Array) => void; reject: (err: Error) => void }>();
  #stopped = false;
  /** Where the sealed identity is kept; written in signing order, so a newer blob is never overwritten by an older one. */
  #sealed: SealedStore;
  /** Read-only calls waiting for the enclave: bounded, so a flood of calls cannot queue without end. */
  #callsInFlight = 0;
  /** The hash the enclave gave each transaction object it admitted (the mempool keeps those objects). */
  readonly #admittedHash = new WeakMap<object, string>();
  /** Told what the enclave holds of the consortium secret after init, each commit and each release it takes. */
  onSecrets: ((status: SecretStatus) => void) | undefined;
  /** Told when the enclave could not execute a block for want of the consortium secret. */
  onSecretNeeded: (() => void) | undefined;
  /** Times every ecall by type (set by the node, like the hooks above; records nothing by default). */
  metrics: Pick<Metrics, 'ecall'> = noMetrics;

  /**
   * `sealedFile`: where the enclave's sealed identity (vote key, safety state)
   * is kept (with a second slot beside it). Every signature is released only
   * after the blob recording it is on disk.
   */
  constructor(
    private readonly platform: TeePlatform,
    private readonly log: Logger,
    sealedFile: string,
    private readonly programEntry = join(projectRoot(), 'dist/contracts/enclave/worker.js'),
    private readonly maxCallsInFlight = 64,
  ) {
    this.#sealed = new SealedStore(sealedFile);
  }

  start(): void {
    if (this.#worker) return;
    const worker = new Worker(this.programEntry, { resourceLimits: { maxOldGenerationSizeMb: 2048, stackSizeMb: 4 } });
    worker.on('message', (message: Envelope) => this.#onMessage(message));
    worker.on('error', (err) => {
      this.log.error('enclave crashed', { error: err.message });
      this.#failAll(new ChainError('ENCLAVE_UNAVAILABLE', 'enclave crashed'));
    });
    worker.on('exit', (code) => {
      if (!this.#stopped) this.log.error('enclave exited', { code });
      this.#failAll(new ChainError('ENCLAVE_UNAVAILABLE', 'enclave stopped'));
    });
    this.#worker = worker;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
    await this.#sealed.close();
  }

  #failAll(err: Error): void {
    for (const call of this.#calls.values()) call.reject(err);
    this.#calls.clear();
  }

  #onMessage(message: Envelope): void {
    if (message.kind === 'ocall') {
      void this.#answerOcall(message.id, decodeMessage<OcallRequest>(message.bytes));
      return;
    }
    const call = this.#calls.get(message.id);
    this.#calls.delete(message.id);
    call?.resolve(message.bytes);
  }

  async #answerOcall(id: number, request: OcallRequest): Promise<void> {
    let reply: unknown;
    try {
      if (request.type === 'getReport') {
        const report = await this.platform.getReport(request.reportData);
        reply = { platform: report.platform, measurement: report.measurement, evidence: Buffer.from(report.evidence).toString('base64') };
      } else if (request.type === 'getSealingKey') {
        reply = { key: Buffer.from(await this.platform.sealingKey()).toString('base64') };
      } else {
        throw new Error('unknown ocall');
      }
    } catch (err) {
      reply = { error: err instanceof Error ? err.message : String(err) };
    }
    const bytes = encodeMessage(reply);
    this.#worker?.postMessage({ id, kind: 'ocall-reply', bytes }, [bytes.buffer]);
  }

  async #ecall<T>(request: EcallRequest): Promise<T> {
    const worker = this.#worker;
    if (!worker) throw new ChainError('ENCLAVE_UNAVAILABLE', 'enclave not running');
    const id = this.#nextId++;
    const bytes = encodeMessage(request);
    const started = performance.now();
    const reply = await new Promise<Uint8Array>((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      worker.postMessage({ id, kind: 'ecall', type: request.type, bytes }, [bytes.buffer]);
    });
    // Answered ecalls only (an error reply included): a crashed enclave has no duration to report.
    this.metrics.ecall(request.type, (performance.now() - started) / 1000);
    const response = decodeMessage<EcallResponse>(reply);
    if (!response.ok) {
      const { code, message, details } = response.error;
      throw new ChainError(code as ChainError['code'], message, details);
    }
    return response.value as T;
  }

  /**
   * Opens the enclave's identity from the sealed slots (a new one on first
   * start) and stores it sealed again. Returns the enclave's public keys and
   * its safety state (where consensus resumes after a restart).
   */
  async openIdentity(successorFile?: string): Promise<{ publicKeys: Record<string, string>; lastSign: LastSign | null; lock: SignerLock | null; successor: boolean }> {
    let blobs = await this.#sealed.open();
    let out: UnsealResponse;
    try {
      out = await this.#ecall<UnsealResponse>({ type: 'unseal', sealed: blobs.map((b) => b.text) });
    } catch (err) {
      // Another program sealed the identity (the node was upgraded): its successor identity, made by this program for the handover, is used.
      if (!(err instanceof ChainError && err.code === 'SEAL_INVALID') || successorFile === undefined || !existsSync(successorFile)) throw err;
      this.log.info('the sealed identity belongs to another enclave program: using the successor identity this program made', { file: successorFile });
      // The old slots stay on disk (the old program's record) but are not written again: close their descriptors.
      await this.#sealed.close();
      this.#sealed = new SealedStore(successorFile);
      blobs = await this.#sealed.open();
      out = await this.#ecall<UnsealResponse>({ type: 'unseal', sealed: blobs.map((b) => b.text) });
      this.#sealed.startAfter(out.from === null ? null : (blobs[out.from]?.slot ?? null));
      await this.#sealed.write(out.sealed);
      return { publicKeys: out.publicKeys, lastSign: out.lastSign, lock: out.lock, successor: true };
    }
    // Never overwrite the blob the enclave opened first: a torn write would then lose the newest state.
    this.#sealed.startAfter(out.from === null ? null : (blobs[out.from]?.slot ?? null));
    await this.#sealed.write(out.sealed);
    return { publicKeys: out.publicKeys, lastSign: out.lastSign, lock: out.lock, successor: false };
  }

  /** Initialises the enclave (a fresh chain, or resuming the stored head); stores the seal when init moved the safety record. */
  async init(request: Omit<InitRequest, 'type'>): Promise<InitResponse> {
    const out = await this.#ecall<InitResponse>({ type: 'init', ...request });
    if (out.sealed !== null) {
      // Its safety record moved past a signature the stored certificate shows, or a consortium-secret candidate lost.
      this.log.info('the enclave identity was sealed again at init');
      await this.#sealed.write(out.sealed);
    }
    this.onSecrets?.(out.secrets);
    return out;
  }

  proposeBlock(request: Omit<Extract<EcallRequest, { type: 'proposeBlock' }>, 'type'>): Promise<BlockResult> {
    return this.#withAdmittedByHash(request.txs, (txs) => this.#ecall({ type: 'proposeBlock', ...request, txs }));
  }

  async executeBlock(request: Omit<Extract<EcallRequest, { type: 'executeBlock' }>, 'type'>): Promise<BlockResult> {
    try {
      return await this.#withAdmittedByHash(request.txs, (txs) => this.#ecall({ type: 'executeBlock', ...request, txs }));
    } catch (err) {
      if (err instanceof ChainError && err.code === 'SECRET_UNAVAILABLE') this.onSecretNeeded?.();
      throw err;
    }
  }

  /**
   * Commits an executed block on its certificate (the enclave checks it). When
   * the certificate moved the enclave's safety record forward, the new seal is
   * stored before this resolves.
   */
  async commitBlock(blockHash: string, certificate: CommitCertificate): Promise<Pick<CommitResult, 'height' | 'view' | 'viewTransition'>> {
    const out = await this.#ecall<CommitResult>({ type: 'commitBlock', blockHash, certificate });
    if (out.sealed !== null) await this.#sealed.write(out.sealed);
    this.onSecrets?.(out.secrets);
    return { height: out.height, view: out.view, viewTransition: out.viewTransition };
  }

  /** A read-only call; at most maxCallsInFlight wait at once (ENCLAVE_BUSY beyond). */
  async call(request: Omit<Extract<EcallRequest, { type: 'call' }>, 'type'>): Promise<{ result: unknown; gasUsed: number }> {
    if (this.#callsInFlight >= this.maxCallsInFlight) {
      throw new ChainError('ENCLAVE_BUSY', `${this.maxCallsInFlight} read-only calls are already waiting for the enclave; retry later`);
    }
    this.#callsInFlight++;
    try {
      return await this.#ecall({ type: 'call', ...request });
    } finally {
      this.#callsInFlight--;
    }
  }

  getEvidence(freshness: string): Promise<EnclaveIdentity> {
    return this.#ecall({ type: 'getEvidence', freshness });
  }

  /** Evidence answering a peer's admission challenge, bound by the enclave to its own genesis (admissionFreshness). */
  admissionEvidence(challenge: string): Promise<EnclaveIdentity> {
    return this.#ecall({ type: 'admissionEvidence', challenge });
  }

  /** A read-only call to a confidential contract, sealed both ways (the host sees neither the call nor the answer). */
  async sealedCall(contract: string, sealed: SealedPayload): Promise<SealedCallResponse> {
    if (this.#callsInFlight >= this.maxCallsInFlight) {
      throw new ChainError('ENCLAVE_BUSY', `${this.maxCallsInFlight} read-only calls are already waiting for the enclave; retry later`);
    }
    this.#callsInFlight++;
    try {
      return await this.#ecall({ type: 'sealedCall', contract, sealed });
    } finally {
      this.#callsInFlight--;
    }
  }

  /** The newest network encryption key, with fresh evidence binding it. */
  getEncryptionKey(freshness: string): Promise<EncryptionKeyResponse> {
    return this.#ecall({ type: 'getEncryptionKey', freshness });
  }

  /** An attestation token (JWT) over fresh evidence bound to `freshness`. */
  getAttestationToken(freshness: string, audience: string | null, now: number): Promise<{ token: string; identity: EnclaveIdentity }> {
    return this.#ecall({ type: 'getAttestationToken', freshness, audience, now });
  }

  /** A challenge for a peer asking for the consortium secret. */
  secretChallenge(): Promise<{ nonce: string }> {
    return this.#ecall({ type: 'secretChallenge' });
  }

  /** This enclave's claim for the secret, answering a peer's challenge. */
  secretRequest(nonce: string): Promise<AdmissionClaim> {
    return this.#ecall({ type: 'secretRequest', nonce });
  }

  /** Asks the enclave to release the secret to a peer's enclave; it decides (and seals the secret to the peer's key). */
  releaseSecret(request: { nonce: string; peerNodeId: string; claim: AdmissionClaim; now: number }): Promise<SealedRelease> {
    return this.#ecall({ type: 'releaseSecret', ...request });
  }

  /** Hands the enclave a release sealed to it; the new seal (with the secret) is stored before this resolves. */
  async acceptSecret(release: SealedRelease): Promise<SecretStatus> {
    const out = await this.#ecall<SecretStatus & { sealed: string }>({ type: 'acceptSecret', release });
    await this.#sealed.write(out.sealed);
    const status = { missing: out.missing, held: out.held };
    this.onSecrets?.(status);
    return status;
  }

  /**
   * Signs a prevote or precommit; the enclave refuses conflicting votes and
   * blocks it did not validate. Resolves once the sealed record of it is durable.
   */
  async signVote(vote: Vote, justification: SignedVote[] = []): Promise<{ validator: string; signature: string }> {
    const out = await this.#ecall<SignResult>({ type: 'signVote', vote, justification });
    await this.#sealed.write(out.sealed);
    return { validator: out.validator, signature: out.signature };
  }

  async signProposal(proposal: Extract<EcallRequest, { type: 'signProposal' }>['proposal']): Promise<{ validator: string; signature: string }> {
    const out = await this.#ecall<SignResult>({ type: 'signProposal', proposal });
    await this.#sealed.write(out.sealed);
    return { validator: out.validator, signature: out.signature };
  }

  /** The `handover` transaction to the successor whose claim this is, signed by this enclave's vote key (it checks the claim first). */
  signHandover(claim: AdmissionClaim, nonce: number): Promise<SignedTx> {
    return this.#ecall({ type: 'signHandover', claim, nonce, now: Date.now() });
  }

  /** The committed next nonce of each address, as the enclave's state has it. */
  nonces(addresses: string[]): Promise<number[]> {
    return this.#ecall({ type: 'nonces', addresses });
  }

  /** Has the enclave check transactions offered to the mempool; one result per transaction, in order. */
  async admitTxs(txs: unknown[]): Promise<AdmissionResult[]> {
    const results = await this.#ecall<AdmissionResult[]>({ type: 'admitTxs', txs });
    results.forEach((r, i) => {
      const tx = txs[i];
      if (r.ok && typeof tx === 'object' && tx !== null) this.#admittedHash.set(tx, r.hash);
    });
    return results;
  }

  /**
   * Sends a block's transactions that this enclave admitted by their hash (it executes its own
   * copy), the rest in full. The enclave forgets what it committed and, past its bound, the oldest:
   * a hash it no longer holds refuses the call, which is then made again with every transaction in full.
   */
  async #withAdmittedByHash<T>(txs: unknown[], call: (txs: unknown[]) => Promise<T>): Promise<T> {
    let named = 0;
    const byHash = txs.map((tx) => {
      const hash = typeof tx === 'object' && tx !== null ? this.#admittedHash.get(tx) : undefined;
      if (hash === undefined) return tx;
      named++;
      return hash;
    });
    if (named === 0) return call(txs);
    try {
      return await call(byHash);
    } catch (err) {
      if (!(err instanceof ChainError) || err.code !== 'TX_REF_UNKNOWN') throw err;
      this.log.debug('the enclave no longer holds some admitted transactions: sending them in full', { named, missing: err.details?.['hashes'] });
      return call(txs);
    }
  }

  listContracts(): Promise<ContractInfo[]> {
    return this.#ecall({ type: 'listContracts' });
  }

  /** A proof of a full state key's value at a recent committed height (the head when null), from the enclave's state tree. */
  stateProof(key: string, height: number | null): Promise<StateProofResult> {
    return this.#ecall({ type: 'stateProof', key, height });
  }
}
