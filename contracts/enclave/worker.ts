/**
 * Entry point of the virtual enclave program: runs in its own worker thread and
 * talks to the host only through byte messages on the worker port. Everything
 * this file imports is part of the enclave's measurement.
 */
import { parentPort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { ChainError } from '../../consensus/index.js';
import { parseEcall } from './ecall-parse.js';
import { Enclave, type EnclavePlatform } from './enclave.js';
import { decodeMessage, encodeMessage, type EcallRequest, type EcallResponse, type EcallType, type OcallRequest } from './protocol.js';

interface Envelope {
  id: number;
  kind: 'ecall' | 'ocall-reply';
  bytes: Uint8Array;
}

const port = parentPort;
if (!port) throw new Error('the enclave program runs only as a worker');

let nextOcallId = 1;
const ocalls = new Map<number, (bytes: Uint8Array) => void>();

function ocall(request: OcallRequest): Promise<Uint8Array> {
  const id = nextOcallId++;
  return new Promise((resolve) => {
    ocalls.set(id, resolve);
    const bytes = encodeMessage(request);
    port!.postMessage({ id, kind: 'ocall', bytes }, [bytes.buffer]);
  });
}

const platform: EnclavePlatform = {
  async getReport(reportData) {
    const reply = decodeMessage<{ platform: string; measurement: string; evidence: string } | { error: string }>(
      await ocall({ type: 'getReport', reportData: Buffer.from(reportData).toString('hex') }),
    );
    if ('error' in reply) throw new ChainError('ENCLAVE_UNAVAILABLE', `platform refused a report: ${reply.error}`);
    return { platform: reply.platform, measurement: reply.measurement, evidence: Buffer.from(reply.evidence, 'base64') };
  },
  async getSealingKey() {
    const reply = decodeMessage<{ key: string } | { error: string }>(await ocall({ type: 'getSealingKey' }));
    if ('error' in reply) throw new ChainError('ENCLAVE_UNAVAILABLE', `platform refused a sealing key: ${reply.error}`);
    return new Uint8Array(Buffer.from(reply.key, 'base64'));
  },
};

// Signature checks at admission run on their own threads, one per core, and
// read-only calls on a thread of their own, so block execution on this thread
// is held up by neither.
const enclavePromise = Enclave.create(platform, { verifierThreads: Math.max(1, Math.min(4, availableParallelism())), callThread: true });

/**
 * Lanes. Block work (unseal, init, propose, execute, commit) changes chain
 * state and runs one ecall at a time, in arrival order: nothing else is in that
 * queue, so consensus work never waits behind calls or admission. Signing is
 * synchronous and runs at once (between two ecalls, never inside one; it
 * checks its own rules). Admission only adds to the verified set, calls run on
 * the call thread, evidence asks the platform: they run beside the block lane,
 * each with a bound on how many may be in flight, past which the host gets
 * ENCLAVE_BUSY at once instead of an ever-growing queue.
 */
const BLOCK_LANE = new Set<EcallType>(['unseal', 'init', 'proposeBlock', 'executeBlock', 'commitBlock', 'acceptSecret']);
const IN_FLIGHT_LIMITS: Partial<Record<EcallType, number>> = {
  admitTxs: 32,
  getEvidence: 8,
  admissionEvidence: 8,
  getEncryptionKey: 8,
  getAttestationToken: 4,
  secretChallenge: 16,
  secretRequest: 2,
  releaseSecret: 4,
};
const inFlight = new Map<EcallType, number>();
let blockLane: Promise<void> = Promise.resolve();

function reply(id: number, response: EcallResponse): void {
  const bytes = encodeMessage(response);
  port!.postMessage({ id, kind: 'ecall-reply', bytes }, [bytes.buffer]);
}

function failure(err: unknown): EcallResponse {
  return err instanceof ChainError
    ? { ok: false, error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } }
    : { ok: false, error: { code: 'ENCLAVE_INTERNAL', message: err instanceof Error ? err.message : String(err) } };
}

async function run(id: number, request: EcallRequest): Promise<void> {
  let response: EcallResponse;
  try {
    const enclave = await enclavePromise;
    response = { ok: true, value: await enclave.handleParsed(request) };
  } catch (err) {
    response = failure(err);
  }
  reply(id, response);
}

port.on('message', (message: Envelope) => {
  if (message.kind === 'ocall-reply') {
    const resolve = ocalls.get(message.id);
    ocalls.delete(message.id);
    resolve?.(message.bytes);
    return;
  }
  // The request is parsed before it is scheduled: its lane follows from what it is, not from what the host says it is.
  let request: EcallRequest;
  try {
    request = parseEcall(decodeMessage<unknown>(message.bytes));
  } catch (err) {
    reply(message.id, failure(err instanceof SyntaxError || err instanceof TypeError ? new ChainError('ECALL_INVALID', 'ecall refused: not UTF-8 JSON') : err));
    return;
  }
  if (BLOCK_LANE.has(request.type)) {
    blockLane = blockLane.then(() => run(message.id, request));
    return;
  }
  const limit = IN_FLIGHT_LIMITS[request.type];
  if (limit !== undefined) {
    const busy = inFlight.get(request.type) ?? 0;
    if (busy >= limit) {
      reply(message.id, failure(new ChainError('ENCLAVE_BUSY', `${limit} ${request.type} requests are already in progress; retry later`)));
      return;
    }
    inFlight.set(request.type, busy + 1);
    void run(message.id, request).finally(() => inFlight.set(request.type, (inFlight.get(request.type) ?? 1) - 1));
    return;
  }
  void run(message.id, request);
});
