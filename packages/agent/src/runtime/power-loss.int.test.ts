// Power loss at each step of an apply and of an auto-update, on real devices (issue 15, part 2):
// systemd-nspawn devices of Debian 13 (Podman 5.4, systemd 257, Quadlet units) and Debian 12
// (Podman 4.3, systemd 252, service units) run the built agent as its unit, linked to a registry
// and a broker on the host (device-lab/agent-lab.ts). A step trap in front of podman and systemctl
// (device-lab/step-trap.ts) stops the agent exactly at a step; the test then pulls the plug
// (every process of the device killed at once) and boots the device again. After every boot it
// asserts "never neither, never stuck": within a bound the device settles on the old or the new
// version, whichever is right, with no change left unfinished and an honest state report.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceEvent, ServiceSpecInput, StateReport } from '@podfleet/shared';
import { AgentLab, APP_PORT, type PushedImage } from '../host/device-lab/agent-lab.js';
import { assertAgentBuilt } from '../host/device-lab/device-agent.js';
import { deviceRootfs, type DeviceSuite } from '../host/device-lab/device-rootfs.js';
import { armStepTrap, untilTrapReached, type StepTrap } from '../host/device-lab/step-trap.js';
import { appTarball, type AppBehaviour } from '../host/device-lab/test-images.js';
import { AGENT_UNIT } from '../install/agent-unit-file.js';
import { controllerKey } from './testing.js';

const SUITES: DeviceSuite[] = ['trixie', 'bookworm'];
const V1: AppBehaviour = { MSG: 'v1' };
/** A crashing V2 exits this long after it started: Podman's check (conmon: running) passes it. */
const CRASH_AFTER_MS = '1000';
/** From power on to a settled device, at most. */
const SETTLE_BOUND_MS = 60_000;
/** Settled: the same main pid, no restart and the same answer for this long. */
const STABLE_MS = 2_000;
const BACKUPS = '/var/lib/podfleet/backup';
/** sd-messages.h SD_MESSAGE_UNIT_STARTED: systemd logs it when a unit's start job is done. */
const UNIT_STARTED = '39f53479d3a045ac8e11786248231fbf';
const WEB = 'web.service';
/** The agent's restart of web during an apply: `systemctl restart --no-block web.service`. */
const RESTART_WEB = `systemctl restart --no-block ${WEB}`;
/** A scheduled or commanded run, not the dry run. */
const AUTO_UPDATE = 'podman auto-update --format {{json .}} --rollback=*';

/** Boot → settled per power-loss point, and the outage of a rejected auto-update, per suite. */
const figures: string[] = [];

interface Point {
  /** Where the power goes. */
  label: string;
  trap: StepTrap;
  /** What the new version does: serve, or crash after it started. */
  v2: 'good' | 'crashing';
  /** Cut only once the new version answers (the agent is in its gate). */
  whenServing?: boolean;
  /** The versions a settled device may run. */
  settlesOn: Array<'v1' | 'v2'>;
}

/**
 * Every point's V2 is an image of its own (its answer names the tag): a digest rejected at one
 * point must not be what another point updates to.
 */
function v2Of(point: Point, tag: string): AppBehaviour {
  const crash = point.v2 === 'crashing' ? { CRASH_AFTER_MS } : {};
  return { MSG: `v2-${tag}`, ...crash };
}

const APPLY_POINTS: Point[] = [
  {
    label: 'after the pull',
    trap: { call: 'podman pull *', when: 'after' },
    v2: 'good',
    settlesOn: ['v2'],
  },
  {
    label: 'with the units written, before daemon-reload',
    trap: { call: 'systemctl daemon-reload', when: 'before' },
    v2: 'good',
    settlesOn: ['v2'],
  },
  {
    label: 'after daemon-reload, before the restart',
    trap: { call: 'systemctl daemon-reload', when: 'after' },
    v2: 'good',
    settlesOn: ['v2'],
  },
  {
    label: 'in the gate (restarted on V2)',
    trap: { call: RESTART_WEB, when: 'after' },
    v2: 'good',
    whenServing: true,
    settlesOn: ['v2'],
  },
  {
    label: 'in the gate of a crashing V2',
    trap: { call: RESTART_WEB, when: 'after' },
    v2: 'crashing',
    whenServing: true,
    settlesOn: ['v1'],
  },
];

const AUTO_UPDATE_POINTS: Point[] = [
  {
    label: 'before podman auto-update runs (V1 backed up)',
    trap: { call: AUTO_UPDATE, when: 'before' },
    v2: 'good',
    settlesOn: ['v1', 'v2'],
  },
  {
    label: 'in the gate of a good V2',
    trap: { call: AUTO_UPDATE, when: 'after' },
    v2: 'good',
    whenServing: true,
    settlesOn: ['v1', 'v2'],
  },
  {
    label: 'in the gate of a crashing V2',
    trap: { call: AUTO_UPDATE, when: 'after' },
    v2: 'crashing',
    whenServing: true,
    settlesOn: ['v1'],
  },
];

beforeAll(async () => {
  await assertAgentBuilt();
  await appTarball();
});

afterAll(() => {
  if (figures.length > 0) console.log(`power-loss figures:\n  ${figures.join('\n  ')}`);
});

describe.each(SUITES)('power loss on a %s device', (suite) => {
  let lab: AgentLab;
  /** V1 as pushed: the same build (and digest) under every tag. */
  let v1: PushedImage;
  let generation = 0;
  let tags = 0;

  beforeAll(async () => {
    await deviceRootfs(suite);
    lab = await AgentLab.start({ suite, deviceId: `lab-power-${suite}`, key: controllerKey });
    v1 = await lab.push('v1', V1);
  });

  afterAll(async () => {
    await lab?.stop();
  });

  /** The service as every point runs it: a tag in the lab registry, followed by auto-update. */
  const web = (tag: string): ServiceSpecInput => ({
    name: 'web',
    image: lab.image(tag),
    notify: 'conmon',
    ports: [`${APP_PORT}:${APP_PORT}`],
    ready: { timeout: 10, settle: 2 },
    autoUpdate: 'registry',
  });

  /** A new generation running V1 from `tag`, applied, reported ready and answering. */
  async function onV1(tag: string): Promise<void> {
    const mark = lab.mark();
    await lab.desire(++generation, [web(tag)]);
    const wanted = generation;
    let seen = '';
    await until(
      `generation ${wanted} on V1`,
      async () => {
        const report = lab.states(mark).at(-1);
        const answer = await lab.answer();
        seen = `report generation ${report?.generation}, web ready ${webOf(report)?.ready}, answers ${answer}`;
        const ready = report?.generation === wanted && webOf(report)?.ready === true;
        return ready && answer === V1.MSG ? true : undefined;
      },
      () => seen,
    );
  }

  /**
   * Waits until the agent stopped at the trap and, if asked, V2 answers; then cuts. Where what
   * the lab heard stood at the cut, and when the power came back.
   */
  async function cutAt(
    point: Point,
    v2: AppBehaviour,
  ): Promise<{ mark: number; poweredOn: number }> {
    await untilTrapReached(lab.device);
    if (point.whenServing) {
      let answer: string | undefined;
      await until(
        'V2 serving',
        async () => ((answer = await lab.answer()) === v2.MSG ? true : undefined),
        () => `answers ${answer}`,
      );
    }
    const mark = lab.mark();
    const bootMs = await lab.powerCut();
    return { mark, poweredOn: Date.now() - bootMs };
  }

  /** The versions the point may settle on: what each answers, and its image id. */
  const settleVersions = (point: Point, v2: AppBehaviour, pushed: PushedImage): Version[] =>
    point.settlesOn.map((version) =>
      version === 'v1' ? { answer: V1.MSG!, id: v1.id } : { answer: v2.MSG!, id: pushed.id },
    );

  it.each(APPLY_POINTS)('an apply cut $label settles', async (point) => {
    await onV1('v1');
    const tag = `apply-${++tags}`;
    const v2 = v2Of(point, tag);
    const pushed = await lab.push(tag, v2);
    await armStepTrap(lab.device, point.trap);
    await lab.desire(++generation, [web(tag)]);
    const wanted = generation;
    const { mark, poweredOn } = await cutAt(point, v2);

    const settled = await untilSettled(lab, point.label, settleVersions(point, v2, pushed), mark);
    const outcome = applyOutcome(lab.events(mark), wanted);
    const early = expectNoLie(lab.states(mark), point, pushed);
    figures.push(
      `${suite}: apply cut ${point.label}: boot → settled ${seconds(settled.at - poweredOn)} on ${settled.answer} (${outcome}; ${describeSettled(settled, early)})`,
    );
    // The rollout ends: the generation is the device's, applied on V2 or failed back to V1.
    expect(settled.report.generation).toBe(wanted);
    expect(outcome).toBe(settled.answer === v2.MSG ? 'applied' : 'failed');
  });

  it.each(AUTO_UPDATE_POINTS)('an auto-update cut $label settles', async (point) => {
    const tag = `auto-${++tags}`;
    await lab.push(tag, V1);
    await onV1(tag);
    const v2 = v2Of(point, tag);
    const pushed = await lab.push(tag, v2);
    await armStepTrap(lab.device, point.trap);
    await lab.sendAutoUpdate();
    const { mark, poweredOn } = await cutAt(point, v2);

    const settled = await untilSettled(lab, point.label, settleVersions(point, v2, pushed), mark);
    const early = expectNoLie(lab.states(mark), point, pushed);
    figures.push(
      `${suite}: auto-update cut ${point.label}: boot → settled ${seconds(settled.at - poweredOn)} on ${settled.answer} (${describeSettled(settled, early)})`,
    );
    if (point.v2 === 'crashing') {
      // The first bullet: back on V1, and the device says it rolled back.
      const rollbacks = lab.events(mark).filter((e) => e.type === 'rollback');
      expect(rollbacks).toEqual([expect.objectContaining({ service: 'web', restored: true })]);
    }
  });

  it('a rejected auto-update is skipped on the next run, at no outage', async () => {
    const tag = `auto-${++tags}`;
    await lab.push(tag, V1);
    await onV1(tag);
    const crashing = await lab.push(tag, { MSG: `v2-${tag}`, CRASH_AFTER_MS });
    const first = await lab.answerTo(await lab.sendAutoUpdate());
    if (rowOf(first)?.updated !== 'rolled back') {
      // The gate let the crashing image through: what the agent and systemd said, to see why.
      const said = await lab.journal([AGENT_UNIT, WEB], 60);
      throw new Error(`not rolled back: ${JSON.stringify(rowOf(first))}\n${said}`);
    }
    expect(await lab.answer()).toBe(V1.MSG);

    // The next run, with the app asked every 50 ms all along.
    const poll = pollApp(lab);
    const again = await lab.answerTo(await lab.sendAutoUpdate());
    const seen = await poll.stop();
    const outage = outageMs(seen);
    figures.push(
      `${suite}: auto-update onto a rejected image: outage ${seconds(outage)} (${describeAnswers(seen)}), row ${JSON.stringify(rowOf(again))}`,
    );
    expect(rowOf(again)?.updated).toBe('skipped');
    expect(JSON.stringify(again)).toContain(`rejected ${crashing.digest}`);
    expect(outage).toBe(0);
  });
});

/** What a settled device looked like, and when it first did. */
interface Settled {
  at: number;
  answer: string;
  report: StateReport;
  /** How often systemd started web.service since the boot (1: only at boot). */
  starts: number;
}

/** One look at the device: everything "settled" is made of, for the test and for its error. */
interface Look {
  at: number;
  unit: Record<string, string>;
  agent: string;
  backups: string[];
  answer: string | undefined;
  report: StateReport | undefined;
}

/**
 * Waits until the device is settled and has stayed so for STABLE_MS: web.service active and
 * running with the same main pid and no restart, answering one of the point's versions, no
 * backup left, the agent active, and its newest state report (sent after the cut) saying web is
 * ready with systemd's restart count. Fails at SETTLE_BOUND_MS with what it saw last.
 */
async function untilSettled(
  lab: AgentLab,
  label: string,
  versions: Version[],
  mark: number,
): Promise<Settled> {
  const deadline = Date.now() + SETTLE_BOUND_MS;
  let since: Look | undefined;
  let last: Look | undefined;
  while (Date.now() < deadline) {
    last = await look(lab, mark);
    if (!isSettled(last, versions)) since = undefined;
    else if (!since || !sameRun(since, last)) since = last;
    else if (last.at - since.at >= STABLE_MS) {
      const starts = await startsSinceBoot(lab, WEB);
      return { at: since.at, answer: since.answer!, report: last.report!, starts };
    }
    await sleep(250);
  }
  throw new Error(
    `not settled ${SETTLE_BOUND_MS / 1000}s after the cut ${label} (expected ${versions.map((v) => v.answer).join(' or ')}): ${describeLook(last)}`,
  );
}

/** A version a point may settle on: what it answers, and the image id the report must name. */
interface Version {
  answer: string;
  id: string;
}

function isSettled(look: Look, versions: Version[]): boolean {
  const web = webOf(look.report);
  const version = versions.find((v) => v.answer === look.answer);
  return (
    look.unit.ActiveState === 'active' &&
    look.unit.SubState === 'running' &&
    look.agent === 'active' &&
    look.backups.length === 0 &&
    version !== undefined &&
    web?.ready === true &&
    web.imageId === version.id &&
    String(web.unit.restarts) === look.unit.NRestarts
  );
}

/** The same run of web, not restarted, giving the same answer. */
function sameRun(a: Look, b: Look): boolean {
  return (
    a.unit.MainPID === b.unit.MainPID &&
    a.unit.NRestarts === b.unit.NRestarts &&
    a.answer === b.answer
  );
}

async function look(lab: AgentLab, mark: number): Promise<Look> {
  const at = Date.now();
  const unit = await show(lab, WEB, ['ActiveState', 'SubState', 'NRestarts', 'MainPID']);
  const agent = (await show(lab, AGENT_UNIT, ['ActiveState'])).ActiveState ?? '';
  const backups = await readdir(join(lab.device.root, BACKUPS)).catch(() => []);
  return {
    at,
    unit,
    agent,
    backups,
    answer: await lab.answer(),
    report: lab.states(mark).at(-1),
  };
}

function describeLook(look: Look | undefined): string {
  if (!look) return 'nothing seen';
  const web = webOf(look.report);
  const u = look.unit;
  return [
    `web.service ${u.ActiveState}/${u.SubState} NRestarts=${u.NRestarts}`,
    `answers ${look.answer ?? 'nothing'}`,
    `backups [${look.backups.join(', ')}]`,
    `agent ${look.agent}`,
    web
      ? `state report: ready ${web.ready}, image ${web.imageId?.slice(0, 12)}, ${web.unit.active}/${web.unit.sub}, restarts ${web.unit.restarts}`
      : 'no state report since the cut',
  ].join('; ');
}

/** systemd's "Started" messages for the unit in this boot: its start jobs done, restarts included. */
async function startsSinceBoot(lab: AgentLab, unit: string): Promise<number> {
  const started = `MESSAGE_ID=${UNIT_STARTED}`;
  const out = await lab.device.exec(['journalctl', '-b', '-u', unit, started, '-o', 'cat', '--no-pager']); // prettier-ignore
  return out.split('\n').filter((line) => line.trim() !== '').length;
}

async function show(lab: AgentLab, unit: string, properties: string[]) {
  const out = await lab.device.exec(['systemctl', 'show', '-p', properties.join(','), unit]);
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/**
 * No state report since the cut called the crashing image ready once it had restarted: a crash
 * loop reported as ready is the lie issue 15 names. (Before its first crash it does run; a
 * report then is true when made.) How many reports called it ready before its first crash.
 */
function expectNoLie(reports: StateReport[], point: Point, v2: PushedImage): number {
  if (point.v2 !== 'crashing') return 0;
  const ready = reports.map(webOf).filter((web) => web?.ready && web.imageId === v2.id);
  expect(ready.filter((web) => web!.unit.restarts > 0).map((web) => web!.unit)).toEqual([]);
  return ready.length;
}

function describeSettled(settled: Settled, readyBeforeCrash: number): string {
  const early =
    readyBeforeCrash > 0 ? `, ${readyBeforeCrash} report(s) called V2 ready before it crashed` : '';
  return `web started ${settled.starts}× since boot${early}`;
}

const webOf = (report: StateReport | undefined) => report?.services.find((s) => s.name === 'web');

/** applied, failed, or none: what the agent said of the generation after the cut. */
function applyOutcome(events: DeviceEvent[], generation: number): string {
  const apply = events.find((e) => e.type === 'apply' && e.generation === generation);
  return apply?.type === 'apply' ? apply.result : 'no apply event';
}

type AutoUpdateAnswer = Awaited<ReturnType<AgentLab['answerTo']>>;

function rowOf(answer: AutoUpdateAnswer): { updated: string } | undefined {
  if (!answer.ok || answer.result.type !== 'auto-update') return undefined;
  return answer.result.results.find((row) => row.unit === WEB);
}

interface Answer {
  at: number;
  said: string | undefined;
}

/** Asks the app every 50 ms (each try bounded by 500 ms) until stopped. */
function pollApp(lab: AgentLab): { stop(): Promise<Answer[]> } {
  const seen: Answer[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      seen.push({ at, said: await lab.answer(500) });
      await sleep(Math.max(0, 50 - (Date.now() - at)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return seen;
    },
  };
}

/** How long the app answered anything but V1: from each such answer to the next answer. */
function outageMs(seen: Answer[]): number {
  let total = 0;
  for (const [index, answer] of seen.entries()) {
    const next = seen[index + 1];
    if (answer.said !== V1.MSG && next) total += next.at - answer.at;
  }
  return total;
}

function describeAnswers(seen: Answer[]): string {
  const counts = new Map<string, number>();
  for (const { said } of seen)
    counts.set(said ?? 'nothing', (counts.get(said ?? 'nothing') ?? 0) + 1);
  return [...counts].map(([said, n]) => `${said} ×${n}`).join(', ');
}

/** Waits until `check` says so; the error says what `seen` last described. */
async function until(
  what: string,
  check: () => Promise<true | undefined>,
  seen: () => string,
  ms = 60_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await check()) === undefined) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${ms} ms; ${seen()}`);
    await sleep(100);
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
