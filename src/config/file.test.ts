import { describe, expect, it } from 'vitest';
import { parseOperatorFile } from './file.js';

const parse = (text: string, env: Record<string, string> = {}) => parseOperatorFile(text, '/etc/ec/embedding-cache.yaml', env);

describe('operator config file', () => {
  it('reads upstreams of every kind, with ${ENV} keys, aliases and tiers', () => {
    const r = parse(
      `
upstreams:
  - name: azure-east
    kind: azure-openai
    base_url: https://east.openai.azure.com
    api_key: \${AZURE_KEY}
    options: { api_version: 2024-10-21 }
    models:
      - { id: text-embedding-3-small, model: emb-small }
  - name: cohere
    kind: cohere
    api_key: "\${COHERE_KEY:-none}"
    models: [embed-v4.0]
aliases:
  small: text-embedding-3-small
tiers:
  - { name: gold, requests_per_day: 5000, backends: [upstream] }
`,
      { AZURE_KEY: 'az-secret' },
    );
    expect(r.problems).toEqual([]);
    expect(r.file!.upstreams[0]).toMatchObject({ name: 'azure-east', kind: 'azure-openai', apiKey: 'az-secret', options: { api_version: '2024-10-21' } });
    // The alias is one more public name of the same deployment: the same rows.
    expect(r.file!.upstreams[0].models).toEqual([
      { id: 'text-embedding-3-small', model: 'emb-small' },
      { id: 'small', model: 'emb-small' },
    ]);
    expect(r.file!.upstreams[1]).toMatchObject({ apiKey: 'none', models: [{ id: 'embed-v4.0' }], keyHint: 'upstreams[1].api_key in embedding-cache.yaml' });
    expect(r.file!.tiers).toEqual([{ name: 'gold', requestsPerDay: 5000, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] }]);
  });

  it('substitutes secrets as values after parsing, so their characters cannot change the YAML', () => {
    const r = parse('upstreams: [{ name: a, base_url: "https://x.example/v1", api_key: "${K}", models: [m] }]', { K: 'a: b\n- c #d' });
    expect(r.file!.upstreams[0].apiKey).toBe('a: b\n- c #d');
    expect(parse('upstreams: [{ name: a, base_url: "https://x.example/v1", api_key: "$${LITERAL}", models: [m] }]').file!.upstreams[0].apiKey).toBe('${LITERAL}');
  });

  it('names the exact path of every bad value', () => {
    const r = parse(
      `
upstreams:
  - name: ok
    base_url: https://api.openai.com/v1
    models: [text-embedding-3-small]
  - name: bad
    kind: bedrock
    models: [x]
  - name: tpl
    kind: template
    base_url: not a url
    api_key: \${MISSING_KEY}
    models: []
aliases: { tiny: nowhere }
tiers: [{ name: Gold, backends: [cloud] }]
colour: blue
`,
    );
    expect(r.file).toBeUndefined();
    expect(r.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^upstreams\[1\]\.kind: must be one of openai, azure-openai, cohere, voyage, gemini, template/),
        expect.stringMatching(/^upstreams\[2\]\.base_url: must be a URL/),
        expect.stringMatching(/^upstreams\[2\]\.models: must name at least one model/),
        expect.stringMatching(/^upstreams\[2\]\.api_key: environment variable MISSING_KEY is not set/),
        expect.stringMatching(/^tiers\[0\]\.name: /),
        expect.stringMatching(/^tiers\[0\]\.backends\[0\]: must be one of byok, upstream, local/),
        '(top level): unknown key (colour)',
      ]),
    );
  });

  it('checks kind options, unique names and alias targets once the shape is right', () => {
    const r = parse(`
upstreams:
  - { name: t, kind: template, base_url: "https://x.example/embed", models: [m], options: { request: { q: "{{input}}" }, vectors_path: embedding } }
  - { name: t, kind: azure-openai, models: [m] }
aliases: { other: not-served }
`);
    expect(r.problems).toEqual([
      'upstreams[0].options.vectors_path: must be a JSONPath expression starting with $, e.g. $.data[*].embedding',
      'upstreams[1].name: "t" is used by another upstream',
      'upstreams[1].base_url: is required for kind azure-openai',
      'aliases.other: no upstream serves "not-served" (aliases name a model of an upstream in this file)',
    ]);
  });

  it('reports YAML syntax errors', () => {
    expect(parse('upstreams: [\n  - name: x').problems[0]).toMatch(/^YAML: /);
  });
});
