import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { readSealedIdentity, writeSealedIdentity } from './sealed-file.js';
import { ChainError } from '../../consensus/index.js';
import {
  decodeMessage,
  encodeMessage,
  type AdmissionResult,
  type BlockResult,
  type ContractInfo,
  type EcallRequest,
  type EcallResponse,
  type InitRequest,
  type InitResponse,
  type OcallRequest,
  type EnclaveIdentity,
  type SignResult,
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
  /** Sealed-identity writes, in signing order: a newer blob is never overwritten by an older one. */
  #sealedWrites: Promise<void> = Promise.resolve();

  /**
   * `sealedFile`: where the enclave's sealed identity (vote key, last signature)
   * is kept. Every signature is released only after the blob recording it is on disk.
   */
  constructor(
    private readonly platform: TeePlatform,
    private readonly log: Logger,
    private readonly sealedFile: string,
    private readonly programEntry = join(projectRoot(), 'dist/contracts/enclave/worker.js'),
  ) {}

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

  /** Persists a sealed blob after the ones before it; resolves once it is durable. */
  #persistSealed(sealed: string): Promise<void> {
    const write = this.#sealedWrites.then(() => writeSealedIdentity(this.sealedFile, sealed));
    this.#sealedWrites = write.catch(() => {});
    return write;
  }

  /**
   * Opens the enclave's identity from the sealed file (a new one on first
   * start) and stores it sealed again. Returns the enclave's public keys.
   */
  async openIdentity(): Promise<Record<string, string>> {
    const sealed = await readSealedIdentity(this.sealedFile);
    const out = await this.#ecall<{ publicKeys: Record<string, string>; sealed: string }>({ type: 'unseal', sealed });
    await this.#persistSealed(out.sealed);
    return out.publicKeys;
  }

  init(request: Omit<InitRequest, 'type'>): Promise<InitResponse> {
    return this.#ecall({ type: 'init', ...request });
  }

  proposeBlock(request: Omit<Extract<EcallRequest, { type: 'proposeBlock' }>, 'type'>): Promise<BlockResult> {
    return this.#ecall({ type: 'proposeBlock', ...request });
  }

  executeBlock(request: Omit<Extract<EcallRequest, { type: 'executeBlock' }>, 'type'>): Promise<BlockResult> {
    return this.#ecall({ type: 'executeBlock', ...request });
  }

  commitBlock(blockHash: string): Promise<{ height: number }> {
    return this.#ecall({ type: 'commitBlock', blockHash });
  }

  call(request: Omit<Extract<EcallRequest, { type: 'call' }>, 'type'>): Promise<{ result: unknown; gasUsed: number }> {
    return this.#ecall({ type: 'call', ...request });
  }

  getEvidence(freshness: string): Promise<EnclaveIdentity> {
    return this.#ecall({ type: 'getEvidence', freshness });
  }

  /**
   * Signs a prevote or precommit; the enclave refuses conflicting votes and
   * blocks it did not validate. Resolves once the sealed record of it is durable.
   */
  async signVote(vote: Vote): Promise<{ validator: string; signature: string }> {
    const out = await this.#ecall<SignResult>({ type: 'signVote', vote });
    await this.#persistSealed(out.sealed);
    return { validator: out.validator, signature: out.signature };
  }

  async signProposal(proposal: Extract<EcallRequest, { type: 'signProposal' }>['proposal']): Promise<{ validator: string; signature: string }> {
    const out = await this.#ecall<SignResult>({ type: 'signProposal', proposal });
    await this.#persistSealed(out.sealed);
    return { validator: out.validator, signature: out.signature };
  }

  /** Has the enclave check transactions offered to the mempool; one result per transaction, in order. */
  admitTxs(txs: unknown[]): Promise<AdmissionResult[]> {
    return this.#ecall({ type: 'admitTxs', txs });
  }

  listContracts(): Promise<ContractInfo[]> {
    return this.#ecall({ type: 'listContracts' });
  }
}
