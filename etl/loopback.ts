/**
 * A literal loopback address (127.0.0.0/8, ::1): traffic to it never leaves the machine, so no one on the
 * network can read or alter it (the tests' and the stand-ins' servers). A name such as `localhost` is not one: it
 * is resolved, and a resolver can send it anywhere.
 */
export function isLoopbackLiteral(url: URL): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(url.hostname) || url.hostname === '[::1]';
}
