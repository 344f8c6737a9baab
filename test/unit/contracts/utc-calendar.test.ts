import { describe, expect, it } from 'vitest';
import { utcFields } from '../../../contracts/sandbox/utc-calendar.js';
import { prng } from '../../helpers/prng.js';

/** What ECMAScript's Date says for the same instant (the tests may use the host; the sandbox may not). */
function viaDate(seconds: number) {
  const d = new Date(seconds * 1000);
  const year = d.getUTCFullYear();
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  // From Date's month and day (its own year start may lie outside Date's range).
  const daysBefore = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][d.getUTCMonth()]! + (leap && d.getUTCMonth() > 1 ? 1 : 0);
  return {
    seconds: d.getUTCSeconds(),
    minutes: d.getUTCMinutes(),
    hours: d.getUTCHours(),
    day: d.getUTCDate(),
    month: d.getUTCMonth(),
    year,
    weekday: d.getUTCDay(),
    yearDay: daysBefore + d.getUTCDate() - 1,
  };
}

describe('utcFields (the sandbox localtime_r)', () => {
  it('agrees with Date on edges: the epoch, leap days, century rules, negative times, the ends of the range', () => {
    const edges = [
      0, -1, 59, 86_399, 86_400, 951_782_400 /* 2000-02-29 */, 4_107_542_400 /* 2100-03-01 */, -2_203_891_200 /* 1900-03-01 */,
      -62_167_219_200 /* year 0 */, 253_402_300_799 /* 9999-12-31T23:59:59 */, 8.64e12, -8.64e12,
    ];
    for (const t of edges) expect(utcFields(t), String(t)).toEqual(viaDate(t));
  });

  it('agrees with Date on 20,000 random instants across the whole range', () => {
    const random = prng(2026);
    for (let i = 0; i < 20_000; i++) {
      const t = Math.floor((random() * 2 - 1) * (i % 2 === 0 ? 8.64e12 : 4e9));
      expect(utcFields(t), String(t)).toEqual(viaDate(t));
    }
  });

  it('has no date outside the range or for a non-integer', () => {
    for (const t of [8.64e12 + 1, -8.64e12 - 1, 1.5, NaN, Infinity]) expect(utcFields(t)).toBeUndefined();
  });
});
