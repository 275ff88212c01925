// The transform in DuckDB (2 threads): dense ranks via DENSE_RANK, the same seeded position-based split is not
// expressible cheaply in SQL, so rows are split by a hash of their position (same cost class). Baseline only.
import { DuckDBInstance } from '@duckdb/node-api';
const [input, out] = process.argv.slice(2);
const db = await DuckDBInstance.create(':memory:', { threads: '2' });
const c = await db.connect();
await c.run(`CREATE TABLE r AS SELECT row_number() OVER () - 1 AS i, userId, movieId FROM read_csv('${input}', header=true, columns={'userId':'BIGINT','movieId':'BIGINT','rating':'DOUBLE','timestamp':'BIGINT'})`);
await c.run(`CREATE TABLE d AS SELECT i, DENSE_RANK() OVER (ORDER BY userId) AS u, DENSE_RANK() OVER (ORDER BY movieId) AS m, hash(i, 42) % 100 AS h FROM r`);
await c.run(`COPY (SELECT u, m FROM d WHERE h < 70 ORDER BY i) TO '${out}/train.txt' (HEADER false, DELIMITER '\t')`);
await c.run(`COPY (SELECT u, m FROM d WHERE h >= 70 AND h < 85 ORDER BY i) TO '${out}/val.txt' (HEADER false, DELIMITER '\t')`);
await c.run(`COPY (SELECT u, m FROM d WHERE h >= 85 ORDER BY i) TO '${out}/eval.txt' (HEADER false, DELIMITER '\t')`);
