import type { Command } from 'commander';
import { Ed25519Signer, signTx, type JsonValue } from '../../consensus/index.js';
import { CloisterClient, RpcError } from '../client/index.js';
import { KeyFileError, readKeyFile } from '../keys/key-file.js';
import { CliError, parseJsonArg, parsePositiveInt } from './errors.js';

const DEFAULT_GAS_LIMIT = 1_000_000;

function parseArgs(text: string): JsonValue[] {
  const args = parseJsonArg(text, '--args');
  if (!Array.isArray(args)) throw new CliError('--args must be a JSON array, e.g. \'["alice", 5]\'');
  return args as JsonValue[];
}

/** Turns client failures into one line for the user. */
async function withRpc<T>(url: string, action: (client: CloisterClient) => Promise<T>): Promise<T> {
  let client: CloisterClient;
  try {
    new URL(url);
    client = new CloisterClient(url);
  } catch {
    throw new CliError(`not a URL: ${url}`);
  }
  try {
    return await action(client);
  } catch (err) {
    if (err instanceof RpcError) {
      const chainCode = (err.data as { code?: string } | undefined)?.code;
      throw new CliError(`${err.message} (${chainCode ?? `JSON-RPC error ${err.code}`})`);
    }
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot reach ${url}: ${(err as Error).message}`);
  }
}

const print = (value: unknown): void => {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
};

export function registerRpcCommands(program: Command): void {
  const tx = program.command('tx').description('transactions');
  tx.command('send')
    .description('sign a transaction with a key file and send it; prints its hash, or its receipt with --wait')
    .requiredOption('--rpc <url>', 'JSON-RPC endpoint, e.g. http://127.0.0.1:8545')
    .requiredOption('--key <file>', 'sender key file (from "cloister keys new")')
    .requiredOption('--contract <name>', 'contract name')
    .requiredOption('--method <name>', 'method name')
    .option('--args <json>', 'arguments as a JSON array', '[]')
    .option('--gas <n>', 'gas limit', parsePositiveInt, DEFAULT_GAS_LIMIT)
    .option('--nonce <n>', 'nonce (default: the next one the node expects)', (v) => Number(v))
    .option('--wait', 'wait until committed and print the receipt', false)
    .option('--timeout <ms>', 'how long --wait waits', parsePositiveInt, 60_000)
    .action(
      async (opts: { rpc: string; key: string; contract: string; method: string; args: string; gas: number; nonce?: number; wait: boolean; timeout: number }) => {
        const args = parseArgs(opts.args);
        let key;
        try {
          key = readKeyFile(opts.key);
        } catch (err) {
          if (err instanceof KeyFileError) throw new CliError(err.message);
          throw err;
        }
        const signer = new Ed25519Signer(key.privateKey);
        await withRpc(opts.rpc, async (client) => {
          const status = await client.status();
          const nonce = opts.nonce ?? (await client.getNonce(signer.publicKey));
          if (!Number.isSafeInteger(nonce) || nonce < 0) throw new CliError('--nonce must be a non-negative integer');
          const signed = signTx(
            { chainId: status.chainId, from: signer.publicKey, nonce, contract: opts.contract, method: opts.method, args, gasLimit: opts.gas },
            signer,
          );
          const hash = await client.sendTransaction(signed);
          if (!opts.wait) {
            process.stdout.write(hash + '\n');
            return;
          }
          print(await client.waitForReceipt(hash, { timeoutMs: opts.timeout }));
        });
      },
    );

  program
    .command('call')
    .description('call a read-only contract method and print its result as JSON')
    .requiredOption('--rpc <url>', 'JSON-RPC endpoint')
    .requiredOption('--contract <name>', 'contract name')
    .requiredOption('--method <name>', 'method name')
    .option('--args <json>', 'arguments as a JSON array', '[]')
    .option('--caller <hex>', 'caller public key the contract sees')
    .action(async (opts: { rpc: string; contract: string; method: string; args: string; caller?: string }) => {
      const args = parseArgs(opts.args);
      await withRpc(opts.rpc, async (client) => {
        const out = await client.call(opts.contract, opts.method, args, opts.caller);
        process.stdout.write(JSON.stringify(out.result) + '\n');
      });
    });

  program
    .command('status')
    .description("print a node's status (chain, height, enclave, consensus) and every consortium node: admitted, or refused with the reason")
    .requiredOption('--rpc <url>', 'JSON-RPC endpoint')
    .action(async (opts: { rpc: string }) => {
      await withRpc(opts.rpc, async (client) => {
        const [status, nodes] = await Promise.all([client.status(), client.nodes()]);
        print({ ...status, nodes });
      });
    });
}
