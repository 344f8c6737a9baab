import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { enclaveProgramFiles } from '../../../../node/enclave/measurement.js';
import { ROOT } from '../../../helpers/dev-node.js';

/** Every file and package the enclave worker's imports reach (static imports, dynamic imports, worker URLs). */
function importClosure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('the enclave measurement', () => {
  it('covers every file of the enclave program and every package its imports reach', () => {
    const measured = new Set(enclaveProgramFiles(ROOT).map((f) => relative(ROOT, f)));
    const { files, packages } = importClosure(join(ROOT, 'dist/contracts/enclave/worker.js'));
    for (const file of files) expect(measured.has(relative(ROOT, file)), relative(ROOT, file)).toBe(true);
    const measuredPackages = [...measured].filter((f) => f.startsWith('node_modules/')).map((f) => f.split('/').slice(1, f.split('/')[1]!.startsWith('@') ? 3 : 2).join('/'));
    for (const pkg of packages) expect(measuredPackages, `package ${pkg}`).toContain(pkg);
  });
});
