/**
 * What the devnet supervisor runs for each node: `cloister node start --config
 * FILE` (the same arguments, the same program), with one more duty. The
 * node's stdin is a pipe whose other end only the supervisor holds; when it
 * closes, the supervisor is gone, however it went (even SIGKILL, which it
 * cannot catch), and the node stops as on SIGTERM. So no node outlives its devnet.
 */
import { fstatSync } from 'node:fs';

function stopWithTheSupervisor(): void {
  // Only a pipe (a socket pair, as child_process makes it) means "the supervisor": a terminal
  // would end on Ctrl-D, and a file or /dev/null at once.
  const stdin = fstatSync(0);
  if (!stdin.isFIFO() && !stdin.isSocket()) return;
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // The node's own SIGTERM handler stops it in order (before it is running, SIGTERM simply ends the process).
    process.kill(process.pid, 'SIGTERM');
  };
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.on('data', () => {}); // Nothing is ever written; reading is how EOF is seen.
  // Reading stdin must not keep the process alive: a node that fails to start still exits.
  process.stdin.unref();
}

stopWithTheSupervisor();
await import('../cli/main.js');
