import {
  ChainError,
  ZERO_HASH,
  isSealedTx,
  signTx,
  canonicalBytes,
  quorumSize,
  type GenesisValidator,
  type CheckedTx,
  checkCallAuth,
  canonicalize,
  checkChildHeader,
  checkTxStateless,
  fromHex,
  genesisHash,
  headerHash,
  OpeningSessions,
  openCallPayload,
  receiptsRootOf,
  sealCallResult,
  sha256Hex,
  signingMessage,
  stateProof,
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
  type SealedPayload,
  type SignRequest,
  type SignedTx,
  type SignedVote,
  type StateTreeRoot,
  type Vote,
} from '../../consensus/index.js';
import { evaluationTime, issueAttestationToken, reportDataFor, verifyEvidence } from '../../attestation/index.js';
import { bundleMeasurement, parseManifest, type ContractBundle } from '../bundle/index.js';
import { ContractRuntime } from '../sandbox/index.js';
import { parseEcall } from './ecall-parse.js';
import { ANONYMOUS_CALLER, BlockExecutor, NO_STATE_AT_DEPLOYMENT, contractStateAccess, systemTxGas, readDeployments, readNonce, type Deployment, type ExecutionOutput, type OpenedCall } from './executor.js';
import type { QuerySnapshot } from './query-engine.js';
import type {
  ProvedStateValue,
  StateProofResult,
  ViewTransitionProof,
  AdmissionResult,
  BlockResult,
  CallRequest,
  CommitResult,
  ContractInfo,
  EcallRequest,
  EnclaveIdentity,
  EncryptionKeyResponse,
  InitRequest,
  InitResponse,
  ProposalToSign,
  ReleaseSecretRequest,
  SealedCallResponse,
  SealedRelease,
  SecretStatus,
  UnsealResponse,
} from './protocol.js';
import { ConsortiumKeys, STATE_KEY_GENERATION } from './consortium-keys.js';
import { CONSORTIUM_CONTRACT, readCommitments, runSystemTx, secretCommitTx, systemTxProblem } from './system-contract.js';
import { admissionFreshness, evaluateAdmission, type AdmissionClaim } from './peer-evidence.js';
import { ChallengeBook, openRelease, releaseFreshness, sealRelease } from './secret-release.js';
import { randomBytes } from 'node:crypto';
import { CommittedState, StateOverlay, stateKey, type StateWrite } from './state.js';
import { SealedIdentity } from './sealed-identity.js';
import { QueryLane } from './query-lane.js';
import { chainViewAt, genesisChainView, type ChainView } from './chain-view.js';
import { HANDOVER_METHOD, govKey, isConfigKey, requestedSecretGeneration, successorProblem, validatorsAt } from './governance/index.js';
import { VerifiedSet } from './verified-set.js';
import { AdmittedTxs } from './admitted-txs.js';
import { ATTEST_METHOD, checkLedgerAttestation, ledgerAttestationFreshness, needsLedgerAttestation } from './ledger-attestation.js';
import { RecentStates } from './recent-states.js';
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

export { ANONYMOUS_CALLER };

interface PendingBlock {
  header: BlockHeader;
  writeSet: StateWrite[];
  tree: StateTreeRoot;
  txHashes: string[];
}

/** Sealed transactions opened at admission, kept (bounded) so that execution does not open them again. */
const MAX_OPENED = 50_000;
/** …and at most about this many bytes of them (a flood of large sealed transactions must not fill the enclave's memory). */
const MAX_OPENED_BYTES = 64 * 1024 * 1024;

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
  /** This program's measurement, once a report said it. */
  #ownMeasurement: string | undefined;
  /** The policy under which this enclave's own attestation claim was refused (it does not try again under it). */
  #attestationRefusedUnder: string | undefined;
  #state = new CommittedState();
  #head: BlockHeader | undefined;
  #headHash = '';
  #deployments = new Map<string, Deployment>();
  #pending = new Map<string, PendingBlock>();
  /** The state of the last committed heights, for state proofs. */
  readonly #recent = new RecentStates();
  #executor: BlockExecutor;
  readonly #verified = new VerifiedSet();
  readonly #admitted = new AdmittedTxs();
  readonly #keys = new ConsortiumKeys();
  readonly #opened = new Map<string, OpenedCall & { bytes: number }>();
  #openedBytes = 0;
  /** HPKE contexts of callers' sealing sessions (a caller's later sealed calls open without an X25519 agreement). */
  readonly #callSessions = new OpeningSessions(4096);
  readonly #challenges = new ChallengeBook();
  #genesisHash = '';
  readonly #verifiers: VerifierPool | undefined;
  readonly #calls: QueryLane | undefined;

  private constructor(runtime: ContractRuntime, private readonly platform: EnclavePlatform, options: EnclaveOptions) {
    this.#runtime = runtime;
    const threads = options.verifierThreads ?? 0;
    this.#verifiers = threads > 0 ? new VerifierPool(threads) : undefined;
    this.#calls = options.callThread ? new QueryLane({ snapshot: () => this.#querySnapshot() }) : undefined;
    this.#executor = new BlockExecutor(
      runtime,
      (name) => this.#deployments.get(name),
      this.#verified.has,
      this.#keys,
      (hash) => this.#opened.get(hash),
    );
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
        return await this.#proposeBlock(request.time, request.txs);
      case 'executeBlock':
        return this.#executeBlock(request.header, request.txs);
      case 'commitBlock':
        return this.#commitBlock(request.blockHash, request.certificate);
      case 'call':
        return this.#call(request);
      case 'sealedCall':
        return this.#sealedCall(request.contract, request.sealed);
      case 'getEvidence':
        return this.#evidence(request.freshness);
      case 'admissionEvidence':
        // The enclave binds its own genesis: a host cannot present it as a member of another chain's consortium.
        return this.#evidence(admissionFreshness(this.#genesisHash, request.challenge));
      case 'getEncryptionKey':
        return this.#encryptionKey(request.freshness);
      case 'getAttestationToken':
        return this.#attestationToken(request.freshness, request.audience, request.now);
      case 'secretChallenge':
        return this.#secretChallenge();
      case 'secretRequest':
        return this.#secretRequest(request.nonce);
      case 'releaseSecret':
        return this.#releaseSecret(request);
      case 'acceptSecret':
        return this.#acceptSecret(request.release);
      case 'listContracts':
        return this.#listContracts();
      case 'stateProof':
        return this.#stateProof(request.key, request.height);
      case 'admitTxs':
        return this.#admitTxs(request.txs);
      case 'nonces':
        return this.#nonces(request.addresses);
      case 'signVote':
        return this.#signVote(request.vote, request.justification);
      case 'signProposal':
        return this.#signProposal(request.proposal);
      case 'signHandover':
        return this.#signHandover(request.claim, request.nonce, request.now);
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
    const { results, opened } = this.#verifiers
      ? await this.#verifiers.check(view.chainId, limits, txs)
      : {
          results: txs.map((raw): AdmissionResult => {
            try {
              const { hash, size } = checkTxStateless(raw, view.chainId, limits);
              return { ok: true, hash, size, nonce: 0 };
            } catch (err) {
              return { ok: false, code: err instanceof ChainError ? err.code : 'TX_MALFORMED', message: (err as Error).message };
            }
          }),
          opened: [],
        };
    return results.map((r, i): AdmissionResult => {
      if (!r.ok) return r;
      this.#verified.add(r.hash);
      // A sealed transaction a verifier thread opened: kept, so neither the checks below nor execution open it again.
      const done = opened[i];
      if (done && 'method' in done) this.#rememberOpened(r.hash, { method: done.method, args: done.args, resultKey: fromHex(done.resultKey)! });
      // The verdict is ok only for a well-formed transaction, so its fields are checked.
      const tx = txs[i] as SignedTx;
      const problem = this.#targetProblem(tx, r.hash, view.chainId);
      if (problem) return { ok: false, ...problem };
      this.#admitted.add(r.hash, tx, r.size);
      return { ...r, nonce: readNonce(this.#state, tx.from) };
    });
  }

  /**
   * An admitted transaction must name a deployed contract and one of its
   * methods that is not read-only; a sealed one must open for exactly this
   * transaction (it is then kept opened, so execution does not open it again).
   */
  #targetProblem(tx: SignedTx, hash: string, chainId: string): { code: string; message: string } | null {
    if (tx.contract === CONSORTIUM_CONTRACT) return this.#governanceProblem(tx);
    const deployment = this.#deployments.get(tx.contract);
    if (!deployment) return { code: 'TX_UNKNOWN_CONTRACT', message: `no contract named "${tx.contract}"` };
    const opened = this.#executor.open(tx, hash, chainId);
    if ('code' in opened) return opened;
    const methods = deployment.bundle.manifest.methods as Record<string, unknown>;
    if (opened.method === 'init' || !Object.prototype.hasOwnProperty.call(methods, opened.method)) {
      return { code: 'TX_UNKNOWN_METHOD', message: `contract "${tx.contract}" has no method "${opened.method}"` };
    }
    const problem = this.#executor.admissible(tx, opened);
    if (!problem && opened.resultKey) this.#rememberOpened(hash, opened);
    return problem;
  }

  /**
   * A governance transaction is tried on the committed state (on a layer that
   * is dropped): a non-member, a malformed or inapplicable action, a vote on a
   * closed proposal is refused here with its code, before it reaches a block.
   * Membership is checked first, so an outsider cannot make the enclave load
   * a bundle.
   */
  #governanceProblem(tx: SignedTx): { code: string; message: string } | null {
    const outline = systemTxProblem(isSealedTx(tx) ? null : tx.method);
    if (outline || isSealedTx(tx)) return outline;
    const gasProblem = this.#executor.admissible(tx, tx);
    if (gasProblem) return gasProblem;
    const view = this.#view!;
    const head = this.#head!;
    const ctx = { chainId: view.chainId, height: head.height + 1, time: head.time, validators: view.validatorKeys, genesis: this.#genesis!, parentHash: this.#headHash };
    const outcome = runSystemTx(new StateOverlay(this.#state), tx, view.validatorKeys, this.#executor.governance(ctx, this.#state));
    return outcome.error;
  }

  #rememberOpened(hash: string, opened: OpenedCall): void {
    this.#forgetOpened(hash);
    const bytes = 128 + JSON.stringify(opened.args).length;
    this.#opened.set(hash, { ...opened, bytes });
    this.#openedBytes += bytes;
    while (this.#opened.size > MAX_OPENED || this.#openedBytes > MAX_OPENED_BYTES) this.#forgetOpened(this.#opened.keys().next().value!);
  }

  #forgetOpened(hash: string): void {
    const entry = this.#opened.get(hash);
    if (!entry) return;
    this.#opened.delete(hash);
    this.#openedBytes -= entry.bytes;
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
    // Every enclave makes a candidate for the first generation of the consortium secret, sealed at once; the
    // first one the ledger commits is the chain's, the others are dropped when their enclaves see it.
    if (identity.secrets.length === 0) identity.keepSecret(STATE_KEY_GENERATION, ConsortiumKeys.newSecret());
    for (const held of identity.secrets) this.#keys.hold(held.generation, held.secret);
    this.#identity = identity;
    return {
      publicKeys: this.#publicKeys(),
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
      this.#recent.reset(0, this.#state.tree);
      this.#reloadDeployments();
    }
    this.#genesis = request.genesis;
    this.#genesisHash = genesisHash(request.genesis);
    // The genesis made the genesis block; the next block runs under what governance made of it since.
    this.#view = chainViewAt(request.genesis, this.#state);
    this.#nodeId = request.nodeId;
    const secretsChanged = this.#reconcileSecrets();
    this.#calls?.start();
    const moved = request.resume?.certificate ? this.#learnOwnSignature(request.resume.certificate) : false;
    const identity = this.#identity;
    return {
      identity: await this.#evidence(request.freshness),
      genesisBlock,
      signer: { lastSign: identity.lastSign, lock: identity.lock },
      sealed: moved || secretsChanged ? identity.seal() : null,
      secrets: this.#secretStatus(),
      view: this.#view,
    };
  }

  #publicKeys(): Record<string, string> {
    const identity = this.#identity!;
    return { vote: identity.signer.publicKey, encryption: identity.encryptionPublicKey, token: identity.tokenPublicKey };
  }

  /**
   * Takes the ledger's secret commitments: a candidate that lost is dropped
   * (true: the identity must be sealed again). The call thread gets the keys.
   */
  #reconcileSecrets(): boolean {
    const losers = this.#keys.setCommitted(readCommitments(this.#state));
    for (const generation of losers) this.#identity!.dropSecret(generation);
    this.#shareKeys();
    return losers.length > 0;
  }

  /** The enclave's other threads (calls, verifiers) get the usable keys whenever they change. */
  #shareKeys(): void {
    this.#calls?.setKeys(this.#keys.snapshot());
    this.#verifiers?.setKeys(this.#keys.usableAll());
  }

  #secretStatus(): SecretStatus {
    return { missing: this.#keys.missing(), held: this.#keys.usableAll().map((g) => g.generation) };
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
    } else if (!certificate || certificate.height !== header.height || certificate.blockHash !== hash) {
      throw new ChainError('STATE_INVALID', `the stored head ${header.height} has no commit certificate for its header`);
    }
    this.#state.load(state);
    const refuse = (why: string): never => {
      this.#state = new CommittedState();
      this.#deployments.clear();
      throw new ChainError('STATE_INVALID', why);
    };
    if (this.#state.root !== header.stateRoot) {
      refuse(`the stored state does not match the state root of the last certified block ${header.height} (the database was altered or is damaged)`);
    }
    if (header.height > 0) {
      // Signed by the validators of the head's height (the state, now known to be the head's, says which: the head may have changed them).
      const keys = validatorsAt(this.#state, genesis, header.height).map((v) => v.voteKey);
      if (!verifyCertificate(view.chainId, certificate!, keys, quorumSize(keys.length))) {
        refuse(`the commit certificate of the stored head ${header.height} does not verify`);
      }
    }
    this.#setHead(header);
    this.#recent.reset(header.height, this.#state.tree);
    this.#reloadDeployments();
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
        deployment.bundle.manifest.confidential === true ? NO_STATE_AT_DEPLOYMENT : contractStateAccess(txOverlay, contract.name),
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

  /**
   * A proof of one state key's value (or absence) under the state root of a
   * recent committed height (the head when null). The host cannot make one:
   * the tree lives here. It reveals nothing the host does not store already.
   */
  #stateProof(key: string, height: number | null): StateProofResult {
    this.#viewOrThrow();
    const at = height ?? this.#head!.height;
    const tree = this.#recent.treeAt(at);
    if (tree === undefined) {
      const heights = this.#recent.heights();
      throw new ChainError('STATE_PROOF_UNAVAILABLE', `no state proof at height ${at}: this node proves the state of its last ${heights.length} heights (${heights[0]}..${heights[heights.length - 1]})`, {
        oldest: heights[0] ?? null,
        head: this.#head!.height,
      });
    }
    return { height: at, value: this.#recent.valueAt(key, at, this.#state), proof: stateProof(tree, key) };
  }

  /** The proved values of the settings a header commits to (validators, policy) under the head's state root. */
  #viewTransition(): ViewTransitionProof {
    const tree = this.#state.tree;
    const entry = (key: string): ProvedStateValue => ({ value: this.#state.read(key) ?? null, proof: stateProof(tree, key) });
    return { height: this.#head!.height, validators: entry(govKey.validators), policy: entry(govKey.policy) };
  }

  #reloadDeployments(): void {
    this.#deployments = readDeployments(this.#state);
  }


  #viewOrThrow(): ChainView {
    if (!this.#view || !this.#head || !this.#identity) throw new ChainError('ECALL_INVALID', 'enclave not initialised');
    return this.#view;
  }

  /**
   * The proposer's `attest` transaction, when the ledger has no evidence of
   * this enclave yet, or only of another program, or older than the refresh
   * interval: fresh evidence bound to the block's parent, signed with the vote
   * key. None when the evidence would not fit in a transaction.
   */
  async #ledgerAttestationTx(view: ChainView, time: number, nonce: number): Promise<SignedTx | null> {
    const signer = this.#identity!.signer;
    // The program's measurement is learned from its first report: no report is made for a block that needs none.
    if (this.#ownMeasurement !== undefined && !needsLedgerAttestation(this.#state, signer.publicKey, this.#ownMeasurement, time)) return null;
    if (this.#attestationRefusedUnder === view.policyHash) return null;
    const identity = await this.#evidence(ledgerAttestationFreshness(this.#genesisHash, this.#headHash));
    this.#ownMeasurement = identity.measurement;
    if (!needsLedgerAttestation(this.#state, signer.publicKey, identity.measurement, time)) return null;
    const claim = { nodeId: this.#nodeId, publicKeys: identity.publicKeys, evidence: identity.evidence };
    // What every enclave will check when it executes the block: a claim they would refuse is not sent (it would only
    // spend a nonce), and not made again until the policy changes (this program, or this node, is not the one the chain lists).
    const context = { genesis: this.#genesis!, height: this.#head!.height + 1, time, parentHash: this.#headHash, validators: view.validators, policy: view.policy as unknown as JsonValue };
    if (!checkLedgerAttestation(claim, signer.publicKey, context).ok) {
      this.#attestationRefusedUnder = view.policyHash;
      return null;
    }
    const args = [claim as unknown as JsonValue];
    const body = { chainId: view.chainId, from: signer.publicKey, nonce, contract: CONSORTIUM_CONTRACT, method: ATTEST_METHOD, args, gasLimit: systemTxGas(args, ATTEST_METHOD) };
    if (body.gasLimit > view.consensus.maxGasLimit || canonicalBytes(body).length + 200 > view.consensus.maxTxBytes) return null;
    return signTx(body, signer);
  }

  async #proposeBlock(time: number, txs: unknown[]): Promise<BlockResult> {
    const view = this.#viewOrThrow();
    const parent = this.#head!;
    const self = this.#identity!.signer.publicKey;
    if (!view.validatorKeys.includes(self)) throw new ChainError('BLOCK_INVALID', 'this enclave is not a validator: it does not propose');
    // First, before anything changes: a hash this enclave does not hold refuses the call.
    const own = this.#resolveAdmitted(txs);
    const height = parent.height + 1;
    const blockTime = Math.max(time, parent.time);
    // While the ledger has no consortium secret, or a rotation asked for the next generation, the proposer
    // commits its own candidate's public key, first in its block. A rotation candidate is made here, by an
    // enclave that holds every generation so far, and kept in the identity: the proposal's signature seals it
    // to disk before the block leaves this node, so the generation is never committed without a holder.
    const requested = requestedSecretGeneration(this.#state);
    if (requested !== null && this.#keys.latest()?.generation === requested - 1 && !this.#keys.holds(requested)) {
      const secret = ConsortiumKeys.newSecret();
      this.#identity!.keepSecret(requested, secret);
      this.#keys.hold(requested, secret);
    }
    const candidate = this.#keys.candidate(requested);
    const added: SignedTx[] = candidate
      ? [secretCommitTx(view.chainId, this.#identity!.signer, readNonce(this.#state, self), { generation: candidate.generation, publicKey: candidate.publicKey })]
      : [];
    const attestation = await this.#ledgerAttestationTx(view, blockTime, readNonce(this.#state, self) + added.length);
    if (attestation) added.push(attestation);
    const ctx = { chainId: view.chainId, height, time: blockTime, validators: view.validatorKeys, genesis: this.#genesis!, parentHash: this.#headHash };
    const output = this.#executor.execute(this.#state, ctx, view.consensus, added.length > 0 ? [...added, ...own.txs] : own.txs, 'propose', own.admitted);
    const included = output.includedIndexes.filter((i) => i >= added.length).map((i) => i - added.length);
    const addedIncluded = added.filter((_, i) => output.includedIndexes.includes(i));
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
    return { ...this.#finish(header, output, tree), included, added: addedIncluded };
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
    const ctx = { chainId: view.chainId, height: header.height, time: header.time, validators: view.validatorKeys, genesis: this.#genesis!, parentHash: header.parentHash };
    const own = this.#resolveAdmitted(txs);
    const output = this.#executor.execute(this.#state, ctx, view.consensus, own.txs, 'validate', own.admitted);
    const tree = this.#state.treeAfter(output.writeSet);
    const expected = { txRoot: txRootOf(output.txHashes), receiptsRoot: receiptsRootOf(output.receipts), stateRoot: stateRootHex(tree) };
    for (const [field, value] of Object.entries(expected)) {
      if (header[field as keyof typeof expected] !== value) fail(`${field} does not match re-execution`);
    }
    return this.#finish(header, output, tree);
  }

  /**
   * A block's transactions named by hash become this enclave's own admitted copies; a hash it
   * does not hold (never admitted here, or forgotten) refuses the whole call, and the host sends
   * the transactions in full.
   */
  #resolveAdmitted(txs: unknown[]): { txs: unknown[]; admitted: Map<unknown, CheckedTx> } {
    const admitted = new Map<unknown, CheckedTx>();
    const missing: string[] = [];
    const resolved = txs.map((item) => {
      if (typeof item !== 'string') return item;
      const own = this.#admitted.get(item);
      if (!own) {
        missing.push(item);
        return item;
      }
      admitted.set(own.tx, own);
      return own.tx;
    });
    if (missing.length > 0) {
      throw new ChainError('TX_REF_UNKNOWN', `${missing.length} transaction(s) named by hash are not held by this enclave`, { hashes: missing.slice(0, 16) });
    }
    return { txs: resolved, admitted };
  }

  #finish(header: BlockHeader, output: ExecutionOutput, tree: StateTreeRoot): BlockResult {
    const blockHash = headerHash(header);
    // Executed and validated: only now may this enclave vote for it (signVote checks).
    this.#pending.set(blockHash, { header, writeSet: output.writeSet, tree, txHashes: output.txHashes });
    const nonces = [...output.nonces];
    const contractsChanged = output.writeSet.some(([key]) => key.startsWith(stateKey.deployment('')));
    const validatorsWrite = output.writeSet.find(([key]) => key === govKey.validators)?.[1];
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
      nextValidators: typeof validatorsWrite === 'string' ? (JSON.parse(validatorsWrite) as GenesisValidator[]) : null,
      added: [],
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
    const overwritten = this.#recent.committing(pending.writeSet, this.#state);
    this.#state.apply(pending.writeSet, pending.tree);
    this.#setHead(pending.header);
    this.#recent.committed(pending.header.height, pending.tree, overwritten);
    this.#pending.clear();
    if (pending.writeSet.some(([key]) => key.startsWith(stateKey.deployment('')))) this.#reloadDeployments();
    const viewChanged = pending.writeSet.some(([key]) => isConfigKey(key));
    if (viewChanged) this.#view = chainViewAt(this.#genesis!, this.#state);
    const headerSettingsChanged = pending.writeSet.some(([key]) => key === govKey.validators || key === govKey.policy);
    this.#calls?.committed({ height: pending.header.height, time: pending.header.time, writeSet: pending.writeSet });
    for (const hash of pending.txHashes) this.#forgetOpened(hash);
    this.#admitted.forget(pending.txHashes);
    const secretsChanged = pending.writeSet.some(([key]) => key.startsWith(stateKey.secret(0).slice(0, -1))) && this.#reconcileSecrets();
    const moved = this.#learnOwnSignature(certificate);
    return {
      height: pending.header.height,
      sealed: moved || secretsChanged ? this.#identity!.seal() : null,
      secrets: this.#secretStatus(),
      view: viewChanged ? this.#view! : null,
      viewTransition: headerSettingsChanged ? this.#viewTransition() : null,
    };
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

  /**
   * Hands this validator's place to its successor: a new program's enclave on
   * the same node, whose claim (its keys, evidence binding them to this node
   * and this handover) this enclave checks first against the policy in force,
   * as every enclave will again when the transaction executes. Signs the
   * `handover` transaction with this enclave's vote key; its private key never
   * leaves, the successor keeps its own.
   */
  #signHandover(claim: AdmissionClaim, nonce: number, now: number): SignedTx {
    const view = this.#viewOrThrow();
    const signer = this.#identity!.signer;
    const place = view.validators.find((v) => v.voteKey === signer.publicKey);
    if (!place) throw new ChainError('GOV_HANDOVER_INVALID', 'this enclave holds no validator place to hand over');
    const at = this.#evaluationTime(now);
    const problem = successorProblem(claim, { genesis: this.#genesis!, policy: view.policy as unknown as JsonValue, nodeId: place.nodeId, fromVoteKey: signer.publicKey, now: at });
    if (problem !== null) throw new ChainError('GOV_HANDOVER_INVALID', problem);
    const args = [claim as unknown as JsonValue];
    const body = { chainId: view.chainId, from: signer.publicKey, nonce, contract: CONSORTIUM_CONTRACT, method: HANDOVER_METHOD, args, gasLimit: systemTxGas(args, HANDOVER_METHOD) };
    return signTx(body, signer);
  }

  #querySnapshot(): QuerySnapshot {
    return { chainId: this.#view!.chainId, height: this.#head!.height, time: this.#head!.time, entries: this.#state.entries(), genesis: this.#genesis! };
  }

  /**
   * A read-only call: on the call thread when there is one, so it never holds
   * up blocks or signing. It runs as the anonymous caller unless the caller
   * signed it (checked here, against the last committed block's time).
   */
  #call(request: CallRequest): Promise<unknown> | { result: JsonValue; gasUsed: number } {
    const view = this.#viewOrThrow();
    if (this.#deployments.get(request.contract)?.bundle.manifest.confidential === true) {
      throw new ChainError('TX_NOT_ENCRYPTED', `contract "${request.contract}" is confidential: seal the call to the network encryption key`);
    }
    return this.#runCall(view, request);
  }

  #runCall(view: ChainView, request: Omit<CallRequest, 'type'>): Promise<unknown> | { result: JsonValue; gasUsed: number } {
    const head = this.#head!;
    const target = { contract: request.contract, method: request.method, args: request.args };
    const caller = request.auth === null ? ANONYMOUS_CALLER : checkCallAuth(view.chainId, target, request.auth, head.time);
    if (this.#calls) return this.#calls.call({ type: 'call', ...request, auth: null }, caller, CALL_GAS_LIMIT);
    return this.#executor.call(
      this.#state,
      { chainId: view.chainId, height: head.height, time: head.time, genesis: this.#genesis! },
      request.contract,
      request.method,
      request.args,
      caller,
      CALL_GAS_LIMIT,
    );
  }

  /**
   * A read-only call to a confidential contract: opened here (bound to this
   * chain, this contract and the generation), run as the caller only when the
   * sealed request carries the caller's signature, and answered sealed to the
   * caller's result key: {result} or {error}. Only a request that does not
   * open is refused in the clear.
   */
  async #sealedCall(contract: string, sealed: SealedPayload): Promise<SealedCallResponse> {
    const view = this.#viewOrThrow();
    const deployment = this.#deployments.get(contract);
    if (!deployment) throw new ChainError('TX_UNKNOWN_CONTRACT', `no contract named "${contract}"`);
    if (deployment.bundle.manifest.confidential !== true) {
      throw new ChainError('TX_MALFORMED', `contract "${contract}" is public: call it in the clear`);
    }
    const generation = this.#keys.usable(sealed.generation);
    if (!generation) {
      if (!this.#keys.isCommitted(sealed.generation)) throw new ChainError('DECRYPT_FAILED', `this chain has no consortium-secret generation ${sealed.generation}`);
      throw new ChainError('SECRET_UNAVAILABLE', `this enclave does not hold consortium-secret generation ${sealed.generation} yet`);
    }
    const opened = openCallPayload(generation.network, { chainId: view.chainId, contract }, sealed, this.#callSessions);
    try {
      const auth = (opened.auth ?? null) as CallRequest['auth'];
      const out = (await this.#runCall(view, { contract, method: opened.method, args: opened.args, auth })) as { result: JsonValue; gasUsed: number };
      return { sealed: sealCallResult(opened.resultKey, { result: out.result }), gasUsed: out.gasUsed };
    } catch (err) {
      if (!(err instanceof ChainError)) throw err;
      const gasUsed = typeof err.details?.['gasUsed'] === 'number' ? (err.details['gasUsed'] as number) : 0;
      const error = { code: err.code, message: err.message, ...(err.details?.['contractCode'] ? { contractCode: err.details['contractCode'] as string } : {}) };
      return { sealed: sealCallResult(opened.resultKey, { error }), gasUsed };
    }
  }

  /**
   * The newest generation's network key with fresh evidence binding it (as
   * publicKeys.network, beside this enclave's own keys) to this node, this
   * chain and the caller's freshness value: what a client checks against the
   * genesis before it seals anything to the key.
   */
  async #encryptionKey(freshness: string): Promise<EncryptionKeyResponse> {
    this.#viewOrThrow();
    const latest = this.#keys.latest();
    if (!latest) {
      throw new ChainError('SECRET_UNAVAILABLE', this.#keys.committedGenerations().size === 0
        ? 'the chain has not committed its consortium secret yet (the first blocks do); retry'
        : 'this enclave does not hold the consortium secret yet (it is received from a peer after attestation); retry or ask another node');
    }
    const identity = await this.#evidence(freshness, { network: latest.publicKey });
    return { generation: latest.generation, publicKey: latest.publicKey, identity };
  }

  /**
   * An attestation token (a JWT, EdDSA) for relying parties outside the chain,
   * such as a key vault that releases a data key after attestation: fresh
   * evidence bound to the caller's nonce, which this enclave verifies itself,
   * restated as claims and signed with its token key (bound in the evidence as
   * `token`; never the vote key). Its time is the host's, never earlier than
   * the last committed block's.
   */
  async #attestationToken(freshness: string, audience: string | null, now: number): Promise<{ token: string; identity: EnclaveIdentity }> {
    this.#viewOrThrow();
    const identity = await this.#evidence(freshness);
    const at = this.#evaluationTime(now);
    const result = verifyEvidence(new Uint8Array(Buffer.from(identity.evidence, 'base64')), { now: at, trustedRoots: { virtual: this.#genesis!.enclave.virtualRoots } });
    const token = await issueAttestationToken({
      signingKey: this.#identity!.tokenSigningKey,
      claims: { ...result, publicKeys: identity.publicKeys },
      evidenceDigest: result.evidenceDigest,
      issuer: this.#nodeId,
      ...(audience !== null ? { audience } : {}),
      now: at,
    });
    return { token, identity };
  }

  /**
   * The time evidence is judged at: the host's, never earlier than the last
   * committed block's, so a host cannot wind the clock back to revive expired
   * evidence. (The enclave reads no clock.)
   */
  #evaluationTime(hostNow: number): Date {
    return evaluationTime(Math.max(hostNow, this.#head!.time));
  }

  /** A challenge for a peer that wants the consortium secret: remembered until used once (or crowded out). */
  #secretChallenge(): { nonce: string } {
    this.#viewOrThrow();
    const nonce = randomBytes(32).toString('hex');
    this.#challenges.add(nonce);
    return { nonce };
  }

  /** This enclave's claim for the secret: evidence binding its keys, node, chain, the genesis and the releaser's nonce. */
  async #secretRequest(nonce: string): Promise<{ nodeId: string; publicKeys: Record<string, string>; evidence: string }> {
    const identity = await this.#evidence(releaseFreshness(this.#genesisHash, nonce));
    return { nodeId: this.#nodeId, publicKeys: identity.publicKeys, evidence: identity.evidence };
  }

  /**
   * The release decision, made here and not by the host: the nonce must be
   * one this enclave issued and has not seen used; the evidence must verify to
   * a pinned root, satisfy the policy of this height and bind the claimed keys,
   * the peer node, this chain and releaseFreshness(genesis, nonce); the node
   * and its vote key must be a validator's. Then every committed generation
   * this enclave holds is sealed to the peer's encryption key.
   */
  #releaseSecret(request: ReleaseSecretRequest): SealedRelease {
    const view = this.#viewOrThrow();
    if (!this.#challenges.take(request.nonce)) {
      throw new ChainError('CALL_UNAUTHORIZED', 'the release request does not answer a challenge of this enclave (unknown, used or too old)');
    }
    const generations = this.#keys.usableAll();
    if (generations.length === 0) throw new ChainError('SECRET_UNAVAILABLE', 'this enclave holds no committed consortium secret to release');
    const decision = evaluateAdmission(request.claim, {
      genesis: { ...this.#genesis!, chainId: view.chainId, validators: [...view.validators], policy: view.policy as unknown as Genesis['policy'] },
      authenticatedNodeId: request.peerNodeId,
      freshness: releaseFreshness(this.#genesisHash, request.nonce),
      now: this.#evaluationTime(request.now),
    });
    if (!decision.admitted) {
      throw new ChainError('CALL_UNAUTHORIZED', `the consortium secret is not released: ${decision.reason!.code}: ${decision.reason!.message}`, {
        reason: decision.reason!.code,
      });
    }
    const encryption = decision.publicKeys!['encryption'];
    if (encryption === undefined) throw new ChainError('CALL_UNAUTHORIZED', 'the consortium secret is not released: the evidence binds no encryption key');
    return sealRelease(fromHex(encryption)!, { chainId: view.chainId, genesisHash: this.#genesisHash, nodeId: decision.nodeId }, generations);
  }

  /** Takes the secret a peer's enclave released to this one: only generations whose network key the ledger commits. */
  #acceptSecret(release: SealedRelease): SecretStatus & { sealed: string } {
    const view = this.#viewOrThrow();
    const identity = this.#identity!;
    const generations = openRelease(identity.encryptionKeyPair, { chainId: view.chainId, genesisHash: this.#genesisHash, nodeId: this.#nodeId }, release);
    const committed = this.#keys.committedGenerations();
    let taken = 0;
    for (const g of generations) {
      if (committed.get(g.generation) !== ConsortiumKeys.generationOf(g.generation, g.secret).publicKey) continue;
      this.#keys.hold(g.generation, g.secret);
      identity.keepSecret(g.generation, g.secret);
      taken++;
    }
    if (taken === 0) throw new ChainError('STATE_INVALID', 'the released secret matches no generation committed on this ledger');
    this.#shareKeys();
    return { ...this.#secretStatus(), sealed: identity.seal() };
  }

  async #evidence(freshness: string, extraKeys: Record<string, string> = {}): Promise<EnclaveIdentity> {
    const view = this.#view;
    const identity = this.#identity;
    if (!view || !identity) throw new ChainError('ECALL_INVALID', 'enclave not initialised');
    const publicKeys = { ...this.#publicKeys(), ...extraKeys };
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
