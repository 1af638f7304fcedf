import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DeviceEvent,
  generateSigningKey,
  parseDeviceTopic,
  signManifest,
  StateReport,
  topics,
  type ServiceSpecInput,
} from '@podfleet/shared';
import { runCli } from '../cli/main.js';
import {
  BrokerWatch,
  TEST_BROKER,
  startDeploymentBroker,
  uniqueDeviceId,
} from '../session/testing.js';

const A = 'registry.example/acme/web:1.0';
const B = 'registry.example/acme/web:1.1';
const web = (image: string): ServiceSpecInput => ({
  name: 'web',
  image,
  ready: { timeout: 20, settle: 1 },
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * `podfleet-agent sim` as a user runs it (the CLI, in this process), with a controller-like
 * publisher that signs one manifest per device and watches state and events come back.
 */
async function simulate(devices: number, extra: string[] = []) {
  const prefix = uniqueDeviceId('sim');
  const key = generateSigningKey();
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-sim-test-'));
  await writeFile(join(dir, 'controller.pub'), key.publicKeyPem);
  const ids = Array.from({ length: devices }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);
  const watch = await BrokerWatch.open([
    `pf/v1/dev/+/state`,
    `pf/v1/dev/+/events`,
    `pf/v1/dev/+/online`,
  ]);
  const mine = (topic: string) => parseDeviceTopic(topic)?.device.startsWith(`${prefix}-`);
  const stop = new AbortController();
  let stdout = '';
  let stderr = '';
  const exit = runCli(
    ['sim', '--devices', String(devices), '--broker', TEST_BROKER, '--prefix', prefix,
      '--key', join(dir, 'controller.pub'), '--progress', '1', '--json', ...extra], // prettier-ignore
    {
      stdout: { write: (chunk: string | Uint8Array) => ((stdout += String(chunk)), true) },
      stderr: { write: (chunk: string | Uint8Array) => ((stderr += String(chunk)), true) },
    },
    stop.signal,
  );
  cleanups.push(async () => {
    stop.abort();
    await exit;
    await watch.clearDevices(ids);
    await watch.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The newest state each device reported. */
  const latest = () => {
    const states = new Map<string, StateReport>();
    for (const m of watch.seen) {
      if (m.payload === '' || !m.topic.endsWith('/state') || !mine(m.topic)) continue;
      const report = StateReport.parse(JSON.parse(m.payload));
      states.set(report.device, report);
    }
    return states;
  };
  const events = () =>
    watch.seen
      .filter((m) => m.topic.endsWith('/events') && mine(m.topic))
      .map((m) => DeviceEvent.parse(JSON.parse(m.payload)));
  const publishAll = async (generation: number, image: string) => {
    await Promise.all(
      ids.map((device) =>
        watch.publish(
          topics.desired(device),
          JSON.stringify(
            signManifest(
              { device, generation, issuedAt: new Date().toISOString(), services: [web(image)] },
              key.privateKeyPem,
            ),
          ),
          true,
        ),
      ),
    );
  };
  /** Waits until every device's latest state satisfies `check`. */
  const allReport = (what: string, check: (report: StateReport) => boolean, ms = 60_000) =>
    watch.until(
      what,
      () => {
        const states = latest();
        return ids.every((id) => states.has(id) && check(states.get(id)!)) ? states : undefined;
      },
      ms,
    );
  const finish = async () => {
    stop.abort();
    const code = await exit;
    return { code, stdout, stderr };
  };
  return { ids, watch, latest, events, publishAll, allReport, finish, mine };
}

describe('podfleet-agent sim against Mosquitto', () => {
  it('runs 50 agents that each converge to their new generation', async () => {
    const sim = await simulate(50);
    await sim.watch.until('50 devices online', () => {
      const online = new Set(
        sim.watch.seen
          .filter((m) => m.topic.endsWith('/online') && m.payload === 'online' && sim.mine(m.topic))
          .map((m) => m.topic),
      );
      return online.size === 50 ? true : undefined;
    });
    await sim.publishAll(1, A);
    await sim.allReport(
      'generation 1 everywhere',
      (r) => r.generation === 1 && r.services[0]?.ready === true,
    );
    await sim.publishAll(2, B);
    const states = await sim.allReport(
      'generation 2 everywhere',
      (r) => r.generation === 2 && r.services[0]?.image === B && r.services[0].ready,
    );
    expect(states.size).toBe(50);
    const applies = sim.events().filter((e) => e.type === 'apply' && e.result === 'applied');
    expect(applies).toHaveLength(100);

    const { code, stdout, stderr } = await sim.finish();
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      devices: 50,
      generation: 2,
      applied: 50,
      failed: 0,
      rollbacks: 0,
    });
    expect(stderr).toMatch(/sim: connected 50\/50 · generation 2: 50 applied/);
  });

  it('rolls back the new image on the failing share of devices', async () => {
    const sim = await simulate(20, ['--fail-rate', '0.25']);
    await sim.publishAll(1, A);
    await sim.allReport(
      'generation 1 everywhere',
      (r) => r.generation === 1 && r.services[0]?.ready === true,
    );
    await sim.publishAll(2, B);
    const states = await sim.allReport('generation 2 everywhere', (r) => r.generation === 2);
    const kept = [...states.values()].filter((r) => r.services[0]?.image === A);
    expect(kept).toHaveLength(5);
    expect(kept.every((r) => r.services[0]?.ready)).toBe(true); // the old version runs again
    const rollbacks = await sim.watch.until('five rollbacks', () => {
      const found = sim.events().filter((e) => e.type === 'rollback');
      return found.length === 5 ? found : undefined;
    });
    expect(rollbacks.every((e) => e.type === 'rollback' && e.restored && e.toImage === A)).toBe(
      true,
    );
    const { stdout } = await sim.finish();
    expect(JSON.parse(stdout)).toMatchObject({ devices: 20, applied: 15, failed: 5, rollbacks: 5 });
  });

  it('--credentials: each device logs in to a per-device-account broker as itself', async () => {
    const prefix = uniqueDeviceId('cred');
    const [good, wrong] = [`${prefix}-0000`, `${prefix}-0001`];
    const broker = await startDeploymentBroker({
      'podfleet-controller': 'controller-secret',
      [good]: 'good-secret',
      [wrong]: 'the-real-secret',
    });
    cleanups.push(() => broker.stop());
    const dir = await mkdtemp(join(tmpdir(), 'podfleet-sim-cred-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const key = generateSigningKey();
    await writeFile(join(dir, 'controller.pub'), key.publicKeyPem);
    await writeFile(
      join(dir, 'credentials.json'),
      JSON.stringify({ [good]: 'good-secret', [wrong]: 'not-the-secret' }),
    );
    const watch = await BrokerWatch.open(['pf/v1/dev/+/online'], broker.url, {
      username: 'podfleet-controller',
      password: 'controller-secret',
    });
    cleanups.push(() => watch.close());
    const stop = new AbortController();
    const quiet = { write: () => true };
    const exit = runCli(
      ['sim', '--devices', '2', '--broker', broker.url, '--prefix', prefix, '--credentials',
        join(dir, 'credentials.json'), '--key', join(dir, 'controller.pub')], // prettier-ignore
      { stdout: quiet, stderr: quiet },
      stop.signal,
    );
    cleanups.push(async () => {
      stop.abort();
      await exit;
    });
    await watch.until(`${good} online`, () =>
      watch.seen.some((m) => m.topic === topics.online(good) && m.payload === 'online')
        ? true
        : undefined,
    );
    // The broker refused the wrong password: the other device never said it was online.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(watch.seen.filter((m) => m.topic === topics.online(wrong))).toEqual([]);
  });

  it('exits 2 with one line on bad input', async () => {
    let stderr = '';
    const io = {
      stdout: { write: () => true },
      stderr: { write: (chunk: string | Uint8Array) => ((stderr += String(chunk)), true) },
    };
    expect(await runCli(['sim', '--devices', '3', '--labels', 'site'], io)).toBe(2);
    expect(stderr).toBe(
      `podfleet-agent: option '--labels <k=v,...>' argument 'site' is invalid. not k=v: "site"\n`,
    );
    stderr = '';
    const missing = ['sim', '--devices', '1', '--credentials', '/nonexistent/credentials.json'];
    expect(await runCli(missing, io)).toBe(2);
    expect(stderr).toBe(
      'podfleet-agent: --credentials: cannot read /nonexistent/credentials.json (ENOENT)\n',
    );
  });
});
