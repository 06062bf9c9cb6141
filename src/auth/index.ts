/** Built-in authentication: enhanced authentication mechanisms (MQTT 5.0 §4.12) and providers. */
export { SCRAM_SHA_256, ScramFormatError, createScramSha256, scramCredential } from './scram-sha-256.js';
export type { ScramCredential, ScramOptions } from './scram-sha-256.js';
export { ScramClient } from './scram-client.js';
export { AclCache, AclFile, AclFileError } from './acl-file.js';
export { JwtAuthError, createJwtAuth, matchesAny } from './jwt.js';
export type { JwtAuth, JwtAuthFailure, JwtAuthOptions, JwtIdentity } from './jwt.js';
export { createHttpAuth } from './http-auth.js';
export type { HttpAuth, HttpAuthOptions, HttpAuthenticateRequest, HttpAuthenticateResult, HttpAuthorizeRequest } from './http-auth.js';
export { parseAcl } from './acl.js';
export type { TopicAcl } from './acl.js';
export { PasswordFile, PasswordFileError, hashPassword, withEntry, withoutEntry } from './password-file.js';
export { AuthProviders, type AuthSetup } from './providers.js';
