/**
 * Annotated byte fixtures: one or more per packet type and protocol level (3 = MQTT 3.1,
 * 4 = 3.1.1, 5 = 5.0). Every fixture is canonical: decoding `bytes` gives `packet` and encoding
 * `packet` gives exactly `bytes`. 5.0 properties appear in identifier order, which is the
 * order the encoder writes them in.
 */
import { Buffer } from 'node:buffer';
import { type Packet, PacketType } from '../../src/protocol/index.js';
import { hex } from './codec-hex.js';

export interface CodecFixture {
  name: string;
  version: 3 | 4 | 5;
  bytes: Buffer;
  packet: Packet;
}

const T = PacketType;
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

const connect: CodecFixture[] = [
  {
    name: 'CONNECT 3.1 with will, user name and password',
    version: 3,
    bytes: hex(`
      10 1e             # CONNECT, remaining length 30
      00 06 "MQIsdp"    # protocol name
      03                # protocol level 3
      ce                # flags: user name, password, will QoS 1, will, clean session
      00 3c             # keep alive 60
      00 02 "c1"        # client identifier
      00 01 "w"         # will topic
      00 03 "bye"       # will payload
      00 01 "u"         # user name
      00 01 "p"         # password
    `),
    packet: {
      type: T.Connect, protocolVersion: 3, protocolName: 'MQIsdp', clientId: 'c1', clean: true, keepalive: 60,
      username: 'u', password: b('p'), will: { topic: 'w', payload: b('bye'), qos: 1, retain: false },
    },
  },
  {
    name: 'CONNECT 3.1.1 minimal, empty client identifier',
    version: 4,
    bytes: hex(`
      10 0c             # CONNECT, remaining length 12
      00 04 "MQTT"      # protocol name
      04                # protocol level 4
      02                # flags: clean session
      00 1e             # keep alive 30
      00 00             # client identifier ""
    `),
    packet: { type: T.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: '', clean: true, keepalive: 30 },
  },
  {
    name: 'CONNECT 3.1.1 with retained QoS 2 will, user name and binary password',
    version: 4,
    bytes: hex(`
      10 34             # CONNECT, remaining length 52
      00 04 "MQTT"      # protocol name
      04                # protocol level 4
      f4                # flags: user name, password, will retain, will QoS 2, will; no clean session
      ff ff             # keep alive 65535
      00 08 "client-1"  # client identifier
      00 09 "status/c1" # will topic
      00 07 "offline"   # will payload
      00 05 "alice"     # user name
      00 03 01 02 03    # password (binary)
    `),
    packet: {
      type: T.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: 'client-1', clean: false, keepalive: 65535,
      username: 'alice', password: Buffer.from([1, 2, 3]),
      will: { topic: 'status/c1', payload: b('offline'), qos: 2, retain: true },
    },
  },
  {
    name: 'CONNECT 5.0 minimal',
    version: 5,
    bytes: hex(`
      10 0e             # CONNECT, remaining length 14
      00 04 "MQTT"      # protocol name
      05                # protocol level 5
      02                # flags: clean start
      00 3c             # keep alive 60
      00                # property length 0
      00 01 "a"         # client identifier
    `),
    packet: { type: T.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'a', clean: true, keepalive: 60 },
  },
  {
    name: 'CONNECT 5.0 with every CONNECT property and every will property',
    version: 5,
    bytes: hex(`
      10 7b             # CONNECT, remaining length 123
      00 04 "MQTT"      # protocol name
      05                # protocol level 5
      ce                # flags: user name, password, will QoS 1, will, clean start
      00 0a             # keep alive 10
      28                # property length 40
        11 00 00 0e 10      # session expiry interval 3600
        15 00 05 "SCRAM"    # authentication method
        16 00 02 01 02      # authentication data
        17 00               # request problem information 0
        19 01               # request response information 1
        21 00 64            # receive maximum 100
        22 00 0a            # topic alias maximum 10
        26 00 01 "k" 00 01 "v" # user property k=v
        27 00 10 00 00      # maximum packet size 1048576
      00 03 "dev"       # client identifier
      32                # will property length 50
        01 01               # payload format indicator 1 (UTF-8)
        02 00 00 00 3c      # message expiry interval 60
        03 00 0a "text/plain" # content type
        08 00 03 "r/t"      # response topic
        09 00 02 "id"       # correlation data
        18 00 00 00 05      # will delay interval 5
        26 00 01 "a" 00 01 "1" # user property a=1
        26 00 01 "a" 00 01 "2" # user property a=2 (repeated name, order kept)
      00 04 "dead"      # will topic
      00 01 "x"         # will payload
      00 01 "u"         # user name
      00 02 "pw"        # password
    `),
    packet: {
      type: T.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'dev', clean: true, keepalive: 10,
      username: 'u', password: b('pw'),
      properties: {
        sessionExpiryInterval: 3600, authenticationMethod: 'SCRAM', authenticationData: Buffer.from([1, 2]),
        requestProblemInformation: false, requestResponseInformation: true, receiveMaximum: 100,
        topicAliasMaximum: 10, userProperties: [['k', 'v']], maximumPacketSize: 1_048_576,
      },
      will: {
        topic: 'dead', payload: b('x'), qos: 1, retain: false,
        properties: {
          payloadFormatIndicator: true, messageExpiryInterval: 60, contentType: 'text/plain', responseTopic: 'r/t',
          correlationData: b('id'), willDelayInterval: 5, userProperties: [['a', '1'], ['a', '2']],
        },
      },
    },
  },
];

const connack: CodecFixture[] = [
  {
    name: 'CONNACK 3.1 accepted',
    version: 3,
    bytes: hex(`20 02  00  00   # CONNACK, length 2, flags 0, return code 0 (accepted)`),
    packet: { type: T.Connack, sessionPresent: false, reasonCode: 0x00 },
  },
  {
    name: 'CONNACK 3.1 identifier rejected (return code 2 = 0x85)',
    version: 3,
    bytes: hex(`20 02  00  02   # return code 2: identifier rejected`),
    packet: { type: T.Connack, sessionPresent: false, reasonCode: 0x85 },
  },
  {
    name: 'CONNACK 3.1.1 accepted with session present',
    version: 4,
    bytes: hex(`20 02  01  00   # flags: session present; return code 0`),
    packet: { type: T.Connack, sessionPresent: true, reasonCode: 0x00 },
  },
  {
    name: 'CONNACK 3.1.1 unacceptable protocol version (1 = 0x84)',
    version: 4,
    bytes: hex(`20 02  00  01   # return code 1`),
    packet: { type: T.Connack, sessionPresent: false, reasonCode: 0x84 },
  },
  {
    name: 'CONNACK 3.1.1 server unavailable (3 = 0x88)',
    version: 4,
    bytes: hex(`20 02  00  03   # return code 3`),
    packet: { type: T.Connack, sessionPresent: false, reasonCode: 0x88 },
  },
  {
    name: 'CONNACK 3.1.1 bad user name or password (4 = 0x86)',
    version: 4,
    bytes: hex(`20 02  00  04   # return code 4`),
    packet: { type: T.Connack, sessionPresent: false, reasonCode: 0x86 },
  },
  {
    name: 'CONNACK 3.1.1 not authorized (5 = 0x87)',
    version: 4,
    bytes: hex(`20 02  00  05   # return code 5`),
    packet: { type: T.Connack, sessionPresent: false, reasonCode: 0x87 },
  },
  {
    name: 'CONNACK 5.0 minimal',
    version: 5,
    bytes: hex(`20 03  00  00  00   # flags 0, reason 0x00, property length 0`),
    packet: { type: T.Connack, sessionPresent: false, reasonCode: 0x00 },
  },
  {
    name: 'CONNACK 5.0 refused, not authorized',
    version: 5,
    bytes: hex(`20 03  00  87  00   # reason 0x87`),
    packet: { type: T.Connack, sessionPresent: false, reasonCode: 0x87 },
  },
  {
    name: 'CONNACK 5.0 with every CONNACK property',
    version: 5,
    bytes: hex(`
      20 5e             # CONNACK, remaining length 94
      01                # flags: session present
      00                # reason code 0x00
      5b                # property length 91
        11 ff ff ff ff      # session expiry interval 0xFFFFFFFF
        12 00 06 "auto-1"   # assigned client identifier
        13 00 78            # server keep alive 120
        15 00 05 "SCRAM"    # authentication method
        16 00 02 0a 0b      # authentication data
        1a 00 05 "resp/"    # response information
        1c 00 0a "other:1883" # server reference
        1f 00 02 "ok"       # reason string
        21 00 14            # receive maximum 20
        22 00 05            # topic alias maximum 5
        24 01               # maximum QoS 1
        25 00               # retain available 0
        26 00 03 "srv" 00 06 "petrel" # user property
        27 00 01 00 00      # maximum packet size 65536
        28 01               # wildcard subscription available 1
        29 00               # subscription identifiers available 0
        2a 01               # shared subscription available 1
    `),
    packet: {
      type: T.Connack, sessionPresent: true, reasonCode: 0x00,
      properties: {
        sessionExpiryInterval: 0xffffffff, assignedClientIdentifier: 'auto-1', serverKeepAlive: 120,
        authenticationMethod: 'SCRAM', authenticationData: Buffer.from([0x0a, 0x0b]), responseInformation: 'resp/',
        serverReference: 'other:1883', reasonString: 'ok', receiveMaximum: 20, topicAliasMaximum: 5, maximumQoS: 1,
        retainAvailable: false, userProperties: [['srv', 'petrel']], maximumPacketSize: 65536,
        wildcardSubscriptionAvailable: true, subscriptionIdentifierAvailable: false, sharedSubscriptionAvailable: true,
      },
    },
  },
];

const publish: CodecFixture[] = [
  {
    name: 'PUBLISH 3.1 QoS 0',
    version: 3,
    bytes: hex(`
      30 0a             # PUBLISH QoS 0, remaining length 10
      00 03 "a/b"       # topic name
      "hello"           # payload
    `),
    packet: { type: T.Publish, topic: 'a/b', payload: b('hello'), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 3.1.1 QoS 1 with DUP and RETAIN',
    version: 4,
    bytes: hex(`
      3b 07             # PUBLISH DUP=1 QoS=1 RETAIN=1, remaining length 7
      00 01 "t"         # topic name
      00 07             # packet identifier 7
      "hi"              # payload
    `),
    packet: { type: T.Publish, topic: 't', payload: b('hi'), qos: 1, retain: true, dup: true, packetId: 7 },
  },
  {
    name: 'PUBLISH 3.1.1 QoS 2, empty payload, packet identifier 65535',
    version: 4,
    bytes: hex(`
      34 09             # PUBLISH QoS 2, remaining length 9
      00 05 "x/y/z"     # topic name
      ff ff             # packet identifier 65535
    `),
    packet: { type: T.Publish, topic: 'x/y/z', payload: Buffer.alloc(0), qos: 2, retain: false, dup: false, packetId: 65535 },
  },
  {
    name: 'PUBLISH 3.1.1 with a multi-byte UTF-8 topic',
    version: 4,
    bytes: hex(`
      30 14             # PUBLISH QoS 0, remaining length 20
      00 10 "température/€" # topic name: 16 bytes of UTF-8
      "21"              # payload
    `),
    packet: { type: T.Publish, topic: 'température/€', payload: b('21'), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 3.1.1 with a two-byte remaining length',
    version: 4,
    bytes: Buffer.concat([hex(`
      30 cb 01          # PUBLISH QoS 0, remaining length 203 (0xcb 0x01)
      00 01 "t"         # topic name
    `), Buffer.alloc(200, 0x61)]),  // payload: 200 x "a"
    packet: { type: T.Publish, topic: 't', payload: Buffer.alloc(200, 0x61), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 5.0 QoS 0 without properties',
    version: 5,
    bytes: hex(`
      30 0d             # PUBLISH QoS 0, remaining length 13
      00 03 "a/b"       # topic name
      00                # property length 0
      "payload"         # payload
    `),
    packet: { type: T.Publish, topic: 'a/b', payload: b('payload'), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBLISH 5.0 QoS 1 with every PUBLISH property',
    version: 5,
    bytes: hex(`
      32 43             # PUBLISH QoS 1, remaining length 67
      00 03 "s/1"       # topic name
      00 2a             # packet identifier 42
      38                # property length 56
        01 01               # payload format indicator 1
        02 00 00 0e 10      # message expiry interval 3600
        03 00 10 "application/json" # content type
        08 00 05 "reply"    # response topic
        09 00 04 de ad be ef # correlation data
        0b 05               # subscription identifier 5
        0b 80 01            # subscription identifier 128 (two-byte varint)
        23 00 03            # topic alias 3
        26 00 01 "a" 00 01 "b" # user property a=b
      "v=1"             # payload
    `),
    packet: {
      type: T.Publish, topic: 's/1', payload: b('v=1'), qos: 1, retain: false, dup: false, packetId: 42,
      properties: {
        payloadFormatIndicator: true, messageExpiryInterval: 3600, contentType: 'application/json', responseTopic: 'reply',
        correlationData: Buffer.from([0xde, 0xad, 0xbe, 0xef]), subscriptionIdentifiers: [5, 128], topicAlias: 3,
        userProperties: [['a', 'b']],
      },
    },
  },
  {
    name: 'PUBLISH 5.0 empty topic name with a topic alias',
    version: 5,
    bytes: hex(`
      30 07             # PUBLISH QoS 0, remaining length 7
      00 00             # topic name "" (replaced by the alias)
      03                # property length 3
        23 00 01            # topic alias 1
      "x"               # payload
    `),
    packet: { type: T.Publish, topic: '', payload: b('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } },
  },
  {
    name: 'PUBLISH 5.0 QoS 2 retained, empty payload',
    version: 5,
    bytes: hex(`
      35 06             # PUBLISH QoS 2 RETAIN, remaining length 6
      00 01 "q"         # topic name
      00 01             # packet identifier 1
      00                # property length 0
    `),
    packet: { type: T.Publish, topic: 'q', payload: Buffer.alloc(0), qos: 2, retain: true, dup: false, packetId: 1 },
  },
];

type AckType = typeof T.Puback | typeof T.Pubrec | typeof T.Pubrel | typeof T.Pubcomp;

/** PUBACK, PUBREC, PUBREL and PUBCOMP share one layout; PUBREL's fixed header flags are 0010. */
function acks(name: string, type: AckType, first: string, code: string, full: number): CodecFixture[] {
  const codeByte = parseInt(code, 16);
  return [
    { name: `${name} 3.1`, version: 3, bytes: hex(`${first} 02  00 01   # packet identifier 1`), packet: { type, packetId: 1 } },
    { name: `${name} 3.1.1`, version: 4, bytes: hex(`${first} 02  12 34   # packet identifier 0x1234`), packet: { type, packetId: 0x1234 } },
    {
      name: `${name} 5.0 short form (reason 0x00, no properties)`,
      version: 5,
      bytes: hex(`${first} 02  00 05   # packet identifier 5; reason code omitted`),
      packet: { type, packetId: 5 },
    },
    {
      name: `${name} 5.0 reason code only`,
      version: 5,
      bytes: hex(`${first} 03  00 05  ${code}   # packet identifier 5, reason code, no property length`),
      packet: { type, packetId: 5, reasonCode: codeByte },
    },
    {
      name: `${name} 5.0 with reason string and user property`,
      version: 5,
      bytes: hex(`
        ${first} 11       # remaining length 17
        00 06             # packet identifier 6
        ${full.toString(16).padStart(2, '0')}  # reason code
        0d                # property length 13
          1f 00 03 "why"      # reason string
          26 00 01 "k" 00 01 "v" # user property
      `),
      packet: { type, packetId: 6, reasonCode: full, properties: { reasonString: 'why', userProperties: [['k', 'v']] } },
    },
  ];
}

const subscribe: CodecFixture[] = [
  {
    name: 'SUBSCRIBE 3.1',
    version: 3,
    bytes: hex(`
      82 08             # SUBSCRIBE (flags 0010), remaining length 8
      00 01             # packet identifier 1
      00 03 "a/b" 01    # filter a/b, QoS 1
    `),
    packet: { type: T.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'a/b', qos: 1 }] },
  },
  {
    name: 'SUBSCRIBE 3.1.1 with two filters',
    version: 4,
    bytes: hex(`
      82 1b             # SUBSCRIBE, remaining length 27
      00 0a             # packet identifier 10
      00 0d "sport/+/score" 00  # QoS 0
      00 06 "$SYS/#" 02         # QoS 2
    `),
    packet: {
      type: T.Subscribe, packetId: 10,
      subscriptions: [{ topicFilter: 'sport/+/score', qos: 0 }, { topicFilter: '$SYS/#', qos: 2 }],
    },
  },
  {
    name: 'SUBSCRIBE 5.0 with subscription identifier, user property and subscription options',
    version: 5,
    bytes: hex(`
      82 22             # SUBSCRIBE, remaining length 34
      00 02             # packet identifier 2
      0a                # property length 10
        0b 81 01            # subscription identifier 129
        26 00 01 "k" 00 01 "v" # user property
      00 03 "a/#" 2d    # options: retain handling 2, retain as published, no local, QoS 1
      00 0c "$share/g/x/+" 12 # options: retain handling 1, QoS 2
    `),
    packet: {
      type: T.Subscribe, packetId: 2,
      properties: { subscriptionIdentifiers: [129], userProperties: [['k', 'v']] },
      subscriptions: [
        { topicFilter: 'a/#', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 },
        { topicFilter: '$share/g/x/+', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 1 },
      ],
    },
  },
];

const suback: CodecFixture[] = [
  {
    name: 'SUBACK 3.1',
    version: 3,
    bytes: hex(`90 03  00 01  01   # packet identifier 1, granted QoS 1`),
    packet: { type: T.Suback, packetId: 1, reasonCodes: [1] },
  },
  {
    name: 'SUBACK 3.1.1 with every return code',
    version: 4,
    bytes: hex(`
      90 06             # SUBACK, remaining length 6
      00 0a             # packet identifier 10
      00 01 02 80       # granted QoS 0, 1, 2 and failure
    `),
    packet: { type: T.Suback, packetId: 10, reasonCodes: [0, 1, 2, 0x80] },
  },
  {
    name: 'SUBACK 5.0 with reason string',
    version: 5,
    bytes: hex(`
      90 0e             # SUBACK, remaining length 14
      00 0b             # packet identifier 11
      04                # property length 4
        1f 00 01 "x"        # reason string
      00 01 02 87 9e a1 a2 # reason codes
    `),
    packet: { type: T.Suback, packetId: 11, properties: { reasonString: 'x' }, reasonCodes: [0, 1, 2, 0x87, 0x9e, 0xa1, 0xa2] },
  },
];

const unsubscribe: CodecFixture[] = [
  {
    name: 'UNSUBSCRIBE 3.1',
    version: 3,
    bytes: hex(`a2 05  00 01  00 01 "a"   # packet identifier 1, filter a`),
    packet: { type: T.Unsubscribe, packetId: 1, topicFilters: ['a'] },
  },
  {
    name: 'UNSUBSCRIBE 3.1.1 with two filters',
    version: 4,
    bytes: hex(`
      a2 0c             # UNSUBSCRIBE (flags 0010), remaining length 12
      00 0b             # packet identifier 11
      00 03 "a/+"       # filter
      00 03 "b/#"       # filter
    `),
    packet: { type: T.Unsubscribe, packetId: 11, topicFilters: ['a/+', 'b/#'] },
  },
  {
    name: 'UNSUBSCRIBE 5.0 with user property',
    version: 5,
    bytes: hex(`
      a2 0d             # UNSUBSCRIBE, remaining length 13
      00 0c             # packet identifier 12
      07                # property length 7
        26 00 01 "k" 00 01 "v" # user property
      00 01 "x"         # filter
    `),
    packet: { type: T.Unsubscribe, packetId: 12, properties: { userProperties: [['k', 'v']] }, topicFilters: ['x'] },
  },
];

const unsuback: CodecFixture[] = [
  { name: 'UNSUBACK 3.1', version: 3, bytes: hex(`b0 02  00 01   # packet identifier 1`), packet: { type: T.Unsuback, packetId: 1 } },
  { name: 'UNSUBACK 3.1.1', version: 4, bytes: hex(`b0 02  ff fe   # packet identifier 65534`), packet: { type: T.Unsuback, packetId: 65534 } },
  {
    name: 'UNSUBACK 5.0 minimal',
    version: 5,
    bytes: hex(`b0 04  00 03  00  00   # packet identifier 3, property length 0, reason 0x00`),
    packet: { type: T.Unsuback, packetId: 3, reasonCodes: [0] },
  },
  {
    name: 'UNSUBACK 5.0 with reason string and several codes',
    version: 5,
    bytes: hex(`
      b0 0c             # UNSUBACK, remaining length 12
      00 03             # packet identifier 3
      05                # property length 5
        1f 00 02 "no"       # reason string
      00 11 87 8f       # reason codes
    `),
    packet: { type: T.Unsuback, packetId: 3, properties: { reasonString: 'no' }, reasonCodes: [0x00, 0x11, 0x87, 0x8f] },
  },
];

const pings: CodecFixture[] = ([3, 4, 5] as const).flatMap((version) => [
  { name: `PINGREQ ${version}`, version, bytes: hex(`c0 00   # PINGREQ`), packet: { type: T.Pingreq } },
  { name: `PINGRESP ${version}`, version, bytes: hex(`d0 00   # PINGRESP`), packet: { type: T.Pingresp } },
]);

const disconnect: CodecFixture[] = [
  { name: 'DISCONNECT 3.1', version: 3, bytes: hex(`e0 00`), packet: { type: T.Disconnect } },
  { name: 'DISCONNECT 3.1.1', version: 4, bytes: hex(`e0 00`), packet: { type: T.Disconnect } },
  { name: 'DISCONNECT 5.0 empty (normal disconnection)', version: 5, bytes: hex(`e0 00   # remaining length 0 means reason 0x00`), packet: { type: T.Disconnect } },
  {
    name: 'DISCONNECT 5.0 reason code only',
    version: 5,
    bytes: hex(`e0 01  04   # disconnect with will message`),
    packet: { type: T.Disconnect, reasonCode: 0x04 },
  },
  {
    name: 'DISCONNECT 5.0 with every DISCONNECT property',
    version: 5,
    bytes: hex(`
      e0 1e             # DISCONNECT, remaining length 30
      9c                # reason 0x9c use another server
      1c                # property length 28
        11 00 00 00 00      # session expiry interval 0
        1c 00 06 "host:1"   # server reference
        1f 00 04 "move"     # reason string
        26 00 01 "k" 00 01 "v" # user property
    `),
    packet: {
      type: T.Disconnect, reasonCode: 0x9c,
      properties: { sessionExpiryInterval: 0, serverReference: 'host:1', reasonString: 'move', userProperties: [['k', 'v']] },
    },
  },
];

const auth: CodecFixture[] = [
  { name: 'AUTH 5.0 empty (success)', version: 5, bytes: hex(`f0 00   # remaining length 0 means reason 0x00`), packet: { type: T.Auth } },
  { name: 'AUTH 5.0 re-authenticate, reason code only', version: 5, bytes: hex(`f0 01  19`), packet: { type: T.Auth, reasonCode: 0x19 } },
  {
    name: 'AUTH 5.0 continue authentication with every AUTH property',
    version: 5,
    bytes: hex(`
      f0 1e             # AUTH, remaining length 30
      18                # reason 0x18 continue authentication
      1c                # property length 28
        15 00 05 "SCRAM"    # authentication method
        16 00 03 01 02 03   # authentication data
        1f 00 04 "more"     # reason string
        26 00 01 "k" 00 01 "v" # user property
    `),
    packet: {
      type: T.Auth, reasonCode: 0x18,
      properties: { authenticationMethod: 'SCRAM', authenticationData: Buffer.from([1, 2, 3]), reasonString: 'more', userProperties: [['k', 'v']] },
    },
  },
];

export const fixtures: readonly CodecFixture[] = [
  ...connect,
  ...connack,
  ...publish,
  ...acks('PUBACK', T.Puback, '40', '10', 0x97),
  ...acks('PUBREC', T.Pubrec, '50', '10', 0x80),
  ...acks('PUBREL', T.Pubrel, '62', '92', 0x92),
  ...acks('PUBCOMP', T.Pubcomp, '70', '92', 0x00),
  ...subscribe,
  ...suback,
  ...unsubscribe,
  ...unsuback,
  ...pings,
  ...disconnect,
  ...auth,
];
