/** Seeded PRNG (mulberry32) so randomized router tests are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomInt(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

export function pickOne<T>(rand: () => number, items: readonly T[]): T {
  return items[randomInt(rand, items.length)] as T;
}

/** Topic levels drawn from small alphabets so random filters and topics overlap often. Includes '' and '$' levels. */
export function randomTopic(rand: () => number): string {
  const depth = 1 + randomInt(rand, 4);
  const levels: string[] = [];
  for (let i = 0; i < depth; i++) {
    const r = rand();
    if (i === 0 && r < 0.05) levels.push('$SYS');
    else if (r < 0.04) levels.push('');
    else levels.push(`l${i}x${randomInt(rand, 8)}`);
  }
  return levels.join('/');
}

/** A filter derived from a topic: some levels become '+', and the tail may become '#'. */
export function randomFilter(rand: () => number, topics: readonly string[]): string {
  const levels = pickOne(rand, topics).split('/');
  const kind = rand();
  if (kind < 0.4) return levels.join('/');
  const out = levels.map((level) => (rand() < 0.3 ? '+' : level));
  if (kind < 0.7) return out.join('/');
  const cut = randomInt(rand, out.length + 1);
  return [...out.slice(0, cut), '#'].join('/');
}
