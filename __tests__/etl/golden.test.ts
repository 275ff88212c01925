import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../etl/log';
import { splitOf, splitThresholds } from '../../etl/transform/split';
import { transformStage } from '../../etl/transform/stage';

// Known answers, derived outside this code (a Python transcription of SPLIT_RULE and ids worked out by hand):
// a change to the hash or the id rule that both engines share would pass every engine-vs-engine test while
// silently changing every user's dataset. These values must then be changed on purpose, in a commit that says so.
const RULE_SPLITS: Record<number, number[]> = {
  42: [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 2, 1, 0, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  7: [0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 0, 0, 2, 0, 1, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
};

const INPUT = [
  'userId,movieId,rating,timestamp',
  '10,5,4.0,1',
  '3,9,3.5,2',
  '10,9,5.0,3',
  '7,1,1.0,4',
  '3,5,2.0,5',
  '42,1,4.5,6',
  '7,9,3.0,7',
  '10,1,2.5,8',
  '42,5,4.0,9',
  '3,1,1.5,10',
  '7,5,5.0,11',
  '42,9,0.5,12',
].join('\n');

// Seed 7: rows 4 and 10 go to validation, rows 1 and 11 to evaluation (RULE_SPLITS[7]); users 3,7,10,42 -> 1..4,
// movies 1,5,9 -> 1..3, in ascending original order.
const GOLDEN = {
  'training/g_train.txt': '3\t2\n3\t3\n2\t1\n4\t1\n2\t3\n3\t1\n4\t2\n1\t1\n',
  'validation/g_val.txt': '1\t2\n2\t2\n',
  'evaluation/g_eval.txt': '1\t3\n4\t3\n',
  'maps/users.tsv': '3\t1\n7\t2\n10\t3\n42\t4\n',
  'maps/items.tsv': '1\t1\n5\t2\n9\t3\n',
};

describe('known answers: the split rule and a whole small transform', () => {
  it.each([42, 7])('seed %i: rows 0..31 go where the published rule says', (seed) => {
    const t = splitThresholds({ train: 0.7, validation: 0.15, evaluation: 0.15 }, seed);
    expect(Array.from({ length: 32 }, (_, i) => splitOf(i, t))).toEqual(RULE_SPLITS[seed]);
  });

  it.each(['fast', 'reference'] as const)('the %s engine writes exactly the golden files', async (engine) => {
    const dir = mkdtempSync(join(tmpdir(), 'golden-'));
    writeFileSync(join(dir, 'ratings.csv'), `${INPUT}\n`);
    await transformStage.run(
      { workDir: join(dir, 'w'), force: false, log: memoryLogger() },
      { input: join(dir, 'ratings.csv'), name: 'g', seed: '7', ratios: '0.7,0.15,0.15', engine, threads: '1' },
    );
    for (const [file, text] of Object.entries(GOLDEN))
      expect([file, readFileSync(join(dir, 'w', 'output', file), 'utf8')]).toEqual([file, text]);
  });
});
