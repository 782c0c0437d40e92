// Writes each jest run's totals, and the names of its failed tests, to tmp/test-results so the
// test command can close with them (CI keeps only the end of a long output).
const { mkdirSync, writeFileSync } = require('node:fs');
const { join, basename } = require('node:path');

class TotalsReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onRunComplete(_contexts, results) {
    const dir = join(__dirname, '..', '..', 'tmp', 'test-results');
    mkdirSync(dir, { recursive: true });
    const name = `${basename(this.rootDir)}-${process.pid}-${Date.now()}.json`;
    const failures = results.testResults.flatMap((suite) => {
      const file = suite.testFilePath.replace(`${this.rootDir}/`, '');
      const tests = suite.testResults
        .filter((test) => test.status === 'failed')
        .map((test) => `${file} › ${test.fullName}`);
      return suite.testExecError && tests.length === 0 ? [`${file} (suite failed to run)`] : tests;
    });
    writeFileSync(
      join(dir, name),
      JSON.stringify({
        rootDir: this.rootDir,
        passed: results.numPassedTests,
        failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
        skipped: results.numPendingTests + results.numTodoTests,
        failures,
      }),
    );
  }
}

module.exports = TotalsReporter;
