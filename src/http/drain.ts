import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Shutdown without waiting on connections that never sent a byte. HTTP clients open spare
 * connections (undici does when every one is busy) and may never use them; Node's close() closes
 * idle keep-alive connections but counts a connection with no request yet as one whose headers
 * are still due, so close() waited for headersTimeout (60 s) on each: SIGTERM took a minute.
 * Connections with a request in progress are left to finish (Fastify answers them with
 * `Connection: close`); those that have sent part of one are too.
 */
async function drain(app: FastifyInstance): Promise<void> {
  const open = new Set<Socket>();
  let closing = false;
  app.server.on('connection', (socket: Socket) => {
    // Accepted between the start of shutdown and the listener closing: nothing will serve it.
    if (closing) return void socket.destroy();
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const socket of open) if (socket.bytesRead === 0) socket.destroy();
  });
}

export const drainPlugin = fp(drain, { name: 'drain' });
