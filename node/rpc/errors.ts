import type { ChainErrorCode } from '../../consensus/index.js';

/**
 * The one table of JSON-RPC error codes Cloister returns: the five standard
 * codes, the server's own limits, and one application code per ChainErrorCode
 * (-32000..-32099). The OpenRPC document and the README are generated from /
 * checked against this table; the client reads `RpcErrorCodes`.
 *
 * This module has no runtime imports so that the client can use it.
 */
export interface ErrorCodeEntry {
  readonly code: number;
  /** The JSON-RPC `message` sent with the code. */
  readonly message: string;
  readonly description: string;
  /** HTTP status of the response that carries this error alone; 200 when absent. */
  readonly httpStatus?: number;
}

const STANDARD = {
  PARSE_ERROR: { code: -32700, message: 'Parse error', description: 'The body is not valid UTF-8 JSON.' },
  INVALID_REQUEST: {
    code: -32600,
    message: 'Invalid Request',
    description: 'Not a JSON-RPC 2.0 request object, an empty batch, nesting too deep, or a wrong Content-Type (HTTP 415).',
  },
  METHOD_NOT_FOUND: { code: -32601, message: 'Method not found', description: 'No such method.' },
  INVALID_PARAMS: {
    code: -32602,
    message: 'Invalid params',
    description: 'Params fail the method schema; data: { param?, path?, reason }.',
  },
  INTERNAL_ERROR: {
    code: -32603,
    message: 'Internal error',
    description: 'An unexpected server failure; details are logged on the node, never returned.',
  },
} as const satisfies Record<string, ErrorCodeEntry>;

const SERVER = {
  SERVER_ERROR: {
    code: -32000,
    message: 'Server error',
    description: 'An application error without a specific code; data.code names it when known.',
  },
  REQUEST_TOO_LARGE: {
    code: -32001,
    message: 'Request body too large',
    description: 'The HTTP body exceeds the server limit (HTTP 413); data: { limit }.',
    httpStatus: 413,
  },
  BATCH_TOO_LARGE: {
    code: -32002,
    message: 'Batch too large',
    description: 'The batch has more entries than the server allows; data: { limit, size }.',
  },
  REQUEST_TIMEOUT: {
    code: -32003,
    message: 'Request timeout',
    description: 'The body did not arrive in time (HTTP 408).',
    httpStatus: 408,
  },
  TOO_MANY_REQUESTS: {
    code: -32004,
    message: 'Too many requests',
    description: 'This client already has the most requests in flight the server allows (HTTP 429); data: { limit }.',
    httpStatus: 429,
  },
  SERVER_BUSY: {
    code: -32005,
    message: 'Server busy',
    description: 'The node has as much work in flight as it allows; retry later (HTTP 503 when the whole request is refused); data: { reason }.',
    httpStatus: 503,
  },
  RESPONSE_TOO_LARGE: {
    code: -32006,
    message: 'Response too large',
    description: 'This response would exceed the per-response byte limit; data: { limit, size }.',
  },
  BATCH_BUDGET_EXCEEDED: {
    code: -32007,
    message: 'Batch budget exceeded',
    description: "This entry's response would exceed what the batch may send in all; data: { limit }. Ask for it in another request.",
  },
  WEBSOCKET_REQUIRED: {
    code: -32008,
    message: 'WebSocket required',
    description: 'Subscriptions live on a WebSocket connection: open one on the same URL (ws://host:port/) and call chain_subscribe there.',
  },
  TOO_MANY_SUBSCRIPTIONS: {
    code: -32009,
    message: 'Too many subscriptions',
    description: 'This WebSocket already holds the most subscriptions the server allows; data: { limit }. Unsubscribe from some first.',
  },
} as const satisfies Record<string, ErrorCodeEntry>;

/** One entry per ChainErrorCode; `satisfies` makes a missing code a compile error. */
const CHAIN = {
  ENCODING_INVALID: { code: -32010, message: 'Encoding invalid', description: 'A value cannot be canonically encoded.' },
  INVALID_ARGS: {
    code: -32011,
    message: 'Invalid arguments',
    description:
      'A number in the params that the API cannot carry exactly: not a safe integer, or written so that the node would read another value (1e309, 9007199254740993, -0); data: { param, path, reason }.',
  },
  TX_MALFORMED: { code: -32020, message: 'Transaction malformed', description: 'The transaction has a wrong shape.' },
  TX_TOO_LARGE: { code: -32021, message: 'Transaction too large', description: 'The canonical transaction exceeds the size limit.' },
  TX_BAD_SIGNATURE: { code: -32022, message: 'Bad signature', description: 'The signature does not verify against `from`.' },
  TX_WRONG_CHAIN: { code: -32023, message: 'Wrong chain', description: 'The transaction is for another chain id.' },
  TX_NONCE_TOO_LOW: { code: -32024, message: 'Nonce too low', description: 'The nonce was already used by the sender.' },
  TX_NONCE_GAP: { code: -32025, message: 'Nonce gap', description: 'The nonce skips ahead of the sender\'s next nonce.' },
  TX_DUPLICATE: { code: -32026, message: 'Duplicate transaction', description: 'The transaction is already known.' },
  TX_GAS_LIMIT: { code: -32027, message: 'Gas limit out of range', description: 'gasLimit exceeds the chain maximum.' },
  TX_UNKNOWN_CONTRACT: { code: -32028, message: 'Unknown contract', description: 'No contract of that name is deployed.' },
  TX_UNKNOWN_METHOD: { code: -32029, message: 'Unknown contract method', description: 'The contract has no such method.' },
  TX_READONLY_METHOD: {
    code: -32030,
    message: 'Read-only method',
    description: 'The method is read-only: use chain_call, not a transaction.',
  },
  MEMPOOL_FULL: { code: -32040, message: 'Mempool full', description: 'The node cannot accept more transactions now; retry later.' },
  ENCLAVE_UNAVAILABLE: { code: -32041, message: 'Enclave unavailable', description: 'The enclave cannot serve the request now.' },
  ECALL_INVALID: { code: -32043, message: 'Enclave request invalid', description: 'The enclave refused a request from its host that does not parse or is not allowed now.' },
  ENCLAVE_BUSY: {
    code: -32045,
    message: 'Enclave busy',
    description: 'Too many requests of this kind are waiting for the enclave (e.g. read-only calls); retry later.',
  },
  STATE_INVALID: {
    code: -32044,
    message: 'State invalid',
    description: "The state the host loaded does not match the last certified block's state root; the enclave refuses it.",
  },
  SEAL_INVALID: { code: -32042, message: 'Sealed identity invalid', description: "The enclave's sealed identity does not open (another program or platform sealed it)." },
  BLOCK_INVALID: { code: -32050, message: 'Block invalid', description: 'A block fails validation.' },
  CERTIFICATE_INVALID: { code: -32051, message: 'Certificate invalid', description: 'A commit certificate fails validation.' },
  VOTE_CONFLICT: { code: -32052, message: 'Vote conflict', description: 'The enclave already signed another vote or proposal for this height, round and type.' },
  VOTE_UNJUSTIFIED: {
    code: -32054,
    message: 'Vote unjustified',
    description: 'The enclave signs a precommit only with 2f+1 prevotes for the block, and a prevote against its lock only with a later proof of lock.',
  },
  DOUBLE_SIGN_RISK: {
    code: -32055,
    message: 'Double-sign risk',
    description: "This node's vote key signed something newer than its sealed record (another copy of the node is running): it does not sign.",
  },
  TX_REF_UNKNOWN: {
    code: -32056,
    message: 'Transaction not held by the enclave',
    description: 'A block named a transaction by hash that the enclave does not hold; between host and enclave only (the host then sends it in full).',
  },
  BLOCK_NOT_VALIDATED: { code: -32053, message: 'Block not validated', description: 'The enclave signs votes only for blocks it executed and validated itself.' },
  CALL_FAILED: { code: -32060, message: 'Call failed', description: 'The read-only contract call failed.' },
  CALL_UNAUTHORIZED: {
    code: -32062,
    message: 'Call not authorised',
    description: "The call's auth (the caller's signature over the call, with an expiry) does not verify, or has expired.",
  },
  NOT_FOUND: { code: -32061, message: 'Not found', description: 'The requested object does not exist.' },
  HPKE_INVALID: { code: -32070, message: 'Encryption key invalid', description: 'An HPKE public key or encapsulated key is malformed or of small order.' },
  DECRYPT_FAILED: {
    code: -32071,
    message: 'Decryption failed',
    description: 'A ciphertext does not open: another key, tampered, or bound to other data (chain, sender, nonce, contract).',
  },
  TX_NOT_ENCRYPTED: {
    code: -32072,
    message: 'Not encrypted',
    description: 'The contract is confidential: its transactions and calls must be sealed to the network encryption key (tee_getEncryptionKey).',
  },
  SECRET_UNAVAILABLE: {
    code: -32073,
    message: 'Consortium secret unavailable',
    description: "This node's enclave does not hold the consortium secret yet (it receives it from a peer after attestation); retry, or use another node.",
  },
  KEY_UNVERIFIED: {
    code: -32074,
    message: 'Encryption key not verified',
    description: "The network encryption key's evidence does not verify against the genesis: nothing was encrypted or sent.",
  },
  GOV_NOT_MEMBER: { code: -32080, message: 'Not a member', description: 'Only a member of the consortium proposes, votes or withdraws (gov_members lists them).' },
  GOV_ACTION_INVALID: {
    code: -32081,
    message: 'Governance action invalid',
    description: 'A proposed action is unknown, malformed, or cannot apply to the chain as it is (a bundle that does not load, a name in use, a member that does not exist, …); the message says which.',
  },
  GOV_PROPOSAL_NOT_FOUND: { code: -32082, message: 'Proposal not found', description: 'No proposal has this id.' },
  GOV_PROPOSAL_CLOSED: {
    code: -32083,
    message: 'Proposal closed',
    description: 'The proposal is no longer open (accepted, rejected, withdrawn, expired or failed): it takes no more votes.',
  },
  GOV_ALREADY_VOTED: { code: -32084, message: 'Already voted', description: 'This member already voted on the proposal; a vote is final.' },
  GOV_NOT_PROPOSER: { code: -32085, message: 'Not the proposer', description: 'Only the member who made a proposal withdraws it.' },
  GOV_HANDOVER_INVALID: {
    code: -32086,
    message: 'Handover invalid',
    description: "A validator's handover to its successor enclave is refused: not signed by the validator's current vote key, or the successor's evidence does not bind it to the node and the handover, or the policy in force does not allow its program.",
  },
  STATE_PROOF_UNAVAILABLE: {
    code: -32090,
    message: 'State proof unavailable',
    description: 'The node proves the state of its last 16 committed heights only (data.oldest, data.head); ask for a recent height, or for the head.',
  },
  STATE_PROOF_CONFIDENTIAL: {
    code: -32091,
    message: 'State proof of a confidential contract',
    description: "A confidential contract's state is stored encrypted under keys only enclaves hold: there is no public value to prove.",
  },
} as const satisfies Record<ChainErrorCode, ErrorCodeEntry>;

/** Every error Cloister's JSON-RPC interface returns, by name. -32063..-32069, -32075..-32079 and -32087..-32089 and -32092..-32099 are free for later families. */
export const RPC_ERRORS = { ...STANDARD, ...SERVER, ...CHAIN } as const;

export type RpcErrorName = keyof typeof RPC_ERRORS;

/** Error numbers by name, e.g. `RpcErrorCodes.TX_NONCE_GAP === -32025`. */
export const RpcErrorCodes: { readonly [K in RpcErrorName]: (typeof RPC_ERRORS)[K]['code'] } = Object.freeze(
  Object.fromEntries(Object.entries(RPC_ERRORS).map(([name, entry]) => [name, entry.code])),
) as { readonly [K in RpcErrorName]: (typeof RPC_ERRORS)[K]['code'] };

/** The JSON-RPC error object. */
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/**
 * Thrown by server code and method handlers to answer with a specific JSON-RPC
 * error. Anything else thrown (except a ChainError) becomes -32603.
 */
export class RpcFault extends Error {
  override readonly name = 'RpcFault';
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }

  static of(name: RpcErrorName, data?: unknown, message?: string): RpcFault {
    const entry: ErrorCodeEntry = RPC_ERRORS[name];
    return new RpcFault(entry.code, message ?? entry.message, data);
  }

  toJSON(): JsonRpcErrorObject {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}

/** The HTTP status of a response that carries this error code alone (200 unless the table says otherwise). */
export function httpStatusOf(rpcCode: number): number {
  for (const entry of Object.values(RPC_ERRORS) as ErrorCodeEntry[]) if (entry.code === rpcCode) return entry.httpStatus ?? 200;
  return 200;
}

/** Structural view of consensus ChainError, so this module needs no runtime import. */
export interface ChainErrorLike {
  code: string;
  message: string;
  details?: Record<string, unknown> | undefined;
}

function isChainCode(code: string): code is ChainErrorCode {
  return Object.prototype.hasOwnProperty.call(CHAIN, code);
}

/**
 * Maps a ChainError to its JSON-RPC error: its own application code, the
 * ChainError's message (written for the sender), data `{ code, ...details }`.
 */
export function chainErrorObject(err: ChainErrorLike): JsonRpcErrorObject {
  const code = isChainCode(err.code) ? CHAIN[err.code].code : SERVER.SERVER_ERROR.code;
  const details = err.details !== null && typeof err.details === 'object' ? err.details : {};
  return { code, message: err.message, data: { ...details, code: err.code } };
}

/** The ChainErrorCode behind an application error number, if any. */
export function chainCodeOf(rpcCode: number): ChainErrorCode | undefined {
  for (const [name, entry] of Object.entries(CHAIN)) if (entry.code === rpcCode) return name as ChainErrorCode;
  return undefined;
}
