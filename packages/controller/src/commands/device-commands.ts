import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import {
  CommandResponse,
  parseDeviceTopic,
  topics,
  type AgentCommandInput,
} from '@podfleet/shared';

type Request = AgentCommandInput extends infer C
  ? C extends unknown
    ? Omit<C, 'id'>
    : never
  : never;

interface Waiting {
  device: string;
  resolve: (response: CommandResponse) => void;
  timer: NodeJS.Timeout;
}

export class CommandTimeout extends Error {}

/**
 * Request/response with devices over `cmd` and `cmd/res`. Every controller subscribes to the
 * responses without a shared subscription (a response must reach the controller that asked),
 * and each request expires in the broker when its answer is no longer awaited, so a device that
 * comes back days later does not run a stale command.
 */
export class DeviceCommands {
  private readonly waiting = new Map<string, Waiting>();

  constructor(private readonly client: MqttClient) {}

  async start(): Promise<void> {
    this.client.on('message', (topic, payload) => this.receive(topic, payload));
    await this.client.subscribeAsync('pf/v1/dev/+/cmd/res', { qos: 1 });
  }

  /** Sends a command and waits for the device's answer, at most `timeoutMs`. */
  async send(device: string, request: Request, timeoutMs = 30_000): Promise<CommandResponse> {
    const id = randomUUID();
    const answer = new Promise<CommandResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(
          new CommandTimeout(
            `device ${device} did not answer within ${(timeoutMs / 1000).toFixed(timeoutMs < 1000 ? 1 : 0)} s`,
          ),
        );
      }, timeoutMs);
      this.waiting.set(id, { device, resolve, timer });
    });
    await this.client.publishAsync(topics.cmd(device), JSON.stringify({ ...request, id }), {
      qos: 1,
      properties: { messageExpiryInterval: Math.max(1, Math.ceil(timeoutMs / 1000)) },
    });
    return answer;
  }

  close(): void {
    for (const [id, waiting] of this.waiting) {
      clearTimeout(waiting.timer);
      this.waiting.delete(id);
    }
  }

  private receive(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    if (parsed?.kind !== 'cmd/res') return;
    // Parsed only when a command waits for this device: one answering unasked, or flooding, costs
    // a lookup, not a JSON parse.
    const device = parsed.device;
    if (![...this.waiting.values()].some((waiting) => waiting.device === device)) return;
    let json: unknown;
    try {
      json = JSON.parse(payload.toString());
    } catch {
      return;
    }
    const response = CommandResponse.safeParse(json);
    if (!response.success) return;
    const waiting = this.waiting.get(response.data.id);
    // Only the device asked may answer (the broker's ACL gives each device its own cmd/res).
    if (!waiting || waiting.device !== parsed.device) return;
    clearTimeout(waiting.timer);
    this.waiting.delete(response.data.id);
    waiting.resolve(response.data);
  }
}
