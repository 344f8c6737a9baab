/**
 * What the auditor's own checkout of the Cloister source says the nodes and
 * contracts should be: the enclave program's measurement (as `cloister enclave
 * measure` computes it, on that tree) and the contract bundles' measurements.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bundleMeasurement, loadBundleFromDir } from '../../contracts/index.js';
import { measureEnclaveProgram } from '../enclave/measurement.js';

/** The auditor's input cannot be used as given (a bundle that does not load, two bundles of one name). */
export class AuditInputError extends Error {
  override readonly name = 'AuditInputError';
  constructor(
    readonly code: 'BUNDLE_INVALID' | 'BUNDLE_DUPLICATE' | 'SOURCE_NOT_FOUND',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The enclave measurement of the source tree in `dir`. The measurement is of
 * the BUILT program (dir/dist/{attestation,consensus,contracts} and the
 * runtime packages in its node_modules), as a node measures what it runs: an
 * unbuilt tree gives no measurement and says what to run, never a guess.
 */
export function measureSource(dir: string): { dir: string; measurement: string | null; detail: string } {
  const root = resolve(dir);
  if (!existsSync(join(root, 'package.json'))) {
    throw new AuditInputError('SOURCE_NOT_FOUND', `--source ${dir} is not a Cloister checkout (no package.json)`);
  }
  try {
    const m = measureEnclaveProgram(root);
    return { dir: root, measurement: m.measurement, detail: `${m.files.length} files of its build (dist/) and runtime packages` };
  } catch (err) {
    const message = (err as Error).message;
    if (/is missing/.test(message)) return { dir: root, measurement: null, detail: `${message} (in ${root}: npm ci && npm run build)` };
    if ((err as { code?: unknown }).code === 'MODULE_NOT_FOUND' || /Cannot find (module|package)/.test(message)) {
      return { dir: root, measurement: null, detail: `its runtime packages are not installed (in ${root}: npm ci): ${message.split('\n')[0]}` };
    }
    return { dir: root, measurement: null, detail: message };
  }
}

/** The bundle directories under `dir`: `dir` itself when it is one (has manifest.json), else its subdirectories that are. */
function bundleDirs(dir: string): string[] {
  if (existsSync(join(dir, 'manifest.json'))) return [dir];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new AuditInputError('SOURCE_NOT_FOUND', `cannot read the contracts directory ${dir}`);
  }
  return names
    .sort()
    .map((n) => join(dir, n))
    .filter((d) => statSync(d).isDirectory() && existsSync(join(d, 'manifest.json')));
}

/**
 * The contract bundles of the sources, by the name in their manifest: the
 * source tree's contracts/examples/* and each `--contracts` directory (a
 * bundle, or a directory of bundles).
 */
export async function sourceBundles(source: string | undefined, contractDirs: readonly string[]): Promise<Map<string, { dir: string; measurement: string }>> {
  const dirs = [...(source === undefined ? [] : [join(resolve(source), 'contracts', 'examples')]), ...contractDirs.map((d) => resolve(d))];
  const bundles = new Map<string, { dir: string; measurement: string }>();
  for (const dir of dirs) {
    for (const bundleDir of bundleDirs(dir)) {
      let bundle;
      try {
        bundle = await loadBundleFromDir(bundleDir);
      } catch (err) {
        throw new AuditInputError('BUNDLE_INVALID', `${bundleDir}: ${(err as Error).message}`);
      }
      const name = bundle.manifest.name;
      const seen = bundles.get(name);
      const measurement = bundleMeasurement(bundle);
      if (seen && seen.measurement !== measurement) {
        throw new AuditInputError('BUNDLE_DUPLICATE', `two different bundles are named "${name}": ${seen.dir} and ${bundleDir}`);
      }
      if (!seen) bundles.set(name, { dir: bundleDir, measurement });
    }
  }
  return bundles;
}
