/**
 * The broken-down UTC time of a number of seconds since the Unix epoch, by
 * integer arithmetic only (the civil-from-days algorithm of Howard Hinnant's
 * "chrono-Compatible Low-Level Date Algorithms"): the engine's `localtime_r`
 * answers from it, so what a contract sees depends on the time it was given
 * and nothing of the host (no Date, no time zone).
 */
export interface UtcFields {
  seconds: number;
  minutes: number;
  hours: number;
  /** Day of the month, 1-31. */
  day: number;
  /** Month, 0-11 (as C's struct tm). */
  month: number;
  year: number;
  /** Day of the week, 0 = Sunday. */
  weekday: number;
  /** Day of the year, 0-365. */
  yearDay: number;
}

const SECONDS_PER_DAY = 86_400;
/** ECMAScript's time range (±8.64e15 ms): beyond it there is no calendar date to give. */
const MAX_ABS_SECONDS = 8.64e12;

/** The UTC fields of `secondsSinceEpoch`, or undefined when it is not an integer within ±8.64e12. */
export function utcFields(secondsSinceEpoch: number): UtcFields | undefined {
  if (!Number.isSafeInteger(secondsSinceEpoch) || Math.abs(secondsSinceEpoch) > MAX_ABS_SECONDS) return undefined;
  const days = Math.floor(secondsSinceEpoch / SECONDS_PER_DAY);
  const secondOfDay = secondsSinceEpoch - days * SECONDS_PER_DAY;
  const { year, month, day } = civilFromDays(days);
  return {
    seconds: secondOfDay % 60,
    minutes: Math.floor(secondOfDay / 60) % 60,
    hours: Math.floor(secondOfDay / 3600),
    day,
    month: month - 1,
    year,
    weekday: ((days % 7) + 11) % 7, // 1970-01-01 was a Thursday (4)
    yearDay: days - daysFromCivil(year, 1, 1),
  };
}

/** Year, month (1-12) and day (1-31) of a day count since 1970-01-01, proleptic Gregorian. */
function civilFromDays(daysSinceEpoch: number): { year: number; month: number; day: number } {
  const z = daysSinceEpoch + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097; // [0, 146096]
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100)); // [0, 365], from March 1
  const mp = Math.floor((5 * dayOfYear + 2) / 153); // [0, 11], from March
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}
