import { CONTRACT_NAME_RE, METHOD_NAME_RE } from '../../consensus/index.js';

/** A JSON Schema (draft-07, the dialect of OpenRPC 1.2.6 and ajv's default). */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** Reusable schemas for params and results. Params are validated with them; results only document. */

export const hash32: JsonSchema = {
  title: 'Hash',
  description: '32 bytes, lowercase hex (64 characters).',
  type: 'string',
  pattern: '^[0-9a-f]{64}$',
};

export const address: JsonSchema = {
  title: 'Address',
  description: 'An ed25519 public key: 32 bytes, lowercase hex (64 characters).',
  type: 'string',
  pattern: '^[0-9a-f]{64}$',
};

/** A read-only call's authorisation: the caller's signature over the call (see consensus/chain/call-auth.ts). */
export const callAuth: JsonSchema = {
  title: 'CallAuth',
  description:
    'The caller\'s ed25519 signature over "cloister/call/v1\\n" + canonical JSON of {chainId, caller, contract, method, args, expiresAt}; expiresAt (ms since the epoch) at most 5 minutes after the last block\'s time.',
  type: 'object',
  additionalProperties: false,
  required: ['caller', 'expiresAt', 'signature'],
  properties: {
    caller: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    expiresAt: { type: 'integer', minimum: 0 },
    signature: { type: 'string', pattern: '^[0-9a-f]{128}$' },
  },
};

export const signature64: JsonSchema = {
  title: 'Signature',
  description: 'An ed25519 signature: 64 bytes, lowercase hex (128 characters).',
  type: 'string',
  pattern: '^[0-9a-f]{128}$',
};

export const uint: JsonSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };

export const anyJson: JsonSchema = { description: 'Any JSON value (integers only as numbers).' };

export const contractName: JsonSchema = { type: 'string', pattern: CONTRACT_NAME_RE.source };
export const methodName: JsonSchema = { type: 'string', pattern: METHOD_NAME_RE.source };

export function nullable(schema: JsonSchema): JsonSchema {
  return { anyOf: [schema, { type: 'null' }] };
}

export function object(properties: Record<string, JsonSchema>, optional: readonly string[] = []): JsonSchema {
  return {
    type: 'object',
    properties,
    required: Object.keys(properties).filter((key) => !optional.includes(key)),
  };
}

export const sealedPayload: JsonSchema = {
  title: 'SealedPayload',
  description:
    'HPKE (RFC 9180) ciphertext to the network encryption key of a consortium-secret generation (tee_getEncryptionKey): X25519, HKDF-SHA256, AES-256-GCM. See consensus/chain/confidential.ts for the info, AAD and plaintext.',
  type: 'object',
  additionalProperties: false,
  required: ['generation', 'enc', 'ct'],
  properties: {
    generation: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    enc: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    seq: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'the message number in its sealing session; absent for the first' },
    ct: { type: 'string', description: 'base64', pattern: '^[A-Za-z0-9+/]*={0,2}$' },
  },
};

const txEnvelope = {
  chainId: { type: 'string', minLength: 1, maxLength: 64 },
  from: address,
  nonce: uint,
  contract: contractName,
  gasLimit: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  signature: signature64,
};

const plainTx: JsonSchema = {
  title: 'PlainTx',
  type: 'object',
  properties: { ...txEnvelope, method: methodName, args: { type: 'array', items: anyJson } },
  required: ['chainId', 'from', 'nonce', 'contract', 'method', 'args', 'gasLimit', 'signature'],
  additionalProperties: false,
};

const sealedTx: JsonSchema = {
  title: 'SealedTx',
  description: 'A transaction to a confidential contract: method and args sealed (bound to chainId, from, nonce and contract).',
  type: 'object',
  properties: { ...txEnvelope, sealed: sealedPayload },
  required: ['chainId', 'from', 'nonce', 'contract', 'sealed', 'gasLimit', 'signature'],
  additionalProperties: false,
};

export const signedTx: JsonSchema = {
  title: 'SignedTx',
  description: 'A signed transaction: to a public contract with method and args in the clear, or to a confidential one sealed.',
  oneOf: [plainTx, sealedTx],
};

export const transactionView: JsonSchema = {
  title: 'TransactionView',
  description: 'A SignedTx (plain or sealed) with its hash and position.',
  type: 'object',
  properties: {
    ...txEnvelope,
    method: methodName,
    args: { type: 'array', items: anyJson },
    sealed: sealedPayload,
    hash: hash32,
    blockHeight: nullable(uint),
    blockHash: nullable(hash32),
    index: nullable(uint),
  },
  required: ['chainId', 'from', 'nonce', 'contract', 'gasLimit', 'signature', 'hash', 'blockHeight', 'blockHash', 'index'],
};

export const blockHeader: JsonSchema = {
  title: 'BlockHeader',
  ...object({
    chainId: { type: 'string' },
    height: uint,
    parentHash: hash32,
    time: uint,
    proposer: address,
    txRoot: hash32,
    receiptsRoot: hash32,
    stateRoot: hash32,
    validatorSetHash: hash32,
    policyHash: hash32,
  }),
};

export const commitCertificate: JsonSchema = {
  title: 'CommitCertificate',
  ...object({
    height: uint,
    round: uint,
    blockHash: hash32,
    signatures: { type: 'array', items: object({ validator: address, signature: signature64 }) },
  }),
};

export const blockView: JsonSchema = {
  title: 'BlockView',
  ...object({
    hash: hash32,
    height: uint,
    parentHash: hash32,
    time: uint,
    proposer: address,
    txRoot: hash32,
    receiptsRoot: hash32,
    stateRoot: hash32,
    validatorSetHash: hash32,
    policyHash: hash32,
    chainId: { type: 'string' },
    transactions: {
      description: 'Transaction hashes, or whole transactions when fullTransactions is true.',
      anyOf: [
        { type: 'array', items: hash32 },
        { type: 'array', items: transactionView },
      ],
    },
    certificate: nullable(commitCertificate),
    header: blockHeader,
  }),
};

export const contractEvent: JsonSchema = {
  title: 'ContractEvent',
  ...object({ contract: { type: 'string' }, name: { type: 'string' }, data: anyJson }),
};

export const receiptView: JsonSchema = {
  title: 'ReceiptView',
  ...object(
    {
      txHash: hash32,
      status: { type: 'string', enum: ['success', 'failed'] },
      blockHeight: uint,
      blockHash: hash32,
      index: uint,
      gasUsed: uint,
      result: anyJson,
      events: { type: 'array', items: contractEvent },
      error: object({ code: { type: 'string' }, message: { type: 'string' } }),
      sealed: { type: 'string', description: "A sealed transaction's {result, events, error}, sealed to its sender (base64); result is then null and events empty." },
    },
    ['error', 'sealed'],
  ),
};

export const sealedCallResultView: JsonSchema = {
  title: 'SealedCallResultView',
  ...object({
    sealed: { type: 'string', description: "{result} or {error: {code, message}}, sealed to the caller's result key (base64)." },
    gasUsed: uint,
  }),
};

export const callResultView: JsonSchema = {
  title: 'CallResultView',
  ...object({ result: anyJson, gasUsed: uint }),
};

export const evidenceView: JsonSchema = {
  title: 'EvidenceView',
  ...object(
    {
      platform: { type: 'string' },
      measurement: { type: 'string' },
      publicKeys: {
        description: "The enclave's public keys that the evidence's report_data binds, by purpose.",
        type: 'object',
        additionalProperties: { type: 'string' },
      },
      nodeId: { type: 'string', description: 'The node the report_data binds.' },
      chainId: { type: 'string', description: 'The chain the report_data binds.' },
      freshness: { type: 'string', description: "The freshness value the report_data binds: the caller's nonce, or the node's own at start." },
      reportData: { type: 'string' },
      evidence: { type: 'string', description: 'The raw evidence, base64.' },
      virtualRoot: { type: 'string', description: 'The declared virtual vendor root (virtual platform only), PEM.' },
    },
    ['virtualRoot'],
  ),
};

export const encryptionKeyView: JsonSchema = {
  title: 'EncryptionKeyView',
  ...object({
    generation: { type: 'integer', minimum: 1 },
    publicKey: { type: 'string', description: 'The network encryption key (X25519), lowercase hex.' },
    evidence: { ...evidenceView, description: "This node's enclave's evidence; its report_data binds publicKeys.network = publicKey." },
  }),
};

export const contractView: JsonSchema = {
  title: 'ContractView',
  ...object({ name: { type: 'string' }, measurement: { type: 'string' }, manifest: anyJson }),
};

export const statusView: JsonSchema = {
  title: 'StatusView',
  ...object({
    chainId: { type: 'string' },
    nodeId: { type: 'string' },
    height: uint,
    headHash: hash32,
    headTime: uint,
    platform: { type: 'string' },
    measurement: { type: 'string' },
    mempoolSize: uint,
    genesisHash: hash32,
    consensus: { type: 'object', properties: { height: uint, round: uint, step: { type: 'string' } } },
    validators: uint,
    connectedPeers: uint,
    admittedPeers: uint,
    syncing: { type: 'boolean' },
    secrets: {
      type: 'object',
      description: "Consortium-secret generations this node's enclave holds, and those it lacks (being received from a peer by attested release).",
      properties: { held: { type: 'array', items: uint }, missing: { type: 'array', items: uint } },
    },
  }, ['consensus', 'validators', 'connectedPeers', 'admittedPeers', 'syncing', 'secrets']),
};

export const nodeEntry: JsonSchema = {
  title: 'NodeEntry',
  type: 'object',
  required: ['id', 'self', 'admitted', 'connected', 'voteKey'],
  properties: {
    id: { type: 'string', description: "The node's network identity (libp2p peer id)." },
    self: { type: 'boolean', description: 'This node.' },
    admitted: { type: 'boolean', description: "Its enclave's evidence verified against the genesis policy: its votes and blocks count." },
    connected: { type: 'boolean' },
    voteKey: { type: 'string', description: "The enclave vote key the genesis lists for it." },
    platform: { type: 'string' },
    measurement: { type: 'string' },
    reason: {
      type: 'object',
      description: 'Why it is not admitted.',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    equivocations: {
      type: 'array',
      description: 'Slots where this validator key signed two different things (evidence kept by this node).',
      items: {
        type: 'object',
        required: ['kind', 'height', 'round'],
        properties: { kind: { type: 'string' }, height: uint, round: uint },
      },
    },
    doubleSignRisk: { type: 'string', description: 'This node only: why it refuses to sign (another copy of its vote key signed).' },
  },
};

export const governanceMembersView: JsonSchema = {
  title: 'GovernanceMembers',
  ...object({
    members: { type: 'array', items: object({ id: { type: 'string' }, publicKey: address }) },
    threshold: { type: 'integer', minimum: 1, description: 'Approvals a proposal needs.' },
    isMember: { type: 'boolean', description: 'Whether the caller is a member (false for an anonymous call).' },
  }),
};

export const proposalView: JsonSchema = {
  title: 'Proposal',
  ...object(
    {
      id: { type: 'integer', minimum: 1 },
      proposer: { type: 'string', description: "The proposer's member id." },
      proposerKey: address,
      actions: { type: 'array', items: { type: 'object', description: 'An action: {type, …} (see the README, Governance).' } },
      height: { ...uint, description: 'The height of the block the proposal was made in.' },
      expiresAt: { ...uint, description: 'The last height at which it takes votes.' },
      votes: { type: 'object', additionalProperties: { type: 'boolean' }, description: 'member id → approve (true) or reject (false).' },
      state: { type: 'string', enum: ['open', 'accepted', 'rejected', 'withdrawn', 'expired', 'failed'] },
      approvals: uint,
      rejections: uint,
      required: { type: 'integer', minimum: 1, description: 'Approvals it needs (the threshold of the members now).' },
      closedAt: { ...uint, description: 'The height at which it was decided or withdrawn.' },
      failure: { type: 'string', description: 'Why its actions did not apply (state failed).' },
    },
    ['closedAt', 'failure'],
  ),
};

export const chainView: JsonSchema = {
  title: 'ChainView',
  ...object({
    chainId: { type: 'string' },
    validators: { type: 'array', items: object({ nodeId: { type: 'string' }, voteKey: address }) },
    validatorKeys: { type: 'array', items: address },
    quorum: { type: 'integer', minimum: 1 },
    validatorSetHash: hash32,
    policy: { type: 'object', description: 'The attestation policy (attestation/README.md).' },
    policyHash: hash32,
    consensus: { type: 'object', additionalProperties: { type: 'integer' }, description: 'The consensus parameters (README, Configuration).' },
    members: { type: 'array', items: object({ id: { type: 'string' }, publicKey: address }) },
    threshold: { type: 'integer', minimum: 1 },
  }),
};

const merklePath: JsonSchema = object({ index: uint, size: uint, path: { type: 'array', items: hash32 } });
const certifiedHeader: JsonSchema = {
  type: 'object',
  description:
    'A header, its commit certificate, the governance changes of the validators or policy since the genesis ({header, certificate, proof: {height, validators, policy}}), and one attestation per signer ({validator, nodeId, publicKeys, freshness, evidence}).',
  properties: {
    header: blockHeader,
    certificate: commitCertificate,
    transitions: { type: 'array', items: { type: 'object' } },
    attestations: { type: 'array', items: { type: 'object' } },
  },
  required: ['header', 'certificate', 'transitions', 'attestations'],
};

export const receiptProof: JsonSchema = {
  type: 'object',
  description: 'A receipt proof (kind "cloister/receipt-proof/v1"): tx, txPath, receipt (exactly as hashed), receiptPath, block.',
  properties: { kind: { type: 'string' }, tx: signedTx, txPath: merklePath, receipt: { type: 'object' }, receiptPath: merklePath, block: certifiedHeader },
  required: ['kind', 'tx', 'txPath', 'receipt', 'receiptPath', 'block'],
};

export const stateValueProof: JsonSchema = {
  type: 'object',
  description: 'A state proof (kind "cloister/state-proof/v1"): contract, key, value (null: absent), proof (the sparse Merkle path), block.',
  properties: { kind: { type: 'string' }, contract: contractName, key: { type: 'string' }, value: anyJson, proof: { type: 'object' }, block: certifiedHeader },
  required: ['kind', 'contract', 'key', 'value', 'proof', 'block'],
};
