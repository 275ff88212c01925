import { settleMs } from '../../etl/load/container-lock';

describe('how long the load lock settles before it is read back (settleMs)', () => {
  it('four times our own create, never under 200 ms', () => {
    expect(settleMs(20, 60)).toBe(200);
    expect(settleMs(49.9, 60)).toBe(200);
    expect(settleMs(80, 60)).toBe(320);
    expect(settleMs(2000, 60)).toBe(8000);
  });

  it('never more than a quarter of the lease, so the renewals still come in time', () => {
    expect(settleMs(5000, 60)).toBe(15_000);
    expect(settleMs(60_000, 60)).toBe(15_000);
    expect(settleMs(5000, 10)).toBe(2500);
  });

  it('a create time that is no time at all (clock trouble) waits the floor, not nothing', () => {
    expect(settleMs(0, 60)).toBe(200);
    expect(settleMs(-5, 60)).toBe(200);
    expect(settleMs(Number.NaN, 60)).toBe(200);
    expect(settleMs(Number.POSITIVE_INFINITY, 60)).toBe(200);
  });
});
