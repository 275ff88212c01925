// The credential's expiry as a user writes it: a day (its last second, UTC) or an ISO 8601 time with a zone.
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** A Date, or a message saying what is wrong. */
export function parseExpiry(value: string): Date | string {
  let m = DATE_ONLY.exec(value);
  if (m) {
    const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, 23, 59, 59));
    return validDate(d, +m[1]!, +m[2]!, +m[3]!) ? d : `"${value}" is not a real date`;
  }
  m = DATE_TIME.exec(value);
  if (!m) return `"${value}" is not a date (YYYY-MM-DD) or an ISO 8601 time (YYYY-MM-DDTHH:MM:SSZ)`;
  if (!m[7]) return `"${value}" has no time zone; add Z for UTC (e.g. ${value}Z) or an offset such as -05:00`;
  const d = new Date(value.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  if (Number.isNaN(d.getTime()) || !validDate(new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!)), +m[1]!, +m[2]!, +m[3]!)) {
    return `"${value}" is not a real date and time`;
  }
  return d;
}

function validDate(d: Date, y: number, mo: number, day: number): boolean {
  return d.getUTCFullYear() === y && d.getUTCMonth() === mo - 1 && d.getUTCDate() === day;
}

export function toRfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
