import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ContractRuntime, bundleMeasurement, loadBundleFromDir, type ContractBundle } from '../../contracts/index.js';
import { measureEnclaveProgram } from '../enclave/measurement.js';
import { CliError } from './errors.js';

/** Registers `contract check|measure` and `enclave measure`; returns the `contract` command (governance adds deploy and upgrade to it). */
export function registerMeasureCommands(program: Command): Command {
  const contract = program.command('contract').description('contract bundles');
  contract
    .command('check <path>')
    .description('load a contract bundle in the sandbox as a chain would: manifest and code errors with their line and column')
    .option('--json', 'print {"name","measurement","methods"} as JSON when it loads', false)
    .action(async (path: string, opts: { json: boolean }) => {
      const bundle = await loadCheckedBundle(path);
      const measurement = bundleMeasurement(bundle);
      const methods = Object.entries(bundle.manifest.methods).map(([name, spec]) => ({ name, readonly: (spec as { readonly: boolean }).readonly }));
      if (opts.json) process.stdout.write(JSON.stringify({ name: bundle.manifest.name, measurement, methods }) + '\n');
      else process.stdout.write(`${bundle.manifest.name}: loads; ${methods.length} method(s) (${methods.map((m) => m.name).join(', ')}); measurement ${measurement}\n`);
    });
  contract
    .command('measure <path>')
    .description('print the measurement (SHA-256 of the canonical bundle bytes) of a contract bundle directory')
    .option('--json', 'print {"name","measurement"} as JSON', false)
    .action(async (path: string, opts: { json: boolean }) => {
      const bundle = await loadBundle(path);
      const measurement = bundleMeasurement(bundle);
      process.stdout.write(opts.json ? JSON.stringify({ name: bundle.manifest.name, measurement }) + '\n' : measurement + '\n');
    });

  program
    .command('enclave')
    .description('the enclave program')
    .command('measure')
    .description('print the measurement (SHA-384) of the enclave program, recomputable from the built files')
    .option('--json', 'print {"measurement","files"} listing every measured file', false)
    .option('--source <dir>', "another built checkout's program (its dist/ and node_modules) instead of this installation's")
    .action((opts: { json: boolean; source?: string }) => {
      let m;
      try {
        m = opts.source === undefined ? measureEnclaveProgram() : measureEnclaveProgram(resolve(opts.source));
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify({ measurement: m.measurement, files: m.files.map((f) => f.path), hashes: m.files }) + '\n');
      } else {
        process.stdout.write(m.measurement + '\n');
      }
    });
  return contract;
}

/** A bundle directory that loads in the sandbox as a chain would load it; a CliError naming the file, line and column otherwise. */
export async function loadCheckedBundle(path: string): Promise<ContractBundle> {
  const bundle = await loadBundle(path, `${path}: `);
  const runtime = await ContractRuntime.create({ maxCachedBundles: 1 });
  try {
    const problem = runtime.validate(bundle);
    if (problem) throw new CliError(`${path}: ${problem.message}`);
  } finally {
    runtime.dispose();
  }
  return bundle;
}

/** A bundle directory, or one CLI error line saying why it is not one. */
async function loadBundle(path: string, prefix = ''): Promise<ContractBundle> {
  try {
    return await loadBundleFromDir(path);
  } catch (err) {
    throw new CliError(`${prefix}${(err as Error).message}`);
  }
}
