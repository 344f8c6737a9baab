import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { projectRoot } from '../util/project-root.js';

/**
 * The virtual enclave's measurement: what the "hardware" hashes before it starts
 * the enclave program, the way SEV-SNP or SGX hash the pages they load.
 *
 * The program is every compiled file the enclave worker can load: the built
 * attestation/, consensus/ and contracts/ folders and the QuickJS runtime files.
 * The measurement is SHA-384 of the lines "<sha256>  <path>\n", one per file,
 * sorted by path (paths relative to the project root, with "/"). An auditor can
 * recompute it with nothing but `sha256sum` and `sha384sum`:
 *
 *   (cd dist && find attestation consensus contracts -name '*.js' ...) | sha256sum | sort -k2 | sha384sum
 */
export interface EnclaveProgramMeasurement {
  /** SHA-384, lowercase hex (48 bytes, the size of an SEV-SNP MEASUREMENT). */
  measurement: string;
  files: { path: string; sha256: string }[];
}

const PROGRAM_DIRS = ['dist/attestation', 'dist/consensus', 'dist/contracts'];
/**
 * Packages the enclave program loads (its import closure reaches them): the
 * QuickJS runtime, and jose (attestation tokens). Every file of theirs the
 * worker could load is measured, like our own.
 */
const RUNTIME_PACKAGES = ['quickjs-emscripten', 'quickjs-emscripten-core', '@jitl/quickjs-wasmfile-release-sync', '@jitl/quickjs-ffi-types', 'jose'];
const RUNTIME_EXTENSIONS = ['.js', '.mjs', '.cjs', '.wasm'];

function walk(dir: string, accept: (file: string) => boolean, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) walk(full, accept, out);
    else if (entry.isFile() && accept(full)) out.push(full);
  }
}

function packageDir(name: string, root: string): string {
  const require = createRequire(join(root, 'package.json'));
  let dir = dirname(require.resolve(name));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** Lists the enclave program's files (absolute paths), sorted by their path relative to `root`. */
export function enclaveProgramFiles(root = projectRoot(), extraDirs: string[] = []): string[] {
  const files: string[] = [];
  for (const dir of [...PROGRAM_DIRS, ...extraDirs]) {
    const full = join(root, dir);
    if (!existsSync(full) || !statSync(full).isDirectory()) {
      throw new Error(`enclave program folder ${dir} is missing: run "npm run build" first`);
    }
    walk(full, (f) => f.endsWith('.js'), files);
  }
  for (const name of RUNTIME_PACKAGES) {
    const dir = packageDir(name, root);
    walk(join(dir, 'dist'), (f) => RUNTIME_EXTENSIONS.some((ext) => f.endsWith(ext)), files);
  }
  const rel = (f: string): string => relative(root, f).split(sep).join('/');
  return files.sort((a, b) => (rel(a) < rel(b) ? -1 : rel(a) > rel(b) ? 1 : 0));
}

export function measureEnclaveProgram(root = projectRoot(), extraDirs: string[] = []): EnclaveProgramMeasurement {
  const files = enclaveProgramFiles(root, extraDirs).map((file) => ({
    path: relative(root, file).split(sep).join('/'),
    sha256: createHash('sha256').update(readFileSync(file)).digest('hex'),
  }));
  const listing = files.map((f) => `${f.sha256}  ${f.path}\n`).join('');
  return { measurement: createHash('sha384').update(listing).digest('hex'), files };
}
