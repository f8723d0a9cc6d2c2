/** Console output for the demo: one line per happening, with the time it happened. */

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number) => (text: string) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
export const dim = paint(2);
export const bold = paint(1);
const colors = { server: paint(35), client: paint(36), chat: paint(32), ticker: paint(33), replay: paint(34), error: paint(31) };
export type Channel = keyof typeof colors;

/** `HH:MM:SS.mmm` in UTC, so runs on different machines read the same. */
export function clock(date: Date): string {
  return date.toISOString().slice(11, 23);
}

export function log(channel: Channel, message: string): void {
  console.log(`${dim(clock(new Date()))}  ${colors[channel](channel.padEnd(6))}  ${message}`);
}

export function heading(text: string): void {
  console.log(`\n${bold(text)}`);
}
