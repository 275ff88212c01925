import { classifyRcloneFailure } from '../../etl/load/rclone-errors';

// A 401 with access rules on is, on Chameleon, most likely Ceph RGW refusing access-ruled credentials; the
// load cannot tell whether its credential has rules, so the hint names that cause and its fix.
describe('the 401 hint names access rules on Ceph RGW', () => {
  it.each(['HTTP Error: 401: 401 Unauthorized', 'Failed to create file system for "chi_tacc:c": Authorization Failed'])('%s', (stderr) => {
    const e = classifyRcloneFailure(stderr, 'load', 'chi_tacc');
    expect(e.message).toMatch(/refused the application credential \(401\)/);
    expect(e.hint).toMatch(
      /If credential\.accessRules is true: Chameleon's object store \(Ceph RGW\) probably refuses every request of an access-ruled credential; set credential\.accessRules: false and run npx cdktf deploy storage etl/,
    );
  });
});
