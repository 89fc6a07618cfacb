/**
 * Text and token-id inputs to the exact ids the model sees: nomic task prefix, the tokenizer
 * from tokenizer.json (@huggingface/tokenizers, no hand-written WordPiece), truncation to the
 * model's limit with the special-token frame ([CLS] ... [SEP]) kept.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { DomainError } from '../../core/errors.js';
import type { EmbedInput, TaskType } from '../../core/types.js';

/** The prompt the model directory declares for a task (nomic's `search_query: `, ...); '' where none. */
export function taskPrefix(taskType: TaskType | null, prompts: Partial<Record<TaskType, string>>): string {
  return taskType ? (prompts[taskType] ?? '') : '';
}

/**
 * Pre-tokenizers that split on whitespace, so the tokens of a text cut at a whitespace are a
 * prefix of the text's tokens (WordPiece works word by word): that lets us tokenise only the
 * head of a huge input instead of all of it.
 */
const WHITESPACE_SPLITTING = new Set(['BertPreTokenizer', 'Whitespace', 'WhitespaceSplit']);
/** First guess of characters per token when cutting a long input (generous: retried if short). */
const CHARS_PER_TOKEN_GUESS = 8;

export interface TokenizerSource {
  /** tokenizer.json, raw. */
  tokenizerJson: string;
  /** tokenizer_config.json, raw ('{}' when absent). */
  tokenizerConfigJson: string;
  /** Per-input limit, special tokens included. */
  maxTokens: number;
  /** Valid ids are [0, vocabSize); null: the tokenizer's own vocabulary size. */
  vocabSize: number | null;
  /** Task prompts the model directory declares (see model-dir.ts); absent: none. */
  prompts?: Partial<Record<TaskType, string>>;
}

export class TextTokenizer {
  readonly maxTokens: number;
  private readonly tokenizer: Tokenizer;
  /** Special ids the post-processor puts before and after the text ([CLS] / [SEP] for BERT). */
  private readonly head: number[];
  private readonly tail: number[];
  private readonly vocabSize: number;
  private readonly cutAtWhitespace: boolean;
  private readonly prompts: Partial<Record<TaskType, string>>;

  constructor(source: TokenizerSource) {
    const json = JSON.parse(source.tokenizerJson) as { pre_tokenizer?: { type?: string } | null };
    this.tokenizer = new Tokenizer(json, JSON.parse(source.tokenizerConfigJson) as object);
    this.cutAtWhitespace = WHITESPACE_SPLITTING.has(json.pre_tokenizer?.type ?? '');
    [this.head, this.tail] = specialFrame(this.tokenizer);
    this.maxTokens = source.maxTokens;
    this.prompts = source.prompts ?? {};
    if (this.maxTokens <= this.head.length + this.tail.length) {
      throw new Error(`max tokens ${this.maxTokens} leaves no room for text`);
    }
    this.vocabSize = source.vocabSize ?? this.tokenizer.get_vocab(true).size;
  }

  /** The ids for one input. Token inputs get no task prefix (the caller chose every id). */
  encode(input: EmbedInput, taskType: TaskType | null): number[] {
    return input.kind === 'text' ? this.encodeText(input.text, taskType) : this.encodeTokens(input.ids);
  }

  /** `<prefix><text>`, tokenised, truncated to maxTokens with the frame kept. */
  encodeText(text: string, taskType: TaskType | null): number[] {
    return this.frame(this.contentIds(taskPrefix(taskType, this.prompts) + text));
  }

  /**
   * Token ids in the model's vocabulary. The frame is added where missing (a leading [CLS] or
   * trailing [SEP] the caller already put is not doubled), so `[CLS] a b [SEP]` and `a b` give
   * the same ids; then truncated like text.
   */
  encodeTokens(ids: readonly number[]): number[] {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new DomainError('invalid_input', `Invalid token id ${id}: ids must be integers in [0, ${this.vocabSize}).`, { param: 'input' });
      }
    }
    const start = startsWith(ids, this.head) ? this.head.length : 0;
    const end = ids.length - start >= this.tail.length && endsWith(ids, this.tail) ? ids.length - this.tail.length : ids.length;
    return this.frame(ids.slice(start, end));
  }

  private frame(content: readonly number[]): number[] {
    const room = this.maxTokens - this.head.length - this.tail.length;
    return [...this.head, ...(content.length > room ? content.slice(0, room) : content), ...this.tail];
  }

  /**
   * Content ids without the frame. A text far longer than the limit is tokenised only up to a
   * whitespace past a guessed length (exact, see WHITESPACE_SPLITTING), so a megabyte input
   * costs what its first maxTokens tokens cost.
   */
  private contentIds(text: string): number[] {
    const room = this.maxTokens - this.head.length - this.tail.length;
    let budget = room * CHARS_PER_TOKEN_GUESS;
    while (this.cutAtWhitespace && text.length > budget) {
      const cut = text.slice(budget).search(/\s/);
      if (cut < 0) break;
      const ids = this.rawIds(text.slice(0, budget + cut));
      if (ids.length >= room) return ids;
      budget *= 4;
    }
    return this.rawIds(text);
  }

  private rawIds(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }
}

/** Finds the post-processor's frame by encoding one word with and without special tokens. */
function specialFrame(tokenizer: Tokenizer): [number[], number[]] {
  const bare: number[] = tokenizer.encode('a', { add_special_tokens: false }).ids;
  const framed: number[] = tokenizer.encode('a', { add_special_tokens: true }).ids;
  for (let h = 0; h + bare.length <= framed.length; h++) {
    if (bare.every((id, i) => framed[h + i] === id)) return [framed.slice(0, h), framed.slice(h + bare.length)];
  }
  throw new Error('tokenizer.json: cannot locate the text inside the post-processor template');
}

function startsWith(ids: readonly number[], prefix: readonly number[]): boolean {
  return prefix.length > 0 && prefix.length <= ids.length && prefix.every((id, i) => ids[i] === id);
}

function endsWith(ids: readonly number[], suffix: readonly number[]): boolean {
  const offset = ids.length - suffix.length;
  return suffix.length > 0 && offset >= 0 && suffix.every((id, i) => ids[offset + i] === id);
}
