/** Why `dial` could not open a connection; shared by the Node.js and the browser dialer. */
export class DialError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DialError';
  }
}
