import { it } from 'vitest';
import { connectAll, startCluster } from '/work/main/test/unit/node/network/helpers.js';
it('dbg', async () => {
  const c = await startCluster(2);
  const [a, b] = c.nodes;
  console.log('a<b', a!.peerId < b!.peerId);
  for (const n of c.nodes) n.on('peer:connect', (p) => console.log(Date.now() % 100000, n.peerId.slice(-4), 'connect', p.id.slice(-4)));
  const t = Date.now();
  await connectAll(c.nodes);
  console.log('mesh after', Date.now() - t);
  for (const n of c.nodes) console.log((n as any).node.getConnections().map((x: any) => [x.direction, x.remotePeer.toString().slice(-4), x.timeline]));
  await new Promise((r) => setTimeout(r, 500));
  for (const n of c.nodes) console.log((n as any).node.getConnections().map((x: any) => [x.direction, x.remotePeer.toString().slice(-4)]));
  await c.stop();
});
