import { testRunPid } from '../openstack';

// Run by __tests__/infra/test-run-pid.test.ts in a jest of its own: prints which process the harness would
// register for this test run.
it('says which test run it belongs to', () => {
  console.log(`registered run pid ${testRunPid()}`);
});
