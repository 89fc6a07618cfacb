import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A plain BERT directory: no task prompts (served with no aliases and no prefix). */
export const TINY_BERT = fileURLToPath(new URL('../../test/fixtures/tiny-bert', import.meta.url));

/** nomic-embed-text's task prefixes, as a directory declares them to sentence-transformers. */
export const NOMIC_PROMPTS = {
  search_document: 'search_document: ',
  search_query: 'search_query: ',
  clustering: 'clustering: ',
  classification: 'classification: ',
};

let withPrompts: string | undefined;
/**
 * tiny-bert copied to a temporary directory of the same name (so the same model id) that declares
 * nomic's prompts in config_sentence_transformers.json: the golden vectors were made with them.
 */
export function tinyBertWithPrompts(): string {
  if (withPrompts) return withPrompts;
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'tiny-bert-prompts-')), 'tiny-bert');
  cpSync(TINY_BERT, dir, { recursive: true });
  writeFileSync(path.join(dir, 'config_sentence_transformers.json'), JSON.stringify({ prompts: NOMIC_PROMPTS, default_prompt_name: 'search_document' }));
  withPrompts = dir;
  return dir;
}
