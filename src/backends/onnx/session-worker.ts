/**
 * Worker entry hosting one ORT session. onnxruntime-node runs `session.run` synchronously on
 * the calling thread, so on the main thread a batch would stall the event loop (HTTP, cache
 * hits) for its whole duration; here it only blocks this worker. Pooling runs here too, so
 * only the pooled vectors cross back.
 */
import { unpack, type PackedIds } from './packed-ids.js';
import { OrtRunner, type SessionConfig, type SessionInfo } from './session.js';
import { serveWorker } from './worker-rpc.js';

export interface SessionWorkerData {
  onnxPath: string;
  config: SessionConfig;
}

serveWorker<SessionWorkerData, PackedIds, Float32Array[], SessionInfo>(async ({ onnxPath, config }) => {
  const runner = await OrtRunner.create(onnxPath, config);
  return {
    info: runner.info,
    handle: async (packed) => {
      const value = await runner.run(unpack(packed));
      return { value, transfer: value.map((v) => v.buffer as ArrayBuffer) };
    },
  };
});
