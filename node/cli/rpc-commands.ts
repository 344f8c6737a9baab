import type { Command } from 'commander';
import { Ed25519Signer, signTx, type JsonValue } from '../../consensus/index.js';
import { ClientError, CloisterClient, RpcError, type ReceiptView } from '../client/index.js';
import { KeyFileError, readKeyFile } from '../keys/key-file.js';
import { CliError, parseJsonArg, parsePositiveInt } from './errors.js';
import { EXIT } from './exit-codes.js';

const DEFAULT_GAS_LIMIT = 1_000_000;
const RECEIPT_POLL_MS = 250;

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

function linkTo(url: string): NodeLink {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`--rpc must be an http:// or https:// URL: ${url}`);
  return new NodeLink(url);
}

/**
 * Polls for the receipt until `timeoutMs` has passed. A node that stops
 * answering for a while (restarting, busy) is asked again until then: the
 * transaction is in its mempool or in a block, and may still commit.
 */
async function awaitReceipt(node: NodeLink, hash: string, timeoutMs: number): Promise<ReceiptView> {
  const deadline = Date.now() + timeoutMs;
  let lastFailure: string | undefined;
  for (;;) {
    try {
      const receipt = await node.client.getTransactionReceipt(hash);
      if (receipt) return receipt;
      lastFailure = undefined;
    } catch (err) {
      if (err instanceof RpcError) {
        throw new CliError(`transaction ${hash} was accepted, but asking for its receipt failed: ${err.message}`, EXIT.TX_OUTCOME_UNKNOWN);
      }
      if (!NodeLink.isConnectionFailure(err)) throw node.explain(err, 'waiting for the receipt', EXIT.TX_OUTCOME_UNKNOWN);
      lastFailure = connectionFailure(err);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const why = lastFailure ? `${node.url} stopped answering (${lastFailure})` : `no receipt within ${timeoutMs} ms`;
      throw new CliError(`transaction ${hash} was accepted, but ${why}; it may still be committed`, EXIT.TX_OUTCOME_UNKNOWN);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(RECEIPT_POLL_MS, left)));
  }
}

const print = (value: unknown): void => {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
};

interface SendOptions {
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

function loadKey(file: string): ReturnType<typeof readKeyFile> {
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
  const nonce = opts.nonce ?? (await node.ask("asking for the sender's next nonce", (c) => c.getNonce(signer.publicKey)));
  const signed = signTx({ chainId, from: signer.publicKey, nonce, contract: opts.contract, method: opts.method, args, gasLimit: opts.gas }, signer);
  // From here on the transaction may be in the node's mempool: a lost connection leaves its outcome unknown.
  const hash = await node.ask('sending the transaction (it may have been accepted)', (c) => c.sendTransaction(signed), EXIT.TX_OUTCOME_UNKNOWN);
  if (!opts.wait) {
    process.stdout.write(hash + '\n');
    return;
  }
  const receipt = await awaitReceipt(node, hash, opts.timeout);
  print(receipt);
  if (receipt.status !== 'success') {
    const error = receipt.error ? `: ${receipt.error.code}: ${receipt.error.message}` : '';
    throw new CliError(`transaction ${hash} was committed in block ${receipt.blockHeight} but failed${error}`, EXIT.TX_FAILED);
  }
}

export function registerRpcCommands(program: Command): void {
  const tx = program.command('tx').description('transactions');
  tx.command('send')
    .description(
      'sign a transaction with a key file and send it; prints its hash, or with --wait its receipt ' +
        '(exit 3 if it failed, 4 if no receipt came; see the README for every exit status)',
    )
    .requiredOption('--rpc <url>', 'JSON-RPC endpoint, e.g. http://127.0.0.1:8545')
    .requiredOption('--key <file>', 'sender key file (from "cloister keys new")')
    .requiredOption('--contract <name>', 'contract name')
    .requiredOption('--method <name>', 'method name')
    .option('--args <json>', 'arguments as a JSON array', '[]')
    .option('--gas <n>', 'gas limit', parsePositiveInt, DEFAULT_GAS_LIMIT)
    .option('--nonce <n>', 'nonce (default: the next one the node expects)', parseNonce)
    .option('--wait', 'wait until committed and print the receipt', false)
    .option('--timeout <ms>', 'how long --wait waits', parsePositiveInt, 60_000)
    .action(sendTx);

  program
    .command('call')
    .description('call a read-only contract method and print its result as JSON')
    .requiredOption('--rpc <url>', 'JSON-RPC endpoint')
    .requiredOption('--contract <name>', 'contract name')
    .requiredOption('--method <name>', 'method name')
    .option('--args <json>', 'arguments as a JSON array', '[]')
    .option('--key <file>', 'call as this key\'s owner: the call is signed with it (without it, the caller is anonymous)')
    .action(async (opts: { rpc: string; contract: string; method: string; args: string; key?: string }) => {
      const args = parseArgs(opts.args);
      const signer = opts.key === undefined ? undefined : new Ed25519Signer(loadKey(opts.key).privateKey);
      const node = linkTo(opts.rpc);
      const out = await node.ask(`calling ${opts.contract}.${opts.method}`, (c) =>
        signer ? c.call(opts.contract, opts.method, args, { signer }) : c.call(opts.contract, opts.method, args),
      );
      process.stdout.write(JSON.stringify(out.result) + '\n');
    });

  program
    .command('status')
    .description("print a node's status (chain, height, enclave, consensus) and every consortium node: admitted, or refused with the reason")
    .requiredOption('--rpc <url>', 'JSON-RPC endpoint')
    .action(async (opts: { rpc: string }) => {
      const node = linkTo(opts.rpc);
      const status = await node.ask('reading the status', (c) => c.status());
      const nodes = await node.ask('listing the consortium nodes', (c) => c.nodes());
      print({ ...status, nodes });
    });
}
