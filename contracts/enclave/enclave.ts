import {
  ChainError,
  ZERO_HASH,
  checkCallAuth,
  canonicalize,
  checkChildHeader,
  checkTxStateless,
  headerHash,
  receiptsRootOf,
  sha256Hex,
  signingMessage,
  stateRootHex,
  toHex,
  txRootOf,
  verifyCertificate,
  voteMessage,
  type BlockHeader,
  type CommitCertificate,
  type Genesis,
  type JsonValue,
  type Receipt,
  SIGN_STEP,
  type SignRequest,
  type SignedTx,
  type SignedVote,
  type StateTreeRoot,
  type Vote,
} from '../../consensus/index.js';
import { reportDataFor } from '../../attestation/index.js';
import { bundleMeasurement, parseManifest, type ContractBundle } from '../bundle/index.js';
import { ContractRuntime } from '../sandbox/index.js';
import { parseEcall } from './ecall-parse.js';
import { BlockExecutor, contractStateAccess, readDeployments, readNonce, type Deployment, type ExecutionOutput } from './executor.js';
import type { QuerySnapshot } from './query-engine.js';
import type {
  AdmissionResult,
  BlockResult,
  CallRequest,
  CommitResult,
  ContractInfo,
  EcallRequest,
  EnclaveIdentity,
  InitRequest,
  InitResponse,
  ProposalToSign,
  UnsealResponse,
} from './protocol.js';
import { CommittedState, StateOverlay, stateKey, type StateWrite } from './state.js';
import { SealedIdentity } from './sealed-identity.js';
import { QueryLane } from './query-lane.js';
import { genesisChainView, type ChainView } from './chain-view.js';
import { VerifiedSet } from './verified-set.js';
import { VerifierPool } from './verifier-pool.js';

/** What the enclave asks of its platform: evidence over the report data it chose, and its sealing key. */
export interface EnclavePlatform {
  getReport(reportData: Uint8Array): Promise<{ platform: string; measurement: string; evidence: Uint8Array }>;
  /** A 32-byte key the platform derives for this enclave program only (never the same for another measurement). */
  getSealingKey(): Promise<Uint8Array>;
}

/** A signature, and the enclave identity sealed after recording it: the host stores the blob before using the signature. */
export interface SignResult {
  validator: string;
  signature: string;
  sealed: string;
}

export interface EnclaveOptions {
  /** Threads that verify signatures at admission (0: on the calling thread). */
  verifierThreads?: number;
  /** Run read-only calls on their own thread over a copy of the committed state (the enclave worker does). */
  callThread?: boolean;
}

/** The gas a read-only call may use. */
export const CALL_GAS_LIMIT = 10_000_000;

/** The zero key stands for "no caller" (genesis deployment, anonymous calls). */
export const ANONYMOUS_CALLER = ZERO_HASH;

interface PendingBlock {
  header: BlockHeader;
  writeSet: StateWrite[];
  tree: StateTreeRoot;
}

/**
 * The enclave program's logic, behind the ecall interface. It holds the chain
 * state, the contract runtime and the enclave's signing key; none of them
 * leave. It trusts nothing from the host it cannot check: every request is
 * parsed here, state loaded at start must match a certified state root, every
 * header field of a block it votes for is checked, and every signature obeys
 * the safety rules kept in its sealed identity.
 */
export class Enclave {
  #runtime: ContractRuntime;
  #identity: SealedIdentity | undefined;
  #genesis: Genesis | undefined;
  #view: ChainView | undefined;
  #nodeId = '';
  #state = new CommittedState();
  #head: BlockHeader | undefined;
  #headHash = '';
  #deployments = new Map<string, Deployment>();
  #pending = new Map<string, PendingBlock>();
  #executor: BlockExecutor;
  readonly #verified = new VerifiedSet();
  readonly #verifiers: VerifierPool | undefined;
  readonly #calls: QueryLane | undefined;

  private constructor(runtime: ContractRuntime, private readonly platform: EnclavePlatform, options: EnclaveOptions) {
    this.#runtime = runtime;
    const threads = options.verifierThreads ?? 0;
    this.#verifiers = threads > 0 ? new VerifierPool(threads) : undefined;
    this.#calls = options.callThread ? new QueryLane({ snapshot: () => this.#querySnapshot() }) : undefined;
    this.#executor = new BlockExecutor(runtime, (name) => this.#deployments.get(name), this.#verified.has);
  }

  static async create(platform: EnclavePlatform, options: EnclaveOptions = {}): Promise<Enclave> {
    return new Enclave(await ContractRuntime.create(), platform, options);
  }

  /** Handles one ecall as the host sent it (parsed here: nothing from the host is trusted). */
  async handle(raw: unknown): Promise<unknown> {
    return this.handleParsed(parseEcall(raw));
  }

  /** Handles an ecall already parsed by parseEcall (the worker parses first, to schedule it). */
  async handleParsed(request: EcallRequest): Promise<unknown> {
    switch (request.type) {
      case 'unseal':
        return this.#unseal(request.sealed);
      case 'init':
        return this.#init(request);
      case 'proposeBlock':
        return this.#proposeBlock(request.time, request.txs);
      case 'executeBlock':
        return this.#executeBlock(request.header, request.txs);
      case 'commitBlock':
        return this.#commitBlock(request.blockHash, request.certificate);
      case 'call':
        return this.#call(request);
      case 'getEvidence':
        return this.#evidence(request.freshness);
      case 'listContracts':
        return this.#listContracts();
      case 'admitTxs':
        return this.#admitTxs(request.txs);
      case 'nonces':
        return this.#nonces(request.addresses);
      case 'signVote':
        return this.#signVote(request.vote, request.justification);
      case 'signProposal':
        return this.#signProposal(request.proposal);
    }
  }

  async dispose(): Promise<void> {
    await this.#calls?.close();
    this.#runtime.dispose();
    await this.#verifiers?.close();
  }

  /**
   * Checks transactions offered to the mempool (shape, size, chain, gas,
   * signature) and remembers the ones that verified, so block execution does not
   * verify them again. Safe to run while a block executes: it only adds to the
   * verified set. Each verdict carries the sender's committed next nonce.
   */
  async #admitTxs(txs: unknown[]): Promise<AdmissionResult[]> {
    const view = this.#viewOrThrow();
    const limits = { maxTxBytes: view.consensus.maxTxBytes, maxGasLimit: view.consensus.maxGasLimit };
    const results = this.#verifiers
      ? await this.#verifiers.check(view.chainId, limits, txs)
      : txs.map((raw): AdmissionResult => {
          try {
            const { hash, size } = checkTxStateless(raw, view.chainId, limits);
            return { ok: true, hash, size, nonce: 0 };
          } catch (err) {
            return { ok: false, code: err instanceof ChainError ? err.code : 'TX_MALFORMED', message: (err as Error).message };
          }
        });
    return results.map((r, i): AdmissionResult => {
      if (!r.ok) return r;
      this.#verified.add(r.hash);
      // The verdict is ok only for a well-formed transaction, so its fields are checked.
      const tx = txs[i] as SignedTx;
      const problem = this.#targetProblem(tx);
      if (problem) return { ok: false, ...problem };
      return { ...r, nonce: readNonce(this.#state, tx.from) };
    });
  }

  /** An admitted transaction must name a deployed contract and one of its methods that is not read-only. */
  #targetProblem(tx: SignedTx): { code: string; message: string } | null {
    const deployment = this.#deployments.get(tx.contract);
    if (!deployment) return { code: 'TX_UNKNOWN_CONTRACT', message: `no contract named "${tx.contract}"` };
    const methods = deployment.bundle.manifest.methods as Record<string, unknown>;
    if (tx.method === 'init' || !Object.prototype.hasOwnProperty.call(methods, tx.method)) {
      return { code: 'TX_UNKNOWN_METHOD', message: `contract "${tx.contract}" has no method "${tx.method}"` };
    }
    return this.#executor.admissible(tx);
  }

  #nonces(addresses: string[]): number[] {
    this.#viewOrThrow();
    return addresses.map((a) => readNonce(this.#state, a));
  }

  /**
   * Opens the newest sealed identity the host kept (or makes a new one when it
   * has none) and returns the public keys, the identity sealed again, and the
   * safety state a restarted validator resumes from. The private key is made
   * here and leaves only sealed to this program.
   */
  async #unseal(sealed: string[]): Promise<UnsealResponse> {
    if (this.#identity) throw new ChainError('ECALL_INVALID', 'the enclave identity is already open');
    const identity = SealedIdentity.open(sealed, await this.platform.getSealingKey());
    this.#identity = identity;
    return {
      publicKeys: { vote: identity.signer.publicKey },
      sealed: identity.seal(),
      from: identity.from,
      lastSign: identity.lastSign,
      lock: identity.lock,
    };
  }

  async #init(request: InitRequest): Promise<InitResponse> {
    if (this.#genesis) throw new ChainError('ECALL_INVALID', 'enclave already initialised');
    if (!this.#identity) throw new ChainError('ECALL_INVALID', 'open the enclave identity (unseal) before init');
    let view: ChainView;
    try {
      view = genesisChainView(request.genesis);
    } catch (err) {
      throw new ChainError('ECALL_INVALID', `invalid genesis: ${(err as Error).message}`);
    }
    let genesisBlock: InitResponse['genesisBlock'] = null;
    if (request.resume) {
      this.#resume(request.genesis, view, request.resume);
    } else {
      genesisBlock = this.#buildGenesis(request.genesis, view);
      this.#state.apply(genesisBlock.writeSet);
      this.#setHead(genesisBlock.header);
      this.#reloadDeployments();
    }
    this.#genesis = request.genesis;
    this.#view = view;
    this.#nodeId = request.nodeId;
    this.#calls?.start();
    const moved = request.resume?.certificate ? this.#learnOwnSignature(request.resume.certificate) : false;
    const identity = this.#identity;
    return {
      identity: await this.#evidence(request.freshness),
      genesisBlock,
      signer: { lastSign: identity.lastSign, lock: identity.lock },
      sealed: moved ? identity.seal() : null,
    };
  }

  /**
   * Takes up the chain where the host's store left it, only if the store is
   * right: the state must hash to the header's state root, and the header must
   * be the genesis block this enclave builds itself or carry a commit
   * certificate of the validators.
   */
  #resume(genesis: Genesis, view: ChainView, resume: NonNullable<InitRequest['resume']>): void {
    const { header, certificate, state } = resume;
    if (header.chainId !== view.chainId) throw new ChainError('STATE_INVALID', `the stored head belongs to chain "${header.chainId}"`);
    const hash = headerHash(header);
    if (header.height === 0) {
      const rebuilt = this.#buildGenesis(genesis, view);
      if (headerHash(rebuilt.header) !== hash) throw new ChainError('STATE_INVALID', 'the stored genesis block is not the one this genesis makes');
    } else {
      this.#requireCertified(header, hash, certificate, view);
    }
    this.#state.load(state);
    if (this.#state.root !== header.stateRoot) {
      this.#state = new CommittedState();
      this.#deployments.clear();
      throw new ChainError(
        'STATE_INVALID',
        `the stored state does not match the state root of the last certified block ${header.height} (the database was altered or is damaged)`,
      );
    }
    this.#setHead(header);
    this.#reloadDeployments();
  }

  #requireCertified(header: BlockHeader, hash: string, certificate: CommitCertificate | null, view: ChainView): void {
    if (!certificate || certificate.height !== header.height || certificate.blockHash !== hash) {
      throw new ChainError('STATE_INVALID', `the stored head ${header.height} has no commit certificate for its header`);
    }
    if (!verifyCertificate(view.chainId, certificate, view.validatorKeys, view.quorum)) {
      throw new ChainError('STATE_INVALID', `the commit certificate of the stored head ${header.height} does not verify`);
    }
  }

  /** Deploys the genesis contracts on an empty state and returns the genesis block (state untouched). */
  #buildGenesis(genesis: Genesis, view: ChainView): NonNullable<InitResponse['genesisBlock']> {
    const block = new StateOverlay(new CommittedState());
    const deployments = new Map<string, Deployment>();
    for (const contract of genesis.contracts) {
      let bundle: ContractBundle;
      try {
        bundle = { manifest: parseManifest(contract.manifest), code: contract.code };
      } catch (err) {
        throw new ChainError('ECALL_INVALID', `invalid genesis: contract "${contract.name}": ${(err as Error).message}`);
      }
      const measurement = bundleMeasurement(bundle);
      block.write(stateKey.deployment(contract.name), canonicalize({ name: contract.name, measurement, bundle } as unknown as JsonValue));
      deployments.set(contract.name, { name: contract.name, measurement, bundle });
    }
    const receipts: Receipt[] = [];
    for (const contract of genesis.contracts) {
      const deployment = deployments.get(contract.name)!;
      const txOverlay = new StateOverlay(block);
      // Deployment compiles the bundle and runs its init method when it has one.
      const outcome = this.#runtime.deploy(
        deployment.bundle,
        contract.initArgs,
        { contract: contract.name, caller: ANONYMOUS_CALLER, blockHeight: 0, blockTime: genesis.time, readonly: false },
        CALL_GAS_LIMIT,
        contractStateAccess(txOverlay, contract.name),
      );
      if (outcome.status !== 'success') {
        throw new ChainError('ECALL_INVALID', `invalid genesis: deploying "${contract.name}" failed: ${outcome.error?.message ?? ''}`);
      }
      txOverlay.mergeInto(block);
      receipts.push({
        txHash: sha256Hex(`genesis-init:${contract.name}`),
        index: receipts.length,
        status: 'success',
        gasUsed: outcome.gasUsed,
        result: outcome.result,
        events: outcome.events.map((e) => ({ contract: contract.name, name: e.name, data: e.data })),
        error: null,
      });
    }
    const writeSet = block.writeSet();
    const header: BlockHeader = {
      chainId: genesis.chainId,
      height: 0,
      parentHash: ZERO_HASH,
      time: genesis.time,
      proposer: ZERO_HASH,
      txRoot: txRootOf([]),
      receiptsRoot: receiptsRootOf(receipts),
      stateRoot: stateRootHex(new CommittedState().treeAfter(writeSet)),
      validatorSetHash: view.validatorSetHash,
      policyHash: view.policyHash,
    };
    return { header, receipts, writeSet };
  }

  #setHead(header: BlockHeader): void {
    this.#head = header;
    this.#headHash = headerHash(header);
  }

  #reloadDeployments(): void {
    this.#deployments = readDeployments(this.#state);
  }


  #viewOrThrow(): ChainView {
    if (!this.#view || !this.#head || !this.#identity) throw new ChainError('ECALL_INVALID', 'enclave not initialised');
    return this.#view;
  }

  #proposeBlock(time: number, txs: unknown[]): BlockResult {
    const view = this.#viewOrThrow();
    const parent = this.#head!;
    const self = this.#identity!.signer.publicKey;
    if (!view.validatorKeys.includes(self)) throw new ChainError('BLOCK_INVALID', 'this enclave is not a validator: it does not propose');
    const height = parent.height + 1;
    const blockTime = Math.max(time, parent.time);
    const output = this.#executor.execute(this.#state, { chainId: view.chainId, height, time: blockTime }, view.consensus, txs, 'propose');
    const tree = this.#state.treeAfter(output.writeSet);
    const header: BlockHeader = {
      chainId: view.chainId,
      height,
      parentHash: this.#headHash,
      time: blockTime,
      proposer: self,
      txRoot: txRootOf(output.txHashes),
      receiptsRoot: receiptsRootOf(output.receipts),
      stateRoot: stateRootHex(tree),
      validatorSetHash: view.validatorSetHash,
      policyHash: view.policyHash,
    };
    return this.#finish(header, output, tree);
  }

  /**
   * Re-executes a block proposed elsewhere. Every header field is checked:
   * chain, height, parent, time against the parent; proposer, validator set
   * and policy against the chain view of its height; the three roots against
   * this enclave's own execution. Only then may it be voted for.
   */
  #executeBlock(header: BlockHeader, txs: unknown[]): BlockResult {
    const view = this.#viewOrThrow();
    checkChildHeader(this.#head!, header);
    const fail = (why: string): never => {
      throw new ChainError('BLOCK_INVALID', `block ${header.height}: ${why}`);
    };
    if (!view.validatorKeys.includes(header.proposer)) fail('the proposer is not a validator');
    if (header.validatorSetHash !== view.validatorSetHash) fail('validatorSetHash is not the validator set of this height');
    if (header.policyHash !== view.policyHash) fail('policyHash is not the attestation policy of this height');
    const output = this.#executor.execute(this.#state, { chainId: view.chainId, height: header.height, time: header.time }, view.consensus, txs, 'validate');
    const tree = this.#state.treeAfter(output.writeSet);
    const expected = { txRoot: txRootOf(output.txHashes), receiptsRoot: receiptsRootOf(output.receipts), stateRoot: stateRootHex(tree) };
    for (const [field, value] of Object.entries(expected)) {
      if (header[field as keyof typeof expected] !== value) fail(`${field} does not match re-execution`);
    }
    return this.#finish(header, output, tree);
  }

  #finish(header: BlockHeader, output: ExecutionOutput, tree: StateTreeRoot): BlockResult {
    const blockHash = headerHash(header);
    // Executed and validated: only now may this enclave vote for it (signVote checks).
    this.#pending.set(blockHash, { header, writeSet: output.writeSet, tree });
    const nonces = [...output.nonces];
    const contractsChanged = output.writeSet.some(([key]) => key.startsWith(stateKey.deployment('')));
    return {
      header,
      blockHash,
      included: output.includedIndexes,
      txHashes: output.txHashes,
      receipts: output.receipts,
      writeSet: output.writeSet,
      excluded: output.excluded,
      nonces,
      contractsChanged,
    };
  }

  /** Records the slot under the safety rules (refusing a conflict or an unjustified vote), signs, and reseals. */
  #signAt(request: SignRequest, message: Uint8Array): SignResult {
    const view = this.#viewOrThrow();
    const identity = this.#identity!;
    if (!view.validatorKeys.includes(identity.signer.publicKey)) throw new ChainError('BLOCK_INVALID', 'this enclave is not a validator: it does not sign');
    identity.claim(request, { chainId: view.chainId, validators: view.validatorKeys, quorum: view.quorum });
    return { validator: identity.signer.publicKey, signature: identity.signer.sign(message), sealed: identity.seal() };
  }

  /** The next height's votes only, and a block only when this enclave executed and validated it. */
  #checkVoteTarget(chainId: string, height: number, blockHash: string | null): void {
    const view = this.#viewOrThrow();
    if (chainId !== view.chainId) throw new ChainError('BLOCK_INVALID', 'vote for another chain');
    if (height !== this.#head!.height + 1) throw new ChainError('BLOCK_INVALID', `votes are for height ${this.#head!.height + 1}`);
    if (blockHash !== null && !this.#pending.has(blockHash)) {
      throw new ChainError('BLOCK_NOT_VALIDATED', `block ${blockHash} was not executed and validated by this enclave`);
    }
  }

  #signVote(vote: Vote, justification: SignedVote[]): SignResult {
    this.#checkVoteTarget(vote.chainId, vote.height, vote.blockHash);
    return this.#signAt(
      { step: vote.type, height: vote.height, round: vote.round, blockHash: vote.blockHash, justification },
      voteMessage(vote),
    );
  }

  #signProposal(p: ProposalToSign): SignResult {
    this.#checkVoteTarget(p.chainId, p.height, p.blockHash);
    if (p.polRound >= p.round) throw new ChainError('BLOCK_INVALID', 'polRound must be -1 or an earlier round');
    const message = signingMessage('proposal', { chainId: p.chainId, height: p.height, round: p.round, polRound: p.polRound, blockHash: p.blockHash });
    return this.#signAt({ step: 'proposal', height: p.height, round: p.round, blockHash: p.blockHash }, message);
  }

  /**
   * Commits a block this enclave executed, on its commit certificate (2f+1
   * precommits of the validators for exactly this block), which it checks: the
   * host cannot make it take up a block the validators did not certify.
   */
  #commitBlock(blockHash: string, certificate: CommitCertificate): CommitResult {
    const view = this.#viewOrThrow();
    const pending = this.#pending.get(blockHash);
    if (!pending) throw new ChainError('NOT_FOUND', `no executed block ${blockHash} to commit`);
    if (certificate.blockHash !== blockHash || certificate.height !== pending.header.height) {
      throw new ChainError('CERTIFICATE_INVALID', `the certificate is not for block ${blockHash} at height ${pending.header.height}`);
    }
    if (!verifyCertificate(view.chainId, certificate, view.validatorKeys, view.quorum)) {
      throw new ChainError('CERTIFICATE_INVALID', `the certificate of block ${pending.header.height} does not verify`);
    }
    this.#state.apply(pending.writeSet, pending.tree);
    this.#setHead(pending.header);
    this.#pending.clear();
    if (pending.writeSet.some(([key]) => key.startsWith(stateKey.deployment('')))) this.#reloadDeployments();
    this.#calls?.committed({ height: pending.header.height, time: pending.header.time, writeSet: pending.writeSet });
    const moved = this.#learnOwnSignature(certificate);
    return { height: pending.header.height, sealed: moved ? this.#identity!.seal() : null };
  }

  /**
   * A verified certificate holding this enclave's own precommit at a slot
   * newer than its sealed record proves its key signed there (another copy of
   * this node, or a backup restored over newer work): the record moves past it,
   * so this enclave never signs that slot or an earlier one again.
   */
  #learnOwnSignature(certificate: CommitCertificate): boolean {
    const self = this.#identity!.signer.publicKey;
    if (!certificate.signatures.some((s) => s.validator === self)) return false;
    return this.#identity!.advancePast({ height: certificate.height, round: certificate.round, step: SIGN_STEP.precommit, value: certificate.blockHash });
  }

  #querySnapshot(): QuerySnapshot {
    return { chainId: this.#view!.chainId, height: this.#head!.height, time: this.#head!.time, entries: this.#state.entries() };
  }

  /**
   * A read-only call: on the call thread when there is one, so it never holds
   * up blocks or signing. It runs as the anonymous caller unless the caller
   * signed it (checked here, against the last committed block's time).
   */
  #call(request: CallRequest): Promise<unknown> | { result: JsonValue; gasUsed: number } {
    const view = this.#viewOrThrow();
    const head = this.#head!;
    const target = { contract: request.contract, method: request.method, args: request.args };
    const caller = request.auth === null ? ANONYMOUS_CALLER : checkCallAuth(view.chainId, target, request.auth, head.time);
    if (this.#calls) return this.#calls.call({ ...request, auth: null }, caller, CALL_GAS_LIMIT);
    return this.#executor.call(
      this.#state,
      { chainId: view.chainId, height: head.height, time: head.time },
      request.contract,
      request.method,
      request.args,
      caller,
      CALL_GAS_LIMIT,
    );
  }

  async #evidence(freshness: string): Promise<EnclaveIdentity> {
    const view = this.#view;
    const identity = this.#identity;
    if (!view || !identity) throw new ChainError('ECALL_INVALID', 'enclave not initialised');
    const publicKeys = { vote: identity.signer.publicKey };
    const reportData = reportDataFor({ publicKeys, chainId: view.chainId, nodeId: this.#nodeId, freshness });
    const report = await this.platform.getReport(reportData);
    return {
      publicKeys,
      platform: report.platform,
      measurement: report.measurement,
      reportData: toHex(reportData),
      evidence: Buffer.from(report.evidence).toString('base64'),
    };
  }

  #listContracts(): ContractInfo[] {
    return [...this.#deployments.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((d) => ({ name: d.name, measurement: d.measurement, manifest: d.bundle.manifest as unknown as JsonValue }));
  }
}
