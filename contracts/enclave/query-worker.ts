/**
 * The enclave program's call thread: answers read-only contract calls over
 * its copy of the committed state (query-engine.ts), fed by the main enclave
 * thread. Part of the enclave program (and of its measurement).
 */
import { parentPort } from 'node:worker_threads';
import { ChainError } from '../../consensus/index.js';
import { QueryEngine, type QueryCommit, type QuerySnapshot } from './query-engine.js';
import type { CallRequest } from './protocol.js';
import type { KeysSnapshot } from './consortium-keys.js';

export type QueryWorkerMessage =
  | { kind: 'load'; snapshot: QuerySnapshot }
  | { kind: 'commit'; commit: QueryCommit }
  | { kind: 'keys'; keys: KeysSnapshot }
  | { kind: 'call'; id: number; request: CallRequest; caller: string; gasLimit: number };

export type QueryWorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: string; message: string; details?: Record<string, unknown> } };

const port = parentPort;
if (!port) throw new Error('the call thread runs only as a worker');

const engine = new QueryEngine();
// Messages are handled in arrival order, so a call sees every commit sent before it.
let queue: Promise<void> = Promise.resolve();

port.on('message', (message: QueryWorkerMessage) => {
  queue = queue.then(async () => {
    if (message.kind === 'load') engine.load(message.snapshot);
    else if (message.kind === 'commit') engine.apply(message.commit);
    else if (message.kind === 'keys') engine.setKeys(message.keys);
    else {
      let reply: QueryWorkerReply;
      try {
        reply = { id: message.id, ok: true, value: await engine.call(message.request, message.caller, message.gasLimit) };
      } catch (err) {
        reply =
          err instanceof ChainError
            ? { id: message.id, ok: false, error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } }
            : { id: message.id, ok: false, error: { code: 'ENCLAVE_INTERNAL', message: err instanceof Error ? err.message : String(err) } };
      }
      port.postMessage(reply);
    }
  });
});
