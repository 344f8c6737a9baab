import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { ChainError, Ed25519Signer, genesisHash, signTx, type Genesis, type JsonValue } from '../../consensus/index.js';
import {
  ClientError,
  CloisterClient,
  RpcError,
  newNonce,
  openReceipt,
  sealTransaction,
  verifyEncryptionKey,
  type OpenedAnswer,
  type NodeView,
  type ReceiptView,
  type StatusView,
  type VerifiedEncryptionKey,
} from '../client/index.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { KeyFileError, readKeyFile } from '../keys/key-file.js';
import { CliError, parseJsonArg, parseNonNegativeInt, parsePositiveInt } from './errors.js';
import { EXIT } from './exit-codes.js';
import { loadGenesis, provedCallResult } from './proof-commands.js';

const DEFAULT_GAS_LIMIT = 1_000_000;
const RECEIPT_POLL_MS = 250;
/** How often a long --wait says it is still waiting: often enough to show life, rarely enough not to flood a terminal. */
const WAIT_PROGRESS_MS = 5_000;

/** Where a one-node command connects when --rpc is not given: a local `cloister dev` or `node start` listens there by default. */
export const DEFAULT_RPC = 'http://127.0.0.1:8545';

/**
 * The --rpc option of a command that talks to one node: $CLOISTER_RPC, else
 * DEFAULT_RPC. Read when the command line is parsed, so that a user who works
 * against one node sets it once per shell. An empty variable counts as unset.
 */
export function rpcOption(description = 'JSON-RPC endpoint'): Option {
  const fromEnv = process.env['CLOISTER_RPC'];
  return new Option('--rpc <url>', description).default(
    fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_RPC,
    `$CLOISTER_RPC, else ${DEFAULT_RPC}`,
  );
}

function parseArgs(text: string): JsonValue[] {
  const args = parseJsonArg(text, '--args');
  if (!Array.isArray(args)) throw new CliError('--args must be a JSON array, e.g. \'["alice", 5]\'');
  return args as JsonValue[];
}

function parseNonce(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new CliError(`--nonce must be a non-negative integer: ${text}`);
  return n;
}

/** Friendlier words for the socket errors a user meets most. */
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'the connection closed',
};

/** The reason under fetch's "fetch failed": the innermost cause, e.g. "connection refused (connect ECONNREFUSED 127.0.0.1:8545)". */
function connectionFailure(err: ClientError): string {
  if (err.kind === 'timeout') return err.message;
  let inner: unknown = err;
  for (let depth = 0; depth < 8 && (inner as { cause?: unknown })?.cause !== undefined; depth++) inner = (inner as { cause: unknown }).cause;
  const code = (inner as { code?: unknown })?.code;
  const message = inner instanceof Error ? inner.message : String(inner);
  const friendly = typeof code === 'string' ? SOCKET_ERRORS[code] : undefined;
  return friendly ? `${friendly} (${message})` : message;
}

/**
 * One node as the CLI talks to it: a client that remembers whether the node has
 * answered anything yet, so that a failure is reported for what it is. Before
 * any answer a connection failure or timeout is "cannot reach" (exit 2);
 * after one, nothing is ever called unreachable.
 */
export class NodeLink {
  readonly client: CloisterClient;
  #answered = false;

  constructor(readonly url: string) {
    this.client = new CloisterClient(url, {
      fetch: async (input, init) => {
        const response = await globalThis.fetch(input, init);
        this.#answered = true;
        return response;
      },
    });
  }

  /** Runs one request, `doing` naming it for the error message ("sending the transaction"). */
  async ask<T>(doing: string, request: (client: CloisterClient) => Promise<T>, failedExit: number = EXIT.ERROR): Promise<T> {
    try {
      return await request(this.client);
    } catch (err) {
      throw this.explain(err, doing, failedExit);
    }
  }

  /** True for a failure of the connection itself (no answer, or the answer cut off), as opposed to an answer. */
  static isConnectionFailure(err: unknown): err is ClientError {
    return err instanceof ClientError && (err.kind === 'network' || err.kind === 'timeout');
  }

  /**
   * The one line (and exit status) for a failure while `doing`. An error answer
   * is EXIT.ERROR; `failedExit` is for a connection lost or a garbled answer
   * after the node had answered before.
   */
  explain(err: unknown, doing: string, failedExit: number = EXIT.ERROR): CliError {
    if (err instanceof CliError) return err;
    if (err instanceof RpcError) {
      // The node answered with an error: never "cannot reach".
      return new CliError(`${err.message} (${err.chainCode ?? `JSON-RPC error ${err.code}`})`, EXIT.ERROR);
    }
    if (NodeLink.isConnectionFailure(err)) {
      if (!this.#answered) return new CliError(`cannot reach ${this.url}: ${connectionFailure(err)}`, EXIT.UNREACHABLE);
      return new CliError(`${this.url} stopped answering while ${doing}: ${connectionFailure(err)}`, failedExit);
    }
    if (err instanceof ClientError) return new CliError(`unexpected answer from ${this.url} while ${doing}: ${err.message}`, failedExit);
    return new CliError(`failed while ${doing}: ${err instanceof Error ? err.message : String(err)}`, failedExit);
  }
}

export function linkTo(url: string): NodeLink {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`--rpc must be an http:// or https:// URL: ${url}`);
  return new NodeLink(url);
}

export interface AwaitReceiptOptions {
  /**
   * True (the default) when this command sent the transaction and the node
   * accepted it: the messages say so. False for `tx receipt --wait`, which
   * knows nothing of the transaction but its hash.
   */
  accepted?: boolean;
  /** Called with a line when the wait starts and at most every WAIT_PROGRESS_MS after (the CLI passes it when stderr is a terminal). */
  progress?: (line: string) => void;
}

/**
 * Polls for the receipt until `timeoutMs` has passed. A node that stops
 * answering for a while (restarting, busy) is asked again until then: the
 * transaction is in its mempool or in a block, and may still commit.
 */
export async function awaitReceipt(node: NodeLink, hash: string, timeoutMs: number, options: AwaitReceiptOptions = {}): Promise<ReceiptView> {
  const accepted = options.accepted ?? true;
  const started = Date.now();
  const deadline = started + timeoutMs;
  let lastFailure: string | undefined;
  let nextProgress = started + WAIT_PROGRESS_MS;
  options.progress?.(`waiting for transaction ${hash} to commit…`);
  for (;;) {
    try {
      const receipt = await node.client.getTransactionReceipt(hash);
      if (receipt) return receipt;
      lastFailure = undefined;
    } catch (err) {
      if (err instanceof RpcError) {
        const what = accepted ? `transaction ${hash} was accepted, but asking` : `asking ${node.url}`;
        throw new CliError(`${what} for its receipt failed: ${err.message}`, accepted ? EXIT.TX_OUTCOME_UNKNOWN : EXIT.ERROR);
      }
      if (!NodeLink.isConnectionFailure(err)) throw node.explain(err, 'waiting for the receipt', EXIT.TX_OUTCOME_UNKNOWN);
      // Not a single answer yet (tx receipt --wait against a wrong URL): "cannot reach", exit 2, not a long wait.
      if (!accepted) {
        const unreachable = node.explain(err, 'waiting for the receipt');
        if (unreachable.exitCode === EXIT.UNREACHABLE) throw unreachable;
      }
      lastFailure = connectionFailure(err);
    }
    const now = Date.now();
    const left = deadline - now;
    if (left <= 0) {
      const why = lastFailure ? `${node.url} stopped answering (${lastFailure})` : `no receipt within ${timeoutMs} ms`;
      if (!accepted) throw new CliError(`transaction ${hash}: ${why}`, EXIT.TX_OUTCOME_UNKNOWN);
      throw new CliError(`transaction ${hash} was accepted, but ${why}; it may still be committed`, EXIT.TX_OUTCOME_UNKNOWN);
    }
    if (options.progress && now >= nextProgress) {
      const why = lastFailure ? `; ${node.url} is not answering (${lastFailure})` : '';
      options.progress(`still waiting for transaction ${hash} after ${Math.round((now - started) / 1000)} s (timeout ${Math.round(timeoutMs / 1000)} s)${why}…`);
      nextProgress = now + WAIT_PROGRESS_MS;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(RECEIPT_POLL_MS, left)));
  }
}

/** Progress lines for --wait go to stderr only on a terminal: a script reading stderr sees one line on failure and nothing else. */
export function terminalProgress(): ((line: string) => void) | undefined {
  return process.stderr.isTTY ? (line) => process.stderr.write(line + '\n') : undefined;
}

export const print = (value: unknown): void => {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
};

/** Where the CLI takes the genesis a network key is verified against. */
interface TrustOptions {
  genesis?: string;
  genesisHash?: string;
  /** A chain view (gov_chainView's JSON) the user trusts: validators and policy governance changed since the genesis. */
  chainView?: string;
}

/** The validators and policy of a chain view file the user trusts (what `cloister gov view` printed from their own node). */
function trustedView(file: string | undefined): { validators: Genesis['validators']; policy: Genesis['policy'] } | undefined {
  if (file === undefined) return undefined;
  let view: { validators?: unknown; policy?: unknown };
  try {
    view = parseJsonArg(readFileSync(file, 'utf8'), `--chain-view ${file}`) as { validators?: unknown; policy?: unknown };
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`--chain-view ${file}: ${(err as Error).message}`);
  }
  if (!Array.isArray(view?.validators) || typeof view.policy !== 'object' || view.policy === null) {
    throw new CliError(`--chain-view ${file}: a chain view has "validators" and "policy" (gov_chainView's answer)`);
  }
  return { validators: view.validators as Genesis['validators'], policy: view.policy as Genesis['policy'] };
}

/**
 * The genesis to verify a confidential contract's network key against: the
 * file the user gives, or the one the node serves if its hash is the one the
 * user pins (said on stderr). Never the node's word alone: a node (or a man in
 * the middle) could then serve a genesis with its own roots.
 */
async function trustedGenesis(node: NodeLink, opts: TrustOptions, contract: string): Promise<Genesis> {
  if (opts.genesis !== undefined) {
    try {
      return readGenesisFile(opts.genesis);
    } catch (err) {
      throw new CliError(`--genesis ${opts.genesis}: ${(err as Error).message}`);
    }
  }
  if (opts.genesisHash !== undefined) {
    const served = await node.ask('reading the genesis the node serves', (c) => c.getGenesis());
    const hash = genesisHash(served);
    if (hash !== opts.genesisHash.toLowerCase()) {
      throw new CliError(`the node serves a genesis with hash ${hash}, not the pinned ${opts.genesisHash}: nothing was sent`);
    }
    process.stderr.write(`using the genesis the node serves, pinned by its hash ${hash}\n`);
    return served;
  }
  throw new CliError(
    `contract "${contract}" is confidential: give --genesis FILE (or --genesis-hash HASH to use the node's genesis if its hash is that) ` +
      'so that the network encryption key can be verified before anything is sealed and sent',
  );
}

/** The network key, verified against the genesis; refused (nothing sent) when its evidence does not verify. */
async function verifiedKey(node: NodeLink, genesis: Genesis, chainView?: string): Promise<VerifiedEncryptionKey> {
  const trusted = trustedView(chainView);
  const nonce = newNonce();
  const view = await node.ask('fetching the network encryption key', (c) => c.getEncryptionKey(nonce));
  try {
    return verifyEncryptionKey(view, { genesis, nonce, ...(trusted ? { view: trusted } : {}) });
  } catch (err) {
    if (err instanceof ChainError && err.code === 'KEY_UNVERIFIED') throw new CliError(`${err.message}; nothing was sent`);
    throw err;
  }
}

async function isConfidential(node: NodeLink, contract: string): Promise<boolean> {
  const contracts = await node.ask('listing the contracts', (c) => c.listContracts());
  const found = contracts.find((c) => c.name === contract);
  return (found?.manifest as { confidential?: boolean } | undefined)?.confidential === true;
}

interface SendOptions extends TrustOptions {
  rpc: string;
  key: string;
  contract: string;
  method: string;
  args: string;
  gas: number;
  nonce?: number;
  wait: boolean;
  timeout: number;
}

export function loadKey(file: string): ReturnType<typeof readKeyFile> {
  try {
    return readKeyFile(file);
  } catch (err) {
    if (err instanceof KeyFileError) throw new CliError(err.message);
    throw err;
  }
}

async function sendTx(opts: SendOptions): Promise<void> {
  const args = parseArgs(opts.args);
  const signer = new Ed25519Signer(loadKey(opts.key).privateKey);
  const node = linkTo(opts.rpc);
  const { chainId } = await node.ask('reading the chain id', (c) => c.status());
  // A confidential contract's call is sealed to the network key, verified first against the genesis.
  const confidential = await isConfidential(node, opts.contract);
  const key = confidential ? await verifiedKey(node, await trustedGenesis(node, opts, opts.contract), opts.chainView) : undefined;
  const nonce = opts.nonce ?? (await node.ask("asking for the sender's next nonce", (c) => c.getNonce(signer.publicKey)));
  const body = { chainId, from: signer.publicKey, nonce, contract: opts.contract, method: opts.method, args, gasLimit: opts.gas };
  const sealed = key ? sealTransaction(body, signer, key) : undefined;
  const signed = sealed ? sealed.tx : signTx(body, signer);
  // From here on the transaction may be in the node's mempool: a lost connection leaves its outcome unknown.
  const hash = await node.ask('sending the transaction (it may have been accepted)', (c) => c.sendTransaction(signed), EXIT.TX_OUTCOME_UNKNOWN);
  if (!opts.wait) {
    process.stdout.write(hash + '\n');
    return;
  }
  const committed = await awaitReceipt(node, hash, opts.timeout, { progress: terminalProgress() });
  // The sender alone can open a sealed transaction's answer: shown in the receipt as `opened`.
  const receipt: ReceiptView & { opened?: OpenedAnswer } = sealed ? openReceipt(committed, sealed.resultKey) : committed;
  print(receipt);
  if (receipt.status !== 'success') {
    const error = receipt.opened?.error ?? receipt.error;
    const why = error ? `: ${error.code}: ${error.message}` : '';
    throw new CliError(`transaction ${hash} was committed in block ${receipt.blockHeight} but failed${why}`, EXIT.TX_FAILED);
  }
}

export function registerRpcCommands(program: Command): void {
  const tx = program.command('tx').description('transactions');
  tx.command('send')
    .description(
      'sign a transaction with a key file and send it; prints its hash, or with --wait its receipt ' +
        '(exit 3 if it failed, 4 if no receipt came; see the README for every exit status)',
    )
    .addOption(rpcOption())
    .requiredOption('--key <file>', 'sender key file (from "cloister keys new")')
    .requiredOption('--contract <name>', 'contract name')
    .requiredOption('--method <name>', 'method name')
    .option('--args <json>', 'arguments as a JSON array', '[]')
    .option('--gas <n>', 'gas limit', parsePositiveInt, DEFAULT_GAS_LIMIT)
    .option('--nonce <n>', 'nonce (default: the next one the node expects)', parseNonce)
    .option('--wait', 'wait until committed and print the receipt (a sealed answer opened for the sender, as "opened")', false)
    .option('--timeout <ms>', 'how long --wait waits', parsePositiveInt, 60_000)
    .option('--genesis <file>', 'confidential contracts: the genesis that the network key\'s evidence is verified against')
    .option('--genesis-hash <hex>', 'confidential contracts: use the genesis the node serves if its hash is this one')
    .option('--chain-view <file>', "confidential contracts: a chain view you trust (`cloister gov view` from your own node) when governance changed the validators or policy since the genesis")
    .action(sendTx);

  program
    .command('call')
    .description('call a read-only contract method and print its result as JSON')
    .addOption(rpcOption())
    .requiredOption('--contract <name>', 'contract name')
    .requiredOption('--method <name>', 'method name')
    .option('--args <json>', 'arguments as a JSON array', '[]')
    .option('--key <file>', 'call as this key\'s owner: the call is signed with it (without it, the caller is anonymous)')
    .option('--genesis <file>', 'confidential contracts: the genesis that the network key\'s evidence is verified against')
    .option('--genesis-hash <hex>', 'confidential contracts: use the genesis the node serves if its hash is this one')
    .option('--chain-view <file>', 'confidential contracts: a chain view you trust, when governance changed the validators or policy')
    .option('--prove <stateKey>', "for a method that returns a plain state read: check the result is this key's value, proved under a certified state root (needs --genesis)")
    .action(async (opts: TrustOptions & { rpc: string; contract: string; method: string; args: string; key?: string; prove?: string }) => {
      const args = parseArgs(opts.args);
      const signer = opts.key === undefined ? undefined : new Ed25519Signer(loadKey(opts.key).privateKey);
      const node = linkTo(opts.rpc);
      if (await isConfidential(node, opts.contract)) {
        // Sealed both ways: the call (and the signature, with --key) to the network key, the answer to us.
        const key = await verifiedKey(node, await trustedGenesis(node, opts, opts.contract), opts.chainView);
        const out = await node.ask(`calling ${opts.contract}.${opts.method} (sealed)`, (c) =>
          c.sealedCall(opts.contract, opts.method, args, key, signer ? { signer } : undefined),
        );
        process.stdout.write(JSON.stringify(out.result) + '\n');
        return;
      }
      const call = async (): Promise<JsonValue> =>
        (
          await node.ask(`calling ${opts.contract}.${opts.method}`, (c) =>
            signer ? c.call(opts.contract, opts.method, args, { signer }) : c.call(opts.contract, opts.method, args),
          )
        ).result;
      if (opts.prove !== undefined) {
        if (opts.genesis === undefined) throw new CliError('--prove needs --genesis: the proof is verified against it');
        const { result, height } = await provedCallResult(node, opts.contract, opts.prove, loadGenesis(opts.genesis), call);
        process.stdout.write(JSON.stringify(result) + '\n');
        process.stderr.write(`proved: the result is the value of ${opts.contract}/${opts.prove} after block ${height}\n`);
        return;
      }
      process.stdout.write(JSON.stringify(await call()) + '\n');
    });

  tx.command('receipt <hash>')
    .description("print a transaction's receipt as JSON (exit 1 when the node has none; with --wait, wait for it: exit 4 if none comes in time)")
    .addOption(rpcOption())
    .option('--wait', 'wait until the transaction is committed', false)
    .option('--timeout <ms>', 'how long --wait waits', parsePositiveInt, 60_000)
    .action(async (hash: string, opts: { rpc: string; wait: boolean; timeout: number }) => {
      // Checked here so that a typo is named as such rather than as the node's "invalid params".
      if (!/^[0-9a-fA-F]{64}$/.test(hash)) throw new CliError(`not a transaction hash (64 hex digits): ${hash}`);
      const node = linkTo(opts.rpc);
      if (opts.wait) {
        print(await awaitReceipt(node, hash, opts.timeout, { accepted: false, progress: terminalProgress() }));
        return;
      }
      const receipt = await node.ask('asking for the receipt', (c) => c.getTransactionReceipt(hash));
      if (receipt === null) throw new CliError(`${opts.rpc} has no receipt for transaction ${hash}: not committed (yet), or unknown to it`);
      print(receipt);
    });

  program
    .command('block [height]')
    .description('print a block (the head by default, or "latest") as JSON; --full includes its transactions')
    .addOption(rpcOption())
    .option('--full', 'include the transactions themselves, not only their hashes', false)
    .action(async (height: string | undefined, opts: { rpc: string; full: boolean }) => {
      let which: number | 'latest' = 'latest';
      if (height !== undefined && height !== 'latest') {
        try {
          which = parseNonNegativeInt(height);
        } catch {
          throw new CliError(`a block height is a non-negative integer or "latest": ${height}`);
        }
      }
      const node = linkTo(opts.rpc);
      const block = await node.ask(`reading block ${which}`, (c) => c.getBlockByNumber(which, opts.full));
      if (block === null) {
        const head = await node.ask('reading the height', (c) => c.blockNumber());
        throw new CliError(`${opts.rpc} has no block ${which}: its chain is at height ${head}`);
      }
      print(block);
    });

  program
    .command('status')
    .description("print a node's status (chain, height, enclave, consensus) and every consortium node: admitted, or refused with the reason")
    .addOption(rpcOption())
    .option('--json', 'print node_status with the consortium nodes (net_nodes) as one JSON object', false)
    .action(async (opts: { rpc: string; json: boolean }) => {
      const node = linkTo(opts.rpc);
      const status = await node.ask('reading the status', (c) => c.status());
      const nodes = await node.ask('listing the consortium nodes', (c) => c.nodes());
      if (opts.json) print({ ...status, nodes });
      else process.stdout.write(formatStatus(status, nodes));
    });
}

const short = (hex: string): string => (hex.length > 16 ? `${hex.slice(0, 16)}…` : hex);

function timeOf(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

/** `cloister status` for a person: one labelled line per aspect, then one line per consortium node. Fields an older node lacks are left out. */
export function formatStatus(status: StatusView, nodes: NodeView[]): string {
  const lines: string[] = [];
  const row = (label: string, value: string): void => {
    lines.push(`${label.padEnd(11)}${value}`);
  };
  row('chain', `${status.chainId} (genesis ${short(status.genesisHash)})`);
  row('height', `${status.height}, head ${short(status.headHash)} at ${timeOf(status.headTime)}${status.syncing ? ' (syncing)' : ''}`);
  row('enclave', `${status.platform}, measurement ${short(status.measurement)}`);
  if (status.consensus) row('consensus', `height ${status.consensus.height}, round ${status.consensus.round}, step ${status.consensus.step}`);
  row('mempool', `${status.mempoolSize} transaction${status.mempoolSize === 1 ? '' : 's'}`);
  if (status.connectedPeers !== undefined || status.admittedPeers !== undefined) {
    const of = status.validators !== undefined ? ` (${status.validators} validators in the genesis)` : '';
    row('peers', `${status.connectedPeers ?? '?'} connected, ${status.admittedPeers ?? '?'} admitted${of}`);
  }
  if (status.secrets) {
    const list = (gens: number[]): string => (gens.length === 0 ? 'none' : gens.join(', '));
    row('secrets', `held ${list(status.secrets.held)}; missing ${list(status.secrets.missing)}`);
  }
  lines.push(`nodes (${nodes.length}):`);
  for (const n of nodes) {
    const state = n.admitted ? 'admitted' : `refused ${n.reason ? `${n.reason.code}: ${n.reason.message}` : '(no reason given)'}`;
    const notes = [n.self ? 'this node' : undefined, n.doubleSignRisk ? `double-sign risk: ${n.doubleSignRisk}` : undefined, n.equivocations?.length ? `${n.equivocations.length} equivocation(s)` : undefined].filter(
      (x): x is string => x !== undefined,
    );
    lines.push(`  ${n.id}  ${state}${notes.length ? `  [${notes.join('; ')}]` : ''}`);
  }
  return lines.join('\n') + '\n';
}
