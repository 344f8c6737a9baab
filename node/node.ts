import { AdmissionService } from './admission/index.js';
import { ChainService } from './chain/chain-service.js';
import { systemClock, type Clock } from './chain/clock.js';
import { nodePaths, type NodeConfig } from './config/node-config.js';
import { BlockSync, ConsensusService } from './consensus/index.js';
import { readGenesisFile } from './dev/dev-chain.js';
import { createPlatform } from './enclave/create-platform.js';
import { EnclaveHost } from './enclave/enclave-host.js';
import type { Logger } from './log/logger.js';
import { NetworkService, loadOrCreateNodeKey, peerIdOf } from './network/index.js';
import { JsonRpcServer, chainMethods, governanceMethods, networkMethods, type NodeView } from './rpc/index.js';
import { SecretService } from './confidential/index.js';
import type { SecretStatus } from '../contracts/index.js';
import { ChainStore } from './storage/chain-store.js';
import { explorerPages } from './explorer/assets.js';
import { NodeMetrics } from './metrics/metrics.js';
import type { PrivateKey } from '@libp2p/interface';
import { genesisHash, txHash, type Genesis, type SignedTx } from '../consensus/index.js';

export interface CloisterNodeOptions {
  config: NodeConfig;
  log: Logger;
  clock?: Clock;
  /** Called when the node cannot go on; the CLI exits the process. */
  onFatal?: (err: Error) => void;
}

/** How long locally submitted transactions collect before they are pushed to the peers as one batch. */
const TX_PUSH_FLUSH_MS = 10;
/** Transactions kept to push again when too few peers took them (a node its peers do not admit yet, full mempools). */
const MAX_UNSENT_TXS = 20_000;
/** How soon transactions no peer took are pushed again, if no peer is admitted before. */
const UNSENT_RETRY_MS = 1_000;
/** Most of them pushed again at once. */
const UNSENT_RESEND_MAX = 2_000;
/** How long a stopping node waits for its last acknowledged transactions to be pushed. */
const STOP_PUSH_WAIT_MS = 2_000;

/**
 * The composition root of one node. Starts store, enclave and chain, then the
 * network, admission, sync and consensus, then RPC; stops in the reverse
 * order (RPC, consensus, network, chain, enclave, store), so no request
 * reaches a chain that is shutting down and no block is half-written.
 */
export class CloisterNode {
  readonly config: NodeConfig;
  readonly #log: Logger;
  readonly #genesis: Genesis;
  readonly #store: ChainStore;
  readonly #enclave: EnclaveHost;
  readonly chain: ChainService;
  readonly #rpc: JsonRpcServer;
  readonly #clock: Clock;
  readonly #onFatal: (err: Error) => void;
  /** This node's own registry (several nodes in one process keep apart); absent with rpc.metrics false. */
  readonly #metrics: NodeMetrics | undefined;
  #network: NetworkService | undefined;
  #admission: AdmissionService | undefined;
  #sync: BlockSync | undefined;
  #consensus: ConsensusService | undefined;
  #secrets: SecretService | undefined;
  /** What the enclave last said it holds of the consortium secret. */
  #secretStatus: SecretStatus = { missing: [], held: [] };
  #txOutbox: SignedTx[] = [];
  /**
   * Acknowledged transactions too few peers acknowledged (bounded), with their hashes: pushed again
   * when a peer is admitted, or after UNSENT_RETRY_MS, while they are still in the mempool.
   */
  #unsentTxs: { tx: SignedTx; hash: string }[] = [];
  #unsentRetry: NodeJS.Timeout | undefined;
  #resending = false;
  /** Peers asked their height because this node's height stalled, answer pending. */
  readonly #askingHeight = new Set<string>();
  #txOutboxSent: Promise<void> | undefined;
  #txFlush: NodeJS.Timeout | undefined;
  #txOutboxResolve: (() => void) | undefined;
  #quorumTimer: NodeJS.Timeout | undefined;
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  #stopping: Promise<void> | undefined;

  constructor(options: CloisterNodeOptions) {
    const { config, log } = options;
    this.config = config;
    this.#log = log;
    this.#clock = options.clock ?? systemClock;
    this.#onFatal = options.onFatal ?? ((err) => log.error('fatal', { error: err.message }));
    this.#genesis = readGenesisFile(config.genesisFile);
    const paths = nodePaths(config.dataDir);
    const { platform, virtualRootPem } = createPlatform(config);
    // Gauges are read from the services' own state on each scrape; the services record only events.
    const metrics = config.rpc.metrics === false ? undefined : new NodeMetrics({
      sources: {
        height: () => this.chain.blockNumber(),
        round: () => this.#consensus?.snapshot.round ?? 0,
        mempool: () => this.chain.mempool.size + this.chain.mempool.queuedSize,
        peers: () => {
          const nodes = this.#admission?.nodes() ?? [];
          return { connected: nodes.filter((n) => n.connected).length, admitted: nodes.filter((n) => n.admitted).length };
        },
        unreplicated: () => this.#unsentTxs.length,
      },
    });
    this.#metrics = metrics;
    this.#store = new ChainStore(paths.db);
    this.#enclave = new EnclaveHost(platform, log.child({ component: 'enclave' }), paths.sealedIdentity);
    if (metrics) this.#enclave.metrics = metrics;
    this.#enclave.onSecrets = (status) => {
      this.#secretStatus = status;
      this.#secrets?.update(status);
    };
    this.#enclave.onSecretNeeded = () => this.#secrets?.needed();
    this.chain = new ChainService({
      genesis: this.#genesis,
      nodeId: config.nodeId,
      store: this.#store,
      enclave: this.#enclave,
      clock: this.#clock,
      log: log.child({ component: 'chain' }),
      ...(virtualRootPem ? { virtualRoot: virtualRootPem } : {}),
      onFatal: this.#onFatal,
      successorIdentityFile: paths.successorIdentity,
      ...(metrics ? { metrics } : {}),
    });
    const rpcLog = log.child({ component: 'rpc' });
    const { host, port, corsOrigins, explorer, metrics: _metricsFlag, ...rpcLimits } = config.rpc;
    const pages = explorer === false ? null : explorerPages();
    if (explorer !== false && !pages) log.warn('the explorer page is not built (npm run build): GET / is not served');
    this.#rpc = new JsonRpcServer({
      methods: [...chainMethods(this.chain), ...governanceMethods(this.chain), ...networkMethods({ nodes: () => this.nodes() })],
      info: { title: 'Cloister JSON-RPC', version: '0.1.0' },
      host,
      port,
      cors: corsOrigins.length > 0 ? { allowedOrigins: corsOrigins } : undefined,
      ...rpcLimits,
      logger: { error: (m, f) => rpcLog.error(m, f), warn: (m, f) => rpcLog.warn(m, f) },
      ...(pages ? { pages } : {}),
      ...(metrics ? { metricsEndpoint: metrics } : {}),
      feed: {
        onBlock: (listener) => this.chain.onBlock((block) => listener(block.header.height)),
        blockNumber: () => this.chain.blockNumber(),
        getBlockByNumber: (height, full) => this.chain.getBlockByNumber(height, full),
        getTransaction: (hash) => this.chain.getTransaction(hash),
        getTransactionReceipt: (hash) => this.chain.getTransactionReceipt(hash),
      },
    });
  }

  get rpcUrl(): string {
    return this.#rpc.url;
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`node is ${this.#state}`);
    this.#state = 'running';
    try {
      const nodeKey = await this.#loadNodeKey();
      await this.#store.open();
      await this.chain.start();
      if (this.config.p2p) await this.#startNetwork(this.config.p2p, nodeKey);
      this.#startConsensus();
      await this.#rpc.start();
    } catch (err) {
      // Undo what did start (the enclave worker would keep the process alive), then report.
      await this.stop();
      throw err;
    }
    this.#log.info('JSON-RPC listening', { url: this.#rpc.url });
  }

  /** The data directory's network key; the config's node id must be its peer id, since that is what peers authenticate. */
  async #loadNodeKey(): Promise<PrivateKey> {
    const key = await loadOrCreateNodeKey(nodePaths(this.config.dataDir).nodeKey);
    const id = peerIdOf(key);
    if (id !== this.config.nodeId) {
      throw new Error(`the config's nodeId ${this.config.nodeId} is not this data directory's node key (${id})`);
    }
    return key;
  }

  async #startNetwork(p2p: NonNullable<NodeConfig['p2p']>, privateKey: PrivateKey): Promise<void> {
    const genesis = this.#genesis;
    const log = this.#log.child({ component: 'network' });
    const network = new NetworkService({
      chainId: genesis.chainId,
      privateKey,
      listen: p2p.listen,
      peers: p2p.peers,
      allowedPeerIds: this.chain.view().validators.map((v) => v.nodeId),
      // Gossip and sync only with peers whose enclave this node admitted, while it is admitted.
      isAdmitted: (peer) => this.#admission?.isAdmitted(peer) ?? false,
      log,
      ...(this.#metrics ? { metrics: this.#metrics } : {}),
      // A proposal carries its block's transactions.
      maxConsensusBytes: genesis.consensus.maxBlockBytes + 1024 * 1024,
      txBatchValidator: (txs) => this.chain.admitFromPeer(txs),
      // A pushed transaction is acknowledged as held once it is in this node's mempool.
      holdsTx: (tx) => this.chain.holdsPeerTx(tx),
      // This node pushes its clients' transactions to every peer itself (pushTxs) and publishes none on
      // the tx topic; a batch another node still gossips there is relayed as gossip expects.
      relayTxs: true,
    });
    this.#network = network;
    const admission = new AdmissionService({
      transport: network,
      genesis,
      policy: () => this.chain.view().policy as unknown as Genesis['policy'],
      validators: () => this.chain.view().validators as Genesis['validators'],
      genesisHash: genesisHash(genesis),
      selfNodeId: this.config.nodeId,
      evidenceFor: async (challenge) => {
        const evidence = await this.#enclave.admissionEvidence(challenge);
        return { publicKeys: evidence.publicKeys, evidence: evidence.evidence };
      },
      clock: this.#clock,
      log: this.#log.child({ component: 'admission' }),
      onAdmitted: (peer) => {
        void this.#sync?.checkPeer(peer);
        void this.#resendUnsentTxs();
        if (this.#secretStatus.missing.length > 0) this.#secrets?.needed();
        this.#consensus?.regossipEvidence();
      },
      onChange: (peer) => network.admissionChanged(peer),
      attestations: {
        initial: await this.#store.attestations(),
        record: (nodeId, until) => {
          this.#store.putAttestation(nodeId, until).catch((err: unknown) => log.warn('could not keep an attestation', { error: (err as Error).message }));
        },
      },
    });
    this.#admission = admission;
    this.chain.setPeerAttestations((keys) => admission.attestationsFor(keys));
    // Governance added or removed a validator: only the validators in force may connect.
    this.chain.onViewChange((view) => network.setAllowedPeers(view.validators.map((v) => v.nodeId)));
    this.#sync = new BlockSync({
      view: () => this.chain.view(),
      chain: this.chain,
      store: this.#store,
      enclave: this.#enclave,
      network,
      admittedPeer: (peer) => admission.isAdmitted(peer),
      onSynced: (block, certificate) => this.#consensus?.syncedBlock(block, certificate),
      log: this.#log.child({ component: 'sync' }),
    });
    admission.start();
    admission.follow(network);
    this.#secrets = new SecretService({
      enclave: this.#enclave,
      transport: network,
      admittedPeers: () => admission.nodes().filter((n) => n.admitted).map((n) => n.nodeId),
      clock: this.#clock,
      log: this.#log.child({ component: 'secrets' }),
    });
    this.#sync.start();
    this.chain.onLocalTx((tx) => this.#pushTx(tx));
    await network.start();
    this.#secrets.start();
    this.#secrets.update(this.#secretStatus);
  }

  #startConsensus(): void {
    const consensus = new ConsensusService({
      view: () => this.chain.view(),
      nodeId: this.config.nodeId,
      chain: this.chain,
      enclave: this.#enclave,
      store: this.#store,
      selfKey: this.chain.identity.publicKeys.vote!,
      signer: this.chain.signerResume,
      ...(this.#network ? { network: this.#network } : {}),
      admitted: (key) => this.#admission?.isVoteKeyAdmitted(key) ?? false,
      onBehind: (height, peer) => this.#sync?.hint(height, peer),
      onStalled: () => {
        // One question per peer at a time: checkPeer retries for a while, and a stall asks every 2 s.
        for (const n of this.#admission?.nodes() ?? []) {
          const sync = this.#sync;
          if (!n.admitted || !sync || this.#askingHeight.has(n.nodeId)) continue;
          this.#askingHeight.add(n.nodeId);
          void sync.checkPeer(n.nodeId).finally(() => this.#askingHeight.delete(n.nodeId));
        }
      },
      readyToSign: () => this.#readyToSign(),
      fetchTxs: (peer, hashes) => this.#sync?.fetchTxs(peer, hashes) ?? Promise.resolve(hashes.map(() => null)),
      clock: this.#clock,
      log: this.#log.child({ component: 'consensus' }),
      onFatal: this.#onFatal,
    });
    this.#consensus = consensus;
    this.chain.onViewChange(() => consensus.viewChanged());
    this.chain.setStatusExtension(() => {
      const nodes = this.#admission?.nodes() ?? [];
      return {
        consensus: consensus.snapshot,
        validators: this.chain.view().validators.length,
        connectedPeers: nodes.filter((n) => n.connected).length,
        admittedPeers: nodes.filter((n) => n.admitted).length,
        syncing: this.#sync?.syncing ?? false,
        secrets: { held: [...this.#secretStatus.held], missing: [...this.#secretStatus.missing] },
      };
    });
    // In the background: before its first signature consensus watches for a while (double-sign guard).
    consensus.start().catch((err: unknown) => this.#onFatal(err instanceof Error ? err : new Error(String(err))));
    if (this.#network) this.#watchQuorum();
  }

  /**
   * With peers, this node signs only once a quorum of validators is admitted
   * and has told it its height, and it has caught up with them: the
   * double-sign guard has then seen their latest certificates.
   */
  #readyToSign(): boolean {
    const sync = this.#sync;
    const admission = this.#admission;
    if (!sync || !admission) return true;
    const heard = admission.nodes().filter((n) => n.admitted && sync.heardFrom(n.nodeId)).length;
    return heard + 1 >= this.chain.view().quorum && sync.caughtUp;
  }

  /** Says so, once per change, while too few validators are admitted for consensus to make progress. */
  #watchQuorum(): void {
    let last = -1;
    const check = (): void => {
      const admitted = 1 + (this.#admission?.nodes().filter((n) => n.admitted).length ?? 0);
      const total = this.chain.view().validators.length;
      if (admitted < this.chain.view().quorum && admitted !== last) {
        this.#log.info(`waiting for quorum: ${admitted} of ${total} validators connected`, { admitted, validators: total, quorum: this.chain.view().quorum });
      } else if (admitted >= this.chain.view().quorum && last !== -1 && last < this.chain.view().quorum) {
        this.#log.info(`quorum reached: ${admitted} of ${total} validators connected`, { admitted, validators: total });
      }
      last = admitted;
    };
    this.#quorumTimer = setInterval(check, 2000);
    this.#quorumTimer.unref();
    setImmediate(check);
  }

  /**
   * Client transactions are pushed to every admitted peer in batches
   * (node/network/tx-push.ts). Resolves once f peers (at least one; f the
   * faults the validator set tolerates) acknowledged holding `tx`, so the
   * client's answer means the transaction outlives any f nodes, this one
   * included; or, when too few peers took it within the network's wait (none
   * admitted, mempools full), once that is known: the transaction then stays
   * in this node's mempool, is proposed from here, and is pushed again until
   * enough peers hold it.
   */
  #pushTx(tx: SignedTx): Promise<void> {
    this.#txOutbox.push(tx);
    if (this.#txOutboxSent) return this.#txOutboxSent;
    this.#txOutboxSent = new Promise<void>((resolve) => {
      this.#txOutboxResolve = resolve;
      this.#txFlush = setTimeout(() => void this.#flushTxOutbox(), TX_PUSH_FLUSH_MS);
    });
    return this.#txOutboxSent;
  }

  /** Publishes the batch waiting in the outbox now (its timer, or the node stopping, says when). */
  async #flushTxOutbox(): Promise<void> {
    if (this.#txFlush) clearTimeout(this.#txFlush);
    this.#txFlush = undefined;
    const resolve = this.#txOutboxResolve;
    this.#txOutboxResolve = undefined;
    this.#txOutboxSent = undefined;
    const batch = this.#txOutbox;
    this.#txOutbox = [];
    let unheld: SignedTx[];
    try {
      unheld = await this.#push(batch);
    } finally {
      resolve?.();
    }
    if (unheld.length === 0 || this.#state !== 'running') return;
    // Kept to push again: a node its peers do not admit yet (just restarted, or on a program they are still
    // checking), or whose peers' mempools are full, acknowledged these, and they must not stay here alone.
    for (const tx of unheld) this.#unsentTxs.push({ tx, hash: txHash(tx) });
    if (this.#unsentTxs.length > MAX_UNSENT_TXS) this.#unsentTxs.splice(0, this.#unsentTxs.length - MAX_UNSENT_TXS);
    this.#log.debug('too few peers hold some transactions yet; pushed again later', { txs: unheld.length });
    this.#scheduleResend();
  }

  /** Pushes transactions to the peers; returns those too few peers hold (all of them if the push failed). */
  async #push(txs: SignedTx[]): Promise<SignedTx[]> {
    const network = this.#network;
    if (!network || txs.length === 0) return [];
    const validators = this.chain.view().validators;
    // A validator set of this node alone: there is no peer to hold a copy, and none is waited for.
    if (validators.length === 1 && validators[0]!.nodeId === this.config.nodeId) return [];
    try {
      // f peers (at least one) and this node: f + 1 copies, so any f faulty or crashed nodes leave one.
      const f = Math.floor((validators.length - 1) / 3);
      const held = await network.pushTxs(txs, { holders: Math.max(1, f) });
      return txs.filter((_, i) => !held[i]);
    } catch (err) {
      this.#log.debug('tx push failed', { txs: txs.length, error: (err as Error).message });
      return txs;
    }
  }

  #scheduleResend(): void {
    this.#unsentRetry ??= setTimeout(() => {
      this.#unsentRetry = undefined;
      void this.#resendUnsentTxs();
    }, UNSENT_RETRY_MS).unref();
  }

  /**
   * A peer was admitted, or the retry timer fired: the acknowledged transactions too few peers hold,
   * still in the mempool, are pushed again, oldest first and at most UNSENT_RESEND_MAX at a time (peers
   * with full mempools refuse them cheaply, but sending thousands every second would still cost every
   * link). They stay listed until enough peers hold them (the cloister_tx_unreplicated gauge).
   */
  async #resendUnsentTxs(): Promise<void> {
    if (this.#resending || this.#unsentTxs.length === 0 || this.#state !== 'running') return;
    this.#resending = true;
    try {
      this.#unsentTxs = this.#unsentTxs.filter((u) => this.chain.mempool.has(u.hash));
      const now = this.#unsentTxs.slice(0, UNSENT_RESEND_MAX);
      const unheld = new Set(await this.#push(now.map((u) => u.tx)));
      const done = new Set(now.filter((u) => !unheld.has(u.tx)));
      this.#unsentTxs = this.#unsentTxs.filter((u) => !done.has(u));
    } finally {
      this.#resending = false;
    }
    if (this.#unsentTxs.length > 0 && this.#state === 'running') this.#scheduleResend();
  }

  /** net_nodes: this node, then every other genesis validator as admission sees it, with any equivocation evidence held. */
  nodes(): NodeView[] {
    const identity = this.chain.identity;
    const equivocations = new Map<string, NodeView['equivocations'] & object>();
    for (const e of this.#consensus?.evidence() ?? []) {
      const list = equivocations.get(e.validator) ?? [];
      list.push({ kind: e.kind, height: e.height, round: e.round });
      equivocations.set(e.validator, list);
    }
    const withEvidence = (view: NodeView): NodeView => {
      const list = equivocations.get(view.voteKey);
      return list ? { ...view, equivocations: list } : view;
    };
    const self: NodeView = {
      id: this.config.nodeId,
      self: true,
      admitted: true,
      connected: true,
      voteKey: identity?.publicKeys.vote ?? '',
      platform: identity?.platform,
      measurement: identity?.measurement,
    } as NodeView;
    const risk = this.#consensus?.doubleSignRisk;
    if (risk) self.doubleSignRisk = risk.message;
    const keyOf = new Map(this.chain.view().validators.map((v) => [v.nodeId, v.voteKey]));
    const others = (this.#admission?.nodes() ?? []).map((d): NodeView => {
      const view: NodeView = { id: d.nodeId, self: false, admitted: d.admitted, connected: d.connected, voteKey: keyOf.get(d.nodeId) ?? '' };
      if (d.platform) view.platform = d.platform;
      if (d.measurement) view.measurement = d.measurement;
      if (d.reason) view.reason = { code: d.reason.code, message: d.reason.message };
      return view;
    });
    return [self, ...others].map(withEvidence);
  }

  /** Idempotent; safe to call from signal handlers more than once. */
  stop(): Promise<void> {
    if (!this.#stopping) this.#stopping = this.#stopInOrder();
    return this.#stopping;
  }

  async #stopInOrder(): Promise<void> {
    this.#state = 'stopping';
    if (this.#quorumTimer) clearInterval(this.#quorumTimer);
    if (this.#unsentRetry) clearTimeout(this.#unsentRetry);
    const steps: [string, () => Promise<void> | void][] = [
      ['rpc', () => this.#rpc.stop()],
      // Transactions waiting in the outbox (their clients not answered yet) go out before the network stops (bounded wait).
      ['tx push', () => Promise.race([this.#flushTxOutbox(), new Promise<void>((r) => setTimeout(r, STOP_PUSH_WAIT_MS).unref())])],
      ['consensus', () => this.#consensus?.stop()],
      ['sync', () => this.#sync?.stop()],
      ['admission', () => this.#admission?.stop()],
      ['secrets', () => this.#secrets?.stop()],
      ['network', () => this.#network?.stop()],
      ['chain', () => this.chain.stop()],
      ['enclave', () => this.#enclave.stop()],
      ['store', () => this.#store.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.#log.error('error while stopping', { component: name, error: err instanceof Error ? err.message : String(err) });
      }
    }
    this.#state = 'stopped';
    this.#log.info('node stopped');
  }
}
