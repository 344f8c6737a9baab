import {
  DEFAULT_CONSENSUS_PARAMS,
  Ed25519Signer,
  signTx,
  type Genesis,
  type JsonValue,
  type Receipt,
  type SignedTx,
} from '../../consensus/index.js';
import {
  BlockExecutor,
  CommittedState,
  ContractRuntime,
  chainViewAt,
  readDeployments,
  readNonce,
  systemTxGas,
  type ChainView,
  type Deployment,
  type ExcludedTx,
} from '../../contracts/index.js';

export const VIRTUAL_MEASUREMENT = 'ab'.repeat(48);

/** A genesis with these members, one (unused) validator and a virtual-only policy. */
export function governanceGenesis(members: readonly { id: string; signer: Ed25519Signer }[]): Genesis {
  return {
    chainId: 'gov-test',
    time: 0,
    members: members.map((m) => ({ id: m.id, publicKey: m.signer.publicKey })),
    validators: [{ nodeId: 'node-1', voteKey: new Ed25519Signer('07'.repeat(32)).publicKey }],
    contracts: [],
    enclave: { measurements: { virtual: [VIRTUAL_MEASUREMENT] }, virtualRoots: [] },
    policy: { allowedPlatforms: ['virtual'], allowVirtual: true, allowDebug: false, measurements: { virtual: [VIRTUAL_MEASUREMENT] } },
    consensus: DEFAULT_CONSENSUS_PARAMS,
  };
}

export interface BlockOutcome {
  receipts: Receipt[];
  excluded: ExcludedTx[];
  txs: SignedTx[];
  height: number;
}

/**
 * A chain without consensus: blocks executed by a BlockExecutor on an
 * in-memory state, as an enclave does (deployments reloaded and the view
 * recomputed after every block). For governance tests and for replaying a
 * ledger's transactions.
 */
export class GovernanceChain {
  readonly state = new CommittedState();
  height = 0;
  #deployments = new Map<string, Deployment>();
  readonly #executor: BlockExecutor;

  private constructor(
    readonly genesis: Genesis,
    readonly runtime: ContractRuntime,
  ) {
    this.#executor = new BlockExecutor(runtime, (name) => this.#deployments.get(name));
  }

  static async create(genesis: Genesis): Promise<GovernanceChain> {
    return new GovernanceChain(genesis, await ContractRuntime.create());
  }

  view(): ChainView {
    return chainViewAt(this.genesis, this.state);
  }

  nonce(address: string): number {
    return readNonce(this.state, address);
  }

  /**
   * Executes a block of transactions at the next height (or `height`), as a proposer would, and commits it.
   * A replayed ledger block passes its header's time and parent (what validators' attestations bind).
   */
  block(txs: readonly SignedTx[], mode: 'propose' | 'validate' = 'propose', height = this.height + 1, header?: { time: number; parentHash: string }): BlockOutcome {
    const view = this.view();
    const ctx = { chainId: this.genesis.chainId, height, time: header?.time ?? height * 1000, validators: view.validatorKeys, genesis: this.genesis, ...(header ? { parentHash: header.parentHash } : {}) };
    const out = this.#executor.execute(this.state, ctx, view.consensus, txs, mode);
    this.state.apply(out.writeSet);
    this.height = height;
    this.#deployments = readDeployments(this.state);
    return { receipts: out.receipts, excluded: out.excluded, txs: out.included, height };
  }

  /** A signed governance (or contract) transaction from `signer` with its next nonce after `pending` others. */
  tx(signer: Ed25519Signer, contract: string, method: string, args: JsonValue[], options: { pending?: number; gasLimit?: number } = {}): SignedTx {
    const pending = options.pending ?? 0;
    const gasLimit = options.gasLimit ?? (contract === 'consortium' ? systemTxGas(args) : 1_000_000);
    return signTx({ chainId: this.genesis.chainId, from: signer.publicKey, nonce: this.nonce(signer.publicKey) + pending, contract, method, args, gasLimit }, signer);
  }

  /** One transaction in its own block; its receipt. */
  run(signer: Ed25519Signer, contract: string, method: string, args: JsonValue[]): Receipt {
    const { receipts, excluded } = this.block([this.tx(signer, contract, method, args)]);
    if (excluded.length > 0) throw new Error(`excluded: ${excluded[0]!.code} ${excluded[0]!.message}`);
    return receipts[0]!;
  }

  /** A read-only call at the committed height. */
  call(contract: string, method: string, args: JsonValue[] = []): JsonValue {
    return this.#executor.call(this.state, { chainId: this.genesis.chainId, height: this.height, time: this.height * 1000, genesis: this.genesis }, contract, method, args, '0'.repeat(64), 10_000_000).result;
  }

  /** Every governance (`g:`) and deployment (`k:`) record: what a refused transaction must leave as it was. */
  governanceRecords(): [string, string][] {
    return [...this.state.withPrefix('g:'), ...this.state.withPrefix('k:')];
  }
}
