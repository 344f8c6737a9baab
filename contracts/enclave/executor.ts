import {
  ChainError,
  canonicalBytes,
  canonicalize,
  checkTxStateless,
  isSealedTx,
  recheckTxLimits,
  type CheckedTx,
  OpeningSessions,
  openTxPayload,
  sealResult,
  sha256Hex,
  type ConsensusParams,
  type Genesis,
  type ContractEvent,
  type JsonValue,
  type Receipt,
  type SignedTx,
  ZERO_HASH,
} from '../../consensus/index.js';
import type { ContractBundle } from '../bundle/index.js';
import { callBaseCost, type ContractRuntime, type StateAccess } from '../sandbox/index.js';
import { StateOverlay, stateKey, type StateReader, type StateWrite } from './state.js';
import { confidentialStateAccess, type StateCipher } from './confidential-state.js';
import type { Generation } from './consortium-keys.js';
import { COMMIT_SECRET_METHOD, CONSORTIUM_CONTRACT, SYSTEM_TX_GAS, callSystem, runSystemTx } from './system-contract.js';
import { readConfig, type ContractHost, type GovernanceContext } from './governance/index.js';

/** What the executor needs of the consortium secret (consortium-keys.ts). */
export interface ExecutionKeys {
  usable(generation: number): Generation | undefined;
  isCommitted(generation: number): boolean;
  stateCipher(contract: string): StateCipher | undefined;
}

const NO_KEYS: ExecutionKeys = { usable: () => undefined, isCommitted: () => false, stateCipher: () => undefined };

/** A transaction's call in the clear: as sent, or opened inside the enclave (then with the key its result is sealed under). */
export interface OpenedCall {
  method: string;
  args: JsonValue[];
  resultKey: Uint8Array | null;
}

export interface TxProblem {
  code: string;
  message: string;
}

/** The receipt error a sealed transaction shows in the clear when it failed (the real one is sealed to the sender). */
export const SEALED_ERROR = { code: 'CONFIDENTIAL', message: 'the transaction failed; its error is sealed to the sender' } as const;

/** A contract as deployed in state. */
export interface Deployment {
  name: string;
  measurement: string;
  bundle: ContractBundle;
}

export interface BlockContext {
  chainId: string;
  height: number;
  time: number;
  /** The validators' vote keys at this height (who may send system transactions). */
  validators?: readonly string[];
  /** What governance starts from (members, policy, parameters); without it governance transactions are refused. */
  genesis?: Genesis;
  /** The hash of the block this one builds on (what a validator's ledger attestation binds). */
  parentHash?: string;
}

/** The zero key stands for "no caller" (deployment, anonymous calls). */
export const ANONYMOUS_CALLER = ZERO_HASH;

/**
 * A confidential contract's init sees empty state and may not write: its
 * state is stored sealed under the consortium secret, which not every enclave
 * holds when the deployment runs. It sets itself up with a transaction.
 */
export const NO_STATE_AT_DEPLOYMENT: StateAccess = {
  get: () => null,
  set: (): never => {
    throw new ChainError('ECALL_INVALID', 'a confidential contract cannot write state when it is deployed (not every enclave holds the consortium secret then): set it up with a transaction');
  },
  delete: (): void => undefined,
};

/**
 * The gas a member's system transaction (governance) uses: a fixed cost plus
 * its arguments' bytes, as a contract call's base cost counts them. An
 * enclave's own commitSecret uses SYSTEM_TX_GAS.
 */
export function systemTxGas(args: readonly JsonValue[], method?: string): number {
  return method === COMMIT_SECRET_METHOD ? SYSTEM_TX_GAS : SYSTEM_TX_GAS + callBaseCost(args);
}

/** Why a transaction could not be part of a block at all (as opposed to a failed receipt). */
export interface ExcludedTx {
  txHash: string;
  code: string;
  message: string;
}

export interface ExecutionOutput {
  included: SignedTx[];
  /** Positions of the included transactions in the input list. */
  includedIndexes: number[];
  txHashes: string[];
  receipts: Receipt[];
  excluded: ExcludedTx[];
  writeSet: StateWrite[];
  /** Senders whose nonce the block consumed, with their new next nonce. */
  nonces: Map<string, number>;
}

/**
 * How to treat a transaction that may not be in a block (bad signature, wrong
 * chain, wrong nonce): a proposer leaves it out; a validator re-executing someone
 * else's block rejects the whole block.
 */
export type ExecutionMode = 'propose' | 'validate';

/** The deployed contracts recorded in a state (`k:` records). */
export function readDeployments(state: { withPrefix(prefix: string): Iterable<[string, string]> }): Map<string, Deployment> {
  const deployments = new Map<string, Deployment>();
  for (const [, record] of state.withPrefix(stateKey.deployment(''))) {
    const parsed = JSON.parse(record) as Deployment;
    deployments.set(parsed.name, { name: parsed.name, measurement: parsed.measurement, bundle: parsed.bundle });
  }
  return deployments;
}

/** Adapts a transaction's overlay to the sandbox's JSON state interface for one contract (sealed when it is confidential). */
export function contractStateAccess(overlay: StateOverlay, contract: string, cipher?: StateCipher): StateAccess {
  if (cipher) return confidentialStateAccess(overlay, contract, cipher);
  return {
    get: (key) => overlay.readJson(stateKey.contract(contract, key)),
    set: (key, value) => overlay.write(stateKey.contract(contract, key), canonicalize(value)),
    delete: (key) => overlay.write(stateKey.contract(contract, key), null),
  };
}

export function readNonce(state: StateReader, address: string): number {
  const text = state.read(stateKey.nonce(address));
  return text === undefined ? 0 : (JSON.parse(text) as number);
}

export class BlockExecutor {
  /** Senders' sealing sessions: what the verifier threads did not open already opens here without a new X25519 agreement per session. */
  readonly #sessions = new OpeningSessions();

  constructor(
    private readonly runtime: ContractRuntime,
    private readonly deployments: (name: string) => Deployment | undefined,
    /** Transactions this enclave already verified (by hash); their signatures are not checked again. */
    private readonly alreadyVerified: (hash: string) => boolean = () => false,
    private readonly keys: ExecutionKeys = NO_KEYS,
    /** Sealed transactions already opened at admission (by hash): not opened again. */
    private readonly alreadyOpened: (hash: string) => OpenedCall | undefined = () => undefined,
  ) {}

  /**
   * The call a transaction makes, opened when it is sealed; or why it can
   * never run: a plain call to a confidential contract (TX_NOT_ENCRYPTED), a
   * sealed one to a public contract, a ciphertext that does not open for
   * exactly this transaction (DECRYPT_FAILED). SECRET_UNAVAILABLE is this
   * enclave's own lack (it does not hold the generation yet), not the sender's.
   */
  open(tx: SignedTx, hash: string, chainId: string): OpenedCall | TxProblem {
    const deployment = this.deployments(tx.contract);
    const confidential = deployment?.bundle.manifest.confidential === true;
    if (!isSealedTx(tx)) {
      if (confidential) {
        return { code: 'TX_NOT_ENCRYPTED', message: `contract "${tx.contract}" is confidential: seal the method and arguments to the network encryption key` };
      }
      return { method: tx.method, args: tx.args, resultKey: null };
    }
    if (!deployment) return { code: 'TX_UNKNOWN_CONTRACT', message: `no contract named "${tx.contract}"` };
    if (!confidential) return { code: 'TX_MALFORMED', message: `contract "${tx.contract}" is public: send the method and arguments in the clear` };
    const generation = this.keys.usable(tx.sealed.generation);
    if (!generation || !this.keys.stateCipher(tx.contract)) {
      if (!this.keys.isCommitted(tx.sealed.generation)) {
        return { code: 'DECRYPT_FAILED', message: `this chain has no consortium-secret generation ${tx.sealed.generation}` };
      }
      return { code: 'SECRET_UNAVAILABLE', message: `this enclave does not hold consortium-secret generation ${tx.sealed.generation} yet` };
    }
    const cached = this.alreadyOpened(hash);
    if (cached) return cached;
    try {
      return openTxPayload(generation.network, { chainId, from: tx.from, nonce: tx.nonce, contract: tx.contract }, tx.sealed, this.#sessions);
    } catch (err) {
      if (err instanceof ChainError) return { code: 'DECRYPT_FAILED', message: err.message };
      throw err;
    }
  }

  /**
   * Executes transactions in order on top of `base`. Each transaction runs in its
   * own overlay that is merged only when it succeeds; its nonce is consumed
   * either way, so a failed transaction cannot be replayed.
   */
  execute(
    base: StateReader,
    ctx: BlockContext,
    params: ConsensusParams,
    txs: readonly unknown[],
    mode: ExecutionMode,
    /** This enclave's own checked copy of a transaction named by hash (AdmittedTxs): its limits are checked again. */
    admitted?: ReadonlyMap<unknown, CheckedTx>,
  ): ExecutionOutput {
    const block = new StateOverlay(base);
    const out: ExecutionOutput = { included: [], includedIndexes: [], txHashes: [], receipts: [], excluded: [], writeSet: [], nonces: new Map() };
    const limits = { maxTxBytes: params.maxTxBytes, maxGasLimit: params.maxGasLimit };
    let blockBytes = 0;
    const seen = new Set<string>();

    for (let position = 0; position < txs.length; position++) {
      const raw = txs[position];
      let checked;
      try {
        const own = admitted?.get(raw);
        checked = own ? recheckTxLimits(own, ctx.chainId, limits) : checkTxStateless(raw, ctx.chainId, limits, this.alreadyVerified);
      } catch (err) {
        const code = err instanceof ChainError ? err.code : 'TX_MALFORMED';
        const message = err instanceof Error ? err.message : 'invalid transaction';
        const hash = typeof raw === 'object' && raw !== null ? safeHash(raw) : 'unknown';
        if (mode === 'validate') throw new ChainError('BLOCK_INVALID', `transaction ${hash}: ${message}`);
        out.excluded.push({ txHash: hash, code, message });
        continue;
      }
      const { tx, hash, size } = checked;
      const exclude = (code: string, message: string): void => {
        if (mode === 'validate') throw new ChainError('BLOCK_INVALID', `transaction ${hash}: ${message}`);
        out.excluded.push({ txHash: hash, code, message });
      };
      if (seen.has(hash)) {
        exclude('TX_DUPLICATE', 'transaction appears twice');
        continue;
      }
      const opened = this.open(tx, hash, ctx.chainId);
      if ('code' in opened) {
        // Not the sender's fault: this enclave cannot judge the block yet (the host fetches the secret and retries).
        if (opened.code === 'SECRET_UNAVAILABLE' && mode === 'validate') throw new ChainError('SECRET_UNAVAILABLE', opened.message);
        exclude(opened.code, opened.message);
        continue;
      }
      const problem = this.admissible(tx, opened);
      if (problem) {
        exclude(problem.code, problem.message);
        continue;
      }
      const expectedNonce = readNonce(block, tx.from);
      if (tx.nonce !== expectedNonce) {
        exclude(
          tx.nonce < expectedNonce ? 'TX_NONCE_TOO_LOW' : 'TX_NONCE_GAP',
          `nonce ${tx.nonce} but the sender's next nonce is ${expectedNonce}`,
        );
        continue;
      }
      if (out.included.length >= params.maxBlockTxs || blockBytes + size > params.maxBlockBytes) {
        exclude('BLOCK_FULL', 'block is full');
        continue;
      }
      seen.add(hash);
      blockBytes += size;
      block.write(stateKey.nonce(tx.from), String(expectedNonce + 1));
      out.nonces.set(tx.from, expectedNonce + 1);
      const receipt = this.#runTx(block, ctx, tx, opened, hash, out.included.length);
      out.included.push(tx);
      out.includedIndexes.push(position);
      out.txHashes.push(hash);
      out.receipts.push(receipt);
    }
    out.writeSet = block.writeSet();
    return out;
  }

  /**
   * What makes a transaction one that may never be in a block, whatever the
   * state: a gas limit below the call's base cost (it could only fail), or a
   * read-only method (it would change nothing; use a call). Null when it may be. (An unknown contract or method gets a failed receipt instead:
   * contracts change with governance, so it may have been known when sent.)
   */
  admissible(tx: Pick<SignedTx, 'contract' | 'gasLimit'>, call: Pick<OpenedCall, 'method' | 'args'>): TxProblem | null {
    if (tx.contract === CONSORTIUM_CONTRACT) {
      const gas = systemTxGas(call.args, call.method);
      if (tx.gasLimit < gas) return { code: 'TX_GAS_LIMIT', message: `gasLimit ${tx.gasLimit} is below the ${gas} gas this system transaction uses` };
      return null;
    }
    const base = callBaseCost(call.args);
    if (tx.gasLimit < base) {
      return { code: 'TX_GAS_LIMIT', message: `gasLimit ${tx.gasLimit} is below the base cost ${base} of this call (see the gas schedule)` };
    }
    const deployment = this.deployments(tx.contract);
    const spec = deployment ? methodOf(deployment.bundle, call.method) : undefined;
    if (spec?.readonly) {
      return { code: 'TX_READONLY_METHOD', message: `"${tx.contract}.${call.method}" is read-only: use chain_call, not a transaction` };
    }
    return null;
  }

  #runTx(block: StateOverlay, ctx: BlockContext, tx: SignedTx, call: OpenedCall, hash: string, index: number): Receipt {
    const receipt = this.#runCall(block, ctx, tx, call, hash, index);
    if (!call.resultKey) return receipt;
    // A sealed transaction's answer (result, events, error) goes to its sender only; status and gas stay public.
    const answer = { result: receipt.result, events: receipt.events, error: receipt.error } as unknown as JsonValue;
    return {
      ...receipt,
      result: null,
      events: [],
      error: receipt.status === 'failed' ? { ...SEALED_ERROR } : null,
      sealed: sealResult(call.resultKey, answer),
    };
  }

  #runCall(block: StateOverlay, ctx: BlockContext, tx: SignedTx, call: OpenedCall, hash: string, index: number): Receipt {
    const failed = (code: string, message: string, gasUsed = 0): Receipt => ({
      txHash: hash,
      index,
      status: 'failed',
      gasUsed,
      result: null,
      events: [],
      error: { code, message },
    });
    if (tx.contract === CONSORTIUM_CONTRACT && !isSealedTx(tx)) {
      const gas = systemTxGas(tx.args, tx.method);
      if (tx.gasLimit < gas) return failed('OUT_OF_GAS', `this system transaction uses ${gas} gas`, tx.gasLimit);
      const outcome = runSystemTx(block, tx, ctx.validators ?? [], this.governance(ctx, block));
      if (outcome.error) return failed(outcome.error.code, outcome.error.message, gas);
      const events = outcome.events.map((e) => ({ contract: tx.contract, name: e.name, data: e.data }));
      return { txHash: hash, index, status: 'success', gasUsed: gas, result: outcome.result, events, error: null };
    }
    const deployment = this.deployments(tx.contract);
    if (!deployment) return failed('UNKNOWN_CONTRACT', `no contract named "${tx.contract}"`);
    const methodSpec = methodOf(deployment.bundle, call.method);
    if (!methodSpec) return failed('UNKNOWN_METHOD', `contract "${tx.contract}" has no method "${call.method}"`);

    const txOverlay = new StateOverlay(block);
    const outcome = this.runtime.call(
      deployment.bundle,
      call.method,
      call.args,
      {
        contract: tx.contract,
        caller: tx.from,
        blockHeight: ctx.height,
        blockTime: ctx.time,
        readonly: methodSpec.readonly,
      },
      tx.gasLimit,
      contractStateAccess(txOverlay, tx.contract, this.#cipherOf(deployment)),
    );
    if (outcome.status !== 'success') {
      return failed(outcome.error?.code ?? 'CONTRACT_ERROR', outcome.error?.message ?? 'failed', outcome.gasUsed);
    }
    txOverlay.mergeInto(block);
    const events: ContractEvent[] = outcome.events.map((e) => ({ contract: tx.contract, name: e.name, data: e.data }));
    return { txHash: hash, index, status: 'success', gasUsed: outcome.gasUsed, result: outcome.result, events, error: null };
  }

  /**
   * What governance needs at this block: its genesis, the height, and the
   * sandbox to check a proposed bundle loads and to run a deployed contract's
   * init (with the chain's largest gas limit; a confidential contract's init
   * writes nothing, as at genesis).
   */
  governance(ctx: BlockContext, block: StateReader): GovernanceContext | undefined {
    if (!ctx.genesis) return undefined;
    const maxGas = readConfig(block, ctx.genesis).consensus.maxGasLimit;
    const contracts: ContractHost = {
      validate: (bundle) => this.runtime.validate(bundle)?.message ?? null,
      init: (name, bundle, initArgs, state) => {
        const layer = new StateOverlay(state);
        const outcome = this.runtime.deploy(
          bundle,
          initArgs,
          { contract: name, caller: ANONYMOUS_CALLER, blockHeight: ctx.height, blockTime: ctx.time, readonly: false },
          maxGas,
          bundle.manifest.confidential === true ? NO_STATE_AT_DEPLOYMENT : contractStateAccess(layer, name),
        );
        if (outcome.status !== 'success') return `${outcome.error?.code ?? 'CONTRACT_ERROR'}: ${outcome.error?.message ?? 'failed'}`;
        layer.mergeInto(state);
        return null;
      },
    };
    return { genesis: ctx.genesis, height: ctx.height, time: ctx.time, parentHash: ctx.parentHash ?? ZERO_HASH, contracts };
  }

  /** A confidential contract's state cipher; SECRET_UNAVAILABLE while this enclave does not hold the secret. */
  #cipherOf(deployment: Deployment): StateCipher | undefined {
    if (deployment.bundle.manifest.confidential !== true) return undefined;
    const cipher = this.keys.stateCipher(deployment.name);
    if (!cipher) throw new ChainError('SECRET_UNAVAILABLE', `this enclave does not hold the consortium secret that opens "${deployment.name}"'s state`);
    return cipher;
  }

  /** A read-only call against the given state; writes are refused by the sandbox. */
  call(
    base: StateReader,
    ctx: BlockContext,
    contract: string,
    method: string,
    args: JsonValue[],
    caller: string,
    gasLimit: number,
  ): { result: JsonValue; gasUsed: number } {
    if (contract === CONSORTIUM_CONTRACT) {
      if (!ctx.genesis) throw new ChainError('ENCLAVE_UNAVAILABLE', 'governance is not loaded yet');
      return { result: callSystem(base, { genesis: ctx.genesis, height: ctx.height }, method, args, caller), gasUsed: 0 };
    }
    const deployment = this.deployments(contract);
    if (!deployment) throw new ChainError('TX_UNKNOWN_CONTRACT', `no contract named "${contract}"`);
    const spec = methodOf(deployment.bundle, method);
    if (!spec) throw new ChainError('TX_UNKNOWN_METHOD', `contract "${contract}" has no method "${method}"`);
    if (!spec.readonly) {
      throw new ChainError('TX_READONLY_METHOD', `"${contract}.${method}" changes state; send it as a transaction`);
    }
    const overlay = new StateOverlay(base);
    const outcome = this.runtime.call(
      deployment.bundle,
      method,
      args,
      { contract, caller, blockHeight: ctx.height, blockTime: ctx.time, readonly: true },
      gasLimit,
      contractStateAccess(overlay, contract, this.#cipherOf(deployment)),
    );
    if (outcome.status !== 'success') {
      throw new ChainError('CALL_FAILED', outcome.error?.message ?? 'call failed', {
        contractCode: outcome.error?.code ?? 'CONTRACT_ERROR',
        gasUsed: outcome.gasUsed,
      });
    }
    return { result: outcome.result, gasUsed: outcome.gasUsed };
  }
}

function methodOf(bundle: ContractBundle, method: string): { readonly: boolean } | undefined {
  if (method === 'init') return undefined;
  const methods = bundle.manifest.methods as Record<string, { readonly: boolean }>;
  return Object.prototype.hasOwnProperty.call(methods, method) ? methods[method] : undefined;
}

function safeHash(raw: object): string {
  try {
    return sha256Hex(canonicalBytes(raw));
  } catch {
    return 'unencodable';
  }
}
