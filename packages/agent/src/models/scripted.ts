/** Models that need no network: fixed turns in code, or turns replayed from a file. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '@agentbox/core';
import { parseArgument } from '@agentbox/core/backend';
import { z } from 'zod';
import type { Message, Model, ModelTurn } from '../model-types.js';

/**
 * A model that plays back fixed turns: for offline demos and tests. A turn may be a function of the
 * conversation so far (to react to a tool result).
 */
export function scriptedModel(
  turns: readonly (ModelTurn | ((messages: readonly Message[]) => ModelTurn))[],
  options: { name?: string } = {},
): Model {
  let next = 0;
  const name = options.name ?? 'scripted';
  return {
    name,
    async complete({ messages }) {
      const turn = turns[next++];
      if (!turn) return { content: 'done', toolCalls: [], model: name };
      const played = typeof turn === 'function' ? turn(messages) : turn;
      return { model: name, ...played };
    },
  };
}

const ReplayTurnSchema = z.strictObject({
  content: z.string().default(''),
  toolCalls: z
    .array(z.strictObject({ id: z.string().optional(), name: z.string().min(1), arguments: z.unknown() }))
    .default([]),
  usage: z
    .strictObject({ inputTokens: z.number().int().min(0), outputTokens: z.number().int().min(0) })
    .optional(),
});
const ReplayFileSchema = z.strictObject({ turns: z.array(ReplayTurnSchema) });

/**
 * Turns from a file, played in order: `{"turns": [{"content": "...", "toolCalls": [{"name": "exec",
 * "arguments": {...}}]}]}`, or a session log (JSON lines), whose model turns are played again.
 * In arguments, `"$lastCheckpoint"` stands for the id of the latest checkpoint a tool reported.
 */
export function replayModel(path: string): Model {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`cannot read the replay file ${path}: ${(error as Error).message}`, {
      operation: 'replayModel',
      cause: error,
    });
  }
  const turns = parseReplay(text, path);
  let lastCheckpoint = '';
  return scriptedModel(
    turns.map((turn, index) => (messages: readonly Message[]) => {
      for (const m of messages)
        if (m.role === 'tool' && m.name === 'checkpoint')
          lastCheckpoint = /checkpoint (\S+)/.exec(m.content)?.[1] ?? lastCheckpoint;
      return {
        content: turn.content,
        toolCalls: turn.toolCalls.map((c, i) => ({
          id: c.id ?? `replay-${index + 1}-${i + 1}`,
          name: c.name,
          arguments: substitute(c.arguments, lastCheckpoint),
        })),
        ...(turn.usage ? { usage: turn.usage } : {}),
      };
    }),
    { name: 'replay' },
  );
}

function parseReplay(text: string, path: string): z.output<typeof ReplayTurnSchema>[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') && !trimmed.includes('\n{')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      throw new InvalidArgumentError(`the replay file ${path} is not JSON: ${(error as Error).message}`, {
        operation: 'replayModel',
      });
    }
    return parseArgument(ReplayFileSchema, value, { what: `replay file ${path}` }).turns;
  }
  // A session log: one JSON object per line; the model turns are the `model_turn` entries.
  const turns: z.output<typeof ReplayTurnSchema>[] = [];
  for (const [index, line] of trimmed.split('\n').entries()) {
    if (!line.trim()) continue;
    let entry: { type?: unknown; content?: unknown; toolCalls?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      throw new InvalidArgumentError(`the replay file ${path}, line ${index + 1}, is not JSON`, {
        operation: 'replayModel',
      });
    }
    if (entry.type === 'model_turn')
      turns.push(
        parseArgument(
          ReplayTurnSchema,
          { content: entry.content, toolCalls: entry.toolCalls },
          {
            what: `replay file ${path}, line ${index + 1}`,
          },
        ),
      );
  }
  return turns;
}

function substitute(value: unknown, lastCheckpoint: string): unknown {
  if (value === '$lastCheckpoint') return lastCheckpoint;
  if (Array.isArray(value)) return value.map((v) => substitute(v, lastCheckpoint));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, lastCheckpoint)]));
  return value;
}
