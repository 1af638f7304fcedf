import type { Logger } from 'pino';
import { parseAgentCommand, topics, type CommandResponse } from '@podfleet/shared';
import type { DeviceLink } from '../session/device-link.js';
import { answerCommand, type CommandTarget } from './answer-command.js';

const REMEMBERED = 64;

/**
 * Requests from the cmd topic, answered on cmd/res with their id. QoS 1 may deliver a request
 * twice: a repeated id gets the same answer again, and the work is not done twice. Answers go
 * straight out, not through the outbox: a controller waiting for one gives up long before a
 * reconnect.
 */
export class CommandInbox {
  private readonly answered = new Map<string, Promise<CommandResponse>>();
  private readonly answering = new Set<Promise<void>>();

  constructor(
    private readonly link: DeviceLink,
    private readonly target: CommandTarget,
    private readonly logger: Logger,
  ) {}

  readonly receive = (payload: Buffer): void => {
    const parsed = parseAgentCommand(payload);
    if (!parsed.ok) {
      this.logger.warn(`command refused: ${parsed.error}`);
      if (parsed.id !== undefined) {
        this.track(this.respond({ id: parsed.id, ok: false, error: parsed.error }));
      }
      return;
    }
    const { command } = parsed;
    let answer = this.answered.get(command.id);
    if (!answer) {
      answer = answerCommand(command, this.target);
      this.answered.set(command.id, answer);
      if (this.answered.size > REMEMBERED) this.answered.delete(this.answered.keys().next().value!);
    }
    this.track(answer.then((response) => this.respond(response)));
  };

  /** Resolves once every request received so far is answered. */
  async settled(): Promise<void> {
    while (this.answering.size > 0) await Promise.all(this.answering);
  }

  get busy(): boolean {
    return this.answering.size > 0;
  }

  private track(work: Promise<void>): void {
    this.answering.add(work);
    void work.finally(() => this.answering.delete(work));
  }

  private async respond(response: CommandResponse): Promise<void> {
    try {
      const payload = JSON.stringify(response);
      await this.link.publish(topics.cmdResult(this.link.device), payload, { retain: false });
    } catch (error) {
      this.logger.warn(`answer to command ${response.id} lost: ${(error as Error).message}`);
    }
  }
}
