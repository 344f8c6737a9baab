import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Is this TCP port free on 127.0.0.1 right now? */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A base port such that base … base+count-1 are free on 127.0.0.1 (probed, not
 * reserved). Picked below the kernel's ephemeral range, so an outgoing
 * connection cannot take one of them while a node is down and make its
 * restart fail. Used by the benchmark and the multi-node tests.
 */
export async function findFreePortRange(count: number): Promise<number> {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: keep the IANA default
  }
  const min = 12000;
  const max = Math.max(min + 1000, low - count - 1);
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = min + Math.floor(Math.random() * (max - min));
    let free = true;
    for (let p = base; p < base + count && free; p++) free = await portFree(p);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports found on 127.0.0.1`);
}
