/**
 * The onnxruntime-node session: execution provider from config (CPU, or CUDA with no silent
 * fall back), only the inputs the graph declares, and pooled L2-normalised vectors out of either
 * a `last_hidden_state` graph or one that pools in-graph ([batch, hidden]).
 */
import ort from 'onnxruntime-node';
import type { TokenIds } from './packed-ids.js';
import { padBatch, poolAndNormalise, splitPooled } from './pooling.js';

export type Device = 'cpu' | 'cuda';

export interface SessionConfig {
  device: Device;
  /** CUDA device ordinal. */
  deviceId?: number;
  /** ORT intra-op threads; ORT's default (one per physical core) when absent. */
  threads?: number;
}

/** What the loaded graph looks like, for logs and checks. */
export interface SessionInfo {
  inputs: string[];
  /** The output we read. */
  output: string;
  device: Device;
}

/** Runs one padded batch of id sequences; one vector per sequence. */
export interface BatchRunner {
  run(sequences: readonly TokenIds[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

const KNOWN_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
/** Preferred outputs: an in-graph pooled one first (the GPU variant), else the token states. */
const PREFERRED_OUTPUTS = ['sentence_embedding', 'last_hidden_state'];

export const CUDA_HELP =
  // The project's .npmrc skips the provider download; this runs onnxruntime-node's own installer anyway.
  'install the CUDA provider of onnxruntime-node (on a machine with internet: ' +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install`, ' +
  'see https://onnxruntime.ai/docs/get-started/with-javascript/node.html) and put the CUDA 12/13 and cuDNN 9 ' +
  'libraries on LD_LIBRARY_PATH; or set EMBED_DEVICE=cpu';

export class OrtRunner implements BatchRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly info: SessionInfo,
  ) {}

  static async create(onnxPath: string, config: SessionConfig): Promise<OrtRunner> {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: [config.device === 'cuda' ? { name: 'cuda', deviceId: config.deviceId ?? 0 } : 'cpu'],
      graphOptimizationLevel: 'all',
      ...(config.threads ? { intraOpNumThreads: config.threads, interOpNumThreads: 1 } : {}),
    };
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(onnxPath, options);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (config.device === 'cuda') {
        throw new Error(`device cuda: onnxruntime-node cannot use its CUDA execution provider (${clean(message)}); ${CUDA_HELP}`);
      }
      throw new Error(`${onnxPath}: onnxruntime cannot load the model (${clean(message)})`);
    }
    const unknown = session.inputNames.filter((n) => !(KNOWN_INPUTS as readonly string[]).includes(n));
    if (unknown.length > 0 || !session.inputNames.includes('input_ids')) {
      await session.release();
      throw new Error(`${onnxPath}: unsupported model inputs [${session.inputNames.join(', ')}]; expected input_ids, attention_mask, token_type_ids`);
    }
    const output = PREFERRED_OUTPUTS.find((n) => session.outputNames.includes(n)) ?? session.outputNames[0];
    return new OrtRunner(session, { inputs: [...session.inputNames], output, device: config.device });
  }

  async run(sequences: readonly TokenIds[]): Promise<Float32Array[]> {
    const padded = padBatch(sequences);
    const { batch, seq } = padded;
    const all: Record<(typeof KNOWN_INPUTS)[number], BigInt64Array> = {
      input_ids: padded.inputIds,
      attention_mask: padded.attentionMask,
      token_type_ids: padded.tokenTypeIds,
    };
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.info.inputs) {
      feeds[name] = new ort.Tensor('int64', all[name as keyof typeof all], [batch, seq]);
    }
    const result = await this.session.run(feeds, [this.info.output]);
    const tensor = result[this.info.output];
    try {
      if (tensor.type !== 'float32') throw new Error(`output ${this.info.output} is ${tensor.type}, expected float32`);
      const data = tensor.data as Float32Array;
      const dims = tensor.dims;
      if (dims.length === 3) return poolAndNormalise(data, padded.attentionMask, batch, seq, dims[2]);
      if (dims.length === 2) return splitPooled(data, batch, dims[1]);
      throw new Error(`output ${this.info.output} has shape [${dims.join(', ')}]; expected [batch, seq, hidden] or [batch, hidden]`);
    } finally {
      tensor.dispose();
    }
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** ORT's messages carry ANSI colour codes and newlines; the rest (e.g. which .so failed) stays. */
function clean(message: string): string {
  // eslint-disable-next-line no-control-regex
  return message.replace(/\u001b\[[0-9;]*m/g, ' ').replace(/\s+/g, ' ').trim();
}
