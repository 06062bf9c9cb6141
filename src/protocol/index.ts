/** The MQTT 3.1 / 3.1.1 / 5.0 codec shared by broker and client. Depends on node:buffer only. */
export * from './constants.js';
export * from './reason-codes.js';
export * from './errors.js';
export * from './packets.js';
export * from './properties.js';
export * from './topic.js';
export { Decoder, decodeWhole, type DecoderOptions, type PacketSink } from './decoder.js';
export { encode } from './encoder.js';
export {
  preparePublish, stampPublish, publishWithId, type PreparedPublish, publishIdOffset, publishTemplate, type PublishTemplate,
  publishPropertiesLength, publishHeaderLength, writePublishHeader, copyBytes, isPerReceiverProperty,
} from './packets/publish.js';
export { validUtf8 } from './primitives.js';
