import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Logger } from '../log/logger.js';
import { NetworkError } from './errors.js';

/**
 * Framing: one request frame, one response frame per stream. A frame is a
 * 4-byte big-endian unsigned length followed by that many bytes. The requester
 * half-closes its write side after the request; the responder closes after the
 * response.
 */
export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** A stream message's bytes (libp2p hands a Uint8Array or a Uint8ArrayList). */
export function chunkBytes(data: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

/**
 * Reads exactly one frame from `stream`. Rejects with FRAME_TOO_LARGE as soon as
 * the header announces more than `maxBytes` (the body is never buffered),
 * with STREAM_CLOSED if the stream ends early, and with TIMEOUT/ABORTED on `signal`.
 */
export function readFrame(stream: Stream, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let have = 0;
    let need = -1;
    let done = false;
    const cleanup = (): void => {
      done = true;
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('close', onEnd);
      stream.removeEventListener('remoteCloseWrite', onEnd);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error): void => {
      if (done) return;
      cleanup();
      reject(err);
    };
    const onAbort = (): void => {
      const reason: unknown = signal.reason;
      fail(reason instanceof NetworkError ? reason : new NetworkError('TIMEOUT', 'request timed out'));
    };
    const onEnd = (): void => fail(new NetworkError('STREAM_CLOSED', 'stream closed before a whole frame arrived'));
    const onMessage = (evt: Event): void => {
      if (done) return;
      const buf = chunkBytes((evt as Event & { data: Uint8Array }).data);
      chunks.push(buf);
      have += buf.length;
      if (need < 0 && have >= FRAME_HEADER_BYTES) {
        const all = concatBytes(chunks, have);
        need = new DataView(all.buffer, all.byteOffset, all.byteLength).getUint32(0, false);
        chunks.length = 0;
        chunks.push(all);
        if (need > maxBytes) {
          fail(new NetworkError('FRAME_TOO_LARGE', `frame of ${need} bytes exceeds the limit of ${maxBytes}`));
          return;
        }
      }
      if (need >= 0 && have >= FRAME_HEADER_BYTES + need) {
        if (have > FRAME_HEADER_BYTES + need) {
          fail(new NetworkError('PROTOCOL', 'bytes after the frame'));
          return;
        }
        const all = concatBytes(chunks, have);
        cleanup();
        resolve(all.subarray(FRAME_HEADER_BYTES));
      }
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort);
    stream.addEventListener('message', onMessage);
    stream.addEventListener('close', onEnd);
    stream.addEventListener('remoteCloseWrite', onEnd);
  });
}

/** Joins chunks of `total` bytes (the one chunk itself when there is one). */
export function concatBytes(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export type RequestHandler = (peerId: string, request: Uint8Array) => Promise<Uint8Array>;

export interface RequestResponseOptions {
  protocol: string;
  /** Largest request this node accepts (inbound) or sends (outbound). */
  maxRequestBytes: number;
  /** Default largest response accepted by `request`; also caps what our handler may send. */
  maxResponseBytes: number;
  /** Default requester timeout, dial included. */
  timeoutMs: number;
  /** How long our handler may take before the stream is aborted. */
  handlerTimeoutMs: number;
  maxInboundStreams: number;
  /**
   * Who may use this protocol, checked before anything is read: a request from
   * anyone else, and a request to anyone else, fails with PEER_NOT_ADMITTED
   * (the inbound stream is reset). Default: every connected peer.
   */
  authorize?: (peerId: string) => boolean;
  log: Logger;
}

export interface RequestOptions {
  timeoutMs?: number;
  maxResponseBytes?: number;
}

/** One request/response protocol (sync, admission) over libp2p streams. */
export class RequestResponseProtocol {
  private handler: RequestHandler | undefined;
  private readonly open = new Set<Stream>();
  private readonly stopController = new AbortController();

  constructor(
    private readonly node: Libp2p,
    readonly opts: RequestResponseOptions,
  ) {}

  async start(): Promise<void> {
    await this.node.handle(this.opts.protocol, (stream, connection) => this.onInbound(stream, connection), {
      maxInboundStreams: this.opts.maxInboundStreams,
    });
  }

  /** Aborts every open stream; requests in flight reject with STOPPED. */
  stop(): void {
    this.stopController.abort(new NetworkError('STOPPED', 'network service stopped'));
    for (const s of this.open) s.abort(new NetworkError('STOPPED', 'network service stopped'));
    this.open.clear();
  }

  setHandler(handler: RequestHandler | undefined): void {
    this.handler = handler;
  }

  async request(peerId: string, payload: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> {
    if (this.stopController.signal.aborted) throw new NetworkError('STOPPED', 'network service stopped');
    if (this.opts.authorize && !this.opts.authorize(peerId)) {
      throw new NetworkError('PEER_NOT_ADMITTED', `peer ${peerId} may not use ${this.opts.protocol}`);
    }
    if (payload.length > this.opts.maxRequestBytes) {
      throw new NetworkError('FRAME_TOO_LARGE', `request of ${payload.length} bytes exceeds ${this.opts.maxRequestBytes}`);
    }
    const timeoutMs = options.timeoutMs ?? this.opts.timeoutMs;
    const maxResponse = options.maxResponseBytes ?? this.opts.maxResponseBytes;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new NetworkError('TIMEOUT', `no response from ${peerId} in ${timeoutMs} ms`)), timeoutMs);
    const signal = AbortSignal.any([timeout.signal, this.stopController.signal]);
    let stream: Stream | undefined;
    try {
      let target;
      try {
        target = peerIdFromString(peerId);
      } catch {
        throw new NetworkError('BAD_PEER_ID', `not a peer id: ${peerId}`);
      }
      stream = await this.node.dialProtocol(target, this.opts.protocol, { signal });
      this.open.add(stream);
      stream.send(encodeFrame(payload));
      const response = readFrame(stream, maxResponse, signal);
      response.catch(() => undefined); // observed below; keeps a failed close() from leaving it unhandled
      await stream.close({ signal });
      return await response;
    } catch (err) {
      stream?.abort(err instanceof Error ? err : new Error(String(err)));
      if (err instanceof NetworkError) throw err;
      if (signal.aborted && signal.reason instanceof NetworkError) throw signal.reason;
      throw new NetworkError('REQUEST_FAILED', `request to ${peerId} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      if (stream) this.open.delete(stream);
    }
  }

  private async onInbound(stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString();
    const handler = this.handler;
    if (!handler || this.stopController.signal.aborted) {
      stream.abort(new NetworkError('NO_HANDLER', `no handler for ${this.opts.protocol}`));
      return;
    }
    if (this.opts.authorize && !this.opts.authorize(peerId)) {
      this.opts.log.debug('request from a peer that may not use the protocol', { protocol: this.opts.protocol, peer: peerId });
      stream.abort(new NetworkError('PEER_NOT_ADMITTED', `peer ${peerId} may not use ${this.opts.protocol}`));
      return;
    }
    this.open.add(stream);
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new NetworkError('TIMEOUT', 'handler timed out')), this.opts.handlerTimeoutMs);
    const signal = AbortSignal.any([timeout.signal, this.stopController.signal]);
    try {
      const request = await readFrame(stream, this.opts.maxRequestBytes, signal);
      const response = await raceAbort(handler(peerId, request), signal);
      if (response.length > this.opts.maxResponseBytes) {
        throw new NetworkError('FRAME_TOO_LARGE', `our response of ${response.length} bytes exceeds ${this.opts.maxResponseBytes}`);
      }
      stream.send(encodeFrame(response));
      await stream.close({ signal });
    } catch (err) {
      this.opts.log.debug('inbound request failed', { protocol: this.opts.protocol, peer: peerId, err: (err as Error).message });
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    } finally {
      clearTimeout(timer);
      this.open.delete(stream);
    }
  }
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
