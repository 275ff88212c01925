import { Worker } from 'node:worker_threads';

/**
 * SHA-256 of a file on another thread, so checksumming the input costs no time on the scanner's core. The
 * worker's source is inline (eval), so it works the same from the single-file bundle, tsx and jest.
 */
const SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const hash = require('node:crypto').createHash('sha256');
const fd = fs.openSync(workerData.path, 'r');
const buf = Buffer.allocUnsafe(8 << 20);
let n;
while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n));
fs.closeSync(fd);
parentPort.postMessage(hash.digest('hex'));
`;

export function sha256InWorker(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(SOURCE, { eval: true, workerData: { path } });
    worker.once('message', (hex: string) => resolve(hex));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`hash worker exited with ${code}`)));
  });
}
