import type { IncomingMessage } from 'node:http';

export type BodyFailure = 'too-large' | 'timeout' | 'aborted' | 'busy';

export class BodyError extends Error {
  constructor(readonly kind: BodyFailure) {
    super(`request body ${kind}`);
  }
}

export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
  /** Charges each chunk to the server's in-flight bytes; false fails the read as 'busy'. */
  take?: (bytes: number) => boolean;
}

/**
 * Reads a request body up to `maxBytes` within `timeoutMs` (slowloris guard),
 * charging what it buffers through `take`. On failure the rest of the body is
 * discarded, not buffered; the caller answers and closes the connection.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limits.maxBytes) {
      req.resume();
      reject(new BodyError('too-large'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: BodyError | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
      if (err) {
        chunks.length = 0;
        req.on('error', () => {});
        req.resume();
        reject(err);
      } else {
        resolve(Buffer.concat(chunks, size));
      }
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limits.maxBytes) finish(new BodyError('too-large'));
      else if (limits.take && !limits.take(chunk.length)) finish(new BodyError('busy'));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(null);
    const onAbort = (): void => finish(new BodyError('aborted'));
    const onClose = (): void => {
      if (!req.complete) finish(new BodyError('aborted'));
    };
    const timer = setTimeout(() => finish(new BodyError('timeout')), limits.timeoutMs);
    timer.unref();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}
