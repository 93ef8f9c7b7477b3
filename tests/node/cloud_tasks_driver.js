// The Node.js Cloud Tasks client (@google-cloud/tasks, v2beta2) as the test suite drives it.
//
//   node cloud_tasks_driver.js grpc|rest HOST PORT
//
// It makes one CloudTasksClient, configured as a user points one at a local server: over
// gRPC with insecure channel credentials, or over the REST fallback on plain HTTP with no
// credentials. It then reads one call per line on stdin, {"method": "leaseTasks",
// "request": {...}} (the request as the client takes it: camelCase fields, bytes in
// base64), makes it, and writes one line on stdout: {"response": ...} (the object the
// client resolves with: enums as names, int64 as strings; bytes written in base64) or
// {"error": {"code": ..., "message": "..."}}, the error's code and message as the client
// reports them (over gRPC, the status code; over REST, the HTTP status and the body).
//
// Both transports get a PassThroughClient (google-auth-library's client without
// credentials): without one, the gRPC transport asks Application Default Credentials for
// its universe domain even with insecure channel credentials, and ADC probes the GCE
// metadata server. METADATA_SERVER_DETECTION=none keeps any other path from probing it.
'use strict';

process.env.METADATA_SERVER_DETECTION = 'none';

const readline = require('node:readline');
const {v2beta2} = require('@google-cloud/tasks');
const gax = require('google-gax');

const [transport, host, port] = process.argv.slice(2);
if (!['grpc', 'rest'].includes(transport) || !/^(127\.\d+\.\d+\.\d+|localhost)$/.test(host) || !/^\d+$/.test(port)) {
  process.stderr.write('usage: node cloud_tasks_driver.js grpc|rest LOOPBACK_HOST PORT\n');
  process.exit(2);
}
const authClient = new gax.googleAuthLibrary.PassThroughClient();
const options =
  transport === 'rest'
    ? {fallback: 'rest', protocol: 'http', apiEndpoint: host, port: Number(port), authClient}
    : {apiEndpoint: host, port: Number(port), sslCreds: gax.grpc.credentials.createInsecure(), authClient};
const client = new v2beta2.CloudTasksClient(options);

async function answer(line) {
  const {method, request} = JSON.parse(line);
  try {
    const [response] = await client[method](request);
    return {response};
  } catch (error) {
    return {error: {code: error.code, message: String(error.details || error.message)}};
  }
}

function bytesInBase64(key, value) {
  // `this[key]` is the value before its own toJSON, which turns a Buffer into a list.
  const raw = this[key];
  return raw instanceof Uint8Array ? Buffer.from(raw).toString('base64') : value;
}

async function main() {
  const lines = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
  for await (const line of lines) {
    if (line.trim()) {
      process.stdout.write(JSON.stringify(await answer(line), bytesInBase64) + '\n');
    }
  }
  await client.close();
}

main().catch(error => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
