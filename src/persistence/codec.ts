/**
 * Text encodings for the parts of a stored record that have no column of their own: MQTT 5.0
 * properties (with Buffer values such as correlationData and authenticationData) and
 * subscription identifier lists. Shared by stores that keep records as rows or strings.
 *
 * Properties become JSON in which every Buffer value is `{"$b64": "<base64>"}`. No Properties
 * value is an object, so the marker cannot collide with a real value, and decoding gives back
 * equal Buffers, user property pairs in order, and every other value as it was.
 */
import { Buffer } from 'node:buffer';
import type { Properties } from '../protocol/index.js';

interface EncodedBuffer { $b64: string }

export function encodeProperties(props: Properties | undefined): string | null {
  if (props === undefined) return null;
  let copy: Record<string, unknown> | undefined;
  for (const key in props) {
    const value = props[key as keyof Properties];
    if (Buffer.isBuffer(value)) {
      copy ??= { ...props };
      copy[key] = { $b64: value.toString('base64') } satisfies EncodedBuffer;
    }
  }
  return JSON.stringify(copy ?? props);
}

export function decodeProperties(text: string | null): Properties | undefined {
  if (text === null) return undefined;
  return JSON.parse(text, reviveBuffer) as Properties;
}

function reviveBuffer(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const b64 = (value as Partial<EncodedBuffer>).$b64;
    if (typeof b64 === 'string') return Buffer.from(b64, 'base64');
  }
  return value;
}

export function encodeNumbers(list: readonly number[] | undefined): string | null {
  return list === undefined ? null : JSON.stringify(list);
}

export function decodeNumbers(text: string | null): number[] | undefined {
  return text === null ? undefined : JSON.parse(text) as number[];
}
