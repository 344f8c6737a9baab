import { ChainError, type CallAuth, type JsonValue, type SealedPayload } from '../../consensus/index.js';
import type { BlockView, ChainApi } from '../chain/api.js';
import { Lane } from './lane.js';
import { defineMethod, type RpcMethod } from './method.js';
import type { CallContext } from './response-budget.js';
import * as s from './schemas.js';

const blockTag: s.JsonSchema = {
  description: 'A block height, or "latest" for the head.',
  anyOf: [s.uint, { type: 'string', enum: ['latest'] }],
};

const fullTransactions = {
  name: 'fullTransactions',
  summary: 'Whole transactions instead of hashes (default false).',
  schema: { type: 'boolean' },
  required: false,
} as const;

/** A caller's challenge that fresh evidence binds. */
function nonceParam(without?: string): { name: string; summary: string; schema: s.JsonSchema } {
  const summary = "The caller's challenge, 16 to 64 random bytes in lowercase hex" + (without ? `; ${without}.` : '.');
  return { name: 'nonce', summary, schema: { type: 'string', pattern: '^([0-9a-f]{2}){16,64}$' } };
}

/** A block with its transactions is the one large response: its bytes are reserved before they are read. */
const BLOCK_ERRORS = ['RESPONSE_TOO_LARGE', 'BATCH_BUDGET_EXCEEDED', 'SERVER_BUSY'] as const;

const SEND_ERRORS = [
  'TX_MALFORMED',
  'TX_TOO_LARGE',
  'TX_BAD_SIGNATURE',
  'TX_WRONG_CHAIN',
  'TX_NONCE_TOO_LOW',
  'TX_NONCE_GAP',
  'TX_DUPLICATE',
  'TX_GAS_LIMIT',
  'TX_UNKNOWN_CONTRACT',
  'TX_UNKNOWN_METHOD',
  'TX_READONLY_METHOD',
  'TX_NOT_ENCRYPTED',
  'DECRYPT_FAILED',
  'SECRET_UNAVAILABLE',
  'ENCODING_INVALID',
  'MEMPOOL_FULL',
] as const;

/**
 * The chain, attestation and contract methods, served from a ChainApi.
 * Later families (governance, network) add their own `xxxMethods(...)` arrays
 * and the node passes them all to `new JsonRpcServer({ methods: [...] })`.
 */
export function chainMethods(api: ChainApi): RpcMethod[] {
  // A block with its transactions reads them all from the store, on the few threads the chain's own block writes
  // use too, and builds megabytes of JSON: at most two at once, so a flood of them cannot hold up commits.
  const fullBlocks = new Lane('full block', 2, 1024);
  const block = (full: boolean | undefined, build: (full: boolean) => Promise<BlockView | null>): Promise<BlockView | null> =>
    full === true ? fullBlocks.run(() => build(true)) : build(false);
  return [
    defineMethod({
      name: 'chain_blockNumber',
      summary: 'The height of the latest committed block.',
      params: [],
      result: { name: 'height', schema: s.uint },
      handler: () => api.blockNumber(),
    }),
    defineMethod({
      name: 'chain_getBlockByNumber',
      summary: 'A committed block by height, or null.',
      params: [{ name: 'height', schema: blockTag }, fullTransactions],
      result: { name: 'block', schema: s.nullable(s.blockView) },
      errors: BLOCK_ERRORS,
      handler: (height: number | 'latest', full: boolean | undefined, context: CallContext) =>
        block(full, (withTxs) => api.getBlockByNumber(height === 'latest' ? api.blockNumber() : height, withTxs, context)),
    }),
    defineMethod({
      name: 'chain_getBlockByHash',
      summary: 'A committed block by hash, or null.',
      params: [{ name: 'hash', schema: s.hash32 }, fullTransactions],
      result: { name: 'block', schema: s.nullable(s.blockView) },
      errors: BLOCK_ERRORS,
      handler: (hash: string, full: boolean | undefined, context: CallContext) =>
        block(full, (withTxs) => api.getBlockByHash(hash, withTxs, context)),
    }),
    defineMethod({
      name: 'chain_sendTransaction',
      summary: 'Submits a signed transaction to the mempool; returns its hash.',
      description:
        'Handlers run in request order, so a batch of one sender\'s transactions with consecutive nonces is accepted in order.',
      params: [{ name: 'tx', schema: s.signedTx }],
      result: { name: 'txHash', schema: s.hash32 },
      errors: SEND_ERRORS,
      handler: (tx: unknown) => api.sendTransaction(tx),
    }),
    defineMethod({
      name: 'chain_getTransaction',
      summary: 'A transaction by hash (committed or in the mempool), or null.',
      params: [{ name: 'hash', schema: s.hash32 }],
      result: { name: 'transaction', schema: s.nullable(s.transactionView) },
      handler: (hash: string) => api.getTransaction(hash),
    }),
    defineMethod({
      name: 'chain_getTransactionReceipt',
      summary: 'The receipt of a committed transaction, or null.',
      params: [{ name: 'hash', schema: s.hash32 }],
      result: { name: 'receipt', schema: s.nullable(s.receiptView) },
      handler: (hash: string) => api.getTransactionReceipt(hash),
    }),
    defineMethod({
      name: 'chain_getReceiptProof',
      summary: 'Everything needed to verify offline that a committed transaction and its receipt are in the ledger, or null.',
      description:
        'The transaction and its Merkle path to the header\'s txRoot; the receipt exactly as hashed and its path to receiptsRoot; the header and its commit certificate; every governance change of the validators or policy since the genesis (each a certified block and the new records proved under its state root); and each signer\'s attestation evidence. Verify with `cloister receipt verify` or verifyReceiptProof (exported by the package): it needs only the genesis.',
      params: [{ name: 'hash', schema: s.hash32 }],
      result: { name: 'proof', schema: s.nullable(s.receiptProof) },
      errors: ['NOT_FOUND', 'SERVER_BUSY'],
      concurrency: { maxInFlight: 8, maxWaiting: 256 },
      handler: (hash: string) => api.getReceiptProof(hash),
    }),
    defineMethod({
      name: 'chain_getStateProof',
      summary: "A public contract's key, its value (or absence) proved under the state root of a recent height (the head by default), with the certified header.",
      description:
        'The node proves its last 16 heights. A confidential contract\'s state is stored encrypted: its keys cannot be proved (STATE_PROOF_CONFIDENTIAL). Verify with `cloister state verify` or verifyStateValueProof.',
      params: [
        { name: 'contract', schema: s.contractName },
        { name: 'key', summary: 'The key in the contract\'s state (what the contract passes to state.get).', schema: { type: 'string', minLength: 1, maxLength: 256 } },
        { name: 'height', summary: 'A recent committed height (default: the head).', schema: s.uint, required: false },
      ],
      result: { name: 'proof', schema: s.stateValueProof },
      errors: ['STATE_PROOF_UNAVAILABLE', 'STATE_PROOF_CONFIDENTIAL', 'ENCLAVE_UNAVAILABLE', 'SERVER_BUSY'],
      concurrency: { maxInFlight: 8, maxWaiting: 256 },
      handler: (contract: string, key: string, height?: number) => (height === undefined ? api.getStateProof(contract, key) : api.getStateProof(contract, key, height)),
    }),
    defineMethod({
      name: 'chain_getViewTransitions',
      summary: 'The blocks that changed the validators or the attestation policy (from fromHeight, at most 1000): each with the new records proved under its state root.',
      description: 'What `cloister ledger verify --rpc` follows to check every certificate against the validators of its height.',
      params: [{ name: 'fromHeight', summary: 'The first height to list (default 0).', schema: s.uint, required: false }],
      result: { name: 'transitions', schema: { type: 'array', items: { type: 'object', description: '{height, validators: {value, proof}, policy: {value, proof}}' } } },
      handler: (fromHeight?: number) => api.getViewTransitions(fromHeight ?? 0, 1000),
    }),
    defineMethod({
      name: 'chain_getNonce',
      summary: "The sender's next nonce, counting transactions waiting in the mempool.",
      params: [{ name: 'address', schema: s.address }],
      result: { name: 'nonce', schema: s.uint },
      handler: (address: string) => api.getNonce(address),
    }),
    defineMethod({
      name: 'chain_call',
      summary: 'Runs a read-only contract method against the latest state.',
      description:
        'Runs on the enclave\'s call thread, beside block execution, as the anonymous caller (64 zeros), or, with `auth`, as the caller who signed this very call (checked in the enclave): nobody can read as someone else. A confidential contract takes the call sealed instead: `chain_call(contract, sealed)`, where `sealed` holds {method, args, auth?} sealed to the network key (bound to the chain, the contract and the generation); the answer is then `{sealed, gasUsed}`, {result} or {error} sealed to the caller. At most 32 calls are in flight on a node, the others wait their turn (SERVER_BUSY when 512 already wait).',
      params: [
        { name: 'contract', schema: s.contractName },
        { name: 'method', summary: 'The method; or, to a confidential contract, the sealed call.', schema: { anyOf: [s.methodName, s.sealedPayload] } },
        { name: 'args', summary: 'The arguments (not with a sealed call).', schema: { type: 'array', items: s.anyJson }, required: false },
        { name: 'auth', summary: "The caller's signature over the call (optional; inside the sealed call for a confidential contract).", schema: s.callAuth, required: false },
      ],
      result: { name: 'callResult', schema: { anyOf: [s.callResultView, s.sealedCallResultView] } },
      errors: [
        'TX_UNKNOWN_CONTRACT',
        'TX_UNKNOWN_METHOD',
        'TX_NOT_ENCRYPTED',
        'DECRYPT_FAILED',
        'SECRET_UNAVAILABLE',
        'ENCODING_INVALID',
        'CALL_FAILED',
        'CALL_UNAUTHORIZED',
        'ENCLAVE_BUSY',
        'ENCLAVE_UNAVAILABLE',
        'SERVER_BUSY',
      ],
      // Calls run on the enclave's own call thread (never ahead of block execution), one at a time there:
      // a bounded number go to the enclave, the rest wait here.
      concurrency: { maxInFlight: 32, maxWaiting: 512 },
      handler: (contract: string, method: string | SealedPayload, args?: JsonValue[], auth?: CallAuth) => {
        if (typeof method === 'object') {
          if (args !== undefined || auth !== undefined) throw new ChainError('INVALID_ARGS', 'a sealed call carries its arguments and auth inside the ciphertext');
          return api.sealedCall(contract, method);
        }
        if (args === undefined) throw new ChainError('INVALID_ARGS', 'args is required (an array, [] for none)');
        return auth === undefined ? api.call(contract, method, args) : api.call(contract, method, args, auth);
      },
    }),
    defineMethod({
      name: 'tee_getEncryptionKey',
      summary: "The network encryption key that confidential transactions and calls are sealed to, with this node's enclave's fresh evidence binding it.",
      description:
        "The evidence's report_data binds the enclave's keys plus `network` = publicKey, this node, this chain and the caller's nonce (attestation's reportDataFor). A client verifies it against the genesis (pinned roots, policy, the validator's vote key) before it seals anything: the typed client and `cloister tx send` do.",
      params: [
        { ...nonceParam("without it, the node picks one"), required: false },
      ],
      result: { name: 'encryptionKey', schema: s.encryptionKeyView },
      errors: ['SECRET_UNAVAILABLE', 'ENCLAVE_UNAVAILABLE', 'ENCLAVE_BUSY', 'SERVER_BUSY'],
      concurrency: { maxInFlight: 4, maxWaiting: 64 },
      handler: (nonce?: string) => api.getEncryptionKey(nonce),
    }),
    defineMethod({
      name: 'tee_getEvidence',
      summary: "This node's enclave attestation evidence: made at start, or fresh for the caller's nonce (its report_data binds the keys, node, chain and nonce).",
      params: [
        { ...nonceParam('without it, the evidence made at start'), required: false },
      ],
      result: { name: 'evidence', schema: s.evidenceView },
      errors: ['ENCLAVE_UNAVAILABLE', 'SERVER_BUSY'],
      // Fresh evidence costs the enclave a report (on hardware, a request to the security processor).
      concurrency: { maxInFlight: 4, maxWaiting: 64 },
      handler: (nonce?: string) => (nonce === undefined ? api.getEvidence() : api.getEvidence(nonce)),
    }),
    defineMethod({
      name: 'chain_getGenesis',
      summary: 'The genesis this node runs. A client trusts it only after checking its hash (node_status shows it; `cloister genesis` members share it) against one it knows.',
      params: [],
      result: { name: 'genesis', schema: { type: 'object', description: 'The genesis document (see the README).' } },
      handler: () => api.getGenesis(),
    }),
    defineMethod({
      name: 'tee_getAttestationToken',
      summary: "The enclave's attestation token: a JWT (EdDSA) restating fresh evidence bound to the caller's nonce, signed by the enclave's token key.",
      description:
        'For relying parties outside the chain that take JWTs (a key vault releasing a data key after attestation, as Azure Attestation tokens are used): verify `evidence` against your roots and policy, then the token with attestation\'s verifyAttestationToken (or any JWT library, with the key `evidence.publicKeys.token`, after checking the evidence binds it). Claims: attestation/README.md.',
      params: [
        nonceParam(),
        { name: 'audience', summary: 'The `aud` claim: who the token is for (optional).', schema: { type: 'string', minLength: 1, maxLength: 256 }, required: false },
      ],
      result: { name: 'attestationToken', schema: s.object({ token: { type: 'string' }, evidence: s.evidenceView }) },
      errors: ['ENCLAVE_UNAVAILABLE', 'ENCLAVE_BUSY', 'SERVER_BUSY'],
      concurrency: { maxInFlight: 4, maxWaiting: 64 },
      handler: (nonce: string, audience?: string) => (audience === undefined ? api.getAttestationToken(nonce) : api.getAttestationToken(nonce, audience)),
    }),
    defineMethod({
      name: 'contract_list',
      summary: 'The deployed contracts.',
      params: [],
      result: { name: 'contracts', schema: { type: 'array', items: s.contractView } },
      handler: () => api.listContracts(),
    }),
    defineMethod({
      name: 'node_status',
      summary: "This node's chain, head and enclave status.",
      params: [],
      result: { name: 'status', schema: s.statusView },
      handler: () => api.status(),
    }),
  ];
}
