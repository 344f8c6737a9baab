import {
  ChainError,
  canonicalBytes,
  canonicalize,
  checkTxStateless,
  sha256Hex,
  type ConsensusParams,
  type ContractEvent,
  type JsonValue,
  type Receipt,
  type SignedTx,
} from '../../consensus/index.js';
import type { ContractBundle } from '../bundle/index.js';
import { callBaseCost, type ContractRuntime, type StateAccess } from '../sandbox/index.js';
import { StateOverlay, stateKey, type StateReader, type StateWrite } from './state.js';

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

/** Adapts a transaction's overlay to the sandbox's JSON state interface for one contract. */
export function contractStateAccess(overlay: StateOverlay, contract: string): StateAccess {
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
  constructor(
    private readonly runtime: ContractRuntime,
    private readonly deployments: (name: string) => Deployment | undefined,
    /** Transactions this enclave already verified (by hash); their signatures are not checked again. */
    private readonly alreadyVerified: (hash: string) => boolean = () => false,
  ) {}

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
        checked = checkTxStateless(raw, ctx.chainId, limits, this.alreadyVerified);
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
      const problem = this.admissible(tx);
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
      const receipt = this.#runTx(block, ctx, tx, hash, out.included.length);
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
  admissible(tx: Pick<SignedTx, 'contract' | 'method' | 'args' | 'gasLimit'>): { code: string; message: string } | null {
    const base = callBaseCost(tx.args);
    if (tx.gasLimit < base) {
      return { code: 'TX_GAS_LIMIT', message: `gasLimit ${tx.gasLimit} is below the base cost ${base} of this call (see the gas schedule)` };
    }
    const deployment = this.deployments(tx.contract);
    const spec = deployment ? methodOf(deployment.bundle, tx.method) : undefined;
    if (spec?.readonly) {
      return { code: 'TX_READONLY_METHOD', message: `"${tx.contract}.${tx.method}" is read-only: use chain_call, not a transaction` };
    }
    return null;
  }

  #runTx(block: StateOverlay, ctx: BlockContext, tx: SignedTx, hash: string, index: number): Receipt {
    const failed = (code: string, message: string, gasUsed = 0): Receipt => ({
      txHash: hash,
      index,
      status: 'failed',
      gasUsed,
      result: null,
      events: [],
      error: { code, message },
    });
    const deployment = this.deployments(tx.contract);
    if (!deployment) return failed('UNKNOWN_CONTRACT', `no contract named "${tx.contract}"`);
    const methodSpec = methodOf(deployment.bundle, tx.method);
    if (!methodSpec) return failed('UNKNOWN_METHOD', `contract "${tx.contract}" has no method "${tx.method}"`);

    const txOverlay = new StateOverlay(block);
    const outcome = this.runtime.call(
      deployment.bundle,
      tx.method,
      tx.args,
      {
        contract: tx.contract,
        caller: tx.from,
        blockHeight: ctx.height,
        blockTime: ctx.time,
        readonly: methodSpec.readonly,
      },
      tx.gasLimit,
      contractStateAccess(txOverlay, tx.contract),
    );
    if (outcome.status !== 'success') {
      return failed(outcome.error?.code ?? 'CONTRACT_ERROR', outcome.error?.message ?? 'failed', outcome.gasUsed);
    }
    txOverlay.mergeInto(block);
    const events: ContractEvent[] = outcome.events.map((e) => ({ contract: tx.contract, name: e.name, data: e.data }));
    return { txHash: hash, index, status: 'success', gasUsed: outcome.gasUsed, result: outcome.result, events, error: null };
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
      contractStateAccess(overlay, contract),
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
