import { writeFileSync } from 'node:fs';
import { parseGenesis, type JsonValue } from '../../consensus/index.js';
import { loadBundleFromDir } from '../../contracts/bundle/index.js';
import { readGenesisFile } from '../../node/dev/dev-chain.js';
import { prepareDevnet } from '../../node/devnet/prepare-devnet.js';
import { createLogger } from '../../node/log/logger.js';

/**
 * `cloister devnet` has no --contract option (`cloister dev` has): prepares a
 * fresh N-node devnet in `dataDir` exactly as the CLI does (prepareDevnet:
 * provisioned nodes, shared virtual root, member key, node configs, genesis),
 * then adds these contract bundles to its genesis, approved and deployed with
 * no init arguments, as `cloister dev --contract` does. Nothing has run on the
 * chain yet, so `cloister devnet` (without --fresh) then resumes the directory
 * and starts the nodes on this genesis. The ports given here are placeholders:
 * the devnet rewrites every node's config with the ports it is started with.
 */
export async function prepareDevnetWithContracts(dataDir: string, nodes: number, contractDirs: string[]): Promise<void> {
  const prepared = await prepareDevnet({
    nodes,
    dataDir,
    rpcBasePort: 20_000,
    p2pBasePort: 20_000 + nodes,
    fresh: true,
    now: Date.now(),
    log: createLogger({ level: 'warn', format: 'pretty' }),
  });
  const genesis = readGenesisFile(prepared.genesisFile);
  for (const dir of contractDirs) {
    const bundle = await loadBundleFromDir(dir);
    if (genesis.contracts.some((c) => c.name === bundle.manifest.name)) throw new Error(`a contract named "${bundle.manifest.name}" is already deployed`);
    genesis.contracts.push({ name: bundle.manifest.name, manifest: bundle.manifest as unknown as JsonValue, code: bundle.code, initArgs: [] });
  }
  writeFileSync(prepared.genesisFile, JSON.stringify(parseGenesis(genesis), null, 2) + '\n');
}
