/** Petrel's version, as in package.json (a unit test keeps the two equal); `$SYS/broker/version` shows it. */
export const VERSION = '0.1.0';
