import {
  ZERO_HASH,
  checkTxStateless,
  genesisHash,
  headerHash,
  isSealedTx,
  parseBlockHeader,
  parseCommitCertificate,
  receiptsRootOf,
  sha256Hex,
  txRootOf,
  type BlockHeader,
  type Genesis,
  type JsonValue,
} from '../../consensus/index.js';
import { ATTEST_METHOD, CONSORTIUM_CONTRACT, checkLedgerAttestation, genesisChainView, type ChainView } from '../../contracts/index.js';
import { NO_TX_LIMITS, ProofError, checkAgainstView, viewAfter } from '../proofs/index.js';
import type { LedgerBlock } from './types.js';

/** What is wrong with a ledger, and at which height: the first bad block. */
export class LedgerError extends Error {
  override readonly name = 'LedgerError';
  constructor(
    readonly height: number,
    readonly code:
      | 'LEDGER_MALFORMED'
      | 'HASH_CHAIN'
      | 'TX_INVALID'
      | 'TX_ROOT'
      | 'RECEIPTS'
      | 'RECEIPTS_ROOT'
      | 'CERTIFICATE'
      | 'VALIDATOR_SET'
      | 'POLICY'
      | 'VIEW_TRANSITION'
      | 'GENESIS'
      | 'ATTESTATION'
      | 'REEXECUTION',
    message: string,
  ) {
    super(`height ${height}: ${message}`);
  }
}

export interface LedgerSummary {
  chainId: string;
  genesisHash: string;
  blocks: number;
  head: number;
  headHash: string;
  transactions: number;
  /** Heights whose block changed the validators or the policy (in force from the next height). */
  viewChanges: number[];
  validators: number;
  /** Validators' `attest` transactions, each of whose evidence verified again here. */
  attestations: number;
  /** Certificate signatures by a validator the ledger held no evidence of yet (before its first turn as proposer). */
  signaturesBeforeAttestation: number;
  /** Each validator's last evidence on the ledger: its height, platform and measurement. */
  attested: { voteKey: string; height: number; platform: string; measurement: string }[];
}

export interface LedgerVerifierOptions {
  /** Refuse a certificate signed by a validator of which the ledger holds no evidence yet. */
  requireAttested?: boolean;
}

/**
 * Checks a whole ledger, one block at a time in height order, against the
 * genesis: the genesis block's commitments; then for each block the hash
 * chain, every transaction's signature and the txRoot, the receipts and the
 * receiptsRoot, and the certificate against the validators of its height,
 * following governance's changes of the validators and policy (each proved
 * under the state root of the block that made it); and every validator's
 * evidence the ledger records (`attest`), verified again as the enclaves did,
 * counting the signatures made before a validator's first. Pure: no I/O, no clock.
 */
export class LedgerVerifier {
  #view: ChainView;
  #previous: { header: BlockHeader; hash: string } | null = null;
  #transactions = 0;
  readonly #viewChanges: number[] = [];
  readonly #attested = new Map<string, { height: number; platform: string; measurement: string }>();
  #attestations = 0;
  #signaturesBeforeAttestation = 0;

  constructor(
    private readonly genesis: Genesis,
    private readonly options: LedgerVerifierOptions = {},
  ) {
    this.#view = genesisChainView(genesis);
  }

  add(block: LedgerBlock): void {
    let header: BlockHeader;
    const expected = this.#previous === null ? 0 : this.#previous.header.height + 1;
    try {
      header = parseBlockHeader(block.header);
    } catch (err) {
      throw new LedgerError(expected, 'LEDGER_MALFORMED', (err as Error).message);
    }
    const height = header.height;
    const fail = (code: LedgerError['code'], message: string): never => {
      throw new LedgerError(height, code, message);
    };
    if (height !== expected) fail('HASH_CHAIN', `expected block ${expected} next, found ${height} (a block is missing or out of order)`);
    if (header.chainId !== this.genesis.chainId) fail('GENESIS', `the block is of chain "${header.chainId}", the genesis of "${this.genesis.chainId}"`);
    const hash = headerHash(header);
    if (this.#previous === null) {
      this.#checkGenesisBlock(header, block, fail);
    } else {
      const parent = this.#previous;
      if (header.parentHash !== parent.hash) fail('HASH_CHAIN', `parentHash ${header.parentHash} is not the hash of block ${parent.header.height} (${parent.hash})`);
      if (header.time < parent.header.time) fail('HASH_CHAIN', `time ${header.time} is before its parent's (${parent.header.time})`);
      this.#checkBody(header, block, fail);
      this.#checkCertificate(header, hash, block, fail);
    }
    if (block.transition !== undefined) {
      if (block.transition.height !== height) fail('VIEW_TRANSITION', `the governance change record is for height ${block.transition.height}`);
      try {
        this.#view = viewAfter(this.genesis, header, block.transition);
      } catch (err) {
        fail('VIEW_TRANSITION', err instanceof ProofError ? err.message : String(err));
      }
      this.#viewChanges.push(height);
    }
    this.#previous = { header, hash };
  }

  summary(): LedgerSummary {
    const head = this.#previous;
    return {
      chainId: this.genesis.chainId,
      genesisHash: genesisHash(this.genesis),
      blocks: head === null ? 0 : head.header.height + 1,
      head: head?.header.height ?? -1,
      headHash: head?.hash ?? ZERO_HASH,
      transactions: this.#transactions,
      viewChanges: [...this.#viewChanges],
      validators: this.#view.validators.length,
      attestations: this.#attestations,
      signaturesBeforeAttestation: this.#signaturesBeforeAttestation,
      attested: [...this.#attested].map(([voteKey, a]) => ({ voteKey, ...a })),
    };
  }

  /** The genesis block: what it must commit to without re-executing the contracts' init (the state root needs --reexecute). */
  #checkGenesisBlock(header: BlockHeader, block: LedgerBlock, fail: (code: LedgerError['code'], m: string) => never): void {
    const view = this.#view;
    if (header.parentHash !== ZERO_HASH || header.proposer !== ZERO_HASH) fail('GENESIS', 'the genesis block has a parent or a proposer');
    if (header.time !== this.genesis.time) fail('GENESIS', `the genesis block's time ${header.time} is not the genesis time ${this.genesis.time}`);
    if (header.validatorSetHash !== view.validatorSetHash || header.policyHash !== view.policyHash) fail('GENESIS', "the genesis block does not commit to the genesis's validators and policy");
    if (block.txs.length > 0 || header.txRoot !== txRootOf([])) fail('GENESIS', 'the genesis block has transactions');
    const inits = this.genesis.contracts.map((c) => sha256Hex(`genesis-init:${c.name}`));
    if (block.receipts.length !== inits.length || block.receipts.some((r, i) => r.txHash !== inits[i])) fail('RECEIPTS', "the genesis block's receipts are not its contracts' init, in order");
    if (receiptsRootOf(block.receipts) !== header.receiptsRoot) fail('RECEIPTS_ROOT', "the genesis contracts' init receipts do not hash to the receiptsRoot");
  }

  #checkBody(header: BlockHeader, block: LedgerBlock, fail: (code: LedgerError['code'], m: string) => never): void {
    if (!Array.isArray(block.txs) || !Array.isArray(block.receipts)) fail('LEDGER_MALFORMED', 'txs and receipts must be arrays');
    const hashes = block.txs.map((tx, i) => {
      try {
        return checkTxStateless(tx, this.genesis.chainId, NO_TX_LIMITS).hash;
      } catch (err) {
        return fail('TX_INVALID', `transaction ${i}: ${(err as Error).message}`);
      }
    });
    if (txRootOf(hashes) !== header.txRoot) fail('TX_ROOT', `the ${hashes.length} transactions do not hash to the header's txRoot (one was altered, added or removed)`);
    if (block.receipts.length !== hashes.length) fail('RECEIPTS', `${block.receipts.length} receipts for ${hashes.length} transactions`);
    block.receipts.forEach((r, i) => {
      if (r.txHash !== hashes[i] || r.index !== i) fail('RECEIPTS', `receipt ${i} is for ${String(r.txHash)} at ${String(r.index)}, not transaction ${hashes[i]}`);
    });
    let root: string;
    try {
      root = receiptsRootOf(block.receipts);
    } catch (err) {
      return fail('LEDGER_MALFORMED', `the receipts cannot be encoded: ${(err as Error).message}`);
    }
    if (root !== header.receiptsRoot) fail('RECEIPTS_ROOT', "the receipts do not hash to the header's receiptsRoot (a status, gas, result, event or error was altered)");
    this.#transactions += hashes.length;
    block.txs.forEach((tx, i) => {
      if (tx.contract !== CONSORTIUM_CONTRACT || isSealedTx(tx) || tx.method !== ATTEST_METHOD || block.receipts[i]!.status !== 'success') return;
      // Every validator's enclave accepted this evidence before the block was certified: it must verify here too.
      const context = { genesis: this.genesis, height: header.height, time: header.time, parentHash: header.parentHash, validators: this.#view.validators, policy: this.#view.policy as unknown as JsonValue };
      const checked = checkLedgerAttestation(tx.args[0], tx.from, context);
      if (!checked.ok) fail('ATTESTATION', `transaction ${i} records evidence of ${tx.from} that does not verify: ${checked.message}`);
      this.#attested.set(tx.from, { height: header.height, platform: checked.platform, measurement: checked.measurement });
      this.#attestations++;
    });
  }

  #checkCertificate(header: BlockHeader, hash: string, block: LedgerBlock, fail: (code: LedgerError['code'], m: string) => never): void {
    let certificate;
    try {
      certificate = parseCommitCertificate(block.certificate);
    } catch (err) {
      return fail('CERTIFICATE', (err as Error).message);
    }
    if (certificate.blockHash !== hash || certificate.height !== header.height) fail('CERTIFICATE', `the certificate is for block ${certificate.blockHash} at ${certificate.height}, not this one (${hash})`);
    const before = certificate.signatures.filter((sig) => !this.#attested.has(sig.validator));
    if (before.length > 0 && this.options.requireAttested) {
      fail('ATTESTATION', `the certificate is signed by ${before.map((sig) => sig.validator).join(', ')}, of which the ledger holds no evidence yet`);
    }
    this.#signaturesBeforeAttestation += before.length;
    try {
      checkAgainstView(header, certificate, this.#view, `block ${header.height}`);
    } catch (err) {
      if (!(err instanceof ProofError)) throw err;
      const code = err.code === 'VALIDATOR_SET' || err.code === 'POLICY' ? err.code : 'CERTIFICATE';
      fail(code, err.message);
    }
  }
}
