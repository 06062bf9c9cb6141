/** Built-in enhanced authentication mechanisms (MQTT 5.0 §4.12). */
export { SCRAM_SHA_256, ScramFormatError, createScramSha256, scramCredential } from './scram-sha-256.js';
export type { ScramCredential, ScramOptions } from './scram-sha-256.js';
export { ScramClient } from './scram-client.js';
export { PasswordFile, PasswordFileError, hashPassword, withEntry, withoutEntry } from './password-file.js';
