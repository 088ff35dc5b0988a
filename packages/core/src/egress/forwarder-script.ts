/**
 * The forwarder: a Node.js program run in the jail's network namespace (but outside its PID and
 * mount namespaces, so nothing in the sandbox can see, signal or trace it). It listens on the
 * allowed ports of the jail's loopback and hands each connection, tagged only with the
 * allowlist index, to the relay through a unix socket; the relay alone decides where that goes,
 * so a forwarder that dies, or is replaced, can cut the sandbox's egress but never widen it.
 * It also answers DNS on 127.0.0.1:53 (allowed names only) and reports what it refuses: DNS
 * queries for other names, and connections to a listened port on an address it does not relay.
 *
 * argv: relay socket path, config JSON (forwarderConfig), jail init pid, its `pid:[...]` namespace.
 * Prints `ready` once every listener is bound; exits when the jail's init is gone.
 */
export const FORWARDER_SCRIPT = String.raw`
'use strict';
const net = require('net'), dgram = require('dgram'), fs = require('fs');
const [relay, configText, jailPid, jailNs] = process.argv.slice(1);
const config = JSON.parse(configText);
const relayed = new Map(config.listen.map((l) => [l.address + ':' + l.port, l.index]));
const report = (protocol, destination) => {
  const c = net.connect(relay);
  c.on('error', () => {});
  c.end('d ' + JSON.stringify({ protocol, destination }) + '\n');
};
const fail = (e) => { process.stdout.write('error ' + e.message + '\n'); process.exit(1); };
let pending = 0;
const bound = () => { if (--pending === 0) process.stdout.write('ready\n'); };
for (const port of new Set(config.listen.map((l) => l.port))) {
  pending++;
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const destination = client.localAddress + ':' + client.localPort;
    const index = relayed.get(destination);
    if (index === undefined) { report('tcp', destination); client.destroy(); return; }
    const up = net.connect({ path: relay, allowHalfOpen: true });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    up.write('c ' + index + '\n');
    client.pipe(up);
    up.pipe(client);
  });
  server.on('error', fail);
  server.listen(port, '0.0.0.0', bound);
}
const dns = dgram.createSocket('udp4');
dns.on('error', fail);
dns.on('message', (query, from) => {
  try {
    let at = 12;
    const labels = [];
    while (query[at] !== 0) {
      if (query[at] > 63 || labels.length > 127) return;
      labels.push(query.subarray(at + 1, at + 1 + query[at]).toString('latin1'));
      at += query[at] + 1;
    }
    const end = at + 5;
    if (end > query.length) return;
    const type = query.readUInt16BE(at + 1);
    const name = labels.join('.').toLowerCase();
    const address = Object.prototype.hasOwnProperty.call(config.names, name) ? config.names[name] : undefined;
    if (address === undefined) report('dns', name);
    const answer = address !== undefined && type === 1;
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8080 | (query.readUInt16BE(2) & 0x7900) | (address === undefined ? 5 : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answer ? 1 : 0, 6);
    const parts = [header, query.subarray(12, end)];
    if (answer) {
      const record = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
      parts.push(record, Buffer.from(address.split('.').map(Number)));
    }
    dns.send(Buffer.concat(parts), from.port, from.address);
  } catch {}
});
pending++;
dns.bind(53, '127.0.0.1', bound);
setInterval(() => {
  let ns;
  try { ns = fs.readlinkSync('/proc/' + jailPid + '/ns/pid'); } catch {}
  if (ns !== jailNs) process.exit(0);
}, 1000);
`;
