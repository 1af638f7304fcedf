import { connect as connectTcp, isIP } from 'node:net';
import { connect as connectTls } from 'node:tls';
import mqtt, { MqttClient, type IClientOptions } from 'mqtt';

/**
 * An MQTT.js client for `url`. For `mqtt://` and `mqtts://` it is MQTT.js's client on a socket
 * built here: `mqtt.connect` loads its WebSocket transport (ws, node:http, node:https) at the
 * first connect whatever the protocol, about 1.5 MB that an idle device on a TCP broker never
 * uses. `ws://`, `wss://`, credentials in the URL and a SOCKS proxy (MQTTJS_SOCKS_PROXY) still go
 * through `mqtt.connect`, which handles them.
 */
export function connectBroker(url: string, options: IClientOptions): MqttClient {
  const parsed = new URL(url);
  const secure = parsed.protocol === 'mqtts:';
  if (
    (parsed.protocol !== 'mqtt:' && !secure) ||
    parsed.username !== '' ||
    parsed.password !== '' ||
    process.env['MQTTJS_SOCKS_PROXY']
  ) {
    return mqtt.connect(url, options);
  }
  // URL keeps an IPv6 literal's brackets; sockets want the bare address.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = parsed.port === '' ? (secure ? 8883 : 1883) : Number(parsed.port);
  const protocol = secure ? 'mqtts' : 'mqtt';
  // The client calls the builder for every (re)connect, the first one inside its constructor.
  const client = new MqttClient(
    (self) => (secure ? tlsStream(self, host, port, options.ca) : connectTcp({ host, port })),
    { ...options, protocol, host, hostname: host, port },
  );
  // As mqtt.connect does: an 'error' with no listener of the caller's must not throw.
  client.on('error', () => undefined);
  return client;
}

/** What MQTT.js's own TLS transport does: SNI for host names, verified certificates. */
function tlsStream(client: MqttClient, host: string, port: number, ca: IClientOptions['ca']) {
  const socket = connectTls({
    host,
    port,
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ...(ca !== undefined ? { ca } : {}),
    rejectUnauthorized: true,
  });
  // A handshake error reaches the client's listeners, then the socket ends (MQTT.js reconnects).
  const handshakeError = (error: Error) => {
    client.emit('error', error);
    socket.end();
  };
  socket.on('error', handshakeError);
  socket.once('secureConnect', () => socket.removeListener('error', handshakeError));
  return socket;
}
