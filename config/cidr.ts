import { isIPv4, isIPv6 } from 'node:net';

/** A message when `value` is not a CIDR Neutron would store as given, else undefined. */
export function checkCidr(value: string): string | undefined {
  const slash = value.indexOf('/');
  if (slash < 0) {
    const suffix = isIPv6(value) ? '/128' : '/32';
    return isIPv4(value) || isIPv6(value)
      ? `"${value}" is an address, not a network; write ${value}${suffix} for that one address`
      : `"${value}" is not a CIDR such as 203.0.113.7/32`;
  }
  const addr = value.slice(0, slash);
  const prefixText = value.slice(slash + 1);
  const v6 = isIPv6(addr);
  if (!isIPv4(addr) && !v6) return `"${addr}" is not an IPv4 or IPv6 address`;
  const bits = v6 ? 128 : 32;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return `prefix "/${prefixText}" must be 0-${bits}`;
  const prefix = Number(prefixText);
  const n = v6 ? ipv6ToBigInt(addr) : ipv4ToBigInt(addr);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((n & hostMask) !== 0n) {
    const net = n & ~hostMask & ((1n << BigInt(bits)) - 1n);
    const netText = v6 ? bigIntToIpv6(net) : bigIntToIpv4(net);
    return `"${value}" has host bits set; the network is ${netText}/${prefix} (or use ${addr}/${bits} for one address)`;
  }
  return undefined;
}

function ipv4ToBigInt(a: string): bigint {
  return a.split('.').reduce((acc, part) => (acc << 8n) + BigInt(Number(part)), 0n);
}
function bigIntToIpv4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => ((n >> s) & 255n).toString()).join('.');
}
function ipv6ToBigInt(a: string): bigint {
  let text = a;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g || '0', 16)), 0n);
}
function bigIntToIpv6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups
    .join(':')
    .replace(/\b(?:0:){2,}0?/, ':')
    .replace(/:{3,}/, '::');
}
