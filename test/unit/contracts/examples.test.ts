import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, type JsonValue } from '../../../consensus/index.js';
import { loadBundleFromDir, type ContractBundle } from '../../../contracts/bundle/index.js';
import { ContractRuntime, type CallOutcome, type StateAccess } from '../../../contracts/sandbox/index.js';

const EXAMPLES = join(import.meta.dirname, '../../../contracts/examples');
const GAS = 5_000_000;

const OWNER = '0a'.repeat(32);
const ALICE = 'a1'.repeat(32);
const BOB = 'b0'.repeat(32);
const CAROL = 'c0'.repeat(32);

/** One deployed contract with executor-like state: a failed call's writes are dropped. */
class Deployed {
  readonly state = new Map<string, string>();
  height = 1;

  constructor(
    private readonly runtime: ContractRuntime,
    readonly bundle: ContractBundle,
    readonly name: string,
  ) {}

  private access(pending: Map<string, string | null>): StateAccess {
    return {
      get: (key) => {
        const text = pending.has(key) ? pending.get(key) : this.state.get(key);
        return text === undefined || text === null ? null : (JSON.parse(text) as JsonValue);
      },
      set: (key, value) => void pending.set(key, canonicalize(value)),
      delete: (key) => void pending.set(key, null),
    };
  }

  private commit(outcome: CallOutcome, pending: Map<string, string | null>): CallOutcome {
    if (outcome.status === 'success') {
      for (const [key, value] of pending) {
        if (value === null) this.state.delete(key);
        else this.state.set(key, value);
      }
    }
    this.height++;
    return outcome;
  }

  private ctx(caller: string, readonly: boolean) {
    return { contract: this.name, caller, blockHeight: this.height, blockTime: 1_700_000_000_000 + this.height * 1000, readonly };
  }

  deploy(caller: string, args: JsonValue[]): CallOutcome {
    const pending = new Map<string, string | null>();
    return this.commit(this.runtime.deploy(this.bundle, args, this.ctx(caller, false), GAS, this.access(pending)), pending);
  }

  send(caller: string, method: string, ...args: JsonValue[]): CallOutcome {
    const pending = new Map<string, string | null>();
    return this.commit(this.runtime.call(this.bundle, method, args, this.ctx(caller, false), GAS, this.access(pending)), pending);
  }

  /** A query: read-only context, nothing committed. */
  query(method: string, ...args: JsonValue[]): JsonValue {
    const outcome = this.runtime.call(this.bundle, method, args, this.ctx(ALICE, true), GAS, this.access(new Map()));
    if (outcome.status !== 'success') throw new Error(`${method} failed: ${outcome.error?.code} ${outcome.error?.message}`);
    return outcome.result;
  }
}

let runtime: ContractRuntime;
const bundles: Record<string, ContractBundle> = {};

beforeAll(async () => {
  runtime = await ContractRuntime.create({ maxCachedBundles: 3 });
  for (const name of ['counter', 'token', 'analytics']) bundles[name] = await loadBundleFromDir(join(EXAMPLES, name));
});

afterAll(() => runtime?.dispose());

function expectFailure(outcome: CallOutcome, code: string, message?: RegExp): void {
  expect(outcome.status).toBe('failed');
  expect(outcome.error?.code).toBe(code);
  if (message) expect(outcome.error?.message).toMatch(message);
  expect(outcome.events).toEqual([]);
  expect(outcome.result).toBeNull();
}

describe('counter', () => {
  it('starts at 0, increments, emits and reads back', () => {
    const counter = new Deployed(runtime, bundles.counter!, 'counter');
    expect(counter.deploy(ALICE, [])).toMatchObject({ status: 'success', result: null });
    expect(counter.query('get')).toBe(0);
    const first = counter.send(ALICE, 'increment');
    expect(first).toMatchObject({ status: 'success', result: 1, events: [{ name: 'Incremented', data: { value: 1 } }] });
    expect(counter.send(BOB, 'increment').result).toBe(2);
    expect(counter.send(ALICE, 'increment').result).toBe(3);
    expect(counter.query('get')).toBe(3);
    expect(counter.state.get('value')).toBe('3');
  });

  it('cannot be incremented from a read-only context', () => {
    const counter = new Deployed(runtime, bundles.counter!, 'counter');
    const outcome = runtime.call(counter.bundle, 'increment', [], { contract: 'counter', caller: ALICE, blockHeight: 1, blockTime: 0, readonly: true }, GAS, {
      get: () => null,
      set: () => undefined,
      delete: () => undefined,
    });
    expectFailure(outcome, 'READONLY_VIOLATION');
  });

  it('uses the same gas for the same call', () => {
    const a = new Deployed(runtime, bundles.counter!, 'counter');
    const b = new Deployed(runtime, bundles.counter!, 'counter');
    expect(a.send(ALICE, 'increment')).toEqual(b.send(BOB, 'increment'));
    // the second increment reads an existing value, so it costs a little more than the first
    expect(a.send(ALICE, 'increment').gasUsed).toBeGreaterThan(b.send(ALICE, 'get').gasUsed);
  });

  it('costs exactly the pinned gas (the schedule, the engine and its fuel metering are consensus)', () => {
    const counter = new Deployed(runtime, bundles.counter!, 'counter');
    expect(counter.send(ALICE, 'increment').gasUsed).toBe(10_072);
    expect(counter.send(ALICE, 'increment').gasUsed).toBe(10_090);
    expect(counter.send(ALICE, 'get').gasUsed).toBe(6_067);
  });
});

describe('token', () => {
  function deployToken(): Deployed {
    const token = new Deployed(runtime, bundles.token!, 'usd');
    expect(token.deploy(ALICE, [OWNER]).status).toBe('success');
    return token;
  }

  it('records the owner at deployment and lets only the owner mint', () => {
    const token = deployToken();
    expect(token.query('owner')).toBe(OWNER);
    expect(token.query('totalSupply')).toBe(0);
    const minted = token.send(OWNER, 'mint', ALICE, 1000);
    expect(minted).toMatchObject({ status: 'success', result: 1000, events: [{ name: 'Minted', data: { to: ALICE, amount: 1000 } }] });
    expectFailure(token.send(ALICE, 'mint', ALICE, 5), 'CONTRACT_ERROR', /only the owner may mint/);
    expect(token.query('balanceOf', ALICE)).toBe(1000);
    expect(token.query('totalSupply')).toBe(1000);
  });

  it('costs exactly the pinned gas for a transfer (consensus, like the counter)', () => {
    const token = deployToken();
    token.send(OWNER, 'mint', ALICE, 100);
    expect(token.send(ALICE, 'transfer', BOB, 30).gasUsed).toBe(17_560);
    expect(token.send(ALICE, 'transfer', BOB, 30).gasUsed).toBe(17_578);
  });

  it('transfers between accounts and emits Transfer', () => {
    const token = deployToken();
    token.send(OWNER, 'mint', ALICE, 100);
    const moved = token.send(ALICE, 'transfer', BOB, 30);
    expect(moved).toMatchObject({
      status: 'success',
      result: true,
      events: [{ name: 'Transfer', data: { from: ALICE, to: BOB, amount: 30 } }],
    });
    expect(token.query('balanceOf', ALICE)).toBe(70);
    expect(token.query('balanceOf', BOB)).toBe(30);
    expect(token.query('balanceOf', CAROL)).toBe(0);
    // Moving everything deletes the zero balance from state.
    expect(token.send(BOB, 'transfer', CAROL, 30).status).toBe('success');
    expect(token.state.has(`balance:${BOB}`)).toBe(false);
    expect(token.query('balanceOf', CAROL)).toBe(30);
    // Self-transfer changes nothing but is recorded.
    expect(token.send(CAROL, 'transfer', CAROL, 10).events).toHaveLength(1);
    expect(token.query('balanceOf', CAROL)).toBe(30);
    expect(token.query('totalSupply')).toBe(100);
  });

  it('rejects bad transfers and leaves balances unchanged', () => {
    const token = deployToken();
    token.send(OWNER, 'mint', ALICE, 50);
    const before = new Map(token.state);
    expectFailure(token.send(ALICE, 'transfer', BOB, 51), 'CONTRACT_ERROR', /insufficient balance/);
    expectFailure(token.send(ALICE, 'transfer', BOB, 0), 'CONTRACT_ERROR', /positive safe integer/);
    expectFailure(token.send(ALICE, 'transfer', BOB, -5), 'CONTRACT_ERROR', /positive safe integer/);
    expectFailure(token.send(ALICE, 'transfer', BOB, '5'), 'CONTRACT_ERROR', /positive safe integer/);
    expectFailure(token.send(ALICE, 'transfer', 'not-an-address', 5), 'CONTRACT_ERROR', /public key/);
    expectFailure(token.send(ALICE, 'transfer', BOB.toUpperCase(), 5), 'CONTRACT_ERROR', /public key/);
    expectFailure(token.send(ALICE, 'transfer', BOB), 'CONTRACT_ERROR', /positive safe integer/);
    expectFailure(token.send(BOB, 'transfer', ALICE, 1), 'CONTRACT_ERROR', /insufficient balance/);
    expect(token.state).toEqual(before);
    // Floats never reach the contract: they are not canonical JSON.
    expectFailure(token.send(ALICE, 'transfer', BOB, 1.5), 'INVALID_ARGS');
  });

  it('guards the total supply against overflow', () => {
    const token = deployToken();
    expect(token.send(OWNER, 'mint', ALICE, Number.MAX_SAFE_INTEGER).status).toBe('success');
    expectFailure(token.send(OWNER, 'mint', BOB, 1), 'CONTRACT_ERROR', /2\^53/);
  });

  it('validates the owner at deployment, and init cannot run again', () => {
    const token = new Deployed(runtime, bundles.token!, 'usd');
    expectFailure(token.deploy(ALICE, ['nobody']), 'CONTRACT_ERROR', /owner must be/);
    const ok = deployToken();
    expectFailure(ok.send(ALICE, 'init', ALICE), 'UNKNOWN_METHOD');
    expect(ok.query('owner')).toBe(OWNER);
  });

  it('reads are read-only', () => {
    const token = deployToken();
    token.send(OWNER, 'mint', ALICE, 5);
    const outcome = token.send(ALICE, 'balanceOf', ALICE);
    expect(outcome).toMatchObject({ status: 'success', result: 5, events: [] });
  });
});

describe('analytics', () => {
  const HOSPITALS = [ALICE, BOB, CAROL];

  function deployAnalytics(): Deployed {
    const analytics = new Deployed(runtime, bundles.analytics!, 'stays');
    expect(analytics.deploy(OWNER, []).status).toBe('success');
    return analytics;
  }

  it('aggregates submissions from several parties', () => {
    const a = deployAnalytics();
    const records: [string, string, number][] = [
      [ALICE, 'cardiology', 3],
      [BOB, 'cardiology', 5],
      [CAROL, 'cardiology', 4],
      [ALICE, 'cardiology', 2],
      [BOB, 'oncology', 7],
      [BOB, 'oncology', 8],
    ];
    for (const [who, category, days] of records) {
      const outcome = a.send(who, 'submit', category, days);
      expect(outcome.status).toBe('success');
      // the event names the category only
      expect(outcome.events).toEqual([{ name: 'Submitted', data: { category } }]);
    }
    expect(a.query('stats', 'cardiology')).toEqual({ category: 'cardiology', count: 4, sum: 14, mean: '3.50' });
    expect(a.query('stats', 'oncology')).toEqual({ category: 'oncology', count: 2, sum: 15, mean: '7.50' });
    expect(a.query('stats', 'neurology')).toEqual({ category: 'neurology', count: 0, sum: 0, mean: null });
    expect(a.query('categories')).toEqual([
      { category: 'cardiology', count: 4, mean: '3.50' },
      { category: 'oncology', count: 2, mean: '7.50' },
    ]);
    expect(a.query('contributors')).toBe(HOSPITALS.length);
  });

  it('computes means with two decimals, rounding half away from zero, in integer arithmetic', () => {
    const cases: [number[], string][] = [
      [[7, 0, 0], '2.33'], // 2.333..
      [[2, 0, 0], '0.67'], // 0.666..
      [[1, 0, 0, 0, 0, 0, 0, 0], '0.13'], // 0.125 -> half up
      [[-1, 0, 0, 0, 0, 0, 0, 0], '-0.13'],
      [[-7, 0, 0], '-2.33'],
      [[-1, ...new Array<number>(249).fill(0)], '0.00'], // -0.004: never "-0.00"
      [[-1, ...new Array<number>(199).fill(0)], '-0.01'], // -0.005: half away from zero
      [[1_000_000_000, 1_000_000_000, 1], '666666667.00'],
      [[10], '10.00'],
    ];
    for (const [values, expected] of cases) {
      const a = deployAnalytics();
      for (const v of values) expect(a.send(ALICE, 'submit', 'x', v).status).toBe('success');
      const sum = values.reduce((s, v) => s + v, 0);
      expect(a.query('stats', 'x'), values.join(',')).toEqual({ category: 'x', count: values.length, sum, mean: expected });
    }
  });

  it('never reveals individual records or who submitted what', () => {
    const a = deployAnalytics();
    a.send(ALICE, 'submit', 'icu', 12);
    a.send(BOB, 'submit', 'icu', 3);
    // The manifest exposes aggregates only.
    expect(Object.keys(a.bundle.manifest.methods).sort()).toEqual(['categories', 'contributors', 'stats', 'submit']);
    const everything = JSON.stringify([a.query('stats', 'icu'), a.query('categories'), a.query('contributors')]);
    expect(everything).not.toContain(ALICE);
    expect(everything).not.toContain(BOB);
    expect(a.query('stats', 'icu')).toEqual({ category: 'icu', count: 2, sum: 15, mean: '7.50' });
    // Individual values are not even kept in state: only counts and sums.
    expect([...a.state.values()].join(' ')).not.toMatch(/\b12\b/);
  });

  it('counts distinct contributors', () => {
    const a = deployAnalytics();
    for (let i = 0; i < 3; i++) a.send(ALICE, 'submit', 'a', 1);
    a.send(BOB, 'submit', 'b', 1);
    expect(a.query('contributors')).toBe(2);
  });

  it('validates inputs', () => {
    const a = deployAnalytics();
    expectFailure(a.send(ALICE, 'submit', 'Cardiology', 1), 'CONTRACT_ERROR', /category/);
    expectFailure(a.send(ALICE, 'submit', '', 1), 'CONTRACT_ERROR', /category/);
    expectFailure(a.send(ALICE, 'submit', 'x'.repeat(65), 1), 'CONTRACT_ERROR', /category/);
    expectFailure(a.send(ALICE, 'submit', 'a', '3'), 'CONTRACT_ERROR', /integer/);
    expectFailure(a.send(ALICE, 'submit', 'a', 1_000_000_001), 'CONTRACT_ERROR', /integer/);
    expectFailure(a.send(ALICE, 'submit', 'a'), 'CONTRACT_ERROR', /integer/);
    expectFailure(a.send(ALICE, 'submit', 'a', 2.5), 'INVALID_ARGS');
    expect(() => a.query('stats', 'Bad!')).toThrow(/category/);
    expect(a.query('contributors')).toBe(0);
  });

  it('bounds the number of categories', () => {
    const a = deployAnalytics();
    for (let i = 0; i < 256; i++) expect(a.send(ALICE, 'submit', `c${i}`, i).status).toBe('success');
    expectFailure(a.send(ALICE, 'submit', 'one-too-many', 1), 'CONTRACT_ERROR', /at most 256 categories/);
    expect(a.send(BOB, 'submit', 'c7', 1).status).toBe('success'); // existing categories still accept records
    const all = a.query('categories') as { category: string }[];
    expect(all).toHaveLength(256);
    expect(all.map((c) => c.category)).toEqual([...all.map((c) => c.category)].sort());
  });
});
