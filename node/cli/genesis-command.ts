import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { genesisHash, isHexOfLength, parseGenesis, type Genesis, type JsonValue } from '../../consensus/index.js';
import { loadBundleFromDir } from '../../contracts/index.js';
import type { AttestationPolicy } from '../../attestation/index.js';
import { GenesisInputError, buildGenesis } from '../genesis/build-genesis.js';
import { readKeyFile } from '../keys/key-file.js';
import { CliError, collect, parsePositiveInt } from './errors.js';

interface GenesisCliOptions {
  chainId?: string;
  member: string[];
  node: string[];
  measurement: string[];
  virtualRoot: string[];
  contract: string[];
  policy?: string;
  blockIntervalMs?: number;
  time?: string;
  out?: string;
}

/** NAME=VALUE, split at the first "=". */
function pair(text: string, what: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1) throw new CliError(`${what} must be NAME=VALUE, got "${text}"`);
  return [text.slice(0, at), text.slice(at + 1)];
}

function memberKey(value: string): string {
  if (isHexOfLength(value, 32)) return value;
  if (existsSync(value)) {
    try {
      return readKeyFile(value).publicKey;
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }
  throw new CliError(`member key "${value}" is neither a 64-hex public key nor a key file`);
}

function virtualRootPem(file: string): string {
  const text = readFileSync(file, 'utf8');
  if (text.trimStart().startsWith('{')) {
    const parsed = JSON.parse(text) as { publicKeyPem?: string };
    if (typeof parsed.publicKeyPem !== 'string') throw new CliError(`${file} has no publicKeyPem`);
    return parsed.publicKeyPem;
  }
  return text;
}

export function registerGenesisCommand(program: Command): void {
  const command = program
    .command('genesis')
    .description("build a genesis document from the members' keys, the nodes, the allowed enclave measurements, the policy and the contracts")
    // Not a required option: commander would demand it of `genesis hash` too.
    .option('--chain-id <id>', 'chain id (required)')
    .option('--member <name=key>', 'a member: NAME=PUBLIC_KEY_HEX or NAME=KEY_FILE; repeatable', collect, [])
    .option('--node <id=voteKey>', 'a validator: NODE_ID=ENCLAVE_VOTE_KEY_HEX, as `cloister node init` prints; repeatable', collect, [])
    .option('--measurement <platform=hex>', 'an allowed enclave measurement, e.g. virtual=<hex>; repeatable', collect, [])
    .option('--virtual-root <file>', 'a declared virtual vendor root (PEM or virtual-root.json); development only; repeatable', collect, [])
    .option('--contract <dir[=json-init-args]>', 'a contract bundle to approve and deploy, optionally with init args; repeatable', collect, [])
    .option('--policy <file>', 'the attestation policy (JSON); default: exactly the given measurements, debug refused')
    .option('--block-interval-ms <n>', 'how long a proposer waits for a block to fill', parsePositiveInt)
    .option('--time <iso>', 'genesis time (default: 1970-01-01T00:00:00Z, so that every member running the same command writes the same file)')
    .option('--out <file>', 'write here instead of standard output')
    .action(async (opts: GenesisCliOptions) => {
      if (opts.chainId === undefined) throw new CliError("required option '--chain-id <id>' not specified");
      const members = opts.member.map((m) => {
        const [id, key] = pair(m, '--member');
        return { id, publicKey: memberKey(key) };
      });
      const measurements: Record<string, string[]> = {};
      for (const m of opts.measurement) {
        const [platform, hex] = pair(m, '--measurement');
        (measurements[platform] ??= []).push(hex.toLowerCase());
      }
      const contracts = [];
      for (const spec of opts.contract) {
        const at = spec.indexOf('=');
        const dir = at < 0 ? spec : spec.slice(0, at);
        let initArgs: JsonValue[] = [];
        if (at >= 0) {
          try {
            initArgs = JSON.parse(spec.slice(at + 1)) as JsonValue[];
          } catch {
            throw new CliError(`--contract ${dir}: init args are not JSON`);
          }
          if (!Array.isArray(initArgs)) throw new CliError(`--contract ${dir}: init args must be a JSON array`);
        }
        try {
          contracts.push({ bundle: await loadBundleFromDir(dir), initArgs });
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      }
      let policy: AttestationPolicy | undefined;
      if (opts.policy) {
        try {
          policy = JSON.parse(readFileSync(opts.policy, 'utf8')) as AttestationPolicy;
        } catch (err) {
          throw new CliError(`--policy ${opts.policy}: ${(err as Error).message}`);
        }
      }
      // Never "now": members who build the genesis apart must get the same document (its hash is the chain's identity).
      const time = opts.time === undefined ? 0 : Date.parse(opts.time);
      if (Number.isNaN(time)) throw new CliError(`--time is not an ISO time: ${opts.time}`);
      let genesis;
      try {
        genesis = buildGenesis({
          chainId: opts.chainId,
          time,
          members,
          nodes: opts.node.map(parseNodeOption),
          measurements,
          virtualRoots: opts.virtualRoot.map(virtualRootPem),
          contracts,
          ...(policy ? { policy } : {}),
          ...(opts.blockIntervalMs ? { consensus: { blockIntervalMs: opts.blockIntervalMs } } : {}),
        });
      } catch (err) {
        if (err instanceof GenesisInputError) throw new CliError(`cannot build the genesis: ${err.message}`);
        throw err;
      }
      const text = JSON.stringify(genesis, null, 2) + '\n';
      if (opts.out) writeFileSync(opts.out, text);
      else process.stdout.write(text);
      process.stderr.write(`genesis hash ${genesisHash(genesis)}\n`);
    });
  command
    .command('hash <file>')
    .description("print a genesis document's hash: the chain's identity, as node_status and the node's log show it")
    .action((file: string) => {
      let genesis: Genesis;
      try {
        genesis = parseGenesis(JSON.parse(readFileSync(file, 'utf8')));
      } catch (err) {
        throw new CliError(`${file} is not a genesis document: ${(err as Error).message}`);
      }
      process.stdout.write(genesisHash(genesis) + '\n');
    });
}

/** NODE_ID=VOTE_KEY (the two values `cloister node init` prints). */
function parseNodeOption(value: string): { nodeId: string; voteKey: string } {
  const at = value.lastIndexOf('=');
  if (at <= 0) throw new CliError(`--node ${value}: expected NODE_ID=ENCLAVE_VOTE_KEY (run \`cloister node init\` on the node to get both)`);
  return { nodeId: value.slice(0, at), voteKey: value.slice(at + 1) };
}
