import { posix } from 'node:path';
import { POINTER_OBJECT, VERSIONS_PREFIX, VERSION_MANIFEST } from '../load/versions';
import { sh, shPath } from './node-commands';

/**
 * How the node shows the container's current version at the tutorial's path, without ever remounting:
 *
 *   <mountPoint>-store            read-only FUSE mount of the whole container (current.json, datasets/<key>/…)
 *   .<name>-view/current          symlink to <store>/datasets/<key>, replaced atomically (rename) by the runner
 *   <mountPoint>  (/mnt/object)   symlink to .<name>-view/current, made once
 *
 * A switch is one rename(2): a path opened before it keeps reading the version it opened (the previous version
 * stays in the container, --keep), a path opened after it reads the new one, and a `docker run --mount
 * source=/mnt/object` resolves the links when the container starts, so a training job never changes version
 * mid-run. The link directory belongs to the login user, so no sudo is needed to switch.
 */
export interface NodeView {
  mountPoint: string;
  /** Where the container itself is mounted. */
  store: string;
  /** The link the runner switches. */
  currentLink: string;
}

export function nodeView(mountPoint: string): NodeView {
  const dir = posix.dirname(mountPoint);
  const name = posix.basename(mountPoint);
  return { mountPoint, store: `${mountPoint}-store`, currentLink: posix.join(dir, `.${name}-view`, 'current') };
}

/** The version key in a pointer's text, checked (it becomes part of a path). */
export const POINTER_KEY_SCRIPT =
  `let t='';process.stdin.on('data',d=>t+=d).on('end',()=>{const k=JSON.parse(t).current;` +
  `if(!/^[0-9a-f]{16}$/.test(String(k)))process.exit(3);process.stdout.write(k)})`;

/**
 * Points the view at the container's current version: reads the pointer from the store itself (rclone cat, not
 * the mount, whose cached size of a rewritten object may be stale), waits until the mount lists that version,
 * switches the link, and prints `VERSION <key>` and the view's top level.
 */
export function viewSwitchCommand(
  v: NodeView,
  o: { remote: string; container: string; rcloneConfigPath: string; waitSeconds?: number },
): string {
  const store = shPath(v.store);
  const link = shPath(v.currentLink);
  const mp = shPath(v.mountPoint);
  const tries = Math.ceil((o.waitSeconds ?? 90) / 0.5);
  const manifest = `${store}/${VERSIONS_PREFIX}/"$key"/${VERSION_MANIFEST}`;
  return [
    `key=$(rclone cat ${sh(`${o.remote}:${o.container}/${POINTER_OBJECT}`)} --config ${shPath(o.rcloneConfigPath)} ` +
      `--retries 3 | node -e ${sh(POINTER_KEY_SCRIPT)})`,
    `|| { echo "no published version in ${o.container}/${POINTER_OBJECT}" >&2; exit 3; };`,
    `for i in $(seq ${tries}); do [ -f ${manifest} ] && break; sleep 0.5; done;`,
    `[ -f ${manifest} ] || { echo "version $key is not visible in ${v.store} yet" >&2; exit 4; };`,
    `mkdir -p "$(dirname ${link})" && ln -sfn ${store}/${VERSIONS_PREFIX}/"$key" ${link}.tmp-$$ && mv -Tf ${link}.tmp-$$ ${link}`,
    `&& { [ -L ${mp} ] || { rmdir ${mp} 2>/dev/null || true; ln -s ${link} ${mp}; }; }`,
    `&& echo "VERSION $key" && ls ${mp}/`,
  ].join(' ');
}
