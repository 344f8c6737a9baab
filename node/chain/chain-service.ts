import { randomBytes } from 'node:crypto';
import {
  ChainError,
  genesisHash,
  headerHash,
  isHexOfLength,
  isSealedTx,
  txHash,
  type BlockHeader,
  type CommitCertificate,
  type Genesis,
  type CallAuth,
  type JsonValue,
  type LastSign,
  type SealedPayload,
  type SignedTx,
  type SignerLock,
} from '../../consensus/index.js';
import { ATTEST_METHOD, CONSORTIUM_CONTRACT, genesisChainView, systemTxProblem, type BlockResult, type ChainView, type ContractInfo, type EnclaveIdentity, type InitRequest, type ViewTransitionProof } from '../../contracts/index.js';
import type { EnclaveHost } from '../enclave/enclave-host.js';
import type { Logger } from '../log/logger.js';
import { TxAdmission } from '../mempool/admission.js';
import { Mempool, type MempoolLimits } from '../mempool/mempool.js';
import type { ChainStore, StoredBlock } from '../storage/chain-store.js';
import type {
  BlockView,
  CallResultView,
  ChainApi,
  ContractView,
  AttestationTokenView,
  EncryptionKeyView,
  EvidenceView,
  ReceiptView,
  SealedCallView,
  StatusView,
  TransactionView,
  ViewBudget,
} from './api.js';
import type { Clock } from './clock.js';
import { ProofBuilder } from './proof-builder.js';
import { noMetrics, type Metrics } from '../metrics/metrics.js';
import type { ReceiptProof, SignerAttestation, StateValueProof } from '../proofs/index.js';

export interface ChainServiceOptions {
  genesis: Genesis;
  nodeId: string;
  store: ChainStore;
  enclave: EnclaveHost;
  clock: Clock;
  log: Logger;
  mempool?: Partial<MempoolLimits>;
  /** Declared virtual vendor root (PEM), shown with the evidence on the virtual platform. */
  virtualRoot?: string;
  /** Called when the chain cannot go on (the enclave died, the disk failed): the process should exit. */
  onFatal: (err: Error) => void;
  /** The successor identity a new enclave program made for a handover (used when the sealed identity is another program's). */
  successorIdentityFile?: string;
  /** Records admissions, refusals and committed blocks; default none. */
  metrics?: Pick<Metrics, 'txAdmitted' | 'txRefused' | 'blockCommitted'>;
}

type BlockListener = (block: StoredBlock) => void;

/** Most senders whose committed nonce the host remembers. */
const NONCE_CACHE_LIMIT = 200_000;

/** Admission failures that only a faulty or malicious relayer produces. */
const PEER_FAULTS = new Set<string>(['TX_MALFORMED', 'TX_TOO_LARGE', 'TX_BAD_SIGNATURE', 'TX_WRONG_CHAIN', 'TX_GAS_LIMIT', 'ENCODING_INVALID']);

/**
 * The chain on this node: the committed head, the mempool and the enclave that
 * executes blocks. Implements what the JSON-RPC API needs.
 */
export class ChainService implements ChainApi {
  readonly #o: ChainServiceOptions;
  readonly #genesisHash: string;
  /** The hash of each transaction a peer offered, or null when it was refused (see holdsPeerTx). */
  readonly #peerTxHashes = new WeakMap<SignedTx, string | null>();
  readonly mempool: Mempool;
  readonly #admission: TxAdmission;
  /** The last block durable in the store and served by the API. */
  #head!: BlockHeader;
  /** The last block committed in the enclave; one block ahead of #head at most. */
  #tip!: BlockHeader;
  #headHash = '';
  #identity!: EnclaveIdentity;
  /** The freshness value the start-up evidence binds (chosen here; it only has to be unique). */
  #startFreshness = '';
  #contracts: ContractInfo[] = [];
  /** The chain view of the next block, as the enclave reports it (at init, and after each block that changed it). */
  #view: ChainView;
  readonly #viewListeners = new Set<(view: ChainView) => void>();
  #methods = new Map<string, Map<string, boolean>>();
  readonly #proposalTxs = new Map<string, SignedTx>();
  /** The confidential contracts (their manifests say so). */
  #confidential = new Set<string>();
  /**
   * Committed next nonces the enclave reported (with admission verdicts and
   * block results): a bounded cache for the mempool's checks. The enclave's
   * state is the truth; the host never reads it, and asks when it does not know.
   */
  readonly #nonces = new Map<string, number>();
  /** The enclave's safety state at start (where consensus resumes). */
  #resume: { lastSign: LastSign | null; lock: SignerLock | null } = { lastSign: null, lock: null };
  /** Block writes, in height order: a block is written only after the one before it. */
  #persisting: Promise<void> = Promise.resolve();
  /** Transactions of the block committed in the enclave and being written (at most one block). */
  readonly #committing = new Map<string, { tx: SignedTx }>();
  #listeners = new Set<BlockListener>();
  #txListeners = new Set<(tx: SignedTx) => Promise<void> | void>();
  #statusExtension: () => Partial<StatusView> = () => ({});
  #peerAttestations: (voteKeys: readonly string[]) => SignerAttestation[] = () => [];
  readonly #proofs: ProofBuilder;
  #started = false;
  /** When the last block became durable here (clock ms); the block interval is measured from it. */
  #lastCommitAt: number | undefined;
  readonly #metrics: Pick<Metrics, 'txAdmitted' | 'txRefused' | 'blockCommitted'>;

  constructor(options: ChainServiceOptions) {
    this.#o = options;
    this.#metrics = options.metrics ?? noMetrics;
    this.#genesisHash = genesisHash(options.genesis);
    this.#view = genesisChainView(options.genesis);
    // The admission's limit follows the view as governance changes it.
    const view = (): ChainView => this.#view;
    this.mempool = new Mempool(options.mempool);
    this.#proofs = new ProofBuilder({
      genesis: options.genesis,
      store: options.store,
      enclave: options.enclave,
      attestations: async (keys) => this.#attestations(keys),
      durable: () => this.#persisting,
      isConfidential: (contract) => this.#confidential.has(contract),
    });
    this.#admission = new TxAdmission({
      chainId: options.genesis.chainId,
      get maxGasLimit() {
        return view().consensus.maxGasLimit;
      },
      mempool: this.mempool,
      verify: (txs) => options.enclave.admitTxs(txs),
      checkTarget: (contract, method) => this.#checkTarget(contract, method),
      committedNonce: (sender) => this.#nonces.get(sender) ?? 0,
      learnNonce: (sender, nonce) => this.#learnNonce(sender, nonce),
    });
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const { store, enclave, genesis, log } = this.#o;
    const storedGenesis = await store.getGenesisHash();
    if (storedGenesis !== undefined && storedGenesis !== this.#genesisHash) {
      throw new ChainError('BLOCK_INVALID', `the data directory belongs to another chain (genesis ${storedGenesis})`);
    }
    const head = await store.getHead();
    let resume: InitRequest['resume'] = null;
    if (head) {
      const block = await store.getBlock(head.height);
      if (!block) throw new ChainError('BLOCK_INVALID', `the store's head block ${head.height} is missing`);
      // The state is opaque here: the enclave checks it against the certified head's state root.
      const state: [string, string][] = [];
      for await (const entry of store.stateEntries()) state.push(entry);
      resume = { header: block.header, certificate: block.certificate, state };
      log.info('resuming chain', { height: head.height, hash: head.hash, stateEntries: state.length });
    }
    enclave.start();
    const opened = await enclave.openIdentity(this.#o.successorIdentityFile);
    this.#resume = { lastSign: opened.lastSign, lock: opened.lock };
    const keys = opened.publicKeys;
    this.#startFreshness = randomBytes(16).toString('hex');
    const init = await enclave.init({
      genesis,
      nodeId: this.#o.nodeId,
      freshness: this.#startFreshness,
      resume,
    });
    this.#identity = init.identity;
    this.#resume = init.signer;
    this.#view = init.view;
    // The chain view, not the genesis, says which key this node votes with: a handover may have changed it.
    const self = init.view.validators.find((v) => v.nodeId === this.#o.nodeId);
    if (self && self.voteKey !== keys.vote) {
      if (!opened.successor) {
        throw new ChainError(
          'SEAL_INVALID',
          `this node's enclave vote key ${keys.vote} is not the one the chain lists for node ${this.#o.nodeId} (${self.voteKey}): the sealed identity belongs to another node or enclave program ` +
            '(after a handover, start the node with the new program, whose successor identity the chain lists)',
        );
      }
      log.warn('this enclave is the successor of the validator the chain lists for this node: it votes once the handover is committed', { voteKey: keys.vote, listed: self.voteKey });
    }
    if (init.genesisBlock) {
      const { header, receipts, writeSet } = init.genesisBlock;
      const hash = headerHash(header);
      await store.setGenesisHash(this.#genesisHash);
      await store.commitBlock({ hash, header, txHashes: [], certificate: null }, [], receipts, writeSet);
      this.#setHead(header);
      this.#tip = header;
      log.info('created genesis block', { chainId: genesis.chainId, hash });
    } else {
      this.#setHead(resume!.header);
      this.#tip = resume!.header;
    }
    await this.#refreshContracts();
    log.info('enclave ready', {
      chainId: genesis.chainId,
      // The chain's identity: `cloister genesis hash FILE` and node_status show the same.
      genesisHash: this.#genesisHash,
      platform: this.#identity.platform,
      measurement: this.#identity.measurement,
      voteKey: this.#identity.publicKeys.vote,
    });
  }

  /** Waits for the blocks being written; the store and enclave are stopped by their owner. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.mempool.wakeAll();
    await this.#persisting.catch(() => {});
  }

  /** The last block committed in the enclave: the parent of the next block. */
  get tip(): BlockHeader {
    return this.#tip;
  }

  /** What the enclave's sealed safety state said at start: the last thing it signed and its lock. */
  get signerResume(): { lastSign: LastSign | null; lock: SignerLock | null } {
    return this.#resume;
  }

  get identity(): EnclaveIdentity {
    return this.#identity;
  }

  /**
   * Commits a block this node's enclave executed (built or re-executed) with
   * its commit certificate. The tip moves at once, so the next block builds on
   * it; the enclave commits in ecall order; the block is written after the
   * blocks before it. Resolves once the block is durable and served.
   */
  commitExecuted(result: BlockResult, certificate: CommitCertificate, txs: SignedTx[]): Promise<void> {
    if (result.header.height !== this.#tip.height + 1 || result.header.parentHash !== headerHash(this.#tip)) {
      return Promise.reject(new ChainError('BLOCK_INVALID', `block ${result.header.height} does not extend the tip ${this.#tip.height}`));
    }
    const enclaveCommit = this.#o.enclave.commitBlock(result.blockHash, certificate).then((committed) => {
      if (committed.view) this.#setView(committed.view, result.header.height + 1);
      return committed;
    });
    const advanced = this.#applied(result, txs);
    this.mempool.remove(result.txHashes);
    // After the removal: a sender's queued transaction may continue from its new committed nonce.
    for (const [sender, nonce] of advanced) this.mempool.committed(sender, nonce);
    const write = this.#persisting.then(async () => {
      const committed = await enclaveCommit;
      await this.#persist(result, certificate, txs, committed.viewTransition);
    });
    this.#persisting = write.catch(() => {});
    write.catch((err: unknown) => this.#o.onFatal(err instanceof Error ? err : new Error(String(err))));
    return write;
  }

  /** The chain view of the next block: validators, policy, consensus parameters and members, as governance left them. */
  view(): ChainView {
    return this.#view;
  }

  /** Called with the new view whenever a committed block changed it. */
  onViewChange(listener: (view: ChainView) => void): () => void {
    this.#viewListeners.add(listener);
    return () => this.#viewListeners.delete(listener);
  }

  #setView(view: ChainView, height: number): void {
    this.#view = view;
    this.#o.log.info('governance changed the chain view', { fromHeight: height, policyHash: view.policyHash, members: view.members.length, threshold: view.threshold });
    for (const listener of this.#viewListeners) listener(view);
  }

  onBlock(listener: BlockListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #setHead(header: BlockHeader): void {
    this.#head = header;
    this.#headHash = headerHash(header);
  }

  async #refreshContracts(): Promise<void> {
    this.#contracts = await this.#o.enclave.listContracts();
    this.#methods = new Map(
      this.#contracts.map((c) => {
        const methods = (c.manifest as { methods: Record<string, { readonly: boolean }> }).methods;
        return [c.name, new Map(Object.entries(methods).filter(([m]) => m !== 'init').map(([m, spec]) => [m, spec.readonly]))];
      }),
    );
    this.#confidential = new Set(this.#contracts.filter((c) => (c.manifest as { confidential?: boolean }).confidential === true).map((c) => c.name));
  }

  /**
   * After the enclave committed a block: the next block builds on it and its
   * nonces count. Returns the senders whose committed nonce moved (the
   * enclave says which), with the new nonce.
   */
  #applied(result: BlockResult, txs: SignedTx[]): [string, number][] {
    this.#tip = result.header;
    // Until the block is durable, its transactions are answered from here (they left the mempool).
    txs.forEach((tx, index) => this.#committing.set(result.txHashes[index]!, { tx }));
    for (const [sender, nonce] of result.nonces) this.#learnNonce(sender, nonce);
    return result.nonces;
  }

  #learnNonce(sender: string, nonce: number): void {
    const known = this.#nonces.get(sender);
    if (known !== undefined && known >= nonce) return;
    this.#nonces.delete(sender);
    this.#nonces.set(sender, nonce);
    // Bounded: the senders heard of longest ago are forgotten first (and asked again when needed).
    if (this.#nonces.size > NONCE_CACHE_LIMIT) this.#nonces.delete(this.#nonces.keys().next().value!);
  }

  /** Writes a committed block in one atomic batch, then serves it. */
  async #persist(result: BlockResult, certificate: CommitCertificate, txs: SignedTx[], viewTransition: ViewTransitionProof | null): Promise<void> {
    const block: StoredBlock = { hash: result.blockHash, header: result.header, txHashes: result.txHashes, certificate };
    // Validators' attestations recorded by this block, indexed for receipt proofs (public system transactions).
    const ledgerAttestations = txs.flatMap((tx, i) =>
      tx.contract === CONSORTIUM_CONTRACT && !isSealedTx(tx) && tx.method === ATTEST_METHOD && result.receipts[i]?.status === 'success' ? [{ voteKey: tx.from, txHash: result.txHashes[i]! }] : [],
    );
    await this.#o.store.commitBlock(block, txs, result.receipts, result.writeSet, { viewTransition, ledgerAttestations });
    this.#setHead(result.header);
    for (const hash of result.txHashes) this.#committing.delete(hash);
    if (result.contractsChanged) await this.#refreshContracts();
    const now = this.#o.clock.now();
    const sinceLastMs = this.#lastCommitAt === undefined ? null : now - this.#lastCommitAt;
    this.#lastCommitAt = now;
    this.#metrics.blockCommitted(txs.length, sinceLastMs === null ? null : sinceLastMs / 1000);
    // Every block, with the interval since the block before (absent for the first after start); at debug since
    // under load blocks come tens a second (the CLI's 'committed' info line reports at most one a second).
    this.#o.log.debug('block committed', { height: result.header.height, txs: txs.length, ...(sinceLastMs === null ? {} : { ms: sinceLastMs }) });
    for (const listener of this.#listeners) listener(block);
  }

  // ---- ChainApi ----

  status(): StatusView {
    return {
      chainId: this.#o.genesis.chainId,
      nodeId: this.#o.nodeId,
      height: this.#head.height,
      headHash: this.#headHash,
      headTime: this.#head.time,
      platform: this.#identity.platform,
      measurement: this.#identity.measurement,
      mempoolSize: this.mempool.size + this.mempool.queuedSize,
      genesisHash: this.#genesisHash,
      ...this.#statusExtension(),
    };
  }

  blockNumber(): number {
    return this.#head.height;
  }

  get head(): BlockHeader {
    return this.#head;
  }

  async #blockView(block: StoredBlock | undefined, full: boolean, budget?: ViewBudget): Promise<BlockView | null> {
    if (!block) return null;
    const { header } = block;
    let transactions: BlockView['transactions'] = block.txHashes;
    if (full && block.txHashes.length > 0) {
      // Before reading them: a committed block's transactions are at most maxBlockBytes (and maxTxBytes each),
      // plus the view's hash and position fields (under 256 bytes a transaction).
      const { maxBlockBytes, maxTxBytes } = this.#view.consensus;
      const count = block.txHashes.length;
      await budget?.reserve(Math.min(maxBlockBytes, count * maxTxBytes) + count * 256);
      const stored = await this.#o.store.getTxs(block.txHashes);
      transactions = stored.map((s, i) => ({
        ...s!.tx,
        hash: block.txHashes[i]!,
        blockHeight: s!.height,
        blockHash: s!.blockHash,
        index: s!.index,
      }));
    }
    return { hash: block.hash, ...header, transactions, certificate: block.certificate, header };
  }

  async getBlockByNumber(height: number, fullTransactions: boolean, budget?: ViewBudget): Promise<BlockView | null> {
    if (!Number.isSafeInteger(height) || height < 0 || height > this.#head.height) return null;
    return this.#blockView(await this.#o.store.getBlock(height), fullTransactions, budget);
  }

  async getBlockByHash(hash: string, fullTransactions: boolean, budget?: ViewBudget): Promise<BlockView | null> {
    if (!isHexOfLength(hash, 32)) return null;
    return this.#blockView(await this.#o.store.getBlockByHash(hash), fullTransactions, budget);
  }

  /**
   * A client's transaction: admitted to the mempool, then announced (the node
   * gossips it). The client's acknowledgement waits for the announcement, so
   * an acknowledged transaction survives this node dying right after.
   */
  async sendTransaction(raw: unknown): Promise<string> {
    const hash = await this.#submit(raw);
    const tx = this.mempool.get(hash);
    if (tx) await Promise.all([...this.#txListeners].map((listener) => listener(tx)));
    return hash;
  }

  /** Mempool admission, counted: every transaction from a client or a peer comes through here. */
  async #submit(raw: unknown): Promise<string> {
    try {
      const hash = await this.#admission.submit(raw);
      this.#metrics.txAdmitted();
      return hash;
    } catch (err) {
      this.#metrics.txRefused(err instanceof ChainError ? err.code : 'INTERNAL');
      throw err;
    }
  }

  /** Called with each transaction a client sent to this node, once it is in the mempool; awaited before the client's answer. */
  onLocalTx(listener: (tx: SignedTx) => Promise<void> | void): () => void {
    this.#txListeners.add(listener);
    return () => this.#txListeners.delete(listener);
  }

  /**
   * Transactions gossiped by a peer, through the same admission as a client's
   * (the enclave checks signatures). The verdict is for the gossip layer:
   * reject when a transaction is one no honest node relays (malformed, badly
   * signed, another chain), ignore when nothing was new, else accept.
   */
  async admitFromPeer(txs: SignedTx[]): Promise<'accept' | 'ignore' | 'reject'> {
    const outcomes = await Promise.allSettled(txs.map((tx) => Promise.resolve().then(() => this.#submit(tx))));
    let accepted = 0;
    let fault = false;
    outcomes.forEach((o, i) => {
      const tx = txs[i]!;
      if (o.status === 'fulfilled') {
        accepted++;
        this.#peerTxHashes.set(tx, o.value);
      } else {
        const code = o.reason instanceof ChainError ? o.reason.code : undefined;
        if (code !== undefined && PEER_FAULTS.has(code)) fault = true;
        // Already waiting here (a transaction pushed again) is held; anything else refused is not.
        this.#peerTxHashes.set(tx, code === 'TX_DUPLICATE' ? txHash(tx) : null);
      }
    });
    if (fault) return 'reject';
    return accepted > 0 ? 'accept' : 'ignore';
  }

  /**
   * Whether the mempool holds a transaction a peer offered, asked right after
   * admitFromPeer (which remembers each one's hash, so it is not computed again).
   */
  holdsPeerTx(tx: SignedTx): boolean {
    const hash = this.#peerTxHashes.get(tx);
    if (hash === undefined) return this.mempool.has(txHash(tx));
    return hash !== null && this.mempool.has(hash);
  }

  /** Adds consensus and network facts to status (the node composes them). */
  setStatusExtension(extension: () => Partial<StatusView>): void {
    this.#statusExtension = extension;
  }

  /** Where proofs find the evidence of peers' enclaves (the admission service, which verified it). */
  setPeerAttestations(source: (voteKeys: readonly string[]) => SignerAttestation[]): void {
    this.#peerAttestations = source;
  }

  /** This enclave's start evidence, and what the peer source knows of the others. */
  #attestations(voteKeys: readonly string[]): SignerAttestation[] {
    const own = this.getEvidence() as EvidenceView;
    const self: SignerAttestation = { validator: own.publicKeys.vote!, nodeId: own.nodeId, publicKeys: own.publicKeys, freshness: own.freshness, evidence: own.evidence };
    const others = this.#peerAttestations(voteKeys.filter((k) => k !== self.validator));
    return voteKeys.includes(self.validator) ? [self, ...others] : others;
  }

  getViewTransitions(fromHeight: number, limit: number): Promise<ViewTransitionProof[]> {
    return this.#o.store.viewTransitions(Number.MAX_SAFE_INTEGER, fromHeight, limit);
  }

  getReceiptProof(hash: string): Promise<ReceiptProof | null> {
    return this.#proofs.receiptProof(hash);
  }

  getStateProof(contract: string, key: string, height?: number): Promise<StateValueProof> {
    return this.#proofs.stateProof(contract, key, height ?? null);
  }

  /** `method` is null for a sealed transaction: the enclave opens it and checks the method. */
  #checkTarget(contract: string, method: string | null): void {
    if (contract === CONSORTIUM_CONTRACT) {
      // The enclave tries a governance transaction on the committed state (membership, actions, the proposal's state).
      const problem = systemTxProblem(method);
      if (problem) throw new ChainError(problem.code, problem.message);
      return;
    }
    const methods = this.#methods.get(contract);
    if (!methods) throw new ChainError('TX_UNKNOWN_CONTRACT', `no contract named "${contract}"`);
    const confidential = this.#confidential.has(contract);
    if (method === null) {
      if (!confidential) throw new ChainError('TX_MALFORMED', `contract "${contract}" is public: send the method and arguments in the clear`);
      return;
    }
    if (confidential) {
      throw new ChainError('TX_NOT_ENCRYPTED', `contract "${contract}" is confidential: seal the method and arguments to the network encryption key (tee_getEncryptionKey)`);
    }
    if (!methods.has(method)) throw new ChainError('TX_UNKNOWN_METHOD', `contract "${contract}" has no method "${method}"`);
    if (methods.get(method) === true) {
      throw new ChainError('TX_READONLY_METHOD', `"${contract}.${method}" is read-only: use chain_call, not a transaction`);
    }
  }

  async getTransaction(hash: string): Promise<TransactionView | null> {
    if (!isHexOfLength(hash, 32)) return null;
    const waiting = this.mempool.get(hash);
    // A transaction of the block being written is still pending: its position is not durable yet.
    const pending = waiting ?? this.#committing.get(hash)?.tx;
    if (pending) return { ...pending, hash, blockHeight: null, blockHash: null, index: null };
    const stored = await this.#o.store.getTx(hash);
    if (!stored) return null;
    return { ...stored.tx, hash, blockHeight: stored.height, blockHash: stored.blockHash, index: stored.index };
  }

  async getTransactionReceipt(hash: string): Promise<ReceiptView | null> {
    if (!isHexOfLength(hash, 32)) return null;
    const receipt = await this.#o.store.getReceipt(hash);
    if (!receipt) return null;
    const view: ReceiptView = {
      txHash: receipt.txHash,
      status: receipt.status,
      blockHeight: receipt.blockHeight,
      blockHash: receipt.blockHash,
      index: receipt.index,
      gasUsed: receipt.gasUsed,
      result: receipt.result,
      events: receipt.events,
    };
    if (receipt.error) view.error = receipt.error;
    if (receipt.sealed !== undefined) view.sealed = receipt.sealed;
    return view;
  }

  async getNonce(address: string): Promise<number> {
    if (!isHexOfLength(address, 32)) throw new ChainError('TX_MALFORMED', 'an address is a 32-byte public key in lowercase hex');
    let committed = this.#nonces.get(address);
    if (committed === undefined) {
      const [fromEnclave] = await this.#o.enclave.nonces([address]);
      this.#learnNonce(address, fromEnclave ?? 0);
      committed = this.#nonces.get(address) ?? 0;
    }
    return this.mempool.nextNonce(address, committed);
  }

  async call(contract: string, method: string, args: JsonValue[], auth?: CallAuth): Promise<CallResultView> {
    const out = await this.#o.enclave.call({ contract, method, args, auth: auth ?? null });
    return { result: out.result as JsonValue, gasUsed: out.gasUsed };
  }


  /**
   * Transactions an enclave put into a block it proposed itself (system
   * transactions, in no mempool): kept for a while so that peers rebuilding
   * the compact proposal can fetch them from this node.
   */
  keepProposalTxs(txs: readonly SignedTx[]): void {
    for (const tx of txs) this.#proposalTxs.set(txHash(tx), tx);
    while (this.#proposalTxs.size > 256) this.#proposalTxs.delete(this.#proposalTxs.keys().next().value!);
  }

  proposalTx(hash: string): SignedTx | undefined {
    return this.#proposalTxs.get(hash);
  }

  /** The genesis this node runs (a client pins it by hash, or checks it against its own copy). */
  getGenesis(): Genesis {
    return this.#o.genesis;
  }

  async sealedCall(contract: string, sealed: SealedPayload): Promise<SealedCallView> {
    return this.#o.enclave.sealedCall(contract, sealed);
  }

  /**
   * The newest network encryption key with fresh evidence from this node's
   * enclave binding it (publicKeys.network) to the caller's nonce (or one
   * chosen here): what a client verifies against the genesis before sealing.
   */
  async getEncryptionKey(nonce?: string): Promise<EncryptionKeyView> {
    const freshness = nonce ?? randomBytes(16).toString('hex');
    const out = await this.#o.enclave.getEncryptionKey(freshness);
    return { generation: out.generation, publicKey: out.publicKey, evidence: this.#evidenceView(out.identity, freshness) };
  }

  /** The enclave's attestation token (EdDSA JWT) with the fresh evidence it restates, bound to the caller's nonce. */
  async getAttestationToken(nonce: string, audience?: string): Promise<AttestationTokenView> {
    const out = await this.#o.enclave.getAttestationToken(nonce, audience ?? null, this.#o.clock.now());
    return { token: out.token, evidence: this.#evidenceView(out.identity, nonce) };
  }

  getEvidence(nonce?: string): EvidenceView | Promise<EvidenceView> {
    if (nonce === undefined) return this.#evidenceView(this.#identity, this.#startFreshness);
    return this.#o.enclave.getEvidence(nonce).then((identity) => this.#evidenceView(identity, nonce));
  }

  #evidenceView(identity: EnclaveIdentity, freshness: string): EvidenceView {
    const view: EvidenceView = {
      platform: identity.platform,
      measurement: identity.measurement,
      publicKeys: identity.publicKeys,
      nodeId: this.#o.nodeId,
      chainId: this.#o.genesis.chainId,
      freshness,
      reportData: identity.reportData,
      evidence: identity.evidence,
    };
    if (this.#o.virtualRoot) view.virtualRoot = this.#o.virtualRoot;
    return view;
  }

  listContracts(): ContractView[] {
    return this.#contracts.map((c) => ({ name: c.name, measurement: c.measurement, manifest: c.manifest }));
  }
}
