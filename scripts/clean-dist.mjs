// Removes dist/ before a build so no stale compiled file survives: the enclave
// measurement hashes compiled files, and a leftover one would change it.
import { rmSync } from 'node:fs';
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
