import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { defaultConfig as yamuxDefaults } from '@chainsafe/libp2p-yamux/config';
import type { Logger } from '../log/logger.js';
import { NetworkError } from './errors.js';
import { chunkBytes, concatBytes, encodeFrame, FRAME_HEADER_BYTES } from './request-response.js';

/**
 * Acknowledged transaction push: how a node hands the transactions its clients
 * sent to its peers, and learns that a peer holds them.
 *
 * Gossip's publish "succeeds" once the message is queued for a socket, and a
 * queued message dies with the process: a node that answered a client and then
 * stopped could take the only copy of a transaction with it. Here the sender
 * opens one long-lived stream to each admitted peer and writes batches on it;
 * the peer admits each batch (the enclave checks the signatures) and answers
 * with which transactions it now holds. A node answers its client once some
 * peer holds the transaction (node/node.ts), so an acknowledged transaction
 * outlives the node that acknowledged it.
 *
 * Validators form a full mesh, so each node pushes its own batches to every
 * peer and nobody relays them: a batch crosses each link once.
 *
 * Framing: the request-response frame (4-byte big-endian length, then the
 * payload), many frames per stream. The opener writes pushes, the peer writes
 * acknowledgements, in any order (a peer admits several batches at once):
 *   push: u32 id, then the tx batch (topics.ts encodeTxBatch)
 *   ack:  u32 id, u32 count, then a bitmap of count bits (bit i: holds tx i)
 */

export interface TxPushOptions {
  protocol: string;
  /** Largest tx batch this node sends or reads (the push frame adds 4 bytes). */
  maxBatchBytes: number;
  /** How long a push waits for the peer's acknowledgement before counting it as not held. */
  ackTimeoutMs: number;
  /** Pushes awaiting acknowledgement on one stream; beyond it a push counts as not held at once. */
  maxPendingPerPeer: number;
  /** Batches a receiver admits at once from one peer; further frames wait (and the stream is paused). */
  maxConcurrentPerStream: number;
  /** Who may push to us and be pushed to (admitted peers), checked on open and on every frame. */
  authorize(peerId: string): boolean;
  /**
   * Admits a received batch; resolves with, per transaction, whether this node
   * now holds it. Throws a NetworkError PROTOCOL when the bytes are not a batch
   * (the sender is at fault: its stream is closed).
   */
  receive(peerId: string, batch: Uint8Array): Promise<boolean[]>;
  log: Logger;
}

interface Pending {
  count: number;
  timer: NodeJS.Timeout;
  resolve(held: boolean[]): void;
}

interface OutboundChannel {
  stream: Stream | undefined;
  opening: Promise<Stream | undefined> | undefined;
  pending: Map<number, Pending>;
  nextId: number;
}

const ID_BYTES = 4;
const ACK_HEADER_BYTES = 8;
/** Frames, or bytes, queued unadmitted per inbound stream before it is paused (the peer's window then stops it). */
const MAX_QUEUED_FRAMES = 64;
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/**
 * What a paused inbound stream may buffer: the peer may still send what its Yamux window allows,
 * and that window grows up to maxStreamWindowSize (16 MiB). libp2p's default of 4 MiB would have
 * the stream abort itself under a legitimate burst, just for pausing.
 */
const MAX_PAUSED_READ_BYTES = yamuxDefaults.streamOptions.maxStreamWindowSize + 64 * 1024;
/**
 * Bytes a stream may hold unsent (Yamux's default is unbounded): a peer that stops reading
 * gets its stream closed, and what it had not acknowledged counts as not held, instead of
 * this node buffering batches for it without end.
 */
const MAX_UNSENT_PUSH_BYTES = 16 * 1024 * 1024;
const MAX_UNSENT_ACK_BYTES = 1024 * 1024;

export class TxPushProtocol {
  private readonly channels = new Map<string, OutboundChannel>();
  private readonly inbound = new Set<Stream>();
  private readonly stopController = new AbortController();

  constructor(
    private readonly node: Pick<Libp2p, 'handle' | 'dialProtocol'>,
    private readonly opts: TxPushOptions,
  ) {}

  async start(): Promise<void> {
    await this.node.handle(this.opts.protocol, (stream, connection) => this.onInbound(stream, connection), {
      // One stream per peer is the norm; a few more cover a reopen racing the old stream's close.
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
    });
  }

  /** Closes every stream; pushes awaiting acknowledgement resolve as not held. */
  stop(): void {
    if (this.stopController.signal.aborted) return;
    this.stopController.abort(new NetworkError('STOPPED', 'network service stopped'));
    for (const [peer, ch] of this.channels) this.closeChannel(peer, ch, new NetworkError('STOPPED', 'network service stopped'));
    for (const s of this.inbound) s.abort(new NetworkError('STOPPED', 'network service stopped'));
    this.inbound.clear();
  }

  /** Pushes awaiting acknowledgement, per peer (for tests and status). */
  pendingCount(peerId: string): number {
    return this.channels.get(peerId)?.pending.size ?? 0;
  }

  /**
   * Pushes one encoded batch of `count` transactions to a peer. Resolves with,
   * per transaction, whether the peer acknowledged holding it; never rejects:
   * a peer that cannot be reached, times out or closes the stream holds nothing.
   */
  async push(peerId: string, batch: Uint8Array, count: number): Promise<boolean[]> {
    const none = (): boolean[] => new Array<boolean>(count).fill(false);
    if (this.stopController.signal.aborted || !this.opts.authorize(peerId)) return none();
    if (batch.length > this.opts.maxBatchBytes) return none();
    let ch = this.channels.get(peerId);
    if (!ch) {
      ch = { stream: undefined, opening: undefined, pending: new Map(), nextId: 1 };
      this.channels.set(peerId, ch);
    }
    if (ch.pending.size >= this.opts.maxPendingPerPeer) {
      this.opts.log.debug('tx push: peer has too many batches unacknowledged', { peer: peerId, pending: ch.pending.size });
      return none();
    }
    const id = ch.nextId;
    ch.nextId = ch.nextId >= 0xffffffff ? 1 : ch.nextId + 1;
    const acked = new Promise<boolean[]>((resolve) => {
      const timer = setTimeout(() => {
        ch.pending.delete(id);
        this.opts.log.debug('tx push: no acknowledgement in time', { peer: peerId, timeoutMs: this.opts.ackTimeoutMs });
        resolve(none());
      }, this.opts.ackTimeoutMs);
      timer.unref();
      ch.pending.set(id, { count, timer, resolve });
    });
    const stream = ch.stream ?? (await this.open(peerId, ch));
    if (!stream) {
      this.settle(ch, id, none());
      return acked;
    }
    if (stream.status !== 'open' || stream.writeStatus !== 'writable') {
      // Closing, its close event not seen yet: forget it now, so the next push opens a new one.
      this.closeChannel(peerId, ch, new NetworkError('STREAM_CLOSED', 'tx push stream no longer writable'));
      return acked;
    }
    const frame = new Uint8Array(ID_BYTES + batch.length);
    new DataView(frame.buffer).setUint32(0, id, false);
    frame.set(batch, ID_BYTES);
    try {
      stream.send(encodeFrame(frame));
    } catch (err) {
      this.closeChannel(peerId, ch, err instanceof Error ? err : new Error(String(err)));
    }
    return acked;
  }

  private settle(ch: OutboundChannel, id: number, held: boolean[]): void {
    const p = ch.pending.get(id);
    if (!p) return;
    ch.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(held);
  }

  /** Opens the stream to a peer once; concurrent pushes share the opening. */
  private open(peerId: string, ch: OutboundChannel): Promise<Stream | undefined> {
    ch.opening ??= (async () => {
      const signal = AbortSignal.any([AbortSignal.timeout(this.opts.ackTimeoutMs), this.stopController.signal]);
      try {
        const stream = await this.node.dialProtocol(peerIdFromString(peerId), this.opts.protocol, { signal });
        if (this.stopController.signal.aborted || this.channels.get(peerId) !== ch) {
          stream.abort(new NetworkError('STOPPED', 'channel closed while opening'));
          return undefined;
        }
        ch.stream = stream;
        stream.maxWriteBufferLength = MAX_UNSENT_PUSH_BYTES;
        const reader = new FrameReader(ACK_HEADER_BYTES + Math.ceil(this.opts.maxBatchBytes / 8));
        stream.addEventListener('message', (evt) => {
          try {
            for (const frame of reader.push(chunkBytes(evt.data))) this.onAck(ch, frame);
          } catch (err) {
            this.opts.log.debug('tx push: bad acknowledgement', { peer: peerId, err: (err as Error).message });
            this.closeChannel(peerId, ch, err as Error);
          }
        });
        stream.addEventListener('close', () => {
          if (ch.stream === stream) this.closeChannel(peerId, ch, new NetworkError('STREAM_CLOSED', 'tx push stream closed'));
        });
        return stream;
      } catch (err) {
        this.opts.log.debug('tx push: could not open a stream', { peer: peerId, err: (err as Error).message });
        this.closeChannel(peerId, ch, err as Error);
        return undefined;
      } finally {
        ch.opening = undefined;
      }
    })();
    return ch.opening;
  }

  private onAck(ch: OutboundChannel, frame: Uint8Array): void {
    if (frame.length < ACK_HEADER_BYTES) throw new NetworkError('PROTOCOL', 'acknowledgement too short');
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const id = view.getUint32(0, false);
    const count = view.getUint32(4, false);
    if (frame.length !== ACK_HEADER_BYTES + Math.ceil(count / 8)) throw new NetworkError('PROTOCOL', 'acknowledgement of the wrong length');
    const p = ch.pending.get(id);
    if (!p) return; // timed out already
    if (p.count !== count) throw new NetworkError('PROTOCOL', `acknowledgement for ${count} transactions, ${p.count} were pushed`);
    const held = new Array<boolean>(count);
    for (let i = 0; i < count; i++) held[i] = (frame[ACK_HEADER_BYTES + (i >> 3)]! & (1 << (i & 7))) !== 0;
    this.settle(ch, id, held);
  }

  /** Forgets a peer's stream; what it had not acknowledged counts as not held. */
  private closeChannel(peerId: string, ch: OutboundChannel, reason: Error): void {
    if (this.channels.get(peerId) === ch) this.channels.delete(peerId);
    const stream = ch.stream;
    ch.stream = undefined;
    if (stream && stream.status === 'open') stream.abort(reason);
    for (const [id, p] of [...ch.pending]) this.settle(ch, id, new Array<boolean>(p.count).fill(false));
  }

  private onInbound(stream: Stream, connection: Connection): void {
    const peerId = connection.remotePeer.toString();
    if (this.stopController.signal.aborted || !this.opts.authorize(peerId)) {
      this.opts.log.debug('tx push from a peer that may not push', { peer: peerId });
      stream.abort(new NetworkError('PEER_NOT_ADMITTED', `peer ${peerId} may not push transactions`));
      return;
    }
    this.inbound.add(stream);
    stream.maxWriteBufferLength = MAX_UNSENT_ACK_BYTES;
    stream.maxReadBufferLength = MAX_PAUSED_READ_BYTES;
    const reader = new FrameReader(ID_BYTES + this.opts.maxBatchBytes);
    const queue: Uint8Array[] = [];
    let queuedBytes = 0;
    let running = 0;
    let paused = false;
    const fail = (err: Error): void => {
      this.opts.log.debug('tx push stream closed', { peer: peerId, err: err.message });
      queue.length = 0;
      queuedBytes = 0;
      try {
        stream.abort(err);
      } catch {
        // already closed
      }
    };
    const next = (): void => {
      while (running < this.opts.maxConcurrentPerStream && queue.length > 0 && stream.status === 'open') {
        const frame = queue.shift()!;
        queuedBytes -= frame.length;
        running++;
        void this.admit(peerId, stream, frame)
          .catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))))
          .finally(() => {
            running--;
            flow(next);
          });
      }
      if (paused && queue.length < MAX_QUEUED_FRAMES / 2 && queuedBytes < MAX_QUEUED_BYTES / 2 && stream.status === 'open') {
        paused = false;
        flow(() => stream.resume());
      }
    };
    // Called from promise callbacks too: a stream that closes meanwhile must not make a throw nobody catches.
    const flow = (step: () => void): void => {
      try {
        step();
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    };
    stream.addEventListener('message', (evt) => {
      try {
        for (const frame of reader.push(chunkBytes(evt.data))) {
          queue.push(frame);
          queuedBytes += frame.length;
        }
      } catch (err) {
        fail(err as Error);
        return;
      }
      if (!paused && (queue.length >= MAX_QUEUED_FRAMES || queuedBytes >= MAX_QUEUED_BYTES)) {
        paused = true;
        flow(() => stream.pause());
      }
      next();
    });
    stream.addEventListener('close', () => {
      queue.length = 0;
      queuedBytes = 0;
      this.inbound.delete(stream);
    });
  }

  /** Admits one pushed batch and acknowledges it. */
  private async admit(peerId: string, stream: Stream, frame: Uint8Array): Promise<void> {
    if (frame.length < ID_BYTES) throw new NetworkError('PROTOCOL', 'push frame too short');
    // Admission lapses (a disconnect, a failed refresh) while a stream stays open: checked per batch.
    if (!this.opts.authorize(peerId)) throw new NetworkError('PEER_NOT_ADMITTED', `peer ${peerId} is no longer admitted`);
    const id = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0, false);
    const held = await this.opts.receive(peerId, frame.subarray(ID_BYTES));
    if (stream.status !== 'open' || stream.writeStatus !== 'writable') return;
    const ack = new Uint8Array(ACK_HEADER_BYTES + Math.ceil(held.length / 8));
    const view = new DataView(ack.buffer);
    view.setUint32(0, id, false);
    view.setUint32(4, held.length, false);
    held.forEach((h, i) => {
      if (h) ack[ACK_HEADER_BYTES + (i >> 3)]! |= 1 << (i & 7);
    });
    stream.send(encodeFrame(ack));
  }
}

/**
 * Splits a byte stream into length-prefixed frames. Throws FRAME_TOO_LARGE as
 * soon as a header announces more than `maxBytes` (the body is never buffered).
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private have = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Uint8Array): Uint8Array[] {
    this.chunks.push(chunk);
    this.have += chunk.length;
    const frames: Uint8Array[] = [];
    for (;;) {
      if (this.have < FRAME_HEADER_BYTES) break;
      const head = this.peek(FRAME_HEADER_BYTES);
      const need = new DataView(head.buffer, head.byteOffset, FRAME_HEADER_BYTES).getUint32(0, false);
      if (need > this.maxBytes) throw new NetworkError('FRAME_TOO_LARGE', `frame of ${need} bytes exceeds the limit of ${this.maxBytes}`);
      if (this.have < FRAME_HEADER_BYTES + need) break;
      const whole = this.take(FRAME_HEADER_BYTES + need);
      frames.push(whole.subarray(FRAME_HEADER_BYTES));
    }
    return frames;
  }

  /** The first n buffered bytes, without consuming them (joins the first chunks if needed). */
  private peek(n: number): Uint8Array {
    if (this.chunks[0]!.length < n) this.chunks = [concatBytes(this.chunks, this.have)];
    return this.chunks[0]!;
  }

  private take(n: number): Uint8Array {
    let first = this.chunks[0]!;
    if (first.length < n) {
      // Join only as many chunks as the frame needs.
      let k = 0;
      let len = 0;
      while (len < n) len += this.chunks[k++]!.length;
      first = concatBytes(this.chunks.slice(0, k), len);
      this.chunks.splice(0, k, first);
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.have -= n;
    return out;
  }
}
