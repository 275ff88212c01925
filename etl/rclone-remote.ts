/**
 * The name of the rclone remote for the container in the node's rclone.conf, as in the tutorial (`[chi_tacc]`).
 * It names an rclone remote only: the clouds.yaml entry (chi.cloud) and the Terraform provider alias
 * (stacks/site-provider.ts) are other things that happen to be spelled alike.
 */
export const DEFAULT_RCLONE_REMOTE = 'chi_tacc';
