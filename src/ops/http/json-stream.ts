/**
 * Large JSON answers as a stream: `head`, then the items of a list joined by commas, then
 * `tail`. Items are serialized a chunk at a time (`CHUNK_ITEMS`), only when the reader asks for
 * more, so 100,000 clients never become one string: memory stays one chunk, and a slow reader
 * holds the producer back (Readable's backpressure).
 */
import { Readable } from 'node:stream';

export const CHUNK_ITEMS = 256;

/**
 * `ids` are read in order and turned into JSON by `item`; an item that returns undefined (it went
 * away since the list was taken, e.g. a client that disconnected) is left out.
 */
export function jsonList<T>(head: string, ids: readonly T[], item: (id: T) => unknown, tail: string, chunkItems = CHUNK_ITEMS): Readable {
  let i = 0;
  let first = true;
  let started = false;
  return new Readable({
    read() {
      if (!started) {
        started = true;
        this.push(head);
        return;
      }
      let out = '';
      // Items that went away are skipped: keep reading until a chunk has something, or the list ends.
      while (out === '' && i < ids.length) {
        const end = Math.min(ids.length, i + chunkItems);
        for (; i < end; i++) {
          const value = item(ids[i] as T);
          if (value === undefined) continue;
          out += first ? JSON.stringify(value) : `,${JSON.stringify(value)}`;
          first = false;
        }
      }
      if (out !== '') {
        this.push(out);
        return;
      }
      this.push(tail);
      this.push(null);
    },
  });
}
