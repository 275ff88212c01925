import { expiryWarnings, parseConfig } from '../../config';
import { NOW, rawWith } from '../infra/helpers';

// credential.expiresAt has no upper bound in Keystone; Chameleon's leases last at most 6 months, and the
// credential works for whoever holds its secret until it expires.
describe('credential.expiresAt: warnings, with the date to use', () => {
  const warningsFor = (expiresAt: string) => {
    const r = parseConfig(rawWith({ credential: { expiresAt } }), {}, NOW); // NOW = 2025-06-01T12:00:00Z
    if (!r.ok) throw new Error('config rejected');
    return r.warnings.filter((w) => w.startsWith('credential.expiresAt'));
  };

  it('more than 6 months ahead warns, naming the latest date within 6 months', () => {
    const [w] = warningsFor('2025-12-02');
    expect(w).toMatch(/credential\.expiresAt is more than 6 months away \(2025-12-02T23:59:59Z\)/);
    expect(w).toMatch(/at most 2025-12-01/);
    expect(warningsFor('2030-01-01')).toHaveLength(1);
  });

  it('within 6 months and at least 7 days: quiet', () => {
    expect(warningsFor('2025-11-30')).toEqual([]);
    expect(warningsFor('2025-12-01T12:00:00Z')).toEqual([]); // exactly 6 months
    expect(warningsFor('2025-06-09')).toEqual([]);
  });

  it('less than 7 days away still warns as before', () => {
    expect(warningsFor('2025-06-03')).toEqual([expect.stringMatching(/less than 7 days away/)]);
  });

  it('expiryWarnings is pure', () => {
    expect(expiryWarnings('2026-06-01T12:00:01Z', new Date('2025-12-01T12:00:00Z'))).toHaveLength(1);
    expect(expiryWarnings('2026-06-01T12:00:00Z', new Date('2025-12-01T12:00:00Z'))).toEqual([]);
  });
});
