import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { canonicalize, type Genesis, type JsonValue } from '../../consensus/index.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { ProofError, verifyReceiptProof, verifyStateValueProof, type VerifiedHeader } from '../proofs/index.js';
import { CliError, parseJsonArg, parseNonNegativeInt } from './errors.js';
import { EXIT } from './exit-codes.js';
import { linkTo, print, rpcOption, type NodeLink } from './rpc-commands.js';

export function loadGenesis(file: string): Genesis {
  try {
    return readGenesisFile(file);
  } catch (err) {
    throw new CliError(`--genesis ${file}: ${(err as Error).message}`);
  }
}

function readProofFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return parseJsonArg(text, file);
}

function writeOut(file: string | undefined, value: unknown): void {
  const text = JSON.stringify(value, null, 2) + '\n';
  if (file === undefined) process.stdout.write(text);
  else writeFileSync(file, text, { mode: 0o644 });
}

/** Runs a verifier; a refusal is one line naming the failed check, and exit status PROOF_INVALID. */
function verified<T>(what: string, verify: () => T): T {
  try {
    return verify();
  } catch (err) {
    if (err instanceof ProofError) throw new CliError(`${what} does not verify: ${err.code}: ${err.message}`, EXIT.PROOF_INVALID);
    throw err;
  }
}

function signersLine(v: VerifiedHeader): string {
  const kinds = [...new Set(v.signers.map((s) => `${s.platform} ${s.measurement.slice(0, 16)}…`))].join(', ');
  const onLedger = v.signers.filter((s) => s.attestedAt !== null);
  const where = onLedger.length === v.signers.length ? 'each attested on the ledger' : `${onLedger.length} attested on the ledger, ${v.signers.length - onLedger.length} by the evidence the node holds`;
  return `certified by ${v.signers.length} attested validators (${kinds}; ${where})`;
}

export function registerProofCommands(program: Command): void {
  const receipt = program.command('receipt').description('receipt proofs: export one from a node, verify one offline');
  receipt
    .command('export')
    .description("write a committed transaction's receipt proof (chain_getReceiptProof) to a file")
    .addOption(rpcOption())
    .requiredOption('--tx <hash>', 'transaction hash')
    .option('--out <file>', 'where to write it (default: standard output)')
    .action(async (opts: { rpc: string; tx: string; out?: string }) => {
      const node = linkTo(opts.rpc);
      const proof = await node.ask('asking for the receipt proof', (c) => c.getReceiptProof(opts.tx));
      if (proof === null) throw new CliError(`transaction ${opts.tx} is not committed on ${opts.rpc}`);
      writeOut(opts.out, proof);
    });
  receipt
    .command('verify <file>')
    .description('verify a receipt proof offline against the genesis: the transaction, its receipt, the block certificate, the signers\' evidence (exit 5 naming the check that fails)')
    .requiredOption('--genesis <file>', "the consortium's genesis")
    .option('--json', 'print what verified as JSON', false)
    .action((file: string, opts: { genesis: string; json: boolean }) => {
      const genesis = loadGenesis(opts.genesis);
      const out = verified(`the receipt proof ${file}`, () => verifyReceiptProof(readProofFile(file), genesis, { now: new Date() }));
      if (opts.json) return print(out);
      const r = out.receipt;
      process.stdout.write(
        `verified: transaction ${out.txHash} is at index ${r.index} of block ${out.height} (${out.blockHash}), ` +
          `status ${r.status}, gas ${r.gasUsed}${r.sealed !== undefined ? ', result sealed to its sender' : `, result ${canonicalize(r.result)}`}; ${signersLine(out)}\n`,
      );
    });

  const state = program.command('state').description('state proofs: export one from a node, verify one offline');
  state
    .command('export')
    .description("write a public contract key's state proof (chain_getStateProof) to a file")
    .addOption(rpcOption())
    .requiredOption('--contract <name>', 'contract name')
    .requiredOption('--key <key>', "the key in the contract's state")
    .option('--height <n>', 'a recent height (default: the head)', parseNonNegativeInt)
    .option('--out <file>', 'where to write it (default: standard output)')
    .action(async (opts: { rpc: string; contract: string; key: string; height?: number; out?: string }) => {
      const node = linkTo(opts.rpc);
      writeOut(opts.out, await node.ask('asking for the state proof', (c) => c.getStateProof(opts.contract, opts.key, opts.height)));
    });
  state
    .command('verify <file>')
    .description('verify a state proof offline against the genesis (exit 5 naming the check that fails)')
    .requiredOption('--genesis <file>', "the consortium's genesis")
    .option('--json', 'print what verified as JSON', false)
    .action((file: string, opts: { genesis: string; json: boolean }) => {
      const genesis = loadGenesis(opts.genesis);
      const out = verified(`the state proof ${file}`, () => verifyStateValueProof(readProofFile(file), genesis, { now: new Date() }));
      if (opts.json) return print(out);
      const value = out.value === null ? 'is absent' : `holds ${canonicalize(out.value)}`;
      process.stdout.write(`verified: ${out.contract}/${out.key} ${value} after block ${out.height} (${out.blockHash}); ${signersLine(out)}\n`);
    });
}

/**
 * `call --prove KEY`: the call's result must be the value of KEY in the
 * contract's state, proved under a certified state root. The state may move
 * between the call and the proof, so a mismatch is asked again once.
 */
export async function provedCallResult(node: NodeLink, contract: string, key: string, genesis: Genesis, call: () => Promise<JsonValue>): Promise<{ result: JsonValue; height: number }> {
  for (let attempt = 0; ; attempt++) {
    const result = await call();
    const proof = await node.ask('asking for the state proof', (c) => c.getStateProof(contract, key));
    const out = verified(`the state proof of ${contract}/${key}`, () => verifyStateValueProof(proof, genesis, { now: new Date() }));
    const proved = out.value === null ? null : canonicalize(out.value);
    if (proved === canonicalize(result)) return { result, height: out.height };
    if (attempt >= 1) {
      throw new CliError(`the call answered ${canonicalize(result)}, but ${contract}/${key} is proved to hold ${proved ?? 'nothing'} at height ${out.height}`, EXIT.PROOF_INVALID);
    }
  }
}
