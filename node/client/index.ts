import type {
  AttestationTokenView,
  BlockView,
  CallResultView,
  ContractView,
  EncryptionKeyView,
  EvidenceView,
  ReceiptView,
  SealedCallView,
  StatusView,
  TransactionView,
} from '../chain/api.js';
import { signCall, type Ed25519Signer, type Genesis, type JsonValue, type PlainTxBody, type SignedTx } from '../../consensus/index.js';
import {
  newNonce,
  openCallAnswer,
  openReceipt,
  sealCall,
  sealTransaction,
  SealingSessions,
  verifyEncryptionKey,
  type EncryptionKeyTrust,
  type OpenedAnswer,
  type VerifiedEncryptionKey,
} from './confidential.js';
import type { OpenRpcDocument } from '../rpc/openrpc.js';
import type { NodeView } from '../rpc/network-methods.js';
import { RpcBatch, type BatchEntry, type Settled } from './batch.js';
import type { ChainView } from '../../contracts/index.js';
import {
  governanceResult,
  governanceTx,
  type GovernanceActionInput,
  type GovernanceMembersView,
  type GovernanceMethod,
  type GovernanceResult,
  type ProposalState,
  type ProposalView,
} from './governance.js';
import { asErrorObject, ClientError, RpcError } from './errors.js';
import type { RpcMethodName, RpcParams, RpcResult } from './methods.js';
import { unsendableParams } from './sendable.js';
import { postJson, type FetchLike, type TransportOptions } from './transport.js';
import { verifyReceiptProof, verifyStateValueProof, type ReceiptProof, type StateValueProof, type VerifiedReceipt, type VerifiedStateValue } from '../proofs/index.js';
import { SubscriptionSocket, type Subscription, type SubscriptionFilter, type SubscriptionKind, type SubscriptionResults } from './subscriptions.js';

export { RpcError, ClientError, type ClientErrorKind } from './errors.js';
export type { NodeView } from '../rpc/network-methods.js';
export { RpcBatch, BatchResults, type BatchHandle, type Settled } from './batch.js';
export { RPC_METHOD_NAMES, type RpcMethodMap, type RpcMethodName, type RpcParams, type RpcResult } from './methods.js';
export { RpcErrorCodes, RPC_ERRORS, type RpcErrorName } from '../rpc/errors.js';
export type { FetchLike } from './transport.js';
export type { EventNotification, Subscription, SubscriptionEnd, SubscriptionFilter, SubscriptionKind, SubscriptionResults } from './subscriptions.js';
export type {
  BlockView,
  CallResultView,
  ContractView,
  EvidenceView,
  ReceiptView,
  StatusView,
  TransactionView,
} from '../chain/api.js';
export type { OpenRpcDocument } from '../rpc/openrpc.js';
export type { AttestationTokenView, EncryptionKeyView, SealedCallView } from '../chain/api.js';
export * from './confidential.js';
export * from './governance.js';
export * from '../proofs/index.js';
export type { ChainView } from '../../contracts/index.js';

export interface CloisterClientOptions {
  /** Default: the global fetch. */
  fetch?: FetchLike;
  /** Per HTTP request; default 30 s. */
  timeoutMs?: number;
  /** Extra HTTP headers (e.g. authorization for a proxy). */
  headers?: Record<string, string>;
}

export interface WaitOptions {
  /** Default 60 s. */
  timeoutMs?: number;
  /** Default 250 ms. */
  pollMs?: number;
  signal?: AbortSignal;
}

interface ResponseShape {
  id?: unknown;
  result?: unknown;
  error?: unknown;
}

/** Drops trailing undefined params, so optional params are simply absent. */
function trimParams(params: readonly unknown[]): unknown[] {
  let end = params.length;
  while (end > 0 && params[end - 1] === undefined) end--;
  return params.slice(0, end);
}

/** A typed client of a Cloister node's JSON-RPC interface. */
export class CloisterClient {
  readonly url: string;
  readonly #transport: TransportOptions;
  #nextId = 1;
  /** One sealing session per network key and sender: validators open a sender's later transactions without a new X25519 agreement. */
  readonly #sealing = new SealingSessions();
  /** The WebSocket the subscriptions share, opened by the first subscribe. */
  #socket: Promise<SubscriptionSocket> | undefined;

  constructor(url: string, options: CloisterClientOptions = {}) {
    this.url = url;
    const fetchImpl = options.fetch ?? ((input: string, init: RequestInit) => globalThis.fetch(input, init));
    this.#transport = { fetch: fetchImpl, timeoutMs: options.timeoutMs ?? 30_000, headers: { ...options.headers } };
  }

  /** Calls a method by name with positional params. Throws RpcError or ClientError. */
  async request<M extends RpcMethodName>(method: M, ...params: RpcParams<M>): Promise<RpcResult<M>> {
    return (await this.rawRequest(method, trimParams(params))) as RpcResult<M>;
  }

  /** Calls any method (e.g. one this client version does not know). */
  async rawRequest(method: string, params?: unknown[] | Record<string, unknown>): Promise<unknown> {
    const unsendable = unsendableParams(method, params);
    if (unsendable) throw unsendable;
    const id = this.#nextId++;
    const message = params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
    const reply = await postJson(this.url, JSON.stringify(message), this.#transport);
    const response = reply.body as ResponseShape | undefined;
    if (typeof response !== 'object' || response === null || Array.isArray(response)) {
      throw new ClientError(reply.status === 200 ? 'protocol' : 'http', `unexpected answer to ${method} (HTTP ${reply.status})`, reply.status);
    }
    const error = asErrorObject(response.error);
    if (error) throw new RpcError(error, method);
    if (reply.status !== 200 || !('result' in response) || response.id !== id) {
      throw new ClientError(reply.status === 200 ? 'protocol' : 'http', `unexpected answer to ${method} (HTTP ${reply.status})`, reply.status);
    }
    return response.result;
  }

  /** Sends a notification: no id, no answer. */
  async notify(method: string, params?: unknown[] | Record<string, unknown>): Promise<void> {
    const unsendable = unsendableParams(method, params);
    if (unsendable) throw unsendable;
    const message = params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params };
    const reply = await postJson(this.url, JSON.stringify(message), this.#transport);
    const error = asErrorObject((reply.body as ResponseShape | undefined)?.error);
    if (error) throw new RpcError(error, method);
  }

  /** Starts a batch: add requests, then `send()` them in one HTTP call. */
  batch(): RpcBatch {
    return new RpcBatch((entries) => this.#sendBatch(entries));
  }

  async #sendBatch(entries: readonly BatchEntry[]): Promise<Settled<unknown>[]> {
    const firstId = this.#nextId;
    this.#nextId += entries.length;
    // An entry whose params JSON would change is refused here; the others are sent.
    const settled: (Settled<unknown> | undefined)[] = entries.map((entry) => {
      const unsendable = unsendableParams(entry.method, entry.params);
      return unsendable ? { ok: false, error: unsendable } : undefined;
    });
    const messages = entries.flatMap((entry, i) =>
      settled[i] ? [] : [{ jsonrpc: '2.0', id: firstId + i, method: entry.method, params: trimParams(entry.params) }],
    );
    if (messages.length === 0) return settled as Settled<unknown>[];
    const reply = await postJson(this.url, JSON.stringify(messages), this.#transport);
    if (!Array.isArray(reply.body)) {
      const error = asErrorObject((reply.body as ResponseShape | undefined)?.error);
      if (error) throw new RpcError(error);
      throw new ClientError(reply.status === 200 ? 'protocol' : 'http', `unexpected answer to a batch (HTTP ${reply.status})`, reply.status);
    }
    for (const item of reply.body as ResponseShape[]) {
      const index = typeof item?.id === 'number' ? item.id - firstId : -1;
      const entry = entries[index];
      if (!entry || settled[index]) throw new ClientError('protocol', 'batch answer with an unknown or repeated id');
      const error = asErrorObject(item.error);
      settled[index] = error ? { ok: false, error: new RpcError(error, entry.method) } : { ok: true, value: item.result };
    }
    if (settled.some((s) => s === undefined) || settled.length !== entries.length) {
      throw new ClientError('protocol', 'batch answer is missing responses');
    }
    return settled as Settled<unknown>[];
  }

  /** Polls for a receipt until it exists; throws ClientError('timeout') after timeoutMs. */
  async waitForReceipt(hash: string, options: WaitOptions = {}): Promise<ReceiptView> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const pollMs = options.pollMs ?? 250;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      options.signal?.throwIfAborted();
      const receipt = await this.getTransactionReceipt(hash);
      if (receipt) return receipt;
      const left = deadline - Date.now();
      if (left <= 0) throw new ClientError('timeout', `no receipt for ${hash} within ${timeoutMs} ms`);
      await delay(Math.min(pollMs, left), options.signal);
    }
  }

  rpcDiscover(): Promise<OpenRpcDocument> {
    return this.request('rpc.discover');
  }

  blockNumber(): Promise<number> {
    return this.request('chain_blockNumber');
  }

  getBlockByNumber(height: number | 'latest', fullTransactions?: boolean): Promise<BlockView | null> {
    return this.request('chain_getBlockByNumber', height, fullTransactions);
  }

  getBlockByHash(hash: string, fullTransactions?: boolean): Promise<BlockView | null> {
    return this.request('chain_getBlockByHash', hash, fullTransactions);
  }

  /** Submits a signed transaction; returns its hash. */
  sendTransaction(tx: SignedTx): Promise<string> {
    return this.request('chain_sendTransaction', tx);
  }

  /** Submits many transactions in one HTTP call, accepted in array order. */
  async sendTransactions(txs: readonly SignedTx[]): Promise<Settled<string>[]> {
    const batch = this.batch();
    const handles = txs.map((tx) => batch.add('chain_sendTransaction', tx));
    const results = await batch.send();
    return handles.map((handle) => results.get(handle));
  }

  getTransaction(hash: string): Promise<TransactionView | null> {
    return this.request('chain_getTransaction', hash);
  }

  getTransactionReceipt(hash: string): Promise<ReceiptView | null> {
    return this.request('chain_getTransactionReceipt', hash);
  }

  /** The node's proof that a committed transaction and its receipt are in the ledger (null: not committed there). Verify it with verifyReceiptProof. */
  getReceiptProof(hash: string): Promise<ReceiptProof | null> {
    return this.request('chain_getReceiptProof', hash);
  }

  /** A public contract's key proved under the state root of a recent height (the head by default). Verify it with verifyStateValueProof. */
  getStateProof(contract: string, key: string, height?: number): Promise<StateValueProof> {
    return height === undefined ? this.request('chain_getStateProof', contract, key) : this.request('chain_getStateProof', contract, key, height);
  }

  /**
   * A committed transaction's receipt, trusting the node for nothing: its
   * proof, verified against the genesis the caller holds (null: not committed
   * on that node). Throws ProofError when the proof does not verify.
   */
  async verifiedReceipt(hash: string, genesis: Genesis, options: { now?: Date } = {}): Promise<VerifiedReceipt | null> {
    const proof = await this.getReceiptProof(hash);
    return proof === null ? null : verifyReceiptProof(proof, genesis, { now: options.now ?? new Date() });
  }

  /** A public contract's key, trusting the node for nothing: its state proof, verified against the genesis the caller holds. */
  async verifiedState(contract: string, key: string, genesis: Genesis, options: { height?: number; now?: Date } = {}): Promise<VerifiedStateValue> {
    const proof = await this.getStateProof(contract, key, options.height);
    return verifyStateValueProof(proof, genesis, { now: options.now ?? new Date() });
  }

  getNonce(address: string): Promise<number> {
    return this.request('chain_getNonce', address);
  }

  /**
   * A read-only call: as the anonymous caller, or, with `as`, signed by that
   * key (valid for `ttlMs`, default 60 s, by this machine's clock) so that the
   * contract sees it as the caller.
   */
  async call(contract: string, method: string, args: JsonValue[], as?: { signer: Ed25519Signer; chainId?: string; ttlMs?: number }): Promise<CallResultView> {
    if (!as) return this.request('chain_call', contract, method, args);
    const chainId = as.chainId ?? (await this.status()).chainId;
    const auth = signCall(chainId, { contract, method, args }, as.signer, Date.now(), as.ttlMs);
    return this.request('chain_call', contract, method, args, auth);
  }

  /** The network encryption key as the node answers it (unverified: see encryptionKey). */
  getEncryptionKey(nonce?: string): Promise<EncryptionKeyView> {
    return nonce === undefined ? this.request('tee_getEncryptionKey') : this.request('tee_getEncryptionKey', nonce);
  }

  /**
   * The network encryption key, verified against the genesis (the trust
   * anchor) with a fresh challenge: throws ChainError KEY_UNVERIFIED when its
   * evidence does not verify, and then nothing must be sealed to it. With
   * `chainView`, the validators and policy governance has changed since the
   * genesis, as a view the caller trusts (see EncryptionKeyTrust).
   */
  async encryptionKey(genesis: Genesis, now?: Date, chainView?: EncryptionKeyTrust['view']): Promise<VerifiedEncryptionKey> {
    const nonce = newNonce();
    const view = await this.getEncryptionKey(nonce);
    return verifyEncryptionKey(view, { genesis, nonce, ...(now ? { now } : {}), ...(chainView ? { view: chainView } : {}) });
  }

  /**
   * Sends a transaction to a confidential contract: its method and args
   * sealed to `key` (from encryptionKey), signed by `signer`. Returns the hash
   * and a function that opens the receipt's sealed answer.
   */
  async sendSealedTransaction(
    body: PlainTxBody,
    signer: Ed25519Signer,
    key: VerifiedEncryptionKey,
  ): Promise<{ hash: string; open: (receipt: ReceiptView) => ReceiptView & { opened: OpenedAnswer } }> {
    const { tx, resultKey } = sealTransaction(body, signer, key, this.#sealing.for(key, body.from));
    const hash = await this.sendTransaction(tx);
    return { hash, open: (receipt) => openReceipt(receipt, resultKey) };
  }

  /** A read-only call to a confidential contract, sealed both ways; with `as`, signed inside the seal. */
  async sealedCall(
    contract: string,
    method: string,
    args: JsonValue[],
    key: VerifiedEncryptionKey,
    as?: { signer: Ed25519Signer; chainId?: string; ttlMs?: number },
  ): Promise<{ result: JsonValue; gasUsed: number }> {
    const chainId = as?.chainId ?? (await this.status()).chainId;
    const { sealed, resultKey } = sealCall(
      chainId,
      contract,
      method,
      args,
      key,
      as ? { signer: as.signer, ...(as.ttlMs ? { ttlMs: as.ttlMs } : {}) } : undefined,
      this.#sealing.for(key, `call:${as?.signer.publicKey ?? ''}`),
    );
    const out = (await this.rawRequest('chain_call', [contract, sealed])) as SealedCallView;
    return { result: openCallAnswer(out.sealed, resultKey), gasUsed: out.gasUsed };
  }

  /** The node's enclave evidence; with `nonce` (16–64 random bytes, hex), fresh evidence bound to it. */
  getEvidence(nonce?: string): Promise<EvidenceView> {
    return nonce === undefined ? this.request('tee_getEvidence') : this.request('tee_getEvidence', nonce);
  }

  /** The enclave's attestation token over fresh evidence bound to `nonce` (16–64 random bytes, hex). */
  getAttestationToken(nonce: string, audience?: string): Promise<AttestationTokenView> {
    return this.request('tee_getAttestationToken', nonce, audience);
  }

  /** The genesis the node serves: trust it only after checking its hash (genesisHash) against one you know. */
  getGenesis(): Promise<Genesis> {
    return this.request('chain_getGenesis');
  }

  listContracts(): Promise<ContractView[]> {
    return this.request('contract_list');
  }

  status(): Promise<StatusView> {
    return this.request('node_status');
  }

  /** Every node of the consortium as this node sees it: admitted or refused (with the reason). */
  /** The consortium's members and the approvals a proposal needs now. */
  members(): Promise<GovernanceMembersView> {
    return this.request('gov_members');
  }

  /** The chain view the next block runs under (validators, policy, parameters, members), with its hashes. */
  chainView(): Promise<ChainView> {
    return this.request('gov_chainView');
  }

  /** A proposal with its votes, tally and state; RpcError GOV_PROPOSAL_NOT_FOUND when there is none. */
  getProposal(id: number): Promise<ProposalView> {
    return this.request('gov_getProposal', id);
  }

  /** Proposals, newest first. */
  listProposals(state?: ProposalState, limit?: number): Promise<ProposalView[]> {
    return this.request('gov_listProposals', state, limit);
  }

  /**
   * Proposes actions as a member; with `approve` the member's approval comes
   * with it (a member who alone is the threshold passes it at once). Waits
   * for the receipt: resolves with the proposal's id and state; RpcError when
   * the node refused it (GOV_NOT_MEMBER, GOV_ACTION_INVALID, …), GovernanceTxFailed
   * when a block refused it.
   */
  propose(signer: Ed25519Signer, actions: readonly GovernanceActionInput[], options: WaitOptions & { approve?: boolean } = {}): Promise<GovernanceResult> {
    const args: JsonValue[] = [actions as unknown as JsonValue];
    if (options.approve) args.push(true);
    return this.#governance(signer, 'propose', args, options);
  }

  /** Votes on a proposal as a member; resolves with the proposal's state after the vote (accepted when it decided it). */
  vote(signer: Ed25519Signer, id: number, approve: boolean, options: WaitOptions = {}): Promise<GovernanceResult> {
    return this.#governance(signer, 'vote', [id, approve], options);
  }

  /** Withdraws an open proposal (its proposer only). */
  withdraw(signer: Ed25519Signer, id: number, options: WaitOptions = {}): Promise<GovernanceResult> {
    return this.#governance(signer, 'withdraw', [id], options);
  }

  async #governance(signer: Ed25519Signer, method: GovernanceMethod, args: JsonValue[], options: WaitOptions): Promise<GovernanceResult> {
    const [{ chainId }, nonce] = await Promise.all([this.status(), this.getNonce(signer.publicKey)]);
    const hash = await this.sendTransaction(governanceTx(chainId, signer, nonce, method, args));
    return governanceResult(hash, await this.waitForReceipt(hash, options));
  }

  nodes(): Promise<NodeView[]> {
    return this.request('net_nodes');
  }

  /**
   * Subscribes over a WebSocket to the node's RPC URL (one socket shared by
   * this client's subscriptions; the global WebSocket, or the `ws` package on
   * Node 20). `onNotification` gets each item in order: newHeads a block (as
   * getBlockByNumber(h, false)), receipts a receipt, events an
   * EventNotification, from the first block committed after the call. Throws
   * RpcError (INVALID_PARAMS, TOO_MANY_SUBSCRIPTIONS) or ClientError.
   */
  async subscribe<K extends SubscriptionKind>(
    kind: K,
    filter: SubscriptionFilter | undefined,
    onNotification: (result: SubscriptionResults[K]) => void,
  ): Promise<Subscription> {
    const socket = await this.#subscriptionSocket();
    return socket.subscribe(kind, filter, onNotification as (result: unknown) => void);
  }

  /** Closes the subscriptions' WebSocket (each subscription's `closed` resolves). */
  async closeSubscriptions(): Promise<void> {
    const socket = await this.#socket?.catch(() => undefined);
    this.#socket = undefined;
    if (!socket) return;
    socket.close();
    await socket.ended;
  }

  async #subscriptionSocket(): Promise<SubscriptionSocket> {
    const opening = this.#socket;
    if (opening) {
      // Concurrent subscribes share the socket being opened.
      const current = await opening.catch(() => undefined);
      if (current?.isOpen) return current;
      if (this.#socket !== opening) return this.#subscriptionSocket();
    }
    this.#socket = SubscriptionSocket.open(this.url, this.#transport.timeoutMs);
    return this.#socket;
  }
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort(): void {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
