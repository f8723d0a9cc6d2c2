import { randomBytes } from 'node:crypto';

/** 128 random bits: run references must not be guessable. */
export function randomId(): string {
  return randomBytes(16).toString('base64url');
}
