/** The main-thread side of session-worker.ts: a BatchRunner whose session runs off the event loop. */
import { pack, type PackedIds, type TokenIds } from './packed-ids.js';
import type { SessionWorkerData } from './session-worker.js';
import type { BatchRunner, SessionConfig, SessionInfo } from './session.js';
import { WorkerClient, siblingModule } from './worker-rpc.js';

export class WorkerRunner implements BatchRunner {
  private constructor(private readonly client: WorkerClient<PackedIds, Float32Array[], SessionInfo>) {}

  /** Loads the model in a new worker; a load failure (missing CUDA provider, bad file) is thrown here. */
  static async start(onnxPath: string, config: SessionConfig): Promise<WorkerRunner> {
    const data: SessionWorkerData = { onnxPath, config };
    return new WorkerRunner(await WorkerClient.start(siblingModule(import.meta.url, 'session-worker'), data));
  }

  get info(): SessionInfo {
    return this.client.info;
  }

  /** False once the worker has died: the model cannot serve. */
  get alive(): boolean {
    return this.client.alive;
  }

  run(sequences: readonly TokenIds[]): Promise<Float32Array[]> {
    const packed = pack(sequences);
    return this.client.call(packed, [packed.ids.buffer, packed.lengths.buffer]);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
