/*
 * The affinity token (docs/scaling.md, "Affinity"): what a load balancer can
 * hash on to send one client's polls to one instance. It is derived from the
 * client id, so tabs sharing a poll (same id) share it, and it keeps 48 of the
 * id's 128 random bits: whoever reads it in an access log still lacks 80 bits
 * of the id, which, unlike the token, is what the server keys the client's
 * state by.
 */

/** Two FNV-1a passes with different offsets, 24 bits of each: 12 hex digits. */
export function affinityToken(clientId: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < clientId.length; i++) {
    const code = clientId.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193);
    b = Math.imul(b ^ code, 0x01000193);
  }
  const hex = (n: number) => ((n >>> 8) & 0xffffff).toString(16).padStart(6, '0');
  return hex(a) + hex(b);
}

/** The poll URL with `lp_affinity` added, before any fragment. */
export function affinityUrl(url: string, clientId: string): string {
  const hash = url.indexOf('#');
  const base = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? '' : url.slice(hash);
  return `${base}${base.includes('?') ? '&' : '?'}lp_affinity=${affinityToken(clientId)}${fragment}`;
}
