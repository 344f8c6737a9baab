import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { SealedStore } from './sealed-store.js';
import { ChainError, type CommitCertificate, type LastSign, type SignedVote, type SignerLock } from '../../consensus/index.js';
import {
  decodeMessage,
  encodeMessage,
  type AdmissionResult,
  type BlockResult,
  type CommitResult,
  type ContractInfo,
  type EcallRequest,
  type EcallResponse,
  type InitRequest,
  type InitResponse,
  type OcallRequest,
  type EnclaveIdentity,
  type SignResult,
  type UnsealResponse,
} from '../../contracts/index.js';
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
  readonly #sealed: SealedStore;
  /** Read-only calls waiting for the enclave: bounded, so a flood of calls cannot queue without end. */
  #callsInFlight = 0;

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
    const reply = await new Promise<Uint8Array>((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      worker.postMessage({ id, kind: 'ecall', type: request.type, bytes }, [bytes.buffer]);
    });
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
  async openIdentity(): Promise<{ publicKeys: Record<string, string>; lastSign: LastSign | null; lock: SignerLock | null }> {
    const blobs = await this.#sealed.open();
    const out = await this.#ecall<UnsealResponse>({ type: 'unseal', sealed: blobs.map((b) => b.text) });
    // Never overwrite the blob the enclave opened first: a torn write would then lose the newest state.
    this.#sealed.startAfter(out.from === null ? null : (blobs[out.from]?.slot ?? null));
    await this.#sealed.write(out.sealed);
    return { publicKeys: out.publicKeys, lastSign: out.lastSign, lock: out.lock };
  }

  /** Initialises the enclave (a fresh chain, or resuming the stored head); stores the seal when init moved the safety record. */
  async init(request: Omit<InitRequest, 'type'>): Promise<InitResponse> {
    const out = await this.#ecall<InitResponse>({ type: 'init', ...request });
    if (out.sealed !== null) {
      this.log.warn('the stored head\'s certificate shows this node\'s vote key signed later than its sealed record: the record moved past it');
      await this.#sealed.write(out.sealed);
    }
    return out;
  }

  proposeBlock(request: Omit<Extract<EcallRequest, { type: 'proposeBlock' }>, 'type'>): Promise<BlockResult> {
    return this.#ecall({ type: 'proposeBlock', ...request });
  }

  executeBlock(request: Omit<Extract<EcallRequest, { type: 'executeBlock' }>, 'type'>): Promise<BlockResult> {
    return this.#ecall({ type: 'executeBlock', ...request });
  }

  /**
   * Commits an executed block on its certificate (the enclave checks it). When
   * the certificate moved the enclave's safety record forward, the new seal is
   * stored before this resolves.
   */
  async commitBlock(blockHash: string, certificate: CommitCertificate): Promise<{ height: number }> {
    const out = await this.#ecall<CommitResult>({ type: 'commitBlock', blockHash, certificate });
    if (out.sealed !== null) {
      this.log.warn('a certificate shows this node\'s vote key signed later than its sealed record: the record moved past it', { height: out.height });
      await this.#sealed.write(out.sealed);
    }
    return { height: out.height };
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

  /** The committed next nonce of each address, as the enclave's state has it. */
  nonces(addresses: string[]): Promise<number[]> {
    return this.#ecall({ type: 'nonces', addresses });
  }

  /** Has the enclave check transactions offered to the mempool; one result per transaction, in order. */
  admitTxs(txs: unknown[]): Promise<AdmissionResult[]> {
    return this.#ecall({ type: 'admitTxs', txs });
  }

  listContracts(): Promise<ContractInfo[]> {
    return this.#ecall({ type: 'listContracts' });
  }
}
