/** `/api/trpc/` → `api/trpc`, as tRPC compares endpoints. */
export function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

/** The poll endpoint is the tRPC endpoint itself: no procedure path can be empty. */
export function isPollPath(pathname: string, endpoint: string): boolean {
  return trimSlashes(pathname) === trimSlashes(endpoint);
}

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The poll body is larger than ${limit} bytes`);
  }
}

/** Reads UTF-8 chunks, giving up as soon as the limit is passed. */
export async function readLimited(chunks: AsyncIterable<Uint8Array | string>, limit: number): Promise<string> {
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for await (const chunk of chunks) {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
    size += bytes.byteLength;
    if (size > limit) throw new BodyTooLargeError(limit);
    text += decoder.decode(bytes, { stream: true });
  }
  return text + decoder.decode();
}
