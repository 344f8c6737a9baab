import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { genesisHash, type Genesis } from '../../consensus/index.js';
import { CloisterClient } from '../client/index.js';
import { LEDGER_FILE_KIND, LedgerError, LedgerReexecutor, LedgerSourceError, LedgerVerifier, fileSource, rpcSource, storeSource, type LedgerFileHeader, type LedgerSource } from '../ledger/index.js';
import { CliError } from './errors.js';
import { EXIT } from './exit-codes.js';
import { loadGenesis } from './proof-commands.js';
import { linkTo, print } from './rpc-commands.js';

interface SourceOptions {
  data?: string;
  rpc?: string;
  file?: string;
}

async function openSource(opts: SourceOptions, genesis: Genesis): Promise<LedgerSource> {
  const given = [opts.data, opts.rpc, opts.file].filter((v) => v !== undefined).length;
  if (given !== 1) throw new CliError('give exactly one of --data DIR (a stopped node), --rpc URL (a running node) or --file FILE (an exported ledger)');
  try {
    if (opts.data !== undefined) return await storeSource(opts.data, genesis);
    if (opts.file !== undefined) return await fileSource(opts.file, genesisHash(genesis));
    linkTo(opts.rpc!);
    return await rpcSource(new CloisterClient(opts.rpc!, { timeoutMs: 30_000 }), genesis, opts.rpc!);
  } catch (err) {
    if (err instanceof LedgerSourceError) throw new CliError(err.message);
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read the ledger: ${(err as Error).message}`, opts.rpc !== undefined ? EXIT.UNREACHABLE : EXIT.ERROR);
  }
}

/** Progress on stderr, at most every 2 s, for long ledgers. */
function progress(total: number): (done: number) => void {
  let last = Date.now();
  return (done) => {
    const now = Date.now();
    if (now - last < 2000) return;
    last = now;
    process.stderr.write(`verified ${done} of ${total} blocks (${Math.floor((100 * done) / Math.max(total, 1))} %)\n`);
  };
}

export function registerLedgerCommands(program: Command): void {
  const ledger = program.command('ledger').description('check a whole ledger offline, or export it for an auditor without node access');
  ledger
    .command('verify')
    .description(
      'check every block from the genesis: the hash chain, each transaction signature, the tx and receipts roots, each certificate against the validators of its height (following governance), the genesis block (exit 6 naming the first bad height)',
    )
    .requiredOption('--genesis <file>', "the consortium's genesis")
    .option('--data <dir>', "a stopped node's data directory")
    .option('--rpc <url>', "a running node's JSON-RPC endpoint")
    .option('--file <file>', 'a ledger written by `cloister ledger export`')
    .option('--reexecute', 'also execute every block again in an enclave of this program, in this process, and check its roots (stops at the first block with confidential transactions: only the consortium\'s enclaves can open them)', false)
    .option('--require-attested', "refuse a certificate signed by a validator of which the ledger holds no evidence yet (by default counted in the summary)", false)
    .option('--json', 'print the summary as JSON', false)
    .action(async (opts: SourceOptions & { genesis: string; json: boolean; requireAttested: boolean; reexecute: boolean }) => {
      const genesis = loadGenesis(opts.genesis);
      const source = await openSource(opts, genesis);
      const verifier = new LedgerVerifier(genesis, { requireAttested: opts.requireAttested });
      const reexecutor = opts.reexecute ? await LedgerReexecutor.create(genesis) : undefined;
      const report = progress(source.head + 1);
      let done = 0;
      try {
        for await (const block of source.blocks()) {
          verifier.add(block);
          await reexecutor?.add(block);
          report(++done);
        }
      } catch (err) {
        if (err instanceof LedgerError) throw new CliError(`the ledger of ${source.describe} is invalid at ${err.message} (${err.code})`, EXIT.PROOF_INVALID);
        if (err instanceof LedgerSourceError) throw new CliError(err.message);
        throw new CliError(`reading the ledger of ${source.describe} failed after ${done} blocks: ${(err as Error).message}`);
      } finally {
        await source.close();
        await reexecutor?.close();
      }
      const reexecution = reexecutor ? { blocks: reexecutor.executed, stoppedAt: reexecutor.stoppedAt } : null;
      const summary = { ...verifier.summary(), reexecution };
      if (summary.head < source.head) throw new CliError(`the ledger of ${source.describe} ends at ${summary.head}, before its head ${source.head}`, EXIT.PROOF_INVALID);
      if (opts.json) return print(summary);
      const changes = summary.viewChanges.length === 0 ? 'no validator or policy change' : `validators or policy changed at ${summary.viewChanges.join(', ')}`;
      process.stdout.write(
        `verified: ${summary.blocks} blocks (0..${summary.head}, head ${summary.headHash}) and ${summary.transactions} transactions of chain ${summary.chainId}; ` +
          `every certificate a quorum of its height's validators; ${changes}; ${summary.validators} validators now; ` +
          `${summary.attestations} attestations on the ledger, each verified again (${summary.attested.map((a) => `${a.voteKey.slice(0, 8)}… ${a.platform} ${a.measurement.slice(0, 12)}… at ${a.height}`).join(', ') || 'none'}); ` +
          `${summary.signaturesBeforeAttestation} signatures made before their validator's first` +
          (reexecution === null
            ? ''
            : `; re-executed ${reexecution.blocks} blocks, every root as committed` +
              (reexecution.stoppedAt ? ` (stopped at block ${reexecution.stoppedAt.height}: ${reexecution.stoppedAt.reason})` : '')) +
          '\n',
      );
    });
  ledger
    .command('export')
    .description('write the ledger (every block with its transactions, receipts and governance changes) to a file that `ledger verify --file` checks')
    .requiredOption('--genesis <file>', "the consortium's genesis")
    .requiredOption('--out <file>', 'the file to write')
    .option('--data <dir>', "a stopped node's data directory")
    .option('--rpc <url>', "a running node's JSON-RPC endpoint")
    .action(async (opts: SourceOptions & { genesis: string; out: string }) => {
      if (opts.file !== undefined) throw new CliError('export reads --data or --rpc');
      const genesis = loadGenesis(opts.genesis);
      const source = await openSource(opts, genesis);
      const out = createWriteStream(opts.out, { mode: 0o644 });
      const write = async (value: unknown): Promise<void> => {
        if (!out.write(JSON.stringify(value) + '\n')) await once(out, 'drain');
      };
      try {
        const header: LedgerFileHeader = { kind: LEDGER_FILE_KIND, chainId: genesis.chainId, genesisHash: genesisHash(genesis), head: source.head };
        await write(header);
        for await (const block of source.blocks()) await write(block);
      } finally {
        await source.close();
        out.end();
        await once(out, 'close');
      }
      process.stdout.write(`wrote blocks 0..${source.head} of ${source.describe} to ${opts.out}\n`);
    });
}
