import { describe, expect, it } from 'vitest';
import { ConfigError } from '../serve/config.js';
import { brokerAccessFromEnv, controllerAccount } from './config.js';
import { mosquittoPasswordHash, mosquittoPasswordMatches } from './mosquitto-password.js';
import { passwordFileUsers, renderPasswordFile } from './password-file.js';

describe('broker access configuration', () => {
  it('is off without a password file, and needs the pid file with one', () => {
    expect(brokerAccessFromEnv({ MQTT_URL: 'mqtt://u:p@broker:1883' })).toBeUndefined();
    expect(() =>
      brokerAccessFromEnv({ PODFLEET_BROKER_PASSWORD_FILE: '/var/lib/mosquitto/passwd' }),
    ).toThrow(
      new ConfigError([
        'PODFLEET_BROKER_PID_FILE: needed with PODFLEET_BROKER_PASSWORD_FILE (Mosquitto reloads the file on SIGHUP)',
      ]),
    );
    expect(() => brokerAccessFromEnv({ PODFLEET_BROKER_PASSWORD_FILE: 'passwd' })).toThrow(
      'PODFLEET_BROKER_PASSWORD_FILE: must be an absolute path',
    );
  });

  it('takes the controller’s own account from MQTT_URL, URL-decoded', async () => {
    expect(controllerAccount('mqtts://podfleet-controller:p%40ss%3Aword@broker:8883')).toEqual([
      { username: 'podfleet-controller', password: 'p@ss:word' },
    ]);
    expect(controllerAccount('mqtt://broker:1883')).toEqual([]);
    const access = brokerAccessFromEnv({
      MQTT_URL: 'mqtt://ctl:secret@broker:1883',
      PODFLEET_BROKER_PASSWORD_FILE: '/tmp/passwd',
      PODFLEET_BROKER_PID_FILE: '/tmp/mosquitto.pid',
    });
    expect(await access!.reservedUsernames()).toEqual(new Set(['ctl']));
  });
});

describe('the Mosquitto password file', () => {
  it('hashes as mosquitto_passwd does ($7$, PBKDF2-SHA512, 101 rounds) with a fresh salt', () => {
    const hash = mosquittoPasswordHash('secret');
    expect(hash).toMatch(/^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    expect(mosquittoPasswordHash('secret')).not.toBe(hash);
    expect(mosquittoPasswordMatches('secret', hash)).toBe(true);
    expect(mosquittoPasswordMatches('Secret', hash)).toBe(false);
  });

  it('writes one sorted line per account and refuses a name that would split a line', () => {
    const text = renderPasswordFile([
      { username: 'b', hash: 'h2' },
      { username: 'a', hash: 'h1' },
    ]);
    expect(text).toBe('a:h1\nb:h2\n');
    expect(passwordFileUsers(`# base\n\n${text}`)).toEqual(['a', 'b']);
    expect(() => renderPasswordFile([{ username: 'a:b', hash: 'h' }])).toThrow(
      'broker username "a:b": not allowed in a password file',
    );
  });
});
