import type { Command } from 'commander';
import type { Genesis } from '../../consensus/index.js';
import { AuditInputError, runAudit } from '../audit/index.js';
import { formatReport } from '../audit/format.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { CliError, collect, parsePositiveInt } from './errors.js';
import { EXIT } from './exit-codes.js';
import { linkTo } from './rpc-commands.js';

interface AuditCliOptions {
  rpc: string[];
  genesis: string;
  source?: string;
  contracts: string[];
  timeout: number;
  json: boolean;
}

function readGenesis(file: string): Genesis {
  try {
    return readGenesisFile(file);
  } catch (err) {
    throw new CliError(`--genesis ${file}: ${(err as Error).message}`);
  }
}

/** `--rpc a,b --rpc c`: every URL, each checked to be one (a typo is a usage error, not a finding). */
function nodeUrls(values: readonly string[]): string[] {
  const urls = values.flatMap((v) => v.split(',')).map((u) => u.trim()).filter((u) => u !== '');
  if (urls.length === 0) throw new CliError('--rpc URL[,URL…] names the nodes to audit');
  for (const url of urls) linkTo(url);
  return [...new Set(urls)];
}

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description(
      "audit a consortium's nodes: fresh evidence (random nonce) verified against the genesis's roots and the policy in force, " +
        'measurements against a source checkout, deployed contracts against its bundles, the nodes agreeing, the governance history; ' +
        `exits ${EXIT.AUDIT_FINDINGS} naming each finding`,
    )
    .requiredOption('--rpc <urls>', 'the nodes, URL[,URL…]; repeatable', collect, [])
    .requiredOption('--genesis <file>', "the consortium's genesis (the trust anchor: vendor roots, chain id, genesis hash)")
    .option('--source <dir>', 'a built checkout of the Cloister source: its enclave measurement and contracts/examples/* bundles')
    .option('--contracts <dir>', 'more contract bundles (a bundle, or a directory of bundles); repeatable', collect, [])
    .option('--timeout <ms>', 'per request to a node', parsePositiveInt, 10_000)
    .option('--json', 'print the report as one JSON object', false)
    .action(async (opts: AuditCliOptions) => {
      const urls = nodeUrls(opts.rpc);
      const genesis = readGenesis(opts.genesis);
      let report;
      try {
        report = await runAudit({
          urls,
          genesis,
          genesisFile: opts.genesis,
          ...(opts.source === undefined ? {} : { source: opts.source }),
          contractDirs: opts.contracts,
          timeoutMs: opts.timeout,
        });
      } catch (err) {
        if (err instanceof AuditInputError) throw new CliError(err.message);
        throw err;
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      } else {
        process.stdout.write(formatReport(report));
        for (const f of report.findings) process.stderr.write(`finding ${f.code}: ${f.message}\n`);
      }
      if (!report.ok) process.exitCode = EXIT.AUDIT_FINDINGS;
    });
}
