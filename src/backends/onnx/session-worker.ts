/**
 * Worker entry hosting one ORT session. onnxruntime-node runs `session.run` synchronously on
 * the calling thread, so on the main thread a batch would stall the event loop (HTTP, cache
 * hits) for its whole duration; here it only blocks this worker. Pooling runs here too, so
 * only the pooled vectors cross back.
 */
import { OrtRunner, type SessionConfig, type SessionInfo } from './session.js';
import { serveWorker } from './worker-rpc.js';

export interface SessionWorkerData {
  onnxPath: string;
  config: SessionConfig;
}

serveWorker<SessionWorkerData, number[][], Float32Array[], SessionInfo>(async ({ onnxPath, config }) => {
  const runner = await OrtRunner.create(onnxPath, config);
  return {
    info: runner.info,
    handle: async (sequences) => {
      const value = await runner.run(sequences);
      return { value, transfer: value.map((v) => v.buffer as ArrayBuffer) };
    },
  };
});
