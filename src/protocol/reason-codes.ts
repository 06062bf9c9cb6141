/** Every reason code of MQTT 5.0 §2.4, plus the MQTT 3.1.1 CONNACK return codes. */

export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  GrantedQoS0: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWillMessage: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const;
export type ReasonCodeValue = (typeof ReasonCode)[keyof typeof ReasonCode];

/** Reason codes each packet type may carry (MQTT 5.0 §2.4 table 2-6 and the per-packet sections). */
export const AllowedReasonCodes: Readonly<Record<number, ReadonlySet<number>>> = {
  2: new Set([0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f]),
  4: new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
  5: new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
  6: new Set([0x00, 0x92]),
  7: new Set([0x00, 0x92]),
  9: new Set([0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2]),
  11: new Set([0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91]),
  14: new Set([0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2]),
  15: new Set([0x00, 0x18, 0x19]),
};

/** MQTT 3.1 / 3.1.1 CONNACK return codes [MQTT-3.2.2-4]. */
export const ConnackReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const;

/** Maps a 5.0 CONNACK reason code to the nearest 3.1.1 return code. */
export function toV3ConnackCode(reasonCode: number): number {
  switch (reasonCode) {
    case 0x00: return 0;
    case 0x84: return 1;
    case 0x85: return 2;
    case 0x86: return 4;
    case 0x87: case 0x8a: case 0x8c: return 5;
    default: return 3;
  }
}

/** Maps a 3.1.1 return code to the 5.0 reason code used inside Petrel. */
export function fromV3ConnackCode(code: number): number {
  switch (code) {
    case 0: return 0x00;
    case 1: return 0x84;
    case 2: return 0x85;
    case 3: return 0x88;
    case 4: return 0x86;
    case 5: return 0x87;
    default: return 0x80;
  }
}
