import type { NodeConfig } from '../config/node-config.js';
import type { Logger } from '../log/logger.js';
import type { CloisterNode } from '../node.js';

/**
 * Runs one node in this process until SIGINT or SIGTERM: starts it, prints the
 * ready line scripts wait for, reports progress once a second, and stops in
 * order. A fatal error (enclave gone, disk failing) exits with status 1.
 * `beforeReady` may refuse to go on (the node is then stopped and its error thrown).
 */
export async function runNode(config: NodeConfig, log: Logger, label: string, beforeReady?: (node: CloisterNode) => Promise<void>): Promise<void> {
  let exiting = false;
  // Loaded here, not at the top: libp2p and the rest of the node are most of the CLI's start-up time,
  // and the commands that only talk to a node or read files never need them.
  const { CloisterNode } = await import('../node.js');
  const node = new CloisterNode({
    config,
    log,
    onFatal: (err) => {
      log.error('the node cannot go on; stopping', { error: err.message });
      void node.stop().finally(() => process.exit(1));
    },
  });
  const shutdown = (signal: string): void => {
    if (exiting) return;
    exiting = true;
    log.info('stopping', { signal });
    void node.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  await node.start();
  if (beforeReady) {
    try {
      await beforeReady(node);
    } catch (err) {
      exiting = true;
      await node.stop();
      throw err;
    }
  }
  const status = node.chain.status();
  // The one line scripts and tests wait for.
  process.stdout.write(`${label} ready: JSON-RPC ${node.rpcUrl} (chain ${status.chainId}, height ${status.height})\n`);
  let lastReported = -1;
  let lastCommitAt: number | undefined;
  node.chain.onBlock((block) => {
    // `ms`: since the block before became durable here (every block counts, reported or not); absent for the first after start.
    const now = performance.now();
    const ms = lastCommitAt === undefined ? undefined : Math.round(now - lastCommitAt);
    lastCommitAt = now;
    // Report progress at most once a second under load (every block is at debug, from the chain).
    const second = Math.floor(block.header.time / 1000);
    if (second !== lastReported) {
      lastReported = second;
      log.info('committed', { height: block.header.height, txs: block.txHashes.length, mempool: node.chain.mempool.size, ...(ms === undefined ? {} : { ms }) });
    }
  });
}
