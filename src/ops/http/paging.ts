/**
 * Stable paging: items are sorted by their id (client id, topic), so a page is the same whatever
 * happened to the map's insertion order. Two ways to walk: `_page` / `_limit` (mica-mqtt's), or
 * the cursor `after` (the last id of the previous page, its `next`), which stays right when items
 * come and go between requests.
 */
import type { Readable } from 'node:stream';
import { jsonList } from './json-stream.js';

export interface PageQuery {
  _page?: number;
  _limit?: number;
  after?: string;
}

export const DEFAULT_LIMIT = 10_000;

export interface Page {
  ids: string[];
  pageNumber: number;
  pageSize: number;
  totalRow: number;
  /** The cursor of the following page; undefined on the last page. */
  next: string | undefined;
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The first index whose id sorts after `after` (binary search in sorted ids). */
function firstAfter(sorted: readonly string[], after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function pageOf(ids: string[], q: PageQuery): Page {
  const sorted = ids.sort(byCodeUnit);
  const pageSize = q._limit ?? DEFAULT_LIMIT;
  const pageNumber = q._page ?? 1;
  const start = q.after !== undefined ? firstAfter(sorted, q.after) : (pageNumber - 1) * pageSize;
  const slice = sorted.slice(start, start + pageSize);
  const next = start + pageSize < sorted.length ? slice[slice.length - 1] : undefined;
  return { ids: slice, pageNumber, pageSize, totalRow: sorted.length, next };
}

/** A page as a streamed `{ code: 1, data: { pageNumber, pageSize, totalRow, next, list: [...] } }`. */
export function pageStream(page: Page, item: (id: string) => unknown): Readable {
  const head = `{"code":1,"data":{"pageNumber":${page.pageNumber},"pageSize":${page.pageSize},"totalRow":${page.totalRow},`
    + `"next":${page.next === undefined ? 'null' : JSON.stringify(page.next)},"list":[`;
  return jsonList(head, page.ids, item, ']}}');
}
