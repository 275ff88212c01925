// Prints one plain closing line ("tests: N passed, N failed, N skipped") that any CI log reader understands,
// whatever jest's own summary looks like.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests: passed, numFailedTests: failed, numPendingTests: skipped } = results;
    const suitesFailed = results.numFailedTestSuites + results.numRuntimeErrorTestSuites;
    const extra = suitesFailed ? ` (${suitesFailed} suites failed to run)` : '';
    process.stdout.write(`\ntests: ${passed} passed, ${failed + (suitesFailed && !failed ? suitesFailed : 0)} failed, ${skipped} skipped${extra}\n`);
  }
}
module.exports = SummaryReporter;
