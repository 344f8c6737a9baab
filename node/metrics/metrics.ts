import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ChainErrorCode } from '../../consensus/index.js';
import type { EcallRequest } from '../../contracts/index.js';

/** The gossip topics, by kind (never the full topic string, which carries the chain id). */
export type GossipTopic = 'tx' | 'consensus';
export type GossipVerdict = 'accept' | 'ignore' | 'reject';
export type RpcOutcome = 'ok' | 'error';
export type EcallType = EcallRequest['type'];

/**
 * What the services record. Narrow on purpose: a service sees only these
 * calls, never the registry. Every label comes from a closed set the caller
 * names by type (error codes, ecall types, topics, verdicts); RPC method names
 * are checked against the served table by the recorder (`rpcRequest`).
 */
export interface Metrics {
  /** A block became durable on this node with `txs` transactions; `sinceLastSeconds` is null for the first one after start. */
  blockCommitted(txs: number, sinceLastSeconds: number | null): void;
  txAdmitted(): void;
  txRefused(code: ChainErrorCode | 'INTERNAL'): void;
  gossip(topic: GossipTopic, verdict: GossipVerdict): void;
  ecall(type: EcallType, seconds: number): void;
  /** `method` is a served method name or 'unknown': the RPC server checks the client's string against its table first. */
  rpcRequest(method: string, outcome: RpcOutcome): void;
}

/** Records nothing: the default for services built without metrics (tests, tools). */
export const noMetrics: Metrics = {
  blockCommitted: () => {},
  txAdmitted: () => {},
  txRefused: () => {},
  gossip: () => {},
  ecall: () => {},
  rpcRequest: () => {},
};

/** The node's state read on every scrape (gauges), so no service has to push it. */
export interface MetricSources {
  height(): number;
  round(): number;
  mempool(): number;
  peers(): { connected: number; admitted: number };
  /** Transactions this node acknowledged that too few peers hold yet (optional: a node without peers has none). */
  unreplicated?(): number;
}

/** Blocks come every second or so on a devnet; a stalled round can take tens of seconds. */
const COMMIT_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];
const BLOCK_TX_BUCKETS = [0, 1, 5, 10, 50, 100, 500, 1000, 5000];
/** Ecalls range from a signature (sub-millisecond) to executing a full block. */
const ECALL_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];

/**
 * One node's metrics in its own Registry (never prom-client's global one:
 * several nodes in one process, as in tests, must not share counters).
 */
export class NodeMetrics implements Metrics {
  readonly registry = new Registry();
  readonly #commit: Histogram;
  readonly #blockTxs: Histogram;
  readonly #admitted: Counter;
  readonly #refused: Counter<'code'>;
  readonly #gossip: Counter<'topic' | 'verdict'>;
  readonly #ecall: Histogram<'ecall'>;
  readonly #rpc: Counter<'method' | 'outcome'>;

  constructor(options: { sources?: MetricSources; processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.#commit = new Histogram({
      name: 'cloister_block_commit_seconds',
      help: 'Seconds between two consecutive blocks becoming durable on this node (the block interval as this node sees it; not observed for the first block after start)',
      buckets: COMMIT_BUCKETS,
      registers,
    });
    this.#blockTxs = new Histogram({ name: 'cloister_block_transactions', help: 'Transactions per committed block', buckets: BLOCK_TX_BUCKETS, registers });
    this.#admitted = new Counter({ name: 'cloister_tx_admitted_total', help: 'Transactions admitted to the mempool (from clients and from peers)', registers });
    this.#refused = new Counter({ name: 'cloister_tx_refused_total', help: 'Transactions refused by mempool admission, by ChainError code (from clients and from peers)', labelNames: ['code'], registers });
    this.#gossip = new Counter({
      name: 'cloister_gossip_messages_total',
      help: 'Gossip messages received and validated, by topic (tx, consensus) and verdict (accept, ignore, reject)',
      labelNames: ['topic', 'verdict'],
      registers,
    });
    this.#ecall = new Histogram({ name: 'cloister_ecall_seconds', help: 'Seconds per enclave call, by ecall type', labelNames: ['ecall'], buckets: ECALL_BUCKETS, registers });
    this.#rpc = new Counter({
      name: 'cloister_rpc_requests_total',
      help: 'JSON-RPC requests answered (batch entries count one by one), by method (unknown for a name the node does not serve) and outcome (ok, error)',
      labelNames: ['method', 'outcome'],
      registers,
    });
    const sources = options.sources;
    if (sources) {
      const gauge = (name: string, help: string, read: () => number): void => {
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read());
          },
        });
      };
      gauge('cloister_chain_height', 'Height of the last durable block', () => sources.height());
      gauge('cloister_consensus_round', 'Round of the height consensus is deciding', () => sources.round());
      gauge('cloister_mempool_transactions', 'Transactions in the mempool (ready and queued)', () => sources.mempool());
      gauge('cloister_peers_connected', 'Other validators connected now', () => sources.peers().connected);
      gauge('cloister_peers_admitted', 'Other validators whose enclave this node admitted', () => sources.peers().admitted);
      gauge(
        'cloister_tx_unreplicated',
        'Transactions this node acknowledged to clients that fewer than f peers hold yet (f: the faults the validator set tolerates, at least 1); pushed again every second',
        () => sources.unreplicated?.() ?? 0,
      );
    }
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric (gauges read now). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  blockCommitted(txs: number, sinceLastSeconds: number | null): void {
    this.#blockTxs.observe(txs);
    if (sinceLastSeconds !== null) this.#commit.observe(sinceLastSeconds);
  }

  txAdmitted(): void {
    this.#admitted.inc();
  }

  txRefused(code: ChainErrorCode | 'INTERNAL'): void {
    this.#refused.inc({ code });
  }

  gossip(topic: GossipTopic, verdict: GossipVerdict): void {
    this.#gossip.inc({ topic, verdict });
  }

  ecall(type: EcallType, seconds: number): void {
    this.#ecall.observe({ ecall: type }, seconds);
  }

  rpcRequest(method: string, outcome: RpcOutcome): void {
    this.#rpc.inc({ method, outcome });
  }
}
