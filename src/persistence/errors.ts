/** Why a store refused or failed a call. The broker must not acknowledge what a failed write covered. */
export type StoreErrorCode =
  /** A queue entry, inflight entry or retained topic names a message id the store does not hold. */
  | 'unknown-message'
  /** `write` or `open` after `close`. */
  | 'closed'
  /** `write` before `open`. */
  | 'not-open'
  /** The database was written by a newer Petrel: its schema version is higher than this code knows. */
  | 'schema-too-new'
  /** The underlying database failed (I/O, constraint, corruption). */
  | 'failed';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(readonly code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
