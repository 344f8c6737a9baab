import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { genesisHash, type Genesis } from '../../consensus/index.js';
import { handoverFreshness, type AdmissionClaim } from '../../contracts/index.js';
import { ChainService } from '../chain/chain-service.js';
import { systemClock } from '../chain/clock.js';
import { ConfigError, readNodeConfig } from '../config/read-config.js';
import { nodePaths, type NodeConfig } from '../config/node-config.js';
import { readGenesisFile } from '../dev/dev-chain.js';
import { createPlatform } from '../enclave/create-platform.js';
import { EnclaveHost } from '../enclave/enclave-host.js';
import { createLogger } from '../log/logger.js';
import { ChainStore } from '../storage/chain-store.js';
import { CliError, parseJsonArg, parsePositiveInt } from './errors.js';
import { EXIT } from './exit-codes.js';
import { awaitReceipt, linkTo, print } from './rpc-commands.js';

/**
 * A rolling enclave upgrade, node by node (README, Governance): once the
 * members allowed the new program's measurement, the operator
 *  1. `node successor` (with the NEW program): its enclave makes the node's
 *     successor identity (a new vote key, sealed to the new program) and
 *     evidence binding it to this node and this handover;
 *  2. stops the node and runs `node handover` (with the OLD program): the old
 *     enclave checks that evidence against the policy in force and signs the
 *     `handover` transaction with its vote key; it is sent to a running node;
 *  3. starts the node with the new program, which takes the successor
 *     identity (the old one no longer opens) and votes from the next height.
 * No key passes through the host: each enclave keeps its own.
 */

function loadConfig(file: string): { config: NodeConfig; genesis: Genesis } {
  let config: NodeConfig;
  try {
    config = readNodeConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
  try {
    return { config, genesis: readGenesisFile(config.genesisFile) };
  } catch (err) {
    throw new CliError(`genesis ${config.genesisFile}: ${(err as Error).message}`);
  }
}

/** The vote key the chain lists for this node now: from a running node's chain view, else the genesis. */
async function listedVoteKey(config: NodeConfig, genesis: Genesis, rpc: string | undefined): Promise<string> {
  const validators = rpc === undefined ? genesis.validators : (await linkTo(rpc).ask('reading the chain view', (c) => c.chainView())).validators;
  const self = validators.find((v) => v.nodeId === config.nodeId);
  if (!self) throw new CliError(`node ${config.nodeId} is not a validator${rpc === undefined ? ' in the genesis' : ''}: it has no place to hand over`);
  return self.voteKey;
}

export function registerHandoverCommands(node: Command): void {
  node
    .command('successor')
    .description("(run with the NEW program) make this node's successor enclave identity for a rolling upgrade; prints its claim for `node handover`")
    .requiredOption('--config <file>', "the node's config.json")
    .option('--rpc <url>', "a running node, to read the vote key the chain lists for this node (default: the genesis's)")
    .option('--out <file>', 'write the claim here instead of printing it')
    .action(async (opts: { config: string; rpc?: string; out?: string }) => {
      const { config, genesis } = loadConfig(opts.config);
      const fromVoteKey = await listedVoteKey(config, genesis, opts.rpc);
      const paths = nodePaths(config.dataDir);
      mkdirSync(dirname(paths.successorIdentity), { recursive: true });
      const log = createLogger({ level: 'warn', format: 'json' });
      const { platform } = createPlatform(config);
      const enclave = new EnclaveHost(platform, log, paths.successorIdentity);
      enclave.start();
      try {
        await enclave.openIdentity();
        const init = await enclave.init({ genesis, nodeId: config.nodeId, freshness: handoverFreshness(genesisHash(genesis), config.nodeId, fromVoteKey), resume: null });
        const claim: AdmissionClaim = { nodeId: config.nodeId, publicKeys: init.identity.publicKeys, evidence: init.identity.evidence };
        const out = { nodeId: config.nodeId, from: fromVoteKey, voteKey: init.identity.publicKeys['vote'], platform: init.identity.platform, measurement: init.identity.measurement, claim };
        if (opts.out !== undefined) writeFileSync(resolve(opts.out), JSON.stringify(out, null, 2) + '\n');
        else print(out);
      } finally {
        await enclave.stop();
      }
    });
  node
    .command('handover')
    .description("(run with the OLD program, the node stopped) the node's enclave hands its validator place to the successor: it checks the claim and signs the handover, which is sent to a running node")
    .requiredOption('--config <file>', "the node's config.json")
    .requiredOption('--successor <file>', 'what `node successor` printed')
    .requiredOption('--rpc <url>', 'a running node of the consortium to send the handover to')
    .option('--timeout <ms>', 'how long to wait for it to commit', parsePositiveInt, 60_000)
    .action(async (opts: { config: string; successor: string; rpc: string; timeout: number }) => {
      const { config, genesis } = loadConfig(opts.config);
      let successor: { claim?: AdmissionClaim };
      try {
        successor = parseJsonArg(readFileSync(opts.successor, 'utf8'), `--successor ${opts.successor}`) as { claim?: AdmissionClaim };
      } catch (err) {
        if (err instanceof CliError) throw err;
        throw new CliError(`--successor ${opts.successor}: ${(err as Error).message}`);
      }
      if (typeof successor?.claim !== 'object' || successor.claim === null) throw new CliError(`--successor ${opts.successor}: no "claim" (the output of \`node successor\`)`);
      const node = linkTo(opts.rpc);
      const log = createLogger({ level: 'warn', format: 'json' });
      const paths = nodePaths(config.dataDir);
      const store = new ChainStore(paths.db);
      const { platform } = createPlatform(config);
      const enclave = new EnclaveHost(platform, log, paths.sealedIdentity);
      const chain = new ChainService({ genesis, nodeId: config.nodeId, store, enclave, clock: systemClock, log, onFatal: () => {} });
      let tx;
      try {
        await store.open();
        await chain.start();
        const voteKey = chain.identity.publicKeys['vote']!;
        const nonce = await node.ask("asking for the enclave key's next nonce", (c) => c.getNonce(voteKey));
        try {
          tx = await enclave.signHandover(successor.claim, nonce);
        } catch (err) {
          throw new CliError(`the enclave refused to hand over: ${(err as Error).message}`);
        }
      } finally {
        await chain.stop();
        await enclave.stop();
        await store.close();
      }
      const hash = await node.ask('sending the handover (it may have been accepted)', (c) => c.sendTransaction(tx), EXIT.TX_OUTCOME_UNKNOWN);
      const receipt = await awaitReceipt(node, hash, opts.timeout);
      if (receipt.status !== 'success') {
        throw new CliError(`the handover was committed in block ${receipt.blockHeight} but refused: ${receipt.error?.code}: ${receipt.error?.message}`, EXIT.TX_FAILED);
      }
      print(receipt.result);
    });
}
