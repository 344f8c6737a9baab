import { join } from 'node:path';
import { ChainService } from './chain/chain-service.js';
import { systemClock, type Clock } from './chain/clock.js';
import type { NodeConfig } from './config/node-config.js';
import { readGenesisFile } from './dev/dev-chain.js';
import { EnclaveHost } from './enclave/enclave-host.js';
import { measureEnclaveProgram } from './enclave/measurement.js';
import { VirtualPlatform, loadOrCreateVirtualRoot } from './enclave/virtual-platform.js';
import type { Logger } from './log/logger.js';
import { JsonRpcServer, chainMethods } from './rpc/index.js';
import { ChainStore } from './storage/chain-store.js';

export interface CloisterNodeOptions {
  config: NodeConfig;
  log: Logger;
  clock?: Clock;
  /** Called when the node cannot go on; the CLI exits the process. */
  onFatal?: (err: Error) => void;
}

/**
 * The composition root of one node: store, enclave, chain, RPC. Starts them in
 * that order and stops them in the reverse (RPC, chain, enclave, store), so no
 * request reaches a chain that is shutting down and no block is half-written.
 */
export class CloisterNode {
  readonly config: NodeConfig;
  readonly #log: Logger;
  readonly #store: ChainStore;
  readonly #enclave: EnclaveHost;
  readonly chain: ChainService;
  readonly #rpc: JsonRpcServer;
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  #stopping: Promise<void> | undefined;

  constructor(options: CloisterNodeOptions) {
    const { config, log } = options;
    this.config = config;
    this.#log = log;
    const genesis = readGenesisFile(config.genesisFile);
    const root = loadOrCreateVirtualRoot(config.enclave.virtualRootFile);
    const { measurement } = measureEnclaveProgram();
    this.#store = new ChainStore(join(config.dataDir, 'db'));
    this.#enclave = new EnclaveHost(new VirtualPlatform(root, measurement), log.child({ component: 'enclave' }));
    this.chain = new ChainService({
      genesis,
      nodeId: config.nodeId,
      store: this.#store,
      enclave: this.#enclave,
      clock: options.clock ?? systemClock,
      log: log.child({ component: 'chain' }),
      virtualRoot: root.publicKeyPem,
      onFatal: options.onFatal ?? ((err) => log.error('fatal', { error: err.message })),
    });
    const rpcLog = log.child({ component: 'rpc' });
    this.#rpc = new JsonRpcServer({
      methods: chainMethods(this.chain),
      info: { title: 'Cloister JSON-RPC', version: '0.1.0' },
      host: config.rpc.host,
      port: config.rpc.port,
      cors: config.rpc.corsOrigins.length > 0 ? { allowedOrigins: config.rpc.corsOrigins } : undefined,
      logger: { error: (m, f) => rpcLog.error(m, f), warn: (m, f) => rpcLog.warn(m, f) },
    });
  }

  get rpcUrl(): string {
    return this.#rpc.url;
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`node is ${this.#state}`);
    this.#state = 'running';
    try {
      await this.#store.open();
      await this.chain.start();
      await this.#rpc.start();
    } catch (err) {
      // Undo what did start (the enclave worker would keep the process alive), then report.
      await this.stop();
      throw err;
    }
    this.#log.info('JSON-RPC listening', { url: this.#rpc.url });
  }

  /** Idempotent; safe to call from signal handlers more than once. */
  stop(): Promise<void> {
    if (!this.#stopping) this.#stopping = this.#stopInOrder();
    return this.#stopping;
  }

  async #stopInOrder(): Promise<void> {
    this.#state = 'stopping';
    const steps: [string, () => Promise<void>][] = [
      ['rpc', () => this.#rpc.stop()],
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
