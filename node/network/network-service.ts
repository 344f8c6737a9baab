import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { createLibp2p } from 'libp2p';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { gossipsub, type GossipSub, type Message } from '@libp2p/gossipsub';
import { createTopicScoreParams } from '@libp2p/gossipsub/score';
import type { Libp2p, MultiaddrConnection, PeerId, PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { SignedTx } from '../../consensus/index.js';
import type { Logger } from '../log/logger.js';
import { restrictGossipToAdmitted, type AdmittedOnlyCounters } from './admitted-only-gossip.js';
import { NetworkError } from './errors.js';
import { InboundGuard, type InboundGuardStats } from './inbound-guard.js';
import { RequestResponseProtocol, type RequestHandler, type RequestOptions } from './request-response.js';
import { admissionProtocol, consensusTopic, secretProtocol, splitTxBatches, syncProtocol, txPushProtocol, txTopic } from './topics.js';
import { TxPushProtocol } from './tx-push.js';
import { coalescedTcp } from './coalesced-tcp.js';
import { installYamuxWindowBatching } from './yamux-window.js';
import type { Metrics } from '../metrics/metrics.js';
import {
  defaultConsensusValidator,
  normalizeOutcome,
  toTopicResult,
  validateTxBatch,
  type ConsensusValidator,
  type ValidationOutcome,
  type Verdict,
} from './validation.js';

export interface NetworkServiceOptions {
  chainId: string;
  privateKey: PrivateKey;
  /** Multiaddrs to listen on, e.g. /ip4/127.0.0.1/tcp/0. */
  listen: string[];
  /** Multiaddrs with /p2p/<id> of the configured peers. */
  peers: string[];
  /** Only these peer ids may connect (the genesis node identities). */
  allowedPeerIds: string[];
  /**
   * Is this peer admitted now? Gossip (both ways) and sync requests (both ways)
   * are exchanged only with admitted peers; the admission protocol is open to every
   * connected allowed peer. Default: every allowed peer (tools and tests without admission).
   */
  isAdmitted?: (peerId: string) => boolean;
  log: Logger;
  /** Counts gossip verdicts by topic kind; default none. */
  metrics?: Pick<Metrics, 'gossip'>;
  /** Largest tx gossip message (default 1 MiB). */
  maxTxBatchBytes?: number;
  /** Most transactions in one tx gossip message (default 5,000). */
  maxTxsPerBatch?: number;
  /** Largest consensus gossip message (default 1 MiB). */
  maxConsensusBytes?: number;
  /** Consensus message validator (default: JSON object with a string `type`). */
  consensusValidator?: ConsensusValidator;
  /** Extra, possibly expensive, tx batch check run after the built-in stateless checks (e.g. signatures). */
  txBatchValidator?: (txs: SignedTx[], fromPeerId: string) => Verdict | Promise<Verdict>;
  /**
   * Whether a tx batch accepted from a peer is relayed to our other peers (default true, gossip as usual).
   * False where every node publishes to every peer itself (validators form a full mesh, and gossipsub's
   * flood publish sends our own batches to all of them): relayed copies would then be duplicates, each
   * paying protobuf, Yamux and Noise on its link. The batch is still delivered to onTxBatch handlers.
   */
  relayTxs?: boolean;
  /**
   * Does this node hold the transaction now (its mempool)? Asked after a pushed batch was admitted,
   * to acknowledge each transaction (pushTxs). Default: every transaction of an accepted batch.
   */
  holdsTx?: (tx: SignedTx) => boolean;
  /**
   * How long a publish waits for a subscriber before failing with NO_PEERS, and a push for an
   * admitted peer and then for its acknowledgement (default 5 s).
   */
  publishWaitMs?: number;
  /** Most gossip messages queued per topic while waiting for subscribers (default 1,024). */
  maxQueuedMessages?: number;
  /** First redial delay; doubles per failure up to redialMaxMs (defaults 250 ms, 5 s). */
  redialBaseMs?: number;
  redialMaxMs?: number;
  /** How long the higher peer id waits for the lower one to dial before dialling itself (default 2 s). */
  dialGraceMs?: number;
  /** Unauthenticated inbound connections at once, in total and per remote host (defaults 64 and 8); see inbound-guard.ts. */
  maxPendingInbound?: number;
  maxPendingInboundPerHost?: number;
  /** How long an inbound connection may take from TCP accept to an authenticated, multiplexed connection (default 3 s). */
  inboundUpgradeTimeoutMs?: number;
  /** Request/response limits (sync; admission requests are capped at ADMISSION_MAX_REQUEST_BYTES). */
  maxRequestBytes?: number;
  maxResponseBytes?: number;
  requestTimeoutMs?: number;
}

export interface PeerInfo {
  id: string;
  addrs: string[];
}

export interface TxBatchEvent {
  txs: SignedTx[];
  /** The peer that relayed the message to us (not necessarily its origin). */
  from: string;
}

export interface ConsensusEvent {
  data: Uint8Array;
  from: string;
}

export interface NetworkCounters {
  accepted: number;
  ignored: number;
  rejected: number;
  /** rejections and ignores by reason */
  reasons: Record<string, number>;
}

interface ConfiguredPeer {
  id: string;
  addrs: Multiaddr[];
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  dialing: boolean;
}

interface Outgoing {
  data: Uint8Array;
  deadline: number;
  resolve: (recipients: number) => void;
  reject: (err: Error) => void;
}

type PubsubServices = { pubsub: GossipSub; identify: unknown; ping: unknown };

const MiB = 1024 * 1024;
export const PUBLISH_THRESHOLD = -50;
export const GRAYLIST_THRESHOLD = -80;
/**
 * The application score of a peer that is not admitted: below the gossip (-10) and
 * publish (-50) thresholds even with the topic scores at their cap (+10), so gossipsub
 * keeps it out of the mesh, publishes nothing to it and ignores its IHAVE/IWANT; but
 * above the graylist (-80), because a graylisted peer's RPCs are dropped whole, its
 * subscriptions included, and gossipsub would not know its topics once it is admitted.
 */
export const NOT_ADMITTED_SCORE = -65;
const TOPIC_SCORE_CAP = 10;
/** An admission challenge is a short JSON object (see node/admission); more is not read. */
export const ADMISSION_MAX_REQUEST_BYTES = 4096;
/** A secret-release request carries a claim with evidence (certificate chains included); more is not read. */
export const SECRET_MAX_REQUEST_BYTES = 256 * 1024;

/**
 * The node's libp2p network: gated connections to the consortium's node
 * identities, gossip of tx batches and consensus messages with validation before
 * relay, and request/response protocols for sync and admission.
 *
 * Events: 'peer:connect' (PeerInfo), 'peer:disconnect' ({ id }).
 */
export class NetworkService extends EventEmitter {
  readonly peerId: string;
  readonly txTopic: string;
  readonly consensusTopic: string;
  private readonly allowed: Set<string>;
  private readonly isAdmitted: (peerId: string) => boolean;
  private readonly inboundGuard: InboundGuard;
  private readonly maxPendingInbound: number;
  private admittedOnly: AdmittedOnlyCounters = { withheld: 0, dropped: 0 };
  private readonly maxTxBatchBytes: number;
  private readonly maxTxsPerBatch: number;
  private readonly maxConsensusBytes: number;
  private readonly publishWaitMs: number;
  private readonly maxQueued: number;
  private readonly redialBaseMs: number;
  private readonly redialMaxMs: number;
  private readonly dialGraceMs: number;
  private consensusValidator: ConsensusValidator;
  private txBatchValidator: NetworkServiceOptions['txBatchValidator'];
  private readonly log: Logger;
  private node: Libp2p<PubsubServices> | undefined;
  private sync: RequestResponseProtocol | undefined;
  private admission: RequestResponseProtocol | undefined;
  private syncHandler: RequestHandler | undefined;
  private admissionHandler: RequestHandler | undefined;
  private secret: RequestResponseProtocol | undefined;
  private secretHandler: RequestHandler | undefined;
  private txPush: TxPushProtocol | undefined;
  private readonly configured = new Map<string, ConfiguredPeer>();
  private readonly queues = new Map<string, Outgoing[]>();
  private readonly pumping = new Set<string>();
  private readonly parsedTxs = new WeakMap<object, SignedTx[]>();
  private readonly txHandlers = new Set<(e: TxBatchEvent) => unknown>();
  private readonly consensusHandlers = new Set<(e: ConsensusEvent) => unknown>();
  private readonly subscriberWaiters = new Set<() => void>();
  private readonly counters = new Map<string, NetworkCounters>();
  private state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' = 'new';
  private stopPromise: Promise<void> | undefined;

  constructor(private readonly opts: NetworkServiceOptions) {
    super();
    this.peerId = peerIdFromPrivateKey(opts.privateKey).toString();
    this.txTopic = txTopic(opts.chainId);
    this.consensusTopic = consensusTopic(opts.chainId);
    this.allowed = new Set(opts.allowedPeerIds);
    this.isAdmitted = opts.isAdmitted ?? ((id) => this.allowed.has(id));
    this.maxPendingInbound = opts.maxPendingInbound ?? 64;
    this.inboundGuard = new InboundGuard({
      maxPending: this.maxPendingInbound,
      maxPendingPerHost: opts.maxPendingInboundPerHost ?? 8,
      preferredHosts: hostsOf(opts.peers),
    });
    this.maxTxBatchBytes = opts.maxTxBatchBytes ?? MiB;
    this.maxTxsPerBatch = opts.maxTxsPerBatch ?? 5000;
    this.maxConsensusBytes = opts.maxConsensusBytes ?? MiB;
    this.publishWaitMs = opts.publishWaitMs ?? 5000;
    this.maxQueued = opts.maxQueuedMessages ?? 1024;
    this.redialBaseMs = opts.redialBaseMs ?? 250;
    // Short: a configured peer that comes back is dialled within seconds, whatever blocks its own dials to us.
    this.redialMaxMs = opts.redialMaxMs ?? 5000;
    this.dialGraceMs = opts.dialGraceMs ?? 2000;
    this.consensusValidator = opts.consensusValidator ?? defaultConsensusValidator(opts.chainId);
    this.txBatchValidator = opts.txBatchValidator;
    this.log = opts.log.child({ component: 'network' });
    for (const t of [this.txTopic, this.consensusTopic]) {
      this.counters.set(t, { accepted: 0, ignored: 0, rejected: 0, reasons: {} });
      this.queues.set(t, []);
    }
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (this.state !== 'new') throw new NetworkError('PROTOCOL', `network service cannot start from state ${this.state}`);
    this.state = 'starting';
    const allowed = this.allowed;
    const isAllowed = (p: PeerId): boolean => allowed.has(p.toString());
    const guard = this.inboundGuard;
    const topicParams = createTopicScoreParams({
      topicWeight: 1,
      timeInMeshWeight: 0.01,
      timeInMeshQuantum: 1000,
      timeInMeshCap: 100,
      firstMessageDeliveriesWeight: 0.5,
      firstMessageDeliveriesDecay: 0.9,
      firstMessageDeliveriesCap: 20,
      // A consortium chain is idle at times: do not punish mesh peers for quiet periods.
      meshMessageDeliveriesWeight: 0,
      meshFailurePenaltyWeight: 0,
      // P4: score drops by 10 × (invalid messages)²; 3 invalid messages cross the graylist threshold (-80).
      invalidMessageDeliveriesWeight: -10,
      invalidMessageDeliveriesDecay: 0.99,
    });
    installYamuxWindowBatching();
    const hardCap = Math.max(this.maxTxBatchBytes, this.maxConsensusBytes);
    const node = await createLibp2p({
      privateKey: this.opts.privateKey,
      addresses: { listen: this.opts.listen },
      transports: [coalescedTcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: {
        // libp2p's own inbound limits refuse newcomers once full (a global count of 10, 5 connections a
        // second per IP), which lets a few idle sockets lock members out. The inbound guard decides instead:
        // these are set so they never bind before it does.
        maxIncomingPendingConnections: 4 * this.maxPendingInbound,
        inboundConnectionThreshold: Number.MAX_SAFE_INTEGER,
        inboundUpgradeTimeout: this.opts.inboundUpgradeTimeoutMs ?? 3000,
      },
      connectionGater: {
        denyDialPeer: (p) => !isAllowed(p),
        // Raw sockets, before any byte of the handshake: the inbound guard may displace an older one.
        denyInboundConnection: (maConn) => !this.offerInbound(maConn),
        denyInboundEncryptedConnection: (p, maConn) => {
          guard.settle(maConn); // authenticated (or about to be dropped): no longer pending
          return !isAllowed(p);
        },
        denyOutboundEncryptedConnection: (p) => !isAllowed(p),
        denyInboundUpgradedConnection: (p) => !isAllowed(p),
        denyOutboundUpgradedConnection: (p) => !isAllowed(p),
      },
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({
          globalSignaturePolicy: 'StrictNoSign',
          msgIdFn: (msg) => createHash('sha256').update(msg.data).digest(),
          allowPublishToZeroTopicPeers: false,
          ignoreDuplicatePublishError: true,
          emitSelf: false,
          doPX: false,
          fallbackToFloodsub: false,
          // Senders of oversized messages get a validator Reject (and the score penalty) up to 2× the cap;
          // beyond that the RPC is dropped at decoding.
          maxInboundDataLength: Math.max(4 * MiB, 2 * hardCap + 64 * 1024),
          allowedTopics: [this.txTopic, this.consensusTopic],
          scoreParams: {
            IPColocationFactorWeight: 0, // every node of a devnet shares 127.0.0.1; identities are gated anyway
            topics: { [this.txTopic]: topicParams, [this.consensusTopic]: topicParams },
            topicScoreCap: TOPIC_SCORE_CAP,
            appSpecificScore: (id) => (this.isAdmitted(id) ? 0 : NOT_ADMITTED_SCORE),
            appSpecificWeight: 1,
          },
          scoreThresholds: { gossipThreshold: -10, publishThreshold: PUBLISH_THRESHOLD, graylistThreshold: GRAYLIST_THRESHOLD },
        }),
      },
    });
    this.node = node as unknown as Libp2p<PubsubServices>;
    const pubsub = this.node.services.pubsub;
    // Throws INTERNALS_CHANGED (start fails) if the pinned gossipsub's send/receive paths moved.
    this.admittedOnly = restrictGossipToAdmitted(pubsub, (id) => this.isAdmitted(id));
    pubsub.topicValidators.set(this.txTopic, (peer, msg) => this.validateTx(peer, msg));
    pubsub.topicValidators.set(this.consensusTopic, (peer, msg) => this.validateConsensus(peer, msg));
    pubsub.addEventListener('gossipsub:message', (evt) => this.onGossip(evt.detail.propagationSource, evt.detail.msg));
    pubsub.addEventListener('subscription-change', () => this.wakeSubscriberWaiters());
    node.addEventListener('peer:connect', (evt) => this.onPeerConnect(evt.detail));
    node.addEventListener('connection:open', (evt) => this.dedupeConnections(evt.detail.remotePeer));
    node.addEventListener('peer:disconnect', (evt) => this.onPeerDisconnect(evt.detail));

    const rr = {
      maxRequestBytes: this.opts.maxRequestBytes ?? MiB,
      maxResponseBytes: this.opts.maxResponseBytes ?? 16 * MiB,
      timeoutMs: this.opts.requestTimeoutMs ?? 10_000,
      handlerTimeoutMs: this.opts.requestTimeoutMs ?? 10_000,
      maxInboundStreams: 32,
      log: this.log,
    };
    this.sync = new RequestResponseProtocol(node, { ...rr, protocol: syncProtocol(this.opts.chainId), authorize: (id) => this.isAdmitted(id) });
    this.admission = new RequestResponseProtocol(node, {
      ...rr,
      protocol: admissionProtocol(this.opts.chainId),
      maxRequestBytes: ADMISSION_MAX_REQUEST_BYTES,
    });
    // Attested key release: only between admitted peers (the enclaves check each other's evidence again themselves).
    this.secret = new RequestResponseProtocol(node, {
      ...rr,
      protocol: secretProtocol(this.opts.chainId),
      maxRequestBytes: SECRET_MAX_REQUEST_BYTES,
      maxResponseBytes: 64 * 1024,
      maxInboundStreams: 4,
      authorize: (id) => this.isAdmitted(id),
    });
    this.txPush = new TxPushProtocol(node, {
      protocol: txPushProtocol(this.opts.chainId),
      maxBatchBytes: this.maxTxBatchBytes,
      ackTimeoutMs: this.publishWaitMs,
      maxPendingPerPeer: 256,
      maxConcurrentPerStream: 8,
      authorize: (id) => this.allowed.has(id) && this.isAdmitted(id),
      receive: (from, batch) => this.receivePushedTxs(from, batch),
      log: this.log,
    });
    this.sync.setHandler(this.syncHandler);
    this.admission.setHandler(this.admissionHandler);
    this.secret.setHandler(this.secretHandler);

    await node.start();
    await this.sync.start();
    await this.admission.start();
    await this.secret.start();
    await this.txPush.start();
    pubsub.subscribe(this.txTopic);
    pubsub.subscribe(this.consensusTopic);
    this.state = 'started';
    this.log.info('network started', { peerId: this.peerId, addrs: this.addresses() });
    for (const addr of this.opts.peers) this.addPeer(addr);
  }

  /** Stops everything; idempotent, concurrent calls share one stop. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    const wasRunning = this.state === 'started' || this.state === 'starting';
    this.state = 'stopping';
    for (const p of this.configured.values()) clearTimeout(p.timer);
    this.configured.clear();
    const stopped = new NetworkError('STOPPED', 'network service stopped');
    for (const q of this.queues.values()) for (const o of q.splice(0)) o.reject(stopped);
    this.wakeSubscriberWaiters();
    this.sync?.stop();
    this.admission?.stop();
    this.secret?.stop();
    this.txPush?.stop();
    if (this.node && wasRunning) {
      try {
        await this.node.stop();
      } catch (err) {
        this.log.warn('libp2p stop failed', { err: (err as Error).message });
      }
    }
    this.state = 'stopped';
    this.removeAllListeners();
  }

  private requireNode(): Libp2p<PubsubServices> {
    if (this.state !== 'started' || !this.node) {
      throw new NetworkError(this.state === 'new' || this.state === 'starting' ? 'NOT_STARTED' : 'STOPPED', `network service is ${this.state}`);
    }
    return this.node;
  }

  /** The addresses this node listens on, each with /p2p/<id>. */
  addresses(): string[] {
    return this.node ? this.node.getMultiaddrs().map((a) => a.toString()) : [];
  }

  // ---------------------------------------------------------------- peers

  /** Connected peers with the remote addresses of their connections. */
  peers(): PeerInfo[] {
    if (!this.node) return [];
    const byPeer = new Map<string, string[]>();
    for (const c of this.node.getConnections()) {
      const id = c.remotePeer.toString();
      const list = byPeer.get(id) ?? [];
      list.push(c.remoteAddr.toString());
      byPeer.set(id, list);
    }
    return [...byPeer].map(([id, addrs]) => ({ id, addrs }));
  }

  /**
   * A new inbound TCP connection, before its handshake: the inbound guard takes
   * it (possibly closing a displaced pending one) or refuses it. It stops
   * counting once authenticated or closed.
   */
  private offerInbound(maConn: MultiaddrConnection): boolean {
    const guard = this.inboundGuard;
    const ip = maConn.remoteAddr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value ?? 'unknown';
    // The TCP transport's socket (an internal of @libp2p/tcp); without it a displacement goes by age alone.
    const socket = (maConn as unknown as { socket?: { bytesRead?: unknown } }).socket;
    const accepted = guard.offer(maConn, {
      host: ip,
      bytesReceived: () => (typeof socket?.bytesRead === 'number' ? socket.bytesRead : 0),
      close: () => maConn.abort(new NetworkError('DISPLACED', 'unauthenticated inbound connection displaced by a newer one')),
    });
    if (accepted) maConn.addEventListener('close', () => guard.settle(maConn), { once: true });
    else this.log.debug('inbound connection refused', { from: ip });
    return accepted;
  }

  /** Unauthenticated inbound connections now, and the guard's counts so far. */
  inboundStats(): InboundGuardStats {
    return this.inboundGuard.stats();
  }

  /**
   * The admission of a peer changed: let gossipsub see its new score at once
   * (it caches scores for a heartbeat), and wake publishes waiting for an
   * admitted subscriber. The gossip filter itself asks isAdmitted on every RPC.
   */
  admissionChanged(peerId: string): void {
    const score = (this.node?.services.pubsub as unknown as { score?: { scoreCache?: unknown } } | undefined)?.score;
    if (score?.scoreCache instanceof Map) score.scoreCache.delete(peerId);
    this.wakeSubscriberWaiters();
  }

  /** Connections per peer id (a test hook for the lower-id-dials rule). */
  connectionCount(peerId: string): number {
    if (!this.node) return 0;
    return this.node.getConnections(peerIdFromString(peerId)).length;
  }

  /**
   * Adds a configured peer (multiaddr with /p2p/<id>) and keeps a connection to
   * it: the lower peer id dials at once; the higher waits `dialGraceMs` for the
   * lower one and then dials itself; after a drop the dialer redials with
   * exponential backoff.
   */
  addPeer(addr: string): void {
    this.requireNode();
    const ma = multiaddr(addr);
    const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value;
    if (id === undefined) throw new NetworkError('BAD_PEER_ID', `peer address has no /p2p/<id>: ${addr}`);
    if (id === this.peerId) return;
    if (!this.allowed.has(id)) {
      this.log.warn('configured peer is not in the allow list; not dialling', { peer: id });
      return;
    }
    const existing = this.configured.get(id);
    if (existing) {
      if (!existing.addrs.some((a) => a.equals(ma))) existing.addrs.push(ma);
      return;
    }
    const peer: ConfiguredPeer = { id, addrs: [ma], attempt: 0, timer: undefined, dialing: false };
    this.configured.set(id, peer);
    this.scheduleDial(peer);
  }

  /**
   * The consortium's nodes changed (governance added or removed a validator):
   * only these may connect from now on. A node that left is disconnected.
   */
  setAllowedPeers(ids: readonly string[]): void {
    const next = new Set(ids);
    const gone = [...this.allowed].filter((id) => !next.has(id));
    this.allowed.clear();
    for (const id of next) this.allowed.add(id);
    for (const id of gone) {
      this.log.info('peer is no longer a member of the consortium; disconnecting', { peer: id });
      const peer = this.configured.get(id);
      if (peer) {
        clearTimeout(peer.timer);
        this.configured.delete(id);
      }
      this.node?.hangUp(peerIdFromString(id)).catch(() => {});
    }
  }

  /** Dials an address once and waits for the connection (throws on refusal). */
  async connect(addr: string, timeoutMs = 5000): Promise<void> {
    const node = this.requireNode();
    await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(timeoutMs) });
  }

  private weDialFirst(id: string): boolean {
    return this.peerId < id;
  }

  private scheduleDial(peer: ConfiguredPeer): void {
    if (this.state !== 'started' || peer.timer) return;
    const backoff = peer.attempt === 0 ? 0 : Math.min(this.redialMaxMs, this.redialBaseMs * 2 ** (peer.attempt - 1));
    const jitter = backoff * 0.2 * Math.random();
    const delay = backoff + jitter + (this.weDialFirst(peer.id) ? 0 : this.dialGraceMs);
    peer.timer = setTimeout(() => {
      peer.timer = undefined;
      void this.dialConfigured(peer);
    }, delay);
    peer.timer.unref();
  }

  private async dialConfigured(peer: ConfiguredPeer): Promise<void> {
    const node = this.node;
    if (this.state !== 'started' || !node || this.configured.get(peer.id) !== peer || peer.dialing) return;
    if (node.getConnections(peerIdFromString(peer.id)).length > 0) return;
    peer.dialing = true;
    try {
      await node.dial(peer.addrs, { signal: AbortSignal.timeout(5000) });
      peer.attempt = 0;
    } catch (err) {
      peer.attempt++;
      this.log.debug('dial failed', { peer: peer.id, attempt: peer.attempt, err: (err as Error).message });
      this.scheduleDial(peer);
    } finally {
      peer.dialing = false;
    }
  }

  private onPeerConnect(peer: PeerId): void {
    const id = peer.toString();
    const conf = this.configured.get(id);
    if (conf) {
      conf.attempt = 0;
      clearTimeout(conf.timer);
      conf.timer = undefined;
    }
    const info = this.peers().find((p) => p.id === id) ?? { id, addrs: [] };
    this.log.info('peer connected', { peer: id, direction: this.node?.getConnections(peer)[0]?.direction });
    this.emitSafe('peer:connect', info);
  }

  /**
   * Simultaneous dials can still leave two connections to one peer. Both sides
   * keep the connection dialled by the lower peer id (else the oldest) and close
   * the rest, so they agree without talking.
   */
  private dedupeConnections(peer: PeerId): void {
    const node = this.node;
    if (!node || this.state !== 'started') return;
    const conns = node.getConnections(peer).filter((c) => c.status === 'open');
    if (conns.length <= 1) return;
    const wanted = this.weDialFirst(peer.toString()) ? 'outbound' : 'inbound';
    const keep = conns.find((c) => c.direction === wanted) ?? conns.reduce((a, b) => (a.timeline.open <= b.timeline.open ? a : b));
    for (const c of conns) {
      if (c === keep) continue;
      this.log.debug('closing duplicate connection', { peer: peer.toString(), direction: c.direction });
      c.close().catch((err: unknown) => c.abort(err instanceof Error ? err : new Error(String(err))));
    }
  }

  private onPeerDisconnect(peer: PeerId): void {
    const id = peer.toString();
    this.log.info('peer disconnected', { peer: id });
    this.emitSafe('peer:disconnect', { id });
    const conf = this.configured.get(id);
    if (conf && this.state === 'started') {
      conf.attempt = Math.max(conf.attempt, 1);
      this.scheduleDial(conf);
    }
  }

  private emitSafe(event: string, arg: unknown): void {
    try {
      this.emit(event, arg);
    } catch (err) {
      this.log.error('network event listener threw', { event, err: (err as Error).message });
    }
  }

  // ---------------------------------------------------------------- gossip: publish

  /**
   * Gossips transactions, split into messages of at most maxTxBatchBytes /
   * maxTxsPerBatch. Resolves with the number of messages sent. Rejects with
   * TOO_LARGE if a single transaction cannot fit a message, QUEUE_FULL when the
   * backlog is at its cap, NO_PEERS when no subscriber appears in publishWaitMs.
   */
  async publishTxBatch(txs: SignedTx[]): Promise<number> {
    this.requireNode();
    if (txs.length === 0) return 0;
    const { batches, tooLarge } = splitTxBatches(this.opts.chainId, txs, this.maxTxBatchBytes, this.maxTxsPerBatch);
    if (tooLarge.length > 0) {
      throw new NetworkError('TOO_LARGE', `${tooLarge.length} transaction(s) exceed the gossip message cap of ${this.maxTxBatchBytes} bytes`);
    }
    await Promise.all(batches.map((b) => this.enqueue(this.txTopic, b)));
    return batches.length;
  }

  /**
   * Hands transactions to every admitted peer (tx-push.ts) and resolves with,
   * per transaction, whether at least `holders` peers (default 1) acknowledged
   * holding it. Waits up to publishWaitMs for a first admitted peer, and as long
   * for acknowledgements; resolves early once every transaction is held by
   * enough peers. Never rejects for a peer's failure: what too few peers hold
   * is `false`, for the caller to push again. Throws TOO_LARGE if a single
   * transaction cannot fit a batch.
   */
  async pushTxs(txs: SignedTx[], options: { holders?: number } = {}): Promise<boolean[]> {
    this.requireNode();
    const wanted = Math.max(1, options.holders ?? 1);
    const holders = new Array<number>(txs.length).fill(0);
    if (txs.length === 0) return [];
    const { batches, counts, tooLarge } = splitTxBatches(this.opts.chainId, txs, this.maxTxBatchBytes, this.maxTxsPerBatch);
    if (tooLarge.length > 0) throw new NetworkError('TOO_LARGE', `${tooLarge.length} transaction(s) exceed the batch cap of ${this.maxTxBatchBytes} bytes`);
    const peers = await this.pushTargets();
    let offset = 0;
    if (peers.length > 0) {
      await Promise.all(
        batches.map((batch, b) => {
          const start = offset;
          const count = counts[b]!;
          offset += count;
          return new Promise<void>((resolve) => {
            let waiting = peers.length;
            let done = false;
            const answered = (flags: boolean[]): void => {
              flags.forEach((f, i) => {
                if (f) holders[start + i]!++;
              });
              waiting--;
              if (done) return;
              if (waiting === 0 || holders.slice(start, start + count).every((n) => n >= wanted)) {
                done = true;
                resolve();
              }
            };
            // push() does not reject; if it ever did, that peer holds nothing (and this wait still ends).
            for (const peer of peers) void this.txPush!.push(peer, batch, count).then(answered, () => answered([]));
          });
        }),
      );
    }
    return holders.map((n) => n >= wanted);
  }

  /** Admitted, connected peers to push to; waits up to publishWaitMs for one if there are other validators at all. */
  private async pushTargets(): Promise<string[]> {
    const node = this.requireNode();
    const targets = (): string[] =>
      [...this.allowed].filter((id) => id !== this.peerId && this.isAdmitted(id) && node.getConnections(peerIdFromString(id)).length > 0);
    const deadline = Date.now() + this.publishWaitMs;
    for (;;) {
      const now = targets();
      if (now.length > 0 || this.state !== 'started') return now;
      if (![...this.allowed].some((id) => id !== this.peerId)) return now; // a consortium of one
      const remaining = deadline - Date.now();
      if (remaining <= 0) return now;
      // Woken by admission changes; connections alone do not admit a peer.
      await this.waitForSubscribers(Math.min(remaining, 250));
    }
  }

  /** A batch a peer pushed: the same checks as gossip, admitted, then acknowledged per transaction. */
  private async receivePushedTxs(from: string, data: Uint8Array): Promise<boolean[]> {
    const parsed = validateTxBatch(data, this.opts.chainId, { maxBytes: this.maxTxBatchBytes, maxTxs: this.maxTxsPerBatch });
    if (parsed.verdict !== 'accept') {
      // On our chain's own protocol, a batch that is not one is the sender's fault, whatever gossip would say.
      this.count(this.txTopic, { verdict: 'reject', reason: parsed.reason }, from);
      throw new NetworkError('PROTOCOL', `pushed batch refused: ${parsed.reason}`);
    }
    const txs = parsed.value!;
    let outcome: ValidationOutcome<SignedTx[]> = parsed;
    try {
      if (this.txBatchValidator) {
        const extra = await this.txBatchValidator(txs, from);
        if (extra !== 'accept') outcome = { verdict: extra, reason: 'tx_batch_validator' };
      }
    } catch (err) {
      this.log.error('tx batch validator threw', { err: (err as Error).message });
      outcome = { verdict: 'ignore', reason: 'validator_error' };
    }
    this.count(this.txTopic, outcome, from);
    if (outcome.verdict === 'accept') for (const h of this.txHandlers) this.callHandler(h, { txs, from });
    const holds = this.opts.holdsTx;
    return txs.map((tx) => (holds ? holds(tx) : outcome.verdict === 'accept'));
  }

  /** Gossips one consensus message. Resolves with the number of peers it was sent to. */
  publishConsensus(data: Uint8Array): Promise<number> {
    this.requireNode();
    if (data.length > this.maxConsensusBytes) {
      return Promise.reject(new NetworkError('TOO_LARGE', `consensus message of ${data.length} bytes exceeds ${this.maxConsensusBytes}`));
    }
    return this.enqueue(this.consensusTopic, data);
  }

  /**
   * Publishes raw bytes on one of our topics without any local check. For tests
   * and tools that must exercise peers' validation; never used by the node itself.
   */
  publishRaw(topic: 'tx' | 'consensus', data: Uint8Array): Promise<number> {
    this.requireNode();
    return this.enqueue(topic === 'tx' ? this.txTopic : this.consensusTopic, data);
  }

  /**
   * Pushes raw bytes to a peer as one batch of `count` transactions, without any
   * local check. For tests and tools that must exercise peers' validation.
   */
  pushRaw(peerId: string, data: Uint8Array, count: number): Promise<boolean[]> {
    this.requireNode();
    return this.txPush!.push(peerId, data, count);
  }

  /** Pushed batches a peer has not acknowledged yet. */
  pendingPushes(peerId: string): number {
    return this.txPush?.pendingCount(peerId) ?? 0;
  }

  /** Peer ids known to be subscribed to one of our topics. */
  subscribers(topic: 'tx' | 'consensus'): string[] {
    if (!this.node || this.state !== 'started') return [];
    return this.node.services.pubsub.getSubscribers(topic === 'tx' ? this.txTopic : this.consensusTopic).map((p) => p.toString());
  }

  /** Number of messages waiting to be published, per topic. */
  backlog(): { tx: number; consensus: number } {
    return { tx: this.queues.get(this.txTopic)!.length, consensus: this.queues.get(this.consensusTopic)!.length };
  }

  private enqueue(topic: string, data: Uint8Array): Promise<number> {
    const queue = this.queues.get(topic)!;
    if (queue.length >= this.maxQueued) {
      return Promise.reject(new NetworkError('QUEUE_FULL', `gossip backlog for ${topic} is at its cap of ${this.maxQueued}`));
    }
    return new Promise<number>((resolve, reject) => {
      queue.push({ data, deadline: Date.now() + this.publishWaitMs, resolve, reject });
      if (!this.pumping.has(topic)) {
        this.pumping.add(topic);
        void this.pump(topic).finally(() => this.pumping.delete(topic));
      }
    });
  }

  /** One publish loop per topic: waits for subscribers, publishes in order, yields after every message. */
  private async pump(topic: string): Promise<void> {
    const queue = this.queues.get(topic)!;
    while (queue.length > 0 && this.state === 'started' && this.node) {
      const item = queue[0]!;
      const pubsub = this.node.services.pubsub;
      const subscribers = pubsub.getSubscribers(topic).length;
      if (subscribers === 0 || !this.hasReadySubscriber(topic)) {
        const remaining = item.deadline - Date.now();
        if (remaining <= 0) {
          queue.shift();
          item.reject(new NetworkError('NO_PEERS', `no peer subscribed to ${topic} within ${this.publishWaitMs} ms`));
          continue;
        }
        // No subscriber yet: wake on the next subscription change. Subscribers known but our
        // outbound stream to them not open yet: poll briefly (no event for that).
        await this.waitForSubscribers(subscribers === 0 ? remaining : Math.min(remaining, 20));
        continue;
      }
      try {
        const res = await pubsub.publish(topic, item.data);
        queue.shift();
        item.resolve(res.recipients.length);
      } catch (err) {
        const msg = (err as Error).message;
        if (msg.includes('NoPeersSubscribedToTopic') && Date.now() < item.deadline) {
          // Subscriptions known but no peer above the publish score threshold yet: retry shortly.
          await new Promise((r) => setTimeout(r, 25).unref());
        } else {
          queue.shift();
          item.reject(new NetworkError(msg.includes('NoPeersSubscribedToTopic') ? 'NO_PEERS' : 'PUBLISH_FAILED', `publish on ${topic} failed: ${msg}`, { cause: err }));
        }
      }
      // No backpressure in gossipsub: give the event loop (and the sockets) a turn after every message.
      await yieldToLoop();
    }
  }

  /**
   * gossipsub.publish() "succeeds" with zero recipients when the subscriber's
   * outbound stream is not open yet (the message is then lost and marked seen),
   * so wait for an admitted subscriber with an open outbound stream and a score
   * above the publish threshold. Reads gossipsub internals; falls back to "ready" if they change.
   */
  private hasReadySubscriber(topic: string): boolean {
    const pubsub = this.node!.services.pubsub as unknown as {
      getSubscribers(t: string): PeerId[];
      streamsOutbound?: Map<string, unknown>;
      getScore?(id: string): number;
    };
    const streams = pubsub.streamsOutbound;
    if (!(streams instanceof Map) || typeof pubsub.getScore !== 'function') return true;
    return pubsub.getSubscribers(topic).some((p) => {
      const id = p.toString();
      return streams.has(id) && this.isAdmitted(id) && pubsub.getScore!(id) >= PUBLISH_THRESHOLD;
    });
  }

  private waitForSubscribers(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.subscriberWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.subscriberWaiters.add(done);
    });
  }

  private wakeSubscriberWaiters(): void {
    for (const w of [...this.subscriberWaiters]) w();
  }

  // ---------------------------------------------------------------- gossip: receive

  onTxBatch(handler: (e: TxBatchEvent) => unknown): () => void {
    this.txHandlers.add(handler);
    return () => this.txHandlers.delete(handler);
  }

  onConsensus(handler: (e: ConsensusEvent) => unknown): () => void {
    this.consensusHandlers.add(handler);
    return () => this.consensusHandlers.delete(handler);
  }

  /** Replaces the consensus message validator (consensus supplies it once it exists). */
  setConsensusValidator(v: ConsensusValidator): void {
    this.consensusValidator = v;
  }

  setTxBatchValidator(v: NetworkServiceOptions['txBatchValidator']): void {
    this.txBatchValidator = v;
  }

  /** Validation counters per topic kind. */
  stats(): { tx: NetworkCounters; consensus: NetworkCounters } {
    const copy = (c: NetworkCounters): NetworkCounters => ({ ...c, reasons: { ...c.reasons } });
    return { tx: copy(this.counters.get(this.txTopic)!), consensus: copy(this.counters.get(this.consensusTopic)!) };
  }

  /** Gossip messages withheld from, and dropped from, peers that were not admitted at that moment. */
  admittedOnlyStats(): AdmittedOnlyCounters {
    return { ...this.admittedOnly };
  }

  /** Gossipsub's score of a peer (for status and tests). */
  peerScore(peerId: string): number {
    if (!this.node) return 0;
    return (this.node.services.pubsub as unknown as { getScore(id: string): number }).getScore(peerId);
  }

  private count(topic: string, outcome: ValidationOutcome<unknown>, from: string): void {
    const c = this.counters.get(topic);
    if (!c) return;
    this.opts.metrics?.gossip(topic === this.txTopic ? 'tx' : 'consensus', outcome.verdict);
    if (outcome.verdict === 'accept') c.accepted++;
    else {
      if (outcome.verdict === 'reject') c.rejected++;
      else c.ignored++;
      c.reasons[outcome.reason] = (c.reasons[outcome.reason] ?? 0) + 1;
      // Debug even for a reject: a peer chooses what it sends, and a warn per message would let it flood the log.
      // The counters (stats(), cloister_gossip_messages_total) are where an operator sees rejects.
      this.log.debug('gossip message dropped', { topic, verdict: outcome.verdict, reason: outcome.reason, peer: from });
    }
  }

  private async validateTx(peer: PeerId, msg: Message): Promise<ReturnType<typeof toTopicResult>> {
    const from = peer.toString();
    let outcome: ValidationOutcome<SignedTx[]>;
    try {
      // Never reached while the admitted-only filter holds (it drops such RPCs first); kept as a second line.
      if (!this.isAdmitted(from)) outcome = { verdict: 'ignore', reason: 'relayer_not_admitted' };
      else outcome = validateTxBatch(msg.data, this.opts.chainId, { maxBytes: this.maxTxBatchBytes, maxTxs: this.maxTxsPerBatch });
      if (outcome.verdict === 'accept' && this.txBatchValidator) {
        const extra = await this.txBatchValidator(outcome.value!, from);
        if (extra !== 'accept') outcome = { verdict: extra, reason: 'tx_batch_validator' };
      }
    } catch (err) {
      // Our own bug or a hook failure: never the sender's fault.
      this.log.error('tx batch validator threw', { err: (err as Error).message });
      outcome = { verdict: 'ignore', reason: 'validator_error' };
    }
    this.count(this.txTopic, outcome, from);
    if (outcome.verdict !== 'accept') return toTopicResult(outcome.verdict);
    if (this.opts.relayTxs ?? true) {
      this.parsedTxs.set(msg, outcome.value!);
      return toTopicResult('accept');
    }
    // Delivered here; "ignore" tells gossipsub not to relay it (and costs the sender nothing).
    for (const h of this.txHandlers) this.callHandler(h, { txs: outcome.value!, from });
    return toTopicResult('ignore');
  }

  private async validateConsensus(peer: PeerId, msg: Message): Promise<ReturnType<typeof toTopicResult>> {
    const from = peer.toString();
    let outcome: ValidationOutcome<unknown>;
    if (!this.isAdmitted(from)) outcome = { verdict: 'ignore', reason: 'relayer_not_admitted' };
    else if (msg.data.length === 0) outcome = { verdict: 'reject', reason: 'empty' };
    else if (msg.data.length > this.maxConsensusBytes) outcome = { verdict: 'reject', reason: 'too_large' };
    else {
      try {
        outcome = normalizeOutcome(await this.consensusValidator(msg.data, from));
      } catch (err) {
        this.log.error('consensus validator threw', { err: (err as Error).message });
        outcome = { verdict: 'ignore', reason: 'validator_error' };
      }
    }
    this.count(this.consensusTopic, outcome, from);
    return toTopicResult(outcome.verdict);
  }

  private onGossip(source: PeerId, msg: Message): void {
    const from = source.toString();
    if (msg.topic === this.txTopic) {
      let txs = this.parsedTxs.get(msg);
      if (!txs) {
        const again = validateTxBatch(msg.data, this.opts.chainId, { maxBytes: this.maxTxBatchBytes, maxTxs: this.maxTxsPerBatch });
        if (again.verdict !== 'accept') return;
        txs = again.value!;
      }
      this.parsedTxs.delete(msg);
      for (const h of this.txHandlers) this.callHandler(h, { txs, from });
    } else if (msg.topic === this.consensusTopic) {
      for (const h of this.consensusHandlers) this.callHandler(h, { data: msg.data, from });
    }
  }

  private callHandler<E>(h: (e: E) => unknown, e: E): void {
    try {
      const r = h(e);
      if (r instanceof Promise) r.catch((err: unknown) => this.log.error('gossip handler failed', { err: (err as Error)?.message }));
    } catch (err) {
      this.log.error('gossip handler threw', { err: (err as Error).message });
    }
  }

  // ---------------------------------------------------------------- request/response

  /** Sends a sync request to an admitted peer and returns its response (PEER_NOT_ADMITTED otherwise). */
  request(peerId: string, data: Uint8Array, options?: RequestOptions): Promise<Uint8Array> {
    this.requireNode();
    if (!this.allowed.has(peerId)) return Promise.reject(new NetworkError('PEER_NOT_ALLOWED', `peer ${peerId} is not allowed`));
    return this.sync!.request(peerId, data, options);
  }

  /** Serves sync requests (from admitted peers only: others' streams are reset unread). */
  handle(handler: RequestHandler | undefined): void {
    this.syncHandler = handler;
    this.sync?.setHandler(handler);
  }

  /** Sends our admission evidence and returns the peer's. */
  exchangeAdmission(peerId: string, evidence: Uint8Array, options?: RequestOptions): Promise<Uint8Array> {
    this.requireNode();
    if (!this.allowed.has(peerId)) return Promise.reject(new NetworkError('PEER_NOT_ALLOWED', `peer ${peerId} is not allowed`));
    return this.admission!.request(peerId, evidence, options);
  }

  /** Sends a secret-release request (node/confidential) to an admitted peer. */
  requestSecret(peerId: string, request: Uint8Array, options?: RequestOptions): Promise<Uint8Array> {
    this.requireNode();
    if (!this.isAdmitted(peerId)) return Promise.reject(new NetworkError('PEER_NOT_ALLOWED', `peer ${peerId} is not admitted`));
    return this.secret!.request(peerId, request, options);
  }

  /** Serves secret-release requests (from admitted peers only). */
  handleSecret(handler: RequestHandler | undefined): void {
    this.secretHandler = handler;
    this.secret?.setHandler(handler);
  }

  /** Serves admission: receives a peer's evidence, returns ours. */
  handleAdmission(handler: RequestHandler | undefined): void {
    this.admissionHandler = handler;
    this.admission?.setHandler(handler);
  }
}

/** The IP addresses in the configured peers' multiaddrs (/dns names are not resolved here). */
function hostsOf(peers: string[]): string[] {
  const hosts: string[] = [];
  for (const addr of peers) {
    try {
      const ip = multiaddr(addr).getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value;
      if (ip !== undefined) hosts.push(ip);
    } catch {
      // addPeer reports a malformed address when it is dialled
    }
  }
  return hosts;
}
