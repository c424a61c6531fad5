// Which hosts count as internal: seed 003 refuses callbacks to them, and this service refuses media
// URLs pointing at them (a provider fetching them, or our own downloader, must not reach a private network).
import { isIP } from 'node:net';

/**
 * Internal hosts as written in a URL: loopback, private, link-local, CGNAT, benchmarking, multicast,
 * reserved and unspecified addresses, `localhost` and network-only names. The URL parser has already
 * turned `127.1`, `0x7f000001` and `0177.0.0.1` into `127.0.0.1`. Names are not resolved here.
 */
export function isInternalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  // Names that only resolve inside a network (mDNS, cloud-internal DNS such as metadata.google.internal).
  if (host.endsWith('.local') || host.endsWith('.internal')) return true;
  const family = isIP(host);
  if (family === 4) return isInternalIPv4(host);
  if (family === 6) return isInternalIPv6(host);
  return false;
}

function isInternalIPv4(address: string): boolean {
  const [a = -1, b = -1] = address.split('.').map(Number);
  return a === 0 || a === 10 || a === 127 || a >= 224
    || (a === 198 && (b === 18 || b === 19))
    || (a === 169 && b === 254)
    || (a === 172 && b >= 16 && b <= 31)
    || (a === 192 && b === 168)
    || (a === 192 && b === 0 && Number(address.split('.')[2]) === 0)
    || (a === 100 && b >= 64 && b <= 127);
}

function isInternalIPv6(address: string): boolean {
  if (address === '::' || address === '::1') return true;
  // Multicast (ff00::/8) and the deprecated site-local range (fec0::/10).
  if (/^ff[0-9a-f]{0,2}:/.test(address) || /^fe[c-f][0-9a-f]?:/.test(address)) return true;
  // Translation ranges can carry any IPv4 address, private ones included: NAT64 (64:ff9b::/96) and
  // 6to4 (2002::/16). IPv4-compatible addresses (::a.b.c.d, written ::xxxx:xxxx by the URL parser) too.
  if (address.startsWith('64:ff9b:') || address.startsWith('2002:')) return true;
  if (/^::[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(address) || /^::\d+\.\d+\.\d+\.\d+$/.test(address)) return true;
  if (/^f[cd][0-9a-f]{0,2}:/.test(address) || /^fe[89ab][0-9a-f]?:/.test(address)) return true;
  // IPv4-mapped addresses: the URL parser writes ::ffff:127.0.0.1 as ::ffff:7f00:1.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(address);
  if (mapped) {
    const high = parseInt(mapped[1] ?? '0', 16);
    const low = parseInt(mapped[2] ?? '0', 16);
    return isInternalIPv4(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`);
  }
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  return dotted?.[1] !== undefined && isInternalIPv4(dotted[1]);
}
