import type { Genesis, JsonValue } from '../../consensus/index.js';
import { ContractRuntime } from '../sandbox/index.js';
import { BlockExecutor, readDeployments, type Deployment } from './executor.js';
import type { CallRequest } from './protocol.js';
import { ConsortiumKeys, type KeysSnapshot } from './consortium-keys.js';
import { PlainState, stateKey, type StateWrite } from './state.js';

/** The committed state as the call lane starts from it. */
export interface QuerySnapshot {
  chainId: string;
  height: number;
  time: number;
  entries: [string, string][];
  /** What governance starts from (the members and settings its read-only methods show). */
  genesis: Genesis;
}

/** One committed block's changes, in commit order. */
export interface QueryCommit {
  height: number;
  time: number;
  writeSet: StateWrite[];
}

/**
 * Read-only contract calls over a copy of the committed state, with their
 * own sandbox, so that a call (however long within its gas) never holds up
 * block execution or signing. Runs on its own thread (query-worker.ts); the
 * enclave's main thread feeds it every committed block.
 */
export class QueryEngine {
  readonly #state = new PlainState();
  #deployments = new Map<string, Deployment>();
  /** Made at the first call: a node that serves no calls never pays for a second sandbox. */
  #executor: Promise<BlockExecutor> | undefined;
  #chainId = '';
  #genesis: Genesis | undefined;
  #keys = new ConsortiumKeys();
  #height = 0;
  #time = 0;

  load(snapshot: QuerySnapshot): void {
    this.#state.load(snapshot.entries);
    this.#chainId = snapshot.chainId;
    this.#genesis = snapshot.genesis;
    this.#height = snapshot.height;
    this.#time = snapshot.time;
    this.#reloadDeployments();
  }

  apply(commit: QueryCommit): void {
    this.#state.apply(commit.writeSet);
    this.#height = commit.height;
    this.#time = commit.time;
    if (commit.writeSet.some(([key]) => key.startsWith(stateKey.deployment('')))) this.#reloadDeployments();
  }

  setKeys(keys: KeysSnapshot): void {
    this.#keys = ConsortiumKeys.fromSnapshot(keys);
  }

  async call(request: CallRequest, caller: string, gasLimit: number): Promise<{ result: JsonValue; gasUsed: number }> {
    // A few cached bundles are plenty for calls; each costs one WebAssembly instance.
    this.#executor ??= ContractRuntime.create({ maxCachedBundles: 4 }).then((runtime) => new BlockExecutor(runtime, (name) => this.#deployments.get(name), undefined, {
      usable: (g) => this.#keys.usable(g),
      isCommitted: (g) => this.#keys.isCommitted(g),
      stateCipher: (c) => this.#keys.stateCipher(c),
    }));
    return (await this.#executor).call(
      this.#state,
      { chainId: this.#chainId, height: this.#height, time: this.#time, ...(this.#genesis ? { genesis: this.#genesis } : {}) },
      request.contract,
      request.method,
      request.args,
      caller,
      gasLimit,
    );
  }

  #reloadDeployments(): void {
    this.#deployments = readDeployments(this.#state);
  }

}
