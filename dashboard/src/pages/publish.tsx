/** The publish form: topic, payload (text, hex or base64), QoS, retain and MQTT 5 properties, sent with POST /api/v1/mqtt/publish. */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorLine } from '../ui.js';

interface Properties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: string;
  userProperties?: [string, string][];
}

/** "name=value" lines as user properties (names may repeat, order kept). */
function userPropertiesOf(text: string): [string, string][] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => {
    const eq = l.indexOf('=');
    return eq < 0 ? [l, ''] : [l.slice(0, eq).trim(), l.slice(eq + 1).trim()];
  });
}

export function PublishPage(): preact.JSX.Element {
  const [topic, setTopic] = useState('');
  const [payload, setPayload] = useState('');
  const [encoding, setEncoding] = useState<'plain' | 'hex' | 'base64'>('plain');
  const [qos, setQos] = useState<0 | 1 | 2>(0);
  const [retain, setRetain] = useState(false);
  const [contentType, setContentType] = useState('');
  const [responseTopic, setResponseTopic] = useState('');
  const [correlationData, setCorrelationData] = useState('');
  const [expiry, setExpiry] = useState('');
  const [utf8, setUtf8] = useState(false);
  const [userProps, setUserProps] = useState('');
  const [result, setResult] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const properties: Properties = {};
    if (utf8) properties.payloadFormatIndicator = true;
    if (expiry.trim() !== '') properties.messageExpiryInterval = Number(expiry);
    if (contentType !== '') properties.contentType = contentType;
    if (responseTopic !== '') properties.responseTopic = responseTopic;
    if (correlationData !== '') properties.correlationData = correlationData;
    const ups = userPropertiesOf(userProps);
    if (ups.length > 0) properties.userProperties = ups;
    setResult(undefined);
    try {
      const r = await api<{ receivers: number }>('/api/v1/mqtt/publish', {
        method: 'POST',
        body: { topic, payload, encoding, qos, retain, ...(Object.keys(properties).length > 0 ? { properties } : {}) },
      });
      setError(undefined);
      setResult(`published to ${topic}: ${r.receivers} receiver${r.receivers === 1 ? '' : 's'}`);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <form class="form" onSubmit={(e) => void submit(e)}>
      <label>Topic<input name="topic" required value={topic} onInput={(e) => setTopic(e.currentTarget.value)} /></label>
      <label>Payload<textarea name="payload" rows={4} value={payload} onInput={(e) => setPayload(e.currentTarget.value)} /></label>
      <div class="row">
        <label>Encoding
          <select name="encoding" value={encoding} onChange={(e) => setEncoding(e.currentTarget.value as 'plain' | 'hex' | 'base64')}>
            <option value="plain">text (UTF-8)</option><option value="hex">hex</option><option value="base64">base64</option>
          </select>
        </label>
        <label>QoS
          <select name="qos" value={String(qos)} onChange={(e) => setQos(Number(e.currentTarget.value) as 0 | 1 | 2)}>
            <option value="0">0</option><option value="1">1</option><option value="2">2</option>
          </select>
        </label>
        <label class="check"><input name="retain" type="checkbox" checked={retain} onChange={(e) => setRetain(e.currentTarget.checked)} />Retain</label>
      </div>
      <fieldset>
        <legend>MQTT 5 properties</legend>
        <div class="row">
          <label>Content type<input name="contentType" value={contentType} onInput={(e) => setContentType(e.currentTarget.value)} /></label>
          <label>Response topic<input name="responseTopic" value={responseTopic} onInput={(e) => setResponseTopic(e.currentTarget.value)} /></label>
        </div>
        <div class="row">
          <label>Correlation data<input name="correlationData" value={correlationData} onInput={(e) => setCorrelationData(e.currentTarget.value)} /></label>
          <label>Message expiry (s)<input name="messageExpiryInterval" type="number" min={0} value={expiry} onInput={(e) => setExpiry(e.currentTarget.value)} /></label>
          <label class="check"><input name="payloadFormatIndicator" type="checkbox" checked={utf8} onChange={(e) => setUtf8(e.currentTarget.checked)} />Payload is UTF-8</label>
        </div>
        <label>User properties (one name=value a line)
          <textarea name="userProperties" rows={3} value={userProps} onInput={(e) => setUserProps(e.currentTarget.value)} />
        </label>
      </fieldset>
      <button type="submit">Publish</button>
      {result !== undefined && <p class="ok" data-testid="publish-result">{result}</p>}
      <ErrorLine error={error} />
    </form>
  );
}
