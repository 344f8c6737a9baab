import { ChainError, DEFAULT_CONSENSUS_PARAMS, type CallAuth, type CommitCertificate, type Genesis, type JsonValue, type SealedPayload } from '../../../../consensus/index.js';
import type { ChainView, ViewTransitionProof } from '../../../../contracts/index.js';
import type {
  AttestationTokenView,
  BlockView,
  CallResultView,
  ChainApi,
  ContractView,
  EncryptionKeyView,
  EvidenceView,
  ReceiptView,
  SealedCallView,
  StatusView,
  TransactionView,
} from '../../../../node/chain/api.js';
import { RECEIPT_PROOF_KIND, STATE_PROOF_KIND, type CertifiedHeader, type ReceiptProof, type StateValueProof } from '../../../../node/proofs/index.js';
import { JsonRpcServer, chainMethods, governanceMethods, networkMethods, type BlockFeed, type GovernanceApi, type JsonRpcServerOptions, type NodeView, type RpcLogger } from '../../../../node/rpc/index.js';

export const h = (c: string): string => c.repeat(64);

export const MEMBERS = { members: [{ id: 'member-1', publicKey: h('1') }, { id: 'member-2', publicKey: h('2') }], threshold: 2, isMember: false };

export const PROPOSAL = {
  id: 3,
  proposer: 'member-1',
  proposerKey: h('1'),
  actions: [{ type: 'deployContract', name: 'counter', measurement: h('c'), version: '1.0.0', codeBytes: 321, initArgs: [] }],
  height: 10,
  expiresAt: 100_010,
  votes: { 'member-1': true, 'member-2': false },
  state: 'failed',
  approvals: 1,
  rejections: 1,
  required: 2,
  closedAt: 12,
  failure: 'action 1: a contract named "counter" is deployed already (upgrade it instead)',
};

export const TX = {
  chainId: 'test-chain',
  from: h('a'),
  nonce: 0,
  contract: 'counter',
  method: 'increment',
  args: [1],
  gasLimit: 100_000,
  signature: 'b'.repeat(128),
};

export const TX_VIEW: TransactionView = { ...TX, hash: h('c'), blockHeight: 1, blockHash: h('d'), index: 0 };

export const HEADER = {
  chainId: 'test-chain',
  height: 1,
  parentHash: h('0'),
  time: 1_700_000_000_000,
  proposer: h('e'),
  txRoot: h('1'),
  receiptsRoot: h('2'),
  stateRoot: h('3'),
  validatorSetHash: h('4'),
  policyHash: h('5'),
};

const CERTIFICATE: CommitCertificate = { height: 1, round: 0, blockHash: h('d'), signatures: [{ validator: h('e'), signature: 'f'.repeat(128) }] };

export function blockView(full: boolean): BlockView {
  return {
    hash: h('d'),
    ...HEADER,
    transactions: full ? [TX_VIEW] : [TX_VIEW.hash],
    certificate: CERTIFICATE,
    header: HEADER,
  };
}

export const RECEIPT: ReceiptView = {
  txHash: h('c'),
  status: 'success',
  blockHeight: 1,
  blockHash: h('d'),
  index: 0,
  gasUsed: 21,
  result: { count: 1 },
  events: [{ contract: 'counter', name: 'Incremented', data: { by: 1 } }],
};

/** The certificate and attestations of block 1 as the proofs carry them (shapes only: nothing here verifies). */
const CERTIFIED: CertifiedHeader = {
  header: HEADER,
  certificate: CERTIFICATE,
  transitions: [],
  attestations: [{ validator: h('e'), nodeId: 'node-1', publicKeys: { vote: h('e') }, freshness: 'f', evidence: 'AAAA' }],
};
const ONLY_LEAF = { index: 0, size: 1, path: [] };

/** TX and RECEIPT as chain_getReceiptProof proves them (the receipt as the receipts root hashes it). */
export const RECEIPT_PROOF: ReceiptProof = (({ blockHeight: _height, blockHash: _block, ...receipt }) => ({
  kind: RECEIPT_PROOF_KIND,
  tx: TX,
  txPath: ONLY_LEAF,
  receipt: { ...receipt, error: null },
  receiptPath: ONLY_LEAF,
  block: CERTIFIED,
}))(RECEIPT);

export const STATE_PROOF: StateValueProof = { kind: STATE_PROOF_KIND, contract: 'counter', key: 'value', value: 3, proof: { siblings: [], leaf: null }, block: CERTIFIED };

const PROVED_ABSENT = { value: null, proof: { siblings: [], leaf: null } };
export const VIEW_TRANSITION: ViewTransitionProof = { height: 3, validators: PROVED_ABSENT, policy: PROVED_ABSENT };

export const CALL_RESULT: CallResultView = { result: 5, gasUsed: 7 };

export const SEALED: SealedPayload = { generation: 1, enc: h('e'), ct: 'AAAAAAAAAAAAAAAAAAAAAA==' };

/** A sealed transaction as chain_getTransaction shows it: no method, no args. */
export const SEALED_TX_VIEW: TransactionView = {
  chainId: 'test-chain',
  from: h('a'),
  nonce: 1,
  contract: 'analytics',
  sealed: SEALED,
  gasLimit: 100_000,
  signature: 'b'.repeat(128),
  hash: h('f'),
  blockHeight: 1,
  blockHash: h('d'),
  index: 1,
};

export const SEALED_RECEIPT: ReceiptView = { ...RECEIPT, txHash: h('f'), index: 1, result: null, events: [], sealed: 'c2VhbGVk' };

export const SEALED_CALL_RESULT: SealedCallView = { sealed: 'c2VhbGVk', gasUsed: 9 };

export const EVIDENCE: EvidenceView = {
  platform: 'virtual',
  measurement: h('9'),
  publicKeys: { signing: h('a') },
  nodeId: '12D3KooWtest',
  chainId: 'test-chain',
  freshness: h('6').slice(0, 32),
  reportData: h('8'),
  evidence: 'ZXZpZGVuY2U=',
  virtualRoot: '-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----',
};

export const ENCRYPTION_KEY: EncryptionKeyView = { generation: 1, publicKey: h('4'), evidence: { ...EVIDENCE, publicKeys: { vote: h('a'), network: h('4') } } };

export const TOKEN: AttestationTokenView = { token: 'eyJ.eyJ.sig', evidence: EVIDENCE };

export const GENESIS = { chainId: 'test-chain', validators: [] } as unknown as Genesis;

export const CONTRACTS: ContractView[] = [{ name: 'counter', measurement: h('7'), manifest: { methods: ['increment'] } }];

export const STATUS: StatusView = {
  chainId: 'test-chain',
  nodeId: 'node-1',
  height: 1,
  headHash: h('d'),
  headTime: 1_700_000_000_000,
  platform: 'virtual',
  measurement: h('9'),
  mempoolSize: 0,
  genesisHash: h('6'),
};

export const NODES: NodeView[] = [
  { id: 'node-1', self: true, admitted: true, connected: true, voteKey: h('1'), platform: 'virtual', measurement: h('9') },
  {
    id: 'node-2',
    self: false,
    admitted: false,
    connected: true,
    voteKey: h('2'),
    platform: 'virtual',
    measurement: h('8'),
    reason: { code: 'MEASUREMENT_NOT_ALLOWED', message: 'measurement 8888… is not allowed' },
  },
  { id: 'node-3', self: false, admitted: false, connected: false, voteKey: h('3') },
];

export interface Call {
  method: string;
  args: unknown[];
}

/** The chain view FakeApi.view() reports (gov_chainView). */
export const CHAIN_VIEW: ChainView = {
  chainId: 'test-chain',
  validators: [{ nodeId: '12D3KooWA', voteKey: h('e') }],
  validatorKeys: [h('e')],
  quorum: 1,
  validatorSetHash: h('1'),
  policy: { allowedPlatforms: ['virtual'], allowVirtual: true, measurements: { virtual: ['ab'.repeat(48)] } },
  policyHash: h('2'),
  consensus: DEFAULT_CONSENSUS_PARAMS,
  members: MEMBERS.members,
  threshold: 2,
};

/** A fake ChainApi (and GovernanceApi) that records calls; override any method per test. */
export class FakeApi implements ChainApi, GovernanceApi {
  readonly calls: Call[] = [];
  height = 1;

  view(): ChainView {
    return CHAIN_VIEW;
  }

  #record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
  }

  status(): StatusView {
    this.#record('status');
    return STATUS;
  }
  blockNumber(): number {
    this.#record('blockNumber');
    return this.height;
  }
  async getBlockByNumber(height: number, full: boolean): Promise<BlockView | null> {
    this.#record('getBlockByNumber', height, full);
    return height === 1 ? blockView(full) : null;
  }
  async getBlockByHash(hash: string, full: boolean): Promise<BlockView | null> {
    this.#record('getBlockByHash', hash, full);
    return hash === h('d') ? blockView(full) : null;
  }
  async sendTransaction(tx: unknown): Promise<string> {
    this.#record('sendTransaction', tx);
    const nonce = (tx as { nonce: number }).nonce;
    if (nonce === 99) throw new ChainError('TX_NONCE_GAP', 'nonce 99 skips ahead of 0', { expected: 0, got: 99 });
    return nonce.toString(16).padStart(64, '0');
  }
  async getTransaction(hash: string): Promise<TransactionView | null> {
    this.#record('getTransaction', hash);
    return hash === TX_VIEW.hash ? TX_VIEW : null;
  }
  async getTransactionReceipt(hash: string): Promise<ReceiptView | null> {
    this.#record('getTransactionReceipt', hash);
    return hash === RECEIPT.txHash ? RECEIPT : null;
  }
  async getNonce(address: string): Promise<number> {
    this.#record('getNonce', address);
    return 3;
  }
  async call(contract: string, method: string, args: JsonValue[], auth?: CallAuth): Promise<CallResultView> {
    this.#record('call', contract, method, args, auth);
    return CALL_RESULT;
  }
  async sealedCall(contract: string, sealed: SealedPayload): Promise<SealedCallView> {
    this.#record('sealedCall', contract, sealed);
    return SEALED_CALL_RESULT;
  }
  async getEncryptionKey(nonce?: string): Promise<EncryptionKeyView> {
    this.#record('getEncryptionKey', nonce);
    return ENCRYPTION_KEY;
  }
  getGenesis(): Genesis {
    this.#record('getGenesis');
    return GENESIS;
  }
  async getAttestationToken(nonce: string, audience?: string): Promise<AttestationTokenView> {
    this.#record('getAttestationToken', nonce, audience);
    return TOKEN;
  }
  getEvidence(): EvidenceView {
    this.#record('getEvidence');
    return EVIDENCE;
  }
  listContracts(): ContractView[] {
    this.#record('listContracts');
    return CONTRACTS;
  }
  async getReceiptProof(hash: string): Promise<ReceiptProof | null> {
    this.#record('getReceiptProof', hash);
    return hash === RECEIPT.txHash ? RECEIPT_PROOF : null;
  }
  async getStateProof(contract: string, key: string, height?: number): Promise<StateValueProof> {
    this.#record('getStateProof', contract, key, height);
    return STATE_PROOF;
  }
  async getViewTransitions(fromHeight: number, limit: number): Promise<ViewTransitionProof[]> {
    this.#record('getViewTransitions', fromHeight, limit);
    return [VIEW_TRANSITION];
  }
}

export class MemoryLogger implements RpcLogger {
  readonly errors: { message: string; fields?: Record<string, unknown> }[] = [];
  readonly warnings: { message: string; fields?: Record<string, unknown> }[] = [];
  error(message: string, fields?: Record<string, unknown>): void {
    this.errors.push({ message, fields });
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.warnings.push({ message, fields });
  }
}

export interface Harness {
  api: FakeApi;
  logger: MemoryLogger;
  server: JsonRpcServer;
  url: string;
}

/** Starts a real server on 127.0.0.1, port 0, over a fresh FakeApi. */
/** A chain that commits nothing: the subscription methods are served (as on a node), no notification ever comes. */
export function idleFeed(api: ChainApi): BlockFeed {
  return {
    onBlock: () => () => {},
    blockNumber: () => 1,
    getBlockByNumber: (height) => api.getBlockByNumber(height, false),
    getTransaction: (hash) => api.getTransaction(hash),
    getTransactionReceipt: (hash) => api.getTransactionReceipt(hash),
  };
}

export async function startServer(options: Partial<JsonRpcServerOptions> = {}, api = new FakeApi()): Promise<Harness> {
  const logger = new MemoryLogger();
  const server = new JsonRpcServer({ methods: [...chainMethods(api), ...governanceMethods(api), ...networkMethods({ nodes: () => NODES })], logger, feed: idleFeed(api), ...options });
  await server.start();
  return { api, logger, server, url: server.url };
}

export interface RawReply {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** POSTs a body with fetch; `json` is the parsed answer (undefined when empty). */
export async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<RawReply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text.length > 0 ? (JSON.parse(text) as unknown) : undefined };
}

export function rpc(url: string, payload: unknown): Promise<RawReply> {
  return post(url, JSON.stringify(payload));
}
