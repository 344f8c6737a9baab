import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateVirtualRoot } from '../../attestation/index.js';
import { genesisHash, parseGenesis, type Genesis } from '../../consensus/index.js';
import { CloisterClient } from '../../node/client/index.js';
import { spawnCloister, type SpawnedNode } from '../../scripts/bench/spawn-node.js';
import { ROOT, cleanupNodes, runCli, tempDir } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

const started: SpawnedNode[] = [];
afterAll(async () => {
  await Promise.all(started.map((n) => n.stop()));
  await cleanupNodes();
});

describe('cloister genesis and cloister node start', () => {
  const dir = tempDir();
  const rootFile = join(dir, 'virtual-root.json');
  writeFileSync(rootFile, JSON.stringify(generateVirtualRoot()));
  const keyFile = join(dir, 'alice.json');
  let node: { nodeId: string; voteKey: string; platform: string; measurement: string } | undefined;

  /** `cloister node init` once: the node's network key and its enclave's sealed vote key. */
  async function initNode(): Promise<NonNullable<typeof node>> {
    if (node) return node;
    const r = await runCli(['node', 'init', '--data', join(dir, 'node-a'), '--virtual-root', rootFile]);
    expect(r.code).toBe(0);
    node = JSON.parse(r.stdout) as NonNullable<typeof node>;
    return node;
  }

  async function makeGenesis(extra: string[] = []): Promise<{ code: number; stderr: string; genesis?: Genesis }> {
    const measurement = (await runCli(['enclave', 'measure'])).stdout.trim();
    const { nodeId, voteKey } = await initNode();
    const r = await runCli([
      'genesis', '--chain-id', 'test-consortium', '--member', `alice=${keyFile}`, '--node', `${nodeId}=${voteKey}`,
      '--measurement', `virtual=${measurement}`, '--virtual-root', rootFile,
      '--contract', join(ROOT, 'contracts/examples/counter'), ...extra,
    ]);
    return { code: r.code, stderr: r.stderr, ...(r.code === 0 ? { genesis: parseGenesis(JSON.parse(r.stdout)) } : {}) };
  }

  it('builds a genesis with members, nodes, measurements, policy and contracts', async () => {
    expect((await runCli(['keys', 'new', '--out', keyFile])).code).toBe(0);
    const { code, genesis } = await makeGenesis();
    expect(code).toBe(0);
    const alice = JSON.parse(readFileSync(keyFile, 'utf8')) as { publicKey: string };
    expect(genesis!.members).toEqual([{ id: 'alice', publicKey: alice.publicKey }]);
    const { nodeId, voteKey, platform, measurement } = await initNode();
    expect(nodeId).toMatch(/^12D3KooW/);
    expect(voteKey).toMatch(/^[0-9a-f]{64}$/);
    expect(platform).toBe('virtual');
    expect(genesis!.validators).toEqual([{ nodeId, voteKey }]);
    expect(genesis!.enclave.measurements).toEqual({ virtual: [measurement] });
    // Running init again keeps the node's identities.
    const again = await runCli(['node', 'init', '--data', join(dir, 'node-a'), '--virtual-root', rootFile]);
    expect(JSON.parse(again.stdout)).toEqual({ nodeId, voteKey, platform, measurement });
    expect(genesis!.contracts.map((c) => c.name)).toEqual(['counter']);
    expect(genesis!.policy).toMatchObject({ allowedPlatforms: ['virtual'], allowVirtual: true, allowDebug: false });
  });

  it('writes the same genesis for the same command run twice (no time of its own), and says its hash', async () => {
    const first = await makeGenesis();
    const second = await makeGenesis();
    expect(first.code).toBe(0);
    expect(second.genesis).toEqual(first.genesis);
    expect(first.genesis!.time).toBe(0);
    const hash = genesisHash(first.genesis!);
    expect(first.stderr).toContain(`genesis hash ${hash}`);
    // A chosen time is taken as given, and makes another chain.
    const timed = await makeGenesis(['--time', '2026-12-01T00:00:00Z']);
    expect(timed.genesis!.time).toBe(Date.parse('2026-12-01T00:00:00Z'));
    expect(genesisHash(timed.genesis!)).not.toBe(hash);
    expect((await makeGenesis(['--time', 'yesterday'])).code).not.toBe(0);
  });

  it('`cloister genesis hash FILE` prints the hash, and refuses a file that is not a genesis', async () => {
    const { genesis } = await makeGenesis();
    const file = join(dir, 'genesis-for-hash.json');
    writeFileSync(file, JSON.stringify(genesis, null, 2));
    const r = await runCli(['genesis', 'hash', file]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(genesisHash(genesis!));
    writeFileSync(join(dir, 'not-genesis.json'), '{"chainId": 5}');
    const bad = await runCli(['genesis', 'hash', join(dir, 'not-genesis.json')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/not a genesis document/);
    expect((await runCli(['genesis', 'hash', join(dir, 'missing.json')])).code).not.toBe(0);
  });

  it('refuses bad input with one clear line', async () => {
    const noNode = await runCli(['genesis', '--chain-id', 'x', '--member', `alice=${keyFile}`, '--measurement', 'virtual=' + '00'.repeat(48)]);
    expect(noNode.code).toBe(1);
    expect(noNode.stderr).toMatch(/node/);
    const badNode = await runCli(['genesis', '--chain-id', 'x', '--member', `alice=${keyFile}`, '--node', 'node-a', '--measurement', 'virtual=' + '00'.repeat(48)]);
    expect(badNode.code).toBe(1);
    expect(badNode.stderr).toMatch(/NODE_ID=ENCLAVE_VOTE_KEY/);
    const badPair = await runCli(['genesis', '--chain-id', 'x', '--member', 'alice']);
    expect(badPair.stderr).toMatch(/NAME=VALUE/);
    const badMeasurement = await makeGenesis(['--measurement', 'sgx=abcd']);
    expect(badMeasurement.code).toBe(1);
    expect(badMeasurement.stderr).toMatch(/sgx/);
  });

  it('starts a node from its config.json and commits transactions', async () => {
    const { genesis } = await makeGenesis();
    const genesisFile = join(dir, 'genesis.json');
    writeFileSync(genesisFile, JSON.stringify(genesis));
    // The config as `cloister node config` writes it: paths relative to the file, the node id from the data directory.
    const configFile = join(dir, 'config.json');
    const written = await runCli([
      'node', 'config', '--data', join(dir, 'node-a'), '--genesis', genesisFile, '--rpc-port', '0',
      '--virtual-root', rootFile, '--log-level', 'info', '--out', configFile,
    ]);
    expect(written.code, written.stderr).toBe(0);
    expect(JSON.parse(written.stdout)).toEqual({ config: configFile, nodeId: (await initNode()).nodeId });
    expect(JSON.parse(readFileSync(configFile, 'utf8'))).toMatchObject({
      dataDir: 'node-a',
      nodeId: (await initNode()).nodeId,
      genesisFile: 'genesis.json',
      rpc: { port: 0 },
      enclave: { platform: 'virtual', virtualRootFile: 'virtual-root.json' },
    });
    const node = await spawnCloister(ROOT, ['node', 'start', '--config', configFile]);
    started.push(node);
    const client = new CloisterClient(node.rpcUrl);
    expect((await client.status()).chainId).toBe('test-consortium');
    // The node's genesis hash is the file's, as `cloister genesis hash` prints it, in node_status and in its log.
    const printed = (await runCli(['genesis', 'hash', genesisFile])).stdout.trim();
    expect((await client.status()).genesisHash).toBe(printed);
    const ready = node.stderrTail().split('\n').filter((line) => line.includes('"enclave ready"'));
    expect(ready).toHaveLength(1);
    expect((JSON.parse(ready[0]!) as { genesisHash?: string }).genesisHash).toBe(printed);
    expect((await execute(client, newSigner(), 'counter', 'increment')).status).toBe('success');
  });

  it('`cloister node config` refuses what `node start` could not run, with one clear line', async () => {
    const { genesis } = await makeGenesis();
    const genesisFile = join(dir, 'genesis-config.json');
    writeFileSync(genesisFile, JSON.stringify(genesis));
    const config = (extra: string[], data = join(dir, 'node-a')) =>
      runCli(['node', 'config', '--data', data, '--genesis', genesisFile, '--out', join(dir, 'unused.json'), ...extra]);
    const cases: [string[], RegExp, string?][] = [
      [[], /no node key: run `cloister node init/, join(dir, 'no-such-node')],
      [['--rpc-port', '70000'], /--rpc-port must be a TCP port/],
      [['--log-level', 'loud'], /--log-level/],
      [['--peer', '/ip4/127.0.0.1/tcp/7002'], /ends in \/p2p\//],
      [['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--peer', `/ip4/127.0.0.1/tcp/7002/p2p/${(await initNode()).nodeId}`], /is this node itself/],
      [['--peer', '/ip4/127.0.0.1/tcp/7002/p2p/12D3KooWabc'], /--peer needs --p2p-listen/],
    ];
    for (const [extra, message, data] of cases) {
      const r = await config(extra, data);
      expect(r.code, extra.join(' ')).not.toBe(0);
      expect(r.stderr, extra.join(' ')).toMatch(message);
    }
    const badGenesis = await runCli(['node', 'config', '--data', join(dir, 'node-a'), '--genesis', join(dir, 'missing.json')]);
    expect(badGenesis.code).not.toBe(0);
    expect(badGenesis.stderr).toMatch(/genesis/);
  });

  it('`cloister contract check DIR` loads a bundle in the sandbox and names what is wrong, with the line and column', async () => {
    const ok = await runCli(['contract', 'check', '--json', join(ROOT, 'contracts/examples/counter')]);
    expect(ok.code).toBe(0);
    const measured = (await runCli(['contract', 'measure', join(ROOT, 'contracts/examples/counter')])).stdout.trim();
    expect(JSON.parse(ok.stdout)).toEqual({ name: 'counter', measurement: measured, methods: [{ name: 'increment', readonly: false }, { name: 'get', readonly: true }] });
    const bundle = join(dir, 'broken-contract');
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'manifest.json'), readFileSync(join(ROOT, 'contracts/examples/counter/manifest.json')));
    const cases: [string, RegExp][] = [
      ['export function increment() {\n  return 1 +;\n}\nexport function get() {}\n', /SyntaxError: .* at contract\.js:2:\d+/],
      ['const ready = 1;\nsetUp();\nexport function increment() {}\nexport function get() {}\n', /ReferenceError: .*setUp.* at contract\.js:2:\d+/],
      ['export function increment() {}\n', /does not export a function "get"/],
    ];
    for (const [code, message] of cases) {
      writeFileSync(join(bundle, 'contract.js'), code);
      const r = await runCli(['contract', 'check', bundle]);
      expect(r.code, code).toBe(1);
      expect(r.stderr, code).toMatch(message);
    }
    writeFileSync(join(bundle, 'manifest.json'), '{"name": "broken"');
    const manifest = await runCli(['contract', 'check', bundle]);
    expect(manifest.code).toBe(1);
    expect(manifest.stderr).toMatch(/manifest\.json/);
  });

  it('refuses a config with an unknown member or a node that is not a validator', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ dataDir: 'x', nodeId: 'node-a', genesisFile: 'genesis.json', typo: 1 }));
    const unknown = await runCli(['node', 'start', '--config', bad]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown member "typo"/);
    writeFileSync(bad, JSON.stringify({ dataDir: 'x', nodeId: 'node-z', genesisFile: 'genesis.json' }));
    const stranger = await runCli(['node', 'start', '--config', bad]);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/not a validator/);
    // A data directory whose network key is not the config's node id.
    writeFileSync(bad, JSON.stringify({ dataDir: 'x', nodeId: (await initNode()).nodeId, genesisFile: 'genesis.json', rpc: { port: 0 } }));
    const wrongKey = await runCli(['node', 'start', '--config', bad]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/not this data directory's node key/);
  });
});
