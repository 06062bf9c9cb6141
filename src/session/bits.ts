/** Flag sets kept as bits of one small integer (objects with many booleans pay 8 bytes per field). */

/** `flags` with `bit` set when `on`, cleared otherwise. */
export const withBit = (flags: number, bit: number, on: boolean): number => (on ? flags | bit : flags & ~bit);
