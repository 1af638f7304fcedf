import { z } from 'zod';
import { AutoUpdateResult } from '../reports/device-event.js';
import { SERVICE_NAME } from '../spec/service-spec.js';
import { formatIssues } from '../spec/text.js';

/** Most journal lines a `logs` command returns. */
export const MAX_LOG_LINES = 1000;

const CommandId = z.string().min(1).max(128);
const ServiceName = z.string().regex(SERVICE_NAME, { message: 'not a service name' });

/** A request on pf/v1/dev/{id}/cmd, from the controller. */
export const AgentCommand = z.discriminatedUnion('type', [
  z.strictObject({
    id: CommandId,
    type: z.literal('auto-update'),
    /** `podman auto-update --dry-run`: report `pending` rows, change nothing. */
    dryRun: z.boolean().default(false),
    /** Forget the images this device rolled back from first, so auto-update may try them again. */
    retry: z.boolean().default(false),
  }),
  z.strictObject({
    id: CommandId,
    type: z.literal('logs'),
    service: ServiceName,
    lines: z.number().int().min(1).max(MAX_LOG_LINES).default(100),
  }),
  z.strictObject({ id: CommandId, type: z.literal('restart'), service: ServiceName }),
]);
export type AgentCommand = z.output<typeof AgentCommand>;
export type AgentCommandInput = z.input<typeof AgentCommand>;

export const CommandResult = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('auto-update'),
    dryRun: z.boolean(),
    results: z.array(AutoUpdateResult),
    reason: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('logs'),
    service: z.string(),
    lines: z.array(z.string()),
    /** Older lines were left out to keep the response small. */
    truncated: z.boolean(),
  }),
  z.strictObject({
    type: z.literal('restart'),
    service: z.string(),
    /** The restarted service passed the health gate. */
    ready: z.boolean(),
    reason: z.string().optional(),
  }),
]);
export type CommandResult = z.output<typeof CommandResult>;

/** The answer on pf/v1/dev/{id}/cmd/res, carrying the request's id. */
export const CommandResponse = z.union([
  z.strictObject({ id: CommandId, ok: z.literal(true), result: CommandResult }),
  z.strictObject({ id: CommandId, ok: z.literal(false), error: z.string() }),
]);
export type CommandResponse = z.output<typeof CommandResponse>;

export type ParsedCommand =
  { ok: true; command: AgentCommand } | { ok: false; id: string | undefined; error: string };

/**
 * Reads a request as received (bytes or parsed JSON). On failure the id, when the request has a
 * usable one, lets the agent answer; the error is one line naming the field.
 */
export function parseAgentCommand(input: unknown): ParsedCommand {
  let body = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    try {
      body = JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
    } catch {
      return { ok: false, id: undefined, error: 'command is not JSON' };
    }
  }
  const parsed = AgentCommand.safeParse(body);
  if (parsed.success) return { ok: true, command: parsed.data };
  const id = CommandId.safeParse((body as { id?: unknown } | null)?.id);
  return {
    ok: false,
    id: id.success ? id.data : undefined,
    error: `invalid command: ${formatIssues(parsed.error).join('; ')}`,
  };
}
