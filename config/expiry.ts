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

/** Months ahead beyond which an expiry is flagged: the longest lease Chameleon grants. */
export const MAX_EXPIRY_MONTHS = 6;

/**
 * Warnings (not errors) about a valid, future expiry (`expiresAt` in RFC 3339): too soon (rclone stops working
 * then), or more than MAX_EXPIRY_MONTHS ahead: the credential outlives any lease it serves, and whoever gets
 * the secret (it is in the storage state) keeps access that long.
 */
export function expiryWarnings(expiresAt: string, now: Date): string[] {
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return [];
  if ((at - now.getTime()) / 86_400_000 < 7) {
    return [`credential.expiresAt is less than 7 days away (${expiresAt}); rclone stops working then`];
  }
  const limit = new Date(now.getTime());
  limit.setUTCMonth(limit.getUTCMonth() + MAX_EXPIRY_MONTHS);
  if (at > limit.getTime()) {
    return [
      `credential.expiresAt is more than ${MAX_EXPIRY_MONTHS} months away (${expiresAt}): Chameleon leases last at most ` +
        `${MAX_EXPIRY_MONTHS} months, and the credential keeps working until then for anyone who has its secret; ` +
        `choose the end of your lease or earlier (at most ${toRfc3339(limit).slice(0, 10)}), and deploy storage again with a ` +
        `new date when you need longer`,
    ];
  }
  return [];
}
