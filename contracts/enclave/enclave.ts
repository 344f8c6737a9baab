import {
  ChainError,
  Ed25519Signer,
  checkTxStateless,
  ZERO_HASH,
  canonicalBytes,
  canonicalize,
  checkChildHeader,
  headerHash,
  receiptsRootOf,
  sha256Hex,
  toHex,
  txRootOf,
  voteMessage,
  type BlockHeader,
  type Genesis,
  type JsonValue,
  type Receipt,
  type SignedTx,
  type Vote,
  signingMessage,
} from '../../consensus/index.js';
import { reportDataFor } from '../../attestation/index.js';
import { bundleMeasurement, parseManifest, type ContractBundle } from '../bundle/index.js';
import { ContractRuntime } from '../sandbox/index.js';
import { BlockExecutor, contractStateAccess, nextStateRoot, type Deployment } from './executor.js';
import type {
  AdmissionResult,
  BlockResult,
  ContractInfo,
  EcallRequest,
  EnclaveIdentity,
  InitRequest,
  InitResponse,
} from './protocol.js';
import { CommittedState, StateOverlay, stateKey, type StateWrite } from './state.js';
import { SealedIdentity, type SignStep } from './sealed-identity.js';
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

/** The gas a read-only call may use. */
const CALL_GAS_LIMIT = 10_000_000;

/** The zero key stands for "no caller" (genesis deployment, anonymous calls). */
export const ANONYMOUS_CALLER = ZERO_HASH;

interface PendingBlock {
  header: BlockHeader;
  writeSet: StateWrite[];
}

/**
 * The enclave program's logic, behind the ecall interface. It holds the chain
 * state, the contract runtime and the enclave's signing key; none of them leave.
 */
export class Enclave {
  #runtime: ContractRuntime;
  #signer: Ed25519Signer | undefined;
  #identityKeys: SealedIdentity | undefined;
  #genesis: Genesis | undefined;
  #nodeId = '';
  #state = new CommittedState();
  #head: BlockHeader | undefined;
  #headHash = '';
  #deployments = new Map<string, Deployment>();
  #pending = new Map<string, PendingBlock>();
  #identity: EnclaveIdentity | undefined;
  #executor: BlockExecutor;
  readonly #verified = new VerifiedSet();
  readonly #verifiers: VerifierPool | undefined;

  private constructor(
    runtime: ContractRuntime,
    private readonly platform: EnclavePlatform,
    verifierThreads: number,
  ) {
    this.#runtime = runtime;
    this.#verifiers = verifierThreads > 0 ? new VerifierPool(verifierThreads) : undefined;
    this.#executor = new BlockExecutor(runtime, (name) => this.#deployments.get(name), this.#verified.has);
  }

  /** `verifierThreads`: threads that verify signatures at admission (0 verifies on the calling thread). */
  static async create(platform: EnclavePlatform, verifierThreads = 0): Promise<Enclave> {
    return new Enclave(await ContractRuntime.create(), platform, verifierThreads);
  }

  async handle(request: EcallRequest): Promise<unknown> {
    switch (request.type) {
      case 'unseal':
        return this.#unseal(request.sealed);
      case 'init':
        return this.#init(request);
      case 'proposeBlock':
        return this.#proposeBlock(request.parent, request.time, request.txs);
      case 'executeBlock':
        return this.#executeBlock(request.parent, request.header, request.txs);
      case 'commitBlock':
        return this.#commitBlock(request.blockHash);
      case 'call':
        return this.#call(request.contract, request.method, request.args, request.caller);
      case 'getEvidence':
        return this.#evidence(request.freshness);
      case 'listContracts':
        return this.#listContracts();
      case 'admitTxs':
        return this.#admitTxs(request.txs);
      case 'signVote':
        return this.#signVote(request.vote);
      case 'signProposal':
        return this.#signProposal(request.proposal);
      default:
        throw new ChainError('ENCODING_INVALID', `unknown ecall "${(request as { type: unknown }).type}"`);
    }
  }

  async dispose(): Promise<void> {
    this.#runtime.dispose();
    await this.#verifiers?.close();
  }

  /**
   * Checks transactions offered to the mempool (shape, size, chain, gas,
   * signature) and remembers the ones that verified, so block execution does not
   * verify them again. Safe to run while a block executes: it only adds to the
   * verified set.
   */
  async #admitTxs(txs: unknown[]): Promise<AdmissionResult[]> {
    const genesis = this.#genesisOrThrow();
    const limits = { maxTxBytes: genesis.consensus.maxTxBytes, maxGasLimit: genesis.consensus.maxGasLimit };
    const results = this.#verifiers
      ? await this.#verifiers.check(genesis.chainId, limits, txs)
      : txs.map((raw): AdmissionResult => {
          try {
            const { hash, size } = checkTxStateless(raw, genesis.chainId, limits);
            return { ok: true, hash, size };
          } catch (err) {
            return { ok: false, code: err instanceof ChainError ? err.code : 'TX_MALFORMED', message: (err as Error).message };
          }
        });
    for (const r of results) if (r.ok) this.#verified.add(r.hash);
    return results;
  }

  /**
   * Opens the sealed identity the host kept (or makes a new one when it has
   * none) and returns the public keys with the identity sealed again. The
   * private key is made here and leaves only sealed to this program.
   */
  async #unseal(sealed: string | null): Promise<{ publicKeys: Record<string, string>; sealed: string }> {
    if (this.#identityKeys) throw new ChainError('ENCLAVE_UNAVAILABLE', 'the enclave identity is already open');
    if (sealed !== null && typeof sealed !== 'string') throw new ChainError('SEAL_INVALID', 'the sealed identity must be a string or null');
    const identity = SealedIdentity.open(sealed, await this.platform.getSealingKey());
    this.#identityKeys = identity;
    this.#signer = identity.signer;
    return { publicKeys: { vote: identity.signer.publicKey }, sealed: identity.seal() };
  }

  async #init(request: InitRequest): Promise<InitResponse> {
    if (this.#genesis) throw new ChainError('ENCLAVE_UNAVAILABLE', 'enclave already initialised');
    if (!this.#signer) throw new ChainError('ENCLAVE_UNAVAILABLE', 'open the enclave identity (unseal) before init');
    this.#genesis = request.genesis;
    this.#nodeId = request.nodeId;
    let genesisBlock: InitResponse['genesisBlock'] = null;
    if (request.resume) {
      this.#state.load(request.resume.state);
      this.#head = request.resume.header;
      this.#headHash = headerHash(request.resume.header);
      this.#reloadDeployments();
    } else {
      genesisBlock = this.#buildGenesis(request.genesis);
    }
    this.#identity = await this.#evidence(request.freshness);
    return { identity: this.#identity, genesisBlock };
  }

  #buildGenesis(genesis: Genesis): NonNullable<InitResponse['genesisBlock']> {
    const block = new StateOverlay(this.#state);
    for (const contract of genesis.contracts) {
      const bundle: ContractBundle = { manifest: parseManifest(contract.manifest), code: contract.code };
      const measurement = bundleMeasurement(bundle);
      block.write(stateKey.deployment(contract.name), canonicalize({ name: contract.name, measurement, bundle } as unknown as JsonValue));
      this.#deployments.set(contract.name, { name: contract.name, measurement, bundle });
    }
    const receipts: Receipt[] = [];
    for (const contract of genesis.contracts) {
      const deployment = this.#deployments.get(contract.name)!;
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
        throw new ChainError('BLOCK_INVALID', `genesis: deploying "${contract.name}" failed: ${outcome.error?.message ?? ''}`);
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
      stateRoot: nextStateRoot(ZERO_HASH, writeSet),
      validatorSetHash: sha256Hex(canonicalBytes(genesis.validators)),
      policyHash: sha256Hex(canonicalBytes(genesis.policy)),
    };
    this.#state.apply(writeSet);
    this.#head = header;
    this.#headHash = headerHash(header);
    return { header, receipts, writeSet };
  }

  #reloadDeployments(): void {
    this.#deployments.clear();
    for (const [, record] of this.#state.withPrefix(stateKey.deployment(''))) {
      const parsed = JSON.parse(record) as { name: string; measurement: string; bundle: ContractBundle };
      this.#deployments.set(parsed.name, parsed);
    }
  }

  #genesisOrThrow(): Genesis {
    if (!this.#genesis || !this.#head || !this.#signer) {
      throw new ChainError('ENCLAVE_UNAVAILABLE', 'enclave not initialised');
    }
    return this.#genesis;
  }

  #proposeBlock(parent: BlockHeader, time: number, txs: SignedTx[]): BlockResult {
    const genesis = this.#genesisOrThrow();
    this.#requireHead(parent);
    const output = this.#executor.execute(
      this.#state,
      { chainId: genesis.chainId, height: parent.height + 1, time },
      genesis.consensus,
      txs,
      'propose',
    );
    const header: BlockHeader = {
      chainId: genesis.chainId,
      height: parent.height + 1,
      parentHash: this.#headHash,
      time: Math.max(time, parent.time),
      proposer: this.#signer!.publicKey,
      txRoot: txRootOf(output.txHashes),
      receiptsRoot: receiptsRootOf(output.receipts),
      stateRoot: nextStateRoot(parent.stateRoot, output.writeSet),
      validatorSetHash: parent.validatorSetHash,
      policyHash: parent.policyHash,
    };
    return this.#finish(header, output.includedIndexes, output.txHashes, output.receipts, output.writeSet, output.excluded);
  }

  /** Re-executes a block proposed elsewhere and signs only when every root matches. */
  #executeBlock(parent: BlockHeader, header: BlockHeader, txs: SignedTx[]): BlockResult {
    const genesis = this.#genesisOrThrow();
    this.#requireHead(parent);
    checkChildHeader(parent, header);
    const output = this.#executor.execute(
      this.#state,
      { chainId: genesis.chainId, height: header.height, time: header.time },
      genesis.consensus,
      txs,
      'validate',
    );
    const expected = {
      txRoot: txRootOf(output.txHashes),
      receiptsRoot: receiptsRootOf(output.receipts),
      stateRoot: nextStateRoot(parent.stateRoot, output.writeSet),
    };
    for (const [field, value] of Object.entries(expected)) {
      if (header[field as keyof typeof expected] !== value) {
        throw new ChainError('BLOCK_INVALID', `block ${header.height}: ${field} does not match re-execution`);
      }
    }
    return this.#finish(header, output.includedIndexes, output.txHashes, output.receipts, output.writeSet, []);
  }

  #finish(
    header: BlockHeader,
    included: number[],
    txHashes: string[],
    receipts: Receipt[],
    writeSet: StateWrite[],
    excluded: BlockResult['excluded'],
  ): BlockResult {
    const blockHash = headerHash(header);
    // Executed and validated: only now may this enclave vote for it (signVote checks).
    this.#pending.set(blockHash, { header, writeSet });
    return { header, blockHash, included, txHashes, receipts, writeSet, excluded };
  }

  /** Records the slot in the sealed identity (refusing a conflict), signs, and reseals. */
  #signAt(height: number, round: number, step: SignStep, value: string, message: Uint8Array): SignResult {
    const identity = this.#identityKeys!;
    identity.claim(height, round, step, value);
    return { validator: identity.signer.publicKey, signature: identity.signer.sign(message), sealed: identity.seal() };
  }

  /** The next height's votes only, and a block only when this enclave executed and validated it. */
  #checkVoteTarget(chainId: string, height: number, round: number, blockHash: string | null): void {
    const genesis = this.#genesisOrThrow();
    if (chainId !== genesis.chainId) throw new ChainError('BLOCK_INVALID', 'vote for another chain');
    if (height !== this.#head!.height + 1) throw new ChainError('BLOCK_INVALID', `votes are for height ${this.#head!.height + 1}`);
    if (!Number.isSafeInteger(round) || round < 0) throw new ChainError('BLOCK_INVALID', 'round must be a non-negative integer');
    if (blockHash !== null && !this.#pending.has(blockHash)) {
      throw new ChainError('BLOCK_NOT_VALIDATED', `block ${blockHash} was not executed and validated by this enclave`);
    }
  }

  #signVote(vote: Vote): SignResult {
    this.#checkVoteTarget(vote.chainId, vote.height, vote.round, vote.blockHash);
    if (vote.type !== 'prevote' && vote.type !== 'precommit') throw new ChainError('BLOCK_INVALID', 'unknown vote type');
    const clean: Vote = { chainId: vote.chainId, type: vote.type, height: vote.height, round: vote.round, blockHash: vote.blockHash };
    return this.#signAt(vote.height, vote.round, vote.type, vote.blockHash ?? 'nil', voteMessage(clean));
  }

  #signProposal(p: { chainId: string; height: number; round: number; polRound: number; blockHash: string }): SignResult {
    this.#checkVoteTarget(p.chainId, p.height, p.round, p.blockHash);
    if (!Number.isSafeInteger(p.polRound) || p.polRound < -1 || p.polRound >= p.round) {
      throw new ChainError('BLOCK_INVALID', 'polRound must be -1 or an earlier round');
    }
    const message = signingMessage('proposal', {
      chainId: p.chainId,
      height: p.height,
      round: p.round,
      polRound: p.polRound,
      blockHash: p.blockHash,
    });
    return this.#signAt(p.height, p.round, 'proposal', p.blockHash, message);
  }

  #requireHead(parent: BlockHeader): void {
    if (headerHash(parent) !== this.#headHash) {
      throw new ChainError('BLOCK_INVALID', `parent is not the enclave's head (height ${this.#head?.height ?? -1})`);
    }
  }

  #commitBlock(blockHash: string): { height: number } {
    this.#genesisOrThrow();
    const pending = this.#pending.get(blockHash);
    if (!pending) throw new ChainError('NOT_FOUND', `no executed block ${blockHash} to commit`);
    this.#state.apply(pending.writeSet);
    this.#head = pending.header;
    this.#headHash = blockHash;
    this.#pending.clear();
    if (pending.writeSet.some(([key]) => key.startsWith('k:'))) this.#reloadDeployments();
    return { height: pending.header.height };
  }

  #call(contract: string, method: string, args: JsonValue[], caller: string): { result: JsonValue; gasUsed: number } {
    const genesis = this.#genesisOrThrow();
    const head = this.#head!;
    return this.#executor.call(
      this.#state,
      { chainId: genesis.chainId, height: head.height, time: head.time },
      contract,
      method,
      args,
      caller,
      CALL_GAS_LIMIT,
    );
  }

  async #evidence(freshness: string): Promise<EnclaveIdentity> {
    const genesis = this.#genesis;
    if (!genesis || !this.#signer) throw new ChainError('ENCLAVE_UNAVAILABLE', 'enclave not initialised');
    const publicKeys = { vote: this.#signer.publicKey };
    const reportData = reportDataFor({ publicKeys, chainId: genesis.chainId, nodeId: this.#nodeId, freshness });
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
