/**
 * Entry point of the virtual enclave program: runs in its own worker thread and
 * talks to the host only through byte messages on the worker port. Everything
 * this file imports is part of the enclave's measurement.
 */
import { parentPort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { ChainError } from '../../consensus/index.js';
import { Enclave, type EnclavePlatform } from './enclave.js';
import { decodeMessage, encodeMessage, type EcallRequest, type EcallResponse, type OcallRequest } from './protocol.js';

interface Envelope {
  id: number;
  kind: 'ecall' | 'ocall-reply';
  /** The ecall's type, so it can be scheduled without decoding the bytes. */
  type?: string;
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

// Signature checks at admission run on their own threads, one per core, so
// block execution on this thread is not held up by them.
const enclavePromise = Enclave.create(platform, Math.max(1, Math.min(4, availableParallelism())));

// Ecalls run one at a time, in arrival order: the enclave's state changes only
// through this queue.
let queue: Promise<void> = Promise.resolve();

port.on('message', (message: Envelope) => {
  if (message.kind === 'ocall-reply') {
    const resolve = ocalls.get(message.id);
    ocalls.delete(message.id);
    resolve?.(message.bytes);
    return;
  }
  const run = async (): Promise<void> => {
    let response: EcallResponse;
    try {
      const enclave = await enclavePromise;
      const request = decodeMessage<EcallRequest>(message.bytes);
      response = { ok: true, value: await enclave.handle(request) };
    } catch (err) {
      response =
        err instanceof ChainError
          ? { ok: false, error: { code: err.code, message: err.message, details: err.details } }
          : { ok: false, error: { code: 'ENCLAVE_INTERNAL', message: err instanceof Error ? err.message : String(err) } };
    }
    const bytes = encodeMessage(response);
    port.postMessage({ id: message.id, kind: 'ecall-reply', bytes }, [bytes.buffer]);
  };
  // Admission only adds to the verified set, so it runs beside the queue. Signing
  // is quick and must not wait behind block execution (a late proposal or vote
  // costs a round); it still runs between two ecalls, never inside one, and
  // checks its own rules (last signed slot, blocks this enclave validated).
  // Every other ecall changes or reads chain state and waits its turn.
  if (message.type === 'admitTxs' || message.type === 'signVote' || message.type === 'signProposal') void run();
  else queue = queue.then(run);
});
