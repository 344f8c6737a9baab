/**
 * The CPU one small message costs on a libp2p connection (TCP, Noise, Yamux) between two nodes in
 * one process: a stream sends `messages` messages of `size` bytes, keeping 32 in flight, and the
 * other end answers each with 8 bytes, as a pushed batch and its acknowledgement, or a vote and
 * the votes it brings back. Both ends are in the process, so its CPU time is the whole cost.
 *
 * Measured as the libraries ship (`plain`) and as the node sets them up (`node`: Yamux window
 * updates at half the window, node/network/yamux-window.ts, and one write a frame,
 * node/network/coalesced-tcp.ts). The Yamux change patches a class for the whole process, so each
 * measurement runs in a fresh child process, the two setups alternating.
 */
import '../../node/polyfills.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLibp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { coalescedTcp } from '../../node/network/coalesced-tcp.js';
import { installYamuxWindowBatching } from '../../node/network/yamux-window.js';

export type TransportSetup = 'plain' | 'node';
const IN_FLIGHT = 32;
const PROTOCOL = '/cloister-bench/echo/1';

export interface TransportSample {
  setup: TransportSetup;
  size: number;
  messages: number;
  cpuUsPerMessage: number;
  userUsPerMessage: number;
  systemUsPerMessage: number;
  wallMs: number;
}

/** One measurement, in this process. */
async function measureHere(setup: TransportSetup, size: number, messages: number): Promise<TransportSample> {
  if (setup === 'node') installYamuxWindowBatching();
  const transport = setup === 'node' ? coalescedTcp() : tcp();
  const start = () => createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [transport], connectionEncrypters: [noise()], streamMuxers: [yamux()] });
  const [a, b] = await Promise.all([start(), start()]);
  try {
    await b.handle(PROTOCOL, (stream) => {
      stream.addEventListener('message', (e) => void stream.send(e.data.subarray(0, 8)));
    });
    const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL);
    let answered = 0;
    let sent = 0;
    const message = new Uint8Array(size);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      stream.addEventListener('message', () => {
        if (++answered >= messages) resolve();
        else pump();
      });
      stream.addEventListener('close', () => answered < messages && reject(new Error('the stream closed early')));
      const pump = (): void => {
        while (sent < messages && sent - answered < IN_FLIGHT) {
          sent++;
          if (!stream.send(message)) {
            stream.addEventListener('drain', pump, { once: true });
            return;
          }
        }
      };
      pump();
    });
    const cpu = process.cpuUsage(cpu0);
    return {
      setup,
      size,
      messages,
      cpuUsPerMessage: (cpu.user + cpu.system) / messages,
      userUsPerMessage: cpu.user / messages,
      systemUsPerMessage: cpu.system / messages,
      wallMs: performance.now() - t0,
    };
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}

/** Alternating child processes, `rounds` of each setup, for each size. */
export function measureTransport(opts: { sizes: number[]; messages: number; rounds: number; log: (line: string) => void }): TransportSample[] {
  const self = fileURLToPath(import.meta.url);
  const samples: TransportSample[] = [];
  for (const size of opts.sizes) {
    for (let round = 0; round < opts.rounds; round++) {
      for (const setup of ['plain', 'node'] as const) {
        const child = spawnSync(process.execPath, [self, setup, String(size), String(opts.messages)], { encoding: 'utf8' });
        if (child.status !== 0) throw new Error(`transport measurement (${setup}, ${size} B) failed: ${child.stderr.trim().split('\n').at(-1) ?? child.status}`);
        const sample = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as TransportSample;
        opts.log(`${setup} ${size} B: ${sample.cpuUsPerMessage.toFixed(1)} µs of CPU a message (user ${sample.userUsPerMessage.toFixed(1)}, system ${sample.systemUsPerMessage.toFixed(1)})`);
        samples.push(sample);
      }
    }
  }
  return samples;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [setup, size, messages] = process.argv.slice(2);
  if (setup !== 'plain' && setup !== 'node') throw new Error('usage: transport.js plain|node SIZE MESSAGES');
  const sample = await measureHere(setup, Number(size), Number(messages));
  process.stdout.write(JSON.stringify(sample) + '\n');
}
