/* global Buffer, URL, setTimeout */
// The alternative users have today: push one unit file to N devices over SSH and restart it, in
// parallel, as Ansible would — against one podfleet rollout to N simulated devices, same machine,
// same run.
// What is real and what is not: N real OpenSSH servers (/usr/sbin/sshd, one per device, each on its
// own loopback port with its own Ed25519 host key, which the client checks); real ssh2 clients
// (one connection per device: public-key login, one `exec` writing the unit file from stdin, one
// `exec` running `systemctl daemon-reload && systemctl restart web.service && systemctl
// is-active web.service`). A "device" is a directory: its unit goes to DIR/etc/systemd/system, and
// `systemctl` on its PATH is a script that logs the call and returns at once (no systemd, no
// Podman). The podfleet side is bench/fanout.mjs with BENCH_DEVICES=N BENCH_PROCS=1: a real
// controller, Postgres and Mosquitto, N sim agents on the in-memory host (no systemd either).
// Run: npm run bench -- ssh-push   BENCH_SSH_DEVICES (default 50). Needs root (sshd).
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';

const N = Number(process.env.BENCH_SSH_DEVICES ?? 50);
const V2 = 'registry.example/acme/web:2.0';
const ROOT = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const FAKE_SYSTEMCTL = `#!/bin/sh
# A device's systemctl, for the benchmark: logs the call, answers is-active, changes nothing.
echo "$(date +%s.%N) $*" >> "$(dirname "$0")/../systemctl.log"
[ "$1" = is-active ] && echo active
exit 0
`;

async function main() {
  const { renderUnits } = await import('../packages/shared/dist/index.js');
  console.log(
    `podfleet vs SSH push: ${N} devices; ${cpus().length} cores (${cpus()[0].model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${(await run('/usr/sbin/sshd', ['-V']).catch((e) => e)).stderr.trim()}; ${new Date().toISOString()}`,
  );
  // The unit every device gets: what podfleet renders for the same service (Podman < 4.4 style).
  const [unit] = renderUnits(
    { name: 'web', image: V2, ready: { timeout: '20s', settle: '1s' } },
    { style: 'service' },
  );
  const dir = await mkdtemp(join(tmpdir(), 'pf-bench-ssh-'));
  const servers = [];
  try {
    await mkdir('/run/sshd', { recursive: true }); // sshd's privilege-separation directory
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client')]);
    await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client.pub')));
    const privateKey = await readFile(join(dir, 'client'));
    const base = 20000 + Math.floor(Math.random() * 30000);
    const devices = [];
    let t = performance.now();
    for (let i = 0; i < N; i++) {
      const home = join(dir, `dev-${String(i).padStart(3, '0')}`);
      await mkdir(join(home, 'etc/systemd/system'), { recursive: true });
      await mkdir(join(home, 'bin'));
      await writeFile(join(home, 'bin/systemctl'), FAKE_SYSTEMCTL);
      await chmod(join(home, 'bin/systemctl'), 0o755);
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(home, 'host_key')]);
      const port = base + i;
      await writeFile(
        join(home, 'sshd_config'),
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${join(home, 'host_key')}`,
          'PidFile none',
          `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'LogLevel ERROR',
          '',
        ].join('\n'),
      );
      const server = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(home, 'sshd_config')], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      server.stderr.on('data', (d) => (err += d));
      servers.push(server);
      const hostKey = Buffer.from((await readFile(join(home, 'host_key.pub'), 'utf8')).split(' ')[1], 'base64'); // prettier-ignore
      devices.push({ home, port, hostKey, err: () => err });
    }
    for (const device of devices) await listening(device.port, device.err);
    console.log(
      `setup: ${N} sshd instances listening in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );

    const push = async (device) => {
      const conn = new ssh2.Client();
      await new Promise((resolve, reject) => {
        conn.on('ready', resolve).on('error', reject);
        conn.connect({
          host: '127.0.0.1',
          port: device.port,
          username: 'root',
          privateKey,
          // known_hosts: each device's own host key, and no other.
          hostVerifier: (key) => Buffer.compare(key, device.hostKey) === 0,
          readyTimeout: 60_000,
        });
      });
      try {
        const unitPath = `${device.home}/etc/systemd/system/web.service`;
        await exec(conn, `cat > ${unitPath}.tmp && mv ${unitPath}.tmp ${unitPath}`, unit.contents);
        const out = await exec(
          conn,
          `PATH=${device.home}/bin:$PATH; systemctl daemon-reload && systemctl restart web.service && systemctl is-active web.service`,
        );
        if (out.trim() !== 'active') throw new Error(`${device.home}: is-active said ${out}`);
      } finally {
        conn.end();
      }
    };
    const results = [];
    for (const forks of [N, 5]) {
      for (const device of devices) await rm(join(device.home, 'systemctl.log'), { force: true });
      t = performance.now();
      await inParallel(devices, forks, push);
      const seconds = (performance.now() - t) / 1000;
      for (const device of devices) {
        const written = await readFile(join(device.home, 'etc/systemd/system/web.service'), 'utf8'); // prettier-ignore
        const log = await readFile(join(device.home, 'systemctl.log'), 'utf8');
        if (written !== unit.contents || !log.includes('restart web.service'))
          throw new Error(`${device.home}: unit or restart missing`);
      }
      results.push([forks, seconds]);
      console.log(
        `SSH push, ${forks} at a time: unit written + daemon-reload + restart on all ${N}: ${seconds.toFixed(2)} s`,
      );
    }
    for (const server of servers) server.kill('SIGTERM');
    await sleep(200);

    // podfleet, same machine, right after.
    const child = spawn(process.execPath, [join(ROOT, 'bench/fanout.mjs')], {
      env: { ...process.env, BENCH_DEVICES: String(N), BENCH_PROCS: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`bench/fanout.mjs exited ${code}:\n${output}`);
    const figure = (label) => {
      const line = output.split('\n').find((l) => l.startsWith(label));
      return line ? Number(/([0-9.]+) s/.exec(line.slice(label.length))?.[1]) : NaN;
    };
    const accepted = Number(/answered in ([0-9.]+) s/.exec(output)?.[1]);
    const received = figure('every device received its manifest:');
    const stored = figure("every device's applied state in Postgres:");
    console.log(
      `podfleet rollout to ${N} sim devices: POST answered ${accepted.toFixed(2)} s, every manifest received ${received.toFixed(2)} s, every applied + ready state in Postgres ${stored.toFixed(2)} s (includes the sim's 1 s settle gate)`,
    );
    const [[, parallel]] = results;
    console.log(
      `ratio podfleet (manifest received) / SSH push (${N} at a time): ${(received / parallel).toFixed(2)}; podfleet (applied, in Postgres) / SSH push: ${(stored / parallel).toFixed(2)}`,
    );
  } finally {
    for (const server of servers) if (server.exitCode === null) server.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

function exec(conn, command, stdin) {
  return new Promise((resolve, reject) => {
    conn.exec(command, (error, stream) => {
      if (error) return reject(error);
      let out = '';
      let err = '';
      stream.on('data', (d) => (out += d));
      stream.stderr.on('data', (d) => (err += d));
      stream.on('close', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`${command}: exit ${code}: ${err}`)),
      );
      stream.end(stdin);
    });
  });
}

async function inParallel(items, limit, job) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await job(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function listening(port, stderr) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`sshd on port ${port} did not listen: ${stderr()}`);
}

await main();
