import type {
  AttestationTokenView,
  BlockView,
  CallResultView,
  ContractView,
  EncryptionKeyView,
  EvidenceView,
  ReceiptView,
  StatusView,
  TransactionView,
} from '../chain/api.js';
import type { CallAuth, Genesis, JsonValue, SignedTx } from '../../consensus/index.js';
import type { OpenRpcDocument } from '../rpc/openrpc.js';
import type { NodeView } from '../rpc/network-methods.js';
import type { GovernanceMembersView, ProposalState, ProposalView } from './governance.js';
import type { ChainView, ViewTransitionProof } from '../../contracts/index.js';
import type { ReceiptProof, StateValueProof } from '../proofs/index.js';
import type { SubscriptionFilter, SubscriptionKind } from './subscriptions.js';

/** Every RPC method's positional params and result, for typed calls. */
export interface RpcMethodMap {
  'rpc.discover': { params: []; result: OpenRpcDocument };
  chain_blockNumber: { params: []; result: number };
  chain_getBlockByNumber: { params: [height: number | 'latest', fullTransactions?: boolean]; result: BlockView | null };
  chain_getBlockByHash: { params: [hash: string, fullTransactions?: boolean]; result: BlockView | null };
  chain_sendTransaction: { params: [tx: SignedTx]; result: string };
  chain_getTransaction: { params: [hash: string]; result: TransactionView | null };
  chain_getTransactionReceipt: { params: [hash: string]; result: ReceiptView | null };
  chain_getReceiptProof: { params: [hash: string]; result: ReceiptProof | null };
  chain_getStateProof: { params: [contract: string, key: string, height?: number]; result: StateValueProof };
  chain_getViewTransitions: { params: [fromHeight?: number]; result: ViewTransitionProof[] };
  chain_getNonce: { params: [address: string]; result: number };
  /** The plain form; a confidential contract's sealed form is CloisterClient.sealedCall (params [contract, sealed], result SealedCallView). */
  chain_call: { params: [contract: string, method: string, args: JsonValue[], auth?: CallAuth]; result: CallResultView };
  chain_getGenesis: { params: []; result: Genesis };
  tee_getAttestationToken: { params: [nonce: string, audience?: string]; result: AttestationTokenView };
  tee_getEncryptionKey: { params: [] | [nonce: string]; result: EncryptionKeyView };
  tee_getEvidence: { params: [] | [nonce: string]; result: EvidenceView };
  contract_list: { params: []; result: ContractView[] };
  node_status: { params: []; result: StatusView };
  net_nodes: { params: []; result: NodeView[] };
  gov_members: { params: []; result: GovernanceMembersView };
  gov_chainView: { params: []; result: ChainView };
  gov_getProposal: { params: [id: number]; result: ProposalView };
  gov_listProposals: { params: [state?: ProposalState, limit?: number]; result: ProposalView[] };
  /** WebSocket only (CloisterClient.subscribe); over HTTP the node answers WEBSOCKET_REQUIRED. */
  chain_subscribe: { params: [kind: SubscriptionKind, filter?: SubscriptionFilter]; result: string };
  chain_unsubscribe: { params: [id: string]; result: boolean };
}

export type RpcMethodName = keyof RpcMethodMap;
export type RpcParams<M extends RpcMethodName> = RpcMethodMap[M]['params'];
export type RpcResult<M extends RpcMethodName> = RpcMethodMap[M]['result'];

/** The methods this client knows, in the server's table order. */
export const RPC_METHOD_NAMES = [
  'chain_blockNumber',
  'chain_getBlockByNumber',
  'chain_getBlockByHash',
  'chain_sendTransaction',
  'chain_getTransaction',
  'chain_getTransactionReceipt',
  'chain_getReceiptProof',
  'chain_getStateProof',
  'chain_getViewTransitions',
  'chain_getNonce',
  'chain_call',
  'tee_getEncryptionKey',
  'tee_getEvidence',
  'chain_getGenesis',
  'tee_getAttestationToken',
  'contract_list',
  'node_status',
  'gov_members',
  'gov_chainView',
  'gov_getProposal',
  'gov_listProposals',
  'net_nodes',
  'chain_subscribe',
  'chain_unsubscribe',
  'rpc.discover',
] as const satisfies readonly RpcMethodName[];

// Compile-time check that RPC_METHOD_NAMES lists every method of RpcMethodMap.
type Unlisted = Exclude<RpcMethodName, (typeof RPC_METHOD_NAMES)[number]>;
const everyMethodListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyMethodListed;
