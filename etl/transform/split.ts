import { EtlError } from '../errors';

export type SplitIndex = 0 | 1 | 2; // training, validation, evaluation

export interface SplitRatios {
  train: number;
  validation: number;
  evaluation: number;
}

export const DEFAULT_RATIOS: SplitRatios = { train: 0.7, validation: 0.15, evaluation: 0.15 };

/** "0.7,0.15,0.15" -> ratios; they must be non-negative and add up to 1. */
export function parseRatios(text: string): SplitRatios {
  const parts = text.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0)) {
    throw new EtlError(
      `--ratios '${text}' is not three non-negative numbers`,
      'Use e.g. --ratios 0.7,0.15,0.15 (train,validation,evaluation).',
    );
  }
  const sum = parts[0] + parts[1] + parts[2];
  if (Math.abs(sum - 1) > 1e-9) {
    throw new EtlError(
      `--ratios '${text}' add up to ${Number(sum.toFixed(6))}, not 1`,
      'Use e.g. --ratios 0.7,0.15,0.15 (train,validation,evaluation).',
    );
  }
  return { train: parts[0], validation: parts[1], evaluation: parts[2] };
}

/** Integer thresholds on a 32-bit hash: row goes to training below t1, validation below t2, else evaluation. */
export interface SplitThresholds {
  t1: number;
  t2: number;
  seedMix: number;
}

export function splitThresholds(ratios: SplitRatios, seed: number): SplitThresholds {
  const scale = 2 ** 32;
  return {
    t1: Math.min(scale, Math.round(ratios.train * scale)),
    t2: Math.min(scale, Math.round((ratios.train + ratios.validation) * scale)),
    seedMix: mix32((seed >>> 0) ^ 0x9e3779b9),
  };
}

/** murmur3's 32-bit finalizer: a bijective, well-mixed hash of a 32-bit integer. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The split of the row at `rowIndex` (0-based, over data rows). It depends only on the seed and the row's
 * position, never on chunking, threads or timing: the same input, seed and ratios give the same files
 * everywhere. (The tutorial draws unseeded `random.random()` per row.)
 */
export function splitOf(rowIndex: number, t: SplitThresholds): SplitIndex {
  // rowIndex can exceed 2^32 only beyond 4 billion rows; fold the high part in so it still mixes.
  const hi = rowIndex > 0xffffffff ? Math.floor(rowIndex / 4294967296) : 0;
  const h = mix32(mix32((rowIndex >>> 0) ^ t.seedMix) ^ hi);
  return h < t.t1 ? 0 : h < t.t2 ? 1 : 2;
}
