/**
 * A log-linear histogram in the manner of HdrHistogram: values below 2^SUB_BITS are counted
 * exactly; above, each power of two is split into 2^(SUB_BITS-1) equal buckets, so a reported
 * value is within 1/2^(SUB_BITS-1) of the true one. Memory is fixed (one Float64Array of a few
 * thousand counts) whatever the number of values recorded.
 */

/** Sub-bucket resolution: 8 bits, a relative error below 1/128 (0.8 %). */
const SUB_BITS = 8;
const SUB_COUNT = 1 << SUB_BITS;
const HALF = SUB_COUNT >> 1;
/** Largest value recorded exactly in its bucket; larger values are clamped to it. */
export const HISTOGRAM_MAX = 0x7fffffff;
/** Buckets: values [0, 256) one each, then 128 per power of two up to 2^31. */
const BUCKETS = SUB_COUNT + (31 - SUB_BITS + 1) * HALF;

function indexOf(v: number): number {
  if (v < SUB_COUNT) return v;
  const shift = 31 - Math.clz32(v) - (SUB_BITS - 1);
  return shift * HALF + (v >>> shift);
}

/** The lowest and highest value that fall in bucket `i`. */
function bucketRange(i: number): [number, number] {
  if (i < SUB_COUNT) return [i, i];
  const shift = ((i - SUB_COUNT) >>> (SUB_BITS - 1)) + 1;
  const sub = i - shift * HALF;
  const low = sub * 2 ** shift;
  return [low, low + 2 ** shift - 1];
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;
  #sum = 0;

  /** Records a non-negative value (rounded to an integer, clamped to HISTOGRAM_MAX). */
  record(value: number): void {
    const v = value >= HISTOGRAM_MAX ? HISTOGRAM_MAX : value > 0 ? Math.round(value) : 0;
    const i = indexOf(v);
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.count++;
    this.#sum += v;
    if (v > this.max) this.max = v;
    if (v < this.min) this.min = v;
  }

  /** Adds every count of `other`. */
  merge(other: Histogram): void {
    const from = other.#counts;
    for (let i = 0; i < BUCKETS; i++) this.#counts[i] = (this.#counts[i] as number) + (from[i] as number);
    this.count += other.count;
    this.#sum += other.#sum;
    if (other.max > this.max) this.max = other.max;
    if (other.min < this.min) this.min = other.min;
  }

  get mean(): number {
    return this.count === 0 ? 0 : this.#sum / this.count;
  }

  /**
   * The value at percentile `p` (0..100): the smallest recorded value with at least p % of the
   * values at or below it, reported as the highest value of its bucket (never above `max`).
   * 0 when nothing was recorded.
   */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i] as number;
      if (seen >= rank) return Math.min(bucketRange(i)[1], this.max);
    }
    return this.max;
  }

  /** Bytes of counts held: the same for every histogram. */
  static get bytes(): number {
    return BUCKETS * Float64Array.BYTES_PER_ELEMENT;
  }
}
