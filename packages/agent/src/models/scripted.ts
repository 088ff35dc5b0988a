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
 * In arguments, `"$lastCheckpoint"` stands for the latest checkpoint of this run, and a logged
 * checkpoint id for the checkpoint made at the same position in this run.
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
  const { turns, loggedCheckpoints } = parseReplay(text, path);
  return scriptedModel(
    turns.map((turn, index) => (messages: readonly Message[]) => {
      // Checkpoint ids of this run, in order: they stand in for the logged ones, position by position.
      const ids: string[] = [];
      for (const m of messages)
        if (m.role === 'tool' && m.name === 'checkpoint') {
          const id = /^checkpoint (\S+)/.exec(m.content)?.[1];
          if (id) ids.push(id);
        }
      const idFor = (value: string): string | undefined => {
        if (value === '$lastCheckpoint') return ids.at(-1) ?? '';
        const at = loggedCheckpoints.indexOf(value);
        return at >= 0 ? ids[at] : undefined;
      };
      return {
        content: turn.content,
        toolCalls: turn.toolCalls.map((c, i) => ({
          id: c.id ?? `replay-${index + 1}-${i + 1}`,
          name: c.name,
          arguments: substitute(c.arguments, idFor),
        })),
        ...(turn.usage ? { usage: turn.usage } : {}),
      };
    }),
    { name: 'replay' },
  );
}

type ReplayTurn = z.output<typeof ReplayTurnSchema>;

function parseReplay(text: string, path: string): { turns: ReplayTurn[]; loggedCheckpoints: string[] } {
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
    return {
      turns: parseArgument(ReplayFileSchema, value, { what: `replay file ${path}` }).turns,
      loggedCheckpoints: [],
    };
  }
  // A session log: one JSON object per line; the model turns are the `model_turn` entries.
  const turns: ReplayTurn[] = [];
  const loggedCheckpoints: string[] = [];
  for (const [index, line] of trimmed.split('\n').entries()) {
    if (!line.trim()) continue;
    let entry: { type?: unknown; content?: unknown; toolCalls?: unknown; id?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      throw new InvalidArgumentError(`the replay file ${path}, line ${index + 1}, is not JSON`, {
        operation: 'replayModel',
      });
    }
    if (entry.type === 'checkpoint' && typeof entry.id === 'string') loggedCheckpoints.push(entry.id);
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
  return { turns, loggedCheckpoints };
}

function substitute(value: unknown, idFor: (value: string) => string | undefined): unknown {
  if (typeof value === 'string') return idFor(value) ?? value;
  if (Array.isArray(value)) return value.map((v) => substitute(v, idFor));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, idFor)]));
  return value;
}
