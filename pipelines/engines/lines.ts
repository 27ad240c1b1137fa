import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/**
 * Calls `fn` with each complete line a stream carries (without its newline). The line protocols
 * between de-lab processes — a supervisor's events, a child's messages, a parent's jobs — all
 * read their pipe this way; a partial last line waits for the rest.
 */
export function eachLine(stream: Readable, fn: (line: string) => void): void {
  let buf = '';
  // A chunk may end inside a multi-byte character: the decoder holds it until the rest arrives.
  const decoder = new StringDecoder('utf8');
  stream.on('data', (d: Buffer | string) => {
    buf += typeof d === 'string' ? d : decoder.write(d);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      fn(line);
    }
  });
}
